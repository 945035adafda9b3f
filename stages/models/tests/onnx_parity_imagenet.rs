//! Each ImageNet backbone (MobileNetV3Small, EfficientNetB0, ViT-B/16, EfficientNet-Lite0), in its single and its
//! multi-input form, exported to ONNX gives on ONNX Runtime what its burn forward gives: the
//! sigmoid of the logits on the same batch of two faces, to 1e-4; and, tighter than that, the
//! backbone's feature vectors themselves, to 1e-4 relative to their largest magnitude (a sigmoid
//! near 0 or 1 could hide a wrong feature; the features cannot).
//!
//! The models are not compared at their initial state, where BatchNorm's running statistics are
//! (0, 1), biases and the class token are 0, and an export that confused them could still pass:
//! biases, BatchNorm and LayerNorm scales and offsets, running statistics and the class token are
//! moved to spread-out values first. The CNNs then take one forward pass in training mode
//! (autodiff device: batch statistics, drop-connect active), which moves the running statistics
//! as training does, and are compared in inference mode (`valid()`). ViT-B/16 has no BatchNorm
//! and skips that pass, which would cost a backward-ready forward of 86M parameters.

mod common;

use common::parity::{feature_diff, p_fake_diff, prepared_detector, TOLERANCE};
use dfd_models::arch::efficientnet_b0::EfficientNetB0;
use dfd_models::arch::efficientnet_lite0::{EfficientNetLite0, IMAGENET_WEIGHTS};
use dfd_models::arch::mobilenet_v3_small::MobileNetV3Small;
use dfd_models::arch::vit_b16::VitB16;

#[test]
fn mobilenet_v3_small_single_exports_what_burn_computes() {
    let model = prepared_detector(MobileNetV3Small::single, true);
    assert!(feature_diff("MobileNetV3Small", model.backbone(), 3) <= TOLERANCE);
    assert!(p_fake_diff("MobileNetV3Small single", &model) <= TOLERANCE);
}

#[test]
fn mobilenet_v3_small_multi_exports_what_burn_computes() {
    let model = prepared_detector(MobileNetV3Small::multi, true);
    assert!(p_fake_diff("MobileNetV3Small multi", &model) <= TOLERANCE);
}

#[test]
fn efficientnet_b0_single_exports_what_burn_computes() {
    let model = prepared_detector(EfficientNetB0::single, true);
    assert!(feature_diff("EfficientNetB0", model.backbone(), 3) <= TOLERANCE);
    assert!(p_fake_diff("EfficientNetB0 single", &model) <= TOLERANCE);
}

#[test]
fn efficientnet_b0_multi_exports_what_burn_computes() {
    let model = prepared_detector(EfficientNetB0::multi, true);
    assert!(p_fake_diff("EfficientNetB0 multi", &model) <= TOLERANCE);
}

#[test]
fn efficientnet_lite0_single_exports_what_burn_computes() {
    let model = prepared_detector(EfficientNetLite0::single, true);
    assert!(feature_diff("EfficientNet-Lite0", model.backbone(), 3) <= TOLERANCE);
    assert!(p_fake_diff("EfficientNet-Lite0 single", &model) <= TOLERANCE);
}

#[test]
fn efficientnet_lite0_multi_exports_what_burn_computes() {
    let model = prepared_detector(EfficientNetLite0::multi, true);
    assert!(p_fake_diff("EfficientNet-Lite0 multi", &model) <= TOLERANCE);
}

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

/// Both ViT forms in one test, one after the other, so that at most one 86M-parameter model and
/// its export are in memory at a time.
#[test]
fn vit_b16_single_and_multi_export_what_burn_computes() {
    let single = prepared_detector(VitB16::single, false);
    assert!(feature_diff("ViT-B/16", single.backbone(), 3) <= TOLERANCE);
    assert!(p_fake_diff("ViT-B/16 single", &single) <= TOLERANCE);
    drop(single);
    let multi = prepared_detector(VitB16::multi, false);
    assert!(p_fake_diff("ViT-B/16 multi", &multi) <= TOLERANCE);
}
