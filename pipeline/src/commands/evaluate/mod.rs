//! `dfd evaluate --dataset B --models WS_A [--model NAME]...`: cross-dataset evaluation. The
//! models another workspace trained are scored on every video of B, in this workspace, through
//! the same DAG as `dfd run` with `train` replaced by those models (see
//! [`Pipeline::for_evaluation`]): B is preprocessed as the models' training data was, cached in
//! this workspace, and a new training in the models' workspace reruns `score` onwards only.

mod settings;
mod source;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dfd_stages::report::Provenance;
use dfd_stages::train::ImportedModels;

use super::run::{self, RunRequest};
use crate::cache::Workspace;
use crate::config::Config;
use crate::runner::{Pipeline, Selection, StageReport};
use crate::runs::EvaluationRecord;

pub use settings::{with_training_preprocessing, Overridden, SECTIONS};
pub use source::{trained_elsewhere, TrainedElsewhere};

pub struct EvaluateRequest<'a> {
    /// This workspace: B's cache and run records.
    pub workspace: &'a Workspace,
    pub config: &'a Config,
    /// The evaluated dataset, absolute.
    pub dataset: PathBuf,
    /// The workspace whose trained models are evaluated.
    pub models_workspace: &'a Path,
    /// Model names; empty = every model trained there.
    pub models: &'a [String],
    pub wait_for_lock: bool,
}

/// The pipeline of an evaluation and the configuration it runs with: the configured one with the
/// models' preprocessing settings, and `train` replaced by the models of `models_workspace`.
pub struct Evaluation {
    pub config: Config,
    pub pipeline: Pipeline,
    /// Settings given for this dataset that differ from the models' (warnings to show).
    pub overridden: Vec<Overridden>,
    pub provenance: Provenance,
}

/// Assembles the evaluation of the models of `models_workspace` (`models`: their names, empty =
/// all) on `dataset` in `workspace`: what `dfd evaluate` runs, and what `dfd status` compares an
/// evaluation workspace's outputs with.
pub fn assemble(
    workspace: &Workspace,
    config: &Config,
    dataset: &Path,
    models_workspace: &Path,
    models: &[String],
) -> Result<Evaluation> {
    let source = trained_elsewhere(models_workspace, models)?;
    let ours = workspace
        .root()
        .canonicalize()
        .unwrap_or_else(|_| workspace.root().to_path_buf());
    if Path::new(&source.source.workspace) == ours {
        bail!(
            "--models names this very workspace ({}): evaluate writes its own `train` output, so \
             the models must come from another workspace",
            ours.display()
        );
    }
    let (config, overridden) =
        with_training_preprocessing(config, &source.config).with_context(|| {
            format!(
                "taking the preprocessing settings of the run that trained the models in {}",
                source.source.workspace
            )
        })?;
    let imported = ImportedModels::new(source.source, source.models, source.history);
    let provenance = Provenance {
        source: imported.source().clone(),
        models: imported.identities(),
        evaluated_on: dataset.display().to_string(),
    };
    let pipeline =
        Pipeline::for_evaluation(&config, dataset.to_path_buf(), imported, provenance.clone())
            .context("cannot assemble the evaluation pipeline")?;
    Ok(Evaluation {
        config,
        pipeline,
        overridden,
        provenance,
    })
}

/// Runs the evaluation; returns the stage reports (also in `runs/<id>.json`, which records what
/// was evaluated for `dfd status`).
pub fn evaluate(request: EvaluateRequest) -> Result<Vec<StageReport>> {
    let evaluation = assemble(
        request.workspace,
        request.config,
        &request.dataset,
        request.models_workspace,
        request.models,
    )?;
    for o in &evaluation.overridden {
        eprintln!("warning: {o}");
    }
    eprintln!(
        "evaluating {} model(s) trained on {} on {}",
        evaluation.provenance.models.len(),
        evaluation.provenance.source.dataset,
        evaluation.provenance.evaluated_on
    );
    run::run_pipeline(
        RunRequest {
            workspace: request.workspace,
            config: &evaluation.config,
            dataset: request.dataset,
            selection: Selection::default(),
            wait_for_lock: request.wait_for_lock,
            share: None,
            evaluation: Some(EvaluationRecord {
                // Absolute (as found), so that `dfd status` run from elsewhere finds it.
                models_workspace: PathBuf::from(&evaluation.provenance.source.workspace),
                models: request.models.to_vec(),
            }),
        },
        evaluation.pipeline,
    )
}
