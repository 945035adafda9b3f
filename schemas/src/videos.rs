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

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::column::{column, opt_str, require_non_empty};
use crate::{SchemaError, TableDef};

pub const TABLE: TableDef = TableDef {
    name: "videos",
    schema,
    validate_values,
};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoRow {
    pub video_id: String,
    pub path: String,
    pub label: Option<Label>,
    pub split: Option<String>,
    pub original: Option<String>,
    pub group: String,
    pub size_bytes: u64,
    pub modified_ms: i64,
}

pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("video_id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("split", DataType::Utf8, true),
        Field::new("original", DataType::Utf8, true),
        Field::new("group", DataType::Utf8, false),
        Field::new("size_bytes", DataType::UInt64, false),
        Field::new("modified_ms", DataType::Int64, false),
    ])
}

impl VideoRow {
    pub fn to_batch(rows: &[VideoRow]) -> Result<RecordBatch, SchemaError> {
        let strings =
            |f: fn(&VideoRow) -> Option<&str>| -> StringArray { rows.iter().map(f).collect() };
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(strings(|r| Some(&r.video_id))),
                Arc::new(strings(|r| Some(&r.path))),
                Arc::new(strings(|r| r.label.map(Label::as_str))),
                Arc::new(strings(|r| r.split.as_deref())),
                Arc::new(strings(|r| r.original.as_deref())),
                Arc::new(strings(|r| Some(&r.group))),
                Arc::new(rows.iter().map(|r| r.size_bytes).collect::<UInt64Array>()),
                Arc::new(rows.iter().map(|r| r.modified_ms).collect::<Int64Array>()),
            ],
        )
        .map_err(|source| SchemaError::Build {
            table: TABLE.name,
            source,
        })
    }

    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<VideoRow>, SchemaError> {
        let t = TABLE.name;
        let video_id = column::<StringArray>(t, batch, "video_id", "utf8")?;
        let path = column::<StringArray>(t, batch, "path", "utf8")?;
        let label = column::<StringArray>(t, batch, "label", "utf8")?;
        let split = column::<StringArray>(t, batch, "split", "utf8")?;
        let original = column::<StringArray>(t, batch, "original", "utf8")?;
        let group = column::<StringArray>(t, batch, "group", "utf8")?;
        let size = column::<UInt64Array>(t, batch, "size_bytes", "uint64")?;
        let modified = column::<Int64Array>(t, batch, "modified_ms", "int64")?;
        (0..batch.num_rows())
            .map(|row| {
                let label = match opt_str(label, row) {
                    None => None,
                    Some(text) => {
                        Some(
                            Label::parse(&text).ok_or_else(|| SchemaError::InvalidValue {
                                table: t,
                                column: "label",
                                row,
                                message: format!("`{text}` is neither REAL nor FAKE"),
                            })?,
                        )
                    }
                };
                Ok(VideoRow {
                    video_id: video_id.value(row).to_string(),
                    path: path.value(row).to_string(),
                    label,
                    split: opt_str(split, row),
                    original: opt_str(original, row),
                    group: group.value(row).to_string(),
                    size_bytes: size.value(row),
                    modified_ms: modified.value(row),
                })
            })
            .collect()
    }
}

fn validate_values(batch: &RecordBatch) -> Result<(), SchemaError> {
    let video_id = column::<StringArray>(TABLE.name, batch, "video_id", "utf8")?;
    require_non_empty(TABLE.name, "video_id", video_id)?;
    // Parsing checks the labels.
    VideoRow::from_batch(batch).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        TABLE.validate(&batch).unwrap();
        assert_eq!(VideoRow::from_batch(&batch).unwrap(), rows);
    }

    #[test]
    fn a_bad_label_is_named() {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from(vec!["a.mp4"])),
                Arc::new(StringArray::from(vec!["/a.mp4"])),
                Arc::new(StringArray::from(vec!["MAYBE"])),
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(StringArray::from(vec!["a.mp4"])),
                Arc::new(UInt64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![1])),
            ],
        )
        .unwrap();
        let err = TABLE.validate(&batch).unwrap_err().to_string();
        assert!(err.contains("label") && err.contains("MAYBE"), "{err}");
    }
}
