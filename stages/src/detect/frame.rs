//! Frames as plain borrowed bytes, and the INTER_AREA resize (OpenCV's, bit for bit) the whole
//! cascade relies on.
//!
//! Pixels are kept as `&[u8]` rather than OpenCV `Mat`s so that pyramid levels and crops can be
//! built on several threads from one frame; a `Mat` header is wrapped around the bytes only for the
//! duration of each OpenCV call.

use opencv::boxed_ref::BoxedRef;
use opencv::core::{Mat, Vec3b};

use super::DetectError;
use crate::inter_area;

/// A contiguous, row-major H x W x 3 `u8` image.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub pixels: &'a [u8],
    pub height: usize,
    pub width: usize,
}

impl<'a> Frame<'a> {
    pub fn new(pixels: &'a [u8], height: usize, width: usize) -> Result<Frame<'a>, DetectError> {
        let fits = i32::try_from(height).is_ok() && i32::try_from(width).is_ok();
        if !fits || height == 0 || width == 0 || pixels.len() != height * width * 3 {
            return Err(DetectError::Image(vec![height, width, 3]));
        }
        Ok(Frame {
            pixels,
            height,
            width,
        })
    }

    /// The same bytes as a `CV_8UC3` Mat (`new` checked that the sizes fit in i32).
    pub fn mat(&self) -> Result<BoxedRef<'a, Mat>, DetectError> {
        Mat::new_rows_cols_with_bytes::<Vec3b>(self.height as i32, self.width as i32, self.pixels)
            .map_err(cv("wrapping an image"))
    }

    /// INTER_AREA resize to `height x width`, as the reference's `cv2.resize` on u8 pixels: the
    /// weighted-area downscale of every pyramid level by [`crate::inter_area`], OpenCV's other
    /// algorithms (integer ratios, enlarging) by OpenCV.
    pub fn resize_area(&self, height: usize, width: usize) -> Result<Vec<u8>, DetectError> {
        let image = inter_area::Image {
            pixels: self.pixels,
            height: self.height,
            width: self.width,
        };
        inter_area::resize_area(image, height, width).map_err(cv("resizing"))
    }
}

pub fn to_i32(v: usize) -> Result<i32, DetectError> {
    i32::try_from(v).map_err(|_| DetectError::Image(vec![v]))
}

pub fn cv(what: &'static str) -> impl Fn(opencv::Error) -> DetectError {
    move |source| DetectError::OpenCv { what, source }
}
