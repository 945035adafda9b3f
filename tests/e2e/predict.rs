//! `dfd predict` on whatever a shell glob gives it: it never writes into the user's folders, and
//! each argument it cannot use (a second file of one name, a device, a FIFO, a missing path, a
//! folder without videos) gets its own clear answer while the others are predicted. A folder is
//! walked for its videos, and `--csv` writes the answers as a DFDC submission.

use serde_json::Value;

use dfd_tests::{Dataset, Dfd};

/// A workspace with a MesoNet-4 trained for one epoch on a few frames (a few seconds).
fn trained() -> (Dfd, Dataset) {
    let data = Dataset::new()
        .clip("r1.mp4", "single_face.mp4", "REAL")
        .clip("f1.mp4", "carphone_pristine.mp4", "FAKE")
        .clip("r2.mp4", "single_face.mp4", "REAL")
        .clip("f2.mp4", "carphone_pristine.mp4", "FAKE")
        .write();
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("metadata.json")).unwrap())
            .unwrap();
    for (name, split) in [
        ("r1.mp4", "train"),
        ("f1.mp4", "train"),
        ("r2.mp4", "val"),
        ("f2.mp4", "val"),
    ] {
        meta[name]["split"] = Value::from(split);
    }
    std::fs::write(data.path().join("metadata.json"), meta.to_string()).unwrap();
    let dfd = Dfd::new();
    let mut args = vec!["run", "--dataset", data.path().to_str().unwrap()];
    args.extend(SETTINGS);
    dfd.ok(&args);
    (dfd, data)
}

const SETTINGS: [&str; 10] = [
    "--set",
    "train.models=[\"mesonet4-single\"]",
    "--set",
    "train.epochs=1",
    "--set",
    "train.max_frames_per_video=2",
    "--set",
    "decode.frames_per_video=4",
    "--set",
    "train.batch_size=4",
];

fn predict(dfd: &Dfd, files: &[String]) -> (bool, Value, String) {
    predict_with(dfd, files, &[])
}

/// `dfd predict --json FILES OPTIONS` with the tests' settings: success, the JSON, stderr.
fn predict_with(dfd: &Dfd, files: &[String], options: &[&str]) -> (bool, Value, String) {
    let mut args: Vec<&str> = vec!["predict", "--json"];
    args.extend(files.iter().map(String::as_str));
    args.extend(options);
    args.extend(SETTINGS);
    let out = dfd.output(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

fn answer<'a>(report: &'a Value, video: &str) -> &'a Value {
    report["videos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["video"] == video)
        .unwrap_or_else(|| panic!("no answer for {video}: {report}"))
}

#[test]
fn predict_on_a_glob_of_a_dataset_folder_leaves_it_untouched() {
    let (dfd, data) = trained();
    // `cp -r dataset v; dfd predict v/*`: the glob includes v/metadata.json.
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(data.path())
        .arg(copy.path().join("v"))
        .status()
        .unwrap();
    assert!(status.success());
    let v = copy.path().join("v");
    let before = std::fs::read(v.join("metadata.json")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&v)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    let (_, report, stderr) = predict(&dfd, &files);
    assert_eq!(
        std::fs::read(v.join("metadata.json")).unwrap(),
        before,
        "predict overwrote the user's metadata.json: {stderr}"
    );
    assert_eq!(dfd_tests::tree(&v).len(), 5, "nothing added to the folder");
    for name in ["r1.mp4", "f1.mp4", "r2.mp4", "f2.mp4"] {
        let path = v.join(name).display().to_string();
        let verdict = answer(&report, &path)["verdict"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(verdict == "REAL" || verdict == "FAKE", "{report}");
    }
    let meta = v.join("metadata.json").display().to_string();
    assert_eq!(answer(&report, &meta)["verdict"], "error", "{report}");
}

#[test]
fn same_names_empty_folders_devices_and_fifos_get_their_own_answers() {
    let (dfd, data) = trained();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    std::fs::write(root.join("empty/notes.txt"), "not a video").unwrap();
    for name in ["a.mp4", "2-a.mp4", "sub/a.mp4"] {
        std::fs::copy(data.path().join("r1.mp4"), root.join(name)).unwrap();
    }
    let fifo = root.join("pipe.mp4");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let path = |name: &str| root.join(name).display().to_string();
    let files = vec![
        path("a.mp4"),
        path("2-a.mp4"),
        path("sub/a.mp4"),
        // Walked: its one video is named as the file above, so it is `sub/a.mp4#2`.
        path("sub"),
        path("empty"),
        "/dev/null".to_string(),
        path("pipe.mp4"),
        path("missing.mp4"),
    ];
    let (_, report, stderr) = predict(&dfd, &files);
    assert_eq!(
        report["videos"].as_array().map(Vec::len),
        Some(8),
        "{stderr}"
    );
    for name in ["a.mp4", "2-a.mp4", "sub/a.mp4", "sub/a.mp4#2"] {
        let verdict = answer(&report, &path(name))["verdict"].clone();
        assert!(verdict == "REAL" || verdict == "FAKE", "{name}: {report}");
    }
    let error = |file: &str| {
        let a = answer(&report, file);
        assert_eq!(a["verdict"], "error", "{a}");
        a["error"].as_str().unwrap().to_string()
    };
    assert!(error(&path("empty")).contains("no video files"), "{report}");
    assert!(error("/dev/null").contains("device"), "{report}");
    assert!(error(&path("pipe.mp4")).contains("FIFO"), "{report}");
    assert!(
        error(&path("missing.mp4")).contains("no such file"),
        "{report}"
    );
    assert!(!stderr.contains("/tmp/.tmp"), "{stderr}");
}

#[test]
fn a_folder_is_walked_for_videos_and_its_answers_written_as_csv() {
    let (dfd, data) = trained();
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    std::fs::create_dir_all(videos.join("sub")).unwrap();
    // A comma and quotes in a name must survive the CSV; an upper-case extension still counts.
    let odd = "with, comma \"quoted\".mp4";
    for (from, to) in [
        ("r1.mp4", "r1.mp4"),
        ("f1.mp4", odd),
        ("f2.mp4", "sub/f2.MOV"),
        ("r2.mp4", ".hidden.mp4"),
    ] {
        std::fs::copy(data.path().join(from), videos.join(to)).unwrap();
    }
    std::fs::write(videos.join("notes.txt"), "not a video").unwrap();
    // Random bytes under a video's name: decode fails on it, the others go on.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(videos.join("broken.mp4"), noise).unwrap();
    let before = dfd_tests::tree(&videos);

    let csv = dir.path().join("out.csv");
    let folder = videos.display().to_string();
    let (ok, report, stderr) = predict_with(
        &dfd,
        std::slice::from_ref(&folder),
        &["--csv", csv.to_str().unwrap()],
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("predict: 4/4 videos"), "{stderr}");
    assert_eq!(dfd_tests::tree(&videos), before, "the folder is untouched");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("out.csv.tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");

    let rows = parse_csv(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(
        rows[0],
        [
            "filename",
            "label",
            "verdict",
            "score",
            "frames_used",
            "faces_found",
            "error"
        ]
    );
    let named = |name: &str| videos.join(name).display().to_string();
    // One row per video found, in path order, named as the folder argument joined to it.
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            named("broken.mp4"),
            named("r1.mp4"),
            named("sub/f2.MOV"),
            named(odd),
        ],
        "{rows:?}"
    );
    // The CSV says what the JSON says.
    let json_names: Vec<&str> = report["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["video"].as_str().unwrap())
        .collect();
    assert_eq!(json_names, names);
    for row in &rows[1..] {
        assert_eq!(row.len(), 7, "{row:?}");
        let (label, verdict, score, error) = (&row[1], &row[2], &row[3], &row[6]);
        if row[0] == named("broken.mp4") {
            assert_eq!(verdict, "error", "{row:?}");
            assert!(!error.is_empty(), "{row:?}");
            assert!(label.is_empty() && score.is_empty(), "{row:?}");
        } else {
            let p: f64 = label.parse().unwrap_or_else(|_| panic!("{row:?}"));
            assert!((0.0..=1.0).contains(&p), "{row:?}");
            assert_eq!(label, score);
            assert!(verdict == "REAL" || verdict == "FAKE", "{row:?}");
            assert!(error.is_empty(), "{row:?}");
            let json = answer(&report, &row[0]);
            assert_eq!(json["score"].as_f64(), Some(p), "{json}");
            // Each scored frame with its time, in time order, as many as frames_used.
            let frames = json["frames"].as_array().expect("frames");
            assert_eq!(Some(frames.len()), row[4].parse().ok(), "{json}");
            let times: Vec<f64> = frames
                .iter()
                .map(|f| f["time_s"].as_f64().unwrap())
                .collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        }
    }
}

#[test]
fn a_csv_is_only_written_once_every_video_is_predicted() {
    let (dfd, data) = trained();
    let dir = tempfile::tempdir().unwrap();
    let clip = data.path().join("r1.mp4").display().to_string();
    // A path mistake is refused before any video is predicted.
    let missing = dir.path().join("no/such/folder/out.csv");
    let (ok, _, stderr) = predict_with(
        &dfd,
        std::slice::from_ref(&clip),
        &["--csv", missing.to_str().unwrap()],
    );
    assert!(!ok && stderr.contains("--csv"), "{stderr}");
    assert!(!stderr.contains("predict: "), "nothing predicted: {stderr}");
    // A failure before any prediction (no such model) creates nothing.
    let csv = dir.path().join("out.csv");
    let (ok, _, stderr) = predict_with(
        &dfd,
        std::slice::from_ref(&clip),
        &["--csv", csv.to_str().unwrap(), "--model", "no-such-model"],
    );
    assert!(!ok && stderr.contains("no-such-model"), "{stderr}");
    assert_eq!(dfd_tests::tree(dir.path()).len(), 0, "{stderr}");
    // More videos than one chunk: every one answered, each under its own name, in order.
    let files: Vec<String> = std::iter::repeat_n(clip.clone(), 9).collect();
    let (ok, report, stderr) = predict_with(&dfd, &files, &["--csv", csv.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("predict: 8/9 videos"), "{stderr}");
    assert!(stderr.contains("predict: 9/9 videos"), "{stderr}");
    let rows = parse_csv(&std::fs::read_to_string(&csv).unwrap());
    let names: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    let expected: Vec<String> = (1..=9)
        .map(|n| match n {
            1 => clip.clone(),
            n => format!("{clip}#{n}"),
        })
        .collect();
    assert_eq!(names, expected);
    // The same file gives the same answer in either chunk (to rounding: a chunk of one video
    // may be scored in other batch sizes than a chunk of eight).
    let scores: Vec<f64> = rows[1..]
        .iter()
        .map(|r| r[1].parse().unwrap_or_else(|_| panic!("{r:?}")))
        .collect();
    assert!(
        scores.iter().all(|s| (s - scores[0]).abs() < 1e-5),
        "{rows:?}"
    );
    assert_eq!(report["videos"].as_array().map(Vec::len), Some(9));
    assert_eq!(dfd_tests::tree(dir.path()), ["out.csv"]);
}

/// Rows of an RFC 4180 CSV: fields split on commas outside double quotes, `""` inside quotes
/// read as one quote, rows ended by a line break outside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Width and height of the PNG at `path`, decoded whole (a truncated file fails).
fn png_dims(path: &str) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{path} is not a PNG: {e}"));
    (image.width(), image.height())
}

#[test]
fn explain_writes_each_verdicts_timeline_and_the_saliency_of_its_deciding_frames() {
    let (dfd, data) = trained();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("why");
    let files: Vec<String> = ["f1.mp4", "r1.mp4"]
        .iter()
        .map(|v| data.path().join(v).display().to_string())
        .collect();
    let (ok, report, stderr) = predict_with(&dfd, &files, &["--explain", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    for file in &files {
        let answer = answer(&report, file);
        let verdict = answer["verdict"].as_str().unwrap();
        assert!(verdict == "FAKE" || verdict == "REAL", "{answer}");
        let explanation = &answer["explanation"];
        let timeline = explanation["timeline"].as_str().expect("a timeline path");
        assert!(timeline.starts_with(dir.to_str().unwrap()), "{timeline}");
        let (w, h) = png_dims(timeline);
        assert!(w >= 640 && h >= 320, "timeline {w}x{h}");
        // The deciding frames: the scored frames pushing hardest toward the verdict.
        let scores: Vec<(u64, f64)> = answer["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["frame_index"].as_u64().unwrap(),
                    f["score"].as_f64().unwrap(),
                )
            })
            .collect();
        let saliency = explanation["saliency"].as_array().expect("saliency files");
        assert!(
            explanation.get("saliency_unavailable").is_none(),
            "{explanation}"
        );
        assert_eq!(saliency.len(), scores.len().min(3), "{explanation}");
        let chosen: Vec<u64> = saliency
            .iter()
            .map(|s| s["frame_index"].as_u64().unwrap())
            .collect();
        for s in saliency {
            let path = s["path"].as_str().unwrap();
            assert_eq!(png_dims(path), (224, 224), "{path}");
            let score = s["score"].as_f64().unwrap();
            for (frame, other) in &scores {
                if !chosen.contains(frame) {
                    let toward = if verdict == "FAKE" {
                        score >= *other
                    } else {
                        score <= *other
                    };
                    assert!(toward, "frame {frame} ({other}) decides more than {s}");
                }
            }
        }
    }
    // The text answer lists the same evidence under each video.
    let mut args: Vec<&str> = vec!["predict", "--explain", dir.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    args.extend(SETTINGS);
    let text = dfd.ok(&args);
    assert!(text.contains("frame scores: "), "{text}");
    assert!(text.contains("saliency of frame "), "{text}");
}

/// Models of an older `train` stage are not used: version 3 stored no weights for Grad-CAM, and
/// version 2 took other pixel values.
#[test]
fn models_of_an_older_train_stage_are_refused_with_the_way_out() {
    let (dfd, data) = trained();
    let train = dfd.workspace.path().join("cache").join("train");
    let mut rewritten = 0;
    for entry in std::fs::read_dir(&train).unwrap() {
        let manifest = entry.unwrap().path().join("_manifest.json");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let older = text.replacen("\"version\": 4", "\"version\": 3", 1);
            assert_ne!(
                older,
                text,
                "{} holds the train version",
                manifest.display()
            );
            std::fs::write(&manifest, older).unwrap();
            rewritten += 1;
        }
    }
    assert!(rewritten > 0, "no train output in {}", train.display());
    let file = data.path().join("f1.mp4").display().to_string();
    let (ok, _, stderr) = predict(&dfd, &[file]);
    assert!(!ok, "predicted with version-3 models");
    assert!(
        stderr.contains("version 3 of the `train` stage") && stderr.contains("dfd run"),
        "{stderr}"
    );
}
