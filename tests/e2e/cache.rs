//! The cache on real clips: a rerun executes nothing, a parameter change reruns exactly the stage
//! and its downstream, a forced stage that writes identical bytes leaves downstream cached.

use dfd_tests::{Dataset, Dfd};

fn two_clips() -> Dataset {
    Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .clip("short.mp4", "single_face.mp4", "FAKE")
        .write()
}

#[test]
fn an_immediate_rerun_executes_no_stage() {
    let data = two_clips();
    let dfd = Dfd::new();
    let dataset = data.path().to_str().unwrap();
    dfd.ok(&["run", "--dataset", dataset]);
    assert_eq!(dfd.outcome("ingest"), "computed");
    assert_eq!(dfd.outcome("decode"), "computed");
    let first = dfd.manifest("decode");

    let out = dfd.output(&["run", "--dataset", dataset]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (stage, outcome) in dfd.outcomes() {
        assert_eq!(outcome, "cached", "{stage} ran again");
    }
    assert_eq!(
        dfd.manifest("decode")["content_hash"],
        first["content_hash"]
    );
}

#[test]
fn changing_a_decode_parameter_reruns_decode_but_not_ingest() {
    let data = two_clips();
    let dfd = Dfd::new();
    let dataset = data.path().to_str().unwrap();
    dfd.ok(&["run", "--dataset", dataset]);
    let frames_before = dfd.manifest("decode")["shards"][0]["files"].clone();

    let status = dfd.ok(&[
        "--set",
        "decode.frames_per_video=3",
        "status",
        "--dataset",
        dataset,
    ]);
    assert!(
        status.contains("decode.frames_per_video: 20 -> 3"),
        "{status}"
    );

    dfd.ok(&[
        "--set",
        "decode.frames_per_video=3",
        "run",
        "--dataset",
        dataset,
    ]);
    assert_eq!(dfd.outcome("ingest"), "cached");
    assert_eq!(dfd.outcome("decode"), "computed");
    assert_ne!(dfd.manifest("decode")["shards"][0]["files"], frames_before);
    let rows: usize = dfd
        .table("decode", "frames")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 6, "3 frames from each of 2 clips");

    // Back to the old value: the old output is still cached.
    dfd.ok(&["run", "--dataset", dataset]);
    assert_eq!(dfd.outcome("decode"), "cached");
}

#[test]
fn a_forced_stage_with_identical_bytes_leaves_downstream_cached() {
    let data = two_clips();
    let dfd = Dfd::new();
    let dataset = data.path().to_str().unwrap();
    dfd.ok(&["run", "--dataset", dataset]);
    let videos_hash = dfd.manifest("ingest")["content_hash"].clone();

    dfd.ok(&["run", "--dataset", dataset, "--force", "ingest"]);
    assert_eq!(dfd.outcome("ingest"), "computed");
    assert_eq!(dfd.manifest("ingest")["content_hash"], videos_hash);
    assert_eq!(dfd.outcome("decode"), "cached");

    // Forcing decode itself recomputes it and writes the same bytes (decoding is deterministic).
    let decode_hash = dfd.manifest("decode")["content_hash"].clone();
    dfd.ok(&["run", "--dataset", dataset, "--force", "decode"]);
    assert_eq!(dfd.outcome("decode"), "computed");
    assert_eq!(dfd.manifest("decode")["content_hash"], decode_hash);
}

#[test]
fn only_and_from_rerun_the_selected_stage_from_cached_upstream() {
    let data = two_clips();
    let dfd = Dfd::new();
    let dataset = data.path().to_str().unwrap();

    // Nothing cached yet: --only decode cannot run without ingest's output.
    let err = dfd.fails(&["run", "--dataset", dataset, "--only", "decode"]);
    assert!(
        err.contains("ingest") && err.contains("no cached output"),
        "{err}"
    );

    dfd.ok(&["run", "--dataset", dataset]);
    dfd.ok(&["run", "--dataset", dataset, "--only", "decode"]);
    assert_eq!(dfd.outcome("ingest"), "cached");
    assert_eq!(dfd.outcome("decode"), "computed");

    dfd.ok(&["run", "--dataset", dataset, "--from", "ingest"]);
    assert_eq!(dfd.outcome("ingest"), "computed");
    assert_eq!(dfd.outcome("decode"), "computed");

    let err = dfd.fails(&["run", "--dataset", dataset, "--only", "decod"]);
    assert!(err.contains("no stage named `decod`"), "{err}");
}

#[test]
fn a_changed_video_file_makes_decode_stale() {
    let data = two_clips();
    let dfd = Dfd::new();
    let dataset = data.path().to_str().unwrap();
    dfd.ok(&["run", "--dataset", dataset]);
    std::fs::copy(
        dfd_tests::media("no_face.mp4"),
        data.path().join("short.mp4"),
    )
    .unwrap();
    let status = dfd.ok(&["status", "--dataset", dataset]);
    assert!(status.contains("dataset folder changed"), "{status}");
    dfd.ok(&["run", "--dataset", dataset]);
    assert_eq!(dfd.outcome("ingest"), "computed");
    assert_eq!(dfd.outcome("decode"), "computed");
}

#[test]
fn gc_keeps_what_recent_runs_used_and_removes_the_rest() {
    let data = two_clips();
    let dfd = Dfd::new();
    let dataset = data.path().to_str().unwrap();
    dfd.ok(&[
        "--set",
        "decode.frames_per_video=2",
        "run",
        "--dataset",
        dataset,
    ]);
    let fingerprints = |dfd: &Dfd| -> Vec<(String, String)> {
        dfd.last_run()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let stage = s["stage"].as_str().unwrap().to_string();
                (
                    stage,
                    s["fingerprint"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let before = fingerprints(&dfd);
    let old = dfd.stage_report("decode")["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    dfd.ok(&["run", "--dataset", dataset]);
    let new = dfd.stage_report("decode")["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old, new);

    // decode's parameters changed, so decode and every stage downstream whose input bytes
    // changed has an unused output: one folder per stage whose fingerprint moved (aggregate and
    // report read tables that are empty either way on this dataset, so theirs may not).
    let moved = before
        .iter()
        .zip(fingerprints(&dfd))
        .filter(|((_, a), (_, b))| a != b)
        .count();
    assert!(
        moved >= 4,
        "decode, detect, crop and ssim at least: {before:?}"
    );
    let out = dfd.ok(&["gc", "--keep-runs", "1"]);
    assert!(out.contains(&format!("removed {moved} folder(s)")), "{out}");
    assert!(!dfd.output_dir("decode", &old).exists());
    assert!(dfd.output_dir("decode", &new).exists());
    dfd.ok(&["run", "--dataset", dataset]);
    assert_eq!(dfd.outcome("decode"), "cached");
}
