//! One task of an array job (`dfd run --shard I/N`): the per-video stages' shards of this task's
//! share, filed in the shard store, and nothing that other tasks also write.
//!
//! Tasks share one workspace on a shared filesystem and never talk to each other:
//!
//! - `ingest` (whole-table, cheap, deterministic) is run by whichever task comes first, under
//!   the stage's own lock (`<workspace>/locks/ingest.lock`); the others wait on that lock and
//!   then find its output cached. Every task would compute the same bytes anyway.
//! - The per-video stages write no `.partial` folder and no manifest (those are whole-stage and
//!   would collide): each shard the task owns goes through the stages in order, each stage's
//!   shard keyed exactly as a plain run keys it (see [`super::shard`]) from the shards just
//!   before it, and filed in the shard store under that key. A shard already filed is taken.
//! - A missing shard is computed under its lock (`shards/<stage>/<key>.lock`), taken after
//!   looking and looked up again once held: a second task given the same share waits, then
//!   finds the shard filed.
//! - Stages that stream (decode .. ssim) go in one pass per shard, as in a plain run, so that
//!   decode's full frames never reach the disk.
//! - A stage an earlier plain run assembled for this data is read as it is, shard by shard; and
//!   once `train`'s models for this data are cached, `score` is filed per shard too (see
//!   [`Executor::task_stages`]).
//!
//! A plain `dfd run` afterwards finds every shard by its key, assembles each stage's output from
//! the store and goes on with the whole-table stages (train, aggregate, report).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::record_batch::RecordBatch;
use dfd_stages::{NoProgress, Sharding, Stage, StageContext, StageInput, PARTITION_TABLE};

use super::executor::{Executor, Mode, ShardTask, Upstream};
use super::report::{Outcome, StageReport};
use super::shard::{
    check_declared, finished_input_digest, input_name, pass_key, stored_form, write_tables,
    PassShards,
};
use super::share::Share;
use super::stream::StreamPlan;
use super::Pipeline;
use crate::cache::parquet_io::{filter_videos, read_parquet};
use crate::cache::shard_store::ShardStore;
use crate::cache::{ShardLock, ShardRecord};
use crate::progress::StageBar;

/// What one task does with each stage of the pipeline.
pub struct SharePlan {
    /// Whole-table stages with no per-video input (ingest): run whole, by the first task.
    pub whole: Vec<usize>,
    /// Per-video stages that read only `whole` stages and each other: this task's shards.
    pub per_video: Vec<usize>,
    /// Everything else the selection holds: left to the plain run after the array.
    pub later: Vec<usize>,
}

impl SharePlan {
    /// Splits the selected stages (`modes`); an array task only brings stages up to date, so
    /// `--only`, `--from` and `--force` are refused.
    pub fn new(pipeline: &Pipeline, modes: &BTreeMap<usize, Mode>) -> Result<SharePlan> {
        if modes.values().any(|m| *m != Mode::Normal) {
            bail!("--shard combines with --until only, not with --only, --from or --force");
        }
        let mut plan = SharePlan {
            whole: Vec::new(),
            per_video: Vec::new(),
            later: Vec::new(),
        };
        for &index in modes.keys() {
            let stage = &pipeline.stages()[index];
            let parents = pipeline.parents(index);
            let ready = |i: &usize| plan.whole.contains(i) || plan.per_video.contains(i);
            match stage.sharding() {
                Sharding::Whole if parents.is_empty() => plan.whole.push(index),
                Sharding::PerVideo if parents.iter().all(ready) => plan.per_video.push(index),
                _ => plan.later.push(index),
            }
        }
        Ok(plan)
    }
}

/// Per stage: shards computed by this task, and shards found filed.
#[derive(Default, Clone, Copy)]
struct Counts {
    computed: usize,
    found: usize,
}

/// A shard of a stage known for one shard index: its record and the stage (which says whether a
/// table is kept reduced).
type Known<'a> = PassShards<'a>;

impl Executor {
    /// Runs task `share` of an array job over the stages `plan` selects; one report per stage.
    pub fn run_share(
        &self,
        pipeline: &Pipeline,
        plan: &SharePlan,
        share: Share,
    ) -> Result<Vec<StageReport>> {
        let mut reports = Vec::new();
        let mut upstream = Upstream::new();
        for &index in &plan.whole {
            let stage = pipeline.stages()[index].as_ref();
            let lock_path = self.workspace.stage_lock_path(stage.name());
            let _lock = ShardLock::acquire(&lock_path, &format!("stage {}", stage.name()), true)?;
            let (manifest, report) = self.execute(stage, &upstream, Mode::Normal)?;
            self.note_ended(&report);
            reports.push(report);
            upstream.insert(stage.name().to_string(), manifest);
        }
        let (filed, assembled) = self.task_stages(pipeline, plan, &upstream)?;
        self.note_array_stages(
            filed
                .iter()
                .map(|&i| pipeline.stages()[i].name().to_string())
                .collect(),
        );
        let per_video: Vec<&dyn Stage> = filed
            .iter()
            .map(|&i| pipeline.stages()[i].as_ref())
            .collect();
        if !per_video.is_empty() {
            reports.extend(self.share_per_video(pipeline, &per_video, &assembled, share)?);
        }
        for &index in plan.per_video.iter().chain(&plan.later) {
            let stage = pipeline.stages()[index].as_ref();
            if filed.contains(&index) {
                continue;
            }
            let report = match assembled.get(stage.name()) {
                // Assembled for this data by an earlier plain run: nothing to file.
                Some(manifest) => StageReport {
                    fingerprint: Some(manifest.fingerprint.clone()),
                    ..StageReport::not_run(stage.name(), Outcome::Cached)
                },
                None => StageReport::not_run(
                    stage.name(),
                    Outcome::Skipped("after the array job: a plain `dfd run`".into()),
                ),
            };
            self.note_ended(&report);
            reports.push(report);
        }
        let order = |r: &StageReport| pipeline.index_of(&r.stage).unwrap_or(usize::MAX);
        reports.sort_by_key(order);
        Ok(reports)
    }

    /// The stages whose shards a task files once the whole-table stages are in `upstream`
    /// (indices, in pipeline order), and `upstream` grown by every later output already
    /// assembled for this data (by an earlier plain run). They are the stages of
    /// `plan.per_video` not assembled yet, and the per-video stages of `plan.later` whose every
    /// input is assembled or filed by the task itself: `score`, when `train`'s models for this
    /// data are in the cache (a rescoring: new score settings, or videos of the test split
    /// relabelled). Training reads every video, so before a first plain run no models exist and
    /// `score` is left to it.
    pub(crate) fn task_stages(
        &self,
        pipeline: &Pipeline,
        plan: &SharePlan,
        upstream: &Upstream,
    ) -> Result<(Vec<usize>, Upstream)> {
        let mut assembled = upstream.clone();
        let mut filed: Vec<usize> = Vec::new();
        let mut candidates: Vec<usize> =
            plan.per_video.iter().chain(&plan.later).copied().collect();
        candidates.sort_unstable();
        for index in candidates {
            let stage = pipeline.stages()[index].as_ref();
            let inputs = stage.inputs();
            if inputs.iter().all(|i| assembled.contains_key(i.stage)) {
                let resolved = self.resolve(stage, &assembled)?;
                if let Some(manifest) = self.workspace.finished(stage.name(), &resolved.fingerprint)
                {
                    assembled.insert(stage.name().to_string(), Arc::new(manifest));
                    continue;
                }
            }
            let available = |name: &str| {
                assembled.contains_key(name)
                    || filed.iter().any(|&j| pipeline.stages()[j].name() == name)
            };
            let scored_here =
                stage.sharding() == Sharding::PerVideo && inputs.iter().all(|i| available(i.stage));
            if plan.per_video.contains(&index) || scored_here {
                filed.push(index);
            }
        }
        Ok((filed, assembled))
    }

    fn share_per_video(
        &self,
        pipeline: &Pipeline,
        stages: &[&dyn Stage],
        upstream: &Upstream,
        share: Share,
    ) -> Result<Vec<StageReport>> {
        let started = Instant::now();
        let partition = upstream
            .get(PARTITION_TABLE.stage)
            .context("the videos table is not available")?;
        let videos = self.video_ids(partition)?;
        let owned: Vec<(usize, Vec<String>)> = videos
            .chunks(self.videos_per_shard)
            .enumerate()
            .filter(|(index, _)| share.owns(*index))
            .map(|(index, ids)| (index, ids.to_vec()))
            .collect();
        tracing::info!(
            "task {share}: {} of {} shard(s)",
            owned.len(),
            videos.len().div_ceil(self.videos_per_shard)
        );
        // Whole-table inputs, read once; each shard keeps the rows of its videos. An assembled
        // per-video output is read shard by shard instead.
        let mut whole: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        for stage in stages {
            for input in stage.inputs() {
                let found = upstream.get(input.stage);
                if let Some(manifest) = found.filter(|m| m.videos_per_shard.is_none()) {
                    whole.insert(
                        input_name(input),
                        self.read_table(manifest, input.table.name, None)?,
                    );
                }
            }
        }
        let mut modes = BTreeMap::new();
        for stage in stages {
            modes.insert(pipeline.index_of(stage.name())?, Mode::Normal);
        }
        let stream_plan = StreamPlan::new(pipeline, &modes);
        let units = owned.iter().map(|(_, ids)| ids.len() as u64).sum();
        let bar = StageBar::new("array task", units, "videos");
        let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
        for (index, video_ids) in owned {
            let task = ShardOfTask {
                stages,
                upstream,
                whole: &whole,
                stream_plan: &stream_plan,
                index,
                video_ids,
                bar: &bar,
            };
            self.share_shard(task, &mut counts)
                .with_context(|| format!("shard {index}"))?;
        }
        bar.finish();
        let reports = stages
            .iter()
            .map(|stage| {
                let counts = counts.get(stage.name()).copied().unwrap_or_default();
                let report = StageReport {
                    shards_computed: counts.computed,
                    shards_from_store: counts.found,
                    seconds: started.elapsed().as_secs_f64(),
                    ..StageReport::not_run(stage.name(), Outcome::Computed)
                };
                self.note_ended(&report);
                report
            })
            .collect();
        Ok(reports)
    }

    /// Brings shard `index` of every per-video stage into the store.
    fn share_shard<'a>(
        &self,
        task: ShardOfTask<'a>,
        counts: &mut BTreeMap<&'a str, Counts>,
    ) -> Result<()> {
        let keep: HashSet<&str> = task.video_ids.iter().map(String::as_str).collect();
        let mut rows: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        for (name, batches) in task.whole {
            rows.insert(name.clone(), filter_videos(batches.clone(), &keep)?);
        }
        let videos = task.video_ids.len();
        let mut known: Known<'a> = BTreeMap::new();
        // Shards this task computed (or a pass of it filed), so they are not counted as found.
        let mut made: BTreeSet<(String, String)> = BTreeSet::new();
        for &stage in task.stages {
            let key = self.share_key(
                stage,
                (task.upstream, task.index, &task.video_ids),
                &known,
                &rows,
            )?;
            let store = ShardStore::new(&self.workspace, stage.name());
            let found = store.lookup(&key, videos);
            if let Some(record) = found {
                let entry = counts.entry(stage.name()).or_default();
                if made.contains(&(stage.name().to_string(), key)) {
                    entry.computed += 1;
                } else {
                    entry.found += 1;
                }
                known.insert(stage.name(), (record, stage));
                continue;
            }
            let what = format!("shard {} of {}", task.index, stage.name());
            let _lock = ShardLock::acquire(&store.path_of(&format!("{key}.lock")), &what, true)?;
            // Another task given the same share may have filed it while this one waited.
            if let Some(record) = store.lookup(&key, videos) {
                counts.entry(stage.name()).or_default().found += 1;
                known.insert(stage.name(), (record, stage));
                continue;
            }
            if stage.spec().streams {
                // One pass from the first stage that streams: every streaming stage's shard this
                // index lacks is filed by it (a filed one is left as it is).
                for filed in self.share_stream(&task, &known)? {
                    made.insert(filed);
                }
                let record = store
                    .lookup(&key, videos)
                    .with_context(|| format!("the streamed pass did not file {what}"))?;
                counts.entry(stage.name()).or_default().computed += 1;
                known.insert(stage.name(), (record, stage));
            } else {
                let record = self.share_compute(stage, &task, &known, &rows, key)?;
                counts.entry(stage.name()).or_default().computed += 1;
                known.insert(stage.name(), (record, stage));
            }
        }
        dfd_stages::Progress::advance(task.bar, videos as u64);
        Ok(())
    }

    /// The key of `stage`'s shard for this task's shard: what a plain run's executor computes
    /// from the finished outputs, computed here from the shards just before it.
    fn share_key(
        &self,
        stage: &dyn Stage,
        (upstream, index, video_ids): (&Upstream, usize, &[String]),
        known: &Known,
        rows: &BTreeMap<String, Vec<RecordBatch>>,
    ) -> Result<String> {
        pass_key(stage, video_ids, known, |input, name| {
            let manifest = upstream
                .get(input.stage)
                .with_context(|| format!("{name} is not available to this task"))?;
            let rows = || {
                rows.get(name)
                    .cloned()
                    .with_context(|| format!("{name} was not loaded"))
            };
            finished_input_digest(input, manifest, index, &rows)
        })
    }

    /// The streamed pass of this shard through the stages that stream, rooted at the first of
    /// them; returns the (stage, key) of every shard it filed.
    fn share_stream(&self, task: &ShardOfTask, known: &Known) -> Result<Vec<(String, String)>> {
        let Some(root) = task.stages.iter().copied().find(|s| s.spec().streams) else {
            bail!("no stage of this task streams");
        };
        let lookup = |name: &str| task.upstream.get(name).cloned();
        let chain = task.stream_plan.chain(root, Mode::Normal, &lookup)?;
        let root_upstream: Upstream = root
            .inputs()
            .iter()
            .filter_map(|i| task.upstream.get_key_value(i.stage))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let resolved = self.resolve(root, &root_upstream)?;
        // The root's shard is written here, then hard-linked into the store.
        let work = self.share_work_dir();
        fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
        let silent = StageBar::hidden();
        let pass = self.stream_shard(
            &chain,
            ShardTask {
                upstream: &root_upstream,
                resolved: &resolved,
                // Computed even when the root's shard is filed: a later stage's is missing.
                store: None,
                partial: &work,
                index: task.index,
                video_ids: task.video_ids.clone(),
                bar: &silent,
            },
        );
        let removed = fs::remove_dir_all(&work);
        let (record, _) = pass?;
        removed.with_context(|| format!("cannot remove {}", work.display()))?;
        let mut filed = self.take_streamed();
        if !known.contains_key(root.name()) {
            if let Some(key) = record.key {
                filed.push((root.name().to_string(), key));
            }
        }
        Ok(filed)
    }

    /// Computes `stage`'s shard (a stage that does not stream) from the shards before it, read
    /// from the store, and files it under `key`.
    fn share_compute(
        &self,
        stage: &dyn Stage,
        task: &ShardOfTask,
        known: &Known,
        rows: &BTreeMap<String, Vec<RecordBatch>>,
        key: String,
    ) -> Result<ShardRecord> {
        let started = Instant::now();
        let mut input = StageInput::new(task.video_ids.clone());
        for def in stage.inputs() {
            let name = input_name(def);
            let batches = match known.get(def.stage) {
                Some((shard, writer)) => {
                    if !writer.stored_in_full(&def.table) {
                        bail!(
                            "stage {} reads {name}, which is kept on disk in reduced form",
                            stage.name()
                        );
                    }
                    let dir = ShardStore::new(&self.workspace, def.stage)
                        .path_of(shard.key.as_deref().unwrap_or_default());
                    let mut batches = Vec::new();
                    for file in shard.files.iter().filter(|f| f.table() == def.table.name) {
                        batches.extend(read_parquet(&dir.join(&file.path))?);
                    }
                    batches
                }
                None => match task.upstream.get(def.stage) {
                    // An assembled per-video output: this shard's own files of it.
                    Some(manifest) if manifest.videos_per_shard.is_some() => {
                        if manifest.is_reduced(def.table.name) {
                            bail!(
                                "stage {} reads {name}, which is kept on disk in reduced form",
                                stage.name()
                            );
                        }
                        self.read_table(manifest, def.table.name, Some(task.index))?
                    }
                    _ => rows
                        .get(&name)
                        .cloned()
                        .with_context(|| format!("{name} was not loaded"))?,
                },
            };
            input = input.with_table(&def.table, batches);
        }
        let mut output = stage.run(
            &input,
            &StageContext {
                progress: &NoProgress,
                scratch: None,
                frames: None,
            },
        )?;
        check_declared(stage, &output)?;
        let mut tables = BTreeMap::new();
        for table in stage.outputs() {
            tables.insert(table.name, stored_form(stage, table, output.take(table))?);
        }
        let store = ShardStore::new(&self.workspace, stage.name());
        let building = store.building_dir(&key)?;
        let record = ShardRecord {
            index: task.index,
            videos: task.video_ids.len(),
            files: write_tables(stage, &building, task.index, tables)?,
            seconds: started.elapsed().as_secs_f64(),
            key: Some(key),
        };
        store.finish_building(&building, &record)?;
        Ok(record)
    }

    /// Per stage an array task would file (see [`Executor::task_stages`]: `plan.per_video` less
    /// what is assembled, with `score` once models exist), which shards the store holds (by the
    /// keys a task files them under), for `dfd status` and the missing-shard warning. Records are read, files not hashed (status stays
    /// quick), and nothing is changed. A shard whose input shard is missing counts as missing.
    pub fn store_progress(
        &self,
        pipeline: &Pipeline,
        plan: &SharePlan,
        upstream: &Upstream,
    ) -> Result<BTreeMap<String, Vec<bool>>> {
        let (filed, assembled) = self.task_stages(pipeline, plan, upstream)?;
        let upstream = &assembled;
        let stages: Vec<&dyn Stage> = filed
            .iter()
            .map(|&i| pipeline.stages()[i].as_ref())
            .collect();
        let partition = upstream
            .get(PARTITION_TABLE.stage)
            .context("the videos table is not available")?;
        let videos = self.video_ids(partition)?;
        let mut whole: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        for stage in &stages {
            for input in stage.inputs() {
                let found = upstream.get(input.stage);
                if let Some(manifest) = found.filter(|m| m.videos_per_shard.is_none()) {
                    whole.insert(
                        input_name(input),
                        self.read_table(manifest, input.table.name, None)?,
                    );
                }
            }
        }
        let mut progress: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        for (index, ids) in videos.chunks(self.videos_per_shard).enumerate() {
            let keep: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let mut rows = BTreeMap::new();
            for (name, batches) in &whole {
                rows.insert(name.clone(), filter_videos(batches.clone(), &keep)?);
            }
            let mut known: Known = BTreeMap::new();
            for &stage in &stages {
                let ready = stage
                    .inputs()
                    .iter()
                    .all(|i| known.contains_key(i.stage) || upstream.contains_key(i.stage));
                let record = if ready {
                    let key = self.share_key(stage, (upstream, index, ids), &known, &rows)?;
                    ShardStore::new(&self.workspace, stage.name()).peek(&key)
                } else {
                    None
                };
                progress
                    .entry(stage.name().to_string())
                    .or_default()
                    .push(record.is_some());
                if let Some(record) = record {
                    known.insert(stage.name(), (record, stage));
                }
            }
        }
        Ok(progress)
    }

    /// Per stage of `stages` (the per-video stages an array job filed) that this plain run
    /// selects (`selected`, by index) and has not assembled yet, the indices of the shards the
    /// store lacks. Empty when `ingest`'s output for the current dataset is not cached: no task of
    /// an array got that far on this data, so there is nothing to say about it. Reads records,
    /// not files, as [`Executor::store_progress`] does.
    pub fn missing_shards(
        &self,
        pipeline: &Pipeline,
        selected: &BTreeSet<usize>,
        stages: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, MissingShards>> {
        let modes: BTreeMap<usize, Mode> = selected.iter().map(|&i| (i, Mode::Normal)).collect();
        let plan = SharePlan::new(pipeline, &modes)?;
        let mut upstream = Upstream::new();
        for &index in &plan.whole {
            let stage = pipeline.stages()[index].as_ref();
            let resolved = self.resolve(stage, &upstream)?;
            match self.workspace.finished(stage.name(), &resolved.fingerprint) {
                Some(manifest) => upstream.insert(stage.name().to_string(), Arc::new(manifest)),
                None => return Ok(BTreeMap::new()),
            };
        }
        let progress = self.store_progress(pipeline, &plan, &upstream)?;
        Ok(progress
            .into_iter()
            .filter(|(stage, _)| stages.contains(stage))
            .map(|(stage, done)| {
                let missing = MissingShards {
                    shards: (0..done.len()).filter(|&i| !done[i]).collect(),
                    total: done.len(),
                };
                (stage, missing)
            })
            .filter(|(_, missing)| !missing.shards.is_empty())
            .collect())
    }

    /// This process's folder for the root shard of a streamed pass (removed after each shard).
    fn share_work_dir(&self) -> PathBuf {
        self.workspace.scratch_dir(&format!(
            "{ARRAY_SCRATCH}{}-{}",
            crate::cache::host_name(),
            std::process::id()
        ))
    }
}

/// How the scratch folder of an array task begins: `scratch/array-<host>-<pid>/` (a killed task
/// leaves it; `gc` removes it once its owner is gone, see [`array_scratch_owner`]).
pub const ARRAY_SCRATCH: &str = "array-";

/// The host and pid of the array task whose scratch folder is named `name`, if it is one.
pub fn array_scratch_owner(name: &str) -> Option<(&str, u32)> {
    let (host, pid) = name.strip_prefix(ARRAY_SCRATCH)?.rsplit_once('-')?;
    let pid = pid.parse().ok()?;
    (!host.is_empty()).then_some((host, pid))
}

/// The shards of one stage that an array job left out of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingShards {
    /// Their indices, ascending.
    pub shards: Vec<usize>,
    /// How many shards the stage has.
    pub total: usize,
}

/// What a plain run says when an array job of `count` tasks left shards `missing` (by stage):
/// the shards, the tasks that own them (`--shard I/N` to rerun each), and that the run computes
/// them itself meanwhile.
pub fn missing_shards_message(missing: &BTreeMap<String, MissingShards>, count: usize) -> String {
    let mut text = format!(
        "warning: the array job of {count} task(s) (`dfd run --shard I/{count}`) left shards out \
         of the shard store:\n"
    );
    let mut tasks = BTreeSet::new();
    for (stage, shards) in missing {
        let list: Vec<String> = shards.shards.iter().map(usize::to_string).collect();
        text.push_str(&format!(
            "  {stage}: shard(s) {} of {}\n",
            list.join(","),
            shards.total
        ));
        tasks.extend(shards.shards.iter().map(|&s| Share::owner(s, count)));
    }
    let named: Vec<String> = tasks.iter().map(|t| format!("{t}/{count}")).collect();
    let commands: Vec<String> = tasks
        .iter()
        .map(|t| format!("`dfd run --shard {t}/{count}`"))
        .collect();
    text.push_str(&format!(
        "task(s) {} did not finish them. This run computes them here, on this machine; to \
         spread them over the cluster instead, stop it, rerun {} (the same workspace and \
         settings), then `dfd run` again.",
        and_list(&named),
        and_list(&commands)
    ));
    text
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// One shard index of one task, with what its stages read.
struct ShardOfTask<'a> {
    stages: &'a [&'a dyn Stage],
    upstream: &'a Upstream,
    /// Whole-table inputs by `<stage>/<table>`, all rows.
    whole: &'a BTreeMap<String, Vec<RecordBatch>>,
    stream_plan: &'a StreamPlan,
    index: usize,
    video_ids: Vec<String>,
    bar: &'a StageBar,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_folder_names_its_owner() {
        assert_eq!(
            array_scratch_owner("array-node-01.cluster-4242"),
            Some(("node-01.cluster", 4242))
        );
        for other in ["decode", "array-4242", "array-host-x", "array--1"] {
            assert_eq!(array_scratch_owner(other), None, "{other}");
        }
    }

    #[test]
    fn the_missing_shards_are_named_with_the_tasks_that_own_them() {
        let missing: BTreeMap<String, MissingShards> =
            [("decode", vec![2]), ("detect", vec![2, 3, 6])]
                .into_iter()
                .map(|(stage, shards)| (stage.to_string(), MissingShards { shards, total: 8 }))
                .collect();
        let text = missing_shards_message(&missing, 4);
        assert!(text.contains("  decode: shard(s) 2 of 8\n"), "{text}");
        assert!(text.contains("  detect: shard(s) 2,3,6 of 8\n"), "{text}");
        assert!(
            text.contains("task(s) 2/4 and 3/4 did not finish"),
            "{text}"
        );
        assert!(
            text.contains("rerun `dfd run --shard 2/4` and `dfd run --shard 3/4`"),
            "{text}"
        );
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }

    #[test]
    fn a_task_refuses_force_and_leaves_training_to_the_final_run() {
        let pipeline =
            Pipeline::new(&crate::config::Config::default(), PathBuf::from("/data")).unwrap();
        let all: BTreeMap<usize, Mode> = (0..pipeline.stages().len())
            .map(|i| (i, Mode::Normal))
            .collect();
        let plan = SharePlan::new(&pipeline, &all).unwrap();
        let names = |list: &[usize]| -> Vec<&str> {
            list.iter().map(|&i| pipeline.stages()[i].name()).collect()
        };
        assert_eq!(names(&plan.whole), ["ingest"]);
        assert_eq!(
            names(&plan.per_video),
            ["decode", "detect", "crop", "ssim", "cues", "augment"]
        );
        assert_eq!(
            names(&plan.later),
            ["train", "score", "aggregate", "report"]
        );
        let mut forced = all.clone();
        forced.insert(1, Mode::Force);
        assert!(SharePlan::new(&pipeline, &forced).is_err());
    }
}
