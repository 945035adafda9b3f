//! `errors`: one row per input a stage could not process. A stage records the failure here and goes
//! on with the other videos, so one corrupt file never costs a whole run.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | the video (or metadata entry) that failed |
//! | stage | utf8 | the stage that failed on it |
//! | message | utf8 | what went wrong, naming the file |

use arrow::array::StringArray;
use arrow::record_batch::RecordBatch;

use crate::column::{column, require_non_empty};
use crate::{SchemaError, TableRow};

crate::table! {
    #[derive(Eq)]
    pub struct ErrorRow in "errors" {
        video_id: String,
        stage: String,
        message: String,
    }
    // A rejected `metadata.json` entry with an empty name is recorded under that name.
    video_id may be empty;
    validate = validate_errors;
}

/// Every failure names its stage and says what went wrong.
fn validate_errors(batch: &RecordBatch) -> Result<(), SchemaError> {
    let t = ErrorRow::TABLE.name;
    for name in ["stage", "message"] {
        require_non_empty(t, name, column::<StringArray>(t, batch, name, "utf8")?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn the_schema_is_the_one_on_disk() {
        let expected = Schema::new(vec![
            Field::new("video_id", DataType::Utf8, false),
            Field::new("stage", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
        ]);
        assert_eq!((ErrorRow::TABLE.schema)().fields(), expected.fields());
    }

    fn error(video_id: &str, stage: &str, message: &str) -> ErrorRow {
        ErrorRow {
            video_id: video_id.into(),
            stage: stage.into(),
            message: message.into(),
        }
    }

    #[test]
    fn an_empty_video_id_passes_but_an_empty_stage_or_message_does_not() {
        let rows = vec![
            error("a.mp4", "decode", "bad"),
            error("", "ingest", "empty name"),
        ];
        let batch = ErrorRow::to_batch(&rows).unwrap();
        ErrorRow::TABLE.validate(&batch).unwrap();
        assert_eq!(ErrorRow::from_batch(&batch).unwrap(), rows);
        for (bad, column) in [
            (error("a", "", "m"), "stage"),
            (error("a", "s", ""), "message"),
        ] {
            let batch = ErrorRow::to_batch(&[bad]).unwrap();
            let err = ErrorRow::TABLE.validate(&batch).unwrap_err().to_string();
            assert!(err.contains(column) && err.contains("empty"), "{err}");
        }
    }
}
