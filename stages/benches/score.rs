//! Face crops per second of the `score` stage, split into its costs: decoding the stored PNG
//! crops (what `model_inputs::video_samples` does before scoring), turning them into the `f32`
//! batch, and ONNX Runtime inference (`ModelSession::score`, which includes that conversion) at
//! several batch sizes, with 2 ONNX Runtime threads; then the whole path from PNG to scores, and
//! the time a model takes to load. The target is 1,000 crops/s for MesoNet-4 on 2 cores.
//!
//! Models: MesoNet-4 and EfficientNetB0, single form, freshly initialised by `build_variant` and
//! exported with `export_onnx`: throughput does not depend on the weights, so no training is
//! needed (as in most trained models, every BatchNorm scale is positive, so MesoNet-4's BatchNorms
//! are folded into its convolutions, see `export::conv_relu_bn_pool`). `ModelSession::load` runs
//! MesoNet-4's first convolution on pairs of crops where the CPU has AVX-512
//! (`dfd_models::onnx::pairing`); `*_unpaired` is the graph as exported, for comparison.
//! Inputs: 64 real face crops, made the way the `crop` stage makes them (MTCNN on frames of a real
//! clip, the detected box resized to 224x224 with INTER_LINEAR, PNG at zlib level 1), so that the
//! PNG decoding is timed on the content and size it meets in a run.
//!
//! Decoding runs once on one thread and once on 2: the stage decodes videos in parallel on rayon,
//! then scores each video's frames in batches of `[score] batch_size`, so `*_end_to_end_*` does
//! the same.
//!
//! Needs vendor/mtcnn and vendor/media from `scripts/setup.sh`.
//! `cargo bench -p dfd-stages --bench score`

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dfd_models::{default_device, export_fresh_variant, Architecture, Form, ModelVariant};
use dfd_schemas::{FaceRow, TrainedModelRow};
use dfd_stages::crop::{CropParams, Region};
use dfd_stages::detect::{Mtcnn, MtcnnParams};
use dfd_stages::model_inputs::{fill_face_batch, video_samples, ModelSample};
use dfd_stages::score::ModelSession;
use ndarray::Array3;
use opencv::core::Mat;
use opencv::prelude::*;
use opencv::{imgproc, videoio};
use rayon::prelude::*;

const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/mtcnn");
const CLIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vendor/media/WolfgangLanger_Pexels.mp4"
);
/// Crops in the benchmark's set.
const BATCH: usize = 64;
/// The 2 cores the target is for.
const THREADS: usize = 2;
/// Frames between crops: 64 crops spread over most of the clip's 472 frames.
const FRAME_STEP: usize = 7;

/// `BATCH` face crops of the clip as the `crop` stage stores them (PNG, true RGB order).
fn face_crops() -> Vec<FaceRow> {
    let params = MtcnnParams {
        intra_op_threads: THREADS,
        ..MtcnnParams::default()
    };
    let mut mtcnn = Mtcnn::load(Path::new(WEIGHTS), &params).expect("MTCNN weights");
    let crop = CropParams::default();
    let mut capture = videoio::VideoCapture::from_file(CLIP, videoio::CAP_FFMPEG).expect("clip");
    let mut rows = Vec::with_capacity(BATCH);
    let mut bgr = Mat::default();
    let mut frame_index = 0usize;
    while rows.len() < BATCH && capture.read(&mut bgr).expect("reading the clip") {
        frame_index += 1;
        if !(frame_index - 1).is_multiple_of(FRAME_STEP) {
            continue;
        }
        let (w, h) = (bgr.cols() as u32, bgr.rows() as u32);
        let mut rgb = Mat::default();
        imgproc::cvt_color_def(&bgr, &mut rgb, imgproc::COLOR_BGR2RGB).expect("to RGB");
        let pixels = rgb.data_bytes().expect("contiguous frame").to_vec();
        let rgb = Array3::from_shape_vec((h as usize, w as usize, 3), pixels).expect("frame shape");
        let faces = mtcnn.detect(rgb.view()).expect("detection");
        let Some(face) = faces
            .iter()
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        else {
            continue;
        };
        let region = Region {
            x: face.x,
            y: face.y,
            width: face.width,
            height: face.height,
        };
        let Some((x, y, cw, ch)) = crop.region(&region, w, h) else {
            continue;
        };
        // The crop stage's own cut: resize to crop.size, PNG at its compression level.
        let image = crop.cut(&bgr, (x, y, cw, ch)).expect("crop");
        rows.push(FaceRow {
            video_id: "bench".into(),
            sample_index: rows.len() as u32,
            frame_index: (frame_index - 1) as u64,
            pts_ms: 0.0,
            face_index: 0,
            confidence: face.confidence,
            x,
            y,
            width: cw,
            height: ch,
            crop_width: crop.size,
            crop_height: crop.size,
            image: image.into(),
        });
    }
    assert_eq!(rows.len(), BATCH, "too few faces found in the clip");
    rows
}

fn model_row(architecture: Architecture) -> TrainedModelRow {
    let variant = ModelVariant {
        architecture,
        form: Form::Single,
    };
    TrainedModelRow {
        model: variant.name(),
        architecture: architecture.as_str().into(),
        form: Form::Single.as_str().into(),
        parameters: 0,
        epochs_run: 0,
        best_epoch: 0,
        averaged_from: None,
        best_val_loss: None,
        initial_weights: dfd_schemas::InitialWeights::Seeded,
        onnx: export_fresh_variant(variant, &default_device(), 1).expect("export"),
        weights: vec![],
    }
}

/// Scores `samples` in batches of `batch_size`, as the stage does within a video.
fn score_all(session: &mut ModelSession, samples: &[&ModelSample], batch_size: usize) -> Vec<f32> {
    samples
        .chunks(batch_size)
        .flat_map(|batch| session.score(batch).expect("scoring"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let faces = face_crops();
    let png_bytes: usize = faces.iter().map(|f| f.image.len()).sum();
    eprintln!(
        "{} crops, {:.1} KB of PNG each on average",
        faces.len(),
        png_bytes as f64 / faces.len() as f64 / 1024.0
    );
    let refs: Vec<&FaceRow> = faces.iter().collect();
    let samples = video_samples(&refs, &[], None).expect("decoding the crops");
    let sample_refs: Vec<&ModelSample> = samples.iter().collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("thread pool");

    let mut group = c.benchmark_group("score");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("png_decode_1thread", |b| {
        b.iter(|| video_samples(black_box(&refs), &[], None).expect("decode"))
    });
    group.bench_function("png_decode_2threads", |b| {
        // As the stage does it: videos in parallel, here two halves of the batch.
        b.iter(|| {
            pool.install(|| {
                refs.par_chunks(BATCH / THREADS)
                    .map(|chunk| video_samples(black_box(chunk), &[], None).expect("decode"))
                    .collect::<Vec<_>>()
            })
        })
    });
    group.bench_function("face_batch", |b| {
        let mut values = Vec::new();
        b.iter(|| fill_face_batch(black_box(&sample_refs), &mut values).expect("batch"))
    });
    for (architecture, batch_sizes) in [
        (Architecture::MesoNet4, &[4, 8, 16, 64][..]),
        (Architecture::EfficientNetB0, &[8, 64][..]),
    ] {
        let row = model_row(architecture);
        let mut session = ModelSession::load(&row, THREADS).expect("ONNX Runtime session");
        for &batch_size in batch_sizes {
            group.bench_function(format!("{}_infer_batch{batch_size}", row.model), |b| {
                b.iter(|| score_all(&mut session, black_box(&sample_refs), batch_size))
            });
        }
        if architecture == Architecture::MesoNet4 {
            // The graph as exported, without the scorer's pairing of crops (see
            // `dfd_models::onnx::pairing`; `ModelSession::load` pairs where the machine gains).
            let mut unpaired =
                ModelSession::load_with_block(&row, THREADS, None).expect("ONNX Runtime session");
            group.bench_function(format!("{}_infer_batch8_unpaired", row.model), |b| {
                b.iter(|| score_all(&mut unpaired, black_box(&sample_refs), 8))
            });
            // The stage's path from stored PNG to scores: decode on the 2 threads, then score.
            group.bench_function(format!("{}_end_to_end_batch8", row.model), |b| {
                b.iter(|| {
                    let decoded = pool.install(|| {
                        refs.par_chunks(BATCH / THREADS)
                            .map(|chunk| video_samples(black_box(chunk), &[], None))
                            .collect::<Result<Vec<_>, _>>()
                            .expect("decode")
                    });
                    let decoded: Vec<&ModelSample> = decoded.iter().flatten().collect();
                    score_all(&mut session, &decoded, 8)
                })
            });
        }
    }
    group.finish();

    // The stage loads each model once per shard (8 videos by default): the time that costs.
    let mut loads = c.benchmark_group("score_load");
    for architecture in [Architecture::MesoNet4, Architecture::EfficientNetB0] {
        let row = model_row(architecture);
        loads.bench_function(&row.model, |b| {
            b.iter(|| ModelSession::load(black_box(&row), THREADS).expect("session"))
        });
    }
    loads.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
