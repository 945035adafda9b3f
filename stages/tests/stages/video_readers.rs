//! The planned reader (FFmpeg's libraries, skipping non-reference frames the sampler does not
//! keep) against OpenCV's `VideoCapture`, the reference: the same rows, byte for byte, on every
//! registry clip and on clips made here with the codecs and settings that matter (x264 with
//! B-frame pyramids at 1080p, 29.97 fps, HEVC, MPEG-4 part 2, VP9, a variable frame rate, an
//! offset start). A clip the planned reader declines must be one it is expected to decline, so
//! the test fails if it quietly hands everything to OpenCV.
//!
//! Needs the registry clips `scripts/setup.sh` fetches into vendor/media and the `ffmpeg` program.

use std::path::{Path, PathBuf};
use std::process::Command;

use dfd_schemas::FrameRow;
use dfd_stages::decode::{decode_planned, decode_with_opencv, DecodeParams, DecodedVideo};

const MEDIA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/media");

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

/// Clips made from a registry clip with the encoder settings of `variants`.
fn made_clips(dir: &Path) -> Vec<PathBuf> {
    let source = Path::new(MEDIA).join("WolfgangLanger_Pexels.mp4");
    let source = source.to_str().expect("UTF-8 path");
    let variants: [(&str, &[&str]); 8] = [
        // x264's defaults: 3 B-frames, B-pyramid (some B-frames are references).
        (
            "x264_1080p.mp4",
            &[
                "-t",
                "11",
                "-vf",
                "scale=1920:1080",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
            ],
        ),
        (
            "x264_2997.mp4",
            &[
                "-t",
                "11",
                "-r",
                "30000/1001",
                "-c:v",
                "libx264",
                "-bf",
                "5",
                "-g",
                "60",
            ],
        ),
        // The demo set's size: neither side a multiple of 16, so the coded size differs.
        (
            "x264_398x318.mp4",
            &[
                "-t",
                "11",
                "-vf",
                "scale=398:318",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
            ],
        ),
        (
            "x264_nobframes.mp4",
            &["-t", "11", "-c:v", "libx264", "-bf", "0"],
        ),
        (
            "hevc.mp4",
            &[
                "-t",
                "11",
                "-c:v",
                "libx265",
                "-x265-params",
                "log-level=error",
                "-tag:v",
                "hvc1",
            ],
        ),
        (
            // In MP4: an AVI's packets carry no presentation timestamps, and the planned reader
            // leaves those to OpenCV.
            "mpeg4.mp4",
            &["-t", "11", "-c:v", "mpeg4", "-bf", "2", "-q:v", "5"],
        ),
        (
            "vp9.webm",
            &[
                "-t",
                "11",
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "500k",
            ],
        ),
        // Variable frame rate: a slowing clock drops frames unevenly.
        (
            "vfr.mp4",
            &[
                "-t",
                "11",
                "-vf",
                "setpts='PTS*(1+0.05*sin(T))'",
                "-fps_mode",
                "vfr",
                "-c:v",
                "libx264",
            ],
        ),
    ];
    variants
        .iter()
        .map(|(name, args)| {
            let path = dir.join(name);
            let mut all = vec!["-i", source, "-an"];
            all.extend_from_slice(args);
            all.push(path.to_str().expect("UTF-8 path"));
            ffmpeg(&all);
            path
        })
        .collect()
}

fn registry_clips() -> Vec<PathBuf> {
    let mut clips: Vec<PathBuf> = std::fs::read_dir(MEDIA)
        .expect("vendor/media exists (scripts/setup.sh)")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("mp4" | "mov")
            )
        })
        .collect();
    clips.sort();
    clips
}

fn assert_same(clip: &Path, planned: &DecodedVideo, reference: &DecodedVideo) {
    assert_eq!(
        planned.summary,
        reference.summary,
        "{}: summary",
        clip.display()
    );
    let planned = FrameRow::refs(&planned.frames).expect("planned frames");
    let reference = FrameRow::refs(&reference.frames).expect("OpenCV frames");
    assert_eq!(
        planned.len(),
        reference.len(),
        "{}: frames kept",
        clip.display()
    );
    for (a, b) in planned.iter().zip(&reference) {
        let what = format!("{} sample {}", clip.display(), b.sample_index);
        assert_eq!(
            (a.sample_index, a.frame_index, a.pts_ms, a.width, a.height),
            (b.sample_index, b.frame_index, b.pts_ms, b.width, b.height),
            "{what}: frame"
        );
        assert!(a.image == b.image, "{what}: pixels differ");
    }
}

/// Clips the planned reader leaves to OpenCV, and why (see `decode::planned`): those shorter than
/// 20 frames x 0.5 s, where the stream ends before the sampler is done (durations from ffprobe).
fn expected_to_decline(clip: &Path) -> bool {
    let name = clip.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let short = [
        "carphone_pristine.mp4", // 4.0 s
        "no_face.mp4",           // 3.9 s
        "single_face.mp4",       // 2.4 s
        "bob-test_h264.mov",     // 4.0 s
        "face_noface.mov",       // 6.4 s
        "noface_face.mov",       // 6.4 s
    ];
    short.contains(&name)
}

fn compare(clips: &[PathBuf], params: &DecodeParams) -> Vec<String> {
    let mut declined = Vec::new();
    for clip in clips {
        let reference = decode_with_opencv("v", clip, params, None)
            .unwrap_or_else(|e| panic!("{}: OpenCV: {e}", clip.display()));
        // The decoder's thread count follows the videos decoded side by side; pixels must not.
        let mut planned = [1, 3].map(|threads| decode_planned("v", clip, params, threads, None));
        match &mut planned {
            [Ok(one), Ok(three)] => {
                assert_same(clip, one, &reference);
                assert_same(clip, three, &reference);
            }
            [Err(reason), Err(_)] => {
                eprintln!("{}: declined: {}", clip.display(), reason.0);
                declined.push(clip.display().to_string());
                assert!(
                    expected_to_decline(clip),
                    "{}: the planned reader declined it: {}",
                    clip.display(),
                    reason.0
                );
            }
            [one, _] => panic!(
                "{}: declined on {} thread(s) only",
                clip.display(),
                if one.is_err() { 1 } else { 3 }
            ),
        }
    }
    declined
}

#[test]
fn planned_reader_gives_opencvs_frames_on_registry_clips() {
    let clips = registry_clips();
    assert!(clips.len() >= 8, "registry clips missing: {clips:?}");
    let declined = compare(&clips, &DecodeParams::default());
    assert!(
        clips.len() - declined.len() >= 6,
        "the registry's clips of 10 s and more should be read by the planned reader; \
         declined {declined:?}"
    );
}

#[test]
fn planned_reader_gives_opencvs_frames_across_codecs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clips = made_clips(dir.path());
    let declined = compare(&clips, &DecodeParams::default());
    assert!(declined.is_empty(), "declined: {declined:?}");
    // An offset start and a shorter interval move every target.
    let offset = DecodeParams {
        start_s: 0.7,
        interval_s: 0.3,
        frames_per_video: 25,
        ..DecodeParams::default()
    };
    let declined = compare(&clips, &offset);
    assert!(declined.is_empty(), "declined: {declined:?}");
}
