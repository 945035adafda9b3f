//! Drawing into an RGB buffer with plotters and encoding it as PNG, and the one font the plots use.
//!
//! plotters' `ttf` feature finds fonts through fontconfig and renders with FreeType, two system
//! libraries to build and ship; its `ab_glyph` feature renders any TrueType file in pure Rust, so
//! the report needs only a font file (Debian's `fonts-dejavu-core`, which `scripts/setup.sh`
//! installs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::ReportError;

/// The family name every plot asks for; the loaded font is registered under it.
pub const FAMILY: &str = "sans-serif";

/// Where Debian, Fedora and Arch put DejaVu Sans; the first that exists is used.
pub const DEFAULT_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// The font file to use: `configured`, else the first of [`DEFAULT_FONTS`] that exists.
pub fn font_path(configured: Option<&Path>) -> Result<PathBuf, ReportError> {
    if let Some(path) = configured {
        return Ok(path.to_path_buf());
    }
    DEFAULT_FONTS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ReportError::Font(format!(
                "no font found at {}; install fonts-dejavu-core (apt-get install -y \
                 fonts-dejavu-core) or set report.font",
                DEFAULT_FONTS.join(", ")
            ))
        })
}

/// Registers the font at `path` for the whole process. plotters keeps fonts in a global table of
/// `'static` data, so the bytes are leaked, once: the first font registered stays in use for the
/// life of the process (one report per process in practice).
pub fn register_font(path: &Path) -> Result<(), ReportError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a TrueType font", path.display()))
        })
        .clone()
        .map_err(ReportError::Font)
}

/// The root area of a plot being drawn.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws a `width` x `height` plot on white with `draw` and returns it as PNG.
pub fn render_png(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area) -> Result<(), String>,
) -> Result<Vec<u8>, ReportError> {
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root).map_err(ReportError::Render)?;
        root.present().map_err(plot_error)?;
    }
    encode_png(&rgb, width, height)
}

/// plotters' errors as text (their types carry the backend's lifetime).
pub fn plot_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Render(e.to_string())
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ReportError::Render(format!("PNG: {e}")))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| ReportError::Render(format!("PNG: {e}")))?;
    }
    Ok(out)
}

/// A palette that stays apart in print and for the common colour-blindnesses (Okabe and Ito).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

pub fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Rows and columns of a grid of `n` panels, at most `max_columns` wide.
pub fn grid(n: usize, max_columns: usize) -> (usize, usize) {
    let columns = n.clamp(1, max_columns.max(1));
    (n.div_ceil(columns).max(1), columns)
}
