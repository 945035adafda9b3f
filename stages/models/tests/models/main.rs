//! Every integration test of `dfd-models`, one module per subject, in one test binary: each
//! test binary links burn and ONNX Runtime, so one link instead of ten.
//! Run one subject with `cargo test --release --workspace --test models -- <module>::`.

mod common;

mod augment;
mod efficientnet_lite0;
mod every_architecture;
mod fine_tuning;
mod onnx_pairing;
mod onnx_parity;
mod onnx_parity_imagenet;
mod onnx_writer;
mod param_counts_imagenet;
mod training;
