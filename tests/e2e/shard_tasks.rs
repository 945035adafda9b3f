//! `dfd run --shard I/N`, the tasks of an array job, run here as plain processes: a task killed
//! mid-shard and run again completes only what it lacked, two tasks given the same share compute
//! each shard once, `gc` is refused while tasks write, and a plain run afterwards takes every
//! shard from the store.

use std::path::Path;
use std::time::{Duration, Instant};

use dfd_tests::{Dataset, Dfd};
use serde_json::Value;

pub const PER_VIDEO: [&str; 4] = ["decode", "detect", "crop", "ssim"];

/// The settings of the learning tests (tests/e2e/learn.rs), one video per shard: the whole DAG
/// in seconds on `Dfd::tiny_demo_data`'s six videos, six shards.
pub const SETTINGS: [&str; 12] = [
    "--set",
    "runner.videos_per_shard=1",
    "--set",
    "train.models=[\"mesonet4-single\"]",
    "--set",
    "train.epochs=2",
    "--set",
    "train.max_frames_per_video=6",
    "--set",
    "decode.frames_per_video=8",
    "--set",
    "train.batch_size=8",
];

/// The per-video stages an array task computes when nothing stops it (`--until`).
pub const ARRAY_STAGES: [&str; 6] = ["decode", "detect", "crop", "ssim", "cues", "augment"];

/// `dfd SETTINGS run --dataset DATA EXTRA...`: the whole DAG.
pub fn full_run<'a>(dataset: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = SETTINGS.to_vec();
    args.extend(["run", "--dataset", dataset]);
    args.extend_from_slice(extra);
    args
}

/// Four short clips, one per shard with `runner.videos_per_shard=1`.
pub fn four_clips() -> Dataset {
    Dataset::new()
        .clip("a.mp4", "single_face.mp4", "REAL")
        .clip("b.mp4", "carphone_pristine.mp4", "FAKE")
        .clip("c.mp4", "single_face.mp4", "FAKE")
        .clip("d.mp4", "carphone_pristine.mp4", "REAL")
        .write()
}

/// `dfd --set runner.videos_per_shard=1 run --dataset DATA --until ssim EXTRA...`.
pub fn run_args<'a>(dataset: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--set",
        "runner.videos_per_shard=1",
        "run",
        "--dataset",
        dataset,
        "--until",
        "ssim",
    ];
    args.extend_from_slice(extra);
    args
}

/// Every run record of the workspace whose command held `--shard`, oldest first.
pub fn task_records(workspace: &Path) -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir(workspace.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap())
        .filter(|r| {
            r["command"]
                .as_array()
                .is_some_and(|c| c.iter().any(|a| a == "--shard"))
        })
        .collect()
}

/// `field` of `stage` in one run record.
pub fn count(record: &Value, stage: &str, field: &str) -> u64 {
    record["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|r| r["stage"] == stage))
        .and_then(|r| r[field].as_u64())
        .unwrap_or_else(|| panic!("no {field} for {stage} in {record}"))
}

/// Finished entries of the store of `stage`.
pub fn store_entries(workspace: &Path, stage: &str) -> usize {
    std::fs::read_dir(workspace.join("shards").join(stage))
        .map(|read| {
            read.flatten()
                .filter(|e| !e.file_name().to_string_lossy().contains('.'))
                .count()
        })
        .unwrap_or(0)
}

/// A plain run after the tasks: every per-video shard from the store, none computed, and the
/// same tables (fingerprint and content hash) as `reference`, a plain run from scratch.
pub fn finish_and_compare(dfd: &Dfd, dataset: &str, reference: &Dfd) {
    let out = dfd.ok(&run_args(dataset, &[]));
    for stage in PER_VIDEO {
        dfd.assert_taken_from_store(stage, 4, &out);
        dfd.assert_same_output(reference, stage);
    }
}

#[test]
fn a_killed_task_run_again_completes_only_its_own_missing_shards() {
    let data = four_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    // Task 1 of 2 owns shards 1 and 3: killed once shard 1 is filed through ssim.
    let mut task = dfd.spawn(&run_args(dataset, &["--shard", "1/2"]));
    let deadline = Instant::now() + Duration::from_secs(300);
    while store_entries(ws, "ssim") == 0 {
        assert!(task.try_wait().unwrap().is_none(), "the task ended early");
        assert!(Instant::now() < deadline, "the task filed nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    task.kill().unwrap();
    task.wait().unwrap();
    assert_eq!(
        store_entries(ws, "ssim"),
        1,
        "killed too late to test anything"
    );

    dfd.ok(&run_args(dataset, &["--shard", "1/2"]));
    let rerun = task_records(ws).pop().unwrap();
    assert_eq!(rerun["ok"], true, "{rerun}");
    assert_eq!(count(&rerun, "ssim", "shards_from_store"), 1, "{rerun}");
    assert_eq!(count(&rerun, "ssim", "shards_computed"), 1, "{rerun}");
    for stage in PER_VIDEO {
        let (found, computed) = (
            count(&rerun, stage, "shards_from_store"),
            count(&rerun, stage, "shards_computed"),
        );
        assert_eq!(found + computed, 2, "{stage}: {rerun}");
        assert!(found >= 1, "{stage}: shard 1 was done: {rerun}");
        assert_eq!(
            store_entries(ws, stage),
            2,
            "{stage}: task 1's two shards only"
        );
    }
    // `dfd status` counts each stage's shards in the store and names the task still to run.
    let status = dfd.ok(&[
        "--set",
        "runner.videos_per_shard=1",
        "status",
        "--dataset",
        dataset,
        "--shard-count",
        "2",
    ]);
    let line = status.lines().find(|l| l.starts_with("ssim ")).unwrap();
    assert!(
        line.contains(
            "2/4 shard(s) in the store; missing shards 0,2 (rerun --shard I/2 for I in 0)"
        ),
        "{status}"
    );
    // The other task, then the final run.
    dfd.ok(&run_args(dataset, &["--shard", "0/2"]));
    let other = task_records(ws).pop().unwrap();
    for stage in PER_VIDEO {
        assert_eq!(
            count(&other, stage, "shards_computed"),
            2,
            "{stage}: {other}"
        );
    }
    let reference = Dfd::new();
    reference.ok(&run_args(dataset, &[]));
    finish_and_compare(&dfd, dataset, &reference);
}

#[test]
fn two_tasks_given_the_same_share_compute_each_shard_once_and_gc_waits() {
    let data = four_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    let args = run_args(dataset, &["--shard", "0/1"]);
    let mut first = dfd.spawn(&args);
    let mut second = dfd.spawn(&args);
    // While tasks hold the workspace, gc (which deletes) is refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(ws.join("lock"))
        .unwrap_or_default()
        .starts_with("pid ")
    {
        assert!(Instant::now() < deadline, "no task took the workspace");
        std::thread::sleep(Duration::from_millis(5));
    }
    let both_running = first.try_wait().unwrap().is_none() && second.try_wait().unwrap().is_none();
    let gc = dfd.output(&["gc"]);
    if both_running {
        assert!(!gc.status.success(), "gc ran beside array tasks");
        let err = String::from_utf8_lossy(&gc.stderr);
        assert!(err.contains("holds this workspace"), "{err}");
    }
    for child in [&mut first, &mut second] {
        let out = child.wait_with_output_ref();
        assert!(out.0.success(), "a task failed: {}", out.1);
    }
    let records = task_records(ws);
    assert_eq!(records.len(), 2);
    for stage in PER_VIDEO {
        let computed: u64 = records
            .iter()
            .map(|r| count(r, stage, "shards_computed"))
            .sum();
        let found: u64 = records
            .iter()
            .map(|r| count(r, stage, "shards_from_store"))
            .sum();
        assert_eq!(computed, 4, "{stage}: each shard once: {records:?}");
        assert_eq!(found, 4, "{stage}: the other task took it: {records:?}");
    }
    let reference = Dfd::new();
    reference.ok(&run_args(dataset, &[]));
    finish_and_compare(&dfd, dataset, &reference);
}

#[test]
fn a_plain_run_after_an_unfinished_array_names_the_tasks_to_rerun_and_computes_their_shards() {
    let data = four_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    // Task 0 of 2 (shards 0 and 2) finishes; task 1 (shards 1 and 3) never runs.
    dfd.ok(&run_args(dataset, &["--shard", "0/2"]));
    // `dfd status` takes the count from the task's record (no --shard-count).
    let status = dfd.ok(&[
        "--set",
        "runner.videos_per_shard=1",
        "status",
        "--dataset",
        dataset,
    ]);
    let line = status.lines().find(|l| l.starts_with("crop ")).unwrap();
    assert!(
        line.contains("missing shards 1,3 (rerun --shard I/2 for I in 1)"),
        "{status}"
    );
    // No output holds the array's shards yet: `gc` keeps them for the final run.
    let out = dfd.ok(&["gc"]);
    for stage in PER_VIDEO {
        assert_eq!(
            store_entries(dfd.workspace.path(), stage),
            2,
            "{stage}: {out}"
        );
    }
    let out = dfd.output(&run_args(dataset, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for stage in PER_VIDEO {
        assert!(
            err.contains(&format!("  {stage}: shard(s) 1,3 of 4\n")),
            "{stage}: {err}"
        );
        let report = dfd.stage_report(stage);
        assert_eq!(report["shards_computed"], 2, "{stage}: {err}");
        assert_eq!(report["shards_from_store"], 2, "{stage}: {err}");
    }
    assert!(
        err.contains("task(s) 1/2 did not finish them")
            && err.contains("rerun `dfd run --shard 1/2`"),
        "{err}"
    );
    // Everything is assembled now: the next run has nothing to say about the array.
    let out = dfd.output(&run_args(dataset, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("did not finish"), "{err}");
}

#[test]
fn with_models_in_the_cache_array_tasks_score_their_share_and_the_plain_run_takes_it() {
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("demo");
    dfd.tiny_demo_data(&data);
    let dataset = data.to_str().unwrap();
    dfd.ok(&full_run(dataset, &[]));
    // New score settings: the models and every per-video output stay, only `score` changes.
    let rescore = |extra: &[&'static str]| -> Vec<String> {
        let mut args = vec!["--set".to_string(), "score.splits=[\"test\"]".to_string()];
        args.extend(full_run(dataset, extra).iter().map(|a| a.to_string()));
        args
    };
    for task in ["0/2", "1/2"] {
        let args = rescore(&["--shard", task]);
        dfd.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let records = task_records(ws);
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record["array_task"]["stages"], serde_json::json!(["score"]));
        let crop = record["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|r| r["stage"] == "crop"))
            .unwrap();
        assert_eq!(crop["outcome"]["kind"], "cached", "{record}");
        assert_eq!(count(record, "score", "shards_from_store"), 0, "{record}");
    }
    let scored: u64 = records
        .iter()
        .map(|r| count(r, "score", "shards_computed"))
        .sum();
    assert_eq!(scored, 6, "each of the six shards scored by one task");
    let args = rescore(&[]);
    let out = dfd.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    dfd.assert_taken_from_store("score", 6, &err);
    // The same scores and metrics as a single run with those settings.
    let reference = Dfd::new();
    reference.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for stage in ["score", "aggregate"] {
        dfd.assert_same_output(&reference, stage);
    }
}

#[test]
fn tasks_after_a_plain_run_take_the_assembled_stages_and_stream_from_the_first_changed_one() {
    let data = four_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    dfd.ok(&run_args(dataset, &[]));
    // A crop setting changed: decode and detect stay assembled; each task streams crop and ssim
    // from the videos again (decode's frames are kept reduced) for its shards.
    let margin = |extra: &[&'static str]| {
        let mut args = vec!["--set", "crop.margin=0.1"];
        args.extend(run_args(dataset, extra));
        args
    };
    for task in ["0/2", "1/2"] {
        dfd.ok(&margin(&["--shard", task]));
    }
    let records = task_records(ws);
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(
            record["array_task"]["stages"],
            serde_json::json!(["crop", "ssim"]),
            "{record}"
        );
        for stage in ["decode", "detect"] {
            let report = record["stages"]
                .as_array()
                .and_then(|s| s.iter().find(|r| r["stage"] == stage))
                .unwrap();
            assert_eq!(report["outcome"]["kind"], "cached", "{stage}: {record}");
        }
    }
    for stage in ["crop", "ssim"] {
        let computed: u64 = records
            .iter()
            .map(|r| count(r, stage, "shards_computed"))
            .sum();
        assert_eq!(computed, 4, "{stage}: {records:?}");
    }
    let out = dfd.output(&margin(&[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("did not finish"), "{err}");
    let reference = Dfd::new();
    reference.ok(&margin(&[]));
    for stage in ["crop", "ssim"] {
        dfd.assert_taken_from_store(stage, 4, &err);
        dfd.assert_same_output(&reference, stage);
    }
}

#[test]
fn gc_removes_free_lock_files_and_the_scratch_of_gone_tasks_only() {
    let data = four_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    let scratch = ws.join("scratch");
    let array_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&scratch)
            .map(|read| {
                read.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("array-"))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    // A task killed during a streamed pass leaves its scratch folder.
    let mut task = dfd.spawn(&run_args(dataset, &["--shard", "0/1"]));
    let deadline = Instant::now() + Duration::from_secs(300);
    while array_dirs().is_empty() {
        assert!(task.try_wait().unwrap().is_none(), "the task ended early");
        assert!(Instant::now() < deadline, "the task made no scratch folder");
        std::thread::sleep(Duration::from_millis(2));
    }
    task.kill().unwrap();
    task.wait().unwrap();
    let killed = array_dirs();
    assert_eq!(killed.len(), 1, "killed too late to test anything");
    let locks = |stage: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(ws.join("shards").join(stage))
            .map(|read| {
                read.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "lock"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(!locks("decode").is_empty(), "the task took no shard lock");
    assert!(ws.join("locks/ingest.lock").is_file());
    // A lock someone holds stays, whoever they are.
    let held_path = ws.join("shards/decode/0123456789abcdef0123.lock");
    let held = std::fs::File::create(&held_path).unwrap();
    held.lock().unwrap();
    // Scratch of tasks on another machine: a fresh one stays, one untouched for two days goes.
    let fresh = scratch.join("array-node7.elsewhere.invalid-12");
    let stale = scratch.join("array-node8.elsewhere.invalid-34");
    for dir in [&fresh, &stale] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("part-00000.parquet"), b"x").unwrap();
    }
    let touched = std::process::Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(&stale)
        .arg(stale.join("part-00000.parquet"))
        .status()
        .unwrap();
    assert!(touched.success());
    // Scratch of a live task on this host (this test's own pid) stays.
    let host = String::from_utf8(
        std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let alive = scratch.join(format!("array-{}-{}", host.trim(), std::process::id()));
    std::fs::create_dir_all(&alive).unwrap();

    let out = dfd.ok(&["gc"]);
    assert!(!killed[0].exists(), "{out}");
    assert!(!stale.exists(), "{out}");
    assert!(fresh.exists() && alive.exists(), "{out}");
    assert!(
        out.contains("node7.elsewhere.invalid") && out.contains("without a change"),
        "{out}"
    );
    assert!(out.contains("is running on this host"), "{out}");
    for stage in PER_VIDEO {
        let left = locks(stage);
        if stage == "decode" {
            assert_eq!(left, std::slice::from_ref(&held_path), "{out}");
        } else {
            assert!(left.is_empty(), "{stage}: {left:?}\n{out}");
        }
    }
    assert!(!ws.join("locks/ingest.lock").exists(), "{out}");
    drop(held);
    let out = dfd.ok(&["gc"]);
    assert!(locks("decode").is_empty(), "{out}");
}

#[test]
fn bad_shard_values_and_a_missing_scheduler_are_named() {
    let dfd = Dfd::new();
    let err = dfd.fails(&["run", "--shard", "4/4"]);
    assert!(
        err.contains("\"4/4\"") && err.contains("not below"),
        "{err}"
    );
    let err = dfd.fails(&["run", "--shard", "two"]);
    assert!(err.contains("\"two\"") && err.contains("I/N"), "{err}");
    let out = dfd
        .command(&["run", "--shard", "auto"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("SLURM_ARRAY_TASK_ID") && err.contains("JOB_COMPLETION_INDEX"),
        "{err}"
    );
    let out = dfd
        .command(&["run", "--shard", "auto"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env("JOB_COMPLETION_INDEX", "0")
        .env_remove("DFD_SHARD_COUNT")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DFD_SHARD_COUNT is not set"), "{err}");
}

/// `wait` that also returns stderr, for a child spawned with a piped stderr.
trait WaitRef {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String) {
        use std::io::Read;
        let mut err = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        (self.wait().unwrap(), err)
    }
}
