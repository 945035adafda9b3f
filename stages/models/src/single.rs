//! The single-input form: face -> backbone features -> head -> logit.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};

use crate::detector::{Backbone, ConvTap, Detector, DetectorInput, Form};
use crate::head::{Head, HeadConfig};
use crate::onnx::{Dim, ExportError, OnnxGraph};
use crate::FACE_SIZE;

/// A detector that sees the face crop only. Generic over the backbone, so every architecture
/// gets this form by writing its [`Backbone`] alone.
#[derive(Module, Debug)]
pub struct SingleInput<B: Backbone> {
    backbone: B,
    head: Head,
}

impl<B: Backbone> SingleInput<B> {
    /// Wraps `backbone` with a head built from `head` (see [`HeadConfig::DENSE`] and
    /// [`HeadConfig::MESO`]; each architecture module says which one the reference used).
    pub fn new(backbone: B, head: &HeadConfig, device: &Device) -> Self {
        let head = head.init(backbone.feature_len(), device);
        SingleInput { backbone, head }
    }

    /// The wrapped backbone (for inspection, Grad-CAM and the like).
    pub fn backbone(&self) -> &B {
        &self.backbone
    }

    /// This detector with its backbone replaced by `load(backbone)`, the head kept: how a
    /// pretrained backbone goes into a detector whose head was drawn from the run's seed.
    pub fn try_map_backbone<E>(self, load: impl FnOnce(B) -> Result<B, E>) -> Result<Self, E> {
        Ok(SingleInput {
            backbone: load(self.backbone)?,
            head: self.head,
        })
    }

    /// Logit of P(FAKE) `[N, 1]` for `face` `[N, 3, 224, 224]`, pixel values `0..=255`.
    pub fn forward(&self, face: Tensor<4>) -> Tensor<2> {
        self.head
            .forward(self.backbone.features(B::PIXELS.apply(face)))
    }
}

/// `ModuleDisplay` is what `#[derive(Module)]` on a generic struct asks of its parameter; every
/// derived backbone has it, so the bound costs a backbone nothing.
impl<B: Backbone + ModuleDisplay> Detector for SingleInput<B> {
    fn form(&self) -> Form {
        Form::Single
    }

    fn forward_logits(&self, input: &DetectorInput) -> Tensor<2> {
        self.forward(input.face.clone())
    }

    fn forward_logits_tapped(
        &self,
        input: &DetectorInput,
        tap: &mut ConvTap<'_>,
    ) -> Option<Tensor<2>> {
        let features = self
            .backbone
            .features_tapped(B::PIXELS.apply(input.face.clone()), tap)?;
        Some(self.head.forward(features))
    }

    fn backbone_param_ids(&self) -> Vec<burn::module::ParamId> {
        crate::params::param_ids(&self.backbone)
    }

    fn weight_penalty(&self) -> Option<Tensor<1>> {
        self.backbone.weight_penalty()
    }

    fn export_onnx(&self) -> Result<Vec<u8>, ExportError> {
        let mut g = OnnxGraph::new("dfd-detector-single");
        g.add_input("face", &face_dims(3));
        let face = B::PIXELS.export(&mut g, "face");
        let features = self.backbone.export_features(&mut g, &face)?;
        let logit = self.head.export(&mut g, &features)?;
        write_p_fake(&mut g, &logit);
        Ok(g.to_model_bytes())
    }
}

/// Dimensions of an image input with `channels` channels: `[N, channels, 224, 224]`.
pub(crate) fn face_dims(channels: usize) -> [Dim; 4] {
    [
        Dim::Batch,
        Dim::Fixed(channels),
        Dim::Fixed(FACE_SIZE),
        Dim::Fixed(FACE_SIZE),
    ]
}

/// Ends a graph: `p_fake = sigmoid(logit)`, `[N, 1]`, the output every exported detector has.
pub(crate) fn write_p_fake(g: &mut OnnxGraph, logit: &str) {
    g.op_into("Sigmoid", &[logit], &[], "p_fake");
    g.add_output("p_fake", &[Dim::Batch, Dim::Fixed(1)]);
}
