//! Model variants by name (`mesonet4-multi`): from the name in the config to a concrete detector.
//!
//! Training and export are generic over the detector type, and a variant is picked at run time, so
//! the choice goes through visitors: [`for_architecture`] hands an [`ArchitectureVisitor`] the
//! backbone type of an architecture (one `match`, the only place that maps names to types), and
//! [`build_variant`] builds the variant from that type's [`ArchitectureBackbone`] facts and hands
//! the detector to a [`VariantVisitor`].

use std::path::Path;

use burn::tensor::Device;

use crate::arch::baseline::Baseline;
use crate::arch::efficientnet_b0::EfficientNetB0;
use crate::arch::efficientnet_lite0::{EfficientNetLite0, IMAGENET_WEIGHTS_SHA256};
use crate::arch::mesoinception4::MesoInception4;
use crate::arch::mesonet4::MesoNet4;
use crate::arch::mobilenet_v3_small::MobileNetV3Small;
use crate::arch::vit_b16::VitB16;
use crate::detector::ArchitectureBackbone;
use crate::state_dict::{StateDict, WeightsError};
use crate::training::init_seeded;
use crate::{Detector, Form};
use burn::module::ModuleDisplay;

/// The architectures: the reference study's six, and EfficientNet-Lite0, the one with ImageNet
/// weights that ship (see [`crate::arch::efficientnet_lite0`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Architecture {
    Baseline,
    MesoNet4,
    MesoInception4,
    MobileNetV3Small,
    EfficientNetB0,
    VitB16,
    EfficientNetLite0,
}

impl Architecture {
    /// Every architecture, in the order tables list them.
    pub const ALL: [Architecture; 7] = [
        Architecture::Baseline,
        Architecture::MesoNet4,
        Architecture::MesoInception4,
        Architecture::MobileNetV3Small,
        Architecture::EfficientNetB0,
        Architecture::VitB16,
        Architecture::EfficientNetLite0,
    ];

    /// Whether the reference study has it (the six the `paper` profile trains): Lite0 is not
    /// one of them, and adding it there would change the paper profile's cache keys.
    pub fn in_reference_study(self) -> bool {
        self != Architecture::EfficientNetLite0
    }

    /// The name in variant names, config and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Baseline => "baseline",
            Architecture::MesoNet4 => "mesonet4",
            Architecture::MesoInception4 => "mesoinception4",
            Architecture::MobileNetV3Small => "mobilenet_v3_small",
            Architecture::EfficientNetB0 => "efficientnet_b0",
            Architecture::VitB16 => "vit_b16",
            Architecture::EfficientNetLite0 => "efficientnet_lite0",
        }
    }
}

impl Architecture {
    /// Whether ImageNet weights for this architecture ship in a registry package (and
    /// [`build_pretrained_variant`] can start from them). Only EfficientNet-Lite0's do; the
    /// study's ImageNet backbones download theirs at run time, which cannot work here.
    pub fn has_imagenet_weights(self) -> bool {
        self == Architecture::EfficientNetLite0
    }

    /// Whether its face backbone ends in a convolutional block, which Grad-CAM
    /// ([`crate::gradcam`]) explains; ViT-B/16's transformer has none. Lets callers say "not
    /// available" without building the model; the Grad-CAM tests check it against each
    /// backbone's [`crate::Backbone::features_tapped`].
    pub fn has_conv_block(self) -> bool {
        self != Architecture::VitB16
    }
}

/// Why a pretrained detector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    #[error(
        "{architecture} has no shipped ImageNet weights (only efficientnet_lite0 has); \
         train it from scratch"
    )]
    NoWeights { architecture: &'static str },
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// An architecture in one form: what `train.models` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelVariant {
    pub architecture: Architecture,
    pub form: Form,
}

impl ModelVariant {
    /// Parses `<architecture>-<single|multi>`; the error lists what exists.
    pub fn parse(name: &str) -> Result<ModelVariant, String> {
        let bad = || {
            let names: Vec<&str> = Architecture::ALL.iter().map(|a| a.as_str()).collect();
            format!(
                "`{name}` is not a model variant: use <architecture>-<single|multi>, with \
                 architecture one of {}",
                names.join(", ")
            )
        };
        let (arch, form) = name.rsplit_once('-').ok_or_else(bad)?;
        let architecture = Architecture::ALL
            .into_iter()
            .find(|a| a.as_str() == arch)
            .ok_or_else(bad)?;
        let form = match form {
            "single" => Form::Single,
            "multi" => Form::Multi,
            _ => return Err(bad()),
        };
        Ok(ModelVariant { architecture, form })
    }

    /// `<architecture>-<form>`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.architecture.as_str(), self.form.as_str())
    }
}

/// Work to do with a freshly built detector of whatever concrete type the variant has.
pub trait VariantVisitor {
    type Output;
    fn visit<D: Detector>(self, detector: D) -> Self::Output;
}

/// Work to do with the concrete backbone type of an architecture.
pub trait ArchitectureVisitor {
    type Output;
    fn visit<B: ArchitectureBackbone + ModuleDisplay>(self) -> Self::Output;
}

/// Hands `visitor` the backbone type of `architecture`: the one list that maps the names of
/// [`Architecture`] to types. Everything else that needs a concrete type (building a variant,
/// the parameter-count and parity tests) goes through it, so a new architecture is its own
/// file, one arm here and its entries in [`Architecture`].
pub fn for_architecture<V: ArchitectureVisitor>(
    architecture: Architecture,
    visitor: V,
) -> V::Output {
    match architecture {
        Architecture::Baseline => visitor.visit::<Baseline>(),
        Architecture::MesoNet4 => visitor.visit::<MesoNet4>(),
        Architecture::MesoInception4 => visitor.visit::<MesoInception4>(),
        Architecture::MobileNetV3Small => visitor.visit::<MobileNetV3Small>(),
        Architecture::EfficientNetB0 => visitor.visit::<EfficientNetB0>(),
        Architecture::VitB16 => visitor.visit::<VitB16>(),
        Architecture::EfficientNetLite0 => visitor.visit::<EfficientNetLite0>(),
    }
}

/// Builds `variant` on `device` with weights drawn from `seed` (under the training lock, see
/// [`crate::training::init_seeded`]) and hands it to `visitor`.
pub fn build_variant<V: VariantVisitor>(
    variant: ModelVariant,
    device: &Device,
    seed: u64,
    visitor: V,
) -> V::Output {
    struct Build<'a, V> {
        form: Form,
        device: &'a Device,
        seed: u64,
        visitor: V,
    }
    impl<V: VariantVisitor> ArchitectureVisitor for Build<'_, V> {
        type Output = V::Output;
        fn visit<B: ArchitectureBackbone + ModuleDisplay>(self) -> V::Output {
            match self.form {
                Form::Single => self
                    .visitor
                    .visit(init_seeded(self.device, self.seed, B::single)),
                Form::Multi => self
                    .visitor
                    .visit(init_seeded(self.device, self.seed, B::multi)),
            }
        }
    }
    let build = Build {
        form: variant.form,
        device,
        seed,
        visitor,
    };
    for_architecture(variant.architecture, build)
}

/// [`build_variant`], but with the backbone's weights read from the ImageNet weights file at
/// `weights` (checked against its pinned sha256): the head (and a multi-input detector's other
/// branches) are drawn from `seed` exactly as [`build_variant`] draws them, so a pretrained and a
/// scratch run differ in the backbone's starting point only. The backbone's BatchNorms update
/// their running statistics at `batch_norm_momentum` (the weight of each new batch; see
/// [`crate::training::TrainConfig::pretrained_batch_norm_momentum`]). An architecture without
/// shipped weights is an error naming it.
pub fn build_pretrained_variant<V: VariantVisitor>(
    variant: ModelVariant,
    weights: &Path,
    batch_norm_momentum: f64,
    device: &Device,
    seed: u64,
    visitor: V,
) -> Result<V::Output, PretrainedError> {
    if !variant.architecture.has_imagenet_weights() {
        return Err(PretrainedError::NoWeights {
            architecture: variant.architecture.as_str(),
        });
    }
    let state = StateDict::open_pinned(weights, IMAGENET_WEIGHTS_SHA256)?;
    let load = |backbone: EfficientNetLite0| {
        backbone
            .with_weights(&state)
            .map(|b| b.with_batch_norm_momentum(batch_norm_momentum))
    };
    Ok(match variant.form {
        Form::Single => visitor
            .visit(init_seeded(device, seed, EfficientNetLite0::single).try_map_backbone(load)?),
        Form::Multi => visitor
            .visit(init_seeded(device, seed, EfficientNetLite0::multi).try_map_backbone(load)?),
    })
}

/// The ONNX export of `variant` freshly built from `seed`: for benchmarks and tests of scoring,
/// whose cost and contract do not depend on trained weights.
pub fn export_fresh_variant(
    variant: ModelVariant,
    device: &Device,
    seed: u64,
) -> Result<Vec<u8>, crate::ExportError> {
    struct Export;
    impl VariantVisitor for Export {
        type Output = Result<Vec<u8>, crate::ExportError>;
        fn visit<D: Detector>(self, detector: D) -> Self::Output {
            detector.export_onnx()
        }
    }
    build_variant(variant, device, seed, Export)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_explained() {
        for architecture in Architecture::ALL {
            for form in [Form::Single, Form::Multi] {
                let variant = ModelVariant { architecture, form };
                assert_eq!(ModelVariant::parse(&variant.name()), Ok(variant));
            }
        }
        let message = ModelVariant::parse("mesonet-4-multi").unwrap_err();
        assert!(message.contains("mesonet4"), "{message}");
    }

    #[test]
    fn a_pretrained_start_without_shipped_weights_is_an_error_naming_the_architecture() {
        struct Unreachable;
        impl VariantVisitor for Unreachable {
            type Output = ();
            fn visit<D: Detector>(self, _: D) {}
        }
        let variant = ModelVariant::parse("mobilenet_v3_small-single").expect("a variant");
        let error = build_pretrained_variant(
            variant,
            Path::new("vendor/imagenet/efficientnet-lite0-57934424.pth"),
            0.1,
            &Device::flex(),
            1,
            Unreachable,
        )
        .expect_err("no weights ship for MobileNetV3Small");
        assert!(error.to_string().contains("mobilenet_v3_small"), "{error}");
        let only: Vec<Architecture> = Architecture::ALL
            .into_iter()
            .filter(|a| a.has_imagenet_weights())
            .collect();
        assert_eq!(only, [Architecture::EfficientNetLite0]);
    }
}
