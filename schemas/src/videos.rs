//! `videos`: one row per video of the dataset, written by `ingest`.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | path relative to the dataset folder, as in `metadata.json` (`abc.mp4`) |
//! | path | utf8 | absolute path of the file when ingested |
//! | label | utf8? | `REAL`, `FAKE`, or null when the metadata has no entry (unlabelled test data) |
//! | split | utf8? | `train`, `val`, `test` or whatever the metadata says; null when absent |
//! | original | utf8? | for a fake, the video it was made from |
//! | group | utf8 | what must stay in one split: `original` for fakes, the video itself otherwise |
//! | size_bytes | uint64 | file size when ingested |
//! | modified_ms | int64 | file modification time (ms since the Unix epoch) when ingested |
//!
//! Size and modification time are in the table so that a changed video changes the table's bytes and
//! with them the fingerprint of every stage downstream.

use crate::cell::TextEnum;

/// The ground truth of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Real,
    Fake,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Real => "REAL",
            Label::Fake => "FAKE",
        }
    }

    /// Parses the DFDC spelling (`REAL` / `FAKE`, any case); anything else is `None`.
    pub fn parse(text: &str) -> Option<Label> {
        match text.to_ascii_uppercase().as_str() {
            "REAL" => Some(Label::Real),
            "FAKE" => Some(Label::Fake),
            _ => None,
        }
    }
}

/// A label column holds `REAL` or `FAKE`; anything else fails reading, naming the row.
impl TextEnum for Label {
    const NAMES: &'static str = "REAL, FAKE";
    fn as_str(self) -> &'static str {
        Label::as_str(self)
    }
    fn parse(text: &str) -> Option<Label> {
        Label::parse(text)
    }
}

crate::table! {
    #[derive(Eq)]
    pub struct VideoRow in "videos" {
        video_id: String,
        path: String,
        label: Option<Label>,
        split: Option<String>,
        original: Option<String>,
        group: String,
        size_bytes: u64,
        modified_ms: i64,
    }
    // Reading the rows checks the labels.
    validate = |batch| VideoRow::from_batch(batch).map(|_| ());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    use super::*;
    use crate::TableRow;

    #[test]
    fn the_schema_is_the_one_on_disk() {
        let expected = Schema::new(vec![
            Field::new("video_id", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("label", DataType::Utf8, true),
            Field::new("split", DataType::Utf8, true),
            Field::new("original", DataType::Utf8, true),
            Field::new("group", DataType::Utf8, false),
            Field::new("size_bytes", DataType::UInt64, false),
            Field::new("modified_ms", DataType::Int64, false),
        ]);
        assert_eq!((VideoRow::TABLE.schema)().fields(), expected.fields());
    }

    #[test]
    fn rows_round_trip_through_a_batch() {
        let rows = vec![
            VideoRow {
                video_id: "a.mp4".into(),
                path: "/d/a.mp4".into(),
                label: Some(Label::Fake),
                split: Some("train".into()),
                original: Some("b.mp4".into()),
                group: "b.mp4".into(),
                size_bytes: 10,
                modified_ms: 5,
            },
            VideoRow {
                video_id: "b.mp4".into(),
                path: "/d/b.mp4".into(),
                label: None,
                split: None,
                original: None,
                group: "b.mp4".into(),
                size_bytes: 11,
                modified_ms: 6,
            },
        ];
        let batch = VideoRow::to_batch(&rows).unwrap();
        VideoRow::TABLE.validate(&batch).unwrap();
        assert_eq!(VideoRow::from_batch(&batch).unwrap(), rows);
    }

    fn batch_with(video_id: &str, label: &str) -> RecordBatch {
        RecordBatch::try_new(
            VideoRow::TABLE.schema_ref(),
            vec![
                Arc::new(StringArray::from(vec![video_id])),
                Arc::new(StringArray::from(vec!["/a.mp4"])),
                Arc::new(StringArray::from(vec![label])),
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(StringArray::from(vec!["a.mp4"])),
                Arc::new(UInt64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![1])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_bad_label_is_named() {
        let err = VideoRow::TABLE
            .validate(&batch_with("a.mp4", "MAYBE"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                crate::SchemaError::InvalidValue {
                    table: "videos",
                    column: "label",
                    row: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("MAYBE"), "{err}");
    }

    #[test]
    fn an_empty_video_id_is_refused() {
        let err = VideoRow::TABLE
            .validate(&batch_with("", "FAKE"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("video_id") && err.contains("empty"), "{err}");
    }
}
