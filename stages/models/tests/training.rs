//! The training loop: losses against hand-computed values, and whole runs that learn, repeat
//! bit for bit, and resume after a stop or a crash exactly where an uninterrupted run would be.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use dfd_models::arch::mesonet4::MesoNet4;
use dfd_models::pixels::PixelScaling;
use dfd_models::training::metrics::roc_auc;
use dfd_models::training::{
    balanced_class_weights, init_seeded, sample_key, train, EarlyStopping, LossKind, TrainConfig,
    TrainEvent, TrainOutcome, TrainSample, TrainingData,
};
use dfd_models::ArchitectureBackbone;
use dfd_models::{Detector, DetectorInput, ExportError, Form, FACE_SIZE};

// ---------------------------------------------------------------------------------------------
// Losses and metrics against hand-computed values.

const LN2: f64 = std::f64::consts::LN_2;

#[test]
fn focal_loss_matches_the_reference_formula_by_hand() {
    let focal = LossKind::REFERENCE_FOCAL;
    // z = 0: p = 0.5. FAKE: 0.25 * 0.5^2 * ln 2; REAL: 0.75 * 0.5^2 * ln 2.
    assert_close(focal.value(0.0, 1.0), 0.25 * 0.25 * LN2);
    assert_close(focal.value(0.0, 0.0), 0.75 * 0.25 * LN2);
    // z = 2, FAKE: p = 1 / (1 + e^-2) = 0.8807970779778823.
    let p = 0.880_797_077_977_882_3_f64;
    assert_close(focal.value(2.0, 1.0), -0.25 * (1.0 - p).powi(2) * p.ln());
    // z = 2, REAL: a confident mistake, weighted 0.75 * p^2.
    assert_close(focal.value(2.0, 0.0), -0.75 * p.powi(2) * (1.0 - p).ln());
}

#[test]
fn bce_matches_the_formula_and_stays_finite_far_out() {
    assert_close(LossKind::Bce.value(0.0, 1.0), LN2);
    assert_close(LossKind::Bce.value(2.0, 0.0), 2.0 + (-2.0f64).exp().ln_1p());
    // Where the probability rounds to 1 in f32 the logit form still gives the exact loss.
    assert_close(LossKind::Bce.value(50.0, 0.0), 50.0);
    assert_close(LossKind::Bce.value(-50.0, 0.0), (-50.0f64).exp());
    assert!(LossKind::REFERENCE_FOCAL.value(-80.0, 1.0).is_finite());
}

#[test]
fn the_tensor_loss_agrees_with_the_host_loss_and_applies_weights_per_sample() {
    let device = Device::flex();
    let logits = [-3.0f32, -0.5, 0.0, 1.5, 20.0];
    let targets = [0.0f32, 1.0, 1.0, 0.0, 1.0];
    let weights = [0.8f32, 1.5, 1.5, 0.8, 1.5];
    let col =
        |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [v.len(), 1]), &device);
    for loss in [LossKind::REFERENCE_FOCAL, LossKind::Bce] {
        let batch = loss
            .batch(col(&logits), col(&targets), col(&weights))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0];
        let expected: f64 = (0..5)
            .map(|i| {
                f64::from(weights[i]) * loss.value(f64::from(logits[i]), f64::from(targets[i]))
            })
            .sum::<f64>()
            / 5.0;
        assert!(
            (f64::from(batch) - expected).abs() < 1e-6,
            "{loss:?}: {batch} vs {expected}"
        );
    }
}

#[test]
fn balanced_class_weights_are_n_over_twice_the_class_count() {
    let (real, fake) = balanced_class_weights(20, 60);
    assert_close(real, 80.0 / 40.0);
    assert_close(fake, 80.0 / 120.0);
}

#[test]
fn auc_counts_ties_half_and_is_undefined_for_one_class() {
    // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75.
    assert_close(
        roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]).unwrap(),
        0.75,
    );
    // All scores tied: 0.5.
    assert_close(roc_auc(&[0.3; 4], &[0.0, 1.0, 0.0, 1.0]).unwrap(), 0.5);
    // roc_auc_score([0, 1, 0, 1, 1], [0.2, 0.2, 0.6, 0.6, 0.9]) = 0.6666…
    assert_close(
        roc_auc(&[0.2, 0.2, 0.6, 0.6, 0.9], &[0.0, 1.0, 0.0, 1.0, 1.0]).unwrap(),
        4.0 / 6.0,
    );
    assert_eq!(roc_auc(&[0.1, 0.9], &[1.0, 1.0]), None);
}

#[test]
fn early_stopping_waits_patience_epochs_after_the_best_one() {
    let mut stop = EarlyStopping::new(2);
    let verdicts: Vec<(bool, bool)> = [1.0, 0.8, 0.8, 0.9, 0.7, 0.75, 0.71]
        .iter()
        .enumerate()
        .map(|(i, loss)| {
            let v = stop.observe(i as u32 + 1, *loss);
            (v.improved, v.stop)
        })
        .collect();
    // An equal loss is no improvement (Keras, min_delta 0).
    assert_eq!(
        verdicts,
        [
            (true, false),
            (true, false),
            (false, false),
            (false, true),
            (true, false),
            (false, false),
            (false, true)
        ]
    );
    assert_eq!(stop.best_epoch, 5);
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

// ---------------------------------------------------------------------------------------------
// A tiny detector with what makes training state subtle: batch norm running statistics (saved
// and restored) and dropout (burn's backend generator).

#[derive(Module, Debug)]
struct TinyDetector {
    conv: Conv2d,
    pool: AvgPool2d,
    norm: BatchNorm,
    dropout: Dropout,
    dense: Linear,
}

/// Conv 3x3 stride 2 on 224 gives 111, the 14x14 pool 7.
const TINY_FEATURES: usize = 4 * 7 * 7;

impl TinyDetector {
    fn new(device: &Device) -> Self {
        TinyDetector {
            conv: Conv2dConfig::new([3, 4], [3, 3])
                .with_stride([2, 2])
                .init(device),
            pool: AvgPool2dConfig::new([14, 14]).with_strides([14, 14]).init(),
            norm: BatchNormConfig::new(TINY_FEATURES).init(device),
            dropout: DropoutConfig::new(0.3).init(),
            dense: LinearConfig::new(TINY_FEATURES, 1).init(device),
        }
    }
}

impl Detector for TinyDetector {
    fn form(&self) -> Form {
        Form::Single
    }

    fn forward_logits(&self, input: &DetectorInput) -> Tensor<2> {
        // Like every detector, it scales the pixel values it is given (`dfd_models::pixels`).
        let face = PixelScaling::UNIT.apply(input.face.clone());
        let x = self.pool.forward(relu(self.conv.forward(face)));
        let x: Tensor<2> = x.flatten(1, 3);
        self.dense
            .forward(self.dropout.forward(self.norm.forward(x)))
    }

    fn export_onnx(&self) -> Result<Vec<u8>, ExportError> {
        Err(ExportError::Unsupported {
            what: "TinyDetector".into(),
            why: "test model".into(),
        })
    }
}

/// Every float parameter and buffer of `model`, in visiting order.
fn weights<M: Module>(model: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

// ---------------------------------------------------------------------------------------------
// Synthetic but learnable faces: noise, and on FAKE faces a brighter square near the centre.

fn synthetic_sample(index: u32, is_fake: bool, with_ssim: bool) -> TrainSample {
    let mut state = u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 96) as u8
    };
    let mut face = vec![0u8; FACE_SIZE * FACE_SIZE * 3];
    for (i, px) in face.iter_mut().enumerate() {
        let (row, col) = (i / 3 / FACE_SIZE, i / 3 % FACE_SIZE);
        let patch = is_fake && (72..152).contains(&row) && (72..152).contains(&col);
        *px = 64 + noise() + if patch { 90 } else { 0 };
    }
    let ssim_map = with_ssim.then(|| {
        (0..FACE_SIZE * FACE_SIZE)
            .map(|i| (i % 251) as u8)
            .collect()
    });
    TrainSample {
        key: sample_key(&format!("video{}", index / 4), index % 4),
        face,
        ssim_map,
        ssim_stats: with_ssim.then_some([0.8, 0.01]),
        is_fake,
    }
}

/// `train` samples (3 FAKE for every 2 REAL, so class weights matter) and `validation` ones.
fn synthetic_data(train: u32, validation: u32, with_ssim: bool) -> TrainingData {
    let make = |range: std::ops::Range<u32>| {
        range
            .map(|i| synthetic_sample(i, i % 5 >= 2, with_ssim))
            .collect::<Vec<_>>()
    };
    TrainingData {
        train: make(0..train),
        validation: make(1000..1000 + validation),
    }
}

fn tiny_config(max_epochs: u32) -> TrainConfig {
    TrainConfig {
        max_epochs,
        batch_size: 8,
        learning_rate: 3e-3,
        seed: 11,
        ..TrainConfig::default()
    }
}

fn tiny_model(seed: u64) -> TinyDetector {
    init_seeded(&Device::flex(), seed, TinyDetector::new)
}

fn quiet(_: TrainEvent) {}

// ---------------------------------------------------------------------------------------------
// Whole runs.

#[test]
fn a_tiny_detector_learns_the_synthetic_task() {
    let data = synthetic_data(40, 20, false);
    let config = tiny_config(10);
    let outcome = train(tiny_model(1), &data, &config, None, &mut quiet).unwrap();
    for e in &outcome.history {
        eprintln!(
            "epoch {:2}: train loss {:.4} acc {:.2} | val loss {:.4} acc {:.2} auc {:.3}",
            e.epoch,
            e.train_loss,
            e.train_accuracy,
            e.val_loss.unwrap(),
            e.val_accuracy.unwrap(),
            e.val_auc.unwrap()
        );
    }
    // Chance level: the loss of a model that always says p = 0.5.
    let chance = data
        .validation
        .iter()
        .map(|s| config.loss.value(0.0, if s.is_fake { 1.0 } else { 0.0 }))
        .sum::<f64>()
        / data.validation.len() as f64;
    let first = &outcome.history[0];
    let last = outcome.history.last().unwrap();
    let best = &outcome.history[outcome.best_epoch as usize - 1];
    assert_eq!(outcome.epochs_run, 10);
    assert!(
        last.train_loss < 0.5 * first.train_loss,
        "{first:?} -> {last:?}"
    );
    let best_loss = outcome.best_val_loss.unwrap();
    assert!(
        best_loss < 0.6 * chance,
        "best validation loss {best_loss}, chance {chance}"
    );
    assert!(best_loss < first.val_loss.unwrap());
    assert!(best.val_auc.unwrap() > 0.95, "{best:?}");
}

#[test]
fn the_same_seed_gives_bit_identical_weights_and_history() {
    let data = synthetic_data(24, 8, false);
    let config = tiny_config(2);
    let a = train(tiny_model(5), &data, &config, None, &mut quiet).unwrap();
    let b = train(tiny_model(5), &data, &config, None, &mut quiet).unwrap();
    assert_eq!(weights(&a.model), weights(&b.model));
    assert_eq!(losses(&a.history), losses(&b.history));
    let other_seed = TrainConfig { seed: 12, ..config };
    let c = train(tiny_model(5), &data, &other_seed, None, &mut quiet).unwrap();
    assert_ne!(weights(&a.model), weights(&c.model));
}

#[test]
fn stopping_and_resuming_equals_an_uninterrupted_run() {
    let data = synthetic_data(24, 8, false);
    let dirs = tempdir();
    let straight_dir = dirs.path().join("straight");
    let straight = train(
        tiny_model(3),
        &data,
        &tiny_config(4),
        Some(&straight_dir),
        &mut quiet,
    )
    .unwrap();

    // Two epochs, then the limit raised to four on the same directory. The second call starts
    // from other initial weights: everything must come from the checkpoint.
    let resumed_dir = dirs.path().join("resumed");
    train(
        tiny_model(3),
        &data,
        &tiny_config(2),
        Some(&resumed_dir),
        &mut quiet,
    )
    .unwrap();
    let (resumed, resumed_from) = resume(tiny_model(99), &data, &tiny_config(4), &resumed_dir);
    assert_eq!(resumed_from, Some(2));
    assert_same_run(&straight, &resumed);
    assert_eq!(
        weights(&straight_final(&straight_dir)),
        weights(&straight_final(&resumed_dir))
    );
}

#[test]
fn a_crash_mid_epoch_loses_only_that_epoch() {
    let data = synthetic_data(24, 8, false);
    let dirs = tempdir();
    let straight = train(tiny_model(4), &data, &tiny_config(4), None, &mut quiet).unwrap();

    let dir = dirs.path().join("crashing");
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        train(
            tiny_model(4),
            &data,
            &tiny_config(4),
            Some(&dir),
            &mut |e| {
                if let TrainEvent::Batch {
                    epoch: 3, batch: 2, ..
                } = e
                {
                    panic!("simulated crash in epoch 3");
                }
            },
        )
    }));
    assert!(crashed.is_err());
    let (resumed, resumed_from) = resume(tiny_model(77), &data, &tiny_config(4), &dir);
    assert_eq!(resumed_from, Some(2));
    assert_same_run(&straight, &resumed);
}

#[test]
fn a_checkpoint_of_another_configuration_is_refused() {
    let data = synthetic_data(8, 0, false);
    let dirs = tempdir();
    let dir = dirs.path().join("ckpt");
    train(
        tiny_model(1),
        &data,
        &tiny_config(1),
        Some(&dir),
        &mut quiet,
    )
    .unwrap();
    let other = TrainConfig {
        learning_rate: 1e-4,
        ..tiny_config(2)
    };
    let err = train(tiny_model(1), &data, &other, Some(&dir), &mut quiet).unwrap_err();
    assert!(err.to_string().contains("training configuration"), "{err}");
}

#[test]
fn mesonet4_trains_in_both_forms() {
    let device = Device::flex();
    let config = TrainConfig {
        max_epochs: 1,
        ..TrainConfig::default()
    };
    let data = synthetic_data(16, 4, true);
    let single = init_seeded(&device, 1, MesoNet4::single);
    let outcome = train(single, &data, &config, None, &mut quiet).unwrap();
    assert!(outcome.history[0].train_loss.is_finite());
    let multi = init_seeded(&device, 1, MesoNet4::multi);
    let outcome = train(multi, &data, &config, None, &mut quiet).unwrap();
    assert!(outcome.history[0].val_loss.unwrap().is_finite());
}

/// `average_from_epoch`: the kept weights are the mean of the weights after each epoch from
/// that one on (parameters and batch-norm statistics), and a run stopped inside the averaged
/// epochs resumes to the same mean.
#[test]
fn averaging_keeps_the_mean_of_the_last_epochs_and_resumes_to_it() {
    let data = synthetic_data(24, 8, false);
    let config = |epochs| TrainConfig {
        average_from_epoch: 2,
        ..tiny_config(epochs)
    };
    let dirs = tempdir();
    // The weights after each epoch, from plain runs of 1, 2, 3 and 4 epochs: a run's weights
    // after epoch k do not depend on its epoch limit.
    let after: Vec<Vec<Vec<f32>>> = (1..=4)
        .map(|epochs| {
            let dir = dirs.path().join(format!("plain-{epochs}"));
            train(
                tiny_model(3),
                &data,
                &tiny_config(epochs),
                Some(&dir),
                &mut quiet,
            )
            .unwrap();
            weights(&straight_final(&dir))
        })
        .collect();
    let averaged = train(tiny_model(3), &data, &config(4), None, &mut quiet).unwrap();
    assert_eq!(averaged.averaged_from, Some(2));
    assert_eq!((averaged.epochs_run, averaged.best_epoch), (4, 4));
    let mean = weights(&averaged.model);
    for (t, tensor) in mean.iter().enumerate() {
        for (i, &value) in tensor.iter().enumerate() {
            let expected = (after[1][t][i] + after[2][t][i] + after[3][t][i]) / 3.0;
            assert!(
                (value - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                "tensor {t} element {i}: {value} vs {expected}"
            );
        }
    }
    assert_ne!(mean, after[3], "the mean is not the last epoch's weights");
    assert!(averaged.best_val_loss.is_some(), "the mean is validated");

    let resumed_dir = dirs.path().join("resumed");
    train(
        tiny_model(3),
        &data,
        &config(3),
        Some(&resumed_dir),
        &mut quiet,
    )
    .unwrap();
    let (resumed, resumed_from) = resume(tiny_model(99), &data, &config(4), &resumed_dir);
    assert_eq!(resumed_from, Some(3));
    assert_same_run(&averaged, &resumed);
    assert_eq!(resumed.averaged_from, Some(2));

    // Averaging from an epoch the run never reaches keeps the best epoch's weights.
    let short = train(tiny_model(3), &data, &config(1), None, &mut quiet);
    assert_eq!(short.map(|o| o.averaged_from).ok(), Some(None));
}

fn losses(history: &[dfd_models::training::EpochStats]) -> Vec<(f64, f64, Option<f64>)> {
    history
        .iter()
        .map(|e| (e.train_loss, e.train_accuracy, e.val_loss))
        .collect()
}

/// `train` on the checkpoints in `dir`, with the epoch count it said it resumed after (`None`:
/// it started afresh).
fn resume(
    model: TinyDetector,
    data: &TrainingData,
    config: &TrainConfig,
    dir: &Path,
) -> (TrainOutcome<TinyDetector>, Option<u32>) {
    let mut resumed_from = None;
    let outcome = train(model, data, config, Some(dir), &mut |e| {
        if let TrainEvent::Resumed { epochs_done } = e {
            resumed_from = Some(epochs_done);
        }
    })
    .unwrap();
    (outcome, resumed_from)
}

fn assert_same_run<D: Detector>(
    a: &dfd_models::training::TrainOutcome<D>,
    b: &dfd_models::training::TrainOutcome<D>,
) {
    assert_eq!(losses(&a.history), losses(&b.history));
    assert_eq!((a.epochs_run, a.best_epoch), (b.epochs_run, b.best_epoch));
    assert_eq!(a.best_val_loss, b.best_val_loss);
    assert_eq!(weights(&a.model), weights(&b.model));
}

/// The last epoch's weights as checkpointed in `dir`.
fn straight_final(dir: &Path) -> TinyDetector {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    let file = meta["model_file"].as_str().unwrap();
    tiny_model(0).valid().load_file(dir.join(file))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
