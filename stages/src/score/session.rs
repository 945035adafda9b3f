//! One exported model on ONNX Runtime: which inputs it takes, and batches of samples in, P(FAKE) out.

use std::borrow::Cow;

use ndarray::{concatenate, Array, ArrayD, ArrayView4, Axis, Dimension};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use dfd_models::ComputeDevice;
use dfd_schemas::TrainedModelRow;

use crate::model_inputs::{fill_face_batch, ssim_map_batch, ssim_stats_batch, ModelSample};

/// Why a model could not be scored. Each names the model variant.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("model {model}: ONNX Runtime: {detail}")]
    Runtime { model: String, detail: String },
    #[error("model {model}: {detail}")]
    Contract { model: String, detail: String },
    #[error("model {model}: {source}")]
    Device {
        model: String,
        source: super::device::ScoreDeviceError,
    },
}

/// A loaded model and what it takes.
pub struct ModelSession {
    model: String,
    session: Session,
    multi_input: bool,
    /// Whether the session runs the graph rewritten to score crops two at a time
    /// ([`dfd_models::onnx::pair_first_conv`]), which takes even batches only.
    paired: bool,
    /// The face batch's floats, kept from batch to batch (see [`fill_face_batch`]).
    face_values: Vec<f32>,
}

/// The width, in channels, that ONNX Runtime's CPU convolutions compute outputs in on this
/// machine: MLAS's NCHWc blocks are 16 wide where AVX-512 is available and 8 wide on other x86-64
/// machines. `None` elsewhere: the pairing is only measured on x86-64.
pub fn ort_channel_block() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(if std::arch::is_x86_feature_detected!("avx512f") {
            16
        } else {
            8
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

impl ModelSession {
    /// Loads the ONNX bytes of `row` with `threads` intra-op threads (0: one per core), with a
    /// narrow first convolution run on pairs of crops where that is faster on this machine
    /// ([`ort_channel_block`]).
    pub fn load(row: &TrainedModelRow, threads: usize) -> Result<ModelSession, ScoreError> {
        Self::load_with_block(row, threads, ort_channel_block())
    }

    /// [`ModelSession::load`] on `device`: the CPU as there, or a CUDA device through ONNX
    /// Runtime's CUDA provider (see [`super::device`]), with the graph as exported (the paired
    /// first convolution suits the CPU's kernels only).
    pub fn load_on(
        row: &TrainedModelRow,
        threads: usize,
        device: ComputeDevice,
    ) -> Result<ModelSession, ScoreError> {
        match device {
            ComputeDevice::Cpu => Self::load(row, threads),
            ComputeDevice::Cuda(_) => Self::build(row, threads, None, device),
        }
    }

    /// [`ModelSession::load`] for a given channel block width (`None`: the graph as exported),
    /// for comparing the two forms.
    pub fn load_with_block(
        row: &TrainedModelRow,
        threads: usize,
        block: Option<usize>,
    ) -> Result<ModelSession, ScoreError> {
        Self::build(row, threads, block, ComputeDevice::Cpu)
    }

    fn build(
        row: &TrainedModelRow,
        threads: usize,
        block: Option<usize>,
        device: ComputeDevice,
    ) -> Result<ModelSession, ScoreError> {
        let on_device = |source| ScoreError::Device {
            model: row.model.clone(),
            source,
        };
        let provider = super::device::cuda_provider(device).map_err(on_device)?;
        let runtime = |detail: String| ScoreError::Runtime {
            model: row.model.clone(),
            detail,
        };
        let paired_graph =
            match block {
                Some(block) => dfd_models::onnx::pair_first_conv(&row.onnx, "face", block)
                    .map_err(|e| ScoreError::Contract {
                        model: row.model.clone(),
                        detail: format!("the ONNX model cannot be read: {e}"),
                    })?,
                None => None,
            };
        let paired = paired_graph.is_some();
        let graph = paired_graph.map_or(Cow::Borrowed(&row.onnx[..]), Cow::Owned);
        let env = crate::detect::ort_environment().map_err(|e| runtime(e.to_string()))?;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut builder = Session::builder(&env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|b| Ok(b.with_intra_threads(threads)?))
            .map_err(|e| runtime(e.to_string()))?;
        if let Some(provider) = provider {
            builder = builder
                .with_execution_providers([provider])
                .map_err(|e| on_device(super::device::register_error(device, e.to_string())))?;
        }
        let session = builder
            .commit_from_memory(&graph)
            .map_err(|e| runtime(e.to_string()))?;
        let mut inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_owned())
            .collect();
        inputs.sort();
        let multi_input = match inputs.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["face"] => false,
            ["face", "ssim_map", "ssim_stats"] => true, // sorted
            _ => {
                return Err(ScoreError::Contract {
                    model: row.model.clone(),
                    detail: format!(
                        "inputs {inputs:?}; expected [face] or [face, ssim_map, ssim_stats]"
                    ),
                })
            }
        };
        Ok(ModelSession {
            model: row.model.clone(),
            session,
            multi_input,
            paired,
            face_values: Vec::new(),
        })
    }

    /// Whether the model takes the SSIM map and statistics besides the face.
    pub fn multi_input(&self) -> bool {
        self.multi_input
    }

    /// Whether the session runs the paired graph (see [`ModelSession::load`]).
    pub fn paired(&self) -> bool {
        self.paired
    }

    /// P(FAKE) for each sample, in order. Multi-input models need every sample to have its SSIM
    /// inputs ([`ModelSample::has_ssim`]).
    pub fn score(&mut self, samples: &[&ModelSample]) -> Result<Vec<f32>, ScoreError> {
        let runtime = |detail: String| ScoreError::Runtime {
            model: self.model.clone(),
            detail,
        };
        let mut shape = fill_face_batch(samples, &mut self.face_values).map_err(|detail| {
            ScoreError::Contract {
                model: self.model.clone(),
                detail,
            }
        })?;
        // The paired graph takes crops two at a time: an odd batch gets a blank last crop, whose
        // score is dropped.
        let blank = self.paired && samples.len() % 2 == 1;
        if blank {
            shape.0 += 1;
            self.face_values
                .resize(shape.0 * shape.1 * shape.2 * shape.3, 0.0);
        }
        let face =
            ArrayView4::from_shape(shape, &self.face_values).map_err(|e| runtime(e.to_string()))?;
        let mut values = vec![(
            "face".to_owned(),
            TensorRef::from_array_view(face).map_err(|e| runtime(e.to_string()))?,
        )];
        let mut ssim_inputs: Vec<(&str, ArrayD<f32>)> = Vec::new();
        if self.multi_input {
            let contract = |detail: &str| ScoreError::Contract {
                model: self.model.clone(),
                detail: detail.to_owned(),
            };
            let map =
                ssim_map_batch(samples).ok_or_else(|| contract("a sample has no SSIM map"))?;
            let stats = ssim_stats_batch(samples)
                .ok_or_else(|| contract("a sample has no SSIM statistics"))?;
            ssim_inputs.push(("ssim_map", with_blank(map.into_dyn(), blank)));
            ssim_inputs.push(("ssim_stats", with_blank(stats.into_dyn(), blank)));
        }
        for (name, array) in &ssim_inputs {
            let tensor =
                TensorRef::from_array_view(array.view()).map_err(|e| runtime(e.to_string()))?;
            values.push((name.to_string(), tensor));
        }
        let outputs = self
            .session
            .run(values)
            .map_err(|e| runtime(e.to_string()))?;
        let p_fake = outputs
            .get("p_fake")
            .ok_or_else(|| runtime("no output p_fake".into()))?
            .try_extract_array::<f32>()
            .map_err(|e| runtime(e.to_string()))?;
        if p_fake.len() != shape.0 {
            return Err(runtime(format!(
                "p_fake has shape {:?} for {} samples",
                p_fake.shape(),
                shape.0
            )));
        }
        Ok(p_fake.iter().take(samples.len()).copied().collect())
    }
}

/// `batch` with one all-zero sample appended when `blank`.
fn with_blank(batch: ArrayD<f32>, blank: bool) -> ArrayD<f32> {
    if !blank {
        return batch;
    }
    let mut one = batch.raw_dim();
    one.as_array_view_mut()[0] = 1;
    let zeros = Array::zeros(one);
    concatenate(Axis(0), &[batch.view(), zeros.view()]).unwrap_or(batch)
}
