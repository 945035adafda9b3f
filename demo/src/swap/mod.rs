//! A documented, deliberately classical face swap: how the FAKE clips of the demo set are made.
//! It is not a neural deepfake, but it is what a face swap does: another person's *moving* face
//! (the donor's own video frames, tracked with MTCNN) aligned, colour-matched and blended into the
//! target, frame by frame, as in FaceForensics++'s FaceSwap and DFDC's swaps.
//!
//! One frame:
//! 1. a similarity transform (least squares over the 5 MTCNN landmarks, [`transform::similarity`])
//!    maps the donor's landmarks onto the target's (jittered, see [`SwapParams::jitter`]);
//! 2. the donor frame is warped by it onto the target frame (bilinear), after a Gaussian
//!    anti-aliasing blur when the warp shrinks it, so a larger donor face is resampled to the
//!    target's resolution instead of aliased onto it;
//! 3. the warped donor is blurred or sharpened to the target face's sharpness
//!    ([`sharpness::match_sharpness`]): without this the FAKE's face is as sharp as the donor's
//!    footage, a cue that says "other footage", not "face swap";
//! 4. the mask is an ellipse on the target's face box scaled by [`SwapParams::mask_scale`];
//! 5. the donor's colours are moved toward the target's inside the mask (Reinhard transfer: per
//!    channel mean and standard deviation in Lab, weighted by [`SwapParams::color_strength`]);
//! 6. it is Poisson-blended in (`seamless_clone`, NORMAL_CLONE), then alpha-blended with a mask
//!    feathered by a Gaussian of [`SwapParams::blur_sigma`] so the clone's edge fades out.
//!
//! Everything here is a pure function of its input `Mat`s and parameters; randomness (which
//! parameters, which jitter) is the caller's, from its seed.

pub mod sharpness;
pub mod transform;

use dfd_stages::detect::Face;
use opencv::core::{self, Mat, Point, Scalar, Size, Vector, CV_32F, CV_8U};
use opencv::prelude::*;
use opencv::{imgproc, photo};
use serde::{Deserialize, Serialize};

pub use transform::{similarity, Points};

use crate::error::{cv, DemoError, Result};

/// A face in one frame: its box and 5 landmarks (left eye, right eye, nose, mouth left, mouth
/// right), in pixels of that frame; the same layout as `detect::Face` minus the confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceGeometry {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub landmarks: Points,
}

impl From<&Face> for FaceGeometry {
    fn from(f: &Face) -> FaceGeometry {
        FaceGeometry {
            x: f.x,
            y: f.y,
            width: f.width,
            height: f.height,
            landmarks: f.landmarks,
        }
    }
}

impl FaceGeometry {
    /// The geometry a fraction `t` (0..=1) of the way from `self` to `other`: landmarks are
    /// detected only every few frames, and the frames between take this linear interpolation, which
    /// is smooth where detection on every frame would flicker.
    pub fn lerp(&self, other: &FaceGeometry, t: f32) -> FaceGeometry {
        let mix = |a: f32, b: f32| a + (b - a) * t;
        let mut landmarks = self.landmarks;
        for (l, o) in landmarks.iter_mut().zip(&other.landmarks) {
            l[0] = mix(l[0], o[0]);
            l[1] = mix(l[1], o[1]);
        }
        FaceGeometry {
            x: mix(self.x, other.x),
            y: mix(self.y, other.y),
            width: mix(self.width, other.width),
            height: mix(self.height, other.height),
            landmarks,
        }
    }

    /// Distance between the eyes, the face's natural unit for jitter.
    pub fn eye_distance(&self) -> f32 {
        let [l, r] = [self.landmarks[0], self.landmarks[1]];
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }
}

/// The knobs of one fake, drawn per fake from the dataset's seed ([`SwapParams::from_unit`]) so
/// that the fakes are not all alike: a detector must not learn one fixed blur or one colour cast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SwapParams {
    /// Sigma of the Gaussian feathering the mask's edge, as a fraction of the face box's width:
    /// 0.02..=0.06. Below that the seam is a hard line no real fake shows; above, the feather
    /// (3 sigma) would reach past the face box into the background.
    pub blur_sigma: f32,
    /// How far the donor's Lab mean and standard deviation are moved to the target's: 0.5..=1.0
    /// (1 is the full Reinhard transfer). Less than full keeps a visible colour mismatch in some
    /// fakes, as real face swaps often have.
    pub color_strength: f32,
    /// The mask ellipse's half-axes as a multiple of half the face box: 0.80..=1.00. Under 0.8 the
    /// swap leaves the target's cheeks and mouth; the upper bound keeps the mask inside the box.
    pub mask_scale: f32,
    /// Per-frame landmark jitter, as a fraction of the eye distance: 0.0..=0.02 (at most ~1 px on a
    /// 60 px face). It imitates the frame-to-frame instability of real face-swap pipelines.
    pub jitter: f32,
}

impl SwapParams {
    pub const BLUR_SIGMA: (f32, f32) = (0.02, 0.06);
    pub const COLOR_STRENGTH: (f32, f32) = (0.5, 1.0);
    pub const MASK_SCALE: (f32, f32) = (0.80, 1.00);
    pub const JITTER: (f32, f32) = (0.0, 0.02);

    /// Parameters from four uniform draws in [0, 1), each mapped linearly onto its range.
    pub fn from_unit(u: [f64; 4]) -> SwapParams {
        let map = |(lo, hi): (f32, f32), u: f64| lo + (hi - lo) * u.clamp(0.0, 1.0) as f32;
        SwapParams {
            blur_sigma: map(Self::BLUR_SIGMA, u[0]),
            color_strength: map(Self::COLOR_STRENGTH, u[1]),
            mask_scale: map(Self::MASK_SCALE, u[2]),
            jitter: map(Self::JITTER, u[3]),
        }
    }

    /// Target landmarks moved by `offsets` (each coordinate in [-1, 1], from the caller's PRNG)
    /// times `jitter` eye distances.
    pub fn jittered(&self, face: &FaceGeometry, offsets: &Points) -> Points {
        let amplitude = self.jitter * face.eye_distance();
        let mut out = face.landmarks;
        for (p, o) in out.iter_mut().zip(offsets) {
            p[0] += o[0] * amplitude;
            p[1] += o[1] * amplitude;
        }
        out
    }
}

/// Pastes the donor's face onto `target` (both BGR 8-bit); returns the new frame. `target_points`
/// are the (possibly jittered) target landmarks the donor is aligned to; `target_face` gives the
/// mask's box. Pixels outside the mask ellipse are the target's, unchanged.
///
/// All the work is done on a region around the face (the clone's box plus the feather's reach):
/// outside it every step leaves the target as it is, and whole-frame warps, colour conversions and
/// blurs cost several times more on a 640x360 frame.
pub fn swap_face(
    target: &Mat,
    target_face: &FaceGeometry,
    target_points: &Points,
    donor: &Mat,
    donor_face: &FaceGeometry,
    params: &SwapParams,
) -> Result<Mat> {
    let size = target.size().map_err(cv("size"))?;
    if target.typ() != core::CV_8UC3 || donor.typ() != core::CV_8UC3 {
        return Err(DemoError::Invalid(
            "swap_face needs BGR 8-bit frames".into(),
        ));
    }
    let m = similarity(&donor_face.landmarks, target_points)
        .ok_or_else(|| DemoError::Invalid("degenerate donor landmarks".into()))?;

    // The mask: an ellipse on the face box, kept 3 px off the frame's edge (seamless_clone needs a
    // border of unmasked pixels around its region).
    let center = Point::new(
        (target_face.x + target_face.width / 2.0).round() as i32,
        (target_face.y + target_face.height / 2.0).round() as i32,
    );
    let axes = Size::new(
        ((target_face.width / 2.0 * params.mask_scale).round() as i32).max(2),
        ((target_face.height / 2.0 * params.mask_scale).round() as i32).max(2),
    );
    let mut mask = ellipse_mask(size, center, axes, 0)?;
    let rect = imgproc::bounding_rect(&mask).map_err(cv("bounding_rect"))?;
    if rect.width < 4 || rect.height < 4 {
        return Err(DemoError::Invalid("face mask is empty".into()));
    }
    let rect = grow_for_fast_dft(&mut mask, rect, size)?;
    let sigma = (params.blur_sigma * target_face.width).max(0.5);
    // Gaussian kernels reach 3 sigma (OpenCV's size for float images); 2 px more for rounding.
    let reach = (3.0 * sigma).ceil() as i32 + 2;
    let roi = core::Rect::new(
        rect.x - reach,
        rect.y - reach,
        rect.width + 2 * reach,
        rect.height + 2 * reach,
    ) & core::Rect::new(0, 0, size.width, size.height);
    let offset = Point::new(roi.x, roi.y);
    let target_roi = Mat::roi(target, roi)
        .map_err(cv("target region"))?
        .try_clone()
        .map_err(cv("copy"))?;
    let mask_roi = Mat::roi(&mask, roi)
        .map_err(cv("mask region"))?
        .try_clone()
        .map_err(cv("copy"))?;

    // The feather's core: an ellipse shrunk by 2 sigma, where the donor shows unmixed. Sharpness is
    // matched there, since that is where the donor's own footage would show.
    let shrink = (2.0 * sigma).round() as i32;
    let inner = Size::new((axes.width - shrink).max(1), (axes.height - shrink).max(1));
    let hard = ellipse_mask(roi.size(), center - offset, inner, 0)?;

    let warped = warp_into(donor, &m, roi)?;
    let matched = sharpness::match_sharpness(&warped, &target_roi, &hard)?;
    let colored = reinhard(&matched, &target_roi, &mask_roi, params.color_strength)?;

    // seamless_clone places the mask's bounding box (width - 1 by height - 1, as OpenCV measures
    // it) centred on `p`; this `p` puts it back exactly where it was cut from.
    let p = Point::new(
        rect.x - offset.x + (rect.width - 1) / 2,
        rect.y - offset.y + (rect.height - 1) / 2,
    );
    let mut cloned = Mat::default();
    photo::seamless_clone(
        &colored,
        &target_roi,
        &mask_roi,
        p,
        &mut cloned,
        photo::NORMAL_CLONE,
    )
    .map_err(cv("seamless_clone"))?;

    // Feather: the core ellipse blurred by sigma reaches ~0 at the clone's edge.
    let blended = feather_blend(&cloned, &target_roi, &hard, sigma)?;
    let mut out = target.try_clone().map_err(cv("copy"))?;
    let mut out_roi = Mat::roi_mut(&mut out, roi).map_err(cv("output region"))?;
    blended.copy_to(&mut out_roi).map_err(cv("paste"))?;
    Ok(out)
}

/// The donor warped by the 2x3 map `m` (donor to target frame), only over `roi` of the target.
/// When `m` shrinks (scale s < 1), the donor is first blurred by the Gaussian that band-limits it
/// to the target's sampling, sigma = 0.5 sqrt(1/s^2 - 1) donor pixels, as an image pyramid does;
/// bilinear sampling alone would alias its fine detail into false texture.
fn warp_into(donor: &Mat, m: &[[f64; 3]; 2], roi: core::Rect) -> Result<Mat> {
    let scale = (m[0][0] * m[0][0] + m[1][0] * m[1][0]).sqrt();
    let prefiltered;
    let donor = if scale < 0.95 {
        let sigma = 0.5 * (1.0 / (scale * scale) - 1.0).sqrt();
        let mut out = Mat::default();
        imgproc::gaussian_blur(
            donor,
            &mut out,
            Size::new(0, 0),
            sigma,
            sigma,
            core::BORDER_REFLECT_101,
        )
        .map_err(cv("anti-aliasing blur"))?;
        prefiltered = out;
        &prefiltered
    } else {
        donor
    };
    let mut shifted = *m;
    shifted[0][2] -= roi.x as f64;
    shifted[1][2] -= roi.y as f64;
    let m_mat = Mat::from_slice_2d(&shifted).map_err(cv("affine matrix"))?;
    let mut warped = Mat::default();
    imgproc::warp_affine(
        donor,
        &mut warped,
        &m_mat,
        roi.size(),
        imgproc::INTER_LINEAR,
        core::BORDER_REFLECT,
        Scalar::default(),
    )
    .map_err(cv("warp_affine"))?;
    Ok(warped)
}

/// `fg` over `bg` with alpha = `hard` (8-bit, 0 or 255) blurred by a Gaussian of `sigma`.
fn feather_blend(fg: &Mat, bg: &Mat, hard: &Mat, sigma: f32) -> Result<Mat> {
    let mut hard_f = Mat::default();
    hard.convert_to(&mut hard_f, CV_32F, 1.0 / 255.0, 0.0)
        .map_err(cv("convert mask"))?;
    let mut alpha = Mat::default();
    imgproc::gaussian_blur(
        &hard_f,
        &mut alpha,
        Size::new(0, 0),
        sigma as f64,
        sigma as f64,
        core::BORDER_CONSTANT,
    )
    .map_err(cv("gaussian_blur"))?;
    let mut beta = Mat::default();
    core::subtract(
        &Scalar::all(1.0),
        &alpha,
        &mut beta,
        &core::no_array(),
        CV_32F,
    )
    .map_err(cv("1 - alpha"))?;
    let mut out = Mat::default();
    imgproc::blend_linear(fg, bg, &alpha, &beta, &mut out).map_err(cv("blend_linear"))?;
    Ok(out)
}

/// Grows the mask's bounding box to a size whose Poisson solve is fast, by setting one pixel at
/// each of two opposite corners of the grown box; returns the new box. `seamless_clone` solves on
/// that box with DFTs of lengths 2(w - 1) and 2(h - 1), and OpenCV's DFT is fast only for lengths
/// whose prime factors are 2, 3 and 5: a 131 px box (length 260 = 4 x 5 x 13) took ~5x longer, and
/// was most of the demo dataset's build time. The corner pixels lie far outside the feathered
/// ellipse, where the final alpha is ~0, so they never show. A box that cannot grow inside the
/// frame's 3 px margin is left as it is.
fn grow_for_fast_dft(mask: &mut Mat, rect: core::Rect, size: Size) -> Result<core::Rect> {
    let fast = |len: i32| -> Result<i32> {
        Ok(core::get_optimal_dft_size(len - 1).map_err(cv("get_optimal_dft_size"))? + 1)
    };
    let (w, h) = (fast(rect.width)?, fast(rect.height)?);
    let margin = 3;
    if w > size.width - 2 * margin || h > size.height - 2 * margin {
        return Ok(rect);
    }
    let place = |start: i32, len: i32, grown: i32, room: i32| {
        (start - (grown - len) / 2).clamp(margin, room - margin - grown)
    };
    let x = place(rect.x, rect.width, w, size.width);
    let y = place(rect.y, rect.height, h, size.height);
    for (r, c) in [(y, x), (y + h - 1, x + w - 1)] {
        *mask.at_2d_mut::<u8>(r, c).map_err(cv("mask corner"))? = 255;
    }
    Ok(core::Rect::new(x, y, w, h))
}

/// A filled 8-bit ellipse mask of `size`, zero within `margin + 3` px of the frame's edge.
fn ellipse_mask(size: Size, center: Point, axes: Size, margin: i32) -> Result<Mat> {
    let mut mask = Mat::zeros_size(size, CV_8U)
        .and_then(|m| m.to_mat())
        .map_err(cv("mask"))?;
    imgproc::ellipse(
        &mut mask,
        center,
        axes,
        0.0,
        0.0,
        360.0,
        Scalar::all(255.0),
        -1,
        imgproc::LINE_8,
        0,
    )
    .map_err(cv("ellipse"))?;
    let border = margin + 3;
    let (w, h) = (size.width, size.height);
    for rect in [
        core::Rect::new(0, 0, w, border.min(h)),
        core::Rect::new(0, (h - border).max(0), w, border.min(h)),
        core::Rect::new(0, 0, border.min(w), h),
        core::Rect::new((w - border).max(0), 0, border.min(w), h),
    ] {
        imgproc::rectangle(&mut mask, rect, Scalar::all(0.0), -1, imgproc::LINE_8, 0)
            .map_err(cv("mask border"))?;
    }
    Ok(mask)
}

/// Reinhard colour transfer: `src`'s Lab channels, inside `mask`, moved to `reference`'s mean and
/// standard deviation there, by `strength` (0 = unchanged, 1 = full transfer). Lab because its
/// channels are close to decorrelated for natural images, so matching them one by one works.
pub fn reinhard(src: &Mat, reference: &Mat, mask: &Mat, strength: f32) -> Result<Mat> {
    let to_lab = |bgr: &Mat| -> Result<Mat> {
        let mut lab = Mat::default();
        imgproc::cvt_color(bgr, &mut lab, imgproc::COLOR_BGR2Lab, 0).map_err(cv("to Lab"))?;
        Ok(lab)
    };
    let stats = |lab: &Mat| -> Result<([f64; 3], [f64; 3])> {
        let (mut mean, mut std) = (Mat::default(), Mat::default());
        core::mean_std_dev(lab, &mut mean, &mut std, mask).map_err(cv("mean_std_dev"))?;
        let read = |m: &Mat| -> Result<[f64; 3]> {
            let mut out = [0.0; 3];
            for (i, v) in out.iter_mut().enumerate() {
                *v = *m.at::<f64>(i as i32).map_err(cv("read stats"))?;
            }
            Ok(out)
        };
        Ok((read(&mean)?, read(&std)?))
    };
    let src_lab = to_lab(src)?;
    let (mu_s, sd_s) = stats(&src_lab)?;
    let (mu_r, sd_r) = stats(&to_lab(reference)?)?;
    let mut channels = Vector::<Mat>::new();
    core::split(&src_lab, &mut channels).map_err(cv("split"))?;
    let mut moved = Vector::<Mat>::new();
    let s = strength as f64;
    for (c, channel) in channels.iter().enumerate() {
        let ratio = if sd_s[c] > 1e-6 {
            sd_r[c] / sd_s[c]
        } else {
            1.0
        };
        // x + s * ((x - mu_s) * ratio + mu_r - x), written as one linear map alpha * x + beta.
        let alpha = 1.0 - s + s * ratio;
        let beta = s * (mu_r[c] - mu_s[c] * ratio);
        let mut out = Mat::default();
        channel
            .convert_to(&mut out, CV_8U, alpha, beta)
            .map_err(cv("transfer"))?;
        moved.push(out);
    }
    let mut lab = Mat::default();
    core::merge(&moved, &mut lab).map_err(cv("merge"))?;
    let mut bgr = Mat::default();
    imgproc::cvt_color(&lab, &mut bgr, imgproc::COLOR_Lab2BGR, 0).map_err(cv("from Lab"))?;
    Ok(bgr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: [f64; 3]) -> Mat {
        let mut m = Mat::new_rows_cols_with_default(120, 160, core::CV_8UC3, Scalar::all(0.0))
            .expect("mat");
        m.set_to(
            &Scalar::new(value[0], value[1], value[2], 0.0),
            &core::no_array(),
        )
        .expect("fill");
        m
    }

    fn face() -> FaceGeometry {
        FaceGeometry {
            x: 50.0,
            y: 30.0,
            width: 60.0,
            height: 70.0,
            landmarks: [
                [65.0, 55.0],
                [95.0, 55.0],
                [80.0, 70.0],
                [68.0, 85.0],
                [92.0, 85.0],
            ],
        }
    }

    #[test]
    fn pixels_outside_the_mask_are_the_targets_and_the_face_changes() {
        let target = frame([40.0, 90.0, 160.0]);
        let mut donor = frame([200.0, 60.0, 30.0]);
        // Texture on the donor so that the Poisson blend has a gradient to carry over.
        imgproc::circle(
            &mut donor,
            Point::new(80, 65),
            12,
            Scalar::all(0.0),
            -1,
            imgproc::LINE_8,
            0,
        )
        .expect("circle");
        let params = SwapParams::from_unit([0.5; 4]);
        let f = face();
        let out = swap_face(&target, &f, &f.landmarks, &donor, &f, &params).expect("swap");
        let px = |m: &Mat, r: i32, c: i32| *m.at_2d::<core::Vec3b>(r, c).expect("px");
        assert_eq!(px(&out, 5, 5), px(&target, 5, 5));
        assert_eq!(px(&out, 65, 20), px(&target, 65, 20));
        let centre = px(&out, 65, 80);
        let diff: i32 = (0..3)
            .map(|c| (centre[c] as i32 - px(&target, 65, 80)[c] as i32).abs())
            .sum();
        assert!(diff > 30, "face unchanged: {centre:?}");
    }

    #[test]
    fn full_reinhard_matches_the_reference_mean() {
        let src = frame([200.0, 60.0, 30.0]);
        let reference = frame([40.0, 90.0, 160.0]);
        let mask =
            Mat::new_rows_cols_with_default(120, 160, CV_8U, Scalar::all(255.0)).expect("mask");
        let out = reinhard(&src, &reference, &mask, 1.0).expect("reinhard");
        let mean = core::mean(&out, &core::no_array()).expect("mean");
        for c in 0..3 {
            let want = [40.0, 90.0, 160.0][c];
            assert!((mean[c] - want).abs() < 4.0, "channel {c}: {}", mean[c]);
        }
    }

    #[test]
    fn params_stay_in_their_ranges() {
        for u in [[0.0; 4], [0.999; 4], [0.3, 0.9, 0.1, 0.5]] {
            let p = SwapParams::from_unit(u);
            assert!((0.02..=0.06).contains(&p.blur_sigma));
            assert!((0.5..=1.0).contains(&p.color_strength));
            assert!((0.8..=1.0).contains(&p.mask_scale));
            assert!((0.0..=0.02).contains(&p.jitter));
        }
    }
}
