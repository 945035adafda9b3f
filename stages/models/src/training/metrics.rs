//! The per-epoch figures of the training history, computed on the host from logits.

/// Fraction of samples whose logit is on the side of 0 its label is on (`p > 0.5` is FAKE, as
/// Keras's `accuracy` with threshold 0.5). `None` for no samples.
pub fn accuracy(logits: &[f32], targets: &[f32]) -> Option<f64> {
    if logits.is_empty() {
        return None;
    }
    let correct = logits
        .iter()
        .zip(targets)
        .filter(|(z, y)| (**z > 0.0) == (**y > 0.5))
        .count();
    Some(correct as f64 / logits.len() as f64)
}

/// Area under the ROC curve of `scores` for `targets` (1 positive), ties counted half (the
/// Mann-Whitney statistic, equal to scikit-learn's `roc_auc_score`). `None` when either class is
/// absent, where the AUC is undefined.
pub fn roc_auc(scores: &[f32], targets: &[f32]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = targets.iter().filter(|y| **y > 0.5).count();
    let negatives = targets.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0f64;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end]
            .iter()
            .filter(|&&i| targets[i] > 0.5)
            .count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}
