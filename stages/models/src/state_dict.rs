//! Pretrained weights from a PyTorch `state_dict` file, read without PyTorch.
//!
//! Why a module of our own around the reader: a weights file is data from outside, and a wrong
//! one must stop the run with a message that says which file and which tensor, never a panic or
//! a model that silently computes nonsense. So a file is checked against its pinned sha256
//! before it is parsed, every tensor is checked for its element type and its exact shape before
//! it goes into a burn module, and every error carries the file's path.
//!
//! The parsing itself is `pytorch-reader` (the reader burn-store's `pytorch` feature uses). It
//! reads every container `torch.save` has written, including the *legacy* one of PyTorch before
//! 1.6 that EfficientNet-Lite0's published weights use: a pickled magic number, protocol version
//! and system info, then the state-dict pickle whose tensors name their storages by persistent
//! id, then the pickled list of storage keys, then each storage as a little-endian `u64` element
//! count followed by its raw little-endian data. It checks every declared length against the
//! file, so a truncated file is an error at open, not a short read later.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use pytorch_reader::{DType, PytorchReader};
use sha2::{Digest, Sha256};

/// Why a weights file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{}: cannot read the weights file ({source}); scripts/setup.sh fetches it", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{}: sha256 is {actual}, expected {expected}: the file is not the pinned weights \
         (truncated or corrupt download?); delete it and re-run scripts/setup.sh",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: not a readable PyTorch state dict: {source}", path.display())]
    Format {
        path: PathBuf,
        source: pytorch_reader::PytorchError,
    },
    #[error("{}: tensor `{tensor}` is missing from the state dict", path.display())]
    MissingTensor { path: PathBuf, tensor: String },
    #[error(
        "{}: tensor `{tensor}` has shape {actual:?}, the model needs {expected:?}",
        path.display()
    )]
    Shape {
        path: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("{}: tensor `{tensor}` holds {actual:?}, the model needs F32", path.display())]
    DType {
        path: PathBuf,
        tensor: String,
        actual: DType,
    },
    #[error("{}: cannot read the data of tensor `{tensor}`: {source}", path.display())]
    TensorData {
        path: PathBuf,
        tensor: String,
        source: io::Error,
    },
}

/// An opened state dict: tensor names, element types and shapes; the data is read per tensor.
#[derive(Debug)]
pub struct StateDict {
    path: PathBuf,
    reader: PytorchReader,
}

impl StateDict {
    /// Opens `path` after checking that its sha256 is `sha256` (lower-case hex): the weights a
    /// model was written for, not merely a file of the right name.
    pub fn open_pinned(path: &Path, sha256: &str) -> Result<StateDict, WeightsError> {
        let actual = file_sha256(path)?;
        if actual != sha256 {
            return Err(WeightsError::Checksum {
                path: path.to_owned(),
                expected: sha256.to_owned(),
                actual,
            });
        }
        Self::open(path)
    }

    /// Opens `path` without a checksum (files made by tests and tools); shapes and element
    /// types are still checked tensor by tensor.
    pub fn open(path: &Path) -> Result<StateDict, WeightsError> {
        if let Err(source) = std::fs::metadata(path) {
            return Err(WeightsError::Read {
                path: path.to_owned(),
                source,
            });
        }
        let reader = PytorchReader::new(path).map_err(|source| WeightsError::Format {
            path: path.to_owned(),
            source,
        })?;
        Ok(StateDict {
            path: path.to_owned(),
            reader,
        })
    }

    /// The file this state dict was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's name and shape, sorted by name.
    pub fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.reader
            .tensors()
            .iter()
            .map(|(name, tensor)| (name.clone(), tensor.shape().to_vec()))
            .collect()
    }

    /// The float32 values of `name`, after checking that its shape is `expected`.
    pub fn f32_values(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let tensor = self
            .reader
            .get(name)
            .ok_or_else(|| WeightsError::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_owned(),
            })?;
        if tensor.shape() != expected {
            return Err(WeightsError::Shape {
                path: self.path.clone(),
                tensor: name.to_owned(),
                expected: expected.to_vec(),
                actual: tensor.shape().to_vec(),
            });
        }
        if tensor.dtype() != DType::F32 {
            return Err(WeightsError::DType {
                path: self.path.clone(),
                tensor: name.to_owned(),
                actual: tensor.dtype(),
            });
        }
        let bytes = tensor.read().map_err(|source| WeightsError::TensorData {
            path: self.path.clone(),
            tensor: name.to_owned(),
            source,
        })?;
        // `read` returns native-endian bytes (the reader refuses big-endian files).
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// `name` as a burn tensor of shape `expected` on `device`.
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>, WeightsError> {
        let values = self.f32_values(name, &expected)?;
        Ok(Tensor::from_data(TensorData::new(values, expected), device))
    }
}

/// Lower-case hex sha256 of the file at `path`, read in blocks.
pub fn file_sha256(path: &Path) -> Result<String, WeightsError> {
    let read_error = |source| WeightsError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
