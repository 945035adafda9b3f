//! `dfd demo-data`: writes a DFDC-format dataset from the registry media alone, so that the whole
//! DAG can be run and tested offline and reproducibly.
//!
//! **Who is who.** Splits go by *person*, never by file, or a detector would be scored on faces it
//! trained on. The registry media (fetched and pinned by scripts/setup.sh) hold these people, as
//! checked by looking at their frames:
//!
//! | person id         | footage                                                                  |
//! |-------------------|--------------------------------------------------------------------------|
//! | `pexels-woman`    | `WolfgangLanger_Pexels.mp4` (19.7 s, 640x360): a woman, crying          |
//! | `carphone-man`    | `carphone_pristine.mp4` (4.0 s, 176x144): a man in a car, bow tie       |
//! | `pyfeat-man`      | `single_face.mp4` (2.4 s, 640x360): a man before a white door            |
//! | `ph-f1` .. `ph-m7`| the stills `0-f1-su-ph.jpg`, `0-f15-hao-ph.jpg`, `15-f13-anc-ph.jpg`,    |
//! |                   | `45-m7-di-ph.jpg`: four different people (subject codes f1, f15, f13, m7) |
//! | `multi-1`..`-5`   | `multi_face.jpg`: five people, numbered left to right by face centre     |
//!
//! Left out, on purpose: `face_noface.mov` and `noface_face.mov` hold, besides an animated title
//! with no face, the very footage of `single_face.mp4` (same man, same take) re-encoded, so they
//! would add duplicates, not people; `single_face.jpg` may well be `pyfeat-man` too, so it cannot be
//! used as a donor without risking his face in two splits; `BWPictureHuman.jpg` is a small,
//! grey, three-quarter face that makes no usable donor; `no_face.mp4` has no face.
//!
//! **Splits.** The three filmed people are the groups: the one with the most footage goes to train,
//! the next to test, the last to val (largest split, most material). Videos are dealt to the splits
//! in 64/16/20 proportion (REAL/FAKE pairs by largest remainder, at least one pair per split when
//! there are three), so the default 100 videos split exactly 64/16/20 with each split one person.
//! Donor faces are people too: the nine still people are dealt (seeded) to the splits, at least two
//! each, and a FAKE takes its donor from its own split, so no face, target or donor, crosses splits.
//!
//! **REAL clips** are windows of `clip_seconds` (10 s by default, or the whole clip when it is
//! shorter: 4.0 s carphone, 2.4 s single_face) with a seeded start frame, a horizontal mirror (half
//! of them), a crop keeping [`CROP_KEEP`] of each side at a seeded offset, and a rescale by
//! [`RESCALE`] (even sizes, for H.264). 10 s because `decode` samples 20 frames 0.5 s apart: a
//! 10 s clip gives every sample, and longer would only cost generation time the DAG never reads.
//! Where each clip came from (source, start, mirror, crop, size) is in `metadata.json`.
//!
//! **FAKE clips**: one per REAL, which is its target (and `original`). A donor still face is
//! aligned frame by frame to the target's 5 MTCNN landmarks and blended in (see
//! `dfd_stages::synth` for the swap and the ranges of its per-fake [`SwapParams`]). Landmarks are
//! found once per *source* clip, on every [`KEYFRAME_STEP`]-th frame and interpolated between, and
//! carried through each window's mirror, crop and rescale: MTCNN then runs ~220 times for the
//! whole default dataset instead of once per frame of every clip.
//!
//! Every choice comes from one splitmix64 stream of the seed, so a seed names one dataset; the
//! `metadata.json` holds only seed-derived facts and is identical from run to run.
//!
//! **Caching.** The dataset is built in a hidden sibling folder and moved into place by renames,
//! so an interrupted run never leaves a half dataset under `out`. It carries [`FINGERPRINT`]: the
//! request (seed, videos, clip length), the generator's version, the MTCNN settings and the
//! sha256 of every media file used. A later request with the same fingerprint reuses the dataset;
//! any change rebuilds it, like a stage of the DAG.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use dfd_stages::detect::{Mtcnn, MtcnnParams};
use dfd_stages::synth::{self, FaceGeometry, Points, SwapParams};
use opencv::core::{self as cv, Mat, Rect, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc, videoio};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// Bump when the same request would write different files, so that cached datasets are rebuilt.
const GENERATOR_VERSION: u32 = 3;
/// The file, inside the dataset, that says which request made it (written before the final move).
pub const FINGERPRINT: &str = ".dfd-demo-data.json";
/// Landmarks are detected on every `KEYFRAME_STEP`-th source frame and interpolated between: on
/// every frame MTCNN would cost three times as much and its landmarks flicker more, not less.
const KEYFRAME_STEP: usize = 3;
/// A detection below this confidence is not trusted as a face to swap.
const MIN_CONFIDENCE: f32 = 0.9;
/// Target shares of train / val / test, by number of videos.
const SPLITS: [(&str, f64); 3] = [("train", 0.64), ("val", 0.16), ("test", 0.20)];
/// Share of the source's width and height a REAL clip keeps: small crops, so the face (central in
/// every source) stays whole.
const CROP_KEEP: (f64, f64) = (0.85, 1.0);
/// Scale applied after the crop: small rescales both ways, so clips differ in size as DFDC's do.
const RESCALE: (f64, f64) = (0.85, 1.15);

/// A registry video with a face in every frame, and the person in it.
struct VideoSpec {
    file: &'static str,
    person: &'static str,
}

/// The filmed people (see the module doc for who is who).
const VIDEOS: [VideoSpec; 3] = [
    VideoSpec {
        file: "WolfgangLanger_Pexels.mp4",
        person: "pexels-woman",
    },
    VideoSpec {
        file: "carphone_pristine.mp4",
        person: "carphone-man",
    },
    VideoSpec {
        file: "single_face.mp4",
        person: "pyfeat-man",
    },
];

/// The stills used as donor faces, each with its people left to right (by face centre).
const STILLS: [(&str, &[&str]); 5] = [
    ("0-f1-su-ph.jpg", &["ph-f1"]),
    ("0-f15-hao-ph.jpg", &["ph-f15"]),
    ("15-f13-anc-ph.jpg", &["ph-f13"]),
    ("45-m7-di-ph.jpg", &["ph-m7"]),
    (
        "multi_face.jpg",
        &["multi-1", "multi-2", "multi-3", "multi-4", "multi-5"],
    ),
];

/// What to make and where.
pub struct DemoRequest<'a> {
    pub out: &'a Path,
    pub seed: u64,
    /// Total videos; half REAL, half FAKE (the odd one REAL).
    pub videos: usize,
    /// Longest clip, in seconds; shorter sources give their whole length.
    pub clip_seconds: f64,
    /// The folder holding [`VIDEOS`] and [`STILLS`].
    pub media: &'a Path,
    pub mtcnn_dir: &'a Path,
    pub mtcnn_params: &'a MtcnnParams,
    /// Where to write one REAL frame and the same frame of its FAKE side by side.
    pub contact_sheet: Option<&'a Path>,
    /// Rebuild even when `out` holds a dataset made by the same request.
    pub force: bool,
}

/// What was written (or found).
pub struct DemoSummary {
    pub real: usize,
    pub fake: usize,
    /// Videos per split, in [`SPLITS`] order.
    pub splits: [usize; 3],
    pub codec: String,
    pub seconds: f64,
    /// `out` already held this very dataset, and nothing was written.
    pub reused: bool,
}

/// One `metadata.json` entry: the DFDC keys (`label`, `split`, `original`) plus how it was made.
#[derive(Debug, Clone, Serialize)]
struct Entry {
    label: &'static str,
    split: &'static str,
    /// The person filmed: what decides the split.
    group: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<String>,
    source: &'static str,
    start_frame: usize,
    frames: usize,
    mirrored: bool,
    /// `[x, y, width, height]` of the crop, in source pixels (before the mirror).
    crop: [i32; 4],
    /// `[width, height]` written.
    size: [i32; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    donor: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    donor_person: Option<&'static str>,
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

    /// Uniform in [lo, hi).
    fn within(&mut self, (lo, hi): (f64, f64)) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A registry video as probed: its person, length and size.
struct Probe {
    spec: &'static VideoSpec,
    path: PathBuf,
    fps: f64,
    frames: usize,
    size: Size,
}

/// The decoded part of a source that the plan uses, with the face found in each frame.
struct Footage {
    offset: usize,
    frames: Vec<Mat>,
    track: Vec<Option<FaceGeometry>>,
}

/// A donor face: one person in one still.
struct Donor {
    file: &'static str,
    person: &'static str,
    image: Mat,
    face: FaceGeometry,
}

struct RealPlan {
    name: String,
    video: usize,
    split: usize,
    start: usize,
    len: usize,
    mirrored: bool,
    crop: Rect,
    size: Size,
}

struct FakePlan {
    name: String,
    real: usize,
    /// Index into the flat list of still people ([`still_people`]).
    donor: usize,
    params: SwapParams,
    jitter_seed: u64,
}

struct Plan {
    reals: Vec<RealPlan>,
    fakes: Vec<FakePlan>,
}

/// Makes the dataset, or finds it already made by the same request (unless `force`); replaces
/// `out` when it holds another dataset (has a metadata.json).
pub fn demo_data(req: &DemoRequest) -> Result<DemoSummary> {
    let started = Instant::now();
    if req.videos < 2 {
        bail!("--videos must be at least 2 (one REAL and one FAKE)");
    }
    if !(req.clip_seconds.is_finite() && req.clip_seconds > 0.0) {
        bail!("--clip-seconds must be > 0, got {}", req.clip_seconds);
    }
    let fingerprint = fingerprint(req)?;
    if !req.force && read_fingerprint(req.out).as_deref() == Some(fingerprint.as_str()) {
        info!(out = %req.out.display(), "demo dataset is up to date (same request); reused");
        let summary = summarize_existing(req.out, started)?;
        write_contact_sheet_if_asked(req)?;
        return Ok(summary);
    }
    let probes = VIDEOS
        .iter()
        .map(|spec| probe(spec, &req.media.join(spec.file)))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = SplitMix64(req.seed);
    let plan = plan(&probes, req, &mut rng);

    let staging = Staging::new(req.out)?;
    let mut mtcnn = Mtcnn::load(req.mtcnn_dir, req.mtcnn_params)
        .with_context(|| format!("cannot load MTCNN from {}", req.mtcnn_dir.display()))?;
    let donors = load_donors(req.media, &mut mtcnn)?;
    let footage = load_footage(&probes, &plan, &mut mtcnn)?;
    drop(mtcnn);
    let entries = render(&plan, &probes, &footage, &donors, staging.path())?;
    let codec = entries
        .values()
        .map(|e| e.codec)
        .find(|c| *c != "h264")
        .unwrap_or("h264");
    let text = serde_json::to_string_pretty(&entries)? + "\n";
    std::fs::write(staging.path().join("metadata.json"), text)
        .context("cannot write metadata.json")?;
    // Last, so that a folder holding the fingerprint holds everything before it.
    std::fs::write(staging.path().join(FINGERPRINT), &fingerprint)
        .with_context(|| format!("cannot write {FINGERPRINT}"))?;
    staging.commit(req.out)?;
    write_contact_sheet_if_asked(req)?;
    Ok(DemoSummary {
        real: plan.reals.len(),
        fake: plan.fakes.len(),
        splits: split_counts(entries.values().map(|e| e.split)),
        codec: codec.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        reused: false,
    })
}

/// The request as the JSON text that [`FINGERPRINT`] holds: everything the files depend on.
fn fingerprint(req: &DemoRequest) -> Result<String> {
    #[derive(Serialize)]
    struct Fingerprint<'a> {
        generator: u32,
        dfd_version: &'static str,
        seed: u64,
        videos: usize,
        clip_seconds: f64,
        mtcnn: &'a MtcnnParams,
        media_sha256: BTreeMap<&'static str, String>,
    }
    let mut media_sha256 = BTreeMap::new();
    let files = VIDEOS
        .iter()
        .map(|v| v.file)
        .chain(STILLS.iter().map(|s| s.0));
    for file in files {
        let path = req.media.join(file);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {} (run `bash scripts/setup.sh` to fetch the registry media)",
                path.display()
            )
        })?;
        media_sha256.insert(file, hex::encode(Sha256::digest(&bytes)));
    }
    let fp = Fingerprint {
        generator: GENERATOR_VERSION,
        dfd_version: env!("CARGO_PKG_VERSION"),
        seed: req.seed,
        videos: req.videos,
        clip_seconds: req.clip_seconds,
        mtcnn: req.mtcnn_params,
        media_sha256,
    };
    Ok(serde_json::to_string_pretty(&fp)? + "\n")
}

/// The fingerprint of the dataset in `out`, if it has one (absent or unreadable: none).
fn read_fingerprint(out: &Path) -> Option<String> {
    std::fs::read_to_string(out.join(FINGERPRINT)).ok()
}

/// Counts of an existing dataset, read back from its metadata.json.
fn summarize_existing(out: &Path, started: Instant) -> Result<DemoSummary> {
    let meta = read_metadata(out)?;
    let label = |e: &serde_json::Value, l: &str| e["label"].as_str() == Some(l);
    Ok(DemoSummary {
        real: meta.values().filter(|e| label(e, "REAL")).count(),
        fake: meta.values().filter(|e| label(e, "FAKE")).count(),
        splits: split_counts(meta.values().filter_map(|e| e["split"].as_str())),
        codec: "reused".to_string(),
        seconds: started.elapsed().as_secs_f64(),
        reused: true,
    })
}

fn read_metadata(out: &Path) -> Result<BTreeMap<String, serde_json::Value>> {
    let path = out.join("metadata.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn split_counts<'a>(splits: impl Iterator<Item = &'a str>) -> [usize; 3] {
    let mut counts = [0; 3];
    for s in splits {
        if let Some(i) = SPLITS.iter().position(|(name, _)| *name == s) {
            counts[i] += 1;
        }
    }
    counts
}

/// A hidden sibling folder the dataset is built in; removed if the command fails before
/// [`Staging::commit`] moves it into place.
struct Staging {
    path: PathBuf,
    committed: bool,
}

impl Staging {
    /// Refuses to replace a non-empty `out` that is not a dataset; clears staging folders left by
    /// earlier runs that were killed (their process is gone).
    fn new(out: &Path) -> Result<Staging> {
        if out.exists() && !out.join("metadata.json").is_file() {
            let empty = std::fs::read_dir(out)
                .with_context(|| format!("cannot read {}", out.display()))?
                .next()
                .is_none();
            if !empty {
                bail!(
                    "{} is not empty and holds no metadata.json: refusing to replace it",
                    out.display()
                );
            }
        }
        let (parent, name) = split_out(out)?;
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        remove_stale_siblings(&parent, &name);
        let path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging {
            path,
            committed: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished dataset to `out` by renames only: the old one (if any) aside, the new
    /// one in, the old one deleted. At no moment does `out` hold a mix of the two.
    fn commit(mut self, out: &Path) -> Result<()> {
        let (parent, name) = split_out(out)?;
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        if out.exists() {
            std::fs::rename(out, &old)
                .with_context(|| format!("cannot move the old {} aside", out.display()))?;
        }
        std::fs::rename(&self.path, out)
            .with_context(|| format!("cannot move the dataset into {}", out.display()))?;
        self.committed = true;
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot delete the old dataset {}", old.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover hidden folder is harmless (the next run clears it), and the
            // error being reported matters more.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `out`'s parent folder (`.` for a bare name) and its file name.
fn split_out(out: &Path) -> Result<(PathBuf, String)> {
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} has no folder name", out.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    Ok((parent.unwrap_or(Path::new(".")).to_path_buf(), name))
}

/// Deletes `.{name}.partial-PID` and `.{name}.old-PID` folders whose process no longer runs.
fn remove_stale_siblings(parent: &Path, name: &str) {
    let Ok(listing) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in listing.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = [".partial-", ".old-"]
            .iter()
            .find_map(|tag| file.strip_prefix(&format!(".{name}{tag}")))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                // Best effort, as in Drop: a folder that cannot go now goes next time.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn fallback_note(codec: &str) -> Option<String> {
    match codec {
        "h264" => None,
        "avc1" => Some("no ffmpeg program here: H.264 written by OpenCV's writer".to_string()),
        other => Some(format!(
            "no ffmpeg program and no H.264 VideoWriter here; written as MPEG-4 Part 2 ({other})"
        )),
    }
}

fn probe(spec: &'static VideoSpec, path: &Path) -> Result<Probe> {
    let capture = open(path)?;
    let fps = capture.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
    let fps = if fps.is_finite() && fps > 1.0 {
        fps
    } else {
        25.0
    };
    let frames = capture.get(videoio::CAP_PROP_FRAME_COUNT).unwrap_or(0.0);
    let width = capture.get(videoio::CAP_PROP_FRAME_WIDTH).unwrap_or(0.0);
    let height = capture.get(videoio::CAP_PROP_FRAME_HEIGHT).unwrap_or(0.0);
    if frames.is_nan() || frames < 1.0 || width.is_nan() || width < 16.0 || height < 16.0 {
        bail!("{} reports no frames or no size", path.display());
    }
    Ok(Probe {
        spec,
        path: path.to_path_buf(),
        fps,
        frames: frames as usize,
        size: Size::new(width as i32, height as i32),
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

/// `n` items dealt to the splits by their shares (largest remainder), then topped up to
/// `min_each` per split, taken from the largest, when there are enough for that.
fn allocate(n: usize, min_each: usize) -> [usize; 3] {
    let exact: Vec<f64> = SPLITS.iter().map(|(_, s)| s * n as f64).collect();
    let mut counts = [0usize; 3];
    for (c, e) in counts.iter_mut().zip(&exact) {
        *c = e.floor() as usize;
    }
    let mut by_remainder: Vec<usize> = (0..3).collect();
    by_remainder.sort_by(|&a, &b| {
        let rem = |i: usize| exact[i] - exact[i].floor();
        rem(b).total_cmp(&rem(a)).then(a.cmp(&b))
    });
    let short = n - counts.iter().sum::<usize>();
    for &i in by_remainder.iter().take(short) {
        counts[i] += 1;
    }
    if n >= 3 * min_each {
        for i in 0..3 {
            while counts[i] < min_each {
                let largest = (0..3).max_by_key(|&j| (counts[j], 3 - j)).unwrap_or(0);
                counts[largest] -= 1;
                counts[i] += 1;
            }
        }
    }
    counts
}

/// The split (index into [`SPLITS`]) of each filmed person: most footage to train, then test
/// (20%), then val (16%).
fn video_splits(probes: &[Probe]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probes.len()).collect();
    order.sort_by(|&a, &b| {
        let secs = |i: usize| probes[i].frames as f64 / probes[i].fps;
        secs(b).total_cmp(&secs(a))
    });
    let mut split = vec![0; probes.len()];
    for (rank, &v) in order.iter().enumerate() {
        split[v] = [0, 2, 1][rank % 3];
    }
    split
}

/// The still people, flat, as (still file, person id), in [`STILLS`] order.
fn still_people() -> Vec<(&'static str, &'static str)> {
    STILLS
        .iter()
        .flat_map(|(file, people)| people.iter().map(move |p| (*file, *p)))
        .collect()
}

/// Picks every clip: pairs per split, then for each REAL its window, mirror, crop and size, and
/// for its FAKE a donor of the same split and the swap's parameters.
fn plan(probes: &[Probe], req: &DemoRequest, rng: &mut SplitMix64) -> Plan {
    let video_split = video_splits(probes);
    let pairs = allocate(req.videos / 2, 1);
    let mut donors: Vec<usize> = (0..still_people().len()).collect();
    rng.shuffle(&mut donors);
    let donor_counts = allocate(donors.len(), 2);
    let mut donors_of: [Vec<usize>; 3] = Default::default();
    let mut rest = donors.as_slice();
    for (split, &count) in donor_counts.iter().enumerate() {
        let (taken, left) = rest.split_at(count);
        donors_of[split] = taken.to_vec();
        rest = left;
    }
    let mut reals = Vec::new();
    let mut fakes = Vec::new();
    for (split, &count) in pairs.iter().enumerate() {
        // The odd video out is one more REAL, in train.
        let n_real = count + usize::from(split == 0 && req.videos % 2 == 1);
        let Some(video) = video_split.iter().position(|&s| s == split) else {
            continue;
        };
        for k in 0..n_real {
            let real = plan_real(&probes[video], video, split, reals.len(), req, rng);
            if k < count {
                let pool = &donors_of[split];
                fakes.push(FakePlan {
                    name: format!("fake_{:03}.mp4", fakes.len()),
                    real: reals.len(),
                    donor: pool[rng.below(pool.len())],
                    params: SwapParams::from_unit([rng.unit(), rng.unit(), rng.unit(), rng.unit()]),
                    jitter_seed: rng.next_u64(),
                });
            }
            reals.push(real);
        }
    }
    Plan { reals, fakes }
}

fn plan_real(
    probe: &Probe,
    video: usize,
    split: usize,
    index: usize,
    req: &DemoRequest,
    rng: &mut SplitMix64,
) -> RealPlan {
    let len = ((req.clip_seconds * probe.fps).round() as usize).clamp(1, probe.frames);
    let start = rng.below(probe.frames - len + 1);
    let mirrored = rng.unit() < 0.5;
    let keep = rng.within(CROP_KEEP);
    let (w, h) = (probe.size.width, probe.size.height);
    let (cw, ch) = (
        ((w as f64 * keep).round() as i32).clamp(16, w),
        ((h as f64 * keep).round() as i32).clamp(16, h),
    );
    let x = rng.below((w - cw + 1) as usize) as i32;
    let y = rng.below((h - ch + 1) as usize) as i32;
    let scale = rng.within(RESCALE);
    let even = |v: f64| (((v / 2.0).round() as i32) * 2).max(16);
    RealPlan {
        name: format!("real_{index:03}.mp4"),
        video,
        split,
        start,
        len,
        mirrored,
        crop: Rect::new(x, y, cw, ch),
        size: Size::new(even(cw as f64 * scale), even(ch as f64 * scale)),
    }
}

/// Finds the face in every still, one person per face, left to right.
fn load_donors(media: &Path, mtcnn: &mut Mtcnn) -> Result<Vec<Donor>> {
    let mut donors = Vec::new();
    for (file, people) in STILLS {
        let path = media.join(file);
        let text = path.to_str().context("still path is not UTF-8")?;
        let image = imgcodecs::imread(text, imgcodecs::IMREAD_COLOR)?;
        if image.empty() {
            bail!(
                "cannot read {} (run `bash scripts/setup.sh` to fetch the registry stills)",
                path.display()
            );
        }
        let mut faces: Vec<FaceGeometry> = synth::detect_bgr(mtcnn, &image)?
            .iter()
            .filter(|f| f.confidence >= MIN_CONFIDENCE)
            .map(FaceGeometry::from)
            .collect();
        if faces.len() != people.len() {
            bail!(
                "{file}: found {} confident faces where the identity map expects {}",
                faces.len(),
                people.len()
            );
        }
        faces.sort_by(|a, b| (a.x + a.width / 2.0).total_cmp(&(b.x + b.width / 2.0)));
        for (face, person) in faces.into_iter().zip(people.iter()) {
            donors.push(Donor {
                file,
                person,
                image: image.clone(),
                face,
            });
        }
    }
    Ok(donors)
}

/// Decodes each source once, over the frames the plan's windows cover, and tracks its face there.
fn load_footage(probes: &[Probe], plan: &Plan, mtcnn: &mut Mtcnn) -> Result<Vec<Option<Footage>>> {
    let mut footage = Vec::with_capacity(probes.len());
    for (v, probe) in probes.iter().enumerate() {
        let windows = plan.reals.iter().filter(|r| r.video == v);
        let lo = windows.clone().map(|r| r.start).min();
        let hi = windows.map(|r| r.start + r.len).max();
        let (Some(lo), Some(hi)) = (lo, hi) else {
            footage.push(None);
            continue;
        };
        let frames = read_range(probe, lo, hi)?;
        let track = track(mtcnn, &frames)?;
        let found = track.iter().filter(|t| t.is_some()).count();
        info!(
            source = probe.spec.file,
            frames = frames.len(),
            found,
            "source tracked"
        );
        footage.push(Some(Footage {
            offset: lo,
            frames,
            track,
        }));
    }
    Ok(footage)
}

/// Source frames `lo..hi` (fewer if the clip ends first).
fn read_range(probe: &Probe, lo: usize, hi: usize) -> Result<Vec<Mat>> {
    let mut capture = open(&probe.path)?;
    let mut frames = Vec::with_capacity(hi - lo);
    let mut index = 0usize;
    let mut frame = Mat::default();
    while index < hi && capture.read(&mut frame)? {
        if index >= lo && !frame.empty() {
            frames.push(frame.try_clone()?);
        }
        index += 1;
    }
    if frames.is_empty() {
        bail!("{}: no frame decoded from frame {lo}", probe.spec.file);
    }
    Ok(frames)
}

/// Writes every REAL clip and its FAKE, pairs in parallel (they share nothing but read-only
/// footage and donors); returns their metadata entries.
fn render(
    plan: &Plan,
    probes: &[Probe],
    footage: &[Option<Footage>],
    donors: &[Donor],
    dir: &Path,
) -> Result<BTreeMap<String, Entry>> {
    let pairs: Vec<Vec<(String, Entry)>> = plan
        .reals
        .par_iter()
        .enumerate()
        .map(|(r, real)| render_pair(plan, r, real, probes, footage, donors, dir))
        .collect::<Result<_>>()?;
    Ok(pairs.into_iter().flatten().collect())
}

/// One REAL clip and its FAKE (if planned), with their metadata entries.
fn render_pair(
    plan: &Plan,
    r: usize,
    real: &RealPlan,
    probes: &[Probe],
    footage: &[Option<Footage>],
    donors: &[Donor],
    dir: &Path,
) -> Result<Vec<(String, Entry)>> {
    let probe = &probes[real.video];
    let source = footage[real.video]
        .as_ref()
        .context("planned clip without decoded footage")?;
    let fake = plan.fakes.iter().find(|f| f.real == r);
    let donor = fake.map(|f| &donors[f.donor]);
    let (real_codec, fake_codec) = write_pair(real, fake, donor, source, probe.fps, dir)?;
    let base = Entry {
        label: "REAL",
        split: SPLITS[real.split].0,
        group: probe.spec.person,
        original: None,
        source: probe.spec.file,
        start_frame: real.start,
        frames: real.len,
        mirrored: real.mirrored,
        crop: [real.crop.x, real.crop.y, real.crop.width, real.crop.height],
        size: [real.size.width, real.size.height],
        donor: None,
        donor_person: None,
        swap: None,
        codec: real_codec,
        notes: fallback_note(real_codec),
    };
    let mut out = Vec::with_capacity(2);
    if let (Some(fake), Some(donor), Some(codec)) = (fake, donor, fake_codec) {
        let fake_entry = Entry {
            label: "FAKE",
            original: Some(real.name.clone()),
            donor: Some(donor.file),
            donor_person: Some(donor.person),
            swap: Some(fake.params),
            codec,
            notes: fallback_note(codec),
            ..base.clone()
        };
        out.push((fake.name.clone(), fake_entry));
    }
    out.push((real.name.clone(), base));
    Ok(out)
}

/// Writes one REAL clip, then its FAKE if planned, each streamed frame by frame (no clip is held
/// whole in memory); returns the codecs used.
fn write_pair(
    real: &RealPlan,
    fake: Option<&FakePlan>,
    donor: Option<&Donor>,
    source: &Footage,
    fps: f64,
    dir: &Path,
) -> Result<(&'static str, Option<&'static str>)> {
    let (real_codec, written) = write_clip(&dir.join(&real.name), real, source, fps, |_, f| Ok(f))?;
    info!(video = %real.name, frames = written, "real clip written");
    let (Some(fake), Some(donor)) = (fake, donor) else {
        return Ok((real_codec, None));
    };
    let mut jitter_rng = SplitMix64(fake.jitter_seed);
    let mut swapped = 0usize;
    let (fake_codec, written) =
        write_clip(&dir.join(&fake.name), real, source, fps, |i, frame| {
            let offsets = jitter_offsets(&mut jitter_rng);
            let Some(face) = source.track[real.start + i - source.offset] else {
                return Ok(frame);
            };
            let t = reframe_geometry(&face, real);
            let points = fake.params.jittered(&t, &offsets);
            swapped += 1;
            synth::swap_face(&frame, &t, &points, &donor.image, &donor.face, &fake.params)
                .with_context(|| format!("{}: swap of frame {i}", fake.name))
        })?;
    if swapped == 0 {
        warn!(video = %fake.name, "no frame could be swapped (no face found)");
    }
    info!(video = %fake.name, swapped, frames = written, "fake clip written");
    Ok((real_codec, Some(fake_codec)))
}

/// Writes the clip's window of `source`, each frame reframed and then passed through `edit`;
/// returns the codec and the number of frames written.
fn write_clip(
    path: &Path,
    real: &RealPlan,
    source: &Footage,
    fps: f64,
    mut edit: impl FnMut(usize, Mat) -> Result<Mat>,
) -> Result<(&'static str, usize)> {
    let (mut writer, codec) = Encoder::open(path, real.size, fps)?;
    let mut written = 0;
    for i in 0..real.len {
        let Some(src) = source.frames.get(real.start + i - source.offset) else {
            break;
        };
        let frame = edit(i, reframe(src, real)?)?;
        writer.write(&frame)?;
        written += 1;
    }
    writer
        .finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((codec, written))
}

/// Five landmark offsets, each coordinate uniform in [-1, 1] (scaled by the fake's jitter).
fn jitter_offsets(rng: &mut SplitMix64) -> Points {
    let mut offsets: Points = [[0.0; 2]; 5];
    for p in offsets.iter_mut() {
        *p = [
            (2.0 * rng.unit() - 1.0) as f32,
            (2.0 * rng.unit() - 1.0) as f32,
        ];
    }
    offsets
}

/// A source frame cropped, mirrored and rescaled as the clip's plan says.
fn reframe(src: &Mat, real: &RealPlan) -> Result<Mat> {
    let cropped = Mat::roi(src, real.crop)?.try_clone()?;
    let flipped = if real.mirrored {
        let mut out = Mat::default();
        cv::flip(&cropped, &mut out, 1)?;
        out
    } else {
        cropped
    };
    let mut out = Mat::default();
    let shrink = real.size.width < real.crop.width;
    let interpolation = if shrink {
        imgproc::INTER_AREA
    } else {
        imgproc::INTER_LINEAR
    };
    imgproc::resize(&flipped, &mut out, real.size, 0.0, 0.0, interpolation)?;
    Ok(out)
}

/// A face found in the source frame, carried through [`reframe`]: the same crop, mirror and scale,
/// with left and right landmarks swapped by the mirror (landmark 0 is always the eye on the
/// image's left, as MTCNN reports it, so the similarity fit never has to undo a reflection).
fn reframe_geometry(g: &FaceGeometry, real: &RealPlan) -> FaceGeometry {
    let crop = real.crop;
    let sx = real.size.width as f32 / crop.width as f32;
    let sy = real.size.height as f32 / crop.height as f32;
    let map = |x: f32, y: f32| -> [f32; 2] {
        let mut cx = x - crop.x as f32;
        let cy = y - crop.y as f32;
        if real.mirrored {
            cx = (crop.width - 1) as f32 - cx;
        }
        // Pixel centres: u_out + 0.5 = (u_in + 0.5) * scale.
        [(cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5]
    };
    let mut landmarks = g.landmarks.map(|p| map(p[0], p[1]));
    if real.mirrored {
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

/// An `.mp4` being written. The `ffmpeg` program (a set-up package) with libx264 is preferred:
/// its output is the same bytes for the same frames, which OpenCV 4.6's FFmpeg writer did not
/// give (same frames, different bytes from run to run for some clips), and its preset can be
/// chosen. Without `ffmpeg`, OpenCV's writer: H.264 ("avc1") when it can, else MPEG-4 Part 2.
enum Encoder {
    Ffmpeg {
        child: std::process::Child,
        stdin: std::process::ChildStdin,
    },
    OpenCv(videoio::VideoWriter),
}

/// libx264 settings: `veryfast` spends a third of `medium`'s CPU for a slightly larger file; CRF 20
/// keeps the encoder's own artefacts below the swap's, which are what the detectors should see.
const X264_ARGS: [&str; 6] = ["-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"];

impl Encoder {
    /// Opens `path` for frames of `size`; returns the encoder and the codec's name ("h264" from
    /// ffmpeg, "avc1" or "mp4v" from OpenCV).
    fn open(path: &Path, size: Size, fps: f64) -> Result<(Encoder, &'static str)> {
        match Self::spawn_ffmpeg(path, size, fps) {
            Ok(encoder) => Ok((encoder, "h264")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (writer, codec) = open_opencv_writer(path, size, fps)?;
                Ok((Encoder::OpenCv(writer), codec))
            }
            Err(e) => Err(e).context("cannot start ffmpeg"),
        }
    }

    fn spawn_ffmpeg(path: &Path, size: Size, fps: f64) -> std::io::Result<Encoder> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "bgr24"])
            .args(["-s", &format!("{}x{}", size.width, size.height)])
            .args(["-r", &format!("{fps}"), "-i", "-", "-an", "-c:v", "libx264"])
            .args(X264_ARGS)
            .args(["-fflags", "+bitexact", "-map_metadata", "-1"])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("ffmpeg has no stdin"))?;
        Ok(Encoder::Ffmpeg { child, stdin })
    }

    fn write(&mut self, frame: &Mat) -> Result<()> {
        match self {
            Encoder::Ffmpeg { stdin, .. } => {
                use std::io::Write;
                let owned;
                let continuous = if frame.is_continuous() {
                    frame
                } else {
                    owned = frame.try_clone()?;
                    &owned
                };
                stdin
                    .write_all(continuous.data_bytes()?)
                    .context("ffmpeg stopped reading frames")
            }
            Encoder::OpenCv(writer) => Ok(writer.write(frame)?),
        }
    }

    /// Flushes and closes the file; fails with ffmpeg's own message if it failed.
    fn finish(self) -> Result<()> {
        match self {
            Encoder::Ffmpeg { child, stdin } => {
                drop(stdin);
                let out = child.wait_with_output().context("ffmpeg did not finish")?;
                if !out.status.success() {
                    bail!(
                        "ffmpeg failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(())
            }
            Encoder::OpenCv(mut writer) => Ok(writer.release()?),
        }
    }
}

/// OpenCV's writer for `.mp4`: H.264 ("avc1") when this OpenCV/FFmpeg can, else MPEG-4 Part 2
/// ("mp4v"); with the fourcc used.
fn open_opencv_writer(
    path: &Path,
    size: Size,
    fps: f64,
) -> Result<(videoio::VideoWriter, &'static str)> {
    let text = path.to_str().context("output path is not UTF-8")?;
    for (name, code) in [
        ("avc1", ['a', 'v', 'c', '1']),
        ("mp4v", ['m', 'p', '4', 'v']),
    ] {
        let fourcc = videoio::VideoWriter::fourcc(code[0], code[1], code[2], code[3])?;
        let writer = videoio::VideoWriter::new_with_backend(
            text,
            videoio::CAP_FFMPEG,
            fourcc,
            fps,
            size,
            true,
        )?;
        if writer.is_opened()? {
            return Ok((writer, name));
        }
    }
    bail!(
        "cannot open a VideoWriter for {} (neither avc1 nor mp4v)",
        path.display()
    )
}

/// Writes the middle frame of the dataset's first FAKE beside the same frame of its original, as
/// decoded from the written files (what the detectors will see).
fn write_contact_sheet_if_asked(req: &DemoRequest) -> Result<()> {
    let Some(path) = req.contact_sheet else {
        return Ok(());
    };
    let meta = read_metadata(req.out)?;
    let (fake, entry) = meta
        .iter()
        .find(|(_, e)| e["label"].as_str() == Some("FAKE"))
        .ok_or_else(|| anyhow!("no FAKE in {}, no contact sheet", req.out.display()))?;
    let original = entry["original"]
        .as_str()
        .with_context(|| format!("{fake} has no original"))?;
    let mut pair = Vector::<Mat>::new();
    pair.push(middle_frame(&req.out.join(original))?);
    pair.push(middle_frame(&req.out.join(fake))?);
    let mut side_by_side = Mat::default();
    cv::hconcat(&pair, &mut side_by_side)?;
    let path_text = path.to_str().context("contact sheet path is not UTF-8")?;
    if !imgcodecs::imwrite(path_text, &side_by_side, &Vector::new())? {
        bail!("cannot write the contact sheet {}", path.display());
    }
    info!(path = %path.display(), real = original, fake = %fake, "contact sheet written");
    Ok(())
}

fn middle_frame(path: &Path) -> Result<Mat> {
    let mut capture = open(path)?;
    let count = capture.get(videoio::CAP_PROP_FRAME_COUNT).unwrap_or(0.0);
    let middle = if count.is_finite() && count >= 2.0 {
        (count / 2.0) as usize
    } else {
        0
    };
    let mut frame = Mat::default();
    let mut last = None;
    for _ in 0..=middle {
        if !capture.read(&mut frame)? || frame.empty() {
            break;
        }
        last = Some(frame.try_clone()?);
    }
    last.with_context(|| format!("{}: no frame decoded", path.display()))
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
    fn allocation_hits_the_shares_and_the_minimum() {
        assert_eq!(allocate(50, 1), [32, 8, 10]);
        assert_eq!(allocate(9, 2), [5, 2, 2]);
        assert_eq!(allocate(3, 1), [1, 1, 1]);
        assert_eq!(allocate(2, 1), [1, 0, 1]);
        for n in 0..200 {
            assert_eq!(allocate(n, 1).iter().sum::<usize>(), n);
        }
    }

    fn plan_of(mirrored: bool) -> RealPlan {
        RealPlan {
            name: "x".into(),
            video: 0,
            split: 0,
            start: 0,
            len: 1,
            mirrored,
            crop: Rect::new(10, 20, 100, 80),
            size: Size::new(200, 160),
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
        let plain = reframe_geometry(&g, &plan_of(false));
        assert!((plain.x - 40.5).abs() < 1e-3 && (plain.width - 80.0).abs() < 1e-3);
        assert!((plain.landmarks[0][0] - 60.5).abs() < 1e-3);
        let flipped = reframe_geometry(&g, &plan_of(true));
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
}
