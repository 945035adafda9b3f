//! RGB to 8-bit gray exactly as OpenCV's `cvtColor(..., COLOR_RGB2GRAY)` does it on 8-bit input,
//! so that SSIM here agrees with a Python pipeline that converts its crops with OpenCV: a gray level
//! off by one on some pixels moves the map by more than the 1e-5 the kernel is held to.

use ndarray::{Array2, ArrayView3, Axis};

use super::SsimError;

/// OpenCV 4's weights for 8-bit RGB to gray (`RY15`, `GY15`, `BY15` with `gray_shift = 15` in
/// `imgproc/src/color.hpp`): BT.601 scaled by 2^15. Not the 2^14 `R2Y`/`G2Y`/`B2Y` (4899, 9617,
/// 1868) that the same header keeps for YUV and that write-ups often quote for gray: those disagree
/// with `cvtColor` on about 0.26% of colours by one level (RGB 0,0,250 is 28 in OpenCV, 29 with
/// them). They sum to exactly 2^15, so white stays 255 and no clamping is needed.
const R_WEIGHT: u32 = 9798;
const G_WEIGHT: u32 = 19235;
const B_WEIGHT: u32 = 3735;
const SHIFT: u32 = 15;

/// Gray level of one RGB pixel. OpenCV rounds half up (`CV_DESCALE`: add 2^14 before the shift)
/// rather than truncating.
#[inline]
pub fn gray_pixel(r: u8, g: u8, b: u8) -> u8 {
    let y = (r as u32 * R_WEIGHT + g as u32 * G_WEIGHT + b as u32 * B_WEIGHT + (1 << (SHIFT - 1)))
        >> SHIFT;
    // At most (255 * 2^15 + 2^14) >> 15 = 255, so the narrowing never wraps.
    y as u8
}

/// Converts an `H x W x 3` image to `H x W` gray. Channels are R, G, B, not OpenCV's native B, G,
/// R: a BGR buffer passed as is would weight blue as red. The only failure is a third axis that is
/// not 3 long.
pub fn rgb_to_gray(rgb: ArrayView3<u8>) -> Result<Array2<u8>, SsimError> {
    let (height, width, channels) = rgb.dim();
    if channels != 3 {
        return Err(SsimError::NotRgb { channels });
    }
    // A decoded frame is one packed buffer; walking it as a slice is about twice as fast as
    // indexing the view pixel by pixel, which remains the path for strided views.
    let mut gray = Array2::<u8>::zeros((height, width));
    if let (Some(packed), Some(out)) = (rgb.to_slice(), gray.as_slice_mut()) {
        for (out, px) in out.iter_mut().zip(packed.chunks_exact(3)) {
            *out = gray_pixel(px[0], px[1], px[2]);
        }
        return Ok(gray);
    }
    for (mut out, row) in gray.outer_iter_mut().zip(rgb.outer_iter()) {
        for (out, px) in out.iter_mut().zip(row.axis_iter(Axis(0))) {
            *out = gray_pixel(px[0], px[1], px[2]);
        }
    }
    Ok(gray)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use opencv::core::{Mat, MatTraitConstManual, Vec3b};
    use opencv::imgproc;

    #[test]
    fn primaries_and_extremes_match_opencv_values() {
        // (R*9798 + G*19235 + B*3735 + 16384) >> 15, worked by hand.
        assert_eq!(gray_pixel(255, 0, 0), 76);
        assert_eq!(gray_pixel(0, 255, 0), 150);
        assert_eq!(gray_pixel(0, 0, 255), 29);
        assert_eq!(gray_pixel(255, 255, 255), 255);
        assert_eq!(gray_pixel(0, 0, 0), 0);
        // 128 * 32768 + 16384 -> 128.5, truncated to 128.
        assert_eq!(gray_pixel(128, 128, 128), 128);
        // 100*9798 + 150*19235 + 200*3735 + 16384 = 4628534 -> 141.25.
        assert_eq!(gray_pixel(100, 150, 200), 141);
        // Where the 2^14 `R2Y` weights would give 29 and 7: 950134 -> 28.996 and 262144 -> 8.0.
        assert_eq!(gray_pixel(0, 0, 250), 28);
        assert_eq!(gray_pixel(0, 12, 4), 8);
    }

    #[test]
    fn channel_order_is_rgb_not_bgr() {
        let rgb = Array3::from_shape_vec((1, 2, 3), vec![255, 0, 0, 0, 0, 255]).unwrap();
        assert_eq!(
            rgb_to_gray(rgb.view()).unwrap().into_raw_vec_and_offset().0,
            [76, 29]
        );
    }

    #[test]
    fn strided_views_give_the_same_gray() {
        let rgb = Array3::from_shape_fn((5, 7, 3), |(i, j, c)| (i * 50 + j * 30 + c * 70) as u8);
        let packed = rgb_to_gray(rgb.view()).unwrap();
        // Every other column: not contiguous, so the element-wise path.
        let strided = rgb_to_gray(rgb.slice(ndarray::s![.., ..;2, ..])).unwrap();
        assert_eq!(strided, packed.slice(ndarray::s![.., ..;2]));
        for ((i, j), &g) in packed.indexed_iter() {
            let px = rgb.slice(ndarray::s![i, j, ..]);
            assert_eq!(g, gray_pixel(px[0], px[1], px[2]));
        }
    }

    #[test]
    fn rejects_other_channel_counts() {
        let rgba = Array3::<u8>::zeros((2, 2, 4));
        assert_eq!(
            rgb_to_gray(rgba.view()),
            Err(SsimError::NotRgb { channels: 4 })
        );
    }

    /// Every one of the 2^24 colours through the OpenCV this crate links (4.6), so the weights, the
    /// rounding and the channel order are checked against OpenCV itself, not against our formula.
    #[test]
    fn every_colour_matches_opencv_cvt_color() {
        const SIDE: usize = 4096;
        let rgb = Array3::from_shape_fn((SIDE, SIDE, 3), |(i, j, c)| {
            let colour = (i * SIDE + j) as u32;
            (colour >> (8 * (2 - c))) as u8
        });
        let ours = rgb_to_gray(rgb.view()).unwrap();

        let pixels: Vec<Vec3b> = rgb
            .as_slice()
            .unwrap()
            .chunks_exact(3)
            .map(|p| Vec3b::from([p[0], p[1], p[2]]))
            .collect();
        let src = Mat::new_rows_cols_with_data(SIDE as i32, SIDE as i32, &pixels).unwrap();
        let mut dst = Mat::default();
        imgproc::cvt_color_def(&src, &mut dst, imgproc::COLOR_RGB2GRAY).unwrap();
        let theirs = dst.data_bytes().unwrap();

        assert_eq!(theirs.len(), SIDE * SIDE);
        let first_mismatch = ours
            .as_slice()
            .unwrap()
            .iter()
            .zip(theirs)
            .position(|(a, b)| a != b)
            .map(|k| {
                (
                    k >> 16,
                    (k >> 8) & 255,
                    k & 255,
                    ours.as_slice().unwrap()[k],
                    theirs[k],
                )
            });
        // (r, g, b, ours, OpenCV's)
        assert_eq!(first_mismatch, None);
    }
}
