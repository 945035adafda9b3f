//! The `ssim` stage: for every face frame, the SSIM map against its neighbour in time (the previous
//! face frame; the first against the second), and per video the mean and population variance of the
//! scores. Frames are ordered by `sample_index`, i.e. by time; the reference sorted file names as
//! strings, so its frame 105 came before frame 15.

use std::collections::BTreeMap;

use dfd_schemas::{FaceRow, SsimMapRow, SsimStatsRow, TableRow};
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{structural_similarity, video_stats};
use crate::image_io::{decode_png_gray, encode_png_gray};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "ssim";

/// The `[ssim]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsimParams {
    /// zlib level of the stored PNG maps.
    pub png_compression: u8,
}

impl Default for SsimParams {
    fn default() -> Self {
        SsimParams { png_compression: 1 }
    }
}

impl SsimParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.png_compression > 9 {
            return Err(format!(
                "ssim.png_compression must be 0-9, got {}",
                self.png_compression
            ));
        }
        Ok(())
    }
}

pub struct SsimStage {
    params: SsimParams,
}

impl SsimStage {
    pub fn new(params: SsimParams) -> Self {
        SsimStage { params }
    }

    fn video(&self, faces: &[&FaceRow]) -> Result<(Vec<SsimMapRow>, SsimStatsRow), String> {
        let video_id = faces
            .first()
            .map(|f| f.video_id.clone())
            .unwrap_or_default();
        // Decoding, comparing and encoding are independent per face: in parallel (a video alone
        // in its group has every core).
        let grays = faces
            .par_iter()
            .map(|f| {
                decode_png_gray(&f.image)
                    .map_err(|e| format!("face of frame {}: {e}", f.sample_index))
            })
            .collect::<Result<Vec<Array2<u8>>, String>>()?;
        let maps = if faces.len() < 2 {
            Vec::new()
        } else {
            (0..faces.len())
                .into_par_iter()
                .map(|i| {
                    let partner = if i == 0 { 1 } else { i - 1 };
                    let ssim = structural_similarity(grays[i].view(), grays[partner].view())
                        .map_err(|e| format!("frame {}: {e}", faces[i].sample_index))?;
                    let (map_min, map_max) = ssim
                        .map
                        .iter()
                        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                            (lo.min(v), hi.max(v))
                        });
                    Ok(SsimMapRow {
                        video_id: video_id.clone(),
                        sample_index: faces[i].sample_index,
                        frame_index: faces[i].frame_index,
                        compared_with: faces[partner].sample_index,
                        score: ssim.score,
                        map_min,
                        map_max,
                        map: self.encode_map(&ssim.map, map_min, map_max)?.into(),
                    })
                })
                .collect::<Result<Vec<SsimMapRow>, String>>()?
        };
        let scores: Vec<f64> = maps.iter().map(|m| m.score).collect();
        let stats = video_stats(&scores);
        Ok((
            maps,
            SsimStatsRow {
                video_id,
                frames: faces.len() as u32,
                mean: stats.as_ref().map(|s| s.mean),
                variance: stats.as_ref().map(|s| s.var),
            },
        ))
    }

    /// Min-max normalises the map to 0..255 (a constant map becomes all 0) and stores it as PNG.
    fn encode_map(&self, map: &Array2<f32>, lo: f32, hi: f32) -> Result<Vec<u8>, String> {
        let range = hi - lo;
        let levels = map.mapv(|v| {
            if range > 0.0 {
                (((v - lo) / range) * 255.0).round().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        });
        encode_png_gray(&levels, self.params.png_compression)
    }
}

impl Stage for SsimStage {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            // 2: `map` is an HF `datasets` Image struct `{bytes, path}` (was binary).
            version: 2,
            inputs: &[InputDef::of::<FaceRow>(crate::crop::NAME)],
            outputs: &[
                dfd_schemas::SsimMapRow::TABLE,
                dfd_schemas::SsimStatsRow::TABLE,
                dfd_schemas::ErrorRow::TABLE,
            ],
            sharding: Sharding::PerVideo,
            streams: true,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        crate::key_params(self.name(), &self.params, &[])
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let faces = input.rows::<FaceRow>()?;
        let mut by_video: BTreeMap<&str, Vec<&FaceRow>> = input
            .video_ids()
            .iter()
            .map(|id| (id.as_str(), Vec::new()))
            .collect();
        for face in &faces {
            by_video.entry(&face.video_id).or_default().push(face);
        }
        let items = by_video
            .into_iter()
            .map(|(id, faces)| (id.to_string(), faces))
            .collect();
        let (done, errors) = per_video(NAME, items, ctx, |video_id, mut faces: Vec<&FaceRow>| {
            faces.sort_by_key(|f| f.sample_index);
            if faces.is_empty() {
                Ok((Vec::new(), empty_stats(video_id)))
            } else {
                self.video(&faces)
            }
        });
        let mut maps = Vec::new();
        let mut stats = Vec::new();
        for (m, s) in done {
            maps.extend(m);
            stats.push(s);
        }
        Ok(StageOutput::default()
            .with_rows(&maps)?
            .with_rows(&stats)?
            .with_rows(&errors)?)
    }
}

/// Statistics of a video without any face frame.
fn empty_stats(video_id: &str) -> SsimStatsRow {
    SsimStatsRow {
        video_id: video_id.to_string(),
        frames: 0,
        mean: None,
        variance: None,
    }
}
