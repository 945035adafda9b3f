//! `dfd demo-data`: writes a small DFDC-format dataset from the registry clips alone, so that the
//! whole DAG can be run and tested offline and reproducibly.
//!
//! REAL clips are ~4 s windows cut from the talking-head clips (start time and horizontal mirror
//! drawn from the seed). Each FAKE takes one REAL clip as its target and, frame by frame, pastes a
//! donor face from a window of a *different* source clip (see `dfd_stages::synth` for the swap).
//! Every choice comes from one splitmix64 stream of the seed, so a seed names one dataset; the
//! `metadata.json` holds only seed-derived facts and is identical from run to run.
//!
//! Splits go by group (the source clip), never by file: a fake and its original, and all windows of
//! one person, land in the same split, or a detector could be scored on faces it trained on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use dfd_stages::detect::{Mtcnn, MtcnnParams};
use dfd_stages::synth::{self, FaceGeometry, Points, SwapParams};
use opencv::core::{self as cv, Mat, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, videoio};
use serde::Serialize;
use tracing::{info, warn};

/// Length of a clip, in seconds of the source's frame rate.
const CLIP_SECONDS: f64 = 4.0;
/// Landmarks are detected on every `KEYFRAME_STEP`-th frame and interpolated between: MTCNN on
/// every frame would triple the cost and make the landmarks flicker more, not less.
const KEYFRAME_STEP: usize = 3;
/// A detection below this confidence is not trusted as a face to swap.
const MIN_CONFIDENCE: f32 = 0.9;
/// Target shares of train / val / test, by number of videos.
const SPLITS: [(&str, f64); 3] = [("train", 0.64), ("val", 0.16), ("test", 0.20)];

/// The registry clips with a face in every frame (scripts/setup.sh fetches and pins them). The
/// .mov clips are left out on purpose: their face is there in only part of the clip.
const SOURCES: [&str; 3] = [
    "WolfgangLanger_Pexels.mp4",
    "single_face.mp4",
    "carphone_pristine.mp4",
];

/// What to make and where.
pub struct DemoRequest<'a> {
    pub out: &'a Path,
    pub seed: u64,
    /// Total videos; about half REAL, half FAKE.
    pub videos: usize,
    /// The folder holding [`SOURCES`].
    pub media: &'a Path,
    pub mtcnn_dir: &'a Path,
    pub mtcnn_params: &'a MtcnnParams,
    /// Where to write one REAL frame and the same frame of its FAKE side by side.
    pub contact_sheet: Option<&'a Path>,
}

/// What was written.
pub struct DemoSummary {
    pub real: usize,
    pub fake: usize,
    pub codec: &'static str,
    pub seconds: f64,
}

/// One `metadata.json` entry: the DFDC keys (`label`, `split`, `original`) plus how it was made.
#[derive(Debug, Serialize)]
struct Entry {
    label: &'static str,
    split: String,
    group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<String>,
    source: String,
    start_frame: usize,
    mirrored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    donor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    donor_start_frame: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    swap: Option<SwapParams>,
    codec: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
}

/// splitmix64 (Steele, Lea and Flood 2014): a tiny, well-mixed generator whose whole state is one
/// u64, so the dataset depends only on the seed and on no crate's versioned algorithm.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

struct Source {
    name: &'static str,
    path: PathBuf,
    fps: f64,
    frames: usize,
}

struct RealPlan {
    name: String,
    source: usize,
    start: usize,
    mirrored: bool,
}

struct FakePlan {
    name: String,
    real: usize,
    donor: usize,
    donor_start: usize,
    params: SwapParams,
    jitter_seed: u64,
}

/// Makes the dataset; replaces `out` when it already holds a dataset (has a metadata.json).
pub fn demo_data(req: &DemoRequest) -> Result<DemoSummary> {
    let started = Instant::now();
    if req.videos < 2 {
        bail!("--videos must be at least 2 (one REAL and one FAKE)");
    }
    let sources = SOURCES
        .iter()
        .map(|name| probe(name, &req.media.join(name)))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = SplitMix64(req.seed);
    let (reals, fakes) = plan(&sources, req.videos, &mut rng);
    let splits = assign_splits(&sources, &reals, &fakes, &mut rng);

    let staging = Staging(staging_dir(req.out)?);
    let tmp = staging.0.clone();
    let mut mtcnn = Mtcnn::load(req.mtcnn_dir, req.mtcnn_params)
        .with_context(|| format!("cannot load MTCNN from {}", req.mtcnn_dir.display()))?;
    let mut codec_used = "avc1";
    let mut entries = BTreeMap::new();
    let mut real_frames: Vec<Vec<Mat>> = Vec::new();
    for real in &reals {
        let source = &sources[real.source];
        let frames = read_window(source, real.start, clip_len(source), real.mirrored)?;
        let codec = write_video(&tmp.join(&real.name), &frames, source.fps)?;
        if codec != "avc1" {
            codec_used = codec;
        }
        entries.insert(
            real.name.clone(),
            Entry {
                label: "REAL",
                split: splits[real.source].to_string(),
                group: source.name.to_string(),
                original: None,
                source: source.name.to_string(),
                start_frame: real.start,
                mirrored: real.mirrored,
                donor: None,
                donor_start_frame: None,
                swap: None,
                codec,
                notes: fallback_note(codec),
            },
        );
        info!(video = %real.name, frames = frames.len(), "real clip written");
        real_frames.push(frames);
    }
    let mut sheet: Option<(Mat, Mat)> = None;
    for fake in &fakes {
        let real = &reals[fake.real];
        let target = &real_frames[fake.real];
        let donor_source = &sources[fake.donor];
        let donor_frames = read_window(donor_source, fake.donor_start, target.len(), false)?;
        let target_track = track(&mut mtcnn, target)?;
        let donor_track = track(&mut mtcnn, &donor_frames)?;
        let mut jitter_rng = SplitMix64(fake.jitter_seed);
        let mut out = Vec::with_capacity(target.len());
        let mut swapped = 0usize;
        for (i, frame) in target.iter().enumerate() {
            let mut offsets: Points = [[0.0; 2]; 5];
            for p in offsets.iter_mut() {
                *p = [
                    (2.0 * jitter_rng.unit() - 1.0) as f32,
                    (2.0 * jitter_rng.unit() - 1.0) as f32,
                ];
            }
            // The donor window is as long as the target (ping-pong over a shorter donor clip).
            let d = pingpong(i, donor_frames.len());
            match (&target_track[i], &donor_track[d]) {
                (Some(t), Some(dg)) => {
                    let points = fake.params.jittered(t, &offsets);
                    let swapped_frame =
                        synth::swap_face(frame, t, &points, &donor_frames[d], dg, &fake.params)
                            .with_context(|| format!("{}: swap of frame {i}", fake.name))?;
                    swapped += 1;
                    out.push(swapped_frame);
                }
                _ => out.push(frame.try_clone()?),
            }
        }
        if swapped == 0 {
            warn!(video = %fake.name, "no frame could be swapped (no face found)");
        }
        let codec = write_video(&tmp.join(&fake.name), &out, sources[real.source].fps)?;
        if codec != "avc1" {
            codec_used = codec;
        }
        if sheet.is_none() {
            let mid = target.len() / 2;
            sheet = Some((target[mid].try_clone()?, out[mid].try_clone()?));
        }
        entries.insert(
            fake.name.clone(),
            Entry {
                label: "FAKE",
                split: splits[real.source].to_string(),
                group: sources[real.source].name.to_string(),
                original: Some(real.name.clone()),
                source: sources[real.source].name.to_string(),
                start_frame: real.start,
                mirrored: real.mirrored,
                donor: Some(donor_source.name.to_string()),
                donor_start_frame: Some(fake.donor_start),
                swap: Some(fake.params),
                codec,
                notes: fallback_note(codec),
            },
        );
        info!(video = %fake.name, swapped, frames = out.len(), "fake clip written");
    }
    let text = serde_json::to_string_pretty(&entries)? + "\n";
    std::fs::write(tmp.join("metadata.json"), text).context("cannot write metadata.json")?;
    if let Some(path) = req.contact_sheet {
        let (real, fake) = sheet.ok_or_else(|| anyhow!("no fake made, no contact sheet"))?;
        let mut pair = Vector::<Mat>::new();
        pair.push(real);
        pair.push(fake);
        let mut side_by_side = Mat::default();
        cv::hconcat(&pair, &mut side_by_side)?;
        let path_text = path.to_str().context("contact sheet path is not UTF-8")?;
        if !imgcodecs::imwrite(path_text, &side_by_side, &Vector::new())? {
            bail!("cannot write the contact sheet {}", path.display());
        }
    }
    if req.out.exists() {
        std::fs::remove_dir_all(req.out)
            .with_context(|| format!("cannot replace {}", req.out.display()))?;
    }
    std::fs::rename(&tmp, req.out)
        .with_context(|| format!("cannot move the dataset into {}", req.out.display()))?;
    std::mem::forget(staging);
    Ok(DemoSummary {
        real: reals.len(),
        fake: fakes.len(),
        codec: codec_used,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The staging folder, removed when the command fails before moving it into place.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: a leftover hidden folder is harmless, and the error being reported matters more.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fallback_note(codec: &str) -> Option<String> {
    (codec != "avc1").then(|| {
        format!(
            "H.264 (avc1) VideoWriter could not be opened here; written as MPEG-4 Part 2 ({codec})"
        )
    })
}

/// A fresh sibling folder to write into, so that a failed run never leaves half a dataset in
/// `out`; refuses to replace a non-empty `out` that is not a dataset.
fn staging_dir(out: &Path) -> Result<PathBuf> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_none();
        if !empty && !out.join("metadata.json").is_file() {
            bail!(
                "{} is not empty and holds no metadata.json: refusing to replace it",
                out.display()
            );
        }
    }
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} has no folder name", out.display()))?
        .to_string_lossy();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

fn probe(name: &'static str, path: &Path) -> Result<Source> {
    let capture = open(path)?;
    let fps = capture.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
    let fps = if fps.is_finite() && fps > 1.0 {
        fps
    } else {
        25.0
    };
    let frames = capture.get(videoio::CAP_PROP_FRAME_COUNT).unwrap_or(0.0);
    if frames.is_nan() || frames < 1.0 {
        bail!("{} reports no frames", path.display());
    }
    Ok(Source {
        name,
        path: path.to_path_buf(),
        fps,
        frames: frames as usize,
    })
}

fn open(path: &Path) -> Result<videoio::VideoCapture> {
    let text = path.to_str().context("clip path is not UTF-8")?;
    let capture = videoio::VideoCapture::from_file(text, videoio::CAP_FFMPEG)?;
    if !capture.is_opened()? {
        bail!(
            "cannot open {} (run `bash scripts/setup.sh` to fetch the registry clips)",
            path.display()
        );
    }
    Ok(capture)
}

fn clip_len(source: &Source) -> usize {
    ((CLIP_SECONDS * source.fps).round() as usize).clamp(1, source.frames)
}

/// Picks the clips: REAL ones spread over the sources in a seeded order, FAKE ones each on a REAL
/// target with a donor from another source.
fn plan(sources: &[Source], videos: usize, rng: &mut SplitMix64) -> (Vec<RealPlan>, Vec<FakePlan>) {
    let n_real = videos.div_ceil(2);
    let n_fake = videos - n_real;
    let mut order: Vec<usize> = (0..sources.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let reals: Vec<RealPlan> = (0..n_real)
        .map(|i| {
            let source = order[i % order.len()];
            let room = sources[source].frames - clip_len(&sources[source]);
            RealPlan {
                name: format!("real_{i:03}.mp4"),
                source,
                start: rng.below(room + 1),
                mirrored: rng.unit() < 0.5,
            }
        })
        .collect();
    let fakes = (0..n_fake)
        .map(|j| {
            let real = j % n_real;
            let target_source = reals[real].source;
            let others: Vec<usize> = (0..sources.len()).filter(|&s| s != target_source).collect();
            let donor = others[rng.below(others.len())];
            let room = sources[donor].frames - clip_len(&sources[donor]);
            FakePlan {
                name: format!("fake_{j:03}.mp4"),
                real,
                donor,
                donor_start: rng.below(room + 1),
                params: SwapParams::from_unit([rng.unit(), rng.unit(), rng.unit(), rng.unit()]),
                jitter_seed: rng.next_u64(),
            }
        })
        .collect();
    (reals, fakes)
}

/// The split of each source clip (group). Groups are taken in a seeded order; the first three go
/// to train, test and val so that each split gets one when there are enough groups, and the rest to
/// whichever split is furthest below its share of videos.
fn assign_splits(
    sources: &[Source],
    reals: &[RealPlan],
    fakes: &[FakePlan],
    rng: &mut SplitMix64,
) -> Vec<&'static str> {
    let mut size = vec![0usize; sources.len()];
    for r in reals {
        size[r.source] += 1;
    }
    for f in fakes {
        size[reals[f.real].source] += 1;
    }
    let mut used: Vec<usize> = (0..sources.len()).filter(|&s| size[s] > 0).collect();
    for i in (1..used.len()).rev() {
        used.swap(i, rng.below(i + 1));
    }
    // The largest group first, so that train gets it.
    used.sort_by_key(|&s| std::cmp::Reverse(size[s]));
    let total: usize = size.iter().sum();
    let mut filled = [0usize; 3];
    let mut split = vec!["train"; sources.len()];
    for (k, &s) in used.iter().enumerate() {
        let pick = match k {
            0 => 0,
            1 => 2,
            2 => 1,
            _ => (0..3)
                .max_by(|&a, &b| {
                    let deficit = |i: usize| SPLITS[i].1 * total as f64 - filled[i] as f64;
                    deficit(a).total_cmp(&deficit(b))
                })
                .unwrap_or(0),
        };
        filled[pick] += size[s];
        split[s] = SPLITS[pick].0;
    }
    split
}

/// `len` frames from `start` (fewer if the clip ends first), mirrored left-right if asked.
fn read_window(source: &Source, start: usize, len: usize, mirrored: bool) -> Result<Vec<Mat>> {
    let mut capture = open(&source.path)?;
    let mut frames = Vec::with_capacity(len);
    let mut index = 0usize;
    let mut frame = Mat::default();
    while frames.len() < len && capture.read(&mut frame)? {
        if index >= start && !frame.empty() {
            if mirrored {
                let mut flipped = Mat::default();
                cv::flip(&frame, &mut flipped, 1)?;
                frames.push(flipped);
            } else {
                frames.push(frame.try_clone()?);
            }
        }
        index += 1;
    }
    if frames.is_empty() {
        bail!("{}: no frame decoded from frame {start}", source.name);
    }
    Ok(frames)
}

/// Index into a clip of `len` frames that runs forward, then backward, and so on.
fn pingpong(i: usize, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len - 1);
    let k = i % period;
    if k < len {
        k
    } else {
        period - k
    }
}

/// The largest confident face on every `KEYFRAME_STEP`-th frame (and the last), interpolated
/// between; frames more than one step from any detection get none.
fn track(mtcnn: &mut Mtcnn, frames: &[Mat]) -> Result<Vec<Option<FaceGeometry>>> {
    let n = frames.len();
    let mut keys: Vec<usize> = (0..n).step_by(KEYFRAME_STEP).collect();
    if keys.last() != Some(&(n - 1)) {
        keys.push(n - 1);
    }
    let mut found: Vec<(usize, FaceGeometry)> = Vec::new();
    for &k in &keys {
        let faces = synth::detect_bgr(mtcnn, &frames[k])?;
        let best = faces
            .iter()
            .filter(|f| f.confidence >= MIN_CONFIDENCE)
            .max_by(|a, b| (a.width * a.height).total_cmp(&(b.width * b.height)));
        if let Some(face) = best {
            found.push((k, FaceGeometry::from(face)));
        }
    }
    let mut track = vec![None; n];
    for (i, slot) in track.iter_mut().enumerate() {
        let after = found.iter().position(|(k, _)| *k >= i);
        *slot = match after {
            Some(a) if found[a].0 == i => Some(found[a].1),
            Some(a) if a > 0 && found[a].0 - found[a - 1].0 <= 2 * KEYFRAME_STEP => {
                let (k0, g0) = found[a - 1];
                let (k1, g1) = found[a];
                Some(g0.lerp(&g1, (i - k0) as f32 / (k1 - k0) as f32))
            }
            Some(a) if found[a].0 - i <= KEYFRAME_STEP => Some(found[a].1),
            None => found
                .last()
                .filter(|(k, _)| i - k <= KEYFRAME_STEP)
                .map(|(_, g)| *g),
            _ => None,
        };
    }
    Ok(track)
}

/// Writes BGR frames as .mp4: H.264 ("avc1") when this OpenCV/FFmpeg can, else MPEG-4 Part 2
/// ("mp4v"); returns the fourcc used.
fn write_video(path: &Path, frames: &[Mat], fps: f64) -> Result<&'static str> {
    let first = frames.first().context("no frames to write")?;
    let size = first.size()?;
    let text = path.to_str().context("output path is not UTF-8")?;
    for (name, code) in [
        ("avc1", ['a', 'v', 'c', '1']),
        ("mp4v", ['m', 'p', '4', 'v']),
    ] {
        let fourcc = videoio::VideoWriter::fourcc(code[0], code[1], code[2], code[3])?;
        let mut writer = videoio::VideoWriter::new_with_backend(
            text,
            videoio::CAP_FFMPEG,
            fourcc,
            fps,
            size,
            true,
        )?;
        if !writer.is_opened()? {
            continue;
        }
        for frame in frames {
            writer.write(frame)?;
        }
        writer.release()?;
        return Ok(name);
    }
    bail!(
        "cannot open a VideoWriter for {} (neither avc1 nor mp4v)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_the_reference_sequence() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut rng = SplitMix64(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
    }

    #[test]
    fn pingpong_bounces() {
        let seq: Vec<usize> = (0..8).map(|i| pingpong(i, 3)).collect();
        assert_eq!(seq, vec![0, 1, 2, 1, 0, 1, 2, 1]);
        assert_eq!(pingpong(5, 1), 0);
    }
}
