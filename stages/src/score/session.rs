//! One exported model on ONNX Runtime: which inputs it takes, and batches of samples in, P(FAKE) out.

use ndarray::{ArrayD, ArrayView4};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use dfd_schemas::TrainedModelRow;

use crate::model_inputs::{fill_face_batch, ssim_map_batch, ssim_stats_batch, ModelSample};

/// Why a model could not be scored. Each names the model variant.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("model {model}: ONNX Runtime: {detail}")]
    Runtime { model: String, detail: String },
    #[error("model {model}: {detail}")]
    Contract { model: String, detail: String },
}

/// A loaded model and what it takes.
pub struct ModelSession {
    model: String,
    session: Session,
    multi_input: bool,
    /// The face batch's floats, kept from batch to batch (see [`fill_face_batch`]).
    face_values: Vec<f32>,
}

impl ModelSession {
    /// Loads the ONNX bytes of `row` with `threads` intra-op threads (0: one per core).
    pub fn load(row: &TrainedModelRow, threads: usize) -> Result<ModelSession, ScoreError> {
        let runtime = |detail: String| ScoreError::Runtime {
            model: row.model.clone(),
            detail,
        };
        let env = crate::detect::ort_environment().map_err(|e| runtime(e.to_string()))?;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let session = Session::builder(&env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|b| Ok(b.with_intra_threads(threads)?))
            .and_then(|mut b| b.commit_from_memory(&row.onnx))
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
            face_values: Vec::new(),
        })
    }

    /// Whether the model takes the SSIM map and statistics besides the face.
    pub fn multi_input(&self) -> bool {
        self.multi_input
    }

    /// P(FAKE) for each sample, in order. Multi-input models need every sample to have its SSIM
    /// inputs ([`ModelSample::has_ssim`]).
    pub fn score(&mut self, samples: &[&ModelSample]) -> Result<Vec<f32>, ScoreError> {
        let runtime = |detail: String| ScoreError::Runtime {
            model: self.model.clone(),
            detail,
        };
        let shape = fill_face_batch(samples, &mut self.face_values).map_err(|detail| {
            ScoreError::Contract {
                model: self.model.clone(),
                detail,
            }
        })?;
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
            ssim_inputs.push(("ssim_map", map.into_dyn()));
            ssim_inputs.push(("ssim_stats", stats.into_dyn()));
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
        if p_fake.len() != samples.len() {
            return Err(runtime(format!(
                "p_fake has shape {:?} for {} samples",
                p_fake.shape(),
                samples.len()
            )));
        }
        Ok(p_fake.iter().copied().collect())
    }
}
