//! `dfd status`: for every stage, whether its output is fresh (cached for the current dataset and
//! parameters), stale (an output exists, made from other inputs or parameters, and why), damaged
//! (its files no longer match its manifest: a size differs, or a run or `dfd verify` found a
//! sha256 that differs), or missing. Only sizes are checked here, so status stays instant.

use std::collections::BTreeMap;
use std::sync::Arc;

use dfd_schemas::{ErrorRow, TableRow};
use serde::Serialize;

use crate::cache::manifest::TableTotals;
use crate::cache::verify::{check_sizes, damage_note};
use crate::cache::{Manifest, ShardRecord};
use crate::runner::array::SharePlan;
use crate::runner::{Executor, Mode, Pipeline, Share, Upstream};
use dfd_stages::PARTITION_TABLE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    Fresh,
    Stale,
    Damaged,
    Missing,
}

#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub stage: String,
    pub state: Freshness,
    /// Why a stage is stale or missing, in words.
    pub reasons: Vec<String>,
    pub fingerprint: Option<String>,
    pub tables: BTreeMap<String, TableTotals>,
    pub errors: u64,
    /// A per-video stage not up to date: its shards the store holds (array tasks file them there).
    pub shards_in_store: Option<StoreShards>,
}

/// How far array tasks (`dfd run --shard`) have brought a per-video stage.
#[derive(Debug, Serialize)]
pub struct StoreShards {
    pub done: usize,
    pub total: usize,
    /// Shard indices not in the store.
    pub missing: Vec<usize>,
    /// With `--shard-count N`: the tasks (shard mod N) whose shards are missing.
    pub tasks_to_rerun: Option<Vec<usize>>,
}

/// The status of every stage, in pipeline order; `tasks` is the N of an array job's `--shard I/N`,
/// to name the tasks whose shards are missing.
pub fn status(pipeline: &Pipeline, executor: &Executor, tasks: Option<usize>) -> Vec<StageStatus> {
    let workspace = &executor.workspace;
    let mut upstream = Upstream::new();
    let mut out = Vec::new();
    for stage in pipeline.stages() {
        let name = stage.name();
        let latest = workspace
            .finished_outputs(name)
            .into_iter()
            .next()
            .map(|(_, m)| m);
        let mut blocked: Vec<&str> = stage
            .inputs()
            .iter()
            .map(|i| i.stage)
            .filter(|s| !upstream.contains_key(*s))
            .collect();
        // A stage read for several tables is named once.
        let mut named = std::collections::BTreeSet::new();
        blocked.retain(|s| named.insert(*s));
        let (state, reasons, shown, fingerprint) = if !blocked.is_empty() {
            let state = if latest.is_some() {
                Freshness::Stale
            } else {
                Freshness::Missing
            };
            let reason = format!("upstream {} not up to date", blocked.join(", "));
            (state, vec![reason], latest, None)
        } else {
            match executor.resolve(stage.as_ref(), &upstream) {
                Err(e) => (Freshness::Missing, vec![format!("{e:#}")], latest, None),
                Ok(resolved) => {
                    let fp = resolved.fingerprint.clone();
                    let finished = workspace.finished(name, &fp);
                    let damage = match &finished {
                        Some(manifest) => check_sizes(&workspace.output_dir(name, &fp), manifest)
                            .err()
                            .map(|d| d.to_string()),
                        None => damage_note(workspace, name, &fp),
                    };
                    if let Some(damage) = damage {
                        let reason = format!("damaged: {damage}; `dfd run` recomputes it");
                        (Freshness::Damaged, vec![reason], finished, Some(fp))
                    } else if let Some(manifest) = finished {
                        upstream.insert(name.to_string(), Arc::new(manifest.clone()));
                        (Freshness::Fresh, Vec::new(), Some(manifest), Some(fp))
                    } else {
                        let mut reasons = Vec::new();
                        let done = partial_shards(executor, name, &fp);
                        if done > 0 {
                            reasons.push(format!(
                                "{done} shard(s) done by an interrupted run; `dfd run` resumes"
                            ));
                        }
                        match &latest {
                            Some(old) => {
                                reasons.extend(why_stale(
                                    old,
                                    stage.version(),
                                    &resolved.params,
                                    &resolved,
                                ));
                                (Freshness::Stale, reasons, latest, Some(fp))
                            }
                            None => {
                                reasons.push("never computed".into());
                                (Freshness::Missing, reasons, None, Some(fp))
                            }
                        }
                    }
                }
            }
        };
        let tables = shown
            .as_ref()
            .map(Manifest::table_totals)
            .unwrap_or_default();
        out.push(StageStatus {
            stage: name.to_string(),
            state,
            reasons,
            fingerprint,
            errors: tables
                .get(ErrorRow::TABLE.name)
                .map(|t| t.rows)
                .unwrap_or(0),
            tables,
            shards_in_store: None,
        });
    }
    if upstream.contains_key(PARTITION_TABLE.stage) {
        add_store_shards(pipeline, executor, &upstream, tasks, &mut out);
    }
    out
}

/// Fills `shards_in_store` of the per-video stages that are not fresh, and says it in their
/// reasons: done/total, and the shards (and, given N, the tasks) still missing.
fn add_store_shards(
    pipeline: &Pipeline,
    executor: &Executor,
    upstream: &Upstream,
    tasks: Option<usize>,
    out: &mut [StageStatus],
) {
    let modes: BTreeMap<usize, Mode> = (0..pipeline.stages().len())
        .map(|i| (i, Mode::Normal))
        .collect();
    let progress = SharePlan::new(pipeline, &modes)
        .and_then(|plan| executor.store_progress(pipeline, &plan, upstream));
    let progress = match progress {
        Ok(progress) => progress,
        Err(e) => {
            tracing::warn!("cannot count the shard store's shards: {e:#}");
            return;
        }
    };
    for status in out.iter_mut().filter(|s| s.state != Freshness::Fresh) {
        let Some(done) = progress.get(&status.stage) else {
            continue;
        };
        let missing: Vec<usize> = (0..done.len()).filter(|&i| !done[i]).collect();
        let tasks_to_rerun = tasks.filter(|&n| n > 0).map(|n| {
            let set: std::collections::BTreeSet<usize> =
                missing.iter().map(|&s| Share::owner(s, n)).collect();
            set.into_iter().collect::<Vec<_>>()
        });
        let mut line = format!(
            "{}/{} shard(s) in the store",
            done.len() - missing.len(),
            done.len()
        );
        if !missing.is_empty() {
            line.push_str(&format!("; missing shards {}", list(&missing)));
            if let (Some(rerun), Some(n)) = (&tasks_to_rerun, tasks) {
                line.push_str(&format!(" (rerun --shard I/{n} for I in {})", list(rerun)));
            }
        }
        status.reasons.push(line);
        status.shards_in_store = Some(StoreShards {
            done: done.len() - missing.len(),
            total: done.len(),
            missing,
            tasks_to_rerun,
        });
    }
}

fn list(numbers: &[usize]) -> String {
    numbers
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn partial_shards(executor: &Executor, stage: &str, fingerprint: &str) -> usize {
    let dir = executor
        .workspace
        .partial_dir(stage, fingerprint)
        .join("_shards");
    std::fs::read_dir(dir)
        .map(|read| {
            read.flatten()
                .filter(|e| ShardRecord::read(&e.path()).is_ok())
                .count()
        })
        .unwrap_or(0)
}

/// What differs between the newest output on disk and what the current inputs call for.
fn why_stale(
    old: &Manifest,
    version: u32,
    params: &serde_json::Value,
    resolved: &crate::runner::executor::Resolved,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if old.version != version {
        reasons.push(format!(
            "stage code changed (version {} -> {version})",
            old.version
        ));
    }
    if let (Some(before), Some(now)) = (old.params.as_object(), params.as_object()) {
        for (key, value) in now {
            match before.get(key) {
                Some(previous) if previous == value => {}
                Some(previous) => {
                    reasons.push(format!("{}.{key}: {previous} -> {value}", old.stage))
                }
                None => reasons.push(format!("{}.{key}: new parameter = {value}", old.stage)),
            }
        }
    }
    for (table, hash) in &resolved.inputs {
        if old.inputs.get(table) != Some(hash) {
            reasons.push(format!("table {table} changed"));
        }
    }
    if old.external != resolved.external {
        reasons.push("dataset folder changed (metadata.json or video files)".into());
    }
    if old.videos_per_shard != resolved.videos_per_shard {
        reasons.push("runner.videos_per_shard changed".into());
    }
    if reasons.is_empty() {
        reasons.push("stage code or output schema changed".into());
    }
    reasons
}

pub fn print_text(statuses: &[StageStatus]) {
    println!(
        "{:<10} {:<8} {:>10} {:>7}  {:<40} why",
        "stage", "state", "bytes", "errors", "rows"
    );
    for s in statuses {
        let rows: Vec<String> = s
            .tables
            .iter()
            .filter(|(t, _)| *t != ErrorRow::TABLE.name)
            .map(|(t, totals)| format!("{t} {}", totals.rows))
            .collect();
        let bytes: u64 = s.tables.values().map(|t| t.bytes).sum();
        let state = match s.state {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::Damaged => "damaged",
            Freshness::Missing => "missing",
        };
        println!(
            "{:<10} {:<8} {:>10} {:>7}  {:<40} {}",
            s.stage,
            state,
            super::inspect::human_bytes(bytes),
            s.errors,
            rows.join(", "),
            s.reasons.join("; ")
        );
    }
}
