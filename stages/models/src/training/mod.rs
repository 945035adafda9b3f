//! Training a [`Detector`]: Adam on mini-batches with the reference's focal loss (or BCE), class
//! weights, augmentation, early stopping on the validation loss with the best weights restored,
//! a checkpoint after every epoch, and exact resumption from it.
//!
//! Reproducibility: every random choice is a pure function of `(seed, epoch, …)`: the batch order
//! and the augmentation draws use dfd's own generator, and burn's backend generator (dropout) is
//! reseeded at the start of every epoch. A run resumed from the checkpoint of epoch `k` therefore
//! computes exactly what the uninterrupted run computed in epochs `k + 1…`, bit for bit, on the
//! same backend and thread count.
//!
//! burn's backend generator is process-wide, so [`train`] and [`init_seeded`] hold one
//! process-wide lock: two trainings in one process run one after the other rather than
//! interleave their dropout draws.
//!
//! ```no_run
//! # use dfd_models::training::*;
//! # fn demo<D: dfd_models::Detector>(model: D, data: TrainingData) -> Result<(), TrainError> {
//! let config = TrainConfig::default(); // the reference: focal loss, batch 16, Adam 1e-3, patience 50
//! let outcome = train(model, &data, &config, Some(std::path::Path::new("ckpt/mesonet4-single")), &mut |_| {})?;
//! println!("best epoch {} of {}", outcome.best_epoch, outcome.epochs_run);
//! # Ok(()) }
//! ```

mod average;
mod checkpoint;
mod data;
mod early_stopping;
mod epoch;
mod loss;
pub mod metrics;
mod run;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use data::{sample_key, TrainSample, TrainingData};
pub use early_stopping::{EarlyStopping, Verdict};
pub use loss::{balanced_class_weights, balanced_class_weights_f64, LossKind};
pub use run::train;

use crate::augment::AugmentConfig;
use crate::self_blend::SelfBlendConfig;

/// How to train. [`Default`] is the reference study's setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epoch limit (the reference: 200). Raising it and calling [`train`] again on the same
    /// checkpoint directory continues the run.
    pub max_epochs: u32,
    /// Samples per optimiser step (the reference: 16); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Adam's step size (Keras's default 1e-3).
    pub learning_rate: f64,
    /// Adam's first-moment decay (Keras: 0.9).
    pub beta_1: f64,
    /// Adam's second-moment decay (Keras: 0.999).
    pub beta_2: f64,
    /// Adam's epsilon (Keras: 1e-7; burn's default is 1e-5).
    pub epsilon: f64,
    /// Epochs without a lower validation loss before stopping (the reference: 50).
    pub patience: u32,
    /// What early stopping watches and the kept weights are the best of (the reference: the
    /// validation loss). Absent from serialised configs when it is the validation loss, so
    /// checkpoints of runs from before the option keep their keys.
    #[serde(default, skip_serializing_if = "Monitor::is_val_loss")]
    pub monitor: Monitor,
    /// The loss (the reference: focal, gamma 2, alpha 0.25; BCE for ViT).
    pub loss: LossKind,
    /// Weight each training sample by its class's "balanced" weight `n / (2 · n_class)`.
    pub class_weight: bool,
    /// Augment training samples with these ranges; `None` trains on the crops as they are.
    pub augment: Option<AugmentConfig>,
    /// Replace a share of the REAL training samples by self-blended FAKEs each epoch; `None`
    /// trains on the dataset's labels alone. Absent from serialised configs when `None`, so the
    /// checkpoints of runs without it keep their keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_blend: Option<SelfBlendConfig>,
    /// Seeds the batch order, the augmentation and the backend generator (dropout).
    pub seed: u64,
    /// The run starts from a pretrained backbone (ImageNet weights) rather than from seeded
    /// random weights. [`train`] does not read it (the caller built the model); it is here so
    /// that a checkpoint of a pretrained run is never resumed as a run from scratch, or the other
    /// way round. Absent from serialised configs when false, so existing checkpoint keys stay.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pretrained: bool,
    /// How fast a pretrained backbone's BatchNorm running statistics follow its training (the
    /// weight of each new batch, burn's and PyTorch's convention). Like `pretrained`, [`train`]
    /// does not read it (the caller built the model with it); it is here so that checkpoints of
    /// different rates never mix. `None` without a pretrained backbone, and absent from
    /// serialised configs then.
    ///
    /// Why it matters: training normalises each batch by its own statistics, validation and
    /// scoring by the running ones. At TF's rate (0.01, which the shipped weights were trained
    /// with) the running statistics of a fine-tuning run of a few hundred steps stay mostly
    /// ImageNet's while the weights move, so every validation crop is scored on one side of 0.5
    /// and the validation loss rises while the ranking improves (measured: 0.083, 0.146, 0.118,
    /// 0.130 at 0.01; falling at 0.1, see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained_batch_norm_momentum: Option<f64>,
    /// Epochs (from the first) during which the backbone's parameters are not stepped, so that a
    /// new head first learns on the pretrained features instead of sending large gradients
    /// through them. BatchNorm keeps adapting its running statistics meanwhile. 0: none; absent
    /// from serialised configs when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub freeze_backbone_epochs: u32,
    /// Adam's step size for the backbone's parameters; `None` steps them at `learning_rate`
    /// like the rest. Absent from serialised configs when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_learning_rate: Option<f64>,
    /// From this epoch (1-based) on, the kept weights are the mean of the weights after each
    /// epoch run, this one to the last, rather than the weights of the best epoch (see
    /// `average.rs` for why). Before it, or if training stops earlier, the best epoch's are
    /// kept as usual. 0: off; absent from serialised configs when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub average_from_epoch: u32,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_epochs: 200,
            batch_size: 16,
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            patience: 50,
            monitor: Monitor::ValLoss,
            loss: LossKind::REFERENCE_FOCAL,
            class_weight: true,
            augment: Some(AugmentConfig::default()),
            self_blend: None,
            seed: 42,
            pretrained: false,
            pretrained_batch_norm_momentum: None,
            freeze_backbone_epochs: 0,
            backbone_learning_rate: None,
            average_from_epoch: 0,
        }
    }
}

/// The validation measure early stopping watches.
///
/// Why not always the loss: on a validation split of people the detector never saw, the loss of
/// a detector that is learning often rises for a few epochs before it falls (its first confident
/// scores are confidently wrong on some of those people) while its ranking of the validation
/// crops already improves; with a short patience, watching the loss then keeps the weights of
/// the first epoch, which have learned nothing (measured on demo set v2: `mesonet4-multi`'s val
/// loss 0.113, 0.147, 0.170 over three epochs while its val AUC went 0.48, 0.64, 0.76).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// The mean validation loss, lower is better (Keras's `monitor="val_loss"`); the training
    /// loss when there is no validation split.
    #[default]
    ValLoss,
    /// The validation ROC AUC over frames, higher is better. Where it is undefined (a
    /// validation split without both classes) the loss stands in, as for `ValLoss`.
    ValAuc,
}

impl Monitor {
    pub fn is_val_loss(&self) -> bool {
        *self == Monitor::ValLoss
    }
}

/// One epoch of the training history; the columns of `training_history` but the model name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: u32,
    /// Mean class-weighted loss over the epoch's training samples, as optimised (dropout and
    /// augmentation on), like Keras's `loss`.
    pub train_loss: f64,
    /// Accuracy on the training samples during the epoch (threshold 0.5).
    pub train_accuracy: f64,
    /// Mean unweighted loss on the validation split (Keras applies class weights to training
    /// only); `None` without validation samples.
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// ROC AUC on the validation split, ties counted half; `None` with one class or none.
    pub val_auc: Option<f64>,
    /// Wall seconds of the epoch, validation and checkpoint included.
    pub seconds: f64,
}

/// What [`train`] reports while it runs, for progress bars and logs.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// Training continues from a checkpoint holding `epochs_done` epochs.
    Resumed { epochs_done: u32 },
    /// Batch `batch` of `batches` (1-based) of epoch `epoch` is done.
    Batch {
        epoch: u32,
        batch: usize,
        batches: usize,
    },
    /// An epoch is done (and checkpointed, when a directory was given).
    Epoch(EpochStats),
}

/// The result of a training run.
#[derive(Clone, Debug)]
pub struct TrainOutcome<D> {
    /// The kept weights, in validation mode (no autodiff, dropout off), ready to export: those
    /// of the best epoch (lowest validation loss, or training loss without a validation split),
    /// or the mean over epochs `averaged_from..=epochs_run`.
    pub model: D,
    /// Every epoch run, resumed sessions included.
    pub history: Vec<EpochStats>,
    /// Epochs run before stopping (early stopping or the epoch limit).
    pub epochs_run: u32,
    /// The 1-based epoch whose weights `model` holds; with averaging, the last epoch of the
    /// mean.
    pub best_epoch: u32,
    /// The first epoch of the mean `model` holds (`TrainConfig::average_from_epoch`), or
    /// `None` when it holds the weights of one epoch.
    pub averaged_from: Option<u32>,
    /// The validation loss of the kept weights; `None` without a validation split.
    pub best_val_loss: Option<f64>,
    /// Whether early stopping ended the run (rather than the epoch limit).
    pub stopped_early: bool,
    /// Wall seconds of all epochs, resumed sessions included.
    pub seconds: f64,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no training samples")]
    NoTrainingSamples,
    #[error("{split} sample {index} (key {key:#018x}): {problem}")]
    BadSample {
        split: &'static str,
        index: usize,
        key: u64,
        problem: String,
    },
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("checkpoint {path}: {source}")]
    CheckpointIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path}: {message}")]
    CheckpointFormat { path: PathBuf, message: String },
    #[error(
        "checkpoint in {dir} belongs to another run ({what} differs); remove it or use another directory"
    )]
    CheckpointMismatch { dir: PathBuf, what: &'static str },
    #[error("training loss is {value} at epoch {epoch}, batch {batch}: training diverged")]
    NonFiniteLoss {
        epoch: u32,
        batch: usize,
        value: f64,
    },
    #[error("reading tensor data: {0}")]
    Tensor(String),
}

static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Holds the process-wide lock on burn's backend generator (see the module notes).
fn lock_backend_rng() -> MutexGuard<'static, ()> {
    // A panic in another training poisons the lock but leaves nothing inconsistent behind.
    BACKEND_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seeds burn's generator with `seed` and runs `init` (a model constructor) under the training
/// lock, so that the initial weights are a function of `seed` even while other threads train.
///
/// burn initialises parameters lazily, on first use; they are forced here, under the lock, or
/// they would draw from whatever state the generator is in when the model is first used.
pub fn init_seeded<M: Module>(device: &Device, seed: u64, init: impl FnOnce(&Device) -> M) -> M {
    let _guard = lock_backend_rng();
    device.seed(seed);
    let model = init(device);
    model.visit(&mut Materialize);
    model
}

/// Reads every float parameter once, which initialises the lazy ones in place.
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}
