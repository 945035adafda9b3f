//! `detections`: every face MTCNN found in a sampled frame, written by `detect`. Box and landmarks are
//! in pixels of the frame (see `frames`). `face_index` orders the faces of a frame by confidence.

use arrow::record_batch::RecordBatch;

use crate::{SchemaError, TableRow};

crate::table! {
    /// One face in one frame.
    pub struct DetectionRow in "detections" {
        video_id: String,
        sample_index: u32,
        frame_index: u64,
        /// 0 for the most confident face of the frame, 1 for the next, ...
        face_index: u32,
        /// Left edge of the box.
        x: f32,
        /// Top edge of the box.
        y: f32,
        width: f32,
        height: f32,
        /// O-Net's face probability.
        confidence: f32,
        left_eye_x: f32,
        left_eye_y: f32,
        right_eye_x: f32,
        right_eye_y: f32,
        nose_x: f32,
        nose_y: f32,
        mouth_left_x: f32,
        mouth_left_y: f32,
        mouth_right_x: f32,
        mouth_right_y: f32,
    }
    validate = validate_values;
}

fn validate_values(batch: &RecordBatch) -> Result<(), SchemaError> {
    let t = DetectionRow::TABLE.name;
    for (row, d) in DetectionRow::from_batch(batch)?.iter().enumerate() {
        if !(d.width > 0.0 && d.height > 0.0 && (0.0..=1.0).contains(&d.confidence)) {
            return Err(SchemaError::InvalidValue {
                table: t,
                column: "width",
                row,
                message: format!(
                    "box {}x{} with confidence {} is not a face",
                    d.width, d.height, d.confidence
                ),
            });
        }
    }
    Ok(())
}
