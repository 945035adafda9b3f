//! One writer per workspace: an exclusive advisory lock on `<workspace>/lock`, released by the OS when
//! the holder exits, however it exits (a SIGKILLed run leaves no stale lock behind).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::CacheError;

/// Held while a run writes the workspace; dropping it releases the lock.
pub struct WorkspaceLock {
    _file: File,
}

impl WorkspaceLock {
    /// Takes the lock, or fails at once (`wait == false`) with a message naming the holder, or
    /// blocks until the holder finishes (`wait == true`).
    pub fn acquire(path: &Path, wait: bool) -> Result<WorkspaceLock, CacheError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| CacheError::io(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder_of(&mut file);
                if !wait {
                    return Err(CacheError::Locked(format!(
                        "another dfd run ({holder}) is writing this workspace ({}); wait for it to \
                         finish, pass --wait, or use another --workspace",
                        path.display()
                    )));
                }
                tracing::info!("waiting for the workspace lock held by {holder}");
                file.lock().map_err(|e| CacheError::io(path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(CacheError::io(path, e)),
        }
        let stamp = format!("pid {}", std::process::id());
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(stamp.as_bytes()))
            .map_err(|e| CacheError::io(path, e))?;
        Ok(WorkspaceLock { _file: file })
    }
}

fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
        _ => "pid unknown".into(),
    }
}
