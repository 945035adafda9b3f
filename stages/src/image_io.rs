//! Moving images between the tables' encoded bytes (PNG/JPEG), OpenCV `Mat`s and ndarray views.
//!
//! OpenCV decodes to BGR and encodes from BGR, which keeps the stored files in true RGB order; the
//! ndarray side is always RGB (or gray), so no stage ever has to think about channel order.
//!
//! The crops that `train` and `score` read back by the thousand are decoded without OpenCV, by
//! [`decode_png_rgb`] and [`decode_png_gray`]: PNG stores RGB, so OpenCV's decoder swapped to BGR
//! only for us to swap back, and that round trip with its two copies cost about as much as the
//! decoding itself.

use ndarray::{Array2, Array3};
use opencv::boxed_ref::BoxedRef;
use opencv::core::{Mat, ToInputArray, Vector};
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

/// The full frame of a `frames` row as a BGR `Mat`: a raw frame looked at in place (a 1080p frame
/// is 6 MB, and copying it cost `detect` and `crop` more in page faults than in the copy), an
/// encoded one decoded. A preview is refused: it is not the frame's pixels.
pub fn frame_bgr<'a>(frame: &dfd_schemas::FrameRef<'a>) -> Result<BoxedRef<'a, Mat>, String> {
    use dfd_schemas::FrameEncoding;
    match frame.encoding {
        FrameEncoding::Png | FrameEncoding::Jpeg => decode_bgr(frame.image).map(BoxedRef::from),
        FrameEncoding::Raw => raw_frame_mat(frame),
        FrameEncoding::Preview => Err(
            "the frame is stored as a preview only (decode.keep_frames = \"preview\"); its \
             pixels must be decoded from the video again"
                .into(),
        ),
    }
}

/// A BGR `Mat` header over a raw frame's own bytes (no copy), once they are checked to be
/// `height x width x 3`.
pub fn raw_frame_mat<'a>(frame: &dfd_schemas::FrameRef<'a>) -> Result<BoxedRef<'a, Mat>, String> {
    if frame.image.len() != frame.height as usize * frame.width as usize * 3 {
        return Err(format!(
            "raw frame of {} bytes is not {}x{}x3",
            frame.image.len(),
            frame.height,
            frame.width
        ));
    }
    Mat::new_rows_cols_with_bytes::<opencv::core::Vec3b>(
        frame.height as i32,
        frame.width as i32,
        frame.image,
    )
    .map_err(|e| format!("cannot wrap a raw frame: {e}"))
}

/// Encodes a `Mat` (BGR or gray) as PNG with zlib level `compression`.
pub fn encode_png(mat: &Mat, compression: i32) -> Result<Vec<u8>, String> {
    let mut out = Vector::<u8>::new();
    let params = Vector::from_slice(&[imgcodecs::IMWRITE_PNG_COMPRESSION, compression]);
    imgcodecs::imencode(".png", mat, &mut out, &params)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(out.to_vec())
}

/// Writes the RGB pixels of the 8-bit BGR `bgr` into `out` (resized to H x W x 3), in one pass and
/// without a fresh allocation when `out` already has the room: `detect` converts every frame into
/// the same buffer.
pub fn bgr_to_rgb_into(
    bgr: &(impl MatTraitConst + ToInputArray),
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if bgr.typ() != opencv::core::CV_8UC3 {
        return Err(format!(
            "expected an 8-bit BGR image, got type {}",
            bgr.typ()
        ));
    }
    let (rows, cols) = (bgr.rows(), bgr.cols());
    out.clear();
    out.resize(rows as usize * cols as usize * 3, 0);
    let expected = out.as_ptr();
    let mut dst = Mat::new_rows_cols_with_bytes_mut::<opencv::core::Vec3b>(rows, cols, out)
        .map_err(|e| format!("cannot wrap the RGB buffer: {e}"))?;
    imgproc::cvt_color_def(bgr, &mut dst, imgproc::COLOR_BGR2RGB)
        .map_err(|e| format!("cannot convert to RGB: {e}"))?;
    // OpenCV writes into a destination of the right size and type in place; a reallocation
    // would leave `out` unwritten.
    if dst.data() != expected {
        return Err("converting to RGB reallocated its destination".into());
    }
    Ok(())
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

/// Decodes PNG bytes straight to RGB, H x W x 3, with the pixels `imdecode(IMREAD_COLOR)` gives
/// (after the swap to RGB): palette and low bit depths expanded, 16-bit samples cut to their high
/// byte, gray replicated to three channels, alpha dropped without blending.
pub fn decode_png_rgb(bytes: &[u8]) -> Result<Array3<u8>, String> {
    let (pixels, color, (height, width)) = decode_png_8bit(bytes)?;
    let rgb = match color {
        png::ColorType::Rgb => pixels,
        png::ColorType::Rgba => pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|v| [*v; 3]).collect(),
        png::ColorType::GrayscaleAlpha => pixels.chunks_exact(2).flat_map(|p| [p[0]; 3]).collect(),
        png::ColorType::Indexed => return Err("PNG palette was not expanded".into()),
    };
    Array3::from_shape_vec((height, width, 3), rgb).map_err(|e| format!("PNG layout: {e}"))
}

/// Decodes PNG bytes to gray levels, H x W: a gray PNG as stored, a color one by OpenCV's
/// fixed-point BT.601 weights, so the result equals `cvtColor(imdecode(..), BGR2GRAY)`.
pub fn decode_png_gray(bytes: &[u8]) -> Result<Array2<u8>, String> {
    let (pixels, color, (height, width)) = decode_png_8bit(bytes)?;
    // cvtColor's 8-bit weights: 0.299, 0.587, 0.114 in units of 2^-15, rounded to nearest.
    let gray = |r: u8, g: u8, b: u8| {
        ((u32::from(r) * 9798 + u32::from(g) * 19235 + u32::from(b) * 3735 + (1 << 14)) >> 15) as u8
    };
    let levels = match color {
        png::ColorType::Grayscale => pixels,
        png::ColorType::GrayscaleAlpha => pixels.chunks_exact(2).map(|p| p[0]).collect(),
        png::ColorType::Rgb => pixels
            .chunks_exact(3)
            .map(|p| gray(p[0], p[1], p[2]))
            .collect(),
        png::ColorType::Rgba => pixels
            .chunks_exact(4)
            .map(|p| gray(p[0], p[1], p[2]))
            .collect(),
        png::ColorType::Indexed => return Err("PNG palette was not expanded".into()),
    };
    Array2::from_shape_vec((height, width), levels).map_err(|e| format!("PNG layout: {e}"))
}

/// A decoded PNG frame: tightly packed 8-bit samples, their color type, and (height, width).
type Png8 = (Vec<u8>, png::ColorType, (usize, usize));

/// The first frame of a PNG as 8-bit samples.
fn decode_png_8bit(bytes: &[u8]) -> Result<Png8, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("cannot decode PNG ({} bytes): {e}", bytes.len()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "PNG too large to decode".to_string())?;
    let mut buffer = vec![0; size];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|e| format!("cannot decode PNG ({} bytes): {e}", bytes.len()))?;
    let (height, width) = (frame.height as usize, frame.width as usize);
    let channels = frame.color_type.samples();
    if frame.bit_depth != png::BitDepth::Eight || frame.line_size != width * channels {
        return Err(format!(
            "PNG decoded to {:?} samples with {} bytes a row for width {width}",
            frame.bit_depth, frame.line_size
        ));
    }
    buffer.truncate(frame.buffer_size());
    Ok((buffer, frame.color_type, (height, width)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Scalar, CV_16UC3, CV_8UC1, CV_8UC3, CV_8UC4};

    fn random_mat(typ: i32) -> Mat {
        let mut mat = Mat::new_rows_cols_with_default(37, 53, typ, Scalar::all(0.0)).unwrap();
        let high = if typ == CV_16UC3 { 65535.0 } else { 255.0 };
        opencv::core::randu(&mut mat, &Scalar::all(0.0), &Scalar::all(high)).unwrap();
        mat
    }

    /// An RGB copy of a BGR `Mat`, as H x W x 3.
    fn bgr_to_rgb_array(bgr: &(impl MatTraitConst + ToInputArray)) -> Result<Array3<u8>, String> {
        let mut rgb = Vec::new();
        bgr_to_rgb_into(bgr, &mut rgb)?;
        Array3::from_shape_vec((bgr.rows() as usize, bgr.cols() as usize, 3), rgb)
            .map_err(|e| format!("unexpected image layout: {e}"))
    }

    /// What the OpenCV path gives: the reference the PNG decoders must equal.
    fn opencv_rgb_and_gray(png: &[u8]) -> (Array3<u8>, Array2<u8>) {
        let bgr = decode_bgr(png).unwrap();
        (
            bgr_to_rgb_array(&bgr).unwrap(),
            bgr_to_gray_array(&bgr).unwrap(),
        )
    }

    #[test]
    fn png_decoding_equals_opencv_for_every_stored_layout() {
        for typ in [CV_8UC3, CV_8UC1, CV_8UC4, CV_16UC3] {
            for compression in [0, 1, 9] {
                let png = encode_png(&random_mat(typ), compression).unwrap();
                let (rgb, gray) = opencv_rgb_and_gray(&png);
                assert_eq!(
                    decode_png_rgb(&png).unwrap(),
                    rgb,
                    "type {typ}, level {compression}"
                );
                let mine = decode_png_gray(&png).unwrap();
                assert_eq!(mine, gray, "type {typ}, level {compression}");
            }
        }
    }

    #[test]
    fn corrupt_png_is_an_error_that_says_so() {
        let mut png = encode_png(&random_mat(CV_8UC3), 1).unwrap();
        png.truncate(png.len() / 2);
        let error = decode_png_rgb(&png).unwrap_err();
        assert!(error.contains("cannot decode PNG"), "{error}");
        assert!(decode_png_gray(b"not a png").is_err());
    }
}
