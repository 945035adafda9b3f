//! `dfd verify`: checks every finished output in the cache against its manifest (each file's size
//! and sha256) and marks the damaged ones stale, naming the file, so that the next `dfd run`
//! recomputes them. A run checks only what it reads; this reads everything.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::cache::verify::{self, check_all, remove_unlisted};
use crate::cache::{Manifest, OutputKind, Workspace};

/// What `dfd verify` found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub outputs: usize,
    pub files: usize,
    pub bytes: u64,
    /// (output folder, what is wrong), one line per damaged file.
    pub damaged: Vec<(PathBuf, String)>,
    /// Files that were in an output folder without being in its manifest, now removed.
    pub removed: Vec<PathBuf>,
}

/// Checks every finished output; the caller has claimed the workspace and holds its lock.
pub fn verify(workspace: &Workspace) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for stage in workspace.cached_stages() {
        for dir in workspace.entries(&stage) {
            if OutputKind::of(&dir) != Some(OutputKind::Finished) {
                continue;
            }
            let manifest = match Manifest::read(&dir) {
                Ok(manifest) => manifest,
                Err(e) => {
                    report.damaged.push((dir.clone(), format!("{e:#}")));
                    continue;
                }
            };
            report.outputs += 1;
            for file in manifest.shards.iter().flat_map(|s| s.files.iter()) {
                report.files += 1;
                report.bytes += file.bytes;
            }
            let damage = check_all(&dir, &manifest);
            if let Some(first) = damage.first() {
                verify::mark_damaged(workspace, &stage, &manifest.fingerprint, first)?;
                for d in &damage {
                    report.damaged.push((dir.clone(), d.to_string()));
                }
                continue;
            }
            for file in remove_unlisted(&dir, &manifest)? {
                report.removed.push(dir.join(file));
            }
        }
    }
    Ok(report)
}

pub fn print_text(report: &VerifyReport) {
    for (dir, what) in &report.damaged {
        println!("damaged {}: {what}", dir.display());
    }
    for file in &report.removed {
        println!("removed {} (not in its manifest)", file.display());
    }
    println!(
        "checked {} output(s), {} file(s), {}: {}",
        report.outputs,
        report.files,
        super::inspect::human_bytes(report.bytes),
        if report.damaged.is_empty() {
            "all match their manifests".to_string()
        } else {
            format!(
                "{} damaged file(s), marked stale; `dfd run` recomputes them",
                report.damaged.len()
            )
        }
    );
}
