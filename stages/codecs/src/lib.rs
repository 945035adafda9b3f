//! PNG and JPEG with OpenCV's bytes, without OpenCV's imgcodecs.
//!
//! Every `dfd` process used to link `libopencv_imgcodecs` (and `libopencv_videoio`, which needs
//! it) for `imencode`/`imdecode`. Those two libraries bring about a hundred more (GDAL, OpenEXR,
//! GStreamer, ...), and with every library bound at load time (`BIND_NOW`) the dynamic loader
//! spent about 70 ms on them before `main`: a third of a 640x360 clip's whole preprocessing. The
//! codecs dfd actually uses are libpng's and libjpeg's, so this crate calls those two libraries
//! itself, *the way imgcodecs calls them* (OpenCV 4.6's `grfmt_png.cpp` and `grfmt_jpeg.cpp`: the
//! same calls, the same parameters). Same library, same calls: the same bytes, which is what keeps
//! the `faces` and `ssim_maps` tables' content hashes what they were; the tests compare every
//! function here with `imencode`/`imdecode` on the same pixels.
//!
//! The C half (`src/codecs.c`) exists because both libraries report errors by `longjmp`, which
//! must not cross Rust frames; it catches them and returns the library's message.
//!
//! Scope: 8-bit gray or 3-channel images; PNG written at an explicit zlib level (dfd always gives
//! one); baseline JPEG at a quality. PNG decoding is not here: `dfd-stages` reads PNG with the
//! `png` crate (lossless, so any correct decoder gives imdecode's pixels).

use std::os::raw::{c_char, c_int, c_void};

/// What went wrong, with libpng's or libjpeg's own message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

/// The order of a color image's channels in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// OpenCV's order (a `Mat`'s pixels).
    Bgr,
    /// The order PNG and JPEG store (an ndarray image's pixels).
    Rgb,
}

/// 8-bit pixels in rows: `height` rows of `width` pixels of `channels` (1: gray, 3: color in
/// `order`) bytes, each row starting `stride` bytes after the previous one.
#[derive(Debug, Clone, Copy)]
pub struct Pixels<'a> {
    pub bytes: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub channels: u8,
    pub order: ChannelOrder,
}

impl<'a> Pixels<'a> {
    /// Tightly packed rows (`stride = width * channels`).
    pub fn packed(
        bytes: &'a [u8],
        width: u32,
        height: u32,
        channels: u8,
        order: ChannelOrder,
    ) -> Pixels<'a> {
        Pixels {
            bytes,
            width,
            height,
            stride: width as usize * channels as usize,
            channels,
            order,
        }
    }

    /// Refuses what the C side would read out of bounds.
    fn check(&self) -> Result<(), CodecError> {
        let row = self.width as usize * self.channels as usize;
        let fits = self.height as usize == 0
            || (self.stride >= row
                && (self.height as usize - 1)
                    .checked_mul(self.stride)
                    .and_then(|start| start.checked_add(row))
                    .is_some_and(|end| end <= self.bytes.len()));
        if !matches!(self.channels, 1 | 3) || !fits {
            return Err(CodecError(format!(
                "{}x{} image of {} channels, {} bytes a row, does not fit {} bytes",
                self.width,
                self.height,
                self.channels,
                self.stride,
                self.bytes.len()
            )));
        }
        Ok(())
    }
}

/// A decoded image: BGR, 3 bytes a pixel, rows packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgrImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// The bytes of `imencode(".png", mat, {IMWRITE_PNG_COMPRESSION, level})` for the BGR (or gray)
/// `mat` holding `image`. `level` is zlib's, 0-9.
pub fn encode_png(image: &Pixels, level: u8) -> Result<Vec<u8>, CodecError> {
    encode(image, level, dfd_png_encode)
}

/// The bytes of `imencode(".jpg", mat, {IMWRITE_JPEG_QUALITY, quality})` for the BGR (or gray)
/// `mat` holding `image`. `quality` is 0-100.
pub fn encode_jpeg(image: &Pixels, quality: u8) -> Result<Vec<u8>, CodecError> {
    encode(image, quality, dfd_jpeg_encode)
}

/// Runs one of the C encoders, which share a signature: `setting` is PNG's level or JPEG's quality.
fn encode(image: &Pixels, setting: u8, encoder: EncodeFn) -> Result<Vec<u8>, CodecError> {
    image.check()?;
    let mut out = Vec::new();
    let mut error = ErrorText::new();
    // SAFETY: `check` keeps every row the C side reads inside `image.bytes`; `out` outlives the
    // call and is only touched through `append` while it runs; `error` has DFD_ERROR_LEN bytes.
    let status = unsafe {
        encoder(
            image.bytes.as_ptr(),
            image.width,
            image.height,
            image.stride,
            c_int::from(image.channels),
            c_int::from(image.order == ChannelOrder::Bgr),
            c_int::from(setting),
            append,
            (&mut out as *mut Vec<u8>).cast(),
            error.as_mut_ptr(),
        )
    };
    error.result(status, || out)
}

/// The pixels of `imdecode(bytes, IMREAD_COLOR)` for a JPEG without an EXIF orientation (dfd
/// writes none): BGR, gray expanded to three channels. CMYK JPEGs are refused, and so is damaged
/// data, which libjpeg only warns about (imdecode returns the image with the rest filled in).
pub fn decode_jpeg_bgr(bytes: &[u8]) -> Result<BgrImage, CodecError> {
    let mut pixels = Vec::new();
    let (mut width, mut height) = (0u32, 0u32);
    let mut error = ErrorText::new();
    // SAFETY: libjpeg reads `bytes` within its length; the output goes only where `allocate`
    // returns, inside `pixels`, which outlives the call; `error` has DFD_ERROR_LEN bytes.
    let status = unsafe {
        dfd_jpeg_decode_bgr(
            bytes.as_ptr(),
            bytes.len(),
            allocate,
            (&mut pixels as *mut Vec<u8>).cast(),
            &mut width,
            &mut height,
            error.as_mut_ptr(),
        )
    };
    error.result(status, || BgrImage {
        width,
        height,
        pixels,
    })
}

/// The C side's error message buffer (`DFD_ERROR_LEN` in codecs.c).
struct ErrorText([c_char; 256]);

impl ErrorText {
    fn new() -> ErrorText {
        ErrorText([0; 256])
    }

    fn as_mut_ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }

    fn result<T>(&self, status: c_int, value: impl FnOnce() -> T) -> Result<T, CodecError> {
        if status == 0 {
            return Ok(value());
        }
        let bytes: Vec<u8> = self
            .0
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Err(CodecError(if text.is_empty() {
            "codec failed without a message".into()
        } else {
            text
        }))
    }
}

/// The writer the C side appends output through; `sink` is a `Vec<u8>`.
extern "C" fn append(sink: *mut c_void, bytes: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: `sink` is the `&mut Vec<u8>` the caller passed, alive and not otherwise borrowed for
    // the call; the C side hands `len` readable bytes at `bytes`.
    unsafe {
        let out = &mut *sink.cast::<Vec<u8>>();
        out.extend_from_slice(std::slice::from_raw_parts(bytes, len));
    }
}

/// The allocator the JPEG decoder asks for its output through; `sink` is a `Vec<u8>`, grown to
/// `len` bytes (NULL when that much memory cannot be had).
extern "C" fn allocate(sink: *mut c_void, len: usize) -> *mut u8 {
    // SAFETY: as in `append`.
    let out = unsafe { &mut *sink.cast::<Vec<u8>>() };
    if out.try_reserve_exact(len).is_err() {
        return std::ptr::null_mut();
    }
    out.resize(len, 0);
    out.as_mut_ptr()
}

type WriteFn = extern "C" fn(*mut c_void, *const u8, usize);
type AllocFn = extern "C" fn(*mut c_void, usize) -> *mut u8;

/// `dfd_png_encode` and `dfd_jpeg_encode`: pixels, width, height, stride, channels, BGR order,
/// level or quality, writer, its sink, error buffer.
type EncodeFn = unsafe extern "C" fn(
    *const u8,
    u32,
    u32,
    usize,
    c_int,
    c_int,
    c_int,
    WriteFn,
    *mut c_void,
    *mut c_char,
) -> c_int;

extern "C" {
    fn dfd_png_encode(
        pixels: *const u8,
        width: u32,
        height: u32,
        stride: usize,
        channels: c_int,
        bgr: c_int,
        level: c_int,
        write: WriteFn,
        sink: *mut c_void,
        error: *mut c_char,
    ) -> c_int;
    fn dfd_jpeg_encode(
        pixels: *const u8,
        width: u32,
        height: u32,
        stride: usize,
        channels: c_int,
        bgr: c_int,
        quality: c_int,
        write: WriteFn,
        sink: *mut c_void,
        error: *mut c_char,
    ) -> c_int;
    fn dfd_jpeg_decode_bgr(
        bytes: *const u8,
        len: usize,
        alloc: AllocFn,
        sink: *mut c_void,
        width: *mut u32,
        height: *mut u32,
        error: *mut c_char,
    ) -> c_int;
}
