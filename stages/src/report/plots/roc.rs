//! ROC curves: one plot per split, every model variant on it, at video level.

use plotters::prelude::*;

use super::canvas::{color, render_png, FAMILY};
use crate::report::ReportError;

/// One variant's curve.
pub struct Curve {
    pub model: String,
    pub auc: Option<f64>,
    /// (FPR, TPR) from (0, 0) to (1, 1).
    pub points: Vec<(f64, f64)>,
}

pub fn roc_png(title: &str, curves: &[Curve]) -> Result<Vec<u8>, ReportError> {
    render_png(720, 640, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("False positive rate")
            .y_desc("True positive rate")
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                ShapeStyle::from(&BLACK.mix(0.35)).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label("chance (AUC 0.5)")
            .legend(|(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.35).stroke_width(1))
            });
        for (i, curve) in curves.iter().enumerate() {
            let style = color(i).stroke_width(2);
            let label = match curve.auc {
                Some(auc) => format!("{} (AUC {auc:.3})", curve.model),
                None => curve.model.clone(),
            };
            chart
                .draw_series(LineSeries::new(curve.points.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()
            .map_err(|e| e.to_string())
    })
}
