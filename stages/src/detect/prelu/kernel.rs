//! The arithmetic of [`super::PRelu`]: `x > 0 ? x : x * slope`, with `slope` broadcast to `x`.

/// How the slope's values map onto `x`'s elements.
#[derive(Debug, PartialEq)]
pub enum Layout {
    /// `x` as `[outer, slope.len(), inner]`: the slope varies along one axis at most.
    Runs { inner: usize },
    /// Anything else: `x`'s dimensions and, for each, the slope's stride along it (0 where the
    /// slope is broadcast).
    General {
        dims: Vec<usize>,
        strides: Vec<usize>,
    },
}

impl Layout {
    /// The layout of a slope shaped `slope` over an `x` shaped `x`, or `None` when ONNX's
    /// unidirectional broadcasting does not take one to the other.
    pub fn of(x: &[i64], slope: &[i64]) -> Option<Layout> {
        let dims = x
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<usize>>>()?;
        let lead = dims.len().checked_sub(slope.len())?;
        let mut aligned = vec![1usize; lead];
        for &d in slope {
            aligned.push(usize::try_from(d).ok()?);
        }
        if aligned.iter().zip(&dims).any(|(&a, &d)| a != 1 && a != d) {
            return None;
        }
        let varying: Vec<usize> = (0..dims.len()).filter(|&k| aligned[k] != 1).collect();
        let product = |d: &[usize]| d.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        match varying[..] {
            [] => Some(Layout::Runs {
                inner: product(&dims)?,
            }),
            [k] => Some(Layout::Runs {
                inner: product(&dims[k + 1..])?,
            }),
            _ => {
                let mut strides = vec![0; dims.len()];
                let mut stride = 1;
                for k in (0..dims.len()).rev() {
                    if aligned[k] != 1 {
                        strides[k] = stride;
                        stride *= aligned[k];
                    }
                }
                Some(Layout::General { dims, strides })
            }
        }
    }
}

/// `y = x > 0 ? x : x * slope[c]` over `x` and `y` as `[outer, slope.len(), inner]` (a branch-free
/// select the compiler vectorises).
pub fn prelu(x: &[f32], slope: &[f32], inner: usize, y: &mut [f32]) {
    if inner == 0 {
        return;
    }
    let runs = x.chunks_exact(inner).zip(y.chunks_exact_mut(inner));
    for ((x, y), &a) in runs.zip(slope.iter().cycle()) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = if x > 0.0 { x } else { x * a };
        }
    }
}

/// [`prelu`] for a [`Layout::General`] slope: each element's slope index from its coordinates.
pub fn prelu_general(x: &[f32], slope: &[f32], dims: &[usize], strides: &[usize], y: &mut [f32]) {
    let mut at = vec![0usize; dims.len()];
    for (y, &x) in y.iter_mut().zip(x) {
        let a = slope[at.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>()];
        *y = if x > 0.0 { x } else { x * a };
        // The next coordinates, last axis fastest.
        for k in (0..dims.len()).rev() {
            at[k] += 1;
            if at[k] < dims[k] {
                break;
            }
            at[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(inner: usize) -> Option<Layout> {
        Some(Layout::Runs { inner })
    }

    #[test]
    fn slope_shapes() {
        // MTCNN's, and PyTorch's export of a per-channel PReLU.
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[1, 10, 1, 1]), runs(35));
        assert_eq!(Layout::of(&[3, 128], &[128]), runs(1));
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[10, 1, 1]), runs(35));
        // One slope for all, or one per last-axis position.
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[1]), runs(350));
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[]), runs(350));
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[7]), runs(1));
        assert_eq!(
            Layout::of(&[2, 10, 5, 7], &[10, 5, 1]),
            Some(Layout::General {
                dims: vec![2, 10, 5, 7],
                strides: vec![0, 5, 1, 0],
            })
        );
        // Not broadcastable: a wrong size, a slope of higher rank, an unknown dimension.
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[10]), None);
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[1, 9, 1, 1]), None);
        assert_eq!(Layout::of(&[10], &[1, 10]), None);
        assert_eq!(Layout::of(&[-1, 10], &[10]), None);
    }

    /// Both paths against the definition, element by element, on a slope that varies along two
    /// axes and on one that varies along one.
    #[test]
    fn general_and_runs_match_the_definition() {
        let dims = [2usize, 3, 4, 5];
        let x: Vec<f32> = (0..120).map(|i| ((i * 37) % 23) as f32 - 11.5).collect();
        for slope_shape in [vec![3i64, 1, 5], vec![3, 1, 1]] {
            let len: i64 = slope_shape.iter().product();
            let slope: Vec<f32> = (0..len).map(|i| 0.25 * i as f32 - 1.0).collect();
            let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let mut y = vec![f32::NAN; 120];
            match Layout::of(&shape, &slope_shape).unwrap() {
                Layout::Runs { inner } => prelu(&x, &slope, inner, &mut y),
                Layout::General { dims, strides } => {
                    prelu_general(&x, &slope, &dims, &strides, &mut y)
                }
            }
            for (i, (&x, &y)) in x.iter().zip(&y).enumerate() {
                let (c, w) = ((i / 20) % 3, i % 5);
                let a = if slope_shape.len() == 3 && slope_shape[2] == 5 {
                    slope[c * 5 + w]
                } else {
                    slope[c]
                };
                let want = if x > 0.0 { x } else { x * a };
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "element {i} of {slope_shape:?}"
                );
            }
        }
    }

    #[test]
    fn negative_side_scaled_per_channel() {
        // Two images of two channels of three values.
        let x = [
            1.0, -2.0, 0.0, -1.0, 3.0, -0.0, -4.0, 5.0, 6.0, 7.0, -8.0, -0.5,
        ];
        let mut y = [f32::NAN; 12];
        prelu(&x, &[0.5, -2.0], 3, &mut y);
        let want = [
            1.0, -1.0, 0.0, 2.0, 3.0, 0.0, -2.0, 5.0, 6.0, 7.0, 16.0, 1.0,
        ];
        assert_eq!(y, want);
        // A zero is multiplied too, as in ONNX Runtime's kernel: -0 * -2 = +0.
        assert!(y[5].is_sign_positive());
    }
}
