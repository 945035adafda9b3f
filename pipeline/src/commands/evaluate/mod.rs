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

/// Runs the evaluation; returns the stage reports (also in `runs/<id>.json`).
pub fn evaluate(request: EvaluateRequest) -> Result<Vec<StageReport>> {
    let source = trained_elsewhere(request.models_workspace, request.models)?;
    let ours = request
        .workspace
        .root()
        .canonicalize()
        .unwrap_or_else(|_| request.workspace.root().to_path_buf());
    if Path::new(&source.source.workspace) == ours {
        bail!(
            "--models names this very workspace ({}): evaluate writes its own `train` output, so \
             the models must come from another workspace",
            ours.display()
        );
    }
    let (config, overridden) = with_training_preprocessing(request.config, &source.config)
        .with_context(|| {
            format!(
                "taking the preprocessing settings of the run that trained the models in {}",
                source.source.workspace
            )
        })?;
    for o in &overridden {
        eprintln!("warning: {o}");
    }
    let imported = ImportedModels::new(source.source, source.models, source.history);
    let provenance = Provenance {
        source: imported.source().clone(),
        models: imported.identities(),
        evaluated_on: request.dataset.display().to_string(),
    };
    eprintln!(
        "evaluating {} model(s) trained on {} on {}",
        provenance.models.len(),
        provenance.source.dataset,
        provenance.evaluated_on
    );
    let pipeline = Pipeline::for_evaluation(&config, request.dataset.clone(), imported, provenance)
        .context("cannot assemble the evaluation pipeline")?;
    run::run_pipeline(
        RunRequest {
            workspace: request.workspace,
            config: &config,
            dataset: request.dataset,
            selection: Selection::default(),
            wait_for_lock: request.wait_for_lock,
            share: None,
        },
        pipeline,
    )
}
