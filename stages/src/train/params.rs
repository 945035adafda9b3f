//! The `[train]` section of the config: a profile (`demo` or `paper`) that sets every value, and
//! optional per-key overrides. A profile rather than one set of defaults because the two uses differ
//! by two orders of magnitude in cost: the reference's settings (twelve variants, up to 200 epochs)
//! take days on a laptop, and `make run` must finish in half an hour on two cores.

use dfd_models::augment::AugmentConfig;
use dfd_models::self_blend::SelfBlendConfig;
use dfd_models::training::Monitor;
use dfd_models::{Architecture, ComputeDevice, ModelVariant};
use serde::{Deserialize, Serialize};

/// The default weight of each new batch in a pretrained backbone's BatchNorm running statistics:
/// PyTorch's default. Measured on the learning test's split (PyTorch, the same crops and
/// recipe): validation loss 0.082 (untrained head), 0.069, 0.063, 0.045 over three epochs at 0.1,
/// against 0.072, 0.098, 0.121 at the weights' own 0.01.
pub const PRETRAINED_BATCH_NORM_MOMENTUM: f64 = 0.1;

/// The two presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Small models, few epochs: the whole DAG on the demo dataset in minutes on a laptop.
    #[default]
    Demo,
    /// The reference study's settings: all twelve variants, 200 epochs, patience 50.
    Paper,
}

/// Which loss. `Auto` is the reference's choice: focal loss, except BCE for ViT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LossChoice {
    #[default]
    Auto,
    Focal,
    Bce,
}

/// `[train]` as written in the config: a profile plus overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    pub profile: Profile,
    /// Variant names (`mesonet4-multi`, ...); default: the profile's.
    pub models: Option<Vec<String>>,
    pub epochs: Option<u32>,
    pub patience: Option<u32>,
    /// What early stopping watches and the kept weights are the best of: `val_loss` or
    /// `val_auc`.
    pub monitor: Option<Monitor>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub loss: Option<LossChoice>,
    pub focal_gamma: Option<f64>,
    pub focal_alpha: Option<f64>,
    /// Weight classes by n / (2 n_class), as the reference did.
    pub class_weight: Option<bool>,
    pub augment: Option<bool>,
    /// Seeds initialisation, shuffling, dropout and augmentation.
    pub seed: Option<u64>,
    /// Use at most this many face frames per training or validation video (0: all), spread
    /// evenly over the video; a cost knob.
    pub max_frames_per_video: Option<u32>,
    /// Share of REAL training frames replaced each epoch by a self-blended FAKE (0: none); see
    /// `dfd_models::self_blend`.
    pub self_blend: Option<f64>,
    /// Which models start their backbone from shipped ImageNet weights (`paths.imagenet_weights`;
    /// only efficientnet_lite0 has them): `true` (all listed models), `false` (none), or a list
    /// of architectures. The `models` table's `initial_weights` says which did.
    pub pretrained: Option<Pretrained>,
    /// Epochs during which a pretrained backbone is held still while the head learns.
    pub freeze_backbone_epochs: Option<u32>,
    /// Adam's step size for the backbone (default: `learning_rate`).
    pub backbone_learning_rate: Option<f64>,
    /// The weight of each new batch in a pretrained backbone's BatchNorm running statistics
    /// (default [`PRETRAINED_BATCH_NORM_MOMENTUM`] when a model is pretrained; see
    /// `dfd_models::training::TrainConfig::pretrained_batch_norm_momentum` for why).
    pub pretrained_batch_norm_momentum: Option<f64>,
    /// From this epoch on, keep the mean of the weights after each epoch instead of the best
    /// epoch's (0: keep the best epoch's). The `models` table's `averaged_from` says which.
    pub average_from_epoch: Option<u32>,
    /// Where training runs: `"cpu"` (default), `"cuda"` or `"cuda:N"`. A GPU needs the GPU
    /// build (`make gpu`); see the README's "GPU" section.
    pub device: Option<ComputeDevice>,
}

impl TrainSection {
    /// The section with every key set to the value training uses (the profile's where the
    /// section leaves it out): what `dfd config` shows, and a config that resolves the same.
    /// `backbone_learning_rate` stays out when unset, which means `learning_rate`.
    pub fn resolved(&self) -> TrainSection {
        let p = TrainParams::from_section(self);
        TrainSection {
            profile: self.profile,
            models: Some(p.models),
            epochs: Some(p.epochs),
            patience: Some(p.patience),
            monitor: Some(p.monitor),
            batch_size: Some(p.batch_size),
            learning_rate: Some(p.learning_rate),
            loss: Some(p.loss),
            focal_gamma: Some(p.focal_gamma),
            focal_alpha: Some(p.focal_alpha),
            class_weight: Some(p.class_weight),
            augment: Some(p.augment),
            seed: Some(p.seed),
            max_frames_per_video: Some(p.max_frames_per_video),
            self_blend: Some(p.self_blend),
            pretrained: Some(p.pretrained),
            freeze_backbone_epochs: Some(p.freeze_backbone_epochs),
            backbone_learning_rate: p.backbone_learning_rate,
            pretrained_batch_norm_momentum: p.pretrained_batch_norm_momentum,
            average_from_epoch: Some(p.average_from_epoch),
            device: Some(p.device),
        }
    }
}

/// The values training actually uses: the profile's, overridden key by key. This, not the
/// section, is what the stage's cache key is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    pub models: Vec<String>,
    pub epochs: u32,
    pub patience: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub loss: LossChoice,
    pub focal_gamma: f64,
    pub focal_alpha: f64,
    pub class_weight: bool,
    pub augment: bool,
    pub seed: u64,
    pub max_frames_per_video: u32,
    /// 0 = off. Left out of the cache key when 0, so models trained before the option existed
    /// keep their keys.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub self_blend: f64,
    /// Left out of the cache key when it is the validation loss, for the same reason.
    #[serde(default, skip_serializing_if = "Monitor::is_val_loss")]
    pub monitor: Monitor,
    /// Which models start from ImageNet weights. Left out of the cache key when none, like
    /// `self_blend`.
    #[serde(default, skip_serializing_if = "Pretrained::is_none")]
    pub pretrained: Pretrained,
    /// 0 = none; left out of the cache key when 0.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub freeze_backbone_epochs: u32,
    /// `None` = `learning_rate`; left out of the cache key when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_learning_rate: Option<f64>,
    /// Set (to [`PRETRAINED_BATCH_NORM_MOMENTUM`] unless the config says otherwise) exactly when
    /// some model is pretrained, so it is in the cache key of pretrained runs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained_batch_norm_momentum: Option<f64>,
    /// 0 = keep the best epoch's weights; left out of the cache key when 0.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub average_from_epoch: u32,
    /// Where training runs. Left out when it is the CPU, so that every key made before the
    /// setting existed stays; the stage keys a GPU by its kind only (see
    /// [`ComputeDevice::key`]).
    #[serde(default, skip_serializing_if = "ComputeDevice::is_cpu")]
    pub device: ComputeDevice,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

/// `train.pretrained`: which models start their backbone from shipped ImageNet weights. A bool
/// or a list because both uses exist: a run of pretrained models only (`true`, each listed model
/// must have weights, as asking for weights that do not exist is an error naming them), and a
/// mixed run such as the demo profile's, where one architecture starts from ImageNet and the
/// others, which have no weights, from their seed (as in the study, whose three large backbones
/// were pretrained and its three small ones were not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pretrained {
    /// `true`: every listed model; `false`: none.
    All(bool),
    /// These architectures (`["efficientnet_lite0"]`), each of which must have weights; listed
    /// models of other architectures start from their seed.
    Only(Vec<String>),
}

impl Default for Pretrained {
    fn default() -> Self {
        Pretrained::All(false)
    }
}

impl Pretrained {
    /// No model starts from ImageNet weights.
    pub fn is_none(&self) -> bool {
        match self {
            Pretrained::All(all) => !all,
            Pretrained::Only(names) => names.is_empty(),
        }
    }

    /// Whether models of `architecture` start from its ImageNet weights.
    pub fn applies_to(&self, architecture: Architecture) -> bool {
        match self {
            Pretrained::All(all) => *all,
            Pretrained::Only(names) => names.iter().any(|n| n == architecture.as_str()),
        }
    }

    /// Whether any of `models` (variant names; unparseable ones are not) starts from ImageNet
    /// weights.
    pub fn applies_to_any(&self, models: &[String]) -> bool {
        models
            .iter()
            .filter_map(|m| ModelVariant::parse(m).ok())
            .any(|v| self.applies_to(v.architecture))
    }

    /// Names the first model or architecture it asks weights of that have none.
    fn validate(&self, models: &[String]) -> Result<(), String> {
        let no_weights = |what: &str, architecture: &str| {
            format!(
                "train.pretrained asks ImageNet weights of {what}, but {architecture} has no \
                 shipped ImageNet weights (only efficientnet_lite0 has); train it from its seed \
                 (list the architectures that have weights: pretrained = [\"efficientnet_lite0\"])"
            )
        };
        match self {
            Pretrained::All(false) => Ok(()),
            Pretrained::All(true) => {
                for model in models {
                    let variant = ModelVariant::parse(model)?;
                    if !variant.architecture.has_imagenet_weights() {
                        return Err(no_weights(model, variant.architecture.as_str()));
                    }
                }
                Ok(())
            }
            Pretrained::Only(names) => {
                for name in names {
                    let known = Architecture::ALL.iter().find(|a| a.as_str() == name);
                    match known {
                        Some(a) if a.has_imagenet_weights() => {}
                        Some(a) => return Err(no_weights(name, a.as_str())),
                        None => {
                            let all: Vec<&str> =
                                Architecture::ALL.iter().map(|a| a.as_str()).collect();
                            return Err(format!(
                                "train.pretrained: `{name}` is not an architecture (one of {})",
                                all.join(", ")
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl TrainParams {
    /// The preset values of `profile`.
    pub fn preset(profile: Profile) -> TrainParams {
        let paper = TrainParams {
            models: Architecture::ALL
                .iter()
                .filter(|a| a.in_reference_study())
                .flat_map(|a| {
                    [
                        format!("{}-single", a.as_str()),
                        format!("{}-multi", a.as_str()),
                    ]
                })
                .collect(),
            epochs: 200,
            patience: 50,
            batch_size: 16,
            learning_rate: 1e-3,
            loss: LossChoice::Auto,
            focal_gamma: 2.0,
            focal_alpha: 0.25,
            class_weight: true,
            augment: true,
            seed: 42,
            max_frames_per_video: 0,
            self_blend: 0.0,
            monitor: Monitor::ValLoss,
            pretrained: Pretrained::All(false),
            freeze_backbone_epochs: 0,
            backbone_learning_rate: None,
            pretrained_batch_norm_momentum: None,
            average_from_epoch: 0,
            device: ComputeDevice::Cpu,
        };
        match profile {
            Profile::Paper => paper,
            // The demo must show detection on people it never saw within `make run`'s half
            // hour on 2 cores. Measured with the 100-video demo set, 8 frames a video: an
            // epoch of EfficientNet-Lite0 from its ImageNet weights takes about 165 s, one of
            // MesoNet-4 from scratch (the study's smallest detector, for comparison) 15 s; the
            // multi-input MesoNet-4 (55 s an epoch) does not fit beside them. Three epochs:
            // the ImageNet start is at its best after two or three, and a fourth does not fit.
            Profile::Demo => TrainParams {
                models: vec!["efficientnet_lite0-single".into(), "mesonet4-single".into()],
                epochs: 3,
                patience: 2,
                max_frames_per_video: 8,
                pretrained: Pretrained::Only(vec!["efficientnet_lite0".into()]),
                ..paper
            },
        }
    }

    /// Resolves `[train]`: preset, then overrides.
    pub fn from_section(section: &TrainSection) -> TrainParams {
        let p = TrainParams::preset(section.profile);
        let pretrained = section.pretrained.clone().unwrap_or(p.pretrained);
        let models = section.models.clone().unwrap_or(p.models);
        let batch_norm_momentum = section
            .pretrained_batch_norm_momentum
            .or(p.pretrained_batch_norm_momentum);
        TrainParams {
            pretrained_batch_norm_momentum: match batch_norm_momentum {
                None if pretrained.applies_to_any(&models) => Some(PRETRAINED_BATCH_NORM_MOMENTUM),
                set => set,
            },
            models,
            epochs: section.epochs.unwrap_or(p.epochs),
            patience: section.patience.unwrap_or(p.patience),
            batch_size: section.batch_size.unwrap_or(p.batch_size),
            learning_rate: section.learning_rate.unwrap_or(p.learning_rate),
            loss: section.loss.unwrap_or(p.loss),
            focal_gamma: section.focal_gamma.unwrap_or(p.focal_gamma),
            focal_alpha: section.focal_alpha.unwrap_or(p.focal_alpha),
            class_weight: section.class_weight.unwrap_or(p.class_weight),
            augment: section.augment.unwrap_or(p.augment),
            seed: section.seed.unwrap_or(p.seed),
            max_frames_per_video: section
                .max_frames_per_video
                .unwrap_or(p.max_frames_per_video),
            self_blend: section.self_blend.unwrap_or(p.self_blend),
            monitor: section.monitor.unwrap_or(p.monitor),
            pretrained,
            freeze_backbone_epochs: section
                .freeze_backbone_epochs
                .unwrap_or(p.freeze_backbone_epochs),
            backbone_learning_rate: section.backbone_learning_rate.or(p.backbone_learning_rate),
            average_from_epoch: section.average_from_epoch.unwrap_or(p.average_from_epoch),
            device: section.device.unwrap_or(p.device),
        }
    }

    /// The augmentation ranges training draws from: the reference's generator, or none.
    pub fn augment_config(&self) -> Option<AugmentConfig> {
        self.augment.then(AugmentConfig::default)
    }

    /// The self-blending of REAL training frames, when asked for.
    pub fn self_blend_config(&self) -> Option<SelfBlendConfig> {
        (self.self_blend > 0.0).then_some(SelfBlendConfig {
            share: self.self_blend,
        })
    }

    /// Names the first bad value, by its config key.
    pub fn validate(&self) -> Result<(), String> {
        if self.models.is_empty() {
            return Err("train.models must name at least one model variant".into());
        }
        for model in &self.models {
            ModelVariant::parse(model).map_err(|e| format!("train.models: {e}"))?;
        }
        self.pretrained.validate(&self.models)?;
        if let Some(rate) = self.backbone_learning_rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(format!(
                    "train.backbone_learning_rate must be positive, got {rate}"
                ));
            }
        }
        if let Some(momentum) = self.pretrained_batch_norm_momentum {
            if !self.pretrained.applies_to_any(&self.models) {
                return Err(
                    "train.pretrained_batch_norm_momentum is set but no model of \
                            train.models starts from ImageNet weights (train.pretrained)"
                        .into(),
                );
            }
            if !(momentum > 0.0 && momentum <= 1.0) {
                return Err(format!(
                    "train.pretrained_batch_norm_momentum must be in (0, 1], got {momentum}"
                ));
            }
        }
        if self.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if self.average_from_epoch > self.epochs {
            return Err(format!(
                "train.average_from_epoch is {} but train.epochs is {}: no epoch would be \
                 averaged (0 keeps the best epoch's weights)",
                self.average_from_epoch, self.epochs
            ));
        }
        if self.batch_size == 0 {
            return Err("train.batch_size must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(format!(
                "train.learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(0.0..=1.0).contains(&self.focal_alpha) {
            return Err(format!(
                "train.focal_alpha must be in [0, 1], got {}",
                self.focal_alpha
            ));
        }
        if !(0.0..=1.0).contains(&self.self_blend) {
            return Err(format!(
                "train.self_blend must be in [0, 1], got {}",
                self.self_blend
            ));
        }
        if self.focal_gamma < 0.0 {
            return Err(format!(
                "train.focal_gamma must be >= 0, got {}",
                self.focal_gamma
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resolved_section_names_every_key_and_resolves_the_same() {
        let section = super::TrainSection {
            epochs: Some(7),
            ..Default::default()
        };
        let resolved = section.resolved();
        assert_eq!(resolved.epochs, Some(7));
        assert_eq!(resolved.patience, Some(2), "the demo profile's");
        assert_eq!(resolved.monitor, Some(super::Monitor::ValLoss));
        assert_eq!(
            resolved.pretrained,
            Some(Pretrained::Only(vec!["efficientnet_lite0".into()])),
            "the demo profile's"
        );
        assert_eq!(
            super::TrainParams::from_section(&resolved),
            super::TrainParams::from_section(&section)
        );
    }

    use super::*;

    #[test]
    fn overrides_win_over_the_profile_key_by_key() {
        let section = TrainSection {
            profile: Profile::Paper,
            epochs: Some(3),
            ..TrainSection::default()
        };
        let params = TrainParams::from_section(&section);
        assert_eq!(params.epochs, 3);
        assert_eq!(params.patience, 50);
        assert_eq!(params.models.len(), 12);
    }

    #[test]
    fn a_misspelt_variant_is_named() {
        let mut params = TrainParams::preset(Profile::Demo);
        params.models = vec!["mesonet-4-multi".into()];
        let message = params.validate().unwrap_err();
        assert!(message.contains("mesonet-4-multi"), "{message}");
    }

    #[test]
    fn pretrained_is_per_architecture_and_refused_where_there_are_no_weights_naming_it() {
        let listing = |models: &[&str], pretrained: Option<Pretrained>| {
            TrainParams::from_section(&TrainSection {
                models: Some(models.iter().map(|m| m.to_string()).collect()),
                pretrained,
                ..TrainSection::default()
            })
        };
        let mix = listing(&["efficientnet_lite0-single", "mesonet4-single"], None);
        assert_eq!(
            mix.validate(),
            Ok(()),
            "the demo profile's: Lite0 from ImageNet"
        );
        assert!(mix.pretrained.applies_to(Architecture::EfficientNetLite0));
        assert!(!mix.pretrained.applies_to(Architecture::MesoNet4));
        let scratch_only = listing(&["mesonet4-single"], None);
        assert_eq!(
            scratch_only.validate(),
            Ok(()),
            "the profile's Lite0 pretraining is no error in a run without Lite0"
        );

        let all = listing(
            &["efficientnet_lite0-single", "mesonet4-single"],
            Some(Pretrained::All(true)),
        );
        let message = all.validate().unwrap_err();
        assert!(message.contains("mesonet4-single"), "{message}");
        assert!(
            message.contains("mesonet4 has no shipped ImageNet weights"),
            "{message}"
        );
        let named = listing(
            &["mesonet4-single"],
            Some(Pretrained::Only(vec!["vit_b16".into()])),
        );
        let message = named.validate().unwrap_err();
        assert!(message.contains("vit_b16 has no shipped"), "{message}");
        let typo = listing(
            &["mesonet4-single"],
            Some(Pretrained::Only(vec!["lite0".into()])),
        );
        let message = typo.validate().unwrap_err();
        assert!(
            message.contains("`lite0` is not an architecture"),
            "{message}"
        );
    }

    /// Off, the new keys are absent from the serialised params (the cache key), so runs from
    /// before they existed keep their keys; on, they change it.
    #[test]
    fn fine_tuning_keys_enter_the_cache_key_only_when_set() {
        let plain = TrainParams::preset(Profile::Paper);
        let json = serde_json::to_string(&plain).expect("params serialise");
        for key in [
            "pretrained",
            "freeze_backbone_epochs",
            "backbone_learning_rate",
            "average_from_epoch",
        ] {
            assert!(!json.contains(key), "{key} in {json}");
        }
        let tuned = TrainParams {
            pretrained: Pretrained::All(true),
            freeze_backbone_epochs: 1,
            backbone_learning_rate: Some(1e-4),
            average_from_epoch: 2,
            ..plain
        };
        let json = serde_json::to_string(&tuned).expect("params serialise");
        for key in [
            "pretrained",
            "freeze_backbone_epochs",
            "backbone_learning_rate",
            "average_from_epoch",
        ] {
            assert!(json.contains(key), "{key} not in {json}");
        }
    }

    /// A pretrained model's BatchNorm rate is resolved into the params (so into the cache key)
    /// exactly when a listed model is pretrained; set without one, or out of range, it is named.
    #[test]
    fn the_pretrained_batch_norm_momentum_is_resolved_for_pretrained_runs_only() {
        let section = |models: &[&str], momentum: Option<f64>| TrainSection {
            models: Some(models.iter().map(|m| m.to_string()).collect()),
            pretrained_batch_norm_momentum: momentum,
            ..TrainSection::default()
        };
        let demo = TrainParams::from_section(&section(&["efficientnet_lite0-single"], None));
        assert_eq!(
            demo.pretrained_batch_norm_momentum,
            Some(PRETRAINED_BATCH_NORM_MOMENTUM)
        );
        let scratch = TrainParams::from_section(&section(&["mesonet4-single"], None));
        assert_eq!(scratch.pretrained_batch_norm_momentum, None);
        let json = serde_json::to_string(&scratch).expect("params serialise");
        assert!(!json.contains("batch_norm_momentum"), "{json}");

        let set = TrainParams::from_section(&section(&["efficientnet_lite0-single"], Some(0.01)));
        assert_eq!(set.pretrained_batch_norm_momentum, Some(0.01));
        assert_eq!(set.validate(), Ok(()));
        let message = TrainParams::from_section(&section(&["mesonet4-single"], Some(0.1)))
            .validate()
            .unwrap_err();
        assert!(message.contains("no model of train.models"), "{message}");
        let message =
            TrainParams::from_section(&section(&["efficientnet_lite0-single"], Some(0.0)))
                .validate()
                .unwrap_err();
        assert!(message.contains("must be in (0, 1], got 0"), "{message}");
    }

    #[test]
    fn averaging_from_after_the_last_epoch_is_named() {
        let params = TrainParams {
            epochs: 3,
            average_from_epoch: 4,
            ..TrainParams::preset(Profile::Demo)
        };
        let message = params.validate().unwrap_err();
        assert!(
            message.contains("train.average_from_epoch is 4"),
            "{message}"
        );
    }
}
