//! Decoding only what the sampler keeps, and the reference frames those need.
//!
//! [`super::capture`] decodes every frame and keeps 20 of ~240. Here the packets are demuxed
//! first (cheap: no decoding), the sampler runs over their presentation times to find the frames
//! it will keep (the *plan*), and the decoder is told to skip every non-reference frame outside
//! the plan ([`Discard::NonReference`]). Nothing refers to a non-reference frame, so every frame
//! that is decoded has the pixels it has when all are; on x264 clips a third of the decoding time
//! goes. The plan is made with OpenCV's timestamp rules and the result is the same rows
//! [`super::capture::decode_with_opencv`] returns, byte for byte (the tests compare them on real clips).
//!
//! A plan this reader cannot vouch for is refused, not guessed (it returns [`Declined`] and the
//! caller uses the OpenCV path): packets without timestamps or with repeated ones, a rotated
//! picture (OpenCV turns it), a clip that ends before the sampler is done (how many frames a
//! damaged tail yields is the decoder's business), any decoder error, or a decoded frame whose
//! timestamp is not the one planned.

use std::collections::BTreeMap;
use std::path::Path;

use dfd_schemas::{DecodedVideoRow, FrameEncoding, FrameRef, FrameRow};
use dfd_video::{BgrConverter, Decoder, Discard, Input, Packet, StreamInfo, NO_TIMESTAMP};

use super::capture::DecodedVideo;
use super::sampler::FrameSampler;
use super::DecodeParams;
use crate::FrameObserver;

/// Why the planned reader left a video to the OpenCV path.
#[derive(Debug)]
pub struct Declined(pub String);

impl<E: std::fmt::Display> From<E> for Declined {
    fn from(error: E) -> Self {
        Declined(error.to_string())
    }
}

/// Packets read after the plan is settled: more than any codec's reordering depth (H.264 and HEVC
/// allow 16 frames), so no later packet can hold an earlier frame.
const REORDER_MARGIN: usize = 32;

/// Decodes the sampled frames of the video at `path` with `threads` decoder threads, offering each
/// kept frame to `observer` as it comes (on [`Declined`], the caller tells it to discard them).
pub fn decode_planned(
    video_id: &str,
    path: &Path,
    params: &DecodeParams,
    threads: usize,
    observer: Option<&dyn FrameObserver>,
) -> Result<DecodedVideo, Declined> {
    let mut input = Input::open(path)?;
    let info = input.info();
    if info.rotation_deg != 0 {
        return Err(Declined(format!(
            "the picture is rotated by {} degrees",
            info.rotation_deg
        )));
    }
    let clock = Clock::new(&info).ok_or_else(|| Declined("no stream start time".into()))?;
    let packets = demux(&mut input, &clock, params)?;
    let mut times: Vec<i64> = packets.iter().map(Packet::pts).collect();
    times.sort_unstable();
    let Some(&earliest) = times.first() else {
        return Err(Declined("the stream holds no video packet".into()));
    };

    let mut decoder = Decoder::new(&input, threads)?;
    let (width, height) = decoder.size();
    let mut converter = BgrConverter::default();
    // Until the first frame is out, its reported time (which OpenCV may take from the packet's
    // decoding timestamp) is not known and nothing is skipped; then the plan is final.
    let mut plan: Option<Plan> = None;
    // The kept frames' timestamps in the order they came out, and their pixels one after another
    // in one buffer that becomes the batch's (see `DecodedVideo`). A frame comes out after every
    // earlier one (checked), so that order is the plan's.
    let mut kept: Vec<i64> = Vec::new();
    let mut pixels: Vec<u8> = Vec::new();
    let all_kept =
        |plan: Option<&Plan>, kept: &[i64]| plan.is_some_and(|plan| plan.kept.len() == kept.len());
    for packet in packets.iter().map(Some).chain(std::iter::once(None)) {
        if all_kept(plan.as_ref(), &kept) {
            break;
        }
        let discard = match (&plan, packet) {
            (Some(plan), Some(packet)) if !plan.kept.contains_key(&packet.pts()) => {
                Discard::NonReference
            }
            _ => Discard::Nothing,
        };
        decoder.send(packet, discard)?;
        while let Some(frame) = decoder.receive()? {
            let reported = clock.opencv_ms(frame.opencv_timestamp());
            if plan.is_none() {
                if frame.pts() != earliest {
                    return Err(Declined("the first frame out is not the earliest".into()));
                }
                let made = Plan::new(&times, reported, &clock, &info, params)?;
                // A hint, as in `capture`: without it the buffer grows as frames come.
                let room = made.kept.len() * width as usize * height as usize * 3;
                let _ = pixels.try_reserve_exact(room);
                plan = Some(made);
            }
            let Some(plan) = plan.as_ref() else {
                continue;
            };
            let Some(&(frame_index, planned_ms)) = plan.kept.get(&frame.pts()) else {
                continue;
            };
            if frame.pts() != earliest && reported != planned_ms {
                return Err(Declined(format!(
                    "a kept frame's timestamp ({reported} ms) is not the planned {planned_ms} ms"
                )));
            }
            if kept.last().is_some_and(|&last| last >= frame.pts()) {
                return Err(Declined(
                    "a kept frame came out before an earlier one".into(),
                ));
            }
            let start = pixels.len();
            converter.convert_into(&frame, &mut pixels)?;
            if let Some(observer) = observer {
                observer.frame(&FrameRef {
                    video_id,
                    sample_index: kept.len() as u32,
                    frame_index,
                    pts_ms: planned_ms,
                    width,
                    height,
                    encoding: FrameEncoding::Raw,
                    image: &pixels[start..],
                });
            }
            kept.push(frame.pts());
        }
    }
    let plan = plan.ok_or_else(|| Declined("no frame could be decoded".into()))?;
    if !all_kept(Some(&plan), &kept) {
        return Err(Declined("a planned frame was never decoded".into()));
    }
    let rows = plan
        .kept
        .values()
        .enumerate()
        .map(|(sample_index, &(frame_index, pts_ms))| FrameRow {
            video_id: video_id.to_string(),
            sample_index: sample_index as u32,
            frame_index,
            pts_ms,
            width,
            height,
            encoding: FrameEncoding::Raw,
            image: Default::default(),
        })
        .collect::<Vec<_>>();
    let summary = DecodedVideoRow {
        video_id: video_id.to_string(),
        frames_requested: params.frames_per_video,
        frames_kept: rows.len() as u32,
        frames_decoded: plan.decoded,
        declared_frames: clock.declared_frames,
        fps: clock.fps,
        last_pts_ms: plan.last_pts_ms,
        width,
        height,
        note: None,
    };
    // A size that changed mid-stream leaves the pixels short of the rows' sizes: declined.
    let frames = FrameRow::with_shared_images(&rows, pixels)?;
    Ok(DecodedVideo { frames, summary })
}

/// Reads packets until the plan made from their times (as far as they go) is done and
/// [`REORDER_MARGIN`] more are in.
fn demux(input: &mut Input, clock: &Clock, params: &DecodeParams) -> Result<Vec<Packet>, Declined> {
    let mut packets = Vec::new();
    let mut settled_at: Option<usize> = None;
    while settled_at.is_none_or(|at| packets.len() < at + REORDER_MARGIN) {
        // At the end of the stream every frame is known; whether the sampler is done there is
        // the plan's to say.
        let Some(packet) = input.next_packet()? else {
            break;
        };
        if packet.pts() == NO_TIMESTAMP {
            return Err(Declined("a packet has no presentation timestamp".into()));
        }
        packets.push(packet);
        if settled_at.is_none() && packets.len() % 8 == 0 {
            let mut times: Vec<i64> = packets.iter().map(Packet::pts).collect();
            times.sort_unstable();
            let first = clock.opencv_ms(times[0]);
            if sample(&times, first, clock, params).done {
                settled_at = Some(packets.len());
            }
        }
    }
    Ok(packets)
}

/// Timestamps to milliseconds, and the stream's rate, OpenCV's way.
struct Clock {
    start: i64,
    seconds_per_tick: f64,
    fps: f64,
    frame_period_ms: f64,
    declared_frames: u64,
}

impl Clock {
    fn new(info: &StreamInfo) -> Option<Clock> {
        let start = info.start_time?;
        let seconds_per_tick = fraction(info.time_base);
        // OpenCV: the average frame rate, else one frame per time-base tick.
        let mut fps = fraction(info.average_frame_rate);
        if fps < 1e-6 && seconds_per_tick > 0.0 {
            fps = 1.0 / seconds_per_tick;
        }
        let fps = if fps.is_finite() { fps } else { 0.0 };
        let declared = if info.declared_frames > 0 {
            info.declared_frames as f64
        } else {
            (info.duration_s * fps + 0.5).floor()
        };
        Some(Clock {
            start,
            seconds_per_tick,
            fps,
            frame_period_ms: if fps > 0.0 { 1000.0 / fps } else { 0.0 },
            declared_frames: if declared.is_finite() && declared > 0.0 {
                declared as u64
            } else {
                0
            },
        })
    }

    /// What `CAP_PROP_POS_MSEC` reports for a frame whose timestamp OpenCV took to be `ticks`.
    fn opencv_ms(&self, ticks: i64) -> f64 {
        if ticks == NO_TIMESTAMP {
            return 0.0;
        }
        (ticks - self.start) as f64 * self.seconds_per_tick * 1000.0
    }
}

fn fraction((num, den): (i32, i32)) -> f64 {
    if num == 0 || den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Which frames the sampler keeps, given every frame's presentation timestamp.
#[derive(Debug, Clone)]
struct Plan {
    /// Kept frames by timestamp: their index in presentation order and their time.
    kept: BTreeMap<i64, (u64, f64)>,
    /// Frames `VideoCapture` would have grabbed: up to and including the last kept one.
    decoded: u64,
    last_pts_ms: f64,
    done: bool,
}

impl Plan {
    fn new(
        times: &[i64],
        first_reported_ms: f64,
        clock: &Clock,
        info: &StreamInfo,
        params: &DecodeParams,
    ) -> Result<Plan, Declined> {
        if times.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(Declined("two packets share a timestamp".into()));
        }
        // OpenCV reads a zero timestamp as "none" and takes the decoding timestamp instead, which
        // the packets alone do not tell for any frame but the first (decoded before planning).
        if times.iter().skip(1).any(|&ticks| ticks == 0) {
            return Err(Declined("a frame after the first has timestamp 0".into()));
        }
        let plan = sample(times, first_reported_ms, clock, params);
        if !plan.done {
            return Err(Declined("the sampler is not done within the stream".into()));
        }
        // OpenCV stops grabbing past one frame more than the container declares.
        if info.declared_frames > 0 && plan.decoded > info.declared_frames as u64 + 1 {
            return Err(Declined("more frames than the container declares".into()));
        }
        Ok(plan)
    }
}

/// Runs the sampler over the frames as `super::capture` sees them: the first frame at
/// `first_reported_ms`, the others at their timestamps, and where a time does not advance,
/// index / fps (capture's fallback for broken timestamps).
fn sample(times: &[i64], first_reported_ms: f64, clock: &Clock, params: &DecodeParams) -> Plan {
    let mut sampler = FrameSampler::new(
        params.frames_per_video,
        params.start_s * 1000.0,
        params.interval_s * 1000.0,
        clock.fps,
    );
    let mut kept = BTreeMap::new();
    let mut last_pts_ms = f64::NEG_INFINITY;
    let mut decoded = 0;
    for (index, &ticks) in times.iter().enumerate() {
        if sampler.is_done() {
            break;
        }
        decoded = index as u64 + 1;
        let reported = if index == 0 {
            first_reported_ms
        } else {
            clock.opencv_ms(ticks)
        };
        let pts_ms = if reported.is_finite() && (index == 0 || reported > last_pts_ms) {
            reported
        } else {
            index as f64 * clock.frame_period_ms
        };
        last_pts_ms = pts_ms;
        if sampler.offer(pts_ms) {
            kept.insert(ticks, (index as u64, pts_ms));
        }
    }
    Plan {
        kept,
        decoded,
        last_pts_ms,
        done: sampler.is_done(),
    }
}
