//! `decoded_videos`: one row per video that `decode` could read, saying what the stream held and how
//! many of the requested frames it yielded (a clip shorter than frames x interval yields fewer).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | the video |
//! | frames_requested | uint32 | N, the number of frames asked for |
//! | frames_kept | uint32 | how many were sampled (<= N) |
//! | frames_decoded | uint64 | frames read from the stream (up to the last kept one) |
//! | declared_frames | uint64 | frames the container says the stream has (0 when it does not say) |
//! | fps | float64 | frame rate the container declares (may be nominal for variable-rate video) |
//! | last_pts_ms | float64 | presentation time of the last frame read |
//! | width, height | uint32 | frame size |
//! | note | utf8? | what was odd about the stream, e.g. it ended long before its declared length (truncated) |

use std::sync::Arc;

use arrow::array::{Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::column::{column, opt_str, require_non_empty};
use crate::{SchemaError, TableDef};

pub const TABLE: TableDef = TableDef {
    name: "decoded_videos",
    schema,
    validate_values,
};

#[derive(Debug, Clone, PartialEq)]
pub struct DecodedVideoRow {
    pub video_id: String,
    pub frames_requested: u32,
    pub frames_kept: u32,
    pub frames_decoded: u64,
    pub declared_frames: u64,
    pub fps: f64,
    pub last_pts_ms: f64,
    pub width: u32,
    pub height: u32,
    pub note: Option<String>,
}

pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("video_id", DataType::Utf8, false),
        Field::new("frames_requested", DataType::UInt32, false),
        Field::new("frames_kept", DataType::UInt32, false),
        Field::new("frames_decoded", DataType::UInt64, false),
        Field::new("declared_frames", DataType::UInt64, false),
        Field::new("fps", DataType::Float64, false),
        Field::new("last_pts_ms", DataType::Float64, false),
        Field::new("width", DataType::UInt32, false),
        Field::new("height", DataType::UInt32, false),
        Field::new("note", DataType::Utf8, true),
    ])
}

impl DecodedVideoRow {
    pub fn to_batch(rows: &[DecodedVideoRow]) -> Result<RecordBatch, SchemaError> {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| &r.video_id),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.frames_requested),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.frames_kept),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.frames_decoded),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.declared_frames),
                )),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.fps))),
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.last_pts_ms),
                )),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.width))),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.height))),
                Arc::new(
                    rows.iter()
                        .map(|r| r.note.as_deref())
                        .collect::<StringArray>(),
                ),
            ],
        )
        .map_err(|source| SchemaError::Build {
            table: TABLE.name,
            source,
        })
    }

    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<DecodedVideoRow>, SchemaError> {
        let t = TABLE.name;
        let video_id = column::<StringArray>(t, batch, "video_id", "utf8")?;
        let requested = column::<UInt32Array>(t, batch, "frames_requested", "uint32")?;
        let kept = column::<UInt32Array>(t, batch, "frames_kept", "uint32")?;
        let decoded = column::<UInt64Array>(t, batch, "frames_decoded", "uint64")?;
        let declared = column::<UInt64Array>(t, batch, "declared_frames", "uint64")?;
        let fps = column::<Float64Array>(t, batch, "fps", "float64")?;
        let last_pts = column::<Float64Array>(t, batch, "last_pts_ms", "float64")?;
        let width = column::<UInt32Array>(t, batch, "width", "uint32")?;
        let height = column::<UInt32Array>(t, batch, "height", "uint32")?;
        let note = column::<StringArray>(t, batch, "note", "utf8")?;
        Ok((0..batch.num_rows())
            .map(|row| DecodedVideoRow {
                video_id: video_id.value(row).to_string(),
                frames_requested: requested.value(row),
                frames_kept: kept.value(row),
                frames_decoded: decoded.value(row),
                declared_frames: declared.value(row),
                fps: fps.value(row),
                last_pts_ms: last_pts.value(row),
                width: width.value(row),
                height: height.value(row),
                note: opt_str(note, row),
            })
            .collect())
    }
}

fn validate_values(batch: &RecordBatch) -> Result<(), SchemaError> {
    let t = TABLE.name;
    require_non_empty(
        t,
        "video_id",
        column::<StringArray>(t, batch, "video_id", "utf8")?,
    )?;
    for (row, r) in DecodedVideoRow::from_batch(batch)?.iter().enumerate() {
        if r.frames_kept > r.frames_requested {
            return Err(SchemaError::InvalidValue {
                table: t,
                column: "frames_kept",
                row,
                message: format!("{} kept of {} requested", r.frames_kept, r.frames_requested),
            });
        }
    }
    Ok(())
}
