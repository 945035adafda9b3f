//! `dfd inspect` and `dfd status` show what is on disk, as text and as JSON, and the Parquet files are
//! ordinary ones any reader opens.

use dfd_tests::{Dataset, Dfd};

fn run_two_clips() -> (Dataset, Dfd) {
    let data = Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .clip("short.mp4", "carphone_pristine.mp4", "FAKE")
        .write();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    (data, dfd)
}

#[test]
fn inspect_shows_schema_stats_and_images_as_sizes() {
    let (_data, dfd) = run_two_clips();
    let text = dfd.ok(&["inspect", "decode", "--table", "frames", "--head", "2"]);
    assert!(text.contains("frames: 28 rows"), "{text}");
    // The default keeps a preview of each frame (this clip is smaller than a preview's bound).
    assert!(text.contains("image=176x144 jpeg"), "{text}");
    assert!(text.contains("pts_ms"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&dfd.ok(&["inspect", "decode", "--json"])).unwrap();
    let tables = json["tables"].as_array().unwrap();
    let frames = tables.iter().find(|t| t["name"] == "frames").unwrap();
    assert_eq!(frames["rows"], 28);
    let width = frames["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "width")
        .unwrap();
    assert_eq!(width["min"], "176");
    assert_eq!(width["max"], "640");
    assert_eq!(width["nulls"], 0);
    assert_eq!(frames["head"]["rows"].as_array().unwrap().len(), 5);

    // A file path works too.
    let file = frames["files"][0].as_str().unwrap().to_string();
    let text = dfd.ok(&["inspect", &file, "--head", "1"]);
    assert!(text.contains("28 rows"), "{text}");
}

#[test]
fn status_reports_fresh_stages_with_rows_and_bytes() {
    let (data, dfd) = run_two_clips();
    let dataset = data.path().to_str().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&dfd.ok(&["status", "--dataset", dataset, "--json"])).unwrap();
    let stages = json.as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ingest",
            "decode",
            "detect",
            "crop",
            "ssim",
            "cues",
            "augment",
            "train",
            "score",
            "aggregate",
            "report"
        ]
    );
    for stage in stages {
        assert_eq!(stage["state"], "fresh", "{stage}");
    }
    assert_eq!(stages[1]["tables"]["frames"]["rows"], 28);
    assert!(stages[1]["tables"]["frames"]["bytes"].as_u64().unwrap() > 100_000);

    let fresh_workspace = Dfd::new();
    let json: serde_json::Value =
        serde_json::from_str(&fresh_workspace.ok(&["status", "--dataset", dataset, "--json"]))
            .unwrap();
    for stage in json.as_array().unwrap() {
        assert_eq!(stage["state"], "missing", "{stage}");
    }
}

#[test]
fn dag_lists_stages_and_edges() {
    let dfd = Dfd::new();
    let mermaid = dfd.ok(&["dag", "--format", "mermaid"]);
    assert!(mermaid.contains("ingest -->|videos| decode"), "{mermaid}");
    assert!(mermaid.contains("detect -->|detections| crop"), "{mermaid}");
    assert!(mermaid.contains("decode -->|frames| crop"), "{mermaid}");
    let dot = dfd.ok(&["dag", "--format", "dot"]);
    assert!(dot.contains("ingest -> decode"), "{dot}");
    assert!(mermaid.contains("train -->|models| score"), "{mermaid}");
    assert!(
        mermaid.contains("score -->|frame_scores| aggregate"),
        "{mermaid}"
    );
}
