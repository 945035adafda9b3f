//! One epoch: the optimiser steps over the shuffled training split, then the validation pass.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use super::data::{Augmentation, HostBatch, TrainSample};
use super::metrics::{accuracy, roc_auc};
use super::{LossKind, TrainConfig, TrainError, TrainEvent};
use crate::rng::{mix_words, SplitMix64};
use crate::Detector;

/// Stream names, so that the generators of different purposes never coincide.
const ORDER_STREAM: u64 = 0x0D3D;
const BACKEND_STREAM: u64 = 0xD50F;

/// The training figures of one epoch.
pub(crate) struct TrainFigures {
    pub(crate) loss: f64,
    pub(crate) accuracy: f64,
}

/// The validation figures of one epoch.
pub(crate) struct ValidationFigures {
    pub(crate) loss: Option<f64>,
    pub(crate) accuracy: Option<f64>,
    pub(crate) auc: Option<f64>,
}

/// What a training epoch needs besides the model and the optimiser.
pub(crate) struct EpochContext<'a> {
    pub(crate) config: &'a TrainConfig,
    /// The autodiff device the model trains on.
    pub(crate) device: &'a Device,
    /// `(REAL, FAKE)` sample weights.
    pub(crate) class_weights: (f64, f64),
}

/// The order in which epoch `epoch` visits the `n` training samples.
pub(crate) fn batch_order(seed: u64, epoch: u32, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::for_stream(&[seed, ORDER_STREAM, u64::from(epoch)]).shuffle(&mut order);
    order
}

/// Runs the optimiser over one epoch of `samples` and returns the updated model.
pub(crate) fn train_epoch<D: Detector>(
    mut model: D,
    optimizer: &mut ModuleOptimizer,
    samples: &[TrainSample],
    epoch: u32,
    ctx: &EpochContext,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<(D, TrainFigures), TrainError> {
    let config = ctx.config;
    // Dropout draws from burn's backend generator: reseeding it per epoch makes epoch `k`
    // the same whether or not the run was resumed before it.
    ctx.device
        .seed(mix_words(&[config.seed, BACKEND_STREAM, u64::from(epoch)]));
    let order = batch_order(config.seed, epoch, samples.len());
    let batches = order.len().div_ceil(config.batch_size);
    let augment =
        (config.augment.is_some() || config.self_blend.is_some()).then_some(Augmentation {
            config: config.augment.as_ref(),
            self_blend: config.self_blend.as_ref(),
            seed: config.seed,
            epoch,
        });
    let (mut weighted_loss_sum, mut correct_sum) = (0.0f64, 0.0f64);
    for (index, chunk) in order.chunks(config.batch_size).enumerate() {
        let batch_samples: Vec<&TrainSample> = chunk.iter().map(|&i| &samples[i]).collect();
        let host = HostBatch::build(&batch_samples, model.form(), augment.as_ref());
        let (next, loss, logits) = step(model, optimizer, &host, epoch, ctx)?;
        model = next;
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                batch: index + 1,
                value: loss,
            });
        }
        weighted_loss_sum += loss * host.len as f64;
        correct_sum += accuracy(&logits, &host.targets).unwrap_or(0.0) * host.len as f64;
        on_event(TrainEvent::Batch {
            epoch,
            batch: index + 1,
            batches,
        });
    }
    let n = samples.len() as f64;
    Ok((
        model,
        TrainFigures {
            loss: weighted_loss_sum / n,
            accuracy: correct_sum / n,
        },
    ))
}

/// One optimiser step on `batch`: returns the updated model, the batch loss and the logits.
fn step<D: Detector>(
    model: D,
    optimizer: &mut ModuleOptimizer,
    batch: &HostBatch,
    epoch: u32,
    ctx: &EpochContext,
) -> Result<(D, f64, Vec<f32>), TrainError> {
    let device = ctx.device;
    let input = batch.input(device);
    let logits = model.forward_logits(&input);
    let n = batch.len;
    let (real_weight, fake_weight) = ctx.class_weights;
    let weights: Vec<f32> = batch
        .targets
        .iter()
        .map(|y| if *y > 0.5 { fake_weight } else { real_weight } as f32)
        .collect();
    let targets = column(batch.targets.clone(), n, device);
    let weights = column(weights, n, device);
    let mut loss = ctx.config.loss.batch(logits.clone(), targets, weights);
    if let Some(penalty) = model.weight_penalty() {
        loss = loss + penalty;
    }
    let model = apply_gradients(model, optimizer, loss.backward(), epoch, ctx.config);
    let loss_value = host_vec(loss)?.first().copied().unwrap_or(f32::NAN);
    Ok((model, f64::from(loss_value), host_vec(logits)?))
}

/// Steps `model` along `gradients`: all parameters at `learning_rate` unless the configuration
/// treats the backbone apart. Then the backbone's gradients are split off and dropped while
/// `epoch` is within `freeze_backbone_epochs`, or stepped at `backbone_learning_rate`; Adam keeps
/// its moments per parameter, so two steps over disjoint parameters are one step of each.
fn apply_gradients<D: Detector>(
    model: D,
    optimizer: &mut ModuleOptimizer,
    mut gradients: burn::tensor::Gradients,
    epoch: u32,
    config: &TrainConfig,
) -> D {
    let frozen = epoch <= config.freeze_backbone_epochs;
    if !frozen && config.backbone_learning_rate.is_none() {
        let grads = GradientsParams::from_grads(gradients, &model);
        return optimizer.step(config.learning_rate, model, grads);
    }
    let backbone = model.backbone_param_ids();
    let backbone_grads = GradientsParams::from_params(&mut gradients, &model, &backbone);
    let rest = GradientsParams::from_grads(gradients, &model);
    let model = optimizer.step(config.learning_rate, model, rest);
    if frozen {
        return model;
    }
    let rate = config
        .backbone_learning_rate
        .unwrap_or(config.learning_rate);
    optimizer.step(rate, model, backbone_grads)
}

/// Evaluates `model` (in validation mode) on `samples`, in order, `batch_size` at a time.
pub(crate) fn validate<D: Detector>(
    model: &D,
    samples: &[TrainSample],
    loss: LossKind,
    batch_size: usize,
    device: &Device,
) -> Result<ValidationFigures, TrainError> {
    if samples.is_empty() {
        return Ok(ValidationFigures {
            loss: None,
            accuracy: None,
            auc: None,
        });
    }
    let mut logits = Vec::with_capacity(samples.len());
    let mut targets = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch_size) {
        let refs: Vec<&TrainSample> = chunk.iter().collect();
        let host = HostBatch::build(&refs, model.form(), None);
        logits.extend(host_vec(model.forward_logits(&host.input(device)))?);
        targets.extend(host.targets);
    }
    let total: f64 = logits
        .iter()
        .zip(&targets)
        .map(|(z, y)| loss.value(f64::from(*z), f64::from(*y)))
        .sum();
    // Keras's val_loss includes the regularisers' terms, and early stopping watches it.
    let penalty = match model.weight_penalty() {
        Some(p) => host_vec(p)?.first().copied().map_or(0.0, f64::from),
        None => 0.0,
    };
    Ok(ValidationFigures {
        loss: Some(total / samples.len() as f64 + penalty),
        accuracy: accuracy(&logits, &targets),
        auc: roc_auc(&logits, &targets),
    })
}

fn column(values: Vec<f32>, n: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values, [n, 1]), device)
}

fn host_vec<const R: usize>(tensor: Tensor<R>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Tensor(format!("{e:?}")))
}
