//! `dfd evaluate`: models trained in one workspace, scored on another dataset in another
//! workspace. Dataset A is the tiny demo set; dataset B is made of registry clips A does not
//! hold as files, with an unlabelled video without a split and a broken file. Every video of B
//! that can be read is scored (the unlabelled one too, counted in no metric), the broken one is
//! a row in `errors`, B is preprocessed with A's decode settings, the report names the models,
//! their hash and A's dataset; a second evaluation is all cached, and a retraining of A reruns
//! `score` onwards only; a preprocessing setting given for B wins and is named in a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dfd_schemas::{
    ErrorRow, FrameRow, FrameScoreRow, MetricsRow, TableRow, TrainedModelRow, VideoScoreRow,
};
use dfd_tests::{Dataset, Dfd, SMALLEST_TRAINING};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Dataset B: two labelled test clips, one clip with neither label nor split, one broken file.
fn dataset_b() -> Dataset {
    Dataset::new()
        .clip("talking.mp4", "single_face.mp4", "REAL")
        .entry("talking.mp4", json!({"label": "REAL", "split": "test"}))
        .clip("car.mp4", "carphone_pristine.mp4", "FAKE")
        .entry("car.mp4", json!({"label": "FAKE", "split": "test"}))
        .clip("unknown.mov", "bob-test_h264.mov", "REAL")
        .entry("unknown.mov", json!({}))
        .file("broken.mp4", b"this is not a video", "FAKE")
        .entry("broken.mp4", json!({"label": "FAKE", "split": "test"}))
        .write()
}

/// A's training: the smallest that trains (its `decode.frames_per_video = 6` B must inherit: B's
/// 4 s clip would give 8 samples under the default of 20).
fn train_a(a: &Dfd, dataset: &Path, extra: &[&str]) {
    let mut args = vec!["run", "--dataset", dataset.to_str().expect("UTF-8 path")];
    args.extend(SMALLEST_TRAINING);
    args.extend(extra);
    a.ok(&args);
}

fn evaluate(b: &Dfd, dataset: &Path, models: &Path, settings: &[&str]) -> String {
    let mut args = vec!["--set", "aggregate.bootstrap_resamples=200"];
    args.extend(settings);
    args.extend([
        "evaluate",
        "--dataset",
        dataset.to_str().expect("UTF-8 path"),
        "--models",
        models.to_str().expect("UTF-8 path"),
    ]);
    let out = b.output(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dfd evaluate failed:\n{stderr}");
    stderr
}

fn outcomes(dfd: &Dfd) -> BTreeMap<String, String> {
    dfd.outcomes().into_iter().collect()
}

/// `dfd status --json` in an evaluation workspace, with the settings the evaluations were run
/// with: each stage's state.
fn states(dfd: &Dfd) -> BTreeMap<String, String> {
    let text = dfd.ok(&[
        "--set",
        "aggregate.bootstrap_resamples=200",
        "status",
        "--json",
    ]);
    let stages: serde_json::Value = serde_json::from_str(&text).expect("status --json is JSON");
    stages
        .as_array()
        .expect("a list of stages")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn models_of_one_workspace_are_evaluated_on_another_dataset() {
    let root = tempfile::tempdir().expect("temp dir");
    let a_data = root.path().join("a");
    let a = Dfd::new();
    a.tiny_demo_data(&a_data);
    train_a(&a, &a_data, &[]);
    let trained = a.rows("train", "models", TrainedModelRow::from_batch);
    assert_eq!(trained.len(), 1);
    let hash = hex::encode(Sha256::digest(&trained[0].onnx));

    let b_data = dataset_b();
    let b = Dfd::new();
    let err = b.fails(&[
        "evaluate",
        "--dataset",
        b_data.path().to_str().unwrap(),
        "--models",
        a.workspace.path().to_str().unwrap(),
        "--model",
        "vit_b16-multi",
    ]);
    assert!(
        err.contains("no trained model `vit_b16-multi`") && err.contains("mesonet4-single"),
        "{err}"
    );
    let stderr = evaluate(&b, b_data.path(), a.workspace.path(), &[]);
    assert!(
        !stderr.contains("overrides"),
        "nothing was overridden:\n{stderr}"
    );

    // B went through A's preprocessing: 6 samples at most per video, not the default 20.
    let frames = b.rows("decode", "frames", FrameRow::from_batch);
    let mut per_video: BTreeMap<String, usize> = BTreeMap::new();
    for f in &frames {
        *per_video.entry(f.video_id.clone()).or_default() += 1;
    }
    assert_eq!(per_video.get("car.mp4"), Some(&6), "{per_video:?}");

    // Every readable video scored, whatever its split; the broken one is an error row.
    let scores = b.rows("score", "frame_scores", FrameScoreRow::from_batch);
    let scored: BTreeSet<&str> = scores.iter().map(|s| s.video_id.as_str()).collect();
    assert_eq!(
        scored,
        BTreeSet::from(["car.mp4", "talking.mp4", "unknown.mov"]),
        "{stderr}"
    );
    assert!(scores.iter().all(|s| s.model == "mesonet4-single"));
    let unknown: Vec<&FrameScoreRow> = scores
        .iter()
        .filter(|s| s.video_id == "unknown.mov")
        .collect();
    assert!(unknown
        .iter()
        .all(|s| s.label.is_none() && s.split == "none"));
    // Each frame score carries its frame's time: samples 0.5 s apart from the start.
    let mut car: Vec<(u32, f64)> = scores
        .iter()
        .filter(|s| s.video_id == "car.mp4")
        .map(|s| (s.sample_index, s.time_s))
        .collect();
    car.sort_by_key(|c| c.0);
    for (sample, time) in &car {
        let expected = 0.5 * f64::from(*sample);
        assert!((time - expected).abs() < 0.05, "{car:?}");
    }
    let errors = b.rows("decode", "errors", ErrorRow::from_batch);
    assert_eq!(
        errors
            .iter()
            .map(|e| e.video_id.as_str())
            .collect::<Vec<_>>(),
        ["broken.mp4"]
    );

    // The unlabelled video has a video score and counts in no metric.
    let video_scores = b.rows("aggregate", "video_scores", VideoScoreRow::from_batch);
    assert!(video_scores.iter().any(|v| v.video_id == "unknown.mov"));
    let metrics = b.rows("aggregate", "metrics", MetricsRow::from_batch);
    let test_mean = metrics
        .iter()
        .find(|m| {
            m.model == "mesonet4-single"
                && m.split == "test"
                && m.level == "video"
                && m.rule == "mean"
        })
        .expect("a video-level metrics row of the test split");
    assert_eq!((test_mean.n, test_mean.n_fake), (2, 1));
    assert!(
        !metrics.iter().any(|m| m.split == "none"),
        "unlabelled videos make no metric"
    );

    // The report names the models, their hash, the dataset they were trained on and B.
    let a_dataset = a_data.canonicalize().expect("A's dataset");
    let b_dataset = b_data.path().canonicalize().expect("B's dataset");
    for file in ["summary.md", "report.html"] {
        let text = std::fs::read_to_string(b.workspace.path().join("report").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("Models evaluated"), "{file}:\n{text}");
        assert!(text.contains("mesonet4-single"), "{file}");
        assert!(
            text.contains(&hash),
            "{file} lacks the model's sha256 {hash}"
        );
        assert!(
            text.contains(a_dataset.to_str().unwrap()),
            "{file} lacks A's dataset"
        );
        assert!(
            text.contains(b_dataset.to_str().unwrap()),
            "{file} lacks B's dataset"
        );
    }

    // Timelines of frame scores: the quoted split's videos, and those without a split.
    for name in [
        "timeline-mesonet4-single-test.png",
        "timeline-mesonet4-single-none.png",
    ] {
        assert!(
            b.workspace.path().join("report").join(name).is_file(),
            "{name} missing from B's report"
        );
    }

    // `dfd status` compares the workspace with the evaluation it holds (the models' stage, their
    // preprocessing), not with a training of its own: every stage is fresh.
    let fresh = states(&b);
    assert_eq!(
        fresh.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "ingest",
            "decode",
            "detect",
            "crop",
            "ssim",
            "cues",
            "train",
            "score",
            "aggregate",
            "report"
        ]),
        "{fresh:?}"
    );
    assert!(fresh.values().all(|s| s == "fresh"), "{fresh:?}");

    // Unchanged: everything cached.
    evaluate(&b, b_data.path(), a.workspace.path(), &[]);
    let again = outcomes(&b);
    assert!(
        again.values().all(|o| o == "cached"),
        "a second evaluation must be all cached: {again:?}"
    );

    // A trained again (another seed): only the models' stage and what follows it rerun.
    train_a(&a, &a_data, &["--set", "train.seed=7"]);
    let retrained = a.rows("train", "models", TrainedModelRow::from_batch);
    assert_ne!(
        hex::encode(Sha256::digest(&retrained[0].onnx)),
        hash,
        "another seed must train other weights"
    );
    // Before B is evaluated again, status sees the models changed: preprocessing stays fresh.
    let pending = states(&b);
    assert_eq!(pending["crop"], "fresh", "{pending:?}");
    assert_eq!(pending["train"], "stale", "{pending:?}");
    evaluate(&b, b_data.path(), a.workspace.path(), &[]);
    let after = outcomes(&b);
    for stage in ["ingest", "decode", "detect", "crop", "ssim", "cues"] {
        assert_eq!(after[stage], "cached", "{stage}: {after:?}");
    }
    for stage in ["train", "score", "aggregate", "report"] {
        assert_eq!(after[stage], "computed", "{stage}: {after:?}");
    }

    // A preprocessing setting given for B wins, with a warning that names it.
    let c = Dfd::new();
    let stderr = evaluate(
        &c,
        b_data.path(),
        a.workspace.path(),
        &["--set", "decode.frames_per_video=5"],
    );
    assert!(
        stderr.contains(
            "warning: decode.frames_per_video = 5 overrides 6, the value the models were \
             trained with"
        ),
        "{stderr}"
    );
    let frames = c.rows("decode", "frames", FrameRow::from_batch);
    assert_eq!(frames.iter().filter(|f| f.video_id == "car.mp4").count(), 5);

    // Models of an older train stage (version 3 stored no weights for Grad-CAM; version 2 took
    // `[0, 1]`, not pixel values) are refused, not scored as if they were of this one.
    for manifest in glob_manifests(&a.workspace.path().join("cache").join("train")) {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let older = text.replacen("\"version\": 4", "\"version\": 3", 1);
        assert_ne!(
            older,
            text,
            "{} holds the train version",
            manifest.display()
        );
        std::fs::write(&manifest, older).unwrap();
    }
    let d = Dfd::new();
    let err = d.fails(&[
        "evaluate",
        "--dataset",
        b_data.path().to_str().unwrap(),
        "--models",
        a.workspace.path().to_str().unwrap(),
    ]);
    assert!(
        err.contains("trained by version 3 of the `train` stage") && err.contains("retrain"),
        "{err}"
    );
}

/// The `_manifest.json` of every output folder under `stage_dir`.
fn glob_manifests(stage_dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(stage_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("_manifest.json"))
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn a_workspace_without_trained_models_is_refused_by_name() {
    let empty = Dfd::new();
    std::fs::create_dir_all(empty.workspace.path().join("runs")).unwrap();
    let data = dataset_b();
    let b = Dfd::new();
    let err = b.fails(&[
        "evaluate",
        "--dataset",
        data.path().to_str().unwrap(),
        "--models",
        empty.workspace.path().to_str().unwrap(),
    ]);
    assert!(
        err.contains("no finished `train` output")
            && err.contains(&empty.workspace.path().display().to_string()),
        "{err}"
    );
}
