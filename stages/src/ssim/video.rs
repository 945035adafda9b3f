//! From the face crops of one video, in time order, to one SSIM per frame and their per-video
//! summary, following the reference study's pairing.

use ndarray::ArrayView2;

use super::{structural_similarity, SsimError};

/// Mean and spread of a video's frame scores: the feature the classifier reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoSsimStats {
    pub mean: f64,
    /// Population variance (numpy's `np.var`, `ddof=0`), as the reference computed it; the sample
    /// variance would differ by a factor n/(n-1), large for videos with few faces.
    pub var: f64,
    /// Number of scores summarised, one per frame.
    pub count: usize,
}

/// One score per frame, in time order: frame `i` against frame `i - 1`, and frame 0, which has no
/// predecessor, against frame 1. That gives every frame a score, so a video's count is its number
/// of face frames, and the first two scores are equal (SSIM is symmetric). Fewer than two frames
/// give no pair and an empty result, never an error.
pub fn consecutive_scores(frames: &[ArrayView2<u8>]) -> Result<Vec<f64>, SsimError> {
    if frames.len() < 2 {
        return Ok(Vec::new());
    }
    let mut scores = Vec::with_capacity(frames.len());
    for pair in frames.windows(2) {
        scores.push(structural_similarity(pair[1], pair[0])?.score);
    }
    scores.insert(0, scores[0]);
    Ok(scores)
}

/// `None` for no scores, so a video without a frame pair is a clear null downstream rather than
/// the NaN that numpy's mean of an empty array would give.
pub fn video_stats(scores: &[f64]) -> Option<VideoSsimStats> {
    if scores.is_empty() {
        return None;
    }
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    // Two passes, as numpy does, rather than E[x²] - E[x]²: the scores of one video agree to three
    // or four digits, so the one-pass form would cancel away most of the variance's precision.
    let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n;
    Some(VideoSsimStats {
        mean,
        var,
        count: scores.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn empty_is_none_not_nan() {
        assert_eq!(video_stats(&[]), None);
    }

    #[test]
    fn single_score_has_zero_variance() {
        assert_eq!(
            video_stats(&[0.25]),
            Some(VideoSsimStats {
                mean: 0.25,
                var: 0.0,
                count: 1
            })
        );
    }

    #[test]
    fn variance_is_population_not_sample() {
        // np.var([1, 2, 3, 4]) == 1.25; the sample variance would be 1.6667.
        let stats = video_stats(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(stats.mean, 2.5);
        assert_eq!(stats.var, 1.25);
        assert_eq!(stats.count, 4);
    }

    #[test]
    fn fewer_than_two_frames_give_no_scores() {
        let frame = Array2::<u8>::zeros((8, 8));
        assert_eq!(consecutive_scores(&[]), Ok(vec![]));
        assert_eq!(consecutive_scores(&[frame.view()]), Ok(vec![]));
    }

    #[test]
    fn mismatched_frames_are_an_error() {
        let a = Array2::<u8>::zeros((8, 8));
        let b = Array2::<u8>::zeros((9, 8));
        assert!(consecutive_scores(&[a.view(), b.view()]).is_err());
    }
}
