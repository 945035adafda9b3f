//! What the command line says and selects: `run --until`, `status` against the dataset the
//! workspace last ran on and with each upstream stage named once, OS errors named once, a run on
//! a disk that fills up still printing its stage summary, and a run writing nothing under HOME (no
//! telemetry from ONNX Runtime).

use dfd_tests::faults::{self, Fault};
use dfd_tests::{Dataset, Dfd};

#[test]
fn until_runs_a_stage_and_its_ancestors_only() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let help = dfd.ok(&["run", "--help"]);
    assert!(help.contains("--until"), "{help}");
    dfd.ok(&["run", "--dataset", dataset, "--until", "crop"]);
    for (stage, outcome) in dfd.outcomes() {
        let expected = match stage.as_str() {
            "ingest" | "decode" | "detect" | "crop" => "computed",
            _ => "skipped",
        };
        assert_eq!(outcome, expected, "{stage}");
    }
    dfd.ok(&["run", "--dataset", dataset, "--until", "ssim"]);
    assert_eq!(dfd.outcome("crop"), "cached");
    assert_eq!(dfd.outcome("ssim"), "computed");
    assert_eq!(dfd.outcome("train"), "skipped");
    let err = dfd.fails(&[
        "run",
        "--dataset",
        dataset,
        "--until",
        "ssim",
        "--only",
        "crop",
    ]);
    assert!(err.contains("--until") && err.contains("--only"), "{err}");
    let err = dfd.fails(&["run", "--dataset", dataset, "--until", "sim"]);
    assert!(err.contains("no stage named `sim`"), "{err}");
}

#[test]
fn status_compares_with_the_dataset_of_the_last_run() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", dataset]);
    let out = dfd.output(&["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(dataset), "says which dataset: {stderr}");
    for stage in ["ingest", "decode", "detect", "crop", "ssim"] {
        let line = stdout.lines().find(|l| l.starts_with(stage)).unwrap();
        assert!(line.contains("fresh"), "{stdout}");
    }
}

#[test]
fn status_names_each_upstream_stage_once() {
    let data = Dataset::two_short_clips();
    let status = Dfd::new().ok(&["status", "--dataset", data.path().to_str().unwrap()]);
    let score = status.lines().find(|l| l.starts_with("score")).unwrap();
    assert!(score.contains("upstream"), "{status}");
    assert!(!score.contains("ssim, ssim"), "{status}");
    assert!(score.contains("ssim"), "{status}");
}

#[test]
fn an_os_error_is_named_once() {
    let data = Dataset::two_short_clips();
    let dfd = Dfd::new();
    std::fs::create_dir(dfd.workspace.path().join("lock")).unwrap();
    let err = dfd.fails(&["run", "--dataset", data.path().to_str().unwrap()]);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

#[test]
fn a_disk_that_fills_up_still_gets_a_stage_summary() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let args = ["run", "--dataset", dataset];
    // From the first table file decode writes on, every rename fails with ENOSPC.
    let probe = Dfd::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = probe.command(&args);
    faults::inject(&mut command, Fault::None, Some(log.path()));
    assert!(command.output().unwrap().status.success());
    let at = faults::read_log(log.path())
        .into_iter()
        .find(|c| {
            c.kind == "rename" && c.to.contains("/cache/decode/") && c.to.ends_with(".parquet")
        })
        .expect("decode writes a table")
        .number;

    let dfd = Dfd::new();
    let mut command = dfd.command(&args);
    faults::inject(&mut command, Fault::DiskFullFromRename(at), None);
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let decode = stderr
        .lines()
        .find(|l| l.starts_with("decode "))
        .unwrap_or_else(|| panic!("no stage summary:\n{stderr}"));
    assert!(
        decode.contains("FAILED") && decode.contains("No space left"),
        "{stderr}"
    );
    assert!(stderr.lines().any(|l| l.starts_with("ingest ")), "{stderr}");
}

/// ONNX Runtime 1.31 queues telemetry for Microsoft under `~/.cache/Microsoft/DeveloperTools`
/// unless told not to (or unless it thinks it runs in CI, hence the variables removed here; and
/// `.cargo/config.toml` turns it off for test processes, hence the opt-out variables removed too):
/// a whole run (detection, training, scoring, report) leaves nothing in its home directory.
#[test]
fn a_run_writes_nothing_under_home() {
    let data = tempfile::tempdir().unwrap();
    let dfd = Dfd::new();
    dfd.tiny_demo_data(data.path());
    let home = tempfile::tempdir().unwrap();
    let mut command = dfd.command(&crate::shard_tasks::full_run(
        data.path().to_str().unwrap(),
        &[],
    ));
    command
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME");
    for ci_or_opt_out in [
        "ORT_DISABLE_TELEMETRY",
        "ORT_TELEMETRY_DISABLED",
        "ORT_RUNNING_UNIT_TESTS",
        "CI",
        "TF_BUILD",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "CIRCLECI",
        "TRAVIS",
        "JENKINS_URL",
        "CODEBUILD_BUILD_ID",
        "BUILDKITE",
        "TEAMCITY_VERSION",
    ] {
        command.env_remove(ci_or_opt_out);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stage in ["detect", "train", "score", "report"] {
        assert_eq!(dfd.outcome(stage), "computed", "{stage}");
    }
    let written = dfd_tests::tree(home.path());
    assert!(written.is_empty(), "written under HOME: {written:?}");
}
