//! The pipeline's configuration: one TOML file holding every parameter (`dfd.toml`), overridable on
//! the command line with `--set section.key=value`. Unknown keys are errors that name the key, since a
//! misspelt parameter silently left at its default is how wrong experiments get published.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dfd_stages::aggregate::AggregateParams;
use dfd_stages::crop::CropParams;
use dfd_stages::decode::DecodeParams;
use dfd_stages::detect::MtcnnParams;
use dfd_stages::report::ReportParams;
use dfd_stages::score::ScoreParams;
use dfd_stages::ssim::SsimParams;
use dfd_stages::train::{TrainParams, TrainSection};
use serde::{Deserialize, Serialize};

/// `runner.threads` may be at most this many times the cores: more only adds switching, and a
/// mistyped huge value would spawn thousands of threads.
const MAX_THREADS_PER_CORE: usize = 4;

/// The name of the config file picked up from the current directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "dfd.toml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The DFDC-format dataset folder; `--dataset` wins over it. Relative paths are taken from the
    /// config file's folder.
    pub dataset: Option<PathBuf>,
    pub runner: RunnerConfig,
    pub paths: PathsConfig,
    pub decode: DecodeParams,
    pub detect: MtcnnParams,
    pub crop: CropParams,
    pub ssim: SsimParams,
    pub train: TrainSection,
    pub score: ScoreParams,
    /// Frame scores -> video scores, metrics, bootstrap intervals.
    pub aggregate: AggregateParams,
    /// Which split and rule the summary quotes; the plots' font.
    pub report: ReportParams,
}

/// Where model weights live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathsConfig {
    /// Folder with MTCNN's pnet.onnx, rnet.onnx and onet.onnx (scripts/setup.sh fetches them).
    pub mtcnn: PathBuf,
    /// The ONNX Runtime shared library (default: $ORT_DYLIB_PATH, else the set-up's copy).
    pub onnxruntime: PathBuf,
    /// EfficientNet-Lite0's ImageNet weights, read when `train.pretrained` is on (the set-up's
    /// copy by default; checked against their pinned sha256 whatever the path).
    pub imagenet_weights: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        let vendor = source_tree_path("vendor");
        PathsConfig {
            mtcnn: std::env::var_os("DFD_MTCNN_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| vendor.join("mtcnn")),
            onnxruntime: std::env::var_os("ORT_DYLIB_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| vendor.join("onnxruntime/libonnxruntime.so.1.31.1")),
            imagenet_weights: source_tree_path(
                dfd_models::arch::efficientnet_lite0::IMAGENET_WEIGHTS,
            ),
        }
    }
}

/// How the runner works; nothing here changes any output except `videos_per_shard`, which decides
/// which rows share a Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Videos per Parquet shard: the unit of resume after a crash and of memory use.
    pub videos_per_shard: usize,
    /// Worker threads for per-video work; 0 = one per core.
    pub threads: usize,
    /// Videos that go through the streaming stages (decode .. ssim) together, whose raw frames
    /// are in memory at once (about 124 MB a 1080p video); 0 = one per two worker threads (a
    /// video's decoding and the detections started on its frames keep about two cores busy).
    pub stream_videos: usize,
    /// Niceness added to the threads `detect` runs on (0-19; 0 = the workers above, at the
    /// process's priority): decoding, the streamed pass's critical path, takes the cores first and
    /// detection the time it leaves; detection also yields to other work on the machine. Speed
    /// only.
    pub detection_nice: u8,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            videos_per_shard: 8,
            threads: 0,
            stream_videos: 0,
            detection_nice: 10,
        }
    }
}

impl Config {
    /// Loads `explicit` (which must exist), else `./dfd.toml` if present, else the defaults; then
    /// applies the `key=value` overrides.
    pub fn load(explicit: Option<&Path>, overrides: &[String]) -> Result<Config> {
        let (mut table, source, base) = match explicit {
            Some(path) => (read_table(path)?, path.display().to_string(), path.parent()),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => (
                read_table(Path::new(DEFAULT_CONFIG_FILE))?,
                DEFAULT_CONFIG_FILE.to_string(),
                Some(Path::new(".")),
            ),
            None => (toml::Table::new(), "defaults".to_string(), None),
        };
        let from_file_dataset = table.contains_key("dataset");
        for item in overrides {
            apply_override(&mut table, item)?;
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = e.path().to_string();
                anyhow::anyhow!("config ({source}): key `{path}`: {}", e.into_inner())
            })?;
        if let (true, Some(base), Some(dataset)) = (from_file_dataset, base, &config.dataset) {
            if dataset.is_relative() {
                config.dataset = Some(base.join(dataset));
            }
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        if self.runner.videos_per_shard == 0 {
            bail!("runner.videos_per_shard must be at least 1");
        }
        if self.runner.detection_nice > 19 {
            bail!(
                "runner.detection_nice must be in 0..=19 (niceness added to detection's threads), \
                 got {}",
                self.runner.detection_nice
            );
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let most_threads = MAX_THREADS_PER_CORE * cores;
        if self.runner.threads > most_threads {
            bail!(
                "runner.threads = {} is more than {MAX_THREADS_PER_CORE}x this machine's cores \
                 ({cores}): at most {most_threads}; 0 means one per core",
                self.runner.threads
            );
        }
        let face = dfd_models::FACE_SIZE;
        if self.crop.size as usize != face {
            bail!(
                "crop.size = {}: the detectors take {face}x{face} faces, so `train` and `score` \
                 would fail after all the preprocessing; use {face}",
                self.crop.size
            );
        }
        self.decode.validate().map_err(anyhow::Error::msg)?;
        self.detect.validate().map_err(anyhow::Error::msg)?;
        self.crop.validate().map_err(anyhow::Error::msg)?;
        self.ssim.validate().map_err(anyhow::Error::msg)?;
        self.train_params().validate().map_err(anyhow::Error::msg)?;
        self.score.validate().map_err(anyhow::Error::msg)?;
        self.aggregate.validate().map_err(anyhow::Error::msg)?;
        if !self.aggregate.rules.contains(&self.report.rule) {
            bail!(
                "report.rule `{}` is not among aggregate.rules",
                self.report.rule.as_str()
            );
        }
        Ok(())
    }

    /// Whether the devices asked for can be had here, for a command that trains (`train.device`)
    /// and one that scores (`score.device`): called before any work, so that a GPU that this
    /// build or machine lacks fails at once, naming the key and what is missing, not after an
    /// hour of preprocessing, and never by running on the CPU instead. Apart from
    /// [`Config::validate`] because it looks at the machine (and loads ONNX Runtime for a GPU):
    /// `dfd config` and `dfd status` work with a GPU config on a machine without one.
    pub fn check_devices(&self, trains: bool, scores: bool) -> Result<()> {
        if trains {
            let device = self.train_params().device;
            dfd_models::resolve_device(device)
                .map_err(|e| anyhow::anyhow!("train.device = \"{device}\": {e}"))?;
        }
        if scores {
            dfd_stages::score::check_score_device(self.score.device)?;
        }
        Ok(())
    }

    /// The training values in effect: `[train]`'s profile with its overrides applied.
    pub fn train_params(&self) -> TrainParams {
        TrainParams::from_section(&self.train)
    }

    /// The whole configuration as TOML, every key with its value (`dfd config`).
    pub fn to_toml(&self) -> Result<String> {
        let shown = Config {
            train: self.train.resolved(),
            ..self.clone()
        };
        toml::to_string_pretty(&shown).context("cannot write the config as TOML")
    }
}

/// A path inside the source tree `dfd` was built from, where `scripts/setup.sh` puts the weights
/// and media (`vendor/`) and `make demo` the demo dataset (`data/demo`).
pub fn source_tree_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("config file {} is not valid TOML", path.display()))
}

/// Applies `section.key=value`; the value is read as TOML (`20`, `0.5`, `true`, `"png"`) and, failing
/// that, taken as a bare string (`png`).
fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let (key, raw) = item.split_once('=').with_context(|| {
        format!("--set `{item}`: expected key=value, e.g. decode.frames_per_video=10")
    })?;
    let key = key.trim();
    let value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|k| !k.is_empty())
        .with_context(|| format!("--set `{item}`: empty key"))?;
    let mut node = table;
    for part in parts {
        node = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("--set `{item}`: `{part}` is not a section"))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dfd.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn unknown_keys_are_named() {
        let (_dir, path) = write("[decode]\nframes_per_vid = 3\n");
        let err = Config::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(err.contains("decode.frames_per_vid"), "{err}");
        let err = Config::load(None, &["runner.shards=3".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("runner.shards"), "{err}");
    }

    #[test]
    fn overrides_win_over_the_file_and_dataset_is_relative_to_it() {
        let (dir, path) = write("dataset = \"videos\"\n[decode]\nframes_per_video = 3\n");
        let config = Config::load(
            Some(&path),
            &[
                "decode.frames_per_video=7".into(),
                "decode.encoding=jpeg".into(),
            ],
        )
        .unwrap();
        assert_eq!(config.decode.frames_per_video, 7);
        assert_eq!(
            config.decode.encoding,
            dfd_stages::decode::EncodingParam::Jpeg
        );
        assert_eq!(config.dataset, Some(dir.path().join("videos")));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for (set, key) in [
            ("decode.interval_s=0", "decode.interval_s"),
            ("decode.interval_s=1e-12", "decode.interval_s"),
            ("runner.threads=100000", "runner.threads"),
            ("crop.size=192", "crop.size"),
        ] {
            let err = Config::load(None, &[set.into()]).unwrap_err().to_string();
            assert!(err.contains(key), "{set}: {err}");
        }
        Config::load(None, &["decode.interval_s=0.001".into()]).unwrap();
    }

    #[test]
    fn aggregate_and_report_sections_are_checked() {
        let config = Config::load(
            None,
            &[
                "aggregate.bootstrap_resamples=50".into(),
                "aggregate.rules=[\"vote\"]".into(),
                "report.rule=vote".into(),
            ],
        )
        .unwrap();
        assert_eq!(config.aggregate.bootstrap_resamples, 50);
        assert_eq!(config.report.rule, dfd_stages::aggregate::Rule::Vote);
        let refused: [(&[&str], &str); 5] = [
            (&["aggregate.treshold=0.4"], "aggregate.treshold"),
            (&["aggregate.threshold=1.5"], "aggregate.threshold"),
            (&["aggregate.confident.fake_above=2"], "fake_above"),
            (&["report.rule=median"], "report.rule"),
            (
                &["aggregate.rules=[\"mean\"]", "report.rule=vote"],
                "report.rule",
            ),
        ];
        for (overrides, named) in refused {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            let err = Config::load(None, &overrides).unwrap_err().to_string();
            assert!(err.contains(named), "{overrides:?}: {err}");
        }
    }

    /// The devices load from `--set` into the values training and scoring use; `config` is
    /// not where a missing GPU is noticed ([`Config::check_devices`] is), and on this build (no
    /// GPU backend) that check refuses a GPU for training, and only for a command that trains.
    #[test]
    fn devices_are_read_and_checked_only_for_the_commands_that_use_them() {
        use dfd_models::ComputeDevice;
        let config = Config::load(
            None,
            &["train.device=cuda:2".into(), "score.device=cuda".into()],
        )
        .unwrap();
        assert_eq!(config.train_params().device, ComputeDevice::Cuda(2));
        assert_eq!(config.score.device, ComputeDevice::Cuda(0));
        config.check_devices(false, false).unwrap();
        let defaults = Config::load(None, &[]).unwrap();
        assert_eq!(defaults.train_params().device, ComputeDevice::Cpu);
        defaults.check_devices(true, true).unwrap();
        #[cfg(not(feature = "tch"))]
        {
            let err = config.check_devices(true, false).unwrap_err().to_string();
            assert!(err.starts_with(r#"train.device = "cuda:2": "#), "{err}");
            assert!(err.contains("make gpu"), "{err}");
        }
    }

    #[test]
    fn the_written_config_loads_back_identically() {
        let config = Config::default();
        let (_dir, path) = write(&config.to_toml().unwrap());
        let loaded = Config::load(Some(&path), &[]).unwrap();
        // `[train]` is written with every key resolved (the profile's values spelt out).
        assert_eq!(loaded.train_params(), config.train_params());
        let expected = Config {
            train: config.train.resolved(),
            ..config
        };
        assert_eq!(loaded, expected);
    }
}
