//! The pseudo-models `always-fake` and `always-real`: every video scored 1.0 or 0.0. Their rows in
//! `metrics` are what "learned nothing" looks like on this split (accuracy = the share of one class,
//! AUC 0.5, F1 of always-fake = 2p / (1 + p) for a FAKE share p), so a detector's numbers can be
//! read against them instead of against 0.5. They score every labelled video of the split, faces
//! or not, since a constant needs no face.

use super::bootstrap::Unit;

pub const ALWAYS_FAKE: &str = "always-fake";
pub const ALWAYS_REAL: &str = "always-real";
/// `metrics.rule` of a baseline: nothing is aggregated.
pub const CONSTANT_RULE: &str = "constant";

/// The baselines, each with the score it gives every video.
pub const BASELINES: [(&str, f64); 2] = [(ALWAYS_FAKE, 1.0), (ALWAYS_REAL, 0.0)];

/// One single-sample unit per label, scored `score`.
pub fn constant_units(labels: &[bool], score: f64) -> Vec<Unit> {
    labels
        .iter()
        .map(|&fake| Unit {
            labels: vec![fake],
            scores: vec![score],
        })
        .collect()
}
