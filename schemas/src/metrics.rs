//! `metrics`: one row per (model variant, split, level, rule), written by `aggregate`: the numbers a
//! run is judged by, with percentile-bootstrap 95% intervals so that a difference between two
//! detectors on a few dozen test videos can be seen to be noise. The pseudo-models `always-fake`
//! and `always-real` are rows of the same table, so a detector that learned nothing is visible
//! next to them.
//!
//! A metric undefined on the data (AUC with one class, precision with nothing predicted FAKE) is
//! null, never NaN and never a stand-in such as 0.

crate::table! {
    /// Metrics of one model variant on one split, over videos (`level = video`, the aggregated
    /// scores of `video_scores`) or over face frames (`level = frame`, every frame score).
    pub struct MetricsRow in "metrics" {
        /// Variant name, or `always-fake` / `always-real` for the baselines.
        model: String,
        /// `val` or `test`.
        split: String,
        /// `video` or `frame`.
        level: String,
        /// The aggregation rule for video level; `frame` at frame level; `constant` for baselines.
        rule: String,
        /// Labelled samples (videos or frames) the metrics are over.
        n: u64,
        n_fake: u64,
        n_real: u64,
        /// Videos of the split with no scored face frame: left out of `n`, listed so that a
        /// detector cannot look better by failing to find faces. Same count at both levels.
        unscored: u64,
        /// Decision threshold: FAKE when score > threshold.
        threshold: f64,
        accuracy: Option<f64>,
        precision: Option<f64>,
        recall: Option<f64>,
        f1: Option<f64>,
        roc_auc: Option<f64>,
        average_precision: Option<f64>,
        log_loss: Option<f64>,
        /// Equal error rate on the ROC points.
        eer: Option<f64>,
        tp: u64,
        fp: u64,
        tn: u64,
        fn_: u64,
        /// 2.5th and 97.5th percentiles of the bootstrap distribution (videos resampled with
        /// replacement; at frame level whole videos with all their frames). Null without resamples.
        accuracy_ci_low: Option<f64>,
        accuracy_ci_high: Option<f64>,
        roc_auc_ci_low: Option<f64>,
        roc_auc_ci_high: Option<f64>,
        /// Bootstrap resamples drawn.
        bootstrap_resamples: u64,
        /// Resamples that held one class only, left out of the AUC interval (not of accuracy's).
        bootstrap_auc_skipped: u64,
        /// Parameter count from `models`; 0 for the constant baselines, null when `models` lacks it.
        parameters: Option<u64>,
    }
    validate = |batch| crate::column::require_no_nan("metrics", batch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TableRow;

    fn row() -> MetricsRow {
        MetricsRow {
            model: "mesonet4-single".into(),
            split: "test".into(),
            level: "video".into(),
            rule: "mean".into(),
            n: 2,
            n_fake: 1,
            n_real: 1,
            unscored: 0,
            threshold: 0.5,
            accuracy: Some(1.0),
            precision: Some(1.0),
            recall: Some(1.0),
            f1: Some(1.0),
            roc_auc: None,
            average_precision: None,
            log_loss: Some(0.1),
            eer: None,
            tp: 1,
            fp: 0,
            tn: 1,
            fn_: 0,
            accuracy_ci_low: None,
            accuracy_ci_high: None,
            roc_auc_ci_low: None,
            roc_auc_ci_high: None,
            bootstrap_resamples: 0,
            bootstrap_auc_skipped: 0,
            parameters: Some(27_977),
        }
    }

    #[test]
    fn nulls_round_trip_and_nan_is_refused() {
        let batch = MetricsRow::to_batch(&[row()]).unwrap();
        MetricsRow::TABLE.validate(&batch).unwrap();
        assert_eq!(MetricsRow::from_batch(&batch).unwrap(), vec![row()]);

        let mut bad = row();
        bad.roc_auc = Some(f64::NAN);
        let err = MetricsRow::TABLE
            .validate(&MetricsRow::to_batch(&[bad]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`roc_auc` is NaN"), "{err}");
    }
}
