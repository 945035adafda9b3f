//! The SSIM kernel against maps and scores made by scikit-image 0.26 (`structural_similarity(a, b,
//! data_range=255, full=True)`); see `cases.json` in the fixture folder for how they were made.
//! Every expectation is a number from the reference, never one from this crate.

use std::path::{Path, PathBuf};

use dfd_stages::ssim::{consecutive_scores, structural_similarity, video_stats};
use ndarray::Array2;
use opencv::core::{MatTraitConst, MatTraitConstManual, CV_8UC1};
use opencv::imgcodecs;
use serde_json::Value;

const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/ssim"
    ))
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

#[test]
fn video_scores_and_stats() {
    let all = cases();
    let video = &all["_video"];
    let frames: Vec<Array2<u8>> = video["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| read_gray(&fixtures().join(f.as_str().unwrap())))
        .collect();
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
    // The variance is about 2e-6, so an absolute 1e-5 would accept anything; hold it to 0.1%,
    // which the sample variance (25% larger for five scores) fails by far.
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
