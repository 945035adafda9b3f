//! Grad-CAM against a detector whose answer is known by construction, and on the real
//! architectures.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor, TensorData};

use super::*;
use crate::detector::{ConvTap, Detector, DetectorInput, Form};
use crate::onnx::ExportError;
use crate::rng::SplitMix64;
use crate::variant::{build_variant, ModelVariant, VariantVisitor};
use crate::Architecture;

/// Side of the hand-made detector's activation grid: 224 / 28.
const GRID: usize = 8;

/// A hand-made CNN whose P(FAKE) depends on one quadrant of the face only.
///
/// Its one convolutional block is a 28 x 28, stride 28 convolution with every weight
/// `1 / (3 * 28 * 28)` (each output cell: the mean brightness of its 28 x 28 patch, in `[0, 1]`)
/// into 4 channels, channel `k` kept in quadrant `k` of the 8 x 8 grid and zeroed elsewhere (a
/// locally connected gate), then ReLU. The head reads channel `quadrant` alone: logit =
/// 4 x its global mean - 1. So the logit is a function of the pixels of that quadrant and no
/// other, and Grad-CAM must light that quadrant: the gradient reaches channel `quadrant` only,
/// whose activations are zero outside its quadrant. A Grad-CAM that weighted the channels by
/// anything but the gradient, took the wrong block, or swapped rows and columns when
/// upsampling would light other quadrants (the quadrants are tested one by one, the
/// off-diagonal ones included).
#[derive(Module, Debug)]
struct QuadrantDetector {
    conv: Conv2d,
    /// `[1, 4, 8, 8]`: 1 in quadrant `k` of channel `k`, else 0.
    gate: Tensor<4>,
    /// 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
    quadrant: usize,
}

impl QuadrantDetector {
    fn new(quadrant: usize, device: &Device) -> Self {
        let mut conv = Conv2dConfig::new([3, 4], [28, 28])
            .with_stride([28, 28])
            .with_bias(false)
            .init(device);
        let weight = Tensor::<4>::ones([4, 3, 28, 28], device).div_scalar(3.0 * 28.0 * 28.0);
        conv.weight = Param::from_tensor(weight);
        let mut gate = vec![0.0f32; 4 * GRID * GRID];
        for (k, channel) in gate.chunks_mut(GRID * GRID).enumerate() {
            for (cell, value) in channel.iter_mut().enumerate() {
                *value = f32::from(u8::from(quadrant_of(cell / GRID, cell % GRID, GRID) == k));
            }
        }
        let gate = Tensor::<4>::from_data(TensorData::new(gate, [1, 4, GRID, GRID]), device);
        QuadrantDetector {
            conv,
            gate,
            quadrant,
        }
    }

    fn logits(&self, face: Tensor<4>, tap: &mut ConvTap<'_>) -> Tensor<2> {
        let a = self.conv.forward(face.div_scalar(255.0)) * self.gate.clone();
        let a = tap(a.clamp_min(0.0));
        let [n, _, h, w] = a.dims();
        let channel = a.narrow(1, self.quadrant, 1).reshape([n, h * w]);
        channel.mean_dim(1).mul_scalar(4.0).sub_scalar(1.0)
    }
}

impl Detector for QuadrantDetector {
    fn form(&self) -> Form {
        Form::Single
    }

    fn forward_logits(&self, input: &DetectorInput) -> Tensor<2> {
        self.logits(input.face.clone(), &mut crate::untapped)
    }

    fn forward_logits_tapped(
        &self,
        input: &DetectorInput,
        tap: &mut ConvTap<'_>,
    ) -> Option<Tensor<2>> {
        Some(self.logits(input.face.clone(), tap))
    }

    fn export_onnx(&self) -> Result<Vec<u8>, ExportError> {
        Err(ExportError::Unsupported {
            what: "QuadrantDetector".into(),
            why: "it exists to test Grad-CAM".into(),
        })
    }
}

/// Which quadrant of a `side` x `side` grid holds `(row, col)`: 0 top-left, 1 top-right,
/// 2 bottom-left, 3 bottom-right.
fn quadrant_of(row: usize, col: usize, side: usize) -> usize {
    2 * usize::from(row >= side / 2) + usize::from(col >= side / 2)
}

/// `n` faces of uniform random pixels: every quadrant bright somewhere.
fn noise_faces(n: usize, seed: u64, device: &Device) -> DetectorInput {
    let mut rng = SplitMix64::new(seed);
    let len = n * 3 * FACE_SIZE * FACE_SIZE;
    let face: Vec<f32> = (0..len).map(|_| (rng.next_f64() * 255.0) as f32).collect();
    DetectorInput {
        face: Tensor::<4>::from_data(TensorData::new(face, [n, 3, FACE_SIZE, FACE_SIZE]), device),
        ssim_map: None,
        ssim_stats: None,
    }
}

/// Mean of the map inside quadrant `q` and outside it.
fn inside_and_outside(map: &[f32], q: usize) -> (f64, f64) {
    let (mut inside, mut outside) = ((0.0, 0usize), (0.0, 0usize));
    for (i, v) in map.iter().enumerate() {
        let target = if quadrant_of(i / FACE_SIZE, i % FACE_SIZE, FACE_SIZE) == q {
            &mut inside
        } else {
            &mut outside
        };
        target.0 += f64::from(*v);
        target.1 += 1;
    }
    (inside.0 / inside.1 as f64, outside.0 / outside.1 as f64)
}

#[test]
fn the_map_of_a_detector_reading_one_quadrant_lights_that_quadrant() {
    let device = Device::flex();
    let input = noise_faces(2, 7, &device);
    for quadrant in 0..4 {
        let model = QuadrantDetector::new(quadrant, &device);
        let maps = grad_cam(&model, &input, Evidence::Fake).expect("a map");
        assert_eq!(maps.len(), 2);
        for map in &maps {
            assert_eq!(map.values.len(), FACE_SIZE * FACE_SIZE);
            assert!(map.values.iter().all(|v| (0.0..=1.0).contains(v)));
            let (inside, outside) = inside_and_outside(&map.values, quadrant);
            assert!(
                inside > 3.0 * outside,
                "quadrant {quadrant}: mean {inside:.3} inside, {outside:.3} outside"
            );
            // Noise averages to 0.5 a cell: logit about 4 x 0.5 / 4 - 1 (a quarter of the
            // grid is the quadrant), P(FAKE) about sigmoid(-0.5).
            assert!((map.p_fake - 0.3775).abs() < 0.01, "{}", map.p_fake);
        }
    }
}

#[test]
fn the_evidence_toward_real_of_a_detector_that_only_raises_fake_is_empty() {
    let device = Device::flex();
    let model = QuadrantDetector::new(1, &device);
    let maps = grad_cam(&model, &noise_faces(1, 3, &device), Evidence::Real).expect("a map");
    assert!(maps[0].values.iter().all(|v| *v == 0.0));
}

/// Every architecture but ViT-B/16 has a map in both forms; ViT has none and says so.
#[test]
fn every_cnn_variant_has_a_map_and_vit_says_it_has_none() {
    struct Run(DetectorInput);
    impl VariantVisitor for Run {
        type Output = Result<Vec<SaliencyMap>, GradCamError>;
        fn visit<D: Detector>(self, detector: D) -> Self::Output {
            grad_cam(&detector.valid(), &self.0, Evidence::Fake)
        }
    }
    let device = Device::flex();
    let mut input = noise_faces(1, 11, &device);
    input.ssim_map =
        Some(Tensor::<4>::ones([1, 1, FACE_SIZE, FACE_SIZE], &device).mul_scalar(128.0));
    input.ssim_stats = Some(Tensor::<2>::from_data(
        TensorData::new(vec![0.9f32, 0.01], [1, 2]),
        &device,
    ));
    for architecture in Architecture::ALL {
        if architecture == Architecture::VitB16 {
            continue; // 86M parameters: checked once below, single form only
        }
        for form in [Form::Single, Form::Multi] {
            let variant = ModelVariant { architecture, form };
            let maps = build_variant(variant, &device, 5, Run(input.clone()))
                .unwrap_or_else(|e| panic!("{}: {e}", variant.name()));
            assert_eq!(maps.len(), 1, "{}", variant.name());
            assert_eq!(maps[0].values.len(), FACE_SIZE * FACE_SIZE);
            assert!(maps[0].values.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(architecture.has_conv_block(), "{}", variant.name());
        }
    }
    let vit = ModelVariant {
        architecture: Architecture::VitB16,
        form: Form::Single,
    };
    let error = build_variant(vit, &device, 5, Run(input)).expect_err("ViT has no conv block");
    assert!(matches!(error, GradCamError::NotAvailable), "{error}");
    assert!(!Architecture::VitB16.has_conv_block());
}
