//! The image pyramid P-Net scans.
//!
//! Every level is resized from the frame itself by INTER_AREA, as in the reference, not from the
//! previous level: P-Net's scores near the threshold are sensitive enough to the resampling that a
//! different chain of filters changes which windows survive.

use ndarray::Array4;

use super::frame::Frame;
use super::DetectError;

/// Side of P-Net's window: a level where the shorter side is below it yields nothing.
pub const PNET_WINDOW: f64 = 12.0;

/// The reference's pyramid: level k is `m * factor^k` with `m = 12 / min_face_size`, down to the
/// last level whose shorter side is still at least 12 px. `powf` (not repeated multiplication or
/// `powi`) because NumPy's `np.power` is C `pow`, and the scales must match to the bit.
pub fn scales(height: usize, width: usize, min_face_size: f64, factor: f64) -> Vec<f64> {
    let m = PNET_WINDOW / min_face_size;
    let mut min_layer = height.min(width) as f64 * m;
    let mut scales = Vec::new();
    let mut k = 0.0;
    while min_layer >= PNET_WINDOW {
        scales.push(m * factor.powf(k));
        min_layer *= factor;
        k += 1.0;
    }
    scales
}

/// The size of the level at `scale`: `ceil`, as the reference.
pub fn level_size(frame: Frame, scale: f64) -> (usize, usize) {
    (
        (frame.height as f64 * scale).ceil() as usize,
        (frame.width as f64 * scale).ceil() as usize,
    )
}

/// The level at `scale` as P-Net's input: resized from the frame by INTER_AREA, normalised, and
/// transposed to `[1, W, H, 3]` because the weights were converted from a column-major
/// (MATLAB/Caffe) original.
pub fn pnet_input(frame: Frame, scale: f64) -> Result<Array4<f32>, DetectError> {
    let (height, width) = level_size(frame, scale);
    let pixels = frame.resize_area(height, width)?;
    let mut input = Array4::<f32>::zeros((1, width, height, 3));
    let out = input
        .as_slice_mut()
        .ok_or_else(|| DetectError::Image(vec![height, width, 3]))?;
    transpose_normalised(&pixels, height, width, out);
    Ok(input)
}

/// Writes the H x W x 3 `pixels` as W x H x 3 normalised floats, in row blocks so that both sides
/// stay in cache.
fn transpose_normalised(pixels: &[u8], height: usize, width: usize, out: &mut [f32]) {
    const BLOCK: usize = 16;
    for y0 in (0..height).step_by(BLOCK) {
        let y1 = (y0 + BLOCK).min(height);
        for x in 0..width {
            for y in y0..y1 {
                let src = &pixels[(y * width + x) * 3..][..3];
                let dst = &mut out[(x * height + y) * 3..][..3];
                for c in 0..3 {
                    dst[c] = normalise(src[c]);
                }
            }
        }
    }
}

/// The networks' input scaling. Exact in f32 for u8 input (a multiple of 1/256), so it equals the
/// reference's f64 arithmetic cast to f32.
fn normalise(v: u8) -> f32 {
    (f32::from(v) - 127.5) * 0.0078125
}
