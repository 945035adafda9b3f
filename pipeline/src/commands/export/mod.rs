//! `dfd export faces DIR [--split S]... [--with-ssim]`: the cached face crops as PNG files in the
//! folder layout that Keras's `flow_from_directory` and torchvision's `ImageFolder` read, for
//! training elsewhere on our preprocessing (the reference study saved its faces this way).
//!
//! ```text
//! DIR/<split>/<REAL|FAKE|unlabelled>/<video>_<frame>.png      one per row of crop's `faces`
//! DIR/ssim/<split>/<label>/<video>_<frame>.png                 --with-ssim: that face's SSIM map
//! DIR/metadata.csv                                             one row per face
//! ```
//!
//! - **Nothing is computed.** The faces are read from the cache (see `sources` for which outputs,
//!   and why labels and SSIM come from the outputs made from those very faces); a stage that is
//!   not cached is an error that names it and the `dfd run --until` that makes it.
//! - **The bytes are the cache's.** `crop` stores each face as PNG (true RGB order), and an
//!   export writes those bytes as they are, with no decode and re-encode: a file of the export is
//!   byte for byte the crop our own detectors train on. The pipeline has no image codec of its
//!   own (`crop` encodes with OpenCV), so a crop that is not PNG is an error naming it rather
//!   than a conversion.
//! - **SSIM maps in a parallel tree**, `DIR/ssim/`, mirroring the faces: pointed at
//!   `DIR/train`, `flow_from_directory` and `ImageFolder` see the faces only (maps next to the
//!   faces would be taken as more samples of the class), and the map of face `P` is `ssim/P`.
//!   A video with one face frame has no pair to compare, so its face has no map (and an empty
//!   `ssim_path`).
//! - **File names**: `<video>` is the video id made safe by `names::safe_name` (`/` and other
//!   bytes outside `[A-Za-z0-9._-]` percent-encoded, one to one); `<frame>` is the frame's index
//!   in the video, zero-padded to one width (at least 6 digits) so a video's files sort in time
//!   order. Videos without a label go under `unlabelled/`, without a split under `unsplit/`.
//!   Empty class folders are not made (`ImageFolder` refuses one): a split holding one class
//!   only has one folder, so pass `classes=["FAKE", "REAL"]` to `flow_from_directory` to keep
//!   the class indices the same in every split.
//! - **Never half an export.** DIR must be missing or empty (a typo cannot mix two exports); the
//!   files are written into `DIR.partial-<pid>` beside it, flushed to disk, and renamed to DIR at
//!   the end, so an export that fails or is killed never leaves a DIR that looks whole.

pub(crate) mod names;
mod sources;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow::array::{Array, UInt64Array};
use clap::Subcommand;
use dfd_schemas::{FaceRow, Label, SsimMapRow, SsimStatsRow, TableRow, VideoRow};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::cache::atomic::fsync_dir;
use crate::cache::parquet_io::read_parquet;
use crate::cache::verify::{check_file, read_checked};
use crate::cache::{FileRecord, Workspace};
use crate::commands::csv_field::csv_field;
use names::{face_file_name, frame_digits, safe_name};
use sources::Output;

/// What `dfd export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// The cached 224x224 face crops as PNG files, DIR/<split>/<REAL|FAKE>/<video>_<frame>.png
    /// (the layout of Keras's flow_from_directory and torchvision's ImageFolder), with
    /// DIR/metadata.csv listing every face; reads the cache, computes nothing.
    Faces {
        /// Folder to create; it must not exist or be empty. Written as DIR.partial-<pid> beside
        /// it and renamed at the end.
        dir: PathBuf,
        /// Only this split (repeatable): train, val, test, or `unsplit` for videos without one;
        /// default: every split.
        #[arg(long = "split", value_name = "SPLIT")]
        splits: Vec<String>,
        /// Also write each face's SSIM map (from the `ssim` stage) as DIR/ssim/<same path as
        /// the face>, a tree of its own that flow_from_directory does not take as samples.
        #[arg(long)]
        with_ssim: bool,
    },
}

/// Folder of the faces of a video without a label.
const UNLABELLED: &str = "unlabelled";
/// Folder (and `--split` name) of the faces of a video without a split.
const UNSPLIT: &str = "unsplit";
/// The top folder of the SSIM maps.
const SSIM_DIR: &str = "ssim";
const METADATA: &str = "metadata.csv";
/// The columns of `metadata.csv`; `ssim_mean` and `ssim_variance` are the video's (the `ssim`
/// stage's `ssim_stats`), `ssim_path` the face's map (with `--with-ssim`).
const HEADER: &str = "path,video,frame,split,label,ssim_mean,ssim_variance,ssim_path";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

pub struct FacesRequest<'a> {
    pub workspace: &'a Workspace,
    pub dir: &'a Path,
    /// Splits to export (`unsplit` for videos without one); empty: all.
    pub splits: &'a [String],
    pub with_ssim: bool,
}

/// What an export wrote.
#[derive(Debug)]
pub struct FacesExport {
    pub dir: PathBuf,
    pub faces: usize,
    /// (split folder, label folder, faces), train, val, test first, REAL before FAKE.
    pub per_class: Vec<(String, &'static str, usize)>,
    /// Maps written, with `--with-ssim`.
    pub ssim_maps: Option<usize>,
    /// For stderr: an older output used, SSIM columns left empty.
    pub notes: Vec<String>,
}

/// Label and split of one video, and the folders its faces go to.
struct Class {
    label: Option<Label>,
    split: Option<String>,
    split_dir: String,
    label_dir: &'static str,
}

impl Class {
    /// The name `--split` selects it by.
    fn split_key(&self) -> &str {
        self.split.as_deref().unwrap_or(UNSPLIT)
    }
}

/// One face written.
struct Exported<'a> {
    /// Relative to DIR, `/`-separated.
    path: String,
    video_id: String,
    sample_index: u32,
    frame_index: u64,
    class: &'a Class,
    ssim_path: Option<String>,
}

/// Exports the faces; see the module documentation.
pub fn export_faces(request: &FacesRequest) -> Result<FacesExport> {
    let partial_path = partial_path_for(request.dir)?;
    let sources = sources::locate(request.workspace, request.with_ssim)?;
    let classes = read_classes(&sources.ingest)?;
    let wanted = wanted_splits(&classes, request.splits)?;
    let stats = match &sources.ssim {
        Some(ssim) => read_stats(ssim)?,
        None => HashMap::new(),
    };
    let face_files: Vec<&FileRecord> = sources
        .crop
        .manifest
        .files_of(FaceRow::TABLE.name)
        .collect();
    let digits = frame_digits(max_frame_index(&sources.crop.dir, &face_files)?);

    let partial = Partial::create(partial_path)?;
    let mut folders = HashSet::new();
    let mut faces: Vec<Exported> = Vec::new();
    for file in face_files {
        let path = sources.crop.dir.join(&file.path);
        // Checked against the manifest by `max_frame_index`.
        for batch in read_parquet(&path)? {
            let rows = FaceRow::from_batch(&batch)
                .with_context(|| format!("reading {}", path.display()))?;
            for row in rows {
                let class = classes.get(&row.video_id).with_context(|| {
                    format!(
                        "{}: video `{}` has faces but no row in the `videos` table of {}",
                        path.display(),
                        row.video_id,
                        sources.ingest.dir.display()
                    )
                })?;
                if !wanted.contains(class.split_key()) {
                    continue;
                }
                if !row.image.starts_with(PNG_SIGNATURE) {
                    bail!(
                        "{}: the face of video `{}` at frame {} is not PNG ({}); the `faces` \
                         table stores PNG and this dfd has no image codec to convert it",
                        path.display(),
                        row.video_id,
                        row.frame_index,
                        super::inspect::describe_blob(&row.image)
                    );
                }
                let folder = format!("{}/{}", class.split_dir, class.label_dir);
                let name = face_file_name(&row.video_id, row.frame_index, digits);
                make_folder(&partial.path.join(&folder), &mut folders)?;
                let relative = format!("{folder}/{name}");
                write_new(&partial.path.join(&relative), &row.image)?;
                faces.push(Exported {
                    path: relative,
                    video_id: row.video_id,
                    sample_index: row.sample_index,
                    frame_index: row.frame_index,
                    class,
                    ssim_path: None,
                });
            }
        }
    }
    let ssim_maps = match (&sources.ssim, request.with_ssim) {
        (Some(ssim), true) => Some(write_maps(ssim, &partial.path, &mut faces, &mut folders)?),
        _ => None,
    };
    faces.sort_by(|a, b| a.path.cmp(&b.path));
    let csv = metadata_csv(&faces, &stats);
    let csv_path = partial.path.join(METADATA);
    write_new(&csv_path, csv.as_bytes())?;
    partial.publish(request.dir)?;

    let mut per_class: BTreeMap<(usize, String, usize, &'static str), usize> = BTreeMap::new();
    for face in &faces {
        let class = face.class;
        let key = (
            split_rank(&class.split_dir),
            class.split_dir.clone(),
            label_rank(class.label_dir),
            class.label_dir,
        );
        *per_class.entry(key).or_default() += 1;
    }
    Ok(FacesExport {
        dir: request.dir.to_path_buf(),
        faces: faces.len(),
        per_class: per_class
            .into_iter()
            .map(|((_, split, _, label), n)| (split, label, n))
            .collect(),
        ssim_maps,
        notes: sources.notes,
    })
}

/// Notes on stderr, then one line on stdout: faces per split and label.
pub fn print_text(export: &FacesExport) {
    for note in &export.notes {
        eprintln!("note: {note}");
    }
    let mut splits: Vec<(String, Vec<String>)> = Vec::new();
    for (split, label, n) in &export.per_class {
        let entry = format!("{n} {label}");
        match splits.last_mut() {
            Some((last, labels)) if last == split => labels.push(entry),
            _ => splits.push((split.clone(), vec![entry])),
        }
    }
    let classes: Vec<String> = splits
        .iter()
        .map(|(split, labels)| format!("{split} {}", labels.join(", ")))
        .collect();
    let maps = match export.ssim_maps {
        Some(n) => format!(", {n} SSIM maps under {SSIM_DIR}/"),
        None => String::new(),
    };
    println!(
        "exported {} faces to {} ({}){maps}, listed in {METADATA}",
        export.faces,
        export.dir.display(),
        if classes.is_empty() {
            "none".to_string()
        } else {
            classes.join("; ")
        }
    );
}

/// Checks that `dir` may be written (missing, or an empty folder that is not a link) and returns
/// the `DIR.partial-<pid>` beside it. Creates nothing.
fn partial_path_for(dir: &Path) -> Result<PathBuf> {
    let name = dir
        .file_name()
        .with_context(|| format!("{}: name a folder to create", dir.display()))?;
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", dir.display())),
        Ok(meta) if meta.file_type().is_symlink() => bail!(
            "{} is a symbolic link: dfd export writes a folder of its own; name a new folder",
            dir.display()
        ),
        Ok(meta) if !meta.is_dir() => bail!(
            "{} exists and is not a folder: dfd export writes a new folder; name another",
            dir.display()
        ),
        Ok(_) => {
            let mut entries =
                fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: dfd export writes only into a new or empty folder, so that \
                     two exports never mix; name another folder, or remove this one first",
                    dir.display()
                );
            }
        }
    }
    let mut partial = name.to_os_string();
    partial.push(format!(".partial-{}", std::process::id()));
    Ok(parent_of(dir).join(partial))
}

/// The folder `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The folder an export is written in; removed when dropped unpublished, so a failure (or a
/// panic) leaves nothing behind. A kill leaves it, named `.partial-<pid>`: never taken for DIR.
struct Partial {
    path: PathBuf,
    published: bool,
}

impl Partial {
    /// Creates the folder, and the folders above it that are missing.
    fn create(path: PathBuf) -> Result<Partial> {
        let parent = parent_of(&path);
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let create = || fs::create_dir(&path);
        match create() {
            // Left by a killed export that had this pid: only an export makes this name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::remove_dir_all(&path)
                    .and_then(|()| create())
                    .with_context(|| format!("cannot replace the leftover {}", path.display()))?;
            }
            other => other.with_context(|| format!("cannot create {}", path.display()))?,
        }
        Ok(Partial {
            path,
            published: false,
        })
    }

    /// Flushes every file to disk, then renames the folder to `dir` in one step.
    fn publish(mut self, dir: &Path) -> Result<()> {
        flush_to_disk(&self.path)?;
        fs::rename(&self.path, dir).with_context(|| {
            format!(
                "cannot rename {} to {} (was something written to {} meanwhile?)",
                self.path.display(),
                dir.display(),
                dir.display()
            )
        })?;
        self.published = true;
        let parent = parent_of(dir);
        fsync_dir(parent).with_context(|| format!("cannot sync {}", parent.display()))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: the error that brought us here is the one to report.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Makes the files under `dir` durable before the rename publishes them, so that not even a
/// machine crash can leave a DIR with truncated files: one `syncfs(2)` of its file system
/// instead of an fsync per file (thousands of them; each costs a journal commit).
#[cfg(target_os = "linux")]
fn flush_to_disk(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let folder = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open during the call.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot flush {} to disk", dir.display()));
    }
    Ok(())
}

/// Elsewhere, `sync(2)`, which flushes every file system.
#[cfg(not(target_os = "linux"))]
fn flush_to_disk(_dir: &Path) -> Result<()> {
    // SAFETY: sync takes no argument and cannot fail.
    unsafe { libc::sync() };
    Ok(())
}

/// Creates `path` (a new file: nothing is ever overwritten, so two faces given one name would be
/// an error rather than a lost face) and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn make_folder(path: &Path, made: &mut HashSet<PathBuf>) -> Result<()> {
    if !made.contains(path) {
        fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
        made.insert(path.to_path_buf());
    }
    Ok(())
}

/// Label, split and folders of every video of `ingest`'s `videos`.
fn read_classes(ingest: &Output) -> Result<HashMap<String, Class>> {
    let mut classes = HashMap::new();
    for file in ingest.manifest.files_of(VideoRow::TABLE.name) {
        let path = ingest.dir.join(&file.path);
        for batch in read_checked(&ingest.dir, file)
            .with_context(|| format!("reading {}", path.display()))?
        {
            let rows = VideoRow::from_batch(&batch)
                .with_context(|| format!("reading {}", path.display()))?;
            for row in rows {
                let split_dir = match &row.split {
                    Some(split) => safe_name(split),
                    None => UNSPLIT.to_string(),
                };
                // Splits are train, val or test (ingest refuses others); were that to change, a
                // split must still not land on the export's own names.
                if split_dir == SSIM_DIR || split_dir == METADATA {
                    bail!(
                        "{}: video `{}` is in split `{split_dir}`, a name the export uses itself",
                        path.display(),
                        row.video_id
                    );
                }
                let label_dir = match row.label {
                    Some(label) => label.as_str(),
                    None => UNLABELLED,
                };
                classes.insert(
                    row.video_id,
                    Class {
                        label: row.label,
                        split: row.split,
                        split_dir,
                        label_dir,
                    },
                );
            }
        }
    }
    Ok(classes)
}

/// The split names to export: those asked for, each of which must be a split of the dataset (a
/// misspelt one would otherwise export nothing, silently), or every split.
fn wanted_splits(classes: &HashMap<String, Class>, asked: &[String]) -> Result<HashSet<String>> {
    let present: HashSet<String> = classes
        .values()
        .map(|c| c.split_key().to_string())
        .collect();
    if asked.is_empty() {
        return Ok(present);
    }
    for split in asked {
        if !present.contains(split) {
            let mut known: Vec<&String> = present.iter().collect();
            known.sort_by_key(|s| (split_rank(s), s.to_string()));
            let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            bail!(
                "--split {split}: no video of the dataset is in that split; its splits: {}",
                known.join(", ")
            );
        }
    }
    Ok(asked.iter().cloned().collect())
}

/// Mean and variance of each video's SSIM (`ssim_stats`), by video id; null below two face
/// frames.
type SsimStats = HashMap<String, (Option<f64>, Option<f64>)>;

/// Reads [`SsimStats`].
fn read_stats(ssim: &Output) -> Result<SsimStats> {
    let mut stats = HashMap::new();
    for file in ssim.manifest.files_of(SsimStatsRow::TABLE.name) {
        let path = ssim.dir.join(&file.path);
        for batch in
            read_checked(&ssim.dir, file).with_context(|| format!("reading {}", path.display()))?
        {
            let rows = SsimStatsRow::from_batch(&batch)
                .with_context(|| format!("reading {}", path.display()))?;
            for row in rows {
                stats.insert(row.video_id, (row.mean, row.variance));
            }
        }
    }
    Ok(stats)
}

/// The largest frame index of the faces, which sets the width of every frame number. Checks each
/// file against its manifest (size and sha256) and reads only that one column.
fn max_frame_index(dir: &Path, files: &[&FileRecord]) -> Result<u64> {
    let mut max = 0;
    for file in files {
        let path = dir.join(&file.path);
        check_file(dir, file).with_context(|| format!("checking {}", dir.display()))?;
        let opened =
            File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(opened)
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["frame_index"]);
        let reader = builder
            .with_projection(mask)
            .build()
            .with_context(|| format!("reading {}", path.display()))?;
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            let column = batch
                .column_by_name("frame_index")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .with_context(|| format!("{}: no uint64 column frame_index", path.display()))?;
            if let Some(m) = arrow::compute::max(column) {
                max = max.max(m);
            }
        }
    }
    Ok(max)
}

/// Writes the SSIM map of every exported face that has one to `ssim/<the face's path>`; returns
/// how many.
fn write_maps(
    ssim: &Output,
    root: &Path,
    faces: &mut [Exported],
    folders: &mut HashSet<PathBuf>,
) -> Result<usize> {
    let by_key: HashMap<(String, u32), usize> = faces
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.video_id.clone(), f.sample_index), i))
        .collect();
    let mut written = 0;
    for file in ssim.manifest.files_of(SsimMapRow::TABLE.name) {
        let path = ssim.dir.join(&file.path);
        for batch in
            read_checked(&ssim.dir, file).with_context(|| format!("reading {}", path.display()))?
        {
            let rows = SsimMapRow::from_batch(&batch)
                .with_context(|| format!("reading {}", path.display()))?;
            for row in rows {
                // Faces of splits not asked for have no entry.
                let Some(&i) = by_key.get(&(row.video_id.clone(), row.sample_index)) else {
                    continue;
                };
                let face = &mut faces[i];
                if row.frame_index != face.frame_index {
                    bail!(
                        "{}: the SSIM map of video `{}` sample {} is of frame {}, its face of \
                         frame {}",
                        path.display(),
                        row.video_id,
                        row.sample_index,
                        row.frame_index,
                        face.frame_index
                    );
                }
                if !row.map.starts_with(PNG_SIGNATURE) {
                    bail!(
                        "{}: the SSIM map of video `{}` at frame {} is not PNG",
                        path.display(),
                        row.video_id,
                        row.frame_index
                    );
                }
                let relative = format!("{SSIM_DIR}/{}", face.path);
                let target = root.join(&relative);
                if let Some(folder) = target.parent() {
                    make_folder(folder, folders)?;
                }
                write_new(&target, &row.map)?;
                face.ssim_path = Some(relative);
                written += 1;
            }
        }
    }
    Ok(written)
}

/// `metadata.csv`: the header and a row per face, in path order, lines ending in `\n` (as
/// `dfd predict --csv` writes them; every CSV reader takes it). A value that is unknown (no
/// label, no split, no SSIM for the video) is an empty field.
fn metadata_csv(faces: &[Exported], stats: &SsimStats) -> String {
    let mut out = String::with_capacity(96 * (faces.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for face in faces {
        let (mean, variance) = stats.get(&face.video_id).copied().unwrap_or((None, None));
        // Rust's shortest form that reads back to the same f64.
        let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let fields = [
            csv_field(&face.path).into_owned(),
            csv_field(&face.video_id).into_owned(),
            face.frame_index.to_string(),
            csv_field(face.class.split.as_deref().unwrap_or_default()).into_owned(),
            face.class
                .label
                .map(Label::as_str)
                .unwrap_or_default()
                .to_string(),
            number(mean),
            number(variance),
            csv_field(face.ssim_path.as_deref().unwrap_or_default()).into_owned(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Order of the splits in the summary: train, val, test, any other, then `unsplit`.
fn split_rank(split: &str) -> usize {
    match split {
        "train" => 0,
        "val" => 1,
        "test" => 2,
        UNSPLIT => 4,
        _ => 3,
    }
}

fn label_rank(label: &str) -> usize {
    match label {
        "REAL" => 0,
        "FAKE" => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_folder_is_a_target_and_anything_else_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("deep/new");
        let partial = partial_path_for(&missing).unwrap();
        assert_eq!(
            partial,
            root.path()
                .join(format!("deep/new.partial-{}", std::process::id()))
        );
        assert!(!root.path().join("deep").exists(), "nothing is made yet");

        let empty = root.path().join("empty");
        fs::create_dir(&empty).unwrap();
        partial_path_for(&empty).unwrap();
        // A trailing slash names the same folder.
        partial_path_for(Path::new(&format!("{}/", empty.display()))).unwrap();

        let full = root.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("a.png"), b"x").unwrap();
        let error = format!("{:#}", partial_path_for(&full).unwrap_err());
        assert!(error.contains(&full.display().to_string()), "{error}");
        assert!(error.contains("not empty"), "{error}");

        let file = root.path().join("file");
        fs::write(&file, b"x").unwrap();
        let error = format!("{:#}", partial_path_for(&file).unwrap_err());
        assert!(error.contains("not a folder"), "{error}");

        let link = root.path().join("link");
        std::os::unix::fs::symlink(&empty, &link).unwrap();
        let error = format!("{:#}", partial_path_for(&link).unwrap_err());
        assert!(error.contains("symbolic link"), "{error}");

        assert!(partial_path_for(Path::new("..")).is_err());
    }

    #[test]
    fn a_partial_export_is_removed_unless_published() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("deep/out.partial-1");
        {
            let partial = Partial::create(path.clone()).unwrap();
            fs::write(partial.path.join("a.png"), b"x").unwrap();
        }
        assert!(!path.exists(), "dropped unpublished: removed");

        // A leftover of a killed export with the same pid is replaced.
        fs::create_dir(&path).unwrap();
        fs::write(path.join("old.png"), b"x").unwrap();
        let partial = Partial::create(path.clone()).unwrap();
        assert!(!path.join("old.png").exists());
        fs::write(partial.path.join("a.png"), b"x").unwrap();
        let target = root.path().join("deep/out");
        partial.publish(&target).unwrap();
        assert!(target.join("a.png").is_file());
        assert!(!path.exists());
    }

    #[test]
    fn files_are_never_overwritten() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a.png");
        write_new(&path, b"first").unwrap();
        let error = format!("{:#}", write_new(&path, b"second").unwrap_err());
        assert!(error.contains("a.png"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    fn class(label: Option<Label>, split: Option<&str>) -> Class {
        Class {
            label,
            split: split.map(String::from),
            split_dir: split.map(safe_name).unwrap_or_else(|| UNSPLIT.into()),
            label_dir: label.map(Label::as_str).unwrap_or(UNLABELLED),
        }
    }

    #[test]
    fn the_csv_has_a_row_per_face_with_empty_unknowns() {
        let fake = class(Some(Label::Fake), Some("train"));
        let unknown = class(None, None);
        let faces = vec![
            Exported {
                path: "train/FAKE/clips%2Fa%2Cb.mp4_000003.png".into(),
                video_id: "clips/a,b.mp4".into(),
                sample_index: 0,
                frame_index: 3,
                class: &fake,
                ssim_path: Some("ssim/train/FAKE/clips%2Fa%2Cb.mp4_000003.png".into()),
            },
            Exported {
                path: "unsplit/unlabelled/x.mp4_000000.png".into(),
                video_id: "x.mp4".into(),
                sample_index: 0,
                frame_index: 0,
                class: &unknown,
                ssim_path: None,
            },
        ];
        let stats = HashMap::from([("clips/a,b.mp4".to_string(), (Some(0.5), Some(0.25)))]);
        assert_eq!(
            metadata_csv(&faces, &stats),
            format!(
                "{HEADER}\n\
                 train/FAKE/clips%2Fa%2Cb.mp4_000003.png,\"clips/a,b.mp4\",3,train,FAKE,0.5,0.25,\
                 ssim/train/FAKE/clips%2Fa%2Cb.mp4_000003.png\n\
                 unsplit/unlabelled/x.mp4_000000.png,x.mp4,0,,,,,\n"
            )
        );
    }

    #[test]
    fn a_split_that_the_dataset_lacks_is_named() {
        let classes = HashMap::from([
            ("a".to_string(), class(Some(Label::Real), Some("train"))),
            ("b".to_string(), class(None, None)),
        ]);
        let all = wanted_splits(&classes, &[]).unwrap();
        assert_eq!(all, HashSet::from(["train".into(), UNSPLIT.into()]));
        let some = wanted_splits(&classes, &["unsplit".into()]).unwrap();
        assert_eq!(some, HashSet::from([UNSPLIT.to_string()]));
        let error = wanted_splits(&classes, &["tran".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--split tran"), "{error}");
        assert!(error.contains("train, unsplit"), "{error}");
    }
}
