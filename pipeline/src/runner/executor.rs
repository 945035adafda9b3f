//! Running one stage against the cache: hit, or compute shard by shard with resume, then commit.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use dfd_schemas::{ErrorRow, TableRow};
use dfd_stages::{Sharding, Stage, StageContext, StageInput, PARTITION_TABLE};

use super::report::{Outcome, StageReport};
use super::shard::{
    check_declared, finished_input_digest, input_name, key_of, stored_form, write_tables, Recipe,
};
use super::stream::{Chain, StreamPlan};
use crate::cache::atomic::fsync_dir;
use crate::cache::parquet_io::{filter_videos, read_parquet};
use crate::cache::shard_store::ShardStore;
use crate::cache::verify::{self, Damage};
use crate::cache::{
    fingerprint, partial, trash, FileRecord, FingerprintInput, Manifest, ShardRecord, Workspace,
};
use crate::progress::StageBar;
use crate::runs::RunJournal;

/// Input tables already read, keyed `<stage>/<table>`.
pub(super) type LoadedInputs = BTreeMap<String, Vec<RecordBatch>>;

/// How a run treats one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Use the cached output if there is one, else compute.
    Normal,
    /// Compute even if a cached output exists (`--force`, `--only`, `--from`).
    Force,
    /// Use the cached output; fail if there is none (upstream of `--only` / `--from`).
    CacheOnly,
}

/// Upstream outputs a stage reads, by stage name.
pub type Upstream = BTreeMap<String, Arc<Manifest>>;

/// A stage's cache key and what went into it.
pub struct Resolved {
    pub fingerprint: String,
    /// The stage's parameters as keyed (see `dfd_stages::key_params`).
    pub params: serde_json::Value,
    pub inputs: BTreeMap<String, String>,
    pub external: Option<String>,
    pub videos_per_shard: Option<usize>,
    /// The output tables' schemas as keyed.
    pub output_schemas: Vec<String>,
}

impl Resolved {
    /// The recipe part of the key (a copy: shard keys are made from it).
    pub fn recipe(&self) -> Recipe {
        Recipe {
            params: self.params.clone(),
            external: self.external.clone(),
            output_schemas: self.output_schemas.clone(),
        }
    }
}

pub struct Executor {
    pub workspace: Workspace,
    pub videos_per_shard: usize,
    /// Outputs finished in this run, by stage: a per-video stage takes its shard plan from ingest's
    /// `videos` table even when it does not read that table itself.
    finished: Mutex<BTreeMap<String, Arc<Manifest>>>,
    /// The run's record, told when a stage begins and ends (none for `status` and tests).
    journal: Option<Arc<RunJournal>>,
    /// Stages whose cached output a reader found damaged in this run: marked stale, to be
    /// recomputed by another pass of the run.
    damaged: Mutex<BTreeSet<String>>,
    /// Input files whose sha256 was checked in this run (each is hashed once however many shards
    /// read it).
    verified: Mutex<HashSet<PathBuf>>,
    /// Which stages the current pass executes and how (see [`StreamPlan`]); none outside `run`.
    plan: Mutex<Option<Arc<StreamPlan>>>,
    /// Shards (stage, key) that a streamed pass of this run computed and filed in the store.
    streamed: Mutex<HashSet<(String, String)>>,
    /// Videos a streamed pass takes together (`runner.stream_videos`; 0 = one per two workers).
    pub stream_videos: usize,
}

impl Executor {
    pub fn new(workspace: Workspace, videos_per_shard: usize) -> Executor {
        Executor {
            workspace,
            videos_per_shard,
            finished: Mutex::new(BTreeMap::new()),
            journal: None,
            damaged: Mutex::new(BTreeSet::new()),
            verified: Mutex::new(HashSet::new()),
            plan: Mutex::new(None),
            streamed: Mutex::new(HashSet::new()),
            stream_videos: 0,
        }
    }

    /// Tells `journal` when each stage begins and ends.
    pub fn with_journal(mut self, journal: Arc<RunJournal>) -> Executor {
        self.journal = Some(journal);
        self
    }

    /// Brings the stage's output up to date, returns it, and remembers it for later stages.
    pub fn execute(
        &self,
        stage: &dyn Stage,
        upstream: &Upstream,
        mode: Mode,
    ) -> Result<(Arc<Manifest>, StageReport)> {
        let (manifest, report) = self.bring_up_to_date(stage, upstream, mode)?;
        if let Ok(mut finished) = self.finished.lock() {
            finished.insert(stage.name().to_string(), manifest.clone());
        }
        Ok((manifest, report))
    }

    /// Records how a stage ended in the run's record (the scheduler calls this for every stage it
    /// ran or skipped for a failure).
    pub fn note_ended(&self, report: &StageReport) {
        if let Some(journal) = &self.journal {
            journal.stage_ended(report);
        }
    }

    /// Records which per-video stages this array task files (known once its whole-table stages
    /// are done: `score` is one when models exist), so that a plain run after the array can
    /// name the tasks whose shards are missing.
    pub(super) fn note_array_stages(&self, stages: Vec<String>) {
        if let Some(journal) = &self.journal {
            journal.array_stages(stages);
        }
    }

    /// The stages found damaged by a reader since the last call, and forgets them.
    pub fn take_damaged(&self) -> BTreeSet<String> {
        self.damaged
            .lock()
            .map(|mut set| std::mem::take(&mut *set))
            .unwrap_or_default()
    }

    /// Computes the fingerprint of `stage` given its upstream outputs.
    pub fn resolve(&self, stage: &dyn Stage, upstream: &Upstream) -> Result<Resolved> {
        let mut inputs = BTreeMap::new();
        for input in stage.inputs() {
            let manifest = upstream.get(input.stage).with_context(|| {
                format!("stage {} needs the output of {}", stage.name(), input.stage)
            })?;
            inputs.insert(input_name(input), manifest.input_hash(input.table.name));
        }
        let videos_per_shard =
            (stage.sharding() == Sharding::PerVideo).then_some(self.videos_per_shard);
        let Recipe {
            params,
            external,
            output_schemas,
        } = Recipe::of(stage)?;
        let fingerprint = fingerprint(&FingerprintInput {
            stage: stage.name(),
            version: stage.version(),
            params: &params,
            inputs: &inputs,
            external: external.as_deref(),
            videos_per_shard,
            output_schemas: &output_schemas,
        });
        Ok(Resolved {
            fingerprint,
            params,
            inputs,
            external,
            videos_per_shard,
            output_schemas,
        })
    }

    fn bring_up_to_date(
        &self,
        stage: &dyn Stage,
        upstream: &Upstream,
        mode: Mode,
    ) -> Result<(Arc<Manifest>, StageReport)> {
        let started = Instant::now();
        let resolved = self.resolve(stage, upstream)?;
        let name = stage.name();
        let mut damaged = false;
        if mode != Mode::Force {
            if let Some(manifest) = self.workspace.finished(name, &resolved.fingerprint) {
                match self.check_hit(name, &manifest) {
                    Ok(()) => {
                        let report = report_of(&manifest, Outcome::Cached, 0, 0, started);
                        return Ok((Arc::new(manifest), report));
                    }
                    Err(damage) => {
                        // Marked stale; recomputed below, even upstream of --only / --from.
                        eprintln!("{name}: cached output damaged ({damage}); recomputing it");
                        verify::mark_damaged(
                            &self.workspace,
                            name,
                            &resolved.fingerprint,
                            &damage,
                        )?;
                        damaged = true;
                    }
                }
            }
        }
        if mode == Mode::CacheOnly && !damaged {
            bail!(
                "stage {name} has no cached output for the current dataset and parameters \
                 (fingerprint {}); run it first (`dfd run` or `dfd run --only {name}`)",
                resolved.fingerprint
            );
        }
        let partial = self.workspace.partial_dir(name, &resolved.fingerprint);
        if mode == Mode::Force && fs::symlink_metadata(&partial).is_ok() {
            fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot clear {}", partial.display()))?;
        }
        let shards_dir = partial.join(partial::SHARDS);
        fs::create_dir_all(&shards_dir)
            .with_context(|| format!("cannot create {}", shards_dir.display()))?;
        if let Some(journal) = &self.journal {
            journal.stage_started(name, &resolved.fingerprint);
        }
        // Finished shards of an interrupted run; anything else it left is removed.
        let mut done = partial::sweep(&partial)?;

        let plan = self.shard_plan(stage, upstream)?;
        // Whole-table stages (ingest) count as one unit: they have no per-video progress to show.
        let units = match stage.sharding() {
            Sharding::PerVideo => plan.iter().map(|s| s.len() as u64).sum(),
            Sharding::Whole => 1,
        };
        let bar = StageBar::new(name, units, "videos");
        let mut shards = Vec::with_capacity(plan.len());
        let (mut computed, mut reused, mut adopted) = (0, 0, 0);
        // A forced run computes every shard: taking them from the store would defeat `--force`.
        let store = (mode != Mode::Force).then(|| ShardStore::new(&self.workspace, name));
        // Per-video stages that stream go a few videos at a time, carrying the stages after them
        // that this run would compute anyway, and recomputing inputs kept reduced on disk.
        let stream_plan = stage
            .spec()
            .streams
            .then(|| self.plan.lock().ok().and_then(|p| p.clone()))
            .flatten();
        let chain = if stage.spec().streams && stage.sharding() == Sharding::PerVideo {
            let finished = self.finished.lock().map(|f| f.clone()).unwrap_or_default();
            let lookup = |name: &str| upstream.get(name).or_else(|| finished.get(name)).cloned();
            Some(match &stream_plan {
                Some(stream_plan) => stream_plan.chain(stage, mode, &lookup)?,
                None => Chain::alone(stage, &lookup)?,
            })
        } else {
            None
        };
        for (index, video_ids) in plan.into_iter().enumerate() {
            if let Some(record) = done.remove(&index) {
                let units = if stage.sharding() == Sharding::PerVideo {
                    video_ids.len()
                } else {
                    1
                };
                dfd_stages::Progress::advance(&bar, units as u64);
                shards.push(record);
                reused += 1;
                continue;
            }
            let task = ShardTask {
                upstream,
                resolved: &resolved,
                store: store.as_ref(),
                partial: &partial,
                index,
                video_ids,
                bar: &bar,
            };
            let (record, origin) = match &chain {
                Some(chain) => self.stream_shard(chain, task),
                None => self.compute_shard(stage, task),
            }
            .with_context(|| format!("stage {name}, shard {index}"))?;
            record.write(&shards_dir.join(format!("{index:05}.json")))?;
            // A shard a streamed pass of this run filed for this stage was computed by the run.
            let streamed = record
                .key
                .as_ref()
                .is_some_and(|k| self.was_streamed(name, k));
            match origin {
                ShardOrigin::Store if !streamed => adopted += 1,
                ShardOrigin::Computed | ShardOrigin::Store => computed += 1,
            }
            shards.push(record);
        }
        bar.finish();
        if reused > 0 {
            tracing::info!(
                stage = name,
                "resumed: {reused} shard(s) kept from an interrupted run"
            );
        }
        if adopted > 0 {
            tracing::info!(
                stage = name,
                "{adopted} shard(s) taken from the shard store (same recipe and input content)"
            );
        }
        // The folder must hold exactly the shards of this plan: nothing else is committed.
        let kept = partial::sweep(&partial)?;
        if kept.len() != shards.len() {
            bail!(
                "stage {name}: {} holds {} finished shard(s), expected {}",
                partial.display(),
                kept.len(),
                shards.len()
            );
        }

        let manifest = Manifest {
            stage: name.to_string(),
            version: stage.version(),
            fingerprint: resolved.fingerprint.clone(),
            params: resolved.params,
            inputs: resolved.inputs,
            external: resolved.external,
            videos_per_shard: resolved.videos_per_shard,
            content_hash: Manifest::content_hash_of(&shards),
            seconds: shards.iter().map(|s| s.seconds).sum(),
            shards,
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            reduced: stage
                .outputs()
                .iter()
                .filter(|t| !stage.stored_in_full(t))
                .map(|t| t.name.to_string())
                .collect(),
        };
        manifest.write(&partial)?;
        self.commit(name, &resolved.fingerprint, &partial)?;
        let mut report = report_of(&manifest, Outcome::Computed, computed, reused, started);
        report.shards_from_store = adopted;
        Ok((Arc::new(manifest), report))
    }

    /// The cheap check of a cache hit: every file at its recorded size. Files the manifest does
    /// not list (temporaries an earlier dfd committed) are removed, and so is a `.partial` folder
    /// of the same fingerprint (a `--force` recompute killed before its commit), which no run
    /// would resume.
    fn check_hit(&self, stage: &str, manifest: &Manifest) -> Result<(), Damage> {
        let dir = self.workspace.output_dir(stage, &manifest.fingerprint);
        verify::check_sizes(&dir, manifest)?;
        let partial = self.workspace.partial_dir(stage, &manifest.fingerprint);
        if fs::symlink_metadata(&partial).is_ok() {
            if let Err(e) = trash::discard(&self.workspace, &partial) {
                tracing::warn!("{stage}: {e:#}");
            }
        }
        match verify::remove_unlisted(&dir, manifest) {
            Ok(removed) if !removed.is_empty() => tracing::warn!(
                "{stage}: removed from {} file(s) its manifest does not list: {}",
                dir.display(),
                removed.join(", ")
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("{stage}: {e:#}"),
        }
        Ok(())
    }

    /// The videos of each shard: one shard of everything for whole-table stages, consecutive runs of
    /// `videos_per_shard` videos of the `videos` table for per-video stages.
    fn shard_plan(&self, stage: &dyn Stage, upstream: &Upstream) -> Result<Vec<Vec<String>>> {
        let partition = upstream.get(PARTITION_TABLE.stage).cloned().or_else(|| {
            let finished = self.finished.lock().ok()?;
            finished.get(PARTITION_TABLE.stage).cloned()
        });
        let videos = match partition {
            Some(manifest) => self.video_ids(&manifest)?,
            None if stage.sharding() == Sharding::PerVideo => bail!(
                "stage {} is per video but the {} table is not available",
                stage.name(),
                PARTITION_TABLE.table.name
            ),
            None => Vec::new(),
        };
        Ok(match stage.sharding() {
            Sharding::Whole => vec![videos],
            Sharding::PerVideo => videos
                .chunks(self.videos_per_shard)
                .map(<[String]>::to_vec)
                .collect(),
        })
    }

    pub(super) fn video_ids(&self, manifest: &Manifest) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for batch in self.read_table(manifest, PARTITION_TABLE.table.name, None)? {
            let column = batch
                .column_by_name("video_id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .context("videos table has no utf8 video_id column")?;
            ids.extend((0..column.len()).map(|i| column.value(i).to_string()));
        }
        Ok(ids)
    }

    /// Reads table `table` of a finished output: the whole table, or only shard `shard`.
    pub(super) fn read_table(
        &self,
        manifest: &Manifest,
        table: &str,
        shard: Option<usize>,
    ) -> Result<Vec<RecordBatch>> {
        let dir = self
            .workspace
            .output_dir(&manifest.stage, &manifest.fingerprint);
        let files: Vec<_> = match shard {
            None => manifest.files_of(table).collect(),
            Some(index) => manifest
                .shards
                .get(index)
                .with_context(|| {
                    format!(
                        "{} has no shard {index} (sharded differently?)",
                        manifest.stage
                    )
                })?
                .files
                .iter()
                .filter(|f| f.table() == table)
                .collect(),
        };
        let mut batches = Vec::new();
        for file in files {
            self.check_input(manifest, &dir, file)?;
            batches.extend(read_parquet(&dir.join(&file.path))?);
        }
        Ok(batches)
    }

    /// Checks an input file's size and sha256 against its manifest before it is read (once per
    /// run). On a mismatch the output it belongs to is marked damaged, the run is told to
    /// recompute it, and the reading stage fails with a message naming the file.
    fn check_input(&self, manifest: &Manifest, dir: &Path, file: &FileRecord) -> Result<()> {
        let path = dir.join(&file.path);
        if self.verified.lock().is_ok_and(|v| v.contains(&path)) {
            return Ok(());
        }
        match verify::check_file(dir, file) {
            Ok(()) => {
                if let Ok(mut verified) = self.verified.lock() {
                    verified.insert(path);
                }
                Ok(())
            }
            Err(damage) => {
                let stage = &manifest.stage;
                verify::mark_damaged(&self.workspace, stage, &manifest.fingerprint, &damage)?;
                if let Ok(mut damaged) = self.damaged.lock() {
                    damaged.insert(stage.clone());
                }
                Err(anyhow!(
                    "input from {stage} is damaged: {damage} ({}); marked stale, to be recomputed",
                    dir.display()
                ))
            }
        }
    }

    /// Computes shard `index` of a stage into its `.partial` folder, or, for a per-video stage
    /// whose shard key is in `store`, takes that shard from the store instead.
    fn compute_shard(
        &self,
        stage: &dyn Stage,
        task: ShardTask,
    ) -> Result<(ShardRecord, ShardOrigin)> {
        let ShardTask {
            upstream,
            resolved,
            store,
            partial,
            index,
            video_ids,
            bar,
        } = task;
        let started = Instant::now();
        let per_video = stage.sharding() == Sharding::PerVideo;
        let keep: HashSet<&str> = video_ids.iter().map(String::as_str).collect();
        // What the shard reads of each input: loaded now where the key needs the rows (a
        // whole-table input restricted to the shard's videos), else only named until the key has
        // been looked up (a per-video input's own shard, whose digest its manifest records).
        let (digests, mut tables) = self.input_digests(stage, upstream, index, &keep)?;
        drop(keep);
        let key = per_video.then(|| key_of(stage, &resolved.recipe(), &video_ids, &digests));
        let videos = video_ids.len();
        if let Some(record) = take_from_store(store, key.as_deref(), videos, (partial, index))? {
            dfd_stages::Progress::advance(bar, videos as u64);
            return Ok((record, ShardOrigin::Store));
        }
        let mut input = StageInput::new(video_ids);
        for def in stage.inputs() {
            let batches = match tables.remove(&input_name(def)) {
                Some(batches) => batches,
                None => {
                    let manifest = &upstream[def.stage];
                    if manifest.is_reduced(def.table.name) {
                        bail!(
                            "stage {} reads {}, which {} keeps on disk in reduced form; only a \
                             stage that streams can have it recomputed",
                            stage.name(),
                            input_name(def),
                            def.stage
                        );
                    }
                    self.read_table(manifest, def.table.name, Some(index))?
                }
            };
            input = input.with_table(&def.table, batches);
        }
        // Created by the stage if it keeps anything there.
        let scratch = self.workspace.scratch_dir(stage.name());
        let mut output = stage.run(
            &input,
            &StageContext {
                progress: bar,
                scratch: Some(&scratch),
                frames: None,
            },
        )?;
        check_declared(stage, &output)?;
        let mut tables = BTreeMap::new();
        for table in stage.outputs() {
            tables.insert(table.name, stored_form(stage, table, output.take(table))?);
        }
        let files = write_tables(stage, partial, index, tables)?;
        let record = ShardRecord {
            index,
            videos,
            files,
            seconds: started.elapsed().as_secs_f64(),
            key,
        };
        // The store is a second way to the same bytes: failing to file a shard there costs a
        // later recompute, never this run.
        self.file_in_store(stage.name(), partial, &record);
        Ok((record, ShardOrigin::Computed))
    }

    /// Files a computed shard in the shard store. The store is a second way to the same bytes:
    /// failing to file a shard there costs a later recompute, never this run.
    pub(super) fn file_in_store(&self, stage: &str, dir: &Path, record: &ShardRecord) {
        if record.key.is_none() {
            return;
        }
        if let Err(e) = ShardStore::new(&self.workspace, stage).deposit(dir, record) {
            tracing::warn!(
                "{stage}: shard {} not filed in the shard store: {e:#}",
                record.index
            );
        }
    }

    /// The digest of every input of `stage` as shard `index` reads it (keyed `<stage>/<table>`),
    /// and the inputs that had to be loaded to know it: a whole-table input restricted to the
    /// shard's videos `keep`. A per-video input's own shard is only named: its digest is in its
    /// manifest, and it is read once the key has been looked up. Whole-table stages read
    /// everything and have no shard key.
    pub(super) fn input_digests(
        &self,
        stage: &dyn Stage,
        upstream: &Upstream,
        index: usize,
        keep: &HashSet<&str>,
    ) -> Result<(BTreeMap<String, String>, LoadedInputs)> {
        let per_video = stage.sharding() == Sharding::PerVideo;
        let mut digests = BTreeMap::new();
        let mut loaded = BTreeMap::new();
        for input in stage.inputs() {
            let manifest = upstream.get(input.stage).with_context(|| {
                format!("stage {} needs the output of {}", stage.name(), input.stage)
            })?;
            let table = input.table.name;
            let name = input_name(input);
            if !per_video {
                loaded.insert(name, self.read_table(manifest, table, None)?);
                continue;
            }
            if manifest.videos_per_shard.is_none() {
                let rows = filter_videos(self.read_table(manifest, table, None)?, keep)?;
                loaded.insert(name.clone(), rows);
            }
            let rows = || loaded.get(&name).cloned().context("rows loaded above");
            let digest = finished_input_digest(input, manifest, index, &rows)?;
            digests.insert(name, digest);
        }
        Ok((digests, loaded))
    }

    /// The output of `stage` finished in this run, if any.
    pub(super) fn finished_output(&self, stage: &str) -> Option<Arc<Manifest>> {
        self.finished.lock().ok()?.get(stage).cloned()
    }

    /// Whether a streamed pass of this run filed shard `key` of `stage`.
    fn was_streamed(&self, stage: &str, key: &str) -> bool {
        self.streamed
            .lock()
            .is_ok_and(|s| s.contains(&(stage.to_string(), key.to_string())))
    }

    /// Remembers that a streamed pass of this run filed shard `key` of `stage`.
    pub(super) fn note_streamed(&self, stage: &str, key: &str) {
        if let Ok(mut streamed) = self.streamed.lock() {
            streamed.insert((stage.to_string(), key.to_string()));
        }
    }

    /// The shards (stage, key) streamed passes filed since the last call, and forgets them.
    pub(super) fn take_streamed(&self) -> Vec<(String, String)> {
        self.streamed
            .lock()
            .map(|mut s| s.drain().collect())
            .unwrap_or_default()
    }

    /// Sets which stages this pass of the run executes and how, for streamed passes.
    pub fn plan_streams(&self, plan: StreamPlan) {
        if let Ok(mut slot) = self.plan.lock() {
            *slot = Some(Arc::new(plan));
        }
    }

    /// Renames the computed folder into place. An older copy (on `--force`) first leaves the
    /// cache for the trash, and is deleted only once the new one is in place: a crash between the
    /// two renames leaves the whole new output in its `.partial` folder, which the next run
    /// commits.
    fn commit(&self, stage: &str, fingerprint: &str, partial: &Path) -> Result<()> {
        let target = self.workspace.output_dir(stage, fingerprint);
        let parent = self.workspace.stage_dir(stage);
        let old = match fs::symlink_metadata(&target) {
            Ok(_) => Some(trash::move_in(&self.workspace, &target)?),
            Err(_) => None,
        };
        fs::rename(partial, &target)
            .with_context(|| format!("cannot commit {}", target.display()))?;
        fsync_dir(&parent).with_context(|| format!("cannot sync {}", parent.display()))?;
        if let Some(old) = old {
            trash::delete(&old)?;
        }
        let damaged = self.workspace.damaged_dir(stage, fingerprint);
        if fs::symlink_metadata(&damaged).is_ok() {
            trash::discard(&self.workspace, &damaged)?;
        }
        Ok(())
    }
}

/// One shard to bring into a stage's `.partial` folder: which, for which videos, and what it
/// depends on.
pub(super) struct ShardTask<'a> {
    pub upstream: &'a Upstream,
    pub resolved: &'a Resolved,
    /// Where to look for the shard before computing it; none for a forced stage.
    pub store: Option<&'a ShardStore>,
    pub partial: &'a Path,
    pub index: usize,
    pub video_ids: Vec<String>,
    pub bar: &'a StageBar,
}

/// The shard filed under `key` in `store`, put in place as shard `index` of the output folder
/// `partial`; none without a store (a forced stage), a key, or an entry.
pub(super) fn take_from_store(
    store: Option<&ShardStore>,
    key: Option<&str>,
    videos: usize,
    (partial, index): (&Path, usize),
) -> Result<Option<ShardRecord>> {
    let (Some(store), Some(key)) = (store, key) else {
        return Ok(None);
    };
    match store.lookup(key, videos) {
        Some(found) => Ok(Some(store.take(&found, index, partial)?)),
        None => Ok(None),
    }
}

/// Where a finished shard came from.
pub(super) enum ShardOrigin {
    Computed,
    /// The shard store (another output of the stage computed a shard with the same key).
    Store,
}

fn report_of(
    manifest: &Manifest,
    outcome: Outcome,
    computed: usize,
    reused: usize,
    started: Instant,
) -> StageReport {
    let tables = manifest.table_totals();
    StageReport {
        stage: manifest.stage.clone(),
        fingerprint: Some(manifest.fingerprint.clone()),
        outcome,
        shards_computed: computed,
        shards_reused: reused,
        shards_from_store: 0,
        seconds: started.elapsed().as_secs_f64(),
        errors: tables
            .get(ErrorRow::TABLE.name)
            .map(|t| t.rows)
            .unwrap_or(0),
        tables,
    }
}
