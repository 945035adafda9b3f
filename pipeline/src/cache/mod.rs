//! The on-disk, content-addressed cache of stage outputs.
//!
//! ```text
//! <workspace>/lock                               held by the one `dfd run` writing the workspace,
//!                                                or shared by the tasks of an array job (see [`lock`])
//! <workspace>/locks/<stage>.lock                 the array task computing a whole-table stage
//! <workspace>/cache/<stage>/<fingerprint>/       a finished output: <table>/part-NNNNN.parquet,
//!                                                _shards/NNNNN.json, and _manifest.json (written last)
//! <workspace>/cache/<stage>/<fingerprint>.partial/   an output being computed; finished shards survive a crash
//! <workspace>/shards/<stage>/<key>/              each shard of a per-video stage again, by what that
//!                                                shard alone depends on (hard links; see [`shard_store`])
//! <workspace>/runs/<id>.json                     what each run used and did
//! ```
//! A stage's fingerprint is hash(stage name, version, parameters, content hashes of its inputs); the
//! finished folder appears by one atomic rename, so a reader sees a whole output or none.

pub mod atomic;
mod fingerprint;
mod lock;
pub mod manifest;
pub mod marker;
pub mod parquet_io;
pub mod partial;
pub mod shard_store;
pub mod trash;
pub mod verify;

use std::fs;
use std::path::{Path, PathBuf};

pub use fingerprint::{fingerprint, FingerprintInput};
pub use lock::{host_name, process_alive, remove_if_free, ShardLock, WorkspaceLock};
pub use manifest::{FileRecord, Manifest, ShardRecord};

/// A failure of the cache itself (disk, Parquet, JSON), naming the file. The underlying error is
/// the `source`, not part of the message, so that a chain printed with `{:#}` names it once.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: Parquet")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: Arrow")]
    Arrow {
        path: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{path}: JSON")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Locked(String),
    /// The folder given as the workspace was not made by dfd; nothing in it is touched.
    #[error("{0}")]
    NotAWorkspace(String),
    /// A cached file does not match its manifest.
    #[error(transparent)]
    Damaged(#[from] verify::Damage),
}

impl CacheError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        CacheError::Parquet {
            path: path.display().to_string(),
            source,
        }
    }
    pub fn json(path: &Path, source: serde_json::Error) -> Self {
        CacheError::Json {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The folder holding a project's cache and run records.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

/// Suffix of an output folder still being computed.
const PARTIAL: &str = ".partial";
/// Suffix of an output folder found damaged (see [`verify::mark_damaged`]).
const DAMAGED: &str = ".damaged";

impl Workspace {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Workspace { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The lock of the array task computing whole-table stage `stage` (see [`lock`]).
    pub fn stage_lock_path(&self, stage: &str) -> PathBuf {
        self.locks_dir().join(format!("{stage}.lock"))
    }

    /// Where the locks of whole-table stages are (see [`Workspace::stage_lock_path`]).
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Where outputs go between leaving the cache and being deleted (see [`trash`]).
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Where `stage` keeps work it resumes at a finer grain than shards (see
    /// `StageContext::scratch`): outside `cache/`, because it outlives any one fingerprint.
    pub fn scratch_dir(&self, stage: &str) -> PathBuf {
        self.root().join("scratch").join(stage)
    }

    /// Where shards of `stage` are filed by their own key (see [`shard_store`]): outside
    /// `cache/<stage>/`, whose folders are outputs named by fingerprint.
    pub fn shard_store_dir(&self, stage: &str) -> PathBuf {
        self.shards_dir().join(stage)
    }

    /// The shard stores of every stage.
    pub fn shards_dir(&self) -> PathBuf {
        self.root.join("shards")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.cache_dir().join(stage)
    }

    /// Where the finished output with this fingerprint lives.
    pub fn output_dir(&self, stage: &str, fingerprint: &str) -> PathBuf {
        self.stage_dir(stage).join(fingerprint)
    }

    pub fn partial_dir(&self, stage: &str, fingerprint: &str) -> PathBuf {
        self.stage_dir(stage)
            .join(format!("{fingerprint}{PARTIAL}"))
    }

    /// Where a damaged output is moved (out of the way of cache hits, still visible to `status`).
    pub fn damaged_dir(&self, stage: &str, fingerprint: &str) -> PathBuf {
        self.stage_dir(stage)
            .join(format!("{fingerprint}{DAMAGED}"))
    }

    /// The finished output with this fingerprint, if there is one.
    pub fn finished(&self, stage: &str, fingerprint: &str) -> Option<Manifest> {
        Manifest::read(&self.output_dir(stage, fingerprint)).ok()
    }

    /// Every finished output of `stage`, newest first.
    pub fn finished_outputs(&self, stage: &str) -> Vec<(PathBuf, Manifest)> {
        let mut found: Vec<(PathBuf, Manifest)> = self
            .entries(stage)
            .into_iter()
            .filter(|p| matches!(OutputKind::of(p), Some(OutputKind::Finished)))
            .filter_map(|p| Manifest::read(&p).ok().map(|m| (p, m)))
            .collect();
        found.sort_by(|a, b| b.1.created_at.cmp(&a.1.created_at));
        found
    }

    /// Every folder under the stage's cache directory (finished, partial or abandoned, or not
    /// dfd's at all); symbolic links are left out, never followed.
    pub fn entries(&self, stage: &str) -> Vec<PathBuf> {
        let stage_dir = self.stage_dir(stage);
        if !is_real_dir(&stage_dir) {
            return Vec::new();
        }
        let Ok(read) = fs::read_dir(stage_dir) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = read
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        dirs
    }

    /// Names of the folders under `cache/` (stage names, unless someone put others there);
    /// symbolic links are left out, never followed.
    pub fn cached_stages(&self) -> Vec<String> {
        folder_names(&self.cache_dir())
    }

    /// Names of the folders under `shards/`: the stages that have a shard store.
    pub fn stages_with_store(&self) -> Vec<String> {
        folder_names(&self.shards_dir())
    }
}

/// Names of the folders in `dir`, sorted; symbolic links (and `dir` itself if it is one) are
/// left out, never followed.
fn folder_names(dir: &Path) -> Vec<String> {
    if !is_real_dir(dir) {
        return Vec::new();
    }
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// True for a directory that is not a symbolic link.
pub fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// What a folder under `cache/<stage>/` is, by its name and the files that make it dfd's: `None`
/// for anything dfd did not make (no fingerprint name, or no manifest / shard records), which no
/// command deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// `<fingerprint>/` with its `_manifest.json`.
    Finished,
    /// `<fingerprint>.partial/` with its `_shards/` folder: resumable.
    Partial,
    /// `<fingerprint>.damaged/`: a finished output whose files no longer match its manifest.
    Damaged,
    /// `<fingerprint>.tmp-<pid>/`: an older output an earlier dfd moved aside on `--force`.
    MovedAside,
}

impl OutputKind {
    pub fn of(dir: &Path) -> Option<OutputKind> {
        let meta = fs::symlink_metadata(dir).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let name = dir.file_name()?.to_str()?;
        let (fingerprint, suffix) = name.split_at(name.find('.').unwrap_or(name.len()));
        if !is_fingerprint(fingerprint) {
            return None;
        }
        let has = |file: &str| fs::symlink_metadata(dir.join(file)).is_ok_and(|m| m.is_file());
        let kind = match suffix {
            "" if has(Manifest::FILE) => OutputKind::Finished,
            PARTIAL if is_real_dir(&dir.join("_shards")) => OutputKind::Partial,
            DAMAGED => OutputKind::Damaged,
            _ if atomic::is_temporary_suffix(suffix) && has(Manifest::FILE) => {
                OutputKind::MovedAside
            }
            _ => return None,
        };
        Some(kind)
    }
}

/// True for a fingerprint as [`fingerprint()`] writes it: 20 lowercase hex digits.
pub fn is_fingerprint(name: &str) -> bool {
    name.len() == 20 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The fingerprint a cache folder is named after.
pub fn fingerprint_of_dir(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    name.split('.').next().unwrap_or_default().to_string()
}
