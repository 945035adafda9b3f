//! `ingest`: reads a DFDC-format dataset folder into the `videos` table.
//!
//! Entries that cannot be used (unknown label or split, a key that is not a string, no such file, a
//! path outside the folder, also through a symbolic link, one file listed twice with different
//! entries) become rows of `errors` and warnings naming the entry; video files that
//! `metadata.json` does not mention are kept as unlabelled videos, with a warning. Nothing is
//! dropped silently, and no one entry fails the whole dataset (see [`entries`]).

mod entries;
mod metadata;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use dfd_schemas::{ErrorRow, Label, TableRow, VideoRow};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::warn;

pub use entries::SPLITS;
pub use metadata::{normalise_entry_path, read_metadata, MetadataEntry};

use crate::{Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec};

pub const NAME: &str = "ingest";

/// The group of an entry: its own `group` key; else, for a fake, its original's group; else itself.
/// An original is looked up by its normalised name (`./a.mp4` is `a.mp4`).
fn group_of(
    name: &str,
    entry: &MetadataEntry,
    entries: &BTreeMap<String, MetadataEntry>,
) -> String {
    if let Some(group) = &entry.group {
        return group.clone();
    }
    let is_fake = entry.label.as_deref().and_then(Label::parse) == Some(Label::Fake);
    match (&entry.original, is_fake) {
        (Some(original), true) => {
            let original = normalise_entry_path(original).unwrap_or_else(|_| original.clone());
            entries
                .get(&original)
                .and_then(|o| o.group.clone())
                .unwrap_or(original)
        }
        _ => name.to_owned(),
    }
}

/// The split of a labelled video whose metadata names none: drawn from a hash of its group, so a
/// fake and its original (and every video of one person) land together, in proportions 64/16/20
/// (the reference study's train/val/test) on average over many groups.
pub fn split_of_group(group: &str) -> &'static str {
    let digest = Sha256::digest(group.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let u = u64::from_be_bytes(first) as f64 / 2f64.powi(64);
    if u < 0.64 {
        "train"
    } else if u < 0.80 {
        "val"
    } else {
        "test"
    }
}

/// File name extensions taken for videos when scanning the folder for files without an entry.
const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "avi", "mkv", "webm", "m4v", "mpg", "mpeg"];

pub struct Ingest {
    dataset: PathBuf,
}

impl Ingest {
    /// `dataset` should be absolute, so that the `path` column works from any directory.
    pub fn new(dataset: PathBuf) -> Self {
        Ingest { dataset }
    }

    fn video_files(&self) -> Result<Vec<(String, fs::Metadata)>, StageError> {
        let read = fs::read_dir(&self.dataset).map_err(|e| StageError::Input {
            path: self.dataset.display().to_string(),
            message: format!("cannot read the dataset folder: {e}"),
        })?;
        let mut files = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| StageError::Input {
                path: self.dataset.display().to_string(),
                message: format!("cannot list the dataset folder: {e}"),
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_video = Path::new(&name)
                .extension()
                .map(|x| VIDEO_EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str()))
                .unwrap_or(false);
            if let (true, Ok(meta)) = (is_video, entry.metadata()) {
                if meta.is_file() {
                    files.push((name, meta));
                }
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(files)
    }
}

fn modified_ms(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Stage for Ingest {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            version: // 2: `group` from metadata; splits drawn by group when the metadata gives none.
            // 3: odd entries named (splits checked and case-folded, `./a.mp4` is `a.mp4`, a file
            // listed twice with different entries and links out of the folder refused); the same
            // bytes as 2 for a dataset without them, so downstream stays cached.
            3,
            inputs: &[],
            outputs: &[dfd_schemas::VideoRow::TABLE, dfd_schemas::ErrorRow::TABLE],
            sharding: Sharding::Whole,
            streams: false,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        Ok(json!({ "dataset": self.dataset.display().to_string() }))
    }

    /// The dataset's state: metadata.json's bytes and every video file's name, size and modification
    /// time. Hashing video contents would cost minutes on a DFDC part; size and time catch edits.
    fn external_state(&self) -> Result<Option<String>, StageError> {
        let mut hasher = Sha256::new();
        match fs::read(self.dataset.join("metadata.json")) {
            Ok(bytes) => hasher.update(&bytes),
            Err(e) => hasher.update(format!("metadata.json unreadable: {}", e.kind())),
        }
        for (name, meta) in self.video_files()? {
            hasher.update(format!("\n{name}\t{}\t{}", meta.len(), modified_ms(&meta)));
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    fn run(&self, _input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let raw = read_metadata(&self.dataset.join("metadata.json"))?;
        let checked = entries::check(&self.dataset, raw);
        for (video, message) in &checked.warnings {
            warn!(video = %video, "{message}");
        }
        let mut errors = Vec::new();
        for (video_id, message) in checked.rejected {
            warn!(video = %video_id, "{message}");
            errors.push(ErrorRow {
                video_id,
                stage: NAME.to_string(),
                message,
            });
        }
        let mut videos = Vec::new();
        for accepted in checked.accepted {
            let group = group_of(&accepted.name, &accepted.entry, &checked.entries);
            let split = accepted
                .entry
                .split
                .clone()
                .or_else(|| accepted.label.map(|_| split_of_group(&group).to_owned()));
            videos.push(VideoRow {
                path: accepted.path.display().to_string(),
                label: accepted.label,
                split,
                original: accepted.entry.original.clone(),
                group,
                size_bytes: accepted.meta.len(),
                modified_ms: modified_ms(&accepted.meta),
                video_id: accepted.name,
            });
        }
        for (name, meta) in self.video_files()? {
            if !checked.listed.contains(&name) {
                warn!(video = %name, "not in metadata.json: kept as an unlabelled video");
                videos.push(VideoRow {
                    path: self.dataset.join(&name).display().to_string(),
                    label: None,
                    split: None,
                    original: None,
                    group: name.clone(),
                    size_bytes: meta.len(),
                    modified_ms: modified_ms(&meta),
                    video_id: name,
                });
            }
        }
        videos.sort_by(|a, b| a.video_id.cmp(&b.video_id));
        ctx.progress.advance(1);
        Ok(StageOutput::default()
            .with_rows(&videos)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    fn entry(label: &str, original: Option<&str>, group: Option<&str>) -> MetadataEntry {
        MetadataEntry {
            label: Some(label.into()),
            split: None,
            original: original.map(Into::into),
            group: group.map(Into::into),
        }
    }

    #[test]
    fn a_fake_takes_its_originals_group_and_so_its_split() {
        let mut entries = BTreeMap::new();
        entries.insert(
            "real.mp4".to_string(),
            entry("REAL", None, Some("person-a")),
        );
        entries.insert(
            "fake.mp4".to_string(),
            entry("FAKE", Some("real.mp4"), None),
        );
        let group = group_of("fake.mp4", &entries["fake.mp4"], &entries);
        assert_eq!(group, "person-a");
        assert_eq!(
            split_of_group(&group),
            split_of_group(&group_of("real.mp4", &entries["real.mp4"], &entries))
        );
    }

    #[test]
    fn drawn_splits_come_near_64_16_20_over_many_groups() {
        let mut counts = BTreeMap::new();
        for i in 0..10_000 {
            *counts
                .entry(split_of_group(&format!("group-{i}")))
                .or_insert(0) += 1;
        }
        let share = |s: &str| counts[s] as f64 / 10_000.0;
        assert!((share("train") - 0.64).abs() < 0.02, "{counts:?}");
        assert!((share("val") - 0.16).abs() < 0.02, "{counts:?}");
        assert!((share("test") - 0.20).abs() < 0.02, "{counts:?}");
    }
}
