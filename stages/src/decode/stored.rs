//! What the `frames` table keeps on disk (`decode.keep_frames`): a preview by default, the full
//! frame when asked. Frames leave [`super::decode_video`] uncompressed; this turns them into the
//! stored form when the runner writes the table.
//!
//! Why a preview by default: a sampled 1080p frame is about 2 MB as PNG, so full frames cost
//! several times the video they came from (the demo's 36 MB of video made 245 MB of frames),
//! while the stages after `decode` get them in memory in the same pass. The preview keeps the
//! table worth opening (which frame, when, what it showed) at a few kilobytes a frame.

use arrow::array::{BinaryArray, StringArray};
use arrow::record_batch::RecordBatch;
use dfd_schemas::{FrameEncoding, FrameRef, FrameRow};
use rayon::prelude::*;

use super::{DecodeParams, EncodingParam, KeepFrames};
use crate::image_io::{encode_jpeg, encode_jpeg_packed, encode_png, raw_frame_mat};
use crate::inter_area;
use crate::StageError;

/// The longer side of a preview, in pixels (frames smaller than this keep their size).
pub const PREVIEW_SIDE: u32 = 256;
/// JPEG quality of a preview.
pub const PREVIEW_QUALITY: u8 = 80;

/// The stored form of a batch of `frames` rows: raw frames encoded as `params` says; rows that are
/// already encoded pass unchanged. Works on the batch's columns, so that a shard's raw frames are
/// not copied once more on the way (they are the bulk of the memory a streamed pass holds).
pub fn frames_for_disk(
    params: &DecodeParams,
    batch: RecordBatch,
) -> Result<RecordBatch, StageError> {
    let frames = FrameRow::refs(&batch)?;
    if frames.iter().all(|f| f.encoding != FrameEncoding::Raw) {
        return Ok(batch);
    }
    let stored = frames
        .par_iter()
        .map(|frame| match frame.encoding {
            FrameEncoding::Raw => stored_frame(params, frame)
                .map_err(|e| format!("{} frame {}: {e}", frame.video_id, frame.sample_index)),
            encoding => Ok((frame.image.to_vec(), encoding)),
        })
        .collect::<Result<Vec<(Vec<u8>, FrameEncoding)>, String>>()
        .map_err(StageError::Other)?;
    let image: BinaryArray = stored
        .iter()
        .map(|(bytes, _)| Some(bytes.as_slice()))
        .collect();
    let encoding: StringArray = stored.iter().map(|(_, e)| Some(e.as_str())).collect();
    Ok(FrameRow::replace_images(&batch, image, Some(encoding))?)
}

fn stored_frame(params: &DecodeParams, raw: &FrameRef) -> Result<(Vec<u8>, FrameEncoding), String> {
    let frame = raw_frame_mat(raw)?;
    match params.keep_frames {
        KeepFrames::Full => {
            // The parameters the full frames were always written with: same pixels, same bytes.
            let bytes = match params.encoding {
                EncodingParam::Png => encode_png(&frame, params.png_compression),
                EncodingParam::Jpeg => encode_jpeg(&frame, params.jpeg_quality),
            }?;
            Ok((bytes, params.encoding.schema_encoding()))
        }
        KeepFrames::Preview => {
            let (width, height) = preview_size(raw.width, raw.height);
            let bytes = if (width, height) == (raw.width, raw.height) {
                encode_jpeg(&frame, PREVIEW_QUALITY)
            } else {
                preview(raw, width, height)
            }
            .map_err(|e| format!("cannot make a preview: {e}"))?;
            Ok((bytes, FrameEncoding::Preview))
        }
    }
}

/// The preview of a frame larger than one: resized by INTER_AREA, as JPEG.
fn preview(raw: &FrameRef, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let image = inter_area::Image {
        pixels: raw.image,
        height: raw.height as usize,
        width: raw.width as usize,
    };
    let small = inter_area::resize_area(image, height as usize, width as usize)
        .map_err(|e| format!("cannot resize: {e}"))?;
    encode_jpeg_packed(&small, width, height, PREVIEW_QUALITY)
}

/// The preview's size: the frame scaled so that its longer side is at most [`PREVIEW_SIDE`].
pub fn preview_size(width: u32, height: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer <= PREVIEW_SIDE {
        return (width, height);
    }
    let scale = |side: u32| {
        ((side as u64 * PREVIEW_SIDE as u64 + longer as u64 / 2) / longer as u64).max(1) as u32
    };
    (scale(width), scale(height))
}

#[cfg(test)]
mod tests {
    use dfd_schemas::TableRow;
    use opencv::prelude::*;

    use super::*;

    fn raw_frame(width: u32, height: u32) -> FrameRow {
        let image = (0..width * height * 3)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        FrameRow {
            video_id: "v.mp4".into(),
            sample_index: 0,
            frame_index: 0,
            pts_ms: 0.0,
            width,
            height,
            encoding: FrameEncoding::Raw,
            image,
        }
    }

    #[test]
    fn previews_keep_the_aspect_and_never_grow() {
        assert_eq!(preview_size(1920, 1080), (256, 144));
        assert_eq!(preview_size(360, 640), (144, 256));
        assert_eq!(preview_size(200, 100), (200, 100));
    }

    #[test]
    fn a_full_png_frame_decodes_to_the_raw_pixels_and_a_preview_is_small() {
        let raw = raw_frame(640, 360);
        let batch = FrameRow::to_batch(std::slice::from_ref(&raw)).unwrap();
        let full = DecodeParams {
            keep_frames: KeepFrames::Full,
            ..DecodeParams::default()
        };
        let stored_batch = frames_for_disk(&full, batch.clone()).unwrap();
        let stored = FrameRow::refs(&stored_batch).unwrap();
        assert_eq!(stored[0].encoding, FrameEncoding::Png);
        let decoded = crate::image_io::frame_bgr(&stored[0]).unwrap();
        assert_eq!(decoded.data_bytes().unwrap(), &raw.image[..]);

        let preview_batch = frames_for_disk(&DecodeParams::default(), batch).unwrap();
        let preview = FrameRow::refs(&preview_batch).unwrap();
        assert_eq!(preview[0].encoding, FrameEncoding::Preview);
        assert_eq!((preview[0].width, preview[0].height), (640, 360));
        let shown = crate::image_io::decode_bgr(preview[0].image).unwrap();
        assert_eq!((shown.cols(), shown.rows()), (256, 144));
        assert!(crate::image_io::frame_bgr(&preview[0]).is_err());
    }
}
