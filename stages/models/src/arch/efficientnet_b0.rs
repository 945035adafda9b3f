//! EfficientNet-B0 as the reference study used it: Keras's `EfficientNetB0(include_top=False,
//! weights="imagenet")` followed by global average pooling (1280 features).
//!
//! Layer for layer as in `keras.applications.efficientnet`: input normalisation, a 3 x 3 stride-2
//! stem (32 channels), sixteen MBConv blocks in seven stages (table `STAGES`), a 1 x 1
//! convolution to 1280 channels. Swish everywhere, squeeze-and-excite to
//! `max(1, channels_in / 4)` with a sigmoid gate, BatchNorm with Keras's defaults (epsilon 1e-3,
//! momentum 0.99), strided layers padded as Keras's `correct_pad`, and drop-connect on the
//! residual branches rising linearly from 0 to 0.2 * 15/16 (training only). 4,049,571 parameters
//! as Keras counts them, 7 of which are the input normalisation's mean (3), variance (3) and
//! sample count (1).
//!
//! Input scaling. Keras's model takes pixels in 0..255 and applies `Rescaling(1/255)`, a
//! `Normalization` layer holding ImageNet's channel mean and, with `weights="imagenet"`, a further
//! `Rescaling(1/sqrt(std))`: together `(x/255 - mean) / std`. Our input is already `x/255`, so the
//! model computes `(x - mean) / std` with the same constants, the same values Keras's network
//! sees for a properly scaled image. The reference script fed `rescale=1/255` images into that,
//! so its network saw inputs near `-mean/std`, about -2; we do not reproduce that. The constants
//! are held, like Keras's, as non-trainable state (mean, variance `std^2`, count), so that the
//! model's parameter count is Keras's.
//!
//! Could not be pinned down exactly: Keras's convolution initializer is a *truncated* normal with
//! variance `2 / fan_out`; burn has no truncated normal, so ours is the untruncated one with the
//! same variance (it only affects the starting point of training). The final `Dropout(0.2)` of
//! Keras's top is not part of the model without top, so it is not here either.

use burn::module::{Module, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::blocks::activation::{Activation, Gate};
use super::blocks::conv_bn::{BnSpec, ConvBn, ConvSpec};
use super::blocks::inverted_residual::{BlockSpec, InvertedResidual, SeSpec};
use super::blocks::squeeze_excite::{export_global_avg_pool, global_avg_pool};
use crate::detector::{ArchitectureBackbone, ConvTap};
use crate::head::HeadConfig;
use crate::multi::MultiConfig;
use crate::onnx::{ExportError, OnnxGraph};
use crate::variant::Architecture;
use crate::{Backbone, FACE_SIZE};

/// Width of the feature vector: the top convolution's channels.
pub const FEATURE_LEN: usize = 1280;

pub(crate) const STEM_CHANNELS: usize = 32;

/// Keras's default `BatchNormalization(epsilon=1e-3, momentum=0.99)`.
pub(crate) const BN: BnSpec = BnSpec {
    epsilon: 1e-3,
    momentum: 1.0 - 0.99,
};

/// Keras EfficientNet's `drop_connect_rate`.
pub(crate) const DROP_CONNECT_RATE: f64 = 0.2;

/// Keras EfficientNet's `CONV_KERNEL_INITIALIZER`, `VarianceScaling(2.0, "fan_out")`, without the
/// truncation (see the module documentation).
pub(crate) const INIT: Initializer = Initializer::KaimingNormal {
    gain: core::f64::consts::SQRT_2,
    fan_out_only: true,
};

/// ImageNet's per-channel RGB mean and standard deviation (Keras's `IMAGENET_MEAN_RGB` and
/// `IMAGENET_STDDEV_RGB`).
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One stage of Keras's `DEFAULT_BLOCKS_ARGS` (B0: width and depth coefficients 1, so no
/// rounding applies). Every stage has squeeze-and-excite ratio 0.25 and `id_skip`.
pub(crate) struct Stage {
    pub(crate) kernel: usize,
    pub(crate) repeats: usize,
    pub(crate) channels_out: usize,
    pub(crate) expand_ratio: usize,
    pub(crate) stride: usize,
}

const fn stage(
    kernel: usize,
    repeats: usize,
    channels_out: usize,
    expand_ratio: usize,
    stride: usize,
) -> Stage {
    Stage {
        kernel,
        repeats,
        channels_out,
        expand_ratio,
        stride,
    }
}

pub(crate) const STAGES: [Stage; 7] = [
    stage(3, 1, 16, 1, 1),
    stage(3, 2, 24, 6, 2),
    stage(5, 2, 40, 6, 2),
    stage(3, 3, 80, 6, 2),
    stage(5, 3, 112, 6, 1),
    stage(5, 4, 192, 6, 2),
    stage(3, 1, 320, 6, 1),
];

/// The sixteen block specs: a stage's first block takes its stride and input channels, the
/// repeats stride 1 from the stage's output; block `b` drops its branch with `0.2 * b / 16`.
/// B0's blocks use Swish and squeeze-and-excite (ratio 0.25); Lite0 takes the same stages with
/// ReLU6 and none.
pub(super) fn block_specs(activation: Activation, squeeze_excite: bool) -> Vec<BlockSpec> {
    let total: usize = STAGES.iter().map(|s| s.repeats).sum();
    let mut specs = Vec::with_capacity(total);
    let mut channels = STEM_CHANNELS;
    let mut size = FACE_SIZE.div_ceil(2);
    for stage in &STAGES {
        for repeat in 0..stage.repeats {
            let stride = if repeat == 0 { stage.stride } else { 1 };
            let spec = BlockSpec {
                channels_in: channels,
                expanded: channels * stage.expand_ratio,
                channels_out: stage.channels_out,
                kernel: stage.kernel,
                stride,
                input_size: size,
                activation,
                squeeze_excite: squeeze_excite.then(|| SeSpec {
                    squeezed: (channels / 4).max(1),
                    activation,
                    gate: Gate::Sigmoid,
                }),
                drop_rate: DROP_CONNECT_RATE * specs.len() as f64 / total as f64,
                bn: BN,
            };
            channels = stage.channels_out;
            size = spec.output_size();
            specs.push(spec);
        }
    }
    specs
}

/// Keras's input `Normalization` with ImageNet statistics: `(x - mean) / sqrt(variance)`.
/// Non-trainable state, as in Keras; `count` is Keras's bookkeeping of how many samples `adapt`
/// saw, unused by the forward pass and kept only so that parameter counts agree with Keras.
#[derive(Module, Debug)]
pub struct InputNormalization {
    pub mean: RunningState<Tensor<1>>,
    pub variance: RunningState<Tensor<1>>,
    pub count: RunningState<Tensor<1>>,
}

impl InputNormalization {
    /// ImageNet's statistics.
    pub fn imagenet(device: &Device) -> Self {
        let variance = IMAGENET_STD.map(|s| s * s);
        InputNormalization {
            mean: RunningState::new(Tensor::from_floats(IMAGENET_MEAN, device)),
            variance: RunningState::new(Tensor::from_floats(variance, device)),
            count: RunningState::new(Tensor::zeros([1], device)),
        }
    }

    /// Per-channel mean and standard deviation, shaped `[1, 3, 1, 1]` to broadcast over NCHW.
    fn mean_and_std(&self) -> (Tensor<4>, Tensor<4>) {
        let mean = self.mean.value();
        let channels = mean.dims()[0];
        let std = self.variance.value().sqrt();
        (
            mean.reshape([1, channels, 1, 1]),
            std.reshape([1, channels, 1, 1]),
        )
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (mean, std) = self.mean_and_std();
        let device = x.device();
        (x - mean.to_device(&device)) / std.to_device(&device)
    }

    /// ONNX form of [`InputNormalization::forward`]: `Sub` then `Div`, with the standard deviation
    /// burn computes, so both sides divide by the same float values.
    pub fn export(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError> {
        let (mean, std) = self.mean_and_std();
        let mean = g.weight("input_mean", &mean)?;
        let std = g.weight("input_std", &std)?;
        let centred = g.op("Sub", &[x, &mean], &[]);
        Ok(g.op("Div", &[&centred, &std], &[]))
    }
}

/// The backbone; see the module documentation.
#[derive(Module, Debug)]
pub struct EfficientNetB0 {
    pub normalization: InputNormalization,
    pub stem: ConvBn,
    pub blocks: Vec<InvertedResidual>,
    pub top: ConvBn,
}

impl EfficientNetB0 {
    /// A freshly initialised backbone (Keras's initializers up to the truncation noted above).
    pub fn new(device: &Device) -> Self {
        let (stem, blocks, top) = layers(
            &block_specs(Activation::Swish, true),
            Activation::Swish,
            device,
        );
        EfficientNetB0 {
            normalization: InputNormalization::imagenet(device),
            stem,
            blocks,
            top,
        }
    }
}

/// The stem, the inverted-residual blocks of `specs` and the 1x1 top convolution of an
/// EfficientNet, freshly initialised: B0 and Lite0 differ only in `specs` (Lite0's have no
/// squeeze-excite) and in `activation`.
pub(super) fn layers(
    specs: &[BlockSpec],
    activation: Activation,
    device: &Device,
) -> (ConvBn, Vec<InvertedResidual>, ConvBn) {
    let stem = ConvBn::new(
        ConvSpec::new([3, STEM_CHANNELS], 3, 2, FACE_SIZE),
        &INIT,
        BN,
        activation,
        device,
    );
    let blocks = specs
        .iter()
        .map(|spec| InvertedResidual::new(spec, &INIT, device))
        .collect();
    let (top_in, top_size) = specs.last().map_or((STEM_CHANNELS, FACE_SIZE / 2), |s| {
        (s.channels_out, s.output_size())
    });
    let top = ConvBn::new(
        ConvSpec::new([top_in, FEATURE_LEN], 1, 1, top_size),
        &INIT,
        BN,
        activation,
        device,
    );
    (stem, blocks, top)
}

impl EfficientNetB0 {
    /// The top convolution's map `[N, 1280, 7, 7]` (before the global pooling).
    fn feature_map(&self, face: Tensor<4>) -> Tensor<4> {
        let mut x = self.stem.forward(self.normalization.forward(face));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.top.forward(x)
    }
}

impl ArchitectureBackbone for EfficientNetB0 {
    const ARCHITECTURE: Architecture = Architecture::EfficientNetB0;
    /// The single-input detector of the reference: the backbone's pooled features, then Dense(1).
    const HEAD: HeadConfig = HeadConfig::DENSE;
    /// The multi-input EfficientNetB0 of the reference: the face branch is reduced to
    /// `sigmoid(Dense(1))` before the concatenation, the SSIM map goes through a one-channel
    /// Baseline CNN (4,473,830 parameters).
    const MULTI: MultiConfig = MultiConfig::FACE_SCORE;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl Backbone for EfficientNetB0 {
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
        let normalized = self.normalization.export(g, face)?;
        let mut x = self.stem.export(g, &normalized)?;
        for block in &self.blocks {
            x = block.export(g, &x)?;
        }
        let x = self.top.export(g, &x)?;
        Ok(export_global_avg_pool(g, &x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_blocks_with_keras_drop_connect_and_squeeze() {
        let specs = block_specs(Activation::Swish, true);
        assert_eq!(specs.len(), 16);
        assert_eq!(specs[0].drop_rate, 0.0);
        assert!((specs[15].drop_rate - 0.2 * 15.0 / 16.0).abs() < 1e-12);
        let squeezed: Vec<usize> = specs
            .iter()
            .filter_map(|s| s.squeeze_excite.map(|se| se.squeezed))
            .collect();
        assert_eq!(
            squeezed,
            [8, 4, 6, 6, 10, 10, 20, 20, 20, 28, 28, 28, 48, 48, 48, 48]
        );
        assert_eq!(specs[15].output_size(), 7);
    }
}
