//! Building the dataset out of sight and moving it into place by renames, so that `out` never holds
//! half a dataset, and never loses a folder the generator did not write.
//!
//! The one folder the generator replaces is one it wrote itself: a demo set carries its
//! [`FINGERPRINT`] file. Any other non-empty folder (a user's dataset with its own `metadata.json`,
//! a home directory given by mistake) is refused, with or without `--force`.

use std::path::{Path, PathBuf};

use crate::error::{io, DemoError, Result};
use crate::FINGERPRINT;

/// A hidden sibling folder the dataset is built in; removed if the build fails before
/// [`Staging::commit`] moves it into place.
pub struct Staging {
    path: PathBuf,
    committed: bool,
}

impl Staging {
    /// Refuses an `out` that exists, is not empty and is not a demo set; clears staging folders
    /// left by earlier builds that were killed (their process is gone).
    pub fn new(out: &Path) -> Result<Staging> {
        check_replaceable(out)?;
        let (parent, name) = split_out(out)?;
        std::fs::create_dir_all(&parent)
            .map_err(io(format!("cannot create {}", parent.display())))?;
        remove_stale_siblings(&parent, &name);
        let path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(io(format!("cannot clear {}", path.display())))?;
        }
        std::fs::create_dir(&path).map_err(io(format!("cannot create {}", path.display())))?;
        Ok(Staging {
            path,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished dataset to `out` by renames only: the old one (if any) aside, the new
    /// one in, the old one deleted. At no moment does `out` hold a mix of the two.
    pub fn commit(mut self, out: &Path) -> Result<()> {
        check_replaceable(out)?;
        let (parent, name) = split_out(out)?;
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        if out.exists() {
            std::fs::rename(out, &old)
                .map_err(io(format!("cannot move the old {} aside", out.display())))?;
        }
        std::fs::rename(&self.path, out).map_err(io(format!(
            "cannot move the dataset into {}",
            out.display()
        )))?;
        self.committed = true;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(format!(
                "cannot delete the old dataset {}",
                old.display()
            )))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover hidden folder is harmless (the next build clears it), and the
            // error being reported matters more.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `out` may be replaced when it does not exist, is an empty folder, or holds a demo set (its
/// fingerprint file). A symlink is never replaced: the rename would drop the link, not its target.
fn check_replaceable(out: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(DemoError::Refused(format!(
            "{} exists and is not a folder: refusing to replace it",
            out.display()
        )));
    }
    if out.join(FINGERPRINT).is_file() {
        return Ok(());
    }
    let empty = std::fs::read_dir(out)
        .map_err(io(format!("cannot read {}", out.display())))?
        .next()
        .is_none();
    if empty {
        Ok(())
    } else {
        Err(DemoError::Refused(format!(
            "{} is not empty and was not written by `dfd demo-data` (no {FINGERPRINT} in it): \
             refusing to replace it; choose another --out",
            out.display()
        )))
    }
}

/// `out`'s parent folder (`.` for a bare name) and its file name.
fn split_out(out: &Path) -> Result<(PathBuf, String)> {
    let name = out
        .file_name()
        .ok_or_else(|| DemoError::Refused(format!("--out {} has no folder name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    Ok((parent.unwrap_or(Path::new(".")).to_path_buf(), name))
}

/// Deletes `.{name}.partial-PID` and `.{name}.old-PID` folders whose process no longer runs.
fn remove_stale_siblings(parent: &Path, name: &str) {
    let Ok(listing) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in listing.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = [".partial-", ".old-"]
            .iter()
            .find_map(|tag| file.strip_prefix(&format!(".{name}{tag}")))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                // Best effort, as in Drop: a folder that cannot go now goes next time.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absent_empty_or_demo_folders_are_replaced() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("data");
        assert!(check_replaceable(&out).is_ok());
        std::fs::create_dir(&out).unwrap();
        assert!(check_replaceable(&out).is_ok());
        std::fs::write(out.join("metadata.json"), "{}").unwrap();
        let refused = check_replaceable(&out).unwrap_err().to_string();
        assert!(
            refused.contains("not written by `dfd demo-data`"),
            "{refused}"
        );
        std::fs::write(out.join(FINGERPRINT), "{}").unwrap();
        assert!(check_replaceable(&out).is_ok());
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&out, &link).unwrap();
        assert!(check_replaceable(&link).is_err());
    }
}
