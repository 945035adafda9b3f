//! `frames`: one row per sampled video frame, written by `decode`.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | the video (see `videos`) |
//! | sample_index | uint32 | 0, 1, 2 ... in time order within the video |
//! | frame_index | uint64 | index of the frame in the decoded stream (0 = first frame) |
//! | pts_ms | float64 | presentation time of the frame, in milliseconds |
//! | width, height | uint32 | frame size in pixels |
//! | encoding | utf8 | `jpeg-preview` (the default on disk), `png`, `jpeg`, or `raw` (in memory) |
//! | image | struct{bytes: binary, path: utf8} | the frame (an HF `datasets` Image; `path` null); colours in their true order for PNG/JPEG (RGB), BGR for `raw` |
//!
//! What `decode` writes is a policy (`decode.keep_frames`): by default a preview (the frame scaled
//! down, as JPEG) beside the frame's true size, index and time; the full frame (PNG, or JPEG) only
//! when asked. Between stages of one pass the frame travels uncompressed (`raw`).

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::record_batch::RecordBatch;

use crate::cell::{read_cell, TextEnum};
use crate::column::{column, image_bytes};
use crate::{EncodedImage, SchemaError, TableRow};

/// How a frame's pixels are stored in the `image` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEncoding {
    /// The full frame, lossless.
    Png,
    /// The full frame, lossy.
    Jpeg,
    /// A JPEG of the frame scaled down (`width` and `height` stay the frame's own): enough to look
    /// at, not the pixels a detector saw.
    Preview,
    /// Uncompressed BGR8, `height x width x 3` bytes, row-major: how frames travel in memory from
    /// `decode` to the stages after it.
    Raw,
}

impl FrameEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameEncoding::Png => "png",
            FrameEncoding::Jpeg => "jpeg",
            FrameEncoding::Preview => "jpeg-preview",
            FrameEncoding::Raw => "raw",
        }
    }

    pub fn parse(text: &str) -> Option<FrameEncoding> {
        match text {
            "png" => Some(FrameEncoding::Png),
            "jpeg" => Some(FrameEncoding::Jpeg),
            "jpeg-preview" => Some(FrameEncoding::Preview),
            "raw" => Some(FrameEncoding::Raw),
            _ => None,
        }
    }

    /// Whether the image holds the frame's full pixels (everything but a preview).
    pub fn is_full_frame(self) -> bool {
        self != FrameEncoding::Preview
    }
}

/// Stored by name in the `encoding` column.
impl TextEnum for FrameEncoding {
    const NAMES: &'static str = "png, jpeg, jpeg-preview, raw";
    fn as_str(self) -> &'static str {
        FrameEncoding::as_str(self)
    }
    fn parse(text: &str) -> Option<FrameEncoding> {
        FrameEncoding::parse(text)
    }
}

crate::table! {
    pub struct FrameRow in "frames" {
        video_id: String,
        sample_index: u32,
        frame_index: u64,
        pts_ms: f64,
        width: u32,
        height: u32,
        encoding: FrameEncoding,
        /// On disk PNG or JPEG, which HF `datasets` decodes; `raw` only in memory.
        image: EncodedImage,
    }
    validate = validate_frames;
}

/// A `frames` row borrowed from its batch: the image is not copied. Frames are the bulk of what a
/// streamed pass holds (a raw 1080p frame is 6 MB), so the stages that read them (detect, crop)
/// look at them in place rather than through [`FrameRow`], whose rows own their bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameRef<'a> {
    pub video_id: &'a str,
    pub sample_index: u32,
    pub frame_index: u64,
    pub pts_ms: f64,
    pub width: u32,
    pub height: u32,
    pub encoding: FrameEncoding,
    pub image: &'a [u8],
}

impl FrameRow {
    /// The rows of `batch` (checked as [`FrameRow::from_batch`] checks them), borrowing their
    /// images.
    pub fn refs(batch: &RecordBatch) -> Result<Vec<FrameRef<'_>>, SchemaError> {
        let t = FrameRow::TABLE.name;
        FrameRow::TABLE.validate(batch)?;
        let ids = column::<StringArray>(t, batch, "video_id", "utf8")?;
        let samples = column::<UInt32Array>(t, batch, "sample_index", "uint32")?;
        let indices = column::<UInt64Array>(t, batch, "frame_index", "uint64")?;
        let pts = column::<Float64Array>(t, batch, "pts_ms", "float64")?;
        let width = column::<UInt32Array>(t, batch, "width", "uint32")?;
        let height = column::<UInt32Array>(t, batch, "height", "uint32")?;
        let image = image_bytes(t, batch, "image")?;
        (0..batch.num_rows())
            .map(|row| {
                Ok(FrameRef {
                    video_id: ids.value(row),
                    sample_index: samples.value(row),
                    frame_index: indices.value(row),
                    pts_ms: pts.value(row),
                    width: width.value(row),
                    height: height.value(row),
                    encoding: read_cell::<FrameEncoding>(t, batch, "encoding", row)?,
                    image: image.value(row),
                })
            })
            .collect()
    }

    /// The row as a [`FrameRef`] whose pixels are `image`: for a row whose pixels live in a
    /// buffer of their own (see [`FrameRow::with_shared_images`]).
    pub fn with_image<'a>(&'a self, image: &'a [u8]) -> FrameRef<'a> {
        FrameRef {
            video_id: &self.video_id,
            sample_index: self.sample_index,
            frame_index: self.frame_index,
            pts_ms: self.pts_ms,
            width: self.width,
            height: self.height,
            encoding: self.encoding,
            image,
        }
    }

    /// A batch of raw-frame `rows` (their `image` left empty) whose images are `images`: every
    /// row's `width x height x 3` bytes, one after another in row order. The buffer becomes the
    /// column's values without a copy, so a video decoded straight into one buffer is held
    /// once. (Copying frame by frame into a builder held a 1080p video's 124 MB twice at the
    /// peak: the allocator keeps the freed frames for reuse rather than handing them back.)
    pub fn with_shared_images(
        rows: &[FrameRow],
        images: Vec<u8>,
    ) -> Result<RecordBatch, SchemaError> {
        let table = FrameRow::TABLE.name;
        let bad = |row, message: String| SchemaError::InvalidValue {
            table,
            column: "image",
            row,
            message,
        };
        let mut lengths = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if row.encoding != FrameEncoding::Raw || !row.image.is_empty() {
                return Err(bad(
                    i,
                    "not a raw frame with its pixels in the shared buffer".into(),
                ));
            }
            lengths.push(row.width as usize * row.height as usize * 3);
        }
        let total: usize = lengths.iter().sum();
        if total != images.len() || i32::try_from(total).is_err() {
            return Err(bad(
                0,
                format!(
                    "{} bytes of pixels for {} raw frames of {total} bytes in all (at most 2 GiB \
                     a batch)",
                    images.len(),
                    rows.len()
                ),
            ));
        }
        let image = BinaryArray::try_new(
            OffsetBuffer::from_lengths(lengths),
            Buffer::from_vec(images),
            None,
        )
        .map_err(|source| SchemaError::Build { table, source })?;
        FrameRow::replace_images(&FrameRow::to_batch(rows)?, image, None)
    }

    /// `batch` with its `image` column replaced by `image` (the images' bytes, one per row), and
    /// its `encoding` column where one is given (decode's stored form of raw frames;
    /// [`FrameRow::with_shared_images`]).
    pub fn replace_images(
        batch: &RecordBatch,
        image: BinaryArray,
        encoding: Option<StringArray>,
    ) -> Result<RecordBatch, SchemaError> {
        let image: ArrayRef = Arc::new(EncodedImage::column(image));
        let encoding = encoding.map(|e| Arc::new(e) as ArrayRef);
        let schema = batch.schema();
        let columns = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| match (field.name().as_str(), &encoding) {
                ("image", _) => image.clone(),
                ("encoding", Some(encoding)) => encoding.clone(),
                _ => column.clone(),
            })
            .collect();
        RecordBatch::try_new(schema.clone(), columns).map_err(|source| SchemaError::Build {
            table: FrameRow::TABLE.name,
            source,
        })
    }
}

/// Every frame has a size, an image and a known encoding. Checked column by column rather than by
/// reading the rows, which would copy every image.
fn validate_frames(batch: &RecordBatch) -> Result<(), SchemaError> {
    let t = FrameRow::TABLE.name;
    let width = column::<UInt32Array>(t, batch, "width", "uint32")?;
    let height = column::<UInt32Array>(t, batch, "height", "uint32")?;
    let image = image_bytes(t, batch, "image")?;
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
        let encoding = read_cell::<FrameEncoding>(t, batch, "encoding", row)?;
        let pixels = width.value(row) as usize * height.value(row) as usize * 3;
        if encoding == FrameEncoding::Raw && image.value(row).len() != pixels {
            return Err(bad(
                "image",
                "raw frame whose length is not width x height x 3",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn the_schema_is_the_one_on_disk() {
        let expected = Schema::new(vec![
            Field::new("video_id", DataType::Utf8, false),
            Field::new("sample_index", DataType::UInt32, false),
            Field::new("frame_index", DataType::UInt64, false),
            Field::new("pts_ms", DataType::Float64, false),
            Field::new("width", DataType::UInt32, false),
            Field::new("height", DataType::UInt32, false),
            Field::new("encoding", DataType::Utf8, false),
            Field::new("image", EncodedImage::data_type(), true),
        ]);
        let schema = (FrameRow::TABLE.schema)();
        assert_eq!(schema.fields(), expected.fields());
        assert_eq!(
            crate::huggingface::image_columns(&schema),
            vec!["image".to_string()]
        );
    }

    fn frame(encoding: FrameEncoding, width: u32, image: Vec<u8>) -> FrameRow {
        let image = EncodedImage(image);
        FrameRow {
            video_id: "a.mp4".into(),
            sample_index: 0,
            frame_index: 3,
            pts_ms: 100.5,
            width,
            height: 2,
            encoding,
            image,
        }
    }

    #[test]
    fn rows_round_trip_and_bad_frames_are_refused() {
        let rows = vec![
            frame(FrameEncoding::Png, 4, vec![1, 2]),
            frame(FrameEncoding::Jpeg, 4, vec![3]),
        ];
        let batch = FrameRow::to_batch(&rows).unwrap();
        FrameRow::TABLE.validate(&batch).unwrap();
        assert_eq!(FrameRow::from_batch(&batch).unwrap(), rows);

        let zero = FrameRow::to_batch(&[frame(FrameEncoding::Png, 0, vec![1])]).unwrap();
        let err = FrameRow::TABLE.validate(&zero).unwrap_err().to_string();
        assert!(err.contains("zero-sized"), "{err}");
        let empty = FrameRow::to_batch(&[frame(FrameEncoding::Png, 4, vec![])]).unwrap();
        let err = FrameRow::TABLE.validate(&empty).unwrap_err().to_string();
        assert!(err.contains("empty image"), "{err}");
    }

    #[test]
    fn a_shared_buffer_batch_equals_the_copied_one_and_refs_borrow_it() {
        let rows = vec![
            frame(FrameEncoding::Raw, 1, vec![1, 2, 3, 4, 5, 6]),
            frame(FrameEncoding::Raw, 2, (7..19).collect()),
        ];
        let copied = FrameRow::to_batch(&rows).unwrap();
        let pixels: Vec<u8> = rows.iter().flat_map(|r| r.image.to_vec()).collect();
        let mut bare = rows.clone();
        for row in &mut bare {
            row.image = EncodedImage::default();
        }
        let shared = FrameRow::with_shared_images(&bare, pixels.clone()).unwrap();
        assert_eq!(copied, shared);
        let refs = FrameRow::refs(&shared).unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].image, &rows[1].image[..]);
        assert_eq!((refs[1].width, refs[1].video_id), (2, "a.mp4"));
        // The buffer must hold exactly every row's width x height x 3 bytes, and only raw rows.
        let short = FrameRow::with_shared_images(&bare, pixels[1..].to_vec()).unwrap_err();
        assert!(short.to_string().contains("17 bytes of pixels"), "{short}");
        assert!(FrameRow::with_shared_images(&rows, pixels).is_err());
        // A raw frame must hold width x height x 3 bytes.
        let short = FrameRow::to_batch(&[frame(FrameEncoding::Raw, 2, vec![1, 2, 3])]).unwrap();
        assert!(FrameRow::refs(&short).is_err());
    }

    #[test]
    fn an_unknown_encoding_is_named() {
        let batch = RecordBatch::try_new(
            FrameRow::TABLE.schema_ref(),
            vec![
                Arc::new(StringArray::from(vec!["a.mp4"])),
                Arc::new(UInt32Array::from(vec![0])),
                Arc::new(UInt64Array::from(vec![0])),
                Arc::new(Float64Array::from(vec![0.0])),
                Arc::new(UInt32Array::from(vec![4])),
                Arc::new(UInt32Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["webp"])),
                Arc::new(EncodedImage::column(BinaryArray::from(vec![&[1u8][..]]))),
            ],
        )
        .unwrap();
        for err in [
            FrameRow::TABLE.validate(&batch).unwrap_err(),
            FrameRow::from_batch(&batch).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(
                text.contains("frames") && text.contains("encoding") && text.contains("webp"),
                "{text}"
            );
        }
    }
}
