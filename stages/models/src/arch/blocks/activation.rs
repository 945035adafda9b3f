//! The activations of the ImageNet backbones that the shared export has no function for
//! (hard-sigmoid, hard-swish, swish, exact GELU), each as a burn function and its ONNX form, side
//! by side so that the two are visibly the same formula.

use burn::tensor::activation;
use burn::tensor::Tensor;

use crate::onnx::{Attr, OnnxGraph};

/// Keras MobileNetV3's `hard_sigmoid(x) = relu6(x + 3) / 6`, written as `clamp(x / 6 + 1/2, 0, 1)`:
/// the same function, and the form both burn's `hard_sigmoid` and ONNX `HardSigmoid` compute, so
/// burn and the export agree to the last bit instead of to rounding.
const HARD_SIGMOID_ALPHA: f64 = 1.0 / 6.0;
const HARD_SIGMOID_BETA: f64 = 0.5;

/// Which nonlinearity a block applies. Kept as data (not a closure) so that modules stay
/// `Clone + Debug` and the export can match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)` (EfficientNet-Lite: bounded for 8-bit quantisation).
    Relu6,
    /// `x * hard_sigmoid(x)` (MobileNetV3).
    HardSwish,
    /// `x * sigmoid(x)`, Keras's `swish` (EfficientNet).
    Swish,
    /// No nonlinearity: a linear bottleneck's projection.
    Identity,
}

impl Activation {
    /// The burn forward.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Relu6 => activation::relu6(x),
            Activation::HardSwish => x.clone() * hard_sigmoid(x),
            Activation::Swish => activation::silu(x),
            Activation::Identity => x,
        }
    }

    /// The same computation appended to `g`; returns the output's name.
    pub fn export(self, g: &mut OnnxGraph, x: &str) -> String {
        match self {
            Activation::Relu => g.op("Relu", &[x], &[]),
            // burn's relu6 is `clamp(x, 0, 6)`; ONNX `Clip` (opset 11 on) takes the bounds as
            // inputs.
            Activation::Relu6 => {
                let low = g.weight_f32("relu6_min", &[], &[0.0]);
                let high = g.weight_f32("relu6_max", &[], &[6.0]);
                g.op("Clip", &[x, &low, &high], &[])
            }
            // ONNX HardSwish is defined as x * max(0, min(1, x / 6 + 1/2)), our formula.
            Activation::HardSwish => g.op("HardSwish", &[x], &[]),
            Activation::Swish => {
                let gate = g.op("Sigmoid", &[x], &[]);
                g.op("Mul", &[x, &gate], &[])
            }
            Activation::Identity => x.to_owned(),
        }
    }
}

/// The gate of a squeeze-and-excite block: squashes the excitation logits to `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// `relu6(x + 3) / 6` (MobileNetV3).
    HardSigmoid,
    /// The logistic function (EfficientNet).
    Sigmoid,
}

impl Gate {
    /// The burn forward.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Gate::HardSigmoid => hard_sigmoid(x),
            Gate::Sigmoid => activation::sigmoid(x),
        }
    }

    /// The same computation appended to `g`; returns the output's name.
    pub fn export(self, g: &mut OnnxGraph, x: &str) -> String {
        match self {
            Gate::HardSigmoid => g.op(
                "HardSigmoid",
                &[x],
                &[
                    Attr::Float("alpha", HARD_SIGMOID_ALPHA as f32),
                    Attr::Float("beta", HARD_SIGMOID_BETA as f32),
                ],
            ),
            Gate::Sigmoid => g.op("Sigmoid", &[x], &[]),
        }
    }
}

/// Keras MobileNetV3's hard sigmoid (`clamp(x / 6 + 1/2, 0, 1)`).
pub fn hard_sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::hard_sigmoid(x, HARD_SIGMOID_ALPHA, HARD_SIGMOID_BETA)
}

/// Exact GELU, `0.5 * x * (1 + erf(x / sqrt 2))`, in the operation order of [`export_gelu`].
///
/// Why not burn's `gelu`: ONNX opset 17 has no `Gelu` operator, so the export spells the formula
/// out with `Erf`; writing burn's side with the same operations in the same order keeps the two
/// equal to rounding of the same sequence rather than of two different implementations.
/// vit-keras (the reference's ViT) uses the exact, erf-based GELU too (`approximate=False`).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = x
        .clone()
        .div_scalar(core::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0);
    (x * cdf).mul_scalar(0.5)
}

/// ONNX form of [`gelu`]: `Div`, `Erf`, `Add`, `Mul`, `Mul`.
pub fn export_gelu(g: &mut OnnxGraph, x: &str) -> String {
    let sqrt2 = g.weight_f32("sqrt2", &[], &[core::f64::consts::SQRT_2 as f32]);
    let one = g.weight_f32("one", &[], &[1.0]);
    let half = g.weight_f32("half", &[], &[0.5]);
    let scaled = g.op("Div", &[x, &sqrt2], &[]);
    let erf = g.op("Erf", &[&scaled], &[]);
    let cdf = g.op("Add", &[&erf, &one], &[]);
    let product = g.op("Mul", &[x, &cdf], &[]);
    g.op("Mul", &[&product, &half], &[])
}
