//! Decoded frames to BGR24, exactly as OpenCV 4.6's FFmpeg backend converts them.
//!
//! OpenCV builds its swscale context for the *coded* size with `SWS_BICUBIC`, converts the
//! frame's rows into a buffer from `av_frame_get_buffer(.., 32)` and hands out the stream's size
//! of it. swscale picks its code path (C or SIMD) from the sizes and alignment, and the paths do
//! not round alike, so the same sizes, flags and alignment are what make the bytes the same.

use std::ptr;

use ffmpeg_sys_next as ff;

use crate::decoder::Frame;
use crate::VideoError;

/// A cached conversion context and output buffer, reused across frames of one stream.
pub struct BgrConverter {
    context: *mut ff::SwsContext,
    output: *mut ff::AVFrame,
    /// Coded size and source pixel format the context and buffer were made for.
    made_for: Option<(i32, i32, i32)>,
}

// SAFETY: owned by this value alone; moved, never shared.
unsafe impl Send for BgrConverter {}

impl Default for BgrConverter {
    fn default() -> Self {
        BgrConverter {
            context: ptr::null_mut(),
            output: ptr::null_mut(),
            made_for: None,
        }
    }
}

impl BgrConverter {
    /// Appends the frame's pixels to `pixels` as tightly packed BGR24 rows, at the decoder's
    /// declared size. Appending, so that a caller that reserved room for all of a video's frames
    /// gets them in one buffer that becomes the `frames` batch's without a copy (a 1080p video's
    /// 20 frames are 124 MB; a copy doubled that while it ran).
    pub fn convert_into(
        &mut self,
        frame: &Frame<'_>,
        pixels: &mut Vec<u8>,
    ) -> Result<(), VideoError> {
        let (coded_width, coded_height) = frame.decoder.coded_size();
        let (width, height) = frame.decoder.size();
        // SAFETY: the frame is a decoded picture (valid planes and line sizes); the context and the
        // output buffer are (re)made for exactly this coded size and pixel format before use, and
        // the rows copied out lie within the output buffer (width <= coded width, height <= coded
        // height, 3 bytes a pixel, line size >= 3 x coded width).
        unsafe {
            let source = frame.as_ptr();
            let format = (*source).format;
            if self.made_for != Some((coded_width, coded_height, format)) {
                self.context = ff::sws_getCachedContext(
                    self.context,
                    coded_width,
                    coded_height,
                    std::mem::transmute::<i32, ff::AVPixelFormat>(format),
                    coded_width,
                    coded_height,
                    ff::AVPixelFormat::AV_PIX_FMT_BGR24,
                    ff::SWS_BICUBIC,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null(),
                );
                if self.context.is_null() {
                    return Err(VideoError::Unsupported(format!(
                        "no conversion from pixel format {format} to BGR24"
                    )));
                }
                ff::av_frame_free(&mut self.output);
                self.output = ff::av_frame_alloc();
                if self.output.is_null() {
                    return Err(VideoError::Unsupported("out of memory for a frame".into()));
                }
                (*self.output).format = ff::AVPixelFormat::AV_PIX_FMT_BGR24 as i32;
                (*self.output).width = coded_width;
                (*self.output).height = coded_height;
                let code = ff::av_frame_get_buffer(self.output, 32);
                if code < 0 {
                    self.made_for = None;
                    return Err(VideoError::ffmpeg("cannot allocate a BGR frame", code));
                }
                self.made_for = Some((coded_width, coded_height, format));
            }
            if (width as i32) > coded_width || (height as i32) > coded_height {
                return Err(VideoError::Unsupported(format!(
                    "frame size {width}x{height} exceeds the coded size {coded_width}x{coded_height}"
                )));
            }
            let code = ff::sws_scale(
                self.context,
                (*source).data.as_ptr() as *const *const u8,
                (*source).linesize.as_ptr(),
                0,
                (*source).height,
                (*self.output).data.as_ptr(),
                (*self.output).linesize.as_ptr(),
            );
            if code < 0 {
                return Err(VideoError::ffmpeg("cannot convert a frame to BGR", code));
            }
            let stride = (*self.output).linesize[0] as usize;
            let row = width as usize * 3;
            let base = (*self.output).data[0];
            pixels.reserve(row * height as usize);
            for y in 0..height as usize {
                pixels.extend_from_slice(std::slice::from_raw_parts(base.add(y * stride), row));
            }
            Ok(())
        }
    }
}

impl Drop for BgrConverter {
    fn drop(&mut self) {
        // SAFETY: both accept null and are freed once, here.
        unsafe {
            ff::av_frame_free(&mut self.output);
            ff::sws_freeContext(self.context);
        }
    }
}
