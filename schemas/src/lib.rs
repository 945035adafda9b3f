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
pub mod huggingface;
pub mod image;
pub mod metrics;
pub mod report_files;
pub mod scores;
pub mod ssim;
pub mod training;
pub mod video_scores;
pub mod videos;

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

pub use augmentations::AugmentationRow;
pub use cell::{Cell, CellError, TextEnum};
pub use column::SchemaError;
pub use cues::VideoCueRow;
pub use decoded_videos::DecodedVideoRow;
pub use detections::DetectionRow;
pub use errors::ErrorRow;
pub use faces::crops::FaceRow;
pub use faces::misses::FaceMissRow;
pub use frames::{FrameEncoding, FrameRef, FrameRow};
pub use image::EncodedImage;
pub use metrics::MetricsRow;
pub use report_files::ReportFileRow;
pub use scores::FrameScoreRow;
pub use ssim::maps::SsimMapRow;
pub use ssim::stats::SsimStatsRow;
pub use training::history::EpochRow;
pub use training::times::EpochTimeRow;
pub use training::trained::{InitialWeights, TrainedModelRow};
pub use video_scores::VideoScoreRow;
pub use videos::{Label, VideoRow};

/// A row type of a table, declared with the [`table!`] macro: the table it belongs to and the
/// conversion of rows to and from record batches. Stages and the runner name tables through this
/// trait (`FaceRow::TABLE`) rather than by string, so a misspelt table is a compile error.
pub trait TableRow: Sized {
    const TABLE: TableDef;
    /// The rows as one batch of the table's schema.
    fn to_batch(rows: &[Self]) -> Result<RecordBatch, SchemaError>;
    /// Every row of `batch`, or the first cell that is missing, mistyped or not a valid value.
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>, SchemaError>;
}

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

    /// The table's name and columns (name, type, nullability, in order) in words of our own:
    /// what a stage's cache key holds of its output schemas. Not arrow's `Debug` text, which
    /// carries metadata maps and internals that an arrow upgrade may print differently and so
    /// silently invalidate every cache; not its `Display` either, for the same reason. A type
    /// this list does not name is an error here, so a new column type gets a name before any
    /// key is made of it.
    pub fn stable_description(&self) -> Result<String, SchemaError> {
        let schema = (self.schema)();
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let kind = match field.data_type() {
                DataType::Utf8 => "utf8",
                DataType::Binary => "binary",
                DataType::Boolean => "bool",
                DataType::Float32 => "f32",
                DataType::Float64 => "f64",
                DataType::Int64 => "i64",
                DataType::UInt32 => "u32",
                DataType::UInt64 => "u64",
                image if EncodedImage::is_image_type(image) => "image",
                other => {
                    return Err(SchemaError::Unnamed {
                        table: self.name,
                        column: field.name().clone(),
                        data_type: other.to_string(),
                    })
                }
            };
            let null = if field.is_nullable() { "?" } else { "" };
            columns.push(format!("{}:{kind}{null}", field.name()));
        }
        Ok(format!("{}({})", self.name, columns.join(",")))
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
    VideoRow::TABLE,
    FrameRow::TABLE,
    DecodedVideoRow::TABLE,
    DetectionRow::TABLE,
    FaceRow::TABLE,
    FaceMissRow::TABLE,
    SsimMapRow::TABLE,
    SsimStatsRow::TABLE,
    VideoCueRow::TABLE,
    AugmentationRow::TABLE,
    TrainedModelRow::TABLE,
    EpochRow::TABLE,
    FrameScoreRow::TABLE,
    VideoScoreRow::TABLE,
    MetricsRow::TABLE,
    ReportFileRow::TABLE,
    ErrorRow::TABLE,
];

/// Looks a table up by name.
pub fn table(name: &str) -> Option<&'static TableDef> {
    ALL_TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_own_name() {
        for (i, t) in ALL_TABLES.iter().enumerate() {
            assert!(
                ALL_TABLES[..i].iter().all(|u| u.name != t.name),
                "two tables named `{}`",
                t.name
            );
        }
    }
}

#[cfg(test)]
mod huggingface_tests {
    use super::*;

    /// Every table declares a `datasets` feature for each of its columns, in column order, and
    /// the image columns (and only they) as `Image`: what `load_dataset` reads them by.
    #[test]
    fn every_table_declares_its_columns_and_images_to_datasets() {
        let mut images = Vec::new();
        for table in ALL_TABLES {
            let schema = (table.schema)();
            let text = &schema.metadata()[huggingface::METADATA_KEY];
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let features = value["info"]["features"].as_object().unwrap();
            assert_eq!(features.len(), schema.fields().len(), "{}", table.name);
            let mut found = huggingface::image_columns(&schema);
            let mut expected: Vec<String> = schema
                .fields()
                .iter()
                .filter(|f| EncodedImage::is_image_type(f.data_type()))
                .map(|f| f.name().clone())
                .collect();
            found.sort();
            expected.sort();
            assert_eq!(found, expected, "{}", table.name);
            images.extend(expected.into_iter().map(|c| format!("{}.{c}", table.name)));
        }
        assert_eq!(images, ["frames.image", "faces.image", "ssim_maps.map"]);
    }
}

#[cfg(test)]
mod stable_description_tests {
    use super::*;

    /// Every table has a stable description (no column type without a name), and it says what
    /// the key needs: names, our type names, nullability, order.
    #[test]
    fn every_table_is_described_in_our_own_words() {
        for table in ALL_TABLES {
            let text = table
                .stable_description()
                .unwrap_or_else(|e| panic!("{}: {e}", table.name));
            assert!(text.starts_with(&format!("{}(", table.name)), "{text}");
        }
        let videos = VideoRow::TABLE.stable_description().unwrap();
        assert!(
            videos.starts_with("videos(video_id:utf8,path:utf8,label:utf8?,split:utf8?,"),
            "{videos}"
        );
    }
}
