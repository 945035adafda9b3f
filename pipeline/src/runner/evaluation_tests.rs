//! `aggregate` and `report` driven by the real runner (dagrs, cache, validation, publishing), with
//! stand-ins for the stages before them that write hand-made tables: what the end of the DAG will
//! do once `score` and `train` exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use dfd_schemas::{
    EpochRow, FaceRow, FrameScoreRow, Label, SsimMapRow, SsimStatsRow, TableDef, TableRow,
    TrainedModelRow, VideoCueRow, VideoRow,
};
use dfd_stages::{Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec};

use super::{run_dag, Executor, Mode, Outcome, Pipeline};
use crate::cache::Workspace;
use crate::commands::report::{publish, summary};
use crate::config::Config;

/// A stage without inputs that writes fixed tables under a borrowed name.
struct Fixed {
    spec: StageSpec,
    tables: Vec<(TableDef, RecordBatch)>,
}

impl Fixed {
    fn new(
        name: &'static str,
        outputs: &'static [TableDef],
        tables: Vec<(TableDef, RecordBatch)>,
    ) -> Fixed {
        let spec = StageSpec {
            name,
            version: 1,
            inputs: &[],
            outputs,
            sharding: Sharding::Whole,
            streams: false,
        };
        Fixed { spec, tables }
    }
}

impl Stage for Fixed {
    fn spec(&self) -> &StageSpec {
        &self.spec
    }
    fn params(&self) -> Result<serde_json::Value, StageError> {
        Ok(serde_json::Value::Null)
    }
    fn run(&self, _: &StageInput, _: &StageContext) -> Result<StageOutput, StageError> {
        Ok(self
            .tables
            .iter()
            .fold(StageOutput::default(), |out, (table, batch)| {
                out.with_table(table, batch.clone())
            }))
    }
}

const VIDEOS: &[TableDef] = &[VideoRow::TABLE];
const CUES: &[TableDef] = &[VideoCueRow::TABLE];
const SCORES: &[TableDef] = &[dfd_schemas::FrameScoreRow::TABLE];
const FACES: &[TableDef] = &[FaceRow::TABLE];
const SSIM: &[TableDef] = &[SsimMapRow::TABLE, SsimStatsRow::TABLE];
const TRAINED: &[TableDef] = &[
    dfd_schemas::TrainedModelRow::TABLE,
    dfd_schemas::EpochRow::TABLE,
];

fn upstream() -> Vec<Arc<dyn Stage>> {
    let mut videos = Vec::new();
    let mut frames = Vec::new();
    let mut cues = Vec::new();
    for i in 0..10u32 {
        let fake = i % 2 == 0;
        let id = format!("v{i}.mp4");
        videos.push(VideoRow {
            video_id: id.clone(),
            path: id.clone(),
            label: Some(if fake { Label::Fake } else { Label::Real }),
            split: Some("test".into()),
            original: None,
            group: id.clone(),
            size_bytes: 1,
            modified_ms: 0,
        });
        // A weak cue: the bitrate grows with the index, FAKEs at even ones (AUC 0.4).
        cues.push(VideoCueRow {
            video_id: id.clone(),
            face_frames: 2,
            face_sharpness: None,
            face_area: None,
            face_brightness: None,
            bitrate: Some(f64::from(i)),
            ssim_mean: None,
        });
        for k in 0..2 {
            frames.push(FrameScoreRow {
                model: "mesonet4-single".into(),
                video_id: id.clone(),
                sample_index: k,
                frame_index: u64::from(k),
                time_s: f64::from(k) / 30.0,
                split: "test".into(),
                label: Some(if fake { Label::Fake } else { Label::Real }),
                score: if fake { 0.6 } else { 0.3 } + 0.03 * i as f32,
            });
        }
    }
    let models = vec![TrainedModelRow {
        model: "mesonet4-single".into(),
        architecture: "mesonet4".into(),
        form: "single".into(),
        parameters: 27_977,
        epochs_run: 2,
        best_epoch: 2,
        averaged_from: None,
        best_val_loss: Some(0.5),
        initial_weights: dfd_schemas::InitialWeights::Seeded,
        onnx: vec![1, 2, 3],
        weights: vec![],
    }];
    let history: Vec<EpochRow> = (1..=2)
        .map(|epoch| EpochRow {
            model: "mesonet4-single".into(),
            epoch,
            train_loss: 0.7 / f64::from(epoch),
            train_accuracy: 0.6,
            val_loss: Some(0.6 / f64::from(epoch)),
            val_accuracy: Some(0.6),
            val_auc: Some(0.7),
        })
        .collect();
    vec![
        Arc::new(Fixed::new(
            dfd_stages::ingest::NAME,
            VIDEOS,
            vec![(VideoRow::TABLE, VideoRow::to_batch(&videos).unwrap())],
        )),
        Arc::new(Fixed::new(
            dfd_stages::aggregate::TRAIN_STAGE,
            TRAINED,
            vec![
                (
                    TrainedModelRow::TABLE,
                    TrainedModelRow::to_batch(&models).unwrap(),
                ),
                (EpochRow::TABLE, EpochRow::to_batch(&history).unwrap()),
            ],
        )),
        Arc::new(Fixed::new(
            dfd_stages::cues::NAME,
            CUES,
            vec![(VideoCueRow::TABLE, VideoCueRow::to_batch(&cues).unwrap())],
        )),
        Arc::new(Fixed::new(
            dfd_stages::aggregate::SCORE_STAGE,
            SCORES,
            vec![(
                FrameScoreRow::TABLE,
                FrameScoreRow::to_batch(&frames).unwrap(),
            )],
        )),
        // No face crops: the report's error gallery then shows each mistake's timeline alone.
        Arc::new(Fixed::new(
            dfd_stages::crop::NAME,
            FACES,
            vec![(FaceRow::TABLE, FaceRow::to_batch(&[]).unwrap())],
        )),
        Arc::new(Fixed::new(
            dfd_stages::ssim::NAME,
            SSIM,
            vec![
                (SsimMapRow::TABLE, SsimMapRow::to_batch(&[]).unwrap()),
                (SsimStatsRow::TABLE, SsimStatsRow::to_batch(&[]).unwrap()),
            ],
        )),
    ]
}

fn run(workspace: &Workspace, config: &Config) -> BTreeMap<usize, super::StageReport> {
    let mut stages = upstream();
    stages.extend(Pipeline::evaluation_stages(config));
    let pipeline = Arc::new(Pipeline::from_stages(stages).unwrap());
    let modes = (0..pipeline.stages.len())
        .map(|i| (i, Mode::Normal))
        .collect();
    let executor = Arc::new(Executor::new(workspace.clone(), 8));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
        .block_on(run_dag(pipeline, executor, &modes))
        .unwrap()
}

#[test]
fn aggregate_and_report_run_cache_and_publish() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Workspace::new(dir.path());
    let mut config = Config::default();
    config.aggregate.bootstrap_resamples = 100;

    let first = run(&workspace, &config);
    for report in first.values() {
        assert_eq!(report.outcome, Outcome::Computed, "{}", report.stage);
    }
    let report = &first[&7];
    assert_eq!(report.stage, "report");
    let published = publish(&workspace, report.fingerprint.as_deref().unwrap()).unwrap();
    for name in [
        "summary.md",
        "summary.csv",
        "summary.parquet",
        "roc-test.png",
    ] {
        assert!(published.join(name).is_file(), "{name}");
    }
    assert!(published.join("training-curves.png").is_file());
    // The error gallery: the two false alarms, the higher first; no saliency without weights.
    let html = std::fs::read_to_string(published.join("report.html")).unwrap();
    let gallery = &html[html.find("<section id=\"errors\">").expect("a gallery")..];
    let v9 = gallery
        .find("data-video=\"v9.mp4\"")
        .expect("v9 in the gallery");
    let v7 = gallery
        .find("data-video=\"v7.mp4\"")
        .expect("v7 in the gallery");
    assert!(v9 < v7, "the most confident mistake first");
    assert_eq!(gallery.matches("<div class=\"case ").count(), 2);
    assert!(gallery.contains("stored without its burn weights"));

    // `dfd report` reads the same metrics back (no run record here: the newest output is used).
    let s = summary(&workspace, &config.report).unwrap();
    let md = dfd_stages::report::markdown(&s.metrics, &config.report.choice());
    // REAL videos v7 and v9 score 0.51 and 0.57: two false alarms in ten, every FAKE above them.
    assert!(
        md.contains("| mesonet4-single | 27,977 | 10 | 0.800 ["),
        "{md}"
    );
    assert!(md.contains("| 1.000 [1.000, 1.000] |"), "{md}");
    // The cue is listed as measured, and the detector, above its strength, is not flagged.
    assert!(md.contains("| cue-bitrate (cue) | 0 | 10 |"), "{md}");
    assert!(md.contains("| 0.400 ["), "{md}");
    assert!(!md.contains("mesonet4-single (not better"), "{md}");
    assert_eq!(s.report_dir.as_deref(), Some(published.as_path()));

    let second = run(&workspace, &config);
    for report in second.values() {
        assert_eq!(report.outcome, Outcome::Cached, "{}", report.stage);
    }
    // A new seed changes the intervals: aggregate and report recompute, upstream stays cached.
    config.aggregate.bootstrap_seed = 1;
    let third = run(&workspace, &config);
    assert_eq!(third[&3].outcome, Outcome::Cached);
    assert_eq!(third[&6].outcome, Outcome::Computed);
    assert_eq!(third[&6].stage, "aggregate");
}
