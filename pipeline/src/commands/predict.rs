//! `dfd predict VIDEO... --model NAME`: a verdict for a few files, through the same stage code as
//! `dfd run` (decode, detect, crop, ssim, score), run in memory with no cache, and the model a
//! previous `dfd run` trained.
//!
//! The files are read where they are: their `videos` rows are made here, from the arguments as
//! given (which name each answer), instead of by `ingest` over a dataset folder. Nothing is
//! written anywhere, so a glob over a dataset (`dfd predict v/*`) cannot touch its
//! `metadata.json`; an argument that is not a regular file (a directory, a device, a FIFO, a
//! missing path) gets its own `error` answer while the others are predicted.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use arrow::record_batch::RecordBatch;
use dfd_schemas::{ErrorRow, FaceRow, FrameScoreRow, TableRow, TrainedModelRow, VideoRow};
use dfd_stages::aggregate::{aggregate, predicted};
use dfd_stages::{Stage, StageContext, StageInput};
use serde::Serialize;

use crate::cache::verify::read_checked;
use crate::cache::Workspace;
use crate::config::Config;
use crate::runner::Pipeline;

/// The stages a prediction runs, in order; `ingest` is replaced by the rows of the arguments and
/// `train` by the stored model.
const STAGES: [&str; 5] = ["decode", "detect", "crop", "ssim", "score"];

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
    let inputs = video_rows(request.videos);

    let mut config = request.config.clone();
    config.score.splits = vec![SPLIT.into()];
    // The dataset folder is only ingest's, which a prediction does not run.
    let pipeline =
        Pipeline::new(&config, PathBuf::from("/")).context("cannot assemble the pipeline")?;
    let rows: Vec<VideoRow> = inputs.iter().filter_map(|i| i.row.clone()).collect();
    let names: Vec<String> = rows.iter().map(|r| r.video_id.clone()).collect();
    let mut tables: BTreeMap<&'static str, Vec<RecordBatch>> = BTreeMap::new();
    tables.insert(
        TrainedModelRow::TABLE.name,
        vec![TrainedModelRow::to_batch(std::slice::from_ref(&model))?],
    );
    tables.insert(VideoRow::TABLE.name, vec![VideoRow::to_batch(&rows)?]);
    let mut errors: Vec<ErrorRow> = Vec::new();
    if !rows.is_empty() {
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
    }
    let faces = rows_of::<FaceRow>(&tables)?;
    let scores = rows_of::<FrameScoreRow>(&tables)?;
    let videos = inputs
        .iter()
        .map(|input| match &input.error {
            Some(error) => Prediction::error(&input.id, error.clone()),
            None => verdict(&input.id, &config, &faces, &scores, &errors),
        })
        .collect();
    Ok(PredictReport {
        model: model.model,
        rule: config.report.rule.as_str().to_owned(),
        threshold: config.aggregate.threshold,
        seconds: started.elapsed().as_secs_f64(),
        videos,
    })
}

/// The split the rows of a prediction carry (score scores only the splits it is told to).
const SPLIT: &str = "test";

/// One argument: its answer's name, and its `videos` row or why it has none.
struct Input {
    id: String,
    row: Option<VideoRow>,
    error: Option<String>,
}

/// A row per argument that is a regular file (a link to one is followed), named by the argument
/// as given; a name given twice gets `#2`, `#3`.
fn video_rows(videos: &[PathBuf]) -> Vec<Input> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    videos
        .iter()
        .map(|video| {
            let given = video.display().to_string();
            let count = seen.entry(given.clone()).or_insert(0);
            *count += 1;
            let id = if *count == 1 {
                given
            } else {
                format!("{given}#{count}")
            };
            match regular_file(video) {
                Ok((path, meta)) => Input {
                    row: Some(VideoRow {
                        video_id: id.clone(),
                        path: path.display().to_string(),
                        label: None,
                        split: Some(SPLIT.into()),
                        original: None,
                        group: id.clone(),
                        size_bytes: meta.len(),
                        modified_ms: meta
                            .modified()
                            .ok()
                            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_millis() as i64),
                    }),
                    id,
                    error: None,
                },
                Err(error) => Input {
                    id,
                    row: None,
                    error: Some(error),
                },
            }
        })
        .collect()
}

/// The file's absolute path and metadata, or why it cannot be a video.
fn regular_file(video: &Path) -> Result<(PathBuf, std::fs::Metadata), String> {
    let shown = video.display();
    let meta = std::fs::metadata(video).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: no such file"),
        _ => format!("{shown}: cannot read: {e}"),
    })?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        let path = video
            .canonicalize()
            .map_err(|e| format!("{shown}: cannot resolve: {e}"))?;
        return Ok((path, meta));
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(format!("{shown}: is {what}, not a video file"))
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
        for batch in read_checked(&dir, file)? {
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
fn rows_of<R: TableRow>(tables: &BTreeMap<&'static str, Vec<RecordBatch>>) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for batch in tables.get(R::TABLE.name).into_iter().flatten() {
        out.extend(R::from_batch(batch)?);
    }
    Ok(out)
}

impl Prediction {
    fn error(video: &str, error: String) -> Prediction {
        Prediction {
            video: video.to_owned(),
            verdict: "error".to_owned(),
            score: None,
            frames_used: 0,
            faces_found: 0,
            error: Some(error),
        }
    }
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
