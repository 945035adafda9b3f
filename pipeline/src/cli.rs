//! The `dfd` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::cache::marker::{claim, Create};
use crate::cache::{Workspace, WorkspaceLock};
use crate::commands::bench::{preprocess, BenchTarget};
use crate::commands::dag::DagFormat;
use crate::commands::export::ExportWhat;
use crate::commands::{
    bench, dag, evaluate, export, gc, inspect, predict, report, run, status, verify,
};
use crate::config::{source_tree_path, Config};
use crate::runner::{Executor, Pipeline, Selection, Share};
use crate::runs::{latest_dataset, latest_evaluation};

#[derive(Debug, Parser)]
#[command(
    name = "dfd",
    version,
    about = "Deepfake detection as a resumable DAG of Parquet tables"
)]
pub struct Cli {
    /// Folder holding the cache and run records.
    #[arg(long, global = true, env = "DFD_WORKSPACE", default_value = "dfd-work")]
    pub workspace: PathBuf,
    /// Config file (TOML); default: ./dfd.toml when present.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Override one config key, e.g. --set decode.frames_per_video=10 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the DAG (every stage, or a selection); resumes where a previous run stopped.
    Run {
        /// DFDC-format dataset folder (videos + metadata.json); default: the config's, else the demo set.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Recompute just this stage; its upstream must be cached.
        #[arg(long, value_name = "STAGE")]
        only: Option<String>,
        /// Recompute this stage and everything downstream.
        #[arg(long, value_name = "STAGE")]
        from: Option<String>,
        /// Recompute this stage even if cached (repeatable); downstream reruns only if its bytes change.
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Stop at this stage: bring it and the stages it needs up to date, nothing downstream
        /// (e.g. --until ssim prepares the training inputs without training). Combines with
        /// --from and --force, not with --only.
        #[arg(long, value_name = "STAGE")]
        until: Option<String>,
        /// Wait for another run on this workspace to finish instead of refusing.
        #[arg(long)]
        wait: bool,
        /// One task of an array job: `I/N` (task I of N, from 0) or `auto` (Slurm's
        /// SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, or Kubernetes'
        /// JOB_COMPLETION_INDEX of --shard-count / DFD_SHARD_COUNT). Computes only this task's
        /// shards of the per-video stages, into the shard store; a plain `dfd run` finishes.
        #[arg(long, value_name = "I/N|auto")]
        shard: Option<String>,
        /// The number of tasks for `--shard auto` under Kubernetes (which exports no count);
        /// default: $DFD_SHARD_COUNT.
        #[arg(long, value_name = "N", requires = "shard")]
        shard_count: Option<usize>,
    },
    /// Cross-dataset evaluation: score every video of --dataset with the models another
    /// workspace trained, preprocessed with the decode, detect, crop and ssim settings those
    /// models were trained with, then aggregate and report, all cached in this workspace.
    Evaluate {
        /// The evaluated DFDC-format dataset (videos + metadata.json); it needs no train split,
        /// and videos without a label or a split are scored too (no metric counts them).
        #[arg(long)]
        dataset: PathBuf,
        /// The workspace whose trained models are evaluated (its newest finished `train` output).
        #[arg(long, value_name = "WORKSPACE")]
        models: PathBuf,
        /// Evaluate only this model (repeatable); default: every model trained there.
        #[arg(long = "model", value_name = "NAME")]
        model: Vec<String>,
        /// Wait for another run on this workspace to finish instead of refusing.
        #[arg(long)]
        wait: bool,
    },
    /// Per stage: fresh / stale (and why) / damaged / missing, rows and bytes.
    Status {
        /// Dataset to compare with; default: the config's, else the one the last run used.
        #[arg(long)]
        dataset: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// The N of an array job's `--shard I/N`: name the tasks whose shards are missing;
        /// default: the N the newest array job on this dataset recorded.
        #[arg(long, value_name = "N")]
        shard_count: Option<usize>,
    },
    /// Schema, rows, column statistics and first rows of a stage's output or a Parquet file.
    Inspect {
        /// A stage name (its latest output) or a path to a .parquet file or folder.
        target: String,
        /// Only this table of the stage.
        #[arg(long)]
        table: Option<String>,
        #[arg(long, default_value_t = 5)]
        head: usize,
        #[arg(long)]
        json: bool,
    },
    /// The result summary (model, parameters, accuracy, precision, recall, F1, AUC with 95%
    /// intervals) from the latest cached `metrics`; split and rule from the `[report]` config.
    Report {
        #[arg(long)]
        json: bool,
    },
    /// The graph of stages.
    Dag {
        #[arg(long, value_enum, default_value_t = DagFormat::Text)]
        format: DagFormat,
    },
    /// Delete cached outputs that none of the recent runs used (only dfd's own outputs: folders
    /// carrying its manifest, in a folder carrying its workspace marker).
    Gc {
        /// How many recent runs' outputs to keep.
        #[arg(long, default_value_t = 3)]
        keep_runs: usize,
        #[arg(long)]
        dry_run: bool,
        /// Wait for a run on this workspace to finish instead of refusing.
        #[arg(long)]
        wait: bool,
    },
    /// Check every cached output against its manifest (size and sha256 of each file); a damaged
    /// output is marked stale, named with the file, and recomputed by the next `dfd run`.
    Verify {
        /// Wait for a run on this workspace to finish instead of refusing.
        #[arg(long)]
        wait: bool,
    },
    /// Measure throughput and peak memory on real data (figures, not pass/fail).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Print the effective configuration (file + overrides + defaults) as TOML.
    Config,
    /// Verdicts for video files: decode, detect, crop, ssim and score through the pipeline's own
    /// stages, with a model trained by an earlier `dfd run`.
    Predict {
        /// Video files (any extension), and folders searched recursively for .mp4, .avi, .mov,
        /// .mkv, .webm and .m4v files (hidden ones skipped).
        #[arg(required = true, value_name = "VIDEO_OR_DIR")]
        paths: Vec<PathBuf>,
        /// Model variant, e.g. mesonet4-multi; default: the first of the config's train.models.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        json: bool,
        /// Also write the answers as CSV (filename,label,... with label = P(FAKE), a DFDC
        /// submission's columns), replacing the file whole once every video is predicted.
        #[arg(long, value_name = "PATH")]
        csv: Option<PathBuf>,
        /// Write the evidence of each verdict under DIR/<video>/: the timeline of its frame
        /// scores and, for CNN detectors, Grad-CAM saliency images of the deciding frames.
        #[arg(long, value_name = "DIR")]
        explain: Option<PathBuf>,
    },
    /// Copy cached tables out of the workspace for other tools (computes nothing).
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Write the demo dataset: REAL clips cut from the registry videos, FAKE ones made by face swap.
    DemoData {
        /// Dataset folder to (re)write; default: the demo dataset `dfd run` uses.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Names the dataset: the same seed gives the same clips, swaps and metadata.json.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Number of videos, half REAL and half FAKE, split 64/16/20 (100: about 300 s of CPU).
        #[arg(long, default_value_t = 100)]
        videos: usize,
        /// Longest clip in seconds (shorter sources give their whole length); 10 s covers the
        /// 20 frames 0.5 s apart that `decode` samples.
        #[arg(long, default_value_t = 10.0)]
        clip_seconds: f64,
        /// Rebuild even when --out holds the dataset of this very request (else it is reused).
        #[arg(long)]
        force: bool,
        /// Folder with the registry clips; default: vendor/media (scripts/setup.sh fills it).
        #[arg(long)]
        media: Option<PathBuf>,
        /// Also write one REAL frame and the same frame of its FAKE side by side to this PNG.
        #[arg(long, value_name = "PNG")]
        contact_sheet: Option<PathBuf>,
    },
}

/// What `dfd bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// The decode stage alone over every video of the dataset (no cache, no Parquet): frames and
    /// videos per second, peak RSS of this process.
    Decode {
        /// Dataset folder; default: the config's, else the demo set.
        #[arg(long)]
        dataset: Option<PathBuf>,
        #[command(flatten)]
        common: BenchCommon,
    },
    /// A whole `dfd run` when every stage is cached (after one run that fills the cache).
    Rerun {
        /// Dataset folder; default: the config's, else the demo set.
        #[arg(long)]
        dataset: Option<PathBuf>,
        #[command(flatten)]
        common: BenchCommon,
    },
    /// The whole preprocessing of each clip against FFmpeg's decode of the same seconds.
    ///
    /// For each clip, a first `dfd run --until ssim` (ingest, decode, detect, crop, ssim) on a
    /// throw-away dataset holding only that clip and a throw-away workspace, as a child process of
    /// this binary with this command's --config and --set; beside it, `ffmpeg -v error -threads 2
    /// -i CLIP -t SECONDS -an -f null -`, SECONDS being the span decode samples (decode.start_s +
    /// decode.frames_per_video * decode.interval_s, 10 s by default). The two alternate, --repeats
    /// times, and the table gives medians: seconds of each, their ratio, the dfd process's peak
    /// RSS (wait4) and the bytes its workspace holds afterwards per video. With --batch, every
    /// clip goes into one dataset and one run, against FFmpeg decoding every clip whole, one after
    /// another. Needs `ffmpeg` (and `ffprobe` for the resolution column) on PATH;
    /// scripts/setup.sh installs them.
    Preprocess {
        /// Video files.
        #[arg(required = true, value_name = "CLIP")]
        clips: Vec<PathBuf>,
        /// All clips in one dataset and one run, against the full FFmpeg decode of each in turn.
        #[arg(long)]
        batch: bool,
        /// Folder for the throw-away datasets and workspaces (removed afterwards); default: the
        /// system's temporary folder.
        #[arg(long, value_name = "DIR")]
        scratch: Option<PathBuf>,
        #[command(flatten)]
        common: BenchCommon,
    },
}

/// Options every `dfd bench` target takes.
#[derive(Debug, clap::Args)]
pub struct BenchCommon {
    /// Measurements to take; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Entry point of the binary: runs the command and turns an error into a message and exit code 1.
pub fn main() -> ExitCode {
    quiet_native_logs();
    no_runtime_telemetry();
    crate::progress::init_logging();
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// FFmpeg and OpenCV print their own warnings for every damaged file; dfd reports those failures
/// itself (errors table, log line naming the file), so their chatter is silenced unless asked for.
fn quiet_native_logs() {
    set_unless_set(&[
        ("OPENCV_FFMPEG_LOGLEVEL", "-8"),
        ("OPENCV_LOG_LEVEL", "ERROR"),
    ]);
}

/// The ONNX Runtime builds `scripts/setup.sh` fetches (1.31) collect telemetry on Linux too: a
/// device id and an event queue under `~/.cache/Microsoft/DeveloperTools`, uploaded to Microsoft
/// when the network allows. A research tool run on other people's data must not report on them,
/// so dfd turns it off before the library starts, where only this variable reaches (the API's
/// switch, which `dfd_stages::detect::ort_environment` also sets, comes after the environment
/// logged its first event). `ORT_TELEMETRY_DISABLED` is the name later releases read. A value the
/// user set is left as it is.
fn no_runtime_telemetry() {
    set_unless_set(&[
        ("ORT_DISABLE_TELEMETRY", "1"),
        ("ORT_TELEMETRY_DISABLED", "1"),
    ]);
}

/// Sets each variable the user has not set. Only for the start of `main`, before any thread
/// exists: setting the environment while another thread reads it is undefined behaviour in libc.
fn set_unless_set(variables: &[(&str, &str)]) {
    for &(key, value) in variables {
        if std::env::var_os(key).is_none() {
            std::env::set_var(key, value);
        }
    }
}

fn execute(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    // `ort` finds the library through this variable; still single-threaded here.
    std::env::set_var("ORT_DYLIB_PATH", &config.paths.onnxruntime);
    if cli.command.does_per_video_work() {
        size_worker_pool(&config)?;
    }
    let (trains, scores) = cli.command.computes_with_models();
    config.check_devices(trains, scores)?;
    let workspace = Workspace::new(&cli.workspace);
    match cli.command {
        Command::Run {
            dataset,
            only,
            from,
            force,
            until,
            wait,
            shard,
            shard_count,
        } => {
            let share = shard
                .map(|given| Share::resolve(&given, shard_count, &|name| std::env::var(name).ok()))
                .transpose()?;
            let dataset = resolve_dataset(dataset.as_deref(), &config)?;
            run::run(run::RunRequest {
                workspace: &workspace,
                config: &config,
                dataset,
                selection: Selection {
                    only,
                    from,
                    force,
                    until,
                },
                wait_for_lock: wait,
                share,
                evaluation: None,
            })?;
        }
        Command::Evaluate {
            dataset,
            models,
            model,
            wait,
        } => {
            let dataset = resolve_dataset(Some(&dataset), &config)?;
            evaluate::evaluate(evaluate::EvaluateRequest {
                workspace: &workspace,
                config: &config,
                dataset,
                models_workspace: &models,
                models: &model,
                wait_for_lock: wait,
            })?;
        }
        Command::Status {
            dataset,
            json,
            shard_count,
        } => {
            let dataset = status_dataset(dataset.as_deref(), &config, &workspace)?;
            // Without --shard-count, the count the newest array job on this dataset used.
            let shard_count = shard_count
                .or_else(|| crate::runs::latest_array(&workspace, &dataset).map(|a| a.count));
            // A workspace whose last run was `dfd evaluate` is compared with that evaluation's
            // pipeline (the models' own stage, their preprocessing settings), not the configured
            // one its outputs were never made with.
            let (pipeline, config) = match latest_evaluation(&workspace)? {
                Some(evaluation) => {
                    eprintln!(
                        "pipeline: the evaluation of the models in {} (the last run's)",
                        evaluation.models_workspace.display()
                    );
                    let assembled = evaluate::assemble(
                        &workspace,
                        &config,
                        &dataset,
                        &evaluation.models_workspace,
                        &evaluation.models,
                    )
                    .context("cannot assemble the last run's evaluation")?;
                    (assembled.pipeline, assembled.config)
                }
                None => (
                    Pipeline::new(&config, dataset).context("cannot assemble the pipeline")?,
                    config,
                ),
            };
            let executor = Executor::new(workspace, config.runner.videos_per_shard);
            let statuses = status::status(&pipeline, &executor, shard_count);
            if json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                status::print_text(&statuses);
            }
        }
        Command::Inspect {
            target,
            table,
            head,
            json,
        } => {
            let inspection = inspect::inspect(&workspace, &target, table.as_deref(), head)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                inspect::print_text(&inspection);
            }
        }
        Command::Report { json } => {
            let summary = report::summary(&workspace, &config.report)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report::to_json(&summary))?
                );
            } else {
                report::print_text(&summary);
            }
        }
        Command::Dag { format } => {
            let pipeline = Pipeline::new(&config, PathBuf::from("<dataset>"))
                .context("cannot assemble the pipeline")?;
            print!("{}", dag::render(&pipeline, format));
        }
        Command::Gc {
            keep_runs,
            dry_run,
            wait,
        } => {
            claim(&workspace, Create::No)?;
            let _lock = WorkspaceLock::acquire(&workspace.lock_path(), wait)?;
            let report = gc::collect(&workspace, keep_runs, dry_run)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for dir in &report.removed {
                println!("{verb} {dir}");
            }
            for dir in &report.removed_shards {
                println!("{verb} {dir}");
            }
            for dir in &report.removed_scratch {
                println!("{verb} {dir} (scratch of an array task that is gone)");
            }
            for dir in &report.left_alone {
                println!("left alone {dir} (not a dfd output)");
            }
            for dir in &report.kept_scratch {
                println!("left alone {dir}");
            }
            println!(
                "{verb} {} folder(s), {} shard-store entries, {} scratch folder(s) and {} free \
                 lock file(s), {}; kept {}",
                report.removed.len(),
                report.removed_shards.len(),
                report.removed_scratch.len(),
                report.removed_locks.len(),
                inspect::human_bytes(report.bytes_freed),
                report.kept
            );
        }
        Command::Verify { wait } => {
            claim(&workspace, Create::No)?;
            let _lock = WorkspaceLock::acquire(&workspace.lock_path(), wait)?;
            let report = verify::verify(&workspace)?;
            verify::print_text(&report);
            if !report.damaged.is_empty() {
                bail!(
                    "{} damaged file(s) in the cache (marked stale)",
                    report.damaged.len()
                );
            }
        }
        Command::Bench { what } => match what {
            BenchWhat::Decode { dataset, common } => {
                bench_dataset(BenchTarget::Decode, dataset, &common, &config, &workspace)?
            }
            BenchWhat::Rerun { dataset, common } => {
                bench_dataset(BenchTarget::Rerun, dataset, &common, &config, &workspace)?
            }
            BenchWhat::Preprocess {
                clips,
                batch,
                scratch,
                common,
            } => {
                let report = preprocess::bench_preprocess(&preprocess::PreprocessRequest {
                    clips: &clips,
                    batch,
                    repeats: common.repeats,
                    scratch: scratch.as_deref(),
                    config: &config,
                    config_file: cli.config.as_deref(),
                    overrides: &cli.overrides,
                })?;
                if common.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    preprocess::print_text(&report);
                }
            }
        },
        Command::Config => print!("{}", config.to_toml()?),
        Command::Predict {
            paths,
            model,
            json,
            csv,
            explain,
        } => {
            // A bad --csv path fails now, not after every video is predicted.
            if let Some(csv) = &csv {
                predict::check_csv_target(csv)?;
            }
            let report = predict::predict(predict::PredictRequest {
                workspace: &workspace,
                config: &config,
                paths: &paths,
                model: model.as_deref(),
                explain: explain.as_deref(),
            })?;
            // The answers go to stdout first, so that a CSV that cannot be written loses nothing.
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                predict::print_text(&report);
            }
            if let Some(csv) = &csv {
                predict::write_csv(&report, csv)?;
            }
        }
        Command::Export {
            what:
                ExportWhat::Faces {
                    dir,
                    splits,
                    with_ssim,
                },
        } => {
            let exported = export::export_faces(&export::FacesRequest {
                workspace: &workspace,
                dir: &dir,
                splits: &splits,
                with_ssim,
            })?;
            export::print_text(&exported);
        }
        Command::DemoData {
            out,
            seed,
            videos,
            clip_seconds,
            force,
            media,
            contact_sheet,
        } => {
            let out = out.unwrap_or_else(demo_dataset);
            let media = media.unwrap_or_else(|| source_tree_path("vendor/media"));
            let summary = dfd_demo::demo_data(&dfd_demo::DemoRequest {
                out: &out,
                seed,
                videos,
                clip_seconds,
                media: &media,
                mtcnn_dir: &config.paths.mtcnn,
                mtcnn_params: &config.detect,
                contact_sheet: contact_sheet.as_deref(),
                force,
            })?;
            let [train, val, test] = summary.splits;
            let verb = if summary.reused {
                "up to date (same request; --force rebuilds):"
            } else {
                "wrote"
            };
            println!(
                "{verb} {} REAL + {} FAKE videos (train {train}, val {val}, test {test}) in {} ({:.1} s)",
                summary.real,
                summary.fake,
                out.display(),
                summary.seconds
            );
            for (split, people) in dfd_demo::Split::ALL.iter().zip(&summary.people) {
                println!("  {:<5} {}", split.as_str(), people.join(", "));
            }
        }
    }
    Ok(())
}

impl Command {
    /// Whether the command (may) train models and score with them, and so needs `train.device`
    /// and `score.device` to be usable here ([`Config::check_devices`]).
    fn computes_with_models(&self) -> (bool, bool) {
        match self {
            Command::Run { .. }
            | Command::Bench {
                what: BenchWhat::Rerun { .. },
            } => (true, true),
            Command::Evaluate { .. } | Command::Predict { .. } => (false, true),
            _ => (false, false),
        }
    }

    /// Whether the command runs stages over videos, and so needs the worker pool sized by
    /// `runner.threads` (the others build none).
    fn does_per_video_work(&self) -> bool {
        matches!(
            self,
            Command::Run { .. }
                | Command::Evaluate { .. }
                | Command::Bench { .. }
                | Command::Predict { .. }
        )
    }
}

/// `dfd bench decode|rerun` on a dataset folder.
fn bench_dataset(
    target: BenchTarget,
    dataset: Option<PathBuf>,
    common: &BenchCommon,
    config: &Config,
    workspace: &Workspace,
) -> Result<()> {
    let dataset = resolve_dataset(dataset.as_deref(), config)?;
    let report = bench::bench(target, config, dataset, workspace, common.repeats)?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        bench::print_text(&report);
    }
    Ok(())
}

/// Sizes rayon's global pool from `runner.threads` (0: rayon's default, one per core).
fn size_worker_pool(config: &Config) -> Result<()> {
    if config.runner.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(config.runner.threads)
            .build_global()
            .context("cannot size the worker pool")?;
    }
    Ok(())
}

/// Where the demo dataset is made by `make demo` (override with DFD_DEMO_DATASET).
fn demo_dataset() -> PathBuf {
    match std::env::var_os("DFD_DEMO_DATASET") {
        Some(path) => PathBuf::from(path),
        None => source_tree_path("data/demo"),
    }
}

/// The dataset `status` compares with: `--dataset`, else the config's, else the one the last run
/// used (while it exists), else the demo dataset; named on stderr, since every stage's freshness
/// depends on it.
fn status_dataset(cli: Option<&Path>, config: &Config, workspace: &Workspace) -> Result<PathBuf> {
    if cli.is_none() && config.dataset.is_none() {
        if let Some(last) = latest_dataset(workspace).filter(|p| p.is_dir()) {
            eprintln!("dataset: {} (the one the last run used)", last.display());
            return Ok(last);
        }
    }
    let dataset = resolve_dataset(cli, config)?;
    eprintln!("dataset: {}", dataset.display());
    Ok(dataset)
}

/// `--dataset`, else the config's `dataset`, else the demo dataset; made absolute.
fn resolve_dataset(cli: Option<&Path>, config: &Config) -> Result<PathBuf> {
    let (path, origin) = match (cli, &config.dataset) {
        (Some(path), _) => (path.to_path_buf(), "--dataset"),
        (None, Some(path)) => (path.clone(), "the config's `dataset`"),
        (None, None) => (demo_dataset(), "the demo dataset (no --dataset given)"),
    };
    path.canonicalize().with_context(|| {
        let hint = if origin.starts_with("the demo") {
            "; build it with `make demo`, or pass --dataset DIR"
        } else {
            ""
        };
        format!(
            "dataset folder {} ({origin}) does not exist{hint}",
            path.display()
        )
    })
}
