//! One module per architecture of the reference study. Each defines a [`crate::Backbone`]; the
//! single and multi-input forms wrap it.
