//! `dfd predict` on whatever a shell glob gives it: it never writes into the user's folders, and
//! each argument it cannot use (a second file of one name, a directory, a device, a FIFO, a
//! missing path) gets its own clear answer while the others are predicted.

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
    let mut args: Vec<&str> = vec!["predict", "--json"];
    args.extend(files.iter().map(String::as_str));
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
fn same_names_directories_devices_and_fifos_get_their_own_answers() {
    let (dfd, data) = trained();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("sub")).unwrap();
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
        path("sub"),
        "/dev/null".to_string(),
        path("pipe.mp4"),
        path("missing.mp4"),
    ];
    let (_, report, stderr) = predict(&dfd, &files);
    assert_eq!(
        report["videos"].as_array().map(Vec::len),
        Some(7),
        "{stderr}"
    );
    for name in ["a.mp4", "2-a.mp4", "sub/a.mp4"] {
        let verdict = answer(&report, &path(name))["verdict"].clone();
        assert!(verdict == "REAL" || verdict == "FAKE", "{name}: {report}");
    }
    let error = |file: &str| {
        let a = answer(&report, file);
        assert_eq!(a["verdict"], "error", "{a}");
        a["error"].as_str().unwrap().to_string()
    };
    assert!(error(&path("sub")).contains("a directory"), "{report}");
    assert!(error("/dev/null").contains("device"), "{report}");
    assert!(error(&path("pipe.mp4")).contains("FIFO"), "{report}");
    assert!(
        error(&path("missing.mp4")).contains("no such file"),
        "{report}"
    );
    assert!(!stderr.contains("/tmp/.tmp"), "{stderr}");
}
