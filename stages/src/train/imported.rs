//! The models of another workspace standing in for `train` (`dfd evaluate`): a source stage that
//! writes the `models` and `training_history` tables another workspace's `train` wrote, so that
//! `score`, `aggregate` and `report` of the evaluated dataset run unchanged on them.
//!
//! It takes the `train` stage's name because the stages after it read `train.models`; its cache
//! key is the content of the models (name and sha256 of each ONNX export) and where they came
//! from, so another training of the source workspace reruns `score` onwards and nothing before.

use dfd_schemas::{EpochRow, EpochTimeRow, ErrorRow, TableRow, TrainedModelRow};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::NAME;
use crate::{Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec};

/// Where a set of imported models was trained: the workspace, its `train` output and the dataset
/// of the run that brought that output up to date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSource {
    pub workspace: String,
    /// The fingerprint of the source workspace's `train` output.
    pub train_output: String,
    /// The dataset the models were trained on.
    pub dataset: String,
}

/// One imported model as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedModel {
    pub model: String,
    /// sha256 of the ONNX export, hex.
    pub sha256: String,
}

/// The `train` stage of an evaluation: the given models, trained elsewhere.
pub struct ImportedModels {
    source: ModelSource,
    models: Vec<TrainedModelRow>,
    history: Vec<EpochRow>,
}

impl ImportedModels {
    /// `history` is kept for the models in `models` only (the report draws their curves).
    pub fn new(source: ModelSource, models: Vec<TrainedModelRow>, history: Vec<EpochRow>) -> Self {
        let history = history
            .into_iter()
            .filter(|e| models.iter().any(|m| m.model == e.model))
            .collect();
        ImportedModels {
            source,
            models,
            history,
        }
    }

    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    /// Each model's name and content hash, in the order given.
    pub fn identities(&self) -> Vec<ImportedModel> {
        self.models
            .iter()
            .map(|m| ImportedModel {
                model: m.model.clone(),
                sha256: hex::encode(Sha256::digest(&m.onnx)),
            })
            .collect()
    }
}

impl Stage for ImportedModels {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            version: 1,
            inputs: &[],
            outputs: &[
                TrainedModelRow::TABLE,
                EpochRow::TABLE,
                EpochTimeRow::TABLE,
                ErrorRow::TABLE,
            ],
            sharding: Sharding::Whole,
            streams: false,
        };
        &SPEC
    }

    /// The models' content (name and sha256 of each ONNX export) rather than their bytes, so the
    /// key stays small; and their origin, which the report names.
    fn params(&self) -> Result<serde_json::Value, StageError> {
        Ok(serde_json::json!({
            "imported_from": self.source,
            "models": self.identities(),
        }))
    }

    fn run(&self, _input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        ctx.progress.advance(1);
        Ok(StageOutput::default()
            .with_rows(&self.models)?
            .with_rows(&self.history)?
            .with_rows::<EpochTimeRow>(&[])?
            .with_rows::<ErrorRow>(&[])?)
    }
}
