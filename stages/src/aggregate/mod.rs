//! `aggregate`: from per-video scores to the numbers a run is judged by.
//!
//! Only the metrics exist so far. They are pure Rust rather than a call out to Python so the
//! pipeline stays one binary, and they are checked against scikit-learn's own results because
//! those are the numbers the reference study and any comparison with it are quoted in.

mod metrics;

pub use metrics::{binary_metrics, BinaryMetrics, Confusion, MetricsError, LOG_LOSS_EPS};
