//! The compact SSIM-map CNN of the reference study's MesoNet-4 and MesoInception-4 multi-input
//! forms (`MesoNet_SSIM.py`, `MesoNet-Inception_SSIM.py` of Sihe12/DeepFake):
//!
//! ```text
//! 3 x [Conv2D(f, 3x3, same, relu) -> BatchNorm -> MaxPool(2)]   f = 16, 32, 64
//! GlobalAveragePooling2D -> Dense(64, relu) -> Dropout(0.5)      (features, 64)
//! ```
//!
//! 27,904 parameters on the one-channel map. (Baseline, EfficientNetB0 and ViT-B/16 use a
//! one-channel Baseline CNN for this branch instead: see [`crate::arch::baseline`].)

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, Relu};
use burn::tensor::{Device, Tensor};

use super::cnn_blocks::{ConvReluBnPool, GlobalAvgPool};
use crate::detector::Backbone;
use crate::export;
use crate::keras;
use crate::onnx::{ExportError, OnnxGraph};

const FILTERS: [usize; 3] = [16, 32, 64];
const DENSE_UNITS: usize = 64;

/// See the module documentation.
#[derive(Module, Debug)]
pub struct SsimMapCnn {
    blocks: Vec<ConvReluBnPool>,
    pool: GlobalAvgPool,
    dense: Linear,
    activation: Relu,
    dropout: Dropout,
}

impl SsimMapCnn {
    /// The branch on a one-channel SSIM map.
    pub fn new(device: &Device) -> Self {
        let mut c_in = 1;
        let blocks = FILTERS
            .iter()
            .map(|&c_out| {
                let block = ConvReluBnPool::new(c_in, c_out, 3, 2, device);
                c_in = c_out;
                block
            })
            .collect();
        SsimMapCnn {
            blocks,
            pool: GlobalAvgPool::new(),
            dense: keras::dense(c_in, DENSE_UNITS, device),
            activation: Relu::new(),
            dropout: DropoutConfig::new(0.5).init(),
        }
    }
}

/// A [`Backbone`] on a one-channel image: the trait's contract is the shape of a feature
/// extractor, which this is, on the SSIM map rather than the face.
impl Backbone for SsimMapCnn {
    fn feature_len(&self) -> usize {
        DENSE_UNITS
    }

    fn features(&self, map: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.iter().fold(map, |x, block| block.forward(x));
        let x = self
            .activation
            .forward(self.dense.forward(self.pool.forward(x)));
        self.dropout.forward(x)
    }

    fn export_features(&self, graph: &mut OnnxGraph, map: &str) -> Result<String, ExportError> {
        let mut x = map.to_owned();
        for block in &self.blocks {
            x = block.export(graph, &x)?;
        }
        let x = self.pool.export(graph, &x)?;
        let x = export::linear(graph, &self.dense, &x)?;
        let x = export::relu(graph, &x);
        Ok(export::dropout(&self.dropout, &x))
    }
}
