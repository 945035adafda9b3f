//! The least-squares similarity transform (rotation, uniform scale, translation) between two sets of
//! 2-D points: Umeyama's method specialised to the plane, where it has a closed form. A similarity,
//! not a full affine map, because the donor face must keep its proportions: an affine fit to five
//! points would shear the face to match the target's expression and pose noise.

/// Points `(x, y)` in pixels.
pub type Points = [[f32; 2]; 5];

/// The 2x3 matrix `[[a, -b, tx], [b, a, ty]]` minimising `sum |M * src_i - dst_i|^2`, as row-major
/// f64 (what `warp_affine` takes). `None` when `src` is degenerate (all points equal), since then no
/// scale can be recovered.
pub fn similarity(src: &Points, dst: &Points) -> Option<[[f64; 3]; 2]> {
    let n = src.len() as f64;
    let mean = |pts: &Points| {
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
        (sx / n, sy / n)
    };
    let (mpx, mpy) = mean(src);
    let (mqx, mqy) = mean(dst);
    let (mut a, mut b, mut var) = (0.0, 0.0, 0.0);
    for (p, q) in src.iter().zip(dst) {
        let (px, py) = (p[0] as f64 - mpx, p[1] as f64 - mpy);
        let (qx, qy) = (q[0] as f64 - mqx, q[1] as f64 - mqy);
        // Real and imaginary parts of sum(conj(p) * q): scale * cos and scale * sin times var.
        a += px * qx + py * qy;
        b += px * qy - py * qx;
        var += px * px + py * py;
    }
    if var.is_nan() || var <= 1e-9 {
        return None;
    }
    let (c, s) = (a / var, b / var);
    let tx = mqx - (c * mpx - s * mpy);
    let ty = mqy - (s * mpx + c * mpy);
    Some([[c, -s, tx], [s, c, ty]])
}

/// Applies a 2x3 matrix to a point.
pub fn apply(m: &[[f64; 3]; 2], p: [f32; 2]) -> [f32; 2] {
    let (x, y) = (p[0] as f64, p[1] as f64);
    [
        (m[0][0] * x + m[0][1] * y + m[0][2]) as f32,
        (m[1][0] * x + m[1][1] * y + m[1][2]) as f32,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACE: Points = [
        [30.0, 40.0],
        [70.0, 41.0],
        [50.0, 60.0],
        [35.0, 80.0],
        [66.0, 79.0],
    ];

    #[test]
    fn recovers_an_exact_similarity() {
        let (scale, angle, tx, ty) = (1.7f64, 0.3f64, 12.0, -5.0);
        let m_true = [
            [scale * angle.cos(), -scale * angle.sin(), tx],
            [scale * angle.sin(), scale * angle.cos(), ty],
        ];
        let dst = FACE.map(|p| apply(&m_true, p));
        let m = similarity(&FACE, &dst).expect("non-degenerate");
        for (row, row_true) in m.iter().zip(&m_true) {
            for (v, t) in row.iter().zip(row_true) {
                assert!((v - t).abs() < 1e-4, "{m:?} vs {m_true:?}");
            }
        }
    }

    #[test]
    fn noisy_points_give_the_least_squares_fit_and_identity_maps_to_itself() {
        let m = similarity(&FACE, &FACE).expect("non-degenerate");
        assert!((m[0][0] - 1.0).abs() < 1e-9 && m[1][0].abs() < 1e-9);
        assert!(m[0][2].abs() < 1e-6 && m[1][2].abs() < 1e-6);
        let mut noisy = FACE;
        noisy[0][0] += 1.0;
        noisy[4][0] -= 1.0;
        let m = similarity(&FACE, &noisy).expect("non-degenerate");
        // Symmetric noise keeps the centroid, so the translation stays tiny.
        assert!(m[0][2].abs() < 2.0 && m[1][2].abs() < 2.0);
    }

    #[test]
    fn degenerate_source_is_refused() {
        assert!(similarity(&[[1.0, 1.0]; 5], &FACE).is_none());
    }
}
