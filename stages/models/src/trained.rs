//! A trained detector as bytes and back: what the `models` table stores beside the ONNX export
//! (its `weights` column), because ONNX Runtime cannot give the gradients Grad-CAM needs
//! ([`crate::gradcam`]) and an ONNX graph is not a burn module.
//!
//! The bytes are the module's burn record in burnpack form, the format of the training
//! checkpoints: parameters and BatchNorm running statistics by module path, so a record loads
//! into a freshly built detector of the same variant whatever the seed it was built from.

use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};

use crate::variant::{build_variant, ModelVariant, VariantVisitor};
use crate::Detector;

/// Why stored weights could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredWeightsError {
    #[error("writing the weights of {model} as a burn record: {message}")]
    Write { model: String, message: String },
    #[error("the stored weights of {model} do not load into that variant: {message}")]
    Read { model: String, message: String },
}

/// The weights (and running statistics) of `model`, the trained variant named `name`, as
/// bytes for the `weights` column.
pub fn weights_to_bytes<D: Detector>(model: &D, name: &str) -> Result<Vec<u8>, StoredWeightsError> {
    let bytes =
        model
            .valid()
            .into_record()
            .into_bytes()
            .map_err(|e| StoredWeightsError::Write {
                model: name.to_owned(),
                message: e.to_string(),
            })?;
    Ok(bytes.to_vec())
}

/// Builds `variant` on `device`, loads `weights` ([`weights_to_bytes`]'s) into it and hands the
/// detector, in inference mode, to `visitor`.
pub fn load_trained_variant<V: VariantVisitor>(
    variant: ModelVariant,
    weights: &[u8],
    device: &Device,
    visitor: V,
) -> Result<V::Output, StoredWeightsError> {
    struct Load<'a, V> {
        name: String,
        weights: &'a [u8],
        visitor: V,
    }
    impl<V: VariantVisitor> VariantVisitor for Load<'_, V> {
        type Output = Result<V::Output, StoredWeightsError>;
        fn visit<D: Detector>(self, detector: D) -> Self::Output {
            let read_error = |message: String| StoredWeightsError::Read {
                model: self.name.clone(),
                message,
            };
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.weights.to_vec()))
                .map_err(|e| read_error(e.to_string()))?;
            let detector = detector
                .try_load_record(record)
                .map_err(|e| read_error(e.to_string()))?;
            Ok(self.visitor.visit(detector.valid()))
        }
    }
    // The seed only fills the weights the record then replaces.
    let load = Load {
        name: variant.name(),
        weights,
        visitor,
    };
    build_variant(variant, device, 0, load)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::{DetectorInput, Form, FACE_SIZE};

    /// The logits of a detector, for comparing two detectors on one input.
    struct Logits(DetectorInput);
    impl VariantVisitor for Logits {
        type Output = Vec<f32>;
        fn visit<D: Detector>(self, detector: D) -> Vec<f32> {
            let logits = detector.valid().forward_logits(&self.0);
            logits.into_data().try_to_vec::<f32>().expect("f32 logits")
        }
    }

    /// The bytes of a detector built from one seed.
    struct StoredBytes;
    impl VariantVisitor for StoredBytes {
        type Output = Vec<u8>;
        fn visit<D: Detector>(self, detector: D) -> Vec<u8> {
            weights_to_bytes(&detector, "test").expect("weights serialise")
        }
    }

    #[test]
    fn stored_weights_load_back_into_a_detector_built_from_another_seed() {
        let device = Device::flex();
        let variant = ModelVariant::parse("mesonet4-multi").expect("a variant");
        assert_eq!(variant.form, Form::Multi);
        let n = 2;
        let face: Vec<f32> = (0..n * 3 * FACE_SIZE * FACE_SIZE)
            .map(|i| (i % 251) as f32)
            .collect();
        let input = DetectorInput {
            face: Tensor::<4>::from_data(
                TensorData::new(face, [n, 3, FACE_SIZE, FACE_SIZE]),
                &device,
            ),
            ssim_map: Some(Tensor::<4>::ones([n, 1, FACE_SIZE, FACE_SIZE], &device)),
            ssim_stats: Some(Tensor::<2>::ones([n, 2], &device)),
        };
        let original = build_variant(variant, &device, 17, Logits(input.clone()));
        let other_seed = build_variant(variant, &device, 18, Logits(input.clone()));
        assert_ne!(original, other_seed, "two seeds draw two models");
        let bytes = build_variant(variant, &device, 17, StoredBytes);
        let loaded = load_trained_variant(variant, &bytes, &device, Logits(input)).expect("loads");
        assert_eq!(loaded, original);
    }

    #[test]
    fn weights_of_another_variant_are_refused_with_the_variant_named() {
        let device = Device::flex();
        let meso = ModelVariant::parse("mesonet4-single").expect("a variant");
        let bytes = build_variant(meso, &device, 1, StoredBytes);
        let baseline = ModelVariant::parse("baseline-single").expect("a variant");
        let input = DetectorInput {
            face: Tensor::<4>::zeros([1, 3, FACE_SIZE, FACE_SIZE], &device),
            ssim_map: None,
            ssim_stats: None,
        };
        let error = load_trained_variant(baseline, &bytes, &device, Logits(input))
            .expect_err("MesoNet-4 weights are no Baseline");
        assert!(error.to_string().contains("baseline-single"), "{error}");
    }
}
