//! The embedded reader against the opencv crate's own `VideoCapture` on a registry clip: the same
//! properties, the same positions, the same frames byte for byte.
//!
//! Needs the registry clips `scripts/setup.sh` fetches into vendor/media.

use std::path::{Path, PathBuf};

use dfd_capture::{Property, VideoCapture};
use opencv::prelude::*;
use opencv::videoio;

fn clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vendor/media/WolfgangLanger_Pexels.mp4")
}

#[test]
fn every_frame_equals_opencvs() {
    let path = clip();
    let mut mine = VideoCapture::open(&path).unwrap().expect("the clip opens");
    let mut reference =
        videoio::VideoCapture::from_file(path.to_str().unwrap(), videoio::CAP_FFMPEG).unwrap();
    assert!(reference.is_opened().unwrap());
    for (property, number) in [
        (Property::Fps, videoio::CAP_PROP_FPS),
        (Property::FrameCount, videoio::CAP_PROP_FRAME_COUNT),
        (Property::FrameWidth, videoio::CAP_PROP_FRAME_WIDTH),
        (Property::FrameHeight, videoio::CAP_PROP_FRAME_HEIGHT),
    ] {
        assert_eq!(
            mine.get(property).unwrap(),
            reference.get(number).unwrap(),
            "{property:?}"
        );
    }
    let mut frames = 0;
    let mut expected = Mat::default();
    loop {
        let grabbed = mine.grab().unwrap();
        assert_eq!(grabbed, reference.grab().unwrap(), "frame {frames}");
        if !grabbed {
            break;
        }
        assert_eq!(
            mine.get(Property::PosMsec).unwrap(),
            reference.get(videoio::CAP_PROP_POS_MSEC).unwrap()
        );
        // Every third frame retrieved, the others only grabbed, as the decode stage does.
        if frames % 3 == 0 {
            assert!(reference.retrieve(&mut expected, 0).unwrap());
            let frame = mine.retrieve().unwrap().expect("a grabbed frame retrieves");
            assert_eq!(
                (frame.rows, frame.cols, frame.typ),
                (expected.rows(), expected.cols(), expected.typ())
            );
            let row_bytes = expected.cols() as usize * expected.elem_size().unwrap();
            assert_eq!(frame.row_bytes, row_bytes, "frame {frames}");
            assert!(
                frame.data == expected.data_bytes().unwrap(),
                "frame {frames} differs"
            );
        }
        frames += 1;
    }
    assert!(frames > 300, "only {frames} frames");
}

#[test]
fn what_is_not_a_video_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video").unwrap();
    assert!(VideoCapture::open(&text).unwrap().is_none());
    assert!(VideoCapture::open(&dir.path().join("missing.mp4"))
        .unwrap()
        .is_none());
}
