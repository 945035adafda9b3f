//! The cache checks the bytes it trusts: a file whose size differs from its manifest is seen at
//! once (`dfd status` says "damaged", `dfd run` recomputes it), a file whose bytes differ is seen
//! when a stage reads it as an input and by `dfd verify`; either way the output is marked stale,
//! named with the file, and recomputed to the same bytes as before.

use std::path::PathBuf;

use dfd_tests::{Dataset, Dfd};

/// The first file of `table` in the newest output of `stage`, as (path, path in the manifest).
fn first_file(dfd: &Dfd, stage: &str, table: &str) -> (PathBuf, String) {
    let manifest = dfd.manifest(stage);
    let dir = dfd.output_dir(stage, manifest["fingerprint"].as_str().unwrap());
    let relative = manifest["shards"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .find(|p| p.starts_with(&format!("{table}/")))
        .unwrap();
    (dir.join(&relative), relative)
}

/// Flips `n` bytes in the middle of a file, keeping its size.
fn flip_bytes(path: &std::path::Path, n: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + n] {
        *b ^= 0x5a;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_finds_flipped_bytes_names_the_file_and_the_run_recomputes_it() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", dataset]);
    let frames_hash = dfd.manifest("decode")["content_hash"].clone();
    let scores_before = dfd.manifest("aggregate")["content_hash"].clone();
    let (path, relative) = first_file(&dfd, "decode", "frames");
    flip_bytes(&path, 16);

    let out = dfd.output(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "verify must fail on damage:\n{stdout}"
    );
    assert!(stdout.contains(&relative), "{stdout}");
    assert!(stdout.contains("sha256"), "{stdout}");
    let status = dfd.ok(&["status", "--dataset", dataset]);
    let decode_line = status.lines().find(|l| l.starts_with("decode")).unwrap();
    assert!(decode_line.contains("damaged"), "{status}");
    assert!(decode_line.contains(&relative), "{status}");

    dfd.ok(&["run", "--dataset", dataset]);
    assert_eq!(dfd.outcome("decode"), "computed");
    assert_eq!(dfd.manifest("decode")["content_hash"], frames_hash);
    assert_eq!(dfd.manifest("aggregate")["content_hash"], scores_before);
    assert!(dfd.output(&["verify"]).status.success());
}

#[test]
fn a_stage_reading_damaged_input_marks_it_and_the_run_recomputes_it() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", dataset]);
    let faces_hash = dfd.manifest("crop")["content_hash"].clone();
    let detections_hash = dfd.manifest("detect")["content_hash"].clone();
    let (path, relative) = first_file(&dfd, "detect", "detections");
    flip_bytes(&path, 1);

    // crop reads detections: the damage is found, named, and detect is recomputed first.
    let out = dfd.output(&["run", "--dataset", dataset, "--from", "crop"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&relative),
        "names the damaged file:\n{stderr}"
    );
    assert_eq!(dfd.outcome("detect"), "computed", "{stderr}");
    assert_eq!(dfd.manifest("detect")["content_hash"], detections_hash);
    assert_eq!(dfd.manifest("crop")["content_hash"], faces_hash);
}

#[test]
fn a_file_of_the_wrong_size_makes_the_output_damaged_without_reading_it() {
    let data = Dataset::two_short_clips();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", dataset]);
    let frames_hash = dfd.manifest("decode")["content_hash"].clone();
    let (path, relative) = first_file(&dfd, "decode", "frames");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();

    let status = dfd.ok(&["status", "--dataset", dataset]);
    let decode_line = status.lines().find(|l| l.starts_with("decode")).unwrap();
    assert!(decode_line.contains("damaged"), "{status}");
    assert!(decode_line.contains(&relative), "{status}");
    let out = dfd.output(&["run", "--dataset", dataset]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&relative), "{stderr}");
    assert_eq!(dfd.outcome("decode"), "computed");
    assert_eq!(dfd.manifest("decode")["content_hash"], frames_hash);
}
