//! One pass per video through the stages that stream (decode, detect, crop, ssim).
//!
//! Stage by stage, `decode` would write every sampled full frame and `detect` and `crop` would read
//! them back: at 1080p most of the preprocessing time went to encoding and decoding those PNGs,
//! and the frames took several times the disk of the videos. Instead, when the runner computes a
//! shard of a stage that streams (the chain's *root*), it hands the shard's videos a few at a time
//! (as many as there are worker threads, so memory stays bounded by a few videos' frames whatever
//! the shard size) through the root and the stages after it that this pass would compute anyway
//! (its *members*), passing each stage's output to the next in memory. Each stage still writes its
//! own table in its stored form (decode: frame previews by default), under its own key:
//!
//! - the root's shard goes to its output folder, as any shard;
//! - each member's shard goes to the shard store under its shard key, computed from the root's
//!   shard just written exactly as the member's own executor will compute it from the root's
//!   committed manifest; when the member's turn comes, it finds every shard there and takes it.
//!
//! The shards are written by a thread beside the compute, each as soon as its stage has run on
//! the shard's last group: writing (Parquet, sha256, fsync) overlaps the later stages' compute
//! instead of following it, one stage after another, on one core. The keys still chain (a
//! member's key needs the shards before it), so the writer takes the stages in the chain's order.
//!
//! A table a finished stage keeps reduced on disk (frame previews) is recomputed in memory by
//! running that stage again on the same videos (a *source*): `dfd run --only crop` decodes the
//! frames it needs from the videos, as the issue of bounded disk asks.
//!
//! Stage fingerprints, shard keys and table bytes are what the stage-by-stage path gives; the
//! end-to-end tests compare them.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow::record_batch::RecordBatch;
use dfd_stages::{NoProgress, Sharding, Stage, StageContext, StageInput};

use super::executor::{take_from_store, Executor, Mode, ShardOrigin, ShardTask};
use super::shard::{
    check_declared, finished_input_digest, input_name, key_of, pass_key, stored_form, write_tables,
    PassShards,
};
use super::Pipeline;
use crate::cache::parquet_io::filter_videos;
use crate::cache::shard_store::ShardStore;
use crate::cache::{Manifest, ShardRecord};
use crate::progress::StageBar;

/// The stages of one pass of a run and how the run treats each: what a chain may carry along.
#[derive(Default)]
pub struct StreamPlan {
    /// In the pipeline's (topological) order.
    stages: Vec<Arc<dyn Stage>>,
    modes: BTreeMap<String, Mode>,
}

impl StreamPlan {
    pub fn new(pipeline: &Pipeline, modes: &BTreeMap<usize, Mode>) -> StreamPlan {
        StreamPlan {
            stages: pipeline.stages().to_vec(),
            modes: modes
                .iter()
                .map(|(&i, &mode)| (pipeline.stages()[i].name().to_string(), mode))
                .collect(),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name() == name)
    }

    /// The chain rooted at `root` (computed in `mode`): the streaming stages after it that this
    /// pass computes normally and that read only the chain's tables and finished outputs, and
    /// the stages whose reduced tables the chain needs recomputed.
    pub fn chain<'a>(
        &'a self,
        root: &'a dyn Stage,
        mode: Mode,
        lookup: &dyn Fn(&str) -> Option<Arc<Manifest>>,
    ) -> Result<Chain<'a>> {
        let mut steps = vec![Step {
            stage: root,
            role: Role::Root,
        }];
        let start = self
            .position(root.name())
            .map_or(self.stages.len(), |i| i + 1);
        if mode == Mode::Normal {
            for stage in &self.stages[start.min(self.stages.len())..] {
                let in_chain = |name: &str| steps.iter().any(|s| s.stage.name() == name);
                let carried = stage.spec().streams
                    && stage.sharding() == Sharding::PerVideo
                    && self.modes.get(stage.name()) == Some(&Mode::Normal)
                    && stage.inputs().iter().any(|i| in_chain(i.stage))
                    && stage
                        .inputs()
                        .iter()
                        .all(|i| in_chain(i.stage) || lookup(i.stage).is_some());
                if carried {
                    steps.push(Step {
                        stage: stage.as_ref(),
                        role: Role::Member,
                    });
                }
            }
        }
        let mut chain = Chain { steps };
        chain.add_sources(lookup, &|name| {
            self.position(name).map(|i| self.stages[i].as_ref())
        })?;
        chain.order_by(|name| self.position(name).unwrap_or(usize::MAX));
        Ok(chain)
    }
}

/// What a stage is in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Recomputed in memory for a table it keeps reduced on disk; nothing written.
    Source,
    /// The stage whose shards are being computed.
    Root,
    /// Carried along: its shards go to the shard store.
    Member,
}

struct Step<'a> {
    stage: &'a dyn Stage,
    role: Role,
}

/// The stages one streamed pass runs, sources first, in an order where every stage comes after
/// the stages it reads.
pub struct Chain<'a> {
    steps: Vec<Step<'a>>,
}

impl<'a> Chain<'a> {
    /// A chain of `root` alone, plus the sources it needs (outside a run's plan, where no other
    /// stage object is at hand: a reduced input is then an error naming it).
    pub fn alone(
        root: &'a dyn Stage,
        lookup: &dyn Fn(&str) -> Option<Arc<Manifest>>,
    ) -> Result<Chain<'a>> {
        let mut chain = Chain {
            steps: vec![Step {
                stage: root,
                role: Role::Root,
            }],
        };
        chain.add_sources(lookup, &|_| None)?;
        Ok(chain)
    }

    fn contains(&self, name: &str) -> bool {
        self.steps.iter().any(|s| s.stage.name() == name)
    }

    /// Adds, recursively, every finished stage whose table a step reads and that keeps that
    /// table reduced on disk.
    fn add_sources(
        &mut self,
        lookup: &dyn Fn(&str) -> Option<Arc<Manifest>>,
        stage_named: &dyn Fn(&str) -> Option<&'a dyn Stage>,
    ) -> Result<()> {
        let mut next = 0;
        while next < self.steps.len() {
            let reader = self.steps[next].stage;
            next += 1;
            for input in reader.inputs() {
                if self.contains(input.stage) {
                    continue;
                }
                let Some(manifest) = lookup(input.stage) else {
                    continue;
                };
                if !manifest.is_reduced(input.table.name) {
                    continue;
                }
                let Some(source) = stage_named(input.stage).filter(|s| s.spec().streams) else {
                    bail!(
                        "stage {} reads {}, which is kept on disk in reduced form \
                         (decode.keep_frames = \"preview\") and cannot be recomputed here",
                        reader.name(),
                        input_name(input)
                    );
                };
                self.steps.push(Step {
                    stage: source,
                    role: Role::Source,
                });
            }
        }
        Ok(())
    }

    fn order_by(&mut self, position: impl Fn(&str) -> usize) {
        self.steps.sort_by_key(|s| position(s.stage.name()));
    }

    /// The observer of the frames `stage` decodes: the first later step that reads a table of
    /// `stage` and takes frames early (see [`dfd_stages::FrameObserver`]). Every step of a chain
    /// runs on the same videos right after the ones before it, so what it is offered is what it
    /// will be given.
    fn frame_observer_of(&self, stage: &dyn Stage) -> Option<&'a dyn dfd_stages::FrameObserver> {
        let later = self
            .steps
            .iter()
            .skip_while(|s| s.stage.name() != stage.name())
            .skip(1)
            .map(|s| s.stage);
        dfd_stages::frame_observer_among(stage, later)
    }

    /// The role of the step running `stage`, if any.
    fn role_of(&self, stage: &dyn Stage) -> Option<Role> {
        self.steps
            .iter()
            .find(|s| s.stage.name() == stage.name())
            .map(|s| s.role)
    }

    fn root(&self) -> &'a dyn Stage {
        self.steps
            .iter()
            .find(|s| s.role == Role::Root)
            .map(|s| s.stage)
            .expect("a chain has its root")
    }
}

/// Videos that go through a streamed pass together for `runner.stream_videos`: that many, or
/// for 0 one per two worker threads (at least one).
///
/// Why two: decoding a video keeps about one and a half cores busy (FFmpeg's frame threads wait
/// on each other's reference frames), and `detect` fills the rest by starting on its frames as
/// they come (see [`dfd_stages::FrameObserver`]); crop and ssim split a video's frames over the
/// workers too. On 2 cores, one video at a time took as long as two (16 clips at 1080p: 15.9 s
/// against 15.7 s; at their own 284x212 to 672x448: 4.94 s against 4.99 s) and held one video's
/// raw frames instead of two (peak RSS 437 MB against 575 MB at 1080p).
pub fn stream_group(stream_videos: usize) -> usize {
    match stream_videos {
        0 => (rayon::current_num_threads() / 2).max(1),
        n => n,
    }
}

/// Batches by table name.
type Tables = BTreeMap<&'static str, Vec<RecordBatch>>;

impl Executor {
    /// Computes shard `index` of the chain's root (or takes it from the store), carrying the
    /// chain's members along; see the module documentation.
    pub(super) fn stream_shard(
        &self,
        chain: &Chain,
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
        let root = chain.root();
        let keep: HashSet<&str> = video_ids.iter().map(String::as_str).collect();
        let (digests, loaded) = self.input_digests(root, upstream, index, &keep)?;
        let key = key_of(root, &resolved.recipe(), &video_ids, &digests);
        let videos = video_ids.len();
        if let Some(record) = take_from_store(store, Some(&key), videos, (partial, index))? {
            dfd_stages::Progress::advance(bar, videos as u64);
            return Ok((record, ShardOrigin::Store));
        }

        // What the chain reads from outside itself, loaded once for the shard.
        let finished = |name: &str| -> Result<Arc<Manifest>> {
            upstream
                .get(name)
                .cloned()
                .or_else(|| self.finished_output(name))
                .with_context(|| format!("the output of {name} is not available"))
        };
        // The root's whole-table inputs were loaded for its key already.
        let mut outside: BTreeMap<String, Vec<RecordBatch>> = loaded;
        for step in &chain.steps {
            for input in step.stage.inputs() {
                let name = input_name(input);
                if chain.contains(input.stage) || outside.contains_key(&name) {
                    continue;
                }
                let manifest = finished(input.stage)?;
                let table = input.table.name;
                let batches = if manifest.videos_per_shard.is_some() {
                    self.read_table(&manifest, table, Some(index))?
                } else {
                    filter_videos(self.read_table(&manifest, table, None)?, &keep)?
                };
                outside.insert(name, batches);
            }
        }

        // The compute runs here, the writing on a thread beside it: each stage's shard is
        // written as soon as its last group is done, while the later steps compute.
        let pass = PassContext {
            chain,
            outside: &outside,
            finished: &finished,
            video_ids: &video_ids,
            partial,
            index,
        };
        let (done, finished_tables) = std::sync::mpsc::channel();
        let (computed, written) = std::thread::scope(|scope| {
            let writer = scope.spawn(|| self.write_pass(&pass, key, finished_tables));
            let computed = self.compute_pass(&pass, bar, done);
            match writer.join() {
                Ok(written) => (computed, written),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        computed?;
        let record = written?.context("the streamed pass wrote no shard of its root")?;
        Ok((record, ShardOrigin::Computed))
    }

    /// Runs the chain's steps on the pass's videos a few at a time, and hands each stage's tables
    /// in stored form to `done` once its last group has run (stages in chain order, every stage
    /// that writes, even with no rows). What a step writes is kept in its stored form, what it
    /// hands on only until the next group.
    fn compute_pass<'c>(
        &self,
        pass: &PassContext<'_, 'c>,
        bar: &StageBar,
        done: Sender<FinishedStage<'c>>,
    ) -> Result<()> {
        let chain = pass.chain;
        let group = stream_group(self.stream_videos);
        let groups: Vec<&[String]> = pass.video_ids.chunks(group).collect();
        let mut written: BTreeMap<&str, Tables> = BTreeMap::new();
        let mut seconds: BTreeMap<&str, Duration> = BTreeMap::new();
        for (number, ids) in groups.iter().enumerate() {
            let last_group = number + 1 == groups.len();
            let members: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let mut in_memory: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
            for step in &chain.steps {
                let stage = step.stage;
                let mut input = StageInput::new(ids.to_vec());
                for def in stage.inputs() {
                    let name = input_name(def);
                    let batches = match (in_memory.get(&name), pass.outside.get(&name)) {
                        (Some(batches), _) => batches.clone(),
                        (None, Some(batches)) => filter_videos(batches.clone(), &members)?,
                        (None, None) => bail!(
                            "stage {} reads {name}, which no earlier step of the pass made",
                            stage.name()
                        ),
                    };
                    input = input.with_table(&def.table, batches);
                }
                let progress: &dyn dfd_stages::Progress = match step.role {
                    Role::Root => bar,
                    _ => &NoProgress,
                };
                let started = Instant::now();
                let mut output = stage
                    .run(
                        &input,
                        &StageContext {
                            progress,
                            scratch: None,
                            frames: chain.frame_observer_of(stage),
                        },
                    )
                    .with_context(|| format!("stage {}", stage.name()))?;
                *seconds.entry(stage.name()).or_default() += started.elapsed();
                check_declared(stage, &output)?;
                for table in stage.outputs() {
                    let batches = output.take(table);
                    if step.role != Role::Source {
                        let stored = stored_form(stage, table, batches.clone())?;
                        written
                            .entry(stage.name())
                            .or_default()
                            .entry(table.name)
                            .or_default()
                            .extend(stored);
                    }
                    in_memory.insert(format!("{}/{}", stage.name(), table.name), batches);
                }
                if last_group && step.role != Role::Source {
                    hand_on(&done, stage, &mut written, &seconds);
                }
            }
        }
        // With no videos, no group ran: every stage still writes its (empty) tables.
        if groups.is_empty() {
            for step in chain.steps.iter().filter(|s| s.role != Role::Source) {
                hand_on(&done, step.stage, &mut written, &seconds);
            }
        }
        Ok(())
    }

    /// Writes the stages' shards as `finished` hands them over, in chain order: the root's to its
    /// output folder (as any computed shard, keyed `key`), each member's into the shard store
    /// under its key, computed from the shards before it. Returns the root's record, or `None`
    /// when the compute stopped before the root was done (its error is the one reported).
    fn write_pass<'c>(
        &self,
        pass: &PassContext<'_, 'c>,
        key: String,
        finished: Receiver<FinishedStage<'c>>,
    ) -> Result<Option<ShardRecord>> {
        let (index, videos) = (pass.index, pass.video_ids.len());
        let mut shards = PassShards::new();
        let mut root_record = None;
        for FinishedStage {
            stage,
            tables,
            seconds,
        } in finished
        {
            let role = pass.chain.role_of(stage);
            if role == Some(Role::Root) {
                let record =
                    write_shard(stage, pass.partial, (index, videos), tables, seconds, &key)?;
                self.file_in_store(stage.name(), pass.partial, &record);
                shards.insert(stage.name(), (record.clone(), stage));
                root_record = Some(record);
                continue;
            }
            if role != Some(Role::Member) || root_record.is_none() {
                bail!(
                    "stage {} handed its tables to the pass's writer out of order",
                    stage.name()
                );
            }
            let key = pass_key(stage, pass.video_ids, &shards, |input, name| {
                let rows = || {
                    pass.outside
                        .get(name)
                        .cloned()
                        .with_context(|| format!("{name} was not loaded for this shard"))
                };
                let manifest = (pass.finished)(input.stage)?;
                finished_input_digest(input, &manifest, index, &rows)
            })?;
            let store = ShardStore::new(&self.workspace, stage.name());
            let record = match store.lookup(&key, videos) {
                // Filed before (the same recipe and inputs in an earlier run): the computed copy
                // is the same bytes.
                Some(record) => record,
                None => {
                    let building = store.building_dir(&key)?;
                    let record =
                        write_shard(stage, &building, (index, videos), tables, seconds, &key)?;
                    store.finish_building(&building, &record)?;
                    record
                }
            };
            self.note_streamed(stage.name(), &key);
            shards.insert(stage.name(), (record, stage));
        }
        Ok(root_record)
    }
}

/// Writes `stage`'s tables of shard `index` (of `videos` videos) into `dir`; its record, keyed
/// `key`.
fn write_shard(
    stage: &dyn Stage,
    dir: &Path,
    (index, videos): (usize, usize),
    tables: Tables,
    seconds: f64,
    key: &str,
) -> Result<ShardRecord> {
    Ok(ShardRecord {
        index,
        videos,
        files: write_tables(stage, dir, index, tables)?,
        seconds,
        key: Some(key.to_string()),
    })
}

/// What [`Executor::compute_pass`] and [`Executor::write_pass`] share about the shard.
struct PassContext<'p, 'c> {
    chain: &'p Chain<'c>,
    /// The tables the chain reads from outside itself, by input name.
    outside: &'p BTreeMap<String, Vec<RecordBatch>>,
    /// The finished output of a stage outside the chain.
    finished: &'p (dyn Fn(&str) -> Result<Arc<Manifest>> + Sync),
    video_ids: &'p [String],
    /// The root's output folder.
    partial: &'p Path,
    index: usize,
}

/// A stage whose every group has run: its tables in stored form, and the time it took.
struct FinishedStage<'c> {
    stage: &'c dyn Stage,
    tables: Tables,
    seconds: f64,
}

/// Hands `stage`'s tables over to the writer. A writer that stopped (on an error, which it
/// reports) no longer listens; the compute goes on to its end or its own error.
fn hand_on<'c>(
    done: &Sender<FinishedStage<'c>>,
    stage: &'c dyn Stage,
    written: &mut BTreeMap<&str, Tables>,
    seconds: &BTreeMap<&str, Duration>,
) {
    let _ = done.send(FinishedStage {
        stage,
        tables: written.remove(stage.name()).unwrap_or_default(),
        seconds: seconds.get(stage.name()).map_or(0.0, Duration::as_secs_f64),
    });
}
