//! Detection started while `decode` reads a video (`detect`'s frame observer, the head start a
//! streamed pass gives it) yields the rows `detect` computes without it, and frames a reader gave
//! up on are never used.
//!
//! Needs the clip and weights that `scripts/setup.sh` fetches into vendor/media and vendor/mtcnn.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dfd_schemas::{DetectionRow, FrameRef, FrameRow, TableRow};
use dfd_stages::decode::{decode_video, DecodeParams, DecodedVideo, VideoReader};
use dfd_stages::detect::{Detect, MtcnnParams};
use dfd_stages::{FrameObserver, Stage, StageContext, StageInput};

const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/mtcnn");
const MEDIA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/media");

/// Long enough for a worker, however busy the machine, to finish the detections started on an
/// idle worker (a 640x360 frame takes tens of milliseconds).
const SETTLE: Duration = Duration::from_secs(3);

fn clip() -> PathBuf {
    Path::new(MEDIA).join("WolfgangLanger_Pexels.mp4")
}

fn params(reader: VideoReader) -> DecodeParams {
    DecodeParams {
        frames_per_video: 8,
        reader,
        ..DecodeParams::default()
    }
}

fn detect() -> Detect {
    Detect::new(MtcnnParams::default(), PathBuf::from(WEIGHTS))
}

/// Two workers, as on the 2-core machines: decoding occupies one, the other is idle.
fn two_workers() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a thread pool")
}

fn decode(reader: VideoReader, observer: Option<&dyn FrameObserver>) -> DecodedVideo {
    decode_video("v", &clip(), &params(reader), 1, observer).expect("the clip decodes")
}

fn detections(detect: &Detect, video: &DecodedVideo) -> Vec<DetectionRow> {
    let input =
        StageInput::new(vec!["v".into()]).with_table(&FrameRow::TABLE, vec![video.frames.clone()]);
    detect
        .run(&input, &StageContext::detached())
        .expect("detect runs")
        .take_rows::<DetectionRow>()
        .expect("detection rows")
}

#[test]
fn detections_started_during_decoding_are_the_ones_run_computes() {
    two_workers().install(|| {
        let reference = detections(&detect(), &decode(VideoReader::Planned, None));
        assert!(!reference.is_empty(), "the clip shows a face");

        // Both readers offer their frames.
        for reader in [VideoReader::Planned, VideoReader::Opencv] {
            let stage = detect();
            let video = decode(reader, stage.frame_observer());
            std::thread::sleep(SETTLE);
            assert_eq!(detections(&stage, &video), reference, "{reader:?}");
            assert!(
                stage.frames_detected_early() > 0,
                "{reader:?}: no detection started while the clip was decoded"
            );
        }
    });
}

#[test]
fn frames_a_reader_gave_up_on_are_not_used() {
    two_workers().install(|| {
        let video = decode(VideoReader::Planned, None);
        let reference = detections(&detect(), &video);

        // The same frames (same indices, times and sizes) with other pixels, offered and then
        // discarded, as when the planned reader declines a video half-way.
        let stage = detect();
        let observer = stage.frame_observer().expect("detect observes frames");
        for frame in FrameRow::refs(&video.frames).expect("frame rows") {
            let blank = vec![0u8; frame.image.len()];
            observer.frame(&FrameRef {
                image: &blank,
                ..frame
            });
        }
        std::thread::sleep(SETTLE);
        observer.discard("v");
        assert_eq!(detections(&stage, &video), reference);
        assert_eq!(stage.frames_detected_early(), 0);
    });
}
