//! MesoNet-4 learns from real face crops: a few epochs of `train` on the demo set's crops lower
//! the validation loss. `learn.rs` checks the plumbing of the learning half; this checks that what
//! flows through it is learnable and learnt.
//!
//! The demo set puts each filmed person in its own split, so a validation split there asks a
//! detector to generalise to a new face from a handful of videos, which is no test of the training
//! loop. Here each person's REAL and FAKE videos are instead dealt alternately to `train` and
//! `val`: validation clips show the people of the training clips, in other takes, swapped with
//! other donors (mostly). The claim tested is the issue's: validation loss falls.
//!
//! It holds for the default `flex` backend and seed, which CI runs. On a hundred crops the outcome
//! still depends on the initial weights: built with the `tch` feature (libtorch draws different
//! seeded weights), the same run's training loss fell as here but its validation loss rose, from
//! 0.096 to 0.128.

use std::path::Path;

use dfd_schemas::{EpochRow, TableRow, TrainedModelRow};
use dfd_tests::Dfd;

/// Twenty-four demo videos (twelve REAL, twelve FAKE): the four training people of the demo set
/// have two pairs each, and each (person, label) is dealt alternately to train and val; the other
/// people's single pairs land in train. No test split.
fn dataset_split_within_people(dfd: &Dfd, out: &Path) {
    let mut dealt = std::collections::BTreeMap::<(String, String), usize>::new();
    dfd.demo_data_resplit(out, 48, 5, |entry| {
        let key = (entry["group"].to_string(), entry["label"].to_string());
        let n = dealt.entry(key).or_default();
        *n += 1;
        if *n % 2 == 1 {
            "train"
        } else {
            "val"
        }
    });
}

#[test]
fn validation_loss_falls_on_real_crops() {
    let dfd = Dfd::new();
    let root = tempfile::tempdir().unwrap();
    let dataset = root.path().join("demo");
    dataset_split_within_people(&dfd, &dataset);
    // Every face frame (the demo profile caps them at 8 a video), no augmentation: on about a
    // hundred training crops, eight epochs of the reference's focal loss and Adam.
    dfd.ok(&[
        "run",
        "--dataset",
        dataset.to_str().unwrap(),
        "--set",
        "train.models=[\"mesonet4-single\"]",
        "--set",
        "train.epochs=8",
        "--set",
        "train.patience=8",
        "--set",
        "train.augment=false",
        "--set",
        "train.max_frames_per_video=0",
    ]);

    let history: Vec<EpochRow> = dfd.rows("train", "training_history", EpochRow::from_batch);
    assert_eq!(history.len(), 8, "patience 8 never stops 8 epochs early");
    let val_loss: Vec<f64> = history
        .iter()
        .map(|e| e.val_loss.expect("a validation split"))
        .collect();
    eprintln!("validation loss by epoch: {val_loss:?}");
    let first = val_loss[0];
    let best = val_loss.iter().copied().fold(f64::INFINITY, f64::min);
    // Measured: 0.0706 after the first epoch, 0.0584 after the eighth.
    assert!(
        best <= 0.9 * first,
        "validation loss did not fall by a tenth: {val_loss:?}"
    );

    // The model kept is the epoch with the lowest validation loss, not the first.
    let models: Vec<TrainedModelRow> = dfd.rows("train", "models", TrainedModelRow::from_batch);
    assert_eq!(models.len(), 1);
    assert!(
        models[0].best_epoch > 1,
        "best epoch {}",
        models[0].best_epoch
    );
    assert_eq!(models[0].best_val_loss, Some(best));
}
