//! The augmentation: Keras's geometry, drawn deterministically per (seed, epoch, sample).

use dfd_models::augment::{AugmentConfig, Transform};

const SIZE: usize = 16;

/// A 2-channel CHW image whose every pixel value is distinct and says where it came from.
fn ramp(channels: usize) -> Vec<f32> {
    (0..channels * SIZE * SIZE).map(|i| i as f32).collect()
}

fn at(image: &[f32], c: usize, row: usize, col: usize) -> f32 {
    image[c * SIZE * SIZE + row * SIZE + col]
}

#[test]
fn the_identity_transform_returns_the_image_unchanged() {
    let image = ramp(2);
    assert_eq!(Transform::IDENTITY.apply(&image, 2, SIZE), image);
}

#[test]
fn a_flip_mirrors_every_row_exactly() {
    let image = ramp(3);
    let flipped = Transform {
        flip: true,
        ..Transform::IDENTITY
    }
    .apply(&image, 3, SIZE);
    for c in 0..3 {
        for row in 0..SIZE {
            for col in 0..SIZE {
                assert_eq!(
                    at(&flipped, c, row, col),
                    at(&image, c, row, SIZE - 1 - col)
                );
            }
        }
    }
}

#[test]
fn a_pure_shift_moves_content_by_whole_pixels_and_repeats_the_edge() {
    // shift_x = 2/16 of the width: output (row, col) reads input (row, col + 2), as Keras's
    // matrix maps output to input; beyond the right edge the last column repeats (fill nearest).
    let image = ramp(1);
    let shifted = Transform {
        shift_x: 2.0 / SIZE as f64,
        shift_y: -1.0 / SIZE as f64,
        ..Transform::IDENTITY
    }
    .apply(&image, 1, SIZE);
    for row in 0..SIZE {
        for col in 0..SIZE {
            let src_row = row.saturating_sub(1);
            let src_col = (col + 2).min(SIZE - 1);
            assert_eq!(
                at(&shifted, 0, row, col),
                at(&image, 0, src_row, src_col),
                "({row}, {col})"
            );
        }
    }
}

#[test]
fn a_rotation_by_a_half_turn_about_keras_centre_maps_pixels_through_it() {
    // Keras's centre is size / 2 + 0.5 = 8.5: a half turn maps output x to 17 - x, so output
    // (row, col) reads input (17 - row, 17 - col), clamped to the image.
    let image = ramp(1);
    let turned = Transform {
        rotation_deg: 180.0,
        ..Transform::IDENTITY
    }
    .apply(&image, 1, SIZE);
    for row in 2..SIZE {
        for col in 2..SIZE {
            let expected = at(&image, 0, 17 - row, 17 - col);
            assert!(
                (at(&turned, 0, row, col) - expected).abs() < 1e-3,
                "({row}, {col})"
            );
        }
    }
}

#[test]
fn the_same_sample_in_the_same_epoch_always_gets_the_same_transform() {
    let config = AugmentConfig::default();
    let a = Transform::draw(&config, 42, 3, 0xABCDEF);
    assert_eq!(a, Transform::draw(&config, 42, 3, 0xABCDEF));
    assert_ne!(
        a,
        Transform::draw(&config, 42, 4, 0xABCDEF),
        "another epoch"
    );
    assert_ne!(
        a,
        Transform::draw(&config, 42, 3, 0xABCDEE),
        "another sample"
    );
    assert_ne!(a, Transform::draw(&config, 43, 3, 0xABCDEF), "another seed");
}

#[test]
fn draws_stay_in_the_reference_ranges_and_cover_them() {
    let config = AugmentConfig::default();
    let draws: Vec<Transform> = (0..20_000u64)
        .map(|key| Transform::draw(&config, 7, 1, key))
        .collect();
    let span = |f: fn(&Transform) -> f64| {
        let values: Vec<f64> = draws.iter().map(f).collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    };
    let check = |name: &str, (min, max): (f64, f64), low: f64, high: f64| {
        let slack = (high - low) * 0.01;
        assert!(min >= low && max <= high, "{name} in [{min}, {max}]");
        assert!(
            min < low + slack && max > high - slack,
            "{name} covers only [{min}, {max}]"
        );
    };
    check("rotation", span(|t| t.rotation_deg), -10.0, 10.0);
    check("shift_x", span(|t| t.shift_x), -0.1, 0.1);
    check("shift_y", span(|t| t.shift_y), -0.1, 0.1);
    check("shear", span(|t| t.shear_deg), -0.2, 0.2);
    check("zoom_x", span(|t| t.zoom_x), 0.9, 1.1);
    check("zoom_y", span(|t| t.zoom_y), 0.9, 1.1);
    // Keras draws the two zooms independently.
    assert!(draws.iter().filter(|t| t.zoom_x != t.zoom_y).count() > 19_000);
    let flips = draws.iter().filter(|t| t.flip).count() as f64 / draws.len() as f64;
    assert!((flips - 0.5).abs() < 0.02, "flip rate {flips}");
}

#[test]
fn a_face_and_its_ssim_map_get_the_same_geometry() {
    // The same transform on a 3-channel face and a 1-channel map built from the face's first
    // channel gives the transformed face's first channel.
    let face = ramp(3);
    let map: Vec<f32> = face[..SIZE * SIZE].to_vec();
    let t = Transform::draw(&AugmentConfig::default(), 1, 1, 99);
    let face_out = t.apply(&face, 3, SIZE);
    assert_eq!(t.apply(&map, 1, SIZE), face_out[..SIZE * SIZE].to_vec());
}
