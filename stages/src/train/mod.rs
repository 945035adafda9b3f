//! `train`: every configured model variant trained on the `train` split's face frames, with early
//! stopping on the `val` split, then exported to ONNX for `score`.

mod params;

pub use params::{parse_variant, LossChoice, Profile, TrainParams, TrainSection, ARCHITECTURES};

pub const NAME: &str = "train";
