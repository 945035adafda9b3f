//! Squeeze-and-excite: channel weights computed from the globally pooled map, multiplied back in.
//! MobileNetV3 and EfficientNet differ only in the inner activation and the gate.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::activation::{Activation, Gate};
use super::conv_bn::ConvSpec;
use crate::export;
use crate::onnx::{ExportError, OnnxGraph};

/// `x * gate(expand(activation(reduce(mean_hw(x)))))`, the two 1 x 1 convolutions with biases.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    pub reduce: Conv2d,
    pub expand: Conv2d,
    #[module(skip)]
    pub activation: Activation,
    #[module(skip)]
    pub gate: Gate,
}

impl SqueezeExcite {
    /// A block over `channels`, squeezing to `squeezed`.
    pub fn new(
        channels: usize,
        squeezed: usize,
        activation: Activation,
        gate: Gate,
        init: &Initializer,
        device: &Device,
    ) -> Self {
        SqueezeExcite {
            reduce: ConvSpec::pointwise_with_bias([channels, squeezed]).init(init, device),
            expand: ConvSpec::pointwise_with_bias([squeezed, channels]).init(init, device),
            activation,
            gate,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        let squeezed = global_avg_pool(x.clone()).reshape([n, c, 1, 1]);
        let hidden = self.activation.forward(self.reduce.forward(squeezed));
        let weights = self.gate.forward(self.expand.forward(hidden));
        x * weights
    }

    /// ONNX form of [`SqueezeExcite::forward`].
    pub fn export(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError> {
        let squeezed = g.op("GlobalAveragePool", &[x], &[]);
        let reduced = export::conv2d(g, &self.reduce, &squeezed)?;
        let hidden = self.activation.export(g, &reduced);
        let expanded = export::conv2d(g, &self.expand, &hidden)?;
        let weights = self.gate.export(g, &expanded);
        Ok(g.op("Mul", &[x, &weights], &[]))
    }
}

/// Mean over the spatial axes, `[N, C, H, W]` -> `[N, C]` (Keras's `GlobalAveragePooling2D`).
/// One mean over `H * W` values, as ONNX `GlobalAveragePool` takes it, rather than two nested means.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

/// ONNX form of [`global_avg_pool`]: `GlobalAveragePool` then `Flatten`.
pub fn export_global_avg_pool(g: &mut OnnxGraph, x: &str) -> String {
    let pooled = g.op("GlobalAveragePool", &[x], &[]);
    export::flatten(g, &pooled)
}
