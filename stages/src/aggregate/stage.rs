//! The `aggregate` stage: frame scores -> video scores (every configured rule) -> `metrics` at
//! video and frame level per (model variant, split), with bootstrap intervals, the constant
//! baselines and the cue baselines. One call over everything (`Sharding::Whole`): a metric needs
//! all videos at once.

use std::collections::{BTreeMap, BTreeSet};

use dfd_schemas::{
    FrameScoreRow, Label, MetricsRow, TableRow, TrainedModelRow, VideoCueRow, VideoRow,
    VideoScoreRow,
};
use serde::{Deserialize, Serialize};

use super::baselines::{constant_units, BASELINES, CONSTANT_RULE};
use super::bootstrap::{BootstrapParams, Unit};
use super::cues::cue_rows;
use super::evaluate::{metrics_row, MetricsKey, FRAME_LEVEL, VIDEO_LEVEL};
use super::rules::{aggregate, ConfidentParams, Rule};
use crate::{
    InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec,
};

pub const NAME: &str = "aggregate";
/// The stage that writes `frame_scores`. Named here, not imported, because that stage lives in
/// another branch; when both meet, this becomes `crate::score::NAME`.
pub const SCORE_STAGE: &str = crate::score::NAME;
/// The stage that writes `models` and `training_history` (see [`SCORE_STAGE`]).
pub const TRAIN_STAGE: &str = crate::train::NAME;

/// The `[aggregate]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateParams {
    /// The rules to compute video scores and video-level metrics with (all by default: they cost
    /// little and show whether a result hangs on the rule).
    pub rules: Vec<Rule>,
    /// FAKE when a (video or frame) score is strictly above it; also the frame threshold of `vote`.
    pub threshold: f64,
    /// Bootstrap resamples per metrics row; 0 = no intervals.
    pub bootstrap_resamples: u32,
    /// Seed of the resampling: the same seed, the same intervals.
    pub bootstrap_seed: u64,
    pub confident: ConfidentParams,
}

impl Default for AggregateParams {
    fn default() -> Self {
        let bootstrap = BootstrapParams::default();
        AggregateParams {
            rules: Rule::ALL.to_vec(),
            threshold: 0.5,
            bootstrap_resamples: bootstrap.resamples,
            bootstrap_seed: bootstrap.seed,
            confident: ConfidentParams::default(),
        }
    }
}

impl AggregateParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.rules.is_empty() {
            return Err("aggregate.rules must name at least one rule".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!(
                "aggregate.threshold must be in [0, 1], got {}",
                self.threshold
            ));
        }
        self.confident.validate()
    }

    fn bootstrap(&self) -> BootstrapParams {
        BootstrapParams {
            resamples: self.bootstrap_resamples,
            seed: self.bootstrap_seed,
        }
    }

    /// The configured rules, each once, in a fixed order (the cache key must not depend on how
    /// the list was written).
    fn rule_set(&self) -> BTreeSet<Rule> {
        self.rules.iter().copied().collect()
    }
}

pub struct Aggregate {
    params: AggregateParams,
}

/// The scored frames of one video for one model.
struct ScoredVideo {
    label: Option<Label>,
    scores: Vec<f64>,
}

/// (model, split) -> video -> its scored frames.
type Grouped = BTreeMap<(String, String), BTreeMap<String, ScoredVideo>>;

impl Aggregate {
    pub fn new(params: AggregateParams) -> Self {
        Aggregate { params }
    }

    /// Computes both output tables from typed rows; [`Stage::run`] only reads and writes tables.
    pub fn compute(
        &self,
        frames: &[FrameScoreRow],
        videos: &[VideoRow],
        models: &[TrainedModelRow],
        cues: &[VideoCueRow],
    ) -> Result<(Vec<VideoScoreRow>, Vec<MetricsRow>), StageError> {
        let truth: BTreeMap<&str, &VideoRow> =
            videos.iter().map(|v| (v.video_id.as_str(), v)).collect();
        let parameters: BTreeMap<&str, u64> = models
            .iter()
            .map(|m| (m.model.as_str(), m.parameters))
            .collect();
        let grouped = group(frames, &truth)?;
        let threshold = self.params.threshold;
        let bootstrap = self.params.bootstrap();
        let mut video_rows = Vec::new();
        let mut metrics = Vec::new();
        for ((model, split), by_video) in &grouped {
            let unscored = videos
                .iter()
                .filter(|v| v.split.as_deref() == Some(split) && v.label.is_some())
                .filter(|v| !by_video.contains_key(&v.video_id))
                .count() as u64;
            let key = |level, rule: &str| MetricsKey {
                model: model.clone(),
                split: split.clone(),
                level,
                rule: rule.to_string(),
                unscored,
                parameters: parameters.get(model.as_str()).copied(),
            };
            for rule in self.params.rule_set() {
                let mut units = Vec::new();
                for (video_id, video) in by_video {
                    let score =
                        aggregate(rule, &video.scores, threshold, &self.params.confident)
                            .ok_or_else(|| StageError::Other(format!("{video_id}: no frames")))?;
                    video_rows.push(VideoScoreRow {
                        model: model.clone(),
                        video_id: video_id.clone(),
                        split: split.clone(),
                        label: video.label,
                        frames: video.scores.len() as u32,
                        score,
                        predicted: predicted(score, threshold),
                        rule: rule.as_str().to_string(),
                    });
                    if let Some(label) = video.label {
                        units.push(Unit {
                            labels: vec![label == Label::Fake],
                            scores: vec![score],
                        });
                    }
                }
                metrics.extend(self.row(key(VIDEO_LEVEL, rule.as_str()), &units, bootstrap)?);
            }
            let frame_units: Vec<Unit> = by_video
                .values()
                .filter_map(|v| {
                    v.label.map(|label| Unit {
                        labels: vec![label == Label::Fake; v.scores.len()],
                        scores: v.scores.clone(),
                    })
                })
                .collect();
            metrics.extend(self.row(key(FRAME_LEVEL, FRAME_LEVEL), &frame_units, bootstrap)?);
        }
        metrics.extend(self.baselines(&grouped, videos, bootstrap)?);
        metrics.extend(
            cue_rows(videos, cues, bootstrap)
                .map_err(|e| StageError::Other(format!("metrics of the cue baselines: {e}")))?,
        );
        Ok((video_rows, metrics))
    }

    fn row(
        &self,
        key: MetricsKey,
        units: &[Unit],
        bootstrap: BootstrapParams,
    ) -> Result<Option<MetricsRow>, StageError> {
        let what = format!(
            "{} / {} / {} / {}",
            key.model, key.split, key.level, key.rule
        );
        metrics_row(key, units, self.params.threshold, bootstrap)
            .map_err(|e| StageError::Other(format!("metrics of {what}: {e}")))
    }

    /// The constant pseudo-models on every labelled video of each split that has scores.
    fn baselines(
        &self,
        grouped: &Grouped,
        videos: &[VideoRow],
        bootstrap: BootstrapParams,
    ) -> Result<Vec<MetricsRow>, StageError> {
        let splits: BTreeSet<&str> = grouped.keys().map(|(_, split)| split.as_str()).collect();
        let mut rows = Vec::new();
        for split in splits {
            let labels: Vec<bool> = videos
                .iter()
                .filter(|v| v.split.as_deref() == Some(split))
                .filter_map(|v| v.label.map(|l| l == Label::Fake))
                .collect();
            for (model, score) in BASELINES {
                let key = MetricsKey {
                    model: model.to_string(),
                    split: split.to_string(),
                    level: VIDEO_LEVEL,
                    rule: CONSTANT_RULE.to_string(),
                    unscored: 0,
                    parameters: Some(0),
                };
                rows.extend(self.row(key, &constant_units(&labels, score), bootstrap)?);
            }
        }
        Ok(rows)
    }
}

/// The verdict at the threshold: FAKE only strictly above it.
pub fn predicted(score: f64, threshold: f64) -> Label {
    if score > threshold {
        Label::Fake
    } else {
        Label::Real
    }
}

/// Groups frame scores by (model, split) and video, checking each score is a probability and each
/// label agrees with `videos` (which wins when `frame_scores` has none).
fn group(
    frames: &[FrameScoreRow],
    truth: &BTreeMap<&str, &VideoRow>,
) -> Result<Grouped, StageError> {
    let mut grouped = Grouped::new();
    for f in frames {
        if !(0.0..=1.0).contains(&f.score) {
            return Err(StageError::Other(format!(
                "frame_scores: model {}, video {}, frame {}: score {} is not a probability",
                f.model, f.video_id, f.sample_index, f.score
            )));
        }
        // Reading the table already refused a label other than REAL or FAKE.
        let own = f.label;
        let known = truth.get(f.video_id.as_str()).and_then(|v| v.label);
        if let (Some(a), Some(b)) = (own, known) {
            if a != b {
                return Err(StageError::Other(format!(
                    "video {}: frame_scores says {}, videos says {}",
                    f.video_id,
                    a.as_str(),
                    b.as_str()
                )));
            }
        }
        let video = grouped
            .entry((f.model.clone(), f.split.clone()))
            .or_default()
            .entry(f.video_id.clone())
            .or_insert_with(|| ScoredVideo {
                label: known.or(own),
                scores: Vec::new(),
            });
        video.scores.push(f64::from(f.score));
    }
    Ok(grouped)
}

impl Stage for Aggregate {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            // 2: cue baselines.
            version: 2,
            inputs: &[
                InputDef::of::<FrameScoreRow>(SCORE_STAGE),
                InputDef::of::<VideoRow>(crate::ingest::NAME),
                InputDef::of::<TrainedModelRow>(TRAIN_STAGE),
                InputDef::of::<VideoCueRow>(crate::cues::NAME),
            ],
            outputs: &[
                dfd_schemas::VideoScoreRow::TABLE,
                dfd_schemas::MetricsRow::TABLE,
            ],
            sharding: Sharding::Whole,
            streams: false,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        let mut params = self.params.clone();
        params.rules = self.params.rule_set().into_iter().collect();
        crate::key_params(NAME, &params, &[])
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let frames = input.rows::<FrameScoreRow>()?;
        let videos = input.rows::<VideoRow>()?;
        let models = input.rows::<TrainedModelRow>()?;
        let cues = input.rows::<VideoCueRow>()?;
        let (video_scores, metrics) = self.compute(&frames, &videos, &models, &cues)?;
        ctx.progress.advance(1);
        Ok(StageOutput::default()
            .with_rows(&video_scores)?
            .with_rows(&metrics)?)
    }
}
