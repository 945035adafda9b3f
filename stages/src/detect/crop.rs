//! Cutting candidate boxes out of the frame as R-Net's and O-Net's batched input.
//!
//! As in the reference, a crop is the box's pixels in f64 with zeros where the box leaves the frame,
//! resized by INTER_AREA in f64 (no rounding to u8 in between), then normalised. The reference's
//! 1-based slicing puts crop column `j` at frame column `x1 - 1 + j`; that one-pixel shift is kept.

use ndarray::Array4;
use opencv::core::{self, Mat, Rect, Scalar, Size, Vec3d, CV_64FC3};
use opencv::imgproc;
use opencv::prelude::*;

use super::area::{self, CropWindow};
use super::boxes::Candidate;
use super::frame::{cv, to_i32, Frame};
use super::DetectError;

/// Crops every box (corners already truncated to integers) into one `[N, size, size, 3]` batch,
/// transposed like every MTCNN input; the crops are cut on `threads` threads.
///
/// Scoped threads, not rayon: a detection must never wait on rayon work. `detect` waits for a
/// detection started early (see `early.rs`) in a rayon job; had that detection split its crops
/// with rayon, the waiting worker could be the one that took half of them, its wait stacked on top
/// of that half (a deadlock, seen on 16 clips).
pub fn crop_batch(
    frame: Frame,
    boxes: &[Candidate],
    size: usize,
    threads: usize,
) -> Result<Array4<f32>, DetectError> {
    let mut batch = Array4::<f32>::zeros((boxes.len(), size, size, 3));
    let out = batch
        .as_slice_mut()
        .ok_or_else(|| DetectError::Image(vec![size, size, 3]))?;
    let per_crop = size * size * 3;
    let crop_run = |out: &mut [f32], boxes: &[Candidate]| {
        out.chunks_mut(per_crop)
            .zip(boxes)
            .try_for_each(|(out, b)| crop_one(frame, b, size, out))
    };
    let run = boxes.len().div_ceil(threads.max(1)).max(1);
    if run >= boxes.len() {
        crop_run(out, boxes)?;
        return Ok(batch);
    }
    std::thread::scope(|scope| {
        let mut runs = out.chunks_mut(run * per_crop).zip(boxes.chunks(run));
        let first = runs.next();
        let others: Vec<_> = runs
            .map(|(out, boxes)| scope.spawn(move || crop_run(out, boxes)))
            .collect();
        if let Some((out, boxes)) = first {
            crop_run(out, boxes)?;
        }
        others
            .into_iter()
            .try_for_each(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
    })?;
    Ok(batch)
}

fn crop_one(frame: Frame, b: &Candidate, size: usize, out: &mut [f32]) -> Result<(), DetectError> {
    // Crop column j is frame column x1 - 1 + j (the reference's 1-based slicing).
    let window = CropWindow {
        x0: b.x1 as i64 - 1,
        y0: b.y1 as i64 - 1,
        width: (b.x2 - b.x1 + 1.0) as usize,
        height: (b.y2 - b.y1 + 1.0) as usize,
    };
    let mut resized = vec![0f64; size * size * 3];
    if window.width >= size && window.height >= size {
        area::crop_f64(frame, window, size, &mut resized);
    } else {
        // Enlarging, where OpenCV emulates INTER_AREA bilinearly; such crops are under 24 or 48 px,
        // so OpenCV's per-crop overhead stays small.
        resize_with_opencv(frame, window, size, &mut resized)?;
    }
    for (i, p) in resized.chunks_exact(3).enumerate() {
        let (y, x) = (i / size, i % size);
        let dst = &mut out[(x * size + y) * 3..][..3];
        for c in 0..3 {
            dst[c] = normalise(p[c]);
        }
    }
    Ok(())
}

/// The reference's steps verbatim: the crop as an f64 Mat, zero-padded, then `cv::resize`.
fn resize_with_opencv(
    frame: Frame,
    window: CropWindow,
    size: usize,
    out: &mut [f64],
) -> Result<(), DetectError> {
    let (x0, y0) = (window.x0, window.y0);
    let (x1, y1) = (x0 + window.width as i64, y0 + window.height as i64);
    // The part inside the frame, [sx0, sx1) x [sy0, sy1).
    let (sx0, sx1) = (x0.max(0), x1.min(frame.width as i64));
    let (sy0, sy1) = (y0.max(0), y1.min(frame.height as i64));
    let mut padded = Mat::default();
    if sx1 <= sx0 || sy1 <= sy0 {
        // Wholly outside the frame: the crop is the zero padding only.
        padded = Mat::new_rows_cols_with_default(
            to_i32(window.height)?,
            to_i32(window.width)?,
            CV_64FC3,
            Scalar::all(0.0),
        )
        .map_err(cv("allocating a crop"))?;
    } else {
        // Within the frame or the padding, both of which fit i32 (`Frame::new`, `croppable`).
        let rect = Rect::new(
            sx0 as i32,
            sy0 as i32,
            (sx1 - sx0) as i32,
            (sy1 - sy0) as i32,
        );
        let whole = frame.mat()?;
        let roi = Mat::roi(&whole, rect).map_err(cv("cropping a candidate"))?;
        let mut inside = Mat::default();
        roi.convert_to(&mut inside, CV_64FC3, 1.0, 0.0)
            .map_err(cv("converting a crop to f64"))?;
        core::copy_make_border(
            &inside,
            &mut padded,
            (sy0 - y0) as i32,
            (y1 - sy1) as i32,
            (sx0 - x0) as i32,
            (x1 - sx1) as i32,
            core::BORDER_CONSTANT,
            Scalar::all(0.0),
        )
        .map_err(cv("padding a crop"))?;
    }
    let mut resized = Mat::default();
    let side = to_i32(size)?;
    imgproc::resize(
        &padded,
        &mut resized,
        Size::new(side, side),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )
    .map_err(cv("resizing a crop"))?;
    let pixels = resized
        .data_typed::<Vec3d>()
        .map_err(cv("reading a crop"))?;
    for (dst, p) in out.chunks_exact_mut(3).zip(pixels) {
        dst.copy_from_slice(&[p[0], p[1], p[2]]);
    }
    Ok(())
}

/// The networks' input scaling, in f64 as the reference computes it before the cast to f32.
fn normalise(v: f64) -> f32 {
    ((v - 127.5) * 0.0078125) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written INTER_AREA must equal OpenCV's to the bit, over integer and fractional
    /// ratios and crops that leave the frame on any side.
    #[test]
    fn area_downscale_is_bit_exact_with_opencv() {
        let (h, w) = (97, 131);
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as i64
        };
        let pixels: Vec<u8> = (0..h * w * 3).map(|_| next() as u8).collect();
        let frame = Frame::new(&pixels, h, w).unwrap();
        let mut checked = 0;
        for size in [24, 48] {
            for _ in 0..300 {
                let side = size as i64 + next() % 140;
                let extra = next() % 3;
                let window = CropWindow {
                    x0: next() % (w as i64 + 40) - 30,
                    y0: next() % (h as i64 + 40) - 30,
                    width: side as usize,
                    height: (side + extra) as usize,
                };
                if window.width < size || window.height < size {
                    continue;
                }
                let mut ours = vec![0f64; size * size * 3];
                let mut theirs = vec![0f64; size * size * 3];
                area::crop_f64(frame, window, size, &mut ours);
                resize_with_opencv(frame, window, size, &mut theirs).unwrap();
                assert_eq!(ours, theirs, "{window:?} -> {size}");
                checked += 1;
            }
        }
        assert!(checked > 500);
    }
}
