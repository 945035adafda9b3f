//! From the rows of `faces`, `ssim_maps` and `ssim_stats` to what a detector takes as input. `train`
//! and `score` both go through here, so a model is scored on exactly the kind of input it was trained
//! on: the same decoding, the same channel order, the same scaling of the SSIM map.
//!
//! Samples keep their pixels as 8-bit (150 KB a face instead of 600 KB as floats); they become
//! floats (the same values: every model scales its pixels itself, see `dfd_models::pixels`),
//! channel-first, one batch at a time.

use std::collections::BTreeMap;

use dfd_schemas::{FaceRow, SsimMapRow, SsimStatsRow};
use ndarray::{Array2, Array3, Array4, ArrayView2};

use crate::image_io::{decode_png_gray, decode_png_rgb};
use crate::{StageError, StageInput};

/// One face frame, decoded, with its SSIM inputs when the video has them.
#[derive(Debug, Clone)]
pub struct ModelSample {
    pub video_id: String,
    pub sample_index: u32,
    pub frame_index: u64,
    /// The frame's presentation time, in milliseconds (as `faces.pts_ms`).
    pub pts_ms: f64,
    /// The face crop, RGB, H x W x 3.
    pub face: Array3<u8>,
    /// The SSIM map against the neighbouring face frame, as stored (min-max scaled to 0..255),
    /// H x W; `None` when the video has fewer than two face frames.
    pub ssim_map: Option<Array2<u8>>,
    /// The video's SSIM mean and population variance; `None` as for `ssim_map`.
    pub ssim_stats: Option<[f32; 2]>,
}

impl ModelSample {
    /// Whether a multi-input model can take this sample: it needs the map and the statistics.
    pub fn has_ssim(&self) -> bool {
        self.ssim_map.is_some() && self.ssim_stats.is_some()
    }
}

/// Decodes one video's face frames, joined with its SSIM maps (by `sample_index`) and statistics.
/// `faces` must all belong to one video.
pub fn video_samples(
    faces: &[&FaceRow],
    maps: &[&SsimMapRow],
    stats: Option<&SsimStatsRow>,
) -> Result<Vec<ModelSample>, String> {
    let maps: BTreeMap<u32, &SsimMapRow> = maps.iter().map(|m| (m.sample_index, *m)).collect();
    let stats = stats.and_then(|s| match (s.mean, s.variance) {
        (Some(mean), Some(variance)) => Some([mean as f32, variance as f32]),
        _ => None,
    });
    faces
        .iter()
        .map(|face| {
            let rgb = decode_png_rgb(&face.image)
                .map_err(|e| format!("face of frame {}: {e}", face.sample_index))?;
            let ssim_map = maps
                .get(&face.sample_index)
                .map(|m| {
                    decode_png_gray(&m.map)
                        .map_err(|e| format!("SSIM map of frame {}: {e}", face.sample_index))
                })
                .transpose()?;
            if let Some(map) = &ssim_map {
                if map.dim() != (rgb.dim().0, rgb.dim().1) {
                    return Err(format!(
                        "SSIM map of frame {} is {:?}, its face {:?}",
                        face.sample_index,
                        map.dim(),
                        rgb.dim()
                    ));
                }
            }
            Ok(ModelSample {
                video_id: face.video_id.clone(),
                sample_index: face.sample_index,
                frame_index: face.frame_index,
                pts_ms: face.pts_ms,
                face: rgb,
                ssim_map,
                ssim_stats: stats,
            })
        })
        .collect()
}

/// A stage's `faces`, `ssim_maps` and `ssim_stats` inputs, grouped by video: what `train` and
/// `score` read to build model inputs.
pub struct FaceInputs {
    faces: BTreeMap<String, Vec<FaceRow>>,
    maps: BTreeMap<String, Vec<SsimMapRow>>,
    stats: BTreeMap<String, SsimStatsRow>,
}

impl FaceInputs {
    /// Reads the three tables from `input`.
    pub fn read(input: &StageInput) -> Result<FaceInputs, StageError> {
        let stats = input.rows::<SsimStatsRow>()?;
        Ok(FaceInputs {
            faces: group(input.rows::<FaceRow>()?, |f| &f.video_id),
            maps: group(input.rows::<SsimMapRow>()?, |m| &m.video_id),
            stats: stats.into_iter().map(|s| (s.video_id.clone(), s)).collect(),
        })
    }

    /// Decodes at most `max_frames` (0: all) face frames of `video_id`, spread evenly over the
    /// video ([`spread_frames`]), with their SSIM inputs; see [`video_samples`].
    pub fn samples(&self, video_id: &str, max_frames: u32) -> Result<Vec<ModelSample>, String> {
        let faces: Vec<&FaceRow> = self.faces.get(video_id).into_iter().flatten().collect();
        let maps: Vec<&SsimMapRow> = self.maps.get(video_id).into_iter().flatten().collect();
        video_samples(
            &spread_frames(&faces, max_frames),
            &maps,
            self.stats.get(video_id),
        )
    }
}

/// At most `limit` (0: all) of a video's face frames, spread evenly over it: the frames training
/// uses of a train or val video (`train.max_frames_per_video`), and `augment` lists.
pub fn spread_frames<'r>(faces: &[&'r FaceRow], limit: u32) -> Vec<&'r FaceRow> {
    let limit = limit as usize;
    if limit == 0 || faces.len() <= limit {
        return faces.to_vec();
    }
    (0..limit).map(|i| faces[i * faces.len() / limit]).collect()
}

/// Moves rows into per-video groups, keeping each video's rows in table order.
fn group<R>(rows: Vec<R>, video_id: impl Fn(&R) -> &str) -> BTreeMap<String, Vec<R>> {
    let mut grouped: BTreeMap<String, Vec<R>> = BTreeMap::new();
    for row in rows {
        grouped
            .entry(video_id(&row).to_owned())
            .or_default()
            .push(row);
    }
    grouped
}

/// Groups rows by `video_id`, keeping each video's rows in table order.
pub fn by_video<R>(rows: &[R], video_id: impl Fn(&R) -> &str) -> BTreeMap<&str, Vec<&R>> {
    let mut grouped: BTreeMap<&str, Vec<&R>> = BTreeMap::new();
    for row in rows {
        grouped.entry(video_id(row)).or_default().push(row);
    }
    grouped
}

/// Faces of a batch as `[N, 3, H, W]` floats (pixel values), written into `values` (resized to
/// fit); returns the shape.
///
/// `score` keeps one buffer for all its batches: a fresh one per batch cost page faults that
/// took as long as the conversion itself. Faces of different sizes are an error.
pub fn fill_face_batch(
    samples: &[&ModelSample],
    values: &mut Vec<f32>,
) -> Result<(usize, usize, usize, usize), String> {
    let (h, w, _) = samples.first().map_or((0, 0, 3), |s| s.face.dim());
    let plane = h * w;
    values.resize(samples.len() * 3 * plane, 0.0);
    if let Some(odd) = samples.iter().find(|s| s.face.dim() != (h, w, 3)) {
        return Err(format!(
            "face of frame {} of {} is {:?}, the batch's first {:?}",
            odd.sample_index,
            odd.video_id,
            odd.face.dim(),
            (h, w, 3)
        ));
    }
    // One pass over each face's interleaved RGB bytes into its three planes: this runs on every
    // crop `score` reads. Not on rayon: its idle workers then spin against ONNX Runtime's threads,
    // which cost inference more than the parallel conversion saved. The values stay pixel
    // values: each model scales them itself (`dfd_models::pixels`), so this and training feed
    // every model the same numbers.
    for (sample, out) in samples.iter().zip(values.chunks_exact_mut(3 * plane)) {
        let face = sample.face.as_standard_layout();
        let pixels = face.as_slice().unwrap_or_default(); // standard layout: contiguous
        let (red, rest) = out.split_at_mut(plane);
        let (green, blue) = rest.split_at_mut(plane);
        let planes = red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut());
        for (rgb, ((r, g), b)) in pixels.chunks_exact(3).zip(planes) {
            *r = f32::from(rgb[0]);
            *g = f32::from(rgb[1]);
            *b = f32::from(rgb[2]);
        }
    }
    Ok((samples.len(), 3, h, w))
}

/// SSIM maps of a batch as `[N, 1, H, W]` floats, as stored (`0..=255`; the models scale them);
/// `None` if a sample has no map.
pub fn ssim_map_batch(samples: &[&ModelSample]) -> Option<Array4<f32>> {
    let maps: Vec<ArrayView2<u8>> = samples
        .iter()
        .map(|s| s.ssim_map.as_ref().map(|m| m.view()))
        .collect::<Option<_>>()?;
    let (h, w) = maps.first().map_or((0, 0), |m| m.dim());
    let mut batch = Array4::<f32>::zeros((samples.len(), 1, h, w));
    for (i, map) in maps.iter().enumerate() {
        batch
            .slice_mut(ndarray::s![i, 0, .., ..])
            .assign(&map.mapv(f32::from));
    }
    Some(batch)
}

/// SSIM statistics of a batch as `[N, 2]`; `None` if a sample has none.
pub fn ssim_stats_batch(samples: &[&ModelSample]) -> Option<Array2<f32>> {
    let stats: Vec<[f32; 2]> = samples
        .iter()
        .map(|s| s.ssim_stats)
        .collect::<Option<_>>()?;
    let flat: Vec<f32> = stats.iter().flatten().copied().collect();
    Array2::from_shape_vec((samples.len(), 2), flat).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(face: Array3<u8>) -> ModelSample {
        ModelSample {
            video_id: "v".into(),
            sample_index: 0,
            frame_index: 0,
            pts_ms: 0.0,
            face,
            ssim_map: None,
            ssim_stats: None,
        }
    }

    /// Every byte value lands in its channel's plane as itself, as in training (`hwc_to_chw`
    /// in dfd-models; the models scale pixels themselves), and a stale longer buffer is cut to
    /// fit.
    #[test]
    fn faces_become_planes_of_pixel_values() {
        let faces: Vec<ModelSample> = (0..2u8)
            .map(|k| {
                sample(Array3::from_shape_fn((16, 16, 3), |(y, x, c)| {
                    (y * 16 + x) as u8 ^ (c as u8 * 85) ^ k
                }))
            })
            .collect();
        let refs: Vec<&ModelSample> = faces.iter().collect();
        let mut values = vec![9.0; 10_000];
        let shape = fill_face_batch(&refs, &mut values).expect("same sizes");
        assert_eq!(shape, (2, 3, 16, 16));
        assert_eq!(values.len(), 2 * 3 * 16 * 16);
        for (n, face) in faces.iter().enumerate() {
            for ((y, x, c), v) in face.face.indexed_iter() {
                let at = ((n * 3 + c) * 16 + y) * 16 + x;
                assert_eq!(values[at], f32::from(*v), "{n} {y} {x} {c}");
            }
        }
        let odd = sample(Array3::zeros((8, 16, 3)));
        let err = fill_face_batch(&[&faces[0], &odd], &mut values).expect_err("sizes differ");
        assert!(err.contains("(8, 16, 3)"), "{err}");
    }
}
