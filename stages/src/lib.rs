//! The stages of the dfd pipeline. Each is a pure, typed function from input tables to output tables
//! behind the one [`Stage`] trait; none of them knows about files on disk, caching or scheduling, which
//! belong to the `dfd-pipeline` crate. That split is what lets the runner cache, shard and resume any
//! stage the same way.

pub mod aggregate;
pub mod augment;
pub mod crop;
pub mod cues;
pub mod decode;
pub mod detect;
pub mod explain;
mod image_io;
pub mod ingest;
mod inter_area;
pub mod model_inputs;
pub mod report;
pub mod score;
pub mod ssim;
mod stage;
pub mod train;

pub use stage::{
    frame_observer_among, key_device, key_params, per_video, FrameObserver, InputDef, NoProgress,
    Progress, Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec,
};

/// The table whose row order defines the per-video shards of every per-video stage.
pub const PARTITION_TABLE: InputDef = InputDef::of::<dfd_schemas::VideoRow>(ingest::NAME);
