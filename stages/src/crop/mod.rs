//! `crop`: one face per sampled frame, cut out with a margin, resized, stored losslessly.
//!
//! Frames where no face is chosen go to `frames_without_face` with the reason, so a video whose faces
//! vanish is visible in the tables rather than silently thinner.

mod choose;

use std::collections::BTreeMap;

use dfd_schemas::{DetectionRow, FaceMissRow, FaceRow, FrameRef, FrameRow, TableRow};
use opencv::core::{Mat, Rect, Size};
use opencv::imgproc;
use opencv::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use choose::{choose_face, Region};

use crate::image_io::{encode_png, frame_bgr};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "crop";

/// How the crop is resized to its fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Bilinear: `cv2.resize`'s default, what the reference study used.
    Linear,
    /// Pixel-area averaging: better for large downscales (a 1080p face to 224), 10x slower.
    Area,
}

/// The `[crop]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropParams {
    /// Side of the square crop in pixels (the reference: 224).
    pub size: u32,
    /// Extra context around the box, as a fraction of its size added in total (0.3 = 15% on each
    /// side); 0 crops the box exactly, as the reference did.
    pub margin: f32,
    pub interpolation: Interpolation,
    /// zlib level of the stored PNG crops.
    pub png_compression: u8,
}

impl Default for CropParams {
    fn default() -> Self {
        CropParams {
            size: 224,
            margin: 0.0,
            interpolation: Interpolation::Linear,
            png_compression: 1,
        }
    }
}

impl CropParams {
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=4096).contains(&self.size) {
            return Err(format!("crop.size must be 8-4096, got {}", self.size));
        }
        if !(self.margin.is_finite() && (0.0..=4.0).contains(&self.margin)) {
            return Err(format!("crop.margin must be 0-4, got {}", self.margin));
        }
        if self.png_compression > 9 {
            return Err(format!(
                "crop.png_compression must be 0-9, got {}",
                self.png_compression
            ));
        }
        Ok(())
    }

    /// The pixel region to cut for `face` in a `width` x `height` frame, clamped to the frame;
    /// `None` when nothing is left.
    pub fn region(&self, face: &Region, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        let grow = 1.0 + self.margin;
        let (w, h) = (face.width * grow, face.height * grow);
        let x0 = (face.x - (w - face.width) / 2.0).floor().max(0.0);
        let y0 = (face.y - (h - face.height) / 2.0).floor().max(0.0);
        let x1 = (face.x - (w - face.width) / 2.0 + w)
            .round()
            .min(width as f32);
        let y1 = (face.y - (h - face.height) / 2.0 + h)
            .round()
            .min(height as f32);
        (x1 > x0 && y1 > y0).then_some((x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
    }

    /// The face crop as the `faces` table stores it: `region` (x, y, width, height, as from
    /// [`CropParams::region`]) of the BGR `frame`, resized to `size` x `size`, as PNG.
    pub fn cut(
        &self,
        frame: &impl MatTraitConst,
        region: (u32, u32, u32, u32),
    ) -> Result<Vec<u8>, String> {
        let (x, y, width, height) = region;
        let rect = Rect::new(x as i32, y as i32, width as i32, height as i32);
        let roi = Mat::roi(frame, rect).map_err(|e| format!("cannot cut {rect:?}: {e}"))?;
        let mut resized = Mat::default();
        let side = self.size as i32;
        let interpolation = match self.interpolation {
            Interpolation::Linear => imgproc::INTER_LINEAR,
            Interpolation::Area => imgproc::INTER_AREA,
        };
        imgproc::resize(
            &roi,
            &mut resized,
            Size::new(side, side),
            0.0,
            0.0,
            interpolation,
        )
        .map_err(|e| format!("cannot resize: {e}"))?;
        encode_png(&resized, self.png_compression)
    }
}

/// A frame, the detection it keeps, and the region of it to cut (x, y, width, height).
type Pick<'a> = (&'a FrameRef<'a>, &'a DetectionRow, (u32, u32, u32, u32));

/// One video's frames and, by sample index, the faces detected in them.
type VideoInput<'a> = (Vec<FrameRef<'a>>, BTreeMap<u32, Vec<&'a DetectionRow>>);

pub struct Crop {
    params: CropParams,
}

impl Crop {
    pub fn new(params: CropParams) -> Self {
        Crop { params }
    }

    /// The crops of one video's frames, in time order. Which face a frame keeps depends on the
    /// face kept before it ([`choose_face`] follows it), so the choices are made in order; the
    /// cuts, nearly all of the work, then run in parallel (a video alone in its group has every
    /// core).
    fn crop_video(
        &self,
        frames: &[FrameRef],
        detections: &BTreeMap<u32, Vec<&DetectionRow>>,
    ) -> Result<(Vec<FaceRow>, Vec<FaceMissRow>), String> {
        let mut picks: Vec<Pick> = Vec::new();
        let mut misses = Vec::new();
        let mut previous: Option<Region> = None;
        for frame in frames {
            let found = detections
                .get(&frame.sample_index)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let candidates: Vec<(Region, f32)> = found
                .iter()
                .map(|d| {
                    let region = Region {
                        x: d.x,
                        y: d.y,
                        width: d.width,
                        height: d.height,
                    };
                    (region, d.confidence)
                })
                .collect();
            let miss = |reason: &str| FaceMissRow {
                video_id: frame.video_id.to_string(),
                sample_index: frame.sample_index,
                frame_index: frame.frame_index,
                reason: reason.to_string(),
            };
            let Some(chosen) = choose_face(&candidates, previous.as_ref()) else {
                misses.push(miss("no face detected"));
                continue;
            };
            let Some(region) = self
                .params
                .region(&candidates[chosen].0, frame.width, frame.height)
            else {
                misses.push(miss("face box lies outside the frame"));
                continue;
            };
            previous = Some(candidates[chosen].0);
            picks.push((frame, found[chosen], region));
        }
        let faces = picks
            .par_iter()
            .map(|&(frame, detection, region)| {
                let image = frame_bgr(frame)
                    .and_then(|bgr| self.params.cut(&bgr, region))
                    .map_err(|e| format!("frame {}: {e}", frame.sample_index))?;
                let (x, y, width, height) = region;
                Ok(FaceRow {
                    video_id: frame.video_id.to_string(),
                    sample_index: frame.sample_index,
                    frame_index: frame.frame_index,
                    pts_ms: frame.pts_ms,
                    face_index: detection.face_index,
                    confidence: detection.confidence,
                    x,
                    y,
                    width,
                    height,
                    crop_width: self.params.size,
                    crop_height: self.params.size,
                    image: image.into(),
                })
            })
            .collect::<Result<Vec<FaceRow>, String>>()?;
        Ok((faces, misses))
    }
}

impl Stage for Crop {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            // 2: `image` is an HF `datasets` Image struct `{bytes, path}` (was binary).
            version: 2,
            inputs: &[
                InputDef::of::<FrameRow>(crate::decode::NAME),
                InputDef::of::<DetectionRow>(crate::detect::NAME),
            ],
            outputs: &[
                dfd_schemas::FaceRow::TABLE,
                dfd_schemas::FaceMissRow::TABLE,
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
        // Frames are looked at in place (a raw 1080p frame is 6 MB; see `FrameRef`).
        let mut frames = Vec::new();
        for batch in input.table(&FrameRow::TABLE)? {
            frames.extend(FrameRow::refs(batch)?);
        }
        let detections = input.rows::<DetectionRow>()?;
        let mut by_video: BTreeMap<&str, VideoInput> = input
            .video_ids()
            .iter()
            .map(|id| (id.as_str(), Default::default()))
            .collect();
        for frame in frames {
            by_video.entry(frame.video_id).or_default().0.push(frame);
        }
        for d in &detections {
            by_video
                .entry(&d.video_id)
                .or_default()
                .1
                .entry(d.sample_index)
                .or_default()
                .push(d);
        }
        let items = by_video
            .into_iter()
            .map(|(id, input)| (id.to_string(), input))
            .collect();
        let (cropped, errors) = per_video(NAME, items, ctx, |_, (mut frames, detections)| {
            frames.sort_by_key(|f| f.sample_index);
            self.crop_video(&frames, &detections)
        });
        let (mut faces, mut misses) = (Vec::new(), Vec::new());
        for (f, m) in cropped {
            faces.extend(f);
            misses.extend(m);
        }
        Ok(StageOutput::default()
            .with_rows(&faces)?
            .with_rows(&misses)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_with_no_margin_is_the_box_and_is_clamped_to_the_frame() {
        let params = CropParams::default();
        let face = Region {
            x: 10.0,
            y: 20.0,
            width: 50.0,
            height: 60.0,
        };
        assert_eq!(params.region(&face, 640, 360), Some((10, 20, 50, 60)));
        let edge = Region {
            x: 600.0,
            y: 340.0,
            width: 80.0,
            height: 80.0,
        };
        assert_eq!(params.region(&edge, 640, 360), Some((600, 340, 40, 20)));
        let outside = Region {
            x: 700.0,
            y: 10.0,
            width: 20.0,
            height: 20.0,
        };
        assert_eq!(params.region(&outside, 640, 360), None);
    }

    #[test]
    fn margin_grows_the_box_around_its_centre() {
        let params = CropParams {
            margin: 0.5,
            ..CropParams::default()
        };
        let face = Region {
            x: 100.0,
            y: 100.0,
            width: 40.0,
            height: 40.0,
        };
        assert_eq!(params.region(&face, 640, 360), Some((90, 90, 60, 60)));
    }
}
