//! The detector models of the reference study (Baseline CNN, MesoNet-4, MesoInception-4,
//! MobileNetV3Small, EfficientNetB0, ViT-B/16) and EfficientNet-Lite0 (the one backbone whose
//! ImageNet weights ship in a registry package), each in a single-input form (face only) and a
//! multi-input form (face + SSIM map + SSIM statistics), written in burn so that they train in Rust,
//! and exported to ONNX so that scoring runs on ONNX Runtime like every other inference in dfd.
//!
//! The contract every model keeps, in training and in its ONNX export alike:
//! - `face`: `[N, 3, 224, 224]` float32, RGB pixel values `0..=255` as they are: each model
//!   scales them as its first step, the way its weights expect ([`pixels`]: `pixel / 255` for the
//!   study's networks, which Keras fed `rescale=1./255`; `(pixel - 127) / 128` for
//!   EfficientNet-Lite0's ImageNet weights), so no caller can feed a model wrongly scaled pixels;
//! - `ssim_map` (multi-input only): `[N, 1, 224, 224]` float32, the SSIM map as stored (min-max
//!   scaled to 8 bits), `0..=255`; the model divides it by 255;
//! - `ssim_stats` (multi-input only): `[N, 2]` float32, the video's SSIM mean and variance;
//! - output `p_fake`: `[N, 1]` float32, the sigmoid of the logit: P(FAKE).
//!
//! In burn the models return the *logit* (`forward_logits`), so that the losses can use the
//! numerically stable log-sigmoid; the export appends the sigmoid.

pub mod arch;
pub mod augment;
pub mod detector;
pub mod device;
pub mod export;
pub mod gradcam;
pub mod head;
pub mod keras;
pub mod multi;
pub mod onnx;
pub mod params;
pub mod pixels;
pub mod rng;
pub mod self_blend;
pub mod single;
pub mod state_dict;
pub mod trained;
pub mod training;
pub mod variant;

pub use detector::{
    untapped, ArchitectureBackbone, Backbone, ConvTap, Detector, DetectorInput, Form,
};
pub use device::{
    backend_name, default_device, resolve_device, ComputeDevice, DeviceError, DEVICE_FORMS,
};
pub use onnx::{ExportError, OnnxGraph};
pub use variant::{
    build_pretrained_variant, build_variant, export_fresh_variant, for_architecture, Architecture,
    ArchitectureVisitor, ModelVariant, PretrainedError, VariantVisitor,
};

/// Side of the square face crop every model takes.
pub const FACE_SIZE: usize = 224;
