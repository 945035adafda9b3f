//! Time of the bootstrap, the one costly part of `aggregate`: 1000 resamples of a test split of
//! 500 videos, at video level (one score each) and at frame level (20 frames each, the reference
//! study's sampling), as one metrics row of each costs.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dfd_stages::aggregate::{bootstrap_ci, BootstrapParams, Unit};

/// Half FAKE, scores spread by a fixed linear-congruential sequence.
fn units(videos: usize, frames: usize) -> Vec<Unit> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..videos)
        .map(|i| {
            let fake = i % 2 == 0;
            let scores = (0..frames)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                    if fake {
                        0.3 + 0.7 * u
                    } else {
                        0.7 * u
                    }
                })
                .collect();
            Unit {
                labels: vec![fake; frames],
                scores,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let params = BootstrapParams {
        resamples: 1000,
        seed: 0,
    };
    let mut group = c.benchmark_group("bootstrap_1000");
    group.sample_size(10);
    let video = units(500, 1);
    group.bench_function("500_videos_video_level", |b| {
        b.iter(|| bootstrap_ci(black_box(&video), 0.5, params))
    });
    let frame = units(500, 20);
    group.bench_function("500_videos_x_20_frames_frame_level", |b| {
        b.iter(|| bootstrap_ci(black_box(&frame), 0.5, params))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
