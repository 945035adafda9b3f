//! Training curves: train and validation loss per epoch, one panel per model variant, with the
//! epoch whose weights were kept (lowest validation loss) marked.

use plotters::prelude::*;

use super::canvas::{color, grid, render_png, Area, FAMILY};
use crate::report::ReportError;

/// (epoch, train loss, validation loss) of one epoch.
pub type EpochLoss = (u32, f64, Option<f64>);

/// One variant's history, epochs in order.
pub struct History {
    pub model: String,
    pub epochs: Vec<EpochLoss>,
}

const PANEL: (u32, u32) = (420, 320);

pub fn training_png(histories: &[History]) -> Result<Vec<u8>, ReportError> {
    let (rows, columns) = grid(histories.len(), 3);
    let width = PANEL.0 * columns as u32;
    let height = PANEL.1 * rows as u32 + 40;
    render_png(width, height, |root| {
        let body = root
            .titled("Training and validation loss per epoch", (FAMILY, 22))
            .map_err(|e| e.to_string())?;
        for (panel, history) in body.split_evenly((rows, columns)).iter().zip(histories) {
            draw_history(panel, history)?;
        }
        Ok(())
    })
}

fn draw_history(panel: &Area, h: &History) -> Result<(), String> {
    let last = h.epochs.iter().map(|e| e.0).max().unwrap_or(1).max(2);
    let losses = h
        .epochs
        .iter()
        .flat_map(|&(_, train, val)| std::iter::once(train).chain(val))
        .filter(|v| v.is_finite());
    let top = losses.fold(0.0f64, f64::max).max(1e-3) * 1.1;
    let mut chart = ChartBuilder::on(panel)
        .caption(&h.model, (FAMILY, 17))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(1u32..last, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    let train = color(0).stroke_width(2);
    chart
        .draw_series(LineSeries::new(
            h.epochs.iter().map(|&(e, loss, _)| (e, loss)),
            train,
        ))
        .map_err(|e| e.to_string())?
        .label("train")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], train));
    let val = color(1).stroke_width(2);
    let val_points: Vec<(u32, f64)> = h
        .epochs
        .iter()
        .filter_map(|&(e, _, v)| v.map(|v| (e, v)))
        .collect();
    if !val_points.is_empty() {
        chart
            .draw_series(LineSeries::new(val_points.iter().copied(), val))
            .map_err(|e| e.to_string())?
            .label("validation")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], val));
        let best = val_points
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1));
        chart
            .draw_series(best.map(|p| Circle::new(p, 5, val.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .draw()
        .map_err(|e| e.to_string())
}
