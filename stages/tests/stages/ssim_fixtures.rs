//! The SSIM kernel against maps and scores made by scikit-image 0.26 (`structural_similarity(a, b,
//! data_range=255, full=True)`); `tests/fixtures/make_fixtures.py` made them, and `cases.json` in
//! `tests/fixtures/ssim` says how. Every expectation is a number from the reference, never one from
//! this crate.
//!
//! The synthetic inputs are committed beside the numbers. The video frames are real footage that
//! `scripts/setup.sh` fetches into vendor/media; they are decoded here as the script decoded them.

use std::path::{Path, PathBuf};
use std::process::Command;

use dfd_stages::ssim::{consecutive_scores, structural_similarity, video_stats};
use ndarray::Array2;
use opencv::core::{MatTraitConst, MatTraitConstManual, CV_8UC1};
use opencv::imgcodecs;
use serde_json::Value;
use sha2::{Digest, Sha256};

const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/ssim"
    ))
}

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn cases() -> Value {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Decoded with OpenCV, which the crate already links, rather than a second PNG decoder; the
/// fixtures are single-channel 8-bit, checked here so a colour file cannot sneak through converted.
fn read_gray(path: &Path) -> Array2<u8> {
    let mat = imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_UNCHANGED).unwrap();
    assert_eq!(mat.typ(), CV_8UC1, "{} is not 8-bit gray", path.display());
    let (rows, cols) = (mat.rows() as usize, mat.cols() as usize);
    Array2::from_shape_vec((rows, cols), mat.data_bytes().unwrap().to_vec()).unwrap()
}

fn read_map(path: &Path, height: usize, width: usize) -> Array2<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len(), height * width * 4, "{}", path.display());
    let values = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Array2::from_shape_vec((height, width), values).unwrap()
}

fn check_case(name: &str) {
    let all = cases();
    let case = &all[name];
    let file = |key: &str| fixtures().join(case[key].as_str().unwrap());
    let height = case["height"].as_u64().unwrap() as usize;
    let width = case["width"].as_u64().unwrap() as usize;
    let a = read_gray(&file("a"));
    let b = read_gray(&file("b"));
    assert_eq!(a.dim(), (height, width), "{name}: image a");
    assert_eq!(b.dim(), (height, width), "{name}: image b");
    let want_map = read_map(&file("map_f32_le"), height, width);

    let got = structural_similarity(a.view(), b.view()).unwrap();
    assert_eq!(got.map.dim(), (height, width), "{name}: map shape");

    let (mut worst, mut at) = (0.0f64, (0, 0));
    for ((i, j), &want) in want_map.indexed_iter() {
        let diff = (got.map[(i, j)] as f64 - want as f64).abs();
        // A NaN in either map is kept as the worst and fails the check below.
        if diff.is_nan() || diff > worst {
            (worst, at) = (diff, (i, j));
        }
    }
    eprintln!("{name}: largest map difference from scikit-image {worst:e}");
    assert!(
        worst <= TOLERANCE,
        "{name}: map differs by {worst:e} at {at:?}: ours {}, reference {}",
        got.map[at],
        want_map[at]
    );

    let want_score = case["ssim"].as_f64().unwrap();
    assert!(
        (got.score - want_score).abs() <= TOLERANCE,
        "{name}: score {} vs reference {want_score}",
        got.score
    );

    // The summary statistics of the whole map, border included, pin down the border pixels too.
    let as_f64 = got.map.mapv(f64::from);
    for (key, got) in [
        ("map_min", as_f64.fold(f64::INFINITY, |m, &x| m.min(x))),
        ("map_max", as_f64.fold(f64::NEG_INFINITY, |m, &x| m.max(x))),
        ("map_mean", as_f64.mean().unwrap()),
    ] {
        let want = case[key].as_f64().unwrap();
        assert!(
            (got - want).abs() <= TOLERANCE,
            "{name}: {key} {got} vs reference {want}"
        );
    }
}

#[test]
fn identical() {
    check_case("identical");
}

#[test]
fn shifted() {
    check_case("shifted");
}

#[test]
fn noisy() {
    check_case("noisy");
}

#[test]
fn random() {
    check_case("random");
}

#[test]
fn constant() {
    check_case("constant");
}

/// Odd, non-square and small: the reflected borders make up a large share of the map, so a wrong
/// boundary mode or a transposed axis shows here first.
#[test]
fn small_odd() {
    check_case("small_odd");
}

/// Every case in the file is covered by a test above, so a case added to the fixtures cannot go
/// untested silently.
#[test]
fn no_case_is_left_out() {
    let tested = [
        "identical",
        "shifted",
        "noisy",
        "random",
        "constant",
        "small_odd",
    ];
    let all = cases();
    for key in all.as_object().unwrap().keys() {
        assert!(
            key.starts_with('_') || tested.contains(&key.as_str()),
            "case {key} has no test"
        );
    }
}

/// The luma planes of a clip's first `count` frames, cropped to `[top, left, height, width]`, as
/// `ffmpeg -pix_fmt yuv420p` gives them. The reference took the same planes: no colour conversion
/// and no scaling, so the pixels are the H.264 decoder's output, which the standard fixes bit for
/// bit (a BGR-to-gray conversion would depend on the OpenCV or swscale build).
fn luma_frames(path: &Path, count: usize, crop: [usize; 4]) -> Vec<Array2<u8>> {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height,pix_fmt", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (installed by scripts/setup.sh)");
    assert!(
        probe.status.success(),
        "ffprobe failed on {}",
        path.display()
    );
    let probe: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &probe["streams"][0];
    assert_eq!(stream["pix_fmt"], "yuv420p", "{}", path.display());
    let width = stream["width"].as_u64().unwrap() as usize;
    let height = stream["height"].as_u64().unwrap() as usize;
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-frames:v", &count.to_string()])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("ffmpeg (installed by scripts/setup.sh)");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    let frame_bytes = width * height * 3 / 2;
    assert_eq!(out.stdout.len(), frame_bytes * count, "{}", path.display());
    let [top, left, h, w] = crop;
    out.stdout
        .chunks_exact(frame_bytes)
        .map(|frame| {
            let luma = &frame[..width * height];
            let pixels = (top..top + h)
                .flat_map(|row| {
                    luma[row * width + left..row * width + left + w]
                        .iter()
                        .copied()
                })
                .collect();
            Array2::from_shape_vec((h, w), pixels).unwrap()
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn video_scores_and_stats() {
    let all = cases();
    let video = &all["_video"];
    let count = video["frames"].as_u64().unwrap() as usize;
    let crop: Vec<usize> = video["crop_top_left_height_width"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let source = repo_root().join(video["source"].as_str().unwrap());
    let frames = luma_frames(&source, count, crop.try_into().unwrap());

    // The reference's pixels, checked first: a different decode would otherwise show up as an SSIM
    // error and send the reader looking for a bug in the kernel.
    let want_hashes = video["frame_sha256"].as_array().unwrap();
    assert_eq!(frames.len(), want_hashes.len());
    for (i, (frame, want)) in frames.iter().zip(want_hashes).enumerate() {
        let got = sha256_hex(frame.as_slice().unwrap());
        assert_eq!(
            got,
            want.as_str().unwrap(),
            "frame {i} of {}: not the pixels the reference saw",
            source.display()
        );
    }
    let views: Vec<_> = frames.iter().map(|f| f.view()).collect();

    let want_scores: Vec<f64> = video["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    let got_scores = consecutive_scores(&views).unwrap();
    assert_eq!(got_scores.len(), want_scores.len());
    for (i, (got, want)) in got_scores.iter().zip(&want_scores).enumerate() {
        assert!(
            (got - want).abs() <= TOLERANCE,
            "frame {i}: score {got} vs reference {want}"
        );
    }

    let stats = video_stats(&got_scores).unwrap();
    let want_mean = video["mean"].as_f64().unwrap();
    let want_var = video["var"].as_f64().unwrap();
    assert_eq!(stats.count, want_scores.len());
    assert!(
        (stats.mean - want_mean).abs() <= TOLERANCE,
        "mean {} vs reference {want_mean}",
        stats.mean
    );
    // Held to 0.1% rather than the absolute 1e-5: this clip's variance is 2e-3, but a nearly still
    // one is far smaller (one photo moved a pixel per frame gives 2e-6), where an absolute bound
    // would accept anything. The sample variance (n/(n-1), 14% larger for these eight scores)
    // fails it by far.
    assert!(
        (stats.var - want_var).abs() <= 1e-3 * want_var,
        "var {:e} vs reference {want_var:e}",
        stats.var
    );

    // The reference's own scores give its own statistics: the summary is checked independently of
    // the kernel's rounding.
    let from_reference = video_stats(&want_scores).unwrap();
    assert!((from_reference.mean - want_mean).abs() <= 1e-15);
    assert!((from_reference.var - want_var).abs() <= 1e-9 * want_var);
}
