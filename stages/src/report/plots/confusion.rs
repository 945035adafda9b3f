//! Confusion matrices: one panel per model variant, counts at the decision threshold, cells
//! shaded by the share of their true class (so a model that calls everything FAKE shows as one dark
//! column whatever the class balance).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{grid, render_png, Area, FAMILY};
use crate::report::ReportError;

/// One panel: a variant's counts.
pub struct Matrix {
    pub model: String,
    pub tn: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tp: u64,
}

const PANEL: (u32, u32) = (360, 330);

/// The narrowest plot: the title ("Confusion matrices, <split> split, video level, <rule> rule")
/// needs about 560 pixels, wider than one panel; with fewer panels than that they are centred.
const MIN_WIDTH: u32 = 640;

pub fn confusion_png(title: &str, matrices: &[Matrix]) -> Result<Vec<u8>, ReportError> {
    let (rows, columns) = grid(matrices.len(), 3);
    let panels_width = PANEL.0 * columns as u32;
    let width = panels_width.max(MIN_WIDTH);
    let side = ((width - panels_width) / 2) as i32;
    let height = PANEL.1 * rows as u32 + 40;
    render_png(width, height, |root| {
        let body = root
            .titled(title, (FAMILY, 22))
            .map_err(|e| e.to_string())?
            .margin(0, 0, side, side);
        let panels = body.split_evenly((rows, columns));
        for (panel, matrix) in panels.iter().zip(matrices) {
            draw_matrix(panel, matrix)?;
        }
        Ok(())
    })
}

fn draw_matrix(panel: &Area, m: &Matrix) -> Result<(), String> {
    let area = panel
        .titled(&m.model, (FAMILY, 17))
        .map_err(|e| e.to_string())?;
    let (w, h) = area.dim_in_pixel();
    let (left, top) = (96i32, 46i32);
    let cell = ((w as i32 - left - 16).min(h as i32 - top - 16) / 2).max(10);
    let center = Pos::new(HPos::Center, VPos::Center);
    let label = |text: &str, x: i32, y: i32| {
        area.draw(&Text::new(
            text.to_string(),
            (x, y),
            TextStyle::from((FAMILY, 14).into_font()).pos(center),
        ))
        .map_err(|e| e.to_string())
    };
    label("predicted", left + cell, 10)?;
    label("REAL", left + cell / 2, top - 12)?;
    label("FAKE", left + cell + cell / 2, top - 12)?;
    label("true REAL", left / 2, top + cell / 2)?;
    label("true FAKE", left / 2, top + cell + cell / 2)?;
    // Rows: true REAL (tn, fp), true FAKE (fn, tp).
    let cells = [[m.tn, m.fp], [m.fn_, m.tp]];
    for (r, row) in cells.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (c, &count) in row.iter().enumerate() {
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            let shade = (235.0 - 190.0 * share) as u8;
            let fill = RGBColor(shade, shade.saturating_add(10), 255);
            let (x0, y0) = (left + c as i32 * cell, top + r as i32 * cell);
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                fill.filled(),
            ))
            .map_err(|e| e.to_string())?;
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                BLACK.mix(0.4),
            ))
            .map_err(|e| e.to_string())?;
            let ink = if share > 0.6 { WHITE } else { BLACK };
            area.draw(&Text::new(
                count.to_string(),
                (x0 + cell / 2, y0 + cell / 2),
                TextStyle::from((FAMILY, 24).into_font())
                    .color(&ink)
                    .pos(center),
            ))
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
