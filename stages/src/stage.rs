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
}

impl StageContext<'static> {
    /// No progress reporting and no scratch folder: for benchmarks, tests and one-off runs.
    pub fn detached() -> Self {
        StageContext {
            progress: &NoProgress,
            scratch: None,
        }
    }
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

/// A pipeline stage: a named, versioned, parameterised function from tables to tables.
///
/// The runner caches a stage's output under hash(name, version, parameters, input contents), so
/// `version` must change whenever the code changes what the stage writes, and `params` must hold
/// every setting that affects the output (and nothing that does not, such as thread counts).
pub trait Stage: Send + Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    /// Every parameter that affects the output, as JSON (part of the cache key and the run record).
    fn params(&self) -> serde_json::Value;
    fn inputs(&self) -> &'static [InputDef];
    fn outputs(&self) -> &'static [TableDef];
    fn sharding(&self) -> Sharding;
    /// A digest of anything outside the pipeline's tables that the stage reads (ingest: the dataset
    /// folder); `None` for stages that read only their input tables.
    fn external_state(&self) -> Result<Option<String>, StageError> {
        Ok(None)
    }
    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError>;
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
