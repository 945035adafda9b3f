//! Which face of a frame is "the" face of the video.
//!
//! One face: that one. Several: the one that continues the track, i.e. the largest overlap (IoU) with
//! the face chosen in the previous face frame; with no previous face, or when no face overlaps it (a
//! cut, or the tracked person left), the most confident. The reference study picked the face most
//! similar by SSIM to the previous crop, which costs an SSIM per candidate and prefers whichever face
//! happens to be lit alike; box overlap follows the person, which is what the label is about.

/// A box in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Region {
    pub fn iou(&self, other: &Region) -> f32 {
        let ix = (self.x + self.width).min(other.x + other.width) - self.x.max(other.x);
        let iy = (self.y + self.height).min(other.y + other.height) - self.y.max(other.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        inter / (self.width * self.height + other.width * other.height - inter)
    }
}

/// Index of the face to keep among `candidates` (region, confidence), or `None` when there is none.
pub fn choose_face(candidates: &[(Region, f32)], previous: Option<&Region>) -> Option<usize> {
    let most_confident =
        || (0..candidates.len()).max_by(|&a, &b| candidates[a].1.total_cmp(&candidates[b].1));
    let Some(previous) = previous else {
        return most_confident();
    };
    let (best, overlap) = candidates
        .iter()
        .enumerate()
        .map(|(i, (region, _))| (i, region.iou(previous)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if overlap > 0.0 {
        Some(best)
    } else {
        most_confident()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(x: f32, y: f32, size: f32) -> Region {
        Region {
            x,
            y,
            width: size,
            height: size,
        }
    }

    #[test]
    fn the_first_frame_takes_the_most_confident_face() {
        let faces = [
            (region(0.0, 0.0, 50.0), 0.8),
            (region(100.0, 0.0, 50.0), 0.99),
        ];
        assert_eq!(choose_face(&faces, None), Some(1));
        assert_eq!(choose_face(&[], None), None);
    }

    #[test]
    fn later_frames_follow_the_track_even_when_another_face_is_more_confident() {
        let previous = region(2.0, 2.0, 50.0);
        let faces = [
            (region(100.0, 0.0, 50.0), 0.999),
            (region(0.0, 0.0, 52.0), 0.9),
        ];
        assert_eq!(choose_face(&faces, Some(&previous)), Some(1));
    }

    #[test]
    fn a_lost_track_falls_back_to_confidence() {
        let previous = region(500.0, 500.0, 50.0);
        let faces = [
            (region(100.0, 0.0, 50.0), 0.95),
            (region(0.0, 0.0, 52.0), 0.9),
        ];
        assert_eq!(choose_face(&faces, Some(&previous)), Some(0));
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = region(0.0, 0.0, 10.0);
        let b = region(5.0, 0.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&region(20.0, 20.0, 5.0)), 0.0);
    }
}
