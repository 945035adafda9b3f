//! `dfd report [--json]`: the summary table of the latest `metrics` (the reference study's "Result
//! Summary": model, parameters, accuracy, precision, recall, F1, AUC, with 95% intervals), and the
//! copying of the `report` stage's files to `<workspace>/report/` after a run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dfd_schemas::{MetricsRow, ReportFileRow, TableRow};
use dfd_stages::aggregate::NAME as AGGREGATE;
use dfd_stages::report::{markdown, summary_rows, ReportParams, NAME as REPORT};
use serde_json::json;

use super::inspect::stage_output;
use crate::cache::atomic::write_file_atomic;
use crate::cache::verify::read_checked;
use crate::cache::Workspace;

/// The folder under the workspace that holds the rendered report.
pub const REPORT_DIR: &str = "report";

/// What `dfd report` shows.
pub struct Summary {
    /// The `aggregate` output the metrics come from.
    pub source: PathBuf,
    /// Set when that output is not the latest run's.
    pub note: Option<String>,
    pub params: ReportParams,
    pub metrics: Vec<MetricsRow>,
    /// `<workspace>/report` when it holds a rendered report.
    pub report_dir: Option<PathBuf>,
}

/// Reads the metrics of the latest `aggregate` output.
pub fn summary(workspace: &Workspace, params: &ReportParams) -> Result<Summary> {
    if workspace.finished_outputs(AGGREGATE).is_empty() {
        bail!(
            "no metrics yet in workspace {}: the `{AGGREGATE}` stage has not run (it follows \
             `score` and `train`); run `dfd run` first",
            workspace.root().display()
        );
    }
    let (dir, manifest, note) = stage_output(workspace, AGGREGATE)?;
    let mut metrics = Vec::new();
    for file in manifest.files_of(MetricsRow::TABLE.name) {
        let path = dir.join(&file.path);
        for batch in read_checked(&dir, file)? {
            metrics.extend(
                MetricsRow::from_batch(&batch)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    let report_dir = workspace.root().join(REPORT_DIR);
    Ok(Summary {
        source: dir,
        note,
        params: params.clone(),
        metrics,
        report_dir: report_dir
            .join("summary.md")
            .is_file()
            .then_some(report_dir),
    })
}

pub fn print_text(summary: &Summary) {
    if let Some(note) = &summary.note {
        eprintln!("note: {note}");
    }
    print!("{}", markdown(&summary.metrics, &summary.params.choice()));
    println!("\n(metrics: {})", summary.source.display());
    if let Some(dir) = &summary.report_dir {
        println!("(plots and files: {})", dir.display());
    }
}

/// The summary rows as JSON, every column of `metrics` (nulls as null).
pub fn to_json(summary: &Summary) -> serde_json::Value {
    let choice = summary.params.choice();
    let rows: Vec<serde_json::Value> = summary_rows(&summary.metrics, &choice)
        .into_iter()
        .map(row_json)
        .collect();
    json!({
        "source": summary.source.display().to_string(),
        "note": summary.note,
        "split": choice.split,
        "level": "video",
        "rule": choice.rule,
        "rows": rows,
        "report_dir": summary.report_dir.as_ref().map(|d| d.display().to_string()),
    })
}

fn row_json(r: &MetricsRow) -> serde_json::Value {
    json!({
        "model": r.model, "split": r.split, "level": r.level, "rule": r.rule,
        "n": r.n, "n_fake": r.n_fake, "n_real": r.n_real, "unscored": r.unscored,
        "threshold": r.threshold, "parameters": r.parameters,
        "accuracy": r.accuracy, "precision": r.precision, "recall": r.recall, "f1": r.f1,
        "roc_auc": r.roc_auc, "average_precision": r.average_precision,
        "log_loss": r.log_loss, "eer": r.eer,
        "tp": r.tp, "fp": r.fp, "tn": r.tn, "fn": r.fn_,
        "accuracy_ci": [r.accuracy_ci_low, r.accuracy_ci_high],
        "roc_auc_ci": [r.roc_auc_ci_low, r.roc_auc_ci_high],
        "bootstrap_resamples": r.bootstrap_resamples,
        "bootstrap_auc_skipped": r.bootstrap_auc_skipped,
    })
}

/// Copies the files of the `report` output with `fingerprint` to `<workspace>/report/`.
pub fn publish(workspace: &Workspace, fingerprint: &str) -> Result<PathBuf> {
    let dir = workspace.output_dir(REPORT, fingerprint);
    let manifest = workspace
        .finished(REPORT, fingerprint)
        .with_context(|| format!("no finished report output at {}", dir.display()))?;
    let mut files = Vec::new();
    for file in manifest.files_of(ReportFileRow::TABLE.name) {
        for batch in read_checked(&dir, file)? {
            files.extend(ReportFileRow::from_batch(&batch)?);
        }
    }
    let target = workspace.root().join(REPORT_DIR);
    write_files(&target, &files)?;
    Ok(target)
}

/// The list of files the last copy wrote, kept in the report folder: the only files a later copy
/// may remove.
const WRITTEN_LIST: &str = ".dfd-report-files.json";

/// Writes `files` into `dir` (each atomically) and removes the files an earlier copy wrote that
/// are not among them, so a plot of a split that no longer exists does not linger next to the new
/// summary. Nothing else there is touched: a file the user put in the folder stays. A `dir` that
/// is a symbolic link is refused, not written through.
pub fn write_files(dir: &Path, files: &[ReportFileRow]) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symbolic link: dfd writes the report only into a folder of its own;              remove the link (the report stays in the cache: dfd inspect report)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for file in files {
        if !dfd_schemas::report_files::is_plain_file_name(&file.name) || file.name == WRITTEN_LIST {
            bail!("report file name `{}` is not a plain file name", file.name);
        }
    }
    let list = dir.join(WRITTEN_LIST);
    let previous: Vec<String> = std::fs::read(&list)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    for file in files {
        let path = dir.join(&file.name);
        write_file_atomic(&path, &file.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for name in previous.iter().filter(|n| !names.contains(&n.as_str())) {
        if !dfd_schemas::report_files::is_plain_file_name(name) {
            continue;
        }
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
    }
    let text = serde_json::to_vec_pretty(&names)?;
    write_file_atomic(&list, &text).with_context(|| format!("cannot write {}", list.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> ReportFileRow {
        ReportFileRow {
            name: name.into(),
            media_type: "text/plain".into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn files_are_written_and_stale_ones_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report");
        write_files(
            &target,
            &[file("summary.md", b"old"), file("roc-val.png", b"x")],
        )
        .unwrap();
        std::fs::write(target.join("notes.txt"), b"the user's").unwrap();
        write_files(&target, &[file("summary.md", b"new")]).unwrap();
        assert_eq!(std::fs::read(target.join("summary.md")).unwrap(), b"new");
        assert!(!target.join("roc-val.png").exists());
        assert!(target.join("notes.txt").is_file(), "only files it wrote go");
    }

    #[test]
    fn a_linked_report_folder_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("keep.txt"), b"x").unwrap();
        let target = dir.path().join("report");
        std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
        let err = write_files(&target, &[file("summary.md", b"new")]).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!elsewhere.join("summary.md").exists());
        assert!(elsewhere.join("keep.txt").is_file());
    }

    #[test]
    fn a_name_outside_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_files(dir.path(), &[file("../escape.md", b"x")]).is_err());
        assert!(!dir.path().parent().unwrap().join("escape.md").exists());
    }

    #[test]
    fn without_metrics_the_message_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = summary(&Workspace::new(dir.path()), &ReportParams::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no metrics yet"), "{err}");
        assert!(err.contains("dfd run"), "{err}");
    }
}
