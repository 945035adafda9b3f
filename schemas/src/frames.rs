//! `frames`: one row per sampled video frame, written by `decode`.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | the video (see `videos`) |
//! | sample_index | uint32 | 0, 1, 2 ... in time order within the video |
//! | frame_index | uint64 | index of the frame in the decoded stream (0 = first frame) |
//! | pts_ms | float64 | presentation time of the frame, in milliseconds |
//! | width, height | uint32 | frame size in pixels |
//! | encoding | utf8 | `png` (lossless, the default) or `jpeg` |
//! | image | binary | the encoded frame; colours in their true order (PNG/JPEG are RGB) |

use std::sync::Arc;

use arrow::array::{BinaryArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::column::{column, require_non_empty};
use crate::{SchemaError, TableDef};

pub const TABLE: TableDef = TableDef {
    name: "frames",
    schema,
    validate_values,
};

/// How a frame's pixels are stored in the `image` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEncoding {
    Png,
    Jpeg,
}

impl FrameEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameEncoding::Png => "png",
            FrameEncoding::Jpeg => "jpeg",
        }
    }

    pub fn parse(text: &str) -> Option<FrameEncoding> {
        match text {
            "png" => Some(FrameEncoding::Png),
            "jpeg" => Some(FrameEncoding::Jpeg),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FrameRow {
    pub video_id: String,
    pub sample_index: u32,
    pub frame_index: u64,
    pub pts_ms: f64,
    pub width: u32,
    pub height: u32,
    pub encoding: FrameEncoding,
    pub image: Vec<u8>,
}

pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("video_id", DataType::Utf8, false),
        Field::new("sample_index", DataType::UInt32, false),
        Field::new("frame_index", DataType::UInt64, false),
        Field::new("pts_ms", DataType::Float64, false),
        Field::new("width", DataType::UInt32, false),
        Field::new("height", DataType::UInt32, false),
        Field::new("encoding", DataType::Utf8, false),
        Field::new("image", DataType::Binary, false),
    ])
}

impl FrameRow {
    pub fn to_batch(rows: &[FrameRow]) -> Result<RecordBatch, SchemaError> {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| &r.video_id),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.sample_index),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.frame_index),
                )),
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.pts_ms),
                )),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.width))),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.height))),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.encoding.as_str()),
                )),
                Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| &r.image))),
            ],
        )
        .map_err(|source| SchemaError::Build {
            table: TABLE.name,
            source,
        })
    }

    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<FrameRow>, SchemaError> {
        let t = TABLE.name;
        let video_id = column::<StringArray>(t, batch, "video_id", "utf8")?;
        let sample_index = column::<UInt32Array>(t, batch, "sample_index", "uint32")?;
        let frame_index = column::<UInt64Array>(t, batch, "frame_index", "uint64")?;
        let pts_ms = column::<Float64Array>(t, batch, "pts_ms", "float64")?;
        let width = column::<UInt32Array>(t, batch, "width", "uint32")?;
        let height = column::<UInt32Array>(t, batch, "height", "uint32")?;
        let encoding = column::<StringArray>(t, batch, "encoding", "utf8")?;
        let image = column::<BinaryArray>(t, batch, "image", "binary")?;
        (0..batch.num_rows())
            .map(|row| {
                let encoding = FrameEncoding::parse(encoding.value(row)).ok_or_else(|| {
                    SchemaError::InvalidValue {
                        table: t,
                        column: "encoding",
                        row,
                        message: format!("unknown encoding `{}`", encoding.value(row)),
                    }
                })?;
                Ok(FrameRow {
                    video_id: video_id.value(row).to_string(),
                    sample_index: sample_index.value(row),
                    frame_index: frame_index.value(row),
                    pts_ms: pts_ms.value(row),
                    width: width.value(row),
                    height: height.value(row),
                    encoding,
                    image: image.value(row).to_vec(),
                })
            })
            .collect()
    }
}

fn validate_values(batch: &RecordBatch) -> Result<(), SchemaError> {
    let t = TABLE.name;
    require_non_empty(
        t,
        "video_id",
        column::<StringArray>(t, batch, "video_id", "utf8")?,
    )?;
    let width = column::<UInt32Array>(t, batch, "width", "uint32")?;
    let height = column::<UInt32Array>(t, batch, "height", "uint32")?;
    let image = column::<BinaryArray>(t, batch, "image", "binary")?;
    let encoding = column::<StringArray>(t, batch, "encoding", "utf8")?;
    for row in 0..batch.num_rows() {
        let bad = |column, message: &str| SchemaError::InvalidValue {
            table: t,
            column,
            row,
            message: message.to_string(),
        };
        if width.value(row) == 0 || height.value(row) == 0 {
            return Err(bad("width", "zero-sized frame"));
        }
        if image.value(row).is_empty() {
            return Err(bad("image", "empty image"));
        }
        if FrameEncoding::parse(encoding.value(row)).is_none() {
            return Err(bad("encoding", "unknown encoding"));
        }
    }
    Ok(())
}
