//! EfficientNet-Lite0 with its published ImageNet weights (fetched by `scripts/setup.sh` into
//! `vendor/imagenet/`) computes what the published PyTorch network computes, names the ImageNet
//! classes of two real photos, and a weights file that is missing, corrupt, truncated or of the
//! wrong shapes is refused with the file and the tensor named.
//!
//! `fixtures/efficientnet_lite0/` holds PyTorch's logits on one synthetic image and a small state
//! dict of wrong shapes; `make_fixtures.py` there made both (how to rerun it: its doc string).
//! Neither this test nor set-up needs PyTorch.
//!
//! `cargo test --release --workspace --test models -- efficientnet_lite0:: --nocapture` prints each
//! photo's top-5 classes with their probabilities.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use dfd_models::arch::efficientnet_lite0::{
    backbone_parameter_count, EfficientNetLite0, ImageNetLite0, IMAGENET_WEIGHTS,
    IMAGENET_WEIGHTS_SHA256,
};
use dfd_models::params::keras_param_count;
use dfd_models::state_dict::{StateDict, WeightsError};
use dfd_models::FACE_SIZE;
use image::imageops::FilterType;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn weights_path() -> PathBuf {
    repo_root().join(IMAGENET_WEIGHTS)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/efficientnet_lite0")
        .join(name)
}

fn network(device: &Device) -> ImageNetLite0 {
    ImageNetLite0::load(&weights_path(), device)
        .unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"))
}

/// `[1, 3, 224, 224]` pixel values (what the network takes) from RGB bytes in HWC order.
fn image_tensor(rgb: &[u8], device: &Device) -> Tensor<4> {
    let plane = FACE_SIZE * FACE_SIZE;
    let mut chw = vec![0f32; 3 * plane];
    for (i, pixel) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = f32::from(pixel[c]);
        }
    }
    Tensor::from_data(TensorData::new(chw, [1, 3, FACE_SIZE, FACE_SIZE]), device)
}

/// The centre square of the photo at `path`, resized to 224 x 224 (bilinear).
fn photo(path: &Path, device: &Device) -> Tensor<4> {
    let image = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", path.display()))
        .to_rgb8();
    let side = image.width().min(image.height());
    let square = image::imageops::crop_imm(
        &image,
        (image.width() - side) / 2,
        (image.height() - side) / 2,
        side,
        side,
    )
    .to_image();
    let resized = image::imageops::resize(
        &square,
        FACE_SIZE as u32,
        FACE_SIZE as u32,
        FilterType::Triangle,
    );
    image_tensor(resized.as_raw(), device)
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    let data = tensor.to_data();
    data.as_slice::<f32>().expect("float32 tensor").to_vec()
}

/// The five most probable classes, most probable first.
fn top5(network: &ImageNetLite0, image: Tensor<4>) -> Vec<(usize, f32)> {
    let probabilities = values(softmax(network.forward(image), 1));
    let mut ranked: Vec<(usize, f32)> = probabilities.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(5);
    ranked
}

/// The strict test of the weight mapping, the padding and the input normalisation: all 1000
/// logits equal PyTorch's on the same image (see `make_fixtures.py`), to float32 rounding.
#[test]
fn logits_match_pytorch_on_a_reference_image() {
    let device = Device::flex();
    let network = network(&device);
    let rgb: Vec<u8> = (0..FACE_SIZE)
        .flat_map(|y| (0..FACE_SIZE).map(move |x| (y, x)))
        .flat_map(|(y, x)| {
            (0..3).map(move |c| ((3 * y + 5 * x + 50 * c + 4 * ((x * y) % 17)) % 256) as u8)
        })
        .collect();
    let ours = values(network.forward(image_tensor(&rgb, &device)));

    let text = std::fs::read_to_string(fixture("reference_logits.json")).expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    assert_eq!(json["weights_sha256"], IMAGENET_WEIGHTS_SHA256);
    let theirs: Vec<f64> = json["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max);
    eprintln!("largest logit difference to PyTorch: {worst:.2e}");
    assert!(
        worst < 1e-3,
        "logits differ from PyTorch's by up to {worst}"
    );
}

/// The test a user would run: a tabby cat and a cup of coffee (scikit-image's `chelsea.png` and
/// `coffee.png`, pinned by set-up) are given their ImageNet classes.
#[test]
fn names_the_imagenet_classes_of_two_photos() {
    let device = Device::flex();
    let network = network(&device);
    let photos = repo_root().join("vendor/imagenet");
    // 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat;
    // 967 espresso, 968 cup, 504 coffee mug.
    let cases: [(&str, &[usize]); 2] = [
        ("chelsea.png", &[281, 282, 283, 284, 285]),
        ("coffee.png", &[967, 968, 504]),
    ];
    for (name, expected) in cases {
        let ranked = top5(&network, photo(&photos.join(name), &device));
        eprintln!("{name}: top-5 (class, probability) {ranked:.3?}");
        let top1 = ranked[0].0;
        assert!(
            expected.contains(&top1),
            "{name}: top-1 is class {top1}, expected one of {expected:?}; top-5 {ranked:?}"
        );
        let in_top5 = ranked.iter().filter(|(c, _)| expected.contains(c)).count();
        assert!(
            in_top5 >= 2,
            "{name}: top-5 {ranked:?}, expected {expected:?}"
        );
    }
}

/// The backbone's parameter count is the state dict's, by tensor shapes, without the classifier
/// and `num_batches_tracked`.
#[test]
fn backbone_holds_every_published_tensor_but_the_classifier() {
    let device = Device::flex();
    let weights = StateDict::open_pinned(&weights_path(), IMAGENET_WEIGHTS_SHA256)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(weights.shapes().len(), 296);
    let published = backbone_parameter_count(&weights);
    assert_eq!(published, 3_413_024);
    assert_eq!(
        keras_param_count(&EfficientNetLite0::new(&device)),
        published
    );
    let loaded = EfficientNetLite0::new(&device)
        .with_weights(&weights)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keras_param_count(&loaded), published);
}

fn message(error: &WeightsError) -> String {
    error.to_string()
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let path = repo_root().join("vendor/imagenet/no-such-weights.pth");
    let error = ImageNetLite0::load(&path, &Device::flex()).expect_err("missing file");
    assert!(matches!(error, WeightsError::Read { .. }), "{error:?}");
    assert!(message(&error).contains("no-such-weights.pth"), "{error}");
}

#[test]
fn a_file_with_another_sha256_is_refused_before_parsing() {
    let path = fixture("wrong_shape.pth");
    let error = ImageNetLite0::load(&path, &Device::flex()).expect_err("wrong sha256");
    assert!(matches!(error, WeightsError::Checksum { .. }), "{error:?}");
    assert!(message(&error).contains("wrong_shape.pth"), "{error}");
    assert!(message(&error).contains(IMAGENET_WEIGHTS_SHA256), "{error}");
}

/// A truncated copy: refused by its checksum when pinned, and by the parser (an error, not a
/// panic) when read unpinned, which is what catches a truncated file that has no pin.
#[test]
fn a_truncated_file_is_an_error_naming_it() {
    let bytes = std::fs::read(weights_path()).expect("weights (run scripts/setup.sh)");
    let dir = tempfile::tempdir().expect("temporary folder");
    for keep in [bytes.len() / 2, bytes.len() - 1000, 100] {
        let path = dir.path().join(format!("truncated-{keep}.pth"));
        std::fs::write(&path, &bytes[..keep]).expect("write");
        let error = ImageNetLite0::load(&path, &Device::flex()).expect_err("truncated, pinned");
        assert!(matches!(error, WeightsError::Checksum { .. }), "{error:?}");
        let error = StateDict::open(&path).expect_err("truncated, unpinned");
        assert!(matches!(error, WeightsError::Format { .. }), "{error:?}");
        assert!(
            message(&error).contains(&format!("truncated-{keep}.pth")),
            "{error}"
        );
    }
}

#[test]
fn a_tensor_of_the_wrong_shape_is_an_error_naming_file_and_tensor() {
    let device = Device::flex();
    let path = fixture("wrong_shape.pth");
    let weights = StateDict::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let error = ImageNetLite0::from_state_dict(&weights, &device).expect_err("wrong shape");
    let WeightsError::Shape {
        tensor,
        expected,
        actual,
        ..
    } = &error
    else {
        panic!("expected a shape error, got {error:?}");
    };
    assert_eq!(tensor, "_conv_stem.weight");
    assert_eq!(
        (expected.as_slice(), actual.as_slice()),
        (&[32, 3, 3, 3][..], &[16, 3, 3, 3][..])
    );
    assert!(message(&error).contains("wrong_shape.pth"), "{error}");
    assert!(message(&error).contains("_conv_stem.weight"), "{error}");

    let error = weights
        .f32_values("_bn0.weight", &[32])
        .expect_err("missing");
    assert!(
        matches!(error, WeightsError::MissingTensor { .. }),
        "{error:?}"
    );
    assert!(message(&error).contains("_bn0.weight"), "{error}");
}
