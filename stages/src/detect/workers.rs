//! The threads detection runs on, at a lower priority than decoding.
//!
//! In a streamed pass, `detect` starts on a video's frames while `decode` is still reading it (see
//! [`super::early`]). The decoder is the pass's critical path: FFmpeg's frame threads wait on each
//! other, frame after frame, so each time a detection took the core one of them needed, the whole
//! chain waited. On 2 cores, with `detect.max_pnet_side = 320`, a 1080p clip's decoding took
//! 0.73-0.87 s beside its detections; with the detections at niceness 10, 0.67-0.70 s. Detection
//! has the slack (every frame of that clip is detected by the time decoding ends): at a higher
//! niceness it takes the cores when the decoder leaves them. Whole runs against the binary before
//! (detection on the runner's workers; `farm-bench`, paired): 0.97x with `max_pnet_side = 320`
//! (25 pairs), 0.98x at 640x360 (21 pairs), no change at 1080p (1.02x, 21 pairs, within the
//! noise). The detections are the same on any thread.
//!
//! Niceness is per thread on Linux, and a thread may raise it but not lower it back, so detection
//! gets threads of its own (a rayon pool, as many as the runner's workers) rather than changing
//! the runner's workers, which also decode, crop and write.

use std::sync::OnceLock;

use rayon::ThreadPool;

/// The detection threads of one `detect` stage, made at first use.
pub struct DetectionThreads {
    /// Added to the process's niceness for these threads; 0 = no threads of their own (the work
    /// runs on the caller's rayon pool, as any other stage's).
    nice: u8,
    pool: OnceLock<Option<ThreadPool>>,
}

impl DetectionThreads {
    pub fn new(nice: u8) -> DetectionThreads {
        DetectionThreads {
            nice,
            pool: OnceLock::new(),
        }
    }

    /// Runs `work` on the detection threads, waiting for it.
    pub fn install<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        match self.pool() {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Starts `work` on a detection thread.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) {
        match self.pool() {
            Some(pool) => pool.spawn(work),
            None => rayon::spawn(work),
        }
    }

    fn pool(&self) -> Option<&ThreadPool> {
        self.pool
            .get_or_init(|| {
                if self.nice == 0 {
                    return None;
                }
                let nice = self.nice;
                let built = rayon::ThreadPoolBuilder::new()
                    .num_threads(rayon::current_num_threads())
                    .thread_name(|i| format!("dfd-detect-{i}"))
                    .start_handler(move |_| lower_priority(nice))
                    .build();
                match built {
                    Ok(pool) => Some(pool),
                    Err(e) => {
                        tracing::warn!(
                            "detect: no threads of its own ({e}); detecting on the workers"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// Adds `nice` to the calling thread's niceness (at most 19). Where that fails, the thread keeps
/// its priority: only the speed differs.
fn lower_priority(nice: u8) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid, getpriority and setpriority take plain integers and touch no memory of
        // ours; on Linux PRIO_PROCESS with a thread id addresses that one thread.
        let failed = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            let target = (current + i32::from(nice)).min(19);
            libc::setpriority(libc::PRIO_PROCESS, tid, target) != 0
        };
        if failed {
            tracing::debug!(
                "detect: could not lower a detection thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_niceness() -> i32 {
        // SAFETY: as in `lower_priority`.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    #[test]
    fn detection_runs_at_the_added_niceness_and_the_caller_keeps_its_own() {
        let before = own_niceness();
        let threads = DetectionThreads::new(7);
        let inside = threads.install(own_niceness);
        assert_eq!(inside, (before + 7).min(19));
        let (sender, receiver) = std::sync::mpsc::channel();
        threads.spawn(move || sender.send(own_niceness()).unwrap());
        assert_eq!(receiver.recv().unwrap(), (before + 7).min(19));
        assert_eq!(own_niceness(), before);
    }

    #[test]
    fn niceness_zero_runs_on_the_callers_pool() {
        let threads = DetectionThreads::new(0);
        let outside = own_niceness();
        let name = threads.install(|| std::thread::current().name().map(str::to_string));
        assert!(!name.unwrap_or_default().starts_with("dfd-detect"));
        assert_eq!(threads.install(own_niceness), outside);
    }
}
