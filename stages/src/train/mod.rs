//! `train`: every configured model variant trained on the `train` split's face frames, with early
//! stopping on the `val` split, then exported to ONNX for `score`.

mod imported;
mod params;
mod stage;

pub use imported::{ImportedModel, ImportedModels, ModelSource};
pub use params::{LossChoice, Profile, TrainParams, TrainSection};
pub use stage::Train;

pub const NAME: &str = "train";
