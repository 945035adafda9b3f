//! Building blocks shared by the reference study's small CNNs (Baseline, MesoNet-4,
//! MesoInception-4, the SSIM-map branch), each with its burn forward and its ONNX export side by
//! side so the two are read (and changed) together.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, LeakyRelu, LeakyReluConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::export;
use crate::keras;
use crate::onnx::{ExportError, OnnxGraph};

/// Keras's `padding='same'` for a stride-1 convolution with an odd kernel and a dilation, as
/// explicit symmetric padding. Explicit because burn's own `Same` ignores dilation.
pub fn same_padding(kernel: usize, dilation: usize) -> PaddingConfig2d {
    let p = dilation * (kernel - 1) / 2;
    PaddingConfig2d::Explicit(p, p, p, p)
}

/// A stride-1 `kernel x kernel` convolution `c_in -> c_out` with Keras-`same` padding.
pub fn same_conv(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    dilation: usize,
    device: &Device,
) -> Conv2d {
    let config = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_dilation([dilation, dilation])
        .with_padding(same_padding(kernel, dilation));
    keras::conv2d(config, device)
}

/// `Conv2D(c_out, k, padding='same', activation='relu') -> BatchNormalization() ->
/// MaxPooling2D(pool)`, the repeated unit of Baseline, MesoNet-4 and the SSIM-map CNN. Note the
/// order the reference uses: ReLU before BatchNorm. The pools we use divide the map sizes
/// exactly, so Keras's `same` and `valid` pooling agree and no padding is needed.
#[derive(Module, Debug)]
pub struct ConvReluBnPool {
    conv: Conv2d,
    activation: Relu,
    norm: BatchNorm,
    pool: MaxPool2d,
}

impl ConvReluBnPool {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, pool: usize, device: &Device) -> Self {
        ConvReluBnPool {
            conv: same_conv(c_in, c_out, kernel, 1, device),
            activation: Relu::new(),
            norm: keras::batch_norm(c_out, device),
            pool: MaxPool2dConfig::new([pool, pool]).init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.activation.forward(self.conv.forward(x));
        self.pool.forward(self.norm.forward(x))
    }

    pub fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        export::conv_relu_bn_pool(g, &self.conv, &self.norm, &self.pool, input)
    }
}

/// `Conv2D(c_out, k, dilation, padding='same') -> BatchNormalization() -> LeakyReLU(0.1)`, the
/// unit of the MesoInception block's paths.
#[derive(Module, Debug)]
pub struct ConvBnLeaky {
    conv: Conv2d,
    norm: BatchNorm,
    activation: LeakyRelu,
}

impl ConvBnLeaky {
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
        negative_slope: f64,
        device: &Device,
    ) -> Self {
        ConvBnLeaky {
            conv: same_conv(c_in, c_out, kernel, dilation, device),
            norm: keras::batch_norm(c_out, device),
            activation: LeakyReluConfig::new()
                .with_negative_slope(negative_slope)
                .init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.activation
            .forward(self.norm.forward(self.conv.forward(x)))
    }

    pub fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        let x = export::conv2d(g, &self.conv, input)?;
        let x = export::batch_norm(g, &self.norm, &x)?;
        Ok(export::leaky_relu(g, &self.activation, &x))
    }
}

/// Global average pooling followed by flattening: `[N, C, H, W]` -> `[N, C]` (Keras's
/// `GlobalAveragePooling2D`).
#[derive(Module, Debug)]
pub struct GlobalAvgPool {
    pool: AdaptiveAvgPool2d,
}

impl GlobalAvgPool {
    pub fn new() -> Self {
        GlobalAvgPool {
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.pool.forward(x).flatten(1, 3)
    }

    pub fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        let x = export::global_avg_pool(g, &self.pool, input)?;
        Ok(export::flatten(g, &x))
    }
}

impl Default for GlobalAvgPool {
    fn default() -> Self {
        Self::new()
    }
}
