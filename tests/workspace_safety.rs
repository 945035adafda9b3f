//! dfd deletes and overwrites only what it made: `gc` and `run` refuse a folder that is not a dfd
//! workspace (a workspace of an earlier dfd is recognised and marked); the lock is never written
//! through a link.

use std::path::Path;

use dfd_tests::{dfd_at, Dataset, Dfd};

fn two_clips() -> Dataset {
    Dataset::new()
        .clip("talking.mp4", "single_face.mp4", "REAL")
        .clip("short.mp4", "carphone_pristine.mp4", "FAKE")
        .write()
}

/// A user's folder with a file in it, under `root`.
fn user_folder(root: &Path, relative: &str) -> std::path::PathBuf {
    let dir = root.join(relative);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), b"the user's").unwrap();
    dir
}

#[test]
fn gc_refuses_a_folder_that_is_not_a_dfd_workspace() {
    // `--workspace /var` would have emptied /var/cache/apt/archives.
    let root = tempfile::tempdir().unwrap();
    let apt = user_folder(root.path(), "cache/apt/archives");
    user_folder(root.path(), "lib");
    let out = dfd_at(root.path(), &["gc"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gc acted on a foreign folder");
    assert!(stderr.contains("not a dfd workspace"), "{stderr}");
    assert!(apt.join("precious.txt").is_file());
    assert!(
        !root.path().join("lock").exists(),
        "nothing is written there"
    );
    // Nor does a run take it over.
    let data = two_clips();
    let out = dfd_at(
        root.path(),
        &["run", "--dataset", data.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(!root.path().join("runs").exists());
}

#[test]
fn a_workspace_of_the_old_layout_is_recognised_and_marked() {
    let data = two_clips();
    let dfd = Dfd::new();
    dfd.ok(&["run", "--dataset", data.path().to_str().unwrap()]);
    let ws = dfd.workspace.path();
    // As an older dfd left it: no marker file.
    let _ = std::fs::remove_file(ws.join(".dfd-workspace"));
    dfd.ok(&["gc", "--dry-run"]);
    assert!(ws.join(".dfd-workspace").is_file());
}

#[test]
fn a_lock_that_is_a_link_is_refused_not_written_through() {
    let data = two_clips();
    let dfd = Dfd::new();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim.txt");
    std::fs::write(&victim, b"the user's").unwrap();
    std::os::unix::fs::symlink(&victim, dfd.workspace.path().join("lock")).unwrap();
    let err = dfd.fails(&["run", "--dataset", data.path().to_str().unwrap()]);
    assert!(err.contains("lock"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the user's");
    let err = dfd.fails(&["gc"]);
    assert!(err.contains("lock"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the user's");
}
