//! Demuxing: the first video stream of a file and its packets.

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use ffmpeg_sys_next as ff;

use crate::VideoError;

/// An open container, reading the packets of its first video stream (the stream OpenCV reads).
pub struct Input {
    context: *mut ff::AVFormatContext,
    stream: i32,
}

// SAFETY: the format context is owned by this value alone and FFmpeg keeps no thread-local state
// for it; it is moved between threads, never shared.
unsafe impl Send for Input {}

/// What the container says about the video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Seconds per timestamp unit, as a fraction.
    pub time_base: (i32, i32),
    /// The stream's first timestamp, or `None` when the container gives none.
    pub start_time: Option<i64>,
    /// `avg_frame_rate` as a fraction (0/0 or x/0 when unknown).
    pub average_frame_rate: (i32, i32),
    /// The frame count the container declares (0: none).
    pub declared_frames: i64,
    /// The container's duration in seconds, else the stream's, else 0.
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    /// Degrees the display matrix turns the picture by (0 when there is none), in OpenCV's sense
    /// (clockwise, 0..360).
    pub rotation_deg: i32,
}

impl Input {
    /// Opens `path` and finds its first video stream.
    pub fn open(path: &Path) -> Result<Input, VideoError> {
        let text = path
            .to_str()
            .ok_or_else(|| VideoError::Unsupported("path is not valid UTF-8".into()))?;
        let c_path = CString::new(text)
            .map_err(|_| VideoError::Unsupported("path holds a NUL byte".into()))?;
        let mut context: *mut ff::AVFormatContext = ptr::null_mut();
        // SAFETY: `context` is a valid out-pointer; on failure FFmpeg frees what it allocated and
        // leaves it null.
        let code = unsafe {
            ff::avformat_open_input(&mut context, c_path.as_ptr(), ptr::null(), ptr::null_mut())
        };
        if code < 0 {
            return Err(VideoError::ffmpeg("cannot open as a video", code));
        }
        let mut input = Input {
            context,
            stream: -1,
        };
        // SAFETY: the context was opened above.
        let code = unsafe { ff::avformat_find_stream_info(input.context, ptr::null_mut()) };
        if code < 0 {
            return Err(VideoError::ffmpeg(
                "cannot read the stream parameters",
                code,
            ));
        }
        input.stream = (0..input.stream_count())
            .find(|&i| {
                // SAFETY: i < nb_streams.
                let kind = unsafe { (*(*input.av_stream_at(i)).codecpar).codec_type };
                kind == ff::AVMediaType::AVMEDIA_TYPE_VIDEO
            })
            .map(|i| i as i32)
            .ok_or_else(|| VideoError::Unsupported("the file holds no video stream".into()))?;
        Ok(input)
    }

    fn stream_count(&self) -> usize {
        // SAFETY: the context is open for the life of self.
        unsafe { (*self.context).nb_streams as usize }
    }

    /// # Safety
    /// `index` must be below `stream_count()`.
    unsafe fn av_stream_at(&self, index: usize) -> *mut ff::AVStream {
        *(*self.context).streams.add(index)
    }

    pub(crate) fn av_stream(&self) -> *mut ff::AVStream {
        // SAFETY: `stream` was found among the context's streams in `open`.
        unsafe { self.av_stream_at(self.stream as usize) }
    }

    /// The video stream's parameters, for a decoder.
    pub(crate) fn parameters(&self) -> *const ff::AVCodecParameters {
        // SAFETY: a found stream always has codec parameters.
        unsafe { (*self.av_stream()).codecpar }
    }

    pub fn info(&self) -> StreamInfo {
        // SAFETY: the stream and the context are valid for the life of self.
        unsafe {
            let stream = &*self.av_stream();
            let parameters = &*stream.codecpar;
            let container_s = (*self.context).duration as f64 / ff::AV_TIME_BASE as f64;
            let stream_s = stream.duration as f64 * ratio(stream.time_base);
            StreamInfo {
                time_base: (stream.time_base.num, stream.time_base.den),
                start_time: (stream.start_time != ff::AV_NOPTS_VALUE).then_some(stream.start_time),
                average_frame_rate: (stream.avg_frame_rate.num, stream.avg_frame_rate.den),
                declared_frames: stream.nb_frames,
                // OpenCV's rule: the container's duration, unless it is (about) zero.
                duration_s: if container_s >= 1e-6 {
                    container_s
                } else {
                    stream_s
                },
                width: parameters.width.max(0) as u32,
                height: parameters.height.max(0) as u32,
                rotation_deg: self.rotation(),
            }
        }
    }

    /// The display matrix's rotation, as OpenCV computes it (`-round(angle)`, into 0..360).
    fn rotation(&self) -> i32 {
        // SAFETY: the stream is valid; the side data, when present, is a 3x3 int32 matrix.
        unsafe {
            let data = ff::av_stream_get_side_data(
                self.av_stream(),
                ff::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                ptr::null_mut(),
            );
            if data.is_null() {
                return 0;
            }
            let angle = ff::av_display_rotation_get(data as *const i32);
            if !angle.is_finite() {
                return 0;
            }
            let degrees = -(angle.round() as i32);
            if degrees < 0 {
                degrees + 360
            } else {
                degrees
            }
        }
    }

    /// The next packet of the video stream, or `None` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, VideoError> {
        loop {
            let packet = Packet::new()?;
            // SAFETY: context and packet are valid; av_read_frame fills the packet.
            let code = unsafe { ff::av_read_frame(self.context, packet.0) };
            if code == ff::AVERROR_EOF {
                return Ok(None);
            }
            if code == ff::AVERROR(ff::EAGAIN) {
                continue;
            }
            if code < 0 {
                return Err(VideoError::ffmpeg("cannot read a packet", code));
            }
            if packet.stream_index() == self.stream {
                return Ok(Some(packet));
            }
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        // SAFETY: the context was opened by avformat_open_input and is closed once, here.
        unsafe { ff::avformat_close_input(&mut self.context) };
    }
}

/// `num / den` as OpenCV's `r2d` computes it (0 for a zero numerator or denominator).
pub(crate) fn ratio(r: ff::AVRational) -> f64 {
    if r.num == 0 || r.den == 0 {
        0.0
    } else {
        r.num as f64 / r.den as f64
    }
}

/// One demuxed packet (an encoded frame).
pub struct Packet(*mut ff::AVPacket);

// SAFETY: a packet owns its buffer reference; it is moved between threads, never shared.
unsafe impl Send for Packet {}

impl Packet {
    fn new() -> Result<Packet, VideoError> {
        // SAFETY: plain allocation; null on failure.
        let packet = unsafe { ff::av_packet_alloc() };
        if packet.is_null() {
            return Err(VideoError::Unsupported("out of memory for a packet".into()));
        }
        Ok(Packet(packet))
    }

    /// Presentation timestamp in stream time-base units, [`crate::NO_TIMESTAMP`] when absent.
    pub fn pts(&self) -> i64 {
        // SAFETY: valid for the life of self.
        unsafe { (*self.0).pts }
    }

    pub fn dts(&self) -> i64 {
        // SAFETY: valid for the life of self.
        unsafe { (*self.0).dts }
    }

    pub fn is_key(&self) -> bool {
        // SAFETY: valid for the life of self.
        unsafe { (*self.0).flags & ff::AV_PKT_FLAG_KEY != 0 }
    }

    pub fn size(&self) -> usize {
        // SAFETY: valid for the life of self.
        unsafe { (*self.0).size.max(0) as usize }
    }

    fn stream_index(&self) -> i32 {
        // SAFETY: valid for the life of self.
        unsafe { (*self.0).stream_index }
    }

    pub(crate) fn as_ptr(&self) -> *const ff::AVPacket {
        self.0
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: allocated by av_packet_alloc, freed once.
        unsafe { ff::av_packet_free(&mut self.0) };
    }
}
