//! The `detect` stage: every face MTCNN finds in every sampled frame, into `detections`.

use std::path::PathBuf;
use std::sync::Mutex;

use dfd_schemas::{DetectionRow, FrameRow, TableRow};
use sha2::{Digest, Sha256};

use super::{Face, Mtcnn, MtcnnParams};
use crate::image_io::{bgr_to_rgb_array, decode_bgr};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "detect";

/// The MTCNN weight files, in the order of the cascade.
pub const MODEL_FILES: [&str; 3] = ["pnet.onnx", "rnet.onnx", "onet.onnx"];

pub struct Detect {
    params: MtcnnParams,
    models: PathBuf,
    /// Loaded detectors, one per worker thread at most; ONNX sessions cost tens of milliseconds to
    /// build, so they are reused across videos and shards.
    pool: Mutex<Vec<Mtcnn>>,
}

impl Detect {
    /// `models` is the folder holding pnet.onnx, rnet.onnx and onet.onnx. The stage runs one detector
    /// per worker thread (videos in parallel), so "let ONNX Runtime choose" (0 threads) means one
    /// thread per detector here; more would oversubscribe the cores.
    pub fn new(mut params: MtcnnParams, models: PathBuf) -> Self {
        if params.intra_op_threads == 0 {
            params.intra_op_threads = 1;
        }
        Detect {
            params,
            models,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// A detector from the pool, or a newly loaded one.
    fn take_detector(&self) -> Result<Mtcnn, String> {
        match self.pool.lock().ok().and_then(|mut pool| pool.pop()) {
            Some(detector) => Ok(detector),
            None => Mtcnn::load(&self.models, &self.params).map_err(|e| e.to_string()),
        }
    }

    fn give_back(&self, detector: Mtcnn) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(detector);
        }
    }

    fn with_detector<T>(
        &self,
        work: impl FnOnce(&mut Mtcnn) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut detector = self.take_detector()?;
        let result = work(&mut detector);
        self.give_back(detector);
        result
    }

    fn video(&self, frames: &[FrameRow]) -> Result<Vec<DetectionRow>, String> {
        self.with_detector(|detector| {
            let mut rows = Vec::new();
            for frame in frames {
                let rgb = decode_bgr(&frame.image)
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

fn detection_row(frame: &FrameRow, face_index: u32, face: &Face) -> DetectionRow {
    let [le, re, nose, ml, mr] = face.landmarks;
    DetectionRow {
        video_id: frame.video_id.clone(),
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
        // A detector that cannot be built (no ONNX Runtime, no weights) fails the stage, not each
        // video: it is the installation that is broken, not the data.
        let detector = self.take_detector().map_err(|message| StageError::Input {
            path: self.models.display().to_string(),
            message,
        })?;
        self.give_back(detector);
        // Every video of the shard, so that one whose frames all failed to decode still counts.
        let mut by_video: std::collections::BTreeMap<String, Vec<FrameRow>> = input
            .video_ids()
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        for frame in input.rows::<FrameRow>()? {
            by_video
                .entry(frame.video_id.clone())
                .or_default()
                .push(frame);
        }
        let items = by_video.into_iter().collect();
        let (found, errors) = per_video(NAME, items, ctx, |_, frames: Vec<FrameRow>| {
            self.video(&frames)
        });
        let detections: Vec<DetectionRow> = found.into_iter().flatten().collect();
        Ok(StageOutput::default()
            .with_rows(&detections)?
            .with_rows(&errors)?)
    }
}
