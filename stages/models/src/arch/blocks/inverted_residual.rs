//! The inverted residual ("MBConv") block of MobileNetV3 and EfficientNet: 1 x 1 expansion,
//! depthwise convolution, optional squeeze-and-excite, linear 1 x 1 projection, and a residual
//! connection when the shape allows it.

use burn::module::{Flag, Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Distribution, Tensor};

use super::activation::{Activation, Gate};
use super::conv_bn::{BnSpec, ConvBn, ConvSpec};
use super::squeeze_excite::SqueezeExcite;
use crate::onnx::{ExportError, OnnxGraph};

/// Squeeze-and-excite settings of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeSpec {
    /// Channels after the squeeze.
    pub squeezed: usize,
    pub activation: Activation,
    pub gate: Gate,
}

/// One block, as the Keras applications describe it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSpec {
    pub channels_in: usize,
    /// Channels after the expansion; equal to `channels_in` when the block has no expansion
    /// convolution (MobileNetV3's first block, EfficientNet's expand ratio 1).
    pub expanded: usize,
    pub channels_out: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Side of the input map (for Keras's padding of the strided depthwise convolution).
    pub input_size: usize,
    pub activation: Activation,
    pub squeeze_excite: Option<SeSpec>,
    /// Drop-connect probability of the residual branch (EfficientNet; training only).
    pub drop_rate: f64,
    pub bn: BnSpec,
}

impl BlockSpec {
    /// Whether the block adds its input back: Keras does when the stride is 1 and the channel
    /// count is unchanged.
    pub fn has_residual(&self) -> bool {
        self.stride == 1 && self.channels_in == self.channels_out
    }

    /// Side of the output map.
    pub fn output_size(&self) -> usize {
        self.input_size.div_ceil(self.stride)
    }
}

/// The block; see the module documentation.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub expand: Option<ConvBn>,
    pub depthwise: ConvBn,
    pub squeeze_excite: Option<SqueezeExcite>,
    pub project: ConvBn,
    pub drop_path: Option<DropPath>,
}

impl InvertedResidual {
    /// The block `spec` describes, weights drawn from `init`.
    pub fn new(spec: &BlockSpec, init: &Initializer, device: &Device) -> Self {
        let expand = (spec.expanded != spec.channels_in).then(|| {
            let conv = ConvSpec::new([spec.channels_in, spec.expanded], 1, 1, spec.input_size);
            ConvBn::new(conv, init, spec.bn, spec.activation, device)
        });
        let depthwise = ConvBn::new(
            ConvSpec::depthwise(spec.expanded, spec.kernel, spec.stride, spec.input_size),
            init,
            spec.bn,
            spec.activation,
            device,
        );
        let squeeze_excite = spec.squeeze_excite.map(|se| {
            SqueezeExcite::new(
                spec.expanded,
                se.squeezed,
                se.activation,
                se.gate,
                init,
                device,
            )
        });
        let project = ConvBn::new(
            ConvSpec::new([spec.expanded, spec.channels_out], 1, 1, spec.output_size()),
            init,
            spec.bn,
            Activation::Identity,
            device,
        );
        let drop_path = spec.has_residual().then(|| DropPath::new(spec.drop_rate));
        InvertedResidual {
            expand,
            depthwise,
            squeeze_excite,
            project,
            drop_path,
        }
    }

    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some(expand) = &self.expand {
            x = expand.forward(x);
        }
        x = self.depthwise.forward(x);
        if let Some(se) = &self.squeeze_excite {
            x = se.forward(x);
        }
        x = self.project.forward(x);
        match &self.drop_path {
            Some(drop_path) => drop_path.forward(x) + input,
            None => x,
        }
    }

    /// ONNX form of [`InvertedResidual::forward`] (drop-connect is the identity at inference).
    pub fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        let mut x = input.to_owned();
        if let Some(expand) = &self.expand {
            x = expand.export(g, &x)?;
        }
        x = self.depthwise.export(g, &x)?;
        if let Some(se) = &self.squeeze_excite {
            x = se.export(g, &x)?;
        }
        x = self.project.export(g, &x)?;
        Ok(match &self.drop_path {
            Some(_) => g.op("Add", &[&x, input], &[]),
            None => x,
        })
    }
}

/// Drop-connect (stochastic depth): in training, zeroes a sample's whole residual branch with
/// probability `prob` and scales the kept ones by `1 / (1 - prob)`, as Keras EfficientNet's
/// `Dropout(rate, noise_shape=(None, 1, 1, 1))` does. The identity at inference, or with
/// `prob == 0` (MobileNetV3), so the export emits nothing for it.
///
/// Training is recognised as burn's own `Dropout` recognises it: an autodiff device and the
/// layer's `training` flag on.
#[derive(Module, Debug)]
pub struct DropPath {
    pub prob: f64,
    pub training: Param<Flag>,
}

impl DropPath {
    /// A drop-connect with probability `prob` in `[0, 1)`.
    pub fn new(prob: f64) -> Self {
        DropPath {
            prob,
            training: Param::from_bool(true),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.prob == 0.0 || !self.training.is_enabled() || !x.device().is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        let [n, _, _, _] = x.dims();
        let mask = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
        (x * mask).div_scalar(keep)
    }
}
