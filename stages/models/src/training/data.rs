//! The samples training reads, and how they become batches.
//!
//! Images are held as the 8-bit pixels the pipeline's PNGs decode to, and scaled to `[0, 1]` only
//! when a batch is built: a face is 150 KB as bytes and 600 KB as `f32`, and the whole training
//! split is held in memory. Decoding PNGs is the `train` stage's job, not this crate's.

use burn::tensor::{Device, Tensor, TensorData};

use super::TrainError;
use crate::augment::{AugmentConfig, Transform};
use crate::self_blend::{self_blend, SelfBlendConfig};
use crate::{Form, FACE_SIZE};

const PLANE: usize = FACE_SIZE * FACE_SIZE;

/// One training or validation example: a face crop of one frame, with what the multi-input
/// models also read.
#[derive(Clone, Debug)]
pub struct TrainSample {
    /// A stable identity of the sample (e.g. [`sample_key`] of its video and frame): the
    /// augmentation drawn for it depends on it, so it must not change between runs.
    pub key: u64,
    /// `224 x 224` RGB, interleaved (`HWC`, as a decoded PNG), 0-255.
    pub face: Vec<u8>,
    /// `224 x 224` grayscale SSIM map as stored (min-max scaled to 0-255); required by
    /// multi-input detectors, ignored by single-input ones.
    pub ssim_map: Option<Vec<u8>>,
    /// The video's SSIM mean and variance; required by multi-input detectors.
    pub ssim_stats: Option<[f32; 2]>,
    /// `true` for FAKE (label 1), `false` for REAL (label 0), as in the reference.
    pub is_fake: bool,
}

impl TrainSample {
    /// `n` face-only samples of deterministic noise (a 64-bit LCG from `seed`), alternately REAL
    /// and FAKE (so both class weights are 1): for the training-step benchmark and the GPU proof,
    /// which time the arithmetic, not the data.
    pub fn noise(n: usize, seed: u64) -> Vec<TrainSample> {
        let mut state = seed;
        (0..n)
            .map(|i| {
                let face = (0..3 * PLANE)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        (state >> 56) as u8
                    })
                    .collect();
                TrainSample {
                    key: i as u64,
                    face,
                    ssim_map: None,
                    ssim_stats: None,
                    is_fake: i % 2 == 1,
                }
            })
            .collect()
    }
}

/// The samples of one training run.
#[derive(Clone, Debug, Default)]
pub struct TrainingData {
    /// Fitted on, shuffled and (optionally) augmented every epoch.
    pub train: Vec<TrainSample>,
    /// Evaluated after every epoch, in order, never augmented; drives early stopping. May be
    /// empty, in which case early stopping watches the training loss.
    pub validation: Vec<TrainSample>,
}

/// A stable 64-bit key for the frame `frame_index` of video `video_id` (FNV-1a; the same on
/// every platform and version, unlike `std`'s hasher).
pub fn sample_key(video_id: &str, frame_index: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in video_id
        .as_bytes()
        .iter()
        .chain(&[0u8])
        .chain(&frame_index.to_le_bytes())
    {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl TrainingData {
    /// Checks that every sample has the sizes and inputs a detector of `form` needs, so that
    /// batching cannot fail half-way through a run.
    pub fn check(&self, form: Form) -> Result<(), TrainError> {
        if self.train.is_empty() {
            return Err(TrainError::NoTrainingSamples);
        }
        for (split, samples) in [("train", &self.train), ("validation", &self.validation)] {
            for (index, sample) in samples.iter().enumerate() {
                check_sample(sample, form).map_err(|problem| TrainError::BadSample {
                    split,
                    index,
                    key: sample.key,
                    problem,
                })?;
            }
        }
        Ok(())
    }

    /// `(REAL, FAKE)` counts of the training split.
    pub fn train_class_counts(&self) -> (usize, usize) {
        let fakes = self.train.iter().filter(|s| s.is_fake).count();
        (self.train.len() - fakes, fakes)
    }

    /// A digest of what the run trains on (keys, labels and split sizes, not pixels), stored in
    /// checkpoints so that a checkpoint is never resumed on other data.
    pub(crate) fn digest(&self) -> u64 {
        let mut words = vec![self.train.len() as u64, self.validation.len() as u64];
        for sample in self.train.iter().chain(&self.validation) {
            words.push(sample.key);
            words.push(u64::from(sample.is_fake));
        }
        crate::rng::mix_words(&words)
    }
}

fn check_sample(sample: &TrainSample, form: Form) -> Result<(), String> {
    if sample.face.len() != 3 * PLANE {
        return Err(format!(
            "face has {} bytes, expected {} (224x224 RGB)",
            sample.face.len(),
            3 * PLANE
        ));
    }
    if form == Form::Multi {
        match &sample.ssim_map {
            None => return Err("multi-input detector needs an SSIM map".into()),
            Some(map) if map.len() != PLANE => {
                return Err(format!(
                    "SSIM map has {} bytes, expected {PLANE}",
                    map.len()
                ))
            }
            Some(_) => {}
        }
        match sample.ssim_stats {
            None => return Err("multi-input detector needs SSIM statistics".into()),
            Some(stats) if !stats.iter().all(|v| v.is_finite()) => {
                return Err(format!("SSIM statistics are not finite: {stats:?}"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One batch, as host vectors, before it goes to the device.
pub(crate) struct HostBatch {
    pub(crate) len: usize,
    pub(crate) face: Vec<f32>,
    pub(crate) ssim_map: Option<Vec<f32>>,
    pub(crate) ssim_stats: Option<Vec<f32>>,
    /// 1.0 FAKE, 0.0 REAL.
    pub(crate) targets: Vec<f32>,
}

/// How a training batch is altered (validation batches are not): self-blends first, then the
/// geometric augmentation, on the face and its SSIM map alike.
pub(crate) struct Augmentation<'a> {
    pub(crate) config: Option<&'a AugmentConfig>,
    pub(crate) self_blend: Option<&'a SelfBlendConfig>,
    pub(crate) seed: u64,
    pub(crate) epoch: u32,
}

impl HostBatch {
    /// Builds the batch of `samples` (already validated by [`TrainingData::check`]).
    pub(crate) fn build(
        samples: &[&TrainSample],
        form: Form,
        augment: Option<&Augmentation>,
    ) -> Self {
        let multi = form == Form::Multi;
        let mut batch = HostBatch {
            len: samples.len(),
            face: Vec::with_capacity(samples.len() * 3 * PLANE),
            ssim_map: multi.then(|| Vec::with_capacity(samples.len() * PLANE)),
            ssim_stats: multi.then(|| Vec::with_capacity(samples.len() * 2)),
            targets: Vec::with_capacity(samples.len()),
        };
        for sample in samples {
            let transform = augment
                .and_then(|a| {
                    a.config
                        .map(|c| Transform::draw(c, a.seed, a.epoch, sample.key))
                })
                .filter(|t| *t != Transform::IDENTITY);
            let blended = !sample.is_fake
                && augment.is_some_and(|a| {
                    a.self_blend
                        .is_some_and(|b| b.chosen(a.seed, a.epoch, sample.key))
                });
            let mut face = hwc_to_chw(&sample.face, 3);
            if let (true, Some(a)) = (blended, augment) {
                // The blend works in `[0, 1]` (its colour and brightness ranges are in those
                // units); the models take pixel values.
                let unit: Vec<f32> = face.iter().map(|v| v / 255.0).collect();
                face = self_blend(&unit, FACE_SIZE, a.seed, a.epoch, sample.key)
                    .into_iter()
                    .map(|v| v * 255.0)
                    .collect();
            }
            batch.face.extend(match &transform {
                Some(t) => t.apply(&face, 3, FACE_SIZE),
                None => face,
            });
            if let (Some(maps), Some(map)) = (batch.ssim_map.as_mut(), sample.ssim_map.as_ref()) {
                let map = hwc_to_chw(map, 1);
                maps.extend(match &transform {
                    Some(t) => t.apply(&map, 1, FACE_SIZE),
                    None => map,
                });
            }
            if let (Some(stats), Some(values)) = (batch.ssim_stats.as_mut(), sample.ssim_stats) {
                stats.extend(values);
            }
            batch
                .targets
                .push(if sample.is_fake || blended { 1.0 } else { 0.0 });
        }
        batch
    }

    /// The model input on `device`.
    pub(crate) fn input(&self, device: &Device) -> crate::DetectorInput {
        let n = self.len;
        let face = Tensor::<4>::from_data(
            TensorData::new(self.face.clone(), [n, 3, FACE_SIZE, FACE_SIZE]),
            device,
        );
        let ssim_map = self.ssim_map.as_ref().map(|m| {
            Tensor::<4>::from_data(
                TensorData::new(m.clone(), [n, 1, FACE_SIZE, FACE_SIZE]),
                device,
            )
        });
        let ssim_stats = self
            .ssim_stats
            .as_ref()
            .map(|s| Tensor::<2>::from_data(TensorData::new(s.clone(), [n, 2]), device));
        crate::DetectorInput {
            face,
            ssim_map,
            ssim_stats,
        }
    }
}

/// `HWC` bytes to `CHW` floats, values unchanged: the models scale their pixels themselves
/// ([`crate::pixels`]).
fn hwc_to_chw(pixels: &[u8], channels: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; pixels.len()];
    let plane = pixels.len() / channels;
    for (i, value) in pixels.iter().enumerate() {
        out[(i % channels) * plane + i / channels] = f32::from(*value);
    }
    out
}
