//! `aggregate`: from frame scores to the numbers a run is judged by.
//!
//! One file per concern: [`rules`] reduces a video's frame scores to one score, [`metrics`] scores
//! a set of videos as scikit-learn would, [`bootstrap`] puts 95% intervals around accuracy and AUC,
//! [`baselines`] adds the constant pseudo-models, [`cues`] the model-free cue baselines, [`evaluate`] assembles a `metrics` row, and
//! [`stage`] is the `Stage` that ties them to the tables.
//!
//! The metrics are pure Rust rather than a call out to Python so the pipeline stays one binary,
//! and they are checked against scikit-learn's own results because those are the numbers the
//! reference study and any comparison with it are quoted in.

pub mod baselines;
pub mod bootstrap;
pub mod cues;
pub mod evaluate;
mod metrics;
pub mod rules;
mod stage;

pub use bootstrap::{bootstrap_ci, BootstrapCi, BootstrapParams, Interval, Unit};
pub use metrics::{
    binary_metrics, roc_points, BinaryMetrics, Confusion, MetricsError, LOG_LOSS_EPS,
};
pub use rules::{aggregate, ConfidentParams, Rule};
pub use stage::{predicted, Aggregate, AggregateParams, NAME, SCORE_STAGE, TRAIN_STAGE};
