//! The demo dataset: a DFDC-format folder (videos + `metadata.json`) made from registry footage
//! alone, so that the whole DAG can be run, tested and judged offline and reproducibly.
//!
//! A demo set is only worth running if what a detector learns from it is the manipulation. Demo
//! set v1 taught a shortcut instead (still donor faces, sharper than the footage they were pasted
//! into, and one filmed person per split), and its detectors ranked the test videos backwards. This
//! generator is built so that a FAKE differs from its REAL only inside the face and only by the
//! swap:
//!
//! - **Eight filmed people** ([`people`]), split by person (four train, two val, two test); a
//!   FAKE's donor is another person of its own split, so no face, target or donor, is in two
//!   splits.
//! - **Moving donors**: the donor's face comes from the donor's own video, frame by frame, tracked
//!   with MTCNN ([`track`]), as in the face swaps of FaceForensics++ and DFDC; not from a still.
//! - **No shortcut in the swap** ([`swap`]): the donor face is resampled to the target's resolution
//!   (with anti-aliasing) and its sharpness matched to the target face's before blending.
//! - **Quality varies across pairs, never within one** ([`plan::Degradation`], [`degrade`]):
//!   resolution, blur, noise and x264's CRF are drawn per pair and applied to the REAL and its FAKE
//!   alike, after the swap, and both are encoded with the same settings ([`encode`]).
//!
//! Every choice comes from the seed ([`plan`]): a seed names one dataset, byte for byte. The
//! dataset is built in a hidden sibling folder and moved into place by renames ([`staging`]), and
//! carries [`FINGERPRINT`]: the request, the generator's version, the MTCNN settings and the
//! sha256 of every clip used. A later request with the same fingerprint reuses it, any other
//! rebuilds it, like a stage of the DAG.

pub mod contact_sheet;
pub mod degrade;
pub mod encode;
pub mod error;
pub mod metadata;
pub mod people;
pub mod plan;
pub mod render;
pub mod source;
pub mod staging;
pub mod swap;
pub mod track;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use dfd_stages::detect::{Mtcnn, MtcnnParams};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::info;

pub use error::{DemoError, Result};
pub use metadata::read_metadata;
pub use people::{Split, PEOPLE};

/// Bump when the same request would write different files, so that cached datasets are rebuilt.
/// 4: demo set v2 (eight people, moving donors, matched sharpness, per-pair degradations).
pub const GENERATOR_VERSION: u32 = 4;
/// The file, inside the dataset, that says which request made it (written before the final move).
pub const FINGERPRINT: &str = ".dfd-demo-data.json";

/// What to make and where.
pub struct DemoRequest<'a> {
    pub out: &'a Path,
    pub seed: u64,
    /// Total videos; half REAL, half FAKE (the odd one REAL).
    pub videos: usize,
    /// Longest clip, in seconds; shorter footage gives its whole length.
    pub clip_seconds: f64,
    /// The folder holding the clips of [`PEOPLE`].
    pub media: &'a Path,
    pub mtcnn_dir: &'a Path,
    pub mtcnn_params: &'a MtcnnParams,
    /// Where to write, per person, one REAL frame beside the same frame of its FAKE.
    pub contact_sheet: Option<&'a Path>,
    /// Rebuild even when `out` holds a dataset made by the same request.
    pub force: bool,
}

/// What was written (or found).
pub struct DemoSummary {
    pub real: usize,
    pub fake: usize,
    /// Videos per split, in [`Split::ALL`] order.
    pub splits: [usize; 3],
    /// The people (filmed and donors) per split, in [`Split::ALL`] order.
    pub people: [Vec<String>; 3],
    pub seconds: f64,
    /// `out` already held this very dataset, and nothing was written.
    pub reused: bool,
}

/// Makes the dataset, or finds it already made by the same request (unless `force`).
pub fn demo_data(req: &DemoRequest) -> Result<DemoSummary> {
    let started = Instant::now();
    if req.videos < 2 {
        return Err(DemoError::Refused(
            "--videos must be at least 2 (one REAL and one FAKE)".into(),
        ));
    }
    if !(req.clip_seconds.is_finite() && req.clip_seconds > 0.0) {
        return Err(DemoError::Refused(format!(
            "--clip-seconds must be > 0, got {}",
            req.clip_seconds
        )));
    }
    let fingerprint = fingerprint(req)?;
    let existing = std::fs::read_to_string(req.out.join(FINGERPRINT)).ok();
    if !req.force && existing.as_deref() == Some(fingerprint.as_str()) {
        info!(out = %req.out.display(), "demo dataset is up to date (same request); reused");
        let summary = summarize(req.out, started, true)?;
        write_contact_sheet_if_asked(req)?;
        return Ok(summary);
    }
    let clips = source::probe_all(req.media)?;
    let plan = plan::plan(&clips, req.videos, req.clip_seconds, req.seed);
    let staging = staging::Staging::new(req.out)?;
    let mut mtcnn = Mtcnn::load(req.mtcnn_dir, req.mtcnn_params)?;
    let tracks = track::track_all(req.media, &clips, &plan, &mut mtcnn)?;
    drop(mtcnn);
    let footage = render::Footage {
        media: req.media,
        clips: &clips,
        tracks: &tracks,
    };
    let pairs: Vec<Vec<(String, metadata::Entry)>> = plan
        .pairs
        .par_iter()
        .map(|pair| {
            let rendered = render::render_pair(pair, &footage, staging.path())?;
            Ok(metadata::entries_of(pair, &clips, &rendered))
        })
        .collect::<Result<_>>()?;
    let entries: BTreeMap<String, metadata::Entry> = pairs.into_iter().flatten().collect();
    let text = serde_json::to_string_pretty(&entries)
        .map_err(|e| DemoError::Invalid(format!("cannot serialise metadata.json: {e}")))?;
    let write = |name: &str, text: &str| {
        std::fs::write(staging.path().join(name), text)
            .map_err(error::io(format!("cannot write {name}")))
    };
    write("metadata.json", &(text + "\n"))?;
    // Last, so that a folder holding the fingerprint holds everything before it.
    write(FINGERPRINT, &fingerprint)?;
    staging.commit(req.out)?;
    write_contact_sheet_if_asked(req)?;
    summarize(req.out, started, false)
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
    for file in people::clip_files() {
        let path = req.media.join(file);
        let bytes = std::fs::read(&path).map_err(|e| DemoError::Media {
            path: path.clone(),
            message: format!("cannot read: {e}"),
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
    serde_json::to_string_pretty(&fp)
        .map(|text| text + "\n")
        .map_err(|e| DemoError::Invalid(format!("cannot serialise the fingerprint: {e}")))
}

/// Counts of a written dataset, read back from its metadata.json.
fn summarize(out: &Path, started: Instant, reused: bool) -> Result<DemoSummary> {
    let meta = read_metadata(out)?;
    let text = |e: &serde_json::Value, key: &str| e[key].as_str().unwrap_or_default().to_string();
    let mut summary = DemoSummary {
        real: 0,
        fake: 0,
        splits: [0; 3],
        people: Default::default(),
        seconds: 0.0,
        reused,
    };
    for entry in meta.values() {
        match text(entry, "label").as_str() {
            "REAL" => summary.real += 1,
            "FAKE" => summary.fake += 1,
            _ => {}
        }
        let split = text(entry, "split");
        let Some(s) = Split::ALL.iter().position(|s| s.as_str() == split) else {
            continue;
        };
        summary.splits[s] += 1;
        let donor = entry["donor"]["person"].as_str().map(str::to_string);
        for person in std::iter::once(text(entry, "group")).chain(donor) {
            if !summary.people[s].contains(&person) {
                summary.people[s].push(person);
            }
        }
    }
    for people in summary.people.iter_mut() {
        people.sort();
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn write_contact_sheet_if_asked(req: &DemoRequest) -> Result<()> {
    match req.contact_sheet {
        Some(sheet) => contact_sheet::write(req.out, sheet),
        None => Ok(()),
    }
}
