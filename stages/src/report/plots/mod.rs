//! The report's plots, each a PNG drawn with plotters on a bitmap: ROC curves, confusion matrices
//! training curves and per-video timelines of frame scores.

pub mod canvas;
pub mod confusion;
pub mod roc;
pub mod timeline;
pub mod training;

pub use canvas::{font_path, register_font};
pub use confusion::{confusion_png, Matrix};
pub use roc::{roc_png, Curve};
pub use timeline::{timeline_png, Timeline};
pub use training::{training_png, EpochLoss, History};
