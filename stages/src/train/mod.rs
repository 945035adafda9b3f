//! `train`: every configured model variant trained on the `train` split's face frames, with early
//! stopping on the `val` split, then exported to ONNX for `score`.

mod imported;
mod params;
mod stage;

pub use imported::{ImportedModel, ImportedModels, ModelSource};
pub use params::{LossChoice, Profile, TrainParams, TrainSection};
pub use stage::Train;

pub const NAME: &str = "train";

/// The train stage's version: what its models mean. 2: Baseline trains with the reference's L2
/// penalty on its Dense(128). 3: models take pixel values and scale them themselves
/// (`dfd_models::pixels`); a model or checkpoint of version 2 expects `[0, 1]`, so it must not be
/// scored or resumed with pixels, nor imported by `dfd evaluate`. 4: the `models` table also
/// holds each model's weights for burn (`weights`, `dfd_models::trained`), which Grad-CAM reads.
pub const VERSION: u32 = 4;

/// What a training checkpoint means, part of its key: the stage version at which checkpoints
/// last changed meaning (3, the pixel scaling). Version 4 changed the output table only, so
/// the checkpoints of version 3 stay valid: a finished training resumes from its checkpoint at
/// once and writes the new table without training again.
pub const CHECKPOINT_VERSION: u32 = 3;
