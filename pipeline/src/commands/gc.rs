//! `dfd gc`: deletes cached outputs that none of the recent runs used, and leftovers of interrupted
//! runs that no recent run would resume.
//!
//! It deletes only what dfd made: folders under `cache/<stage>/` named by a fingerprint that carry
//! dfd's manifest (or, being computed, its shard records); it never follows a symbolic link, and it
//! refuses a folder that is not a dfd workspace (see [`crate::cache::marker`]) and run records it
//! cannot read. Each folder leaves the cache by one rename before its files are deleted (see
//! [`crate::cache::trash`]), so a `gc` killed midway never leaves a manifest without its files.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cache::atomic::dir_size;
use crate::cache::shard_store::ShardStore;
use crate::cache::{
    fingerprint_of_dir, partial, trash, Manifest, OutputKind, ShardRecord, Workspace,
};
use crate::runs::{fingerprints, read_all};

#[derive(Debug, Serialize)]
pub struct GcReport {
    pub kept: usize,
    pub removed: Vec<String>,
    /// Entries of the shard store (`shards/<stage>/<key>`) no kept output holds.
    pub removed_shards: Vec<String>,
    pub bytes_freed: u64,
    /// Folders under `cache/` that are not dfd outputs: left alone.
    pub left_alone: Vec<String>,
}

/// Removes every cache folder whose fingerprint the newest `keep_runs` run records do not name.
/// The caller has claimed the workspace and holds its lock, so no run is writing meanwhile.
pub fn collect(workspace: &Workspace, keep_runs: usize, dry_run: bool) -> Result<GcReport> {
    let records = read_all(workspace).context(
        "gc refuses to act on run records it cannot read (they say which outputs to keep); \
         fix or move the file away",
    )?;
    let mut report = GcReport {
        kept: 0,
        removed: Vec::new(),
        removed_shards: Vec::new(),
        bytes_freed: 0,
        left_alone: Vec::new(),
    };
    let stages = workspace.cached_stages();
    let Some(records) = records else {
        let outputs = stages
            .iter()
            .flat_map(|s| workspace.entries(s))
            .filter(|d| OutputKind::of(d).is_some())
            .count();
        if outputs > 0 {
            bail!(
                "{} holds {outputs} cached output(s) but no run records ({} is missing): gc \
                 cannot tell what is in use, so it deletes nothing",
                workspace.root().display(),
                workspace.runs_dir().display()
            );
        }
        return Ok(report);
    };
    let keep: BTreeSet<(String, String)> = records
        .iter()
        .take(keep_runs)
        .flat_map(fingerprints)
        .collect();
    if !dry_run {
        trash::empty(workspace)?;
    }
    // Shard-store entries that a kept output holds (the store's other entries go below).
    let mut kept_keys: BTreeSet<(String, String)> = BTreeSet::new();
    for stage in stages {
        for dir in workspace.entries(&stage) {
            let Some(kind) = OutputKind::of(&dir) else {
                report.left_alone.push(dir.display().to_string());
                continue;
            };
            let in_use = keep.contains(&(stage.clone(), fingerprint_of_dir(&dir)));
            if in_use && matches!(kind, OutputKind::Finished | OutputKind::Partial) {
                report.kept += 1;
                kept_keys.extend(shard_keys_of(&dir).into_iter().map(|k| (stage.clone(), k)));
                continue;
            }
            report.bytes_freed += dir_size(&dir);
            if !dry_run {
                trash::discard(workspace, &dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
            report.removed.push(dir.display().to_string());
        }
    }
    collect_shard_store(workspace, &kept_keys, dry_run, &mut report)?;
    Ok(report)
}

/// Removes the shard-store entries no kept output holds, and interrupted deposits. Their files
/// are hard links, so only those no output shares free space (counted after the outputs above
/// are gone).
fn collect_shard_store(
    workspace: &Workspace,
    kept_keys: &BTreeSet<(String, String)>,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<()> {
    for stage in workspace.stages_with_store() {
        let store = ShardStore::new(workspace, &stage);
        let (keys, leftovers) = store.entries();
        let unused = keys
            .into_iter()
            .filter(|k| !kept_keys.contains(&(stage.clone(), k.clone())))
            .map(|k| store.path_of(&k));
        for dir in unused.chain(leftovers) {
            report.bytes_freed += unshared_size(&dir);
            if !dry_run {
                trash::discard(workspace, &dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
            report.removed_shards.push(dir.display().to_string());
        }
    }
    Ok(())
}

/// The shard keys an output folder's shard records name (finished or being computed).
fn shard_keys_of(dir: &Path) -> Vec<String> {
    if let Ok(manifest) = Manifest::read(dir) {
        return manifest.shards.into_iter().filter_map(|s| s.key).collect();
    }
    let Ok(read) = std::fs::read_dir(dir.join(partial::SHARDS)) else {
        return Vec::new();
    };
    read.flatten()
        .filter_map(|e| ShardRecord::read(&e.path()).ok()?.key)
        .collect()
}

/// Bytes of the files under `dir` that have no other hard link.
fn unshared_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match std::fs::symlink_metadata(e.path()) {
            Ok(m) if m.is_dir() => unshared_size(&e.path()),
            Ok(m) if m.nlink() == 1 => m.len(),
            _ => 0,
        })
        .sum()
}
