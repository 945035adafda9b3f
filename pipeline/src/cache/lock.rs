//! Who may write a workspace: advisory `flock` locks, released by the OS when the holder exits,
//! however it exits (a SIGKILLed run leaves no stale lock behind: a dead holder's lock is simply
//! free, and the name left in the file means nothing).
//!
//! - `<workspace>/lock`, exclusive: a plain `dfd run`, `gc`, `verify` (they may rewrite or delete
//!   anything); shared: the tasks of an array job (`dfd run --shard`), which write only their own
//!   shards, so many run side by side while none of them can run during `gc`.
//! - `<workspace>/shards/<stage>/<key>.lock`, exclusive, held by an array task while it computes
//!   that shard ([`ShardLock`]): a second writer of the same shard waits, then finds it filed.
//! - `<workspace>/locks/<stage>.lock`, exclusive: the one array task computing a whole-table stage
//!   (`ingest`) while the others wait and then take its output.
//!
//! A holder writes its name as `pid N on HOST`: on a workspace shared by several machines the pid
//! alone means nothing. On a shared filesystem this relies on `flock` working across machines
//! (NFSv4 maps it to byte-range locks; Lustre needs `-o flock`, BeeGFS `tuneUseGlobalFileLocks`).
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
    /// Takes the lock alone, or fails at once (`wait == false`) with a message naming the holder
    /// (pid and host), or blocks until the holder finishes (`wait == true`).
    pub fn acquire(path: &Path, wait: bool) -> Result<WorkspaceLock, CacheError> {
        let file = take(path, Kind::Exclusive, wait, |holder| {
            format!(
                "another dfd run (or gc, or verify, or an array task), {holder}, holds this \
                 workspace ({}); wait for it to finish, pass --wait, or use another --workspace",
                path.display()
            )
        })?;
        Ok(WorkspaceLock { _file: file })
    }

    /// Takes the lock beside other array tasks (`dfd run --shard`): refused, or waited for, only
    /// while a plain run, `gc` or `verify` holds it.
    pub fn acquire_shared(path: &Path, wait: bool) -> Result<WorkspaceLock, CacheError> {
        let file = take(path, Kind::Shared, wait, |holder| {
            format!(
                "a dfd run, gc or verify, {holder}, holds this workspace ({}) alone; an array \
                 task waits for it with --wait",
                path.display()
            )
        })?;
        Ok(WorkspaceLock { _file: file })
    }
}

/// Held by the one process computing a shard of a stage (or a whole-table stage) in an array job;
/// dropping it releases the lock.
pub struct ShardLock {
    _file: File,
}

impl ShardLock {
    /// Takes the lock at `path` for `what` (a shard's name, for messages), waiting for another
    /// holder (`wait == true`) or refusing with a message naming it.
    pub fn acquire(path: &Path, what: &str, wait: bool) -> Result<ShardLock, CacheError> {
        let file = take(path, Kind::Exclusive, wait, |holder| {
            format!(
                "{what} is being written by {holder} ({}); two array tasks were given the same \
                 share",
                path.display()
            )
        })?;
        Ok(ShardLock { _file: file })
    }
}

/// Removes the lock file at `path` if no process holds its lock (for `gc`: shard and stage locks
/// are left behind by every task that took them, and are never needed again once free); returns
/// whether it was free. The file is removed while this process holds its lock, so a holder is
/// never robbed of it. A waiter that opened the file before it was removed could still lock the
/// removed file beside a newcomer on a fresh one, which is why `gc` calls this only while it holds
/// the workspace lock alone (no array task, hence no shard writer, runs meanwhile). With `dry_run`
/// the file is only tried. A symbolic link or anything but a regular file is left alone (false).
pub fn remove_if_free(path: &Path, dry_run: bool) -> Result<bool, CacheError> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
        Err(e) => return Err(CacheError::io(path, e)),
    };
    if !file
        .metadata()
        .map_err(|e| CacheError::io(path, e))?
        .is_file()
    {
        return Ok(false);
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(e)) => return Err(CacheError::io(path, e)),
    }
    if !dry_run {
        fs::remove_file(path).map_err(|e| CacheError::io(path, e))?;
    }
    Ok(true)
}

/// Whether process `pid` is alive on this machine (`kill(pid, 0)`: a process of another user
/// answers EPERM, and counts as alive). Only meaningful for a pid recorded on this host.
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exclusive,
    Shared,
}

/// Takes the lock of `kind` on `path` (created, with its folder, if missing), writing the
/// holder's name into it; `refused` makes the message when it is held and `wait` is false.
fn take(
    path: &Path,
    kind: Kind,
    wait: bool,
    refused: impl Fn(&str) -> String,
) -> Result<File, CacheError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
    }
    let mut file = open_no_follow(path)?;
    let tried = match kind {
        Kind::Exclusive => file.try_lock(),
        Kind::Shared => file.try_lock_shared(),
    };
    match tried {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder_of(&mut file);
            if !wait {
                return Err(CacheError::Locked(refused(&holder)));
            }
            tracing::info!("waiting for {} held by {holder}", path.display());
            match kind {
                Kind::Exclusive => file.lock(),
                Kind::Shared => file.lock_shared(),
            }
            .map_err(|e| CacheError::io(path, e))?;
        }
        Err(TryLockError::Error(e)) => return Err(CacheError::io(path, e)),
    }
    // Shared holders all write their name: the last one's stays, which is enough for a message.
    let stamp = holder_stamp();
    file.set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(stamp.as_bytes()))
        .map_err(|e| CacheError::io(path, e))?;
    Ok(file)
}

/// How a lock holder is named: pid and host.
pub fn holder_stamp() -> String {
    format!("pid {} on {}", std::process::id(), host_name())
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
pub fn host_name() -> String {
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
    fn array_tasks_share_the_workspace_lock_and_exclude_a_plain_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = WorkspaceLock::acquire_shared(&path, false).unwrap();
        let second = WorkspaceLock::acquire_shared(&path, false).unwrap();
        let err = WorkspaceLock::acquire(&path, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("holds this workspace"), "{err}");
        drop((first, second));
        let alone = WorkspaceLock::acquire(&path, false).unwrap();
        let err = WorkspaceLock::acquire_shared(&path, false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(alone);
    }

    #[test]
    fn a_second_writer_of_a_shard_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shards/crop/k.lock");
        let held = ShardLock::acquire(&path, "crop shard 3", false).unwrap();
        let err = ShardLock::acquire(&path, "crop shard 3", false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("crop shard 3 is being written by pid"),
            "{err}"
        );
        assert!(err.contains(&host_name()), "{err}");
        drop(held);
        // The name a gone holder left in the file does not hold the lock.
        assert!(fs::read_to_string(&path).unwrap().starts_with("pid "));
        ShardLock::acquire(&path, "crop shard 3", false).unwrap();
    }

    #[test]
    fn only_a_free_lock_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shards/crop/k.lock");
        let held = ShardLock::acquire(&path, "crop shard 3", false).unwrap();
        assert!(!remove_if_free(&path, false).unwrap());
        assert!(path.is_file());
        drop(held);
        assert!(remove_if_free(&path, true).unwrap());
        assert!(path.is_file(), "a dry run removes nothing");
        assert!(remove_if_free(&path, false).unwrap());
        assert!(!path.exists());
        assert!(!remove_if_free(&path, false).unwrap());
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        assert!(!process_alive(0));
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
