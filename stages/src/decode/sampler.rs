//! Which frames of a stream to keep: the first frame at or after each target time
//! `start, start + interval, start + 2 interval, ...`, by presentation time, so that variable frame
//! rate video is sampled at true time intervals rather than every k-th frame.

/// Decides frame by frame, in stream order, whether to keep it.
#[derive(Debug, Clone)]
pub struct FrameSampler {
    next_target_ms: f64,
    interval_ms: f64,
    /// A frame up to this much before a target counts as at the target: half a frame period, so the
    /// frame nearest the target wins rather than the first one strictly after it.
    tolerance_ms: f64,
    wanted: u32,
    kept: u32,
}

impl FrameSampler {
    /// `fps` is only used for the tolerance; pass 0 when unknown.
    pub fn new(wanted: u32, start_ms: f64, interval_ms: f64, fps: f64) -> Self {
        let tolerance_ms = if fps.is_finite() && fps > 0.0 {
            (500.0 / fps).min(interval_ms / 2.0)
        } else {
            0.0
        };
        FrameSampler {
            next_target_ms: start_ms,
            interval_ms,
            tolerance_ms,
            wanted,
            kept: 0,
        }
    }

    /// True when the frame at `pts_ms` is to be kept. A frame is never kept for two targets: after a
    /// gap in the stream (a variable-rate pause), the targets that fell in the gap are skipped.
    pub fn offer(&mut self, pts_ms: f64) -> bool {
        if self.is_done() || pts_ms + self.tolerance_ms < self.next_target_ms {
            return false;
        }
        self.kept += 1;
        while self.next_target_ms <= pts_ms + self.tolerance_ms {
            self.next_target_ms += self.interval_ms;
        }
        true
    }

    pub fn is_done(&self) -> bool {
        self.kept >= self.wanted
    }

    pub fn kept(&self) -> u32 {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_indices(sampler: &mut FrameSampler, pts: impl Iterator<Item = f64>) -> Vec<usize> {
        pts.enumerate()
            .filter_map(|(i, t)| sampler.offer(t).then_some(i))
            .collect()
    }

    #[test]
    fn constant_rate_keeps_every_fifteenth_frame_at_30_fps() {
        let mut s = FrameSampler::new(4, 0.0, 500.0, 30.0);
        let pts = (0..200).map(|i| i as f64 * 1000.0 / 30.0);
        assert_eq!(kept_indices(&mut s, pts), vec![0, 15, 30, 45]);
        assert!(s.is_done());
    }

    #[test]
    fn nearest_frame_wins_at_fractional_rates() {
        // 24 fps: 500 ms is frame 12 exactly; 29.97 fps: 500 ms lies between frames 14 (467) and 15 (500.5).
        let mut s = FrameSampler::new(3, 0.0, 500.0, 29.97);
        let pts = (0..100).map(|i| i as f64 * 1000.0 / 29.97);
        assert_eq!(kept_indices(&mut s, pts), vec![0, 15, 30]);
        let mut s = FrameSampler::new(3, 0.0, 500.0, 24.0);
        let pts = (0..100).map(|i| i as f64 * 1000.0 / 24.0);
        assert_eq!(kept_indices(&mut s, pts), vec![0, 12, 24]);
    }

    #[test]
    fn short_clip_keeps_what_exists() {
        let mut s = FrameSampler::new(20, 0.0, 500.0, 25.0);
        let pts = (0..50).map(|i| i as f64 * 40.0); // 2 s
                                                    // 480 ms and 520 ms are equally near 500 ms: the earlier frame wins.
        assert_eq!(kept_indices(&mut s, pts), vec![0, 12, 25, 37]);
        assert_eq!(s.kept(), 4);
        assert!(!s.is_done());
    }

    #[test]
    fn variable_rate_gap_skips_targets_instead_of_repeating_frames() {
        // Frames every 100 ms, then nothing from 300 ms to 1600 ms, then every 100 ms again.
        let pts = [
            0.0, 100.0, 200.0, 300.0, 1600.0, 1700.0, 1800.0, 1900.0, 2000.0, 2100.0,
        ];
        let mut s = FrameSampler::new(10, 0.0, 500.0, 0.0);
        let kept: Vec<f64> = pts.iter().copied().filter(|&t| s.offer(t)).collect();
        assert_eq!(kept, vec![0.0, 1600.0, 2000.0]);
    }

    #[test]
    fn start_offset_is_honoured() {
        let mut s = FrameSampler::new(2, 1000.0, 500.0, 10.0);
        let pts = (0..40).map(|i| i as f64 * 100.0);
        assert_eq!(kept_indices(&mut s, pts), vec![10, 15]);
    }
}
