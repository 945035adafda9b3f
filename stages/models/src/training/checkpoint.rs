//! The per-epoch checkpoint: what a killed run needs to continue exactly where it stopped.
//!
//! A checkpoint directory holds, after epoch `k`:
//! - `model-<k>.bpk`: the weights (and batch-norm running statistics) after epoch `k` (burnpack);
//! - `optimizer-<k>.bpk`: Adam's state (moments and step count, keyed by parameter id, which the
//!   model record carries too);
//! - `best-<e>.bpk`: the weights of the best epoch `e` so far;
//! - `checkpoint.json`: epoch count, early-stopping state, history and the names of the files
//!   above. It is written last: it is the commit point. Files it does not name (a newer epoch
//!   that crashed before its commit, an older one not yet deleted) are leftovers.
//!
//! Every file is written to `*.tmp`, synced and renamed, so a crash leaves either the old or the
//! new version, never half of one. The generators need no state: their streams are functions of
//! `(seed, epoch)`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::{EarlyStopping, EpochStats, TrainConfig, TrainError};

const META: &str = "checkpoint.json";
const FORMAT: u32 = 1;

/// `checkpoint.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CheckpointMeta {
    pub(crate) format: u32,
    /// The configuration without `max_epochs`, which a resumed run may raise.
    pub(crate) config: TrainConfig,
    pub(crate) data_digest: u64,
    pub(crate) epochs_done: u32,
    pub(crate) stopped_early: bool,
    pub(crate) early_stopping: EarlyStopping,
    pub(crate) history: Vec<EpochStats>,
    pub(crate) model_file: String,
    pub(crate) optimizer_file: String,
    pub(crate) best_file: String,
}

/// The bytes of a checkpoint's files.
pub(crate) struct CheckpointFiles {
    pub(crate) model: ModuleRecord,
    pub(crate) optimizer: Bytes,
    pub(crate) best: ModuleRecord,
}

/// A checkpoint directory.
pub(crate) struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    pub(crate) fn new(dir: &Path) -> Result<Self, TrainError> {
        fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        Ok(CheckpointDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The committed checkpoint, if any, after checking it belongs to this run.
    pub(crate) fn load(
        &self,
        config: &TrainConfig,
        data_digest: u64,
    ) -> Result<Option<(CheckpointMeta, CheckpointFiles)>, TrainError> {
        let meta_path = self.dir.join(META);
        let text = match fs::read_to_string(&meta_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error(&meta_path, source)),
        };
        let meta: CheckpointMeta =
            serde_json::from_str(&text).map_err(|e| format_error(&meta_path, e.to_string()))?;
        if meta.format != FORMAT {
            return Err(format_error(
                &meta_path,
                format!("format {} (this build reads {FORMAT})", meta.format),
            ));
        }
        if meta.config != resumable_part(config) {
            return Err(self.mismatch("training configuration"));
        }
        if meta.data_digest != data_digest {
            return Err(self.mismatch("training data"));
        }
        let files = CheckpointFiles {
            model: self.read_record(&meta.model_file)?,
            optimizer: Bytes::from_bytes_vec(self.read(&meta.optimizer_file)?),
            best: self.read_record(&meta.best_file)?,
        };
        Ok(Some((meta, files)))
    }

    /// Commits the checkpoint of `meta.epochs_done`: writes the epoch's files, then the meta
    /// naming them, then deletes what the previous checkpoint named and this one does not.
    /// `best` is `None` when the best weights did not change (the file named in `meta` stays).
    pub(crate) fn save(
        &self,
        meta: &CheckpointMeta,
        model: ModuleRecord,
        optimizer: Bytes,
        best: Option<ModuleRecord>,
    ) -> Result<(), TrainError> {
        let model_path = self.dir.join(&meta.model_file);
        let model = model
            .into_bytes()
            .map_err(|e| format_error(&model_path, e.to_string()))?;
        self.write_atomic(&meta.model_file, &model)?;
        self.write_atomic(&meta.optimizer_file, &optimizer)?;
        if let Some(best) = best {
            let best_path = self.dir.join(&meta.best_file);
            let best = best
                .into_bytes()
                .map_err(|e| format_error(&best_path, e.to_string()))?;
            self.write_atomic(&meta.best_file, &best)?;
        }
        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| format_error(&self.dir.join(META), e.to_string()))?;
        self.write_atomic(META, &json)?;
        self.remove_leftovers(meta)
    }

    /// Deletes the `.bpk` files the committed `meta` does not name. Failing to delete only
    /// wastes space, so errors are ignored.
    fn remove_leftovers(&self, meta: &CheckpointMeta) -> Result<(), TrainError> {
        let keep = [&meta.model_file, &meta.optimizer_file, &meta.best_file];
        let entries = fs::read_dir(&self.dir).map_err(|source| io_error(&self.dir, source))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(".bpk") || name.ends_with(".tmp");
            if ours && !keep.iter().any(|k| **k == name) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            // The rename itself must reach the disk before the next file names it.
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| io_error(&path, source))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, TrainError> {
        let path = self.dir.join(name);
        fs::read(&path).map_err(|source| io_error(&path, source))
    }

    fn read_record(&self, name: &str) -> Result<ModuleRecord, TrainError> {
        let bytes = Bytes::from_bytes_vec(self.read(name)?);
        ModuleRecord::from_bytes(bytes)
            .map_err(|e| format_error(&self.dir.join(name), e.to_string()))
    }

    fn mismatch(&self, what: &'static str) -> TrainError {
        TrainError::CheckpointMismatch {
            dir: self.dir.clone(),
            what,
        }
    }
}

/// What must not change between a run and its resumption: everything but the epoch limit.
pub(crate) fn resumable_part(config: &TrainConfig) -> TrainConfig {
    TrainConfig {
        max_epochs: 0,
        ..config.clone()
    }
}

pub(crate) fn model_file(epoch: u32) -> String {
    format!("model-{epoch:04}.bpk")
}

pub(crate) fn optimizer_file(epoch: u32) -> String {
    format!("optimizer-{epoch:04}.bpk")
}

pub(crate) fn best_file(epoch: u32) -> String {
    format!("best-{epoch:04}.bpk")
}

fn io_error(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::CheckpointIo {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn format_error(path: &Path, message: String) -> TrainError {
    TrainError::CheckpointFormat {
        path: path.to_path_buf(),
        message,
    }
}
