//! Layers built the way the reference study's Keras code builds them, so that our models start
//! training from the same place: Glorot-uniform kernels and zero biases (Keras's defaults, where
//! burn defaults to Kaiming-uniform for both), and BatchNorm with Keras's epsilon 1e-3 and
//! momentum 0.99 (burn's momentum is the weight of the *new* batch: 1 - 0.99 = 0.01).

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Keras `BatchNormalization`'s default epsilon.
pub const BATCH_NORM_EPSILON: f64 = 1e-3;
/// Keras's default momentum 0.99, as burn's update weight.
pub const BATCH_NORM_MOMENTUM: f64 = 0.01;

const GLOROT_UNIFORM: Initializer = Initializer::XavierUniform { gain: 1.0 };

/// A `Conv2d` from `config` with Glorot-uniform weights and a zero bias.
pub fn conv2d(config: Conv2dConfig, device: &Device) -> Conv2d {
    let mut conv = config.with_initializer(GLOROT_UNIFORM).init(device);
    conv.bias = conv.bias.map(|bias| zeros_like_param(&bias, device));
    conv
}

/// A `Linear` `d_in -> d_out` with Glorot-uniform weights and a zero bias.
pub fn dense(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(GLOROT_UNIFORM)
        .init(device);
    linear.bias = linear.bias.map(|bias| zeros_like_param(&bias, device));
    linear
}

/// A `BatchNorm` over `channels` with Keras's epsilon and momentum.
pub fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(BATCH_NORM_EPSILON)
        .with_momentum(BATCH_NORM_MOMENTUM)
        .init(device)
}

fn zeros_like_param(param: &Param<Tensor<1>>, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::zeros(param.shape(), device))
}
