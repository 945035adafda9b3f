//! OpenCV's INTER_AREA downscale (`cv::resize` on 8-bit pixels, both ratios >= 1, not both
//! integers), re-implemented for the image pyramid and the frame previews, and the weight table it
//! shares with the f64 crops of [`crate::detect`].
//!
//! Every P-Net level is resized from the whole frame, so at 640x360 these resizes took an eighth of
//! the preprocessing's CPU. OpenCV's `ResizeArea_Invoker` reduces a source row horizontally once per
//! destination row it falls in (twice for a row a boundary cuts), converting each byte to float as
//! it goes, tap by tap through a table. [`area_u8`] performs the same float operations in the same
//! order (the f32 weights of `computeResizeAreaTab`, each destination pixel summed left to right
//! from zero, rows weighted and summed top to bottom, the sum rounded half to even and saturated), so
//! the bytes are identical (the unit test checks against OpenCV itself), but converts each source
//! row once, reduces it once, and adds the three channels of a pixel as one vector.
//!
//! The other cases (same size, integer ratios, enlarging) are OpenCV's other algorithms:
//! [`resize_area`], what callers use, leaves those to OpenCV.

use opencv::core::{Mat, Size, Vec3b};
use opencv::imgproc;
use opencv::prelude::*;

/// OpenCV's ratio for a dimension, `1 / (dst / src)`, which can differ from `src / dst` in the
/// last bit.
pub fn opencv_scale(src: usize, dst: usize) -> f64 {
    1.0 / (dst as f64 / src as f64)
}

/// Whether OpenCV counts a ratio as an integer (its test for the block-mean path).
pub fn is_integer(scale: f64) -> bool {
    (scale - scale.round()).abs() < f64::EPSILON
}

/// One entry of OpenCV's `DecimateAlpha` table: source index, destination index, weight.
pub struct Tap {
    pub src: usize,
    pub dst: usize,
    pub weight: f32,
}

/// `computeResizeAreaTab`: the weights are computed in f64 and stored as f32, as OpenCV does.
pub fn taps(src_size: usize, dst_size: usize, scale: f64) -> Vec<Tap> {
    let mut tab = Vec::with_capacity(src_size * 2);
    let ssize = src_size as f64;
    for dx in 0..dst_size {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell = scale.min(ssize - fsx1);
        let sx2 = (fsx2.floor() as i64).min(src_size as i64 - 1);
        let sx1 = (fsx1.ceil() as i64).min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            let weight = ((sx1 as f64 - fsx1) / cell) as f32;
            tab.push(Tap {
                src: (sx1 - 1) as usize,
                dst: dx,
                weight,
            });
        }
        for sx in sx1..sx2 {
            let weight = (1.0 / cell) as f32;
            tab.push(Tap {
                src: sx as usize,
                dst: dx,
                weight,
            });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            let weight = ((fsx2 - sx2 as f64).min(1.0).min(cell) / cell) as f32;
            tab.push(Tap {
                src: sx2 as usize,
                dst: dx,
                weight,
            });
        }
    }
    tab
}

/// The horizontal taps of every destination pixel: `len` consecutive source pixels from
/// `src[dx]`, with weights `weights[dx * len..(dx + 1) * len]`. A pixel with fewer taps than the
/// longest is padded with zero weights after its own: adding `p * 0 = +0` to a non-negative sum
/// leaves it unchanged, and a loop of one fixed count per row is a loop the processor predicts.
struct RowTaps {
    len: usize,
    src: Vec<usize>,
    weights: Vec<Lanes>,
}

/// A pixel's three channels as floats, and a fourth lane so that a pixel is one vector.
type Lanes = [f32; 4];

/// An H x W x 3 image, rows contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub pixels: &'a [u8],
    pub height: usize,
    pub width: usize,
}

/// `frame` resized to `height x width` by INTER_AREA, the bytes `cv::resize` gives: by [`area_u8`]
/// where it applies, else by OpenCV itself, writing straight into the returned buffer.
pub fn resize_area(frame: Image, height: usize, width: usize) -> opencv::Result<Vec<u8>> {
    if let Some(pixels) = area_u8(frame, height, width) {
        return Ok(pixels);
    }
    let side = |v: usize| {
        i32::try_from(v).map_err(|_| {
            opencv::Error::new(
                opencv::core::StsOutOfRange,
                format!("side {v} is too large"),
            )
        })
    };
    let src = Mat::new_rows_cols_with_bytes::<Vec3b>(
        side(frame.height)?,
        side(frame.width)?,
        frame.pixels,
    )?;
    let size = Size::new(side(width)?, side(height)?);
    let mut out = vec![0u8; height * width * 3];
    let expected = out.as_ptr();
    // A destination of the requested size and type is not reallocated (checked below, since a
    // reallocation would silently leave `out` blank).
    let mut dst = Mat::new_rows_cols_with_bytes_mut::<Vec3b>(size.height, size.width, &mut out)?;
    imgproc::resize(&src, &mut dst, size, 0.0, 0.0, imgproc::INTER_AREA)?;
    if dst.data() != expected {
        return Err(opencv::Error::new(
            opencv::core::StsInternal,
            "resize reallocated its destination".to_string(),
        ));
    }
    drop(dst);
    Ok(out)
}

/// `frame` resized to `height x width` as OpenCV's INTER_AREA would, or `None` where OpenCV would
/// not take its weighted-area path (or the pixels are not `frame.height x frame.width x 3`).
pub fn area_u8(frame: Image, height: usize, width: usize) -> Option<Vec<u8>> {
    if frame.pixels.len() != frame.height * frame.width * 3 {
        return None;
    }
    if height == 0 || width == 0 {
        return None;
    }
    let scale_x = opencv_scale(frame.width, width);
    let scale_y = opencv_scale(frame.height, height);
    if scale_x < 1.0 || scale_y < 1.0 || (is_integer(scale_x) && is_integer(scale_y)) {
        return None;
    }
    let row_taps = row_taps(&taps(frame.width, width, scale_x), width);
    let ytab = taps(frame.height, height, scale_y);

    // The current source row as floats (zeros after it, where padding taps read); that row
    // reduced to the destination's width; the weighted sum of the destination row's source rows
    // so far.
    let mut line = vec![0f32; (frame.width + row_taps.len) * 3 + 1];
    let mut reduced = vec![Lanes::default(); width];
    let mut sum = vec![Lanes::default(); width];
    let mut out = vec![0u8; height * width * 3];
    let mut reduced_row = None;
    let mut prev_dy = ytab.first().map_or(0, |t| t.dst);
    for &Tap { src, dst, weight } in &ytab {
        // A source row a destination boundary cuts comes twice in a row; its reduction is the
        // same both times.
        if reduced_row != Some(src) {
            reduced_row = Some(src);
            let row = &frame.pixels[src * frame.width * 3..][..frame.width * 3];
            for (f, &p) in line.iter_mut().zip(row) {
                *f = f32::from(p);
            }
            match row_taps.len {
                2 => reduce_row_of::<2>(&line, &row_taps, &mut reduced),
                3 => reduce_row_of::<3>(&line, &row_taps, &mut reduced),
                4 => reduce_row_of::<4>(&line, &row_taps, &mut reduced),
                _ => reduce_row(&line, &row_taps, &mut reduced),
            }
        }
        if dst != prev_dy {
            write_row(&sum, &mut out[prev_dy * width * 3..][..width * 3]);
            for (s, r) in sum.iter_mut().zip(&reduced) {
                for c in 0..4 {
                    s[c] = weight * r[c];
                }
            }
            prev_dy = dst;
        } else {
            for (s, r) in sum.iter_mut().zip(&reduced) {
                for c in 0..4 {
                    s[c] += weight * r[c];
                }
            }
        }
    }
    write_row(&sum, &mut out[prev_dy * width * 3..][..width * 3]);
    Some(out)
}

/// The horizontal taps by destination pixel (OpenCV's table lists a pixel's taps together, from
/// consecutive source pixels, in increasing order), each weight repeated in four lanes.
fn row_taps(xtab: &[Tap], width: usize) -> RowTaps {
    let mut by_pixel: Vec<(usize, Vec<f32>)> = Vec::with_capacity(width);
    for tap in xtab {
        match by_pixel.get_mut(tap.dst) {
            Some((src, weights)) => {
                debug_assert_eq!(*src + weights.len(), tap.src);
                weights.push(tap.weight);
            }
            None => by_pixel.push((tap.src, vec![tap.weight])),
        }
    }
    debug_assert_eq!(by_pixel.len(), width);
    let len = by_pixel.iter().map(|(_, w)| w.len()).max().unwrap_or(1);
    let mut taps = RowTaps {
        len,
        src: Vec::with_capacity(width),
        weights: Vec::with_capacity(width * len),
    };
    for (src, weights) in by_pixel {
        taps.src.push(src);
        let padding = len - weights.len();
        taps.weights.extend(weights.into_iter().map(|w| [w; 4]));
        taps.weights.extend(std::iter::repeat_n([0.0; 4], padding));
    }
    taps
}

/// One source row reduced to the destination's width: each pixel's taps summed from zero, left to
/// right (`buf[dx] + S[sx] * alpha`, per channel).
fn reduce_row(line: &[f32], taps: &RowTaps, reduced: &mut [Lanes]) {
    let len = taps.len;
    let pixels = reduced.iter_mut().zip(&taps.src);
    for ((acc, &src), ws) in pixels.zip(taps.weights.chunks_exact(len)) {
        let line = &line[src * 3..(src + len) * 3 + 1];
        let mut lanes = Lanes::default();
        for (i, w) in ws.iter().enumerate() {
            let p: &Lanes = line[i * 3..i * 3 + 4].try_into().expect("four lanes");
            for c in 0..4 {
                lanes[c] += p[c] * w[c];
            }
        }
        *acc = lanes;
    }
}

/// [`reduce_row`] for `N` taps a pixel, unrolled (the largest pyramid levels have 2 or 3).
fn reduce_row_of<const N: usize>(line: &[f32], taps: &RowTaps, reduced: &mut [Lanes]) {
    let pixels = reduced.iter_mut().zip(&taps.src);
    for ((acc, &src), ws) in pixels.zip(taps.weights.chunks_exact(N)) {
        let line = &line[src * 3..src * 3 + 3 * N + 1];
        let mut lanes = Lanes::default();
        for i in 0..N {
            let p: &Lanes = line[i * 3..i * 3 + 4].try_into().expect("four lanes");
            for c in 0..4 {
                lanes[c] += p[c] * ws[i][c];
            }
        }
        *acc = lanes;
    }
}

/// A destination row: `saturate_cast<uchar>` of each sum, i.e. rounded half to even (adding and
/// taking away 2^23 leaves a non-negative f32 below 2^22 rounded so, in the default rounding mode)
/// and clamped (`as` saturates).
fn write_row(sum: &[Lanes], out: &mut [u8]) {
    const ROUND: f32 = 8_388_608.0;
    for (px, s) in out.chunks_exact_mut(3).zip(sum) {
        for c in 0..3 {
            px[c] = ((s[c] + ROUND) - ROUND) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opencv_area(frame: Image, height: usize, width: usize) -> Vec<u8> {
        let src = Mat::new_rows_cols_with_bytes::<Vec3b>(
            frame.height as i32,
            frame.width as i32,
            frame.pixels,
        )
        .unwrap();
        let mut dst = Mat::default();
        let size = Size::new(width as i32, height as i32);
        imgproc::resize(&src, &mut dst, size, 0.0, 0.0, imgproc::INTER_AREA).unwrap();
        dst.data_bytes().unwrap().to_vec()
    }

    fn noise(len: usize, mut state: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect()
    }

    /// Equal to OpenCV to the byte: the pyramid levels of common frame sizes, and random sizes
    /// and ratios; the cases OpenCV handles otherwise are declined.
    #[test]
    fn area_downscale_is_bit_exact_with_opencv() {
        let mut cases: Vec<((usize, usize), (usize, usize))> = Vec::new();
        for (h, w) in [(360, 640), (1080, 1920), (180, 320), (212, 284), (448, 672)] {
            let mut scale = 0.6f64;
            while (h.min(w) as f64 * scale) >= 12.0 {
                let level = (
                    (h as f64 * scale).ceil() as usize,
                    (w as f64 * scale).ceil() as usize,
                );
                cases.push(((h, w), level));
                scale *= 0.709;
            }
        }
        let mut state = 7u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..300 {
            let (h, w) = (1 + next(120), 1 + next(160));
            cases.push(((h, w), (1 + next(h), 1 + next(w))));
        }
        // Pixels at the extremes round at the saturation bound.
        let flat = vec![255u8; 37 * 53 * 3];
        let frame = Image {
            pixels: &flat,
            height: 37,
            width: 53,
        };
        assert_eq!(area_u8(frame, 11, 17).unwrap(), opencv_area(frame, 11, 17));

        let mut compared = 0;
        for (i, &((h, w), (dh, dw))) in cases.iter().enumerate() {
            let pixels = noise(h * w * 3, i as u64);
            let frame = Image {
                pixels: &pixels,
                height: h,
                width: w,
            };
            let theirs = opencv_area(frame, dh, dw);
            match area_u8(frame, dh, dw) {
                Some(ours) => {
                    assert_eq!(ours, theirs, "{h}x{w} -> {dh}x{dw}");
                    compared += 1;
                }
                None => assert!(
                    (h % dh == 0 && w % dw == 0) || dh > h || dw > w,
                    "{h}x{w} -> {dh}x{dw} declined"
                ),
            }
        }
        assert!(compared > 250, "{compared}");
    }

    #[test]
    fn other_paths_are_left_to_opencv() {
        let pixels = noise(40 * 60 * 3, 1);
        let frame = Image {
            pixels: &pixels,
            height: 40,
            width: 60,
        };
        assert!(area_u8(frame, 40, 60).is_none());
        assert!(area_u8(frame, 20, 30).is_none());
        assert!(area_u8(frame, 80, 30).is_none());
        assert!(area_u8(frame, 0, 30).is_none());
        assert!(area_u8(frame, 20, 31).is_some());
    }
}
