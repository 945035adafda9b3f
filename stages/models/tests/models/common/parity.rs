//! What the ONNX parity tests share: models moved away from their initial state, random batches,
//! and the two comparisons (P(FAKE), and backbone features before the head).

use burn::module::{Module, ModuleDisplay, ModuleMapper, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};
use dfd_models::onnx::{Dim, OnnxGraph};
use dfd_models::{Backbone, Detector, DetectorInput, Form};

use super::{max_abs_diff, run_onnx, to_ndarray};

/// The bound on burn vs ONNX Runtime.
pub const TOLERANCE: f32 = 1e-4;

/// Moves biases, BatchNorm and LayerNorm affine parameters, running statistics and the class
/// token away from their initial values (recognised by field name), so that an export that
/// confused them cannot pass by luck.
#[derive(Default)]
pub struct Perturb {
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

/// A random batch of `n` with the inputs `form` takes: pixel values in `[0, 255]`, SSIM
/// statistics in `[0, 1]`.
pub fn batch(form: Form, n: usize, device: &Device) -> DetectorInput {
    let pixels = Distribution::Uniform(0.0, 255.0);
    let unit = Distribution::Uniform(0.0, 1.0);
    let multi = form == Form::Multi;
    DetectorInput {
        face: Tensor::random([n, 3, 224, 224], pixels, device),
        ssim_map: multi.then(|| Tensor::random([n, 1, 224, 224], pixels, device)),
        ssim_stats: multi.then(|| Tensor::random([n, 2], unit, device)),
    }
}

/// A training-mode pass over a module on the autodiff device.
pub type WarmUp<'a, M> = &'a dyn Fn(&M, &Device);

/// `build`'s module, perturbed, then (with `warm_up`) given one training-mode pass on the
/// autodiff device, which moves BatchNorm's running statistics as training does; returned in
/// inference mode.
pub fn prepared<M: Module>(build: impl Fn(&Device) -> M, warm_up: Option<WarmUp<'_, M>>) -> M {
    let plain = Device::flex();
    plain.seed(17);
    let Some(warm_up) = warm_up else {
        return build(&plain).map(&mut Perturb::default());
    };
    let training = plain.autodiff();
    training.seed(17);
    let module = build(&training).map(&mut Perturb::default());
    warm_up(&module, &training);
    module.valid()
}

/// [`prepared`] for a detector, warmed up on a batch of two.
pub fn prepared_detector<M: Detector>(build: impl Fn(&Device) -> M, warm_up: bool) -> M {
    let pass = |model: &M, device: &Device| {
        let _ = model.forward_logits(&batch(model.form(), 2, device));
    };
    prepared(build, warm_up.then_some(&pass as WarmUp<'_, M>))
}

/// burn vs ONNX Runtime on one batch of two: the largest difference of `p_fake`.
pub fn p_fake_diff<M: Detector + ModuleDisplay>(name: &str, model: &M) -> f32 {
    let started = std::time::Instant::now();
    let input = batch(model.form(), 2, &Device::flex());
    let burn_p = to_ndarray(&sigmoid(model.forward_logits(&input)));
    let bytes = model.export_onnx().expect("export");
    let mut feeds = vec![("face", to_ndarray(&input.face))];
    if let (Some(map), Some(stats)) = (&input.ssim_map, &input.ssim_stats) {
        feeds.push(("ssim_map", to_ndarray(map)));
        feeds.push(("ssim_stats", to_ndarray(stats)));
    }
    let onnx_p = run_onnx(&bytes, &feeds).remove(0);
    let diff = max_abs_diff(&burn_p, &onnx_p);
    eprintln!(
        "{name}: p_fake burn {:?} onnx {:?}, max abs diff {diff:e} ({:?})",
        burn_p.iter().collect::<Vec<_>>(),
        onnx_p.iter().collect::<Vec<_>>(),
        started.elapsed()
    );
    diff
}

/// burn vs ONNX Runtime on a backbone's features alone, for images of `channels` channels: the
/// largest difference relative to the largest feature magnitude (at least 1). The sigmoid hides
/// small errors near 0.5; unsquashed features do not.
pub fn feature_diff<B: Backbone>(name: &str, backbone: &B, channels: usize) -> f32 {
    let started = std::time::Instant::now();
    let unit = Distribution::Uniform(0.0, 1.0);
    let images = Tensor::random([2, channels, 224, 224], unit, &Device::flex());
    let burn_f = to_ndarray(&backbone.features(images.clone()));
    let mut g = OnnxGraph::new(name);
    let dims = [
        Dim::Batch,
        Dim::Fixed(channels),
        Dim::Fixed(224),
        Dim::Fixed(224),
    ];
    g.add_input("images", &dims);
    let features = backbone
        .export_features(&mut g, "images")
        .expect("export features");
    g.add_output(&features, &[Dim::Batch, Dim::Fixed(backbone.feature_len())]);
    let onnx_f = run_onnx(&g.to_model_bytes(), &[("images", to_ndarray(&images))]).remove(0);
    let scale = burn_f.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&burn_f, &onnx_f) / scale;
    eprintln!(
        "{name}: features max |f| {scale:.3}, relative max abs diff {diff:e} ({:?})",
        started.elapsed()
    );
    diff
}

/// Flips the sign of every BatchNorm gamma, which makes every BatchNorm scale negative.
#[derive(Default)]
pub struct NegateGamma {
    path: Vec<String>,
}

impl burn::module::ModuleMapper for NegateGamma {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<D>> {
        match self.path.last().map(String::as_str) {
            Some("gamma") => param.map(|t| t.neg()),
            _ => param,
        }
    }
}
