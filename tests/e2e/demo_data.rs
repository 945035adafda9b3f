//! `dfd demo-data` end to end, on a tiny set (8 videos of at most 3 s from seven filmed people:
//! two pairs in train, one in val, one in test): every file decodes; labels, splits and originals
//! are as written; no person (filmed or donor) crosses splits; each fake differs from its original
//! only around the face; the same seed gives the same files; the same request reuses the dataset
//! and another one rebuilds it; an interrupted build leaves no dataset behind; a folder the
//! generator did not write is never replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use dfd_schemas::{DetectionRow, ErrorRow, FrameRow, TableRow, VideoRow};
use dfd_tests::Dfd;
use serde_json::Value;

const VIDEOS: &str = "8";

fn args<'a>(out: &'a str, seed: &'a str) -> Vec<&'a str> {
    vec![
        "demo-data",
        "--out",
        out,
        "--videos",
        VIDEOS,
        "--seed",
        seed,
        "--clip-seconds",
        "3",
    ]
}

/// Runs `dfd demo-data` into `out`; returns its stdout.
fn make(dfd: &Dfd, out: &Path, seed: &str) -> String {
    dfd.ok(&args(out.to_str().unwrap(), seed))
}

/// The builder stages into hidden folders beside the dataset; none may outlive a build.
fn assert_no_staging_left(parent: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

fn metadata(out: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(out.join("metadata.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every file of a dataset folder, by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn rgb(frame: &FrameRow) -> image::RgbImage {
    image::load_from_memory_with_format(&frame.image, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

/// Mean absolute difference over the pixels where `keep(x, y)` holds.
fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut sum, mut n) = (0u64, 0u64);
    for (x, y, pa) in a.enumerate_pixels() {
        if keep(x, y) {
            let pb = b.get_pixel(x, y);
            sum += (0..3).map(|c| pa[c].abs_diff(pb[c]) as u64).sum::<u64>();
            n += 3;
        }
    }
    assert!(n > 0, "no pixel selected");
    sum as f64 / n as f64
}

/// Labels, splits, originals, groups: what metadata.json must say of any demo set.
fn check_metadata(out: &Path, meta: &BTreeMap<String, Value>) {
    assert_eq!(meta.len(), 8);
    let count = |label: &str| meta.values().filter(|e| e["label"] == label).count();
    assert_eq!((count("REAL"), count("FAKE")), (4, 4));
    for (name, entry) in meta {
        let split = entry["split"].as_str().unwrap();
        assert!(["train", "val", "test"].contains(&split), "{name}: {split}");
        assert!(out.join(name).is_file(), "{name} missing");
        if entry["label"] == "FAKE" {
            let original = entry["original"].as_str().expect("fake without original");
            let orig = &meta[original];
            assert_eq!(orig["label"], "REAL", "{name}'s original {original}");
            assert_eq!(orig["split"], entry["split"], "{name} and {original}");
            assert_eq!(orig["group"], entry["group"]);
            assert_ne!(
                entry["donor"]["person"], entry["group"],
                "{name}: donor is the target's own person"
            );
            // Same framing, degradation and encoder as its REAL: nothing but the swap differs.
            for key in [
                "source",
                "start_frame",
                "crop",
                "size",
                "degradation",
                "encoder",
            ] {
                assert_eq!(entry[key], orig[key], "{name}: {key}");
            }
        }
    }
    // Two pairs in train, one each in val and test at this size.
    for (split, n_want) in [("train", 4), ("val", 2), ("test", 2)] {
        let n = meta.values().filter(|e| e["split"] == split).count();
        assert_eq!(n, n_want, "{split}");
    }
    // No person crosses splits: neither a filmed one (the group) nor a donor face.
    let mut splits_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for entry in meta.values() {
        let split = entry["split"].as_str().unwrap();
        for person in [&entry["group"], &entry["donor"]["person"]] {
            if let Some(p) = person.as_str() {
                splits_of.entry(p).or_default().insert(split);
            }
        }
    }
    for (person, splits) in &splits_of {
        assert_eq!(splits.len(), 1, "{person} is in {splits:?}");
    }
    assert!(splits_of.len() >= 4, "only {} people", splits_of.len());
}

#[test]
fn demo_dataset_is_valid_deterministic_cached_and_swaps_only_the_face() {
    let dfd = Dfd::new();
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("demo");
    make(&dfd, &out, "7");
    let meta = metadata(&out);
    check_metadata(&out, &meta);

    // Same seed, same files, byte for byte (videos included), in a fresh folder.
    let first = files(&out);
    let other = root.path().join("again");
    make(&dfd, &other, "7");
    assert_eq!(first, files(&other), "same seed, different files");

    // The same request reuses the dataset; another seed rebuilds it.
    let said = make(&dfd, &out, "7");
    assert!(said.contains("up to date"), "not reused: {said}");
    let said = make(&dfd, &out, "8");
    assert!(said.starts_with("wrote"), "not rebuilt: {said}");
    assert_ne!(metadata(&out), meta, "seed 8 gave seed 7's dataset");
    assert_no_staging_left(root.path());

    // The whole DAG runs on the seed-7 set: every file decodes, ingest reads what was written.
    // (Full frames kept, for the pixel check.)
    dfd.ok(&[
        "--set",
        "decode.keep_frames=full",
        "run",
        "--dataset",
        other.to_str().unwrap(),
    ]);
    check_dag_outputs(&dfd, &meta);
}

/// Decode errors, labels and splits as ingested, and the fake-vs-original pixel check.
fn check_dag_outputs(dfd: &Dfd, meta: &BTreeMap<String, Value>) {
    let errors: Vec<ErrorRow> = dfd.rows("decode", "errors", ErrorRow::from_batch);
    assert!(errors.is_empty(), "decode errors: {errors:?}");
    let videos: Vec<VideoRow> = dfd.rows("ingest", "videos", VideoRow::from_batch);
    assert_eq!(videos.len(), meta.len());
    for v in &videos {
        let entry = &meta[&v.video_id];
        assert_eq!(v.label.unwrap().as_str(), entry["label"].as_str().unwrap());
        assert_eq!(v.split.as_deref(), entry["split"].as_str());
        assert_eq!(v.original.as_deref(), entry["original"].as_str());
    }
    let frames: Vec<FrameRow> = dfd.rows("decode", "frames", FrameRow::from_batch);
    for name in meta.keys() {
        let n = frames.iter().filter(|f| &f.video_id == name).count();
        assert!(n >= 4, "{name}: only {n} frames decoded");
    }
    let detections: Vec<DetectionRow> = dfd.rows("detect", "detections", DetectionRow::from_batch);
    for (name, entry) in meta.iter().filter(|(_, e)| e["label"] == "FAKE") {
        let original = entry["original"].as_str().unwrap();
        let compared = compare_fake(name, original, &frames, &detections);
        assert!(compared >= 4, "{name}: only {compared} frames compared");
    }
}

/// Each fake equals its original away from the face (within codec noise) and differs on it;
/// returns how many frames were compared.
fn compare_fake(
    name: &str,
    original: &str,
    frames: &[FrameRow],
    detections: &[DetectionRow],
) -> usize {
    let mut compared = 0;
    for fake_frame in frames.iter().filter(|f| f.video_id == name) {
        let Some(orig_frame) = frames
            .iter()
            .find(|f| f.video_id == original && f.sample_index == fake_frame.sample_index)
        else {
            continue;
        };
        let Some(face) = detections.iter().find(|d| {
            d.video_id == original && d.sample_index == orig_frame.sample_index && d.face_index == 0
        }) else {
            continue;
        };
        // The face box grown by 50% (25% each side).
        let (cx, cy) = (face.x + face.width / 2.0, face.y + face.height / 2.0);
        let (hw, hh) = (face.width * 0.75, face.height * 0.75);
        let inside =
            |x: u32, y: u32| ((x as f32) - cx).abs() <= hw && ((y as f32) - cy).abs() <= hh;
        let (a, b) = (rgb(fake_frame), rgb(orig_frame));
        let outside = mean_abs_diff(&a, &b, |x, y| !inside(x, y));
        assert!(
            outside < 6.0,
            "{name} sample {}: background changed by {outside:.2}",
            fake_frame.sample_index
        );
        let on_face = mean_abs_diff(&a, &b, |x, y| {
            ((x as f32) - cx).abs() <= face.width / 4.0
                && ((y as f32) - cy).abs() <= face.height / 4.0
        });
        assert!(
            on_face > outside + 3.0,
            "{name} sample {}: face barely changed ({on_face:.2} vs {outside:.2})",
            fake_frame.sample_index
        );
        compared += 1;
    }
    compared
}

#[test]
fn an_interrupted_build_leaves_no_dataset() {
    let dfd = Dfd::new();
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("demo");
    let out_text = out.to_str().unwrap().to_string();
    let mut child = dfd.spawn(&args(&out_text, "7"));
    // Kill it once it has begun writing videos into its staging folder.
    let started = Instant::now();
    let writing = || {
        std::fs::read_dir(root.path()).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name()
                .to_string_lossy()
                .starts_with(".demo.partial-")
                && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
        })
    };
    while !writing() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a half dataset was left in {out_text}");

    // The next run clears the dead run's staging folder and builds the whole set.
    let said = make(&dfd, &out, "7");
    assert!(said.starts_with("wrote"), "{said}");
    check_metadata(&out, &metadata(&out));
    assert_no_staging_left(root.path());
}

#[test]
fn a_folder_the_generator_did_not_write_is_never_replaced() {
    let dfd = Dfd::new();
    let root = tempfile::tempdir().unwrap();
    let users = root.path().join("my-dataset");
    std::fs::create_dir(&users).unwrap();
    std::fs::write(
        users.join("metadata.json"),
        r#"{"a.mp4": {"label": "REAL"}}"#,
    )
    .unwrap();
    std::fs::write(users.join("README"), "my notes").unwrap();
    let users_text = users.to_str().unwrap();
    for force in [false, true] {
        let mut command = args(users_text, "7");
        if force {
            command.push("--force");
        }
        let said = dfd.fails(&command);
        assert!(said.contains("not written by `dfd demo-data`"), "{said}");
    }
    assert_eq!(
        std::fs::read_to_string(users.join("README")).unwrap(),
        "my notes"
    );
    assert_no_staging_left(root.path());
}
