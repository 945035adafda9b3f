//! The small CNNs' backbones and the SSIM-map branches, exported to ONNX, give on ONNX Runtime the
//! features their burn forward gives, and BatchNorm is folded into a convolution only where that
//! is exact. (Every detector's P(FAKE) parity is in `every_architecture.rs`.)
//!
//! The models are not left at their initial state, where BatchNorm's running statistics are
//! (0, 1) and biases are 0 and an export that mixed them up could still pass: every bias, gamma
//! and beta is perturbed, the running statistics are set to spread-out values, and one forward
//! pass in training mode (autodiff device: batch statistics, active dropout) then moves the
//! running statistics as training does. The model compared is `valid()` of that one: inference
//! mode, where burn 0.22.1 normalises with running statistics and skips dropout (both layers
//! check `device.is_autodiff()` and their training flag).
//!
//! The sigmoid squashes differences, and random images give logits close to each other, so the
//! backbones are also compared before the head: their feature vectors (hundreds of values per
//! face, unsquashed) must agree to 1e-4 relative to their largest magnitude.

use crate::common;

use burn::tensor::Device;
use common::parity::{
    feature_diff, p_fake_diff, prepared, prepared_detector, NegateGamma, TOLERANCE,
};
use dfd_models::arch::baseline::Baseline;
use dfd_models::arch::mesoinception4::MesoInception4;
use dfd_models::arch::mesonet4::MesoNet4;
use dfd_models::arch::ssim_map_cnn::SsimMapCnn;
use dfd_models::ArchitectureBackbone;
use dfd_models::{Backbone, Detector};

/// [`feature_diff`] of a perturbed backbone after one training-mode pass.
fn feature_parity<B: Backbone>(name: &str, build: impl Fn(&Device) -> B, channels: usize) -> f32 {
    let pass = |backbone: &B, device: &Device| {
        let unit = burn::tensor::Distribution::Uniform(0.0, 1.0);
        let _ = backbone.features(burn::tensor::Tensor::random(
            [2, channels, 224, 224],
            unit,
            device,
        ));
    };
    feature_diff(name, &prepared(build, Some(&pass)), channels)
}

#[test]
fn backbone_features_match_before_the_head() {
    let face_backbones = [
        feature_parity("MesoNet-4", MesoNet4::new, 3),
        feature_parity("MesoInception-4", MesoInception4::new, 3),
        feature_parity("Baseline", Baseline::new, 3),
    ];
    let map_branches = [
        feature_parity("SSIM-map Baseline", |d| Baseline::with_in_channels(1, d), 1),
        feature_parity("SSIM-map compact CNN", SsimMapCnn::new, 1),
    ];
    for diff in face_backbones.iter().chain(&map_branches) {
        assert!(*diff <= TOLERANCE, "relative difference {diff:e}");
    }
}

fn has_batch_norm_node(onnx: &[u8]) -> bool {
    let op = b"BatchNormalization";
    onnx.windows(op.len()).any(|w| w == op)
}

/// The export folds ReLU -> BatchNorm into the convolution before it only where that is exact
/// (every BatchNorm scale positive) and writes the BatchNorm node otherwise; both forms give what
/// burn computes.
#[test]
fn batch_norm_is_folded_only_where_exact() {
    use burn::module::Module;
    let positive = prepared_detector(MesoNet4::single, true);
    let onnx = positive.export_onnx().expect("export");
    assert!(!has_batch_norm_node(&onnx), "positive scales are folded");

    let negative = positive.map(&mut NegateGamma::default());
    let onnx = negative.export_onnx().expect("export");
    assert!(has_batch_norm_node(&onnx), "negative scales are not folded");
    assert!(p_fake_diff("MesoNet-4 single, negative gammas", &negative) <= TOLERANCE);
}
