//! What a detector's image inputs hold, and where each network's own scaling of them happens.
//!
//! Every detector takes the crop's pixel values as they are, `0..=255` as floats (and the SSIM
//! map as stored, `0..=255`), and scales them as its first step, in burn and in its ONNX export
//! alike. Why inside the model: the scaling belongs to the weights (the Keras-style networks
//! were trained on `pixel / 255`, EfficientNet-Lite0's ImageNet weights on `(pixel - 127) / 128`),
//! and a caller that had to know it could get it wrong silently. So `score`, `predict`, `dfd
//! evaluate` and a user's own ONNX Runtime code all feed every model the same numbers.

use burn::tensor::Tensor;

use crate::onnx::OnnxGraph;

/// `(x - offset) / divisor`, elementwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelScaling {
    pub offset: f32,
    pub divisor: f32,
}

impl PixelScaling {
    /// Keras's `rescale=1./255`: pixels to `[0, 1]`. The reference's networks, and the SSIM map.
    pub const UNIT: PixelScaling = PixelScaling {
        offset: 0.0,
        divisor: 255.0,
    };

    /// `x` scaled. A division (not a multiplication by `1 / divisor`), so that integer pixel
    /// values give the correctly rounded `v / 255` that training used before the scaling moved
    /// into the models.
    pub fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = if self.offset == 0.0 {
            x
        } else {
            x.sub_scalar(self.offset)
        };
        x.div_scalar(self.divisor)
    }

    /// Appends the same computation to `graph`, reading the graph input named `input` (whose
    /// name also keeps the constants of two inputs apart); returns the name of the scaled value.
    pub fn export(&self, graph: &mut OnnxGraph, input: &str) -> String {
        let shifted = if self.offset == 0.0 {
            input.to_string()
        } else {
            let offset = graph.weight_f32(&format!("{input}_offset"), &[], &[self.offset]);
            graph.op("Sub", &[input, &offset], &[])
        };
        let divisor = graph.weight_f32(&format!("{input}_divisor"), &[], &[self.divisor]);
        graph.op("Div", &[&shifted, &divisor], &[])
    }
}
