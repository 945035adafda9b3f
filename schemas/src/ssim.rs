//! `ssim_maps`: per face frame, the SSIM map against its neighbour in time, and `ssim_stats`: per
//! video, the mean and population variance of those scores. Written by `ssim`.

/// `ssim_maps`.
pub mod maps {

    crate::table! {
        /// The SSIM of one face frame against its neighbour (the previous face frame; the first
        /// frame is compared with the second).
        pub struct SsimMapRow in "ssim_maps" {
            video_id: String,
            sample_index: u32,
            frame_index: u64,
            /// `sample_index` of the frame it was compared with.
            compared_with: u32,
            /// scikit-image's score: the map's mean with a 3-pixel border cropped.
            score: f64,
            /// The map's minimum and maximum before normalisation: `map_min + png / 255 *
            /// (map_max - map_min)` recovers the float map to within half a grey level.
            map_min: f32,
            map_max: f32,
            /// The map min-max normalised to 8-bit grey, as PNG (as the reference stored it); an
            /// HF `datasets` Image (`{bytes, path}`, `path` null).
            map: crate::EncodedImage,
        }
        validate = |_| Ok(());
    }
}

/// `ssim_stats`.
pub mod stats {

    crate::table! {
        /// SSIM statistics of one video; null mean and variance when it has fewer than two face
        /// frames (no pair to compare), never NaN.
        pub struct SsimStatsRow in "ssim_stats" {
            video_id: String,
            /// Face frames of the video (= scores when at least 2).
            frames: u32,
            mean: Option<f64>,
            /// Population variance (numpy's `var`, ddof 0), as the reference computed it.
            variance: Option<f64>,
        }
        validate = |_| Ok(());
    }
}
