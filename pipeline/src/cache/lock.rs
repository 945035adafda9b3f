//! One writer per workspace: an exclusive advisory lock on `<workspace>/lock`, released by the OS when
//! the holder exits, however it exits (a SIGKILLed run leaves no stale lock behind).
//!
//! The lock file is opened without following a symbolic link (`O_NOFOLLOW`): a link planted at
//! `lock` would otherwise have its target overwritten with the holder's name.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::CacheError;

/// Held while a run writes the workspace; dropping it releases the lock.
pub struct WorkspaceLock {
    _file: File,
}

impl WorkspaceLock {
    /// Takes the lock, or fails at once (`wait == false`) with a message naming the holder (pid
    /// and host), or blocks until the holder finishes (`wait == true`).
    pub fn acquire(path: &Path, wait: bool) -> Result<WorkspaceLock, CacheError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
        }
        let mut file = open_no_follow(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder_of(&mut file);
                if !wait {
                    return Err(CacheError::Locked(format!(
                        "another dfd run (or gc, or verify), {holder}, holds this workspace ({}); \
                         wait for it to finish, pass --wait, or use another --workspace",
                        path.display()
                    )));
                }
                tracing::info!("waiting for the workspace lock held by {holder}");
                file.lock().map_err(|e| CacheError::io(path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(CacheError::io(path, e)),
        }
        let stamp = format!("pid {} on {}", std::process::id(), host_name());
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(stamp.as_bytes()))
            .map_err(|e| CacheError::io(path, e))?;
        Ok(WorkspaceLock { _file: file })
    }
}

/// Opens (creating) the lock file, refusing a symbolic link or anything but a regular file.
fn open_no_follow(path: &Path) -> Result<File, CacheError> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(CacheError::Locked(format!(
                "the workspace lock {} is a symbolic link: dfd does not write through it; \
                 remove the link",
                path.display()
            )))
        }
        Err(e) => return Err(CacheError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| CacheError::io(path, e))?;
    if !meta.is_file() {
        return Err(CacheError::Locked(format!(
            "the workspace lock {} is not a regular file; remove it",
            path.display()
        )));
    }
    Ok(file)
}

fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
        _ => "pid unknown".into(),
    }
}

/// This machine's name, for the lock's holder line (a workspace on a shared disk can be locked
/// from another machine, where the pid alone means nothing).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("an unknown host ({})", io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_named_by_pid_and_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _held = WorkspaceLock::acquire(&path, false).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("pid {} on ", std::process::id())),
            "{text}"
        );
        assert!(text.len() > format!("pid {} on ", std::process::id()).len());
    }

    #[test]
    fn a_link_at_the_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let path = dir.path().join("lock");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = WorkspaceLock::acquire(&path, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }
}
