//! The pre-norm Transformer encoder block of ViT, as vit-keras (the reference's ViT) writes it:
//! `x + Dropout(MHSA(LN(x)))`, then `y + MLP(LN(y))` with an exact-GELU MLP.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::activation::{export_gelu, gelu};
use crate::export;
use crate::onnx::{Attr, ExportError, OnnxGraph};

/// vit-keras's `LayerNormalization(epsilon=1e-6)`. burn's `LayerNorm` keeps its epsilon private,
/// so every LayerNorm of the ViT is built with this constant and exported with it.
pub const LAYER_NORM_EPSILON: f64 = 1e-6;

/// Keras's default kernel initializer (`glorot_uniform`), which vit-keras's Dense layers keep.
const INIT: Initializer = Initializer::XavierUniform { gain: 1.0 };

/// A Dense layer with Keras's defaults: Glorot-uniform kernel, zero bias.
pub fn dense(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(INIT)
        .init(device);
    linear.bias = linear
        .bias
        .map(|b| burn::module::Param::from_tensor(Tensor::zeros(b.shape(), device)));
    linear
}

/// A LayerNorm over `width` with [`LAYER_NORM_EPSILON`].
pub fn layer_norm(width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width)
        .with_epsilon(LAYER_NORM_EPSILON)
        .init(device)
}

/// ONNX `LayerNormalization` over the last axis, with a LayerNorm built by [`layer_norm`].
pub fn export_layer_norm(
    g: &mut OnnxGraph,
    layer: &LayerNorm,
    x: &str,
) -> Result<String, ExportError> {
    let scale = g.weight("ln_gamma", &layer.gamma.val())?;
    let mut inputs = vec![x.to_owned(), scale];
    if let Some(beta) = &layer.beta {
        inputs.push(g.weight("ln_beta", &beta.val())?);
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(g.op(
        "LayerNormalization",
        &inputs,
        &[
            Attr::Int("axis", -1),
            Attr::Float("epsilon", LAYER_NORM_EPSILON as f32),
        ],
    ))
}

/// Multi-head self-attention with separate query, key, value and output projections (vit-keras's
/// `MultiHeadSelfAttention`): `softmax(q k^T / sqrt(d_head)) v`, heads concatenated.
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub heads: usize,
}

impl SelfAttention {
    /// Attention over `width`-wide tokens split into `heads` heads.
    pub fn new(width: usize, heads: usize, device: &Device) -> Self {
        SelfAttention {
            query: dense(width, width, device),
            key: dense(width, width, device),
            value: dense(width, width, device),
            output: dense(width, width, device),
            heads,
        }
    }

    /// `[N, T, D]` -> `[N, T, D]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, t, d] = x.dims();
        let head_width = d / self.heads;
        let split = |y: Tensor<3>| y.reshape([n, t, self.heads, head_width]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .div_scalar((head_width as f64).sqrt());
        let context = softmax(scores, 3).matmul(v);
        self.output
            .forward(context.swap_dims(1, 2).reshape([n, t, d]))
    }

    /// ONNX form of [`SelfAttention::forward`]: heads split with `Reshape` + `Transpose`.
    pub fn export(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError> {
        let [_, width] = self.query.weight.dims();
        let head_width = width / self.heads;
        let split_shape = g.const_i64("split", &[0, -1, self.heads as i64, head_width as i64]);
        let project = |g: &mut OnnxGraph, layer: &Linear, perm: Vec<i64>| {
            let projected = export::linear_nd(g, layer, x)?;
            let split = g.op("Reshape", &[&projected, &split_shape], &[]);
            Ok::<_, ExportError>(g.op("Transpose", &[&split], &[Attr::Ints("perm", perm)]))
        };
        let q = project(g, &self.query, vec![0, 2, 1, 3])?;
        let k_t = project(g, &self.key, vec![0, 2, 3, 1])?;
        let v = project(g, &self.value, vec![0, 2, 1, 3])?;
        let scale = g.weight_f32("attn_scale", &[], &[(head_width as f32).sqrt()]);
        let scores = g.op("MatMul", &[&q, &k_t], &[]);
        let scaled = g.op("Div", &[&scores, &scale], &[]);
        let weights = g.op("Softmax", &[&scaled], &[Attr::Int("axis", -1)]);
        let context = g.op("MatMul", &[&weights, &v], &[]);
        let merged = g.op(
            "Transpose",
            &[&context],
            &[Attr::Ints("perm", vec![0, 2, 1, 3])],
        );
        let merge_shape = g.const_i64("merge", &[0, -1, width as i64]);
        let merged = g.op("Reshape", &[&merged, &merge_shape], &[]);
        export::linear_nd(g, &self.output, &merged)
    }
}

/// One encoder block; see the module documentation. Dropout (vit-keras: 0.1) after the attention
/// and after each MLP layer, active only in training.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    pub attention_norm: LayerNorm,
    pub attention: SelfAttention,
    pub mlp_norm: LayerNorm,
    pub mlp_in: Linear,
    pub mlp_out: Linear,
    pub dropout: Dropout,
}

impl EncoderBlock {
    /// A block over `width`-wide tokens with `heads` heads and an MLP `mlp_width` wide.
    pub fn new(
        width: usize,
        heads: usize,
        mlp_width: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        EncoderBlock {
            attention_norm: layer_norm(width, device),
            attention: SelfAttention::new(width, heads, device),
            mlp_norm: layer_norm(width, device),
            mlp_in: dense(width, mlp_width, device),
            mlp_out: dense(mlp_width, width, device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let attended = self
            .attention
            .forward(self.attention_norm.forward(x.clone()));
        let x = x + self.dropout.forward(attended);
        let hidden = self
            .dropout
            .forward(gelu(self.mlp_in.forward(self.mlp_norm.forward(x.clone()))));
        x.clone() + self.dropout.forward(self.mlp_out.forward(hidden))
    }

    /// ONNX form of [`EncoderBlock::forward`] (dropout is the identity at inference).
    pub fn export(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError> {
        let normed = export_layer_norm(g, &self.attention_norm, x)?;
        let attended = self.attention.export(g, &normed)?;
        let x = g.op("Add", &[x, &attended], &[]);
        let normed = export_layer_norm(g, &self.mlp_norm, &x)?;
        let hidden = export::linear_nd(g, &self.mlp_in, &normed)?;
        let hidden = export_gelu(g, &hidden);
        let out = export::linear_nd(g, &self.mlp_out, &hidden)?;
        Ok(g.op("Add", &[&x, &out], &[]))
    }
}
