use std::ffi::CStr;
use std::os::raw::c_char;

/// What went wrong, with FFmpeg's own message for its error codes.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{what}: {message}")]
    Ffmpeg { what: &'static str, message: String },
    #[error("{0}")]
    Unsupported(String),
}

impl VideoError {
    pub(crate) fn ffmpeg(what: &'static str, code: i32) -> Self {
        VideoError::Ffmpeg {
            what,
            message: error_text(code),
        }
    }
}

/// `av_strerror`'s text for `code`.
fn error_text(code: i32) -> String {
    let mut buffer = [0 as c_char; 256];
    // SAFETY: the buffer is writable for its whole length and av_strerror NUL-terminates within it.
    let found =
        unsafe { ffmpeg_sys_next::av_strerror(code, buffer.as_mut_ptr(), buffer.len()) } == 0;
    if !found {
        return format!("FFmpeg error {code}");
    }
    // SAFETY: NUL-terminated by av_strerror (above).
    unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
