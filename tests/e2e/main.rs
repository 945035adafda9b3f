//! The end-to-end tests: each module drives the `dfd` binary on real clips as a user would
//! (one module per subject), in one test binary so that Arrow and Parquet are linked once.
//! Run one subject with `cargo test --release --workspace --test e2e -- <module>::`.

mod bad_config;
mod bad_input;
mod bench;
mod cache;
mod cli_behaviour;
mod concurrency;
mod crash_injection;
mod crash_resume;
mod damaged_cache;
mod decode;
mod demo_data;
mod evaluate;
mod export;
mod faces;
mod huggingface;
mod inspect;
mod learn;
mod learning;
mod metadata;
mod predict;
mod report;
mod report_html;
mod shard_store;
mod shard_tasks;
mod slurm;
mod stream;
mod workspace_safety;
