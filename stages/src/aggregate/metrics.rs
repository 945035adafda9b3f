//! Video-level binary classification metrics, defined as scikit-learn defines them.
//!
//! Label `true` is FAKE, scores are the probability of FAKE. Every metric follows the scikit-learn
//! function named on its field, down to how tied scores are grouped, because published deepfake
//! results (the reference study among them) are quoted in those definitions, and a "ROC AUC" that
//! breaks ties differently is a different number. Where a metric has no value on the given data it
//! is `None`: a NaN would poison every mean it enters, and a stand-in such as scikit-learn's
//! `zero_division` 0.0 would be indistinguishable from a real, terrible result.

use std::cmp::Ordering;

use serde::Serialize;

/// Clip applied to scores before [`BinaryMetrics::log_loss`]: Keras' epsilon, which the reference
/// project trained and reported with. Without a clip one confident mistake (a score of exactly 0
/// or exactly 1) makes the loss infinite; scikit-learn's own default clip (machine epsilon) would
/// give a different number for such a score than the reference did.
pub const LOG_LOSS_EPS: f64 = 1e-7;

/// Counts at the decision threshold, in scikit-learn's `confusion_matrix(...).ravel()` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// REAL videos predicted REAL.
    pub tn: u64,
    /// REAL videos predicted FAKE.
    pub fp: u64,
    /// FAKE videos predicted REAL (`fn` is a keyword, hence the underscore).
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// FAKE videos predicted FAKE.
    pub tp: u64,
}

/// The scores of one set of videos against their labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryMetrics {
    /// `accuracy_score`.
    pub accuracy: f64,
    /// `precision_score`; `None` when nothing is predicted FAKE, where scikit-learn warns and
    /// returns its `zero_division` stand-in (0.0 by default).
    pub precision: Option<f64>,
    /// `recall_score`; `None` when no video is FAKE, where scikit-learn warns and returns its
    /// `zero_division` stand-in.
    pub recall: Option<f64>,
    /// `f1_score`, which scikit-learn (since 1.3) computes as `2tp / (2tp + fp + fn)`. That is a
    /// real 0.0 whenever there is any error, even with precision and recall both 0 or one of them
    /// undefined, and is `None` only when `tp + fp + fn = 0` (all REAL, all predicted REAL).
    pub f1: Option<f64>,
    /// `roc_auc_score`: trapezoids over the ROC curve with tied scores as one point, which is the
    /// Mann–Whitney U with ties counted half. `None` with a single class, where scikit-learn raises.
    pub roc_auc: Option<f64>,
    /// `average_precision_score`: the step-wise sum of precision times recall gained at each
    /// distinct score, not the interpolated area. `None` with a single class: scikit-learn gives
    /// NaN without FAKE videos, and 1.0 for any scores without REAL ones, a value that measures
    /// nothing and would flatter an average over runs.
    pub average_precision: Option<f64>,
    /// `log_loss` of the scores clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`, in nats. Always
    /// defined, also with a single class, where scikit-learn only refuses because it cannot infer
    /// the label set (it gives this value when passed `labels=[0, 1]`).
    pub log_loss: f64,
    /// Equal error rate, approximated on scikit-learn's `roc_curve` points (default
    /// `drop_intermediate=True`, with its leading `(0, 0)` point): the mean of FPR and FNR at the
    /// first point where `|FNR - FPR|` is smallest. No interpolation between points, as in the
    /// reference. `None` with a single class. The fixture's cases come out the same with or
    /// without the dropped points and with either tie rule, so those two choices follow
    /// scikit-learn's defaults (`roc_curve()`, `numpy.argmin`) rather than evidence.
    pub eer: Option<f64>,
    pub confusion: Confusion,
}

/// Inputs on which the metrics would be wrong rather than merely undefined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("{labels} labels but {scores} scores")]
    LengthMismatch { labels: usize, scores: usize },
    #[error("no videos to score")]
    Empty,
    #[error("score {value} of video {index} is not a probability in [0, 1]")]
    InvalidScore { index: usize, value: f64 },
    #[error("threshold {0} is not a probability in [0, 1]")]
    InvalidThreshold(f64),
}

/// All metrics at once, because they share the validation and the sort by score.
///
/// A video is predicted FAKE when its score is strictly greater than `threshold`, as in the
/// reference project, so a score of exactly 0.5 is REAL at the default threshold. Scores outside
/// [0, 1] are refused rather than clipped: they are logits or percentages passed by mistake, and
/// every threshold-free metric would silently accept them.
pub fn binary_metrics(
    y_true: &[bool],
    y_score: &[f64],
    threshold: f64,
) -> Result<BinaryMetrics, MetricsError> {
    if y_true.len() != y_score.len() {
        return Err(MetricsError::LengthMismatch {
            labels: y_true.len(),
            scores: y_score.len(),
        });
    }
    if y_true.is_empty() {
        return Err(MetricsError::Empty);
    }
    if !is_probability(threshold) {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    if let Some((index, &value)) = y_score
        .iter()
        .enumerate()
        .find(|(_, &s)| !is_probability(s))
    {
        return Err(MetricsError::InvalidScore { index, value });
    }

    let confusion = confusion(y_true, y_score, threshold);
    let Confusion { tn, fp, fn_, tp } = confusion;
    let n = y_true.len() as f64;
    let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);

    let counts = threshold_counts(y_true, y_score);
    let (positives, negatives) = counts.last().map_or((0, 0), |c| (c.tp, c.fp));
    let (roc_auc, average_precision, eer) = if positives > 0 && negatives > 0 {
        let roc = roc_curve(&counts, positives, negatives);
        (
            Some(trapezoid(&roc)),
            Some(average_precision(&counts, positives)),
            Some(eer(&roc)),
        )
    } else {
        (None, None, None)
    };

    Ok(BinaryMetrics {
        accuracy: (tp + tn) as f64 / n,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(2 * tp, (tp + fn_) + (tp + fp)),
        roc_auc,
        average_precision,
        log_loss: log_loss(y_true, y_score),
        eer,
        confusion,
    })
}

/// scikit-learn's `roc_curve` (FPR, TPR) points, starting at (0, 0): the curve the AUC above is the
/// area of, for plotting. `None` with a single class or on the inputs [`binary_metrics`] refuses.
pub fn roc_points(y_true: &[bool], y_score: &[f64]) -> Option<Vec<(f64, f64)>> {
    if y_true.len() != y_score.len() || !y_score.iter().all(|&s| is_probability(s)) {
        return None;
    }
    let counts = threshold_counts(y_true, y_score);
    let (positives, negatives) = counts.last().map_or((0, 0), |c| (c.tp, c.fp));
    (positives > 0 && negatives > 0).then(|| roc_curve(&counts, positives, negatives))
}

fn is_probability(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

fn confusion(y_true: &[bool], y_score: &[f64], threshold: f64) -> Confusion {
    let mut c = Confusion {
        tn: 0,
        fp: 0,
        fn_: 0,
        tp: 0,
    };
    for (&truth, &score) in y_true.iter().zip(y_score) {
        match (truth, score > threshold) {
            (false, false) => c.tn += 1,
            (false, true) => c.fp += 1,
            (true, false) => c.fn_ += 1,
            (true, true) => c.tp += 1,
        }
    }
    c
}

/// Cumulative counts of videos scored at or above one distinct score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    fp: u64,
    tp: u64,
}

/// scikit-learn's `_binary_clf_curve`: one entry per distinct score, highest first. Tied scores
/// enter together, which is what makes ties count half in the AUC.
fn threshold_counts(y_true: &[bool], y_score: &[f64]) -> Vec<Counts> {
    let mut order: Vec<usize> = (0..y_score.len()).collect();
    // Scores are validated finite; `Equal` is unreachable and only avoids a panic path.
    order.sort_by(|&a, &b| {
        y_score[b]
            .partial_cmp(&y_score[a])
            .unwrap_or(Ordering::Equal)
    });
    let mut counts = Vec::new();
    let mut current = Counts { fp: 0, tp: 0 };
    for (k, &i) in order.iter().enumerate() {
        if y_true[i] {
            current.tp += 1;
        } else {
            current.fp += 1;
        }
        let last_of_group = order.get(k + 1).is_none_or(|&j| y_score[j] != y_score[i]);
        if last_of_group {
            counts.push(current);
        }
    }
    counts
}

/// scikit-learn's `roc_curve` as (FPR, TPR) points: the points collinear with both neighbours at
/// equal steps dropped (`drop_intermediate=True`), then `(0, 0)` prepended. Dropping does not change
/// the AUC, but it does decide which points the EER can land on, so it is reproduced exactly.
fn roc_curve(counts: &[Counts], positives: u64, negatives: u64) -> Vec<(f64, f64)> {
    let second_diff_nonzero =
        |a: u64, b: u64, c: u64| (c as i128 - b as i128) != (b as i128 - a as i128);
    let last = counts.len() - 1;
    let mut points = vec![(0.0, 0.0)];
    for (i, c) in counts.iter().enumerate() {
        let keep = counts.len() <= 2
            || i == 0
            || i == last
            || second_diff_nonzero(counts[i - 1].fp, c.fp, counts[i + 1].fp)
            || second_diff_nonzero(counts[i - 1].tp, c.tp, counts[i + 1].tp);
        if keep {
            points.push((
                c.fp as f64 / negatives as f64,
                c.tp as f64 / positives as f64,
            ));
        }
    }
    points
}

/// `sklearn.metrics.auc`, i.e. numpy's trapezoid rule, term for term.
fn trapezoid(roc: &[(f64, f64)]) -> f64 {
    roc.windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}

fn average_precision(counts: &[Counts], positives: u64) -> f64 {
    let mut sum = 0.0;
    let mut previous_recall = 0.0;
    for c in counts {
        let recall = c.tp as f64 / positives as f64;
        let precision = c.tp as f64 / (c.tp + c.fp) as f64;
        sum += (recall - previous_recall) * precision;
        previous_recall = recall;
        // scikit-learn cuts the curve where full recall is first reached; later terms add 0.
        if c.tp == positives {
            break;
        }
    }
    sum
}

fn eer(roc: &[(f64, f64)]) -> f64 {
    let mut best = f64::INFINITY;
    let mut eer = 0.0;
    for &(fpr, tpr) in roc {
        let fnr = 1.0 - tpr;
        // Strictly smaller keeps the first minimum, as `numpy.argmin` does.
        if (fnr - fpr).abs() < best {
            best = (fnr - fpr).abs();
            eer = (fpr + fnr) / 2.0;
        }
    }
    eer
}

fn log_loss(y_true: &[bool], y_score: &[f64]) -> f64 {
    let total: f64 = y_true
        .iter()
        .zip(y_score)
        .map(|(&truth, &score)| {
            let p = score.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -if truth { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    total / y_true.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_match() {
        assert_eq!(
            binary_metrics(&[true, false], &[0.5], 0.5),
            Err(MetricsError::LengthMismatch {
                labels: 2,
                scores: 1
            })
        );
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(binary_metrics(&[], &[], 0.5), Err(MetricsError::Empty));
    }

    #[test]
    fn scores_must_be_probabilities() {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.01,
            1.01,
            50.0,
        ] {
            match binary_metrics(&[true, false], &[0.3, bad], 0.5) {
                Err(MetricsError::InvalidScore { index: 1, value }) => {
                    assert!(value.is_nan() && bad.is_nan() || value == bad)
                }
                other => panic!("score {bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn threshold_must_be_a_probability() {
        for bad in [f64::NAN, -0.5, 1.5] {
            assert!(matches!(
                binary_metrics(&[true, false], &[0.3, 0.7], bad),
                Err(MetricsError::InvalidThreshold(_))
            ));
        }
    }

    #[test]
    fn bounds_are_valid_scores_and_log_loss_stays_finite() {
        let m = binary_metrics(&[true, false], &[0.0, 1.0], 0.5).unwrap();
        // Both maximally wrong: -ln(1e-7) each, up to the rounding of 1 - 1e-7 (about 6e-9).
        assert!(
            (m.log_loss - 16.11809565095832).abs() < 1e-7,
            "{}",
            m.log_loss
        );
        assert_eq!(m.roc_auc, Some(0.0));
    }

    #[test]
    fn all_real_predicted_real_leaves_ratios_undefined() {
        let m = binary_metrics(&[false, false], &[0.1, 0.2], 0.5).unwrap();
        assert_eq!(m.accuracy, 1.0);
        assert_eq!((m.precision, m.recall, m.f1), (None, None, None));
        assert_eq!((m.roc_auc, m.average_precision, m.eer), (None, None, None));
    }

    #[test]
    fn roc_points_are_the_curve_the_auc_measures() {
        let (y, s) = ([true, false, true, false], [0.9, 0.8, 0.4, 0.1]);
        let points = roc_points(&y, &s).unwrap();
        assert_eq!(points.first(), Some(&(0.0, 0.0)));
        assert_eq!(points.last(), Some(&(1.0, 1.0)));
        let auc = binary_metrics(&y, &s, 0.5).unwrap().roc_auc.unwrap();
        assert!((trapezoid(&points) - auc).abs() < 1e-12);
        assert_eq!(roc_points(&[true, true], &[0.1, 0.2]), None);
    }
}
