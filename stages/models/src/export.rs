//! ONNX export of the burn layers the detectors are built from: one function per layer, each
//! appending the layer's inference-time computation to an [`OnnxGraph`] and returning the name of
//! the value it produced.
//!
//! Every function reads its weights from the burn module itself, so a trained model exports what
//! it learned, and each mirrors what burn 0.22.1's `forward` does in *inference* mode (a plain,
//! non-autodiff device or a module after [`burn::module::Module::valid`]): BatchNorm normalises
//! with its running statistics, Dropout is the identity. The layout is NCHW throughout, in burn
//! and in the graph alike, so `Flatten` orders features `(C, H, W)` on both sides; this differs
//! from Keras's NHWC flatten, which only matters when importing Keras weights (we do not).
//!
//! Architectures compose these into their `export_features`; layers this file lacks (hard-swish,
//! LayerNorm, attention, ...) belong next to the architecture that needs them, written the same
//! way: take the layer and the input's name, return the output's name.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Dropout, LeakyRelu, Linear, PaddingConfig2d};

use crate::onnx::{tensor_values, Attr, ExportError, OnnxGraph};

/// Explicit pads `[top, left, bottom, right]` (ONNX's `pads` order for 2-D ops, and burn's
/// `PaddingConfig2d::Explicit` order) for a burn padding config.
///
/// `Same` is resolved as burn resolves it, which is only independent of the input size when the
/// stride is 1: then the total padding is `kernel - 1`, the extra pixel (even kernels) going to
/// the bottom/right. Burn ignores dilation there, and so do we, to stay equal to burn; layers
/// with dilation should use `Explicit` padding (ours do). Strided `Same` depends on the input's
/// size, which the graph does not carry here: use `Explicit` for it.
pub fn pads_2d(
    what: &str,
    padding: &PaddingConfig2d,
    kernel: [usize; 2],
    stride: [usize; 2],
) -> Result<[i64; 4], ExportError> {
    match padding {
        PaddingConfig2d::Valid => Ok([0; 4]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            Ok([*top as i64, *left as i64, *bottom as i64, *right as i64])
        }
        PaddingConfig2d::Same if stride == [1, 1] => {
            let total = [kernel[0].saturating_sub(1), kernel[1].saturating_sub(1)];
            let start = [total[0] / 2, total[1] / 2];
            Ok([
                start[0] as i64,
                start[1] as i64,
                (total[0] - start[0]) as i64,
                (total[1] - start[1]) as i64,
            ])
        }
        PaddingConfig2d::Same => Err(ExportError::Unsupported {
            what: what.to_owned(),
            why: format!(
                "`Same` padding with stride {stride:?} depends on the input size; use Explicit"
            ),
        }),
    }
}

fn ints<const N: usize>(name: &'static str, values: [usize; N]) -> Attr {
    Attr::Ints(name, values.iter().map(|v| *v as i64).collect())
}

/// `Conv2d` (any kernel, stride, dilation, groups, padding as in [`pads_2d`]) -> ONNX `Conv`.
/// burn's weight layout `[out, in / groups, kh, kw]` is ONNX's, so the weight goes in as is.
pub fn conv2d(g: &mut OnnxGraph, layer: &Conv2d, input: &str) -> Result<String, ExportError> {
    let weight = g.weight("conv_w", &layer.weight.val())?;
    let bias = match &layer.bias {
        Some(bias) => Some(g.weight("conv_b", &bias.val())?),
        None => None,
    };
    conv_node(g, layer, input, &weight, bias.as_deref())
}

/// The `Conv` node of `layer` (its kernel, stride, dilation, groups and padding) with the given
/// weight and bias initializers.
fn conv_node(
    g: &mut OnnxGraph,
    layer: &Conv2d,
    input: &str,
    weight: &str,
    bias: Option<&str>,
) -> Result<String, ExportError> {
    let pads = pads_2d("Conv2d", &layer.padding, layer.kernel_size, layer.stride)?;
    let mut inputs = vec![input, weight];
    inputs.extend(bias);
    let attrs = [
        ints("kernel_shape", layer.kernel_size),
        ints("strides", layer.stride),
        ints("dilations", layer.dilation),
        Attr::Int("group", layer.groups as i64),
        Attr::Ints("pads", pads.to_vec()),
    ];
    Ok(g.op("Conv", &inputs, &attrs))
}

/// `BatchNorm` in its inference form -> ONNX `BatchNormalization` with the running mean and
/// variance and the layer's own epsilon (`training_mode` left at its default, 0).
pub fn batch_norm(
    g: &mut OnnxGraph,
    layer: &BatchNorm,
    input: &str,
) -> Result<String, ExportError> {
    let scale = g.weight("bn_gamma", &layer.gamma.val())?;
    let bias = g.weight("bn_beta", &layer.beta.val())?;
    let mean = g.weight("bn_mean", &layer.running_mean.value())?;
    let var = g.weight("bn_var", &layer.running_var.value())?;
    Ok(g.op(
        "BatchNormalization",
        &[input, &scale, &bias, &mean, &var],
        &[Attr::Float("epsilon", layer.epsilon as f32)],
    ))
}

/// `Conv2d -> ReLU -> BatchNorm -> MaxPool2d` (the reference's order, ReLU before BatchNorm),
/// exported for speed: BatchNorm is folded away when every channel's scale is positive.
///
/// Why: inference-mode BatchNorm is `s * x + t` per channel, with `s = gamma / sqrt(var + eps)`
/// and `t = beta - mean * s`. The usual folding into the convolution does not apply because ReLU
/// sits between them, but for `s > 0`, `s * relu(z) = relu(s * z)`, and a max over a window
/// commutes with adding a constant. So the block equals `Conv(W * s, b * s) -> ReLU -> MaxPool ->
/// Add(t)`: the per-channel affine pass at full resolution disappears and the shift runs on the
/// pooled map (4 or 16 times fewer values). ONNX Runtime ran each BatchNorm as a depthwise
/// convolution, a quarter of MesoNet-4's inference time; folded, MesoNet-4 scored 23% more crops
/// per second at batch 4 and 11% more at batch 64 (`bench/README.md`).
/// Where some scale is zero or negative (a trained gamma can cross zero) the exact identity does
/// not hold and the block is exported as it is written, with a `BatchNormalization` node.
pub fn conv_relu_bn_pool(
    g: &mut OnnxGraph,
    conv: &Conv2d,
    norm: &BatchNorm,
    pool: &MaxPool2d,
    input: &str,
) -> Result<String, ExportError> {
    let Some(folded) = FoldedBatchNorm::of(norm)? else {
        let x = conv2d(g, conv, input)?;
        let x = relu(g, &x);
        let x = batch_norm(g, norm, &x)?;
        return max_pool2d(g, pool, &x);
    };
    let weight_dims = conv.weight.dims();
    let per_channel: usize = weight_dims[1..].iter().product();
    let mut weight = tensor_values("conv weight", &conv.weight.val())?;
    for (value, s) in weight.iter_mut().zip(
        folded
            .scale
            .iter()
            .flat_map(|s| std::iter::repeat_n(*s, per_channel)),
    ) {
        *value = (f64::from(*value) * s) as f32;
    }
    let bias = match &conv.bias {
        Some(bias) => tensor_values("conv bias", &bias.val())?,
        None => vec![0.0; folded.scale.len()],
    };
    let bias: Vec<f32> = bias
        .iter()
        .zip(&folded.scale)
        .map(|(b, s)| (f64::from(*b) * s) as f32)
        .collect();
    let weight = g.weight_f32("conv_w_bn", &weight_dims, &weight);
    let bias = g.weight_f32("conv_b_bn", &[bias.len()], &bias);
    let x = conv_node(g, conv, input, &weight, Some(&bias))?;
    let x = relu(g, &x);
    let x = max_pool2d(g, pool, &x)?;
    let shift = g.weight_f32("bn_shift", &[1, folded.shift.len(), 1, 1], &folded.shift);
    Ok(g.op("Add", &[&x, &shift], &[]))
}

/// Inference-mode BatchNorm as a per-channel `scale * x + shift`, computed in f64.
struct FoldedBatchNorm {
    scale: Vec<f64>,
    shift: Vec<f32>,
}

impl FoldedBatchNorm {
    /// `None` unless every scale is positive and finite (see [`conv_relu_bn_pool`]).
    fn of(norm: &BatchNorm) -> Result<Option<FoldedBatchNorm>, ExportError> {
        let gamma = tensor_values("bn gamma", &norm.gamma.val())?;
        let beta = tensor_values("bn beta", &norm.beta.val())?;
        let mean = tensor_values("bn running mean", &norm.running_mean.value())?;
        let var = tensor_values("bn running var", &norm.running_var.value())?;
        let scale: Vec<f64> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| f64::from(*g) / (f64::from(*v) + norm.epsilon).sqrt())
            .collect();
        if !scale.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Ok(None);
        }
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| (f64::from(*b) - f64::from(*m) * s) as f32)
            .collect();
        Ok(Some(FoldedBatchNorm { scale, shift }))
    }
}

/// `Linear` on a `[N, d_in]` input -> ONNX `Gemm`. burn stores the weight as `[d_in, d_out]`
/// (whatever its `LinearLayout`, `val()` returns that shape), which is Gemm's `B` untransposed.
pub fn linear(g: &mut OnnxGraph, layer: &Linear, input: &str) -> Result<String, ExportError> {
    let weight = g.weight("dense_w", &layer.weight.val())?;
    match &layer.bias {
        Some(bias) => {
            let bias = g.weight("dense_b", &bias.val())?;
            Ok(g.op("Gemm", &[input, &weight, &bias], &[]))
        }
        None => Ok(g.op("Gemm", &[input, &weight], &[])),
    }
}

/// `Linear` on an input of any rank `[..., d_in]` (token sequences, for instance) ->
/// ONNX `MatMul` (+ `Add` for the bias), which broadcast over the leading axes where `Gemm` is
/// 2-D only.
pub fn linear_nd(g: &mut OnnxGraph, layer: &Linear, input: &str) -> Result<String, ExportError> {
    let weight = g.weight("dense_w", &layer.weight.val())?;
    let product = g.op("MatMul", &[input, &weight], &[]);
    match &layer.bias {
        Some(bias) => {
            let bias = g.weight("dense_b", &bias.val())?;
            Ok(g.op("Add", &[&product, &bias], &[]))
        }
        None => Ok(product),
    }
}

/// `MaxPool2d` -> ONNX `MaxPool` (padding as in [`pads_2d`]; padded cells never win, as in burn).
pub fn max_pool2d(
    g: &mut OnnxGraph,
    layer: &MaxPool2d,
    input: &str,
) -> Result<String, ExportError> {
    let pads = pads_2d("MaxPool2d", &layer.padding, layer.kernel_size, layer.stride)?;
    let attrs = [
        ints("kernel_shape", layer.kernel_size),
        ints("strides", layer.stride),
        ints("dilations", layer.dilation),
        Attr::Ints("pads", pads.to_vec()),
        Attr::Int("ceil_mode", i64::from(layer.ceil_mode)),
    ];
    Ok(g.op("MaxPool", &[input], &attrs))
}

/// `AdaptiveAvgPool2d` with output `[1, 1]` (global average pooling) -> ONNX
/// `GlobalAveragePool`, `[N, C, H, W]` -> `[N, C, 1, 1]`. Other output sizes have no single ONNX
/// operator for every input size and are refused.
pub fn global_avg_pool(
    g: &mut OnnxGraph,
    layer: &AdaptiveAvgPool2d,
    input: &str,
) -> Result<String, ExportError> {
    if layer.output_size != [1, 1] {
        return Err(ExportError::Unsupported {
            what: "AdaptiveAvgPool2d".to_owned(),
            why: format!(
                "output size {:?}; only [1, 1] (global pooling) is exported",
                layer.output_size
            ),
        });
    }
    Ok(g.op("GlobalAveragePool", &[input], &[]))
}

/// ReLU -> ONNX `Relu`.
pub fn relu(g: &mut OnnxGraph, input: &str) -> String {
    g.op("Relu", &[input], &[])
}

/// `LeakyRelu` -> ONNX `LeakyRelu` with the layer's negative slope as `alpha`.
pub fn leaky_relu(g: &mut OnnxGraph, layer: &LeakyRelu, input: &str) -> String {
    g.op(
        "LeakyRelu",
        &[input],
        &[Attr::Float("alpha", layer.negative_slope as f32)],
    )
}

/// Sigmoid -> ONNX `Sigmoid`.
pub fn sigmoid(g: &mut OnnxGraph, input: &str) -> String {
    g.op("Sigmoid", &[input], &[])
}

/// `Dropout` at inference is the identity: no node, the input's name is returned. Taking the
/// layer keeps call sites shaped like the burn forward they mirror.
pub fn dropout(_layer: &Dropout, input: &str) -> String {
    input.to_owned()
}

/// Flatten everything after the batch axis, `[N, ...]` -> `[N, prod(...)]`, in row-major order
/// (burn's `flatten(1, D - 1)` on the same NCHW tensor gives the same order).
pub fn flatten(g: &mut OnnxGraph, input: &str) -> String {
    g.op("Flatten", &[input], &[Attr::Int("axis", 1)])
}

/// Concatenation along `axis` (1 for channels of NCHW maps or features of `[N, F]` vectors).
pub fn concat(g: &mut OnnxGraph, inputs: &[&str], axis: i64) -> String {
    g.op("Concat", inputs, &[Attr::Int("axis", axis)])
}
