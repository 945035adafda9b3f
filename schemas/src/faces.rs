//! `faces`: the one face chosen per sampled frame, cropped and resized, written by `crop`; and
//! `frames_without_face`: the sampled frames where no face was chosen, so none is lost silently.

/// `faces`.
pub mod crops {

    crate::table! {
        /// One face crop.
        pub struct FaceRow in "faces" {
            video_id: String,
            sample_index: u32,
            frame_index: u64,
            pts_ms: f64,
            /// Which row of `detections` (of this frame) was chosen.
            face_index: u32,
            confidence: f32,
            /// The region cropped, in frame pixels, after the margin and clamping to the frame.
            x: u32,
            y: u32,
            width: u32,
            height: u32,
            /// Size of the stored crop (224 x 224 by default).
            crop_width: u32,
            crop_height: u32,
            /// The crop as PNG, colours in true RGB order; an HF `datasets` Image (`{bytes, path}`,
            /// `path` null).
            image: crate::EncodedImage,
        }
        validate = |_| Ok(());
    }
}

/// `frames_without_face`.
pub mod misses {

    crate::table! {
        /// A sampled frame with no usable face.
        pub struct FaceMissRow in "frames_without_face" {
            video_id: String,
            sample_index: u32,
            frame_index: u64,
            /// Why: no face detected, or the chosen box was empty after clamping.
            reason: String,
        }
        validate = |_| Ok(());
    }
}
