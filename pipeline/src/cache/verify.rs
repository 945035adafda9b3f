//! Checking a finished output against its manifest, which holds every file's size and sha256.
//!
//! Sizes are checked whenever an output is used (a `stat` per file: cheap enough for every cache
//! hit and every `dfd status`); a file's sha256 when a stage reads it as an input, and for every
//! file by `dfd verify`. A mismatch marks the output damaged: its folder is renamed
//! `<fingerprint>.damaged` (with a note naming the file), so that no cache hit finds it, `status`
//! says so, and the next run recomputes it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

use super::atomic::{fsync_dir, write_file_atomic};
use super::manifest::{FileRecord, Manifest};
use super::parquet_io::read_parquet;
use super::{trash, CacheError, Workspace};

/// The note a damaged output keeps: which file, and how it differs.
pub const NOTE: &str = "_damaged.txt";

/// How a file of a finished output differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("{file} is missing")]
    Missing { file: String },
    #[error("{file} has {found} bytes, its manifest says {expected}")]
    Size {
        file: String,
        expected: u64,
        found: u64,
    },
    #[error("{file}: its sha256 differs from the manifest's (the bytes changed on disk)")]
    Hash { file: String },
    #[error("{file}: cannot be read: {error}")]
    Unreadable { file: String, error: String },
}

/// Checks that every file the manifest lists exists with its size.
pub fn check_sizes(dir: &Path, manifest: &Manifest) -> Result<(), Damage> {
    for file in manifest.shards.iter().flat_map(|s| s.files.iter()) {
        check_size(dir, file)?;
    }
    Ok(())
}

fn check_size(dir: &Path, file: &FileRecord) -> Result<(), Damage> {
    match fs::metadata(dir.join(&file.path)) {
        Ok(meta) if meta.len() == file.bytes => Ok(()),
        Ok(meta) => Err(Damage::Size {
            file: file.path.clone(),
            expected: file.bytes,
            found: meta.len(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Damage::Missing {
            file: file.path.clone(),
        }),
        Err(e) => Err(Damage::Unreadable {
            file: file.path.clone(),
            error: e.to_string(),
        }),
    }
}

/// Checks one file's size and sha256.
pub fn check_file(dir: &Path, file: &FileRecord) -> Result<(), Damage> {
    check_size(dir, file)?;
    let unreadable = |e: io::Error| Damage::Unreadable {
        file: file.path.clone(),
        error: e.to_string(),
    };
    let mut reader = File::open(dir.join(&file.path)).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher).map_err(unreadable)?;
    if hex::encode(hasher.finalize()) != file.sha256 {
        return Err(Damage::Hash {
            file: file.path.clone(),
        });
    }
    Ok(())
}

/// Reads a file of a finished output after checking it against its manifest (size and sha256):
/// what the commands that only read (`report`, `predict`) use, so that they never answer from
/// damaged bytes.
pub fn read_checked(dir: &Path, file: &FileRecord) -> Result<Vec<RecordBatch>, CacheError> {
    check_file(dir, file)?;
    read_parquet(&dir.join(&file.path))
}

/// Every damaged file of an output (size and sha256 of each).
pub fn check_all(dir: &Path, manifest: &Manifest) -> Vec<Damage> {
    manifest
        .shards
        .iter()
        .flat_map(|s| s.files.iter())
        .filter_map(|f| check_file(dir, f).err())
        .collect()
}

/// Removes from a finished output every file its manifest does not list (besides the manifest
/// and the shard records): temporaries that an earlier dfd committed with a resumed output, so
/// that a reader of the folder (pyarrow, DuckDB) sees exactly the manifest's rows. Returns the
/// files removed, relative to `dir`.
pub fn remove_unlisted(dir: &Path, manifest: &Manifest) -> Result<Vec<String>, CacheError> {
    let mut listed: Vec<String> = vec![Manifest::FILE.to_string()];
    for shard in &manifest.shards {
        listed.push(format!("_shards/{:05}.json", shard.index));
        listed.extend(shard.files.iter().map(|f| f.path.clone()));
    }
    listed.sort();
    let mut removed = Vec::new();
    for relative in files_under(dir)? {
        if listed.binary_search(&relative).is_err() {
            let path = dir.join(&relative);
            fs::remove_file(&path).map_err(|e| CacheError::io(&path, e))?;
            removed.push(relative);
        }
    }
    Ok(removed)
}

/// Every file (and symbolic link) under `dir`, relative to it with `/` separators.
pub fn files_under(dir: &Path) -> Result<Vec<String>, CacheError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), CacheError> {
        for entry in fs::read_dir(dir).map_err(|e| CacheError::io(dir, e))? {
            let entry = entry.map_err(|e| CacheError::io(dir, e))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &path, out)?;
            } else if let Ok(relative) = path.strip_prefix(root) {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Marks the output `stage/fingerprint` damaged: renames its folder `<fingerprint>.damaged` (an
/// older damaged copy is discarded) and writes a note naming the damage there. Idempotent: an
/// output already marked (by another reader of the same run) is left as it is.
pub fn mark_damaged(
    workspace: &Workspace,
    stage: &str,
    fingerprint: &str,
    damage: &Damage,
) -> Result<PathBuf, CacheError> {
    let dir = workspace.output_dir(stage, fingerprint);
    let damaged = workspace.damaged_dir(stage, fingerprint);
    if fs::symlink_metadata(&dir).is_err() {
        return Ok(damaged);
    }
    if fs::symlink_metadata(&damaged).is_ok() {
        trash::discard(workspace, &damaged)?;
    }
    fs::rename(&dir, &damaged).map_err(|e| CacheError::io(&dir, e))?;
    let parent = workspace.stage_dir(stage);
    fsync_dir(&parent).map_err(|e| CacheError::io(&parent, e))?;
    let note = damaged.join(NOTE);
    write_file_atomic(&note, format!("{damage}\n").as_bytes())
        .map_err(|e| CacheError::io(&note, e))?;
    tracing::warn!("{stage} output {fingerprint} is damaged ({damage}): marked stale");
    Ok(damaged)
}

/// Why the output `stage/fingerprint` was marked damaged, when it was.
pub fn damage_note(workspace: &Workspace, stage: &str, fingerprint: &str) -> Option<String> {
    let damaged = workspace.damaged_dir(stage, fingerprint);
    if !super::is_real_dir(&damaged) {
        return None;
    }
    let note = fs::read_to_string(damaged.join(NOTE)).unwrap_or_default();
    let note = note.trim();
    Some(if note.is_empty() {
        "a file no longer matches the manifest".to_string()
    } else {
        note.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::manifest::ShardRecord;

    fn output(dir: &Path, bytes: &[u8]) -> Manifest {
        fs::create_dir_all(dir.join("t")).unwrap();
        fs::write(dir.join("t/part-00000.parquet"), bytes).unwrap();
        let file = FileRecord {
            path: "t/part-00000.parquet".into(),
            rows: 1,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        };
        Manifest {
            stage: "decode".into(),
            version: 1,
            fingerprint: "0123456789abcdef0123".into(),
            params: serde_json::Value::Null,
            inputs: Default::default(),
            external: None,
            videos_per_shard: None,
            shards: vec![ShardRecord {
                index: 0,
                videos: 1,
                files: vec![file],
                seconds: 0.0,
                key: None,
            }],
            content_hash: String::new(),
            created_at: String::new(),
            seconds: 0.0,
            reduced: Vec::new(),
        }
    }

    #[test]
    fn sizes_and_hashes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = output(dir.path(), b"abcdef");
        assert_eq!(check_sizes(dir.path(), &manifest), Ok(()));
        assert!(check_all(dir.path(), &manifest).is_empty());
        fs::write(dir.path().join("t/part-00000.parquet"), b"abcdeF").unwrap();
        assert_eq!(check_sizes(dir.path(), &manifest), Ok(()));
        let damage = check_all(dir.path(), &manifest);
        assert!(matches!(&damage[..], [Damage::Hash { .. }]), "{damage:?}");
        fs::write(dir.path().join("t/part-00000.parquet"), b"abc").unwrap();
        let err = check_sizes(dir.path(), &manifest).unwrap_err().to_string();
        assert!(err.contains("t/part-00000.parquet has 3 bytes"), "{err}");
    }

    #[test]
    fn unlisted_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = output(dir.path(), b"abcdef");
        fs::create_dir_all(dir.path().join("_shards")).unwrap();
        fs::write(dir.path().join("_shards/00000.json"), b"{}").unwrap();
        fs::write(dir.path().join(Manifest::FILE), b"{}").unwrap();
        fs::write(dir.path().join("t/part-00001.parquet.tmp-12"), b"x").unwrap();
        let removed = remove_unlisted(dir.path(), &manifest).unwrap();
        assert_eq!(removed, ["t/part-00001.parquet.tmp-12"]);
        assert!(dir.path().join("t/part-00000.parquet").is_file());
    }

    #[test]
    fn a_damaged_output_is_moved_aside_with_its_note() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(dir.path());
        let out = workspace.output_dir("decode", "0123456789abcdef0123");
        output(&out, b"abcdef");
        let damage = Damage::Hash {
            file: "t/part-00000.parquet".into(),
        };
        mark_damaged(&workspace, "decode", "0123456789abcdef0123", &damage).unwrap();
        assert!(!out.exists());
        let note = damage_note(&workspace, "decode", "0123456789abcdef0123").unwrap();
        assert!(note.contains("t/part-00000.parquet"), "{note}");
        // A second reader finding the same damage changes nothing.
        mark_damaged(&workspace, "decode", "0123456789abcdef0123", &damage).unwrap();
    }
}
