//! `score`: every trained model variant's P(FAKE) for every face frame of the evaluation splits, on
//! ONNX Runtime, the same engine as detection. Scoring the exported ONNX model rather than the burn
//! model is deliberate: it is the artefact a user ships, so the report measures what runs.

mod device;
mod session;

use dfd_models::ComputeDevice;
use dfd_schemas::{
    FaceRow, FrameScoreRow, Label, SsimMapRow, SsimStatsRow, TableRow, TrainedModelRow, VideoRow,
};
use serde::{Deserialize, Serialize};

use crate::model_inputs::{FaceInputs, ModelSample};
use crate::{
    per_video, InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput,
    StageSpec,
};
pub use device::{check_score_device, ort_library, ScoreDeviceError};
pub use session::{ort_channel_block, ModelSession, ScoreError};

pub const NAME: &str = "score";

/// The `[score]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreParams {
    /// Face crops per ONNX Runtime call, at most (a video's frames are scored together). Small
    /// batches are faster on CPU: a batch's activations stay in cache (MesoNet-4 on 2 cores:
    /// 1,098 crops/s at 8, 944 at 64; `cargo bench -p dfd-stages --bench score`).
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads; 0 means one per core.
    pub threads: usize,
    /// Which splits are scored. Training frames are left out: scores on them say nothing.
    pub splits: Vec<String>,
    /// Where ONNX Runtime scores: `"cpu"` (default), `"cuda"` or `"cuda:N"` (its CUDA execution
    /// provider, which needs onnxruntime-gpu's library: `scripts/setup.sh --gpu`).
    pub device: ComputeDevice,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            batch_size: 8,
            threads: 0,
            splits: vec!["val".into(), "test".into()],
            device: ComputeDevice::Cpu,
        }
    }
}

impl ScoreParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("score.batch_size must be at least 1".into());
        }
        if self.splits.is_empty() {
            return Err("score.splits must name at least one split".into());
        }
        Ok(())
    }
}

/// The split recorded for a video that has none, when every video is scored.
pub const NO_SPLIT: &str = "none";

pub struct Score {
    params: ScoreParams,
    /// Score every video whatever its split (`dfd evaluate`: the models were trained elsewhere,
    /// so no video of this dataset is training data); `params.splits` is then not used.
    every_video: bool,
}

impl Score {
    pub fn new(params: ScoreParams) -> Self {
        Score {
            params,
            every_video: false,
        }
    }

    /// A score stage that scores every video, those without a split under [`NO_SPLIT`].
    pub fn every_video(params: ScoreParams) -> Self {
        Score {
            params,
            every_video: true,
        }
    }

    fn scores(&self, video: &VideoRow) -> bool {
        self.every_video
            || video
                .split
                .as_ref()
                .is_some_and(|s| self.params.splits.contains(s))
    }

    /// The decoded samples of every video of the shard that is in a scored split, with the video's
    /// split and label; videos whose crops cannot be decoded become `errors` rows.
    fn samples(
        &self,
        input: &StageInput,
        ctx: &StageContext,
    ) -> Result<(Vec<ScoredVideo>, Vec<dfd_schemas::ErrorRow>), StageError> {
        let videos = input.rows::<VideoRow>()?;
        let inputs = FaceInputs::read(input)?;
        let wanted: Vec<(String, &VideoRow)> = videos
            .iter()
            .filter(|v| self.scores(v))
            .map(|v| (v.video_id.clone(), v))
            .collect();
        Ok(per_video(NAME, wanted, ctx, |video_id, video| {
            let samples = inputs.samples(video_id, 0)?;
            Ok(ScoredVideo {
                split: video.split.clone().unwrap_or_else(|| NO_SPLIT.to_string()),
                label: video.label,
                samples,
            })
        }))
    }
}

/// One video to score.
struct ScoredVideo {
    split: String,
    label: Option<Label>,
    samples: Vec<ModelSample>,
}

impl Stage for Score {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            // 2: frame_scores.time_s; an output of version 1 lacks the column.
            version: 2,
            inputs: &[
                InputDef::of::<VideoRow>(crate::ingest::NAME),
                InputDef::of::<FaceRow>(crate::crop::NAME),
                InputDef::of::<SsimMapRow>(crate::ssim::NAME),
                InputDef::of::<SsimStatsRow>(crate::ssim::NAME),
                InputDef::of::<TrainedModelRow>(crate::train::NAME),
            ],
            outputs: &[
                dfd_schemas::FrameScoreRow::TABLE,
                dfd_schemas::ErrorRow::TABLE,
            ],
            sharding: Sharding::PerVideo,
            streams: false,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        // Threads and batch size change speed, not scores (up to float summation order). The
        // device is in the key as a GPU only (see `key_device`), so CPU keys are as they were.
        let unkeyed: &[&str] = if self.every_video {
            &["threads", "batch_size", "splits", "device"]
        } else {
            &["threads", "batch_size", "device"]
        };
        let mut key = crate::key_params(NAME, &self.params, unkeyed)?;
        if let (true, Some(object)) = (self.every_video, key.as_object_mut()) {
            object.insert("every_video".into(), true.into());
        }
        crate::key_device(&mut key, self.params.device);
        Ok(key)
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let models = input.rows::<TrainedModelRow>()?;
        let (videos, errors) = self.samples(input, ctx)?;
        let mut rows = Vec::new();
        for model in &models {
            let mut session = ModelSession::load_on(model, self.params.threads, self.params.device)
                .map_err(|e| StageError::Other(e.to_string()))?;
            for video in &videos {
                let samples: Vec<&ModelSample> = video
                    .samples
                    .iter()
                    .filter(|s| !session.multi_input() || s.has_ssim())
                    .collect();
                for batch in samples.chunks(self.params.batch_size) {
                    let scores = session
                        .score(batch)
                        .map_err(|e| StageError::Other(e.to_string()))?;
                    rows.extend(
                        batch
                            .iter()
                            .zip(scores)
                            .map(|(sample, score)| FrameScoreRow {
                                model: model.model.clone(),
                                video_id: sample.video_id.clone(),
                                sample_index: sample.sample_index,
                                frame_index: sample.frame_index,
                                time_s: sample.pts_ms / 1000.0,
                                split: video.split.clone(),
                                label: video.label,
                                score,
                            }),
                    );
                }
            }
        }
        Ok(StageOutput::default()
            .with_rows(&rows)?
            .with_rows(&errors)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(params: ScoreParams, every_video: bool) -> serde_json::Value {
        let stage = if every_video {
            Score::every_video(params)
        } else {
            Score::new(params)
        };
        stage.params().expect("the params serialise")
    }

    /// On the CPU the key is what it was before `device` existed (the splits, or every video);
    /// a GPU changes it, by its kind only; threads and batch size never enter it.
    #[test]
    fn a_gpu_changes_the_cache_key_and_the_cpu_does_not() {
        let cpu = ScoreParams::default();
        let gpu = |index| ScoreParams {
            device: ComputeDevice::Cuda(index),
            ..ScoreParams::default()
        };
        assert_eq!(
            key(cpu.clone(), false),
            serde_json::json!({"splits": ["val", "test"]})
        );
        assert_eq!(
            key(cpu.clone(), true),
            serde_json::json!({"every_video": true})
        );
        for every_video in [false, true] {
            let cuda = key(gpu(0), every_video);
            assert_eq!(cuda["device"], "cuda", "{cuda}");
            assert_ne!(cuda, key(cpu.clone(), every_video));
            assert_eq!(key(gpu(1), every_video), cuda);
        }
        let faster = ScoreParams {
            threads: 3,
            batch_size: 64,
            ..cpu.clone()
        };
        assert_eq!(key(faster, false), key(cpu, false));
    }

    /// The ONNX Runtime the set-up installs (the tests run against it) is the CPU build: a GPU
    /// is refused naming the library and how to get onnxruntime-gpu's, before any session.
    #[test]
    fn a_gpu_on_the_cpu_onnx_runtime_names_the_library_and_the_gpu_setup() {
        let error = check_score_device(ComputeDevice::Cuda(0)).expect_err("the CPU build");
        assert!(
            matches!(error, ScoreDeviceError::NoCudaProvider { .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains(&ort_library()), "{message}");
        assert!(message.contains("libonnxruntime.so.1.31.1"), "{message}");
        assert!(message.contains("CPU build"), "{message}");
        assert!(message.contains("scripts/setup.sh --gpu"), "{message}");
        check_score_device(ComputeDevice::Cpu).expect("the CPU needs nothing");
    }
}
