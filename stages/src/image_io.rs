//! Moving images between the tables' encoded bytes (PNG/JPEG), OpenCV `Mat`s and ndarray views.
//!
//! The stored files are in true RGB order; a `Mat` is BGR (OpenCV's order); the ndarray side is
//! always RGB (or gray), so no stage ever has to think about channel order.
//!
//! Nothing here calls OpenCV's imgcodecs: PNG and JPEG are written by `dfd-codecs` (libpng and
//! libjpeg called as imgcodecs calls them, so the bytes are `imencode`'s), PNG is read by the `png`
//! crate and JPEG by `dfd-codecs` (the pixels `imdecode` gives). Loading imgcodecs, with the
//! hundred libraries it needs, cost every dfd process about 70 ms before `main`.
//!
//! The crops that `train` and `score` read back by the thousand are decoded straight to RGB or
//! gray ([`decode_png_rgb`], [`decode_png_gray`]): decoding to BGR only to swap back cost about as
//! much as the decoding itself.

use dfd_codecs::{ChannelOrder, Pixels};
use ndarray::{Array2, Array3};
use opencv::boxed_ref::BoxedRef;
use opencv::core::{Mat, Scalar, ToInputArray, CV_8UC1, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;

/// Decodes PNG or JPEG bytes to a BGR `Mat`, with the pixels `imdecode(IMREAD_COLOR)` gives.
pub fn decode_bgr(bytes: &[u8]) -> Result<Mat, String> {
    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG_SIGNATURE) {
        let rgb = decode_png_rgb(bytes)?;
        let (rows, cols, _) = rgb.dim();
        let mut mat = new_bgr_mat(rows, cols)?;
        let out = mat
            .data_bytes_mut()
            .map_err(|e| format!("cannot write an image: {e}"))?;
        for (bgr, rgb) in out
            .chunks_exact_mut(3)
            .zip(rgb.as_slice().unwrap_or_default().chunks_exact(3))
        {
            bgr.copy_from_slice(&[rgb[2], rgb[1], rgb[0]]);
        }
        return Ok(mat);
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let image = dfd_codecs::decode_jpeg_bgr(bytes)
            .map_err(|e| format!("cannot decode JPEG ({} bytes): {e}", bytes.len()))?;
        let mut mat = new_bgr_mat(image.height as usize, image.width as usize)?;
        mat.data_bytes_mut()
            .map_err(|e| format!("cannot write an image: {e}"))?
            .copy_from_slice(&image.pixels);
        return Ok(mat);
    }
    Err(format!(
        "cannot decode image ({} bytes): neither PNG nor JPEG",
        bytes.len()
    ))
}

/// A `rows x cols` BGR `Mat` to fill.
fn new_bgr_mat(rows: usize, cols: usize) -> Result<Mat, String> {
    Mat::new_rows_cols_with_default(rows as i32, cols as i32, CV_8UC3, Scalar::all(0.0))
        .map_err(|e| format!("cannot allocate a {rows}x{cols} image: {e}"))
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

/// The pixels of an 8-bit BGR or gray `Mat`, rows as far apart as the `Mat` has them (a region
/// of a larger image is read in place).
pub fn mat_pixels(mat: &impl MatTraitConst) -> Result<Pixels<'_>, String> {
    let channels = match mat.typ() {
        CV_8UC3 => 3,
        CV_8UC1 => 1,
        other => {
            return Err(format!(
                "expected an 8-bit BGR or gray image, got type {other}"
            ))
        }
    };
    let (rows, cols) = (mat.rows() as usize, mat.cols() as usize);
    let stride = mat
        .step1(0)
        .map_err(|e| format!("cannot read an image's row step: {e}"))?;
    if rows == 0 || cols == 0 || mat.data().is_null() {
        return Err("the image is empty".into());
    }
    let len = stride * (rows - 1) + cols * channels;
    // SAFETY: a Mat's `rows` rows of `cols * channels` bytes lie `stride` bytes apart from its data
    // pointer, alive as long as the Mat (borrowed for the result's lifetime).
    let bytes = unsafe { std::slice::from_raw_parts(mat.data(), len) };
    Ok(Pixels {
        bytes,
        width: cols as u32,
        height: rows as u32,
        stride,
        channels: channels as u8,
        order: ChannelOrder::Bgr,
    })
}

/// Encodes a `Mat` (BGR or gray) as PNG with zlib level `compression` (0-9): `imencode`'s bytes.
pub fn encode_png(mat: &impl MatTraitConst, compression: u8) -> Result<Vec<u8>, String> {
    dfd_codecs::encode_png(&mat_pixels(mat)?, compression)
        .map_err(|e| format!("cannot encode PNG: {e}"))
}

/// Encodes a `Mat` (BGR or gray) as JPEG of `quality` (0-100): `imencode`'s bytes.
pub fn encode_jpeg(mat: &impl MatTraitConst, quality: u8) -> Result<Vec<u8>, String> {
    dfd_codecs::encode_jpeg(&mat_pixels(mat)?, quality)
        .map_err(|e| format!("cannot encode JPEG: {e}"))
}

/// Encodes packed BGR pixels (H x W x 3, rows contiguous) as JPEG of `quality`: the bytes
/// `imencode` writes for the same pixels in a `Mat`.
pub fn encode_jpeg_packed(
    bgr: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, String> {
    let pixels = Pixels::packed(bgr, width, height, 3, ChannelOrder::Bgr);
    dfd_codecs::encode_jpeg(&pixels, quality).map_err(|e| format!("cannot encode JPEG: {e}"))
}

/// Encodes gray levels (H x W) as PNG with zlib level `compression`: the bytes `imencode` writes
/// for the same levels in a `Mat`.
pub fn encode_png_gray(gray: &Array2<u8>, compression: u8) -> Result<Vec<u8>, String> {
    let (rows, cols) = gray.dim();
    let standard = gray.as_standard_layout();
    let bytes = standard
        .as_slice()
        .ok_or_else(|| "gray image is not contiguous".to_string())?;
    let pixels = Pixels::packed(bytes, cols as u32, rows as u32, 1, ChannelOrder::Bgr);
    dfd_codecs::encode_png(&pixels, compression).map_err(|e| format!("cannot encode PNG: {e}"))
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

/// A single-channel 8-bit `Mat` holding a copy of `gray` (tests compare with OpenCV through it).
#[cfg(test)]
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
    use opencv::core::{Vector, CV_16UC3, CV_8UC4};
    use opencv::imgcodecs;

    fn random_mat(typ: i32) -> Mat {
        let mut mat = Mat::new_rows_cols_with_default(37, 53, typ, Scalar::all(0.0)).unwrap();
        let high = if typ == CV_16UC3 { 65535.0 } else { 255.0 };
        opencv::core::randu(&mut mat, &Scalar::all(0.0), &Scalar::all(high)).unwrap();
        mat
    }

    /// OpenCV's encoder, the reference (and the only writer of the layouts dfd never writes).
    fn imencode(mat: &Mat, extension: &str, flags: [i32; 2]) -> Vec<u8> {
        let mut out = Vector::<u8>::new();
        imgcodecs::imencode(extension, mat, &mut out, &Vector::from_slice(&flags)).unwrap();
        out.to_vec()
    }

    fn imdecode(bytes: &[u8]) -> Mat {
        imgcodecs::imdecode(&Vector::<u8>::from_slice(bytes), imgcodecs::IMREAD_COLOR).unwrap()
    }

    /// An RGB copy of a BGR `Mat`, as H x W x 3.
    fn bgr_to_rgb_array(bgr: &(impl MatTraitConst + ToInputArray)) -> Result<Array3<u8>, String> {
        let mut rgb = Vec::new();
        bgr_to_rgb_into(bgr, &mut rgb)?;
        Array3::from_shape_vec((bgr.rows() as usize, bgr.cols() as usize, 3), rgb)
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

    /// What OpenCV gives: the reference the PNG decoders must equal.
    fn opencv_rgb_and_gray(png: &[u8]) -> (Array3<u8>, Array2<u8>) {
        let bgr = imdecode(png);
        (
            bgr_to_rgb_array(&bgr).unwrap(),
            bgr_to_gray_array(&bgr).unwrap(),
        )
    }

    #[test]
    fn png_decoding_equals_opencv_for_every_stored_layout() {
        for typ in [CV_8UC3, CV_8UC1, CV_8UC4, CV_16UC3] {
            for compression in [0, 1, 9] {
                let png = imencode(
                    &random_mat(typ),
                    ".png",
                    [imgcodecs::IMWRITE_PNG_COMPRESSION, compression],
                );
                let (rgb, gray) = opencv_rgb_and_gray(&png);
                assert_eq!(
                    decode_png_rgb(&png).unwrap(),
                    rgb,
                    "type {typ}, level {compression}"
                );
                let mine = decode_png_gray(&png).unwrap();
                assert_eq!(mine, gray, "type {typ}, level {compression}");
                let bgr = decode_bgr(&png).unwrap();
                assert_eq!(
                    bgr.data_bytes().unwrap(),
                    imdecode(&png).data_bytes().unwrap()
                );
            }
        }
    }

    #[test]
    fn encoding_and_decoding_equal_imencode_and_imdecode() {
        for typ in [CV_8UC3, CV_8UC1] {
            let mat = random_mat(typ);
            let png = encode_png(&mat, 1).unwrap();
            assert_eq!(
                png,
                imencode(&mat, ".png", [imgcodecs::IMWRITE_PNG_COMPRESSION, 1])
            );
            let jpeg = encode_jpeg(&mat, 80).unwrap();
            assert_eq!(
                jpeg,
                imencode(&mat, ".jpg", [imgcodecs::IMWRITE_JPEG_QUALITY, 80])
            );
            let decoded = decode_bgr(&jpeg).unwrap();
            assert_eq!(
                decoded.data_bytes().unwrap(),
                imdecode(&jpeg).data_bytes().unwrap()
            );
        }
        let gray = random_mat(CV_8UC1);
        let levels = bgr_to_gray_array(&{
            let mut bgr = Mat::default();
            imgproc::cvt_color_def(&gray, &mut bgr, imgproc::COLOR_GRAY2BGR).unwrap();
            bgr
        })
        .unwrap();
        assert_eq!(
            encode_png_gray(&levels, 1).unwrap(),
            imencode(&gray, ".png", [imgcodecs::IMWRITE_PNG_COMPRESSION, 1])
        );
        assert!(encode_png(&random_mat(CV_16UC3), 1).is_err());
        assert!(decode_bgr(b"GIF89a")
            .unwrap_err()
            .contains("neither PNG nor JPEG"));
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
