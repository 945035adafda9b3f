//! OpenCV's `VideoCapture`, loaded only when a video needs it.
//!
//! dfd reads video with FFmpeg's libraries directly (`dfd-video`); OpenCV's `VideoCapture` is the
//! reader of last resort (a stream the planned reader cannot vouch for) and the demo generator's
//! reader. Linking it costs every process, whether it reads one frame with it or none: its library
//! `libopencv_videoio` needs `libopencv_imgcodecs`, and the two bring about a hundred more (GDAL,
//! OpenEXR, GStreamer, ...), all bound at load time, about 70 ms before `main` on the 2-core
//! machines we measure on; a third of a 640x360 clip's whole preprocessing.
//!
//! So `VideoCapture` lives in a small C++ library of its own (`src/capture.cpp`: `open`, `grab`,
//! `retrieve`, `get`, every OpenCV exception caught and returned as text), built by `build.rs`,
//! embedded in the binary that uses this crate, and opened the first time a [`VideoCapture`] is:
//! written to an in-memory file (`memfd_create`) and `dlopen`ed from there, so there is no file to
//! install beside the binary and nothing to find at run time. It is the same OpenCV, so the same
//! frames, byte for byte (the tests read clips both ways).

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;

/// The library `build.rs` built.
static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libdfd_capture.so"));

/// What went wrong: the library could not be loaded, or OpenCV said no.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    /// OpenCV's video reader could not be loaded (once failed, it stays failed for the process).
    #[error("cannot load OpenCV's video reader: {0}")]
    Load(String),
    /// OpenCV threw; its own message.
    #[error("{0}")]
    OpenCv(String),
    /// A path that cannot be handed to C.
    #[error("{0}")]
    Path(String),
}

/// The properties dfd asks about (OpenCV's `CAP_PROP_*` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Property {
    /// Position of the frame last grabbed, in milliseconds.
    PosMsec = 0,
    FrameWidth = 3,
    FrameHeight = 4,
    Fps = 5,
    /// The frame count the container declares (or OpenCV's estimate from duration and rate).
    FrameCount = 7,
}

/// A retrieved frame, borrowed from the reader until its next `retrieve`.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// `rows` rows of `cols` pixels, each row starting `step` bytes after the previous one.
    pub data: &'a [u8],
    pub rows: i32,
    pub cols: i32,
    /// OpenCV's type of the frame (`CV_8UC3` for BGR).
    pub typ: i32,
    pub step: usize,
    /// The pixels' bytes in one row (`cols` x OpenCV's element size), at most `step`.
    pub row_bytes: usize,
}

/// One video opened with OpenCV's FFmpeg backend: `VideoCapture(path, CAP_FFMPEG)`.
pub struct VideoCapture {
    api: &'static Api,
    handle: *mut c_void,
}

// SAFETY: a cv::VideoCapture may be used from any thread as long as one thread at a time does,
// which `&mut self` on every call that touches it ensures.
unsafe impl Send for VideoCapture {}

impl VideoCapture {
    /// Opens `path`; `Ok(None)` when no backend accepts the file (OpenCV's `isOpened() == false`).
    pub fn open(path: &Path) -> Result<Option<VideoCapture>, CaptureError> {
        let api = api()?;
        let text = path
            .to_str()
            .ok_or_else(|| CaptureError::Path("path is not valid UTF-8".into()))?;
        let text =
            CString::new(text).map_err(|_| CaptureError::Path("path holds a NUL byte".into()))?;
        let mut handle = std::ptr::null_mut();
        let mut error = ErrorText::new();
        // SAFETY: `text` is NUL-terminated; the C side writes `handle` and at most ERROR_LEN bytes
        // of `error`.
        let status =
            unsafe { (api.open)(text.as_ptr(), &mut handle, error.as_mut_ptr(), ERROR_LEN) };
        match error.status(status)? {
            1 if !handle.is_null() => Ok(Some(VideoCapture { api, handle })),
            _ => Ok(None),
        }
    }

    /// `grab()`: demuxes and decodes the next frame; `false` at the end of the stream.
    pub fn grab(&mut self) -> Result<bool, CaptureError> {
        let mut error = ErrorText::new();
        // SAFETY: `handle` is a live capture (closed only on drop).
        let status = unsafe { (self.api.grab)(self.handle, error.as_mut_ptr(), ERROR_LEN) };
        Ok(error.status(status)? == 1)
    }

    /// `retrieve()`: the grabbed frame converted to BGR, or `None` when there is none.
    pub fn retrieve(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let mut data = std::ptr::null();
        let (mut rows, mut cols, mut typ, mut step, mut row_bytes) = (0, 0, 0, 0usize, 0usize);
        let mut error = ErrorText::new();
        // SAFETY: `handle` is live; the out parameters are written only on success.
        let status = unsafe {
            (self.api.retrieve)(
                self.handle,
                &mut data,
                &mut rows,
                &mut cols,
                &mut typ,
                &mut step,
                &mut row_bytes,
                error.as_mut_ptr(),
                ERROR_LEN,
            )
        };
        if error.status(status)? != 1 || data.is_null() || rows <= 0 || cols <= 0 {
            return Ok(None);
        }
        let len = step * (rows as usize - 1) + row_bytes;
        // SAFETY: the Mat behind `data` holds `rows` rows of `row_bytes` bytes `step` apart, and
        // stays untouched until the next `retrieve` or the drop, which both need `&mut self`.
        let data = unsafe { std::slice::from_raw_parts(data, len) };
        Ok(Some(Frame {
            data,
            rows,
            cols,
            typ,
            step,
            row_bytes,
        }))
    }

    /// `get(property)`.
    pub fn get(&self, property: Property) -> Result<f64, CaptureError> {
        let mut value = 0.0;
        let mut error = ErrorText::new();
        // SAFETY: `handle` is live; `get` does not change what `retrieve` handed out.
        let status = unsafe {
            (self.api.get)(
                self.handle,
                property as c_int,
                &mut value,
                error.as_mut_ptr(),
                ERROR_LEN,
            )
        };
        error.status(status)?;
        Ok(value)
    }
}

impl Drop for VideoCapture {
    fn drop(&mut self) {
        // SAFETY: `handle` came from `open` and is closed once, here.
        unsafe { (self.api.close)(self.handle) }
    }
}

const ERROR_LEN: usize = 512;

/// The C side's error message buffer.
struct ErrorText([c_char; ERROR_LEN]);

impl ErrorText {
    fn new() -> ErrorText {
        ErrorText([0; ERROR_LEN])
    }

    fn as_mut_ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }

    /// `status` when it is not -1 (an exception), else the exception's text.
    fn status(&self, status: c_int) -> Result<c_int, CaptureError> {
        if status != -1 {
            return Ok(status);
        }
        let bytes: Vec<u8> = self
            .0
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        Err(CaptureError::OpenCv(
            String::from_utf8_lossy(&bytes).trim().to_string(),
        ))
    }
}

type OpenFn = unsafe extern "C" fn(*const c_char, *mut *mut c_void, *mut c_char, usize) -> c_int;
type GrabFn = unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int;
type RetrieveFn = unsafe extern "C" fn(
    *mut c_void,
    *mut *const u8,
    *mut c_int,
    *mut c_int,
    *mut c_int,
    *mut usize,
    *mut usize,
    *mut c_char,
    usize,
) -> c_int;
type GetFn = unsafe extern "C" fn(*mut c_void, c_int, *mut f64, *mut c_char, usize) -> c_int;
type CloseFn = unsafe extern "C" fn(*mut c_void);

/// The library's entry points, resolved once.
struct Api {
    open: OpenFn,
    grab: GrabFn,
    retrieve: RetrieveFn,
    get: GetFn,
    close: CloseFn,
    /// Keeps the library mapped (for the process: `Api` lives in a static).
    _library: libloading::Library,
}

/// Loads the library on the first call; every later call gets the same (or the same failure).
fn api() -> Result<&'static Api, CaptureError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| CaptureError::Load(e.clone()))
}

fn load() -> Result<Api, String> {
    let library = match open_from_memory() {
        Ok(library) => library,
        // Kernels set to refuse executable memory files (`vm.memfd_noexec`), or no /proc: the
        // library goes to a temporary file instead, removed once it is mapped.
        Err(in_memory) => {
            open_from_temporary_file().map_err(|on_disk| format!("{in_memory}; {on_disk}"))?
        }
    };
    resolve(library)
}

/// `dlopen`s `path`, which holds [`LIBRARY`].
fn open(path: &str) -> Result<libloading::Library, String> {
    // SAFETY: the library's initialisers are OpenCV's (static constructors of videoio and its
    // dependencies), which the process would otherwise have run at start.
    unsafe { libloading::Library::new(path) }.map_err(|e| {
        format!("cannot open it from {path} ({e}); is OpenCV's videoio (libopencv-videoio406) installed?")
    })
}

/// The library written to an in-memory file (`memfd_create`) and opened through `/proc`.
fn open_from_memory() -> Result<libloading::Library, String> {
    let mut fd = -1;
    // MFD_EXEC first: kernels with `vm.memfd_noexec = 1` make memory files non-executable unless
    // asked; kernels older than 6.3 do not know the flag (EINVAL), and need not be asked.
    for flags in [libc::MFD_CLOEXEC | libc::MFD_EXEC, libc::MFD_CLOEXEC] {
        // SAFETY: a NUL-terminated name and memfd_create's own flags.
        fd = unsafe { libc::memfd_create(c"dfd-opencv-capture".as_ptr(), flags) };
        if fd >= 0 {
            break;
        }
    }
    if fd < 0 {
        return Err(format!(
            "cannot create an in-memory file: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(LIBRARY)
        .map_err(|e| format!("cannot write the library to memory: {e}"))?;
    // The mapping outlives the descriptor (`file`, closed on return).
    open(&format!("/proc/self/fd/{fd}"))
}

/// The library written to a fresh file in the temporary folder, opened, and removed.
fn open_from_temporary_file() -> Result<libloading::Library, String> {
    let path = std::env::temp_dir().join(format!(
        "dfd-opencv-capture-{}-{:x}.so",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| file.write_all(LIBRARY));
    let opened = written
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
        .and_then(|()| open(&path.to_string_lossy()));
    let _ = std::fs::remove_file(&path);
    opened
}

/// The library's entry points.
fn resolve(library: libloading::Library) -> Result<Api, String> {
    /// The function `name` of `library`, of type `T`.
    ///
    /// SAFETY (of the callers): `T` is the signature capture.cpp gives `name`.
    unsafe fn entry<T: Copy>(library: &libloading::Library, name: &str) -> Result<T, String> {
        library
            .get::<T>(name)
            .map(|symbol| *symbol)
            .map_err(|_| format!("the library has no {name}"))
    }
    // SAFETY: each type below is the signature capture.cpp declares for that name.
    unsafe {
        Ok(Api {
            open: entry(&library, "dfd_capture_open")?,
            grab: entry(&library, "dfd_capture_grab")?,
            retrieve: entry(&library, "dfd_capture_retrieve")?,
            get: entry(&library, "dfd_capture_get")?,
            close: entry(&library, "dfd_capture_close")?,
            _library: library,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of opening the library give its five entry points (the temporary file is what a
    /// kernel that refuses executable memory files leaves).
    #[test]
    fn the_library_opens_from_memory_and_from_a_temporary_file() {
        for library in [open_from_memory(), open_from_temporary_file()] {
            let library = library.expect("the embedded library opens");
            resolve(library).expect("its entry points resolve");
        }
        let leftovers = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("dfd-opencv-capture-{}-", std::process::id()))
            })
            .count();
        assert_eq!(leftovers, 0, "the temporary copy is removed once mapped");
    }
}
