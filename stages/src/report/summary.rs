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
        let _ = writeln!(md, "{}", nothing_scored(choice));
        return md;
    }
    let _ = writeln!(md, "{}\n", intro(&rows, choice));
    md.push_str(&headline_table(&rows));
    md.push('\n');
    for note in notes(&rows) {
        let _ = writeln!(md, "- {note}");
    }
    let others = other_rows(metrics, &rows);
    if !others.is_empty() {
        md.push_str("\n## Other splits, levels and rules\n\n");
        md.push_str(&markdown_table(&OTHER_COLUMNS, &other_cells(&others)));
    }
    md
}

/// What the summary says when the chosen split and rule have no rows.
pub(super) fn nothing_scored(choice: &SummaryChoice) -> String {
    format!(
        "No video-level metrics for split `{}` and rule `{}`: nothing was scored there.",
        choice.split, choice.rule
    )
}

/// The sentence above the headline table: which split, level, rule and threshold it quotes.
/// `rows` must not be empty (the threshold is the first row's).
pub(super) fn intro(rows: &[&MetricsRow], choice: &SummaryChoice) -> String {
    let threshold = rows.first().map_or(0.5, |r| r.threshold);
    format!(
        "Split `{}`, video level: a video's score is the `{}` of its face-frame scores \
         (P(FAKE)); FAKE when the score is above {threshold}.",
        choice.split, choice.rule
    )
}

/// The metrics rows that the headline table does not quote, by split, level, model and rule.
pub(super) fn other_rows<'a>(
    metrics: &'a [MetricsRow],
    quoted: &[&MetricsRow],
) -> Vec<&'a MetricsRow> {
    let mut others: Vec<&MetricsRow> = metrics
        .iter()
        .filter(|r| !quoted.iter().any(|s| std::ptr::eq(*s, *r)))
        .collect();
    others.sort_by(|a, b| {
        (&a.split, &a.level, &a.model, &a.rule).cmp(&(&b.split, &b.level, &b.model, &b.rule))
    });
    others
}

/// The column heads of the headline table.
pub const HEADLINE_COLUMNS: [&str; 8] = [
    "Model",
    "Parameters",
    "n",
    "Accuracy (95% CI)",
    "Precision",
    "Recall",
    "F1",
    "AUC (95% CI)",
];

/// The column heads of the table of the other splits, levels and rules.
pub const OTHER_COLUMNS: [&str; 7] = [
    "Model",
    "Split",
    "Level",
    "Rule",
    "n",
    "Accuracy (95% CI)",
    "AUC (95% CI)",
];

/// Which kind of row a headline row is, for whoever styles it (the HTML report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Detector,
    /// A detector whose AUC does not exceed the strongest cue's strength.
    Flagged,
    Baseline,
    Cue,
}

/// The headline table's cells as text, one array per row, in the order of [`HEADLINE_COLUMNS`]:
/// the one place their formatting lives, so that summary.md, `dfd run`'s table and report.html
/// print the same figures.
pub fn headline_cells(rows: &[&MetricsRow]) -> Vec<(RowKind, [String; 8])> {
    let strongest = strongest_cue(rows);
    rows.iter()
        .map(|r| {
            let (kind, name) = match (r.rule.as_str(), cue_flag(r, strongest)) {
                (CONSTANT_RULE, _) => (RowKind::Baseline, format!("{} (baseline)", r.model)),
                (CUE_RULE, _) => (RowKind::Cue, format!("{} (cue)", r.model)),
                (_, Some(flag)) => (RowKind::Flagged, format!("{} ({flag})", r.model)),
                (_, None) => (RowKind::Detector, r.model.clone()),
            };
            let cells = [
                name,
                r.parameters.map_or("—".to_string(), thousands),
                r.n.to_string(),
                with_ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high),
                number(r.precision),
                number(r.recall),
                number(r.f1),
                with_ci(r.roc_auc, r.roc_auc_ci_low, r.roc_auc_ci_high),
            ];
            (kind, cells)
        })
        .collect()
}

/// The other rows' cells as text, in the order of [`OTHER_COLUMNS`].
pub fn other_cells(rows: &[&MetricsRow]) -> Vec<[String; 7]> {
    rows.iter()
        .map(|r| {
            [
                r.model.clone(),
                r.split.clone(),
                r.level.clone(),
                r.rule.clone(),
                r.n.to_string(),
                with_ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high),
                with_ci(r.roc_auc, r.roc_auc_ci_low, r.roc_auc_ci_high),
            ]
        })
        .collect()
}

/// The summary's first table (what `dfd run` prints when it ends).
pub fn headline_table(rows: &[&MetricsRow]) -> String {
    let cells: Vec<[String; 8]> = headline_cells(rows).into_iter().map(|(_, c)| c).collect();
    markdown_table(&HEADLINE_COLUMNS, &cells)
}

/// A Markdown table; every column but the first, the n and the intervals is right-aligned
/// (numbers), as the reference's table aligns them.
fn markdown_table<const N: usize>(heads: &[&str; N], rows: &[[String; N]]) -> String {
    let mut md = format!("| {} |\n|", heads.join(" | "));
    for head in heads {
        md.push_str(if right_aligned(head) { "---:|" } else { "---|" });
    }
    md.push('\n');
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    md
}

/// Whether a column of plain numbers (right-aligned) rather than text or intervals.
pub(super) fn right_aligned(head: &str) -> bool {
    matches!(head, "Parameters" | "n" | "Precision" | "Recall" | "F1")
}

/// The notes under the headline table, one item each, in Markdown's inline syntax (`code`).
pub(super) fn notes(rows: &[&MetricsRow]) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(r) = rows.iter().find(|r| !is_baseline(r)) {
        notes.push(format!(
            "n = {} labelled videos ({} FAKE, {} REAL) scored by `{}`.",
            r.n, r.n_fake, r.n_real, r.model
        ));
        let unscored = rows.iter().map(|r| r.unscored).max().unwrap_or(0);
        if unscored > 0 {
            notes.push(format!(
                "{unscored} labelled video(s) of the split had no face frame to score and are \
                 left out of the models' rows; the baselines count them."
            ));
        }
    }
    if let Some(b) = rows.iter().find(|r| r.rule == CONSTANT_RULE) {
        notes.push(format!(
            "Baselines score every video 1.0 (`always-fake`) or 0.0 (`always-real`): a model \
             that learned nothing lands on one of them ({} videos: {} FAKE, {} REAL).",
            b.n, b.n_fake, b.n_real
        ));
    }
    if let Some((cue, s)) = strongest_cue(rows) {
        notes.push(format!(
            "Cues score each video by one model-free measure (face sharpness, face area, face \
             brightness, bitrate, SSIM mean; accuracy is that of \"FAKE above the median\"). Their \
             AUC is shown as measured; a cue's strength is max(AUC, 1 - AUC). Strongest here: \
             `{}` (AUC {:.3}, strength {s:.3}); a detector whose AUC does not exceed it is marked \
             \"not better than\" it.",
            cue.model,
            cue.roc_auc.unwrap_or(0.5)
        ));
    }
    if let Some(r) = rows.iter().find(|r| r.bootstrap_resamples > 0) {
        let skipped = rows
            .iter()
            .map(|r| r.bootstrap_auc_skipped)
            .max()
            .unwrap_or(0);
        let mut note = format!(
            "95% intervals: percentile bootstrap over videos, {} resamples",
            r.bootstrap_resamples
        );
        if skipped > 0 {
            let _ = write!(
                note,
                "; up to {skipped} resample(s) per row held one class and were left out of the \
                 AUC interval"
            );
        }
        note.push('.');
        notes.push(note);
    }
    notes
        .push("— : undefined on this data (e.g. precision when nothing is predicted FAKE).".into());
    notes
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
