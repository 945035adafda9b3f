//! Shards by content: every shard a per-video stage computes is also kept under a key made of
//! what that one shard depends on, so that another output of the stage can take it instead of
//! recomputing it.
//!
//! ```text
//! <workspace>/shards/<stage>/<key>/_shard.json          the shard's record (its key, files, rows)
//! <workspace>/shards/<stage>/<key>/<table>/part-NNNNN.parquet   hard links to the output's files
//! ```
//!
//! Why: a stage's fingerprint covers its whole input, so one video added to the dataset changes
//! every fingerprint downstream, and without this every shard of every stage would be recomputed.
//! A shard's key ([`shard_key`]) is instead the stage's recipe (name, version, parameters, outside
//! state, output schemas), the shard's videos, and the content of the inputs *that shard* reads:
//! its own input shard files, or the rows of a whole-table input that belong to its videos. A
//! shard whose key is found is taken (hard-linked, or copied across filesystems) instead of
//! computed. The same key is what lets shards be computed before their stage's fingerprint is
//! known (streamed stages, array jobs).
//!
//! A key the store cannot trust is refused, not guessed: an entry is used only if its record
//! parses, names the key it is filed under and the same videos, and every file has its recorded
//! size and sha256 (checked on every use: a bit flipped in a hard-linked file shows here too).
//! Anything else is moved to the trash and the shard is computed.
//!
//! Entries appear by one rename of a finished folder (`<key>.tmp-<pid>` to `<key>`), so a reader
//! sees a whole entry or none; `dfd gc` removes the entries no kept output uses.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::atomic::{fsync_dir, is_temporary_suffix};
use super::fingerprint::canonical_digest;
use super::manifest::{FileRecord, ShardRecord};
use super::verify;
use super::{is_fingerprint, trash, CacheError, Workspace};

/// The record file of an entry.
pub const RECORD: &str = "_shard.json";

/// Everything one shard of a per-video stage depends on.
#[derive(Debug, Serialize)]
pub struct ShardKeyInput<'a> {
    pub stage: &'a str,
    pub version: u32,
    pub params: &'a serde_json::Value,
    pub external: Option<&'a str>,
    pub output_schemas: &'a [String],
    /// The shard's videos, in order.
    pub videos: &'a [String],
    /// `<stage>/<table>` -> digest of what this shard reads of that table.
    pub inputs: &'a std::collections::BTreeMap<String, String>,
}

/// 20 hex digits of sha256 over the canonical JSON of `input` (the same form as a fingerprint).
pub fn shard_key(input: &ShardKeyInput) -> String {
    canonical_digest(input)
}

/// The shards of one stage, by key.
pub struct ShardStore {
    dir: PathBuf,
    workspace: Workspace,
}

impl ShardStore {
    pub fn new(workspace: &Workspace, stage: &str) -> ShardStore {
        ShardStore {
            dir: workspace.shard_store_dir(stage),
            workspace: workspace.clone(),
        }
    }

    fn entry_dir(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The entry filed under `key`, if there is one and it can be trusted; a damaged entry is
    /// discarded (with a warning naming what is wrong) and reads as none.
    pub fn lookup(&self, key: &str, videos: usize) -> Option<ShardRecord> {
        let dir = self.entry_dir(key);
        fs::symlink_metadata(&dir).ok().filter(|m| m.is_dir())?;
        match self.check(&dir, key, videos) {
            Ok(record) => Some(record),
            Err(problem) => {
                tracing::warn!(
                    "{}: refused ({problem}); the shard is computed again",
                    dir.display()
                );
                if let Err(e) = trash::discard(&self.workspace, &dir) {
                    tracing::warn!("{e:#}");
                }
                None
            }
        }
    }

    /// The record of the entry filed under `key`, read but not checked against its files, and
    /// nothing discarded (for `dfd status`).
    pub fn peek(&self, key: &str) -> Option<ShardRecord> {
        let record = ShardRecord::read(&self.entry_dir(key).join(RECORD)).ok()?;
        (record.key.as_deref() == Some(key)).then_some(record)
    }

    fn check(&self, dir: &Path, key: &str, videos: usize) -> Result<ShardRecord, String> {
        let record = ShardRecord::read(&dir.join(RECORD)).map_err(|e| format!("{e:#}"))?;
        if record.key.as_deref() != Some(key) {
            return Err(format!(
                "its record names key {:?}, not the folder's",
                record.key
            ));
        }
        if record.videos != videos {
            return Err(format!(
                "its record holds {} videos, the shard has {videos}",
                record.videos
            ));
        }
        for file in &record.files {
            verify::check_file(dir, file).map_err(|d| d.to_string())?;
        }
        Ok(record)
    }

    /// Puts the files of `record` (found in `from`) into `to` as the files of shard `index`, by
    /// hard link where the filesystem allows and by copy otherwise; returns the shard's record.
    pub fn take(
        &self,
        record: &ShardRecord,
        index: usize,
        to: &Path,
    ) -> Result<ShardRecord, CacheError> {
        let from = self.entry_dir(record.key.as_deref().unwrap_or_default());
        let files = link_files(&from, &record.files, to, index)?;
        Ok(ShardRecord {
            index,
            files,
            ..record.clone()
        })
    }

    /// Files the shard `record` (whose files are in `from`) under its key, unless an entry is
    /// there already.
    pub fn deposit(&self, from: &Path, record: &ShardRecord) -> Result<(), CacheError> {
        let Some(key) = record.key.as_deref() else {
            return Ok(());
        };
        if fs::symlink_metadata(self.entry_dir(key)).is_ok() {
            return Ok(());
        }
        let building = self.building_dir(key)?;
        let files = link_files(from, &record.files, &building, record.index)?;
        self.finish_building(
            &building,
            &ShardRecord {
                files,
                ..record.clone()
            },
        )
    }

    /// An empty folder in which to write the files of a new entry for `key` (then
    /// [`ShardStore::finish_building`]).
    pub fn building_dir(&self, key: &str) -> Result<PathBuf, CacheError> {
        fs::create_dir_all(&self.dir).map_err(|e| CacheError::io(&self.dir, e))?;
        let building = self.dir.join(format!("{key}.tmp-{}", std::process::id()));
        if fs::symlink_metadata(&building).is_ok() {
            trash::discard(&self.workspace, &building)?;
        }
        fs::create_dir_all(&building).map_err(|e| CacheError::io(&building, e))?;
        Ok(building)
    }

    /// Writes `record` (whose files are in `building`, from [`ShardStore::building_dir`]) and
    /// files the folder under the record's key by one rename. If another writer filed the key
    /// first, theirs stays.
    pub fn finish_building(&self, building: &Path, record: &ShardRecord) -> Result<(), CacheError> {
        let key = record.key.as_deref().unwrap_or_default();
        record.write(&building.join(RECORD))?;
        let target = self.entry_dir(key);
        match fs::rename(building, &target) {
            Ok(()) => fsync_dir(&self.dir).map_err(|e| CacheError::io(&self.dir, e)),
            Err(_) if fs::symlink_metadata(&target).is_ok() => {
                trash::discard(&self.workspace, building)
            }
            Err(e) => Err(CacheError::io(&target, e)),
        }
    }

    /// Every entry's key (finished entries only), and the folders that are not entries
    /// (interrupted deposits, anything else), for `gc`.
    pub fn entries(&self) -> (Vec<String>, Vec<PathBuf>) {
        let (mut keys, mut other) = (Vec::new(), Vec::new());
        let Ok(read) = fs::read_dir(&self.dir) else {
            return (keys, other);
        };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (stem, suffix) = name.split_at(name.find('.').unwrap_or(name.len()));
            if is_fingerprint(stem) && suffix.is_empty() {
                keys.push(name);
            } else if is_fingerprint(stem) && is_temporary_suffix(suffix) {
                other.push(entry.path());
            }
        }
        keys.sort();
        other.sort();
        (keys, other)
    }

    /// The folder of the entry `key`.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.entry_dir(key)
    }
}

/// Removes the entries that killed processes left half-filed (`<key>.tmp-<pid>`); returns how
/// many. The caller holds the workspace lock, so no deposit is under way.
pub fn remove_leftovers(workspace: &Workspace) -> Result<usize, CacheError> {
    let mut removed = 0;
    for stage in workspace.stages_with_store() {
        for dir in ShardStore::new(workspace, &stage).entries().1 {
            trash::discard(workspace, &dir)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Links (or copies) `files` from `from` into `to`, renamed as the files of shard `index`.
fn link_files(
    from: &Path,
    files: &[FileRecord],
    to: &Path,
    index: usize,
) -> Result<Vec<FileRecord>, CacheError> {
    let mut linked = Vec::with_capacity(files.len());
    for file in files {
        let relative = format!("{}/part-{index:05}.parquet", file.table());
        let source = from.join(&file.path);
        let target = to.join(&relative);
        let parent = target.parent().unwrap_or(to);
        fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
        if fs::symlink_metadata(&target).is_ok() {
            fs::remove_file(&target).map_err(|e| CacheError::io(&target, e))?;
        }
        if fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target).map_err(|e| CacheError::io(&source, e))?;
        }
        fsync_dir(parent).map_err(|e| CacheError::io(parent, e))?;
        linked.push(FileRecord {
            path: relative,
            ..file.clone()
        });
    }
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cache::atomic::write_file_atomic;
    use serde_json::json;

    fn key(params: serde_json::Value, videos: &[&str], input: &str) -> String {
        let videos: Vec<String> = videos.iter().map(|v| v.to_string()).collect();
        let inputs = BTreeMap::from([("decode/frames".to_string(), input.to_string())]);
        shard_key(&ShardKeyInput {
            stage: "detect",
            version: 1,
            params: &params,
            external: None,
            output_schemas: &[],
            videos: &videos,
            inputs: &inputs,
        })
    }

    #[test]
    fn a_key_depends_on_recipe_videos_and_input_content() {
        let a = key(json!({"x": 1}), &["v1", "v2"], "h1");
        assert_eq!(a, key(json!({"x": 1}), &["v1", "v2"], "h1"));
        assert_ne!(a, key(json!({"x": 2}), &["v1", "v2"], "h1"));
        assert_ne!(a, key(json!({"x": 1}), &["v2", "v1"], "h1"));
        assert_ne!(a, key(json!({"x": 1}), &["v1", "v2"], "h2"));
        assert!(is_fingerprint(&a));
    }

    /// A shard of two files, written as shard `index` of the output folder `dir`.
    fn shard(dir: &Path, index: usize, key: &str) -> ShardRecord {
        let mut files = Vec::new();
        for (table, bytes) in [("faces", &b"face bytes"[..]), ("errors", b"")] {
            let path = format!("{table}/part-{index:05}.parquet");
            fs::create_dir_all(dir.join(table)).unwrap();
            write_file_atomic(&dir.join(&path), bytes).unwrap();
            let sha256 = {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(bytes))
            };
            files.push(FileRecord {
                path,
                rows: 1,
                bytes: bytes.len() as u64,
                sha256,
            });
        }
        ShardRecord {
            index,
            videos: 2,
            files,
            seconds: 1.5,
            key: Some(key.to_string()),
        }
    }

    #[test]
    fn a_deposited_shard_is_taken_under_another_index() {
        let root = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(root.path());
        let store = ShardStore::new(&workspace, "crop");
        let key = "0123456789abcdef0123";
        let output = root.path().join("out");
        let record = shard(&output, 3, key);
        store.deposit(&output, &record).unwrap();
        // Filing it twice is harmless.
        store.deposit(&output, &record).unwrap();

        let found = store.lookup(key, 2).expect("the entry");
        let other = root.path().join("other");
        let taken = store.take(&found, 7, &other).unwrap();
        assert_eq!(taken.index, 7);
        assert_eq!(taken.files[0].path, "faces/part-00007.parquet");
        assert_eq!(
            fs::read(other.join("faces/part-00007.parquet")).unwrap(),
            b"face bytes"
        );
        assert_eq!(taken.files[0].sha256, record.files[0].sha256);
        assert_eq!(store.entries().0, [key]);
        assert!(store.lookup("ffffffffffffffffffff", 2).is_none());
    }

    #[test]
    fn an_entry_that_does_not_match_its_record_is_refused_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(root.path());
        let store = ShardStore::new(&workspace, "crop");
        let key = "0123456789abcdef0123";
        let output = root.path().join("out");
        let record = shard(&output, 0, key);
        store.deposit(&output, &record).unwrap();
        // The wrong number of videos for this shard: refused and removed.
        assert!(store.lookup(key, 3).is_none());
        assert!(fs::symlink_metadata(store.path_of(key)).is_err());
        store.deposit(&output, &record).unwrap();
        assert!(store.lookup(key, 2).is_some());
        // Same size, other bytes (a hard link shares the change with the output, which is why
        // every use checks the sha256).
        fs::write(output.join("faces/part-00000.parquet"), b"face BYTES").unwrap();
        assert!(store.lookup(key, 2).is_none());
        assert!(fs::symlink_metadata(store.path_of(key)).is_err());
    }
}
