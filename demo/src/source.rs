//! Reading the registry clips: probing them, and handing out the frames a window needs.
//!
//! Frames are read sequentially from the clip's start, never by seeking: OpenCV's frame seek lands
//! on a keyframe and may miss the requested frame by one for some streams, and a face track keyed by
//! frame index would then be off by a frame. Decoding what the demo skips costs little (all of
//! franck.mp4, 200 s at 360x288, decodes in about a CPU second).

use std::path::{Path, PathBuf};

use dfd_capture::{Property, VideoCapture};
use opencv::core::{Mat, Scalar};
use opencv::prelude::*;

use crate::error::{captured, cv, DemoError, Result};
use crate::people::PEOPLE;
use crate::plan::ClipInfo;

/// Probes every clip of [`PEOPLE`] under `media`.
pub fn probe_all(media: &Path) -> Result<Vec<ClipInfo>> {
    let mut clips = Vec::new();
    for (person, p) in PEOPLE.iter().enumerate() {
        for file in p.clips {
            clips.push(probe(&media.join(file), file, person)?);
        }
    }
    Ok(clips)
}

fn probe(path: &Path, file: &'static str, person: usize) -> Result<ClipInfo> {
    let capture = open(path)?;
    let get = |prop| capture.get(prop).unwrap_or(0.0);
    let fps = get(Property::Fps);
    let fps = if fps.is_finite() && fps > 1.0 {
        fps
    } else {
        25.0
    };
    let (frames, width, height) = (
        get(Property::FrameCount),
        get(Property::FrameWidth),
        get(Property::FrameHeight),
    );
    let sane = |v: f64, min: f64| v.is_finite() && v >= min;
    if !(sane(frames, 2.0) && sane(width, 16.0) && sane(height, 16.0)) {
        return Err(DemoError::Media {
            path: path.to_path_buf(),
            message: "reports no frames or no size".into(),
        });
    }
    Ok(ClipInfo {
        file,
        person,
        fps,
        frames: frames as usize,
        width: width as i32,
        height: height as i32,
    })
}

/// Opens a clip with OpenCV's FFmpeg backend.
pub fn open(path: &Path) -> Result<VideoCapture> {
    VideoCapture::open(path)
        .map_err(captured(format!("opening {}", path.display())))?
        .ok_or_else(|| DemoError::Media {
            path: path.to_path_buf(),
            message: "cannot be opened as a video".into(),
        })
}

/// A clip read front to back, yielding only the frames asked for (in increasing order).
pub struct SequentialReader {
    path: PathBuf,
    capture: VideoCapture,
    /// Index of the next frame `grab` would return.
    next: usize,
}

impl SequentialReader {
    pub fn open(path: &Path) -> Result<SequentialReader> {
        Ok(SequentialReader {
            path: path.to_path_buf(),
            capture: open(path)?,
            next: 0,
        })
    }

    /// Frame `index` (BGR); `None` when the stream ends before it. Indices must not decrease
    /// between calls (the same index twice is an error too: the frame was handed out already).
    pub fn frame(&mut self, index: usize) -> Result<Option<Mat>> {
        if index < self.next {
            return Err(DemoError::Invalid(format!(
                "{}: frame {index} asked after frame {}",
                self.path.display(),
                self.next - 1
            )));
        }
        while self.next < index {
            if !self.capture.grab().map_err(captured("grab"))? {
                return Ok(None);
            }
            self.next += 1;
        }
        let grabbed = self.capture.grab().map_err(captured("grab"))?;
        self.next += 1;
        if !grabbed {
            return Ok(None);
        }
        let Some(frame) = self.capture.retrieve().map_err(captured("retrieve"))? else {
            return Ok(None);
        };
        // A copy the caller owns: the reader's frame is overwritten by the next one.
        let mut owned =
            Mat::new_rows_cols_with_default(frame.rows, frame.cols, frame.typ, Scalar::all(0.0))
                .map_err(cv("allocating a frame"))?;
        let out = owned.data_bytes_mut().map_err(cv("writing a frame"))?;
        for (row, target) in out.chunks_exact_mut(frame.row_bytes).enumerate() {
            target.copy_from_slice(&frame.data[row * frame.step..][..frame.row_bytes]);
        }
        Ok(Some(owned))
    }
}
