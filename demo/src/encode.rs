//! Writing `.mp4` files with the `ffmpeg` program (libx264), frames piped in raw.
//!
//! The `ffmpeg` program, not OpenCV's writer: for the same frames it writes the same bytes (OpenCV
//! 4.6's FFmpeg writer did not, for some clips), and it takes the constant rate factor each pair
//! draws. Without `ffmpeg` (a set-up package) there is no demo set: a writer that cannot honour the
//! pair's compression would make REAL and FAKE differ by codec, the shortcut this generator avoids.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use opencv::core::Mat;
use opencv::prelude::*;

use crate::error::{cv, DemoError, Result};

/// x264's speed preset: `veryfast` spends a third of `medium`'s CPU for a slightly larger file at
/// the same quality, and the quality is what the pair's CRF sets.
pub const X264_PRESET: &str = "veryfast";

/// An `.mp4` being written.
pub struct Encoder {
    path: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Encoder {
    /// Starts `ffmpeg` writing `path` from BGR frames of `width` x `height` at `fps`, H.264 at `crf`.
    pub fn open(path: &Path, width: i32, height: i32, fps: f64, crf: u8) -> Result<Encoder> {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "bgr24"])
            .args(["-s", &format!("{width}x{height}")])
            .args(["-r", &format!("{fps}"), "-i", "-", "-an", "-c:v", "libx264"])
            .args(["-preset", X264_PRESET, "-crf", &crf.to_string()])
            .args(["-pix_fmt", "yuv420p", "-threads", "1"])
            .args(["-fflags", "+bitexact", "-map_metadata", "-1"])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DemoError::Encode {
                path: path.to_path_buf(),
                message: if e.kind() == std::io::ErrorKind::NotFound {
                    "the `ffmpeg` program is not installed (run `bash scripts/setup.sh`)".into()
                } else {
                    format!("cannot start ffmpeg: {e}")
                },
            })?;
        let stdin = child.stdin.take();
        Ok(Encoder {
            path: path.to_path_buf(),
            child,
            stdin,
        })
    }

    pub fn write(&mut self, frame: &Mat) -> Result<()> {
        let owned;
        let continuous = if frame.is_continuous() {
            frame
        } else {
            owned = frame.try_clone().map_err(cv("copy"))?;
            &owned
        };
        let bytes = continuous.data_bytes().map_err(cv("frame bytes"))?;
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes).map_err(|e| e.to_string()),
            None => Err("its input is closed".to_string()),
        };
        written.map_err(|e| self.failed(&format!("ffmpeg stopped reading frames: {e}")))
    }

    /// Flushes and closes the file; fails with ffmpeg's own message if it failed.
    pub fn finish(self) -> Result<()> {
        let Encoder { path, child, stdin } = self;
        drop(stdin);
        let failed = |message: String| DemoError::Encode {
            path: path.clone(),
            message,
        };
        let out = child
            .wait_with_output()
            .map_err(|e| failed(format!("ffmpeg did not finish: {e}")))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(failed(format!("ffmpeg failed ({}): {said}", out.status)));
        }
        Ok(())
    }

    fn failed(&self, message: &str) -> DemoError {
        DemoError::Encode {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }
}
