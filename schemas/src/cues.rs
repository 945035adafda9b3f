//! `video_cues`: per video, the model-free numbers a dataset can leak its labels through, written
//! by `cues` and read by `aggregate`, which scores every video with each of them as a baseline. A
//! detector that does not beat a cue on a split has not shown it learned more than that cue.

crate::table! {
    /// The cues of one video; null where the video has nothing to measure (no face frame, no
    /// declared duration, fewer than two face frames for SSIM).
    pub struct VideoCueRow in "video_cues" {
        video_id: String,
        /// Face crops the face cues are averaged over.
        face_frames: u32,
        /// Mean over the face crops of the variance of the Laplacian (3x3 aperture, reflected
        /// edges) of their gray levels: the usual no-reference sharpness measure.
        face_sharpness: Option<f64>,
        /// Mean area of the regions cropped, in frame pixels.
        face_area: Option<f64>,
        /// Mean gray level of the face crops, 0-255.
        face_brightness: Option<f64>,
        /// The file's size in bits over its declared duration (frames / frame rate), bits per second.
        bitrate: Option<f64>,
        /// The video's mean SSIM between consecutive face crops (`ssim_stats.mean`).
        ssim_mean: Option<f64>,
    }
    validate = |batch| crate::column::require_no_nan("video_cues", batch);
}
