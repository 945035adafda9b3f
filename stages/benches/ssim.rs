//! Time of one 224x224 SSIM pair, the size of a face crop; the target is under 2 ms on one core,
//! so that SSIM stays a small fraction of a video's processing next to decoding and detection.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dfd_stages::ssim::{rgb_to_gray, structural_similarity};
use ndarray::{Array2, Array3};

/// Deterministic noise: random content defeats no shortcut, and the kernel has none to defeat.
fn noise(h: usize, w: usize, seed: u64) -> Array2<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Array2::from_shape_fn((h, w), |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 56) as u8
    })
}

fn bench(c: &mut Criterion) {
    let a = noise(224, 224, 1);
    let b = noise(224, 224, 2);
    let mut group = c.benchmark_group("ssim");
    group.throughput(Throughput::Elements(1));
    group.bench_function("structural_similarity_224x224", |bench| {
        bench.iter(|| structural_similarity(black_box(a.view()), black_box(b.view())))
    });
    let rgb = Array3::from_shape_fn((224, 224, 3), |(i, j, c)| (i * 7 + j * 3 + c * 51) as u8);
    group.bench_function("rgb_to_gray_224x224", |bench| {
        bench.iter(|| rgb_to_gray(black_box(rgb.view())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
