//! Moving images between the tables' encoded bytes (PNG/JPEG), OpenCV `Mat`s and ndarray views.
//!
//! OpenCV decodes to BGR and encodes from BGR, which keeps the stored files in true RGB order; the
//! ndarray side is always RGB (or gray), so no stage ever has to think about channel order.

use ndarray::{Array2, Array3};
use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

/// Decodes PNG/JPEG bytes to a BGR `Mat`.
pub fn decode_bgr(bytes: &[u8]) -> Result<Mat, String> {
    let buffer = Vector::<u8>::from_slice(bytes);
    let mat = imgcodecs::imdecode(&buffer, imgcodecs::IMREAD_COLOR)
        .map_err(|e| format!("cannot decode image: {e}"))?;
    if mat.empty() {
        return Err(format!("cannot decode image ({} bytes)", bytes.len()));
    }
    Ok(mat)
}

/// Encodes a `Mat` (BGR or gray) as PNG with zlib level `compression`.
pub fn encode_png(mat: &Mat, compression: i32) -> Result<Vec<u8>, String> {
    let mut out = Vector::<u8>::new();
    let params = Vector::from_slice(&[imgcodecs::IMWRITE_PNG_COMPRESSION, compression]);
    imgcodecs::imencode(".png", mat, &mut out, &params)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(out.to_vec())
}

/// An RGB copy of a BGR `Mat`, as H x W x 3.
pub fn bgr_to_rgb_array(bgr: &Mat) -> Result<Array3<u8>, String> {
    let mut rgb = Mat::default();
    imgproc::cvt_color_def(bgr, &mut rgb, imgproc::COLOR_BGR2RGB)
        .map_err(|e| format!("cannot convert to RGB: {e}"))?;
    let (rows, cols) = (rgb.rows() as usize, rgb.cols() as usize);
    let bytes = rgb
        .data_bytes()
        .map_err(|e| format!("image is not contiguous: {e}"))?;
    Array3::from_shape_vec((rows, cols, 3), bytes.to_vec())
        .map_err(|e| format!("unexpected image layout: {e}"))
}

/// The gray levels of a BGR `Mat` by OpenCV's BT.601 weights (`cvtColor(BGR2GRAY)`), as H x W.
pub fn bgr_to_gray_array(bgr: &Mat) -> Result<Array2<u8>, String> {
    let mut gray = Mat::default();
    imgproc::cvt_color_def(bgr, &mut gray, imgproc::COLOR_BGR2GRAY)
        .map_err(|e| format!("cannot convert to gray: {e}"))?;
    let (rows, cols) = (gray.rows() as usize, gray.cols() as usize);
    let bytes = gray
        .data_bytes()
        .map_err(|e| format!("image is not contiguous: {e}"))?;
    Array2::from_shape_vec((rows, cols), bytes.to_vec())
        .map_err(|e| format!("unexpected image layout: {e}"))
}

/// A single-channel 8-bit `Mat` holding a copy of `gray`.
pub fn gray_array_to_mat(gray: &Array2<u8>) -> Result<Mat, String> {
    let (rows, cols) = gray.dim();
    let standard = gray.as_standard_layout();
    let slice = standard
        .as_slice()
        .ok_or_else(|| "gray image is not contiguous".to_string())?;
    let flat = Mat::from_slice(slice).map_err(|e| format!("cannot wrap gray image: {e}"))?;
    let shaped = flat
        .reshape(1, rows as i32)
        .map_err(|e| format!("cannot shape gray image {rows}x{cols}: {e}"))?;
    shaped
        .try_clone()
        .map_err(|e| format!("cannot copy gray image: {e}"))
}
