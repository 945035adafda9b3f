//! `dfd gc`: deletes cached outputs that none of the recent runs used, and leftovers of interrupted
//! runs that no recent run would resume.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cache::atomic::dir_size;
use crate::cache::{fingerprint_of_dir, Workspace};
use crate::runs::{fingerprints, records};

#[derive(Debug, Serialize)]
pub struct GcReport {
    pub kept: usize,
    pub removed: Vec<String>,
    pub bytes_freed: u64,
}

/// Removes every cache folder whose fingerprint the newest `keep_runs` run records do not name.
/// The caller holds the workspace lock, so no run is writing meanwhile.
pub fn collect(workspace: &Workspace, keep_runs: usize, dry_run: bool) -> Result<GcReport> {
    let keep: BTreeSet<(String, String)> = records(workspace)
        .iter()
        .take(keep_runs)
        .flat_map(fingerprints)
        .collect();
    let mut removed = Vec::new();
    let mut bytes_freed = 0;
    let mut kept = 0;
    for stage in workspace.cached_stages() {
        for dir in workspace.entries(&stage) {
            if keep.contains(&(stage.clone(), fingerprint_of_dir(&dir))) {
                kept += 1;
                continue;
            }
            bytes_freed += dir_size(&dir);
            if !dry_run {
                remove(&dir)?;
            }
            removed.push(dir.display().to_string());
        }
    }
    Ok(GcReport {
        kept,
        removed,
        bytes_freed,
    })
}

fn remove(dir: &PathBuf) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}
