//! Rendering one pair: the target's window framed, the donor's face swapped into a copy, both
//! degraded alike and encoded with the same settings, in one pass over the target's frames.

use std::collections::BTreeMap;
use std::path::Path;

use dfd_models::rng::SplitMix64;
use opencv::core::{self, Mat, Rect, Size};
use opencv::imgproc;
use opencv::prelude::*;
use tracing::{info, warn};

use crate::degrade;
use crate::encode::Encoder;
use crate::error::{cv, DemoError, Result};
use crate::plan::{ClipInfo, DonorPlan, Framing, PairPlan};
use crate::source::SequentialReader;
use crate::swap::{self, FaceGeometry, Points};
use crate::track::Track;

/// How far around the donor's face box its frames are kept (as a multiple of the box's larger
/// side): the swap reads the donor only over the target's face box and the feather's reach.
const DONOR_CONTEXT: f32 = 2.2;

/// What rendering a pair wrote.
pub struct Rendered {
    /// Frames written to each file.
    pub frames: usize,
    /// Frames of the FAKE whose face was swapped (the others had no face to swap).
    pub swapped: usize,
}

/// The inputs every pair shares.
pub struct Footage<'a> {
    pub media: &'a Path,
    pub clips: &'a [ClipInfo],
    pub tracks: &'a [Track],
}

/// Writes the pair's REAL (and FAKE) into `dir`.
pub fn render_pair(pair: &PairPlan, footage: &Footage, dir: &Path) -> Result<Rendered> {
    let clip = &footage.clips[pair.target.clip];
    let donor = match &pair.donor {
        Some(plan) => Some((plan, DonorFrames::read(plan, pair.target.len, footage)?)),
        None => None,
    };
    let [width, height] = pair.framing.size;
    let crf = pair.degradation.crf;
    let mut real_out = Encoder::open(&dir.join(&pair.real_name), width, height, clip.fps, crf)?;
    let mut fake_out = match &pair.fake_name {
        Some(name) => Some(Encoder::open(
            &dir.join(name),
            width,
            height,
            clip.fps,
            crf,
        )?),
        None => None,
    };
    let mut reader = SequentialReader::open(&footage.media.join(clip.file))?;
    let track = &footage.tracks[pair.target.clip];
    let (mut frames, mut swapped) = (0, 0);
    for i in 0..pair.target.len {
        let index = pair.target.start + i;
        let Some(source) = reader.frame(index)? else {
            break;
        };
        let mut real = reframe(&source, &pair.framing)?;
        let mut fake = match &donor {
            Some((plan, donor_frames)) => {
                let face = track.at(index).map(|g| reframe_geometry(&g, &pair.framing));
                match (face, donor_frames.at(i)) {
                    (Some(face), Some(d)) => {
                        swapped += 1;
                        let points = plan.swap.jittered(&face, &jitter_offsets(plan, i));
                        Some(
                            swap::swap_face(&real, &face, &points, &d.image, &d.face, &plan.swap)
                                .map_err(|e| {
                                DemoError::Invalid(format!(
                                    "{}: swap of frame {i}: {e}",
                                    pair.real_name
                                ))
                            })?,
                        )
                    }
                    _ => Some(real.try_clone().map_err(cv("copy"))?),
                }
            }
            None => None,
        };
        match fake.as_mut() {
            Some(fake) => degrade::apply(&pair.degradation, &mut [&mut real, fake], i)?,
            None => degrade::apply(&pair.degradation, &mut [&mut real], i)?,
        }
        real_out.write(&real)?;
        if let (Some(out), Some(fake)) = (fake_out.as_mut(), fake.as_ref()) {
            out.write(fake)?;
        }
        frames += 1;
    }
    real_out.finish()?;
    if let Some(out) = fake_out {
        out.finish()?;
        if swapped == 0 {
            warn!(video = ?pair.fake_name, "no frame could be swapped (no face found)");
        }
    }
    info!(video = %pair.real_name, frames, swapped, "pair written");
    Ok(Rendered { frames, swapped })
}

/// Five landmark offsets for target frame `i`, each coordinate uniform in [-1, 1] (scaled by the
/// fake's jitter); a stream per frame, so a frame's jitter does not depend on the frames before.
fn jitter_offsets(plan: &DonorPlan, i: usize) -> Points {
    let mut rng = SplitMix64::for_stream(&[plan.jitter_seed, i as u64]);
    let mut offsets: Points = [[0.0; 2]; 5];
    for p in offsets.iter_mut() {
        *p = [
            (2.0 * rng.next_f64() - 1.0) as f32,
            (2.0 * rng.next_f64() - 1.0) as f32,
        ];
    }
    offsets
}

/// A donor frame, cut to the region around its face, and the face in it.
struct DonorFrame {
    image: Mat,
    face: FaceGeometry,
}

/// The donor frames of one pair, by clip frame, and which one each target frame shows.
struct DonorFrames {
    frames: BTreeMap<usize, DonorFrame>,
    /// Per target frame, the clip frame shown: its own when the donor's face was found there,
    /// else the nearest (in window order) where it was; `None` when it was found nowhere.
    shown: Vec<Option<usize>>,
}

impl DonorFrames {
    fn read(plan: &DonorPlan, len: usize, footage: &Footage) -> Result<DonorFrames> {
        let clip = &footage.clips[plan.window.clip];
        let track = &footage.tracks[plan.window.clip];
        let wanted: Vec<usize> = (0..len)
            .map(|i| plan.window.frame(plan.position(i), clip.frames))
            .collect();
        let with_face: Vec<Option<usize>> = wanted
            .iter()
            .map(|&f| track.at(f).is_some().then_some(f))
            .collect();
        let shown = fill_from_nearest(&with_face);
        let mut needed: Vec<usize> = shown.iter().flatten().copied().collect();
        needed.sort_unstable();
        needed.dedup();
        let mut reader = SequentialReader::open(&footage.media.join(clip.file))?;
        let mut frames = BTreeMap::new();
        for f in needed {
            let (Some(image), Some(face)) = (reader.frame(f)?, track.at(f)) else {
                continue;
            };
            frames.insert(f, cut_around(&image, &face)?);
        }
        Ok(DonorFrames { frames, shown })
    }

    fn at(&self, i: usize) -> Option<&DonorFrame> {
        self.shown
            .get(i)
            .copied()
            .flatten()
            .and_then(|f| self.frames.get(&f))
    }
}

/// Each `None` replaced by the nearest `Some` (the earlier one on a tie).
fn fill_from_nearest(values: &[Option<usize>]) -> Vec<Option<usize>> {
    (0..values.len())
        .map(|i| {
            (0..values.len()).find_map(|d| {
                let before = i.checked_sub(d).and_then(|j| values[j]);
                before.or_else(|| values.get(i + d).copied().flatten())
            })
        })
        .collect()
}

/// The region of `image` around `face` (see [`DONOR_CONTEXT`]), with the face in its coordinates.
fn cut_around(image: &Mat, face: &FaceGeometry) -> Result<DonorFrame> {
    let side = face.width.max(face.height) * DONOR_CONTEXT;
    let (cx, cy) = (face.x + face.width / 2.0, face.y + face.height / 2.0);
    let bounds = Rect::new(0, 0, image.cols(), image.rows());
    let region = Rect::new(
        (cx - side / 2.0).floor() as i32,
        (cy - side / 2.0).floor() as i32,
        side.ceil() as i32,
        side.ceil() as i32,
    ) & bounds;
    if region.width < 8 || region.height < 8 {
        return Err(DemoError::Invalid(
            "donor face lies outside its frame".into(),
        ));
    }
    let cut = Mat::roi(image, region)
        .map_err(cv("donor region"))?
        .try_clone()
        .map_err(cv("copy"))?;
    let (dx, dy) = (region.x as f32, region.y as f32);
    let mut moved = *face;
    moved.x -= dx;
    moved.y -= dy;
    for p in moved.landmarks.iter_mut() {
        p[0] -= dx;
        p[1] -= dy;
    }
    Ok(DonorFrame {
        image: cut,
        face: moved,
    })
}

/// A clip frame cropped, mirrored and rescaled as the pair's framing says.
pub fn reframe(src: &Mat, framing: &Framing) -> Result<Mat> {
    let [x, y, w, h] = framing.crop;
    let cropped = Mat::roi(src, Rect::new(x, y, w, h))
        .map_err(cv("crop"))?
        .try_clone()
        .map_err(cv("copy"))?;
    let flipped = if framing.mirrored {
        let mut out = Mat::default();
        core::flip(&cropped, &mut out, 1).map_err(cv("mirror"))?;
        out
    } else {
        cropped
    };
    let size = Size::new(framing.size[0], framing.size[1]);
    let interpolation = if size.width < w {
        imgproc::INTER_AREA
    } else {
        imgproc::INTER_LINEAR
    };
    let mut out = Mat::default();
    imgproc::resize(&flipped, &mut out, size, 0.0, 0.0, interpolation).map_err(cv("rescale"))?;
    Ok(out)
}

/// A face found in the clip frame, carried through [`reframe`]: the same crop, mirror and scale,
/// with left and right landmarks swapped by the mirror (landmark 0 is always the eye on the image's
/// left, as MTCNN reports it, so the similarity fit never has to undo a reflection).
pub fn reframe_geometry(g: &FaceGeometry, framing: &Framing) -> FaceGeometry {
    let [cx0, cy0, cw, ch] = framing.crop;
    let sx = framing.size[0] as f32 / cw as f32;
    let sy = framing.size[1] as f32 / ch as f32;
    let map = |x: f32, y: f32| -> [f32; 2] {
        let mut cx = x - cx0 as f32;
        let cy = y - cy0 as f32;
        if framing.mirrored {
            cx = (cw - 1) as f32 - cx;
        }
        // Pixel centres: u_out + 0.5 = (u_in + 0.5) * scale.
        [(cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5]
    };
    let mut landmarks = g.landmarks.map(|p| map(p[0], p[1]));
    if framing.mirrored {
        landmarks.swap(0, 1);
        landmarks.swap(3, 4);
    }
    let a = map(g.x, g.y);
    let b = map(g.x + g.width, g.y + g.height);
    FaceGeometry {
        x: a[0].min(b[0]),
        y: a[1].min(b[1]),
        width: (b[0] - a[0]).abs(),
        height: (b[1] - a[1]).abs(),
        landmarks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(mirrored: bool) -> Framing {
        Framing {
            crop: [10, 20, 100, 80],
            mirrored,
            size: [200, 160],
        }
    }

    #[test]
    fn geometry_follows_crop_scale_and_mirror() {
        let g = FaceGeometry {
            x: 30.0,
            y: 40.0,
            width: 40.0,
            height: 40.0,
            landmarks: [
                [40.0, 50.0],
                [60.0, 50.0],
                [50.0, 60.0],
                [42.0, 70.0],
                [58.0, 70.0],
            ],
        };
        let plain = reframe_geometry(&g, &framing(false));
        assert!((plain.x - 40.5).abs() < 1e-3 && (plain.width - 80.0).abs() < 1e-3);
        assert!((plain.landmarks[0][0] - 60.5).abs() < 1e-3);
        let flipped = reframe_geometry(&g, &framing(true));
        // Eye on the image's left stays landmark 0 after the mirror.
        assert!(flipped.landmarks[0][0] < flipped.landmarks[1][0]);
        assert!(flipped.landmarks[3][0] < flipped.landmarks[4][0]);
        assert!((flipped.width - 80.0).abs() < 1e-3);
        // The crop is 100 wide: x in the crop 20..60 mirrors to 39..79, times 2.
        assert!(
            (flipped.x - (39.5 * 2.0 - 0.5)).abs() < 1e-3,
            "{}",
            flipped.x
        );
    }

    #[test]
    fn frames_without_a_donor_face_show_the_nearest_with_one() {
        let filled = fill_from_nearest(&[None, Some(5), None, None, None, Some(9), None]);
        assert_eq!(
            filled,
            [
                Some(5),
                Some(5),
                Some(5),
                Some(5),
                Some(9),
                Some(9),
                Some(9)
            ]
        );
        assert_eq!(fill_from_nearest(&[None, None]), [None, None]);
    }
}
