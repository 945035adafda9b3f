//! `dfd run`: brings every selected stage up to date, then records and summarises the run.
//!
//! The run is recorded before any stage starts and as each one begins and ends (see
//! [`crate::runs`]). When a stage finds that a cached input is damaged, that input is marked
//! stale and the run makes another pass, which recomputes it and what reads it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use dfd_schemas::{ErrorRow, TableRow};

use crate::cache::atomic::remove_stale_temporaries;
use crate::cache::marker::{self, Create};
use crate::cache::parquet_io::read_parquet;
use crate::cache::shard_store;
use crate::cache::{trash, Manifest, Workspace, WorkspaceLock};
use crate::config::Config;
use crate::runner::array::{missing_shards_message, SharePlan};
use crate::runner::{
    run_dag, Executor, Mode, Outcome, Pipeline, Selection, Share, StageReport, StreamPlan,
};
use crate::runs::{self, new_run_id, ArrayTask, EvaluationRecord, RunJournal, RunRecord};

/// Passes of the DAG in one run: the first, and one more per round of damaged inputs found.
const MAX_PASSES: usize = 3;

pub struct RunRequest<'a> {
    pub workspace: &'a Workspace,
    pub config: &'a Config,
    pub dataset: std::path::PathBuf,
    pub selection: Selection,
    pub wait_for_lock: bool,
    /// This task's share of an array job (`--shard`): only its shards of the per-video stages.
    pub share: Option<Share>,
    /// What `dfd evaluate` evaluates (in the run record, for `dfd status`); `None` otherwise.
    pub evaluation: Option<EvaluationRecord>,
}

/// Runs the DAG; returns the stage reports (also written to `runs/<id>.json`).
pub fn run(request: RunRequest) -> Result<Vec<StageReport>> {
    let pipeline = Pipeline::new(request.config, request.dataset.clone())
        .context("cannot assemble the pipeline")?;
    run_pipeline(request, pipeline)
}

/// Runs `pipeline` (the configured one, or another assembly of the stages such as
/// `dfd evaluate`'s) as [`run`] does.
pub fn run_pipeline(request: RunRequest, pipeline: Pipeline) -> Result<Vec<StageReport>> {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let workspace = request.workspace;
    marker::claim(workspace, Create::Yes)?;
    // Array tasks share the workspace (each writes only its own shards, under their own locks)
    // and leave tidying to a run that holds it alone: another task's half-filed shard is not a
    // leftover.
    let _lock = match request.share {
        Some(_) => WorkspaceLock::acquire_shared(&workspace.lock_path(), request.wait_for_lock)?,
        None => {
            let lock = WorkspaceLock::acquire(&workspace.lock_path(), request.wait_for_lock)?;
            tidy(workspace)?;
            lock
        }
    };
    let pipeline = Arc::new(pipeline);
    let mut modes = request.selection.modes(&pipeline)?;
    let share_plan = match request.share {
        Some(_) => Some(SharePlan::new(&pipeline, &modes)?),
        None => None,
    };
    let array_task = request
        .share
        .zip(share_plan.as_ref())
        .map(|(share, plan)| ArrayTask {
            index: share.index,
            count: share.count,
            stages: plan
                .per_video
                .iter()
                .map(|&i| pipeline.stages()[i].name().to_string())
                .collect(),
        });
    let journal = Arc::new(RunJournal::start(
        workspace,
        RunRecord {
            id: new_run_id(started_at),
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            finished_at: None,
            ok: None,
            command: std::env::args().collect(),
            dataset: request.dataset.display().to_string(),
            config: serde_json::to_value(request.config)?,
            evaluation: request.evaluation.clone(),
            stages: Vec::new(),
            array_task,
        },
    )?);
    tracing::debug!("run record: {}", journal.path().display());
    let mut executor = Executor::new(workspace.clone(), request.config.runner.videos_per_shard)
        .with_journal(journal.clone());
    executor.stream_videos = request.config.runner.stream_videos;
    let executor = Arc::new(executor);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if let (Some(share), Some(plan)) = (request.share, share_plan) {
        let outcome = executor.run_share(&pipeline, &plan, share);
        let reports = match &outcome {
            Ok(reports) => reports.clone(),
            Err(e) => vec![StageReport::not_run(
                "array task",
                Outcome::Failed(format!("{e:#}")),
            )],
        };
        print_summary(&reports, started.elapsed().as_secs_f64());
        let recorded = journal.finish(&reports, outcome.is_ok());
        let reports = outcome.with_context(|| {
            format!(
                "array task {share} failed (record: {})",
                journal.path().display()
            )
        })?;
        recorded.context("the task finished but its record could not be completed")?;
        eprintln!("array task {share}: done; after the last task, a plain `dfd run` finishes");
        return Ok(reports);
    }
    warn_missing_shards(&request, &pipeline, &executor, &modes);
    let mut by_index = BTreeMap::new();
    for pass in 1..=MAX_PASSES {
        executor.plan_streams(StreamPlan::new(&pipeline, &modes));
        let reports = runtime.block_on(run_dag(pipeline.clone(), executor.clone(), &modes))?;
        merge_pass(&mut by_index, reports);
        let damaged = executor.take_damaged();
        if damaged.is_empty() || pass == MAX_PASSES {
            break;
        }
        let names: Vec<&str> = damaged.iter().map(String::as_str).collect();
        eprintln!(
            "damaged input found in the cache ({}): recomputing it and what reads it",
            names.join(", ")
        );
        for name in &damaged {
            let index = pipeline.index_of(name)?;
            let mode = modes.entry(index).or_insert(Mode::Normal);
            if *mode == Mode::CacheOnly {
                *mode = Mode::Normal;
            }
        }
    }
    let reports: Vec<StageReport> = pipeline
        .stages()
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            by_index.remove(&i).unwrap_or_else(|| {
                StageReport::not_run(stage.name(), Outcome::Skipped("not selected".into()))
            })
        })
        .collect();
    let ok = !reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed(_)));
    // The summary comes first: whatever happens to the record (a full disk), the user sees
    // what each stage did.
    print_summary(&reports, started.elapsed().as_secs_f64());
    let recorded = journal.finish(&reports, ok);
    if let Err(e) = &recorded {
        eprintln!("warning: could not complete the run record: {e:#}");
    }
    print_errors(workspace, &reports);
    publish_report(workspace, &reports);
    print_headline(workspace, &reports, request.config);
    if !ok {
        bail!("the run failed (record: {})", journal.path().display());
    }
    recorded.context("the run finished but its record could not be completed")?;
    Ok(reports)
}

/// After an array job on this dataset (its tasks' run records say so), says which shards it left
/// out of the store and which tasks to rerun for them; the run then computes them itself. A
/// researcher whose array lost a few tasks sees what is left at once and chooses: let this run
/// finish them on one machine, or stop it and resubmit those indices. Only looks: a failure to
/// tell is a warning, never the run's end.
fn warn_missing_shards(
    request: &RunRequest,
    pipeline: &Pipeline,
    executor: &Executor,
    modes: &BTreeMap<usize, Mode>,
) {
    let Some(array) = runs::latest_array(request.workspace, &request.dataset) else {
        return;
    };
    let selected = modes.keys().copied().collect();
    match executor.missing_shards(pipeline, &selected, &array.stages) {
        Ok(missing) if !missing.is_empty() => {
            eprintln!("{}", missing_shards_message(&missing, array.count));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot tell which shards the array job left out: {e:#}"),
    }
}

/// Clears what killed processes left: outputs half-way out of the cache, and temporaries of
/// run records and report files. The caller holds the lock.
fn tidy(workspace: &Workspace) -> Result<()> {
    let emptied = trash::empty(workspace)?;
    if emptied > 0 {
        tracing::info!("removed {emptied} discarded output(s) an interrupted process left");
    }
    let half_filed = shard_store::remove_leftovers(workspace)?;
    if half_filed > 0 {
        tracing::info!("removed {half_filed} shard-store entries an interrupted process left");
    }
    for dir in [
        workspace.runs_dir(),
        workspace.root().join(super::report::REPORT_DIR),
    ] {
        remove_stale_temporaries(&dir)
            .with_context(|| format!("cannot remove stale temporaries in {}", dir.display()))?;
    }
    Ok(())
}

/// Folds one pass's reports into the run's: a stage computed in an earlier pass and found cached
/// in a later one stays "computed".
fn merge_pass(into: &mut BTreeMap<usize, StageReport>, pass: BTreeMap<usize, StageReport>) {
    for (index, report) in pass {
        let keep_earlier = into.get(&index).is_some_and(|earlier| {
            earlier.outcome == Outcome::Computed && report.outcome == Outcome::Cached
        });
        if !keep_earlier {
            into.insert(index, report);
        }
    }
}

fn print_summary(reports: &[StageReport], seconds: f64) {
    if reports.iter().all(|r| !r.ran()) && reports.iter().all(|r| r.outcome == Outcome::Cached) {
        eprintln!("nothing to do: every stage is up to date ({seconds:.2} s)");
    }
    eprintln!(
        "{:<10} {:<10} {:>20} {:>9}  tables",
        "stage", "outcome", "shards new/old/store", "seconds"
    );
    for r in reports {
        let (outcome, detail) = match &r.outcome {
            Outcome::Cached => ("cached", String::new()),
            Outcome::Computed => ("computed", String::new()),
            Outcome::Failed(why) => ("FAILED", why.clone()),
            Outcome::Skipped(why) => ("skipped", why.clone()),
            Outcome::Running => ("running", String::new()),
        };
        let tables: Vec<String> = r
            .tables
            .iter()
            .map(|(name, t)| format!("{name} {}", t.rows))
            .collect();
        eprintln!(
            "{:<10} {:<10} {:>20} {:>9.2}  {}{}",
            r.stage,
            outcome,
            format!(
                "{}/{}/{}",
                r.shards_computed, r.shards_reused, r.shards_from_store
            ),
            r.seconds,
            tables.join(", "),
            if detail.is_empty() {
                String::new()
            } else {
                format!("  ({detail})")
            }
        );
    }
}

/// Copies the report's files to `<workspace>/report/` when the run has a `report` output (computed
/// or cached: the folder always shows the latest run's report). A failure here is logged, not
/// fatal: the report stays in the cache, and the run's results are not in question.
fn publish_report(workspace: &Workspace, reports: &[StageReport]) {
    let Some(fingerprint) = reports
        .iter()
        .find(|r| r.stage == dfd_stages::report::NAME)
        .and_then(|r| r.fingerprint.as_deref())
    else {
        return;
    };
    match super::report::publish(workspace, fingerprint) {
        Ok(dir) => eprintln!("report: {}", dir.display()),
        Err(e) => tracing::warn!("could not write the report folder: {e:#}"),
    }
}

/// Prints the summary's first table (the quoted split and rule, detectors against the baselines
/// and cues) when the run brought `aggregate` up to date, so a run shows its result without a file
/// to open. On stdout, unlike the progress and stage lines: it is the run's answer.
fn print_headline(workspace: &Workspace, reports: &[StageReport], config: &Config) {
    let aggregated = reports
        .iter()
        .any(|r| r.stage == dfd_stages::aggregate::NAME && r.fingerprint.is_some());
    if !aggregated {
        return;
    }
    match super::report::summary(workspace, &config.report) {
        Ok(summary) => {
            let choice = summary.params.choice();
            let rows = dfd_stages::report::summary_rows(&summary.metrics, &choice);
            if rows.is_empty() {
                return;
            }
            println!(
                "\nResult: split `{}`, video level, rule `{}` (all of it: dfd report)\n",
                choice.split, choice.rule
            );
            print!("{}", dfd_stages::report::headline_table(&rows));
        }
        Err(e) => tracing::warn!("could not read the metrics for the summary: {e:#}"),
    }
}

/// Lists the inputs stages could not process, so a corrupt video is seen, not just counted.
fn print_errors(workspace: &Workspace, reports: &[StageReport]) {
    const SHOWN: usize = 10;
    for report in reports.iter().filter(|r| r.errors > 0) {
        let Some(fingerprint) = &report.fingerprint else {
            continue;
        };
        let dir = workspace.output_dir(&report.stage, fingerprint);
        let Ok(manifest) = Manifest::read(&dir) else {
            continue;
        };
        let mut rows = Vec::new();
        for file in manifest.files_of(ErrorRow::TABLE.name) {
            for batch in read_parquet(&dir.join(&file.path)).unwrap_or_default() {
                rows.extend(ErrorRow::from_batch(&batch).unwrap_or_default());
            }
        }
        eprintln!(
            "{}: {} input(s) could not be processed:",
            report.stage,
            rows.len()
        );
        for row in rows.iter().take(SHOWN) {
            eprintln!("  {}: {}", row.video_id, row.message);
        }
        if rows.len() > SHOWN {
            eprintln!("  ... and {} more", rows.len() - SHOWN);
        }
        eprintln!(
            "  (all of them: dfd inspect {} --table errors)",
            report.stage
        );
    }
}
