//! `dfd predict VIDEO... --model NAME`: a verdict for a few files, through the same stage code as
//! `dfd run` (ingest, decode, detect, crop, ssim, score), run in memory with no cache, and the model
//! a previous `dfd run` trained.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::record_batch::RecordBatch;
use dfd_schemas::{ErrorRow, FaceRow, FrameScoreRow, TableRow, TrainedModelRow};
use dfd_stages::aggregate::{aggregate, predicted};
use dfd_stages::{Stage, StageContext, StageInput};
use serde::Serialize;

use crate::cache::parquet_io::read_parquet;
use crate::cache::Workspace;
use crate::config::Config;
use crate::runner::Pipeline;

/// The stages a prediction runs, in order; `train` is replaced by the stored model.
const STAGES: [&str; 6] = ["ingest", "decode", "detect", "crop", "ssim", "score"];

/// The answer for one video.
#[derive(Debug, Serialize)]
pub struct Prediction {
    pub video: String,
    /// `FAKE`, `REAL`, `no face found`, or `error`.
    pub verdict: String,
    /// The video score (the rule the report quotes, `report.rule`, by default the mean
    /// P(FAKE) over the frames scored); absent without any.
    pub score: Option<f64>,
    pub frames_used: usize,
    /// Frames sampled in which a face was found.
    pub faces_found: usize,
    /// What went wrong, when the verdict is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct PredictReport {
    pub model: String,
    pub rule: String,
    pub threshold: f64,
    pub seconds: f64,
    pub videos: Vec<Prediction>,
}

pub struct PredictRequest<'a> {
    pub workspace: &'a Workspace,
    pub config: &'a Config,
    pub videos: &'a [PathBuf],
    pub model: Option<&'a str>,
}

pub fn predict(request: PredictRequest) -> Result<PredictReport> {
    let started = Instant::now();
    let model = stored_model(request.workspace, request.config, request.model)?;
    let staging = tempfile::tempdir().context("cannot create a temporary folder")?;
    let names = stage_videos(staging.path(), request.videos)?;

    let mut config = request.config.clone();
    config.score.splits = vec!["test".into()];
    let pipeline = Pipeline::new(&config, staging.path().to_path_buf())
        .context("cannot assemble the pipeline")?;
    let mut tables: BTreeMap<&'static str, Vec<RecordBatch>> = BTreeMap::new();
    tables.insert(
        TrainedModelRow::TABLE.name,
        vec![TrainedModelRow::to_batch(std::slice::from_ref(&model))?],
    );
    let mut errors: Vec<ErrorRow> = Vec::new();
    for name in STAGES {
        let stage = &pipeline.stages()[pipeline.index_of(name)?];
        let output = run_in_memory(stage.as_ref(), &tables, &names)
            .with_context(|| format!("stage {name}"))?;
        for (table, batches) in output {
            if table == ErrorRow::TABLE.name {
                for batch in &batches {
                    errors.extend(ErrorRow::from_batch(batch)?);
                }
            } else {
                tables.insert(table, batches);
            }
        }
    }
    let faces = rows::<FaceRow>(&tables)?;
    let scores = rows::<FrameScoreRow>(&tables)?;
    let videos = names
        .iter()
        .map(|name| verdict(name, &config, &faces, &scores, &errors))
        .collect();
    Ok(PredictReport {
        model: model.model,
        rule: config.report.rule.as_str().to_owned(),
        threshold: config.aggregate.threshold,
        seconds: started.elapsed().as_secs_f64(),
        videos,
    })
}

/// The model `name` (default: the first trained) of the newest finished `train` output.
fn stored_model(
    workspace: &Workspace,
    config: &Config,
    name: Option<&str>,
) -> Result<TrainedModelRow> {
    let outputs = workspace.finished_outputs("train");
    let Some((dir, manifest)) = outputs.into_iter().next() else {
        bail!(
            "no trained model in workspace {}: run `dfd run` first",
            workspace.root().display()
        );
    };
    let mut models = Vec::new();
    for file in manifest.files_of(TrainedModelRow::TABLE.name) {
        for batch in read_parquet(&dir.join(&file.path))? {
            models.extend(TrainedModelRow::from_batch(&batch)?);
        }
    }
    let wanted = name
        .map(str::to_owned)
        .or_else(|| config.train_params().models.first().cloned());
    let available: Vec<&str> = models.iter().map(|m| m.model.as_str()).collect();
    match models
        .iter()
        .find(|m| Some(&m.model) == wanted.as_ref())
        .or_else(|| if name.is_none() { models.first() } else { None })
    {
        Some(model) => Ok(model.clone()),
        None => bail!(
            "no trained model `{}` in {}; trained: {}",
            wanted.unwrap_or_default(),
            dir.display(),
            available.join(", ")
        ),
    }
}

/// Links the videos into `staging` as a one-split dataset (unlabelled, split `test`), under
/// their file names; returns those names in the order given.
fn stage_videos(staging: &Path, videos: &[PathBuf]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut metadata = serde_json::Map::new();
    for video in videos {
        let path = video
            .canonicalize()
            .with_context(|| format!("{}: no such file", video.display()))?;
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name dfd can use", video.display()))?;
        let name = if names.iter().any(|n| n == base) {
            format!("{}-{base}", names.len())
        } else {
            base.to_owned()
        };
        std::os::unix::fs::symlink(&path, staging.join(&name))
            .with_context(|| format!("cannot link {}", path.display()))?;
        metadata.insert(name.clone(), serde_json::json!({ "split": "test" }));
        names.push(name);
    }
    let text = serde_json::to_string_pretty(&metadata)?;
    std::fs::write(staging.join("metadata.json"), text)
        .context("cannot write the staging metadata.json")?;
    Ok(names)
}

/// One stage over every video at once, its inputs taken by table name from `tables`.
fn run_in_memory(
    stage: &dyn Stage,
    tables: &BTreeMap<&'static str, Vec<RecordBatch>>,
    videos: &[String],
) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
    let mut input = StageInput::new(videos.to_vec());
    for def in stage.inputs() {
        let batches = tables
            .get(def.table.name)
            .with_context(|| format!("no table {} from {}", def.table.name, def.stage))?;
        input = input.with_table(&def.table, batches.clone());
    }
    let mut output = stage.run(&input, &StageContext::detached())?;
    Ok(stage
        .outputs()
        .iter()
        .map(|t| (t.name, output.take(t)))
        .collect())
}

/// Every row of table `R` in `tables` (none if no stage wrote it).
fn rows<R: TableRow>(tables: &BTreeMap<&'static str, Vec<RecordBatch>>) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for batch in tables.get(R::TABLE.name).into_iter().flatten() {
        out.extend(R::from_batch(batch)?);
    }
    Ok(out)
}

/// One video's answer, by the same rule and threshold as `aggregate`.
fn verdict(
    video: &str,
    config: &Config,
    faces: &[FaceRow],
    scores: &[FrameScoreRow],
    errors: &[ErrorRow],
) -> Prediction {
    let faces_found = faces.iter().filter(|f| f.video_id == video).count();
    let frame_scores: Vec<f64> = scores
        .iter()
        .filter(|s| s.video_id == video)
        .map(|s| f64::from(s.score))
        .collect();
    let error = errors
        .iter()
        .find(|e| e.video_id == video)
        .map(|e| format!("{}: {}", e.stage, e.message));
    let threshold = config.aggregate.threshold;
    let score = aggregate(
        config.report.rule,
        &frame_scores,
        threshold,
        &config.aggregate.confident,
    );
    let verdict = match (score, &error, faces_found) {
        (Some(s), _, _) => predicted(s, threshold).as_str(),
        (None, Some(_), _) => "error",
        (None, None, 0) => "no face found",
        // Faces, but too few for a multi-input model's SSIM inputs.
        (None, None, _) => "too few face frames",
    };
    Prediction {
        video: video.to_owned(),
        verdict: verdict.to_owned(),
        score,
        frames_used: frame_scores.len(),
        faces_found,
        error,
    }
}

/// The report as a table, one line per video.
pub fn print_text(report: &PredictReport) {
    println!(
        "model {} (FAKE when the {} of frame scores > {}), {:.1} s",
        report.model, report.rule, report.threshold, report.seconds
    );
    for p in &report.videos {
        let score = p.score.map_or("-".to_owned(), |s| format!("{s:.3}"));
        println!(
            "{:<40} {:<20} score {:>6}  frames {:>2} of {:>2} with a face{}",
            p.video,
            p.verdict,
            score,
            p.frames_used,
            p.faces_found,
            p.error
                .as_ref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
}
