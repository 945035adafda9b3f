//! The report rendered from hand-made tables: every file is there, the Markdown summary holds the
//! right rows with the numbers the metrics give, the CSV and Parquet hold the same rows, and every
//! PNG decodes to a plot of the expected size. Set `DFD_REPORT_OUT=DIR` to keep the files.

use dfd_schemas::{
    EpochRow, FrameScoreRow, Label, MetricsRow, TableRow, TrainedModelRow, VideoRow,
};
use dfd_stages::aggregate::{binary_metrics, Aggregate, AggregateParams};
use dfd_stages::report::plots::{font_path, register_font};
use dfd_stages::report::{render, ReportInput, ReportParams};

const MODELS: [(&str, u64); 2] = [("mesonet4-single", 27_977), ("xception-multi", 20_861_480)];

/// 12 test and 6 val videos, alternating FAKE / REAL; `mesonet4-single` separates them fairly well,
/// `xception-multi` barely. Three frames per video around a per-video level.
fn tables() -> (Vec<FrameScoreRow>, Vec<VideoRow>, Vec<TrainedModelRow>) {
    let mut videos = Vec::new();
    let mut frames = Vec::new();
    for (split, count) in [("test", 12), ("val", 6)] {
        for i in 0..count {
            let fake = i % 2 == 0;
            let id = format!("{split}-{i:02}.mp4");
            videos.push(VideoRow {
                video_id: id.clone(),
                path: format!("/d/{id}"),
                label: Some(if fake { Label::Fake } else { Label::Real }),
                split: Some(split.into()),
                original: None,
                group: id.clone(),
                size_bytes: 1,
                modified_ms: 0,
            });
            for (m, (model, _)) in MODELS.iter().enumerate() {
                let spread = if m == 0 { 0.35 } else { 0.05 };
                let jitter = (i as f32 * 0.37).sin() * 0.2;
                let level = if fake { 0.5 + spread } else { 0.5 - spread } + jitter;
                for k in 0..3 {
                    frames.push(FrameScoreRow {
                        model: model.to_string(),
                        video_id: id.clone(),
                        sample_index: k,
                        frame_index: 15 * k as u64,
                        time_s: 0.5 * f64::from(k),
                        split: split.into(),
                        label: Some(if fake { Label::Fake } else { Label::Real }),
                        score: (level + 0.02 * k as f32).clamp(0.0, 1.0),
                    });
                }
            }
        }
    }
    let models = MODELS
        .iter()
        .map(|(name, parameters)| TrainedModelRow {
            model: name.to_string(),
            architecture: "x".into(),
            form: "single".into(),
            parameters: *parameters,
            epochs_run: 4,
            best_epoch: 3,
            averaged_from: None,
            best_val_loss: Some(0.4),
            initial_weights: dfd_schemas::InitialWeights::Seeded,
            onnx: vec![],
            weights: vec![],
        })
        .collect();
    (frames, videos, models)
}

fn history() -> Vec<EpochRow> {
    MODELS
        .iter()
        .flat_map(|(model, _)| {
            (1..=4).map(move |epoch| EpochRow {
                model: model.to_string(),
                epoch,
                train_loss: 0.7 / f64::from(epoch),
                train_accuracy: 0.5,
                val_loss: Some(0.6 / f64::from(epoch) + 0.05 * f64::from(epoch)),
                val_accuracy: Some(0.5),
                val_auc: None,
            })
        })
        .collect()
}

struct Rendered {
    metrics: Vec<MetricsRow>,
    files: Vec<dfd_schemas::ReportFileRow>,
}

fn rendered() -> Rendered {
    let (frames, videos, models) = tables();
    let (video_scores, metrics) = Aggregate::new(AggregateParams {
        bootstrap_resamples: 200,
        ..AggregateParams::default()
    })
    .compute(&frames, &videos, &models, &[])
    .unwrap();
    register_font(&font_path(None).expect("a font: apt-get install fonts-dejavu-core")).unwrap();
    let files = render(
        &ReportInput {
            metrics: &metrics,
            video_scores: &video_scores,
            history: &history(),
            frame_scores: &frames,
            provenance: None,
            gallery: &[],
        },
        &ReportParams::default(),
    )
    .unwrap();
    if let Some(dir) = std::env::var_os("DFD_REPORT_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        for f in &files {
            std::fs::write(std::path::Path::new(&dir).join(&f.name), &f.bytes).unwrap();
        }
    }
    Rendered { metrics, files }
}

fn text(r: &Rendered, name: &str) -> String {
    let file = r.files.iter().find(|f| f.name == name).unwrap();
    String::from_utf8(file.bytes.clone()).unwrap()
}

#[test]
fn every_file_is_rendered() {
    let r = rendered();
    let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
    for expected in [
        "summary.md",
        "summary.csv",
        "summary.parquet",
        "roc-test.png",
        "roc-val.png",
        "confusion-test.png",
        "confusion-val.png",
        "training-curves.png",
        "timeline-mesonet4-single-test.png",
        "timeline-mesonet4-single-val.png",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let batch = dfd_schemas::ReportFileRow::to_batch(&r.files).unwrap();
    dfd_schemas::ReportFileRow::TABLE.validate(&batch).unwrap();
}

#[test]
fn the_markdown_table_holds_each_model_and_baseline_with_its_numbers() {
    let r = rendered();
    let md = text(&r, "summary.md");
    let (frames, _, _) = tables();
    for (model, parameters) in MODELS {
        // The mean of each test video's frames, recomputed here from the frame table.
        let mut labels = Vec::new();
        let mut scores = Vec::new();
        for i in 0..12 {
            let id = format!("test-{i:02}.mp4");
            let own: Vec<f64> = frames
                .iter()
                .filter(|f| f.model == model && f.video_id == id)
                .map(|f| f64::from(f.score))
                .collect();
            labels.push(i % 2 == 0);
            scores.push(own.iter().sum::<f64>() / own.len() as f64);
        }
        let m = binary_metrics(&labels, &scores, 0.5).unwrap();
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| {model} |")))
            .unwrap_or_else(|| panic!("no row for {model} in\n{md}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let row = r
            .metrics
            .iter()
            .find(|x| {
                x.model == model && x.split == "test" && x.level == "video" && x.rule == "mean"
            })
            .unwrap();
        let digits = parameters
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(cells[2], digits);
        assert_eq!(cells[3], "12");
        assert_eq!(
            cells[4],
            format!(
                "{:.3} [{:.3}, {:.3}]",
                m.accuracy,
                row.accuracy_ci_low.unwrap(),
                row.accuracy_ci_high.unwrap()
            )
        );
        assert_eq!(cells[7], format!("{:.3}", m.f1.unwrap()));
        assert!(
            cells[8].starts_with(&format!("{:.3} [", m.roc_auc.unwrap())),
            "{line}"
        );
    }
    for baseline in ["always-fake (baseline)", "always-real (baseline)"] {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| {baseline} |")))
            .unwrap_or_else(|| panic!("no {baseline} row in\n{md}"));
        assert!(
            line.contains("| 0.500 ["),
            "6 of 12 test videos are FAKE: {line}"
        );
    }
    // Two models + two baselines, no other row in the first table.
    let first_table = md
        .split("\n\n")
        .find(|p| p.starts_with("| Model | Parameters"))
        .unwrap();
    assert_eq!(first_table.lines().count(), 2 + 4);
    assert!(
        md.contains("n = 12 labelled videos (6 FAKE, 6 REAL)"),
        "{md}"
    );
    assert!(md.contains("## Other splits"), "val rows are listed too");
}

#[test]
fn csv_and_parquet_hold_the_summary_rows() {
    let r = rendered();
    let csv = text(&r, "summary.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "model");
    assert!(header.contains(&"roc_auc_ci_high"));
    let models: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(
        models,
        [
            "mesonet4-single",
            "xception-multi",
            "always-fake",
            "always-real"
        ]
    );

    let parquet = r
        .files
        .iter()
        .find(|f| f.name == "summary.parquet")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.parquet");
    std::fs::write(&path, &parquet.bytes).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(MetricsRow::from_batch(&batch.unwrap()).unwrap());
    }
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].model, "mesonet4-single");
}

#[test]
fn every_png_decodes_to_a_plot() {
    let r = rendered();
    for f in r.files.iter().filter(|f| f.name.ends_with(".png")) {
        let decoder = png::Decoder::new(std::io::Cursor::new(&f.bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert!(
            info.width >= 600 && info.height >= 300,
            "{}: {}x{}",
            f.name,
            info.width,
            info.height
        );
        // Not a blank canvas: a good share of pixels is not white (axes, text, curves).
        let inked = pixels
            .chunks(3)
            .filter(|p| p.iter().any(|&v| v < 200))
            .count();
        assert!(inked * 200 > pixels.len() / 3, "{} looks blank", f.name);
    }
}
