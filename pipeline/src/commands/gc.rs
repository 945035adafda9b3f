//! `dfd gc`: deletes cached outputs that none of the recent runs used, and leftovers of interrupted
//! runs that no recent run would resume.
//!
//! It deletes only what dfd made: folders under `cache/<stage>/` named by a fingerprint that carry
//! dfd's manifest (or, being computed, its shard records); it never follows a symbolic link, and it
//! refuses a folder that is not a dfd workspace (see [`crate::cache::marker`]) and run records it
//! cannot read. Each folder leaves the cache by one rename before its files are deleted (see
//! [`crate::cache::trash`]), so a `gc` killed midway never leaves a manifest without its files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cache::atomic::dir_size;
use crate::cache::shard_store::ShardStore;
use crate::cache::{
    fingerprint_of_dir, host_name, partial, process_alive, remove_if_free, trash, Manifest,
    OutputKind, ShardRecord, Workspace,
};
use crate::runner::array::array_scratch_owner;
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
    /// Lock files of shards and whole-table stages (`shards/<stage>/<key>.lock`,
    /// `locks/<stage>.lock`) that no process held.
    pub removed_locks: Vec<String>,
    /// Scratch folders of array tasks that are gone (`scratch/array-<host>-<pid>/`).
    pub removed_scratch: Vec<String>,
    /// Scratch folders of array tasks kept, each with why (`path (why)`).
    pub kept_scratch: Vec<String>,
}

/// A scratch folder of an array task on another machine, whose pid cannot be checked from here,
/// is removed only once nothing in it has changed for this long. A task rewrites it for every
/// shard it computes (minutes), so a day of stillness means its owner is gone, even on a
/// filesystem whose `flock` does not keep `gc` out of a running array.
pub const FOREIGN_SCRATCH_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
        removed_locks: Vec::new(),
        removed_scratch: Vec::new(),
        kept_scratch: Vec::new(),
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
    let unassembled = unassembled_array_stages(records.iter().take(keep_runs));
    collect_shard_store(workspace, (&kept_keys, &unassembled), dry_run, &mut report)?;
    collect_locks(workspace, dry_run, &mut report)?;
    collect_scratch(workspace, dry_run, &mut report)?;
    Ok(report)
}

/// The stages whose shards an array task of `records` (the kept run records) filed and that no
/// plain run has assembled since: no successful run without `--shard` on the same dataset started
/// after that task. Their shards are the array's whole work, which no output holds yet (a task
/// writes none), so `gc` between the array and its final run must not take them. Conservative:
/// every entry of such a stage is kept, whatever data it was computed from, until a plain run
/// after the array succeeds (its outputs then hold the entries it used).
fn unassembled_array_stages<'a>(
    records: impl Iterator<Item = &'a serde_json::Value> + Clone,
) -> BTreeSet<String> {
    let mut stages = BTreeSet::new();
    for task in records.clone().filter(|r| r["array_task"].is_object()) {
        let started = task["started_at"].as_str().unwrap_or_default();
        let assembled = records.clone().any(|run| {
            run["array_task"].is_null()
                && run["ok"] == true
                && run["dataset"] == task["dataset"]
                && run["started_at"].as_str().unwrap_or_default() > started
        });
        if !assembled {
            let named = task["array_task"]["stages"]
                .as_array()
                .into_iter()
                .flatten();
            stages.extend(named.filter_map(|s| s.as_str().map(str::to_string)));
        }
    }
    stages
}

/// Removes the lock files array tasks leave behind (one per shard they computed, one per
/// whole-table stage) that no process holds. The caller holds the workspace lock alone, so no
/// task is running here; each file is still try-locked first (see [`remove_if_free`]), and one
/// that is held (a process that holds it without the workspace lock) stays.
fn collect_locks(workspace: &Workspace, dry_run: bool, report: &mut GcReport) -> Result<()> {
    let mut dirs: Vec<PathBuf> = workspace
        .stages_with_store()
        .iter()
        .map(|stage| workspace.shard_store_dir(stage))
        .collect();
    dirs.push(workspace.locks_dir());
    for dir in dirs {
        let read = match std::fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "lock") {
                continue;
            }
            if remove_if_free(&path, dry_run)? {
                report.removed_locks.push(path.display().to_string());
            }
        }
    }
    Ok(())
}

/// Removes the scratch folders (`scratch/array-<host>-<pid>/`) of array tasks that are gone: on
/// this host, when that pid is not running; on another host, whose processes cannot be seen from
/// here, only when nothing in the folder changed for [`FOREIGN_SCRATCH_AGE`]. Conservative on
/// purpose: a folder kept costs disk until a later `gc`, a folder removed under a live task costs
/// its shard (the task fails, and a rerun of its index computes it again).
fn collect_scratch(workspace: &Workspace, dry_run: bool, report: &mut GcReport) -> Result<()> {
    let root = workspace.scratch_dir("");
    let read = match std::fs::read_dir(&root) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", root.display())),
    };
    let here = host_name();
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((host, pid)) = array_scratch_owner(&name) else {
            continue;
        };
        let dir = entry.path();
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let kept = if host == here {
            process_alive(pid).then(|| format!("pid {pid} is running on this host"))
        } else {
            let still = newest_change(&dir).elapsed().unwrap_or_default();
            (still < FOREIGN_SCRATCH_AGE).then(|| {
                format!(
                    "its task ran on {host}, and the folder changed {} ago: removed after {}                      without a change",
                    humantime::format_duration(Duration::from_secs(still.as_secs())),
                    humantime::format_duration(FOREIGN_SCRATCH_AGE)
                )
            })
        };
        if let Some(why) = kept {
            report
                .kept_scratch
                .push(format!("{} ({why})", dir.display()));
            continue;
        }
        report.bytes_freed += dir_size(&dir);
        if !dry_run {
            trash::discard(workspace, &dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        report.removed_scratch.push(dir.display().to_string());
    }
    Ok(())
}

/// The newest modification time of `dir` and everything under it (links not followed); the
/// epoch if none can be read.
fn newest_change(dir: &Path) -> SystemTime {
    let mut newest = std::fs::symlink_metadata(dir)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if let Ok(read) = std::fs::read_dir(dir) {
        for entry in read.flatten() {
            let path = entry.path();
            let time = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => newest_change(&path),
                Ok(m) => m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                Err(_) => SystemTime::UNIX_EPOCH,
            };
            newest = newest.max(time);
        }
    }
    newest
}

/// Removes the shard-store entries no kept output holds, and interrupted deposits. Their files
/// are hard links, so only those no output shares free space (counted after the outputs above
/// are gone).
fn collect_shard_store(
    workspace: &Workspace,
    (kept_keys, unassembled): (&BTreeSet<(String, String)>, &BTreeSet<String>),
    dry_run: bool,
    report: &mut GcReport,
) -> Result<()> {
    for stage in workspace.stages_with_store() {
        let store = ShardStore::new(workspace, &stage);
        let (keys, leftovers) = store.entries();
        // The shards of an array job not yet assembled are held by no output, only by the run
        // that will assemble them: every entry of such a stage stays.
        let keep_all = unassembled.contains(&stage);
        let unused = keys
            .into_iter()
            .filter(|k| !keep_all && !kept_keys.contains(&(stage.clone(), k.clone())))
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
