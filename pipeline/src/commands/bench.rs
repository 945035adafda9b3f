//! `dfd bench`: throughput and memory figures measured on real data, never asserted in tests.
//!
//! - `decode`: the decode stage alone over every video of the dataset, a few at a time, frames
//!   turned into their stored form (no cache, no Parquet), as
//!   frames kept per second and videos per second, with the process's peak RSS.
//! - `rerun`: how long a run takes when every stage is cached (the cost of asking "anything to do?").
//! - `preprocess CLIP...`: a whole first `dfd run --until ssim` of each clip against FFmpeg's
//!   decode of the same seconds (see [`preprocess`]).

pub mod preprocess;

use std::time::Instant;

use anyhow::{Context, Result};
use dfd_schemas::{FrameRow, TableRow, VideoRow};
use dfd_stages::decode::Decode;
use dfd_stages::ingest::Ingest;
use dfd_stages::{Stage, StageContext, StageInput};
use serde::Serialize;

use crate::cache::Workspace;
use crate::commands::run::{run, RunRequest};
use crate::config::Config;
use crate::runner::stream::stream_group;
use crate::runner::Selection;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BenchTarget {
    Decode,
    Rerun,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub target: String,
    pub repeats: usize,
    pub videos: usize,
    pub frames: usize,
    pub threads: usize,
    /// Seconds per repetition, sorted.
    pub seconds: Vec<f64>,
    pub median_seconds: f64,
    pub frames_per_second: f64,
    pub videos_per_second: f64,
    pub peak_rss_mb: Option<f64>,
}

pub fn bench(
    target: BenchTarget,
    config: &Config,
    dataset: std::path::PathBuf,
    workspace: &Workspace,
    repeats: usize,
) -> Result<BenchReport> {
    let repeats = repeats.max(1);
    let mut seconds = Vec::with_capacity(repeats);
    let (mut videos, mut frames) = (0, 0);
    match target {
        BenchTarget::Decode => {
            let ingest = Ingest::new(dataset);
            let ctx = StageContext::detached();
            let mut listed = ingest.run(&StageInput::new(Vec::new()), &ctx)?;
            let video_table = listed.take(&VideoRow::TABLE);
            videos = video_table.iter().map(|b| b.num_rows()).sum();
            let decode = Decode::new(config.decode.clone());
            let rows: Vec<VideoRow> = video_table
                .iter()
                .map(VideoRow::from_batch)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            // A few videos at a time, as a run streams them (raw frames are several megabytes
            // each), each group's frames turned into what the table stores.
            let group = stream_group(config.runner.stream_videos);
            for _ in 0..repeats {
                let started = Instant::now();
                frames = 0;
                for videos in rows.chunks(group) {
                    let input = StageInput::new(Vec::new())
                        .with_table(&VideoRow::TABLE, vec![VideoRow::to_batch(videos)?]);
                    let mut out = decode.run(&input, &ctx)?;
                    for batch in out.take(&FrameRow::TABLE) {
                        frames += decode.stored(&FrameRow::TABLE, batch)?.num_rows();
                    }
                }
                seconds.push(started.elapsed().as_secs_f64());
            }
        }
        BenchTarget::Rerun => {
            let request = || RunRequest {
                workspace,
                config,
                dataset: dataset.clone(),
                selection: Selection::default(),
                wait_for_lock: false,
                share: None,
                evaluation: None,
            };
            run(request()).context("the run before the timed reruns failed")?;
            for _ in 0..repeats {
                let started = Instant::now();
                let reports = run(request())?;
                seconds.push(started.elapsed().as_secs_f64());
                anyhow::ensure!(
                    reports.iter().all(|r| !r.ran()),
                    "a stage ran during a rerun: the cache missed"
                );
            }
        }
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    Ok(BenchReport {
        target: format!("{target:?}").to_lowercase(),
        repeats,
        videos,
        frames,
        threads: rayon::current_num_threads(),
        median_seconds: median,
        frames_per_second: frames as f64 / median,
        videos_per_second: videos as f64 / median,
        seconds,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// The process's peak resident set size (VmHWM), where /proc tells it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn print_text(report: &BenchReport) {
    println!(
        "{}: {} video(s), {} frame(s), {} thread(s), {} repeat(s)",
        report.target, report.videos, report.frames, report.threads, report.repeats
    );
    println!(
        "median {:.3} s  (runs: {})",
        report.median_seconds,
        report
            .seconds
            .iter()
            .map(|s| format!("{s:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if report.frames > 0 {
        println!(
            "{:.1} frames kept/s, {:.2} videos/s",
            report.frames_per_second, report.videos_per_second
        );
    }
    if let Some(rss) = report.peak_rss_mb {
        println!("peak RSS {rss:.1} MB");
    }
}
