//! MobileNetV3-Small as the reference study used it: Keras's `MobileNetV3Small(include_top=False,
//! alpha=1.0, minimalistic=False)` followed by global average pooling (576 features).
//!
//! Layer for layer as in `keras.applications.mobilenet_v3`: a 3 x 3 stride-2 stem (16 channels,
//! hard-swish), eleven inverted residual blocks (table `BLOCKS`), a 1 x 1 convolution to
//! `6 * 96 = 576` channels with hard-swish. BatchNorm epsilon 1e-3, momentum 0.999; squeeze-and-
//! excite with ReLU and `relu6(x + 3) / 6`; channel counts rounded by Keras's `_depth`; strided
//! layers padded as Keras pads them. 939,120 parameters, the count Keras reports.
//!
//! Input scaling. Keras's model starts with `Rescaling(1/127.5, offset=-1)` and expects pixels in
//! 0..255, mapping them to `[-1, 1]`. Our input is in `[0, 1]`, so the model computes `2x - 1`:
//! the same `[-1, 1]` that Keras's model sees for a properly scaled image. The reference script fed
//! `ImageDataGenerator(rescale=1/255)` output into that Rescaling, so its network actually saw
//! `[-1, -0.992]`; we do not reproduce that (it only shrinks the input range, which the first
//! BatchNorm largely undoes, and its ImageNet weights expected `[-1, 1]`).
//!
//! Not reproduced: the ImageNet weights (we train from scratch; importing them is the
//! `burn-onnx` route of DESIGN.md), and the `Dropout(0.5)` the reference put before its Dense
//! layer (it belongs to the head, which the single/multi forms own).

use burn::module::Module;
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

/// Width of the feature vector: the last convolution's channels.
pub const FEATURE_LEN: usize = 576;

/// Channels of the stem convolution.
const STEM_CHANNELS: usize = 16;

/// Keras MobileNetV3: `BatchNormalization(epsilon=1e-3, momentum=0.999)`.
const BN: BnSpec = BnSpec {
    epsilon: 1e-3,
    momentum: 1.0 - 0.999,
};

/// Keras's `se_ratio` for the non-minimalistic model.
const SE_RATIO: f64 = 0.25;

/// Keras's default kernel initializer (`glorot_uniform`), used by every convolution here.
const INIT: Initializer = Initializer::XavierUniform { gain: 1.0 };

/// One row of Keras's `MobileNetV3Small.stack_fn`: `_inverted_res_block(x, expansion, filters,
/// kernel_size, stride, se_ratio, activation)`.
struct Row {
    expansion: f64,
    filters: usize,
    kernel: usize,
    stride: usize,
    squeeze_excite: bool,
    activation: Activation,
}

const fn row(
    expansion: f64,
    filters: usize,
    kernel: usize,
    stride: usize,
    squeeze_excite: bool,
    activation: Activation,
) -> Row {
    Row {
        expansion,
        filters,
        kernel,
        stride,
        squeeze_excite,
        activation,
    }
}

use Activation::{HardSwish as HS, Relu as RE};

/// The eleven blocks, as in `keras.applications.MobileNetV3Small` (alpha 1, kernel 5 and
/// hard-swish where the non-minimalistic model uses them).
const BLOCKS: [Row; 11] = [
    row(1.0, 16, 3, 2, true, RE),
    row(72.0 / 16.0, 24, 3, 2, false, RE),
    row(88.0 / 24.0, 24, 3, 1, false, RE),
    row(4.0, 40, 5, 2, true, HS),
    row(6.0, 40, 5, 1, true, HS),
    row(6.0, 40, 5, 1, true, HS),
    row(3.0, 48, 5, 1, true, HS),
    row(3.0, 48, 5, 1, true, HS),
    row(6.0, 96, 5, 2, true, HS),
    row(6.0, 96, 5, 1, true, HS),
    row(6.0, 96, 5, 1, true, HS),
];

/// Keras's `_depth`: rounds a channel count to a multiple of 8, never below 8 nor more than 10%
/// under `v`.
fn keras_depth(v: f64) -> usize {
    let rounded = (((v + 4.0) as usize) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * v {
        rounded + 8
    } else {
        rounded
    }
}

/// The block specs of [`BLOCKS`], channel counts and map sizes threaded through.
fn block_specs() -> Vec<BlockSpec> {
    let mut channels = STEM_CHANNELS;
    let mut size = FACE_SIZE.div_ceil(2);
    BLOCKS
        .iter()
        .map(|row| {
            let expanded = keras_depth(channels as f64 * row.expansion);
            let spec = BlockSpec {
                channels_in: channels,
                expanded,
                channels_out: row.filters,
                kernel: row.kernel,
                stride: row.stride,
                input_size: size,
                activation: row.activation,
                squeeze_excite: row.squeeze_excite.then(|| SeSpec {
                    squeezed: keras_depth(expanded as f64 * SE_RATIO),
                    activation: Activation::Relu,
                    gate: Gate::HardSigmoid,
                }),
                drop_rate: 0.0,
                bn: BN,
            };
            channels = row.filters;
            size = spec.output_size();
            spec
        })
        .collect()
}

/// The backbone; see the module documentation.
#[derive(Module, Debug)]
pub struct MobileNetV3Small {
    pub stem: ConvBn,
    pub blocks: Vec<InvertedResidual>,
    pub last: ConvBn,
}

impl MobileNetV3Small {
    /// A freshly initialised backbone (Keras's initializers: Glorot-uniform kernels, zero biases,
    /// BatchNorm scale 1 and offset 0).
    pub fn new(device: &Device) -> Self {
        let stem = ConvBn::new(
            ConvSpec::new([3, STEM_CHANNELS], 3, 2, FACE_SIZE),
            &INIT,
            BN,
            Activation::HardSwish,
            device,
        );
        let specs = block_specs();
        let blocks = specs
            .iter()
            .map(|spec| InvertedResidual::new(spec, &INIT, device))
            .collect();
        let (last_in, last_size) = specs.last().map_or((STEM_CHANNELS, FACE_SIZE / 2), |s| {
            (s.channels_out, s.output_size())
        });
        let last = ConvBn::new(
            ConvSpec::new([last_in, FEATURE_LEN], 1, 1, last_size),
            &INIT,
            BN,
            Activation::HardSwish,
            device,
        );
        MobileNetV3Small { stem, blocks, last }
    }
}

impl MobileNetV3Small {
    /// The last convolution's map (before the global pooling) of `face` scaled to `[0, 1]`.
    fn feature_map(&self, face: Tensor<4>) -> Tensor<4> {
        let mut x = self.stem.forward(face.mul_scalar(2.0).sub_scalar(1.0));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.last.forward(x)
    }
}

impl ArchitectureBackbone for MobileNetV3Small {
    const ARCHITECTURE: Architecture = Architecture::MobileNetV3Small;
    /// The single-input detector of the reference: the backbone's pooled features, then Dense(1).
    const HEAD: HeadConfig = HeadConfig::DENSE;
    /// The multi-input MobileNetV3Small of the reference (`MobileNetV3Small_SSIM_MASK.py`): the face
    /// branch is reduced to `sigmoid(Dense(1))` before the concatenation, the SSIM map goes through
    /// a one-channel Baseline CNN.
    const MULTI: MultiConfig = MultiConfig::FACE_SCORE;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl Backbone for MobileNetV3Small {
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
        let two = g.weight_f32("two", &[], &[2.0]);
        let one = g.weight_f32("one", &[], &[1.0]);
        let doubled = g.op("Mul", &[face, &two], &[]);
        let scaled = g.op("Sub", &[&doubled, &one], &[]);
        let mut x = self.stem.export(g, &scaled)?;
        for block in &self.blocks {
            x = block.export(g, &x)?;
        }
        let x = self.last.export(g, &x)?;
        Ok(export_global_avg_pool(g, &x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_rounding_is_keras_depth() {
        // Expanded and squeezed widths of the Keras model summary.
        let specs = block_specs();
        let expanded: Vec<usize> = specs.iter().map(|s| s.expanded).collect();
        assert_eq!(
            expanded,
            [16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576]
        );
        let squeezed: Vec<usize> = specs
            .iter()
            .filter_map(|s| s.squeeze_excite.map(|se| se.squeezed))
            .collect();
        assert_eq!(squeezed, [8, 24, 64, 64, 32, 40, 72, 144, 144]);
    }
}
