//! `dfd demo-data` end to end: the dataset it writes decodes, says what it is (labels, splits, each
//! fake's original in its split), changes only the face of each fake, and is the same for the same
//! seed.

use std::collections::BTreeMap;

use dfd_schemas::{DetectionRow, ErrorRow, FrameRow, VideoRow};
use dfd_tests::Dfd;
use serde_json::Value;

fn make(dfd: &Dfd, out: &std::path::Path) -> BTreeMap<String, Value> {
    let out_text = out.to_str().unwrap();
    dfd.ok(&[
        "demo-data",
        "--out",
        out_text,
        "--videos",
        "4",
        "--seed",
        "7",
    ]);
    let text = std::fs::read_to_string(out.join("metadata.json")).unwrap();
    serde_json::from_str(&text).unwrap()
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

#[test]
fn demo_dataset_is_valid_deterministic_and_swaps_only_the_face() {
    let dfd = Dfd::new();
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("demo");
    let meta = make(&dfd, &out);

    // Same seed, same metadata, byte for byte (the command replaces its own earlier dataset).
    let first = std::fs::read(out.join("metadata.json")).unwrap();
    make(&dfd, &out);
    assert_eq!(first, std::fs::read(out.join("metadata.json")).unwrap());
    let other = root.path().join("again");
    make(&dfd, &other);
    assert_eq!(first, std::fs::read(other.join("metadata.json")).unwrap());

    assert_eq!(meta.len(), 4);
    let labels: Vec<&str> = meta
        .values()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.iter().filter(|l| **l == "REAL").count(), 2);
    assert_eq!(labels.iter().filter(|l| **l == "FAKE").count(), 2);
    for (name, entry) in &meta {
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
                entry["donor"], entry["source"],
                "{name}: donor from its own clip"
            );
        }
    }

    // The whole DAG runs on it: every file decodes, and ingest reads labels and splits as written.
    dfd.ok(&["run", "--dataset", out.to_str().unwrap()]);
    let errors: Vec<ErrorRow> = dfd
        .table("decode", "errors")
        .iter()
        .flat_map(|b| ErrorRow::from_batch(b).unwrap())
        .collect();
    assert!(errors.is_empty(), "decode errors: {errors:?}");
    let videos: Vec<VideoRow> = dfd
        .table("ingest", "videos")
        .iter()
        .flat_map(|b| VideoRow::from_batch(b).unwrap())
        .collect();
    assert_eq!(videos.len(), 4);
    for v in &videos {
        let entry = &meta[&v.video_id];
        assert_eq!(v.label.unwrap().as_str(), entry["label"].as_str().unwrap());
        assert_eq!(v.split.as_deref(), entry["split"].as_str());
        assert_eq!(v.original.as_deref(), entry["original"].as_str());
    }

    // Each fake equals its original away from the face (within codec noise) and differs on it.
    let frames: Vec<FrameRow> = dfd
        .table("decode", "frames")
        .iter()
        .flat_map(|b| FrameRow::from_batch(b).unwrap())
        .collect();
    let detections: Vec<DetectionRow> = dfd
        .table("detect", "detections")
        .iter()
        .flat_map(|b| DetectionRow::from_batch(b).unwrap())
        .collect();
    for (name, entry) in meta.iter().filter(|(_, e)| e["label"] == "FAKE") {
        let original = entry["original"].as_str().unwrap();
        let mut compared = 0;
        for fake_frame in frames.iter().filter(|f| &f.video_id == name) {
            let Some(orig_frame) = frames
                .iter()
                .find(|f| f.video_id == original && f.sample_index == fake_frame.sample_index)
            else {
                continue;
            };
            let Some(face) = detections.iter().find(|d| {
                d.video_id == original
                    && d.sample_index == orig_frame.sample_index
                    && d.face_index == 0
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
        assert!(compared >= 4, "{name}: only {compared} frames compared");
    }
}
