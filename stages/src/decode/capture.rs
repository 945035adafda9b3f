//! Reading the sampled frames of one video with OpenCV's `VideoCapture` (through `dfd-capture`,
//! which loads OpenCV's videoio only when a video comes here).
//!
//! Frames are read with `grab()` (demux + decode, no colour conversion) and only the kept ones are
//! `retrieve()`d: for frames 0.5 s apart that is several times faster than seeking, which decodes
//! from the previous keyframe on every seek. Kept frames leave here uncompressed (`raw`, BGR);
//! what is written to disk is decided later ([`super::stored`]).

use std::path::Path;

use arrow::record_batch::RecordBatch;
use dfd_capture::{CaptureError, Property, VideoCapture};
use dfd_schemas::{DecodedVideoRow, FrameEncoding, FrameRow};
use opencv::core::CV_8UC3;

use super::sampler::FrameSampler;
use super::DecodeParams;
use crate::FrameObserver;

/// The sampled frames of one video and what the stream held.
pub struct DecodedVideo {
    /// The video's `frames` rows, raw BGR, their pixels in one buffer
    /// ([`FrameRow::with_shared_images`]).
    pub frames: RecordBatch,
    pub summary: DecodedVideoRow,
}

/// Decodes the sampled frames of the video at `path`, offering each kept frame to `observer` as it
/// comes; the error is a one-line message for the `errors` table (the caller adds the file name,
/// and tells the observer to discard the frames).
pub fn decode_with_opencv(
    video_id: &str,
    path: &Path,
    params: &DecodeParams,
    observer: Option<&dyn FrameObserver>,
) -> Result<DecodedVideo, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read file: {e}"))?
        .len();
    if size == 0 {
        return Err("file is empty (0 bytes)".into());
    }
    let cv = |what: &str, e: CaptureError| format!("{what}: {e}");
    let mut capture = VideoCapture::open(path)
        .map_err(|e| cv("cannot open as a video", e))?
        .ok_or_else(|| {
            "cannot open as a video: no demuxer/decoder accepted it (corrupt, truncated or not a video)"
                .to_string()
        })?;
    let fps = capture.get(Property::Fps).unwrap_or(0.0);
    let declared = capture.get(Property::FrameCount).unwrap_or(0.0);
    let declared_frames = if declared.is_finite() && declared > 0.0 {
        declared as u64
    } else {
        0
    };
    let frame_period_ms = if fps > 0.0 { 1000.0 / fps } else { 0.0 };
    let mut sampler = FrameSampler::new(
        params.frames_per_video,
        params.start_s * 1000.0,
        params.interval_s * 1000.0,
        fps,
    );
    let mut frames = Vec::new();
    // Every kept frame's pixels, one after another: the batch's buffer (see `DecodedVideo`).
    let mut pixels = Vec::new();
    let mut decoded: u64 = 0;
    let mut last_pts_ms = f64::NEG_INFINITY;
    let (mut width, mut height) = (0u32, 0u32);
    let mut stream_error = None;
    let mut ended = false;
    while !sampler.is_done() {
        match capture.grab() {
            Ok(true) => {}
            Ok(false) => {
                ended = true;
                break;
            }
            // A decoder error mid-stream (a damaged file): keep what was read before it.
            Err(e) => {
                stream_error = Some(e.to_string());
                break;
            }
        }
        let index = decoded;
        decoded += 1;
        let reported = capture.get(Property::PosMsec).unwrap_or(f64::NAN);
        // Some containers report no timestamps (or stop advancing them): fall back to index / fps.
        let pts_ms = if reported.is_finite() && (index == 0 || reported > last_pts_ms) {
            reported
        } else {
            index as f64 * frame_period_ms
        };
        last_pts_ms = pts_ms;
        if !sampler.offer(pts_ms) {
            continue;
        }
        let Some(mat) = capture
            .retrieve()
            .map_err(|e| cv("cannot retrieve frame", e))?
        else {
            return Err(format!(
                "frame {index} was grabbed but could not be decoded"
            ));
        };
        if mat.typ != CV_8UC3 {
            return Err(format!(
                "frame {index} decoded to OpenCV type {}, not 8-bit BGR",
                mat.typ
            ));
        }
        width = mat.cols as u32;
        height = mat.rows as u32;
        if mat.step != mat.row_bytes {
            return Err(format!(
                "frame {index} has rows {} bytes apart, not {}",
                mat.step, mat.row_bytes
            ));
        }
        let frame = mat.data;
        if pixels.is_empty() {
            // Room for every frame asked for, as a hint: where that cannot be had at once
            // (a huge `frames_per_video`), the buffer grows as frames come instead.
            let _ = pixels.try_reserve_exact(frame.len() * params.frames_per_video as usize);
        }
        pixels.extend_from_slice(frame);
        frames.push(FrameRow {
            video_id: video_id.to_string(),
            sample_index: frames.len() as u32,
            frame_index: index,
            pts_ms,
            width,
            height,
            encoding: FrameEncoding::Raw,
            image: Default::default(),
        });
        if let (Some(observer), Some(row)) = (observer, frames.last()) {
            observer.frame(&row.with_image(frame));
        }
    }
    if frames.is_empty() {
        return Err(if decoded == 0 {
            "no frame could be decoded (corrupt, truncated or not a video)".into()
        } else {
            format!(
                "{decoded} frames decoded but none at or after the start time {} s",
                params.start_s
            )
        });
    }
    let note = stream_note(ended, stream_error, decoded, declared_frames);
    if let Some(note) = &note {
        tracing::warn!(video = video_id, "{}: {note}", path.display());
    }
    let summary = DecodedVideoRow {
        video_id: video_id.to_string(),
        frames_requested: params.frames_per_video,
        frames_kept: sampler.kept(),
        frames_decoded: decoded,
        declared_frames,
        fps: if fps.is_finite() { fps } else { 0.0 },
        last_pts_ms,
        width,
        height,
        note,
    };
    let frames = FrameRow::with_shared_images(&frames, pixels).map_err(|e| e.to_string())?;
    Ok(DecodedVideo { frames, summary })
}

/// Says what was odd about a stream that yielded frames: a decoder error, or an end well before the
/// length the container declares (a truncated download). Such a video keeps the frames it has.
fn stream_note(
    ended: bool,
    stream_error: Option<String>,
    decoded: u64,
    declared: u64,
) -> Option<String> {
    if let Some(error) = stream_error {
        return Some(format!(
            "decoder error after {decoded} frames ({error}); kept the frames before it"
        ));
    }
    // Containers round their frame counts; a few frames short is normal, 10% short is not.
    if ended && declared > 0 && decoded * 10 < declared * 9 {
        return Some(format!(
            "stream ended after {decoded} of {declared} declared frames: truncated or damaged file"
        ));
    }
    None
}
