//! `report`: the rendered results of a run, as a table of files (`report_files`): `summary.md`,
//! `summary.csv`, `summary.parquet`, ROC curves and confusion matrices per split, per-video
//! timelines of frame scores, training curves, and `report.html`, all of it on one
//! self-contained page, with an error gallery (each model's most confident mistakes, their face
//! crops and Grad-CAM saliency, see `gallery`).
//!
//! The report is a stage rather than a step after the run so that it is cached and fingerprinted
//! like everything else (a rerun with nothing new renders nothing), its files are checked before
//! they are committed, and `dfd inspect report` shows them; the pipeline copies the files to the
//! workspace's `report/` folder, where people open them.

pub mod gallery;
pub mod html;
pub mod plots;
mod provenance;
mod stage;
pub mod summary;

pub use provenance::Provenance;
pub use stage::{render, Report, ReportInput, ReportParams, NAME};
pub use summary::{headline_table, markdown, summary_rows, SummaryChoice};

/// Why the report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report font: {0}")]
    Font(String),
    #[error("rendering the report: {0}")]
    Render(String),
    #[error(transparent)]
    Schema(#[from] dfd_schemas::SchemaError),
}

impl From<ReportError> for crate::StageError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Schema(e) => crate::StageError::Schema(e),
            other => crate::StageError::Other(other.to_string()),
        }
    }
}
