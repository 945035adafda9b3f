//! Crash injection without any hook in `dfd` itself: a small C library preloaded into the `dfd`
//! process (`LD_PRELOAD`) that numbers every `rename` and every `unlink` the process makes, can log
//! them, and sends the process SIGKILL at the Nth one, before or after the call (or, to play a disk
//! that fills up, fails every rename from the Nth on with ENOSPC). Since it works on
//! the C library's calls, it runs the same against any build of `dfd`, including one from before a
//! fix, which is what lets a test show the bug first.
//!
//! Rust's `std::fs::rename` calls the C library's `rename`, and `std::fs::remove_file` /
//! `remove_dir_all` call `unlink` / `unlinkat`; OpenCV and FFmpeg do not rename or delete.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long renames, unlinks;

static void note(const char *kind, long n, const char *a, const char *b) {
    const char *log = getenv("DFD_FAULT_LOG");
    if (!log) return;
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    dprintf(fd, "%s\t%ld\t%s\t%s\n", kind, n, a, b ? b : "");
    close(fd);
}

static void maybe_kill(const char *var, long n) {
    const char *v = getenv(var);
    if (v && atol(v) == n) kill(getpid(), SIGKILL);
}

static int disk_full(long n) {
    const char *v = getenv("DFD_FAULT_ENOSPC_FROM_RENAME");
    return v && n >= atol(v);
}

#define RENAME_BODY(CALL, FROM, TO)                                   \
    long n = __atomic_add_fetch(&renames, 1, __ATOMIC_SEQ_CST);       \
    note("rename", n, FROM, TO);                                      \
    maybe_kill("DFD_FAULT_KILL_BEFORE_RENAME", n);                    \
    if (disk_full(n)) { errno = ENOSPC; return -1; }                  \
    int r = CALL;                                                     \
    maybe_kill("DFD_FAULT_KILL_AFTER_RENAME", n);                     \
    return r;

#define UNLINK_BODY(CALL, PATH)                                       \
    long n = __atomic_add_fetch(&unlinks, 1, __ATOMIC_SEQ_CST);       \
    note("unlink", n, PATH, 0);                                       \
    maybe_kill("DFD_FAULT_KILL_BEFORE_UNLINK", n);                    \
    return CALL;

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "rename");
    RENAME_BODY(real(from, to), from, to)
}

int renameat(int fd1, const char *from, int fd2, const char *to) {
    static int (*real)(int, const char *, int, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "renameat");
    RENAME_BODY(real(fd1, from, fd2, to), from, to)
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags) {
    static int (*real)(int, const char *, int, const char *, unsigned int);
    if (!real) real = dlsym(RTLD_NEXT, "renameat2");
    RENAME_BODY(real(fd1, from, fd2, to, flags), from, to)
}

int unlink(const char *path) {
    static int (*real)(const char *);
    if (!real) real = dlsym(RTLD_NEXT, "unlink");
    UNLINK_BODY(real(path), path)
}

int unlinkat(int fd, const char *path, int flags) {
    static int (*real)(int, const char *, int);
    if (!real) real = dlsym(RTLD_NEXT, "unlinkat");
    UNLINK_BODY(real(fd, path, flags), path)
}
"#;

/// The compiled library, built once per test process (the Rust toolchain's own linker, `cc`,
/// compiles it).
pub fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dfd-fault-shim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("shim folder");
        let source = dir.join("shim.c");
        let library = dir.join("shim.so");
        std::fs::write(&source, SOURCE).expect("write shim.c");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&library)
            .arg(&source)
            .arg("-ldl")
            .output()
            .expect("cc (the Rust toolchain's linker) compiles the fault shim");
        assert!(
            out.status.success(),
            "cannot compile the fault shim: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        library
    })
}

/// When the preloaded library kills the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never: only log.
    None,
    /// At the Nth rename (1-based), before it happens.
    BeforeRename(usize),
    /// Right after the Nth rename.
    AfterRename(usize),
    /// At the Nth unlink, before it happens.
    BeforeUnlink(usize),
    /// Not a kill: from the Nth rename on, every rename fails with ENOSPC, as on a disk that
    /// has just filled up.
    DiskFullFromRename(usize),
}

/// Sets `command` up to run with the shim: logging every rename and unlink to `log` (when given)
/// and killed at `fault`.
pub fn inject(command: &mut Command, fault: Fault, log: Option<&Path>) {
    command.env("LD_PRELOAD", shim());
    if let Some(log) = log {
        command.env("DFD_FAULT_LOG", log);
    }
    let (var, n) = match fault {
        Fault::None => return,
        Fault::BeforeRename(n) => ("DFD_FAULT_KILL_BEFORE_RENAME", n),
        Fault::AfterRename(n) => ("DFD_FAULT_KILL_AFTER_RENAME", n),
        Fault::BeforeUnlink(n) => ("DFD_FAULT_KILL_BEFORE_UNLINK", n),
        Fault::DiskFullFromRename(n) => ("DFD_FAULT_ENOSPC_FROM_RENAME", n),
    };
    command.env(var, n.to_string());
}

/// One logged call: `rename` or `unlink`, its number among calls of its kind, and its paths.
#[derive(Debug, Clone)]
pub struct Call {
    pub kind: String,
    pub number: usize,
    pub from: String,
    pub to: String,
}

/// The calls a shimmed process logged, in order.
pub fn read_log(log: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            Some(Call {
                kind: parts.next()?.to_string(),
                number: parts.next()?.parse().ok()?,
                from: parts.next()?.to_string(),
                to: parts.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}
