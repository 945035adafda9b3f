//! The two traits between the architectures and everything else (training, export, scoring).

use burn::module::{Module, ParamId};
use burn::tensor::{Device, Tensor, TensorData};

use crate::head::HeadConfig;
use crate::multi::{MultiConfig, MultiInput};
use crate::onnx::{ExportError, OnnxGraph};
use crate::pixels::PixelScaling;
use crate::single::SingleInput;
use crate::variant::Architecture;

/// A face backbone: the part of a detector that differs between architectures. The single and the
/// multi-input forms wrap the same backbone, so each architecture is written once.
pub trait Backbone: Module + Clone + core::fmt::Debug + Send + 'static {
    /// Width of the feature vector [`Backbone::features`] returns (the input of the Dense(1) head,
    /// or of the concatenation in the multi-input form).
    fn feature_len(&self) -> usize;

    /// How the detector scales the pixel values it is given before they reach
    /// [`Backbone::features`] (see [`crate::pixels`]): `pixel / 255` unless the backbone's
    /// weights were trained on another scaling.
    const PIXELS: PixelScaling = PixelScaling::UNIT;

    /// `face` `[N, 3, 224, 224]`, scaled by [`Backbone::PIXELS`] -> features `[N, feature_len]`.
    fn features(&self, face: Tensor<4>) -> Tensor<2>;

    /// [`Backbone::features`] with the activations of the last convolutional block `[N, C, h, w]`
    /// passed through `tap`, the rest of the network reading what `tap` returns; `None` for a
    /// backbone without convolutional blocks (ViT-B/16). Grad-CAM ([`crate::gradcam`]) taps
    /// there: it keeps the activations and makes them a leaf of the autodiff graph, which burn
    /// gives gradients for (an intermediate tensor keeps none). A CNN implements
    /// [`Backbone::features`] as this with the identity tap, so the two cannot drift apart.
    fn features_tapped(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Option<Tensor<2>> {
        let _ = (face, tap);
        None
    }

    /// Appends the same computation as [`Backbone::features`] to `graph`, reading the value named
    /// `face`, and returns the name of the value holding the features `[N, feature_len]`.
    fn export_features(&self, graph: &mut OnnxGraph, face: &str) -> Result<String, ExportError>;

    /// The weight penalty this backbone adds to the training loss, as Keras adds a layer's
    /// `kernel_regularizer` term to `loss` and `val_loss`; `None` for most backbones. Only the
    /// Baseline CNN has one (L2 0.01 on its Dense(128) kernel, [`crate::arch::baseline::Baseline`]).
    fn weight_penalty(&self) -> Option<Tensor<1>> {
        None
    }
}

/// What [`Backbone::features_tapped`] passes the last convolutional block's activations
/// through.
pub type ConvTap<'a> = dyn FnMut(Tensor<4>) -> Tensor<4> + 'a;

/// The identity [`ConvTap`], for a plain forward pass.
pub fn untapped(activations: Tensor<4>) -> Tensor<4> {
    activations
}

/// A backbone that is one of the detector architectures: the facts that build its two detector
/// forms. With them, building any variant is one generic path ([`crate::build_variant`]), and a
/// new architecture is its own file plus one line in the list of
/// [`crate::variant::for_each_architecture`]'s `match`. (The SSIM-map CNN is a [`Backbone`] but no
/// architecture, hence a trait of its own.)
pub trait ArchitectureBackbone: Backbone + Sized {
    /// Which architecture this is.
    const ARCHITECTURE: Architecture;
    /// The head of the single-input detector (the reference's choice for this architecture).
    const HEAD: HeadConfig;
    /// How the multi-input detector is assembled around this backbone.
    const MULTI: MultiConfig;

    /// The backbone with freshly drawn weights (from the device's generator: seed it first, see
    /// [`crate::training::init_seeded`]).
    fn seeded(device: &Device) -> Self;

    /// The single-input detector: this backbone and [`Self::HEAD`].
    fn single(device: &Device) -> SingleInput<Self> {
        SingleInput::new(Self::seeded(device), &Self::HEAD, device)
    }

    /// The multi-input detector: this backbone assembled by [`Self::MULTI`].
    fn multi(device: &Device) -> MultiInput<Self> {
        MultiInput::new(Self::seeded(device), &Self::MULTI, device)
    }
}

/// Which inputs a detector takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// Face crop only.
    Single,
    /// Face crop, SSIM map and SSIM statistics.
    Multi,
}

impl Form {
    /// The name used in model variant names, config and tables: `single` or `multi`.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Single => "single",
            Form::Multi => "multi",
        }
    }
}

/// One batch of model inputs. `ssim_map` and `ssim_stats` are present exactly when the detector is
/// multi-input.
#[derive(Clone, Debug)]
pub struct DetectorInput {
    /// `[N, 3, 224, 224]`, RGB pixel values in `0..=255` (each model scales them itself, see
    /// [`crate::pixels`]).
    pub face: Tensor<4>,
    /// `[N, 1, 224, 224]`, the SSIM map as stored, `0..=255`.
    pub ssim_map: Option<Tensor<4>>,
    /// `[N, 2]`: SSIM mean and variance of the frame's video.
    pub ssim_stats: Option<Tensor<2>>,
}

impl DetectorInput {
    /// A batch of `n` samples from flat channel-first values: `face` `n x 3 x 224 x 224`,
    /// `ssim_map` `n x 1 x 224 x 224`, `ssim_stats` `n x 2`, on `device`; for callers (the
    /// stages) that hold plain vectors, not tensors. A length that does not fit the shape is an
    /// error naming the input.
    pub fn from_values(
        n: usize,
        face: Vec<f32>,
        ssim_map: Option<Vec<f32>>,
        ssim_stats: Option<Vec<f32>>,
        device: &Device,
    ) -> Result<DetectorInput, String> {
        let plane = crate::FACE_SIZE * crate::FACE_SIZE;
        let check = |name: &str, len: usize, wanted: usize| {
            if len == wanted {
                Ok(())
            } else {
                Err(format!(
                    "{name} holds {len} values, not the {wanted} of {n} samples"
                ))
            }
        };
        check("face", face.len(), n * 3 * plane)?;
        let size = crate::FACE_SIZE;
        let face = Tensor::<4>::from_data(TensorData::new(face, [n, 3, size, size]), device);
        let ssim_map = match ssim_map {
            Some(map) => {
                check("ssim_map", map.len(), n * plane)?;
                Some(Tensor::<4>::from_data(
                    TensorData::new(map, [n, 1, size, size]),
                    device,
                ))
            }
            None => None,
        };
        let ssim_stats = match ssim_stats {
            Some(stats) => {
                check("ssim_stats", stats.len(), n * 2)?;
                Some(Tensor::<2>::from_data(
                    TensorData::new(stats, [n, 2]),
                    device,
                ))
            }
            None => None,
        };
        Ok(DetectorInput {
            face,
            ssim_map,
            ssim_stats,
        })
    }
}

/// A whole detector: a backbone in one of the two forms, with its head.
pub trait Detector: Module + Clone + core::fmt::Debug + Send + 'static {
    /// The form, which decides which inputs [`Detector::forward_logits`] reads.
    fn form(&self) -> Form;

    /// Logit of P(FAKE), `[N, 1]`. Fails (panics in burn's shape checks) when an input the form
    /// needs is missing; callers build inputs from [`Detector::form`].
    fn forward_logits(&self, input: &DetectorInput) -> Tensor<2>;

    /// The detector as a self-contained ONNX model (weights embedded) with inputs `face`
    /// (+ `ssim_map`, `ssim_stats`), pixel values as [`DetectorInput`] holds them, and output
    /// `p_fake`, batch dimension dynamic.
    fn export_onnx(&self) -> Result<Vec<u8>, ExportError>;

    /// [`Detector::forward_logits`] with the face backbone's last convolutional block passed
    /// through `tap` (see [`Backbone::features_tapped`]); `None` when the face backbone has no
    /// convolutional block.
    fn forward_logits_tapped(
        &self,
        input: &DetectorInput,
        tap: &mut ConvTap<'_>,
    ) -> Option<Tensor<2>> {
        let _ = (input, tap);
        None
    }

    /// The sum of its branches' [`Backbone::weight_penalty`] terms, `[1]`; `None` when no branch
    /// has one.
    fn weight_penalty(&self) -> Option<Tensor<1>> {
        None
    }

    /// Ids of the face backbone's parameters: what `freeze_backbone_epochs` holds still and
    /// `backbone_learning_rate` steps at its own rate when fine-tuning a pretrained backbone.
    /// Empty for a detector without a separable backbone (the whole model then trains as one).
    fn backbone_param_ids(&self) -> Vec<ParamId> {
        Vec::new()
    }
}
