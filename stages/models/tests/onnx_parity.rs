//! Each small-CNN detector, exported to ONNX, gives on ONNX Runtime what its burn forward gives
//! (sigmoid of the logits) on the same batch, to 1e-4.
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

mod common;

use burn::module::{ModuleDisplay, ModuleMapper, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};
use dfd_models::arch::baseline::Baseline;
use dfd_models::arch::mesoinception4::MesoInception4;
use dfd_models::arch::mesonet4::MesoNet4;
use dfd_models::arch::ssim_map_cnn::SsimMapCnn;
use dfd_models::onnx::{Dim, OnnxGraph};
use dfd_models::{Backbone, Detector, DetectorInput, Form};

const TOLERANCE: f32 = 1e-4;

/// Moves biases, BatchNorm affine parameters and running statistics away from their
/// initial values, by field name.
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
        // A video's SSIM mean is high and its variance small; the branch must not care.
        ssim_stats: multi.then(|| Tensor::random([n, 2], unit, device)),
    }
}

fn to_device(input: &DetectorInput, device: &Device) -> DetectorInput {
    DetectorInput {
        face: input.face.clone().to_device(device),
        ssim_map: input.ssim_map.clone().map(|t| t.to_device(device)),
        ssim_stats: input.ssim_stats.clone().map(|t| t.to_device(device)),
    }
}

/// Trains-mode pass, then inference: burn vs ONNX Runtime on one batch of two. Returns the
/// largest difference of `p_fake`.
fn parity<M: Detector + ModuleDisplay>(name: &str, build: impl Fn(&Device) -> M) -> f32 {
    let plain = Device::flex();
    let training = plain.clone().autodiff();
    training.seed(17);
    let model = build(&training).map(&mut Perturb::default());
    let warm_up = batch(model.form(), 4, &training);
    let _ = model.forward_logits(&warm_up);
    let model = model.valid();

    let input = to_device(&batch(model.form(), 2, &plain), &plain);
    let burn_p = common::to_ndarray(&sigmoid(model.forward_logits(&input)));
    let bytes = model.export_onnx().expect("export");
    let mut feeds = vec![("face", common::to_ndarray(&input.face))];
    if let (Some(map), Some(stats)) = (&input.ssim_map, &input.ssim_stats) {
        feeds.push(("ssim_map", common::to_ndarray(map)));
        feeds.push(("ssim_stats", common::to_ndarray(stats)));
    }
    let onnx_p = common::run_onnx(&bytes, &feeds).remove(0);
    let diff = common::max_abs_diff(&burn_p, &onnx_p);
    let values = |a: &ndarray::ArrayD<f32>| a.iter().copied().collect::<Vec<f32>>();
    eprintln!(
        "{name}: p_fake burn {:?} onnx {:?}, max abs diff {diff:e}",
        values(&burn_p),
        values(&onnx_p)
    );
    diff
}

#[test]
fn mesonet4_single_exports_what_burn_computes() {
    assert!(parity("MesoNet-4 single", MesoNet4::single) <= TOLERANCE);
}

#[test]
fn mesonet4_multi_exports_what_burn_computes() {
    assert!(parity("MesoNet-4 multi", MesoNet4::multi) <= TOLERANCE);
}

#[test]
fn mesoinception4_single_exports_what_burn_computes() {
    assert!(parity("MesoInception-4 single", MesoInception4::single) <= TOLERANCE);
}

#[test]
fn mesoinception4_multi_exports_what_burn_computes() {
    assert!(parity("MesoInception-4 multi", MesoInception4::multi) <= TOLERANCE);
}

#[test]
fn baseline_single_exports_what_burn_computes() {
    assert!(parity("Baseline single", Baseline::single) <= TOLERANCE);
}

#[test]
fn baseline_multi_exports_what_burn_computes() {
    assert!(parity("Baseline multi", Baseline::multi) <= TOLERANCE);
}

/// Largest difference between burn's and ONNX Runtime's features of `backbone` on `images`
/// (`[2, channels, 224, 224]`), relative to the largest feature magnitude (at least 1).
fn feature_parity<B: Backbone + ModuleDisplay>(
    name: &str,
    build: impl Fn(&Device) -> B,
    channels: usize,
) -> f32 {
    let plain = Device::flex();
    let training = plain.clone().autodiff();
    training.seed(23);
    let backbone = build(&training).map(&mut Perturb::default());
    let warm_up = Tensor::random([4, channels, 224, 224], Distribution::Default, &training);
    let _ = backbone.features(warm_up);
    let backbone = backbone.valid();

    let images = Tensor::random([2, channels, 224, 224], Distribution::Default, &plain);
    let burn_features = common::to_ndarray(&backbone.features(images.clone()));
    let mut g = OnnxGraph::new(name);
    let image_dims = [
        Dim::Batch,
        Dim::Fixed(channels),
        Dim::Fixed(224),
        Dim::Fixed(224),
    ];
    g.add_input("images", &image_dims);
    let features = backbone.export_features(&mut g, "images").expect("export");
    g.add_output(&features, &[Dim::Batch, Dim::Fixed(backbone.feature_len())]);
    let onnx_features = common::run_onnx(
        &g.to_model_bytes(),
        &[("images", common::to_ndarray(&images))],
    )
    .remove(0);
    let scale = burn_features.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = common::max_abs_diff(&burn_features, &onnx_features) / scale;
    eprintln!("{name} features: largest |x| {scale}, relative max abs diff {diff:e}");
    diff
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
