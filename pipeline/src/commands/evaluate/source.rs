//! The trained models of another workspace, and the record of how they were made: the newest run
//! of that workspace whose `train` output is finished gives the models (its `models` and
//! `training_history` tables, checked against their manifest), the dataset they were trained on
//! and the configuration that run had, hence the preprocessing the models saw.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dfd_schemas::{EpochRow, TableRow, TrainedModelRow};
use dfd_stages::train::{ModelSource, NAME as TRAIN, VERSION as TRAIN_VERSION};

use crate::cache::verify::read_checked;
use crate::cache::{Manifest, Workspace};
use crate::runs;

/// What `dfd evaluate` takes from the models' workspace.
pub struct TrainedElsewhere {
    pub source: ModelSource,
    pub models: Vec<TrainedModelRow>,
    pub history: Vec<EpochRow>,
    /// The `config` of the run that made (or found cached) the `train` output.
    pub config: serde_json::Value,
}

/// Reads the models of `workspace` (all of them, or those named in `wanted`).
pub fn trained_elsewhere(workspace: &Path, wanted: &[String]) -> Result<TrainedElsewhere> {
    let root = workspace
        .canonicalize()
        .with_context(|| format!("models workspace {} does not exist", workspace.display()))?;
    let ws = Workspace::new(&root);
    let records = runs::read_all(&ws)?.with_context(|| {
        format!(
            "{} holds no run records (no runs/ folder): not a dfd workspace that trained models",
            root.display()
        )
    })?;
    let found = records.iter().find_map(|record| {
        let (_, fingerprint) = runs::fingerprints(record)
            .into_iter()
            .find(|(stage, _)| stage == TRAIN)?;
        let manifest = ws.finished(TRAIN, &fingerprint)?;
        Some((record, fingerprint, manifest))
    });
    let Some((record, fingerprint, manifest)) = found else {
        bail!(
            "no finished `{TRAIN}` output in workspace {}: train models there with `dfd run` first",
            root.display()
        );
    };
    if manifest.version != TRAIN_VERSION {
        bail!(
            "the models in workspace {} were trained by version {} of the `{TRAIN}` stage, which \
             this dfd cannot read (its models are version {TRAIN_VERSION}: they take pixel values \
             and scale them themselves, and carry their burn weights for Grad-CAM): retrain \
             them there with `dfd run` (a training whose checkpoints remain is not run again)",
            root.display(),
            manifest.version
        );
    }
    let dir = ws.output_dir(TRAIN, &fingerprint);
    let models = select(read_rows::<TrainedModelRow>(&dir, &manifest)?, wanted, &dir)?;
    let history = read_rows::<EpochRow>(&dir, &manifest)?;
    let dataset = record["dataset"].as_str().with_context(|| {
        format!(
            "run record {} of {} names no dataset",
            record["id"],
            root.display()
        )
    })?;
    Ok(TrainedElsewhere {
        source: ModelSource {
            workspace: root.display().to_string(),
            train_output: fingerprint,
            dataset: dataset.to_string(),
        },
        models,
        history,
        config: record["config"].clone(),
    })
}

fn read_rows<R: TableRow>(dir: &Path, manifest: &Manifest) -> Result<Vec<R>> {
    let mut rows = Vec::new();
    for file in manifest.files_of(R::TABLE.name) {
        let path: PathBuf = dir.join(&file.path);
        for batch in read_checked(dir, file)? {
            rows.extend(
                R::from_batch(&batch).with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    Ok(rows)
}

/// The models named in `wanted` (every one when it is empty), in the order named.
fn select(
    models: Vec<TrainedModelRow>,
    wanted: &[String],
    dir: &Path,
) -> Result<Vec<TrainedModelRow>> {
    if models.is_empty() {
        bail!(
            "the `models` table in {} holds no trained model",
            dir.display()
        );
    }
    if wanted.is_empty() {
        return Ok(models);
    }
    wanted
        .iter()
        .map(|name| match models.iter().find(|m| &m.model == name) {
            Some(model) => Ok(model.clone()),
            None => bail!(
                "no trained model `{name}` in {}; trained: {}",
                dir.display(),
                models
                    .iter()
                    .map(|m| m.model.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect()
}
