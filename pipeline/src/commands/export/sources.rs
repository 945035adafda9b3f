//! Which cached outputs an export reads. Nothing is computed: the faces are the `crop` output
//! that `dfd inspect crop` shows (the one the latest run used, else the newest on disk), and the
//! labels and SSIM come from the `ingest` and `ssim` outputs made from those very faces, found by
//! the content hashes each manifest keeps of the tables it read. Taking simply the newest output
//! of each stage could pair the faces of one dataset or crop setting with the labels or SSIM
//! maps of another, and a mislabelled export looks exactly like a good one.
//!
//! Like `inspect` and `report`, an export reads without the workspace lock (the lock is for
//! writers, and taking it would stop a running `dfd run`): finished outputs are never changed in
//! place, and every file is checked against its manifest's sha256 as it is read.

use std::path::PathBuf;

use anyhow::{bail, Result};
use dfd_schemas::{FaceRow, FrameRow, TableRow, VideoRow};
use dfd_stages::crop::NAME as CROP;
use dfd_stages::decode::NAME as DECODE;
use dfd_stages::ingest::NAME as INGEST;
use dfd_stages::ssim::NAME as SSIM;

use crate::cache::{Manifest, Workspace};
use crate::commands::inspect::stage_output;
use crate::runs::latest_fingerprint;

/// One finished stage output.
pub struct Output {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// The outputs an export reads.
pub struct Sources {
    /// `faces`.
    pub crop: Output,
    /// `videos`: label and split of each video.
    pub ingest: Output,
    /// `ssim_maps` and `ssim_stats`, when an output made from these faces is cached.
    pub ssim: Option<Output>,
    /// Things the user should know (an older output used, SSIM columns left empty).
    pub notes: Vec<String>,
}

/// Finds the outputs; `need_ssim` makes a missing `ssim` output an error instead of a note.
pub fn locate(workspace: &Workspace, need_ssim: bool) -> Result<Sources> {
    // The stage whose `dfd run --until` makes everything this export needs.
    let until = if need_ssim { SSIM } else { CROP };
    if workspace.finished_outputs(CROP).is_empty() {
        bail!("{}", missing(workspace, CROP, "the face crops", until));
    }
    let mut notes = Vec::new();
    let (dir, manifest, note) = stage_output(workspace, CROP)?;
    if let Some(note) = note {
        notes.push(format!("faces of {}: {note}", dir.display()));
    }
    let crop = Output { dir, manifest };
    let decode = made_from(workspace, &crop, DECODE, FrameRow::TABLE.name, until)?;
    let ingest = made_from(workspace, &decode, INGEST, VideoRow::TABLE.name, until)?;
    let faces = FaceRow::TABLE.name;
    let ssim = candidates(workspace, SSIM)
        .into_iter()
        .find(|ssim| read(&ssim.manifest, CROP, faces, &crop.manifest));
    if ssim.is_none() {
        if need_ssim {
            if workspace.finished_outputs(SSIM).is_empty() {
                bail!("{}", missing(workspace, SSIM, "the SSIM maps", SSIM));
            }
            bail!(
                "no cached output of stage `{SSIM}` was made from the face crops of {} (the \
                 latest): the SSIM maps on disk belong to other crops; `dfd run --until {SSIM}` \
                 (with the settings that made those crops) makes it",
                crop.dir.display()
            );
        }
        notes.push(format!(
            "no cached `{SSIM}` output for these faces: ssim_mean and ssim_variance are left \
             empty in metadata.csv (`dfd run --until {SSIM}` makes them)"
        ));
    }
    Ok(Sources {
        crop,
        ingest,
        ssim,
        notes,
    })
}

/// The error for a stage with no finished output at all.
fn missing(workspace: &Workspace, stage: &str, what: &str, until: &str) -> String {
    format!(
        "no cached output of stage `{stage}` ({what}) in workspace {}: `dfd export` only reads \
         the cache; `dfd run --until {until}` makes it",
        workspace.root().display()
    )
}

/// The output of `stage` whose `table` the output `downstream` read; the latest run's first,
/// then the newest (identical bytes can come from several outputs, say two `ingest` outputs that
/// differ only in a label that `decode` does not read: the latest holds the current labels).
fn made_from(
    workspace: &Workspace,
    downstream: &Output,
    stage: &str,
    table: &str,
    until: &str,
) -> Result<Output> {
    let found = candidates(workspace, stage)
        .into_iter()
        .find(|up| read(&downstream.manifest, stage, table, &up.manifest));
    match found {
        Some(output) => Ok(output),
        None => bail!(
            "the output of stage `{stage}` that {} was made from is no longer cached (removed by \
             `dfd gc`?), so its `{table}` cannot be matched to it; `dfd run --until {until}` \
             makes it again",
            downstream.dir.display()
        ),
    }
}

/// Whether the output with manifest `downstream` read `table` of the output `upstream` of
/// `stage`. Manifests key each input `<stage>/<table>` with that table's hash; those of earlier
/// dfd versions keyed it `<stage>` with the whole output's hash.
fn read(downstream: &Manifest, stage: &str, table: &str, upstream: &Manifest) -> bool {
    match downstream.inputs.get(&format!("{stage}/{table}")) {
        Some(hash) => *hash == upstream.input_hash(table),
        None => downstream.inputs.get(stage) == Some(&upstream.content_hash),
    }
}

/// The finished outputs of `stage`: the latest run's first, then the others newest first.
fn candidates(workspace: &Workspace, stage: &str) -> Vec<Output> {
    let mut outputs = Vec::new();
    if let Some(fingerprint) = latest_fingerprint(workspace, stage) {
        let dir = workspace.output_dir(stage, &fingerprint);
        if let Ok(manifest) = Manifest::read(&dir) {
            outputs.push(Output { dir, manifest });
        }
    }
    for (dir, manifest) in workspace.finished_outputs(stage) {
        if !outputs.iter().any(|o| o.dir == dir) {
            outputs.push(Output { dir, manifest });
        }
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(inputs: serde_json::Value, files: &[(&str, &str)]) -> Manifest {
        let files: Vec<serde_json::Value> = files
            .iter()
            .map(|(path, sha256)| json!({"path": path, "rows": 1, "bytes": 1, "sha256": sha256}))
            .collect();
        let mut manifest: Manifest = serde_json::from_value(json!({
            "stage": "s", "version": 1, "fingerprint": "0123456789abcdef0123", "params": {},
            "inputs": inputs, "external": null, "videos_per_shard": 8,
            "shards": [{"index": 0, "videos": 1, "files": files, "seconds": 0.0}],
            "content_hash": "", "created_at": "2026-01-01T00:00:00.000Z", "seconds": 0.0
        }))
        .unwrap();
        manifest.content_hash = Manifest::content_hash_of(&manifest.shards);
        manifest
    }

    #[test]
    fn an_output_is_matched_by_the_hash_of_the_table_read() {
        let crop = manifest(
            json!({}),
            &[
                ("faces/part-00000.parquet", "aa"),
                ("errors/part-00000.parquet", "bb"),
            ],
        );
        let other_errors = manifest(
            json!({}),
            &[
                ("faces/part-00000.parquet", "aa"),
                ("errors/part-00000.parquet", "cc"),
            ],
        );
        let other_faces = manifest(json!({}), &[("faces/part-00000.parquet", "dd")]);
        let ssim = manifest(json!({"crop/faces": crop.table_hash("faces")}), &[]);
        assert!(read(&ssim, "crop", "faces", &crop));
        assert!(
            read(&ssim, "crop", "faces", &other_errors),
            "a table it does not read may differ"
        );
        assert!(!read(&ssim, "crop", "faces", &other_faces));
        // Manifests of earlier versions keyed the input by stage, with the whole output's hash.
        let old = manifest(json!({"crop": crop.content_hash}), &[]);
        assert!(read(&old, "crop", "faces", &crop));
        assert!(!read(&old, "crop", "faces", &other_errors));
        assert!(!read(&manifest(json!({}), &[]), "crop", "faces", &crop));
    }
}
