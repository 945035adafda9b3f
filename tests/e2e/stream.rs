//! decode, detect, crop and ssim in one pass per video: the frames table keeps previews by
//! default, and nothing after it changes; a stage run later on its own decodes the frames it
//! needs from the videos again.

use dfd_schemas::{FrameEncoding, FrameRow, TableRow};
use dfd_tests::{Dataset, Dfd};

/// The tables after decode whose bytes must not depend on how frames were kept or passed (those
/// of detect and crop first).
const LATER: [(&str, &str); 5] = [
    ("detect", "detections"),
    ("crop", "faces"),
    ("crop", "frames_without_face"),
    ("ssim", "ssim_maps"),
    ("ssim", "ssim_stats"),
];

fn two_clips() -> Dataset {
    Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .clip("short.mp4", "single_face.mp4", "FAKE")
        .write()
}

fn run_until_ssim(dfd: &Dfd, data: &Dataset, settings: &[&str], flags: &[&str]) -> String {
    let mut args = settings.to_vec();
    args.extend(["run", "--dataset", data.path().to_str().unwrap()]);
    args.extend(["--until", "ssim"]);
    args.extend_from_slice(flags);
    dfd.ok(&args)
}

/// The sha256 of every file of one table of a stage's newest output, in shard order.
fn table_files(dfd: &Dfd, stage: &str, table: &str) -> Vec<String> {
    let manifest = dfd.manifest(stage);
    manifest["shards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["files"].as_array().unwrap().iter())
        .filter(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{table}/"))
        })
        .map(|f| f["sha256"].as_str().unwrap().to_string())
        .collect()
}

fn table_bytes(dfd: &Dfd, stage: &str, table: &str) -> u64 {
    dfd.stage_report(stage)["tables"][table]["bytes"]
        .as_u64()
        .unwrap()
}

#[test]
fn frames_are_previews_by_default_and_the_later_tables_are_the_same_bytes() {
    let data = two_clips();
    let preview = Dfd::new();
    run_until_ssim(&preview, &data, &[], &[]);
    // Full frames, and one video at a time through the pass instead of one per worker: neither
    // may change a byte after decode.
    let full = Dfd::new();
    let settings = [
        "--set",
        "decode.keep_frames=full",
        "--set",
        "runner.stream_videos=1",
    ];
    run_until_ssim(&full, &data, &settings, &[]);

    let frames: Vec<FrameRow> = preview.rows("decode", "frames", FrameRow::from_batch);
    let talking: Vec<&FrameRow> = frames
        .iter()
        .filter(|f| f.video_id == "talking.mp4")
        .collect();
    assert_eq!(talking.len(), 20);
    for frame in &talking {
        assert_eq!(frame.encoding, FrameEncoding::Preview);
        assert_eq!(
            (frame.width, frame.height),
            (640, 360),
            "the frame's own size"
        );
        assert!(
            frame.image.starts_with(&[0xFF, 0xD8, 0xFF]),
            "a preview is a JPEG"
        );
        let shown = imagesize::blob_size(&frame.image).expect("a JPEG header");
        assert_eq!((shown.width, shown.height), (256, 144));
    }
    let full_frames: Vec<FrameRow> = full.rows("decode", "frames", FrameRow::from_batch);
    assert!(full_frames.iter().all(|f| f.encoding == FrameEncoding::Png));
    let (small, large) = (
        table_bytes(&preview, "decode", "frames"),
        table_bytes(&full, "decode", "frames"),
    );
    assert!(
        small * 10 < large,
        "previews {small} bytes, full frames {large}"
    );

    for (stage, table) in LATER {
        assert_eq!(
            table_files(&preview, stage, table),
            table_files(&full, stage, table),
            "{stage}/{table}"
        );
    }
}

#[test]
fn a_stage_run_on_its_own_decodes_its_frames_from_the_videos_again() {
    let data = two_clips();
    let dfd = Dfd::new();
    run_until_ssim(&dfd, &data, &[], &[]);
    let before: Vec<Vec<String>> = LATER
        .iter()
        .map(|(stage, table)| table_files(&dfd, stage, table))
        .collect();

    // --only: the stage alone, its frames decoded again in memory.
    for stage in ["detect", "crop"] {
        dfd.ok(&[
            "run",
            "--dataset",
            data.path().to_str().unwrap(),
            "--only",
            stage,
        ]);
        assert_eq!(dfd.outcome(stage), "computed");
        assert_eq!(dfd.outcome("decode"), "cached");
    }
    for ((stage, table), files) in LATER.iter().zip(&before).take(3) {
        assert_eq!(&table_files(&dfd, stage, table), files, "{stage}/{table}");
    }

    // A crop setting changed: crop (frames decoded again) and ssim after it, in one pass; the
    // same bytes as a workspace that computes everything from scratch with that setting.
    let margin = ["--set", "crop.margin=0.2"];
    let out = run_until_ssim(&dfd, &data, &margin, &[]);
    assert_eq!(dfd.outcome("decode"), "cached", "{out}");
    assert_eq!(dfd.outcome("detect"), "cached", "{out}");
    assert_eq!(dfd.outcome("crop"), "computed", "{out}");
    assert_eq!(dfd.outcome("ssim"), "computed", "{out}");
    let fresh = Dfd::new();
    run_until_ssim(&fresh, &data, &margin, &[]);
    for (stage, table) in LATER {
        assert_eq!(
            table_files(&dfd, stage, table),
            table_files(&fresh, stage, table),
            "{stage}/{table}"
        );
    }
}
