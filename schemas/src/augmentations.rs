//! `augmentations`: the geometric transform drawn for every (epoch, training face frame), written
//! by `augment`. Training draws the same transforms from the same `(seed, epoch, sample key)` when
//! it builds a batch; this table is that plan made inspectable (`dfd inspect augment`), so that
//! what a model was trained on can be checked without reading code.

crate::table! {
    /// One drawn transform, in Keras's `ImageDataGenerator` parameters. The face crop and its SSIM
    /// map get the same one.
    pub struct AugmentationRow in "augmentations" {
        /// 1-based training epoch.
        epoch: u32,
        video_id: String,
        sample_index: u32,
        /// The key training draws with (FNV-1a of video and sample index).
        sample_key: u64,
        rotation_deg: f64,
        /// Horizontal shift, fraction of the side.
        shift_x: f64,
        /// Vertical shift, fraction of the side.
        shift_y: f64,
        shear_deg: f64,
        zoom_x: f64,
        zoom_y: f64,
        /// Mirrored left-right.
        flip: bool,
    }
    validate = |_| Ok(());
}
