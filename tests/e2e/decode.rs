//! `decode` on real clips: sampling times, short clips, variable frame rate, odd sizes, and colours
//! in their true order (checked against ffmpeg's own decode of the same frame).

use dfd_schemas::{DecodedVideoRow, FrameRow, TableRow};
use dfd_tests::{ffmpeg, media, Dataset, Dfd};

/// A run that keeps the full frames (lossless PNG), whose pixels the tests check.
fn decode(data: &Dataset, extra: &[&str]) -> (Vec<FrameRow>, Vec<DecodedVideoRow>) {
    let dfd = Dfd::new();
    let mut args: Vec<&str> = vec!["--set", "decode.keep_frames=full"];
    args.extend_from_slice(extra);
    args.extend(["run", "--dataset", data.path().to_str().unwrap()]);
    dfd.ok(&args);
    let frames = dfd.rows("decode", "frames", FrameRow::from_batch);
    let videos = dfd.rows("decode", "decoded_videos", DecodedVideoRow::from_batch);
    (frames, videos)
}

fn png_rgb(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .expect("frames are PNG")
        .to_rgb8()
}

#[test]
fn twenty_frames_half_a_second_apart_in_time_order() {
    let data = Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .write();
    let (frames, videos) = decode(&data, &[]);
    assert_eq!(frames.len(), 20);
    let frame_period = 1000.0 / 23.976;
    for (k, frame) in frames.iter().enumerate() {
        assert_eq!(frame.sample_index as usize, k);
        let target = k as f64 * 500.0;
        assert!(
            (frame.pts_ms - target).abs() <= frame_period / 2.0 + 1e-6,
            "frame {k} at {} ms, wanted {target}",
            frame.pts_ms
        );
        assert_eq!((frame.width, frame.height), (640, 360));
        let image = png_rgb(&frame.image);
        assert_eq!(image.dimensions(), (640, 360));
    }
    assert!(frames
        .windows(2)
        .all(|w| w[0].frame_index < w[1].frame_index));
    assert_eq!(videos[0].frames_kept, 20);
    assert_eq!(videos[0].declared_frames, 472);
}

#[test]
fn a_short_clip_keeps_what_it_has_and_says_how_many() {
    // 120 frames at 29.97 fps: 4.0 s holds samples at 0, 0.5, ... 3.5 s.
    let data = Dataset::new()
        .clip("short.mp4", "carphone_pristine.mp4", "REAL")
        .write();
    let (frames, videos) = decode(&data, &[]);
    assert_eq!(frames.len(), 8);
    assert_eq!(videos[0].frames_kept, 8);
    assert_eq!(videos[0].frames_requested, 20);
    assert_eq!((frames[0].width, frames[0].height), (176, 144));
}

#[test]
fn variable_frame_rate_is_sampled_by_presentation_time() {
    let data = Dataset::new();
    let vfr = data.path().join("vfr.mp4");
    // 96 frames of 24 fps video; from frame 48 on, every timestamp moves 2 s later: a 2 s gap.
    ffmpeg(&[
        "-i",
        media("WolfgangLanger_Pexels.mp4").to_str().unwrap(),
        "-frames:v",
        "96",
        "-an",
        "-vf",
        "setpts='if(lt(N,48),N,N+48)/24/TB'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        vfr.to_str().unwrap(),
    ]);
    let data = data
        .entry("vfr.mp4", serde_json::json!({"label": "REAL"}))
        .write();
    let (frames, _) = decode(&data, &[]);
    let times: Vec<f64> = frames.iter().map(|f| f.pts_ms).collect();
    let expected = [0.0, 500.0, 1000.0, 1500.0, 4000.0, 4500.0, 5000.0, 5500.0];
    assert_eq!(times.len(), expected.len(), "{times:?}");
    for (t, e) in times.iter().zip(expected) {
        assert!((t - e).abs() <= 21.0, "{times:?}");
    }
}

#[test]
fn odd_frame_sizes_survive() {
    let data = Dataset::new();
    let odd = data.path().join("odd.mkv");
    ffmpeg(&[
        "-i",
        media("WolfgangLanger_Pexels.mp4").to_str().unwrap(),
        "-t",
        "2",
        "-an",
        "-vf",
        "scale=175:97",
        "-c:v",
        "ffv1",
        odd.to_str().unwrap(),
    ]);
    let data = data
        .entry("odd.mkv", serde_json::json!({"label": "FAKE"}))
        .write();
    let (frames, _) = decode(&data, &[]);
    assert_eq!(frames.len(), 4);
    for frame in &frames {
        assert_eq!((frame.width, frame.height), (175, 97));
        assert_eq!(png_rgb(&frame.image).dimensions(), (175, 97));
    }
}

#[test]
fn stored_frames_have_true_colour_order() {
    let data = Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .write();
    let (frames, _) = decode(&data, &["--set", "decode.frames_per_video=2"]);
    let frame = &frames[1];
    let ours = png_rgb(&frame.image);

    // ffmpeg's own RGB decode of the same frame is the independent reference.
    let dir = tempfile::tempdir().unwrap();
    let reference_path = dir.path().join("frame.rgb");
    ffmpeg(&[
        "-i",
        media("WolfgangLanger_Pexels.mp4").to_str().unwrap(),
        "-vf",
        &format!("select=eq(n\\,{})", frame.frame_index),
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        reference_path.to_str().unwrap(),
    ]);
    let reference = std::fs::read(reference_path).unwrap();
    assert_eq!(reference.len(), 640 * 360 * 3);
    let mean_diff = |swap: bool| -> f64 {
        let total: u64 = ours
            .pixels()
            .zip(reference.chunks_exact(3))
            .map(|(p, r)| {
                let (r0, r2) = if swap { (r[2], r[0]) } else { (r[0], r[2]) };
                [p[0].abs_diff(r0), p[1].abs_diff(r[1]), p[2].abs_diff(r2)]
                    .iter()
                    .map(|&d| d as u64)
                    .sum::<u64>()
            })
            .sum();
        total as f64 / reference.len() as f64
    };
    let straight = mean_diff(false);
    let swapped = mean_diff(true);
    assert!(
        straight < 3.0,
        "mean abs difference to ffmpeg's decode: {straight}"
    );
    assert!(
        swapped > 3.0 * straight.max(1.0),
        "red/blue swap not detectable: {swapped}"
    );
}

/// The shared libraries `dfd ARGS` loaded, as glibc's loader reports them (`LD_DEBUG=files`).
fn libraries_loaded(dfd: &Dfd, args: &[&str]) -> Vec<String> {
    let out = dfd
        .command(args)
        .env("LD_DEBUG", "files")
        .output()
        .expect("run dfd");
    assert!(
        out.status.success(),
        "dfd {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|line| line.split("file=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// OpenCV's videoio and imgcodecs (and the hundred libraries they need) cost every process about
/// 70 ms of loading; dfd loads them only when a video goes to OpenCV's reader (here: when asked
/// to; the planned reader also leaves it the clips shorter than the sampling span), and that
/// reader, loaded late, still gives the planned reader's frames.
#[test]
fn opencvs_video_reader_is_loaded_only_for_the_videos_that_need_it() {
    let opencv_io = |libraries: &[String]| {
        libraries
            .iter()
            .filter(|l| l.contains("opencv_videoio") || l.contains("opencv_imgcodecs"))
            .count()
    };
    // 16 s: long enough for the planned reader to take it.
    let data = Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .write();
    let dataset = data.path().to_str().unwrap();
    let planned = Dfd::new();
    let loaded = libraries_loaded(&planned, &["run", "--dataset", dataset, "--until", "ssim"]);
    assert!(
        loaded.iter().any(|l| l.contains("opencv_core")),
        "LD_DEBUG reported no libraries: {loaded:?}"
    );
    assert_eq!(opencv_io(&loaded), 0, "{loaded:?}");

    let opencv = Dfd::new();
    let args = ["--set", "decode.reader=opencv", "run", "--dataset", dataset];
    let loaded = libraries_loaded(&opencv, &[&args[..], &["--until", "ssim"]].concat());
    assert!(
        opencv_io(&loaded) >= 1,
        "OpenCV's reader was not loaded: {loaded:?}"
    );
    for (stage, table) in [
        ("decode", "frames"),
        ("detect", "detections"),
        ("ssim", "ssim_maps"),
    ] {
        assert_eq!(
            opencv.table(stage, table),
            planned.table(stage, table),
            "{stage}/{table}"
        );
    }
}
