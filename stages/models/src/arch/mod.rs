//! One module per architecture of the reference study. Each defines a [`crate::Backbone`]; the
//! single and multi-input forms wrap it.

pub mod baseline;
pub mod blocks;
pub mod cnn_blocks;
pub mod efficientnet_b0;
pub mod efficientnet_lite0;
pub mod mesoinception4;
pub mod mesonet4;
pub mod mobilenet_v3_small;
pub mod ssim_map_cnn;
pub mod vit_b16;
