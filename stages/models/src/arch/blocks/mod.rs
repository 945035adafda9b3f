//! Building blocks shared by the ImageNet backbones (MobileNetV3Small, EfficientNetB0, ViT-B/16):
//! each a burn module with a `forward` and an `export` that appends the same computation to an
//! [`crate::OnnxGraph`]. Layers with a single burn counterpart are exported by [`crate::export`].

pub mod activation;
pub mod conv_bn;
pub mod inverted_residual;
pub mod squeeze_excite;
pub mod transformer;
