//! Our six small-CNN detectors have exactly the parameter counts the reference study's Keras
//! `model.summary()` reports (README of Sihe12/DeepFake, 224x224 inputs), counted as Keras
//! counts: trainable weights plus BatchNorm's moving mean and variance. Matching counts to the
//! unit pins every layer's shape; the forward tests pin the wiring between them.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use dfd_models::arch::baseline::Baseline;
use dfd_models::arch::mesoinception4::MesoInception4;
use dfd_models::arch::mesonet4::MesoNet4;
use dfd_models::params::keras_param_count;
use dfd_models::{Detector, DetectorInput, Form};

fn device() -> Device {
    Device::flex()
}

fn assert_count<M: Module>(name: &str, model: &M, expected: usize) {
    let ours = keras_param_count(model);
    assert_eq!(ours, expected, "{name}: Keras-style parameter count");
    // burn 0.22.1 visits RunningState like a Param, so its own count agrees; if a burn upgrade
    // changes that, this says so (and keras_param_count stays what we report).
    assert_eq!(model.num_params(), expected, "{name}: burn's num_params");
}

#[test]
fn baseline_counts_match_the_reference() {
    let d = device();
    assert_count("Baseline single", &Baseline::single(&d), 423_361);
    assert_count("Baseline multi", &Baseline::multi(&d), 846_337);
}

#[test]
fn mesonet4_counts_match_the_reference() {
    let d = device();
    assert_count("MesoNet-4 single", &MesoNet4::single(&d), 24_233);
    assert_count("MesoNet-4 multi", &MesoNet4::multi(&d), 53_473);
}

#[test]
fn mesoinception4_counts_match_the_reference() {
    let d = device();
    assert_count(
        "MesoInception-4 single",
        &MesoInception4::single(&d),
        32_089,
    );
    assert_count("MesoInception-4 multi", &MesoInception4::multi(&d), 61_329);
}

fn input(form: Form, n: usize, d: &Device) -> DetectorInput {
    let unit = Distribution::Uniform(0.0, 1.0);
    let multi = form == Form::Multi;
    DetectorInput {
        face: Tensor::random([n, 3, 224, 224], unit, d),
        ssim_map: multi.then(|| Tensor::random([n, 1, 224, 224], unit, d)),
        ssim_stats: multi.then(|| Tensor::random([n, 2], unit, d)),
    }
}

fn assert_logit_shape<M: Detector>(name: &str, model: &M, expected_form: Form) {
    let d = device();
    assert_eq!(model.form(), expected_form, "{name}");
    let logits = model.forward_logits(&input(model.form(), 2, &d));
    assert_eq!(logits.dims(), [2, 1], "{name}: logits [N, 1]");
}

#[test]
fn every_variant_maps_a_batch_to_one_logit_per_face() {
    let d = device();
    assert_logit_shape("MesoNet-4 single", &MesoNet4::single(&d), Form::Single);
    assert_logit_shape("MesoNet-4 multi", &MesoNet4::multi(&d), Form::Multi);
    let meso_inception = MesoInception4::single(&d);
    assert_logit_shape("MesoInception-4 single", &meso_inception, Form::Single);
    let meso_inception = MesoInception4::multi(&d);
    assert_logit_shape("MesoInception-4 multi", &meso_inception, Form::Multi);
    assert_logit_shape("Baseline single", &Baseline::single(&d), Form::Single);
    assert_logit_shape("Baseline multi", &Baseline::multi(&d), Form::Multi);
}
