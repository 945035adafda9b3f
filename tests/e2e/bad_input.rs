//! Bad input gets a clear message naming the file, and everything else is still processed.

use dfd_schemas::{ErrorRow, FrameRow, TableRow, VideoRow};
use dfd_tests::{media, Dataset, Dfd};
use serde_json::json;

fn errors(dfd: &Dfd, stage: &str) -> Vec<ErrorRow> {
    dfd.rows(stage, "errors", ErrorRow::from_batch)
}

fn frame_videos(dfd: &Dfd) -> Vec<String> {
    let mut ids: Vec<String> = dfd
        .rows("decode", "frames", FrameRow::from_batch)
        .into_iter()
        .map(|f| f.video_id)
        .collect();
    ids.dedup();
    ids
}

/// Runs a dataset with one good clip and one bad file; returns the decode errors.
fn run_with_bad_file(name: &str, bytes: &[u8]) -> (Dfd, Vec<ErrorRow>, String) {
    let data = Dataset::new()
        .clip("good.mp4", "single_face.mp4", "REAL")
        .file(name, bytes, "FAKE")
        .write();
    let dfd = Dfd::new();
    let out = dfd.output(&["run", "--dataset", data.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "one bad video must not fail the run:\n{stderr}"
    );
    assert_eq!(frame_videos(&dfd), vec!["good.mp4"]);
    let errors = errors(&dfd, "decode");
    (dfd, errors, stderr)
}

#[test]
fn missing_metadata_json_is_a_clear_error() {
    let data = Dataset::new().clip("a.mp4", "single_face.mp4", "REAL");
    let dfd = Dfd::new();
    let err = dfd.fails(&["run", "--dataset", data.path().to_str().unwrap()]);
    assert!(
        err.contains("metadata.json") && err.contains("no metadata.json"),
        "{err}"
    );
}

#[test]
fn malformed_metadata_json_names_line_and_column() {
    let data = Dataset::new();
    std::fs::write(
        data.path().join("metadata.json"),
        "{\"a.mp4\": {\"label\": \"REAL\"\n",
    )
    .unwrap();
    let dfd = Dfd::new();
    let err = dfd.fails(&["run", "--dataset", data.path().to_str().unwrap()]);
    assert!(err.contains("malformed metadata.json at line"), "{err}");
}

#[test]
fn a_zero_byte_mp4_is_an_error_row() {
    let (_dfd, errors, stderr) = run_with_bad_file("empty.mp4", b"");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].video_id, "empty.mp4");
    assert!(errors[0].message.contains("empty.mp4") && errors[0].message.contains("0 bytes"));
    assert!(
        stderr.contains("empty.mp4"),
        "the run summary names the file:\n{stderr}"
    );
}

#[test]
fn a_text_file_named_mp4_is_an_error_row() {
    let (_dfd, errors, _) = run_with_bad_file("notes.mp4", b"these are not frames\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("notes.mp4"),
        "{}",
        errors[0].message
    );
    assert!(
        errors[0].message.contains("cannot open as a video"),
        "{}",
        errors[0].message
    );
}

#[test]
fn an_mp4_without_its_index_is_an_error_row() {
    // Cutting the head off an mp4 loses its header: nothing can demux it.
    let bytes = std::fs::read(media("WolfgangLanger_Pexels.mp4")).unwrap();
    let (_dfd, errors, _) = run_with_bad_file("headless.mp4", &bytes[bytes.len() / 2..]);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("headless.mp4"));
}

#[test]
fn a_truncated_mp4_keeps_its_frames_and_says_it_is_truncated() {
    // The clip is "fast start" (index first): cut short, it still decodes up to the cut.
    let bytes = std::fs::read(media("WolfgangLanger_Pexels.mp4")).unwrap();
    let data = Dataset::new()
        .file("cut.mp4", &bytes[..bytes.len() / 4], "FAKE")
        .clip("good.mp4", "single_face.mp4", "REAL")
        .write();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    let summaries: Vec<_> = dfd.rows(
        "decode",
        "decoded_videos",
        dfd_schemas::DecodedVideoRow::from_batch,
    );
    let cut = summaries.iter().find(|s| s.video_id == "cut.mp4").unwrap();
    assert!(cut.frames_kept > 0 && cut.frames_kept < 20, "{cut:?}");
    assert_eq!(cut.declared_frames, 472);
    assert!(
        cut.note.as_deref().unwrap_or("").contains("truncated"),
        "{cut:?}"
    );
    let good = summaries.iter().find(|s| s.video_id == "good.mp4").unwrap();
    assert_eq!(good.note, None);
}

#[test]
fn bad_metadata_entries_become_error_rows_and_the_rest_goes_on() {
    let data = Dataset::new()
        .clip("good.mp4", "single_face.mp4", "REAL")
        .clip("unlisted.mp4", "no_face.mp4", "REAL")
        .entry("../outside.mp4", json!({"label": "FAKE"}))
        .entry("/etc/hostname", json!({"label": "FAKE"}))
        .entry("ghost.mp4", json!({"label": "REAL"}))
        .entry("maybe.mp4", json!({"label": "MAYBE"}))
        .write();
    // unlisted.mp4 exists but has no entry: rewrite metadata.json without it.
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("metadata.json")).unwrap())
            .unwrap();
    meta.as_object_mut().unwrap().remove("unlisted.mp4");
    std::fs::write(data.path().join("metadata.json"), meta.to_string()).unwrap();
    std::fs::copy(media("single_face.mp4"), data.path().join("maybe.mp4")).unwrap();

    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    let errors = errors(&dfd, "ingest");
    let message_of = |id: &str| {
        errors
            .iter()
            .find(|e| e.video_id == id)
            .unwrap_or_else(|| panic!("no error row for {id}: {errors:?}"))
            .message
            .clone()
    };
    assert!(message_of("../outside.mp4").contains("escapes the dataset folder"));
    assert!(message_of("/etc/hostname").contains("outside the dataset folder"));
    assert!(message_of("ghost.mp4").contains("no such file"));
    assert!(message_of("maybe.mp4").contains("`MAYBE` is neither REAL nor FAKE"));
    assert_eq!(errors.len(), 4);

    let videos: Vec<VideoRow> = dfd.rows("ingest", "videos", VideoRow::from_batch);
    let ids: Vec<&str> = videos.iter().map(|v| v.video_id.as_str()).collect();
    assert_eq!(ids, vec!["good.mp4", "unlisted.mp4"]);
    assert_eq!(
        videos[1].label, None,
        "a file without an entry is kept, unlabelled"
    );
    assert_eq!(frame_videos(&dfd), vec!["good.mp4", "unlisted.mp4"]);
}

#[test]
fn an_unknown_config_key_is_named() {
    let dfd = Dfd::new();
    let err = dfd.fails(&["--set", "decode.frame_count=3", "config"]);
    assert!(err.contains("decode.frame_count"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dfd.toml");
    std::fs::write(&config, "[runner]\nvideos_per_shard = 4\nshard_size = 2\n").unwrap();
    let err = dfd.fails(&["--config", config.to_str().unwrap(), "config"]);
    assert!(err.contains("runner.shard_size"), "{err}");
}
