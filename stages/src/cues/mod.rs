//! `cues`: per video, the simple numbers a dataset can leak its labels through, measured without
//! any model: face sharpness, face size, face brightness, the file's bitrate and the SSIM mean.
//!
//! A deepfake dataset whose FAKEs are sharper, larger, brighter or more compressed than its REALs
//! can be "solved" by that difference alone, and a detector trained on it may learn nothing else
//! (the first demo set did exactly this, with sharpness). `aggregate` scores every video with each
//! cue and reports it beside the detectors, so any dataset's leaks are visible in its report and a
//! detector is only credited with what it does beyond them.

pub mod measure;

use std::collections::BTreeMap;

use dfd_schemas::{
    DecodedVideoRow, ErrorRow, FaceRow, SsimStatsRow, TableRow, VideoCueRow, VideoRow,
};

use crate::image_io::decode_png_rgb;
use crate::ssim::rgb_to_gray;
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "cues";

/// The cues stage; it has no parameters: a cue is a definition, not a setting.
#[derive(Debug, Default)]
pub struct Cues;

/// Everything known of one video that its cues are computed from.
#[derive(Default)]
struct VideoFacts<'a> {
    video: Option<&'a VideoRow>,
    decoded: Option<&'a DecodedVideoRow>,
    faces: Vec<&'a FaceRow>,
    ssim: Option<&'a SsimStatsRow>,
}

impl Cues {
    fn video(video_id: &str, facts: VideoFacts) -> Result<VideoCueRow, String> {
        let (mut sharpness, mut brightness, mut area) = (Vec::new(), Vec::new(), Vec::new());
        for face in &facts.faces {
            let rgb = decode_png_rgb(&face.image)
                .map_err(|e| format!("face of frame {}: {e}", face.sample_index))?;
            let gray = rgb_to_gray(rgb.view())
                .map_err(|e| format!("face of frame {}: {e}", face.sample_index))?;
            sharpness.extend(measure::laplacian_variance(gray.view()));
            brightness.extend(measure::mean_level(gray.view()));
            area.push(f64::from(face.width) * f64::from(face.height));
        }
        Ok(VideoCueRow {
            video_id: video_id.to_string(),
            face_frames: facts.faces.len() as u32,
            face_sharpness: mean(&sharpness),
            face_area: mean(&area),
            face_brightness: mean(&brightness),
            bitrate: bitrate(facts.video, facts.decoded),
            ssim_mean: facts.ssim.and_then(|s| s.mean),
        })
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Bits per second of the file over the stream's declared duration (declared frames over frame
/// rate), or, when the container declares no length, over the time of the last frame read plus
/// one frame; `None` when neither is known.
fn bitrate(video: Option<&VideoRow>, decoded: Option<&DecodedVideoRow>) -> Option<f64> {
    let (video, decoded) = (video?, decoded?);
    if !(decoded.fps.is_finite() && decoded.fps > 0.0) {
        return None;
    }
    let seconds = if decoded.declared_frames > 0 {
        decoded.declared_frames as f64 / decoded.fps
    } else {
        decoded.last_pts_ms / 1000.0 + 1.0 / decoded.fps
    };
    (seconds > 0.0).then(|| video.size_bytes as f64 * 8.0 / seconds)
}

impl Stage for Cues {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            version: 1,
            inputs: &[
                InputDef::of::<VideoRow>(crate::ingest::NAME),
                InputDef::of::<DecodedVideoRow>(crate::decode::NAME),
                InputDef::of::<FaceRow>(crate::crop::NAME),
                InputDef::of::<SsimStatsRow>(crate::ssim::NAME),
            ],
            outputs: &[VideoCueRow::TABLE, ErrorRow::TABLE],
            sharding: Sharding::PerVideo,
            streams: false,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        Ok(serde_json::json!({}))
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let videos = input.rows::<VideoRow>()?;
        let decoded = input.rows::<DecodedVideoRow>()?;
        let faces = input.rows::<FaceRow>()?;
        let ssim = input.rows::<SsimStatsRow>()?;
        let mut facts: BTreeMap<&str, VideoFacts> = input
            .video_ids()
            .iter()
            .map(|id| (id.as_str(), VideoFacts::default()))
            .collect();
        for v in &videos {
            facts.entry(&v.video_id).or_default().video = Some(v);
        }
        for d in &decoded {
            facts.entry(&d.video_id).or_default().decoded = Some(d);
        }
        for f in &faces {
            facts.entry(&f.video_id).or_default().faces.push(f);
        }
        for s in &ssim {
            facts.entry(&s.video_id).or_default().ssim = Some(s);
        }
        let items = facts
            .into_iter()
            .filter(|(_, f)| f.video.is_some())
            .map(|(id, f)| (id.to_string(), f))
            .collect();
        let (rows, errors) = per_video(NAME, items, ctx, |id, f| Cues::video(id, f));
        Ok(StageOutput::default()
            .with_rows(&rows)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(declared_frames: u64, fps: f64) -> DecodedVideoRow {
        DecodedVideoRow {
            video_id: "a.mp4".into(),
            frames_requested: 20,
            frames_kept: 20,
            frames_decoded: 250,
            declared_frames,
            fps,
            last_pts_ms: 9_960.0,
            width: 320,
            height: 240,
            note: None,
        }
    }

    fn video(size_bytes: u64) -> VideoRow {
        VideoRow {
            video_id: "a.mp4".into(),
            path: "/d/a.mp4".into(),
            label: None,
            split: None,
            original: None,
            group: "a.mp4".into(),
            size_bytes,
            modified_ms: 0,
        }
    }

    #[test]
    fn bitrate_is_bits_over_the_declared_duration() {
        let v = video(1_000_000);
        assert_eq!(
            bitrate(Some(&v), Some(&decoded(250, 25.0))),
            Some(800_000.0)
        );
        // No declared length: the last frame's time plus one frame, 10 s here.
        assert_eq!(bitrate(Some(&v), Some(&decoded(0, 25.0))), Some(800_000.0));
        assert_eq!(bitrate(Some(&v), Some(&decoded(250, 0.0))), None);
        assert_eq!(bitrate(Some(&v), None), None);
    }
}
