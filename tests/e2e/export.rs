//! `dfd export faces`: the cached face crops, byte for byte, in the class folders Keras's
//! `flow_from_directory` and torchvision's `ImageFolder` read, with their SSIM maps in a tree of
//! their own and a `metadata.csv` a row per face; refused into a folder that holds anything, and
//! from a workspace without the stage it needs, naming that stage.
//!
//! One workspace serves every export of the first test: preprocessing is what costs, and every
//! export only reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dfd_schemas::{FaceRow, Label, SsimMapRow, SsimStatsRow, TableRow, VideoRow};
use dfd_tests::{media, tree, Dataset, Dfd};

/// Four frames a video keep the run short; every video below has a face in them.
const SETTINGS: [&str; 2] = ["--set", "decode.frames_per_video=4"];

/// The id of the video whose name needs making safe (a folder, a comma, a space) and quoting.
const ODD: &str = "clips/odd, name.mp4";
/// Its file-name form: `/`, `,` and ` ` percent-encoded.
const ODD_SAFE: &str = "clips%2Fodd%2C%20name.mp4";

/// Six labelled videos, both classes in train, one of each class in val and test, and one video
/// metadata.json does not list (no label, no split).
fn dataset() -> Dataset {
    let data = Dataset::new();
    std::fs::create_dir(data.path().join("clips")).unwrap();
    std::fs::copy(media("single_face.mp4"), data.path().join("loose.mp4")).unwrap();
    let listed = [
        ("real.mp4", "single_face.mp4", "REAL", "train"),
        ("fake.mp4", "carphone_pristine.mp4", "FAKE", "train"),
        (ODD, "single_face.mp4", "REAL", "val"),
        ("val_fake.mov", "bob-test_h264.mov", "FAKE", "val"),
        ("test_real.mp4", "bob-test_h264.mov", "REAL", "test"),
        ("test_fake.mp4", "carphone_pristine.mp4", "FAKE", "test"),
    ];
    let mut data = data;
    for (name, source, label, split) in listed {
        data = data
            .clip(name, source, label)
            .entry(name, serde_json::json!({ "label": label, "split": split }));
    }
    data.write()
}

fn run_until(dfd: &Dfd, data: &Dataset, stage: &str) {
    let mut args = vec![
        "run",
        "--dataset",
        data.path().to_str().unwrap(),
        "--until",
        stage,
    ];
    args.extend(SETTINGS);
    dfd.ok(&args);
}

/// `dfd export faces DIR EXTRA...`; returns (success, stdout, stderr).
fn export(dfd: &Dfd, dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["export", "faces", dir.to_str().unwrap()];
    args.extend(extra);
    let out = dfd.output(&args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file's path in an export, as the documentation says it is made.
fn face_path(video: &VideoRow, frame_index: u64) -> String {
    let split = video.split.as_deref().unwrap_or("unsplit");
    let label = video.label.map(Label::as_str).unwrap_or("unlabelled");
    let name = if video.video_id == ODD {
        ODD_SAFE
    } else {
        video.video_id.as_str()
    };
    format!("{split}/{label}/{name}_{frame_index:06}.png")
}

/// RFC 4180 fields, as a CSV reader takes them (quoted fields may hold `,`, `"` and newlines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last line ends in \\n"
    );
    rows
}

/// `metadata.csv` of an export as (header, rows keyed by path).
fn metadata(dir: &Path) -> (Vec<String>, BTreeMap<String, BTreeMap<String, String>>) {
    let text = std::fs::read_to_string(dir.join("metadata.csv")).unwrap();
    let mut rows = parse_csv(&text).into_iter();
    let header = rows.next().expect("a header");
    let by_path = rows
        .map(|row| {
            assert_eq!(row.len(), header.len(), "{row:?}");
            let named: BTreeMap<String, String> = header.iter().cloned().zip(row).collect();
            (named["path"].clone(), named)
        })
        .collect();
    (header, by_path)
}

/// Nothing but DIR itself beside it: no `DIR.partial-<pid>` left behind.
fn no_partial_beside(dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let leftovers: Vec<String> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.partial")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn faces_and_ssim_maps_go_to_class_folders_byte_for_byte() {
    let data = dataset();
    let dfd = Dfd::new();
    let out = tempfile::tempdir().unwrap();

    // With the crops cached but not the SSIM: a plain export works (SSIM columns empty, and
    // said), one that wants the maps names the stage missing and the run that makes it.
    run_until(&dfd, &data, "crop");
    let plain = out.path().join("plain");
    let (ok, _, stderr) = export(&dfd, &plain, &[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("ssim"),
        "the empty SSIM columns are explained: {stderr}"
    );
    let (_, rows) = metadata(&plain);
    assert!(!rows.is_empty());
    assert!(rows
        .values()
        .all(|r| r["ssim_mean"].is_empty() && r["ssim_path"].is_empty()));
    let wanted = out.path().join("wanted");
    let (ok, _, stderr) = export(&dfd, &wanted, &["--with-ssim"]);
    assert!(!ok);
    assert!(stderr.contains("`ssim`"), "{stderr}");
    assert!(stderr.contains("dfd run --until ssim"), "{stderr}");
    assert!(!wanted.exists());
    no_partial_beside(&wanted);

    run_until(&dfd, &data, "ssim");
    let videos: BTreeMap<String, VideoRow> = dfd
        .rows("ingest", "videos", VideoRow::from_batch)
        .into_iter()
        .map(|v| (v.video_id.clone(), v))
        .collect();
    let faces: Vec<FaceRow> = dfd.rows("crop", "faces", FaceRow::from_batch);
    let maps: Vec<SsimMapRow> = dfd.rows("ssim", "ssim_maps", SsimMapRow::from_batch);
    let stats: BTreeMap<String, SsimStatsRow> = dfd
        .rows("ssim", "ssim_stats", SsimStatsRow::from_batch)
        .into_iter()
        .map(|s| (s.video_id.clone(), s))
        .collect();
    let with_face: BTreeSet<&str> = faces.iter().map(|f| f.video_id.as_str()).collect();
    assert_eq!(with_face.len(), 7, "every video has faces: {with_face:?}");

    let all = out.path().join("all");
    let (ok, stdout, stderr) = export(&dfd, &all, &["--with-ssim"]);
    assert!(ok, "{stderr}");
    no_partial_beside(&all);

    // The layout: a PNG per face row, the map of face P at ssim/P, and the list.
    let mut face_of: BTreeMap<(String, u32), String> = BTreeMap::new();
    let mut expected = BTreeSet::from(["metadata.csv".to_string()]);
    for face in &faces {
        let path = face_path(&videos[&face.video_id], face.frame_index);
        assert_eq!(
            std::fs::read(all.join(&path)).unwrap(),
            face.image,
            "{path}"
        );
        let png = image::load_from_memory_with_format(&face.image, image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!((png.width(), png.height()), (224, 224), "{path}");
        assert_eq!(png.color(), image::ColorType::Rgb8, "{path}");
        face_of.insert((face.video_id.clone(), face.sample_index), path.clone());
        expected.insert(path);
    }
    assert_eq!(
        expected.len(),
        faces.len() + 1,
        "one file per face, no name shared"
    );
    for map in &maps {
        let path = format!(
            "ssim/{}",
            face_of[&(map.video_id.clone(), map.sample_index)]
        );
        assert_eq!(std::fs::read(all.join(&path)).unwrap(), map.map, "{path}");
        expected.insert(path);
    }
    assert!(!maps.is_empty());
    let written: BTreeSet<String> = tree(&all).into_iter().collect();
    assert_eq!(written, expected);
    assert!(written.contains(&format!("val/REAL/{ODD_SAFE}_000000.png")));
    assert!(written
        .iter()
        .any(|p| p.starts_with("unsplit/unlabelled/loose.mp4_")));
    assert!(
        stdout.starts_with(&format!("exported {} faces to ", faces.len())),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for class in [
        "train",
        "val",
        "test",
        "unsplit",
        "REAL",
        "FAKE",
        "unlabelled",
    ] {
        assert!(stdout.contains(class), "{class} in {stdout}");
    }

    // metadata.csv: a row per face, with its video, frame, split, label and SSIM.
    let (header, rows) = metadata(&all);
    assert_eq!(
        header,
        [
            "path",
            "video",
            "frame",
            "split",
            "label",
            "ssim_mean",
            "ssim_variance",
            "ssim_path"
        ]
    );
    assert_eq!(rows.len(), faces.len());
    for face in &faces {
        let video = &videos[&face.video_id];
        let path = face_path(video, face.frame_index);
        let row = &rows[&path];
        assert_eq!(row["video"], face.video_id);
        assert_eq!(row["frame"], face.frame_index.to_string());
        assert_eq!(row["split"], video.split.clone().unwrap_or_default());
        assert_eq!(
            row["label"],
            video.label.map(Label::as_str).unwrap_or_default()
        );
        let stat = &stats[&face.video_id];
        let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        assert_eq!(row["ssim_mean"], number(stat.mean), "{path}");
        assert_eq!(row["ssim_variance"], number(stat.variance), "{path}");
        if !row["ssim_path"].is_empty() {
            assert_eq!(row["ssim_path"], format!("ssim/{path}"));
        }
    }
    let with_map = rows.values().filter(|r| !r["ssim_path"].is_empty()).count();
    assert_eq!(with_map, maps.len());
    let text = std::fs::read_to_string(all.join("metadata.csv")).unwrap();
    assert!(text.contains(&format!(",\"{ODD}\",")), "the id is quoted");

    // --split keeps those splits (`unsplit` names the videos without one); a split the dataset
    // lacks is an error naming it.
    let some = out.path().join("some");
    let (ok, _, stderr) = export(&dfd, &some, &["--split", "val", "--split", "unsplit"]);
    assert!(ok, "{stderr}");
    let kept: BTreeSet<String> = tree(&some).into_iter().collect();
    let expected_kept: BTreeSet<String> = expected
        .iter()
        .filter(|p| p.starts_with("val/") || p.starts_with("unsplit/") || *p == "metadata.csv")
        .cloned()
        .collect();
    assert_eq!(kept, expected_kept);
    let (_, rows) = metadata(&some);
    assert!(rows
        .values()
        .all(|r| r["split"] == "val" || r["split"].is_empty()));
    assert_eq!(rows.len(), kept.len() - 1);
    let typo = out.path().join("typo");
    let (ok, _, stderr) = export(&dfd, &typo, &["--split", "tset"]);
    assert!(!ok);
    assert!(stderr.contains("--split tset"), "{stderr}");
    assert!(!typo.exists());

    // Into a folder that holds anything: refused, naming it, and the folder left as it was.
    let busy = out.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let (ok, _, stderr) = export(&dfd, &busy, &[]);
    assert!(!ok);
    assert!(stderr.contains(busy.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(tree(&busy), ["notes.txt"]);
    // An empty one is fine.
    let empty = out.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, stderr) = export(&dfd, &empty, &["--split", "test"]);
    assert!(ok, "{stderr}");
    assert!(tree(&empty)
        .iter()
        .all(|p| p.starts_with("test/") || p == "metadata.csv"));
}

#[test]
fn an_empty_workspace_names_the_stage_to_run() {
    let dfd = Dfd::new();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("faces");
    let (ok, _, stderr) = export(&dfd, &dir, &[]);
    assert!(!ok);
    assert!(stderr.contains("stage `crop`"), "{stderr}");
    assert!(stderr.contains("dfd run --until crop"), "{stderr}");
    let (ok, _, stderr) = export(&dfd, &dir, &["--with-ssim"]);
    assert!(!ok);
    assert!(stderr.contains("dfd run --until ssim"), "{stderr}");
    assert!(tree(out.path()).is_empty(), "nothing written");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none());
}
