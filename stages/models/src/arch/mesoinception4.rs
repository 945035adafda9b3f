//! MesoInception-4 as the reference study builds it (`MesoNet-Inception.py` of Sihe12/DeepFake;
//! 32,089 parameters at 224x224):
//!
//! ```text
//! InceptionBlock(8) -> MaxPool(2)                   -> 24 channels
//! InceptionBlock(8) -> MaxPool(2)                   -> 24 channels
//! Conv2D(16, 5x5, same, relu) -> BatchNorm -> MaxPool(2)
//! Conv2D(16, 5x5, same, relu) -> BatchNorm -> MaxPool(4)   -> 16 x 7 x 7
//! Flatten                                           (features, 784)
//! Dropout(0.5) -> Dense(16) -> LeakyReLU(0.1) -> Dropout(0.5) -> Dense(1, sigmoid)   (the head)
//! ```
//!
//! The reference's inception block is not the original paper's (four branches of 1/4/4/2
//! filters with dilations 1/2/3); it is three paths concatenated on channels:
//! `1x1 -> 3x3`, `1x1 -> 3x3 dilated 2`, and a `1x1` skip, every convolution followed by
//! BatchNorm and LeakyReLU(0.1). We follow the reference.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::cnn_blocks::{ConvBnLeaky, ConvReluBnPool};
use crate::detector::ArchitectureBackbone;
use crate::detector::{untapped, Backbone, ConvTap};
use crate::export;
use crate::head::HeadConfig;
use crate::multi::MultiConfig;
use crate::onnx::{ExportError, OnnxGraph};
use crate::variant::Architecture;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};

/// Slope of every LeakyReLU in the block.
const NEGATIVE_SLOPE: f64 = 0.1;
/// Filters per path; a block outputs three times as many channels.
const BLOCK_FILTERS: usize = 8;
/// 16 channels of 224 / (2 * 2 * 2 * 4) = 7 squared.
const FEATURES: usize = 16 * 7 * 7;

/// The reference's inception block; see the module documentation.
#[derive(Module, Debug)]
pub struct InceptionBlock {
    path1_reduce: ConvBnLeaky,
    path1: ConvBnLeaky,
    path2_reduce: ConvBnLeaky,
    path2: ConvBnLeaky,
    skip: ConvBnLeaky,
}

impl InceptionBlock {
    pub fn new(c_in: usize, filters: usize, device: &Device) -> Self {
        let unit = |c_in, kernel, dilation| {
            ConvBnLeaky::new(c_in, filters, kernel, dilation, NEGATIVE_SLOPE, device)
        };
        InceptionBlock {
            path1_reduce: unit(c_in, 1, 1),
            path1: unit(filters, 3, 1),
            path2_reduce: unit(c_in, 1, 1),
            path2: unit(filters, 3, 2),
            skip: unit(c_in, 1, 1),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let path1 = self.path1.forward(self.path1_reduce.forward(x.clone()));
        let path2 = self.path2.forward(self.path2_reduce.forward(x.clone()));
        let skip = self.skip.forward(x);
        Tensor::cat(vec![path1, path2, skip], 1)
    }

    pub fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        let path1 = self.path1_reduce.export(g, input)?;
        let path1 = self.path1.export(g, &path1)?;
        let path2 = self.path2_reduce.export(g, input)?;
        let path2 = self.path2.export(g, &path2)?;
        let skip = self.skip.export(g, input)?;
        Ok(export::concat(g, &[&path1, &path2, &skip], 1))
    }
}

/// MesoInception-4's feature extractor; see the module documentation.
#[derive(Module, Debug)]
pub struct MesoInception4 {
    inception: Vec<InceptionBlock>,
    inception_pool: MaxPool2d,
    convs: Vec<ConvReluBnPool>,
}

impl MesoInception4 {
    pub fn new(device: &Device) -> Self {
        let widened = 3 * BLOCK_FILTERS;
        MesoInception4 {
            inception: vec![
                InceptionBlock::new(3, BLOCK_FILTERS, device),
                InceptionBlock::new(widened, BLOCK_FILTERS, device),
            ],
            inception_pool: MaxPool2dConfig::new([2, 2]).init(),
            convs: vec![
                ConvReluBnPool::new(widened, 16, 5, 2, device),
                ConvReluBnPool::new(16, 16, 5, 4, device),
            ],
        }
    }
}

impl MesoInception4 {
    /// The features, the last convolutional block's output passed through `tap`.
    fn tapped(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Tensor<2> {
        let x = self.inception.iter().fold(face, |x, block| {
            self.inception_pool.forward(block.forward(x))
        });
        let x = self.convs.iter().fold(x, |x, block| block.forward(x));
        tap(x).flatten(1, 3)
    }
}

impl ArchitectureBackbone for MesoInception4 {
    const ARCHITECTURE: Architecture = Architecture::MesoInception4;
    /// The head of both forms.
    const HEAD: HeadConfig = HeadConfig::MESO;
    /// The multi-input MesoInception-4 of the reference (`MesoNet-Inception_SSIM.py`): the
    /// compact SSIM-map CNN, the MesoNet head after the concatenation.
    const MULTI: MultiConfig = MultiConfig::MESO;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl Backbone for MesoInception4 {
    fn feature_len(&self) -> usize {
        FEATURES
    }

    fn features(&self, face: Tensor<4>) -> Tensor<2> {
        self.tapped(face, &mut untapped)
    }

    fn features_tapped(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Option<Tensor<2>> {
        Some(self.tapped(face, tap))
    }

    fn export_features(&self, graph: &mut OnnxGraph, face: &str) -> Result<String, ExportError> {
        let mut x = face.to_owned();
        for block in &self.inception {
            let y = block.export(graph, &x)?;
            x = export::max_pool2d(graph, &self.inception_pool, &y)?;
        }
        for block in &self.convs {
            x = block.export(graph, &x)?;
        }
        Ok(export::flatten(graph, &x))
    }
}
