//! The ImageNet-sized backbones (MobileNetV3Small, EfficientNetB0, ViT-B/16, EfficientNet-Lite0)
//! alone: the parameter counts of Keras's `include_top=False` models (counted as Keras counts,
//! BatchNorm's moving statistics and EfficientNet's input normalisation included), feature
//! vectors of the width the detector forms expect, and gradients down to the stem. The detectors'
//! counts, shapes and ONNX parity are checked for every architecture in `every_architecture.rs`.

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

/// The backbones alone (Keras's `include_top=False` counts; Lite0's is the published state
/// dict's); the detectors' counts are in `every_architecture.rs`.
#[test]
fn backbones_count_as_keras_counts_them() {
    let d = Device::flex();
    assert_count("MobileNetV3Small", &MobileNetV3Small::new(&d), 939_120);
    assert_count("EfficientNetB0", &EfficientNetB0::new(&d), 4_049_571);
    assert_count("EfficientNet-Lite0", &EfficientNetLite0::new(&d), 3_413_024);
    assert_count("ViT-B/16", &VitB16::new(&d), 85_798_656);
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
