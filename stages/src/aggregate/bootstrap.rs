//! Percentile-bootstrap 95% intervals for accuracy and ROC AUC.
//!
//! A test split of a few dozen videos gives an AUC that moves by 0.1 when three videos change, so
//! every point estimate in the report comes with an interval. The resampling unit is the video:
//! at video level each unit holds one score; at frame level a unit holds all the frames of one
//! video, so the interval reflects that frames of one video are not independent evidence (a
//! cluster bootstrap; resampling frames would give intervals far too narrow).
//!
//! Resamples are drawn by the workspace's SplitMix64 generator (`dfd_models::rng`) keyed by (seed,
//! resample index) rather than by `rand`, so the intervals for a seed are the same on every machine, thread
//! count and dependency version: they are part of a cached, content-hashed table.

use dfd_models::rng::SplitMix64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::metrics::{binary_metrics, MetricsError};

/// The lower and upper percentiles of a 95% interval.
pub const CI_PERCENTILES: (f64, f64) = (2.5, 97.5);

/// The resampling settings (the `[aggregate]` section's `bootstrap_*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapParams {
    /// Resamples drawn; 0 turns the intervals off (they are then null).
    pub resamples: u32,
    pub seed: u64,
}

impl Default for BootstrapParams {
    fn default() -> Self {
        BootstrapParams {
            resamples: 1000,
            seed: 0,
        }
    }
}

/// One resampling unit (a video): the labels (`true` = FAKE) and scores of its samples.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Unit {
    pub labels: Vec<bool>,
    pub scores: Vec<f64>,
}

/// A closed interval of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }

    pub fn width(&self) -> f64 {
        self.high - self.low
    }
}

/// The intervals and how many resamples they rest on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapCi {
    /// `None` when no resample was drawn.
    pub accuracy: Option<Interval>,
    /// `None` when no resample held both classes.
    pub roc_auc: Option<Interval>,
    pub resamples: u64,
    /// Resamples holding one class only, where AUC is undefined: left out of the AUC interval
    /// rather than counted as some value. Many of them mean the interval is not to be trusted.
    pub auc_skipped: u64,
}

/// Draws `params.resamples` resamples of `units` (as many units as there are, with replacement)
/// and returns the 2.5th and 97.5th percentiles (numpy's default linear interpolation) of accuracy
/// and AUC over them. Units without samples are kept: drawing them is part of the sampling.
pub fn bootstrap_ci(
    units: &[Unit],
    threshold: f64,
    params: BootstrapParams,
) -> Result<BootstrapCi, MetricsError> {
    if units.iter().all(|u| u.labels.is_empty()) {
        return Err(MetricsError::Empty);
    }
    // One full computation first, so a bad score or length fails here and not in every resample.
    let (labels, scores) = concat(units, 0..units.len());
    binary_metrics(&labels, &scores, threshold)?;

    let outcomes: Vec<(f64, Option<f64>)> = (0..u64::from(params.resamples))
        .into_par_iter()
        .filter_map(|i| {
            let mut rng = resample_rng(params.seed, i);
            let picks = (0..units.len()).map(|_| rng.below(units.len()));
            let (labels, scores) = concat(units, picks);
            // A resample of units without samples has nothing to measure; it is rare (every
            // drawn video had no frame) and it is not counted.
            let m = binary_metrics(&labels, &scores, threshold).ok()?;
            Some((m.accuracy, m.roc_auc))
        })
        .collect();
    let mut accuracies: Vec<f64> = outcomes.iter().map(|o| o.0).collect();
    let mut aucs: Vec<f64> = outcomes.iter().filter_map(|o| o.1).collect();
    Ok(BootstrapCi {
        accuracy: percentile_interval(&mut accuracies),
        roc_auc: percentile_interval(&mut aucs),
        resamples: outcomes.len() as u64,
        auc_skipped: (outcomes.len() - aucs.len()) as u64,
    })
}

fn concat(units: &[Unit], picks: impl Iterator<Item = usize>) -> (Vec<bool>, Vec<f64>) {
    let mut labels = Vec::new();
    let mut scores = Vec::new();
    for i in picks {
        labels.extend_from_slice(&units[i].labels);
        scores.extend_from_slice(&units[i].scores);
    }
    (labels, scores)
}

fn percentile_interval(values: &mut [f64]) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(Interval {
        low: percentile(values, CI_PERCENTILES.0),
        high: percentile(values, CI_PERCENTILES.1),
    })
}

/// `numpy.percentile(values, q)` with the default linear method, on sorted, non-empty `values`.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (rank - below as f64)
}

/// An independent-looking stream per resample (the workspace's SplitMix64, keyed by the seed and
/// the resample's index), so resamples can be drawn in parallel in any order and still be the same.
fn resample_rng(seed: u64, resample: u64) -> SplitMix64 {
    let base = SplitMix64::new(seed ^ 0x5851_F42D_4C95_7F2D).next_u64();
    SplitMix64::new(base ^ SplitMix64::new(resample).next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` videos, half FAKE, scored by a noisy but informative detector (deterministic noise).
    fn videos(n: usize) -> Vec<Unit> {
        let mut rng = SplitMix64::new(42);
        (0..n)
            .map(|i| {
                let fake = i % 2 == 0;
                let noise = rng.next_f64();
                let score = if fake {
                    0.25 + 0.7 * noise
                } else {
                    0.05 + 0.7 * noise
                };
                Unit {
                    labels: vec![fake],
                    scores: vec![score],
                }
            })
            .collect()
    }

    fn params(resamples: u32, seed: u64) -> BootstrapParams {
        BootstrapParams { resamples, seed }
    }

    #[test]
    fn the_same_seed_gives_the_same_intervals_and_another_seed_others() {
        let units = videos(60);
        let a = bootstrap_ci(&units, 0.5, params(300, 7)).unwrap();
        let b = bootstrap_ci(&units, 0.5, params(300, 7)).unwrap();
        let c = bootstrap_ci(&units, 0.5, params(300, 8)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.roc_auc, c.roc_auc);
    }

    #[test]
    fn the_interval_contains_the_point_estimate() {
        let units = videos(80);
        let (labels, scores) = concat(&units, 0..units.len());
        let point = binary_metrics(&labels, &scores, 0.5).unwrap();
        let ci = bootstrap_ci(&units, 0.5, params(1000, 1)).unwrap();
        let auc = ci.roc_auc.unwrap();
        let acc = ci.accuracy.unwrap();
        assert!(auc.contains(point.roc_auc.unwrap()), "{auc:?} {point:?}");
        assert!(acc.contains(point.accuracy), "{acc:?} {point:?}");
        assert!(auc.width() > 0.0 && acc.width() > 0.0);
        assert_eq!((ci.resamples, ci.auc_skipped), (1000, 0));
    }

    #[test]
    fn the_interval_narrows_as_videos_are_added() {
        let small = bootstrap_ci(&videos(40), 0.5, params(1000, 3)).unwrap();
        let large = bootstrap_ci(&videos(640), 0.5, params(1000, 3)).unwrap();
        let (s, l) = (small.roc_auc.unwrap(), large.roc_auc.unwrap());
        // Width goes as 1/sqrt(n): 16x the videos, about a quarter of the width.
        assert!(l.width() < s.width() / 2.0, "{s:?} {l:?}");
        let (s, l) = (small.accuracy.unwrap(), large.accuracy.unwrap());
        assert!(l.width() < s.width() / 2.0, "{s:?} {l:?}");
    }

    #[test]
    fn one_class_resamples_are_skipped_for_auc_and_counted() {
        // Two videos: a resample is one-class half the time.
        let units = vec![
            Unit {
                labels: vec![true],
                scores: vec![0.9],
            },
            Unit {
                labels: vec![false],
                scores: vec![0.2],
            },
        ];
        let ci = bootstrap_ci(&units, 0.5, params(400, 5)).unwrap();
        assert_eq!(ci.resamples, 400);
        assert!(
            (150..250).contains(&ci.auc_skipped),
            "{} skipped",
            ci.auc_skipped
        );
        assert_eq!(
            ci.roc_auc,
            Some(Interval {
                low: 1.0,
                high: 1.0
            })
        );
    }

    #[test]
    fn frame_level_resamples_whole_videos() {
        // Frames of a video share its label; a unit of 3 frames is drawn with all 3.
        let units: Vec<Unit> = videos(30)
            .into_iter()
            .map(|u| Unit {
                labels: vec![u.labels[0]; 3],
                scores: vec![u.scores[0]; 3],
            })
            .collect();
        let video = bootstrap_ci(&videos(30), 0.5, params(200, 9)).unwrap();
        let frames = bootstrap_ci(&units, 0.5, params(200, 9)).unwrap();
        // Tripling every video changes nothing: the same videos are drawn with the same seed.
        assert_eq!(video.accuracy, frames.accuracy);
        assert_eq!(video.roc_auc, frames.roc_auc);
    }

    #[test]
    fn no_resamples_no_intervals() {
        let ci = bootstrap_ci(&videos(10), 0.5, params(0, 0)).unwrap();
        assert_eq!((ci.accuracy, ci.roc_auc, ci.resamples), (None, None, 0));
    }

    #[test]
    fn percentile_is_numpys_linear_percentile() {
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925]
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile(&sorted, 2.5) - 1.075).abs() < 1e-12);
        assert!((percentile(&sorted, 97.5) - 3.925).abs() < 1e-12);
    }
}
