//! What a finished stage output holds: `_manifest.json`, written last, so that no manifest means no
//! cache hit. Per-shard records (`_shards/NNNNN.json`) let an interrupted stage resume.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::atomic::write_file_atomic;
use super::CacheError;

/// One Parquet file of a stage output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the stage output folder: `frames/part-00003.parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl FileRecord {
    /// The table a file belongs to (its folder name).
    pub fn table(&self) -> &str {
        self.path.split('/').next().unwrap_or_default()
    }
}

/// One finished shard: its files, one per output table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: usize,
    pub videos: usize,
    pub files: Vec<FileRecord>,
    pub seconds: f64,
    /// What this shard alone depends on (see [`super::shard_store`]); none for whole-table stages
    /// and for shards written before shard keys existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl ShardRecord {
    /// Digest of this shard's files of `table` (their sha256s, not their names: the same content
    /// filed as another shard index has the same digest).
    pub fn table_digest(&self, table: &str) -> String {
        let mut hasher = Sha256::new();
        for file in self.files.iter().filter(|f| f.table() == table) {
            hasher.update(file.sha256.as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }

    pub fn write(&self, path: &Path) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| CacheError::json(path, e))?;
        write_file_atomic(path, &bytes).map_err(|e| CacheError::io(path, e))
    }

    pub fn read(path: &Path) -> Result<ShardRecord, CacheError> {
        let bytes = std::fs::read(path).map_err(|e| CacheError::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| CacheError::json(path, e))
    }
}

/// Everything about one stage output: how it was made and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: String,
    pub version: u32,
    pub fingerprint: String,
    pub params: serde_json::Value,
    /// Content hash of each upstream table this one read, keyed `<stage>/<table>`.
    pub inputs: BTreeMap<String, String>,
    /// Digest of what the stage read from outside the pipeline (ingest: the dataset folder).
    pub external: Option<String>,
    pub videos_per_shard: Option<usize>,
    pub shards: Vec<ShardRecord>,
    /// Hash of the output's bytes (every file's sha256). Downstream fingerprints use the hash of
    /// each table they read ([`Manifest::table_hash`]), so that a forced rerun that writes
    /// identical bytes leaves downstream stages cached.
    pub content_hash: String,
    pub created_at: String,
    /// Seconds spent computing (all shards, including those of interrupted earlier runs).
    pub seconds: f64,
    /// Tables kept on disk in a reduced form (decode's frame previews): a stage that reads one
    /// gets it recomputed in memory, not read from here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reduced: Vec<String>,
}

/// sha256 over the sorted lines `path sha256` of `files`.
fn hash_of_files<'a>(files: impl Iterator<Item = &'a FileRecord>) -> String {
    let mut lines: Vec<String> = files
        .map(|f| format!("{} {}\n", f.path, f.sha256))
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Row and byte totals of one table.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TableTotals {
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
}

impl Manifest {
    pub const FILE: &'static str = "_manifest.json";

    pub fn content_hash_of(shards: &[ShardRecord]) -> String {
        hash_of_files(shards.iter().flat_map(|s| s.files.iter()))
    }

    /// Hash of the bytes of one table (every file's sha256): what a downstream fingerprint uses
    /// for each table it reads, so a change to a table it does not read (the timings of `train`)
    /// leaves it cached. The same for a table with no files in every output.
    pub fn table_hash(&self, table: &str) -> String {
        hash_of_files(self.files_of(table))
    }

    /// The files of `table`, in shard order.
    pub fn files_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a FileRecord> + 'a {
        self.shards
            .iter()
            .flat_map(move |s| s.files.iter().filter(move |f| f.table() == table))
    }

    /// How a reader's key names `table` of this output: its content hash, or, for a table kept in
    /// reduced form (decode's frame previews), this output's fingerprint with it, since what the
    /// reader gets is recomputed from the recipe and a preview does not pin the pixels.
    pub fn input_hash(&self, table: &str) -> String {
        let content = self.table_hash(table);
        if self.is_reduced(table) {
            format!("{}:{content}", self.fingerprint)
        } else {
            content
        }
    }

    /// Whether `table` is kept in a reduced form (see [`Manifest::reduced`]).
    pub fn is_reduced(&self, table: &str) -> bool {
        self.reduced.iter().any(|t| t == table)
    }

    /// Totals per table, in name order.
    pub fn table_totals(&self) -> BTreeMap<String, TableTotals> {
        let mut totals: BTreeMap<String, TableTotals> = BTreeMap::new();
        for file in self.shards.iter().flat_map(|s| s.files.iter()) {
            let t = totals.entry(file.table().to_string()).or_default();
            t.files += 1;
            t.rows += file.rows;
            t.bytes += file.bytes;
        }
        totals
    }

    pub fn write(&self, dir: &Path) -> Result<(), CacheError> {
        let path = dir.join(Self::FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| CacheError::json(&path, e))?;
        write_file_atomic(&path, &bytes).map_err(|e| CacheError::io(&path, e))
    }

    pub fn read(dir: &Path) -> Result<Manifest, CacheError> {
        let path = dir.join(Self::FILE);
        let bytes = std::fs::read(&path).map_err(|e| CacheError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| CacheError::json(&path, e))
    }
}
