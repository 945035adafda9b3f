//! `decoded_videos`: one row per video that `decode` could read, saying what the stream held and how
//! many of the requested frames it yielded (a clip shorter than frames x interval yields fewer).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | video_id | utf8 | the video |
//! | frames_requested | uint32 | N, the number of frames asked for |
//! | frames_kept | uint32 | how many were sampled (<= N) |
//! | frames_decoded | uint64 | frames read from the stream (up to the last kept one) |
//! | declared_frames | uint64 | frames the container says the stream has (0 when it does not say) |
//! | fps | float64 | frame rate the container declares (may be nominal for variable-rate video) |
//! | last_pts_ms | float64 | presentation time of the last frame read |
//! | width, height | uint32 | frame size |
//! | note | utf8? | what was odd about the stream, e.g. it ended long before its declared length (truncated) |

use arrow::record_batch::RecordBatch;

use crate::{SchemaError, TableRow};

crate::table! {
    pub struct DecodedVideoRow in "decoded_videos" {
        video_id: String,
        frames_requested: u32,
        frames_kept: u32,
        frames_decoded: u64,
        declared_frames: u64,
        fps: f64,
        last_pts_ms: f64,
        width: u32,
        height: u32,
        note: Option<String>,
    }
    validate = validate_counts;
}

/// No video keeps more frames than were asked for.
fn validate_counts(batch: &RecordBatch) -> Result<(), SchemaError> {
    for (row, r) in DecodedVideoRow::from_batch(batch)?.iter().enumerate() {
        if r.frames_kept > r.frames_requested {
            return Err(SchemaError::InvalidValue {
                table: DecodedVideoRow::TABLE.name,
                column: "frames_kept",
                row,
                message: format!("{} kept of {} requested", r.frames_kept, r.frames_requested),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn the_schema_is_the_one_on_disk() {
        let expected = Schema::new(vec![
            Field::new("video_id", DataType::Utf8, false),
            Field::new("frames_requested", DataType::UInt32, false),
            Field::new("frames_kept", DataType::UInt32, false),
            Field::new("frames_decoded", DataType::UInt64, false),
            Field::new("declared_frames", DataType::UInt64, false),
            Field::new("fps", DataType::Float64, false),
            Field::new("last_pts_ms", DataType::Float64, false),
            Field::new("width", DataType::UInt32, false),
            Field::new("height", DataType::UInt32, false),
            Field::new("note", DataType::Utf8, true),
        ]);
        assert_eq!(
            (DecodedVideoRow::TABLE.schema)().fields(),
            expected.fields()
        );
    }

    #[test]
    fn rows_round_trip_and_more_kept_than_requested_is_refused() {
        let mut row = DecodedVideoRow {
            video_id: "a.mp4".into(),
            frames_requested: 4,
            frames_kept: 4,
            frames_decoded: 10,
            declared_frames: 0,
            fps: 29.97,
            last_pts_ms: 300.0,
            width: 4,
            height: 2,
            note: Some("truncated".into()),
        };
        let batch = DecodedVideoRow::to_batch(std::slice::from_ref(&row)).unwrap();
        DecodedVideoRow::TABLE.validate(&batch).unwrap();
        assert_eq!(
            DecodedVideoRow::from_batch(&batch).unwrap(),
            vec![row.clone()]
        );

        row.frames_kept = 5;
        let batch = DecodedVideoRow::to_batch(&[row]).unwrap();
        let err = DecodedVideoRow::TABLE
            .validate(&batch)
            .unwrap_err()
            .to_string();
        assert!(err.contains("5 kept of 4 requested"), "{err}");
    }
}
