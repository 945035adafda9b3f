//! Every architecture in both forms, by loops over [`Architecture::ALL`]: a new architecture
//! cannot skip these checks, and the parameter-count table below fails until it has its counts.
//!
//! - Parameter counts, counted as Keras counts (trainable weights plus BatchNorm's moving mean and
//!   variance; EfficientNetB0's input normalisation included). The study's six match the
//!   reference's Keras `model.summary()` to the unit (README of Sihe12/DeepFake, 224x224 inputs),
//!   which pins every layer's shape. The reference has no number for the multi-input
//!   MobileNetV3Small; ours follows from its script (`MobileNetV3Small_SSIM_MASK.py`): 939,120 +
//!   Dense(1) 577 + SSIM-map Baseline 422,656 + stats branch 184 + Dense(1) over 1 + 128 + 8
//!   inputs 138 = 1,362,675. Keras has no EfficientNet-Lite0: its backbone's count is the
//!   published PyTorch state dict's, by tensor shapes without the 1000-class `_fc` and
//!   `num_batches_tracked` (3,413,024; `tests/models/efficientnet_lite0.rs` derives it from the file),
//!   plus Dense(1) over 1280 (1,281) single, and multi, assembled like EfficientNetB0's, plus the
//!   face score 1,281, the SSIM-map Baseline 422,656, the stats branch 184 and the Dense(1) head 138.
//! - A batch maps to one logit per face.
//! - ONNX parity: each variant, exported, gives on ONNX Runtime what its burn forward gives, the
//!   sigmoid of the logits on the same batch of two faces to 1e-4, and the single form's backbone
//!   features to 1e-4 relative to their largest magnitude (a sigmoid near 0 or 1 could hide a
//!   wrong feature; the features cannot). The models are not compared at their initial state,
//!   where BatchNorm's running statistics are (0, 1), biases and the class token are 0, and an
//!   export that confused them could still pass: those are moved to spread-out values first
//!   (`common::parity::Perturb`). The CNNs then take one forward pass in training mode
//!   (autodiff device: batch statistics, dropout and drop-connect active), which moves the
//!   running statistics as training does, and are compared in inference mode (`valid()`).
//!   ViT-B/16 has no BatchNorm and skips that pass, which would cost a backward-ready forward of
//!   86M parameters.
//!
//! One model at a time (ViT-B/16 is 86M floats, 344 MB), so these are loops inside one test each
//! rather than a test per variant.

use crate::common;

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Device;
use common::parity::{batch, feature_diff, p_fake_diff, prepared_detector, TOLERANCE};
use dfd_models::params::keras_param_count;
use dfd_models::{
    for_architecture, Architecture, ArchitectureBackbone, ArchitectureVisitor, Detector, Form,
};

/// (architecture, single, multi) Keras-style parameter counts; see the module comment.
const PARAMETERS: [(Architecture, usize, usize); 7] = [
    (Architecture::Baseline, 423_361, 846_337),
    (Architecture::MesoNet4, 24_233, 53_473),
    (Architecture::MesoInception4, 32_089, 61_329),
    (Architecture::MobileNetV3Small, 939_697, 1_362_675),
    (Architecture::EfficientNetB0, 4_050_852, 4_473_830),
    (Architecture::VitB16, 85_799_425, 86_222_401),
    (
        Architecture::EfficientNetLite0,
        3_413_024 + 1_281,
        3_413_024 + 1_281 + 422_656 + 184 + 138,
    ),
];

#[test]
fn the_parameter_table_lists_every_architecture_once() {
    let mut listed: Vec<Architecture> = PARAMETERS.iter().map(|(a, _, _)| *a).collect();
    listed.sort();
    let mut all = Architecture::ALL.to_vec();
    all.sort();
    assert_eq!(listed, all);
}

/// Counts both forms of one architecture.
struct CountParameters;

impl ArchitectureVisitor for CountParameters {
    type Output = (usize, usize);
    fn visit<B: ArchitectureBackbone + ModuleDisplay>(self) -> (usize, usize) {
        let device = Device::flex();
        let single = {
            let model = B::single(&device);
            // burn 0.22.1 visits RunningState like a Param, so its own count agrees; if a burn
            // upgrade changes that, this says so (and keras_param_count stays what we report).
            assert_eq!(
                model.num_params(),
                keras_param_count(&model),
                "burn's num_params"
            );
            keras_param_count(&model)
        };
        let multi = keras_param_count(&B::multi(&device));
        (single, multi)
    }
}

#[test]
fn every_variant_has_its_parameter_count() {
    for architecture in Architecture::ALL {
        let (_, single, multi) = PARAMETERS
            .iter()
            .find(|(a, _, _)| *a == architecture)
            .copied()
            .unwrap_or_else(|| panic!("{architecture:?} has no row in PARAMETERS"));
        let counted = for_architecture(architecture, CountParameters);
        assert_eq!(
            counted,
            (single, multi),
            "{architecture:?}: (single, multi)"
        );
    }
}

/// The logits' shape of both forms, and that each architecture names itself.
struct LogitShapes(Architecture);

impl ArchitectureVisitor for LogitShapes {
    type Output = ();
    fn visit<B: ArchitectureBackbone + ModuleDisplay>(self) {
        assert_eq!(
            B::ARCHITECTURE,
            self.0,
            "for_architecture maps to the right type"
        );
        check_logits(self.0, &B::single(&Device::flex()), Form::Single);
        check_logits(self.0, &B::multi(&Device::flex()), Form::Multi);
    }
}

fn check_logits<M: Detector>(architecture: Architecture, model: &M, form: Form) {
    assert_eq!(model.form(), form, "{architecture:?}");
    let logits = model.forward_logits(&batch(form, 2, &Device::flex()));
    assert_eq!(
        logits.dims(),
        [2, 1],
        "{architecture:?} {form:?}: logits [N, 1]"
    );
}

#[test]
fn every_variant_maps_a_batch_to_one_logit_per_face() {
    for architecture in Architecture::ALL {
        for_architecture(architecture, LogitShapes(architecture));
    }
}

/// burn vs ONNX Runtime for both forms, and for the backbone's features.
struct Parity(Architecture);

impl ArchitectureVisitor for Parity {
    type Output = ();
    fn visit<B: ArchitectureBackbone + ModuleDisplay>(self) {
        let name = self.0.as_str();
        // ViT-B/16 has no BatchNorm: the training-mode pass would move nothing.
        let warm_up = self.0 != Architecture::VitB16;
        let single = prepared_detector(B::single, warm_up);
        let features = feature_diff(name, single.backbone(), 3);
        assert!(features <= TOLERANCE, "{name} features: {features:e}");
        let p_fake = p_fake_diff(&format!("{name} single"), &single);
        assert!(p_fake <= TOLERANCE, "{name} single: {p_fake:e}");
        drop(single);
        let multi = prepared_detector(B::multi, warm_up);
        let p_fake = p_fake_diff(&format!("{name} multi"), &multi);
        assert!(p_fake <= TOLERANCE, "{name} multi: {p_fake:e}");
    }
}

#[test]
fn every_variant_exports_what_burn_computes() {
    for architecture in Architecture::ALL {
        for_architecture(architecture, Parity(architecture));
    }
}
