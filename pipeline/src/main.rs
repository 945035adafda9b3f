fn main() -> std::process::ExitCode {
    return_large_buffers_to_the_system();
    dfd_pipeline::cli::main()
}

/// Makes glibc serve every allocation of 1 MiB or more by its own `mmap`, given back on `free`.
///
/// Why: a streamed pass allocates and frees raw frames of several megabytes (6 MB at 1080p) over
/// and over on several threads. glibc's default raises its mmap threshold to the size of the
/// largest block freed, after which such frames come from the per-thread heaps, which keep the
/// memory after `free`: measured on 16 1080p clips, peak RSS 870 MB with the default and 690 MB
/// with this, for the same work and time within noise.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called first thing, before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
