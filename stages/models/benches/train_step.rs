//! Seconds per training step (forward, backward and Adam update of one batch of 16 faces at
//! 224x224) for MesoNet-4, Baseline and MobileNetV3Small in their single-input form, on the
//! default backend (burn's pure-Rust `flex`), 2 threads unless `RAYON_NUM_THREADS` says otherwise.
//! `bench/pytorch_train_step.py` times the same steps in PyTorch for comparison.
//!
//! What is timed is [`train`] itself, not a copy of its step: one epoch over `16 * iters`
//! synthetic samples, divided by criterion into `iters` steps. So the figure carries exactly what
//! a real run pays per batch (building the `f32` batch from 8-bit pixels, the focal loss with class
//! weights, reading the loss and logits back for the epoch's figures), plus the run's fixed
//! costs (copying the weights in and out, spread over the steps). Augmentation, validation and
//! checkpoints are off: they are not part of a step.
//!
//! `cargo bench -p dfd-models --bench train_step [-- mesonet4]`

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode,
};
use dfd_models::training::{train, TrainConfig, TrainSample, TrainingData};
use dfd_models::{
    build_variant, default_device, Architecture, Detector, Form, ModelVariant, VariantVisitor,
};

/// The reference study's batch size.
const BATCH: usize = 16;
/// Threads when `RAYON_NUM_THREADS` is unset: the 2 cores the figures are for.
const DEFAULT_THREADS: usize = 2;

/// Benchmarks training steps of whatever detector the variant builds.
struct StepBench<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    name: String,
}

impl VariantVisitor for StepBench<'_, '_> {
    type Output = ();

    fn visit<D: Detector>(self, detector: D) {
        let config = TrainConfig {
            max_epochs: 1,
            batch_size: BATCH,
            augment: None,
            ..TrainConfig::default()
        };
        // Criterion's flat sampling asks for the same `iters` every sample: build that epoch once.
        let mut data: Option<(u64, TrainingData)> = None;
        self.group.bench_function(self.name, |b| {
            b.iter_custom(|iters| {
                if data.as_ref().is_none_or(|(n, _)| *n != iters) {
                    let train = TrainSample::noise(BATCH * iters as usize, 0x9E37_79B9_7F4A_7C15);
                    data = Some((
                        iters,
                        TrainingData {
                            train,
                            validation: Vec::new(),
                        },
                    ));
                }
                let Some((_, data)) = data.as_ref() else {
                    unreachable!("built above")
                };
                let started = Instant::now();
                let outcome = train(detector.clone(), data, &config, None, &mut |_| {})
                    .expect("training on well-formed synthetic samples");
                let elapsed = started.elapsed();
                black_box(outcome.history);
                elapsed
            })
        });
    }
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Fails only if a pool exists already, and then that pool is what runs anyway.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(DEFAULT_THREADS)
            .build_global();
    }
    eprintln!(
        "train_step: {} rayon thread(s)",
        rayon::current_num_threads()
    );
    let device = default_device();
    let mut group = c.benchmark_group("train_step");
    // Steps take 0.5-4 s: ten samples of the fewest steps criterion allows is enough.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for architecture in [
        Architecture::MesoNet4,
        Architecture::Baseline,
        Architecture::MobileNetV3Small,
    ] {
        let variant = ModelVariant {
            architecture,
            form: Form::Single,
        };
        let visitor = StepBench {
            group: &mut group,
            name: format!("{}_batch{BATCH}", variant.name()),
        };
        build_variant(variant, &device, 1, visitor);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
