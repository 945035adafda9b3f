//! The multi-input form: three branches, concatenated, then the head.
//!
//! ```text
//! face       [N,3,224,224] -> backbone            -> [N, F]   (-> Dense(1) -> sigmoid, see face_score)
//! ssim_map   [N,1,224,224] -> SSIM-map branch     -> [N, 128] (Baseline kind) or [N, 64] (Compact)
//! ssim_stats [N,2]         -> Dense(16, relu) -> Dense(8, relu) -> [N, 8]
//! concat -> head -> logit
//! ```
//!
//! The reference study does not use one SSIM-map branch for all architectures: Baseline,
//! EfficientNetB0 and ViT-B/16 pass the map through a one-channel copy of the Baseline CNN,
//! MesoNet-4 and MesoInception-4 through a smaller CNN; and its EfficientNetB0 reduces the face
//! branch to a sigmoid score before the concatenation. [`MultiConfig`] says which, so any backbone
//! plugs in without changing this file.

use burn::module::{Module, ModuleDisplay};
use burn::nn::{Linear, Relu};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::arch::baseline::Baseline;
use crate::arch::ssim_map_cnn::SsimMapCnn;
use crate::detector::{Backbone, ConvTap, Detector, DetectorInput, Form};
use crate::export;
use crate::head::{Head, HeadConfig};
use crate::keras;
use crate::onnx::{Dim, ExportError, OnnxGraph};
use crate::pixels::PixelScaling;
use crate::single::{face_dims, write_p_fake};

/// Width of the SSIM-statistics branch's output.
const STATS_FEATURES: usize = 8;

/// Which network reads the SSIM map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsimMapBranchKind {
    /// A one-channel [`Baseline`] (422,656 parameters, 128 features).
    Baseline,
    /// The compact [`SsimMapCnn`] (27,904 parameters, 64 features).
    Compact,
}

/// How a multi-input detector is assembled around its backbone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiConfig {
    pub ssim_map: SsimMapBranchKind,
    /// The head after the concatenation.
    pub head: HeadConfig,
    /// Reduce the face features to `sigmoid(Dense(1))` before the concatenation, as the
    /// reference's EfficientNetB0 multi-input model does.
    pub face_score: bool,
}

impl MultiConfig {
    /// The MesoNets' (MesoNet-4, MesoInception-4): the compact SSIM-map CNN, the MesoNet head
    /// after the concatenation.
    pub const MESO: MultiConfig = MultiConfig {
        ssim_map: SsimMapBranchKind::Compact,
        head: HeadConfig::MESO,
        face_score: false,
    };
    /// Baseline's and ViT-B/16's: the face features go into the concatenation as they are, the
    /// SSIM map through a one-channel Baseline CNN.
    pub const FEATURES: MultiConfig = MultiConfig {
        ssim_map: SsimMapBranchKind::Baseline,
        head: HeadConfig::DENSE,
        face_score: false,
    };
    /// EfficientNetB0's and MobileNetV3Small's (and EfficientNet-Lite0's, assembled like B0's):
    /// the face branch reduced to `sigmoid(Dense(1))` before the concatenation, the SSIM map
    /// through a one-channel Baseline CNN.
    pub const FACE_SCORE: MultiConfig = MultiConfig {
        ssim_map: SsimMapBranchKind::Baseline,
        head: HeadConfig::DENSE,
        face_score: true,
    };
}

/// The SSIM-map branch; see [`SsimMapBranchKind`].
#[derive(Module, Debug)]
pub enum SsimMapBranch {
    Baseline(Baseline),
    Compact(SsimMapCnn),
}

impl SsimMapBranch {
    fn new(kind: SsimMapBranchKind, device: &Device) -> Self {
        match kind {
            SsimMapBranchKind::Baseline => {
                SsimMapBranch::Baseline(Baseline::with_in_channels(1, device))
            }
            SsimMapBranchKind::Compact => SsimMapBranch::Compact(SsimMapCnn::new(device)),
        }
    }

    fn weight_penalty(&self) -> Option<Tensor<1>> {
        match self {
            SsimMapBranch::Baseline(b) => b.weight_penalty(),
            SsimMapBranch::Compact(c) => c.weight_penalty(),
        }
    }

    fn backbone(&self) -> &dyn BranchExport {
        match self {
            SsimMapBranch::Baseline(b) => b,
            SsimMapBranch::Compact(c) => c,
        }
    }
}

/// The object-safe part of [`Backbone`], so the branch can dispatch once.
trait BranchExport {
    fn len(&self) -> usize;
    fn run(&self, x: Tensor<4>) -> Tensor<2>;
    fn write(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError>;
}

impl<B: Backbone> BranchExport for B {
    fn len(&self) -> usize {
        self.feature_len()
    }
    fn run(&self, x: Tensor<4>) -> Tensor<2> {
        self.features(x)
    }
    fn write(&self, g: &mut OnnxGraph, x: &str) -> Result<String, ExportError> {
        self.export_features(g, x)
    }
}

/// `[mean, variance]` -> `Dense(16, relu) -> Dense(8, relu)`.
#[derive(Module, Debug)]
pub struct SsimStatsBranch {
    dense1: Linear,
    dense2: Linear,
    activation: Relu,
}

impl SsimStatsBranch {
    fn new(device: &Device) -> Self {
        SsimStatsBranch {
            dense1: keras::dense(2, 16, device),
            dense2: keras::dense(16, STATS_FEATURES, device),
            activation: Relu::new(),
        }
    }

    fn forward(&self, stats: Tensor<2>) -> Tensor<2> {
        let x = self.activation.forward(self.dense1.forward(stats));
        self.activation.forward(self.dense2.forward(x))
    }

    fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        let x = export::linear(g, &self.dense1, input)?;
        let x = export::relu(g, &x);
        let x = export::linear(g, &self.dense2, &x)?;
        Ok(export::relu(g, &x))
    }
}

/// A detector that sees the face, the SSIM map and the SSIM statistics. Generic over the face
/// backbone, like [`crate::single::SingleInput`].
#[derive(Module, Debug)]
pub struct MultiInput<B: Backbone> {
    face: B,
    face_score: Option<Linear>,
    ssim_map: SsimMapBranch,
    ssim_stats: SsimStatsBranch,
    head: Head,
}

impl<B: Backbone> MultiInput<B> {
    /// Assembles the three branches and the head around `backbone`.
    pub fn new(backbone: B, config: &MultiConfig, device: &Device) -> Self {
        let face_score = config
            .face_score
            .then(|| keras::dense(backbone.feature_len(), 1, device));
        let face_len = if config.face_score {
            1
        } else {
            backbone.feature_len()
        };
        let ssim_map = SsimMapBranch::new(config.ssim_map, device);
        let concat_len = face_len + ssim_map.backbone().len() + STATS_FEATURES;
        MultiInput {
            face: backbone,
            face_score,
            ssim_map,
            ssim_stats: SsimStatsBranch::new(device),
            head: config.head.init(concat_len, device),
        }
    }

    /// The face backbone.
    pub fn backbone(&self) -> &B {
        &self.face
    }

    /// This detector with its face backbone replaced by `load(backbone)`, the other branches and
    /// the head kept (see [`crate::single::SingleInput::try_map_backbone`]).
    pub fn try_map_backbone<E>(self, load: impl FnOnce(B) -> Result<B, E>) -> Result<Self, E> {
        Ok(MultiInput {
            face: load(self.face)?,
            ..self
        })
    }

    /// Logit of P(FAKE) `[N, 1]`.
    pub fn forward(
        &self,
        face: Tensor<4>,
        ssim_map: Tensor<4>,
        ssim_stats: Tensor<2>,
    ) -> Tensor<2> {
        let face = self.face.features(B::PIXELS.apply(face));
        self.forward_from_face_features(face, ssim_map, ssim_stats)
    }

    /// The rest of [`MultiInput::forward`] once the face backbone gave its features.
    fn forward_from_face_features(
        &self,
        mut face: Tensor<2>,
        ssim_map: Tensor<4>,
        ssim_stats: Tensor<2>,
    ) -> Tensor<2> {
        if let Some(score) = &self.face_score {
            face = sigmoid(score.forward(face));
        }
        let map = self
            .ssim_map
            .backbone()
            .run(PixelScaling::UNIT.apply(ssim_map));
        let stats = self.ssim_stats.forward(ssim_stats);
        self.head.forward(Tensor::cat(vec![face, map, stats], 1))
    }
}

/// The SSIM inputs of a multi-input batch. Panics when one is missing: the caller builds the
/// input from [`Detector::form`], so a missing one is a bug, not bad data.
fn ssim_inputs(input: &DetectorInput) -> (Tensor<4>, Tensor<2>) {
    let map = input
        .ssim_map
        .clone()
        .expect("a multi-input detector needs ssim_map (see Detector::form)");
    let stats = input
        .ssim_stats
        .clone()
        .expect("a multi-input detector needs ssim_stats (see Detector::form)");
    (map, stats)
}

impl<B: Backbone + ModuleDisplay> Detector for MultiInput<B> {
    fn form(&self) -> Form {
        Form::Multi
    }

    /// Panics when `ssim_map` or `ssim_stats` is missing: the caller builds the input from
    /// [`Detector::form`], so a missing one is a bug, not bad data.
    fn forward_logits(&self, input: &DetectorInput) -> Tensor<2> {
        let (map, stats) = ssim_inputs(input);
        self.forward(input.face.clone(), map, stats)
    }

    /// Only the face backbone is tapped: the SSIM-map branch is a CNN too, but the saliency
    /// asked for is the face's.
    fn forward_logits_tapped(
        &self,
        input: &DetectorInput,
        tap: &mut ConvTap<'_>,
    ) -> Option<Tensor<2>> {
        let (map, stats) = ssim_inputs(input);
        let face = self
            .face
            .features_tapped(B::PIXELS.apply(input.face.clone()), tap)?;
        Some(self.forward_from_face_features(face, map, stats))
    }

    fn backbone_param_ids(&self) -> Vec<burn::module::ParamId> {
        crate::params::param_ids(&self.face)
    }

    fn weight_penalty(&self) -> Option<Tensor<1>> {
        match (self.face.weight_penalty(), self.ssim_map.weight_penalty()) {
            (Some(face), Some(map)) => Some(face + map),
            (face, map) => face.or(map),
        }
    }

    fn export_onnx(&self) -> Result<Vec<u8>, ExportError> {
        let mut g = OnnxGraph::new("dfd-detector-multi");
        g.add_input("face", &face_dims(3));
        g.add_input("ssim_map", &face_dims(1));
        g.add_input("ssim_stats", &[Dim::Batch, Dim::Fixed(2)]);
        let face = B::PIXELS.export(&mut g, "face");
        let mut face = self.face.export_features(&mut g, &face)?;
        if let Some(score) = &self.face_score {
            let z = export::linear(&mut g, score, &face)?;
            face = export::sigmoid(&mut g, &z);
        }
        let map = PixelScaling::UNIT.export(&mut g, "ssim_map");
        let map = self.ssim_map.backbone().write(&mut g, &map)?;
        let stats = self.ssim_stats.export(&mut g, "ssim_stats")?;
        let features = export::concat(&mut g, &[&face, &map, &stats], 1);
        let logit = self.head.export(&mut g, &features)?;
        write_p_fake(&mut g, &logit);
        Ok(g.to_model_bytes())
    }
}
