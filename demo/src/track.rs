//! Face tracks of the footage: where the face is, with its five landmarks, in every frame a pair
//! uses, as target or as donor.
//!
//! MTCNN runs once per clip on every [`KEYFRAME_STEP`]-th frame of the frames the plan uses (and at
//! the ends of each run of them), never per pair: a stretch shared by several pairs is tracked
//! once. Frames between keyframes take the linear interpolation of their neighbours, which is
//! smooth where detection on every frame would flicker, and costs a third.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dfd_stages::detect::Mtcnn;
use opencv::core::Mat;
use opencv::prelude::*;
use tracing::info;

use crate::error::{cv, DemoError, Result};
use crate::plan::{ClipInfo, Plan};
use crate::source::SequentialReader;
use crate::swap::FaceGeometry;

/// Landmarks are detected on every `KEYFRAME_STEP`-th frame and interpolated between.
pub const KEYFRAME_STEP: usize = 3;
/// A detection below this confidence is not trusted as a face to swap or to swap in.
pub const MIN_CONFIDENCE: f32 = 0.9;

/// The face found on the keyframes of one clip.
#[derive(Debug, Clone, Default)]
pub struct Track {
    found: BTreeMap<usize, FaceGeometry>,
}

impl Track {
    pub fn from_keyframes(found: BTreeMap<usize, FaceGeometry>) -> Track {
        Track { found }
    }

    /// The face in frame `frame`: detected there, else interpolated between the keyframes around it
    /// when they are at most two steps apart, else the nearest keyframe's within one step; `None`
    /// when no detection is that close (the face was lost, so nothing is swapped there).
    pub fn at(&self, frame: usize) -> Option<FaceGeometry> {
        if let Some(face) = self.found.get(&frame) {
            return Some(*face);
        }
        let before = self.found.range(..frame).next_back();
        let after = self.found.range(frame..).next();
        match (before, after) {
            (Some((&k0, g0)), Some((&k1, g1))) if k1 - k0 <= 2 * KEYFRAME_STEP => {
                Some(g0.lerp(g1, (frame - k0) as f32 / (k1 - k0) as f32))
            }
            _ => {
                let near = |k: usize| k.abs_diff(frame) <= KEYFRAME_STEP;
                let b = before.filter(|(k, _)| near(**k));
                let a = after.filter(|(k, _)| near(**k));
                match (b, a) {
                    (Some((kb, gb)), Some((ka, ga))) => {
                        Some(if frame - kb <= ka - frame { *gb } else { *ga })
                    }
                    (Some((_, g)), None) | (None, Some((_, g))) => Some(*g),
                    (None, None) => None,
                }
            }
        }
    }

    pub fn keyframes_found(&self) -> usize {
        self.found.len()
    }
}

/// Every clip frame the plan reads, per clip (targets' windows and donors' frames).
pub fn frames_used(plan: &Plan, clips: &[ClipInfo]) -> Vec<BTreeSet<usize>> {
    let mut used = vec![BTreeSet::new(); clips.len()];
    for pair in &plan.pairs {
        let t = pair.target;
        used[t.clip].extend(t.start..t.start + t.len);
        if let Some(donor) = &pair.donor {
            let frames = clips[donor.window.clip].frames;
            for i in 0..t.len {
                used[donor.window.clip].insert(donor.window.frame(donor.position(i), frames));
            }
        }
    }
    used
}

/// The frames of `used` to run MTCNN on: every `KEYFRAME_STEP`-th, and both ends of every run of
/// consecutive frames (so no used frame is more than a step from a keyframe).
pub fn keyframes(used: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut keys = BTreeSet::new();
    for &f in used {
        let starts_run = f == 0 || !used.contains(&(f - 1));
        let ends_run = !used.contains(&(f + 1));
        if f % KEYFRAME_STEP == 0 || starts_run || ends_run {
            keys.insert(f);
        }
    }
    keys
}

/// Tracks the face of every clip over the frames the plan uses (clips it does not use get an empty
/// track and are not decoded).
pub fn track_all(
    media: &Path,
    clips: &[ClipInfo],
    plan: &Plan,
    mtcnn: &mut Mtcnn,
) -> Result<Vec<Track>> {
    let mut tracks = Vec::with_capacity(clips.len());
    for (clip, used) in clips.iter().zip(frames_used(plan, clips)) {
        let keys = keyframes(&used);
        let mut found = BTreeMap::new();
        if !keys.is_empty() {
            let mut reader = SequentialReader::open(&media.join(clip.file))?;
            for &k in &keys {
                let Some(frame) = reader.frame(k)? else {
                    break;
                };
                if let Some(face) = largest_face(mtcnn, &frame)? {
                    found.insert(k, face);
                }
            }
        }
        info!(
            clip = clip.file,
            keyframes = keys.len(),
            found = found.len(),
            "face tracked"
        );
        tracks.push(Track::from_keyframes(found));
    }
    Ok(tracks)
}

/// The largest face MTCNN is confident of in a BGR frame.
pub fn largest_face(mtcnn: &mut Mtcnn, bgr: &Mat) -> Result<Option<FaceGeometry>> {
    let faces = mtcnn.detect(bgr_to_rgb(bgr)?.view())?;
    Ok(faces
        .iter()
        .filter(|f| f.confidence >= MIN_CONFIDENCE)
        .max_by(|a, b| (a.width * a.height).total_cmp(&(b.width * b.height)))
        .map(FaceGeometry::from))
}

/// An H x W x 3 RGB copy of a BGR frame (what MTCNN takes).
fn bgr_to_rgb(bgr: &Mat) -> Result<ndarray::Array3<u8>> {
    let mut rgb = Mat::default();
    opencv::imgproc::cvt_color_def(bgr, &mut rgb, opencv::imgproc::COLOR_BGR2RGB)
        .map_err(cv("BGR to RGB"))?;
    let (rows, cols) = (rgb.rows() as usize, rgb.cols() as usize);
    let bytes = rgb.data_bytes().map_err(cv("frame bytes"))?;
    ndarray::Array3::from_shape_vec((rows, cols, 3), bytes.to_vec())
        .map_err(|e| DemoError::Invalid(format!("unexpected frame layout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32) -> FaceGeometry {
        FaceGeometry {
            x,
            y: 0.0,
            width: 10.0,
            height: 10.0,
            landmarks: [[x, 0.0]; 5],
        }
    }

    #[test]
    fn frames_between_keyframes_are_interpolated_and_far_ones_are_lost() {
        let track = Track::from_keyframes(BTreeMap::from([
            (0, face(0.0)),
            (3, face(30.0)),
            (30, face(90.0)),
        ]));
        assert_eq!(track.at(3).unwrap().x, 30.0);
        assert!((track.at(1).unwrap().x - 10.0).abs() < 1e-4);
        // 3 .. 30 is too far to interpolate: the nearest within a step, else nothing.
        assert_eq!(track.at(5).unwrap().x, 30.0);
        assert!(track.at(15).is_none());
        assert_eq!(track.at(28).unwrap().x, 90.0);
        assert_eq!(track.at(33).unwrap().x, 90.0);
        assert!(track.at(34).is_none());
    }

    #[test]
    fn keyframes_cover_every_run_of_used_frames() {
        let used: BTreeSet<usize> = (4..11).chain(20..22).collect();
        let keys: Vec<usize> = keyframes(&used).into_iter().collect();
        assert_eq!(keys, [4, 6, 9, 10, 20, 21]);
    }
}
