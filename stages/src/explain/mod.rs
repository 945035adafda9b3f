//! Why a detector called a video what it called it: the frames that decided the verdict and,
//! for a CNN detector, the Grad-CAM saliency of each over its face crop. `dfd predict --explain`
//! and the report's error gallery both go through here, so they show the same thing.
//!
//! The gradients come from burn ([`dfd_models::gradcam`]), with the weights the `models` table
//! stores beside the ONNX export (its `weights` column): ONNX Runtime, which scores, has no
//! gradients.

mod overlay;

use dfd_models::gradcam::{grad_cam, GradCamError, SaliencyMap};
use dfd_models::trained::{load_trained_variant, StoredWeightsError};
use dfd_models::{default_device, Detector, DetectorInput, Form, ModelVariant, VariantVisitor};
use dfd_schemas::TrainedModelRow;
use ndarray::Array3;

use crate::model_inputs::{fill_face_batch, ssim_map_batch, ModelSample};

pub use dfd_models::gradcam::Evidence;
pub use overlay::{encode_png_rgb, heat_overlay, jpeg_thumbnail};

/// How many frames decide a verdict, by default: the three pushing hardest toward it.
pub const DECIDING_FRAMES: usize = 3;

/// Why no saliency could be computed.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(
        "saliency maps are not available for {model}: {architecture} has no convolutional \
         block for Grad-CAM"
    )]
    NotAvailable { model: String, architecture: String },
    #[error(
        "{model} was stored without its burn weights (trained by an older dfd): retrain it \
         with `dfd run` for saliency maps"
    )]
    NoWeights { model: String },
    #[error("{0}")]
    Variant(String),
    #[error(transparent)]
    Weights(#[from] StoredWeightsError),
    #[error("the inputs of {model} for {video}: {message}")]
    Input {
        model: String,
        video: String,
        message: String,
    },
    #[error("Grad-CAM of {model} on {video}: {source}")]
    GradCam {
        model: String,
        video: String,
        source: GradCamError,
    },
}

/// The indices into `scores` (P(FAKE) of a video's frames) of the `k` frames pushing hardest
/// toward the verdict: the highest scores for FAKE, the lowest for REAL; ties in frame order.
pub fn deciding_frames(scores: &[f64], fake: bool, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let by_score = scores[a].total_cmp(&scores[b]);
        (if fake { by_score.reverse() } else { by_score }).then(a.cmp(&b))
    });
    order.truncate(k);
    order
}

/// The frames of one video to explain, and which way.
pub struct FramesToExplain<'a> {
    pub video_id: &'a str,
    /// The frames' model inputs (decoded face crops, SSIM inputs for a multi-input model).
    pub samples: Vec<&'a ModelSample>,
    pub evidence: Evidence,
}

/// One frame's saliency.
pub struct Saliency {
    pub sample_index: u32,
    pub frame_index: u64,
    /// P(FAKE) by burn's forward pass (the ONNX export's, to float rounding).
    pub p_fake: f32,
    /// The face crop with the Grad-CAM map blended over it, RGB, H x W x 3.
    pub overlay: Array3<u8>,
}

/// Whether `model` can have saliency maps (a CNN face backbone), without loading it.
pub fn available(model: &TrainedModelRow) -> Result<(), ExplainError> {
    let variant = ModelVariant::parse(&model.model).map_err(ExplainError::Variant)?;
    if !variant.architecture.has_conv_block() {
        return Err(ExplainError::NotAvailable {
            model: model.model.clone(),
            architecture: variant.architecture.as_str().to_owned(),
        });
    }
    if model.weights.is_empty() {
        return Err(ExplainError::NoWeights {
            model: model.model.clone(),
        });
    }
    Ok(())
}

/// The saliency of every frame of `videos` for `model`, loaded once; one list per video, in
/// the order given.
pub fn saliency(
    model: &TrainedModelRow,
    videos: &[FramesToExplain],
) -> Result<Vec<Vec<Saliency>>, ExplainError> {
    available(model)?;
    let variant = ModelVariant::parse(&model.model).map_err(ExplainError::Variant)?;
    let run = Run {
        model: &model.model,
        videos,
    };
    load_trained_variant(variant, &model.weights, &default_device(), run)?
}

struct Run<'a> {
    model: &'a str,
    videos: &'a [FramesToExplain<'a>],
}

impl VariantVisitor for Run<'_> {
    type Output = Result<Vec<Vec<Saliency>>, ExplainError>;

    fn visit<D: Detector>(self, detector: D) -> Self::Output {
        self.videos
            .iter()
            .map(|video| {
                if video.samples.is_empty() {
                    return Ok(Vec::new());
                }
                let input_error = |message: String| ExplainError::Input {
                    model: self.model.to_owned(),
                    video: video.video_id.to_owned(),
                    message,
                };
                let input = detector_input(&video.samples, detector.form()).map_err(input_error)?;
                let maps = grad_cam(&detector, &input, video.evidence).map_err(|source| {
                    ExplainError::GradCam {
                        model: self.model.to_owned(),
                        video: video.video_id.to_owned(),
                        source,
                    }
                })?;
                video
                    .samples
                    .iter()
                    .zip(maps)
                    .map(|(sample, map)| {
                        let SaliencyMap { p_fake, values } = map;
                        Ok(Saliency {
                            sample_index: sample.sample_index,
                            frame_index: sample.frame_index,
                            p_fake,
                            overlay: heat_overlay(&sample.face, &values).map_err(input_error)?,
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

/// The samples as one batch of the inputs a detector of `form` takes.
fn detector_input(samples: &[&ModelSample], form: Form) -> Result<DetectorInput, String> {
    let mut face = Vec::new();
    let (n, _, _, _) = fill_face_batch(samples, &mut face)?;
    let (ssim_map, ssim_stats) = match form {
        Form::Single => (None, None),
        Form::Multi => {
            let maps = ssim_map_batch(samples)
                .ok_or("a frame has no SSIM map, which the multi-input model needs")?;
            let stats: Vec<f32> = samples
                .iter()
                .map(|s| s.ssim_stats.ok_or("a frame has no SSIM statistics"))
                .collect::<Result<Vec<[f32; 2]>, _>>()?
                .concat();
            (Some(maps.into_raw_vec_and_offset().0), Some(stats))
        }
    };
    DetectorInput::from_values(n, face, ssim_map, ssim_stats, &default_device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deciding_frames_are_the_most_extreme_toward_the_verdict() {
        let scores = [0.2, 0.9, 0.5, 0.9, 0.1];
        assert_eq!(deciding_frames(&scores, true, 3), [1, 3, 2]);
        assert_eq!(deciding_frames(&scores, false, 2), [4, 0]);
        assert_eq!(deciding_frames(&scores[..1], true, 3), [0]);
        assert!(deciding_frames(&[], false, 3).is_empty());
    }
}
