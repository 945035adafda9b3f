//! The `detect` stage: every face MTCNN finds in every sampled frame, into `detections`.

use std::path::PathBuf;
use std::sync::Mutex;

use dfd_schemas::{DetectionRow, FrameRef, FrameRow, TableRow};
use sha2::{Digest, Sha256};

use super::{Face, Mtcnn, MtcnnParams};
use crate::image_io::{bgr_to_rgb_array, frame_bgr};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "detect";

/// The MTCNN weight files, in the order of the cascade.
pub const MODEL_FILES: [&str; 3] = ["pnet.onnx", "rnet.onnx", "onet.onnx"];

pub struct Detect {
    /// As configured: `intra_op_threads` 0 is resolved per call (see [`threads_per_detector`]).
    params: MtcnnParams,
    models: PathBuf,
    /// Loaded detectors, one per worker thread at most, all of the thread count of the latest call;
    /// ONNX sessions cost tens of milliseconds to build, so they are reused across videos and
    /// shards.
    pool: Mutex<Vec<Mtcnn>>,
}

/// Threads one detector gets when `videos` videos share `workers` worker threads: the configured
/// `intra_op_threads` when set, else the workers divided among the videos (at least one each). The
/// stage runs one detector per video in parallel, so a shard of one video gets every worker and a
/// shard of as many videos as workers or more one thread per detector: no core idles while
/// another has two threads, and none is oversubscribed.
pub fn threads_per_detector(configured: usize, workers: usize, videos: usize) -> usize {
    match configured {
        0 => (workers / videos.max(1)).max(1),
        n => n,
    }
}

impl Detect {
    /// `models` is the folder holding pnet.onnx, rnet.onnx and onet.onnx. `intra_op_threads` 0 lets
    /// each call of the stage share the worker threads among its videos (see
    /// [`threads_per_detector`]); the count never changes detections.
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

    fn video(&self, frames: &[FrameRef], threads: usize) -> Result<Vec<DetectionRow>, String> {
        self.with_detector(threads, |detector| {
            let mut rows = Vec::new();
            for frame in frames {
                let rgb = frame_bgr(frame)
                    .and_then(|bgr| bgr_to_rgb_array(&bgr))
                    .map_err(|e| format!("frame {}: {e}", frame.sample_index))?;
                let mut faces = detector
                    .detect(rgb.view())
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
        })
    }
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
        let threads = threads_per_detector(
            self.params.intra_op_threads,
            rayon::current_num_threads(),
            by_video.len(),
        );
        tracing::debug!(
            "detect: {} video(s) in this call, {threads} thread(s) per detector",
            by_video.len()
        );
        // Detectors of another thread count (an earlier shard of another size) would only hold
        // memory now.
        if let Ok(mut pool) = self.pool.lock() {
            pool.retain(|d| d.params().intra_op_threads == threads);
        }
        // A detector that cannot be built (no ONNX Runtime, no weights) fails the stage, not each
        // video: it is the installation that is broken, not the data.
        let detector = self
            .take_detector(threads)
            .map_err(|message| StageError::Input {
                path: self.models.display().to_string(),
                message,
            })?;
        self.give_back(detector);
        let items = by_video.into_iter().collect();
        let (found, errors) = per_video(NAME, items, ctx, |_, frames: Vec<FrameRef>| {
            self.video(&frames, threads)
        });
        let detections: Vec<DetectionRow> = found.into_iter().flatten().collect();
        Ok(StageOutput::default()
            .with_rows(&detections)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod tests {
    use super::threads_per_detector;

    #[test]
    fn workers_are_shared_among_the_videos_of_a_call() {
        // 2 cores: one video gets both, two or more one each.
        assert_eq!(threads_per_detector(0, 2, 1), 2);
        assert_eq!(threads_per_detector(0, 2, 2), 1);
        assert_eq!(threads_per_detector(0, 2, 8), 1);
        // 16 cores: never more threads in all than workers.
        assert_eq!(threads_per_detector(0, 16, 3), 5);
        assert_eq!(threads_per_detector(0, 16, 0), 16);
        assert_eq!(threads_per_detector(0, 1, 1), 1);
        // An explicit count wins.
        assert_eq!(threads_per_detector(3, 2, 8), 3);
        assert_eq!(threads_per_detector(1, 16, 1), 1);
    }
}
