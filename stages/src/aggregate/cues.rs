//! The cue baselines: every labelled video of a split scored by one model-free cue of `video_cues`
//! (sharpness, face size, brightness, bitrate, SSIM mean), as if the cue were a detector.
//!
//! A cue's AUC is reported as measured, below 0.5 included: a dataset whose FAKEs are *blurrier*
//! leaks as much as one whose FAKEs are sharper, and a detector may learn either direction. Its
//! *strength* is therefore `max(AUC, 1 - AUC)`, and a detector whose AUC does not exceed the
//! strongest cue's strength on a split has not shown that it learned more than that cue.
//!
//! Cues are raw numbers (bits per second, gray levels), not probabilities, so a cue's scores are its
//! ranks within the split scaled to `[0, 1]` (ties share their mean rank). AUC, average precision
//! and EER depend on the order alone and are the cue's own; accuracy and the confusion counts are
//! those of the rule "FAKE above the split's median"; log loss, meaningless for ranks, is null.

use std::collections::BTreeMap;

use dfd_schemas::{Label, MetricsRow, VideoCueRow, VideoRow};

use super::bootstrap::{BootstrapParams, Unit};
use super::evaluate::{metrics_row, MetricsKey, VIDEO_LEVEL};
use super::metrics::MetricsError;

/// `metrics.rule` of a cue baseline.
pub const CUE_RULE: &str = "cue";

/// One cue: its name as a model in `metrics`, and how to read it from a `video_cues` row.
pub struct Cue {
    pub model: &'static str,
    pub value: fn(&VideoCueRow) -> Option<f64>,
}

/// Every cue, in the order the report lists them.
pub const CUES: [Cue; 5] = [
    Cue {
        model: "cue-face-sharpness",
        value: |c| c.face_sharpness,
    },
    Cue {
        model: "cue-face-area",
        value: |c| c.face_area,
    },
    Cue {
        model: "cue-face-brightness",
        value: |c| c.face_brightness,
    },
    Cue {
        model: "cue-bitrate",
        value: |c| c.bitrate,
    },
    Cue {
        model: "cue-ssim-mean",
        value: |c| c.ssim_mean,
    },
];

/// How much a cue with this AUC tells the classes apart, whichever way round.
pub fn strength(auc: f64) -> f64 {
    auc.max(1.0 - auc)
}

/// The metrics rows of every cue on every split that has labelled videos.
pub fn cue_rows(
    videos: &[VideoRow],
    cues: &[VideoCueRow],
    bootstrap: BootstrapParams,
) -> Result<Vec<MetricsRow>, MetricsError> {
    let by_video: BTreeMap<&str, &VideoCueRow> =
        cues.iter().map(|c| (c.video_id.as_str(), c)).collect();
    let mut splits: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    for v in videos {
        if let (Some(split), Some(label)) = (v.split.as_deref(), v.label) {
            splits
                .entry(split)
                .or_default()
                .push((v.video_id.as_str(), label == Label::Fake));
        }
    }
    let mut rows = Vec::new();
    for (split, labelled) in &splits {
        for cue in &CUES {
            let measured: Vec<(bool, f64)> = labelled
                .iter()
                .filter_map(|(id, fake)| {
                    let value = by_video.get(id).and_then(|c| (cue.value)(c))?;
                    value.is_finite().then_some((*fake, value))
                })
                .collect();
            let scores = rank_scores(&measured.iter().map(|m| m.1).collect::<Vec<_>>());
            let units: Vec<Unit> = measured
                .iter()
                .zip(scores)
                .map(|((fake, _), score)| Unit {
                    labels: vec![*fake],
                    scores: vec![score],
                })
                .collect();
            let key = MetricsKey {
                model: cue.model.to_string(),
                split: split.to_string(),
                level: VIDEO_LEVEL,
                rule: CUE_RULE.to_string(),
                unscored: (labelled.len() - measured.len()) as u64,
                parameters: Some(0),
            };
            if let Some(mut row) = metrics_row(key, &units, 0.5, bootstrap)? {
                row.log_loss = None;
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Each value's rank among `values` (1-based, ties given their mean rank), mapped linearly onto
/// `[0, 1]`; a single value scores 0.5.
fn rank_scores(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    if n == 1 {
        return vec![0.5];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0;
        for &k in &order[i..=j] {
            ranks[k] = mean_rank / (n - 1) as f64;
        }
        i = j + 1;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_keep_the_order_and_share_ties() {
        assert_eq!(rank_scores(&[30.0, 10.0, 20.0]), [1.0, 0.0, 0.5]);
        assert_eq!(rank_scores(&[5.0, 5.0, 1.0]), [0.75, 0.75, 0.0]);
        assert_eq!(rank_scores(&[7.0]), [0.5]);
    }

    fn video(i: usize, fake: bool) -> VideoRow {
        VideoRow {
            video_id: format!("v{i}.mp4"),
            path: format!("/d/v{i}.mp4"),
            label: Some(if fake { Label::Fake } else { Label::Real }),
            split: Some("test".into()),
            original: None,
            group: format!("v{i}.mp4"),
            size_bytes: 1000,
            modified_ms: 0,
        }
    }

    /// 200 videos, half FAKE: sharpness planted (FAKEs sharper), face area planted the other way,
    /// brightness drawn at random, bitrate unknown.
    #[test]
    fn a_planted_cue_is_found_either_way_round_and_a_random_one_is_not() {
        let mut rng = dfd_models::rng::SplitMix64::new(3);
        let videos: Vec<VideoRow> = (0..200).map(|i| video(i, i % 2 == 0)).collect();
        let cues: Vec<VideoCueRow> = videos
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let fake = v.label == Some(Label::Fake);
                VideoCueRow {
                    video_id: v.video_id.clone(),
                    face_frames: 20,
                    face_sharpness: Some(if fake { 100.0 } else { 50.0 } + i as f64 * 0.1),
                    face_area: Some(if fake { 10.0 } else { 20.0 }),
                    face_brightness: Some(rng.uniform(0.0, 255.0)),
                    bitrate: None,
                    ssim_mean: Some(0.5),
                }
            })
            .collect();
        let bootstrap = BootstrapParams {
            resamples: 200,
            seed: 1,
        };
        let rows = cue_rows(&videos, &cues, bootstrap).unwrap();
        let auc = |model: &str| {
            let row = rows.iter().find(|r| r.model == model).unwrap();
            (
                row.roc_auc.unwrap(),
                row.roc_auc_ci_low.unwrap(),
                row.roc_auc_ci_high.unwrap(),
            )
        };
        assert_eq!(auc("cue-face-sharpness").0, 1.0);
        let (area, _, _) = auc("cue-face-area");
        assert_eq!((area, strength(area)), (0.0, 1.0));
        let (bright, low, high) = auc("cue-face-brightness");
        assert!(
            (bright - 0.5).abs() < 0.1 && low < 0.5 && high > 0.5,
            "{bright} [{low}, {high}]"
        );
        // Ties everywhere: no information at all.
        assert_eq!(auc("cue-ssim-mean").0, 0.5);
        let bitrate = rows.iter().find(|r| r.model == "cue-bitrate").map(|r| r.n);
        assert_eq!(bitrate, None, "a cue measured on no video has no row");
        let sharp = rows
            .iter()
            .find(|r| r.model == "cue-face-sharpness")
            .unwrap();
        assert_eq!((sharp.n, sharp.unscored, sharp.log_loss), (200, 0, None));
        assert_eq!(sharp.accuracy, Some(1.0), "median split of a planted cue");
    }

    #[test]
    fn strength_is_symmetric() {
        assert_eq!(strength(0.2), 0.8);
        assert_eq!(strength(0.7), 0.7);
    }
}
