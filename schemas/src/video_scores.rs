//! `video_scores`: one row per (model variant, video), written by `aggregate`: the frame scores of
//! a video reduced to one number by an aggregation rule, and the verdict at the threshold. This is
//! the table the video-level metrics are computed from, kept so a surprising metric can be traced
//! to the videos behind it.

use crate::Label;

crate::table! {
    /// One model variant's verdict on one video of the validation or test split. Only videos with
    /// at least one scored face frame have a row; the rest are counted in `metrics.unscored`.
    pub struct VideoScoreRow in "video_scores" {
        /// Variant name, as in `models` and `frame_scores`.
        model: String,
        video_id: String,
        /// `val` or `test`, as in `frame_scores`.
        split: String,
        /// `REAL`, `FAKE`, or null for an unlabelled video.
        label: Option<Label>,
        /// Scored face frames the rule reduced.
        frames: u32,
        /// The aggregated P(FAKE), in [0, 1].
        score: f64,
        /// `FAKE` when `score` > the threshold, else `REAL` (so exactly 0.5 is REAL, as in the
        /// reference).
        predicted: Label,
        /// The aggregation rule (`mean`, `vote` or `confident`).
        rule: String,
    }
    validate = |batch| crate::column::require_no_nan("video_scores", batch);
}
