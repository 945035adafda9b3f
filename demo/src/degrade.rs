//! The per-pair degradations of [`Degradation`], applied to a REAL frame and the same frame of its
//! FAKE alike: whatever they do to image statistics, they do to both, so they vary across pairs and
//! never within one.

use dfd_models::rng::SplitMix64;
use opencv::core::{self, Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::error::{cv, DemoError, Result};
use crate::plan::Degradation;

/// Names the noise stream of one frame: `(noise seed, NOISE_STREAM, frame index)`.
const NOISE_STREAM: u64 = 0x4015E;

/// Degrades `frames` (BGR 8-bit, one size) in place as `d` says; `index` is the frame's position in
/// the clip, which picks its noise.
pub fn apply(d: &Degradation, frames: &mut [&mut Mat], index: usize) -> Result<()> {
    for frame in frames.iter_mut() {
        if let Some(factor) = d.downscale {
            **frame = downscale(frame, factor)?;
        }
        if let Some(sigma) = d.blur_sigma {
            let mut out = Mat::default();
            imgproc::gaussian_blur(
                &**frame,
                &mut out,
                Size::new(0, 0),
                sigma,
                sigma,
                core::BORDER_REFLECT_101,
            )
            .map_err(cv("degradation blur"))?;
            **frame = out;
        }
    }
    if let Some(sigma) = d.noise_sigma {
        add_noise(frames, sigma, d.noise_seed, index)?;
    }
    Ok(())
}

/// Shrunk by `factor` with area averaging, then grown back to its size bilinearly: the detail a
/// lower resolution loses, at the clip's own size.
fn downscale(frame: &Mat, factor: f64) -> Result<Mat> {
    let size = frame.size().map_err(cv("size"))?;
    let small_size = Size::new(
        ((size.width as f64 * factor).round() as i32).max(1),
        ((size.height as f64 * factor).round() as i32).max(1),
    );
    let mut small = Mat::default();
    imgproc::resize(frame, &mut small, small_size, 0.0, 0.0, imgproc::INTER_AREA)
        .map_err(cv("downscale"))?;
    let mut out = Mat::default();
    imgproc::resize(&small, &mut out, size, 0.0, 0.0, imgproc::INTER_LINEAR)
        .map_err(cv("upscale"))?;
    Ok(out)
}

/// Adds the same zero-mean noise of standard deviation `sigma` grey levels to every frame, pixel by
/// pixel and channel by channel, saturating at 0 and 255. Each sample is the sum of four uniform
/// draws (Irwin-Hall), Gaussian to the eye and to any detector at these amplitudes, and drawn from
/// the workspace's own generator so the bytes are the same on every machine and OpenCV version.
fn add_noise(frames: &mut [&mut Mat], sigma: f64, seed: u64, index: usize) -> Result<()> {
    let Some(first) = frames.first() else {
        return Ok(());
    };
    let len = first.total() * first.channels() as usize;
    let mut rng = SplitMix64::for_stream(&[seed, NOISE_STREAM, index as u64]);
    // Four 16-bit uniforms sum to mean 2 * 65535, variance 4 * 65536^2 / 12.
    let scale = sigma / (65536.0 * (4.0f64 / 12.0).sqrt());
    let noise: Vec<i16> = (0..len)
        .map(|_| {
            let r = rng.next_u64();
            let sum: i64 = (0..4).map(|k| ((r >> (16 * k)) & 0xFFFF) as i64).sum();
            ((sum - 2 * 65535) as f64 * scale).round() as i16
        })
        .collect();
    for frame in frames.iter_mut() {
        if frame.total() * frame.channels() as usize != len || !frame.is_continuous() {
            return Err(DemoError::Invalid(
                "a pair's frames differ in size or layout".into(),
            ));
        }
        let bytes = frame.data_bytes_mut().map_err(cv("frame bytes"))?;
        for (b, n) in bytes.iter_mut().zip(&noise) {
            *b = (i16::from(*b) + n).clamp(0, 255) as u8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Scalar, CV_8UC3};

    fn degradation() -> Degradation {
        Degradation {
            downscale: Some(0.6),
            blur_sigma: Some(0.8),
            noise_sigma: Some(3.0),
            crf: 23,
            noise_seed: 9,
        }
    }

    fn frame(value: f64) -> Mat {
        let mut m = Mat::new_rows_cols_with_default(48, 64, CV_8UC3, Scalar::all(value)).unwrap();
        for c in 0..64 {
            *m.at_2d_mut::<core::Vec3b>(20, c).unwrap() = core::Vec3b::from([250, 250, 250]);
        }
        m
    }

    #[test]
    fn equal_frames_stay_equal_and_the_noise_has_its_sigma() {
        let (mut a, mut b) = (frame(100.0), frame(100.0));
        apply(&degradation(), &mut [&mut a, &mut b], 4).unwrap();
        let diff = core::norm2(&a, &b, core::NORM_INF, &core::no_array()).unwrap();
        assert_eq!(diff, 0.0);
        // Noise alone on a flat frame: its standard deviation is sigma.
        let mut flat =
            Mat::new_rows_cols_with_default(100, 100, CV_8UC3, Scalar::all(128.0)).unwrap();
        let noise_only = Degradation {
            downscale: None,
            blur_sigma: None,
            ..degradation()
        };
        apply(&noise_only, &mut [&mut flat], 0).unwrap();
        let (mut mean, mut std) = (Mat::default(), Mat::default());
        core::mean_std_dev(&flat, &mut mean, &mut std, &core::no_array()).unwrap();
        let sd = *std.at::<f64>(0).unwrap();
        assert!((sd - 3.0).abs() < 0.2, "{sd}");
    }

    #[test]
    fn the_noise_differs_from_frame_to_frame() {
        let (mut a, mut b) = (frame(100.0), frame(100.0));
        apply(&degradation(), &mut [&mut a], 1).unwrap();
        apply(&degradation(), &mut [&mut b], 2).unwrap();
        let diff = core::norm2(&a, &b, core::NORM_INF, &core::no_array()).unwrap();
        assert!(diff > 0.0);
    }
}
