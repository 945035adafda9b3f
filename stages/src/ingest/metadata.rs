//! Parsing a DFDC `metadata.json`: `{"abc.mp4": {"label": "FAKE", "split": "train", "original": "xyz.mp4"}}`.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Deserialize;

use crate::StageError;

/// One entry of `metadata.json`, as written (labels are checked later, per entry, so that one bad
/// entry becomes an error row instead of failing the whole dataset).
#[derive(Debug, Deserialize)]
pub struct MetadataEntry {
    pub label: Option<String>,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub original: Option<String>,
    /// Not a DFDC key: what must stay within one split (a person, a source video). `dfd
    /// demo-data` writes it; without it a fake goes with its original.
    #[serde(default)]
    pub group: Option<String>,
}

/// Reads and parses `metadata.json`; a missing or malformed file fails the stage with the path and,
/// for JSON errors, the line and column.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, MetadataEntry>, StageError> {
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
