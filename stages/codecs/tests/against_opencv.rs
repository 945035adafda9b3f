//! Every codec here against OpenCV's imgcodecs on the same pixels: byte-identical files from the
//! encoders, identical pixels from the decoder.

use dfd_codecs::{decode_jpeg_bgr, encode_jpeg, encode_png, ChannelOrder, Pixels};
use opencv::core::{Mat, Rect, Scalar, Vector, CV_8UC1, CV_8UC3};
use opencv::imgcodecs;
use opencv::prelude::*;

/// A `rows x cols` image that is neither noise (which deflate cannot shrink) nor flat: smooth
/// gradients with some noise, like a video frame.
fn picture(rows: i32, cols: i32, typ: i32, seed: u64) -> Mat {
    let mut mat = Mat::new_rows_cols_with_default(rows, cols, typ, Scalar::all(0.0)).unwrap();
    let channels = mat.channels() as usize;
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let bytes = mat.data_bytes_mut().unwrap();
    for (i, value) in bytes.iter_mut().enumerate() {
        let pixel = i / channels;
        let (y, x) = (pixel / cols as usize, pixel % cols as usize);
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = (state >> 60) as usize;
        *value = ((x * 3 + y * 2 + (i % channels) * 70 + noise) % 256) as u8;
    }
    mat
}

fn pixels_of(mat: &Mat) -> Pixels<'_> {
    let step = mat.step1(0).unwrap() * mat.elem_size1();
    let len = step * (mat.rows() as usize - 1) + mat.cols() as usize * mat.elem_size().unwrap();
    // SAFETY (test): the Mat's rows lie within `len` bytes from its data pointer.
    let bytes = unsafe { std::slice::from_raw_parts(mat.data(), len) };
    Pixels {
        bytes,
        width: mat.cols() as u32,
        height: mat.rows() as u32,
        stride: step,
        channels: mat.channels() as u8,
        order: ChannelOrder::Bgr,
    }
}

fn opencv_encode(mat: &Mat, extension: &str, flags: [i32; 2]) -> Vec<u8> {
    let mut out = Vector::<u8>::new();
    assert!(imgcodecs::imencode(extension, mat, &mut out, &Vector::from_slice(&flags)).unwrap());
    out.to_vec()
}

fn rgb_copy(mat: &Mat) -> Vec<u8> {
    let mut rgb = Mat::default();
    opencv::imgproc::cvt_color_def(mat, &mut rgb, opencv::imgproc::COLOR_BGR2RGB).unwrap();
    rgb.data_bytes().unwrap().to_vec()
}

/// Sizes that cross libpng's and libjpeg's internal boundaries: a single row, an image small
/// enough for libpng to shrink zlib's window, odd sizes, and a 1080p frame (many IDAT chunks).
const SIZES: [(i32, i32); 5] = [(1, 1), (7, 13), (37, 53), (224, 224), (1080, 1920)];

#[test]
fn png_bytes_equal_imencode_at_every_level() {
    for (n, (rows, cols)) in SIZES.into_iter().enumerate() {
        for typ in [CV_8UC3, CV_8UC1] {
            let mat = picture(rows, cols, typ, n as u64);
            for level in [0u8, 1, 6, 9] {
                if rows == 1080 && level > 1 {
                    continue; // the slow levels on a big frame add time, not coverage
                }
                let expected = opencv_encode(
                    &mat,
                    ".png",
                    [imgcodecs::IMWRITE_PNG_COMPRESSION, level.into()],
                );
                let mine = encode_png(&pixels_of(&mat), level).unwrap();
                assert!(
                    mine == expected,
                    "{rows}x{cols} type {typ} level {level}: bytes differ"
                );
                if typ == CV_8UC3 {
                    let rgb = rgb_copy(&mat);
                    let packed =
                        Pixels::packed(&rgb, cols as u32, rows as u32, 3, ChannelOrder::Rgb);
                    assert!(
                        encode_png(&packed, level).unwrap() == expected,
                        "RGB input, {rows}x{cols}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_region_of_a_larger_image_is_read_by_its_stride() {
    let big = picture(100, 120, CV_8UC3, 9);
    let region = Mat::roi(&big, Rect::new(10, 20, 61, 33))
        .unwrap()
        .try_clone()
        .unwrap();
    let view = Mat::roi(&big, Rect::new(10, 20, 61, 33)).unwrap();
    let expected = opencv_encode(&region, ".png", [imgcodecs::IMWRITE_PNG_COMPRESSION, 1]);
    let view = view.try_clone().unwrap();
    assert_eq!(encode_png(&pixels_of(&view), 1).unwrap(), expected);
    // The same region seen in place, rows 120 pixels apart.
    let start = (20 * 120 + 10) * 3;
    let bytes = &big.data_bytes().unwrap()[start..];
    let strided = Pixels {
        bytes,
        width: 61,
        height: 33,
        stride: 120 * 3,
        channels: 3,
        order: ChannelOrder::Bgr,
    };
    assert_eq!(encode_png(&strided, 1).unwrap(), expected);
    assert_eq!(
        encode_jpeg(&strided, 90).unwrap(),
        opencv_encode(&region, ".jpg", [imgcodecs::IMWRITE_JPEG_QUALITY, 90])
    );
}

#[test]
fn jpeg_bytes_equal_imencode_and_decode_equals_imdecode() {
    for (n, (rows, cols)) in SIZES.into_iter().enumerate() {
        for typ in [CV_8UC3, CV_8UC1] {
            let mat = picture(rows, cols, typ, 100 + n as u64);
            for quality in [0u8, 50, 80, 95, 100] {
                let expected = opencv_encode(
                    &mat,
                    ".jpg",
                    [imgcodecs::IMWRITE_JPEG_QUALITY, quality.into()],
                );
                let mine = encode_jpeg(&pixels_of(&mat), quality).unwrap();
                assert!(
                    mine == expected,
                    "{rows}x{cols} type {typ} quality {quality}: bytes differ"
                );
                let reference =
                    imgcodecs::imdecode(&Vector::<u8>::from_slice(&mine), imgcodecs::IMREAD_COLOR)
                        .unwrap();
                let decoded = decode_jpeg_bgr(&mine).unwrap();
                assert_eq!((decoded.width, decoded.height), (cols as u32, rows as u32));
                assert!(
                    decoded.pixels == reference.data_bytes().unwrap(),
                    "{rows}x{cols} type {typ} quality {quality}: decoded pixels differ"
                );
            }
        }
    }
}

#[test]
fn bad_input_is_an_error_that_names_the_problem() {
    let error = decode_jpeg_bgr(b"not a jpeg").unwrap_err().to_string();
    assert!(error.starts_with("libjpeg: "), "{error}");
    let mut jpeg = encode_jpeg(&pixels_of(&picture(64, 64, CV_8UC3, 3)), 80).unwrap();
    // Cut inside the entropy-coded data: libjpeg only warns and fills the rest in (imdecode
    // returns that), a damaged stored frame is an error here.
    jpeg.truncate(jpeg.len() / 2);
    let error = decode_jpeg_bgr(&jpeg).unwrap_err().to_string();
    assert!(error.starts_with("libjpeg: damaged image: "), "{error}");
    // Cut inside the header: no image at all.
    let error = decode_jpeg_bgr(&jpeg[..20]).unwrap_err().to_string();
    assert!(error.starts_with("libjpeg: "), "{error}");
    let short = Pixels::packed(&[0u8; 10], 4, 4, 3, ChannelOrder::Bgr);
    let error = encode_png(&short, 1).unwrap_err().to_string();
    assert!(error.contains("does not fit 10 bytes"), "{error}");
    assert!(encode_png(&Pixels::packed(&[0u8; 16], 4, 4, 1, ChannelOrder::Bgr), 10).is_err());
    assert!(encode_jpeg(&Pixels::packed(&[0u8; 64], 4, 4, 4, ChannelOrder::Bgr), 80).is_err());
    assert!(encode_png(&Pixels::packed(&[], 0, 0, 3, ChannelOrder::Bgr), 1).is_err());
}
