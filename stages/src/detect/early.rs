//! Detection started on a frame while `decode` is still reading its video (see
//! [`FrameObserver`]).
//!
//! A 1080p video alone in its group keeps about one and a half of two cores busy while it is
//! decoded, and detecting its frames takes longer than decoding them. Each frame offered here is
//! converted to RGB (the copy `detect` makes anyway) and handed to the stage's detection threads,
//! which run at a lower priority than the decoding (see `workers.rs`): they detect it in the time
//! the decoder leaves. When `run` comes to the frame it takes the result, waits for a detection
//! under way, or detects the frame itself if none started.
//!
//! The detections are the ones `run` would compute: the same detectors, parameters and pixels
//! (an entry is matched to its frame by video, sample, frame index, time and size, and whatever
//! a reader offered before giving up on a video is discarded). Only *when* a frame is detected
//! changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use dfd_schemas::{FrameEncoding, FrameRef};

use super::stage::{detect_rgb, Detectors};
use super::Face;
use crate::image_io::{bgr_to_rgb_into, raw_frame_mat};
use crate::FrameObserver;

/// Frames converted and waiting for a worker, at most. Each holds an RGB copy (6 MB at 1080p);
/// when no worker is idle (a group of as many videos as workers), a waiting frame only costs
/// memory, and `run` detects the frames that were not taken.
const MAX_WAITING: usize = 2;

/// Which frame an entry is for: a video's sample.
type Key = (String, u32);

/// An entry's own number, so that a detection finishing after its entry was discarded (and maybe
/// offered again by another reader) cannot fill the new one.
type Ticket = u64;

/// What `run` finds for a frame.
pub enum Head {
    /// Nothing usable: `run` detects the frame.
    None,
    /// A detection under way; [`EarlyDetections::wait`] gives its result.
    Running((Key, Ticket)),
    /// The faces, or the error, of the frame's detection.
    Done(Result<Vec<Face>, String>),
}

enum State {
    Waiting(Vec<u8>),
    Running,
    Done(Result<Vec<Face>, String>),
}

struct Entry {
    ticket: Ticket,
    frame_index: u64,
    pts_ms: f64,
    size: (u32, u32),
    state: State,
}

impl Entry {
    fn is_for(&self, frame: &FrameRef) -> bool {
        self.frame_index == frame.frame_index
            && self.pts_ms.to_bits() == frame.pts_ms.to_bits()
            && self.size == (frame.width, frame.height)
    }
}

#[derive(Default)]
struct Entries {
    by_frame: HashMap<Key, Entry>,
    next_ticket: Ticket,
}

#[derive(Default)]
struct Shared {
    entries: Mutex<Entries>,
    finished: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves only plain data behind.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The detections started early, shared with the rayon jobs that run them.
pub struct EarlyDetections {
    detectors: Arc<Detectors>,
    shared: Arc<Shared>,
    /// Frames whose detection `run` took from here, since the stage was made.
    taken: AtomicUsize,
}

impl EarlyDetections {
    pub(super) fn new(detectors: Arc<Detectors>) -> EarlyDetections {
        EarlyDetections {
            detectors,
            shared: Arc::default(),
            taken: AtomicUsize::new(0),
        }
    }

    /// What there is for `frame`. A frame still waiting is taken back (`run` detects it now).
    pub fn claim(&self, frame: &FrameRef) -> Head {
        let key = (frame.video_id.to_string(), frame.sample_index);
        let mut entries = self.shared.lock();
        let Some(entry) = entries.by_frame.get(&key) else {
            return Head::None;
        };
        if !entry.is_for(frame) {
            entries.by_frame.remove(&key);
            return Head::None;
        }
        if matches!(entry.state, State::Running) {
            return Head::Running((key, entry.ticket));
        }
        match entries.by_frame.remove(&key).map(|e| e.state) {
            Some(State::Done(result)) => {
                self.taken.fetch_add(1, Ordering::Relaxed);
                Head::Done(result)
            }
            _ => Head::None,
        }
    }

    /// Frames whose detection was taken from here so far.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }

    /// The result of a detection [`Head::Running`] named; `None` if its entry was discarded
    /// meanwhile. Blocks the calling rayon worker: safe because a detection runs no rayon work of
    /// its own (see `crop_batch`), so nothing it needs can be held up beneath this wait.
    pub fn wait(&self, (key, ticket): (Key, Ticket)) -> Option<Result<Vec<Face>, String>> {
        let result = self.wait_for(key, ticket);
        if result.is_some() {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn wait_for(&self, key: Key, ticket: Ticket) -> Option<Result<Vec<Face>, String>> {
        let mut entries = self.shared.lock();
        loop {
            match entries.by_frame.get(&key) {
                Some(entry) if entry.ticket == ticket => {
                    if let State::Done(_) = entry.state {
                        return match entries.by_frame.remove(&key).map(|e| e.state) {
                            Some(State::Done(result)) => Some(result),
                            _ => None,
                        };
                    }
                }
                _ => return None,
            }
            entries = self
                .shared
                .finished
                .wait(entries)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Forgets every entry (a detection under way finishes into nothing).
    pub fn clear(&self) {
        self.shared.lock().by_frame.clear();
    }
}

impl FrameObserver for EarlyDetections {
    fn frame(&self, frame: &FrameRef) {
        if frame.encoding != FrameEncoding::Raw {
            return;
        }
        let waiting = |entries: &Entries| {
            entries
                .by_frame
                .values()
                .filter(|e| matches!(e.state, State::Waiting(_)))
                .count()
        };
        if waiting(&self.shared.lock()) >= MAX_WAITING {
            return;
        }
        let mut rgb = Vec::new();
        let converted = raw_frame_mat(frame).and_then(|bgr| bgr_to_rgb_into(&bgr, &mut rgb));
        if converted.is_err() {
            // `run` meets the same frame and reports what is wrong with it.
            return;
        }
        let key = (frame.video_id.to_string(), frame.sample_index);
        let ticket = {
            let mut entries = self.shared.lock();
            let ticket = entries.next_ticket;
            entries.next_ticket += 1;
            entries.by_frame.insert(
                key.clone(),
                Entry {
                    ticket,
                    frame_index: frame.frame_index,
                    pts_ms: frame.pts_ms,
                    size: (frame.width, frame.height),
                    state: State::Waiting(rgb),
                },
            );
            ticket
        };
        let (height, width) = (frame.height as usize, frame.width as usize);
        let shared = self.shared.clone();
        let detectors = self.detectors.clone();
        self.detectors
            .threads
            .spawn(move || detect_early(&shared, &detectors, key, ticket, (height, width)));
    }

    fn discard(&self, video_id: &str) {
        self.shared
            .lock()
            .by_frame
            .retain(|(video, _), _| video != video_id);
    }
}

/// The job of one frame: detects it unless `run` took it back (or it was discarded) first.
fn detect_early(
    shared: &Shared,
    detectors: &Detectors,
    key: Key,
    ticket: Ticket,
    (height, width): (usize, usize),
) {
    let rgb = {
        let mut entries = shared.lock();
        match entries.by_frame.get_mut(&key) {
            Some(entry) if entry.ticket == ticket => {
                match std::mem::replace(&mut entry.state, State::Running) {
                    State::Waiting(rgb) => rgb,
                    other => {
                        entry.state = other;
                        return;
                    }
                }
            }
            _ => return,
        }
    };
    let result = detectors.with_detector(detectors.early_threads(), |detector| {
        detect_rgb(detector, &rgb, height, width)
    });
    drop(rgb);
    let mut entries = shared.lock();
    if let Some(entry) = entries.by_frame.get_mut(&key) {
        if entry.ticket == ticket {
            entry.state = State::Done(result);
        }
    }
    drop(entries);
    shared.finished.notify_all();
}
