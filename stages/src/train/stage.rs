//! The `train` stage: decodes the training and validation face frames once, trains every
//! configured variant on them, and writes each variant's ONNX export and history.
//!
//! Checkpoints go under the stage's scratch folder, one folder per variant keyed by a digest of the
//! variant, its training settings and the samples: a run killed in epoch 40 resumes at epoch 40,
//! and adding a variant to the config retrains only that variant, although the stage's own cache
//! key (its parameters) changed.

use std::path::PathBuf;

use dfd_models::params::keras_param_count;
use dfd_models::trained::weights_to_bytes;
use dfd_models::training::{
    sample_key, train, EpochStats, LossKind, TrainConfig, TrainEvent, TrainSample, TrainingData,
};
use dfd_models::{
    backend_name, build_pretrained_variant, build_variant, resolve_device, Architecture, Detector,
    Form, ModelVariant, VariantVisitor,
};
use dfd_schemas::{
    EpochRow, EpochTimeRow, FaceRow, InitialWeights, Label, SsimMapRow, SsimStatsRow, TableRow,
    TrainedModelRow, VideoRow,
};
use sha2::{Digest, Sha256};

use super::params::{LossChoice, TrainParams, PRETRAINED_BATCH_NORM_MOMENTUM};
use super::NAME;
use crate::model_inputs::{FaceInputs, ModelSample};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub struct Train {
    params: TrainParams,
    /// The ImageNet weights file `train.pretrained` starts from (`paths.imagenet_weights`). Not
    /// part of the cache key: the file is pinned by its sha256, so its place does not matter.
    imagenet_weights: PathBuf,
}

impl Train {
    pub fn new(params: TrainParams, imagenet_weights: PathBuf) -> Self {
        Train {
            params,
            imagenet_weights,
        }
    }

    /// Whether `variant` starts from ImageNet weights (validation made sure its architecture
    /// has them when `train.pretrained` says so).
    fn pretrained(&self, variant: ModelVariant) -> bool {
        self.params.pretrained.applies_to(variant.architecture)
    }

    /// The training settings of one variant (the loss depends on the architecture).
    fn config_for(&self, variant: ModelVariant) -> TrainConfig {
        let p = &self.params;
        let pretrained = self.pretrained(variant);
        let focal = LossKind::Focal {
            gamma: p.focal_gamma,
            alpha: p.focal_alpha,
        };
        let loss = match p.loss {
            LossChoice::Focal => focal,
            LossChoice::Bce => LossKind::Bce,
            // The reference trained ViT with BCE and everything else with focal loss.
            LossChoice::Auto if variant.architecture == Architecture::VitB16 => LossKind::Bce,
            LossChoice::Auto => focal,
        };
        TrainConfig {
            max_epochs: p.epochs,
            batch_size: p.batch_size,
            learning_rate: p.learning_rate,
            patience: p.patience,
            monitor: p.monitor,
            loss,
            class_weight: p.class_weight,
            augment: p.augment_config(),
            self_blend: p.self_blend_config(),
            seed: p.seed,
            pretrained,
            freeze_backbone_epochs: if pretrained {
                p.freeze_backbone_epochs
            } else {
                0
            },
            backbone_learning_rate: p.backbone_learning_rate,
            pretrained_batch_norm_momentum: if pretrained {
                p.pretrained_batch_norm_momentum
            } else {
                None
            },
            average_from_epoch: p.average_from_epoch,
            ..TrainConfig::default()
        }
    }

    /// Decodes the labelled face frames of the `train` and `val` splits.
    fn load(
        &self,
        input: &StageInput,
        ctx: &StageContext,
    ) -> Result<(Split, Split, Vec<dfd_schemas::ErrorRow>), StageError> {
        let videos = input.rows::<VideoRow>()?;
        let inputs = FaceInputs::read(input)?;
        let wanted: Vec<(String, (&VideoRow, Label))> = videos
            .iter()
            .filter(|v| matches!(v.split.as_deref(), Some("train" | "val")))
            .filter_map(|v| v.label.map(|label| (v.video_id.clone(), (v, label))))
            .collect();
        // The stage is one unit of progress; decoding is a small part of it.
        let quiet = StageContext {
            progress: &crate::NoProgress,
            scratch: ctx.scratch,
            frames: None,
        };
        let (decoded, errors) = per_video(NAME, wanted, &quiet, |video_id, (video, label)| {
            let samples = inputs.samples(video_id, self.params.max_frames_per_video)?;
            Ok((video.split.clone().unwrap_or_default(), label, samples))
        });
        let (mut train_split, mut val_split) = (Split::default(), Split::default());
        for (split, label, samples) in decoded {
            let target = if split == "train" {
                &mut train_split
            } else {
                &mut val_split
            };
            target.add(samples, label == Label::Fake);
        }
        Ok((train_split, val_split, errors))
    }

    /// Where a variant's checkpoints live: keyed by the variant, its settings and its samples.
    /// A configuration that cannot be serialised is an error, never an empty key that every
    /// such configuration would share (and so resume one another's checkpoints).
    fn checkpoint_dir(
        &self,
        ctx: &StageContext,
        variant: ModelVariant,
        config: &TrainConfig,
        data: &TrainingData,
    ) -> Result<Option<PathBuf>, StageError> {
        let Some(scratch) = ctx.scratch else {
            return Ok(None);
        };
        let config_bytes = serde_json::to_vec(config).map_err(|e| {
            StageError::Other(format!(
                "the checkpoint key of {}: the training configuration does not serialise: {e}",
                variant.name()
            ))
        })?;
        let mut hasher = Sha256::new();
        hasher.update(variant.name());
        // What a checkpoint means.
        hasher.update(super::CHECKPOINT_VERSION.to_le_bytes());
        // A checkpoint resumes bit-exactly on its own backend and kind of device only; the CPU
        // adds nothing, so that checkpoints made before devices existed still resume.
        let device = self.params.device;
        hasher.update(backend_name(device));
        if let Some(kind) = device.key() {
            hasher.update(kind);
        }
        hasher.update(config_bytes);
        for (split, samples) in [("train", &data.train), ("val", &data.validation)] {
            hasher.update(split);
            for s in samples {
                hasher.update(s.key.to_le_bytes());
                hasher.update([u8::from(s.is_fake)]);
            }
        }
        let digest = hex::encode(&hasher.finalize()[..8]);
        Ok(Some(scratch.join(format!("{}-{digest}", variant.name()))))
    }
}

/// The samples of one split, as model inputs with labels.
#[derive(Default)]
struct Split {
    samples: Vec<TrainSample>,
}

impl Split {
    fn add(&mut self, samples: Vec<ModelSample>, is_fake: bool) {
        for sample in samples {
            self.samples.push(TrainSample {
                key: sample_key(&sample.video_id, sample.sample_index),
                face: sample.face.into_raw_vec_and_offset().0,
                ssim_map: sample.ssim_map.map(|m| m.into_raw_vec_and_offset().0),
                ssim_stats: sample.ssim_stats,
                is_fake,
            });
        }
    }

    /// The samples a detector of `form` can take: all of them, or those with SSIM inputs.
    fn for_form(&self, form: Form) -> Vec<TrainSample> {
        self.samples
            .iter()
            .filter(|s| form == Form::Single || (s.ssim_map.is_some() && s.ssim_stats.is_some()))
            .cloned()
            .collect()
    }
}

/// Trains one built detector and turns the outcome into table rows.
struct TrainVariant<'a> {
    variant: ModelVariant,
    data: &'a TrainingData,
    config: &'a TrainConfig,
    checkpoints: Option<PathBuf>,
}

impl VariantVisitor for TrainVariant<'_> {
    type Output = Result<TrainedVariant, String>;

    fn visit<D: Detector>(self, detector: D) -> Self::Output {
        let name = self.variant.name();
        let parameters = keras_param_count(&detector) as u64;
        let mut on_event = |event: TrainEvent| match event {
            TrainEvent::Resumed { epochs_done } => {
                tracing::info!(model = %name, "resumed after epoch {epochs_done}")
            }
            TrainEvent::Epoch(stats) => {
                tracing::info!(
                    model = %name,
                    "epoch {}: loss {:.4}, val loss {}, {:.1} s",
                    stats.epoch,
                    stats.train_loss,
                    stats.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                    stats.seconds
                );
            }
            TrainEvent::Batch { .. } => {}
        };
        let outcome = train(
            detector,
            self.data,
            self.config,
            self.checkpoints.as_deref(),
            &mut on_event,
        )
        .map_err(|e| format!("training {name}: {e}"))?;
        let onnx = outcome
            .model
            .export_onnx()
            .map_err(|e| format!("exporting {name} to ONNX: {e}"))?;
        let weights = weights_to_bytes(&outcome.model, &name).map_err(|e| e.to_string())?;
        let history = outcome
            .history
            .iter()
            .map(|e| epoch_row(&name, e))
            .collect();
        let times = outcome
            .history
            .iter()
            .map(|e| EpochTimeRow {
                model: name.clone(),
                epoch: e.epoch,
                seconds: e.seconds,
            })
            .collect();
        Ok(TrainedVariant {
            model: TrainedModelRow {
                model: name.clone(),
                architecture: self.variant.architecture.as_str().to_owned(),
                form: self.variant.form.as_str().to_owned(),
                parameters,
                epochs_run: outcome.epochs_run,
                best_epoch: outcome.best_epoch,
                averaged_from: outcome.averaged_from,
                best_val_loss: outcome.best_val_loss,
                initial_weights: if self.config.pretrained {
                    InitialWeights::Imagenet
                } else {
                    InitialWeights::Seeded
                },
                onnx,
                weights,
            },
            history,
            times,
        })
    }
}

/// What training one variant adds to each output table.
struct TrainedVariant {
    model: TrainedModelRow,
    history: Vec<EpochRow>,
    times: Vec<EpochTimeRow>,
}

fn epoch_row(model: &str, e: &EpochStats) -> EpochRow {
    EpochRow {
        model: model.to_owned(),
        epoch: e.epoch,
        train_loss: e.train_loss,
        train_accuracy: e.train_accuracy,
        val_loss: e.val_loss,
        val_accuracy: e.val_accuracy,
        val_auc: e.val_auc,
    }
}

impl Stage for Train {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            version: super::VERSION,
            inputs: &[
                InputDef::of::<VideoRow>(crate::ingest::NAME),
                InputDef::of::<FaceRow>(crate::crop::NAME),
                InputDef::of::<SsimMapRow>(crate::ssim::NAME),
                InputDef::of::<SsimStatsRow>(crate::ssim::NAME),
            ],
            outputs: &[
                dfd_schemas::TrainedModelRow::TABLE,
                dfd_schemas::EpochRow::TABLE,
                EpochTimeRow::TABLE,
                dfd_schemas::ErrorRow::TABLE,
            ],
            sharding: Sharding::Whole,
            streams: false,
        };
        &SPEC
    }

    /// The settings, the backend and a GPU: the same settings train different weights on
    /// another backend or device, so a build with another backend, or a GPU run, does not reuse
    /// this one's models. The CPU is in no key (as before devices existed).
    fn params(&self) -> Result<serde_json::Value, StageError> {
        let mut params = crate::key_params(NAME, &self.params, &[])?;
        crate::key_device(&mut params, self.params.device);
        if let Some(object) = params.as_object_mut() {
            object.insert("backend".into(), backend_name(self.params.device).into());
        }
        Ok(params)
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        // Before the frames are decoded: a GPU this build or machine lacks fails at once. The
        // CLI checks it before any stage runs; this is for every other caller.
        let asked = self.params.device;
        let device = resolve_device(asked)
            .map_err(|e| StageError::Other(format!("train.device = \"{asked}\": {e}")))?;
        let (train_split, val_split, errors) = self.load(input, ctx)?;
        let mut models = Vec::new();
        let mut history = Vec::new();
        let mut times = Vec::new();
        for name in &self.params.models {
            let variant = ModelVariant::parse(name).map_err(StageError::Other)?;
            let data = TrainingData {
                train: train_split.for_form(variant.form),
                validation: val_split.for_form(variant.form),
            };
            if data.train.is_empty() {
                // A dataset for preprocessing only, or one without a `train` split, is not an
                // error: there is just nothing to learn from, and scoring has nothing to score.
                tracing::warn!(
                    model = %name,
                    "no labelled face frames in the train split{}: not trained",
                    if variant.form == Form::Multi { " with SSIM inputs" } else { "" }
                );
                continue;
            }
            let config = self.config_for(variant);
            let visitor = TrainVariant {
                variant,
                data: &data,
                config: &config,
                checkpoints: self.checkpoint_dir(ctx, variant, &config, &data)?,
            };
            let seed = self.params.seed;
            let trained = if config.pretrained {
                let weights = &self.imagenet_weights;
                let momentum = config
                    .pretrained_batch_norm_momentum
                    .unwrap_or(PRETRAINED_BATCH_NORM_MOMENTUM);
                build_pretrained_variant(variant, weights, momentum, &device, seed, visitor)
                    .map_err(|e| StageError::Other(format!("{name}: {e}")))?
            } else {
                build_variant(variant, &device, seed, visitor)
            };
            let trained = trained.map_err(StageError::Other)?;
            models.push(trained.model);
            history.extend(trained.history);
            times.extend(trained.times);
        }
        ctx.progress.advance(1);
        Ok(StageOutput::default()
            .with_rows(&models)?
            .with_rows(&history)?
            .with_rows(&times)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::params::Profile;
    use dfd_models::ComputeDevice;

    #[test]
    fn the_fingerprinted_params_name_the_backend() {
        let train = Train::new(TrainParams::preset(Profile::Demo), PathBuf::new());
        let params = train.params().expect("the params serialise");
        assert_eq!(params["backend"], backend_name(ComputeDevice::Cpu));
        assert_eq!(params["epochs"], 3, "the settings are still there");
    }

    /// The CPU leaves the key as it was before devices existed (no `device` in it); a GPU
    /// changes it, by its kind only (`cuda:1` keys as `cuda:0`).
    #[test]
    fn a_gpu_changes_the_cache_key_and_the_cpu_does_not() {
        let on = |device: ComputeDevice| {
            let params = TrainParams {
                device,
                ..TrainParams::preset(Profile::Demo)
            };
            Train::new(params, PathBuf::new())
                .params()
                .expect("the params serialise")
        };
        let cpu = on(ComputeDevice::Cpu);
        assert!(cpu.get("device").is_none(), "{cpu}");
        let mut before_devices =
            serde_json::to_value(TrainParams::preset(Profile::Demo)).expect("serialises");
        before_devices["backend"] = backend_name(ComputeDevice::Cpu).into();
        assert_eq!(cpu, before_devices, "the key of a CPU run is unchanged");
        let cuda = on(ComputeDevice::Cuda(0));
        assert_eq!(cuda["device"], "cuda");
        assert_ne!(cuda, cpu);
        assert_eq!(on(ComputeDevice::Cuda(1)), cuda);
    }
}
