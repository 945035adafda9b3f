//! `errors`: one row per input a stage could not process. A stage records the failure here and goes
//! on with the other videos, so one corrupt file never costs a whole run.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | the video (or metadata entry) that failed |
//! | stage | utf8 | the stage that failed on it |
//! | message | utf8 | what went wrong, naming the file |

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::column::{column, require_non_empty};
use crate::{SchemaError, TableDef};

pub const TABLE: TableDef = TableDef {
    name: "errors",
    schema,
    validate_values,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    pub video_id: String,
    pub stage: String,
    pub message: String,
}

pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("video_id", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ])
}

impl ErrorRow {
    pub fn to_batch(rows: &[ErrorRow]) -> Result<RecordBatch, SchemaError> {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| &r.video_id),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.stage))),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| &r.message),
                )),
            ],
        )
        .map_err(|source| SchemaError::Build {
            table: TABLE.name,
            source,
        })
    }

    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<ErrorRow>, SchemaError> {
        let t = TABLE.name;
        let video_id = column::<StringArray>(t, batch, "video_id", "utf8")?;
        let stage = column::<StringArray>(t, batch, "stage", "utf8")?;
        let message = column::<StringArray>(t, batch, "message", "utf8")?;
        Ok((0..batch.num_rows())
            .map(|row| ErrorRow {
                video_id: video_id.value(row).to_string(),
                stage: stage.value(row).to_string(),
                message: message.value(row).to_string(),
            })
            .collect())
    }
}

fn validate_values(batch: &RecordBatch) -> Result<(), SchemaError> {
    let t = TABLE.name;
    require_non_empty(
        t,
        "stage",
        column::<StringArray>(t, batch, "stage", "utf8")?,
    )?;
    require_non_empty(
        t,
        "message",
        column::<StringArray>(t, batch, "message", "utf8")?,
    )
}
