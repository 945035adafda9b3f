//! The ImageNet backbones (MobileNetV3Small, EfficientNetB0, ViT-B/16) have the parameter counts
//! of the Keras models the reference study used, counted as Keras counts (BatchNorm's moving
//! statistics and EfficientNet's input normalisation included), and map a face batch to feature
//! vectors of the width the single and multi-input forms expect.
//!
//! Reference numbers: README of Sihe12/DeepFake (single forms, EfficientNetB0 and ViT multi), and
//! Keras's own `include_top=False` counts for the backbones. The reference has no number for the
//! multi-input MobileNetV3Small; ours follows from its script (`MobileNetV3Small_SSIM_MASK.py`):
//! 939,120 + Dense(1) 577 + SSIM-map Baseline 422,656 + stats branch 184 + Dense(1) over 1 + 128 +
//! 8 inputs 138 = 1,362,675.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use dfd_models::arch::efficientnet_b0::EfficientNetB0;
use dfd_models::arch::efficientnet_lite0::EfficientNetLite0;
use dfd_models::arch::mobilenet_v3_small::MobileNetV3Small;
use dfd_models::arch::vit_b16::VitB16;
use dfd_models::params::keras_param_count;
use dfd_models::Backbone;

fn assert_count<M: Module>(name: &str, model: &M, expected: usize) {
    assert_eq!(
        keras_param_count(model),
        expected,
        "{name}: Keras-style parameter count"
    );
}

#[test]
fn mobilenet_v3_small_counts_match_keras() {
    let d = Device::flex();
    assert_count(
        "MobileNetV3Small backbone",
        &MobileNetV3Small::new(&d),
        939_120,
    );
    assert_count(
        "MobileNetV3Small single",
        &MobileNetV3Small::single(&d),
        939_697,
    );
    assert_count(
        "MobileNetV3Small multi",
        &MobileNetV3Small::multi(&d),
        1_362_675,
    );
}

#[test]
fn efficientnet_b0_counts_match_keras() {
    let d = Device::flex();
    assert_count(
        "EfficientNetB0 backbone",
        &EfficientNetB0::new(&d),
        4_049_571,
    );
    assert_count(
        "EfficientNetB0 single",
        &EfficientNetB0::single(&d),
        4_050_852,
    );
    assert_count(
        "EfficientNetB0 multi",
        &EfficientNetB0::multi(&d),
        4_473_830,
    );
}

/// Keras has no Lite0: the backbone's count is the published PyTorch state dict's, by its tensor
/// shapes without the 1000-class `_fc` and `num_batches_tracked` (3,413,024;
/// `tests/efficientnet_lite0.rs` derives it from the file itself), plus our heads. Single: plus
/// Dense(1) over 1280, 1,281. Multi, assembled like EfficientNetB0's: plus the face score 1,281,
/// the SSIM-map Baseline 422,656, the stats branch 184 and Dense(1) over 1 + 128 + 8 inputs, 138.
#[test]
fn efficientnet_lite0_counts_follow_the_published_state_dict() {
    let d = Device::flex();
    assert_count(
        "EfficientNet-Lite0 backbone",
        &EfficientNetLite0::new(&d),
        3_413_024,
    );
    assert_count(
        "EfficientNet-Lite0 single",
        &EfficientNetLite0::single(&d),
        3_413_024 + 1_281,
    );
    assert_count(
        "EfficientNet-Lite0 multi",
        &EfficientNetLite0::multi(&d),
        3_413_024 + 1_281 + 422_656 + 184 + 138,
    );
}

#[test]
fn vit_b16_counts_match_keras() {
    // One model at a time: each is 86M floats (344 MB).
    let d = Device::flex();
    assert_count("ViT-B/16 backbone", &VitB16::new(&d), 85_798_656);
    assert_count("ViT-B/16 single", &VitB16::single(&d), 85_799_425);
    assert_count("ViT-B/16 multi", &VitB16::multi(&d), 86_222_401);
}

fn faces(n: usize, d: &Device) -> Tensor<4> {
    Tensor::random([n, 3, 224, 224], Distribution::Uniform(0.0, 1.0), d)
}

/// `[n, feature_len]`, finite.
fn assert_features<B: Backbone>(name: &str, backbone: &B, n: usize, expected_len: usize) {
    let d = Device::flex();
    let started = Instant::now();
    let features = backbone.features(faces(n, &d));
    assert_eq!(backbone.feature_len(), expected_len, "{name}: feature_len");
    assert_eq!(features.dims(), [n, expected_len], "{name}: features");
    let data = features.to_data();
    let values = data.as_slice::<f32>().expect("f32 features");
    assert!(values.iter().all(|v| v.is_finite()), "{name}: finite");
    eprintln!("{name}: forward of {n} faces in {:?}", started.elapsed());
}

#[test]
fn backbones_give_one_feature_vector_per_face() {
    let d = Device::flex();
    assert_features("MobileNetV3Small", &MobileNetV3Small::new(&d), 2, 576);
    assert_features("EfficientNetB0", &EfficientNetB0::new(&d), 2, 1280);
    assert_features("EfficientNet-Lite0", &EfficientNetLite0::new(&d), 2, 1280);
    assert_features("ViT-B/16", &VitB16::new(&d), 1, 768);
}

/// Sum of absolute gradient values of `weight` after `grads`, or `None` without a gradient.
fn grad_mass(weight: &Tensor<4>, grads: &burn::tensor::Gradients) -> Option<f32> {
    let grad = weight.grad(grads)?;
    Some(grad.abs().sum().into_scalar::<f32>())
}

/// One training-mode step (batch statistics, drop-connect active) backpropagates to the stem:
/// the blocks, squeeze-and-excite and the residual paths are differentiable end to end.
#[test]
fn cnn_backbones_pass_gradients_to_their_stem() {
    let d = Device::flex().autodiff();
    d.seed(5);
    let started = Instant::now();
    let mobilenet = MobileNetV3Small::new(&d);
    let grads = mobilenet.features(faces(2, &d)).sum().backward();
    let stem = grad_mass(&mobilenet.stem.conv.weight.val(), &grads);
    assert!(
        stem.is_some_and(|g| g > 0.0),
        "MobileNetV3Small stem: {stem:?}"
    );
    eprintln!("MobileNetV3Small: training step in {:?}", started.elapsed());

    let started = Instant::now();
    let efficientnet = EfficientNetB0::new(&d);
    let grads = efficientnet.features(faces(2, &d)).sum().backward();
    let stem = grad_mass(&efficientnet.stem.conv.weight.val(), &grads);
    assert!(
        stem.is_some_and(|g| g > 0.0),
        "EfficientNetB0 stem: {stem:?}"
    );
    eprintln!("EfficientNetB0: training step in {:?}", started.elapsed());
}
