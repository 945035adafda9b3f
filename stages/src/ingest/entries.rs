//! From the raw entries of `metadata.json` to the videos ingest keeps: each odd entry becomes a
//! named warning (a split written `TRAIN`, a file listed twice with the same entry) or a rejection
//! that ingest turns into an `errors` row (a bad key or value, a split that is not train, val or
//! test, one file listed twice with different entries, a path that leaves the dataset folder,
//! through `..` or a symbolic link). One bad entry never fails the whole dataset.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use dfd_schemas::Label;
use serde_json::Value;

use super::metadata::{normalise_entry_path, parse_entry, MetadataEntry, RawEntries};

/// The splits training, scoring and the metrics know.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// An entry ingest keeps: its normalised name, its entry (split normalised) and its file.
#[derive(Debug)]
pub struct Accepted {
    pub name: String,
    pub entry: MetadataEntry,
    pub label: Option<Label>,
    pub path: PathBuf,
    pub meta: fs::Metadata,
}

/// What [`check`] made of the metadata.
#[derive(Debug, Default)]
pub struct Checked {
    pub accepted: Vec<Accepted>,
    /// (video id, message) of each entry left out: an `errors` row.
    pub rejected: Vec<(String, String)>,
    /// (video id, message) of each entry kept with a remark: a warning.
    pub warnings: Vec<(String, String)>,
    /// Every name the metadata lists, usable or not (a listed file is never also taken as an
    /// unlisted one).
    pub listed: BTreeSet<String>,
    /// The parsed entries by name, for looking up a fake's original.
    pub entries: BTreeMap<String, MetadataEntry>,
}

/// Checks every entry of `raw` against the dataset folder `dataset`.
pub fn check(dataset: &Path, raw: RawEntries) -> Checked {
    let mut checked = Checked::default();
    let root = fs::canonicalize(dataset).unwrap_or_else(|_| dataset.to_path_buf());
    // Spellings of each file, by normalised name: ("./c.mp4", entry), ("c.mp4", entry).
    let mut groups: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for (key, value) in raw.0 {
        checked.listed.insert(key.clone());
        match normalise_entry_path(&key) {
            Ok(name) => {
                checked.listed.insert(name.clone());
                groups.entry(name).or_default().push((key, value));
            }
            Err(why) => checked
                .rejected
                .push((key.clone(), format!("metadata.json entry `{key}`: {why}"))),
        }
    }
    for (name, spellings) in merge_same_files(&root, groups) {
        if let Some(entry) = one_entry(&name, &spellings, &mut checked) {
            accept(dataset, &root, name, entry, &mut checked);
        }
    }
    checked
}

/// Names that are one file through a symbolic link (`alias.mp4` -> `clips/x.mp4`) are one group.
fn merge_same_files(
    root: &Path,
    groups: BTreeMap<String, Vec<(String, Value)>>,
) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut by_file: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut merged: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for (name, spellings) in groups {
        let file = fs::canonicalize(root.join(&name)).ok();
        let into = match file.as_ref().and_then(|f| by_file.get(f)) {
            Some(first) => first.clone(),
            None => {
                if let Some(file) = file {
                    by_file.insert(file, name.clone());
                }
                name
            }
        };
        merged.entry(into).or_default().extend(spellings);
    }
    merged
}

/// The one entry of a file listed once, or listed several times with the same entry (a warning);
/// `None` (and a rejection) for different entries or an entry that does not parse.
fn one_entry(
    name: &str,
    spellings: &[(String, Value)],
    checked: &mut Checked,
) -> Option<MetadataEntry> {
    let (key, value) = &spellings[0];
    if spellings.len() > 1 {
        let keys: Vec<String> = spellings.iter().map(|(k, _)| format!("`{k}`")).collect();
        let times = match spellings.len() {
            2 => "twice".to_string(),
            n => format!("{n} times"),
        };
        let same = spellings.iter().all(|(_, v)| v == value);
        if !same {
            checked.rejected.push((
                name.to_string(),
                format!(
                    "metadata.json lists one file {times}, as {}, with different entries: \
                     neither is used; keep one",
                    keys.join(" and ")
                ),
            ));
            return None;
        }
        checked.warnings.push((
            name.to_string(),
            format!(
                "metadata.json lists one file {times}, as {}, with the same entry: used once",
                keys.join(" and ")
            ),
        ));
    }
    let mut entry = match parse_entry(value) {
        Ok(entry) => entry,
        Err(why) => {
            checked.rejected.push((
                name.to_string(),
                format!("metadata.json entry `{key}`: {why}"),
            ));
            return None;
        }
    };
    if let Some(split) = entry.split.take() {
        let lower = split.to_ascii_lowercase();
        if !SPLITS.contains(&lower.as_str()) {
            checked.rejected.push((
                name.to_string(),
                format!(
                    "metadata.json entry `{key}`: split `{split}` is not one of {}",
                    SPLITS.join(", ")
                ),
            ));
            return None;
        }
        if lower != split {
            checked.warnings.push((
                name.to_string(),
                format!("metadata.json entry `{key}`: split `{split}` read as `{lower}`"),
            ));
        }
        entry.split = Some(lower);
    }
    checked.entries.insert(name.to_string(), entry.clone());
    Some(entry)
}

/// Keeps the entry if its label is known and its file exists inside the dataset folder.
fn accept(dataset: &Path, root: &Path, name: String, entry: MetadataEntry, checked: &mut Checked) {
    let label = match entry.label.as_deref().map(|l| (l, Label::parse(l))) {
        Some((_, Some(label))) => Some(label),
        Some((text, None)) => {
            let message =
                format!("metadata.json entry `{name}`: label `{text}` is neither REAL nor FAKE");
            checked.rejected.push((name, message));
            return;
        }
        None => None,
    };
    let path = dataset.join(&name);
    let no_such_file = || {
        format!(
            "metadata.json entry `{name}`: no such file {}",
            path.display()
        )
    };
    let Ok(resolved) = fs::canonicalize(&path) else {
        let message = no_such_file();
        checked.rejected.push((name, message));
        return;
    };
    if !resolved.starts_with(root) {
        let message = format!(
            "metadata.json entry `{name}`: resolves to {}, outside the dataset folder (through a \
             symbolic link)",
            resolved.display()
        );
        checked.rejected.push((name, message));
        return;
    }
    match fs::metadata(&resolved) {
        Ok(meta) if meta.is_file() => checked.accepted.push(Accepted {
            name,
            entry,
            label,
            path,
            meta,
        }),
        _ => {
            let message = no_such_file();
            checked.rejected.push((name, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawEntries {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn one_file_under_two_spellings_is_one_entry_or_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("c.mp4"), b"x").unwrap();
        let same = check(
            dir.path(),
            raw(r#"{"c.mp4": {"label": "REAL"}, "./c.mp4": {"label": "REAL"}}"#),
        );
        assert_eq!(same.accepted.len(), 1);
        assert_eq!(same.warnings.len(), 1);
        let different = check(
            dir.path(),
            raw(r#"{"c.mp4": {"label": "REAL"}, "./c.mp4": {"label": "FAKE"}}"#),
        );
        assert!(different.accepted.is_empty());
        assert!(different.rejected[0].1.contains("twice"));
    }

    #[test]
    fn splits_are_checked_and_case_folded() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.mp4"), b"x").unwrap();
        fs::write(dir.path().join("b.mp4"), b"x").unwrap();
        let checked = check(
            dir.path(),
            raw(r#"{"a.mp4": {"label": "REAL", "split": "Val"}, "b.mp4": {"split": "banana"}}"#),
        );
        assert_eq!(checked.accepted[0].entry.split.as_deref(), Some("val"));
        assert!(checked.warnings[0].1.contains("`Val` read as `val`"));
        assert!(checked.rejected[0].1.contains("banana"));
    }

    #[test]
    fn a_link_out_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        let checked = check(dir.path(), raw(r#"{"root/etc/passwd": {"label": "REAL"}}"#));
        assert!(checked.accepted.is_empty());
        assert!(checked.rejected[0].1.contains("outside the dataset folder"));
    }
}
