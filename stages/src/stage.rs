//! The trait between the runner and the stages, and the values that cross it.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use dfd_schemas::{SchemaError, TableDef, TableRow};

/// A table a stage reads: which stage wrote it, and the table, named through its row type
/// ([`InputDef::of`]) so that only a table that exists can be named. That the stage named really
/// writes it is checked when the runner assembles the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct InputDef {
    pub stage: &'static str,
    pub table: TableDef,
}

impl InputDef {
    /// Table `R` as written by stage `stage`: `InputDef::of::<FaceRow>(crop::NAME)`.
    pub const fn of<R: TableRow>(stage: &'static str) -> InputDef {
        InputDef {
            stage,
            table: R::TABLE,
        }
    }
}

/// How the runner splits a stage's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharding {
    /// One call over all rows (ingest, train, aggregate).
    Whole,
    /// One call per shard of videos; a crash loses at most the shard in flight, and memory stays
    /// bounded by the shard size whatever the dataset size.
    PerVideo,
}

/// What went wrong in a stage as a whole (a failure of one video is a row in `errors` instead).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("stage input is missing table `{0}`")]
    MissingInput(&'static str),
    #[error("{0}")]
    Other(String),
}

/// Receives "n more units done" from a running stage, for progress bars.
pub trait Progress: Sync {
    fn advance(&self, units: u64);
}

/// A [`Progress`] that ignores everything (tests, library users).
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _units: u64) {}
}

/// What the runner lends a stage for one call.
pub struct StageContext<'a> {
    pub progress: &'a dyn Progress,
    /// A folder kept across runs for work a stage can resume at a finer grain than shards (the
    /// per-epoch checkpoints of `train`). The stage keys what it keeps there by what the work
    /// depends on; the runner only provides the folder. `None` where nothing should be kept
    /// (benchmarks, library users).
    pub scratch: Option<&'a std::path::Path>,
    /// A later stage of the same pass that takes each frame this call decodes as soon as it
    /// exists (see [`FrameObserver`] and [`frame_observer_among`]); `None` outside a run's
    /// streamed pass or `dfd predict`'s in-memory one.
    pub frames: Option<&'a dyn FrameObserver>,
}

impl StageContext<'static> {
    /// No progress reporting, no scratch folder, no frame observer: for benchmarks, tests and
    /// one-off runs.
    pub fn detached() -> Self {
        StageContext {
            progress: &NoProgress,
            scratch: None,
            frames: None,
        }
    }
}

/// A stage that can start on a video's frames while the stage making them is still decoding the
/// video, instead of waiting for its whole table.
///
/// Decoding one video keeps about one and a half of two cores busy (FFmpeg's frame threads wait
/// on each other's reference frames), and a video alone in its group leaves the rest idle until
/// `decode` returns. A stage that reads `frames` and offers an observer gets each frame offered
/// as it comes; what it does with it (start work on an idle core, or nothing) is its own business,
/// and its `run` must give the same output either way: the observer is a head start, never a
/// second source of truth. The runner wires it only between steps of one streamed pass.
pub trait FrameObserver: Send + Sync {
    /// `frame` (raw BGR) was just decoded; the borrow ends with the call.
    fn frame(&self, frame: &dfd_schemas::FrameRef);
    /// The frames offered for `video_id` so far do not stand: the reader gave up on them (and
    /// may start over with another reader), or the video failed.
    fn discard(&self, video_id: &str);
}

/// The observer for the frames `stage` decodes among the stages that run after it on the same
/// videos (`later`, in order): the first that reads a table of `stage` and offers one.
pub fn frame_observer_among<'a>(
    stage: &dyn Stage,
    later: impl IntoIterator<Item = &'a dyn Stage>,
) -> Option<&'a dyn FrameObserver> {
    later
        .into_iter()
        .filter(|s| s.inputs().iter().any(|i| i.stage == stage.name()))
        .find_map(|s| s.frame_observer())
}

/// The input tables of one call, already restricted to the shard's videos for per-video stages.
pub struct StageInput {
    tables: BTreeMap<&'static str, Vec<RecordBatch>>,
    video_ids: Vec<String>,
}

impl StageInput {
    pub fn new(video_ids: Vec<String>) -> Self {
        StageInput {
            tables: BTreeMap::new(),
            video_ids,
        }
    }

    /// Adds the batches of input table `table` (what the runner read from the cache).
    pub fn with_table(mut self, table: &TableDef, batches: Vec<RecordBatch>) -> Self {
        self.tables.insert(table.name, batches);
        self
    }

    /// Adds typed rows as input table `R` (tests, benchmarks, in-memory runs).
    pub fn with_rows<R: TableRow>(self, rows: &[R]) -> Result<Self, SchemaError> {
        let batch = R::to_batch(rows)?;
        Ok(self.with_table(&R::TABLE, vec![batch]))
    }

    /// The batches of input table `table`.
    pub fn table(&self, table: &TableDef) -> Result<&[RecordBatch], StageError> {
        self.tables
            .get(table.name)
            .map(Vec::as_slice)
            .ok_or(StageError::MissingInput(table.name))
    }

    /// Every row of input table `R`: `input.rows::<FaceRow>()`.
    pub fn rows<R: TableRow>(&self) -> Result<Vec<R>, StageError> {
        let mut rows = Vec::new();
        for batch in self.table(&R::TABLE)? {
            rows.extend(R::from_batch(batch)?);
        }
        Ok(rows)
    }

    /// The videos of this call (all of them for [`Sharding::Whole`]).
    pub fn video_ids(&self) -> &[String] {
        &self.video_ids
    }
}

/// The tables a call produced, one entry per declared output table.
#[derive(Default)]
pub struct StageOutput {
    tables: BTreeMap<&'static str, Vec<RecordBatch>>,
}

impl StageOutput {
    /// Adds a batch to output table `table`.
    pub fn with_table(mut self, table: &TableDef, batch: RecordBatch) -> Self {
        self.tables.entry(table.name).or_default().push(batch);
        self
    }

    /// Adds typed rows to output table `R`: `output.with_rows(&faces)?`.
    pub fn with_rows<R: TableRow>(self, rows: &[R]) -> Result<Self, SchemaError> {
        let batch = R::to_batch(rows)?;
        Ok(self.with_table(&R::TABLE, batch))
    }

    /// Removes and returns the batches of output table `table` (none if the stage wrote none).
    pub fn take(&mut self, table: &TableDef) -> Vec<RecordBatch> {
        self.tables.remove(table.name).unwrap_or_default()
    }

    /// Every row of output table `R`, taken out of the output.
    pub fn take_rows<R: TableRow>(&mut self) -> Result<Vec<R>, SchemaError> {
        let mut rows = Vec::new();
        for batch in self.take(&R::TABLE) {
            rows.extend(R::from_batch(&batch)?);
        }
        Ok(rows)
    }

    pub fn table_names(&self) -> impl Iterator<Item = &&'static str> {
        self.tables.keys()
    }
}

/// A stage's parameters as its cache key: `params` serialised, less the fields named in
/// `speed_only` (threads, batch sizes: they change how fast a stage runs, not what it writes).
/// A serialisation failure is an error, never a `null` key (a key that cannot be trusted is
/// refused, not guessed, as DVC's stage cache does), and so is a `speed_only` name that the
/// parameters do not have: renaming such a field must not quietly put it into the key.
pub fn key_params<T: serde::Serialize>(
    stage: &str,
    params: &T,
    speed_only: &[&str],
) -> Result<serde_json::Value, StageError> {
    let refused = |why: String| StageError::Other(format!("the cache key of stage {stage}: {why}"));
    let mut value = serde_json::to_value(params)
        .map_err(|e| refused(format!("its parameters do not serialise: {e}")))?;
    if speed_only.is_empty() {
        return Ok(value);
    }
    let object = value
        .as_object_mut()
        .ok_or_else(|| refused("its parameters are not a map of named fields".into()))?;
    for name in speed_only {
        if object.remove(*name).is_none() {
            return Err(refused(format!(
                "its parameters have no field `{name}` to leave out"
            )));
        }
    }
    Ok(value)
}

/// Puts `device` into a stage's cache key `params` (a map) the way every stage that computes on
/// one does: the CPU, the default, is no entry at all, so every key made before the device
/// setting existed stays the same; a GPU is `"device": "cuda"`, its kind, since its arithmetic
/// differs from the CPU's in the low bits (see [`dfd_models::ComputeDevice::key`]).
pub fn key_device(params: &mut serde_json::Value, device: dfd_models::ComputeDevice) {
    if let Some(object) = params.as_object_mut() {
        match device.key() {
            Some(kind) => object.insert("device".into(), kind.into()),
            None => object.remove("device"),
        };
    }
}

/// What the runner knows of a stage without running it: one value per stage, written as a
/// `const`, so the properties cannot drift between calls and are read in one place (DataFusion's
/// `PlanProperties` is the model). The wiring check at start-up, the cache key, sharding and
/// `dfd dag` all read it.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    pub name: &'static str,
    /// Changes whenever the code changes what the stage writes (part of the cache key).
    pub version: u32,
    /// The tables read, each named with the stage that writes it.
    pub inputs: &'static [InputDef],
    /// The tables written.
    pub outputs: &'static [TableDef],
    pub sharding: Sharding,
    /// Per-video work that needs nothing from other videos and no per-call set-up worth sharing
    /// (sessions are built once per stage object): the runner may hand it a few videos at a time,
    /// straight from the stage before in memory, so that decode, detect, crop and ssim make one
    /// pass per video instead of storing and re-reading full frames between them.
    pub streams: bool,
}

/// A pipeline stage: a named, versioned, parameterised function from tables to tables.
///
/// The runner caches a stage's output under hash(name, version, parameters, input contents), so
/// `version` must change whenever the code changes what the stage writes, and `params` must hold
/// every setting that affects the output (and nothing that does not, such as thread counts).
pub trait Stage: Send + Sync {
    /// The stage's static properties.
    fn spec(&self) -> &StageSpec;
    fn name(&self) -> &'static str {
        self.spec().name
    }
    fn version(&self) -> u32 {
        self.spec().version
    }
    /// Every parameter that affects the output, as JSON (part of the cache key and the run
    /// record); build it with [`key_params`]. An error, not a guess, when it cannot be made.
    fn params(&self) -> Result<serde_json::Value, StageError>;
    fn inputs(&self) -> &'static [InputDef] {
        self.spec().inputs
    }
    fn outputs(&self) -> &'static [TableDef] {
        self.spec().outputs
    }
    fn sharding(&self) -> Sharding {
        self.spec().sharding
    }
    /// A digest of anything outside the pipeline's tables that the stage reads (ingest: the dataset
    /// folder); `None` for stages that read only their input tables.
    fn external_state(&self) -> Result<Option<String>, StageError> {
        Ok(None)
    }
    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError>;
    /// What is written to disk of a batch of `table` that `run` produced: the batch itself unless
    /// the stage keeps a reduced form (decode's frame previews). The runner hands `run`'s own
    /// batches to the stages after it when it streams them.
    fn stored(&self, _table: &TableDef, batch: RecordBatch) -> Result<RecordBatch, StageError> {
        Ok(batch)
    }
    /// False when [`Stage::stored`] keeps less than `run` produced, so that a stage reading
    /// `table` later must have it computed again, in memory, rather than read from disk.
    fn stored_in_full(&self, _table: &TableDef) -> bool {
        true
    }
    /// The observer of the frames an earlier stage of a streamed pass decodes, for a stage that
    /// can start on them early (see [`FrameObserver`]).
    fn frame_observer(&self) -> Option<&dyn FrameObserver> {
        None
    }
}

/// Runs `work` on every video in parallel, advancing the progress bar once per video, and splits the
/// outcomes: the successes, in video order, and an `errors` row (also logged) for each failure, so
/// that one bad video never stops the others.
pub fn per_video<I, T>(
    stage: &str,
    videos: Vec<(String, I)>,
    ctx: &StageContext,
    work: impl Fn(&str, I) -> Result<T, String> + Sync,
) -> (Vec<T>, Vec<dfd_schemas::ErrorRow>)
where
    I: Send,
    T: Send,
{
    use rayon::prelude::*;
    let outcomes: Vec<(String, Result<T, String>)> = videos
        .into_par_iter()
        .map(|(video_id, item)| {
            let outcome = work(&video_id, item);
            ctx.progress.advance(1);
            (video_id, outcome)
        })
        .collect();
    let mut done = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::new();
    for (video_id, outcome) in outcomes {
        match outcome {
            Ok(value) => done.push(value),
            Err(message) => {
                tracing::warn!(video = %video_id, "{stage} failed: {message}");
                errors.push(dfd_schemas::ErrorRow {
                    video_id,
                    stage: stage.to_string(),
                    message,
                });
            }
        }
    }
    (done, errors)
}

#[cfg(test)]
mod key_params_tests {
    use super::key_params;

    #[derive(serde::Serialize)]
    struct Params {
        threshold: f64,
        threads: usize,
    }

    #[test]
    fn speed_only_fields_leave_the_key_and_a_missing_one_is_refused_by_name() {
        let params = Params {
            threshold: 0.5,
            threads: 4,
        };
        let key = key_params("detect", &params, &["threads"]).unwrap();
        assert_eq!(key, serde_json::json!({ "threshold": 0.5 }));
        let error = key_params("detect", &params, &["intra_op_threads"]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("stage detect"), "{message}");
        assert!(message.contains("`intra_op_threads`"), "{message}");
    }

    #[test]
    fn parameters_that_do_not_serialise_are_an_error_not_a_null_key() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "a map with non-string keys has no JSON form");
        let error = key_params("crop", &map, &[]).unwrap_err();
        assert!(error.to_string().contains("do not serialise"), "{error}");
    }
}
