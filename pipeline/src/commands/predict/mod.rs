//! `dfd predict PATH...`: a verdict for each video file named or found in a named folder, through
//! the same stage code as `dfd run` (decode, detect, crop, ssim, score), run in memory with no
//! cache, and the model a previous `dfd run` trained.
//!
//! The files are read where they are: their `videos` rows are made here, from the arguments as
//! given (which name each answer), instead of by `ingest` over a dataset folder (see `inputs`).
//! Nothing is written anywhere but the `--csv` file, so a glob over a dataset (`dfd predict v/*`)
//! cannot touch its `metadata.json`; an argument that is neither a regular file nor a folder (a
//! device, a FIFO, a missing path) gets its own `error` answer while the others are predicted.
//! The videos go through the stages `CHUNK_VIDEOS` at a time, so a folder of thousands of videos
//! needs the memory of one chunk, not of the folder.

mod csv;
mod explain;
mod inputs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::record_batch::RecordBatch;
use dfd_schemas::{
    ErrorRow, FaceRow, FrameRow, FrameScoreRow, SsimMapRow, SsimStatsRow, TableRow,
    TrainedModelRow, VideoRow,
};
use dfd_stages::aggregate::{aggregate, predicted};
use dfd_stages::train::VERSION as TRAIN_VERSION;
use dfd_stages::{FrameObserver, Stage, StageContext, StageInput};
use serde::Serialize;

use crate::cache::verify::read_checked;
use crate::cache::Workspace;
use crate::config::Config;
use crate::runner::stream::stream_group;
use crate::runner::Pipeline;

pub use csv::{check_target as check_csv_target, write as write_csv};
pub use explain::{Explanation, SaliencyFile};

/// The stages a prediction runs, in order; `ingest` is replaced by the rows of the arguments and
/// `train` by the stored model.
const STAGES: [&str; 5] = ["decode", "detect", "crop", "ssim", "score"];

/// Videos per trip through the stages. The tables of a chunk are in memory at once, except its
/// frames, which exist only for a few videos at a time (`runner.stream_videos`, as in `dfd run`),
/// so memory grows with the chunk, not with the folder. 8 is the default `runner.videos_per_shard`,
/// the unit `dfd run` holds in memory: a chunk costs what a shard of the DAG costs, and still
/// keeps up to 8 cores busy (the stages work on a chunk's videos in parallel).
pub const CHUNK_VIDEOS: usize = 8;

/// The answer for one video.
#[derive(Debug, Serialize)]
pub struct Prediction {
    pub video: String,
    /// `FAKE`, `REAL`, `no face found`, `too few face frames`, or `error`.
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
    /// Each scored frame, in time order: the evidence behind the score (`--json` only; the
    /// CSV keeps one row per video).
    pub frames: Vec<FrameScore>,
    /// With `--explain`: the files showing why (a FAKE or REAL verdict only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// One scored face frame of a prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameScore {
    /// The frame's presentation time, in seconds from the start of the video.
    pub time_s: f64,
    pub frame_index: u64,
    /// P(FAKE).
    pub score: f64,
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
    /// Video files and folders of them, as given on the command line.
    pub paths: &'a [PathBuf],
    pub model: Option<&'a str>,
    /// `--explain DIR`: write each verdict's evidence there (see `explain`).
    pub explain: Option<&'a Path>,
}

pub fn predict(request: PredictRequest) -> Result<PredictReport> {
    let started = Instant::now();
    let model = stored_model(request.workspace, request.config, request.model)?;
    let model_batch = TrainedModelRow::to_batch(std::slice::from_ref(&model))?;
    let inputs = inputs::inputs(request.paths);
    if let Some(dir) = request.explain {
        // Before any video: a folder that cannot be made, or no font for the timelines, fails
        // now rather than after the first chunk.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --explain folder {}", dir.display()))?;
        let font = dfd_stages::report::plots::font_path(request.config.report.font.as_deref())?;
        dfd_stages::report::plots::register_font(&font)?;
    }

    let mut config = request.config.clone();
    config.score.splits = vec![SPLIT.into()];
    // The dataset folder is only ingest's, which a prediction does not run.
    let pipeline =
        Pipeline::new(&config, PathBuf::from("/")).context("cannot assemble the pipeline")?;

    // An answer per input, in the order of the arguments: the unreadable ones now, the others
    // chunk by chunk.
    let mut answers: Vec<Option<Prediction>> = inputs
        .iter()
        .map(|input| {
            input
                .row
                .as_ref()
                .err()
                .map(|error| Prediction::error(&input.id, error.clone()))
        })
        .collect();
    let readable: Vec<usize> = (0..inputs.len())
        .filter(|&i| inputs[i].row.is_ok())
        .collect();
    let total = readable.len();
    let mut done = 0;
    for chunk in readable.chunks(CHUNK_VIDEOS) {
        let rows: Vec<VideoRow> = chunk
            .iter()
            .filter_map(|&i| inputs[i].row.as_ref().ok().cloned())
            .collect();
        let chunk_model = ChunkModel {
            row: &model,
            batch: &model_batch,
        };
        let predictions =
            predict_chunk(&pipeline, &config, &chunk_model, &rows, request.explain)
                .with_context(|| format!("videos {}-{} of {total}", done + 1, done + rows.len()))?;
        for (&i, prediction) in chunk.iter().zip(predictions) {
            answers[i] = Some(prediction);
        }
        done += chunk.len();
        // Always, terminal or not: a long run left to a log file is where it is wanted most,
        // and stdout, which carries the answers, stays clean.
        eprintln!("predict: {done}/{total} videos");
    }
    let videos = inputs
        .iter()
        .zip(answers)
        .map(|(input, answer)| {
            answer.unwrap_or_else(|| Prediction::error(&input.id, "not predicted".to_owned()))
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

/// The stored model, as a row and as the one-row `models` table `score` reads.
struct ChunkModel<'a> {
    row: &'a TrainedModelRow,
    batch: &'a RecordBatch,
}

/// The stages over one chunk of videos, all in memory; an answer per row, in order. A video the
/// stages fail on (a corrupt file) is an `errors` row of its stage, and so an `error` answer,
/// while the others go on; an `Err` here is the stage failing as a whole. With `explain`, each
/// verdict's evidence is written there (see `explain`).
fn predict_chunk(
    pipeline: &Pipeline,
    config: &Config,
    model: &ChunkModel,
    rows: &[VideoRow],
    explain: Option<&Path>,
) -> Result<Vec<Prediction>> {
    let names: Vec<String> = rows.iter().map(|r| r.video_id.clone()).collect();
    let mut tables: BTreeMap<&'static str, Vec<RecordBatch>> = BTreeMap::new();
    tables.insert(TrainedModelRow::TABLE.name, vec![model.batch.clone()]);
    tables.insert(VideoRow::TABLE.name, vec![VideoRow::to_batch(rows)?]);
    let mut errors: Vec<ErrorRow> = Vec::new();
    let mut stages = Vec::new();
    for name in STAGES {
        stages.push(pipeline.stages()[pipeline.index_of(name)?].as_ref());
    }
    // The stages that stream take the videos a few at a time (a video's frames travel raw
    // between them, several megabytes each at 1080p); their tables but the frames join the
    // chunk's, for the stages after them.
    let streaming = stages.iter().take_while(|s| s.spec().streams).count();
    let group = stream_group(config.runner.stream_videos);
    for ids in rows.chunks(group) {
        let ids_names: Vec<String> = ids.iter().map(|r| r.video_id.clone()).collect();
        let mut group_tables = tables.clone();
        group_tables.insert(VideoRow::TABLE.name, vec![VideoRow::to_batch(ids)?]);
        let mut made = Vec::new();
        for (i, stage) in stages[..streaming].iter().enumerate() {
            // As in a run's streamed pass: the first later stage reading this one's tables that
            // takes frames early gets them as they are decoded.
            let observer =
                dfd_stages::frame_observer_among(*stage, stages[i + 1..streaming].iter().copied());
            let output = run_in_memory(*stage, &group_tables, &ids_names, observer)
                .with_context(|| format!("stage {}", stage.name()))?;
            for (table, batches) in output {
                if table == ErrorRow::TABLE.name {
                    collect(&mut tables, &mut errors, table, batches)?;
                } else {
                    group_tables.insert(table, batches);
                    made.push(table);
                }
            }
        }
        for table in made {
            if table != FrameRow::TABLE.name {
                let batches = group_tables.remove(table).unwrap_or_default();
                collect(&mut tables, &mut errors, table, batches)?;
            }
        }
    }
    for stage in &stages[streaming..] {
        let output = run_in_memory(*stage, &tables, &names, None)
            .with_context(|| format!("stage {}", stage.name()))?;
        for (table, batches) in output {
            collect(&mut tables, &mut errors, table, batches)?;
        }
    }
    let faces = rows_of::<FaceRow>(&tables)?;
    let scores = rows_of::<FrameScoreRow>(&tables)?;
    let mut predictions: Vec<Prediction> = names
        .iter()
        .map(|name| verdict(name, config, &faces, &scores, &errors))
        .collect();
    if let Some(dir) = explain {
        let maps = rows_of::<SsimMapRow>(&tables)?;
        let stats = rows_of::<SsimStatsRow>(&tables)?;
        let inputs = explain::ChunkFaces {
            faces: &faces,
            maps: &maps,
            stats: &stats,
        };
        let threshold = config.aggregate.threshold;
        explain::explain_chunk(dir, model.row, threshold, &inputs, &mut predictions)?;
    }
    Ok(predictions)
}

/// Adds a stage's output table to the chunk's tables, or its rows to `errors`.
fn collect(
    tables: &mut BTreeMap<&'static str, Vec<RecordBatch>>,
    errors: &mut Vec<ErrorRow>,
    table: &'static str,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    if table == ErrorRow::TABLE.name {
        for batch in &batches {
            errors.extend(ErrorRow::from_batch(batch)?);
        }
    } else {
        tables.entry(table).or_default().extend(batches);
    }
    Ok(())
}

/// The model `name` (default: the first trained) of the newest finished `train` output.
fn stored_model(
    workspace: &Workspace,
    config: &Config,
    name: Option<&str>,
) -> Result<TrainedModelRow> {
    let outputs = workspace.finished_outputs("train");
    let older = outputs
        .iter()
        .find(|(_, m)| m.version != TRAIN_VERSION)
        .map(|(_, m)| m.version);
    // Models of another version of the stage mean something else (version 2 took `[0, 1]`
    // pixels) or lack a column (version 3 had no `weights`): never used, the newest of this
    // version is.
    let current = outputs
        .into_iter()
        .find(|(_, m)| m.version == TRAIN_VERSION);
    let Some((dir, manifest)) = current else {
        match older {
            Some(version) => bail!(
                "the trained models in workspace {} are of version {version} of the `train` \
                 stage, which this dfd cannot use (it reads version {TRAIN_VERSION}): run `dfd \
                 run` to bring them up to date (a training whose checkpoints remain is not run \
                 again)",
                workspace.root().display()
            ),
            None => bail!(
                "no trained model in workspace {}: run `dfd run` first",
                workspace.root().display()
            ),
        }
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

/// One stage over every video at once, its inputs taken by table name from `tables`, the frames
/// it decodes offered to `frames`.
fn run_in_memory(
    stage: &dyn Stage,
    tables: &BTreeMap<&'static str, Vec<RecordBatch>>,
    videos: &[String],
    frames: Option<&dyn FrameObserver>,
) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
    let mut input = StageInput::new(videos.to_vec());
    for def in stage.inputs() {
        let batches = tables
            .get(def.table.name)
            .with_context(|| format!("no table {} from {}", def.table.name, def.stage))?;
        input = input.with_table(&def.table, batches.clone());
    }
    let context = StageContext {
        frames,
        ..StageContext::detached()
    };
    let mut output = stage.run(&input, &context)?;
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
            frames: Vec::new(),
            explanation: None,
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
    let mut frames: Vec<FrameScore> = scores
        .iter()
        .filter(|s| s.video_id == video)
        .map(|s| FrameScore {
            time_s: s.time_s,
            frame_index: s.frame_index,
            score: f64::from(s.score),
        })
        .collect();
    frames.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    let frame_scores: Vec<f64> = frames.iter().map(|f| f.score).collect();
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
        frames,
        explanation: None,
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
        if let Some(explanation) = &p.explanation {
            print_explanation(p, explanation);
        }
    }
}

/// The lines `--explain` adds under a video: its frame scores in time order, and the files.
fn print_explanation(p: &Prediction, explanation: &Explanation) {
    let timeline: Vec<String> = p
        .frames
        .iter()
        .map(|f| format!("{:.2}s {:.3}", f.time_s, f.score))
        .collect();
    println!("    frame scores: {}", timeline.join(", "));
    println!("    timeline: {}", explanation.timeline.display());
    for s in &explanation.saliency {
        println!(
            "    saliency of frame {} ({:.2}s, score {:.3}): {}",
            s.frame_index,
            s.time_s,
            s.score,
            s.path.display()
        );
    }
    if let Some(reason) = &explanation.saliency_unavailable {
        println!("    saliency: {reason}");
    }
}
