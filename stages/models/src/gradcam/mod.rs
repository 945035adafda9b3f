//! Grad-CAM (Selvaraju et al., 2017): which part of the face made a CNN detector's score.
//!
//! ONNX Runtime, which scores, gives no gradients, so the saliency is computed here in burn from
//! the trained weights (the `weights` column of the `models` table, see [`crate::trained`]).
//! For a batch of faces:
//!
//! 1. the forward pass runs as usual up to the face backbone's last convolutional block, whose
//!    activations `A` `[N, C, h, w]` are taken there ([`crate::Backbone::features_tapped`]) and
//!    made a leaf of an autodiff graph: the layers before need no gradient, so they run without
//!    autodiff's bookkeeping and only the pooling and head after the block are recorded;
//! 2. the gradient of the logit of P(FAKE) (or of its negation, for the evidence toward REAL)
//!    with respect to `A`, per face (the faces of a batch do not interact in inference mode, so
//!    the gradient of the batch's sum is each face's own);
//! 3. channel weights `w_c` = the spatial mean of the gradient of channel `c`; the map is
//!    `ReLU(sum_c w_c A_c)`, upsampled bilinearly to 224 x 224 and divided by its maximum, so
//!    it lies in `[0, 1]` (all zeros when nothing in the face pushed that way).
//!
//! A detector without convolutional block (ViT-B/16) has no such map:
//! [`GradCamError::NotAvailable`].

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;

use crate::detector::{Detector, DetectorInput};
use crate::FACE_SIZE;

#[cfg(test)]
mod tests;

/// Which way the saliency explains the score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// What raised P(FAKE): the gradient of the logit.
    Fake,
    /// What lowered it: the gradient of the negated logit.
    Real,
}

/// One face's Grad-CAM.
#[derive(Clone, Debug, PartialEq)]
pub struct SaliencyMap {
    /// P(FAKE) of the face, from the same forward pass (the sigmoid of the logit).
    pub p_fake: f32,
    /// 224 x 224 values in `[0, 1]`, row-major (row 0 is the top of the face crop).
    pub values: Vec<f32>,
}

/// Why no map could be computed.
#[derive(Debug, thiserror::Error)]
pub enum GradCamError {
    #[error(
        "Grad-CAM is not available for this detector: its face backbone has no convolutional block"
    )]
    NotAvailable,
    #[error("the last convolutional block received no gradient from the logit")]
    NoGradient,
    #[error("reading the Grad-CAM map from the backend: {0}")]
    Tensor(String),
}

/// The Grad-CAM map of every face of `input` for `model` (in inference mode: BatchNorm's running
/// statistics, no dropout), toward `evidence`.
pub fn grad_cam<D: Detector>(
    model: &D,
    input: &DetectorInput,
    evidence: Evidence,
) -> Result<Vec<SaliencyMap>, GradCamError> {
    let model = model.valid();
    let mut leaf: Option<Tensor<4>> = None;
    let logits = {
        let mut tap = |activations: Tensor<4>| {
            let tracked = activations.without_autodiff().autodiff().require_grad();
            leaf = Some(tracked.clone());
            tracked
        };
        model.forward_logits_tapped(input, &mut tap)
    }
    .ok_or(GradCamError::NotAvailable)?;
    let activations = leaf.ok_or(GradCamError::NotAvailable)?;
    let target = match evidence {
        Evidence::Fake => logits.clone().sum(),
        Evidence::Real => logits.clone().neg().sum(),
    };
    let gradients = target.backward();
    let gradient = activations
        .grad(&gradients)
        .ok_or(GradCamError::NoGradient)?;
    let activations = activations.without_autodiff();
    let [n, c, h, w] = activations.dims();
    let weights = gradient
        .reshape([n, c, h * w])
        .mean_dim(2)
        .reshape([n, c, 1, 1]);
    let cam = (activations * weights).sum_dim(1).clamp_min(0.0);
    let cam = interpolate(
        cam,
        InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([FACE_SIZE, FACE_SIZE]),
    );
    let values = read_f32(cam.reshape([n, FACE_SIZE * FACE_SIZE]))?;
    let p_fake = read_f32(burn::tensor::activation::sigmoid(logits.without_autodiff()))?;
    Ok(values
        .chunks(FACE_SIZE * FACE_SIZE)
        .zip(p_fake)
        .map(|(map, p_fake)| SaliencyMap {
            p_fake,
            values: normalised(map),
        })
        .collect())
}

/// `map` divided by its maximum; all zeros when the maximum is not positive (nothing pushed the
/// score that way) or not finite.
fn normalised(map: &[f32]) -> Vec<f32> {
    let max = map.iter().copied().fold(0.0f32, f32::max);
    if max > 0.0 && max.is_finite() {
        map.iter().map(|v| (v / max).clamp(0.0, 1.0)).collect()
    } else {
        vec![0.0; map.len()]
    }
}

fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, GradCamError> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| GradCamError::Tensor(format!("{e:?}")))
}
