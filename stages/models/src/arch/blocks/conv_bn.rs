//! Convolution + BatchNorm + activation, the unit the Keras ImageNet CNNs are made of, built with
//! Keras's padding so that strided layers see the same pixels as in Keras.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::activation::Activation;
use crate::export;
use crate::onnx::{ExportError, OnnxGraph};

/// Where a convolution sits: enough to build it with Keras's padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Square kernel side.
    pub kernel: usize,
    /// 1 or 2.
    pub stride: usize,
    /// 1 for a full convolution, the channel count for a depthwise one.
    pub groups: usize,
    /// Whether the layer has a bias (the convolutions followed by BatchNorm have none).
    pub bias: bool,
    /// Side of the (square) input map, which decides Keras's padding of strided layers.
    pub input_size: usize,
}

impl ConvSpec {
    /// A `kernel` x `kernel` convolution without bias (the BatchNorm after it has the offset).
    pub fn new(channels: [usize; 2], kernel: usize, stride: usize, input_size: usize) -> Self {
        ConvSpec {
            channels,
            kernel,
            stride,
            groups: 1,
            bias: false,
            input_size,
        }
    }

    /// A depthwise convolution (one filter per channel, Keras's `DepthwiseConv2D`).
    pub fn depthwise(channels: usize, kernel: usize, stride: usize, input_size: usize) -> Self {
        ConvSpec {
            groups: channels,
            ..ConvSpec::new([channels, channels], kernel, stride, input_size)
        }
    }

    /// A pointwise (1 x 1) convolution with a bias, as in squeeze-and-excite blocks.
    pub fn pointwise_with_bias(channels: [usize; 2]) -> Self {
        ConvSpec {
            bias: true,
            ..ConvSpec::new(channels, 1, 1, 1)
        }
    }

    /// Side of the output map: `ceil(input / stride)` for Keras's `same` and for its
    /// `ZeroPadding2D(correct_pad) + valid` pair alike.
    pub fn output_size(&self) -> usize {
        self.input_size.div_ceil(self.stride)
    }

    /// The convolution, weights drawn from `init`, bias zero (Keras's default bias initializer).
    pub fn init(&self, init: &Initializer, device: &Device) -> Conv2d {
        let mut conv = Conv2dConfig::new(self.channels, [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_groups(self.groups)
            .with_bias(self.bias)
            .with_padding(keras_padding(self.input_size, self.kernel, self.stride))
            .with_initializer(init.clone())
            .init(device);
        conv.bias = conv
            .bias
            .map(|bias| Param::from_tensor(Tensor::zeros(bias.shape(), device)));
        conv
    }
}

/// Keras's padding, made explicit: stride 1 is `same` (`(k - 1) / 2` on every side for the odd
/// kernels used here); stride 2 is `imagenet_utils.correct_pad` followed by a `valid` convolution,
/// which pads `k / 2` at the bottom/right and one less at the top/left on even inputs. TF's `same`
/// for stride 2 (MobileNetV3's stem) gives the same pads on odd kernels.
///
/// Why explicit: burn's `Same` is resolved per input size at run time, while the export needs the
/// numbers; the input size of every layer is fixed by the 224 x 224 face crop.
pub fn keras_padding(input_size: usize, kernel: usize, stride: usize) -> PaddingConfig2d {
    let half = kernel / 2;
    if stride == 1 {
        return PaddingConfig2d::Explicit(half, half, half, half);
    }
    let before = if input_size.is_multiple_of(2) {
        half.saturating_sub(1)
    } else {
        half
    };
    PaddingConfig2d::Explicit(before, before, half, half)
}

/// Keras `BatchNormalization` settings. Keras's momentum `m` keeps `m` of the old running value;
/// burn's momentum is the weight of the new batch, so `momentum` here is `1 - m`.
///
/// One training-time difference remains: burn updates the running variance with the biased batch
/// variance, TF's fused BatchNorm (what Keras uses on these 4-D maps) with the unbiased one, a
/// factor `n / (n - 1)` with `n = N * H * W` (at least 98 here). Inference is unaffected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnSpec {
    pub epsilon: f64,
    pub momentum: f64,
}

impl BnSpec {
    /// A BatchNorm over `channels`.
    pub fn init(&self, channels: usize, device: &Device) -> BatchNorm {
        BatchNormConfig::new(channels)
            .with_epsilon(self.epsilon)
            .with_momentum(self.momentum)
            .init(device)
    }
}

/// Convolution, BatchNorm, activation.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    #[module(skip)]
    pub activation: Activation,
}

impl ConvBn {
    /// The unit for `spec`, normalised with `bn` and followed by `activation`.
    pub fn new(
        spec: ConvSpec,
        init: &Initializer,
        bn: BnSpec,
        activation: Activation,
        device: &Device,
    ) -> Self {
        ConvBn {
            conv: spec.init(init, device),
            bn: bn.init(spec.channels[1], device),
            activation,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.activation
            .forward(self.bn.forward(self.conv.forward(x)))
    }

    /// ONNX form of [`ConvBn::forward`].
    pub fn export(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError> {
        let conv = export::conv2d(g, &self.conv, x)?;
        let bn = export::batch_norm(g, &self.bn, &conv)?;
        Ok(self.activation.export(g, &bn))
    }
}
