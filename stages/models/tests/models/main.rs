//! The integration tests of `dfd-models`, one module per subject, in one test binary: each test
//! binary links burn and ONNX Runtime, so one link instead of nine. Run one subject with
//! `cargo test --release --workspace --test models -- <module>::`.
//!
//! Not here: `tests/training.rs`, its own binary, because its tests assert that a seed gives
//! bit-identical runs. burn's generator is process-wide; `train` holds a lock on it, but the
//! parity tests here draw random weights and batches from it without one, and in one process
//! those draws would land between a training run's dropout draws.

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
