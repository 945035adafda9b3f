//! Fine-tuning a pretrained backbone: `freeze_backbone_epochs` holds the backbone's parameters
//! still while the head learns, `backbone_learning_rate` steps them at their own rate, and a
//! pretrained start is part of the training configuration's serialised form (the checkpoint key)
//! only when it is on.
//!
//! Needs the ImageNet weights that `scripts/setup.sh` fetches into `vendor/imagenet/`.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use dfd_models::arch::efficientnet_lite0::{EfficientNetLite0, IMAGENET_WEIGHTS};
use dfd_models::single::SingleInput;
use dfd_models::state_dict::StateDict;
use dfd_models::training::{
    init_seeded, sample_key, train, TrainConfig, TrainEvent, TrainSample, TrainingData,
};
use dfd_models::ArchitectureBackbone;
use dfd_models::FACE_SIZE;

fn weights_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(IMAGENET_WEIGHTS)
}

fn pretrained_single() -> SingleInput<EfficientNetLite0> {
    let weights =
        StateDict::open(&weights_path()).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"));
    init_seeded(&Device::flex(), 3, EfficientNetLite0::single)
        .try_map_backbone(|b| b.with_weights(&weights))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Grey noise faces; FAKE ones carry a bright square in the middle.
fn sample(index: u32, is_fake: bool) -> TrainSample {
    let mut state = u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let face = (0..FACE_SIZE * FACE_SIZE * 3)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (row, col) = (i / 3 / FACE_SIZE, i / 3 % FACE_SIZE);
            let patch = is_fake && (72..152).contains(&row) && (72..152).contains(&col);
            (64 + state % 96) as u8 + if patch { 90 } else { 0 }
        })
        .collect();
    TrainSample {
        key: sample_key(&format!("video{index}"), 0),
        face,
        ssim_map: None,
        ssim_stats: None,
        is_fake,
    }
}

fn data() -> TrainingData {
    TrainingData {
        train: (0..8).map(|i| sample(i, i % 2 == 0)).collect(),
        validation: (100..102).map(|i| sample(i, i % 2 == 0)).collect(),
    }
}

fn config(freeze: u32, backbone_learning_rate: Option<f64>) -> TrainConfig {
    TrainConfig {
        max_epochs: 1,
        batch_size: 8,
        augment: None,
        pretrained: true,
        freeze_backbone_epochs: freeze,
        backbone_learning_rate,
        ..TrainConfig::default()
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    let data = tensor.into_data();
    data.as_slice::<f32>().expect("float32").to_vec()
}

/// Largest change of the stem's convolution weights and of the last block's projection weights.
fn backbone_shift(before: &EfficientNetLite0, after: &EfficientNetLite0) -> f32 {
    let pairs = [
        (&before.stem.conv.weight, &after.stem.conv.weight),
        (
            &before.blocks[15].project.conv.weight,
            &after.blocks[15].project.conv.weight,
        ),
    ];
    pairs
        .into_iter()
        .flat_map(|(a, b)| {
            values(a.val())
                .into_iter()
                .zip(values(b.val()))
                .map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

fn trained(config: &TrainConfig) -> SingleInput<EfficientNetLite0> {
    let mut quiet = |_: TrainEvent| {};
    train(pretrained_single(), &data(), config, None, &mut quiet)
        .unwrap_or_else(|e| panic!("{e}"))
        .model
}

#[test]
fn a_frozen_backbone_stays_put_while_the_head_learns() {
    let start = pretrained_single();
    let frozen = trained(&config(1, None));
    assert_eq!(backbone_shift(start.backbone(), frozen.backbone()), 0.0);
    let p_start = values(start.forward(Tensor::ones([1, 3, 224, 224], &Device::flex())));
    let p_frozen = values(frozen.forward(Tensor::ones([1, 3, 224, 224], &Device::flex())));
    assert_ne!(p_start, p_frozen, "the head trained");

    let free = trained(&config(0, None));
    assert!(backbone_shift(start.backbone(), free.backbone()) > 0.0);
}

/// Adam's first step moves every parameter by about the learning rate, so a backbone stepped at
/// 1e-5 moves about a hundredth of one stepped at the default 1e-3.
#[test]
fn the_backbone_learning_rate_scales_the_backbone_steps() {
    let start = pretrained_single();
    let full = backbone_shift(start.backbone(), trained(&config(0, None)).backbone());
    let slow = backbone_shift(start.backbone(), trained(&config(0, Some(1e-5))).backbone());
    eprintln!("backbone moved {full:e} at 1e-3, {slow:e} at 1e-5");
    assert!(slow > 0.0 && slow < full / 10.0, "{slow} vs {full}");
}

#[test]
fn the_fine_tuning_settings_are_serialised_only_when_set() {
    let plain = serde_json::to_string(&TrainConfig::default()).expect("serialise");
    let tuned = serde_json::to_string(&config(2, Some(1e-4))).expect("serialise");
    for key in [
        "pretrained",
        "freeze_backbone_epochs",
        "backbone_learning_rate",
    ] {
        assert!(!plain.contains(key), "{key} in {plain}");
        assert!(tuned.contains(key), "{key} not in {tuned}");
    }
}
