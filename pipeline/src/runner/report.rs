//! What happened to each stage in a run: the rows of `runs/<id>.json` and of the run summary.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cache::manifest::TableTotals;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum Outcome {
    /// The output for the current fingerprint was already on disk; nothing ran.
    Cached,
    /// The stage ran (some shards may have come from an interrupted earlier run).
    Computed,
    /// The stage failed; the message says why.
    Failed(String),
    /// The stage did not run because of a failure upstream or the run's selection.
    Skipped(String),
    /// The stage began computing and has not ended: the run is going on, or was killed (only in
    /// run records).
    Running,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub fingerprint: Option<String>,
    pub outcome: Outcome,
    pub shards_computed: usize,
    pub shards_reused: usize,
    /// Shards taken from the shard store: computed before, under another output of the stage,
    /// from the same recipe and the same input content (see `cache::shard_store`).
    pub shards_from_store: usize,
    pub seconds: f64,
    pub tables: BTreeMap<String, TableTotals>,
    /// Rows of the stage's `errors` table: inputs it could not process.
    pub errors: u64,
}

impl StageReport {
    pub fn not_run(stage: &str, outcome: Outcome) -> StageReport {
        StageReport {
            stage: stage.to_string(),
            fingerprint: None,
            outcome,
            shards_computed: 0,
            shards_reused: 0,
            shards_from_store: 0,
            seconds: 0.0,
            tables: BTreeMap::new(),
            errors: 0,
        }
    }

    pub fn ran(&self) -> bool {
        self.outcome == Outcome::Computed
    }
}
