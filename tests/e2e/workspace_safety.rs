//! dfd deletes and overwrites only what it made: `gc` leaves folders without a dfd manifest, does
//! not follow symbolic links, refuses a folder that is not a dfd workspace and run records it
//! cannot read, keeps what an interrupted run made, and never leaves a manifest whose files are
//! gone; the report copy removes only files it wrote; the lock is never written through a link.

use std::path::Path;

use dfd_tests::faults::{self, Fault};
use dfd_tests::{dfd_at, finished_outputs, output_problems, Dataset, Dfd};

/// A user's folder with a file in it, under `root`.
fn user_folder(root: &Path, relative: &str) -> std::path::PathBuf {
    let dir = root.join(relative);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), b"the user's").unwrap();
    dir
}

#[test]
fn gc_refuses_a_folder_that_is_not_a_dfd_workspace() {
    // `--workspace /var` would have emptied /var/cache/apt/archives.
    let root = tempfile::tempdir().unwrap();
    let apt = user_folder(root.path(), "cache/apt/archives");
    user_folder(root.path(), "lib");
    let out = dfd_at(root.path(), &["gc"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gc acted on a foreign folder");
    assert!(stderr.contains("not a dfd workspace"), "{stderr}");
    assert!(apt.join("precious.txt").is_file());
    assert!(
        !root.path().join("lock").exists(),
        "nothing is written there"
    );
    // Nor does a run take it over.
    let data = Dataset::two_short_clips();
    let out = dfd_at(
        root.path(),
        &["run", "--dataset", data.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(!root.path().join("runs").exists());
}

#[test]
fn gc_removes_only_dfd_outputs_and_follows_no_link() {
    let data = Dataset::two_short_clips();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    let ws = dfd.workspace.path();
    let outside = tempfile::tempdir().unwrap();
    // A folder under cache/ that is no dfd output, a stage folder that is a link out of the
    // workspace, and an output-like name that is a link.
    let apt = user_folder(ws, "cache/apt/archives");
    let target = user_folder(outside.path(), "stage/00000000000000000000");
    std::os::unix::fs::symlink(outside.path().join("stage"), ws.join("cache/linked")).unwrap();
    let single = user_folder(outside.path(), "single");
    std::os::unix::fs::symlink(&single, ws.join("cache/ingest/11111111111111111111")).unwrap();

    let out = dfd.ok(&["gc", "--keep-runs", "0"]);
    assert!(apt.join("precious.txt").is_file(), "{out}");
    assert!(target.join("precious.txt").is_file(), "{out}");
    assert!(single.join("precious.txt").is_file(), "{out}");
    // Its own outputs are gone (keep-runs 0 keeps none).
    assert!(finished_outputs(ws).is_empty(), "{out}");
}

#[test]
fn a_workspace_of_the_old_layout_is_recognised_and_marked() {
    let data = Dataset::two_short_clips();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    let ws = dfd.workspace.path();
    // As an older dfd left it: no marker file.
    let _ = std::fs::remove_file(ws.join(".dfd-workspace"));
    dfd.ok(&["gc", "--dry-run"]);
    assert!(ws.join(".dfd-workspace").is_file());
}

#[test]
fn the_report_copy_removes_only_files_it_wrote() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    dfd.ok(&["run", "--dataset", dataset]);
    assert!(ws.join("report/summary.md").is_file());
    let notes = user_folder(ws, "report");
    // Every run copies the report again, cached or not.
    dfd.ok(&["run", "--dataset", dataset]);
    assert!(ws.join("report/summary.md").is_file());
    assert!(
        notes.join("precious.txt").is_file(),
        "a user's file in report/ was deleted"
    );

    // A report/ that is a link is not written through, and nothing in its target is deleted.
    let elsewhere = tempfile::tempdir().unwrap();
    let kept = user_folder(elsewhere.path(), "target");
    std::fs::remove_dir_all(ws.join("report")).unwrap();
    std::os::unix::fs::symlink(&kept, ws.join("report")).unwrap();
    let out = dfd.output(&["run", "--dataset", dataset]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(kept.join("precious.txt").is_file(), "{stderr}");
    assert!(!kept.join("summary.md").exists(), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
}

#[test]
fn a_lock_that_is_a_link_is_refused_not_written_through() {
    let data = Dataset::two_short_clips();
    let dfd = Dfd::new();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim.txt");
    std::fs::write(&victim, b"the user's").unwrap();
    std::os::unix::fs::symlink(&victim, dfd.workspace.path().join("lock")).unwrap();
    let err = dfd.fails(&["run", "--dataset", data.path().to_str().unwrap()]);
    assert!(err.contains("lock"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the user's");
    let err = dfd.fails(&["gc"]);
    assert!(err.contains("lock"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the user's");
}

#[test]
fn gc_keeps_what_an_interrupted_run_made() {
    let mut data = Dataset::new();
    for i in 0..3 {
        // All in the test split: nothing to train, so each run takes a second or two.
        let name = format!("clip{i}.mp4");
        data = data
            .clip(&name, "single_face.mp4", "REAL")
            .entry(&name, serde_json::json!({"label": "REAL", "split": "test"}));
    }
    let data = data.write();
    let dataset = data.path().to_str().unwrap();
    let args = [
        "--set",
        "runner.videos_per_shard=1",
        "run",
        "--dataset",
        dataset,
    ];
    // Where decode's first shard record is renamed into place, counted on an uninterrupted run.
    let probe = Dfd::new();
    let log = probe.workspace.path().join("renames.log");
    let mut command = probe.command(&args);
    faults::inject(&mut command, Fault::None, Some(&log));
    assert!(command.output().unwrap().status.success());
    let calls = faults::read_log(&log);
    let at = calls
        .iter()
        .find(|c| c.kind == "rename" && c.to.contains("/cache/decode/") && c.to.contains("_shards"))
        .expect("decode writes a shard record")
        .number;

    for signal in ["after the first decode shard", "at the start of decode"] {
        let dfd = Dfd::new();
        let mut command = dfd.command(&args);
        let fault = if signal.starts_with("after") {
            Fault::AfterRename(at)
        } else {
            Fault::BeforeRename(at)
        };
        faults::inject(&mut command, fault, None);
        let out = command.output().unwrap();
        assert!(!out.status.success(), "the run was not killed");
        let ws = dfd.workspace.path();
        let before = dfd_tests::tree(&ws.join("cache"));
        assert!(
            !finished_outputs(ws).is_empty(),
            "ingest finished before the kill"
        );

        let out = dfd.ok(&["gc", "--keep-runs", "1"]);
        let after = dfd_tests::tree(&ws.join("cache"));
        assert_eq!(
            before, after,
            "gc removed what the interrupted run made:\n{out}"
        );
        // And the next run resumes it.
        dfd.ok(&args);
        if signal.starts_with("after") {
            assert_eq!(dfd.stage_report("decode")["shards_reused"], 1);
        }
    }
}

#[test]
fn gc_refuses_run_records_it_cannot_read() {
    let data = Dataset::two_short_clips();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    let ws = dfd.workspace.path();
    let before = dfd_tests::tree(&ws.join("cache"));
    for record in std::fs::read_dir(ws.join("runs")).unwrap().flatten() {
        std::fs::write(record.path(), b"{ not json").unwrap();
    }
    let err = dfd.fails(&["gc"]);
    assert!(err.contains("run record"), "{err}");
    assert!(err.contains("runs/"), "names the file: {err}");
    assert_eq!(dfd_tests::tree(&ws.join("cache")), before);
}

#[test]
fn a_gc_killed_midway_never_leaves_a_manifest_without_its_files() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    // Two sets of outputs; the older one is what gc removes.
    dfd.ok(&[
        "--set",
        "decode.frames_per_video=2",
        "run",
        "--dataset",
        dataset,
    ]);
    dfd.ok(&["run", "--dataset", dataset]);
    let ws = dfd.workspace.path();
    for n in 1..=6 {
        let mut command = dfd.command(&["gc", "--keep-runs", "1"]);
        faults::inject(&mut command, Fault::BeforeUnlink(n), None);
        let out = command.output().unwrap();
        for (stage, fingerprint, dir) in finished_outputs(ws) {
            let problems = output_problems(&dir);
            assert!(
                problems.is_empty(),
                "gc killed at unlink {n} ({}) left {stage}/{fingerprint} damaged: {problems:?}",
                out.status
            );
        }
    }
    dfd.ok(&["gc", "--keep-runs", "1"]);
    let status = dfd.ok(&["status", "--dataset", dataset]);
    assert!(
        !status.contains("stale") && !status.contains("damaged"),
        "{status}"
    );
    dfd.ok(&["report"]);
}

#[test]
fn gc_waits_for_the_lock_when_asked() {
    let dfd = Dfd::new();
    let mut data = Dataset::new();
    for i in 0..2 {
        data = data.clip(&format!("clip{i}.mp4"), "WolfgangLanger_Pexels.mp4", "REAL");
    }
    let data = data.write();
    let mut first = dfd.spawn(&[
        "--set",
        "runner.threads=1",
        "run",
        "--dataset",
        data.path().to_str().unwrap(),
        "--until",
        "detect",
    ]);
    let lock = dfd.workspace.path().join("lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .starts_with(&format!("pid {}", first.id()))
    {
        assert!(first.try_wait().unwrap().is_none(), "the run ended early");
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = dfd.fails(&["gc"]);
    assert!(err.contains("--wait"), "{err}");
    dfd.ok(&["gc", "--wait", "--dry-run"]);
    assert!(first.wait().unwrap().success());
}
