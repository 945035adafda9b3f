//! `metadata.json`: the DFDC keys every dataset has (`label`, `split`, `original`), the `group` key
//! ingest keeps people together by, and how each clip was made, so any video can be traced back to
//! its footage and every artefact to its parameters.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::encode::X264_PRESET;
use crate::error::{io, DemoError, Result};
use crate::people::PEOPLE;
use crate::plan::{ClipInfo, Degradation, Framing, PairPlan, Window};
use crate::render::Rendered;
use crate::swap::SwapParams;

/// One `metadata.json` entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub label: &'static str,
    pub split: &'static str,
    /// The person filmed: what decides the split.
    pub group: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    pub source: &'static str,
    #[serde(flatten)]
    pub window: Window,
    /// Frames written (the window's length unless the clip ended first).
    pub frames: usize,
    #[serde(flatten)]
    pub framing: Framing,
    pub degradation: Degradation,
    /// The encoder's settings, the same for a REAL and its FAKE.
    pub encoder: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub donor: Option<DonorEntry>,
}

/// Where a FAKE's face came from and how it was swapped in.
#[derive(Debug, Clone, Serialize)]
pub struct DonorEntry {
    pub person: &'static str,
    pub source: &'static str,
    pub start_frame: usize,
    pub swap: SwapParams,
    /// Frames whose face was replaced (the others had no face to replace).
    pub swapped_frames: usize,
}

/// The entries of a rendered pair: the REAL, then its FAKE if it has one.
pub fn entries_of(
    pair: &PairPlan,
    clips: &[ClipInfo],
    rendered: &Rendered,
) -> Vec<(String, Entry)> {
    let real = Entry {
        label: "REAL",
        split: pair.split.as_str(),
        group: PEOPLE[pair.person].id,
        original: None,
        source: clips[pair.target.clip].file,
        window: pair.target,
        frames: rendered.frames,
        framing: pair.framing,
        degradation: pair.degradation,
        encoder: format!(
            "libx264 -preset {X264_PRESET} -crf {}",
            pair.degradation.crf
        ),
        donor: None,
    };
    let mut out = Vec::with_capacity(2);
    if let (Some(name), Some(donor)) = (&pair.fake_name, &pair.donor) {
        let fake = Entry {
            label: "FAKE",
            original: Some(pair.real_name.clone()),
            donor: Some(DonorEntry {
                person: PEOPLE[donor.person].id,
                source: clips[donor.window.clip].file,
                start_frame: donor.window.start,
                swap: donor.swap,
                swapped_frames: rendered.swapped,
            }),
            ..real.clone()
        };
        out.push((name.clone(), fake));
    }
    out.push((pair.real_name.clone(), real));
    out
}

/// The entries of a written dataset, as JSON values.
pub fn read_metadata(dataset: &Path) -> Result<BTreeMap<String, serde_json::Value>> {
    let path = dataset.join("metadata.json");
    let text =
        std::fs::read_to_string(&path).map_err(io(format!("cannot read {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| DemoError::Invalid(format!("{} is not valid JSON: {e}", path.display())))
}
