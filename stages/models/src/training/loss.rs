//! The losses of the reference study, on logits.
//!
//! **Focal loss.** The reference's `helper_func.focal_loss(alpha=0.25, gamma=2.0)` (and the
//! `tfa.losses.SigmoidFocalCrossEntropy` of its baseline) is the alpha-balanced binary focal loss
//! of Lin et al. (2017), with FAKE = 1 the positive class:
//!
//! ```text
//! FL(p, y) = -[ y · α · (1 - p)^γ · log p  +  (1 - y) · (1 - α) · p^γ · log(1 - p) ]
//! ```
//!
//! which is Keras's `BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25, gamma=2.0)`.
//! With α = 0.25 the positive (FAKE) class is *down*-weighted, as in the paper. The reference
//! clipped `p` to `[1e-7, 1 - 1e-7]` before the logarithms; here `log p = log_sigmoid(z)` and
//! `log(1 - p) = log_sigmoid(-z)` are computed from the logit `z`, which is exact where the
//! clipped form saturates (`|z| > 16`) and never gives `log 0`.
//!
//! **Binary cross-entropy** (the reference's loss for ViT): `-[y log p + (1 - y) log(1 - p)]`.
//!
//! **Reduction.** Per-sample losses are multiplied by the sample's class weight and averaged over
//! the batch (Keras's `sum_over_batch_size`). The reference's custom focal loss returned a batch
//! *mean*, to which Keras then applied the class weights, so its class weights only rescaled
//! each batch by the batch's mean weight; we weight each sample, which is what class weighting
//! is meant to do.

use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which loss to train with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LossKind {
    /// Alpha-balanced binary focal loss (the reference's default: gamma 2.0, alpha 0.25).
    Focal { gamma: f64, alpha: f64 },
    /// Binary cross-entropy (the reference's loss for ViT-B/16).
    Bce,
}

impl LossKind {
    /// The reference's focal loss, gamma 2.0 and alpha 0.25.
    pub const REFERENCE_FOCAL: LossKind = LossKind::Focal {
        gamma: 2.0,
        alpha: 0.25,
    };

    /// Per-sample losses `[N, 1]` of `logits` `[N, 1]` against `targets` `[N, 1]` (1 FAKE, 0 REAL),
    /// differentiable.
    pub fn per_sample(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<2> {
        let log_p = log_sigmoid(logits.clone());
        let log_not_p = log_sigmoid(logits.clone().neg());
        let not_targets = targets.clone().neg().add_scalar(1.0);
        match *self {
            LossKind::Bce => (targets * log_p + not_targets * log_not_p).neg(),
            LossKind::Focal { gamma, alpha } => {
                let p = sigmoid(logits);
                let not_p = p.clone().neg().add_scalar(1.0);
                let positive = targets * not_p.powf_scalar(gamma) * log_p * alpha;
                let negative = not_targets * p.powf_scalar(gamma) * log_not_p * (1.0 - alpha);
                (positive + negative).neg()
            }
        }
    }

    /// The weighted batch loss: `sum(weight_i * loss_i) / N`, a scalar tensor `[1]`.
    pub fn batch(&self, logits: Tensor<2>, targets: Tensor<2>, weights: Tensor<2>) -> Tensor<1> {
        (self.per_sample(logits, targets) * weights).mean()
    }

    /// The loss of one sample, in `f64` on the host (validation, and the reference values of the
    /// tests). `logit` is `z`, `target` 1 for FAKE and 0 for REAL.
    pub fn value(&self, logit: f64, target: f64) -> f64 {
        let log_p = log_sigmoid_f64(logit);
        let log_not_p = log_sigmoid_f64(-logit);
        match *self {
            LossKind::Bce => -(target * log_p + (1.0 - target) * log_not_p),
            LossKind::Focal { gamma, alpha } => {
                let p = log_p.exp();
                let not_p = log_not_p.exp();
                -(target * alpha * not_p.powf(gamma) * log_p
                    + (1.0 - target) * (1.0 - alpha) * p.powf(gamma) * log_not_p)
            }
        }
    }
}

/// `log(sigmoid(z))` without overflow: `min(z, 0) - ln(1 + e^-|z|)`.
pub(crate) fn log_sigmoid_f64(z: f64) -> f64 {
    z.min(0.0) - (-z.abs()).exp().ln_1p()
}

/// Keras's / scikit-learn's "balanced" class weights `n / (2 · n_c)` for `(REAL, FAKE)` counts;
/// a class absent from the training split gets weight 1 (it never occurs, so its weight is moot).
pub fn balanced_class_weights(real: usize, fake: usize) -> (f64, f64) {
    balanced_class_weights_f64(real as f64, fake as f64)
}

/// [`balanced_class_weights`] of expected (fractional) counts, as an epoch with self-blended
/// samples holds.
pub fn balanced_class_weights_f64(real: f64, fake: f64) -> (f64, f64) {
    let n = real + fake;
    let weight = |count: f64| {
        if count <= 0.0 {
            1.0
        } else {
            n / (2.0 * count)
        }
    };
    (weight(real), weight(fake))
}
