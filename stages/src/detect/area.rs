//! OpenCV's INTER_AREA downscale of an f64 image (`cv::resize` with both ratios >= 1) re-implemented
//! for candidate crops, reading the crop straight from the u8 frame with zeros outside it.
//!
//! OpenCV needs each crop materialised as an f64 Mat first (convert, pad, resize: three allocations
//! and passes per candidate), which made cropping cost as much as R-Net. The arithmetic below
//! repeats OpenCV's operation for operation (f32 weights widened to f64, the same summation order,
//! the same reciprocal), so the results are identical; the unit test in `crop.rs` checks that
//! against OpenCV itself.

use super::frame::Frame;
use crate::inter_area::{is_integer, opencv_scale, taps, Tap};

/// Where a crop sits in the frame: its top-left corner (possibly outside the frame) and its size.
#[derive(Debug, Clone, Copy)]
pub struct CropWindow {
    pub x0: i64,
    pub y0: i64,
    pub width: usize,
    pub height: usize,
}

/// The crop resized to `size x size` as H x W x 3 f64 values; needs `window` at least `size` in
/// both dimensions (OpenCV's true area path).
pub fn crop_f64(frame: Frame, window: CropWindow, size: usize, out: &mut [f64]) {
    let scale_x = opencv_scale(window.width, size);
    let scale_y = opencv_scale(window.height, size);
    if is_integer(scale_x) && is_integer(scale_y) {
        // OpenCV's block-mean path (`resizeAreaFast_`).
        let (ix, iy) = (scale_x.round(), scale_y.round());
        block_means(frame, window, size, ix as usize, iy as usize, out);
    } else {
        weighted(frame, window, size, (scale_x, scale_y), out);
    }
}

/// The channels of crop pixel `(sx, sy)`, or `None` (zeros) outside the frame.
#[inline]
fn pixel<'a>(frame: Frame<'a>, window: CropWindow, sx: usize, sy: usize) -> Option<&'a [u8]> {
    let x = window.x0 + sx as i64;
    let y = window.y0 + sy as i64;
    if x < 0 || y < 0 || x >= frame.width as i64 || y >= frame.height as i64 {
        return None;
    }
    let at = (y as usize * frame.width + x as usize) * 3;
    Some(&frame.pixels[at..at + 3])
}

/// Integer ratios on f64 (`resizeAreaFast_<double>`): each block's integer sum times the f32
/// reciprocal of its area.
fn block_means(
    frame: Frame,
    window: CropWindow,
    size: usize,
    ix: usize,
    iy: usize,
    out: &mut [f64],
) {
    let scale = f64::from(1.0f32 / (ix * iy) as f32);
    for dy in 0..size {
        for dx in 0..size {
            let mut sum = [0u32; 3];
            for sy in dy * iy..(dy + 1) * iy {
                for sx in dx * ix..(dx + 1) * ix {
                    if let Some(p) = pixel(frame, window, sx, sy) {
                        for c in 0..3 {
                            sum[c] += u32::from(p[c]);
                        }
                    }
                }
            }
            for c in 0..3 {
                out[(dy * size + dx) * 3 + c] = f64::from(sum[c]) * scale;
            }
        }
    }
}

/// A run of taps into one destination pixel from consecutive source pixels, with its weights at
/// `weights[w0..w0 + len]`.
struct Span {
    dst: usize,
    src: usize,
    len: usize,
    w0: usize,
}

/// The horizontal taps as spans, clipped to the source columns `[lo, hi)` that hold pixels (the
/// others would add zeros, which leaves the sums unchanged), in OpenCV's summation order.
fn spans(taps: &[Tap], lo: i64, hi: i64) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut weights = Vec::with_capacity(taps.len());
    for tap in taps {
        let src = tap.src as i64;
        if src < lo || src >= hi {
            continue;
        }
        let src = (src - lo) as usize;
        match spans.last_mut() {
            Some(last) if last.dst == tap.dst && last.src + last.len == src => last.len += 1,
            _ => spans.push(Span {
                dst: tap.dst,
                src,
                len: 1,
                w0: weights.len(),
            }),
        }
        weights.push(f64::from(tap.weight));
    }
    (spans, weights)
}

/// Non-integer ratios (`ResizeArea_Invoker`): each source row is reduced horizontally into `buf`,
/// and rows are accumulated into `sum` with their vertical weight until the destination row
/// changes.
fn weighted(frame: Frame, window: CropWindow, size: usize, scale: (f64, f64), out: &mut [f64]) {
    let xtab = taps(window.width, size, scale.0);
    let ytab = taps(window.height, size, scale.1);
    // Crop columns inside the frame; spans index the frame row from `first_col`.
    let lo = (-window.x0).max(0);
    let hi = (frame.width as i64 - window.x0).min(window.width as i64);
    let first_col = (window.x0 + lo).max(0) as usize;
    let (spans, weights) = spans(&xtab, lo, hi);
    let row_len = size * 3;
    let mut buf = vec![0f64; row_len];
    let mut sum = vec![0f64; row_len];
    let mut reduced_row = None;
    let mut prev_dy = ytab.first().map_or(0, |t| t.dst);
    for row in &ytab {
        // Consecutive taps share a source row where a destination row boundary cuts it; its
        // reduction is the same both times, so it is computed once.
        if reduced_row != Some(row.src) {
            reduced_row = Some(row.src);
            buf.fill(0.0);
            let y = window.y0 + row.src as i64;
            if (0..frame.height as i64).contains(&y) && lo < hi {
                let line = &frame.pixels[(y as usize * frame.width + first_col) * 3..];
                for span in &spans {
                    let pixels = &line[span.src * 3..(span.src + span.len) * 3];
                    let ws = &weights[span.w0..span.w0 + span.len];
                    let acc = &mut buf[span.dst * 3..span.dst * 3 + 3];
                    for (p, &w) in pixels.chunks_exact(3).zip(ws) {
                        for c in 0..3 {
                            acc[c] += f64::from(p[c]) * w;
                        }
                    }
                }
            }
        }
        let beta = f64::from(row.weight);
        if row.dst != prev_dy {
            out[prev_dy * row_len..][..row_len].copy_from_slice(&sum);
            for (s, &b) in sum.iter_mut().zip(&buf) {
                *s = beta * b;
            }
            prev_dy = row.dst;
        } else {
            for (s, &b) in sum.iter_mut().zip(&buf) {
                *s += beta * b;
            }
        }
    }
    out[prev_dy * row_len..][..row_len].copy_from_slice(&sum);
}
