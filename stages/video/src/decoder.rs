//! Decoding packets into frames, with a discard level chosen per packet.

use std::ptr;

use ffmpeg_sys_next as ff;

use crate::input::{Input, Packet};
use crate::VideoError;

/// How much of the next packet the decoder may leave undecoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Decode it (FFmpeg's default: only empty packets are dropped).
    Nothing,
    /// Skip it if no other frame refers to it (`AVDISCARD_NONREF`): then it yields no frame, and
    /// every other frame decodes to the same pixels as when it is decoded.
    NonReference,
}

/// A video decoder for an [`Input`]'s stream.
pub struct Decoder {
    context: *mut ff::AVCodecContext,
    frame: *mut ff::AVFrame,
}

// SAFETY: the codec context and frame are owned by this value alone; moved, never shared.
unsafe impl Send for Decoder {}

impl Decoder {
    /// A decoder for `input`'s video stream running `threads` threads, FFmpeg's default thread
    /// types (frame and slice), as OpenCV sets it up.
    pub fn new(input: &Input, threads: usize) -> Result<Decoder, VideoError> {
        // SAFETY: the parameters belong to the open input; every pointer is checked before use and
        // freed by Drop on the error paths (the Decoder is built before anything can fail).
        unsafe {
            let parameters = input.parameters();
            let codec = ff::avcodec_find_decoder((*parameters).codec_id);
            if codec.is_null() {
                return Err(VideoError::Unsupported(format!(
                    "no decoder for codec id {:?}",
                    (*parameters).codec_id
                )));
            }
            let decoder = Decoder {
                context: ff::avcodec_alloc_context3(codec),
                frame: ff::av_frame_alloc(),
            };
            if decoder.context.is_null() || decoder.frame.is_null() {
                return Err(VideoError::Unsupported(
                    "out of memory for a decoder".into(),
                ));
            }
            (*decoder.context).thread_count = threads.clamp(1, 16) as i32;
            let code = ff::avcodec_parameters_to_context(decoder.context, parameters);
            if code < 0 {
                return Err(VideoError::ffmpeg("cannot set up the decoder", code));
            }
            let code = ff::avcodec_open2(decoder.context, codec, ptr::null_mut());
            if code < 0 {
                return Err(VideoError::ffmpeg("cannot open the decoder", code));
            }
            // OpenCV keeps the stream's size where a decoder reports another (e.g. vp6f).
            let (width, height) = ((*parameters).width, (*parameters).height);
            if width != 0 {
                (*decoder.context).width = width;
            }
            if height != 0 {
                (*decoder.context).height = height;
            }
            Ok(decoder)
        }
    }

    /// Sends `packet` (or, for `None`, the end of the stream) to the decoder.
    pub fn send(&mut self, packet: Option<&Packet>, discard: Discard) -> Result<(), VideoError> {
        // SAFETY: the context is open; skip_frame is read by the decoder when the packet is
        // submitted (frame threads copy it into their own context at submission).
        let code = unsafe {
            (*self.context).skip_frame = match discard {
                Discard::Nothing => ff::AVDiscard::AVDISCARD_DEFAULT,
                Discard::NonReference => ff::AVDiscard::AVDISCARD_NONREF,
            };
            ff::avcodec_send_packet(self.context, packet.map_or(ptr::null(), Packet::as_ptr))
        };
        if code < 0 {
            return Err(VideoError::ffmpeg("the decoder refused a packet", code));
        }
        Ok(())
    }

    /// The next decoded frame, or `None` when the decoder needs more input (or has ended).
    pub fn receive(&mut self) -> Result<Option<Frame<'_>>, VideoError> {
        // SAFETY: context and frame are valid; receive_frame unrefs the frame before filling it.
        let code = unsafe { ff::avcodec_receive_frame(self.context, self.frame) };
        if code == ff::AVERROR(ff::EAGAIN) || code == ff::AVERROR_EOF {
            return Ok(None);
        }
        if code < 0 {
            return Err(VideoError::ffmpeg("cannot decode a frame", code));
        }
        Ok(Some(Frame {
            frame: self.frame,
            decoder: self,
        }))
    }

    /// The size the stream declares (what OpenCV returns frames at).
    pub fn size(&self) -> (u32, u32) {
        // SAFETY: valid for the life of self.
        unsafe {
            (
                (*self.context).width.max(0) as u32,
                (*self.context).height.max(0) as u32,
            )
        }
    }

    /// The coded size (the size rounded up to whole macroblocks), which OpenCV's conversion
    /// context is built for.
    pub(crate) fn coded_size(&self) -> (i32, i32) {
        // SAFETY: valid for the life of self.
        unsafe { ((*self.context).coded_width, (*self.context).coded_height) }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once; both functions accept null.
        unsafe {
            ff::av_frame_free(&mut self.frame);
            ff::avcodec_free_context(&mut self.context);
        }
    }
}

/// A decoded frame, borrowed from its decoder until the next call to it.
pub struct Frame<'a> {
    frame: *mut ff::AVFrame,
    pub(crate) decoder: &'a Decoder,
}

impl Frame<'_> {
    /// The timestamp OpenCV reports for the frame: FFmpeg's best-effort timestamp, or, where that
    /// is absent or zero, the frame's packet decoding timestamp (OpenCV 4.6's rule).
    pub fn opencv_timestamp(&self) -> i64 {
        // SAFETY: valid while borrowed.
        let (best_effort, pkt_dts) =
            unsafe { ((*self.frame).best_effort_timestamp, (*self.frame).pkt_dts) };
        if best_effort != ff::AV_NOPTS_VALUE && best_effort != 0 {
            best_effort
        } else {
            pkt_dts
        }
    }

    /// The presentation timestamp the frame's packet carried.
    pub fn pts(&self) -> i64 {
        // SAFETY: valid while borrowed.
        unsafe { (*self.frame).pts }
    }

    pub(crate) fn as_ptr(&self) -> *const ff::AVFrame {
        self.frame
    }
}
