//! Self-blended training fakes (after Shiohara and Yamasaki, "Detecting Deepfakes with
//! Self-Blended Images", CVPR 2022): a REAL face blended with a slightly altered copy of itself
//! inside a feathered face mask, labelled FAKE.
//!
//! Why: a detector trained on a handful of people learns *who* is in a FAKE (this face on that
//! background) instead of *what was done* to it, and scores unseen people at chance. Measured on
//! demo set v2 (four training people): MesoNet-4 reached 0.96 training accuracy and chance on the
//! two test people. A self-blended face has the same identity as its REAL, so identity cannot
//! tell them apart; what differs is the blending itself (a seam where colour, contrast and detail
//! change, a slight misregistration of features), which is what every face swap leaves.
//!
//! The source copy is altered by a colour and contrast shift, one frequency change (blur,
//! resolution loss or sharpening) and a small scale and shift; the mask is an ellipse around the
//! crop's centre (where `crop` puts the face) with a jittered centre, size and shape, feathered
//! by a Gaussian and sometimes blended partly. Every draw comes from `(seed, epoch, sample key)`,
//! so the blend of a sample in an epoch is the same however the run was interrupted.
//!
//! Images are planar `CHW` floats in `[0, 1]` (what a batch is built from).

use serde::{Deserialize, Serialize};

use crate::augment::Transform;
use crate::rng::SplitMix64;

/// How many REAL training samples are self-blended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfBlendConfig {
    /// The share of REAL training samples replaced, each epoch, by their self-blend (labelled
    /// FAKE); each sample is drawn anew every epoch.
    pub share: f64,
}

/// Per-channel colour shift of the source, in 8-bit levels: enough for a visible seam at full
/// blend, no more than the Reinhard transfer of a real swap leaves.
const COLOR_SHIFT: f64 = 15.0 / 255.0;
/// Contrast factor range of the source, around mid-grey.
const CONTRAST: (f64, f64) = (0.9, 1.1);
/// Brightness shift of the source, in 8-bit levels.
const BRIGHTNESS: f64 = 10.0 / 255.0;
/// Blur sigma range of the source (px of the 224 crop).
const BLUR_SIGMA: (f64, f64) = (0.5, 1.5);
/// Resolution loss: the source shrunk to this share of its side and grown back.
const DOWNSCALE: (f64, f64) = (0.4, 0.8);
/// Unsharp-mask gain range of the source (radius 1 px).
const SHARPEN_GAIN: (f64, f64) = (0.5, 1.5);
/// Scale and shift of the source: a misregistration of a pixel or a few.
const SCALE: (f64, f64) = (0.96, 1.04);
const SHIFT: f64 = 0.02;
/// Mask half-axes as a share of the crop's half-side: covers the face box at crop margins from 0
/// (box = crop) to 0.5 (box = two thirds of the crop).
const MASK_AXIS: (f64, f64) = (0.55, 0.95);
/// Mask centre offset, as a share of the crop side.
const MASK_OFFSET: f64 = 0.05;
/// Feather sigma range of the mask's edge (px).
const FEATHER_SIGMA: (f64, f64) = (2.0, 10.0);
/// Blend ratios drawn from (partial blends teach faint seams).
const RATIOS: [f64; 5] = [0.5, 0.75, 1.0, 1.0, 1.0];

/// Names the stream of the choice (blend or not) and of the blend's draws.
const CHOICE_STREAM: u64 = 0x5B1_0001;
const BLEND_STREAM: u64 = 0x5B1_0002;

impl SelfBlendConfig {
    /// Whether REAL sample `key` is self-blended in `epoch`.
    pub fn chosen(&self, seed: u64, epoch: u32, key: u64) -> bool {
        SplitMix64::for_stream(&[seed, CHOICE_STREAM, u64::from(epoch), key]).next_f64()
            < self.share
    }

    /// Expected `(REAL, FAKE)` counts of an epoch once the blends are made, for class weights.
    pub fn effective_counts(&self, real: usize, fake: usize) -> (f64, f64) {
        let blended = real as f64 * self.share;
        (real as f64 - blended, fake as f64 + blended)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.share) {
            return Err(format!("share must be in [0, 1], got {}", self.share));
        }
        Ok(())
    }
}

/// The self-blend of a `3 x size x size` face for sample `key` in `epoch`.
pub fn self_blend(face: &[f32], size: usize, seed: u64, epoch: u32, key: u64) -> Vec<f32> {
    let mut rng = SplitMix64::for_stream(&[seed, BLEND_STREAM, u64::from(epoch), key]);
    let plane = size * size;
    let mut source = face.to_vec();
    let shifts = [0, 1, 2].map(|_| rng.uniform(-COLOR_SHIFT, COLOR_SHIFT));
    let contrast = rng.uniform(CONTRAST.0, CONTRAST.1);
    let brightness = rng.uniform(-BRIGHTNESS, BRIGHTNESS);
    for (c, shift) in shifts.iter().enumerate() {
        for v in &mut source[c * plane..(c + 1) * plane] {
            let x = (f64::from(*v) + shift - 0.5) * contrast + 0.5 + brightness;
            *v = x.clamp(0.0, 1.0) as f32;
        }
    }
    let kind = rng.below(3);
    let amount = rng.next_f64();
    for c in 0..3 {
        let p = &mut source[c * plane..(c + 1) * plane];
        let lerp = |(lo, hi): (f64, f64)| lo + (hi - lo) * amount;
        let changed = match kind {
            0 => gaussian_blur(p, size, lerp(BLUR_SIGMA)),
            1 => {
                let small = ((size as f64 * lerp(DOWNSCALE)).round() as usize).max(2);
                resize(&resize(p, size, small), small, size)
            }
            _ => {
                let low = gaussian_blur(p, size, 1.0);
                let gain = lerp(SHARPEN_GAIN) as f32;
                p.iter()
                    .zip(&low)
                    .map(|(v, l)| (v + gain * (v - l)).clamp(0.0, 1.0))
                    .collect()
            }
        };
        p.copy_from_slice(&changed);
    }
    let zoom = rng.uniform(SCALE.0, SCALE.1);
    let moved = Transform {
        shift_x: rng.uniform(-SHIFT, SHIFT),
        shift_y: rng.uniform(-SHIFT, SHIFT),
        zoom_x: zoom,
        zoom_y: zoom,
        ..Transform::IDENTITY
    };
    let source = moved.apply(&source, 3, size);
    let mask = feathered_ellipse(size, &mut rng);
    let mut out = face.to_vec();
    for c in 0..3 {
        for i in 0..plane {
            let m = mask[i];
            out[c * plane + i] = m * source[c * plane + i] + (1.0 - m) * face[c * plane + i];
        }
    }
    out
}

/// An ellipse around the centre (jittered), its edge blurred, scaled by a drawn blend ratio.
fn feathered_ellipse(size: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let half = size as f64 / 2.0;
    let cx = half + rng.uniform(-MASK_OFFSET, MASK_OFFSET) * size as f64;
    let cy = half + rng.uniform(-MASK_OFFSET, MASK_OFFSET) * size as f64;
    let ax = half * rng.uniform(MASK_AXIS.0, MASK_AXIS.1);
    // Faces are taller than wide: the vertical axis a little longer on average.
    let ay = half * rng.uniform(MASK_AXIS.0 + 0.05, MASK_AXIS.1 + 0.05);
    let sigma = rng.uniform(FEATHER_SIGMA.0, FEATHER_SIGMA.1);
    let ratio = RATIOS[rng.below(RATIOS.len())] as f32;
    let mut mask = vec![0.0f32; size * size];
    for row in 0..size {
        for col in 0..size {
            let (dx, dy) = ((col as f64 + 0.5 - cx) / ax, (row as f64 + 0.5 - cy) / ay);
            if dx * dx + dy * dy <= 1.0 {
                mask[row * size + col] = 1.0;
            }
        }
    }
    gaussian_blur(&mask, size, sigma)
        .into_iter()
        .map(|m| m * ratio)
        .collect()
}

/// A square plane blurred by a separable Gaussian of `sigma` px (radius 3 sigma, reflected edges).
fn gaussian_blur(plane: &[f32], size: usize, sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = {
        let raw: Vec<f64> = (-radius..=radius)
            .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
            .collect();
        let total: f64 = raw.iter().sum();
        raw.iter().map(|k| (k / total) as f32).collect()
    };
    let n = size as isize;
    let reflect = |i: isize| -> usize {
        let mut i = i;
        while i < 0 || i >= n {
            i = if i < 0 { -i - 1 } else { 2 * n - i - 1 };
        }
        i as usize
    };
    let mut across = vec![0.0f32; plane.len()];
    for row in 0..size {
        for col in 0..size {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                acc += w * plane[row * size + reflect(col as isize + k as isize - radius)];
            }
            across[row * size + col] = acc;
        }
    }
    let mut out = vec![0.0f32; plane.len()];
    for row in 0..size {
        for col in 0..size {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                acc += w * across[reflect(row as isize + k as isize - radius) * size + col];
            }
            out[row * size + col] = acc;
        }
    }
    out
}

/// A square plane of side `from` resized to side `to`, bilinearly with pixel centres aligned.
fn resize(plane: &[f32], from: usize, to: usize) -> Vec<f32> {
    let scale = from as f64 / to as f64;
    let max = (from - 1) as f64;
    let taps = |i: usize| {
        let x = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, max);
        let x0 = x.floor() as usize;
        (x0, (x0 + 1).min(from - 1), (x - x0 as f64) as f32)
    };
    let mut out = vec![0.0f32; to * to];
    for row in 0..to {
        let (y0, y1, fy) = taps(row);
        for col in 0..to {
            let (x0, x1, fx) = taps(col);
            let top = plane[y0 * from + x0] * (1.0 - fx) + plane[y0 * from + x1] * fx;
            let bottom = plane[y1 * from + x0] * (1.0 - fx) + plane[y1 * from + x1] * fx;
            out[row * to + col] = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: usize = 96;

    fn face() -> Vec<f32> {
        (0..3 * SIZE * SIZE)
            .map(|i| ((i * 7919) % 251) as f32 / 255.0)
            .collect()
    }

    #[test]
    fn the_blend_changes_the_centre_and_leaves_the_corners() {
        let f = face();
        for key in 0..20 {
            let out = self_blend(&f, SIZE, 1, 0, key);
            assert_eq!(out.len(), f.len());
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
            for c in 0..3 {
                let corner = c * SIZE * SIZE;
                assert!(
                    (out[corner] - f[corner]).abs() < 0.02,
                    "key {key}: corner moved"
                );
            }
            let centre = (SIZE / 2) * SIZE + SIZE / 2;
            let moved: f32 = (0..3)
                .map(|c| (out[c * SIZE * SIZE + centre] - f[c * SIZE * SIZE + centre]).abs())
                .sum();
            assert!(moved > 1e-3, "key {key}: centre unchanged");
        }
    }

    #[test]
    fn draws_are_a_function_of_seed_epoch_and_key() {
        let f = face();
        assert_eq!(self_blend(&f, SIZE, 1, 2, 3), self_blend(&f, SIZE, 1, 2, 3));
        assert_ne!(self_blend(&f, SIZE, 1, 2, 3), self_blend(&f, SIZE, 1, 3, 3));
        let config = SelfBlendConfig { share: 0.5 };
        let chosen = (0..1000).filter(|&k| config.chosen(7, 1, k)).count();
        assert!((400..600).contains(&chosen), "{chosen}");
        assert_eq!(config.effective_counts(100, 100), (50.0, 150.0));
    }

    #[test]
    fn blur_keeps_a_flat_plane_and_resize_round_trips_one() {
        let flat = vec![0.25f32; 16 * 16];
        assert!(gaussian_blur(&flat, 16, 2.0)
            .iter()
            .all(|v| (v - 0.25).abs() < 1e-6));
        assert!(resize(&resize(&flat, 16, 7), 7, 16)
            .iter()
            .all(|v| (v - 0.25).abs() < 1e-6));
    }
}
