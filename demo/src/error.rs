//! Why a demo dataset could not be made. Every variant names what it was working on (a file, a
//! clip, an OpenCV call), so the message alone tells the user where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A registry file is missing or unreadable: set-up was not run, or its files were damaged.
    #[error("{}: {message} (run `bash scripts/setup.sh` to fetch the registry media)", path.display())]
    Media { path: PathBuf, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("OpenCV failed in {what}: {source}")]
    OpenCv {
        what: String,
        #[source]
        source: opencv::Error,
    },
    #[error("OpenCV's video reader failed in {what}: {source}")]
    Capture {
        what: String,
        #[source]
        source: dfd_capture::CaptureError,
    },
    #[error("face detection failed: {0}")]
    Detect(#[from] dfd_stages::detect::DetectError),
    #[error("cannot encode {}: {message}", path.display())]
    Encode { path: PathBuf, message: String },
    /// A request or an output folder the generator refuses.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = DemoError> = std::result::Result<T, E>;

/// Wraps an error of OpenCV's video reader with what was being done.
pub(crate) fn captured(
    what: impl Into<String>,
) -> impl FnOnce(dfd_capture::CaptureError) -> DemoError {
    let what = what.into();
    move |source| DemoError::Capture { what, source }
}

/// Wraps an OpenCV error with what was being done.
pub(crate) fn cv(what: impl Into<String>) -> impl FnOnce(opencv::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::OpenCv { what, source }
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}
