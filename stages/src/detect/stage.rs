//! The `detect` stage: every face MTCNN finds in every sampled frame, into `detections`.

use std::path::PathBuf;
use std::sync::Mutex;

use dfd_schemas::{DetectionRow, FrameRef, FrameRow, TableRow};
use ndarray::ArrayView3;
use opencv::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{Face, Mtcnn, MtcnnParams};
use crate::image_io::{bgr_to_rgb_into, frame_bgr};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "detect";

/// The MTCNN weight files, in the order of the cascade.
pub const MODEL_FILES: [&str; 3] = ["pnet.onnx", "rnet.onnx", "onet.onnx"];

pub struct Detect {
    /// As configured: `intra_op_threads` 0 is resolved per call (see [`detector_split`]).
    params: MtcnnParams,
    models: PathBuf,
    /// Loaded detectors, one per worker thread at most, all of the thread count of the latest call;
    /// ONNX sessions cost tens of milliseconds to build, so they are reused across videos and
    /// shards.
    pool: Mutex<Vec<Mtcnn>>,
}

/// How a call of the stage spreads its videos over the worker threads: `detectors` detectors per
/// video, each of `threads` ONNX Runtime threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorSplit {
    pub detectors: usize,
    pub threads: usize,
}

/// The split when `videos` videos share `workers` worker threads. With `intra_op_threads` set, one
/// detector of that many threads per video. Else (0) every detector gets one thread and a video
/// gets the workers divided among the videos (at least one): a shard of one video runs its frames
/// on every core, a shard of as many videos as workers or more one detector per video. Whole frames
/// on single-threaded detectors beat one detector splitting each frame's work (measured on 2 cores:
/// 18 ms a 640x360 frame against 21.5 ms), and no core idles or is oversubscribed.
pub fn detector_split(configured: usize, workers: usize, videos: usize) -> DetectorSplit {
    match configured {
        0 => DetectorSplit {
            detectors: (workers / videos.max(1)).max(1),
            threads: 1,
        },
        n => DetectorSplit {
            detectors: 1,
            threads: n,
        },
    }
}

impl Detect {
    /// `models` is the folder holding pnet.onnx, rnet.onnx and onet.onnx. `intra_op_threads` 0 lets
    /// each call of the stage share the worker threads among its videos (see
    /// [`detector_split`]); the split never changes detections.
    pub fn new(params: MtcnnParams, models: PathBuf) -> Self {
        Detect {
            params,
            models,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// A detector of `threads` threads from the pool, or a newly loaded one.
    fn take_detector(&self, threads: usize) -> Result<Mtcnn, String> {
        let pooled = self.pool.lock().ok().and_then(|mut pool| {
            let i = pool
                .iter()
                .position(|d| d.params().intra_op_threads == threads)?;
            Some(pool.swap_remove(i))
        });
        match pooled {
            Some(detector) => Ok(detector),
            None => {
                let params = MtcnnParams {
                    intra_op_threads: threads,
                    ..self.params.clone()
                };
                Mtcnn::load(&self.models, &params).map_err(|e| e.to_string())
            }
        }
    }

    fn give_back(&self, detector: Mtcnn) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(detector);
        }
    }

    fn with_detector<T>(
        &self,
        threads: usize,
        work: impl FnOnce(&mut Mtcnn) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut detector = self.take_detector(threads)?;
        let result = work(&mut detector);
        self.give_back(detector);
        result
    }

    /// The detections of one video's frames, in frame order; its frames in `split.detectors`
    /// contiguous runs side by side (frames are independent, so the rows are the same).
    fn video(
        &self,
        frames: &[FrameRef],
        split: DetectorSplit,
    ) -> Result<Vec<DetectionRow>, String> {
        let runs = split.detectors.clamp(1, frames.len().max(1));
        let run_length = frames.len().div_ceil(runs).max(1);
        let found: Vec<Result<Vec<DetectionRow>, String>> = frames
            .par_chunks(run_length)
            .map(|run| self.with_detector(split.threads, |detector| detect_frames(detector, run)))
            .collect();
        let mut rows = Vec::new();
        for run in found {
            rows.extend(run?);
        }
        Ok(rows)
    }
}

/// Every face of every frame of `frames`, by frame and then confidence.
fn detect_frames(detector: &mut Mtcnn, frames: &[FrameRef]) -> Result<Vec<DetectionRow>, String> {
    let mut rows = Vec::new();
    // Every frame is converted to RGB into this one buffer: a fresh 6 MB a 1080p frame cost more
    // in page faults than the conversion.
    let mut rgb = Vec::new();
    for frame in frames {
        let mut faces = frame_bgr(frame)
            .and_then(|bgr| {
                bgr_to_rgb_into(&bgr, &mut rgb)?;
                let shape = (bgr.rows() as usize, bgr.cols() as usize, 3);
                let view = ArrayView3::from_shape(shape, &rgb)
                    .map_err(|e| format!("unexpected image layout: {e}"))?;
                detector.detect(view).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("frame {}: {e}", frame.sample_index))?;
        faces.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        rows.extend(
            faces
                .iter()
                .enumerate()
                .map(|(i, face)| detection_row(frame, i as u32, face)),
        );
    }
    Ok(rows)
}

fn detection_row(frame: &FrameRef, face_index: u32, face: &Face) -> DetectionRow {
    let [le, re, nose, ml, mr] = face.landmarks;
    DetectionRow {
        video_id: frame.video_id.to_string(),
        sample_index: frame.sample_index,
        frame_index: frame.frame_index,
        face_index,
        x: face.x,
        y: face.y,
        width: face.width,
        height: face.height,
        confidence: face.confidence,
        left_eye_x: le[0],
        left_eye_y: le[1],
        right_eye_x: re[0],
        right_eye_y: re[1],
        nose_x: nose[0],
        nose_y: nose[1],
        mouth_left_x: ml[0],
        mouth_left_y: ml[1],
        mouth_right_x: mr[0],
        mouth_right_y: mr[1],
    }
}

impl Stage for Detect {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            version: 1,
            inputs: &[InputDef::of::<FrameRow>(crate::decode::NAME)],
            outputs: &[
                dfd_schemas::DetectionRow::TABLE,
                dfd_schemas::ErrorRow::TABLE,
            ],
            sharding: Sharding::PerVideo,
            streams: true,
        };
        &SPEC
    }

    /// Every parameter but the thread count, which changes speed, not detections.
    fn params(&self) -> Result<serde_json::Value, StageError> {
        crate::key_params(NAME, &self.params, &["intra_op_threads"])
    }

    /// The weights' bytes: other weights, other detections.
    fn external_state(&self) -> Result<Option<String>, StageError> {
        let mut hasher = Sha256::new();
        for name in MODEL_FILES {
            let path = self.models.join(name);
            let bytes = std::fs::read(&path).map_err(|e| StageError::Input {
                path: path.display().to_string(),
                message: format!("cannot read MTCNN weights ({e}); run scripts/setup.sh"),
            })?;
            hasher.update(&bytes);
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        // Every video of the shard, so that one whose frames all failed to decode still counts.
        // Frames are looked at in place (a raw 1080p frame is 6 MB; see `FrameRef`).
        let mut by_video: std::collections::BTreeMap<String, Vec<FrameRef>> = input
            .video_ids()
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        for batch in input.table(&FrameRow::TABLE)? {
            for frame in FrameRow::refs(batch)? {
                by_video
                    .entry(frame.video_id.to_string())
                    .or_default()
                    .push(frame);
            }
        }
        // The videos run in parallel on rayon's workers (`runner.threads`), one detector each.
        let split = detector_split(
            self.params.intra_op_threads,
            rayon::current_num_threads(),
            by_video.len(),
        );
        tracing::debug!(
            "detect: {} video(s) in this call, {} detector(s) of {} thread(s) each",
            by_video.len(),
            split.detectors,
            split.threads
        );
        // Detectors of another thread count (an earlier shard of another size) would only hold
        // memory now.
        if let Ok(mut pool) = self.pool.lock() {
            pool.retain(|d| d.params().intra_op_threads == split.threads);
        }
        // A detector that cannot be built (no ONNX Runtime, no weights) fails the stage, not each
        // video: it is the installation that is broken, not the data.
        let detector = self
            .take_detector(split.threads)
            .map_err(|message| StageError::Input {
                path: self.models.display().to_string(),
                message,
            })?;
        self.give_back(detector);
        let items = by_video.into_iter().collect();
        let (found, errors) = per_video(NAME, items, ctx, |_, frames: Vec<FrameRef>| {
            self.video(&frames, split)
        });
        let detections: Vec<DetectionRow> = found.into_iter().flatten().collect();
        Ok(StageOutput::default()
            .with_rows(&detections)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod tests {
    use super::{detector_split, DetectorSplit};

    fn split(detectors: usize, threads: usize) -> DetectorSplit {
        DetectorSplit { detectors, threads }
    }

    #[test]
    fn workers_are_shared_among_the_videos_of_a_call() {
        // 2 cores: one video runs two single-threaded detectors, two or more one each.
        assert_eq!(detector_split(0, 2, 1), split(2, 1));
        assert_eq!(detector_split(0, 2, 2), split(1, 1));
        assert_eq!(detector_split(0, 2, 8), split(1, 1));
        // 16 cores: never more detectors in all than workers.
        assert_eq!(detector_split(0, 16, 3), split(5, 1));
        assert_eq!(detector_split(0, 16, 0), split(16, 1));
        assert_eq!(detector_split(0, 1, 1), split(1, 1));
        // An explicit thread count: one detector of that many threads per video.
        assert_eq!(detector_split(3, 2, 8), split(1, 3));
        assert_eq!(detector_split(1, 16, 1), split(1, 1));
    }
}
