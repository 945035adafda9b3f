//! One row of the `metrics` table: the point metrics of a set of videos and their bootstrap
//! intervals, under the identity (model, split, level, rule) they belong to.

use dfd_schemas::MetricsRow;

use super::bootstrap::{bootstrap_ci, BootstrapParams, Unit};
use super::metrics::{binary_metrics, MetricsError};

/// What a metrics row is about, and the counts that are not computed from its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsKey {
    pub model: String,
    pub split: String,
    /// `video` or `frame`.
    pub level: &'static str,
    pub rule: String,
    /// Videos of the split without any scored frame.
    pub unscored: u64,
    pub parameters: Option<u64>,
}

/// Level names, as stored in `metrics.level`.
pub const VIDEO_LEVEL: &str = "video";
pub const FRAME_LEVEL: &str = "frame";

/// The metrics row of `units` (labelled videos; each holds one sample at video level, its frames at
/// frame level); `None` when they hold no sample at all, where there is nothing to measure.
pub fn metrics_row(
    key: MetricsKey,
    units: &[Unit],
    threshold: f64,
    bootstrap: BootstrapParams,
) -> Result<Option<MetricsRow>, MetricsError> {
    let labels: Vec<bool> = units
        .iter()
        .flat_map(|u| u.labels.iter().copied())
        .collect();
    let scores: Vec<f64> = units
        .iter()
        .flat_map(|u| u.scores.iter().copied())
        .collect();
    if labels.is_empty() {
        return Ok(None);
    }
    let m = binary_metrics(&labels, &scores, threshold)?;
    let ci = bootstrap_ci(units, threshold, bootstrap)?;
    let n_fake = labels.iter().filter(|&&fake| fake).count() as u64;
    Ok(Some(MetricsRow {
        model: key.model,
        split: key.split,
        level: key.level.to_string(),
        rule: key.rule,
        n: labels.len() as u64,
        n_fake,
        n_real: labels.len() as u64 - n_fake,
        unscored: key.unscored,
        threshold,
        accuracy: Some(m.accuracy),
        precision: m.precision,
        recall: m.recall,
        f1: m.f1,
        roc_auc: m.roc_auc,
        average_precision: m.average_precision,
        log_loss: Some(m.log_loss),
        eer: m.eer,
        tp: m.confusion.tp,
        fp: m.confusion.fp,
        tn: m.confusion.tn,
        fn_: m.confusion.fn_,
        accuracy_ci_low: ci.accuracy.map(|i| i.low),
        accuracy_ci_high: ci.accuracy.map(|i| i.high),
        roc_auc_ci_low: ci.roc_auc.map(|i| i.low),
        roc_auc_ci_high: ci.roc_auc.map(|i| i.high),
        bootstrap_resamples: ci.resamples,
        bootstrap_auc_skipped: ci.auc_skipped,
        parameters: key.parameters,
    }))
}
