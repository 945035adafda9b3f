//! Saliency as a picture: the Grad-CAM map coloured (blue for nothing, through green and yellow,
//! to red for the most) and blended over the face crop, more opaque where the map is higher, so
//! the face stays readable where the detector did not look; and the small JPEGs the report
//! inlines.

use ndarray::Array3;
use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

/// Opacity of the colour where the map is 1 (it falls linearly to 0 where the map is 0).
const MAX_ALPHA: f32 = 0.6;

/// `face` (RGB, H x W x 3) with `map` (H x W values in `[0, 1]`, row-major) blended over it.
pub fn heat_overlay(face: &Array3<u8>, map: &[f32]) -> Result<Array3<u8>, String> {
    let (h, w, channels) = face.dim();
    if channels != 3 || map.len() != h * w {
        return Err(format!(
            "a saliency map of {} values does not fit a {h} x {w} x {channels} face",
            map.len()
        ));
    }
    let mut out = face.as_standard_layout().into_owned();
    for ((y, x, c), value) in out.indexed_iter_mut() {
        let v = map[y * w + x].clamp(0.0, 1.0);
        let alpha = MAX_ALPHA * v;
        let heat = jet(v)[c];
        *value = (f32::from(*value) * (1.0 - alpha) + heat * alpha).round() as u8;
    }
    Ok(out)
}

/// The "jet" colour of `v` in `[0, 1]`, RGB in `0..=255`: dark blue, blue, cyan, yellow, red,
/// dark red, the colour scale saliency maps are usually read in.
fn jet(v: f32) -> [f32; 3] {
    let channel = |offset: f32| (1.5 - (4.0 * v - offset).abs()).clamp(0.0, 1.0) * 255.0;
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// `rgb` (H x W x 3) as PNG bytes.
pub fn encode_png_rgb(rgb: &Array3<u8>) -> Result<Vec<u8>, String> {
    let (h, w, _) = rgb.dim();
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w as u32, h as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("cannot encode PNG: {e}"))?;
        writer
            .write_image_data(rgb.as_standard_layout().as_slice().unwrap_or_default())
            .map_err(|e| format!("cannot encode PNG: {e}"))?;
    }
    Ok(bytes)
}

/// `rgb` (H x W x 3) shrunk to `side` x `side` (area averaging) as a JPEG of quality 85: the
/// report's face strips and saliency maps, a few kilobytes each, so a gallery of dozens stays
/// a small page. libjpeg is deterministic, so the same pixels give the same bytes and the
/// report stays byte-stable.
pub fn jpeg_thumbnail(rgb: &Array3<u8>, side: u32) -> Result<Vec<u8>, String> {
    let (h, w, _) = rgb.dim();
    let standard = rgb.as_standard_layout();
    let flat = Mat::from_slice(standard.as_slice().unwrap_or_default())
        .map_err(|e| format!("cannot wrap an image: {e}"))?;
    let shaped = flat
        .reshape(3, h as i32)
        .map_err(|e| format!("cannot shape an image {h}x{w}: {e}"))?;
    let mut bgr = Mat::default();
    imgproc::cvt_color_def(&shaped, &mut bgr, imgproc::COLOR_RGB2BGR)
        .map_err(|e| format!("cannot convert to BGR: {e}"))?;
    let mut small = Mat::default();
    let size = Size::new(side as i32, side as i32);
    imgproc::resize(&bgr, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA)
        .map_err(|e| format!("cannot resize an image: {e}"))?;
    crate::image_io::encode_jpeg(&small, 85)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_keeps_the_face_where_the_map_is_zero_and_reddens_it_where_it_is_one() {
        let face = Array3::from_elem((2, 2, 3), 100u8);
        let map = [0.0, 1.0, 0.5, 0.0];
        let out = heat_overlay(&face, &map).expect("fits");
        assert_eq!(out[[0, 0, 0]], 100);
        assert_eq!(out[[1, 1, 2]], 100);
        // v = 1: jet is dark red (127.5, 0, 0), blended at 0.6.
        assert_eq!(out[[0, 1, 0]], (100.0f32 * 0.4 + 127.5 * 0.6).round() as u8);
        assert_eq!(out[[0, 1, 1]], 40);
        assert!(heat_overlay(&face, &map[..3]).is_err());
    }

    #[test]
    fn thumbnails_are_small_jpegs_of_the_asked_size() {
        let face = Array3::from_shape_fn((224, 224, 3), |(y, x, c)| {
            ((y + 2 * x + 50 * c) % 256) as u8
        });
        let jpeg = jpeg_thumbnail(&face, 96).expect("encodes");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
        let decoded = crate::image_io::decode_bgr(&jpeg).expect("decodes");
        assert_eq!((decoded.rows(), decoded.cols()), (96, 96));
        let png = encode_png_rgb(&face).expect("encodes");
        assert_eq!(
            crate::image_io::decode_png_rgb(&png).expect("decodes"),
            face
        );
    }
}
