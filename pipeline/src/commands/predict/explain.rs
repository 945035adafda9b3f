//! `dfd predict --explain DIR`: the evidence behind each verdict, as files a person opens.
//!
//! For each video with a verdict, in `DIR/<video>/` (`<video>` the answer's name made a safe
//! file name, as `dfd export faces` makes them):
//! - `timeline.png`: P(FAKE) of each scored frame against its time, the threshold drawn (the
//!   report's timeline plot);
//! - for a CNN detector, `saliency-<rank>-frame-<frame>.png` for the frames that decided the
//!   verdict (the [`DECIDING_FRAMES`] scored highest for FAKE, lowest for REAL): the face crop
//!   with its Grad-CAM map toward the verdict blended over it. A detector without
//!   convolutional block (ViT-B/16), or one stored without its burn weights, gets the reason
//!   instead, once per video.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dfd_schemas::{FaceRow, SsimMapRow, SsimStatsRow, TrainedModelRow};
use dfd_stages::explain::{
    self, deciding_frames, encode_png_rgb, Evidence, FramesToExplain, DECIDING_FRAMES,
};
use dfd_stages::model_inputs::{video_samples, ModelSample};
use dfd_stages::report::plots::{timeline_png, Timeline};
use serde::Serialize;

use super::{FrameScore, Prediction};
use crate::commands::export::names::safe_name;

/// What `--explain` wrote for one video.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The plot of the frame scores over time.
    pub timeline: PathBuf,
    /// The saliency images of the deciding frames, the most decisive first.
    pub saliency: Vec<SaliencyFile>,
    /// Why there are no saliency images, when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saliency_unavailable: Option<String>,
}

/// One deciding frame's saliency image.
#[derive(Debug, Clone, Serialize)]
pub struct SaliencyFile {
    pub frame_index: u64,
    pub time_s: f64,
    /// P(FAKE) of the frame, as scored.
    pub score: f64,
    pub path: PathBuf,
}

/// The faces and SSIM inputs of a chunk, for the deciding frames' model inputs.
pub struct ChunkFaces<'a> {
    pub faces: &'a [FaceRow],
    pub maps: &'a [SsimMapRow],
    pub stats: &'a [SsimStatsRow],
}

/// Writes the explanations of `predictions` (one chunk) under `dir` and attaches them.
pub fn explain_chunk(
    dir: &Path,
    model: &TrainedModelRow,
    threshold: f64,
    inputs: &ChunkFaces,
    predictions: &mut [Prediction],
) -> Result<()> {
    let explained: Vec<usize> = (0..predictions.len())
        .filter(|&i| verdict_fake(&predictions[i]).is_some() && !predictions[i].frames.is_empty())
        .collect();
    // The deciding frames' samples, decoded per video.
    let mut samples: Vec<Vec<ModelSample>> = Vec::new();
    let mut chosen: Vec<Vec<FrameScore>> = Vec::new();
    for &i in &explained {
        let p = &predictions[i];
        let fake = verdict_fake(p).unwrap_or(true);
        let scores: Vec<f64> = p.frames.iter().map(|f| f.score).collect();
        let frames: Vec<FrameScore> = deciding_frames(&scores, fake, DECIDING_FRAMES)
            .into_iter()
            .map(|k| p.frames[k].clone())
            .collect();
        let faces: Vec<&FaceRow> = inputs
            .faces
            .iter()
            .filter(|f| {
                f.video_id == p.video && frames.iter().any(|s| s.frame_index == f.frame_index)
            })
            .collect();
        let maps: Vec<&SsimMapRow> = inputs
            .maps
            .iter()
            .filter(|m| m.video_id == p.video)
            .collect();
        let stats = inputs.stats.iter().find(|s| s.video_id == p.video);
        let mut decoded = video_samples(&faces, &maps, stats)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("the face crops of {}", p.video))?;
        // In the order of `frames`, the most decisive first.
        decoded.sort_by_key(|s| frames.iter().position(|f| f.frame_index == s.frame_index));
        samples.push(decoded);
        chosen.push(frames);
    }
    let saliency = match explain::available(model) {
        Err(reason) => Err(reason.to_string()),
        Ok(()) => {
            let requests: Vec<FramesToExplain> = explained
                .iter()
                .zip(&samples)
                .map(|(&i, samples)| FramesToExplain {
                    video_id: &predictions[i].video,
                    samples: samples.iter().collect(),
                    evidence: if verdict_fake(&predictions[i]) == Some(true) {
                        Evidence::Fake
                    } else {
                        Evidence::Real
                    },
                })
                .collect();
            Ok(explain::saliency(model, &requests).context("computing Grad-CAM")?)
        }
    };
    for (n, &i) in explained.iter().enumerate() {
        let p = &predictions[i];
        let folder = dir.join(safe_name(&p.video));
        fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let timeline = folder.join("timeline.png");
        let png = timeline_png(
            &format!("Frame scores over time, {}", model.model),
            &[Timeline {
                video_id: p.video.clone(),
                fake: None,
                points: p.frames.iter().map(|f| (f.time_s, f.score)).collect(),
            }],
            threshold,
        )
        .with_context(|| format!("drawing the timeline of {}", p.video))?;
        write(&timeline, &png)?;
        let mut explanation = Explanation {
            timeline,
            saliency: Vec::new(),
            saliency_unavailable: None,
        };
        match &saliency {
            Err(reason) => explanation.saliency_unavailable = Some(reason.clone()),
            Ok(maps) => {
                for (rank, map) in maps[n].iter().enumerate() {
                    let Some(frame) = chosen[n].iter().find(|f| f.frame_index == map.frame_index)
                    else {
                        continue;
                    };
                    let path = folder.join(format!(
                        "saliency-{}-frame-{}.png",
                        rank + 1,
                        map.frame_index
                    ));
                    let png = encode_png_rgb(&map.overlay).map_err(anyhow::Error::msg)?;
                    write(&path, &png)?;
                    explanation.saliency.push(SaliencyFile {
                        frame_index: frame.frame_index,
                        time_s: frame.time_s,
                        score: frame.score,
                        path,
                    });
                }
            }
        }
        predictions[i].explanation = Some(explanation);
    }
    Ok(())
}

/// `Some(true)` for a FAKE verdict, `Some(false)` for REAL, `None` for the others.
fn verdict_fake(p: &Prediction) -> Option<bool> {
    match p.verdict.as_str() {
        "FAKE" => Some(true),
        "REAL" => Some(false),
        _ => None,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
