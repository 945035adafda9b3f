//! The face stages end to end on real clips: detect finds the talking head in every sampled frame and
//! nothing in a clip without a face, crop stores 224x224 PNGs in true colour order, ssim pairs frames
//! in time order and gives a clear null for a video with a single face frame.

use dfd_schemas::{
    DetectionRow, FaceMissRow, FaceRow, FrameRow, SsimMapRow, SsimStatsRow, TableRow,
};
use dfd_tests::{ffmpeg, media, Dataset, Dfd};

fn rows<T>(
    dfd: &Dfd,
    stage: &str,
    table: &str,
    read: fn(&arrow::record_batch::RecordBatch) -> Result<Vec<T>, dfd_schemas::SchemaError>,
) -> Vec<T> {
    dfd.table(stage, table)
        .iter()
        .flat_map(|b| read(b).unwrap())
        .collect()
}

fn run(extra: &[&str]) -> (Dataset, Dfd) {
    let data = Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .clip("empty_room.mp4", "no_face.mp4", "REAL")
        .write();
    let dfd = Dfd::new();
    let mut args = extra.to_vec();
    args.extend(["run", "--dataset", data.path().to_str().unwrap()]);
    dfd.ok(&args);
    (data, dfd)
}

#[test]
fn faces_in_every_frame_of_a_talking_head_and_none_in_an_empty_room() {
    let (_data, dfd) = run(&[]);
    let frames = rows(&dfd, "decode", "frames", FrameRow::from_batch);
    let detections = rows(&dfd, "detect", "detections", DetectionRow::from_batch);
    let talking_frames = frames
        .iter()
        .filter(|f| f.video_id == "talking.mp4")
        .count();
    assert_eq!(talking_frames, 20);
    for sample in 0..20u32 {
        let best = detections
            .iter()
            .filter(|d| d.video_id == "talking.mp4" && d.sample_index == sample)
            .map(|d| d.confidence)
            .fold(0.0f32, f32::max);
        assert!(best > 0.9, "no confident face in frame {sample}");
    }
    assert!(
        !detections
            .iter()
            .any(|d| d.video_id == "empty_room.mp4" && d.confidence > 0.9),
        "a confident face in a clip without faces"
    );

    let faces = rows(&dfd, "crop", "faces", FaceRow::from_batch);
    let misses = rows(&dfd, "crop", "frames_without_face", FaceMissRow::from_batch);
    assert_eq!(
        faces.iter().filter(|f| f.video_id == "talking.mp4").count(),
        20
    );
    let empty_frames = frames
        .iter()
        .filter(|f| f.video_id == "empty_room.mp4")
        .count();
    let empty_faces = faces
        .iter()
        .filter(|f| f.video_id == "empty_room.mp4")
        .count();
    let empty_misses = misses
        .iter()
        .filter(|m| m.video_id == "empty_room.mp4")
        .count();
    assert_eq!(
        empty_faces + empty_misses,
        empty_frames,
        "every frame is a face or a miss"
    );

    let text = dfd.ok(&["inspect", "faces", "--head", "1"]);
    assert!(text.contains("== faces: 20 rows"), "{text}");
    assert!(text.contains("image=224x224 png"), "{text}");
    // The image column's type by its Hugging Face name, not Arrow's spelling of the struct.
    assert!(
        text.lines()
            .any(|l| l.starts_with("image ") && l.contains(" Image?")),
        "{text}"
    );
    assert!(
        !text.contains("frames_without_face"),
        "only the table asked for: {text}"
    );
}

#[test]
fn crops_are_224_pngs_in_true_colour_order() {
    let (_data, dfd) = run(&[
        "--set",
        "decode.frames_per_video=3",
        "--set",
        "decode.keep_frames=full",
    ]);
    let frames = rows(&dfd, "decode", "frames", FrameRow::from_batch);
    let faces = rows(&dfd, "crop", "faces", FaceRow::from_batch);
    let face = faces.iter().find(|f| f.video_id == "talking.mp4").unwrap();
    let crop = image::load_from_memory_with_format(&face.image, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert_eq!(crop.dimensions(), (224, 224));
    let frame = frames
        .iter()
        .find(|f| f.video_id == face.video_id && f.sample_index == face.sample_index)
        .unwrap();
    let frame = image::load_from_memory(&frame.image).unwrap().to_rgb8();
    // Mean colour of the region in the source frame against the mean colour of the crop: resizing
    // keeps means; a red/blue swap would not (skin is far redder than it is blue).
    let mean = |pixels: &mut dyn Iterator<Item = [u8; 3]>| {
        let (mut sum, mut n) = ([0f64; 3], 0f64);
        for p in pixels {
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
            n += 1.0;
        }
        sum.map(|s| s / n)
    };
    let source = mean(&mut (face.y..face.y + face.height).flat_map(|y| {
        let frame = &frame;
        (face.x..face.x + face.width).map(move |x| frame.get_pixel(x, y).0)
    }));
    let cropped = mean(&mut crop.pixels().map(|p| p.0));
    for c in 0..3 {
        assert!(
            (source[c] - cropped[c]).abs() < 3.0,
            "channel {c}: {source:?} vs {cropped:?}"
        );
    }
    assert!(
        cropped[0] > cropped[2] + 20.0,
        "skin should be redder than blue: {cropped:?}"
    );
}

#[test]
fn ssim_pairs_neighbours_in_time_and_nulls_single_frame_videos() {
    let (_data, dfd) = run(&[]);
    let maps = rows(&dfd, "ssim", "ssim_maps", SsimMapRow::from_batch);
    let talking: Vec<&SsimMapRow> = maps
        .iter()
        .filter(|m| m.video_id == "talking.mp4")
        .collect();
    assert_eq!(talking.len(), 20);
    assert_eq!(talking[0].compared_with, 1);
    for (i, map) in talking.iter().enumerate().skip(1) {
        assert_eq!(map.sample_index as usize, i);
        assert_eq!(map.compared_with as usize, i - 1);
        assert!(map.score > 0.0 && map.score <= 1.0);
        assert!(map.map_min <= map.map_max);
        let png = image::load_from_memory(&map.map).unwrap();
        assert_eq!((png.width(), png.height()), (224, 224));
    }
    assert_eq!(
        talking[0].score, talking[1].score,
        "frame 0 and 1 are the same pair"
    );
    let stats = rows(&dfd, "ssim", "ssim_stats", SsimStatsRow::from_batch);
    let talking_stats = stats.iter().find(|s| s.video_id == "talking.mp4").unwrap();
    let scores: Vec<f64> = talking.iter().map(|m| m.score).collect();
    let mean = scores.iter().sum::<f64>() / 20.0;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / 20.0;
    assert!((talking_stats.mean.unwrap() - mean).abs() < 1e-12);
    assert!((talking_stats.variance.unwrap() - var).abs() < 1e-12);
    assert_eq!(talking_stats.frames, 20);

    let (_data, single) = run(&["--set", "decode.frames_per_video=1"]);
    let stats = rows(&single, "ssim", "ssim_stats", SsimStatsRow::from_batch);
    let one = stats.iter().find(|s| s.video_id == "talking.mp4").unwrap();
    assert_eq!((one.frames, one.mean, one.variance), (1, None, None));
}

/// Detections do not depend on how many threads a detector has: one, two, or what the stage gives
/// a shard of one video by default (every worker thread, here 3), on a 640x360 clip and on a
/// 1080p one (the downscaled-copy path, more pyramid levels than workers). Same rows, same bytes.
#[test]
fn detections_are_the_same_whatever_the_thread_count() {
    let data = Dataset::new();
    let big = data.path().join("big.mp4");
    let source = media("WolfgangLanger_Pexels.mp4");
    ffmpeg(&[
        "-i",
        source.to_str().unwrap(),
        "-t",
        "2",
        "-vf",
        "scale=1920:1080",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-an",
        big.to_str().unwrap(),
    ]);
    let data = data
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .entry("big.mp4", serde_json::json!({ "label": "REAL" }))
        .write();
    let detect = |settings: &[&str]| {
        let dfd = Dfd::new();
        let mut args = vec![
            "--set",
            "decode.frames_per_video=6",
            "--set",
            "runner.videos_per_shard=1",
        ];
        args.extend(settings);
        args.extend([
            "run",
            "--dataset",
            data.path().to_str().unwrap(),
            "--until",
            "detect",
        ]);
        let out = dfd
            .command(&args)
            .env("RUST_LOG", "warn,dfd_stages::detect=debug")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "dfd {args:?} failed:\n{log}");
        let manifest = dfd.manifest("detect");
        let rows = format!(
            "{:?}",
            rows(&dfd, "detect", "detections", DetectionRow::from_batch)
        );
        (manifest, rows, log)
    };
    let (one, one_rows, one_log) = detect(&["--set", "detect.intra_op_threads=1"]);
    assert!(
        one_log.contains("1 detector(s) of 1 thread(s) each"),
        "{one_log}"
    );
    assert!(one_rows.contains("big.mp4") && one_rows.contains("talking.mp4"));
    // One detector of two threads per video, and (runner.threads 3, intra_op_threads 0) three
    // single-threaded detectors each taking a run of one video's frames.
    for (settings, split) in [
        (
            &["--set", "detect.intra_op_threads=2"][..],
            "1 detector(s) of 2",
        ),
        (&["--set", "runner.threads=3"][..], "3 detector(s) of 1"),
    ] {
        let (other, other_rows, log) = detect(settings);
        assert!(
            log.contains(&format!("1 video(s) in this call, {split} thread(s) each")),
            "{settings:?}: {log}"
        );
        assert_eq!(other["fingerprint"], one["fingerprint"], "{settings:?}");
        assert_eq!(other_rows, one_rows, "{settings:?}");
        assert_eq!(other["content_hash"], one["content_hash"], "{settings:?}");
    }
}
