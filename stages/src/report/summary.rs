//! The summary of a run: the reference study's "Result Summary" table (model, parameters,
//! accuracy, precision, recall, F1, AUC) for one split at video level, with the 95% intervals, the
//! sample sizes, the constant baselines and the cue baselines, as Markdown, CSV and Parquet.
//!
//! A detector whose AUC does not exceed the strongest cue's strength (`max(AUC, 1 - AUC)`, see
//! `aggregate::cues`) is flagged in the table itself, "not better than cue X": its number may be
//! the dataset's leak, not detection.

use std::fmt::Write as _;

use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dfd_schemas::{MetricsRow, TableRow};
use parquet::arrow::ArrowWriter;

use super::ReportError;
use crate::aggregate::baselines::{BASELINES, CONSTANT_RULE};
use crate::aggregate::cues::{strength, CUES, CUE_RULE};
use crate::aggregate::evaluate::VIDEO_LEVEL;

/// Which rows the summary quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryChoice {
    pub split: String,
    /// The aggregation rule (`mean`, `vote`, `confident`).
    pub rule: String,
}

/// The rows of the summary: every trained variant at video level under the chosen split and rule,
/// by name, then the constant baselines of that split, then its cue baselines.
pub fn summary_rows<'a>(metrics: &'a [MetricsRow], choice: &SummaryChoice) -> Vec<&'a MetricsRow> {
    let of_split = |r: &&MetricsRow| r.split == choice.split && r.level == VIDEO_LEVEL;
    let mut models: Vec<&MetricsRow> = metrics
        .iter()
        .filter(of_split)
        .filter(|r| r.rule == choice.rule)
        .collect();
    models.sort_by(|a, b| a.model.cmp(&b.model));
    for (baseline, _) in BASELINES {
        models.extend(
            metrics
                .iter()
                .filter(of_split)
                .filter(|r| r.model == baseline && r.rule == CONSTANT_RULE),
        );
    }
    for cue in &CUES {
        models.extend(
            metrics
                .iter()
                .filter(of_split)
                .filter(|r| r.model == cue.model && r.rule == CUE_RULE),
        );
    }
    models
}

/// Whether a row is a pseudo-model (constant or cue) rather than a trained detector.
fn is_baseline(row: &MetricsRow) -> bool {
    row.rule == CONSTANT_RULE || row.rule == CUE_RULE
}

/// The cue row with the greatest strength among `rows`, and that strength.
pub fn strongest_cue<'a>(rows: &[&'a MetricsRow]) -> Option<(&'a MetricsRow, f64)> {
    rows.iter()
        .filter(|r| r.rule == CUE_RULE)
        .filter_map(|r| r.roc_auc.map(|auc| (*r, strength(auc))))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// "not better than cue X" when a detector's AUC does not exceed the strongest cue's strength (or
/// has no AUC while a cue has one).
pub fn cue_flag(row: &MetricsRow, strongest: Option<(&MetricsRow, f64)>) -> Option<String> {
    let (cue, s) = strongest?;
    if is_baseline(row) || row.roc_auc.is_some_and(|auc| auc > s) {
        return None;
    }
    Some(format!("not better than {}", cue.model))
}

/// `summary.md`: the table, what it is over, and how to read it.
pub fn markdown(metrics: &[MetricsRow], choice: &SummaryChoice) -> String {
    let rows = summary_rows(metrics, choice);
    let mut md = String::from("# Result summary\n\n");
    if rows.is_empty() {
        let _ = writeln!(
            md,
            "No video-level metrics for split `{}` and rule `{}`: nothing was scored there.",
            choice.split, choice.rule
        );
        return md;
    }
    let threshold = rows[0].threshold;
    let _ = writeln!(
        md,
        "Split `{}`, video level: a video's score is the `{}` of its face-frame scores \
         (P(FAKE)); FAKE when the score is above {threshold}.\n",
        choice.split, choice.rule
    );
    md.push_str(&headline_table(&rows));
    md.push('\n');
    md.push_str(&notes(&rows));
    let mut others: Vec<&MetricsRow> = metrics
        .iter()
        .filter(|r| !rows.iter().any(|s| std::ptr::eq(*s, *r)))
        .collect();
    others.sort_by(|a, b| {
        (&a.split, &a.level, &a.model, &a.rule).cmp(&(&b.split, &b.level, &b.model, &b.rule))
    });
    if !others.is_empty() {
        md.push_str("\n## Other splits, levels and rules\n\n");
        md.push_str("| Model | Split | Level | Rule | n | Accuracy (95% CI) | AUC (95% CI) |\n");
        md.push_str("|---|---|---|---|---:|---|---|\n");
        for r in others {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.model,
                r.split,
                r.level,
                r.rule,
                r.n,
                with_ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high),
                with_ci(r.roc_auc, r.roc_auc_ci_low, r.roc_auc_ci_high),
            );
        }
    }
    md
}

/// The summary's first table (what `dfd run` prints when it ends).
pub fn headline_table(rows: &[&MetricsRow]) -> String {
    let strongest = strongest_cue(rows);
    let mut md = String::from(
        "| Model | Parameters | n | Accuracy (95% CI) | Precision | Recall | F1 | AUC (95% CI) |\n\
         |---|---:|---:|---|---:|---:|---:|---|\n",
    );
    for r in rows {
        let name = match (r.rule.as_str(), cue_flag(r, strongest)) {
            (CONSTANT_RULE, _) => format!("{} (baseline)", r.model),
            (CUE_RULE, _) => format!("{} (cue)", r.model),
            (_, Some(flag)) => format!("{} ({flag})", r.model),
            (_, None) => r.model.clone(),
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            r.parameters.map_or("—".to_string(), thousands),
            r.n,
            with_ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high),
            number(r.precision),
            number(r.recall),
            number(r.f1),
            with_ci(r.roc_auc, r.roc_auc_ci_low, r.roc_auc_ci_high),
        );
    }
    md
}

fn notes(rows: &[&MetricsRow]) -> String {
    let mut md = String::new();
    if let Some(r) = rows.iter().find(|r| !is_baseline(r)) {
        let _ = writeln!(
            md,
            "- n = {} labelled videos ({} FAKE, {} REAL) scored by `{}`.",
            r.n, r.n_fake, r.n_real, r.model
        );
        let unscored = rows.iter().map(|r| r.unscored).max().unwrap_or(0);
        if unscored > 0 {
            let _ = writeln!(
                md,
                "- {unscored} labelled video(s) of the split had no face frame to score and are \
                 left out of the models' rows; the baselines count them."
            );
        }
    }
    if let Some(b) = rows.iter().find(|r| r.rule == CONSTANT_RULE) {
        let _ = writeln!(
            md,
            "- Baselines score every video 1.0 (`always-fake`) or 0.0 (`always-real`): a model \
             that learned nothing lands on one of them ({} videos: {} FAKE, {} REAL).",
            b.n, b.n_fake, b.n_real
        );
    }
    if let Some((cue, s)) = strongest_cue(rows) {
        let _ = writeln!(
            md,
            "- Cues score each video by one model-free measure (face sharpness, face area, face \
             brightness, bitrate, SSIM mean; accuracy is that of \"FAKE above the median\"). Their \
             AUC is shown as measured; a cue's strength is max(AUC, 1 - AUC). Strongest here: \
             `{}` (AUC {:.3}, strength {s:.3}); a detector whose AUC does not exceed it is marked \
             \"not better than\" it.",
            cue.model,
            cue.roc_auc.unwrap_or(0.5)
        );
    }
    if let Some(r) = rows.iter().find(|r| r.bootstrap_resamples > 0) {
        let skipped = rows
            .iter()
            .map(|r| r.bootstrap_auc_skipped)
            .max()
            .unwrap_or(0);
        let _ = write!(
            md,
            "- 95% intervals: percentile bootstrap over videos, {} resamples",
            r.bootstrap_resamples
        );
        if skipped > 0 {
            let _ = write!(
                md,
                "; up to {skipped} resample(s) per row held one class and were left out of the \
                 AUC interval"
            );
        }
        md.push_str(".\n");
    }
    md.push_str("- — : undefined on this data (e.g. precision when nothing is predicted FAKE).\n");
    md
}

fn number(value: Option<f64>) -> String {
    value.map_or("—".to_string(), |v| format!("{v:.3}"))
}

fn with_ci(value: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (value, low, high) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        (value, _, _) => number(value),
    }
}

/// `27977` -> `27,977`, as the reference's table prints parameter counts.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The summary rows as a `metrics` batch (the same columns, documented in `dfd_schemas::metrics`).
pub fn summary_batch(rows: &[&MetricsRow]) -> Result<RecordBatch, ReportError> {
    let owned: Vec<MetricsRow> = rows.iter().map(|r| (*r).clone()).collect();
    Ok(MetricsRow::to_batch(&owned)?)
}

/// `summary.csv`: every column of the batch, full precision, empty for null.
pub fn csv(batch: &RecordBatch) -> Result<Vec<u8>, ReportError> {
    let schema = batch.schema();
    let mut out = String::new();
    let names: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    out.push_str(&names.join(","));
    out.push('\n');
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ReportError::Render(format!("summary.csv: {e}")))?;
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = formatters
            .iter()
            .map(|f| quote(&f.value(row).to_string()))
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// RFC 4180 quoting, only where needed.
fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// `summary.parquet`: the batch as one Parquet file.
pub fn parquet(batch: &RecordBatch) -> Result<Vec<u8>, ReportError> {
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None)
        .map_err(|e| ReportError::Render(format!("summary.parquet: {e}")))?;
    writer
        .write(batch)
        .map_err(|e| ReportError::Render(format!("summary.parquet: {e}")))?;
    writer
        .into_inner()
        .map_err(|e| ReportError::Render(format!("summary.parquet: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(27_977), "27,977");
        assert_eq!(thousands(85_800_194), "85,800,194");
    }

    #[test]
    fn csv_cells_are_quoted_only_when_needed() {
        assert_eq!(quote("a"), "a");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
