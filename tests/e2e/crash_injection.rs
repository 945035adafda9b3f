//! Crash injection at renames: a run on a tiny dataset that stops before `train` (`--until ssim`)
//! is killed (SIGKILL) just before and just after renames of every kind it makes (the workspace
//! marker, run records, table files, shard records, manifests, the commit of a finished output,
//! and on `--force` the move of the old output out of the cache). After each kill, every finished
//! output holds exactly the files its manifest lists, at their sizes; the next run then leaves no
//! temporary, partial or discarded folder behind and ends with the very bytes of an uninterrupted
//! run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use dfd_tests::faults::{self, Call, Fault};
use dfd_tests::{finished_outputs, output_problems, tree, Dataset, Dfd};

const SETTINGS: [&str; 4] = [
    "--set",
    "runner.videos_per_shard=1",
    "--set",
    "decode.frames_per_video=4",
];

fn dataset() -> Dataset {
    Dataset::new()
        .clip("a.mp4", "single_face.mp4", "REAL")
        .clip("b.mp4", "carphone_pristine.mp4", "FAKE")
        .write()
}

fn args<'a>(dataset: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args: Vec<&str> = SETTINGS.to_vec();
    args.extend(["run", "--dataset", dataset, "--until", "ssim"]);
    args.extend(extra);
    args
}

/// What a rename does, from its paths.
fn kind(call: &Call) -> String {
    let (from, to) = (call.from.as_str(), call.to.as_str());
    let kind = if to.ends_with("/.dfd-workspace") {
        "workspace marker"
    } else if to.contains("/runs/") {
        "run record"
    } else if to.contains("/trash/") {
        "old output out of the cache"
    } else if to.contains("/shards/") && to.ends_with("/_shard.json") {
        "shard-store record"
    } else if to.contains("/shards/") {
        "shard filed in the store"
    } else if from.ends_with(".partial") {
        "output committed"
    } else if to.ends_with("/_manifest.json") {
        "manifest"
    } else if to.contains("/_shards/") {
        "shard record"
    } else if to.ends_with(".parquet") {
        "table file"
    } else {
        return format!("other: {from} -> {to}");
    };
    kind.to_string()
}

/// Parquet bytes of every finished output the newest run used, by (stage, file).
fn outputs(dfd: &Dfd) -> BTreeMap<(String, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    for stage in ["ingest", "decode", "detect", "crop", "ssim"] {
        let manifest = dfd.manifest(stage);
        let dir = dfd.output_dir(stage, manifest["fingerprint"].as_str().unwrap());
        for file in tree(&dir) {
            if file.ends_with(".parquet") {
                let bytes = std::fs::read(dir.join(&file)).unwrap();
                out.insert((stage.to_string(), file), bytes);
            }
        }
    }
    out
}

/// Every finished output holds exactly its manifest's files.
fn assert_exact(workspace: &Path, when: &str) {
    for (stage, fingerprint, dir) in finished_outputs(workspace) {
        let problems = output_problems(&dir);
        assert!(
            problems.is_empty(),
            "{when}: {stage}/{fingerprint}: {problems:?}"
        );
    }
}

/// Nothing left over: no temporary file, no partial or discarded output.
fn assert_clean(workspace: &Path, when: &str) {
    let leftovers: Vec<String> = tree(workspace)
        .into_iter()
        .filter(|f| f.contains(".tmp-") || f.contains(".partial/") || f.starts_with("trash/"))
        .collect();
    assert!(leftovers.is_empty(), "{when}: left over: {leftovers:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `args` on a copy of `prepared` (or a fresh workspace), killed at `fault`; checks the
/// killed state, then lets a plain run finish and compares it with `reference`.
fn kill_and_recover(
    prepared: Option<&Path>,
    args: &[&str],
    recover: &[&str],
    fault: Fault,
    label: &str,
    reference: &BTreeMap<(String, String), Vec<u8>>,
) {
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    if let Some(prepared) = prepared {
        copy_dir(prepared, ws);
    }
    let mut command = dfd.command(args);
    faults::inject(&mut command, fault, None);
    let out = command.output().unwrap();
    assert!(
        !out.status.success(),
        "{label}: not killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let when = format!("killed {label} ({fault:?})");
    assert_exact(ws, &when);

    dfd.ok(recover);
    let when = format!("after the run that followed a kill {label} ({fault:?})");
    assert_exact(ws, &when);
    assert_clean(ws, &when);
    let got = outputs(&dfd);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{when}"
    );
    for (key, bytes) in reference {
        assert!(got[key] == *bytes, "{when}: {key:?} differs");
    }
}

/// The first and last call of each kind, by number.
fn first_and_last(calls: &[Call]) -> BTreeMap<String, Vec<usize>> {
    let mut by_kind: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.kind == "rename") {
        by_kind.entry(kind(call)).or_default().push(call.number);
    }
    for numbers in by_kind.values_mut() {
        let (first, last) = (numbers[0], numbers[numbers.len() - 1]);
        *numbers = if first == last {
            vec![first]
        } else {
            vec![first, last]
        };
    }
    by_kind
}

#[test]
fn a_run_killed_at_any_kind_of_rename_resumes_to_the_same_bytes() {
    let data = dataset();
    let dataset = data.path().to_str().unwrap();
    let run = args(dataset, &[]);

    // The uninterrupted run, with its renames logged.
    let reference = Dfd::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = reference.command(&run);
    faults::inject(&mut command, Fault::None, Some(log.path()));
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exact(reference.workspace.path(), "uninterrupted");
    assert_clean(reference.workspace.path(), "uninterrupted");
    let expected = outputs(&reference);
    let kinds = first_and_last(&faults::read_log(log.path()));
    let names: Vec<&str> = kinds.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "manifest",
            "output committed",
            "run record",
            "shard filed in the store",
            "shard record",
            "shard-store record",
            "table file",
            "workspace marker"
        ],
        "{kinds:?}"
    );
    for (kind, numbers) in &kinds {
        for &n in numbers {
            for fault in [Fault::BeforeRename(n), Fault::AfterRename(n)] {
                let label = format!("at {kind} rename {n}");
                kill_and_recover(None, &run, &run, fault, &label, &expected);
            }
        }
    }

    // Forcing a stage whose output exists moves the old output out of the cache first.
    let prepared = Dfd::new();
    prepared.ok(&args(dataset, &[]));
    let forced = args(dataset, &["--force", "decode"]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let probe = Dfd::new();
    copy_dir(prepared.workspace.path(), probe.workspace.path());
    let mut command = probe.command(&forced);
    faults::inject(&mut command, Fault::None, Some(log.path()));
    assert!(command.output().unwrap().status.success());
    let calls = faults::read_log(log.path());
    let aside: Vec<usize> = calls
        .iter()
        .filter(|c| c.kind == "rename" && kind(c) == "old output out of the cache")
        .map(|c| c.number)
        .collect();
    assert!(!aside.is_empty(), "no old output moved: {calls:?}");
    for n in [aside[0], aside[0] + 1] {
        for fault in [Fault::BeforeRename(n), Fault::AfterRename(n)] {
            let label = format!("around the move of decode's old output (rename {n})");
            kill_and_recover(
                Some(prepared.workspace.path()),
                &forced,
                &run,
                fault,
                &label,
                &expected,
            );
        }
    }
}

#[test]
fn an_orphan_temporary_never_reaches_a_finished_output() {
    let data = dataset();
    let dataset = data.path().to_str().unwrap();
    let mut run: Vec<&str> = SETTINGS.to_vec();
    run.extend(["run", "--dataset", dataset]);
    let probe = Dfd::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = probe.command(&run);
    faults::inject(&mut command, Fault::None, Some(log.path()));
    assert!(command.output().unwrap().status.success());
    // decode's second shard's frames file, renamed from its temporary name.
    let at = faults::read_log(log.path())
        .into_iter()
        .find(|c| c.kind == "rename" && c.to.ends_with("/frames/part-00001.parquet"))
        .expect("decode writes two shards")
        .number;

    let dfd = Dfd::new();
    let mut command = dfd.command(&run);
    faults::inject(&mut command, Fault::BeforeRename(at), None);
    assert!(!command.output().unwrap().status.success());
    let orphans: Vec<String> = tree(dfd.workspace.path())
        .into_iter()
        .filter(|f| f.contains(".tmp-"))
        .collect();
    assert!(!orphans.is_empty(), "the kill left no temporary file");

    dfd.ok(&run);
    let dir = dfd.output_dir(
        "decode",
        dfd.manifest("decode")["fingerprint"].as_str().unwrap(),
    );
    assert_eq!(output_problems(&dir), Vec::<String>::new());
    // A reader of the folder (pyarrow, DuckDB) sees the manifest's rows, no more.
    let on_disk: usize = tree(&dir.join("frames"))
        .iter()
        .flat_map(|f| dfd_tests::read_parquet(&dir.join("frames").join(f)))
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(on_disk, 8, "4 frames from each of 2 clips");
    assert_clean(dfd.workspace.path(), "after the resumed run");
}
