//! Face detection (MTCNN on ONNX Runtime). Work in progress.
