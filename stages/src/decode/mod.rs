//! `decode`: samples N frames at a fixed time interval from every video into the `frames` table.
//!
//! A video that cannot be read (zero bytes, truncated, not a video) becomes a row of `errors` and the
//! other videos go on. A clip shorter than N x interval keeps the frames it has, and
//! `decoded_videos.frames_kept` says how many.

mod capture;
mod planned;
mod sampler;
pub mod stored;

use arrow::record_batch::RecordBatch;
use dfd_schemas::{FrameEncoding, FrameRow, TableDef, TableRow, VideoRow};
use serde::{Deserialize, Serialize};

pub use capture::{decode_with_opencv, DecodedVideo};
pub use planned::{decode_planned, Declined};
pub use sampler::FrameSampler;

use crate::{
    per_video, FrameObserver, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};

pub const NAME: &str = "decode";

/// What the `frames` table keeps on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepFrames {
    /// The frame's index, time and size, and a JPEG preview at most
    /// [`stored::PREVIEW_SIDE`] pixels on its longer side (the default): full frames are
    /// several times the size of the video they came from, and every later stage gets them in
    /// memory in the same pass. A stage run later on its own decodes them again from the video.
    Preview,
    /// The full frames, as `decode.encoding` says.
    Full,
}

/// How full frames are stored in the `frames` table (`keep_frames = "full"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingParam {
    /// Lossless; the default, so that every later stage sees the decoder's pixels exactly.
    Png,
    /// Lossy but about 5x smaller; for very large datasets where disk matters more than fidelity.
    Jpeg,
}

impl EncodingParam {
    fn schema_encoding(self) -> FrameEncoding {
        match self {
            EncodingParam::Png => FrameEncoding::Png,
            EncodingParam::Jpeg => FrameEncoding::Jpeg,
        }
    }
}

/// What reads the frames of a video. Both give the same bytes (the tests compare them on real
/// clips), so the choice is a speed setting and stays out of the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoReader {
    /// FFmpeg's libraries directly, skipping the non-reference frames the sampler does not keep
    /// ([`planned`]); a video it cannot vouch for goes to OpenCV (the default).
    Planned,
    /// OpenCV's `VideoCapture`, decoding every frame up to the last kept one.
    Opencv,
}

/// The `[decode]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeParams {
    /// Frames to sample per video (the reference study: 20).
    pub frames_per_video: u32,
    /// Seconds between sampled frames (the reference study: about 0.5).
    pub interval_s: f64,
    /// Time of the first sampled frame, in seconds.
    pub start_s: f64,
    /// `preview` (the default) or `full`: what the `frames` table keeps on disk.
    pub keep_frames: KeepFrames,
    /// `png` (lossless) or `jpeg`, for full frames.
    pub encoding: EncodingParam,
    /// zlib level 0-9 for PNG; 1 is 3-4x faster to write than 6 and about 10% larger.
    pub png_compression: u8,
    /// 0-100 for JPEG.
    pub jpeg_quality: u8,
    /// `planned` (the default) or `opencv`; speed only.
    pub reader: VideoReader,
}

impl Default for DecodeParams {
    fn default() -> Self {
        DecodeParams {
            frames_per_video: 20,
            interval_s: 0.5,
            start_s: 0.0,
            keep_frames: KeepFrames::Preview,
            encoding: EncodingParam::Png,
            png_compression: 1,
            jpeg_quality: 95,
            reader: VideoReader::Planned,
        }
    }
}

/// The shortest sampling interval: one frame period of a 1,000 fps video. Shorter intervals sample
/// one frame many times over, and near zero the sampler never reaches the end of the video.
pub const MIN_INTERVAL_S: f64 = 0.001;

impl DecodeParams {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.frames_per_video == 0 {
            return Err("decode.frames_per_video must be at least 1".into());
        }
        if !(self.interval_s.is_finite() && self.interval_s >= MIN_INTERVAL_S) {
            return Err(format!(
                "decode.interval_s must be at least {MIN_INTERVAL_S} (one frame of a 1,000 fps \
                 video; below that, frames repeat and decoding never ends), got {}",
                self.interval_s
            ));
        }
        if !(self.start_s.is_finite() && self.start_s >= 0.0) {
            return Err(format!("decode.start_s must be >= 0, got {}", self.start_s));
        }
        if self.png_compression > 9 {
            return Err(format!(
                "decode.png_compression must be 0-9, got {}",
                self.png_compression
            ));
        }
        if self.jpeg_quality > 100 {
            return Err(format!(
                "decode.jpeg_quality must be 0-100, got {}",
                self.jpeg_quality
            ));
        }
        Ok(())
    }
}

/// Decodes the sampled frames of the video at `path` with the reader `params` names, the planned
/// one on `threads` decoder threads, offering each kept frame to `observer` as it comes; the error
/// is a one-line message for the `errors` table (the caller adds the file name). The planned
/// reader hands a video it cannot vouch for to OpenCV, which also words the errors; the observer
/// is told to discard whatever a reader offered before it gave up.
pub fn decode_video(
    video_id: &str,
    path: &std::path::Path,
    params: &DecodeParams,
    threads: usize,
    observer: Option<&dyn FrameObserver>,
) -> Result<DecodedVideo, String> {
    let discard = || {
        if let Some(observer) = observer {
            observer.discard(video_id);
        }
    };
    if params.reader == VideoReader::Planned {
        match decode_planned(video_id, path, params, threads, observer) {
            Ok(video) => return Ok(video),
            Err(Declined(reason)) => {
                discard();
                tracing::debug!(
                    video = video_id,
                    "{}: read with OpenCV instead: {reason}",
                    path.display()
                )
            }
        }
    }
    decode_with_opencv(video_id, path, params, observer).inspect_err(|_| discard())
}

/// Decoder threads for each of `videos` videos decoded side by side on `workers` worker threads:
/// the workers shared among them (at least one each), at most OpenCV's count (the machine's CPUs,
/// at most 16). FFmpeg's decoders give the same pixels on any number of threads, and each frame
/// thread holds frames of its own: two 1080p videos on two cores held 99 MB of decoder buffers
/// with two threads each.
fn decoder_threads(workers: usize, videos: usize) -> usize {
    let opencv = opencv::core::get_number_of_cpus().map_or(1, |n| n.clamp(1, 16) as usize);
    (workers / videos.clamp(1, workers.max(1))).clamp(1, opencv)
}

pub struct Decode {
    params: DecodeParams,
}

impl Decode {
    pub fn new(params: DecodeParams) -> Self {
        Decode { params }
    }
}

impl Stage for Decode {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            // 4: `image` is an HF `datasets` Image struct `{bytes, path}` (was binary).
            version: 4,
            inputs: &[crate::PARTITION_TABLE],
            outputs: &[
                dfd_schemas::FrameRow::TABLE,
                dfd_schemas::DecodedVideoRow::TABLE,
                dfd_schemas::ErrorRow::TABLE,
            ],
            sharding: Sharding::PerVideo,
            streams: true,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        crate::key_params(self.name(), &self.params, &["reader"])
    }

    fn stored(&self, table: &TableDef, batch: RecordBatch) -> Result<RecordBatch, StageError> {
        if table.name != FrameRow::TABLE.name {
            return Ok(batch);
        }
        stored::frames_for_disk(&self.params, batch)
    }

    fn stored_in_full(&self, table: &TableDef) -> bool {
        table.name != FrameRow::TABLE.name
            || (self.params.keep_frames == KeepFrames::Full
                && self.params.encoding == EncodingParam::Png)
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let videos = input.rows::<VideoRow>()?;
        let threads = decoder_threads(rayon::current_num_threads(), videos.len());
        let items = videos
            .into_iter()
            .map(|v| (v.video_id.clone(), v))
            .collect();
        let (decoded, errors) = per_video(NAME, items, ctx, |video_id, video: VideoRow| {
            decode_video(
                video_id,
                video.path.as_ref(),
                &self.params,
                threads,
                ctx.frames,
            )
            .map_err(|message| format!("{}: {message}", video.path))
        });
        // One batch a video, each holding the buffer its frames were decoded into: raw frames
        // are never copied (a 1080p video's are 124 MB).
        let mut output = StageOutput::default();
        let mut summaries = Vec::new();
        for video in decoded {
            output = output.with_table(&FrameRow::TABLE, video.frames);
            summaries.push(video.summary);
        }
        if summaries.is_empty() {
            output = output.with_rows::<FrameRow>(&[])?;
        }
        Ok(output.with_rows(&summaries)?.with_rows(&errors)?)
    }
}
