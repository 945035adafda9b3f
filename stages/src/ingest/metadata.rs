//! Parsing a DFDC `metadata.json`: `{"abc.mp4": {"label": "FAKE", "split": "train", "original": "xyz.mp4"}}`.

use std::fmt;
use std::path::{Component, Path};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::StageError;

/// One entry of `metadata.json`, its keys checked one by one (see [`parse_entry`]), so that one
/// bad entry becomes an error row instead of failing the whole dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataEntry {
    pub label: Option<String>,
    pub split: Option<String>,
    pub original: Option<String>,
    /// Not a DFDC key: what must stay within one split (a person, a source video). `dfd
    /// demo-data` writes it; without it a fake goes with its original.
    pub group: Option<String>,
}

/// The entries of `metadata.json` in file order, a repeated key included (a JSON object read as a
/// map would keep only the last one, silently).
#[derive(Debug)]
pub struct RawEntries(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for RawEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = RawEntries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping file names to entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entries.push((key, value));
                }
                Ok(RawEntries(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// Reads and parses `metadata.json`; a missing or malformed file fails the stage with the path and,
/// for JSON errors, the line and column. Entries are not interpreted here.
pub fn read_metadata(path: &Path) -> Result<RawEntries, StageError> {
    let input_error = |message: String| StageError::Input {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            input_error(
                "no metadata.json: a DFDC-format dataset is a folder of videos plus metadata.json \
                 mapping each file name to {\"label\": \"REAL\"|\"FAKE\", \"split\": ..., \"original\": ...}"
                    .into(),
            )
        } else {
            input_error(format!("cannot read: {e}"))
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        input_error(format!(
            "malformed metadata.json at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// One entry's keys: an object whose `label`, `split`, `original` and `group` are strings (or
/// absent, or null); other keys are ignored, as DFDC's own extra keys are. The error names the
/// key and what it holds.
pub fn parse_entry(value: &Value) -> Result<MetadataEntry, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "must be an object such as {{\"label\": \"FAKE\"}}, got {value}"
        ));
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`{key}` must be a string, got {other}")),
        }
    };
    Ok(MetadataEntry {
        label: text("label")?,
        split: text("split")?,
        original: text("original")?,
        group: text("group")?,
    })
}

/// A metadata key as the file path it names, relative to the dataset folder with `/` separators
/// and no `.` parts, so that `./c.mp4` and `c.mp4` are one video; `Err` says why the key cannot
/// name a file inside the folder.
pub fn normalise_entry_path(name: &str) -> Result<String, &'static str> {
    if let Some(why) = unsafe_entry_path(name) {
        return Err(why);
    }
    let parts: Vec<String> = Path::new(name)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        return Err("names the dataset folder itself, not a file");
    }
    Ok(parts.join("/"))
}

/// Why a metadata key cannot name a file inside the dataset folder, if it cannot.
pub fn unsafe_entry_path(name: &str) -> Option<&'static str> {
    let path = Path::new(name);
    if name.is_empty() {
        return Some("empty file name");
    }
    if path.is_absolute() {
        return Some("absolute path outside the dataset folder");
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Some("path escapes the dataset folder (`..`)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_refused() {
        assert!(unsafe_entry_path("../x.mp4").is_some());
        assert!(unsafe_entry_path("a/../../x.mp4").is_some());
        assert!(unsafe_entry_path("/etc/passwd").is_some());
        assert!(unsafe_entry_path("").is_some());
        assert!(unsafe_entry_path("sub/x.mp4").is_none());
        assert!(unsafe_entry_path("x.mp4").is_none());
    }

    #[test]
    fn paths_are_normalised_so_one_file_is_one_key() {
        assert_eq!(normalise_entry_path("./c.mp4"), Ok("c.mp4".into()));
        assert_eq!(normalise_entry_path("a//b/./c.mp4"), Ok("a/b/c.mp4".into()));
        assert!(normalise_entry_path(".").is_err());
        assert!(normalise_entry_path("../c.mp4").is_err());
    }

    #[test]
    fn repeated_keys_are_kept_and_entries_parsed_one_by_one() {
        let raw: RawEntries =
            serde_json::from_str(r#"{"a": {"label": "REAL"}, "a": {"label": 1}, "b": "FAKE"}"#)
                .unwrap();
        assert_eq!(raw.0.len(), 3);
        assert_eq!(
            parse_entry(&raw.0[0].1).unwrap().label.as_deref(),
            Some("REAL")
        );
        assert!(parse_entry(&raw.0[1].1).unwrap_err().contains("`label`"));
        assert!(parse_entry(&raw.0[2].1).unwrap_err().contains("object"));
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.json");
        std::fs::write(&path, "{\n  \"a.mp4\": {\"label\": \"FAKE\",}\n}").unwrap();
        let err = read_metadata(&path).unwrap_err().to_string();
        assert!(
            err.contains("metadata.json") && err.contains("line 2"),
            "{err}"
        );
    }
}
