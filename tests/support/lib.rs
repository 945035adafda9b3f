//! Helpers of the end-to-end tests: finding the `dfd` binary and the real clips, building small
//! DFDC-format datasets, and running `dfd` against a throwaway workspace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub mod faults;

/// The smallest run that still trains, scores and reports: one MesoNet-4, two epochs (so the
/// training curves have a line), few frames (`decode.frames_per_video = 6`), a small bootstrap.
pub const SMALLEST_TRAINING: [&str; 12] = [
    "--set",
    "train.models=[\"mesonet4-single\"]",
    "--set",
    "train.epochs=2",
    "--set",
    "train.max_frames_per_video=4",
    "--set",
    "decode.frames_per_video=6",
    "--set",
    "train.batch_size=8",
    "--set",
    "aggregate.bootstrap_resamples=200",
];

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `dfd` binary of the same profile as the running test (`make test` builds it first), or the
/// one `$DFD_BIN` names (an older build, to watch a test fail before its fix).
pub fn dfd_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DFD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/dfd
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("dfd");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --release --workspace`, as `make test` does)",
        bin.display()
    );
    bin
}

/// A real clip fetched by scripts/setup.sh.
pub fn media(name: &str) -> PathBuf {
    let path = repo_root().join("vendor/media").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `bash scripts/setup.sh` (or `make test`)",
        path.display()
    );
    path
}

/// A DFDC-format dataset in a temporary folder.
pub struct Dataset {
    pub dir: tempfile::TempDir,
    entries: serde_json::Map<String, Value>,
}

impl Default for Dataset {
    fn default() -> Self {
        Self::new()
    }
}

impl Dataset {
    pub fn new() -> Dataset {
        Dataset {
            dir: tempfile::tempdir().expect("temp dir"),
            entries: serde_json::Map::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies a registry clip in under `name` and lists it with `label`.
    pub fn clip(mut self, name: &str, source: &str, label: &str) -> Dataset {
        std::fs::copy(media(source), self.path().join(name)).expect("copy clip");
        self.entries
            .insert(name.into(), serde_json::json!({ "label": label }));
        self
    }

    /// Writes arbitrary bytes under `name` and lists it with `label`.
    pub fn file(mut self, name: &str, bytes: &[u8], label: &str) -> Dataset {
        std::fs::write(self.path().join(name), bytes).expect("write file");
        self.entries
            .insert(name.into(), serde_json::json!({ "label": label }));
        self
    }

    /// Adds a raw metadata entry (for entries without a file, odd labels, escaping paths).
    pub fn entry(mut self, name: &str, entry: Value) -> Dataset {
        self.entries.insert(name.into(), entry);
        self
    }

    /// Two short labelled clips (4.0 s and 2.4 s, one REAL, one FAKE), written: the smallest
    /// dataset a whole run goes through, for tests of the cache and the command line.
    pub fn two_short_clips() -> Dataset {
        Dataset::new()
            .clip("talking.mp4", "single_face.mp4", "REAL")
            .clip("short.mp4", "carphone_pristine.mp4", "FAKE")
            .write()
    }

    /// Writes metadata.json.
    pub fn write(self) -> Dataset {
        let text = serde_json::to_string_pretty(&Value::Object(self.entries.clone())).unwrap();
        std::fs::write(self.path().join("metadata.json"), text).expect("write metadata.json");
        self
    }
}

/// `dfd` against one throwaway workspace.
pub struct Dfd {
    pub workspace: tempfile::TempDir,
}

impl Default for Dfd {
    fn default() -> Self {
        Self::new()
    }
}

impl Dfd {
    pub fn new() -> Dfd {
        Dfd {
            workspace: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(dfd_bin());
        command
            .arg("--workspace")
            .arg(self.workspace.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    /// Runs `dfd ARGS` to completion.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run dfd")
    }

    /// Runs `dfd ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "dfd {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `dfd ARGS`, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(!out.status.success(), "dfd {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `dfd demo-data` of `videos` videos with `seed` into `out`, then each video's split rewritten
    /// by `split`, called with its metadata entry in name order; returns the metadata written.
    pub fn demo_data_resplit(
        &self,
        out: &Path,
        videos: usize,
        seed: u64,
        mut split: impl FnMut(&Value) -> &'static str,
    ) -> Value {
        let (videos, seed) = (videos.to_string(), seed.to_string());
        let out_arg = out.to_str().expect("UTF-8 path");
        self.ok(&[
            "demo-data",
            "--out",
            out_arg,
            "--videos",
            &videos,
            "--seed",
            &seed,
        ]);
        let path = out.join("metadata.json");
        let text = std::fs::read_to_string(&path).expect("metadata.json");
        let mut meta: Value = serde_json::from_str(&text).expect("metadata JSON");
        // serde_json's map is ordered by name, so the rewrite is the same on every machine.
        for entry in meta.as_object_mut().expect("an object").values_mut() {
            entry["split"] = Value::from(split(entry));
        }
        std::fs::write(&path, serde_json::to_string_pretty(&meta).expect("JSON")).expect("write");
        meta
    }

    /// Six demo videos (three REAL, three FAKE, seed 3) in `out`, one of each class per split:
    /// the smallest dataset whose every split can be trained, validated and scored.
    pub fn tiny_demo_data(&self, out: &Path) -> Value {
        let mut next = std::collections::BTreeMap::from([("REAL", 0usize), ("FAKE", 0usize)]);
        self.demo_data_resplit(out, 6, 3, |entry| {
            let label = if entry["label"] == "FAKE" {
                "FAKE"
            } else {
                "REAL"
            };
            let i = next.get_mut(label).expect("two labels");
            *i += 1;
            ["train", "val", "test"][(*i - 1) % 3]
        })
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dfd")
    }

    /// The newest run record.
    pub fn last_run(&self) -> Value {
        let dir = self.workspace.path().join("runs");
        let mut records: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("runs/ exists")
            .map(|e| e.unwrap().path())
            .collect();
        records.sort();
        let text = std::fs::read_to_string(records.last().expect("a run record")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Outcome kind (`cached`, `computed`, `failed`, `skipped`) of each stage in the newest run.
    pub fn outcomes(&self) -> Vec<(String, String)> {
        self.last_run()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stage"].as_str().unwrap().to_string(),
                    s["outcome"]["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn outcome(&self, stage: &str) -> String {
        self.outcomes()
            .into_iter()
            .find(|(s, _)| s == stage)
            .unwrap_or_else(|| panic!("no stage {stage} in the run record"))
            .1
    }

    /// The newest run's report of `stage`.
    pub fn stage_report(&self, stage: &str) -> Value {
        self.last_run()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == stage)
            .cloned()
            .unwrap_or_else(|| panic!("no stage {stage} in the run record"))
    }

    /// Asserts that `stage`'s output in the newest run has the fingerprint and the content hash
    /// of its output in `reference`'s newest run: the same recipe, the same bytes.
    pub fn assert_same_output(&self, reference: &Dfd, stage: &str) {
        let (ours, theirs) = (self.manifest(stage), reference.manifest(stage));
        assert_eq!(ours["fingerprint"], theirs["fingerprint"], "{stage}");
        assert_eq!(ours["content_hash"], theirs["content_hash"], "{stage}");
    }

    /// Asserts that the newest run computed no shard of `stage` and took all `shards` from the
    /// shard store; `context` (the run's output) goes into the failure message.
    pub fn assert_taken_from_store(&self, stage: &str, shards: u64, context: &str) {
        let report = self.stage_report(stage);
        assert_eq!(report["shards_computed"], 0, "{stage}: {context}");
        assert_eq!(report["shards_from_store"], shards, "{stage}: {context}");
    }

    /// The manifest of the output `stage` had in the newest run.
    pub fn manifest(&self, stage: &str) -> Value {
        let fingerprint = self.stage_report(stage)["fingerprint"]
            .as_str()
            .expect("stage has a fingerprint")
            .to_string();
        let path = self.output_dir(stage, &fingerprint).join("_manifest.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    pub fn output_dir(&self, stage: &str, fingerprint: &str) -> PathBuf {
        self.workspace
            .path()
            .join("cache")
            .join(stage)
            .join(fingerprint)
    }

    /// All rows of table `table` of the output `stage` had in the newest run.
    /// The rows of one table of a stage's latest output, read by a schema's `from_batch`.
    pub fn rows<T, E: std::fmt::Debug>(
        &self,
        stage: &str,
        table: &str,
        from_batch: impl Fn(&arrow::record_batch::RecordBatch) -> Result<Vec<T>, E>,
    ) -> Vec<T> {
        self.table(stage, table)
            .iter()
            .flat_map(|b| from_batch(b).unwrap_or_else(|e| panic!("{stage}/{table}: {e:?}")))
            .collect()
    }

    pub fn table(&self, stage: &str, table: &str) -> Vec<arrow::record_batch::RecordBatch> {
        self.table_files(stage, table)
            .iter()
            .flat_map(|path| read_parquet(path))
            .collect()
    }

    /// The Parquet files of one table of a stage's latest output, in manifest order: what a
    /// reader outside dfd (pyarrow, Hugging Face `datasets`) is pointed at.
    pub fn table_files(&self, stage: &str, table: &str) -> Vec<PathBuf> {
        let manifest = self.manifest(stage);
        let dir = self.output_dir(stage, manifest["fingerprint"].as_str().unwrap());
        let mut files = Vec::new();
        for shard in manifest["shards"].as_array().unwrap() {
            for file in shard["files"].as_array().unwrap() {
                let path = file["path"].as_str().unwrap();
                if path.starts_with(&format!("{table}/")) {
                    files.push(dir.join(path));
                }
            }
        }
        files
    }
}

pub fn read_parquet(path: &Path) -> Vec<arrow::record_batch::RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{} is not readable Parquet: {e}", path.display()))
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Runs ffmpeg (installed by scripts/setup.sh) to make a derived test clip.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed by scripts/setup.sh");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `dfd --workspace WORKSPACE ARGS` to completion (for workspaces a test lays out itself).
pub fn dfd_at(workspace: &Path, args: &[&str]) -> Output {
    Command::new(dfd_bin())
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run dfd")
}

/// Every file under `dir`, as paths relative to it with `/` separators, sorted; symbolic links
/// are listed, never followed.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in read.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                walk(root, &path, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// True for a folder name that is a fingerprint: 20 lowercase hex digits.
pub fn is_fingerprint(name: &str) -> bool {
    name.len() == 20
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The finished outputs of a workspace: (stage, fingerprint, folder) for each
/// `cache/<stage>/<fingerprint>/` holding a `_manifest.json`.
pub fn finished_outputs(workspace: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for stage in std::fs::read_dir(workspace.join("cache"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for output in std::fs::read_dir(stage.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = output.file_name().to_string_lossy().into_owned();
            if is_fingerprint(&name) && output.path().join("_manifest.json").is_file() {
                let stage = stage.file_name().to_string_lossy().into_owned();
                out.push((stage, name, output.path()));
            }
        }
    }
    out.sort();
    out
}

/// What is wrong with a finished output folder: a file its manifest lists that is missing or of
/// another size, or a file it holds that the manifest does not list (besides `_manifest.json` and
/// the `_shards/NNNNN.json` record of each listed shard). Empty when it holds exactly its files.
pub fn output_problems(dir: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(dir.join("_manifest.json")) {
        Ok(text) => text,
        Err(e) => return vec![format!("{}: no readable manifest: {e}", dir.display())],
    };
    let manifest: Value = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => return vec![format!("{}: manifest is not JSON: {e}", dir.display())],
    };
    let mut expected = vec!["_manifest.json".to_string()];
    let mut problems = Vec::new();
    for shard in manifest["shards"].as_array().into_iter().flatten() {
        let index = shard["index"].as_u64().unwrap_or(u64::MAX);
        expected.push(format!("_shards/{index:05}.json"));
        for file in shard["files"].as_array().into_iter().flatten() {
            let path = file["path"].as_str().unwrap_or_default().to_string();
            match std::fs::metadata(dir.join(&path)) {
                Ok(meta) if Some(meta.len()) == file["bytes"].as_u64() => {}
                Ok(meta) => problems.push(format!(
                    "{}: {path} has {} bytes, the manifest says {}",
                    dir.display(),
                    meta.len(),
                    file["bytes"]
                )),
                Err(e) => problems.push(format!("{}: {path}: {e}", dir.display())),
            }
            expected.push(path);
        }
    }
    expected.sort();
    for file in tree(dir) {
        if expected.binary_search(&file).is_err() {
            problems.push(format!("{}: {file} is not in the manifest", dir.display()));
        }
    }
    problems
}
