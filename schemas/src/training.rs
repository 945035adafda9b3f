//! `models`: one trained detector per model variant, with its ONNX export, written by `train`;
//! `training_history`: one row per (model variant, epoch), for the training curves of the report;
//! and `training_times`: the wall seconds of each epoch.
//!
//! Timings have a table of their own because a downstream stage's cache key is the hash of the
//! tables it reads: seconds differ on every retrain while the weights (same seed, data and
//! backend) do not, and with seconds in `models` a retrain gave `score`, `aggregate` and `report`
//! new keys for identical inputs. No stage reads `training_times`.

/// `models`.
pub mod trained {
    use crate::cell::TextEnum;

    /// Where a trained model's backbone started, stored by name in `initial_weights`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum InitialWeights {
        /// The shipped ImageNet weights (`train.pretrained`).
        Imagenet,
        /// Random weights drawn from `train.seed`.
        Seeded,
    }

    impl TextEnum for InitialWeights {
        const NAMES: &'static str = "imagenet, seeded";
        fn as_str(self) -> &'static str {
            match self {
                InitialWeights::Imagenet => "imagenet",
                InitialWeights::Seeded => "seeded",
            }
        }
        fn parse(text: &str) -> Option<InitialWeights> {
            match text {
                "imagenet" => Some(InitialWeights::Imagenet),
                "seeded" => Some(InitialWeights::Seeded),
                _ => None,
            }
        }
    }

    crate::table! {
        /// One trained model variant. The ONNX bytes are what `score` runs: the weights of the
        /// best epoch (lowest validation loss), as early stopping restores them, or the mean of
        /// the last epochs' weights (`train.average_from_epoch`).
        pub struct TrainedModelRow in "models" {
            /// Variant name, `<architecture>-<form>`, e.g. `mesonet4-multi`.
            model: String,
            /// `baseline`, `mesonet4`, `mesoinception4`, `mobilenet_v3_small`, `efficientnet_b0`
            /// or `vit_b16`.
            architecture: String,
            /// `single` or `multi`.
            form: String,
            /// Trainable and non-trainable parameters, counted as Keras counts them.
            parameters: u64,
            /// Epochs run before stopping (early stopping or the epoch limit).
            epochs_run: u32,
            /// The epoch (1-based) whose weights were kept; with averaging, the last epoch of
            /// the mean.
            best_epoch: u32,
            /// Null when one epoch's weights were kept; else the first epoch of the mean of the
            /// weights after each epoch `averaged_from..=best_epoch`.
            averaged_from: Option<u32>,
            /// The validation loss of the kept weights (of the mean, when averaged).
            best_val_loss: Option<f64>,
            /// Where the backbone started: `imagenet` (shipped ImageNet weights,
            /// `train.pretrained`) or `seeded` (random weights drawn from `train.seed`).
            initial_weights: InitialWeights,
            /// The model as ONNX: inputs `face` (+ `ssim_map`, `ssim_stats`), output `p_fake`.
            onnx: Vec<u8>,
            /// The same weights, BatchNorm running statistics included, in dfd's own format
            /// (`dfd_models::trained`, bytes that depend on the weights alone): what Grad-CAM's
            /// gradients are computed from, which ONNX Runtime cannot give.
            weights: Vec<u8>,
        }
        validate = |_| Ok(());
    }
}

/// `training_history`.
pub mod history {

    crate::table! {
        /// One epoch of one model variant's training. Validation columns are null when the
        /// validation split is empty; AUC also when it holds one class only.
        pub struct EpochRow in "training_history" {
            model: String,
            /// 1-based.
            epoch: u32,
            train_loss: f64,
            train_accuracy: f64,
            val_loss: Option<f64>,
            val_accuracy: Option<f64>,
            val_auc: Option<f64>,
        }
        validate = |_| Ok(());
    }
}

/// `training_times`.
pub mod times {

    crate::table! {
        /// How long one epoch of one model variant took, in the session that ran it (a resumed
        /// training keeps the seconds of the epochs its earlier sessions ran).
        pub struct EpochTimeRow in "training_times" {
            model: String,
            /// 1-based.
            epoch: u32,
            /// Wall seconds of the epoch, validation included.
            seconds: f64,
        }
        validate = |_| Ok(());
    }
}
