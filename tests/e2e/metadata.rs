//! Odd metadata never passes silently and never fails the whole ingest: each odd entry becomes a
//! named warning or a row of ingest's `errors`, and the other entries go on.

use dfd_schemas::{ErrorRow, TableRow, VideoRow};
use dfd_tests::{media, Dataset, Dfd};

fn ingest(data: &Dataset) -> (Dfd, Vec<VideoRow>, Vec<ErrorRow>, String) {
    let dfd = Dfd::new();
    let out = dfd.output(&[
        "run",
        "--dataset",
        data.path().to_str().unwrap(),
        "--only",
        "ingest",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "one odd entry must not fail ingest:\n{stderr}"
    );
    let videos = dfd.rows("ingest", "videos", VideoRow::from_batch);
    let errors = dfd.rows("ingest", "errors", ErrorRow::from_batch);
    (dfd, videos, errors, stderr)
}

fn message<'a>(errors: &'a [ErrorRow], id: &str) -> &'a str {
    errors
        .iter()
        .find(|e| e.video_id == id)
        .map(|e| e.message.as_str())
        .unwrap_or_else(|| panic!("no error row for {id}: {errors:?}"))
}

#[test]
fn an_entry_reaching_outside_through_a_link_is_refused() {
    let data = Dataset::new()
        .clip("good.mp4", "single_face.mp4", "REAL")
        .entry("root/etc/passwd", serde_json::json!({"label": "FAKE"}))
        .entry("alias.mp4", serde_json::json!({"label": "REAL"}))
        .write();
    std::os::unix::fs::symlink("/", data.path().join("root")).unwrap();
    // A link that stays inside the folder is fine.
    std::fs::create_dir(data.path().join("clips")).unwrap();
    std::fs::copy(media("no_face.mp4"), data.path().join("clips/x.mp4")).unwrap();
    std::os::unix::fs::symlink("clips/x.mp4", data.path().join("alias.mp4")).unwrap();
    let (_dfd, videos, errors, _) = ingest(&data);
    let ids: Vec<&str> = videos.iter().map(|v| v.video_id.as_str()).collect();
    assert_eq!(ids, ["alias.mp4", "good.mp4"], "{errors:?}");
    assert!(
        message(&errors, "root/etc/passwd").contains("outside the dataset folder"),
        "{errors:?}"
    );
}

#[test]
fn odd_splits_duplicates_and_bad_entries_are_named() {
    let data = Dataset::new();
    for name in [
        "a.mp4", "b.mp4", "c.mp4", "d.mp4", "n.mp4", "s.mp4", "t.mp4",
    ] {
        std::fs::copy(media("single_face.mp4"), data.path().join(name)).unwrap();
    }
    // Written by hand: a JSON object with a repeated key cannot be built as a map.
    let metadata = r#"{
        "a.mp4": {"label": "REAL", "split": "val"},
        "b.mp4": {"label": "REAL", "split": "banana"},
        "t.mp4": {"label": "FAKE", "split": "TRAIN", "original": "a.mp4"},
        "d.mp4": {"label": "REAL"},
        "d.mp4": {"label": "FAKE"},
        "c.mp4": {"label": "REAL", "split": "test"},
        "./c.mp4": {"label": "REAL", "split": "train"},
        "n.mp4": {"label": 1},
        "s.mp4": "FAKE"
    }"#;
    std::fs::write(data.path().join("metadata.json"), metadata).unwrap();
    let (_dfd, videos, errors, stderr) = ingest(&data);

    let split = |id: &str| {
        videos
            .iter()
            .find(|v| v.video_id == id)
            .unwrap_or_else(|| panic!("no video {id}: {videos:?}"))
            .split
            .clone()
    };
    assert_eq!(split("a.mp4").as_deref(), Some("val"));
    // Case is not a different split: read as `train`, with a warning naming the entry.
    assert_eq!(split("t.mp4").as_deref(), Some("train"));
    assert!(
        stderr.contains("t.mp4") && stderr.contains("TRAIN"),
        "{stderr}"
    );
    assert!(message(&errors, "b.mp4").contains("banana"), "{errors:?}");
    // Two different entries for one file: neither is guessed.
    assert!(message(&errors, "d.mp4").contains("twice"), "{errors:?}");
    // `./c.mp4` is c.mp4: one file, so one video, never in two splits.
    assert!(message(&errors, "c.mp4").contains("./c.mp4"), "{errors:?}");
    assert!(message(&errors, "n.mp4").contains("label"), "{errors:?}");
    assert!(message(&errors, "s.mp4").contains("s.mp4"), "{errors:?}");
    let ids: Vec<&str> = videos.iter().map(|v| v.video_id.as_str()).collect();
    assert_eq!(ids, ["a.mp4", "t.mp4"], "{errors:?}");
}
