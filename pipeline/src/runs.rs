//! `runs/<id>.json`: what each run used (config, dataset, every stage's fingerprint) and did. `dfd gc`
//! keeps what recent runs reference; `dfd inspect STAGE` shows what the latest run used.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cache::atomic::write_file_atomic;
use crate::cache::Workspace;
use crate::runner::StageReport;

#[derive(Debug, Serialize)]
pub struct RunRecord<'a> {
    pub id: &'a str,
    pub started_at: String,
    pub finished_at: String,
    pub ok: bool,
    pub command: Vec<String>,
    pub dataset: String,
    pub config: serde_json::Value,
    pub stages: &'a [StageReport],
}

/// A run id that sorts by time: `20261125T013812Z-4242`.
pub fn new_run_id(started: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let compact: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{compact}-{}", std::process::id())
}

pub fn write_record(workspace: &Workspace, record: &RunRecord) -> Result<PathBuf> {
    let dir = workspace.runs_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.json", record.id));
    let bytes = serde_json::to_vec_pretty(record)?;
    write_file_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Every run record, newest first, as JSON.
pub fn records(workspace: &Workspace) -> Vec<serde_json::Value> {
    let Ok(read) = std::fs::read_dir(workspace.runs_dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths.reverse();
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

/// (stage, fingerprint) pairs a run record references.
pub fn fingerprints(record: &serde_json::Value) -> Vec<(String, String)> {
    record["stages"]
        .as_array()
        .map(|stages| {
            stages
                .iter()
                .filter_map(|s| {
                    Some((
                        s["stage"].as_str()?.to_string(),
                        s["fingerprint"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The fingerprint of `stage` in the newest run that has one.
pub fn latest_fingerprint(workspace: &Workspace, stage: &str) -> Option<String> {
    records(workspace).iter().find_map(|record| {
        fingerprints(record)
            .into_iter()
            .find(|(s, _)| s == stage)
            .map(|(_, f)| f)
    })
}
