//! The learning half of the DAG end to end, on a tiny demo set: `train` fits a real MesoNet-4 on
//! real face crops and exports it, `score` runs the export on ONNX Runtime, `aggregate` and
//! `report` publish the summary and plots, and `dfd predict` gives verdicts for single files
//! through the same stages.
//!
//! Splits are rewritten so that every split holds both classes: a test of the plumbing, not of
//! the detector (a six-video dataset cannot be).

use dfd_schemas::{EpochRow, EpochTimeRow, FrameScoreRow, Label, TableRow, TrainedModelRow};
use dfd_tests::Dfd;
use serde_json::Value;

const SETTINGS: [&str; 10] = [
    "--set",
    "train.models=[\"mesonet4-single\"]",
    "--set",
    "train.epochs=2",
    "--set",
    "train.max_frames_per_video=6",
    "--set",
    "decode.frames_per_video=8",
    "--set",
    "train.batch_size=8",
];

fn run_args(dataset: &str) -> Vec<&str> {
    let mut args = vec!["run", "--dataset", dataset];
    args.extend(SETTINGS);
    args
}

#[test]
fn train_score_and_predict_on_real_crops() {
    let dfd = Dfd::new();
    let root = tempfile::tempdir().unwrap();
    let dataset = root.path().join("demo");
    let meta = dfd.tiny_demo_data(&dataset);
    dfd.ok(&run_args(dataset.to_str().unwrap()));

    let models: Vec<TrainedModelRow> = dfd.rows("train", "models", TrainedModelRow::from_batch);
    assert_eq!(models.len(), 1);
    let model = &models[0];
    assert_eq!(model.model, "mesonet4-single");
    assert_eq!(model.parameters, 24_233, "MesoNet-4 as Keras counts it");
    assert!(
        model.onnx.len() > 90_000,
        "ONNX of {} bytes",
        model.onnx.len()
    );
    assert!((1..=2).contains(&model.best_epoch));

    let history: Vec<EpochRow> = dfd.rows("train", "training_history", EpochRow::from_batch);
    assert_eq!(history.len(), model.epochs_run as usize);
    assert!(history.iter().all(|e| e.train_loss.is_finite()));

    let scores: Vec<FrameScoreRow> = dfd.rows("score", "frame_scores", FrameScoreRow::from_batch);
    assert!(!scores.is_empty());
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    assert!(scores.iter().all(|s| s.split == "val" || s.split == "test"));
    for s in &scores {
        assert_eq!(
            s.label.map(Label::as_str),
            meta[&s.video_id]["label"].as_str(),
            "label of {}",
            s.video_id
        );
    }

    // The report: files published to the workspace, the summary naming the model, and
    // `dfd report` printing the same table from the cached metrics.
    let report = dfd.workspace.path().join("report");
    for file in [
        "summary.md",
        "summary.csv",
        "summary.parquet",
        "roc-test.png",
        "confusion-test.png",
        "training-curves.png",
    ] {
        let bytes = std::fs::read(report.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!bytes.is_empty(), "{file} is empty");
    }
    let summary = std::fs::read_to_string(report.join("summary.md")).unwrap();
    // The model's row (flagged or not against the cues: two test videos decide nothing).
    assert!(summary.contains("| mesonet4-single"), "{summary}");
    assert!(summary.contains("| 24,233 |"), "{summary}");
    assert!(summary.contains("always-fake"), "{summary}");
    for cue in ["cue-face-sharpness", "cue-bitrate", "cue-ssim-mean"] {
        assert!(summary.contains(cue), "{cue}: {summary}");
    }
    let printed = dfd.ok(&["report"]);
    assert!(printed.contains("mesonet4-single"), "{printed}");

    // A rerun with nothing changed trains nothing.
    dfd.ok(&run_args(dataset.to_str().unwrap()));
    assert_eq!(dfd.outcome("train"), "cached");
    assert_eq!(dfd.outcome("score"), "cached");

    // A retrain from scratch (its checkpoints gone, so it really trains again) takes other
    // seconds but learns the same weights: the stages that read `models` and `training_history`
    // stay cached, because the timings are a table of their own that none of them reads.
    let times: Vec<EpochTimeRow> = dfd.rows("train", "training_times", EpochTimeRow::from_batch);
    assert_eq!(times.len(), history.len());
    assert!(times.iter().all(|t| t.seconds > 0.0), "{times:?}");
    std::fs::remove_dir_all(dfd.workspace.path().join("scratch").join("train")).unwrap();
    let mut args = run_args(dataset.to_str().unwrap());
    args.extend(["--force", "train"]);
    dfd.ok(&args);
    assert_eq!(dfd.outcome("train"), "computed");
    let retimed: Vec<EpochTimeRow> = dfd.rows("train", "training_times", EpochTimeRow::from_batch);
    assert_ne!(
        times, retimed,
        "a second training took exactly as long as the first"
    );
    for stage in ["score", "aggregate", "report"] {
        assert_eq!(dfd.outcome(stage), "cached", "{stage}");
    }

    // predict: one REAL and one FAKE file of the set, and a clip with no face at all.
    let real = meta
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, e)| e["label"] == "REAL")
        .map(|(name, _)| dataset.join(name))
        .unwrap();
    let fake = meta
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, e)| e["label"] == "FAKE")
        .map(|(name, _)| dataset.join(name))
        .unwrap();
    let no_face = dfd_tests::media("no_face.mp4");
    let mut args = vec![
        "predict",
        real.to_str().unwrap(),
        fake.to_str().unwrap(),
        no_face.to_str().unwrap(),
        "--model",
        "mesonet4-single",
        "--json",
    ];
    args.extend(SETTINGS);
    let report: Value = serde_json::from_str(&dfd.ok(&args)).unwrap();
    let videos = report["videos"].as_array().unwrap();
    assert_eq!(videos.len(), 3);
    for v in &videos[..2] {
        let verdict = v["verdict"].as_str().unwrap();
        assert!(verdict == "REAL" || verdict == "FAKE", "{v}");
        assert!(v["frames_used"].as_u64().unwrap() > 0, "{v}");
        let score = v["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
    }
    assert_eq!(videos[2]["verdict"], "no face found", "{}", videos[2]);

    // The model must exist: a misspelt one is named with what there is.
    let mut args = vec![
        "predict",
        real.to_str().unwrap(),
        "--model",
        "mesonet5-single",
    ];
    args.extend(SETTINGS);
    let message = dfd.fails(&args);
    assert!(
        message.contains("mesonet5-single") && message.contains("mesonet4-single"),
        "{message}"
    );
}
