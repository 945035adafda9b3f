//! `dfd bench`: the report's shape and its errors, never its speed (the figures depend on the
//! machine and its load; they go in the README, measured by hand).

use serde_json::Value;

use dfd_tests::{media, Dataset, Dfd};

/// `preprocess` on one short real clip: both timings positive, the ratio theirs, the dfd child's
/// peak RSS and bytes written measured, and nothing left in the scratch folder.
#[test]
fn preprocess_times_dfd_and_ffmpeg_on_a_real_clip() {
    let dfd = Dfd::new();
    let scratch = tempfile::tempdir().unwrap();
    let clip = media("single_face.mp4");
    let out = dfd.ok(&[
        "bench",
        "preprocess",
        clip.to_str().unwrap(),
        "--repeats",
        "1",
        "--json",
        "--scratch",
        scratch.path().to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["target"], "preprocess");
    assert_eq!(report["mode"], "per-clip");
    assert_eq!(report["repeats"], 1);
    // 20 frames 0.5 s apart from 0 s: FFmpeg decodes the first 10 s.
    assert_eq!(report["ffmpeg_seconds_decoded"], 10.0);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report:#}");
    let row = &rows[0];
    assert_eq!(row["clip"], clip.to_str().unwrap());
    assert_eq!(row["videos"], 1);
    assert_eq!(row["resolution"], serde_json::json!([640, 360]));
    let number = |key: &str| {
        row[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is not a number: {row:#}"))
    };
    let (dfd_s, ffmpeg_s) = (number("dfd_seconds"), number("ffmpeg_seconds"));
    assert!(dfd_s > 0.0 && ffmpeg_s > 0.0, "{row:#}");
    assert!(
        (number("ratio") - dfd_s / ffmpeg_s).abs() <= 1e-9 * (dfd_s / ffmpeg_s),
        "{row:#}"
    );
    assert!(number("peak_rss_mb") > 0.0, "{row:#}");
    assert!(number("ffmpeg_peak_rss_mb") > 0.0, "{row:#}");
    assert!(
        row["bytes_written_per_video"].as_u64().unwrap() > 0,
        "{row:#}"
    );
    assert_eq!(row["dfd_runs"].as_array().unwrap().len(), 1);
    assert_eq!(row["ffmpeg_runs"].as_array().unwrap().len(), 1);
    let left: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().collect();
    assert!(left.is_empty(), "left in the scratch folder: {left:?}");
}

/// A missing clip is named before anything runs; without ffmpeg the error says what it is for and
/// where to get it.
#[test]
fn preprocess_names_a_missing_clip_and_a_missing_ffmpeg() {
    let dfd = Dfd::new();
    let missing = dfd.workspace.path().join("no-such-clip.mp4");
    let err = dfd.fails(&["bench", "preprocess", missing.to_str().unwrap()]);
    assert!(err.contains("no such clip"), "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");

    let clip = media("single_face.mp4");
    let out = dfd
        .command(&["bench", "preprocess", clip.to_str().unwrap()])
        .env("PATH", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ffmpeg"), "{err}");
    assert!(err.contains("scripts/setup.sh"), "{err}");
}

/// The dataset targets still take their options after the target's name.
#[test]
fn decode_target_still_runs_on_a_dataset() {
    let data = Dataset::two_short_clips();
    let dfd = Dfd::new();
    let out = dfd.ok(&[
        "bench",
        "decode",
        "--dataset",
        data.path().to_str().unwrap(),
        "--repeats",
        "1",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["target"], "decode");
    assert_eq!(report["videos"], 2);
    assert!(report["frames"].as_u64().unwrap() > 0, "{report:#}");
}
