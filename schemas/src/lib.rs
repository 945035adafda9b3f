//! The contract between dfd stages: one Arrow schema per table, a typed row struct for each, and the
//! checks a batch must pass before the pipeline commits it to disk.
//!
//! Stages build and read tables only through these types, so a column rename or a type change is a
//! compile error in every stage that touches it rather than a surprise in a Parquet file months later.
//! Every table is an ordinary Parquet file on disk; the column lists below are the documentation a
//! pyarrow or DuckDB user needs.

pub mod augmentations;
pub mod cell;
mod column;
pub mod cues;
pub mod decoded_videos;
pub mod detections;
pub mod errors;
pub mod faces;
pub mod frames;
pub mod metrics;
pub mod report_files;
pub mod scores;
pub mod ssim;
pub mod training;
pub mod video_scores;
pub mod videos;

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

pub use augmentations::AugmentationRow;
pub use column::SchemaError;
pub use cues::VideoCueRow;
pub use decoded_videos::DecodedVideoRow;
pub use detections::DetectionRow;
pub use errors::ErrorRow;
pub use faces::crops::FaceRow;
pub use faces::misses::FaceMissRow;
pub use frames::{FrameEncoding, FrameRow};
pub use metrics::MetricsRow;
pub use report_files::ReportFileRow;
pub use scores::FrameScoreRow;
pub use ssim::maps::SsimMapRow;
pub use ssim::stats::SsimStatsRow;
pub use training::history::EpochRow;
pub use training::trained::TrainedModelRow;
pub use video_scores::VideoScoreRow;
pub use videos::{Label, VideoRow};

/// A table a stage can write: its name (the folder name under the stage's cache entry) and its schema.
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    pub name: &'static str,
    pub schema: fn() -> Schema,
    /// Checks every value of a batch that has the right schema (labels, ranges, non-empty ids).
    pub validate_values: fn(&RecordBatch) -> Result<(), SchemaError>,
}

impl TableDef {
    pub fn schema_ref(&self) -> SchemaRef {
        Arc::new((self.schema)())
    }

    /// Fails unless `batch` has exactly this table's columns (names, types, nullability, order) and
    /// every value passes the table's checks.
    pub fn validate(&self, batch: &RecordBatch) -> Result<(), SchemaError> {
        let expected = (self.schema)();
        let found = batch.schema();
        if expected.fields().len() != found.fields().len()
            || expected
                .fields()
                .iter()
                .zip(found.fields().iter())
                .any(|(a, b)| {
                    a.name() != b.name()
                        || a.data_type() != b.data_type()
                        || a.is_nullable() != b.is_nullable()
                })
        {
            return Err(SchemaError::SchemaMismatch {
                table: self.name,
                expected: describe(&expected),
                found: describe(&found),
            });
        }
        (self.validate_values)(batch)
    }
}

fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "?" } else { "" };
            format!("{}: {}{}", f.name(), f.data_type(), null)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every table any stage writes, for tools (`dfd inspect`) that look tables up by name.
pub const ALL_TABLES: &[TableDef] = &[
    videos::TABLE,
    frames::TABLE,
    decoded_videos::TABLE,
    detections::TABLE,
    faces::crops::TABLE,
    faces::misses::TABLE,
    ssim::maps::TABLE,
    ssim::stats::TABLE,
    cues::TABLE,
    augmentations::TABLE,
    training::trained::TABLE,
    training::history::TABLE,
    scores::TABLE,
    video_scores::TABLE,
    metrics::TABLE,
    report_files::TABLE,
    errors::TABLE,
];

/// Looks a table up by name.
pub fn table(name: &str) -> Option<&'static TableDef> {
    ALL_TABLES.iter().find(|t| t.name == name)
}
