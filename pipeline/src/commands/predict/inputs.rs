//! The arguments of `dfd predict` turned into the videos to predict: folders walked for video
//! files, each video named as a user would type it, and a `videos` row per readable file or the
//! reason it has none.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use dfd_schemas::VideoRow;

use super::SPLIT;

/// The extensions (compared case-insensitively) a file found in a folder must have to be
/// predicted: the containers of DFDC and the usual phone and web exports. Files named on the
/// command line are predicted whatever their extension, since the user chose them.
pub const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "avi", "mov", "mkv", "webm", "m4v"];

/// One video to answer for: its answer's name, and its `videos` row or why it has none.
pub struct Input {
    pub id: String,
    pub row: Result<VideoRow, String>,
}

/// The videos of `arguments`, in order: a file as given, a folder's video files in path order
/// (the same on every machine, whatever order the file system lists them in). A name given twice
/// (a file named and also found in a folder, a folder given twice) gets `#2`, `#3`.
pub fn inputs(arguments: &[PathBuf]) -> Vec<Input> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut inputs = Vec::new();
    for argument in arguments {
        for (path, unusable) in expand(argument) {
            let given = path.display().to_string();
            let count = seen.entry(given.clone()).or_insert(0);
            *count += 1;
            let id = if *count == 1 {
                given
            } else {
                format!("{given}#{count}")
            };
            let row = match unusable {
                Some(error) => Err(error),
                None => {
                    regular_file(&path).map(|(resolved, meta)| video_row(&id, &resolved, &meta))
                }
            };
            inputs.push(Input { id, row });
        }
    }
    inputs
}

/// One argument as the paths it stands for: itself unless it is a folder, else the video files
/// under it, each with why it cannot be read where that is already known. A folder without any
/// gets an answer of its own, so that every argument is answered at least once (a mistyped
/// folder is then an `error` line, not silence).
fn expand(argument: &Path) -> Vec<(PathBuf, Option<String>)> {
    if !std::fs::metadata(argument).is_ok_and(|m| m.is_dir()) {
        // A file, or whatever `regular_file` will name (missing, a device, a FIFO).
        return vec![(argument.to_path_buf(), None)];
    }
    let found = walk(argument);
    if found.is_empty() {
        let error = format!(
            "{}: a folder with no video files ({}) in it",
            argument.display(),
            VIDEO_EXTENSIONS.join(", ")
        );
        return vec![(argument.to_path_buf(), Some(error))];
    }
    found
}

/// The video files under `root` (see `VIDEO_EXTENSIONS`), recursively, sorted by path, each
/// joined to `root` as given; a subfolder that cannot be listed is an entry with its error, so
/// that the rest of the folder is still predicted. Hidden entries (a name starting with `.`: an
/// editor's swap file, `.git`, macOS's `._` resource forks, which carry a video's extension) are
/// skipped. A link is followed to a file but never into a folder, so a link loop cannot make the
/// walk endless.
fn walk(root: &Path) -> Vec<(PathBuf, Option<String>)> {
    let mut found: Vec<(PathBuf, Option<String>)> = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) => {
                let error = format!("{}: cannot list the folder: {e}", folder.display());
                found.push((folder, Some(error)));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let error = format!("{}: cannot list the folder: {e}", folder.display());
                    found.push((folder.clone(), Some(error)));
                    break;
                }
            };
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = folder.join(&name);
            // `file_type` does not follow links: a link to a folder is not walked into.
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(path),
                Ok(_) if is_video_name(&name) => found.push((path, None)),
                Ok(_) => {}
                Err(e) => {
                    let error = format!("{}: cannot read: {e}", path.display());
                    found.push((path, Some(error)));
                }
            }
        }
    }
    // `Path` orders component by component, so a folder's files stay together.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Whether a file name has one of `VIDEO_EXTENSIONS`, in any case.
fn is_video_name(name: &OsStr) -> bool {
    Path::new(name)
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|ext| VIDEO_EXTENSIONS.iter().any(|v| ext.eq_ignore_ascii_case(v)))
}

/// The `videos` row of the readable file `resolved`, named `id`.
fn video_row(id: &str, resolved: &Path, meta: &std::fs::Metadata) -> VideoRow {
    VideoRow {
        video_id: id.to_owned(),
        path: resolved.display().to_string(),
        label: None,
        split: Some(SPLIT.into()),
        original: None,
        group: id.to_owned(),
        size_bytes: meta.len(),
        modified_ms: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64),
    }
}

/// The file's absolute path and metadata (a link to a file is followed), or why it cannot be a
/// video.
fn regular_file(video: &Path) -> Result<(PathBuf, std::fs::Metadata), String> {
    let shown = video.display();
    let meta = std::fs::metadata(video).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: no such file"),
        _ => format!("{shown}: cannot read: {e}"),
    })?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        let path = video
            .canonicalize()
            .map_err(|e| format!("{shown}: cannot resolve: {e}"))?;
        return Ok((path, meta));
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(format!("{shown}: is {what}, not a video file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_gives_its_videos_in_path_order_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for folder in ["b", "a", ".hidden"] {
            std::fs::create_dir(root.join(folder)).unwrap();
        }
        for file in [
            "z.MP4",
            "a.mp4",
            "notes.txt",
            ".a.mp4",
            "b/clip.webm",
            "a/clip.mov",
            ".hidden/x.mp4",
            "noext",
        ] {
            std::fs::write(root.join(file), b"x").unwrap();
        }
        let names: Vec<String> = inputs(&[root.to_path_buf()])
            .iter()
            .map(|i| {
                assert!(i.row.is_ok(), "{}", i.id);
                i.id.strip_prefix(&root.display().to_string())
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["/a/clip.mov", "/a.mp4", "/b/clip.webm", "/z.MP4"]);
    }

    #[test]
    fn an_empty_folder_and_a_repeat_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("empty")).unwrap();
        std::fs::write(root.join("a.txt"), b"x").unwrap();
        let empty = root.join("empty");
        let file = root.join("a.txt");
        let got = inputs(&[empty.clone(), file.clone(), file.clone()]);
        let ids: Vec<&str> = got.iter().map(|i| i.id.as_str()).collect();
        let file = file.display().to_string();
        assert_eq!(
            ids,
            [
                empty.display().to_string(),
                file.clone(),
                format!("{file}#2")
            ]
        );
        assert!(got[0]
            .row
            .as_ref()
            .is_err_and(|e| e.contains("no video files")));
        // A file named explicitly is predicted whatever its extension.
        assert!(got[1].row.is_ok() && got[2].row.is_ok());
    }
}
