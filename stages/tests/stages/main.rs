//! Every integration test of `dfd-stages`, one module per subject, in one test binary: each
//! binary links the stages with burn, ONNX Runtime and OpenCV, so one link instead of six.
//! Run one subject with `cargo test --release --workspace --test stages -- <module>::`.

mod aggregate_stage;
mod early_detection;
mod metrics_fixtures;
mod mtcnn_fixtures;
mod report_render;
mod score_pairing;
mod ssim_fixtures;
mod video_readers;
