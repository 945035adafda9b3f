//! The dfd runner: the DAG of stages scheduled on dagrs, the content-addressed Parquet cache that makes
//! every run resumable, the configuration, and the `dfd` command line.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod progress;
pub mod runner;
pub mod runs;
