//! Writing files so that no reader ever sees half of one: write to a temporary name beside the target,
//! fsync, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What a temporary name adds to the final one, before the writer's pid.
const TEMP_MARK: &str = ".tmp-";

/// The temporary name a file is written under before its rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{TEMP_MARK}{}", std::process::id()));
    path.with_file_name(name)
}

/// True for a name [`temp_path`] made: `<name>.tmp-<pid>`. Under the workspace lock, any such file
/// is a leftover of a writer that died between writing and renaming.
pub fn is_temporary_name(name: &str) -> bool {
    name.rfind(TEMP_MARK)
        .is_some_and(|at| at > 0 && is_temporary_suffix(&name[at..]))
}

/// True for `.tmp-<pid>`.
pub fn is_temporary_suffix(suffix: &str) -> bool {
    suffix
        .strip_prefix(TEMP_MARK)
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Creates `path` for writing, failing if anything is there (`O_EXCL`: never through a link left
/// at a temporary name); a stale file of that name (this pid's, from a crashed earlier process)
/// is removed first.
pub fn create_fresh(path: &Path) -> io::Result<File> {
    let open = || OpenOptions::new().write(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}

/// Removes the temporaries (`<name>.tmp-<pid>`) directly inside `dir`, left by a writer killed
/// between writing and renaming; returns how many. The caller holds the workspace lock, so no
/// writer is at work. A `dir` that is a symbolic link or missing is left alone.
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<usize> {
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_file = entry.file_type().is_ok_and(|t| !t.is_dir());
        if is_file && is_temporary_name(&entry.file_name().to_string_lossy()) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Flushes a directory's entries (the renames inside it) to disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(path);
    {
        let mut file = create_fresh(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temp, path)?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A writer that counts and hashes what passes through it, so that a file's content hash costs no
/// second read.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the byte count and the hex sha256 of everything written.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        assert!(is_temporary_name("part-00001.parquet.tmp-4242"));
        assert!(is_temporary_name("_manifest.json.tmp-1"));
        assert!(!is_temporary_name("part-00001.parquet"));
        assert!(!is_temporary_name(".tmp-12"));
        assert!(!is_temporary_name("notes.tmp-draft"));
        assert!(is_temporary_suffix(".tmp-77"));
        assert!(!is_temporary_suffix(".tmp-"));
    }

    #[test]
    fn a_temporary_name_that_is_a_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let target = dir.path().join("out.json");
        std::os::unix::fs::symlink(&victim, temp_path(&target)).unwrap();
        write_file_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }
}
