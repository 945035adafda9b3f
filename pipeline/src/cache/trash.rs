//! Deleting a cache folder so that no one ever sees half of it: the folder first leaves the cache
//! by one rename into `<workspace>/trash/`, then its manifest goes, then the rest. A process killed
//! midway leaves either the whole output in the cache or a folder in `trash/` that no command
//! reads, and that the next `run` or `gc` empties.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::atomic::fsync_dir;
use super::manifest::Manifest;
use super::{CacheError, Workspace};

/// Moves `dir` (a folder under `cache/<stage>/`) into the trash; returns its new path.
pub fn move_in(workspace: &Workspace, dir: &Path) -> Result<PathBuf, CacheError> {
    static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
    let trash = workspace.trash_dir();
    fs::create_dir_all(&trash).map_err(|e| CacheError::io(&trash, e))?;
    let stage = dir
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = trash.join(format!(
        "{stage}-{name}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    fs::rename(dir, &target).map_err(|e| CacheError::io(dir, e))?;
    if let Some(parent) = dir.parent() {
        fsync_dir(parent).map_err(|e| CacheError::io(parent, e))?;
    }
    Ok(target)
}

/// Deletes a folder of the trash: its manifest first, then everything else (symbolic links are
/// removed, never followed).
pub fn delete(dir: &Path) -> Result<(), CacheError> {
    let is_dir = fs::symlink_metadata(dir)
        .map_err(|e| CacheError::io(dir, e))?
        .is_dir();
    if !is_dir {
        // A link or a file: only the entry itself goes.
        return fs::remove_file(dir).map_err(|e| CacheError::io(dir, e));
    }
    let manifest = dir.join(Manifest::FILE);
    match fs::remove_file(&manifest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CacheError::io(&manifest, e)),
    }
    fs::remove_dir_all(dir).map_err(|e| CacheError::io(dir, e))
}

/// Takes `dir` out of the cache and deletes it.
pub fn discard(workspace: &Workspace, dir: &Path) -> Result<(), CacheError> {
    let moved = move_in(workspace, dir)?;
    delete(&moved)
}

/// Deletes whatever an interrupted deletion left in the trash; returns how many entries it held.
/// The caller holds the workspace lock.
pub fn empty(workspace: &Workspace) -> Result<usize, CacheError> {
    let trash = workspace.trash_dir();
    let meta = match fs::symlink_metadata(&trash) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CacheError::io(&trash, e)),
    };
    if !meta.is_dir() {
        // Not ours to empty (a link or a file someone put there): leave it.
        tracing::warn!("{} is not a folder; left alone", trash.display());
        return Ok(0);
    }
    let mut count = 0;
    for entry in fs::read_dir(&trash).map_err(|e| CacheError::io(&trash, e))? {
        let entry = entry.map_err(|e| CacheError::io(&trash, e))?;
        delete(&entry.path())?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discarded_output_leaves_the_cache_in_one_step_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::new(dir.path());
        let output = workspace.output_dir("decode", "0123456789abcdef0123");
        fs::create_dir_all(output.join("frames")).unwrap();
        fs::write(output.join(Manifest::FILE), b"{}").unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), output.join("frames/link")).unwrap();

        let moved = move_in(&workspace, &output).unwrap();
        assert!(!output.exists());
        assert!(moved.join(Manifest::FILE).is_file());
        assert_eq!(empty(&workspace).unwrap(), 1);
        assert!(!moved.exists());
        assert!(outside.path().join("keep").is_file());
    }
}
