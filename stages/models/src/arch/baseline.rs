//! The reference study's Baseline CNN (`base_model.py` of Sihe12/DeepFake, the version whose
//! `model.summary()` gives the 423,361 parameters its README reports):
//!
//! ```text
//! 4 x [Conv2D(f, 3x3, same, relu) -> BatchNorm -> MaxPool(2)]   f = 32, 64, 128, 256
//! GlobalAveragePooling2D -> Dense(128, relu) -> Dropout(0.5)     (features, 128)
//! Dense(1, sigmoid)                                              (the head)
//! ```
//!
//! Its Dense(128) carries an L2 kernel regulariser (0.01) in the reference: 0.01 times the sum of
//! the squared kernel weights (not the bias) is added to the loss, which is what
//! [`Backbone::weight_penalty`] returns and the training loop adds. Where a Baseline serves as the
//! SSIM-map branch of a multi-input model it keeps its regulariser: it is the same network.
//!
//! The same network on a one-channel input is the SSIM-map branch of the multi-input form of
//! Baseline (and of EfficientNetB0 and ViT-B/16), which is why the channel count is a parameter.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, Relu};
use burn::tensor::{Device, Tensor};

use super::cnn_blocks::{ConvReluBnPool, GlobalAvgPool};
use crate::detector::ArchitectureBackbone;
use crate::detector::{untapped, Backbone, ConvTap};
use crate::export;
use crate::head::HeadConfig;
use crate::keras;
use crate::multi::MultiConfig;
use crate::onnx::{ExportError, OnnxGraph};
use crate::variant::Architecture;

const FILTERS: [usize; 4] = [32, 64, 128, 256];
const DENSE_UNITS: usize = 128;

/// The Baseline CNN's feature extractor; see the module documentation.
#[derive(Module, Debug)]
pub struct Baseline {
    blocks: Vec<ConvReluBnPool>,
    pool: GlobalAvgPool,
    dense: Linear,
    activation: Relu,
    dropout: Dropout,
}

impl Baseline {
    /// Weight of the L2 penalty the reference puts on the Dense(128) kernel.
    pub const L2_DENSE: f64 = 0.01;

    /// The face backbone (3 input channels).
    pub fn new(device: &Device) -> Self {
        Self::with_in_channels(3, device)
    }

    /// The same network on `channels` input channels (1 for the SSIM map).
    pub fn with_in_channels(channels: usize, device: &Device) -> Self {
        let mut c_in = channels;
        let blocks = FILTERS
            .iter()
            .map(|&c_out| {
                let block = ConvReluBnPool::new(c_in, c_out, 3, 2, device);
                c_in = c_out;
                block
            })
            .collect();
        Baseline {
            blocks,
            pool: GlobalAvgPool::new(),
            dense: keras::dense(c_in, DENSE_UNITS, device),
            activation: Relu::new(),
            dropout: DropoutConfig::new(0.5).init(),
        }
    }
}

impl Baseline {
    /// The features, the last convolutional block's output passed through `tap` before the
    /// global pooling.
    fn tapped(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Tensor<2> {
        let x = self.blocks.iter().fold(face, |x, block| block.forward(x));
        let x = self
            .activation
            .forward(self.dense.forward(self.pool.forward(tap(x))));
        self.dropout.forward(x)
    }
}

impl ArchitectureBackbone for Baseline {
    const ARCHITECTURE: Architecture = Architecture::Baseline;
    /// The head of both forms: a bare Dense(1).
    const HEAD: HeadConfig = HeadConfig::DENSE;
    /// The multi-input Baseline of the reference: the SSIM map goes through a second Baseline.
    const MULTI: MultiConfig = MultiConfig::FEATURES;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl Backbone for Baseline {
    fn feature_len(&self) -> usize {
        DENSE_UNITS
    }

    fn weight_penalty(&self) -> Option<Tensor<1>> {
        let kernel = self.dense.weight.val();
        Some(kernel.powi_scalar(2).sum().mul_scalar(Self::L2_DENSE))
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
        let x = self.pool.export(graph, &x)?;
        let x = export::linear(graph, &self.dense, &x)?;
        let x = export::relu(graph, &x);
        Ok(export::dropout(&self.dropout, &x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::mesonet4::MesoNet4;
    use crate::Detector;

    fn value(penalty: Option<Tensor<1>>) -> Option<f64> {
        penalty.map(|p| f64::from(p.into_data().try_to_vec::<f32>().unwrap()[0]))
    }

    #[test]
    fn the_l2_penalty_is_a_hundredth_of_the_squared_dense_kernel() {
        let device = Device::flex();
        let baseline = Baseline::new(&device);
        let kernel: Vec<f32> = baseline
            .dense
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        let expected = 0.01 * kernel.iter().map(|w| f64::from(*w).powi(2)).sum::<f64>();
        let penalty = value(baseline.weight_penalty()).expect("Baseline has a penalty");
        assert!(expected > 0.0);
        assert!(
            (penalty - expected).abs() <= 1e-5 * expected,
            "{penalty} vs {expected}"
        );

        let single = value(Baseline::single(&device).weight_penalty()).expect("single form");
        assert!(single > 0.0);
        // The multi-input form adds its SSIM-map Baseline's own Dense(128) term.
        let multi = value(Baseline::multi(&device).weight_penalty()).expect("multi form");
        assert!(multi > single, "{multi} <= {single}");
        assert_eq!(value(MesoNet4::single(&device).weight_penalty()), None);
    }
}
