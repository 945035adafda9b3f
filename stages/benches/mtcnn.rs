//! Frames per second of the whole MTCNN cascade on one frame of a real clip, at its native 640x360
//! and upscaled to 1920x1080, with `intra_op_threads = 2` and otherwise the default parameters. The
//! target is 25 frames/s at 1080p on 2 cores, so that detection keeps up with decoding.
//!
//! Needs vendor/mtcnn and vendor/media from `scripts/setup.sh`.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dfd_stages::detect::{Mtcnn, MtcnnParams};
use ndarray::Array3;
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::{imgproc, videoio};

const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/mtcnn");
const CLIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vendor/media/WolfgangLanger_Pexels.mp4"
);
/// A frame well into the clip, past any fade-in.
const FRAME_INDEX: usize = 100;

/// Frame `FRAME_INDEX` of the clip as RGB, resized (INTER_LINEAR) to `width x height`.
fn frame(width: i32, height: i32) -> Array3<u8> {
    let mut capture = videoio::VideoCapture::from_file(CLIP, videoio::CAP_FFMPEG).unwrap();
    let mut bgr = Mat::default();
    for _ in 0..=FRAME_INDEX {
        assert!(capture.read(&mut bgr).unwrap(), "clip too short");
    }
    let mut resized = Mat::default();
    imgproc::resize(
        &bgr,
        &mut resized,
        Size::new(width, height),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )
    .unwrap();
    let mut rgb = Mat::default();
    imgproc::cvt_color(&resized, &mut rgb, imgproc::COLOR_BGR2RGB, 0).unwrap();
    let bytes = rgb.data_bytes().unwrap().to_vec();
    Array3::from_shape_vec((height as usize, width as usize, 3), bytes).unwrap()
}

fn bench(c: &mut Criterion) {
    let params = MtcnnParams {
        intra_op_threads: 2,
        ..MtcnnParams::default()
    };
    let mut mtcnn = Mtcnn::load(Path::new(WEIGHTS), &params).unwrap();
    let mut group = c.benchmark_group("mtcnn");
    group.throughput(Throughput::Elements(1));
    for (w, h) in [(640, 360), (1920, 1080)] {
        let rgb = frame(w, h);
        let faces = mtcnn.detect(rgb.view()).unwrap();
        eprintln!("{w}x{h}: {} face(s): {faces:?}", faces.len());
        group.bench_function(format!("detect_{w}x{h}"), |b| {
            b.iter(|| mtcnn.detect(black_box(rgb.view())).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
