//! The face cues of one crop, in pure Rust on its gray levels (computed as OpenCV's `cvtColor`
//! does, see `ssim::gray`), so they are the same numbers a Python user gets from
//! `cv2.Laplacian(gray, cv2.CV_64F).var()` and `gray.mean()`.

use ndarray::ArrayView2;

/// Variance (population) of the Laplacian of `gray` with OpenCV's 3x3 aperture (`ksize=1`: the
/// kernel `[0 1 0; 1 -4 1; 0 1 0]`) and its default border, reflect-101 (`dcb|abcd|cba`).
/// `None` for an empty image.
pub fn laplacian_variance(gray: ArrayView2<u8>) -> Option<f64> {
    let (h, w) = gray.dim();
    if h == 0 || w == 0 {
        return None;
    }
    let reflect = |i: isize, n: usize| -> usize {
        let n = n as isize;
        if n == 1 {
            return 0;
        }
        let j = if i < 0 {
            -i
        } else if i >= n {
            2 * (n - 1) - i
        } else {
            i
        };
        j as usize
    };
    let at = |y: isize, x: isize| f64::from(gray[[reflect(y, h), reflect(x, w)]]);
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for y in 0..h as isize {
        for x in 0..w as isize {
            let v = at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4.0 * at(y, x);
            sum += v;
            sum_sq += v * v;
        }
    }
    let n = (h * w) as f64;
    let mean = sum / n;
    Some((sum_sq / n - mean * mean).max(0.0))
}

/// Mean gray level; `None` for an empty image.
pub fn mean_level(gray: ArrayView2<u8>) -> Option<f64> {
    let n = gray.len();
    (n > 0).then(|| gray.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use opencv::core::{self, Mat, CV_64F};
    use opencv::imgproc;
    use opencv::prelude::*;

    /// A deterministic textured image.
    fn image(h: usize, w: usize) -> Array2<u8> {
        Array2::from_shape_fn((h, w), |(y, x)| {
            ((x * 37 + y * 91 + x * y * 13) % 251) as u8
        })
    }

    #[test]
    fn laplacian_variance_is_opencvs() {
        let gray = image(23, 31);
        let mat = crate::image_io::gray_array_to_mat(&gray).unwrap();
        let mut lap = Mat::default();
        imgproc::laplacian_def(&mat, &mut lap, CV_64F).unwrap();
        let (mut mean, mut std) = (Mat::default(), Mat::default());
        core::mean_std_dev(&lap, &mut mean, &mut std, &core::no_array()).unwrap();
        let want = std.at::<f64>(0).unwrap().powi(2);
        let got = laplacian_variance(gray.view()).unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn a_flat_image_has_no_laplacian_and_its_own_level() {
        let flat = Array2::from_elem((8, 8), 77u8);
        assert_eq!(laplacian_variance(flat.view()), Some(0.0));
        assert_eq!(mean_level(flat.view()), Some(77.0));
        assert_eq!(laplacian_variance(Array2::<u8>::zeros((0, 3)).view()), None);
    }
}
