//! EfficientNet-Lite0 with its published ImageNet weights, exported to ONNX, gives on ONNX Runtime
//! what its burn forward gives (features and P(FAKE), to 1e-4): parity on trained weights, beside
//! the perturbed random ones every variant is checked with in `every_architecture.rs`.

use crate::common;

use common::parity::{feature_diff, p_fake_diff, TOLERANCE};
use dfd_models::arch::efficientnet_lite0::{EfficientNetLite0, IMAGENET_WEIGHTS};

/// With the published ImageNet weights (trained BatchNorm statistics, ReLU6 saturating where it
/// does on real features) rather than perturbed random ones.
#[test]
fn efficientnet_lite0_with_imagenet_weights_exports_what_burn_computes() {
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(IMAGENET_WEIGHTS);
    let model = EfficientNetLite0::single_imagenet(&weights, &burn::tensor::Device::flex())
        .unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"));
    assert!(feature_diff("EfficientNet-Lite0 ImageNet", model.backbone(), 3) <= TOLERANCE);
    assert!(p_fake_diff("EfficientNet-Lite0 ImageNet single", &model) <= TOLERANCE);
}
