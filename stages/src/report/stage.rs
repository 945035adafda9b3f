//! The `report` stage: `metrics`, `video_scores`, `frame_scores` and `training_history` in,
//! `report_files` out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use dfd_schemas::{
    EpochRow, FaceRow, FrameScoreRow, Label, MetricsRow, ReportFileRow, SsimMapRow, SsimStatsRow,
    TableRow, TrainedModelRow, VideoScoreRow,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::gallery::{self, GalleryInput, GalleryModel};
use super::html;
use super::plots::{self, Curve, EpochLoss, History, Matrix, Timeline};
use super::provenance::Provenance;
use super::summary::{self, SummaryChoice};
use super::ReportError;
use crate::aggregate::baselines::CONSTANT_RULE;
use crate::aggregate::evaluate::VIDEO_LEVEL;
use crate::aggregate::{roc_points, Rule, NAME as AGGREGATE, TRAIN_STAGE};
use crate::{
    InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec,
};

pub const NAME: &str = "report";

/// The `[report]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportParams {
    /// The split the summary table quotes (the reference study quotes its test split).
    pub split: String,
    /// The aggregation rule the summary, ROC curves and confusion matrices use; it must be one of
    /// `aggregate.rules`.
    pub rule: Rule,
    /// TrueType font for the plots; default: DejaVu Sans where the system keeps it. Not part of
    /// the cache key as a path: the font's bytes are (see `external_state`).
    pub font: Option<PathBuf>,
}

impl Default for ReportParams {
    fn default() -> Self {
        ReportParams {
            split: "test".into(),
            rule: Rule::Mean,
            font: None,
        }
    }
}

impl ReportParams {
    pub fn choice(&self) -> SummaryChoice {
        SummaryChoice {
            split: self.split.clone(),
            rule: self.rule.as_str().to_string(),
        }
    }
}

/// Everything the report is drawn from.
pub struct ReportInput<'a> {
    pub metrics: &'a [MetricsRow],
    pub video_scores: &'a [VideoScoreRow],
    pub history: &'a [EpochRow],
    /// Every scored face frame, for the per-video timelines.
    pub frame_scores: &'a [FrameScoreRow],
    /// Set for a cross-dataset evaluation: where the models come from, said first.
    pub provenance: Option<&'a Provenance>,
    /// Each model's most confident mistakes (computed by [`gallery::gallery`]).
    pub gallery: &'a [GalleryModel],
}

/// Renders every file of the report. The font must be registered (`plots::register_font`).
pub fn render(
    input: &ReportInput,
    params: &ReportParams,
) -> Result<Vec<ReportFileRow>, ReportError> {
    let choice = params.choice();
    let mut files = vec![file(
        "summary.md",
        "text/markdown",
        with_provenance(summary::markdown(input.metrics, &choice), input.provenance).into_bytes(),
    )];
    let batch = summary::summary_batch(&summary::summary_rows(input.metrics, &choice))?;
    files.push(file("summary.csv", "text/csv", summary::csv(&batch)?));
    files.push(file(
        "summary.parquet",
        "application/vnd.apache.parquet",
        summary::parquet(&batch)?,
    ));
    // Each plot's place in `files`, caption and split, for report.html.
    let mut figures: Vec<(usize, String, Option<&str>)> = Vec::new();
    let splits: BTreeSet<&str> = input.metrics.iter().map(|m| m.split.as_str()).collect();
    for split in splits {
        let label = format!("{split} split, video level, {} rule", choice.rule);
        let curves = roc_curves(input.video_scores, split, &choice.rule);
        if !curves.is_empty() {
            let title = format!("ROC, {label}");
            let png = plots::roc_png(&title, &curves)?;
            figures.push((files.len(), title, Some(split)));
            files.push(file(&format!("roc-{split}.png"), "image/png", png));
        }
        let matrices = confusion(input.metrics, split, &choice.rule);
        if !matrices.is_empty() {
            let title = format!("Confusion matrices, {label}");
            let png = plots::confusion_png(&title, &matrices)?;
            figures.push((files.len(), title, Some(split)));
            files.push(file(&format!("confusion-{split}.png"), "image/png", png));
        }
    }
    let threshold = input.metrics.first().map_or(0.5, |m| m.threshold);
    for ((model, split), timelines) in timelines(input.frame_scores) {
        let title = format!("Frame scores over time, {model}, {split} split");
        let png = plots::timeline_png(&title, &timelines, threshold)?;
        figures.push((files.len(), title, Some(split)));
        files.push(file(
            &format!("timeline-{model}-{split}.png"),
            "image/png",
            png,
        ));
    }
    let histories = histories(input.history);
    if !histories.is_empty() {
        figures.push((
            files.len(),
            "Training curves: training and validation loss by epoch, per model".to_string(),
            None,
        ));
        files.push(file(
            "training-curves.png",
            "image/png",
            plots::training_png(&histories)?,
        ));
    }
    let figures: Vec<html::Figure> = figures
        .into_iter()
        .map(|(index, caption, split)| html::Figure {
            name: &files[index].name,
            caption,
            split,
            png: &files[index].bytes,
        })
        .collect();
    let page = html::page(
        input.metrics,
        &choice,
        &figures,
        input.provenance.map(Provenance::html).as_deref(),
        input.gallery,
    );
    files.push(file(html::FILE_NAME, "text/html", page.into_bytes()));
    Ok(files)
}

/// `summary.md` with the provenance section, when there is one, right under its title.
fn with_provenance(markdown: String, provenance: Option<&Provenance>) -> String {
    match (provenance, markdown.split_once('\n')) {
        (Some(p), Some((title, rest))) => {
            format!(
                "{title}\n\n{}{}",
                p.markdown(),
                rest.trim_start_matches('\n')
            )
        }
        _ => markdown,
    }
}

/// Per (model, split), each video's frame scores in time order, videos by name.
fn timelines(scores: &[FrameScoreRow]) -> BTreeMap<(&str, &str), Vec<Timeline>> {
    let mut grouped: BTreeMap<(&str, &str), BTreeMap<&str, Timeline>> = BTreeMap::new();
    for s in scores {
        grouped
            .entry((&s.model, &s.split))
            .or_default()
            .entry(&s.video_id)
            .or_insert_with(|| Timeline {
                video_id: s.video_id.clone(),
                fake: s.label.map(|l| l == Label::Fake),
                points: Vec::new(),
            })
            .points
            .push((s.time_s, f64::from(s.score)));
    }
    grouped
        .into_iter()
        .map(|(key, videos)| {
            let mut timelines: Vec<Timeline> = videos.into_values().collect();
            for t in &mut timelines {
                t.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            (key, timelines)
        })
        .collect()
}

fn file(name: &str, media_type: &str, bytes: Vec<u8>) -> ReportFileRow {
    ReportFileRow {
        name: name.to_string(),
        media_type: media_type.to_string(),
        bytes,
    }
}

/// Per model, the ROC curve of its labelled video scores on `split` under `rule`; a model whose
/// videos there hold one class has no curve.
fn roc_curves(scores: &[VideoScoreRow], split: &str, rule: &str) -> Vec<Curve> {
    let mut by_model: BTreeMap<&str, (Vec<bool>, Vec<f64>)> = BTreeMap::new();
    for s in scores.iter().filter(|s| s.split == split && s.rule == rule) {
        if let Some(label) = s.label {
            let entry = by_model.entry(&s.model).or_default();
            entry.0.push(label == Label::Fake);
            entry.1.push(s.score);
        }
    }
    by_model
        .into_iter()
        .filter_map(|(model, (labels, scores))| {
            let points = roc_points(&labels, &scores)?;
            let auc = crate::aggregate::binary_metrics(&labels, &scores, 0.5)
                .ok()
                .and_then(|m| m.roc_auc);
            Some(Curve {
                model: model.to_string(),
                auc,
                points,
            })
        })
        .collect()
}

fn confusion(metrics: &[MetricsRow], split: &str, rule: &str) -> Vec<Matrix> {
    metrics
        .iter()
        .filter(|m| m.split == split && m.level == VIDEO_LEVEL && m.rule == rule)
        .filter(|m| m.rule != CONSTANT_RULE)
        .map(|m| Matrix {
            model: m.model.clone(),
            tn: m.tn,
            fp: m.fp,
            fn_: m.fn_,
            tp: m.tp,
        })
        .collect()
}

fn histories(rows: &[EpochRow]) -> Vec<History> {
    let mut by_model: BTreeMap<&str, Vec<EpochLoss>> = BTreeMap::new();
    for r in rows {
        by_model
            .entry(&r.model)
            .or_default()
            .push((r.epoch, r.train_loss, r.val_loss));
    }
    by_model
        .into_iter()
        .map(|(model, mut epochs)| {
            epochs.sort_by_key(|e| e.0);
            History {
                model: model.to_string(),
                epochs,
            }
        })
        .collect()
}

pub struct Report {
    params: ReportParams,
    provenance: Option<Provenance>,
}

impl Report {
    pub fn new(params: ReportParams) -> Self {
        Report {
            params,
            provenance: None,
        }
    }

    /// The report of a cross-dataset evaluation, which names the models' source first.
    pub fn evaluating(params: ReportParams, provenance: Provenance) -> Self {
        Report {
            params,
            provenance: Some(provenance),
        }
    }

    fn font(&self) -> Result<PathBuf, ReportError> {
        plots::font_path(self.params.font.as_deref())
    }
}

impl Stage for Report {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            // 2: report.html, and confusion plots at least 640 px wide; an output of version 1
            // lacks the page, so it must not be a cache hit. 3: timelines of frame scores.
            // 4: the error gallery (face crops and Grad-CAM saliency of each model's most
            // confident mistakes), hence the crops, SSIM inputs and models as inputs.
            version: 4,
            inputs: &[
                InputDef::of::<MetricsRow>(AGGREGATE),
                InputDef::of::<VideoScoreRow>(AGGREGATE),
                InputDef::of::<FrameScoreRow>(crate::score::NAME),
                InputDef::of::<EpochRow>(TRAIN_STAGE),
                InputDef::of::<TrainedModelRow>(TRAIN_STAGE),
                InputDef::of::<FaceRow>(crate::crop::NAME),
                InputDef::of::<SsimMapRow>(crate::ssim::NAME),
                InputDef::of::<SsimStatsRow>(crate::ssim::NAME),
            ],
            outputs: &[dfd_schemas::ReportFileRow::TABLE],
            sharding: Sharding::Whole,
            streams: false,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        let mut key = serde_json::json!({ "split": self.params.split, "rule": self.params.rule });
        if let (Some(provenance), Some(object)) = (&self.provenance, key.as_object_mut()) {
            let value = serde_json::to_value(provenance)
                .map_err(|e| StageError::Other(format!("report provenance: {e}")))?;
            object.insert("provenance".into(), value);
        }
        Ok(key)
    }

    /// The font's bytes shape every PNG, so their digest is part of the cache key.
    fn external_state(&self) -> Result<Option<String>, StageError> {
        let path = self.font()?;
        let bytes = std::fs::read(&path).map_err(|e| StageError::Input {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Some(hex::encode(Sha256::digest(&bytes))))
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let metrics = input.rows::<MetricsRow>()?;
        let video_scores = input.rows::<VideoScoreRow>()?;
        let history = input.rows::<EpochRow>()?;
        let frame_scores = input.rows::<FrameScoreRow>()?;
        let models = input.rows::<TrainedModelRow>()?;
        plots::register_font(&self.font()?)?;
        let choice = self.params.choice();
        let gallery = gallery::gallery(
            &GalleryInput {
                split: &choice.split,
                rule: &choice.rule,
                threshold: metrics.first().map_or(0.5, |m| m.threshold),
                models: &models,
                video_scores: &video_scores,
                frame_scores: &frame_scores,
            },
            input,
        )?;
        let files = render(
            &ReportInput {
                metrics: &metrics,
                video_scores: &video_scores,
                history: &history,
                frame_scores: &frame_scores,
                provenance: self.provenance.as_ref(),
                gallery: &gallery,
            },
            &self.params,
        )?;
        ctx.progress.advance(1);
        Ok(StageOutput::default().with_rows(&files)?)
    }
}
