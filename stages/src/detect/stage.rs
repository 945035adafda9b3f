//! The `detect` stage: every face MTCNN finds in every sampled frame, into `detections`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dfd_schemas::{DetectionRow, FrameRef, FrameRow, TableRow};
use ndarray::ArrayView3;
use opencv::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::early::{EarlyDetections, Head};
use super::workers::DetectionThreads;
use super::{Face, Mtcnn, MtcnnParams};
use crate::image_io::{bgr_to_rgb_into, frame_bgr};
use crate::{
    per_video, FrameObserver, InputDef, Sharding, Stage, StageContext, StageError, StageInput,
    StageOutput, StageSpec,
};

pub const NAME: &str = "detect";

/// The MTCNN weight files, in the order of the cascade.
pub const MODEL_FILES: [&str; 3] = ["pnet.onnx", "rnet.onnx", "onet.onnx"];

pub struct Detect {
    detectors: Arc<Detectors>,
    /// Detections started on frames while `decode` was still reading their video.
    early: EarlyDetections,
}

/// The detectors of the stage, shared with the detections started early.
pub(super) struct Detectors {
    /// As configured: `intra_op_threads` 0 is resolved per call (see [`detector_split`]).
    params: MtcnnParams,
    models: PathBuf,
    /// Loaded detectors, about one per worker thread, all of the thread count of the latest call;
    /// ONNX sessions cost tens of milliseconds to build, so they are reused across videos and
    /// shards.
    pool: Mutex<Vec<Mtcnn>>,
    /// The threads detection runs on (see [`Detect::with_nice`]).
    pub(super) threads: DetectionThreads,
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
        Self::with_threads(params, models, DetectionThreads::new(0))
    }

    /// Detects on threads of its own at `nice` more niceness than the process (0-19; 0, as with
    /// [`Detect::new`]: on the runner's workers). Decoding, which a streamed pass waits on, then
    /// gets the cores first and detection fills the time it leaves (see `workers.rs`); on a machine
    /// shared with other work, detection also yields to it. Speed only: the detections are the
    /// same.
    pub fn with_nice(self, nice: u8) -> Self {
        let Detectors { params, models, .. } = &*self.detectors;
        Self::with_threads(params.clone(), models.clone(), DetectionThreads::new(nice))
    }

    fn with_threads(params: MtcnnParams, models: PathBuf, threads: DetectionThreads) -> Self {
        let detectors = Arc::new(Detectors {
            params,
            models,
            pool: Mutex::new(Vec::new()),
            threads,
        });
        Detect {
            early: EarlyDetections::new(detectors.clone()),
            detectors,
        }
    }

    /// Frames whose detections were started while `decode` read them and taken by `run`, since
    /// the stage was made (how much the head start did; see [`crate::FrameObserver`]).
    pub fn frames_detected_early(&self) -> usize {
        self.early.taken()
    }

    /// The detections of one video's frames, in frame order and then by confidence.
    fn video(
        &self,
        frames: &[FrameRef],
        split: DetectorSplit,
    ) -> Result<Vec<DetectionRow>, String> {
        let mut rows = Vec::new();
        for (frame, mut faces) in frames.iter().zip(self.faces(frames, split)?) {
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

    /// The faces of each of `frames`. Frames whose detection started early are taken from there;
    /// the others go in `split.detectors` contiguous runs side by side (frames are independent,
    /// so the faces are the same whoever detects them).
    fn faces(&self, frames: &[FrameRef], split: DetectorSplit) -> Result<Vec<Vec<Face>>, String> {
        let heads: Vec<Head> = frames.iter().map(|f| self.early.claim(f)).collect();
        let todo: Vec<usize> = (0..frames.len())
            .filter(|&i| matches!(heads[i], Head::None))
            .collect();
        let runs = split.detectors.clamp(1, todo.len().max(1));
        let run_length = todo.len().div_ceil(runs).max(1);
        let computed: Vec<Result<Vec<Vec<Face>>, String>> = todo
            .par_chunks(run_length)
            .map(|run| {
                self.detectors.with_detector(split.threads, |detector| {
                    let mut rgb = Vec::new();
                    run.iter()
                        .map(|&i| detect_frame(detector, &frames[i], &mut rgb))
                        .collect()
                })
            })
            .collect();
        let mut found: Vec<Option<Vec<Face>>> = vec![None; frames.len()];
        for (run, result) in todo.chunks(run_length).zip(computed) {
            for (&i, faces) in run.iter().zip(result?) {
                found[i] = Some(faces);
            }
        }
        for (i, head) in heads.into_iter().enumerate() {
            let frame = &frames[i];
            let early = match head {
                Head::None => continue,
                Head::Done(result) => Some(result),
                Head::Running(ticket) => self.early.wait(ticket),
            };
            let faces = match early {
                Some(result) => result.map_err(|e| format!("frame {}: {e}", frame.sample_index))?,
                // Discarded meanwhile: detected here after all.
                None => self
                    .detectors
                    .with_detector(split.threads, |d| detect_frame(d, frame, &mut Vec::new()))?,
            };
            found[i] = Some(faces);
        }
        // Every frame was either in `todo` or had a head, so none is left `None`.
        Ok(found.into_iter().map(Option::unwrap_or_default).collect())
    }
}

impl Detectors {
    /// The thread count of a detector started early: as configured, else one (it runs on an idle
    /// worker beside the decoding).
    pub(super) fn early_threads(&self) -> usize {
        self.params.intra_op_threads.max(1)
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

    pub(super) fn with_detector<T>(
        &self,
        threads: usize,
        work: impl FnOnce(&mut Mtcnn) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut detector = self.take_detector(threads)?;
        let result = work(&mut detector);
        self.give_back(detector);
        result
    }
}

/// The faces of one frame (in the detector's order), converted to RGB in `rgb`: a run of frames
/// reuses one buffer (a fresh 6 MB a 1080p frame cost more in page faults than the conversion).
/// The error names the frame.
fn detect_frame(
    detector: &mut Mtcnn,
    frame: &FrameRef,
    rgb: &mut Vec<u8>,
) -> Result<Vec<Face>, String> {
    frame_bgr(frame)
        .and_then(|bgr| {
            bgr_to_rgb_into(&bgr, rgb)?;
            detect_rgb(detector, rgb, bgr.rows() as usize, bgr.cols() as usize)
        })
        .map_err(|e| format!("frame {}: {e}", frame.sample_index))
}

/// The faces of an RGB frame of `height` x `width`, in the detector's order.
pub(super) fn detect_rgb(
    detector: &mut Mtcnn,
    rgb: &[u8],
    height: usize,
    width: usize,
) -> Result<Vec<Face>, String> {
    let view = ArrayView3::from_shape((height, width, 3), rgb)
        .map_err(|e| format!("unexpected image layout: {e}"))?;
    detector.detect(view).map_err(|e| e.to_string())
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

    /// Frames offered while `decode` reads them start their detection on an idle worker.
    fn frame_observer(&self) -> Option<&dyn FrameObserver> {
        Some(&self.early)
    }

    /// Every parameter but the thread count, which changes speed, not detections.
    fn params(&self) -> Result<serde_json::Value, StageError> {
        crate::key_params(NAME, &self.detectors.params, &["intra_op_threads"])
    }

    /// The weights' bytes: other weights, other detections.
    fn external_state(&self) -> Result<Option<String>, StageError> {
        let mut hasher = Sha256::new();
        for name in MODEL_FILES {
            let path = self.detectors.models.join(name);
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
            self.detectors.params.intra_op_threads,
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
        if let Ok(mut pool) = self.detectors.pool.lock() {
            pool.retain(|d| d.params().intra_op_threads == split.threads);
        }
        // A detector that cannot be built (no ONNX Runtime, no weights) fails the stage, not each
        // video: it is the installation that is broken, not the data.
        let detector = self
            .detectors
            .take_detector(split.threads)
            .map_err(|message| StageError::Input {
                path: self.detectors.models.display().to_string(),
                message,
            })?;
        self.detectors.give_back(detector);
        let items = by_video.into_iter().collect();
        let (found, errors) = self.detectors.threads.install(|| {
            per_video(NAME, items, ctx, |_, frames: Vec<FrameRef>| {
                self.video(&frames, split)
            })
        });
        // Whatever is left was offered for videos that did not reach this call (they failed to
        // decode): nothing will ask for it.
        self.early.clear();
        tracing::debug!(
            "detect: {} frame(s) detected early so far",
            self.early.taken()
        );
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
