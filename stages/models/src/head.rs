//! The classification head that ends every detector, in both forms: optionally one hidden layer,
//! then Dense(1) -> the logit.
//!
//! Why configurable: the reference study's MesoNet-4 and MesoInception-4 end in
//! `Dropout(0.5) -> Dense(16) -> LeakyReLU(0.1) -> Dropout(0.5) -> Dense(1)`, and their
//! multi-input forms put that same stack after the concatenation of the three branches (not
//! inside the face branch); the other architectures end in a bare Dense(1). Keeping the hidden
//! layer in the head, not in the backbone, lets one backbone serve both forms unchanged.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LeakyRelu, LeakyReluConfig, Linear};
use burn::tensor::{Device, Tensor};

use crate::export;
use crate::keras;
use crate::onnx::{ExportError, OnnxGraph};

/// A hidden layer `Dropout(dropout) -> Dense(units) -> LeakyReLU(negative_slope) ->
/// Dropout(dropout)` before the output unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HiddenLayerConfig {
    pub units: usize,
    pub negative_slope: f64,
    pub dropout: f64,
}

/// What the head holds before its Dense(1).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct HeadConfig {
    pub hidden: Option<HiddenLayerConfig>,
}

impl HeadConfig {
    /// Dense(1) on the features, nothing else (Baseline, MobileNetV3Small, EfficientNetB0, ViT).
    pub const DENSE: HeadConfig = HeadConfig { hidden: None };

    /// The MesoNet head: `Dropout(0.5) -> Dense(16) -> LeakyReLU(0.1) -> Dropout(0.5) -> Dense(1)`.
    pub const MESO: HeadConfig = HeadConfig {
        hidden: Some(HiddenLayerConfig {
            units: 16,
            negative_slope: 0.1,
            dropout: 0.5,
        }),
    };

    /// Builds the head for `d_input` features.
    pub fn init(&self, d_input: usize, device: &Device) -> Head {
        let hidden = self.hidden.map(|h| HiddenLayer {
            dropout_in: DropoutConfig::new(h.dropout).init(),
            dense: keras::dense(d_input, h.units, device),
            activation: LeakyReluConfig::new()
                .with_negative_slope(h.negative_slope)
                .init(),
            dropout_out: DropoutConfig::new(h.dropout).init(),
        });
        let width = self.hidden.map_or(d_input, |h| h.units);
        Head {
            hidden,
            output: keras::dense(width, 1, device),
        }
    }
}

/// See [`HiddenLayerConfig`].
#[derive(Module, Debug)]
pub struct HiddenLayer {
    dropout_in: Dropout,
    dense: Linear,
    activation: LeakyRelu,
    dropout_out: Dropout,
}

impl HiddenLayer {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.dense.forward(self.dropout_in.forward(x));
        self.dropout_out.forward(self.activation.forward(x))
    }

    fn export(&self, g: &mut OnnxGraph, input: &str) -> Result<String, ExportError> {
        let x = export::dropout(&self.dropout_in, input);
        let x = export::linear(g, &self.dense, &x)?;
        let x = export::leaky_relu(g, &self.activation, &x);
        Ok(export::dropout(&self.dropout_out, &x))
    }
}

/// Features `[N, d_input]` -> logit `[N, 1]`. Built by [`HeadConfig::init`].
#[derive(Module, Debug)]
pub struct Head {
    hidden: Option<HiddenLayer>,
    output: Linear,
}

impl Head {
    /// The logit of P(FAKE).
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let x = match &self.hidden {
            Some(hidden) => hidden.forward(features),
            None => features,
        };
        self.output.forward(x)
    }

    /// Appends the head to `g`; returns the name of the logit.
    pub fn export(&self, g: &mut OnnxGraph, features: &str) -> Result<String, ExportError> {
        let x = match &self.hidden {
            Some(hidden) => hidden.export(g, features)?,
            None => features.to_owned(),
        };
        export::linear(g, &self.output, &x)
    }
}
