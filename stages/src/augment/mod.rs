//! `augment`: the augmentation plan of training, one drawn geometric transform per (epoch,
//! training face frame), as a table.
//!
//! Training draws each transform when it builds a batch, from `(seed, epoch, sample key)` through
//! the same function this stage calls, so the table is exactly what training applies; the pixels
//! themselves are not stored (200 epochs of augmented 224x224 crops of even a small dataset would
//! be gigabytes for no gain). The plan covers every epoch up to `train.epochs`; training that stops
//! early uses a prefix of it.

use std::collections::BTreeMap;

use dfd_models::augment::Transform;
use dfd_models::training::sample_key;
use dfd_schemas::{AugmentationRow, FaceRow, TableRow, VideoRow};

use crate::model_inputs::{by_video, spread_frames};
use crate::train::TrainParams;
use crate::{
    InputDef, Sharding, Stage, StageContext, StageError, StageInput, StageOutput, StageSpec,
};

pub const NAME: &str = "augment";

pub struct Augment {
    params: TrainParams,
}

impl Augment {
    /// Draws with the training settings in effect, so the plan and training cannot disagree.
    pub fn new(params: TrainParams) -> Self {
        Augment { params }
    }

    fn video_rows(&self, faces: &[&FaceRow], out: &mut Vec<AugmentationRow>) {
        let Some(config) = self.params.augment_config() else {
            return;
        };
        let frames = spread_frames(faces, self.params.max_frames_per_video);
        for epoch in 1..=self.params.epochs {
            for face in &frames {
                let key = sample_key(&face.video_id, face.sample_index);
                let t = Transform::draw(&config, self.params.seed, epoch, key);
                out.push(AugmentationRow {
                    epoch,
                    video_id: face.video_id.clone(),
                    sample_index: face.sample_index,
                    sample_key: key,
                    rotation_deg: t.rotation_deg,
                    shift_x: t.shift_x,
                    shift_y: t.shift_y,
                    shear_deg: t.shear_deg,
                    zoom_x: t.zoom_x,
                    zoom_y: t.zoom_y,
                    flip: t.flip,
                });
            }
        }
    }
}

impl Stage for Augment {
    fn spec(&self) -> &StageSpec {
        const SPEC: StageSpec = StageSpec {
            name: NAME,
            version: 1,
            inputs: &[
                InputDef::of::<VideoRow>(crate::ingest::NAME),
                InputDef::of::<FaceRow>(crate::crop::NAME),
            ],
            outputs: &[dfd_schemas::AugmentationRow::TABLE],
            sharding: Sharding::PerVideo,
            streams: false,
        };
        &SPEC
    }

    fn params(&self) -> Result<serde_json::Value, StageError> {
        let augment = self
            .params
            .augment_config()
            .map(|c| crate::key_params(self.name(), &c, &[]))
            .transpose()?;
        Ok(serde_json::json!({
            "augment": augment,
            "epochs": self.params.epochs,
            "seed": self.params.seed,
            "max_frames_per_video": self.params.max_frames_per_video,
        }))
    }

    fn run(&self, input: &StageInput, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let videos = input.rows::<VideoRow>()?;
        let faces = input.rows::<FaceRow>()?;
        let faces: BTreeMap<&str, Vec<&FaceRow>> = by_video(&faces, |f| &f.video_id);
        let mut rows = Vec::new();
        for video in &videos {
            let trains = video.split.as_deref() == Some("train") && video.label.is_some();
            if let (true, Some(faces)) = (trains, faces.get(video.video_id.as_str())) {
                self.video_rows(faces, &mut rows);
            }
            ctx.progress.advance(1);
        }
        Ok(StageOutput::default().with_rows(&rows)?)
    }
}
