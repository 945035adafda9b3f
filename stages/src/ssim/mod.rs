//! SSIM between consecutive face crops of a video, the temporal-consistency feature of the reference
//! study: a real face changes smoothly from frame to frame, a swapped one flickers.
//!
//! The kernel is pure Rust rather than OpenCV or a port of some other SSIM, because the numbers must
//! match the reference's scikit-image `structural_similarity` (7x7 uniform window, reflected edges,
//! sample covariance, 3-pixel border left out of the score) to 1e-5 on every pixel; the tests check
//! that against maps and scores produced by scikit-image itself. Crops are converted to gray
//! bit-exactly like OpenCV's `cvtColor(RGB2GRAY)` for the same reason: gray levels are the kernel's
//! input, and a one-level difference on some pixels is already visible at that tolerance.

mod gray;
mod kernel;
mod stage;
mod video;

pub use gray::{gray_pixel, rgb_to_gray};
pub use kernel::{structural_similarity, Ssim, SsimError, BORDER, WINDOW};
pub use stage::{SsimParams, SsimStage, NAME};
pub use video::{consecutive_scores, video_stats, VideoSsimStats};
