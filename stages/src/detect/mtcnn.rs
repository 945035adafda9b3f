//! The detector object: sessions loaded once, and the optional detection on a downscaled copy.

use std::path::Path;

use ndarray::{ArrayView3, CowArray};

use super::cascade;
use super::frame::Frame;
use super::networks::Networks;
use super::pyramid::PNET_WINDOW;
use super::{DetectError, Face, MtcnnParams};

/// The detector: three ONNX sessions loaded once and reused for every frame.
pub struct Mtcnn {
    networks: Networks,
    params: MtcnnParams,
}

impl Mtcnn {
    /// Loads `pnet.onnx`, `rnet.onnx` and `onet.onnx` from `dir`.
    pub fn load(dir: &Path, params: &MtcnnParams) -> Result<Mtcnn, DetectError> {
        params.validate().map_err(DetectError::Params)?;
        Ok(Mtcnn {
            networks: Networks::load(dir, params)?,
            params: params.clone(),
        })
    }

    pub fn params(&self) -> &MtcnnParams {
        &self.params
    }

    /// Faces in an H x W x 3 RGB frame, best first (the order of O-Net's final suppression).
    pub fn detect(&mut self, rgb: ArrayView3<u8>) -> Result<Vec<Face>, DetectError> {
        let (height, width, channels) = rgb.dim();
        if channels != 3 {
            return Err(DetectError::Image(rgb.shape().to_vec()));
        }
        let rgb: CowArray<u8, _> = rgb.as_standard_layout();
        let pixels = rgb
            .as_slice()
            .ok_or_else(|| DetectError::Image(rgb.shape().to_vec()))?;
        let frame = Frame::new(pixels, height, width)?;
        let longer = height.max(width) as f64;
        let max_side = f64::from(self.params.max_pnet_side);
        // P-Net's largest level is the frame scaled by 12 / min_face_size.
        let largest_level = longer * PNET_WINDOW / self.params.min_face_size;
        if max_side == 0.0 || largest_level <= max_side {
            return cascade::run(
                &mut self.networks,
                &self.params,
                frame,
                self.params.min_face_size,
            );
        }
        // Detect on a downscaled copy, then map back; see `MtcnnParams::max_pnet_side`.
        let ratio = max_side / longer;
        let small_h = ((height as f64 * ratio).round() as usize).max(1);
        let small_w = ((width as f64 * ratio).round() as usize).max(1);
        let small = frame.resize_area(small_h, small_w)?;
        let small = Frame::new(&small, small_h, small_w)?;
        // `min_face_size * ratio` is below P-Net's window here, so the copy's pyramid starts at the
        // copy itself: the smallest face it can hold.
        let mut faces = cascade::run(&mut self.networks, &self.params, small, PNET_WINDOW)?;
        let sx = width as f32 / small_w as f32;
        let sy = height as f32 / small_h as f32;
        for f in &mut faces {
            f.x *= sx;
            f.width *= sx;
            f.y *= sy;
            f.height *= sy;
            for p in &mut f.landmarks {
                p[0] *= sx;
                p[1] *= sy;
            }
        }
        Ok(faces)
    }
}
