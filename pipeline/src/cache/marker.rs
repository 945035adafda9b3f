//! `<workspace>/.dfd-workspace`: the mark of a folder dfd made. The commands that write or delete in
//! a workspace (`run`, `gc`, `verify`) act only on a marked folder, so a mistyped `--workspace`
//! (say `/var`, whose `cache/` holds other programs' files) is refused before anything is touched.
//!
//! A missing or empty folder becomes a workspace. A folder that an earlier dfd made, before the
//! marker existed, is recognised by its layout (the lock file or run records, and nothing but
//! dfd's own entries beside them) and marked, so existing users are not locked out.

use std::fs;
use std::io;
use std::path::Path;

use super::atomic::{is_temporary_name, write_file_atomic};
use super::{CacheError, Workspace};

/// The marker's file name.
pub const MARKER: &str = ".dfd-workspace";

const MARKER_TEXT: &str = "This folder is a dfd workspace: its cache, run records and report. \
dfd run, gc and verify write and delete only in folders that carry this file.\n";

/// Entries a workspace made by an earlier dfd may hold.
const LAYOUT: &[&str] = &[
    "cache", "runs", "scratch", "report", "trash", "lock", "shards", MARKER,
];

/// Whether a command may create the workspace when it does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Yes,
    No,
}

/// Makes sure `workspace` is a folder dfd may write in: creates and marks it if missing or empty
/// (with `Create::Yes`), marks one of the old layout, and refuses anything else.
pub fn claim(workspace: &Workspace, create: Create) -> Result<(), CacheError> {
    let root = workspace.root();
    let marker = root.join(MARKER);
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(CacheError::NotAWorkspace(format!(
                "{} is not a folder, so not a dfd workspace",
                root.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && create == Create::Yes => {
            fs::create_dir_all(root).map_err(|e| CacheError::io(root, e))?;
            return mark(&marker);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CacheError::NotAWorkspace(format!(
                "{} does not exist: there is no dfd workspace there",
                root.display()
            )))
        }
        Err(e) => return Err(CacheError::io(root, e)),
    }
    if fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let names = entry_names(root)?;
    // Leftovers of a marker write that died before its rename.
    let (leftovers, names): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| n.starts_with(MARKER) && is_temporary_name(n));
    for name in leftovers {
        // Another process of this host still writing it (array tasks starting together on a
        // new workspace) keeps it; its rename makes the same marker as ours.
        if writer_alive(&name) {
            continue;
        }
        let path = root.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(CacheError::io(&path, e)),
            _ => {}
        }
    }
    if names.is_empty() || is_old_layout(&names) {
        if !names.is_empty() {
            tracing::info!(
                "{}: a workspace of an earlier dfd; marked with {MARKER}",
                root.display()
            );
        }
        return mark(&marker);
    }
    let mut shown: Vec<&str> = names.iter().map(String::as_str).take(6).collect();
    if names.len() > shown.len() {
        shown.push("...");
    }
    Err(CacheError::NotAWorkspace(format!(
        "{} is not a dfd workspace (no {MARKER} file, and it holds {}): refusing to write or \
         delete anything in it; pick another --workspace, or, if it really is one, create the \
         file {}",
        root.display(),
        shown.join(", "),
        marker.display()
    )))
}

/// A workspace as earlier versions left it: a lock file or run records, and only dfd's entries.
fn is_old_layout(names: &[String]) -> bool {
    let ours = names.iter().all(|n| LAYOUT.contains(&n.as_str()));
    let made_by_dfd = names.iter().any(|n| n == "lock" || n == "runs");
    ours && made_by_dfd
}

fn entry_names(root: &Path) -> Result<Vec<String>, CacheError> {
    let read = fs::read_dir(root).map_err(|e| CacheError::io(root, e))?;
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| CacheError::io(root, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn mark(marker: &Path) -> Result<(), CacheError> {
    write_file_atomic(marker, MARKER_TEXT.as_bytes()).map_err(|e| CacheError::io(marker, e))
}

/// Whether the process whose pid ends the temporary name `name` (`.tmp-<pid>`) is alive here.
fn writer_alive(name: &str) -> bool {
    let Some(pid) = name
        .rsplit('-')
        .next()
        .and_then(|p| p.parse::<libc::pid_t>().ok())
    else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_folders_become_workspaces() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Workspace::new(dir.path().join("new"));
        assert!(claim(&missing, Create::No).is_err());
        claim(&missing, Create::Yes).unwrap();
        assert!(missing.root().join(MARKER).is_file());
        claim(&Workspace::new(dir.path()), Create::No).unwrap_err();
        let empty = Workspace::new(dir.path().join("empty"));
        fs::create_dir(empty.root()).unwrap();
        claim(&empty, Create::No).unwrap();
        assert!(empty.root().join(MARKER).is_file());
    }

    #[test]
    fn an_old_workspace_is_marked_and_a_foreign_folder_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = Workspace::new(dir.path().join("old"));
        fs::create_dir_all(old.root().join("cache/decode")).unwrap();
        fs::create_dir_all(old.root().join("runs")).unwrap();
        fs::write(old.root().join("lock"), b"pid 1").unwrap();
        claim(&old, Create::No).unwrap();
        assert!(old.root().join(MARKER).is_file());

        let var = Workspace::new(dir.path().join("var"));
        fs::create_dir_all(var.root().join("cache/apt/archives")).unwrap();
        fs::create_dir_all(var.root().join("lib")).unwrap();
        let err = claim(&var, Create::Yes).unwrap_err().to_string();
        assert!(err.contains("not a dfd workspace"), "{err}");
        assert!(!var.root().join(MARKER).exists());
        // A cache/ folder alone is not enough: dfd always leaves its lock file.
        fs::remove_dir_all(var.root().join("lib")).unwrap();
        assert!(claim(&var, Create::Yes).is_err());
    }
}
