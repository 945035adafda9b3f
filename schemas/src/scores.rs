//! `frame_scores`: P(FAKE) per (model variant, face frame), written by `score`.

use crate::Label;

crate::table! {
    /// One model variant's score of one face frame of the validation or test split.
    pub struct FrameScoreRow in "frame_scores" {
        /// Variant name, as in `models`.
        model: String,
        video_id: String,
        sample_index: u32,
        frame_index: u64,
        /// When the frame is shown: its presentation time in seconds from the start of the video
        /// (decode's `pts_ms` / 1000), for per-video timelines of the scores.
        time_s: f64,
        /// The video's split (`val` or `test`).
        split: String,
        /// `REAL`, `FAKE`, or null for an unlabelled video.
        label: Option<Label>,
        /// P(FAKE), the model's sigmoid output.
        score: f32,
    }
    validate = |_| Ok(());
}
