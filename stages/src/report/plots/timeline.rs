//! Timelines of frame scores: for each video, P(FAKE) of each scored face frame against the
//! frame's time, one small panel per video, so a reader sees whether a verdict rests on every
//! frame or on a few (a swap that fails only when the head turns shows as a spike).

use plotters::prelude::*;

use super::canvas::{color, grid, render_png, Area, FAMILY};
use crate::report::ReportError;

/// One video's frame scores in time order.
pub struct Timeline {
    pub video_id: String,
    /// `Some(true)` for FAKE, `Some(false)` for REAL, `None` when unlabelled.
    pub fake: Option<bool>,
    /// (time in seconds, P(FAKE)).
    pub points: Vec<(f64, f64)>,
}

const PANEL: (u32, u32) = (300, 190);
const COLUMNS: usize = 4;

/// One panel per video under `title`; every panel shares the time axis (0 to the latest frame)
/// and the score axis (0 to 1, with the threshold drawn).
pub fn timeline_png(
    title: &str,
    timelines: &[Timeline],
    threshold: f64,
) -> Result<Vec<u8>, ReportError> {
    let (rows, columns) = grid(timelines.len(), COLUMNS);
    // At least 640 x 320: a video or two still get a readable plot.
    let width = (PANEL.0 * columns as u32).max(640);
    let height = (PANEL.1 * rows as u32 + 40).max(320);
    let end = timelines
        .iter()
        .flat_map(|t| t.points.iter().map(|p| p.0))
        .filter(|t| t.is_finite())
        .fold(0.0f64, f64::max)
        .max(1.0);
    render_png(width, height, |root| {
        let body = root
            .titled(title, (FAMILY, 20))
            .map_err(|e| e.to_string())?;
        for (panel, timeline) in body.split_evenly((rows, columns)).iter().zip(timelines) {
            draw_timeline(panel, timeline, end, threshold)?;
        }
        Ok(())
    })
}

fn draw_timeline(panel: &Area, t: &Timeline, end: f64, threshold: f64) -> Result<(), String> {
    let (label, line) = match t.fake {
        Some(true) => ("FAKE", color(5)),
        Some(false) => ("REAL", color(0)),
        None => ("unlabelled", RGBColor(120, 120, 120)),
    };
    let mut chart = ChartBuilder::on(panel)
        .caption(format!("{} ({label})", t.video_id), (FAMILY, 13))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(34)
        .build_cartesian_2d(0f64..end, 0f64..1f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("s")
        .y_labels(3)
        .x_labels(5)
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 11))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, threshold), (end, threshold)],
            BLACK.mix(0.3),
        ))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            t.points.iter().copied(),
            line.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(t.points.iter().map(|&p| Circle::new(p, 3, line.filled())))
        .map_err(|e| e.to_string())?;
    Ok(())
}
