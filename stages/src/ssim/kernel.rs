//! The SSIM map and score of two 8-bit grayscale images as scikit-image's
//! `structural_similarity(a, b, data_range=255)` computes them with its other defaults.
//!
//! scikit-image filters five float64 images (a, b, a², b², ab) with `scipy.ndimage.uniform_filter`.
//! Here the same 7x7 window sums are taken exactly in `i32` (at most 49 x 255² < 2³¹): column sums
//! slide down the image and 7-wide sums run across each row of them, so the cost per pixel is
//! constant and the state is a few rows. Only the final per-pixel ratio is done in `f64`, from exact
//! integer numerators, so the result differs from scikit-image's only by its float rounding (about
//! 1e-14); on the fixtures in tests/fixtures/ssim the f32 maps agree bit for bit.

use std::borrow::Cow;

use ndarray::{Array2, ArrayView2};

/// Side of the square window; scikit-image's default `win_size` for non-Gaussian SSIM.
pub const WINDOW: usize = 7;

/// Pixels on each side of a pixel in its window; also the border scikit-image crops before averaging
/// the map, because its values there depend on the reflected padding rather than on the image.
pub const BORDER: usize = (WINDOW - 1) / 2;

/// Pixels in one window (scikit-image's `NP`).
const NP: i64 = (WINDOW * WINDOW) as i64;

const K1: f64 = 0.01;
const K2: f64 = 0.03;
const DATA_RANGE: f64 = 255.0;

/// The SSIM of one pair of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Ssim {
    /// Local SSIM at every pixel, same shape as the inputs, including the border that `score`
    /// leaves out; f32 because that is the precision the reference map is stored in.
    pub map: Array2<f32>,
    /// Mean of the map without its [`BORDER`]-pixel frame, accumulated from the f64 map values.
    pub score: f64,
}

/// Inputs for which no SSIM exists; all are the caller's data, so they are errors, not panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsimError {
    #[error("images differ in shape: {a_height}x{a_width} vs {b_height}x{b_width}")]
    ShapeMismatch {
        a_height: usize,
        a_width: usize,
        b_height: usize,
        b_width: usize,
    },
    #[error("image of {height}x{width} is smaller than the {WINDOW}x{WINDOW} SSIM window")]
    TooSmall { height: usize, width: usize },
    #[error("expected an RGB image with 3 channels, got {channels}")]
    NotRgb { channels: usize },
}

/// scikit-image's `structural_similarity(a, b, data_range=255)` with every other argument at its
/// default: 7x7 uniform window, K1 = 0.01, K2 = 0.03, sample (N-1) covariance, windows at the
/// edges filled by `scipy.ndimage`'s `reflect` mode (`d c b a | a b c d`, the edge pixel repeated).
pub fn structural_similarity(a: ArrayView2<u8>, b: ArrayView2<u8>) -> Result<Ssim, SsimError> {
    let (height, width) = a.dim();
    if a.dim() != b.dim() {
        let (b_height, b_width) = b.dim();
        return Err(SsimError::ShapeMismatch {
            a_height: height,
            a_width: width,
            b_height,
            b_width,
        });
    }
    if height < WINDOW || width < WINDOW {
        return Err(SsimError::TooSmall { height, width });
    }
    let a = row_major(a);
    let b = row_major(b);

    // Column sums over the 7 rows of the current window, then their 7-wide row sums: both slide,
    // so only O(width) state is kept and each pixel costs a fixed handful of integer additions.
    let mut columns = Sums::zeros(width + 2 * BORDER);
    for di in -(BORDER as isize)..=BORDER as isize {
        let r = reflect(di, height);
        columns.slide(row(&a, width, r), row(&b, width, r), None);
    }
    let mut windows = Sums::zeros(width);
    let mut values = vec![0.0f64; width];
    let mut map = Array2::<f32>::zeros((height, width));
    let mut score_sum = 0.0f64;
    for (i, mut out) in map.outer_iter_mut().enumerate() {
        columns.reflect_edges(width);
        windows.box_sums_of(&columns);
        windows.ssim_row(&mut values);
        for (out, &v) in out.iter_mut().zip(&values) {
            *out = v as f32;
        }
        if (BORDER..height - BORDER).contains(&i) {
            score_sum += values[BORDER..width - BORDER].iter().sum::<f64>();
        }
        if i + 1 < height {
            // Slide the window down one row: row i+1+BORDER enters, row i-BORDER leaves.
            let enter = reflect(i as isize + 1 + BORDER as isize, height);
            let leave = reflect(i as isize - BORDER as isize, height);
            columns.slide(
                row(&a, width, enter),
                row(&b, width, enter),
                Some((row(&a, width, leave), row(&b, width, leave))),
            );
        }
    }
    let inner = (height - 2 * BORDER) * (width - 2 * BORDER);
    Ok(Ssim {
        map,
        score: score_sum / inner as f64,
    })
}

/// The pixels as one row-major slice, borrowed when the view already is one (the usual case) and
/// copied otherwise, so that rows are plain slices the compiler can vectorise over.
fn row_major(img: ArrayView2<'_, u8>) -> Cow<'_, [u8]> {
    match img.to_slice() {
        Some(pixels) => Cow::Borrowed(pixels),
        None => Cow::Owned(img.iter().copied().collect()),
    }
}

fn row(img: &[u8], width: usize, i: usize) -> &[u8] {
    &img[i * width..(i + 1) * width]
}

/// `scipy.ndimage`'s `reflect` boundary for an index at most [`BORDER`] outside `0..n`, which is
/// all a 7-wide window needs on an image at least 7 wide.
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    if i < 0 {
        (-i - 1) as usize
    } else if i as usize >= n {
        2 * n - 1 - i as usize
    } else {
        i as usize
    }
}

/// Sums of a, b, a², b², ab, one array per quantity so that each update is a plain element-wise
/// loop over a row. All fit `i32`: at most 49 x 255² < 2³¹.
struct Sums {
    a: Vec<i32>,
    b: Vec<i32>,
    aa: Vec<i32>,
    bb: Vec<i32>,
    ab: Vec<i32>,
}

impl Sums {
    fn zeros(len: usize) -> Self {
        Sums {
            a: vec![0; len],
            b: vec![0; len],
            aa: vec![0; len],
            bb: vec![0; len],
            ab: vec![0; len],
        }
    }

    /// As column sums, which carry [`BORDER`] padding slots at each end: adds one image row and
    /// removes another, in the interior only; `reflect_edges` refreshes the padding afterwards.
    fn slide(&mut self, a_in: &[u8], b_in: &[u8], leaving: Option<(&[u8], &[u8])>) {
        let width = a_in.len();
        let inner = BORDER..BORDER + width;
        let b_in = &b_in[..width];
        let sa = &mut self.a[inner.clone()];
        let sb = &mut self.b[inner.clone()];
        let saa = &mut self.aa[inner.clone()];
        let sbb = &mut self.bb[inner.clone()];
        let sab = &mut self.ab[inner];
        match leaving {
            None => {
                for j in 0..width {
                    let (x, y) = (a_in[j] as i32, b_in[j] as i32);
                    sa[j] += x;
                    sb[j] += y;
                    saa[j] += x * x;
                    sbb[j] += y * y;
                    sab[j] += x * y;
                }
            }
            Some((a_out, b_out)) => {
                let (a_out, b_out) = (&a_out[..width], &b_out[..width]);
                for j in 0..width {
                    let (x, y) = (a_in[j] as i32, b_in[j] as i32);
                    let (xo, yo) = (a_out[j] as i32, b_out[j] as i32);
                    sa[j] += x - xo;
                    sb[j] += y - yo;
                    saa[j] += x * x - xo * xo;
                    sbb[j] += y * y - yo * yo;
                    sab[j] += x * y - xo * yo;
                }
            }
        }
    }

    /// Fills the padding slots of column sums with the reflected interior columns, so the
    /// horizontal pass needs no boundary logic.
    fn reflect_edges(&mut self, width: usize) {
        for plane in [
            &mut self.a,
            &mut self.b,
            &mut self.aa,
            &mut self.bb,
            &mut self.ab,
        ] {
            for k in 0..BORDER {
                plane[BORDER - 1 - k] = plane[BORDER + k];
                plane[BORDER + width + k] = plane[BORDER + width - 1 - k];
            }
        }
    }

    /// As window sums: the 7-wide horizontal sums of padded column sums. Summed directly rather than
    /// with a running sum, because independent sums vectorise and a running sum is a serial chain.
    fn box_sums_of(&mut self, columns: &Sums) {
        for (out, cols) in [
            (&mut self.a, &columns.a),
            (&mut self.b, &columns.b),
            (&mut self.aa, &columns.aa),
            (&mut self.bb, &columns.bb),
            (&mut self.ab, &columns.ab),
        ] {
            let width = out.len();
            let cols = &cols[..width + WINDOW - 1];
            for (j, out) in out.iter_mut().enumerate() {
                let c = &cols[j..j + WINDOW];
                *out = c[0] + c[1] + c[2] + c[3] + c[4] + c[5] + c[6];
            }
        }
    }

    /// As window sums: the SSIM of each pixel of one row, into `values`. Kept apart from the f32
    /// store and the score's sum so that this, the costly loop, has no branch and vectorises.
    fn ssim_row(&self, values: &mut [f64]) {
        let width = values.len();
        let (sa, sb) = (&self.a[..width], &self.b[..width]);
        let (saa, sbb, sab) = (&self.aa[..width], &self.bb[..width], &self.ab[..width]);
        for (j, v) in values.iter_mut().enumerate() {
            *v = pixel_ssim(sa[j], sb[j], saa[j], sbb[j], sab[j]);
        }
    }
}

/// scikit-image's per-pixel formula, rewritten on the exact integer window sums. With means
/// `u = s / NP` and sample variances `v = (NP s2 - s²) / (NP (NP - 1))`, the `1 / NP²` factor of the
/// luminance term cancels between numerator and denominator and the covariance term shares
/// `1 / (NP (NP - 1))`; the constants are scaled to match. Every intermediate before the last
/// additions is an integer below 2^53, so exact in f64, and the only rounding is in the final
/// products and division.
#[inline(always)]
fn pixel_ssim(sa: i32, sb: i32, saa: i32, sbb: i32, sab: i32) -> f64 {
    const NP_F: f64 = NP as f64;
    const C1: f64 = (K1 * DATA_RANGE) * (K1 * DATA_RANGE) * (NP * NP) as f64;
    const C2: f64 = (K2 * DATA_RANGE) * (K2 * DATA_RANGE) * (NP * (NP - 1)) as f64;
    let (sa, sb) = (sa as f64, sb as f64);
    let var_a = NP_F * saa as f64 - sa * sa;
    let var_b = NP_F * sbb as f64 - sb * sb;
    let cov = NP_F * sab as f64 - sa * sb;
    let luminance_num = 2.0 * sa * sb + C1;
    let luminance_den = sa * sa + sb * sb + C1;
    let structure_num = 2.0 * cov + C2;
    let structure_den = var_a + var_b + C2;
    (luminance_num * structure_num) / (luminance_den * structure_den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// The direct definition: every window summed pixel by pixel with explicit reflection, in f64
    /// the way scikit-image does it, to check the sliding sums and the rewritten formula.
    fn brute_force(a: &Array2<u8>, b: &Array2<u8>) -> Array2<f64> {
        let (h, w) = a.dim();
        let r = BORDER as isize;
        let np = NP as f64;
        let c1 = (K1 * DATA_RANGE).powi(2);
        let c2 = (K2 * DATA_RANGE).powi(2);
        Array2::from_shape_fn((h, w), |(i, j)| {
            let (mut ux, mut uy, mut uxx, mut uyy, mut uxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for di in -r..=r {
                for dj in -r..=r {
                    let ii = reflect(i as isize + di, h);
                    let jj = reflect(j as isize + dj, w);
                    let x = a[(ii, jj)] as f64;
                    let y = b[(ii, jj)] as f64;
                    ux += x / np;
                    uy += y / np;
                    uxx += x * x / np;
                    uyy += y * y / np;
                    uxy += x * y / np;
                }
            }
            let cov_norm = np / (np - 1.0);
            let vx = cov_norm * (uxx - ux * ux);
            let vy = cov_norm * (uyy - uy * uy);
            let vxy = cov_norm * (uxy - ux * uy);
            ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
    }

    /// Deterministic noise without a dependency: a 64-bit LCG's high byte.
    fn noise(h: usize, w: usize, seed: u64) -> Array2<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Array2::from_shape_fn((h, w), |_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
    }

    #[test]
    fn sliding_sums_match_the_direct_definition() {
        for (h, w) in [(7, 7), (8, 13), (31, 45), (40, 9)] {
            let a = noise(h, w, 1);
            let b = noise(h, w, 2);
            let got = structural_similarity(a.view(), b.view()).unwrap();
            let want = brute_force(&a, &b);
            for ((i, j), &s) in want.indexed_iter() {
                assert!(
                    (got.map[(i, j)] as f64 - s).abs() < 1e-6,
                    "{h}x{w} at ({i}, {j}): {} vs {s}",
                    got.map[(i, j)]
                );
            }
        }
    }

    #[test]
    fn smallest_image_scores_its_single_inner_pixel() {
        let a = noise(7, 7, 3);
        let b = noise(7, 7, 4);
        let got = structural_similarity(a.view(), b.view()).unwrap();
        assert!((got.score - brute_force(&a, &b)[(3, 3)]).abs() < 1e-12);
        assert_eq!(got.score as f32, got.map[(3, 3)]);
    }

    #[test]
    fn identical_images_score_one() {
        let a = noise(20, 30, 5);
        let got = structural_similarity(a.view(), a.view()).unwrap();
        assert_eq!(got.score, 1.0);
        assert!(got.map.iter().all(|&s| s == 1.0));
    }

    #[test]
    fn non_contiguous_views_are_accepted() {
        let a = noise(30, 30, 6);
        let b = noise(30, 30, 7);
        let direct = structural_similarity(a.t(), b.t()).unwrap();
        let copied = structural_similarity(a.t().to_owned().view(), b.t().to_owned().view());
        assert_eq!(direct, copied.unwrap());
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let a = Array2::<u8>::zeros((10, 12));
        let b = Array2::<u8>::zeros((12, 10));
        assert_eq!(
            structural_similarity(a.view(), b.view()),
            Err(SsimError::ShapeMismatch {
                a_height: 10,
                a_width: 12,
                b_height: 12,
                b_width: 10
            })
        );
    }

    #[test]
    fn rejects_images_smaller_than_the_window() {
        for (h, w) in [(6, 30), (30, 6), (0, 0)] {
            let a = Array2::<u8>::zeros((h, w));
            assert_eq!(
                structural_similarity(a.view(), a.view()),
                Err(SsimError::TooSmall {
                    height: h,
                    width: w
                })
            );
        }
    }
}
