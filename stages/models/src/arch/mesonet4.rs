//! MesoNet-4 as the reference study builds it (`MesoNet-4.py` of Sihe12/DeepFake; 24,233
//! parameters at 224x224):
//!
//! ```text
//! Conv2D(8, 3x3)  -> BatchNorm -> MaxPool(2)        every Conv2D: same padding, ReLU
//! Conv2D(8, 5x5)  -> BatchNorm -> MaxPool(2)
//! Conv2D(16, 5x5) -> BatchNorm -> MaxPool(2)
//! Conv2D(16, 5x5) -> BatchNorm -> MaxPool(4)        -> 16 x 7 x 7
//! Flatten                                           (features, 784)
//! Dropout(0.5) -> Dense(16) -> LeakyReLU(0.1) -> Dropout(0.5) -> Dense(1, sigmoid)   (the head)
//! ```
//!
//! Unlike the original MesoNet paper, the reference applies ReLU *before* BatchNorm and uses
//! LeakyReLU only in the head; we follow the reference. In the multi-input form
//! (`MesoNet_SSIM.py`) the flattened 784 features are concatenated with the SSIM branches and the
//! same Dropout/Dense(16)/LeakyReLU head follows the concatenation, which is why the head is not
//! part of this backbone.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::cnn_blocks::ConvReluBnPool;
use crate::detector::ArchitectureBackbone;
use crate::detector::{untapped, Backbone, ConvTap};
use crate::export;
use crate::head::HeadConfig;
use crate::multi::MultiConfig;
use crate::onnx::{ExportError, OnnxGraph};
use crate::variant::Architecture;

/// `(filters, kernel, pool)` of the four blocks.
const BLOCKS: [(usize, usize, usize); 4] = [(8, 3, 2), (8, 5, 2), (16, 5, 2), (16, 5, 4)];
/// 16 channels of 224 / (2 * 2 * 2 * 4) = 7 squared.
const FEATURES: usize = 16 * 7 * 7;

/// MesoNet-4's feature extractor; see the module documentation.
#[derive(Module, Debug)]
pub struct MesoNet4 {
    blocks: Vec<ConvReluBnPool>,
}

impl MesoNet4 {
    pub fn new(device: &Device) -> Self {
        let mut c_in = 3;
        let blocks = BLOCKS
            .iter()
            .map(|&(c_out, kernel, pool)| {
                let block = ConvReluBnPool::new(c_in, c_out, kernel, pool, device);
                c_in = c_out;
                block
            })
            .collect();
        MesoNet4 { blocks }
    }
}

impl MesoNet4 {
    /// The features, the fourth block's output (16 x 7 x 7) passed through `tap`.
    fn tapped(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Tensor<2> {
        let x = self.blocks.iter().fold(face, |x, block| block.forward(x));
        tap(x).flatten(1, 3)
    }
}

impl ArchitectureBackbone for MesoNet4 {
    const ARCHITECTURE: Architecture = Architecture::MesoNet4;
    const HEAD: HeadConfig = HeadConfig::MESO;
    /// The multi-input MesoNet-4 of the reference: the compact SSIM-map CNN, the MesoNet head
    /// after the concatenation.
    const MULTI: MultiConfig = MultiConfig::MESO;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl Backbone for MesoNet4 {
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
        for block in &self.blocks {
            x = block.export(graph, &x)?;
        }
        Ok(export::flatten(graph, &x))
    }
}
