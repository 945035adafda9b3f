//! A trained detector as bytes and back: what the `models` table stores beside the ONNX export
//! (its `weights` column), because ONNX Runtime cannot give the gradients Grad-CAM needs
//! ([`crate::gradcam`]) and an ONNX graph is not a burn module.
//!
//! The format is our own, not burn's record: burn's records carry each parameter's id, which
//! burn draws at random for every module built (BatchNorm's running statistics included, which
//! no mapper can renumber), so two trainings to the same weights would store different bytes,
//! and the `models` table's bytes are part of the cache keys of every stage after `train`.
//! Here the bytes are a function of the weights alone:
//!
//! ```text
//! "DFDW" u32 version (1) u32 count, then per tensor in module order:
//!   u32 path length, path (UTF-8, e.g. `backbone.blocks.0.norm.running_mean`),
//!   u32 rank, rank x u64 dims, product(dims) x f32 values
//! ```
//!
//! every integer little-endian. Parameters and running statistics alike, in the order burn
//! visits them; loading checks each path and shape against the freshly built variant.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::variant::{build_variant, ModelVariant, VariantVisitor};
use crate::Detector;

const MAGIC: &[u8; 4] = b"DFDW";
const VERSION: u32 = 1;

/// Why stored weights could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredWeightsError {
    #[error("writing the weights of {model}: {message}")]
    Write { model: String, message: String },
    #[error("the stored weights of {model} do not load into that variant: {message}")]
    Read { model: String, message: String },
}

/// The weights (and running statistics) of `model`, the trained variant named `name`, as
/// bytes for the `weights` column (see the module notes).
pub fn weights_to_bytes<D: Detector>(model: &D, name: &str) -> Result<Vec<u8>, StoredWeightsError> {
    let mut writer = Writer::default();
    model.visit(&mut writer);
    let error = |message: String| StoredWeightsError::Write {
        model: name.to_owned(),
        message,
    };
    if let Some(problem) = writer.problem {
        return Err(error(problem));
    }
    let mut bytes = Vec::with_capacity(12 + writer.body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&writer.count.to_le_bytes());
    bytes.extend_from_slice(&writer.body);
    Ok(bytes)
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
            let tensors = parse(self.weights).map_err(read_error)?;
            let mut loader = Loader {
                tensors: tensors.into_iter(),
                path: Vec::new(),
                problem: None,
            };
            let detector = detector.map(&mut loader);
            if let Some(problem) = loader.problem {
                return Err(read_error(problem));
            }
            if let Some(extra) = loader.tensors.next() {
                return Err(read_error(format!(
                    "the stored weights hold {}, which the variant has not",
                    extra.path
                )));
            }
            Ok(self.visitor.visit(detector.valid()))
        }
    }
    // The seed only fills the weights the stored ones then replace.
    let load = Load {
        name: variant.name(),
        weights,
        visitor,
    };
    build_variant(variant, device, 0, load)
}

/// Appends every float tensor of a module, in visiting order, to `body`.
#[derive(Default)]
struct Writer {
    path: Vec<String>,
    body: Vec<u8>,
    count: u32,
    problem: Option<String>,
}

impl ModuleVisitor for Writer {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<N>>) {
        let tensor = param.val();
        let dims = tensor.dims();
        let values = match tensor.into_data().convert::<f32>().try_into_vec::<f32>() {
            Ok(values) => values,
            Err(e) => {
                self.problem
                    .get_or_insert(format!("reading {}: {e:?}", self.path.join(".")));
                return;
            }
        };
        let path = self.path.join(".");
        self.body
            .extend_from_slice(&(path.len() as u32).to_le_bytes());
        self.body.extend_from_slice(path.as_bytes());
        self.body.extend_from_slice(&(N as u32).to_le_bytes());
        for d in dims {
            self.body.extend_from_slice(&(d as u64).to_le_bytes());
        }
        for v in values {
            self.body.extend_from_slice(&v.to_le_bytes());
        }
        self.count += 1;
    }

    fn visit_int<const N: usize>(&mut self, _param: &Param<Tensor<N, Int>>) {
        self.problem
            .get_or_insert(format!("{} is an integer tensor", self.path.join(".")));
    }

    fn visit_bool<const N: usize>(&mut self, _param: &Param<Tensor<N, Bool>>) {
        self.problem
            .get_or_insert(format!("{} is a boolean tensor", self.path.join(".")));
    }
}

/// One stored tensor.
struct Stored {
    path: String,
    dims: Vec<usize>,
    values: Vec<f32>,
}

/// The tensors of `bytes`, in stored order.
fn parse(bytes: &[u8]) -> Result<Vec<Stored>, String> {
    let mut r = Cursor { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("not dfd weights (no DFDW header); trained by an older dfd?".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!(
            "weights format {version}, this dfd reads {VERSION}"
        ));
    }
    let count = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = r.u32()? as usize;
        let path = String::from_utf8(r.take(len)?.to_vec()).map_err(|e| e.to_string())?;
        let rank = r.u32()? as usize;
        let dims: Vec<usize> = (0..rank)
            .map(|_| r.u64().map(|d| d as usize))
            .collect::<Result<_, _>>()?;
        let n = dims.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
        let n = n.ok_or_else(|| format!("{path}: dims {dims:?} overflow"))?;
        let raw = r.take(n.checked_mul(4).ok_or("tensor too large")?)?;
        let values = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(Stored { path, dims, values });
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes after the last tensor",
            bytes.len() - r.at
        ));
    }
    Ok(out)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        Ok(u64::from_le_bytes(word))
    }
}

/// Replaces every float tensor of a module, in visiting order, by the stored one of the same
/// path and shape.
struct Loader<I> {
    tensors: I,
    path: Vec<String>,
    problem: Option<String>,
}

impl<I: Iterator<Item = Stored>> ModuleMapper for Loader<I> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const N: usize>(&mut self, param: Param<Tensor<N>>) -> Param<Tensor<N>> {
        if self.problem.is_some() {
            return param;
        }
        let path = self.path.join(".");
        let Some(stored) = self.tensors.next() else {
            self.problem = Some(format!("the stored weights have no {path}"));
            return param;
        };
        let dims = param.val().dims().to_vec();
        if stored.path != path || stored.dims != dims {
            self.problem = Some(format!(
                "found {} {:?} where the variant has {path} {dims:?}",
                stored.path, stored.dims
            ));
            return param;
        }
        param.map(|tensor| {
            let device = tensor.device();
            let shape: [usize; N] = core::array::from_fn(|i| stored.dims[i]);
            Tensor::<N>::from_data(TensorData::new(stored.values, shape), &device)
        })
    }
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
        let (original, bytes) = build_variant(variant, &device, 17, Trained(input.clone()));
        let other_seed = build_variant(variant, &device, 18, Logits(input.clone()));
        assert_ne!(original, other_seed, "two seeds draw two models");
        let loaded = load_trained_variant(variant, &bytes, &device, Logits(input)).expect("loads");
        assert_eq!(loaded, original);
        assert!(
            load_trained_variant(variant, &bytes[..bytes.len() - 1], &device, StoredBytes)
                .expect_err("a truncated file")
                .to_string()
                .contains("truncated")
        );
    }

    /// A detector whose BatchNorm running statistics moved away from their initial (0, 1)
    /// (one forward pass in training mode), as a trained one's have: its logits in inference
    /// mode and its stored bytes. Loading must restore the statistics too, or the logits differ.
    struct Trained(DetectorInput);
    impl VariantVisitor for Trained {
        type Output = (Vec<f32>, Vec<u8>);
        fn visit<D: Detector>(self, detector: D) -> Self::Output {
            let autodiff = Device::flex().autodiff();
            let training = detector.train().fork(&autodiff);
            let input = DetectorInput {
                face: self.0.face.clone().autodiff(),
                ssim_map: self.0.ssim_map.clone().map(Tensor::autodiff),
                ssim_stats: self.0.ssim_stats.clone().map(Tensor::autodiff),
            };
            let _ = training.forward_logits(&input);
            let model = training.valid();
            let bytes = weights_to_bytes(&model, "test").expect("weights serialise");
            (Logits(self.0).visit(model), bytes)
        }
    }

    /// The `models` table's bytes are part of the downstream stages' cache keys: the same
    /// weights, built twice (other parameter ids), must give the same bytes.
    #[test]
    fn the_same_weights_give_the_same_bytes() {
        let device = Device::flex();
        let variant = ModelVariant::parse("mesonet4-single").expect("a variant");
        let first = build_variant(variant, &device, 3, StoredBytes);
        let second = build_variant(variant, &device, 3, StoredBytes);
        assert!(first == second, "two builds of one seed stored differently");
        assert!(first != build_variant(variant, &device, 4, StoredBytes));
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
