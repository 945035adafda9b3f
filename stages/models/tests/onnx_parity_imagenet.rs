//! Each ImageNet backbone (MobileNetV3Small, EfficientNetB0, ViT-B/16), in its single and its
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

use std::time::Instant;

use burn::module::{ModuleDisplay, ModuleMapper, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};
use dfd_models::arch::efficientnet_b0::EfficientNetB0;
use dfd_models::arch::mobilenet_v3_small::MobileNetV3Small;
use dfd_models::arch::vit_b16::VitB16;
use dfd_models::onnx::{Dim, OnnxGraph};
use dfd_models::{Backbone, Detector, DetectorInput, Form};

const TOLERANCE: f32 = 1e-4;

/// Moves trainable offsets, scales, running statistics and the class token away from their
/// initial values, recognising them by field name.
#[derive(Default)]
struct Perturb {
    path: Vec<String>,
}

impl ModuleMapper for Perturb {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let field = self.path.last().map(String::as_str).unwrap_or_default();
        let uniform = |t: &Tensor<D>, lo, hi| {
            Tensor::random(t.shape(), Distribution::Uniform(lo, hi), &t.device())
        };
        match field {
            "running_mean" => param.map(|t| uniform(&t, -0.3, 0.3)),
            "running_var" => param.map(|t| uniform(&t, 0.5, 2.0)),
            "gamma" => param.map(|t| uniform(&t, 0.7, 1.3)),
            "beta" | "bias" => param.map(|t| uniform(&t, -0.1, 0.1)),
            "class_token" => param.map(|t| uniform(&t, -1.0, 1.0)),
            _ => param,
        }
    }
}

fn batch(form: Form, n: usize, device: &Device) -> DetectorInput {
    let unit = Distribution::Uniform(0.0, 1.0);
    let multi = form == Form::Multi;
    DetectorInput {
        face: Tensor::random([n, 3, 224, 224], unit, device),
        ssim_map: multi.then(|| Tensor::random([n, 1, 224, 224], unit, device)),
        ssim_stats: multi.then(|| Tensor::random([n, 2], unit, device)),
    }
}

/// A model ready for comparison: perturbed, then (CNNs) one training-mode pass, in inference
/// mode on the plain CPU device.
fn prepared<M: Detector>(build: impl Fn(&Device) -> M, warm_up: bool) -> M {
    let plain = Device::flex();
    plain.seed(17);
    if !warm_up {
        return build(&plain).map(&mut Perturb::default());
    }
    let training = plain.autodiff();
    training.seed(17);
    let model = build(&training).map(&mut Perturb::default());
    let _ = model.forward_logits(&batch(model.form(), 2, &training));
    model.valid()
}

/// burn vs ONNX Runtime on one batch of two: the largest difference of `p_fake`.
fn p_fake_diff<M: Detector + ModuleDisplay>(name: &str, model: &M) -> f32 {
    let started = Instant::now();
    let plain = Device::flex();
    let input = batch(model.form(), 2, &plain);
    let burn_p = common::to_ndarray(&sigmoid(model.forward_logits(&input)));
    let bytes = model.export_onnx().expect("export");
    let mut feeds = vec![("face", common::to_ndarray(&input.face))];
    if let (Some(map), Some(stats)) = (&input.ssim_map, &input.ssim_stats) {
        feeds.push(("ssim_map", common::to_ndarray(map)));
        feeds.push(("ssim_stats", common::to_ndarray(stats)));
    }
    let onnx_p = common::run_onnx(&bytes, &feeds).remove(0);
    let diff = common::max_abs_diff(&burn_p, &onnx_p);
    eprintln!(
        "{name}: p_fake burn {:?} onnx {:?}, max abs diff {diff:e} ({:?})",
        burn_p.iter().collect::<Vec<_>>(),
        onnx_p.iter().collect::<Vec<_>>(),
        started.elapsed()
    );
    diff
}

/// burn vs ONNX Runtime on the backbone's features alone: the largest difference relative to
/// the largest feature magnitude.
fn feature_diff<B: Backbone>(name: &str, backbone: &B) -> f32 {
    let started = Instant::now();
    let plain = Device::flex();
    let face = batch(Form::Single, 2, &plain).face;
    let burn_f = common::to_ndarray(&backbone.features(face.clone()));
    let mut g = OnnxGraph::new("features");
    let dims = [Dim::Batch, Dim::Fixed(3), Dim::Fixed(224), Dim::Fixed(224)];
    g.add_input("face", &dims);
    let features = backbone
        .export_features(&mut g, "face")
        .expect("export features");
    g.op_into("Identity", &[&features], &[], "features");
    let len = backbone.feature_len();
    g.add_output("features", &[Dim::Batch, Dim::Fixed(len)]);
    let onnx_f =
        common::run_onnx(&g.to_model_bytes(), &[("face", common::to_ndarray(&face))]).remove(0);
    let scale = burn_f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = common::max_abs_diff(&burn_f, &onnx_f) / scale.max(1.0);
    eprintln!(
        "{name}: features max |f| {scale:.3}, max abs diff / max(1, max |f|) {diff:e} ({:?})",
        started.elapsed()
    );
    diff
}

#[test]
fn mobilenet_v3_small_single_exports_what_burn_computes() {
    let model = prepared(MobileNetV3Small::single, true);
    assert!(feature_diff("MobileNetV3Small", model.backbone()) <= TOLERANCE);
    assert!(p_fake_diff("MobileNetV3Small single", &model) <= TOLERANCE);
}

#[test]
fn mobilenet_v3_small_multi_exports_what_burn_computes() {
    let model = prepared(MobileNetV3Small::multi, true);
    assert!(p_fake_diff("MobileNetV3Small multi", &model) <= TOLERANCE);
}

#[test]
fn efficientnet_b0_single_exports_what_burn_computes() {
    let model = prepared(EfficientNetB0::single, true);
    assert!(feature_diff("EfficientNetB0", model.backbone()) <= TOLERANCE);
    assert!(p_fake_diff("EfficientNetB0 single", &model) <= TOLERANCE);
}

#[test]
fn efficientnet_b0_multi_exports_what_burn_computes() {
    let model = prepared(EfficientNetB0::multi, true);
    assert!(p_fake_diff("EfficientNetB0 multi", &model) <= TOLERANCE);
}

/// Both ViT forms in one test, one after the other, so that at most one 86M-parameter model and
/// its export are in memory at a time.
#[test]
fn vit_b16_single_and_multi_export_what_burn_computes() {
    let single = prepared(VitB16::single, false);
    assert!(feature_diff("ViT-B/16", single.backbone()) <= TOLERANCE);
    assert!(p_fake_diff("ViT-B/16 single", &single) <= TOLERANCE);
    drop(single);
    let multi = prepared(VitB16::multi, false);
    assert!(p_fake_diff("ViT-B/16 multi", &multi) <= TOLERANCE);
}
