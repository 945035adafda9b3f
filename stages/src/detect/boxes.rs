//! Candidate boxes and the geometry between the stages: non-maximum suppression, regression,
//! squaring.
//!
//! Everything is f64 with the reference's inclusive-pixel conventions (`x2 - x1 + 1` as the width
//! in NMS and in R/O-Net regression, `x2 - x1` in P-Net's), because boxes that are off by one pixel
//! here become different crops, hence different scores, in the next stage.

/// A candidate: corners, score, and the network's regression offsets not yet applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    pub score: f64,
    pub reg: [f64; 4],
}

/// How overlap is measured in [`nms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller area: O-Net's last pass, which also drops a box nested inside a
    /// bigger, better one.
    Min,
}

/// Greedy NMS; returns the indices kept, best score first. Ties keep the later index, a choice as
/// good as NumPy's (unstable) argsort, which leaves them in no defined order.
pub fn nms(boxes: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let threshold = f64::from(threshold);
    let area = |b: &Candidate| (b.x2 - b.x1 + 1.0) * (b.y2 - b.y1 + 1.0);
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[a].score.total_cmp(&boxes[b].score));
    let mut keep = Vec::new();
    while let Some(best) = order.pop() {
        keep.push(best);
        let b = &boxes[best];
        let area_b = area(b);
        order.retain(|&i| {
            let o = &boxes[i];
            let w = (b.x2.min(o.x2) - b.x1.max(o.x1) + 1.0).max(0.0);
            let h = (b.y2.min(o.y2) - b.y1.max(o.y1) + 1.0).max(0.0);
            let inter = w * h;
            let ratio = match overlap {
                Overlap::Union => inter / (area_b + area(o) - inter),
                Overlap::Min => inter / area_b.min(area(o)),
            };
            // NaN (degenerate boxes) compares false and is dropped, as in NumPy.
            ratio <= threshold
        });
    }
    keep
}

/// Applies R-Net's and O-Net's regression: offsets are fractions of the inclusive width and height.
pub fn apply_regression(b: &mut Candidate) {
    let w = b.x2 - b.x1 + 1.0;
    let h = b.y2 - b.y1 + 1.0;
    b.x1 += b.reg[0] * w;
    b.y1 += b.reg[1] * h;
    b.x2 += b.reg[2] * w;
    b.y2 += b.reg[3] * h;
}

/// Applies P-Net's regression, which (unlike the later stages) uses the exclusive width.
pub fn apply_pnet_regression(b: &mut Candidate) {
    let w = b.x2 - b.x1;
    let h = b.y2 - b.y1;
    let [dx1, dy1, dx2, dy2] = b.reg;
    *b = Candidate {
        x1: b.x1 + dx1 * w,
        y1: b.y1 + dy1 * h,
        x2: b.x2 + dx2 * w,
        y2: b.y2 + dy2 * h,
        ..*b
    };
}

/// Grows the box to a square about its centre, because R-Net and O-Net were trained on square
/// crops.
pub fn square(b: &mut Candidate) {
    let h = b.y2 - b.y1;
    let w = b.x2 - b.x1;
    let side = w.max(h);
    b.x1 = b.x1 + w * 0.5 - side * 0.5;
    b.y1 = b.y1 + h * 0.5 - side * 0.5;
    b.x2 = b.x1 + side;
    b.y2 = b.y1 + side;
}

/// Truncates the corners toward zero (`np.fix`), as the reference does before cropping.
pub fn truncate(b: &mut Candidate) {
    b.x1 = b.x1.trunc();
    b.y1 = b.y1.trunc();
    b.x2 = b.x2.trunc();
    b.y2 = b.y2.trunc();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(x1: f64, y1: f64, x2: f64, y2: f64, score: f64) -> Candidate {
        Candidate {
            x1,
            y1,
            x2,
            y2,
            score,
            reg: [0.0; 4],
        }
    }

    #[test]
    fn nms_keeps_best_and_distant() {
        let boxes = [
            cand(0.0, 0.0, 9.0, 9.0, 0.8),
            cand(1.0, 1.0, 10.0, 10.0, 0.9),
            cand(50.0, 50.0, 59.0, 59.0, 0.7),
        ];
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), vec![1, 2]);
        assert_eq!(nms(&boxes, 0.9, Overlap::Union), vec![1, 0, 2]);
    }

    #[test]
    fn min_overlap_drops_nested_box() {
        let boxes = [
            cand(0.0, 0.0, 99.0, 99.0, 0.9),
            cand(10.0, 10.0, 29.0, 29.0, 0.95),
        ];
        assert_eq!(nms(&boxes, 0.7, Overlap::Union), vec![1, 0]);
        assert_eq!(nms(&boxes, 0.7, Overlap::Min), vec![1]);
    }

    #[test]
    fn square_keeps_centre() {
        let mut b = cand(10.0, 20.0, 30.0, 60.0, 1.0);
        square(&mut b);
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (0.0, 20.0, 40.0, 60.0));
    }
}
