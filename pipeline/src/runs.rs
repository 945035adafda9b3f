//! `runs/<id>.json`: what each run used (config, dataset, every stage's fingerprint) and did. `dfd gc`
//! keeps what recent runs reference; `dfd inspect STAGE` shows what the latest run used.
//!
//! The record is written when the run starts and rewritten as each stage begins and ends, so a run
//! killed at any point (SIGKILL, SIGTERM, Ctrl-C) still names the outputs it finished and the ones
//! it was computing: `gc` keeps them, and the next run resumes them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cache::atomic::write_file_atomic;
use crate::cache::Workspace;
use crate::runner::{Outcome, StageReport};

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub started_at: String,
    /// Absent while the run is going, and for ever if it was killed.
    pub finished_at: Option<String>,
    /// Whether every stage succeeded; absent until the run ends.
    pub ok: Option<bool>,
    pub command: Vec<String>,
    pub dataset: String,
    pub config: serde_json::Value,
    /// What `dfd evaluate` evaluated; absent for any other run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationRecord>,
    /// The stages begun so far (outcome `running` until they end), then every stage.
    pub stages: Vec<StageReport>,
    /// Set for a task of an array job (`dfd run --shard I/N`), from its start: which task, of how
    /// many, and which per-video stages it files. A plain run afterwards reads it to name the
    /// tasks whose shards are missing (a killed task's record names its array too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array_task: Option<ArrayTask>,
}

/// The share of one array task, as its run record keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct ArrayTask {
    pub index: usize,
    pub count: usize,
    /// The per-video stages whose shards the task files in the shard store: those its plan
    /// names at its start, then (once its whole-table stages are done) those it really files,
    /// less any already assembled and with `score` when trained models exist.
    pub stages: Vec<String>,
}

/// What the run records of the newest array job on one dataset say: its task count, and the
/// stages its tasks file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayJob {
    pub count: usize,
    pub stages: std::collections::BTreeSet<String>,
}

/// The models a `dfd evaluate` run scored: what `dfd status` needs to assemble the same pipeline
/// (the models' own stage and the preprocessing they were trained with) instead of the
/// configured one, whose `train` and settings the evaluation's outputs were never made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// The workspace the models were trained in, absolute.
    pub models_workspace: PathBuf,
    /// `--model` names; empty = every model trained there.
    pub models: Vec<String>,
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

/// The record of the run in progress, rewritten (atomically) as stages begin and end.
pub struct RunJournal {
    workspace: Workspace,
    record: Mutex<RunRecord>,
    path: PathBuf,
}

impl RunJournal {
    /// Writes the record of a run that starts; fails if it cannot, so that no run goes unrecorded.
    pub fn start(workspace: &Workspace, record: RunRecord) -> Result<RunJournal> {
        let path = write_record(workspace, &record).context("cannot record the run")?;
        Ok(RunJournal {
            workspace: workspace.clone(),
            record: Mutex::new(record),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A stage begins computing the output `fingerprint`.
    pub fn stage_started(&self, stage: &str, fingerprint: &str) {
        let mut report = StageReport::not_run(stage, Outcome::Running);
        report.fingerprint = Some(fingerprint.to_string());
        self.update(|record| upsert(&mut record.stages, report));
    }

    /// The per-video stages an array task files, once it knows them all (see
    /// [`ArrayTask::stages`]); nothing for a run that is not an array task.
    pub fn array_stages(&self, stages: Vec<String>) {
        self.update(|record| {
            if let Some(task) = &mut record.array_task {
                task.stages = stages;
            }
        });
    }

    /// A stage ended (computed, cached or failed). A failed stage keeps the fingerprint it was
    /// computing, so that `gc` keeps its resumable shards.
    pub fn stage_ended(&self, report: &StageReport) {
        self.update(|record| upsert(&mut record.stages, report.clone()));
    }

    /// The run ended: every stage's report, and whether all succeeded. Fingerprints of stages
    /// that failed are kept from when they began.
    pub fn finish(&self, reports: &[StageReport], ok: bool) -> Result<PathBuf> {
        let record = {
            let mut record = self
                .record
                .lock()
                .map_err(|_| anyhow::anyhow!("the run record's lock is poisoned"))?;
            for report in reports {
                upsert(&mut record.stages, report.clone());
            }
            let order: Vec<&str> = reports.iter().map(|r| r.stage.as_str()).collect();
            record
                .stages
                .sort_by_key(|s| order.iter().position(|o| *o == s.stage));
            record.finished_at =
                Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
            record.ok = Some(ok);
            record.clone()
        };
        write_record(&self.workspace, &record)
    }

    fn update(&self, change: impl FnOnce(&mut RunRecord)) {
        let Ok(mut record) = self.record.lock() else {
            return;
        };
        change(&mut record);
        if let Err(e) = write_record(&self.workspace, &record) {
            tracing::warn!("could not update the run record: {e:#}");
        }
    }
}

/// Replaces the stage's entry (keeping a fingerprint the new one lacks), or appends it.
fn upsert(stages: &mut Vec<StageReport>, mut report: StageReport) {
    match stages.iter_mut().find(|s| s.stage == report.stage) {
        Some(existing) => {
            if report.fingerprint.is_none() {
                report.fingerprint = existing.fingerprint.take();
            }
            *existing = report;
        }
        None => stages.push(report),
    }
}

/// Every run record, newest first, as JSON; records that cannot be read are skipped (for the
/// commands that only look; `gc` uses [`read_all`]).
pub fn records(workspace: &Workspace) -> Vec<serde_json::Value> {
    let Ok(paths) = record_paths(workspace) else {
        return Vec::new();
    };
    let mut records: Vec<serde_json::Value> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    sort_newest_first(&mut records);
    records
}

/// Every run record, newest first; fails naming the first record that cannot be read or is not
/// a run record, since acting without it (deleting what it references) could destroy a run's
/// work. `None` when the workspace has no `runs/` folder.
pub fn read_all(workspace: &Workspace) -> Result<Option<Vec<serde_json::Value>>> {
    let dir = workspace.runs_dir();
    if std::fs::symlink_metadata(&dir).is_err() {
        return Ok(None);
    }
    let mut records = Vec::new();
    for path in record_paths(workspace)? {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let record: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if !record["stages"].is_array() {
            bail!("{} has no `stages` list", path.display());
        }
        records.push(record);
    }
    sort_newest_first(&mut records);
    Ok(Some(records))
}

fn record_paths(workspace: &Workspace) -> Result<Vec<PathBuf>> {
    let dir = workspace.runs_dir();
    let read = std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in read {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|x| x == "json") {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// Newest first: by start time (milliseconds), then by id.
fn sort_newest_first(records: &mut [serde_json::Value]) {
    let key = |r: &serde_json::Value| {
        (
            r["started_at"].as_str().unwrap_or_default().to_string(),
            r["id"].as_str().unwrap_or_default().to_string(),
        )
    };
    records.sort_by_key(|r| std::cmp::Reverse(key(r)));
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

/// What the newest run evaluated, when it was a `dfd evaluate`; an error when its record names an
/// evaluation this dfd cannot read.
pub fn latest_evaluation(workspace: &Workspace) -> Result<Option<EvaluationRecord>> {
    let Some(record) = records(workspace).into_iter().next() else {
        return Ok(None);
    };
    match record.get("evaluation") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(evaluation) => serde_json::from_value(evaluation.clone())
            .map(Some)
            .with_context(|| {
                format!(
                    "run record {} names an evaluation this dfd cannot read",
                    record["id"]
                )
            }),
    }
}

/// The newest array job run on `dataset` (its tasks' records carry `array_task`): the count of
/// the newest task record, and the stages of every task record of that count on that dataset.
/// Arrays are told apart by dataset and count only: an older array of the same count on the same
/// data adds its stages, which a newer one reruns anyway.
pub fn latest_array(workspace: &Workspace, dataset: &Path) -> Option<ArrayJob> {
    let dataset = dataset.display().to_string();
    let tasks: Vec<(usize, Vec<String>)> = records(workspace)
        .iter()
        .filter(|r| r["dataset"].as_str() == Some(dataset.as_str()))
        .filter_map(|r| {
            let task = &r["array_task"];
            let count = usize::try_from(task["count"].as_u64()?).ok()?;
            let stages = task["stages"]
                .as_array()?
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            Some((count, stages))
        })
        .collect();
    let count = tasks.first()?.0;
    let stages = tasks
        .into_iter()
        .filter(|(c, _)| *c == count)
        .flat_map(|(_, stages)| stages)
        .collect();
    Some(ArrayJob { count, stages })
}

/// The dataset of the newest run, if any run is recorded.
pub fn latest_dataset(workspace: &Workspace) -> Option<PathBuf> {
    records(workspace)
        .first()
        .and_then(|r| r["dataset"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: None,
            ok: None,
            command: vec![],
            dataset: "/data".into(),
            config: serde_json::Value::Null,
            evaluation: None,
            stages: vec![],
            array_task: None,
        }
    }

    #[test]
    fn the_newest_array_on_the_dataset_gives_the_count_and_its_tasks_stages() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(dir.path());
        assert_eq!(latest_array(&workspace, Path::new("/data")), None);
        let task = |id: &str, at: &str, count: usize, stages: &[&str]| RunRecord {
            started_at: at.into(),
            array_task: Some(ArrayTask {
                index: 0,
                count,
                stages: stages.iter().map(|s| s.to_string()).collect(),
            }),
            ..record(id)
        };
        write_record(
            &workspace,
            &task("a", "2026-01-01T00:00:01.000Z", 2, &["decode"]),
        )
        .unwrap();
        write_record(
            &workspace,
            &task("b", "2026-01-01T00:00:02.000Z", 4, &["decode"]),
        )
        .unwrap();
        write_record(
            &workspace,
            &task("c", "2026-01-01T00:00:03.000Z", 4, &["crop"]),
        )
        .unwrap();
        // A plain run, newer, and a task on another dataset: neither is the array.
        write_record(&workspace, &record("d")).unwrap();
        let other = RunRecord {
            dataset: "/other".into(),
            ..task("e", "2026-01-01T00:00:04.000Z", 3, &["ssim"])
        };
        write_record(&workspace, &other).unwrap();
        let job = latest_array(&workspace, Path::new("/data")).unwrap();
        assert_eq!(job.count, 4);
        assert_eq!(
            job.stages.into_iter().collect::<Vec<_>>(),
            ["crop", "decode"]
        );
    }

    #[test]
    fn a_run_is_recorded_from_its_start_and_a_failed_stage_keeps_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(dir.path());
        let journal = RunJournal::start(&workspace, record("r1")).unwrap();
        let on_disk = || read_all(&workspace).unwrap().unwrap()[0].clone();
        assert_eq!(on_disk()["ok"], serde_json::Value::Null);
        journal.stage_started("decode", "0123456789abcdef0123");
        assert_eq!(
            fingerprints(&on_disk()),
            [("decode".to_string(), "0123456789abcdef0123".to_string())]
        );
        assert_eq!(on_disk()["stages"][0]["outcome"]["kind"], "running");
        let failed = StageReport::not_run("decode", Outcome::Failed("disk full".into()));
        journal.finish(&[failed], false).unwrap();
        assert_eq!(fingerprints(&on_disk()).len(), 1);
        assert_eq!(on_disk()["ok"], false);
    }

    #[test]
    fn unreadable_records_stop_read_all() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(dir.path());
        assert!(read_all(&workspace).unwrap().is_none());
        write_record(&workspace, &record("r1")).unwrap();
        assert_eq!(read_all(&workspace).unwrap().unwrap().len(), 1);
        std::fs::write(workspace.runs_dir().join("r2.json"), b"{").unwrap();
        let err = format!("{:#}", read_all(&workspace).unwrap_err());
        assert!(err.contains("r2.json"), "{err}");
        assert_eq!(records(&workspace).len(), 1);
    }
}
