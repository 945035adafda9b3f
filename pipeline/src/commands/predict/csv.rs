//! `dfd predict --csv PATH`: the answers as a CSV, one row per video, whose first two columns are
//! a DFDC submission (`filename,label`, label = P(FAKE)).
//!
//! Written by hand rather than with the `csv` crate, which the pipeline does not depend on: the
//! only writing rule needed is RFC 4180's quoting, a few lines with their own test.

use std::borrow::Cow;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{PredictReport, Prediction};
use crate::cache::atomic::{temp_path, write_file_atomic};
use crate::commands::csv_field::csv_field;

/// The columns: `filename` and `label` as DFDC's `submission.csv` has them, then the rest of a
/// `Prediction` (`score` repeats `label`, so the file reads on its own without the DFDC meaning).
pub const HEADER: &str = "filename,label,verdict,score,frames_used,faces_found,error";

/// Checks, before any prediction, that the CSV can be put at `path` (its folder exists, it is not
/// a folder itself), so that a long prediction does not end in a path mistake. Creates nothing.
pub fn check_target(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.file_name().is_none() {
        bail!("--csv {shown}: not a file name");
    }
    let folder = folder_of(path);
    match fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!("--csv {shown}: {} is not a folder", folder.display()),
        Err(e) => bail!("--csv {shown}: folder {}: {e}", folder.display()),
    }
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        bail!("--csv {shown}: is a folder");
    }
    Ok(())
}

/// Writes the report's CSV to `path` atomically with the cache's own writer
/// ([`write_file_atomic`]: whole into `PATH.tmp-<pid>` beside it, created anew so a link planted
/// there is not written through, synced, renamed over `path`, the folder synced), so a reader
/// (or a crash) never sees half a file and an older CSV stays whole until the new one is
/// complete. A temporary left by a failure is removed.
pub fn write(report: &PredictReport, path: &Path) -> Result<()> {
    let result = write_file_atomic(path, to_csv(report).as_bytes());
    if result.is_err() {
        // Best effort: the error below is the one to report.
        let _ = fs::remove_file(temp_path(path));
    }
    result.with_context(|| format!("cannot write the CSV {}", path.display()))
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The whole CSV: the header and a row per video, lines ending in `\n` (which every CSV reader
/// takes; RFC 4180's `\r\n` would leave a `\r` in every line for `cut` and `grep`).
pub fn to_csv(report: &PredictReport) -> String {
    let mut out = String::with_capacity(64 * (report.videos.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for p in &report.videos {
        out.push_str(&row(p));
        out.push('\n');
    }
    out
}

/// One video's row. A score is written in Rust's shortest form that reads back to the same
/// `f64`; no score (no face, an error) is an empty field, not a guess.
fn row(p: &Prediction) -> String {
    let score = p.score.map(|s| s.to_string()).unwrap_or_default();
    [
        csv_field(&p.video),
        Cow::Borrowed(score.as_str()),
        csv_field(&p.verdict),
        Cow::Borrowed(score.as_str()),
        Cow::Owned(p.frames_used.to_string()),
        Cow::Owned(p.faces_found.to_string()),
        csv_field(p.error.as_deref().unwrap_or_default()),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_an_empty_label_without_a_score() {
        let report = PredictReport {
            model: "m".into(),
            rule: "mean".into(),
            threshold: 0.5,
            seconds: 0.0,
            videos: vec![
                Prediction {
                    video: "v/a,\"b\".mp4".into(),
                    verdict: "FAKE".into(),
                    score: Some(0.75),
                    frames_used: 3,
                    faces_found: 4,
                    error: None,
                    frames: Vec::new(),
                    explanation: None,
                },
                Prediction::error("bad.mp4", "decode: cannot open, truncated".into()),
            ],
        };
        assert_eq!(
            to_csv(&report),
            "filename,label,verdict,score,frames_used,faces_found,error\n\
             \"v/a,\"\"b\"\".mp4\",0.75,FAKE,0.75,3,4,\n\
             bad.mp4,,error,,0,0,\"decode: cannot open, truncated\"\n"
        );
    }

    #[test]
    fn the_target_is_checked_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_target(&dir.path().join("out.csv")).is_ok());
        assert!(check_target(&dir.path().join("missing/out.csv")).is_err());
        assert!(check_target(dir.path()).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn writing_replaces_the_file_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "old").unwrap();
        fs::write(temp_path(&path), "leftover").unwrap();
        let report = PredictReport {
            model: "m".into(),
            rule: "mean".into(),
            threshold: 0.5,
            seconds: 0.0,
            videos: Vec::new(),
        };
        write(&report, &path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
