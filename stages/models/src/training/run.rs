//! The whole run: resume or start, epochs, early stopping, checkpoints.

use std::path::Path;
use std::time::Instant;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::Device;

use super::average;
use super::checkpoint::{self, CheckpointDir, CheckpointFiles, CheckpointMeta};
use super::epoch::{train_epoch, validate, EpochContext};
use super::{
    balanced_class_weights, balanced_class_weights_f64, lock_backend_rng, EarlyStopping,
    EpochStats, Monitor, TrainConfig, TrainError, TrainEvent, TrainOutcome, TrainingData,
};
use crate::Detector;

/// Trains `model` on `data` as `config` says and returns the best weights with the history.
///
/// `model` gives the architecture, the starting weights and the device: training runs on the
/// autodiff version of the device its parameters are on (create it with
/// [`super::init_seeded`] for reproducible initial weights). With `checkpoints`, the state is
/// saved there after every epoch, and a later call with the same directory, data and
/// configuration (the epoch limit may differ) continues from the last complete epoch instead
/// of starting over; a finished run returns at once. `on_event` hears of every batch and epoch.
///
/// Holds the process-wide training lock for its whole duration (see the module notes).
pub fn train<D: Detector>(
    model: D,
    data: &TrainingData,
    config: &TrainConfig,
    checkpoints: Option<&Path>,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainOutcome<D>, TrainError> {
    check_config(config)?;
    data.check(model.form())?;
    let _guard = lock_backend_rng();
    let device = training_device(&model);
    let store = checkpoints.map(CheckpointDir::new).transpose()?;
    let mut state = match &store {
        Some(store) => match store.load(config, data.digest())? {
            Some((meta, files)) => {
                on_event(TrainEvent::Resumed {
                    epochs_done: meta.epochs_done,
                });
                RunState::resume(&model, meta, files, &device, config)?
            }
            None => RunState::start(&model, &device, config),
        },
        None => RunState::start(&model, &device, config),
    };
    let class_weights = if config.class_weight {
        let (real, fake) = data.train_class_counts();
        match &config.self_blend {
            // Weighted by the classes an epoch holds once a share of its REALs are blended.
            Some(blend) => {
                let (real, fake) = blend.effective_counts(real, fake);
                balanced_class_weights_f64(real, fake)
            }
            None => balanced_class_weights(real, fake),
        }
    } else {
        (1.0, 1.0)
    };
    let ctx = EpochContext {
        config,
        device: &device,
        class_weights,
    };
    while !state.stopped_early && state.epochs_done < config.max_epochs {
        state.run_epoch(data, &ctx, store.as_ref(), on_event)?;
    }
    let kept_val_loss = match state.averaged_from(config) {
        // The mean was never validated as such: its loss is not any epoch's.
        Some(_) => {
            validate(
                &state.best,
                &data.validation,
                config.loss,
                config.batch_size,
                &device.clone().without_autodiff(),
            )?
            .loss
        }
        None => state.best_epoch_val_loss(),
    };
    Ok(state.into_outcome(config, kept_val_loss))
}

fn check_config(config: &TrainConfig) -> Result<(), TrainError> {
    let problem = if config.batch_size == 0 {
        Some("batch_size must be at least 1")
    } else if !positive(config.learning_rate) {
        Some("learning_rate must be positive")
    } else if !positive(config.epsilon) {
        Some("epsilon must be positive")
    } else if config.backbone_learning_rate.is_some_and(|r| !positive(r)) {
        Some("backbone_learning_rate must be positive")
    } else {
        None
    };
    match problem {
        Some(p) => Err(TrainError::Config(p.into())),
        None => Ok(()),
    }
}

/// A finite number above zero (NaN is not).
fn positive(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

/// The autodiff version of the device `model`'s parameters are on.
fn training_device<D: Detector>(model: &D) -> Device {
    model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_default()
        .autodiff()
}

/// Everything that changes from epoch to epoch (and goes into a checkpoint).
struct RunState<D> {
    /// The model being trained (training mode, autodiff device).
    model: D,
    optimizer: ModuleOptimizer,
    /// The best weights so far (validation mode), and whether they changed since the last
    /// checkpoint.
    best: D,
    best_changed: bool,
    early_stopping: EarlyStopping,
    history: Vec<EpochStats>,
    epochs_done: u32,
    stopped_early: bool,
}

impl<D: Detector> RunState<D> {
    fn start(model: &D, device: &Device, config: &TrainConfig) -> Self {
        RunState {
            model: to_training(model.valid(), device),
            optimizer: adam(config),
            best: model.valid(),
            best_changed: true,
            early_stopping: EarlyStopping::new(config.patience),
            history: Vec::new(),
            epochs_done: 0,
            stopped_early: false,
        }
    }

    fn resume(
        model: &D,
        meta: CheckpointMeta,
        files: CheckpointFiles,
        device: &Device,
        config: &TrainConfig,
    ) -> Result<Self, TrainError> {
        // `valid()` gives fresh running-statistics cells: loading into a plain clone would
        // write through to the caller's model, which shares them.
        let trained = load(model.valid(), files.model, &meta.model_file)?;
        let best = load(model.valid(), files.best, &meta.best_file)?;
        let optimizer = adam(config).from_bytes(files.optimizer).map_err(|e| {
            checkpoint::format_error(Path::new(&meta.optimizer_file), e.to_string())
        })?;
        Ok(RunState {
            model: to_training(trained, device),
            optimizer,
            best,
            best_changed: false,
            early_stopping: meta.early_stopping,
            history: meta.history,
            epochs_done: meta.epochs_done,
            stopped_early: meta.stopped_early,
        })
    }

    fn run_epoch(
        &mut self,
        data: &TrainingData,
        ctx: &EpochContext,
        store: Option<&CheckpointDir>,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        let started = Instant::now();
        let epoch = self.epochs_done + 1;
        let model = self.model.clone();
        let (model, train) = train_epoch(
            model,
            &mut self.optimizer,
            &data.train,
            epoch,
            ctx,
            on_event,
        )?;
        self.model = model;
        let snapshot = self.model.valid();
        let validation = validate(
            &snapshot,
            &data.validation,
            ctx.config.loss,
            ctx.config.batch_size,
            &ctx.device.clone().without_autodiff(),
        )?;
        // Early stopping minimises: the AUC enters negated. Where it is undefined (a validation
        // split without both classes: the data decide that once, for every epoch) the loss
        // stands in, and without a validation split the training loss.
        let loss = validation.loss.unwrap_or(train.loss);
        let monitored = match ctx.config.monitor {
            Monitor::ValLoss => loss,
            Monitor::ValAuc => validation.auc.map_or(loss, |auc| -auc),
        };
        let verdict = self.early_stopping.observe(epoch, monitored);
        if let Some(from) = averaged_from(ctx.config, epoch) {
            self.best = if epoch == from {
                snapshot.clone()
            } else {
                average::include(self.best.clone(), &snapshot, epoch - from)?
            };
            self.best_changed = true;
        } else if verdict.improved {
            self.best = snapshot.clone();
            self.best_changed = true;
        }
        self.epochs_done = epoch;
        self.stopped_early = verdict.stop;
        let mut stats = EpochStats {
            epoch,
            train_loss: train.loss,
            train_accuracy: train.accuracy,
            val_loss: validation.loss,
            val_accuracy: validation.accuracy,
            val_auc: validation.auc,
            seconds: 0.0,
        };
        self.history.push(stats.clone());
        if let Some(store) = store {
            self.save(store, snapshot, ctx.config, data.digest(), started)?;
        }
        stats.seconds = started.elapsed().as_secs_f64();
        if let Some(last) = self.history.last_mut() {
            last.seconds = stats.seconds;
        }
        on_event(TrainEvent::Epoch(stats));
        Ok(())
    }

    /// Checkpoints the state after `self.epochs_done`, the epoch's seconds included.
    fn save(
        &mut self,
        store: &CheckpointDir,
        snapshot: D,
        config: &TrainConfig,
        data_digest: u64,
        started: Instant,
    ) -> Result<(), TrainError> {
        let epoch = self.epochs_done;
        if let Some(last) = self.history.last_mut() {
            last.seconds = started.elapsed().as_secs_f64();
        }
        let meta = CheckpointMeta {
            format: 1,
            config: checkpoint::resumable_part(config),
            data_digest,
            epochs_done: epoch,
            stopped_early: self.stopped_early,
            early_stopping: self.early_stopping.clone(),
            history: self.history.clone(),
            model_file: checkpoint::model_file(epoch),
            optimizer_file: checkpoint::optimizer_file(epoch),
            best_file: checkpoint::best_file(self.kept_epoch(config)),
        };
        let optimizer = self.optimizer.into_bytes().map_err(|e| {
            checkpoint::format_error(Path::new(&meta.optimizer_file), e.to_string())
        })?;
        let best = self.best_changed.then(|| self.best.clone().into_record());
        store.save(&meta, snapshot.into_record(), optimizer, best)?;
        self.best_changed = false;
        Ok(())
    }

    /// The first epoch of the mean `best` holds, when it holds one.
    fn averaged_from(&self, config: &TrainConfig) -> Option<u32> {
        averaged_from(config, self.epochs_done)
    }

    /// The last epoch whose weights are in `best`.
    fn kept_epoch(&self, config: &TrainConfig) -> u32 {
        match self.averaged_from(config) {
            Some(_) => self.epochs_done,
            None => self.early_stopping.best_epoch,
        }
    }

    fn best_epoch_val_loss(&self) -> Option<f64> {
        let best_epoch = self.early_stopping.best_epoch;
        self.history
            .iter()
            .find(|e| e.epoch == best_epoch)
            .and_then(|e| e.val_loss)
    }

    fn into_outcome(self, config: &TrainConfig, kept_val_loss: Option<f64>) -> TrainOutcome<D> {
        let best_epoch = self.kept_epoch(config);
        let averaged_from = self.averaged_from(config);
        TrainOutcome {
            model: self.best,
            seconds: self.history.iter().map(|e| e.seconds).sum(),
            epochs_run: self.epochs_done,
            best_epoch,
            averaged_from,
            best_val_loss: kept_val_loss,
            stopped_early: self.stopped_early,
            history: self.history,
        }
    }
}

/// The first epoch of the weight mean kept after `epoch`, when averaging covers that epoch.
fn averaged_from(config: &TrainConfig, epoch: u32) -> Option<u32> {
    let from = config.average_from_epoch;
    (from > 0 && epoch >= from).then_some(from)
}

/// Adam with the configured (Keras) constants.
fn adam(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(config.beta_1 as f32)
        .with_beta_2(config.beta_2 as f32)
        .with_epsilon(config.epsilon as f32)
        .init()
}

/// A validation-mode model in training mode on the autodiff `device`.
fn to_training<D: Detector>(model: D, device: &Device) -> D {
    model.train().fork(device)
}

fn load<D: Detector>(
    model: D,
    record: burn::store::ModuleRecord,
    file: &str,
) -> Result<D, TrainError> {
    model
        .try_load_record(record)
        .map_err(|e| checkpoint::format_error(Path::new(file), e.to_string()))
}
