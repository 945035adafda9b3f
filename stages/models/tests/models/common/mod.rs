//! What the model tests share: running an exported model on ONNX Runtime, the same library the
//! `score` stage uses, so that a parity test checks what users will actually run.

#![allow(dead_code)]

pub mod parity;

use std::path::PathBuf;
use std::sync::OnceLock;

use ndarray::{ArrayD, IxDyn};
use ort::session::Session;
use ort::value::TensorRef;

/// The ONNX Runtime library set up by `scripts/setup.sh` (`.cargo/config.toml` points
/// `ORT_DYLIB_PATH` at it for cargo test).
fn library() -> PathBuf {
    let path = std::env::var("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH (see .cargo/config.toml)");
    PathBuf::from(path)
}

/// The process's one ONNX Runtime environment: `ort` allows only one per process, and tests in a
/// binary run on parallel threads.
fn environment() -> &'static ort::environment::Environment {
    static ENV: OnceLock<ort::environment::Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(library())
            .expect("loading ONNX Runtime")
            .with_name("dfd-models-tests")
            .build()
            .expect("ONNX Runtime environment")
    })
}

/// Runs `model` (ONNX bytes) on named float32 inputs and returns every output, in graph order.
pub fn run_onnx(model: &[u8], inputs: &[(&str, ArrayD<f32>)]) -> Vec<ArrayD<f32>> {
    let mut session = Session::builder(environment())
        .and_then(|b| Ok(b.with_intra_threads(2)?))
        .and_then(|mut b| b.commit_from_memory(model))
        .expect("ONNX Runtime accepts the exported model");
    let values: Vec<(String, TensorRef<f32>)> = inputs
        .iter()
        .map(|(name, array)| {
            (
                (*name).to_owned(),
                TensorRef::from_array_view(array.view()).expect("input tensor"),
            )
        })
        .collect();
    let outputs = session
        .run(values)
        .expect("ONNX Runtime runs the exported model");
    outputs
        .iter()
        .map(|(_, value)| {
            value
                .try_extract_array::<f32>()
                .expect("float32 output")
                .to_owned()
                .into_dyn()
        })
        .collect()
}

/// Largest absolute difference between two arrays of the same shape.
pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A burn tensor's values as an ndarray of the same shape.
pub fn to_ndarray<const D: usize>(tensor: &burn::tensor::Tensor<D>) -> ArrayD<f32> {
    let dims = tensor.dims().to_vec();
    let data = tensor.to_data_as::<f32>();
    let values = data.as_slice::<f32>().expect("f32 tensor").to_vec();
    ArrayD::from_shape_vec(IxDyn(&dims), values).expect("shape matches")
}
