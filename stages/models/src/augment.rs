//! Training-time augmentation: the reference study's Keras `ImageDataGenerator(rotation_range=10,
//! width_shift_range=0.1, height_shift_range=0.1, shear_range=0.2, zoom_range=0.1,
//! horizontal_flip=True, fill_mode='nearest')`, made deterministic.
//!
//! Keras draws from a global NumPy stream, so a resumed run augments differently from an
//! uninterrupted one. Here every draw comes from a stream seeded by `(seed, epoch, sample key)`:
//! the same sample in the same epoch of the same run always gets the same [`Transform`], however
//! the run was interrupted, in whatever order samples are visited.
//!
//! The geometry follows Keras's `apply_affine_transform`: one matrix `rotation · shift · shear ·
//! zoom`, conjugated to the image centre Keras uses (`size / 2 + 0.5`), mapping each *output* pixel
//! to the input position it reads (as `scipy.ndimage.affine_transform` does); interpolation is
//! bilinear (Keras's default `interpolation_order=1`), and positions outside the image read the
//! nearest edge pixel (`fill_mode='nearest'`). The horizontal flip comes after the affine part, as
//! in Keras's `apply_transform`.
//!
//! Unlike the reference, which augmented only the face and fed the SSIM map untouched, the same
//! transform is applied to a face and its SSIM map ([`Transform::apply`] on both): the map
//! describes the face's pixels, and a map that no longer lines up with its face would teach the
//! multi-input models a spatial correspondence that does not exist.

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// The ranges transforms are drawn from, in Keras's units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Rotation drawn uniformly in `[-rotation_deg, rotation_deg]` degrees.
    pub rotation_deg: f64,
    /// Horizontal shift drawn uniformly in `[-width_shift, width_shift]`, as a fraction of the width.
    pub width_shift: f64,
    /// Vertical shift drawn uniformly in `[-height_shift, height_shift]`, as a fraction of the height.
    pub height_shift: f64,
    /// Shear angle drawn uniformly in `[-shear_deg, shear_deg]` *degrees* (Keras's `shear_range` is
    /// in degrees, so the reference's 0.2 is a very small shear).
    pub shear_deg: f64,
    /// Zoom factors for x and y drawn independently in `[1 - zoom, 1 + zoom]`.
    pub zoom: f64,
    /// Whether half of the draws flip horizontally.
    pub horizontal_flip: bool,
}

impl Default for AugmentConfig {
    /// The reference study's generator.
    fn default() -> Self {
        AugmentConfig {
            rotation_deg: 10.0,
            width_shift: 0.1,
            height_shift: 0.1,
            shear_deg: 0.2,
            zoom: 0.1,
            horizontal_flip: true,
        }
    }
}

/// One drawn augmentation: the parameters of Keras's `get_random_transform`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// Rotation in degrees.
    pub rotation_deg: f64,
    /// Horizontal shift as a fraction of the image side (positive reads from the right, so
    /// content moves left, as in Keras).
    pub shift_x: f64,
    /// Vertical shift as a fraction of the image side (positive reads from below).
    pub shift_y: f64,
    /// Shear angle in degrees.
    pub shear_deg: f64,
    /// Zoom factor on x (>1 reads a wider area: content shrinks).
    pub zoom_x: f64,
    /// Zoom factor on y.
    pub zoom_y: f64,
    /// Mirror left-right after the affine part.
    pub flip: bool,
}

impl Transform {
    /// The transform that changes nothing.
    pub const IDENTITY: Transform = Transform {
        rotation_deg: 0.0,
        shift_x: 0.0,
        shift_y: 0.0,
        shear_deg: 0.0,
        zoom_x: 1.0,
        zoom_y: 1.0,
        flip: false,
    };

    /// Draws the transform of sample `sample_key` in `epoch` of the run seeded `seed`, in Keras's
    /// draw order (rotation, shifts, shear, zoom, flip). Pure: the same arguments give the same
    /// transform.
    pub fn draw(config: &AugmentConfig, seed: u64, epoch: u32, sample_key: u64) -> Transform {
        let mut rng = SplitMix64::for_stream(&[seed, 0xA06_u64, u64::from(epoch), sample_key]);
        let mut symmetric = |range: f64| {
            if range > 0.0 {
                rng.uniform(-range, range)
            } else {
                0.0
            }
        };
        let rotation_deg = symmetric(config.rotation_deg);
        let shift_y = symmetric(config.height_shift);
        let shift_x = symmetric(config.width_shift);
        let shear_deg = symmetric(config.shear_deg);
        let (zoom_x, zoom_y) = if config.zoom > 0.0 {
            (
                rng.uniform(1.0 - config.zoom, 1.0 + config.zoom),
                rng.uniform(1.0 - config.zoom, 1.0 + config.zoom),
            )
        } else {
            (1.0, 1.0)
        };
        let flip = config.horizontal_flip && rng.next_f64() < 0.5;
        Transform {
            rotation_deg,
            shift_x,
            shift_y,
            shear_deg,
            zoom_x,
            zoom_y,
            flip,
        }
    }

    /// Applies the transform to a square planar (`CHW`) image of `channels` planes of
    /// `size x size` pixels and returns the transformed image in the same layout.
    ///
    /// # Panics
    /// When `image.len() != channels * size * size` (a programming error: samples are checked
    /// when [`crate::training::TrainingData`] is built).
    pub fn apply(&self, image: &[f32], channels: usize, size: usize) -> Vec<f32> {
        assert_eq!(
            image.len(),
            channels * size * size,
            "image is not CHW {channels}x{size}x{size}"
        );
        let matrix = self.sampling_matrix(size);
        let plane = size * size;
        let mut out = vec![0.0f32; image.len()];
        for row in 0..size {
            for col in 0..size {
                // The flip mirrors the affine result, so output column `col` is the affine
                // output at the mirrored column.
                let affine_col = if self.flip { size - 1 - col } else { col };
                let (x, y) = matrix.map(affine_col as f64, row as f64);
                let taps = BilinearTaps::new(x, y, size);
                for c in 0..channels {
                    out[c * plane + row * size + col] =
                        taps.sample(&image[c * plane..(c + 1) * plane], size);
                }
            }
        }
        out
    }

    /// The output-to-input map in pixel coordinates `(x = column, y = row)`.
    fn sampling_matrix(&self, size: usize) -> Affine {
        let side = size as f64;
        let theta = self.rotation_deg.to_radians();
        let shear = self.shear_deg.to_radians();
        let rotation = Affine([
            theta.cos(),
            -theta.sin(),
            0.0,
            theta.sin(),
            theta.cos(),
            0.0,
        ]);
        let shift = Affine([1.0, 0.0, self.shift_x * side, 0.0, 1.0, self.shift_y * side]);
        let shearing = Affine([1.0, -shear.sin(), 0.0, 0.0, shear.cos(), 0.0]);
        let zoom = Affine([self.zoom_x, 0.0, 0.0, 0.0, self.zoom_y, 0.0]);
        // Keras's `transform_matrix_offset_center`: o = size / 2 + 0.5 (not the pixel centre
        // (size - 1) / 2; kept for fidelity, it moves rotations by half a pixel).
        let centre = side / 2.0 + 0.5;
        let to_centre = Affine([1.0, 0.0, centre, 0.0, 1.0, centre]);
        let from_centre = Affine([1.0, 0.0, -centre, 0.0, 1.0, -centre]);
        to_centre
            .then(&rotation)
            .then(&shift)
            .then(&shearing)
            .then(&zoom)
            .then(&from_centre)
    }
}

/// A 2-D affine map `[a b c; d e f]` acting on `(x, y, 1)`.
#[derive(Clone, Copy, Debug)]
struct Affine([f64; 6]);

impl Affine {
    /// The product `self · other` (apply `other` first), as NumPy's `np.dot` in Keras.
    fn then(&self, other: &Affine) -> Affine {
        let [a, b, c, d, e, f] = self.0;
        let [g, h, i, j, k, l] = other.0;
        Affine([
            a * g + b * j,
            a * h + b * k,
            a * i + b * l + c,
            d * g + e * j,
            d * h + e * k,
            d * i + e * l + f,
        ])
    }

    fn map(&self, x: f64, y: f64) -> (f64, f64) {
        let [a, b, c, d, e, f] = self.0;
        (a * x + b * y + c, d * x + e * y + f)
    }
}

/// The four neighbours of a sampling position and their bilinear weights, with positions clamped
/// to the image (fill mode `nearest`).
struct BilinearTaps {
    offsets: [usize; 4],
    weights: [f32; 4],
}

impl BilinearTaps {
    fn new(x: f64, y: f64, size: usize) -> Self {
        let max = (size - 1) as f64;
        let x = x.clamp(0.0, max);
        let y = y.clamp(0.0, max);
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as usize, y0 as usize);
        let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
        BilinearTaps {
            offsets: [
                y0 * size + x0,
                y0 * size + x1,
                y1 * size + x0,
                y1 * size + x1,
            ],
            weights: [
                ((1.0 - fx) * (1.0 - fy)) as f32,
                (fx * (1.0 - fy)) as f32,
                ((1.0 - fx) * fy) as f32,
                (fx * fy) as f32,
            ],
        }
    }

    fn sample(&self, plane: &[f32], _size: usize) -> f32 {
        // Skipping zero weights keeps integer positions exact (no 0 * value rounding noise).
        let mut acc = 0.0f32;
        for (offset, weight) in self.offsets.iter().zip(self.weights) {
            if weight != 0.0 {
                acc += weight * plane[*offset];
            }
        }
        acc
    }
}
