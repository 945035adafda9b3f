//! The `aggregate` stage on hand-made tables, through the same `Stage::run` the runner calls: video
//! scores per rule, metrics per (model, split, level, rule), the baselines, and nulls where a
//! metric is undefined. Expected numbers are worked out by hand in the comments.

use dfd_schemas::{
    FrameScoreRow, Label, MetricsRow, TrainedModelRow, VideoCueRow, VideoRow, VideoScoreRow,
};
use dfd_stages::aggregate::{binary_metrics, Aggregate, AggregateParams, Rule};
use dfd_stages::{Stage, StageContext, StageInput};

fn video(id: &str, label: Option<Label>, split: &str) -> VideoRow {
    VideoRow {
        video_id: id.into(),
        path: format!("/data/{id}"),
        label,
        split: Some(split.into()),
        original: None,
        group: id.into(),
        size_bytes: 1,
        modified_ms: 0,
    }
}

fn frames(
    model: &str,
    id: &str,
    label: Option<Label>,
    split: &str,
    scores: &[f32],
) -> Vec<FrameScoreRow> {
    scores
        .iter()
        .enumerate()
        .map(|(i, &score)| FrameScoreRow {
            model: model.into(),
            video_id: id.into(),
            sample_index: i as u32,
            frame_index: 15 * i as u64,
            time_s: 0.5 * i as f64,
            split: split.into(),
            label,
            score,
        })
        .collect()
}

fn model(name: &str, parameters: u64) -> TrainedModelRow {
    TrainedModelRow {
        model: name.into(),
        architecture: "mesonet4".into(),
        form: "single".into(),
        parameters,
        epochs_run: 1,
        best_epoch: 1,
        averaged_from: None,
        best_val_loss: None,
        initial_weights: dfd_schemas::InitialWeights::Seeded,
        onnx: vec![],
        weights: vec![],
    }
}

/// Test split: f1, f2 FAKE; r1, r2 REAL; r3 REAL without faces; u1 unlabelled. Val: v1 FAKE only.
fn dataset() -> (Vec<FrameScoreRow>, Vec<VideoRow>, Vec<TrainedModelRow>) {
    let videos = vec![
        video("f1.mp4", Some(Label::Fake), "test"),
        video("f2.mp4", Some(Label::Fake), "test"),
        video("r1.mp4", Some(Label::Real), "test"),
        video("r2.mp4", Some(Label::Real), "test"),
        video("r3.mp4", Some(Label::Real), "test"),
        video("u1.mp4", None, "test"),
        video("v1.mp4", Some(Label::Fake), "val"),
        video("t1.mp4", Some(Label::Real), "train"),
    ];
    let m = "mesonet4-single";
    let mut rows = Vec::new();
    // mean 0.7, vote 3/4 = 0.75
    rows.extend(frames(
        m,
        "f1.mp4",
        Some(Label::Fake),
        "test",
        &[0.9, 0.9, 0.9, 0.1],
    ));
    // mean 0.45 (REAL at 0.5: a miss), vote 0.5 (REAL)
    rows.extend(frames(
        m,
        "f2.mp4",
        Some(Label::Fake),
        "test",
        &[0.6, 0.6, 0.3, 0.3],
    ));
    // mean 0.2
    rows.extend(frames(m, "r1.mp4", Some(Label::Real), "test", &[0.1, 0.3]));
    // mean 0.55 (a false alarm), vote 0.5 (REAL)
    rows.extend(frames(m, "r2.mp4", Some(Label::Real), "test", &[0.5, 0.6]));
    rows.extend(frames(m, "u1.mp4", None, "test", &[0.8]));
    rows.extend(frames(m, "v1.mp4", Some(Label::Fake), "val", &[0.75, 0.25]));
    (rows, videos, vec![model(m, 27_977)])
}

fn run(params: AggregateParams) -> (Vec<VideoScoreRow>, Vec<MetricsRow>) {
    let (frames, videos, models) = dataset();
    let input = StageInput::new(videos.iter().map(|v| v.video_id.clone()).collect())
        .with_rows(&frames)
        .and_then(|input| input.with_rows(&videos))
        .and_then(|input| input.with_rows(&models))
        .and_then(|input| input.with_rows::<VideoCueRow>(&[]))
        .unwrap();
    let stage = Aggregate::new(params);
    let mut output = stage.run(&input, &StageContext::detached()).unwrap();
    for def in stage.outputs() {
        let batches = output.take(def);
        assert_eq!(batches.len(), 1, "{}", def.name);
        def.validate(&batches[0]).unwrap();
        output = output.with_table(def, batches.into_iter().next().unwrap());
    }
    (
        output.take_rows::<VideoScoreRow>().unwrap(),
        output.take_rows::<MetricsRow>().unwrap(),
    )
}

fn find<'a>(
    rows: &'a [MetricsRow],
    model: &str,
    split: &str,
    level: &str,
    rule: &str,
) -> &'a MetricsRow {
    rows.iter()
        .find(|r| r.model == model && r.split == split && r.level == level && r.rule == rule)
        .unwrap_or_else(|| panic!("no metrics row {model}/{split}/{level}/{rule}"))
}

/// Frame scores are f32 (0.9 is stored as 0.899999976...), so sums of them match to f32 precision.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn video_scores_follow_each_rule() {
    let (scores, _) = run(AggregateParams::default());
    let score = |id: &str, rule: &str| {
        scores
            .iter()
            .find(|s| s.video_id == id && s.rule == rule)
            .unwrap_or_else(|| panic!("{id} {rule}"))
    };
    assert!(close(score("f1.mp4", "mean").score, 0.7));
    assert!(close(score("f1.mp4", "vote").score, 0.75));
    assert_eq!(score("f2.mp4", "mean").predicted, Label::Real);
    assert_eq!(score("r2.mp4", "mean").predicted, Label::Fake);
    assert_eq!(score("r2.mp4", "vote").predicted, Label::Real);
    assert_eq!(score("u1.mp4", "mean").label, None);
    assert_eq!(score("f1.mp4", "mean").frames, 4);
    // 6 scored videos (5 test, u1 included, + 1 val) x 3 rules; r3 has no frames and no row.
    assert_eq!(scores.len(), 18);
    assert!(!scores.iter().any(|s| s.video_id == "r3.mp4"));
}

#[test]
fn video_level_metrics_are_those_of_the_video_scores() {
    let (_, metrics) = run(AggregateParams::default());
    let m = find(&metrics, "mesonet4-single", "test", "video", "mean");
    // Labelled scored videos: f1 0.7, f2 0.45, r1 0.2, r2 0.55. Unlabelled u1 left out.
    let expected =
        binary_metrics(&[true, true, false, false], &[0.7, 0.45, 0.2, 0.55], 0.5).unwrap();
    assert_eq!((m.n, m.n_fake, m.n_real, m.unscored), (4, 2, 2, 1));
    assert_eq!((m.tp, m.fn_, m.tn, m.fp), (1, 1, 1, 1));
    assert_eq!(m.accuracy, Some(0.5));
    assert_eq!(m.roc_auc, expected.roc_auc);
    // Pairs (fake > real): 0.7 beats both, 0.45 beats 0.2 only: AUC 3/4.
    assert_eq!(m.roc_auc, Some(0.75));
    assert_eq!(m.parameters, Some(27_977));
    assert_eq!(m.bootstrap_resamples, 1000);
    let (lo, hi) = (m.roc_auc_ci_low.unwrap(), m.roc_auc_ci_high.unwrap());
    assert!(lo <= 0.75 && 0.75 <= hi, "[{lo}, {hi}]");
    assert!(
        m.bootstrap_auc_skipped > 0,
        "4 videos: some resamples hold one class"
    );

    let vote = find(&metrics, "mesonet4-single", "test", "video", "vote");
    // vote: f1 0.75 FAKE, f2 0.5 REAL, r1 0 REAL, r2 0.5 REAL.
    assert_eq!((vote.tp, vote.fn_, vote.tn, vote.fp), (1, 1, 2, 0));
}

#[test]
fn frame_level_metrics_count_every_frame() {
    let (_, metrics) = run(AggregateParams::default());
    let m = find(&metrics, "mesonet4-single", "test", "frame", "frame");
    assert_eq!((m.n, m.n_fake, m.n_real), (12, 8, 4));
    // Frames > 0.5: FAKE 0.9 x3, 0.6 x2 (tp 5, fn 3); REAL 0.6 (fp 1, tn 3).
    assert_eq!((m.tp, m.fn_, m.fp, m.tn), (5, 3, 1, 3));
    assert_eq!(m.accuracy, Some(8.0 / 12.0));
}

#[test]
fn a_split_with_one_class_has_null_auc_not_nan() {
    let (_, metrics) = run(AggregateParams::default());
    let m = find(&metrics, "mesonet4-single", "val", "video", "mean");
    assert_eq!((m.n, m.n_fake), (1, 1));
    assert_eq!((m.roc_auc, m.average_precision, m.eer), (None, None, None));
    assert_eq!((m.roc_auc_ci_low, m.roc_auc_ci_high), (None, None));
    assert_eq!(m.bootstrap_auc_skipped, m.bootstrap_resamples);
    // The only video scores 0.5 (mean of 0.75, 0.25): predicted REAL, so precision is undefined.
    assert_eq!(m.precision, None);
    assert_eq!(m.recall, Some(0.0));
}

#[test]
fn baselines_score_every_labelled_video_of_the_split() {
    let (_, metrics) = run(AggregateParams::default());
    let fake = find(&metrics, "always-fake", "test", "video", "constant");
    let real = find(&metrics, "always-real", "test", "video", "constant");
    // Test split: 2 FAKE, 3 REAL (r3 counts: a constant needs no face), u1 unlabelled.
    assert_eq!((fake.n, fake.n_fake, fake.n_real), (5, 2, 3));
    assert_eq!(fake.accuracy, Some(0.4));
    assert_eq!(real.accuracy, Some(0.6));
    assert_eq!(fake.roc_auc, Some(0.5));
    assert_eq!(fake.recall, Some(1.0));
    assert_eq!(real.precision, None);
    assert_eq!(fake.parameters, Some(0));
    // No baseline for the train split: nothing was scored there.
    assert!(!metrics.iter().any(|r| r.split == "train"));
}

#[test]
fn configured_rules_and_seed_are_honoured() {
    let params = AggregateParams {
        rules: vec![Rule::Confident],
        bootstrap_resamples: 50,
        bootstrap_seed: 9,
        ..AggregateParams::default()
    };
    let (scores, metrics) = run(params.clone());
    assert!(scores.iter().all(|s| s.rule == "confident"));
    assert!(metrics
        .iter()
        .all(|m| m.rule == "confident" || m.rule == "frame" || m.rule == "constant"));
    assert!(metrics.iter().all(|m| m.bootstrap_resamples == 50));
    assert_eq!(run(params).1, metrics, "same seed, same table");
}

#[test]
fn a_score_outside_zero_one_fails_the_stage() {
    let (mut frames, videos, models) = dataset();
    frames[0].score = 1.5;
    let err = Aggregate::new(AggregateParams::default())
        .compute(&frames, &videos, &models, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("f1.mp4") && err.contains("1.5"), "{err}");
}

#[test]
fn a_label_that_contradicts_videos_fails_the_stage() {
    let (mut frames, videos, models) = dataset();
    frames[0].label = Some(Label::Real);
    let err = Aggregate::new(AggregateParams::default())
        .compute(&frames, &videos, &models, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("f1.mp4"), "{err}");
}
