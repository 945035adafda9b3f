//! Matching the donor face's sharpness to the target's before blending.
//!
//! A face cut from other footage carries that footage's sharpness: a 720x480 phone clip pasted into
//! a 320x240 webcam clip is crisper than everything around it. A detector learns that in minutes
//! and learns nothing else, and it points the wrong way on the next dataset (demo set v1's fakes
//! did exactly this). So the donor, once warped to the target's face, is blurred or sharpened until
//! the variance of its Laplacian inside the face mask equals the target's there: the statistic the
//! report's `face sharpness` cue baseline measures, and the usual no-reference blur measure.

use opencv::core::{self, Mat, Size, CV_64F};
use opencv::imgproc;
use opencv::prelude::*;

use crate::error::{cv, Result};

/// Relative difference of Laplacian variance accepted as a match.
pub const TOLERANCE: f64 = 0.03;
/// The strongest blur tried (px): enough to bring a 720x480 face down to a 176x144 one.
const MAX_SIGMA: f64 = 4.0;
/// The strongest unsharp mask tried (gain of the high-pass added back); beyond it sharpening
/// amplifies the donor's own compression blocks more than it restores detail.
const MAX_GAIN: f64 = 3.0;
/// The radius of the unsharp mask's low-pass (px).
const UNSHARP_SIGMA: f64 = 1.0;
/// Bisection steps: 2^-12 of the parameter's range is far below what the tolerance needs.
const STEPS: usize = 12;

/// An edit of the donor by one parameter (blur sigma or sharpening gain).
type Edit = fn(&Mat, f64) -> Result<Mat>;

/// Variance of the Laplacian (OpenCV's 3x3 aperture) of the gray levels of a BGR image, inside
/// `mask` (8-bit, non-zero where counted).
pub fn laplacian_variance(bgr: &Mat, mask: &Mat) -> Result<f64> {
    let mut gray = Mat::default();
    imgproc::cvt_color_def(bgr, &mut gray, imgproc::COLOR_BGR2GRAY).map_err(cv("to gray"))?;
    let mut lap = Mat::default();
    imgproc::laplacian(
        &gray,
        &mut lap,
        CV_64F,
        1,
        1.0,
        0.0,
        core::BORDER_REFLECT_101,
    )
    .map_err(cv("Laplacian"))?;
    let (mut mean, mut std) = (Mat::default(), Mat::default());
    core::mean_std_dev(&lap, &mut mean, &mut std, mask).map_err(cv("mean_std_dev"))?;
    let sd = *std.at::<f64>(0).map_err(cv("read std"))?;
    Ok(sd * sd)
}

/// `donor` blurred (when sharper) or unsharp-masked (when softer) so that its Laplacian variance
/// inside `mask` is within [`TOLERANCE`] of `target`'s; as close as the bounds allow otherwise.
/// Both images are BGR 8-bit of one size.
pub fn match_sharpness(donor: &Mat, target: &Mat, mask: &Mat) -> Result<Mat> {
    let goal = laplacian_variance(target, mask)?;
    let start = laplacian_variance(donor, mask)?;
    if goal <= 0.0 || (start / goal - 1.0).abs() <= TOLERANCE {
        return donor.try_clone().map_err(cv("copy"));
    }
    // Both edits are monotone in their parameter: blur lowers the variance, sharpening raises it.
    let (edit, max): (Edit, f64) = if start > goal {
        (blur, MAX_SIGMA)
    } else {
        (sharpen, MAX_GAIN)
    };
    let lowers = start > goal;
    let (mut lo, mut hi) = (0.0, max);
    let mut best = edit(donor, hi)?;
    for _ in 0..STEPS {
        let mid = 0.5 * (lo + hi);
        let candidate = edit(donor, mid)?;
        let v = laplacian_variance(&candidate, mask)?;
        if (v / goal - 1.0).abs() <= TOLERANCE {
            return Ok(candidate);
        }
        // Too sharp still: more of a blur, less of a sharpening.
        if (v > goal) == lowers {
            lo = mid;
        } else {
            hi = mid;
            best = candidate;
        }
    }
    Ok(best)
}

fn blur(image: &Mat, sigma: f64) -> Result<Mat> {
    let mut out = Mat::default();
    imgproc::gaussian_blur(
        image,
        &mut out,
        Size::new(0, 0),
        sigma,
        sigma,
        core::BORDER_REFLECT_101,
    )
    .map_err(cv("gaussian_blur"))?;
    Ok(out)
}

/// `image + gain * (image - blur(image))`, saturated to 8 bits.
fn sharpen(image: &Mat, gain: f64) -> Result<Mat> {
    let low = blur(image, UNSHARP_SIGMA)?;
    let mut out = Mat::default();
    core::add_weighted(image, 1.0 + gain, &low, -gain, 0.0, &mut out, -1)
        .map_err(cv("add_weighted"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Scalar, CV_8U, CV_8UC3};

    /// A textured BGR image: a checkerboard of 3 px cells with a gradient.
    fn texture(blur_sigma: f64) -> Mat {
        let mut m = Mat::new_rows_cols_with_default(60, 60, CV_8UC3, Scalar::all(0.0)).unwrap();
        for r in 0..60 {
            for c in 0..60 {
                let v = if (r / 3 + c / 3) % 2 == 0 { 180 } else { 60 } as u8;
                let g = (v as i32 + r - 30).clamp(0, 255) as u8;
                *m.at_2d_mut::<core::Vec3b>(r, c).unwrap() = core::Vec3b::from([v, g, v]);
            }
        }
        if blur_sigma > 0.0 {
            blur(&m, blur_sigma).unwrap()
        } else {
            m
        }
    }

    fn mask() -> Mat {
        Mat::new_rows_cols_with_default(60, 60, CV_8U, Scalar::all(255.0)).unwrap()
    }

    #[test]
    fn a_sharper_donor_is_blurred_and_a_softer_one_sharpened_to_the_target() {
        let m = mask();
        for (donor, target) in [(texture(0.0), texture(1.2)), (texture(1.0), texture(0.6))] {
            let goal = laplacian_variance(&target, &m).unwrap();
            let before = laplacian_variance(&donor, &m).unwrap();
            assert!((before / goal - 1.0).abs() > 0.2, "{before} vs {goal}");
            let matched = match_sharpness(&donor, &target, &m).unwrap();
            let after = laplacian_variance(&matched, &m).unwrap();
            assert!((after / goal - 1.0).abs() <= TOLERANCE, "{after} vs {goal}");
        }
    }

    #[test]
    fn a_matching_donor_is_left_alone() {
        let t = texture(0.7);
        let out = match_sharpness(&t, &t, &mask()).unwrap();
        let diff = core::norm2(&out, &t, core::NORM_INF, &core::no_array()).unwrap();
        assert_eq!(diff, 0.0);
    }
}
