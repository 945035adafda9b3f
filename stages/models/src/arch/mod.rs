//! One module per architecture of the reference study. Each defines a [`crate::Backbone`]; the
//! single and multi-input forms wrap it.

pub mod baseline;
pub mod cnn_blocks;
pub mod mesoinception4;
pub mod mesonet4;
pub mod ssim_map_cnn;
