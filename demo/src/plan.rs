//! Every choice of the dataset, made before a pixel is touched: which person each pair shows,
//! which stretch of which clip, how it is framed and degraded, whose face replaces theirs.
//!
//! The plan is a pure function of the probed clips, the request and the seed (no OpenCV, no files),
//! so it is tested on its own. Each pair draws from its own stream, `(seed, pair index)`, so the
//! order in which pairs are planned or rendered changes nothing.
//!
//! **Pairs.** A pair is a REAL clip and its FAKE, which shows the same window of footage, framed and
//! degraded identically, with the face of another person of the same split swapped in. Pairs are
//! dealt to the splits 64/16/20 by largest remainder (at least one each when there are three), and
//! within a split to its people in turn, so each person gets an equal share of their split. The
//! donor is another person of the split, rotating through all of them.
//!
//! **Degradations** ([`Degradation`]) are drawn per pair and applied to the REAL and the FAKE alike:
//! resolution, blur, noise and compression then vary across pairs, never within one, so none of them
//! tells a FAKE from its REAL, and a detector must find the manipulation itself.

use dfd_models::rng::SplitMix64;
use serde::Serialize;

use crate::people::{people_of, Split, PEOPLE};
use crate::swap::SwapParams;

/// A clip as probed: its person and stream properties.
#[derive(Debug, Clone)]
pub struct ClipInfo {
    pub file: &'static str,
    /// Index into [`PEOPLE`].
    pub person: usize,
    pub fps: f64,
    pub frames: usize,
    pub width: i32,
    pub height: i32,
}

/// Share of the clip's width and height a pair's framing keeps: small crops, so the face (central
/// in every clip) stays whole.
pub const CROP_KEEP: (f64, f64) = (0.85, 1.0);
/// Scale applied after the crop: clips differ in size as DFDC's do. Below 0.75 the 176x144 clip's
/// face would fall under 40 px, where MTCNN's landmarks (and so the swap) get unreliable.
pub const RESCALE: (f64, f64) = (0.75, 1.25);

/// A stretch of one clip: `len` frames from `start`. A window longer than what is left of the clip
/// runs back and forth over it (only donors need that: their face must fill every target frame).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// Index into the probed clips.
    #[serde(skip)]
    pub clip: usize,
    #[serde(rename = "start_frame")]
    pub start: usize,
    #[serde(rename = "window_frames")]
    pub len: usize,
}

impl Window {
    /// The clip's frame index at window position `position`, reflected at the clip's ends.
    pub fn frame(&self, position: usize, clip_frames: usize) -> usize {
        let p = self.start + position;
        if clip_frames < 2 {
            return 0;
        }
        let period = 2 * (clip_frames - 1);
        let q = p % period;
        if q < clip_frames {
            q
        } else {
            period - q
        }
    }
}

/// How a REAL's frames are cut from the clip (and so its FAKE's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Framing {
    /// `[x, y, width, height]` of the crop, in clip pixels (before the mirror).
    pub crop: [i32; 4],
    pub mirrored: bool,
    /// `[width, height]` written (even, for H.264's 4:2:0).
    pub size: [i32; 2],
}

/// The quality a pair is delivered in, drawn per pair and applied to both of its videos after the
/// swap (as a face-swap pipeline's output is later resized and re-encoded). Each range and why:
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Degradation {
    /// Resolution loss (a third of pairs): frames shrunk by this factor (area averaging) and grown
    /// back (bilinear), 0.5..0.8, as a clip uploaded at a lower resolution and shown at its own.
    pub downscale: Option<f64>,
    /// Gaussian blur of the whole frame (a third of pairs), sigma 0.4..1.2 px: defocus and
    /// motion softness; beyond 1.2 px faces lose the detail any detector needs.
    pub blur_sigma: Option<f64>,
    /// Gaussian sensor noise (a third of pairs), sigma 1..4 grey levels; the same noise on the
    /// REAL and the FAKE frame by frame, so away from the face the two stay equal.
    pub noise_sigma: Option<f64>,
    /// x264's constant rate factor, 18..=30: from visually lossless to DFDC-like compression.
    pub crf: u8,
    /// Seeds the noise of every frame of the pair.
    #[serde(skip)]
    pub noise_seed: u64,
}

impl Degradation {
    pub const DOWNSCALE: (f64, f64) = (0.5, 0.8);
    pub const BLUR_SIGMA: (f64, f64) = (0.4, 1.2);
    pub const NOISE_SIGMA: (f64, f64) = (1.0, 4.0);
    pub const CRF: (u8, u8) = (18, 30);
    /// Each optional degradation is applied to this share of pairs.
    pub const SHARE: f64 = 1.0 / 3.0;

    fn draw(rng: &mut SplitMix64) -> Degradation {
        let mut maybe = |(lo, hi): (f64, f64)| {
            let on = rng.next_f64() < Self::SHARE;
            let value = rng.uniform(lo, hi);
            on.then_some(value)
        };
        let downscale = maybe(Self::DOWNSCALE);
        let blur_sigma = maybe(Self::BLUR_SIGMA);
        let noise_sigma = maybe(Self::NOISE_SIGMA);
        let (lo, hi) = Self::CRF;
        let crf = lo + rng.below(usize::from(hi - lo) + 1) as u8;
        Degradation {
            downscale,
            blur_sigma,
            noise_sigma,
            crf,
            noise_seed: rng.next_u64(),
        }
    }
}

/// The FAKE of a pair: whose face, from which stretch of their footage, swapped how.
#[derive(Debug, Clone, PartialEq)]
pub struct DonorPlan {
    pub person: usize,
    pub window: Window,
    /// Donor frames per target frame (the clips' frame rates differ).
    pub rate: f64,
    pub swap: SwapParams,
    /// Seeds the per-frame landmark jitter.
    pub jitter_seed: u64,
}

impl DonorPlan {
    /// The donor window position shown at target frame `i`: the donor's footage plays in real time.
    pub fn position(&self, i: usize) -> usize {
        (i as f64 * self.rate).round() as usize
    }
}

/// One REAL clip and, unless it is the odd video out, its FAKE.
#[derive(Debug, Clone, PartialEq)]
pub struct PairPlan {
    pub real_name: String,
    pub fake_name: Option<String>,
    pub split: Split,
    pub person: usize,
    pub target: Window,
    pub framing: Framing,
    pub degradation: Degradation,
    pub donor: Option<DonorPlan>,
}

/// The dataset: its pairs, in file-name order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub pairs: Vec<PairPlan>,
}

/// Names the stream of draws of one pair.
const PAIR_STREAM: u64 = 0xDE30_0002;

/// Plans `videos` videos (half REAL, half FAKE; the odd one a REAL in train) of at most
/// `clip_seconds` each.
pub fn plan(clips: &[ClipInfo], videos: usize, clip_seconds: f64, seed: u64) -> Plan {
    let pairs_per_split = allocate(videos / 2, 1);
    let mut pairs = Vec::new();
    for split in Split::ALL {
        let people = people_of(split);
        let count = pairs_per_split[split.index()];
        let odd = usize::from(split == Split::Train && videos % 2 == 1);
        for k in 0..count + odd {
            let index = pairs.len();
            let mut rng = SplitMix64::for_stream(&[seed, PAIR_STREAM, index as u64]);
            let n = people.len();
            let person = people[k % n];
            let donor = (k < count && n > 1).then(|| people[(k % n + 1 + (k / n) % (n - 1)) % n]);
            pairs.push(plan_pair(
                clips,
                index,
                split,
                person,
                donor,
                clip_seconds,
                &mut rng,
            ));
        }
    }
    Plan { pairs }
}

fn plan_pair(
    clips: &[ClipInfo],
    index: usize,
    split: Split,
    person: usize,
    donor: Option<usize>,
    clip_seconds: f64,
    rng: &mut SplitMix64,
) -> PairPlan {
    let clip = pick_clip(clips, person, rng);
    let info = &clips[clip];
    let len = ((clip_seconds * info.fps).round() as usize).clamp(1, info.frames);
    let target = Window {
        clip,
        start: rng.below(info.frames - len + 1),
        len,
    };
    let framing = draw_framing(info, rng);
    let degradation = Degradation::draw(rng);
    let donor = donor.map(|person| {
        let clip = pick_clip(clips, person, rng);
        let donor_info = &clips[clip];
        let rate = donor_info.fps / info.fps;
        let needed = ((len - 1) as f64 * rate).round() as usize + 1;
        let start = if needed <= donor_info.frames {
            rng.below(donor_info.frames - needed + 1)
        } else {
            0
        };
        DonorPlan {
            person,
            window: Window {
                clip,
                start,
                len: needed,
            },
            rate,
            swap: SwapParams::from_unit([
                rng.next_f64(),
                rng.next_f64(),
                rng.next_f64(),
                rng.next_f64(),
            ]),
            jitter_seed: rng.next_u64(),
        }
    });
    PairPlan {
        real_name: format!("real_{index:03}.mp4"),
        fake_name: donor.is_some().then(|| format!("fake_{index:03}.mp4")),
        split,
        person,
        target,
        framing,
        degradation,
        donor,
    }
}

/// One of the person's clips, chosen with probability proportional to its length.
fn pick_clip(clips: &[ClipInfo], person: usize, rng: &mut SplitMix64) -> usize {
    let own: Vec<usize> = (0..clips.len())
        .filter(|&c| clips[c].person == person)
        .collect();
    let total: usize = own.iter().map(|&c| clips[c].frames).sum();
    let mut pick = rng.below(total.max(1));
    for &c in &own {
        if pick < clips[c].frames {
            return c;
        }
        pick -= clips[c].frames;
    }
    own[0]
}

fn draw_framing(info: &ClipInfo, rng: &mut SplitMix64) -> Framing {
    let keep = rng.uniform(CROP_KEEP.0, CROP_KEEP.1);
    let (w, h) = (info.width, info.height);
    let cw = ((w as f64 * keep).round() as i32).clamp(16, w);
    let ch = ((h as f64 * keep).round() as i32).clamp(16, h);
    let x = rng.below((w - cw + 1) as usize) as i32;
    let y = rng.below((h - ch + 1) as usize) as i32;
    let mirrored = rng.next_f64() < 0.5;
    let scale = rng.uniform(RESCALE.0, RESCALE.1);
    let even = |v: f64| (((v / 2.0).round() as i32) * 2).max(16);
    Framing {
        crop: [x, y, cw, ch],
        mirrored,
        size: [even(cw as f64 * scale), even(ch as f64 * scale)],
    }
}

/// `n` items dealt to the splits by their shares (largest remainder), then topped up to
/// `min_each` per split, taken from the largest, when there are enough for that.
pub fn allocate(n: usize, min_each: usize) -> [usize; 3] {
    let exact: Vec<f64> = Split::ALL.iter().map(|s| s.share() * n as f64).collect();
    let mut counts = [0usize; 3];
    for (c, e) in counts.iter_mut().zip(&exact) {
        *c = e.floor() as usize;
    }
    let mut by_remainder: Vec<usize> = (0..3).collect();
    by_remainder.sort_by(|&a, &b| {
        let rem = |i: usize| exact[i] - exact[i].floor();
        rem(b).total_cmp(&rem(a)).then(a.cmp(&b))
    });
    let short = n - counts.iter().sum::<usize>();
    for &i in by_remainder.iter().take(short) {
        counts[i] += 1;
    }
    if n >= 3 * min_each {
        for i in 0..3 {
            while counts[i] < min_each {
                let largest = (0..3).max_by_key(|&j| (counts[j], 3 - j)).unwrap_or(0);
                counts[largest] -= 1;
                counts[i] += 1;
            }
        }
    }
    counts
}

/// The person ids of a plan's filmed people and donors per split, for checks and summaries.
pub fn people_by_split(plan: &Plan) -> [Vec<&'static str>; 3] {
    let mut out: [Vec<&'static str>; 3] = Default::default();
    for pair in &plan.pairs {
        let ids = std::iter::once(pair.person).chain(pair.donor.as_ref().map(|d| d.person));
        for p in ids {
            let list = &mut out[pair.split.index()];
            if !list.contains(&PEOPLE[p].id) {
                list.push(PEOPLE[p].id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::clip_files;

    fn clips() -> Vec<ClipInfo> {
        clip_files()
            .enumerate()
            .map(|(i, file)| ClipInfo {
                file,
                person: PEOPLE.iter().position(|p| p.clips.contains(&file)).unwrap(),
                fps: [24.0, 25.0, 30.0][i % 3],
                frames: 60 + 90 * i,
                width: 320,
                height: 240,
            })
            .collect()
    }

    #[test]
    fn allocation_hits_the_shares_and_the_minimum() {
        assert_eq!(allocate(50, 1), [32, 8, 10]);
        assert_eq!(allocate(9, 2), [5, 2, 2]);
        assert_eq!(allocate(3, 1), [1, 1, 1]);
        assert_eq!(allocate(2, 1), [1, 0, 1]);
        for n in 0..200 {
            assert_eq!(allocate(n, 1).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn windows_reflect_at_the_clip_ends() {
        let w = Window {
            clip: 0,
            start: 2,
            len: 10,
        };
        let frames: Vec<usize> = (0..8).map(|i| w.frame(i, 4)).collect();
        assert_eq!(frames, [2, 3, 2, 1, 0, 1, 2, 3]);
    }

    #[test]
    fn no_face_crosses_splits_and_every_fake_has_another_person_as_donor() {
        let plan = plan(&clips(), 101, 10.0, 3);
        assert_eq!(plan.pairs.len(), 51);
        assert_eq!(plan.pairs.iter().filter(|p| p.donor.is_none()).count(), 1);
        for pair in &plan.pairs {
            assert_eq!(PEOPLE[pair.person].split, pair.split);
            if let Some(donor) = &pair.donor {
                assert_ne!(donor.person, pair.person);
                assert_eq!(PEOPLE[donor.person].split, pair.split);
            }
        }
        let by_split = people_by_split(&plan);
        for (split, people) in by_split.iter().enumerate() {
            for p in people {
                let elsewhere = (0..3)
                    .filter(|&s| s != split)
                    .any(|s| by_split[s].contains(p));
                assert!(!elsewhere, "{p} in two splits");
            }
        }
        assert_eq!(by_split.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2, 2]);
    }

    #[test]
    fn windows_fit_their_clips_and_donors_cover_every_target_frame() {
        let clips = clips();
        let plan = plan(&clips, 40, 10.0, 11);
        for pair in &plan.pairs {
            let info = &clips[pair.target.clip];
            assert!(pair.target.start + pair.target.len <= info.frames);
            let [x, y, w, h] = pair.framing.crop;
            assert!(x >= 0 && y >= 0 && x + w <= info.width && y + h <= info.height);
            assert!(pair.framing.size.iter().all(|s| s % 2 == 0));
            if let Some(d) = &pair.donor {
                let last = d.position(pair.target.len - 1);
                assert!(last < d.window.len, "{last} >= {}", d.window.len);
            }
        }
    }

    #[test]
    fn a_seed_names_one_plan() {
        let clips = clips();
        let first = plan(&clips, 20, 10.0, 5);
        assert_eq!(first, plan(&clips, 20, 10.0, 5));
        assert_ne!(first, plan(&clips, 20, 10.0, 6));
    }

    #[test]
    fn degradations_stay_in_their_ranges_and_each_kind_occurs() {
        let plan = plan(&clips(), 200, 10.0, 1);
        let ds: Vec<_> = plan.pairs.iter().map(|p| p.degradation).collect();
        let within = |v: Option<f64>, (lo, hi): (f64, f64)| v.is_none_or(|v| (lo..hi).contains(&v));
        for d in &ds {
            assert!(within(d.downscale, Degradation::DOWNSCALE));
            assert!(within(d.blur_sigma, Degradation::BLUR_SIGMA));
            assert!(within(d.noise_sigma, Degradation::NOISE_SIGMA));
            assert!((18..=30).contains(&d.crf));
        }
        let share = |f: fn(&Degradation) -> bool| ds.iter().filter(|d| f(d)).count() as f64 / 100.0;
        for s in [
            share(|d| d.downscale.is_some()),
            share(|d| d.blur_sigma.is_some()),
            share(|d| d.noise_sigma.is_some()),
        ] {
            assert!((0.15..0.5).contains(&s), "{s}");
        }
    }
}
