//! The error gallery of `report.html`: for each trained model, the labelled videos of the quoted
//! split it got most confidently wrong (up to [`CASES`] false positives, the REAL videos scored
//! highest above the threshold, and as many false negatives, the FAKE ones scored lowest below
//! it), each with a strip of its face crops, the timeline of its frame scores and, for a CNN
//! detector, the Grad-CAM saliency of the frames that decided the wrong verdict (toward FAKE
//! for a false positive, toward REAL for a false negative): what misled it.
//!
//! Only these few videos' deciding frames go through Grad-CAM, so the gallery costs a few
//! backward passes, not a pass over the split. Images are JPEG thumbnails (a few kilobytes
//! each) so that the page stays small.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use dfd_schemas::{
    FaceRow, FrameScoreRow, Label, SsimMapRow, SsimStatsRow, TableRow, TrainedModelRow,
    VideoScoreRow,
};

use super::plots::{timeline_png, Timeline};
use crate::explain::{self, deciding_frames, jpeg_thumbnail, Evidence, FramesToExplain};
use crate::model_inputs::{video_samples, ModelSample};
use crate::{StageError, StageInput};

/// Cases of each kind per model.
pub const CASES: usize = 3;
/// Face crops in a case's strip, spread over the video.
pub const STRIP_FACES: u32 = 6;
/// Side of a face thumbnail in the strip, in pixels.
const FACE_SIDE: u32 = 80;
/// Side of a saliency thumbnail, in pixels: larger than a face's, the map is what is read.
const SALIENCY_SIDE: u32 = 112;

/// A false positive or a false negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    FalsePositive,
    FalseNegative,
}

impl Kind {
    pub fn title(self) -> &'static str {
        match self {
            Kind::FalsePositive => "False positives: REAL videos called FAKE",
            Kind::FalseNegative => "False negatives: FAKE videos called REAL",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Kind::FalsePositive => "fp",
            Kind::FalseNegative => "fn",
        }
    }
}

/// One video a model got wrong.
pub struct Case {
    pub kind: Kind,
    pub video_id: String,
    /// The video score under the report's rule.
    pub score: f64,
    /// JPEG thumbnails of its face crops, in time order.
    pub faces: Vec<Vec<u8>>,
    /// PNG of its frame scores over time.
    pub timeline: Vec<u8>,
    /// The deciding frames' saliency, most decisive first: (frame index, P(FAKE), JPEG).
    pub saliency: Vec<(u64, f32, Vec<u8>)>,
}

/// One model's part of the gallery.
pub struct GalleryModel {
    pub model: String,
    /// Why there are no saliency maps (ViT-B/16; a model stored without weights).
    pub saliency_unavailable: Option<String>,
    pub cases: Vec<Case>,
}

/// What the gallery is computed from.
pub struct GalleryInput<'a> {
    pub split: &'a str,
    pub rule: &'a str,
    pub threshold: f64,
    pub models: &'a [TrainedModelRow],
    pub video_scores: &'a [VideoScoreRow],
    pub frame_scores: &'a [FrameScoreRow],
}

/// The gallery of every model in `models` (in that order); `input` supplies the face crops and
/// SSIM inputs, of the gallery's videos only.
pub fn gallery(
    g: &GalleryInput,
    stage_input: &StageInput,
) -> Result<Vec<GalleryModel>, StageError> {
    let chosen: Vec<(&TrainedModelRow, Vec<&VideoScoreRow>)> = g
        .models
        .iter()
        .map(|m| (m, wrong_videos(g, &m.model)))
        .collect();
    let wanted: BTreeSet<&str> = chosen
        .iter()
        .flat_map(|(_, cases)| cases.iter().map(|c| c.video_id.as_str()))
        .collect();
    let faces: Vec<FaceRow> = rows_of_videos(stage_input, &wanted)?;
    let maps: Vec<SsimMapRow> = rows_of_videos(stage_input, &wanted)?;
    let stats: Vec<SsimStatsRow> = rows_of_videos(stage_input, &wanted)?;
    let mut samples: BTreeMap<&str, Vec<ModelSample>> = BTreeMap::new();
    for video in &wanted {
        let of_video: Vec<&FaceRow> = faces.iter().filter(|f| f.video_id == *video).collect();
        let of_maps: Vec<&SsimMapRow> = maps.iter().filter(|m| m.video_id == *video).collect();
        let of_stats = stats.iter().find(|s| s.video_id == *video);
        let decoded = video_samples(&of_video, &of_maps, of_stats)
            .map_err(|e| StageError::Other(format!("the face crops of {video}: {e}")))?;
        samples.insert(video, decoded);
    }
    chosen
        .into_iter()
        .map(|(model, wrong)| model_gallery(g, model, &wrong, &samples))
        .collect()
}

/// The model's most confident errors on the quoted split under the quoted rule: false
/// positives first, highest score first; then false negatives, lowest score first.
fn wrong_videos<'a>(g: &GalleryInput<'a>, model: &str) -> Vec<&'a VideoScoreRow> {
    let of_model = || {
        g.video_scores
            .iter()
            .filter(move |s| s.model == model && s.split == g.split && s.rule == g.rule)
    };
    // The `CASES` videos of `label` called `predicted` that the model was surest of: highest
    // score first for false positives, lowest first for false negatives.
    let surest = |label: Label, predicted: Label| {
        let mut wrong: Vec<&VideoScoreRow> = of_model()
            .filter(|s| s.label == Some(label) && s.predicted == predicted)
            .collect();
        wrong.sort_by(|a, b| {
            let by_score = match predicted {
                Label::Fake => b.score.total_cmp(&a.score),
                Label::Real => a.score.total_cmp(&b.score),
            };
            by_score.then(a.video_id.cmp(&b.video_id))
        });
        wrong.truncate(CASES);
        wrong
    };
    let mut cases = surest(Label::Real, Label::Fake);
    cases.extend(surest(Label::Fake, Label::Real));
    cases
}

fn model_gallery(
    g: &GalleryInput,
    model: &TrainedModelRow,
    wrong: &[&VideoScoreRow],
    samples: &BTreeMap<&str, Vec<ModelSample>>,
) -> Result<GalleryModel, StageError> {
    let no_samples = Vec::new();
    // Per case: its frame scores in time order and the samples of its deciding frames.
    let mut timelines = Vec::new();
    let mut deciding: Vec<Vec<&ModelSample>> = Vec::new();
    for case in wrong {
        let mut frames: Vec<&FrameScoreRow> = g
            .frame_scores
            .iter()
            .filter(|f| f.model == model.model && f.video_id == case.video_id && f.split == g.split)
            .collect();
        frames.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
        let scores: Vec<f64> = frames.iter().map(|f| f64::from(f.score)).collect();
        let of_video = samples.get(case.video_id.as_str()).unwrap_or(&no_samples);
        let chosen = deciding_frames(
            &scores,
            case.predicted == Label::Fake,
            explain::DECIDING_FRAMES,
        )
        .into_iter()
        .filter_map(|k| {
            of_video
                .iter()
                .find(|s| s.sample_index == frames[k].sample_index)
        })
        .collect();
        deciding.push(chosen);
        timelines.push(frames);
    }
    let (saliency, unavailable) = match explain::available(model) {
        Err(reason) => (None, Some(reason.to_string())),
        Ok(()) => {
            let requests: Vec<FramesToExplain> = wrong
                .iter()
                .zip(&deciding)
                .map(|(case, samples)| FramesToExplain {
                    video_id: &case.video_id,
                    samples: samples.clone(),
                    evidence: if case.predicted == Label::Fake {
                        Evidence::Fake
                    } else {
                        Evidence::Real
                    },
                })
                .collect();
            let maps = explain::saliency(model, &requests)
                .map_err(|e| StageError::Other(format!("report gallery: {e}")))?;
            (Some(maps), None)
        }
    };
    let mut cases = Vec::new();
    for (n, case) in wrong.iter().enumerate() {
        let of_video = samples.get(case.video_id.as_str()).unwrap_or(&no_samples);
        let strip: Vec<&ModelSample> = spread(of_video, STRIP_FACES);
        let faces = strip
            .iter()
            .map(|s| jpeg_thumbnail(&s.face, FACE_SIDE))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| StageError::Other(format!("face strip of {}: {e}", case.video_id)))?;
        let timeline = timeline_png(
            &format!("{}: frame scores over time", model.model),
            &[Timeline {
                video_id: case.video_id.clone(),
                fake: case.label.map(|l| l == Label::Fake),
                points: timelines[n]
                    .iter()
                    .map(|f| (f.time_s, f64::from(f.score)))
                    .collect(),
            }],
            g.threshold,
        )?;
        let mut maps = Vec::new();
        for s in saliency.iter().flat_map(|all| &all[n]) {
            let jpeg = jpeg_thumbnail(&s.overlay, SALIENCY_SIDE)
                .map_err(|e| StageError::Other(format!("saliency of {}: {e}", case.video_id)))?;
            maps.push((s.frame_index, s.p_fake, jpeg));
        }
        cases.push(Case {
            kind: if case.predicted == Label::Fake {
                Kind::FalsePositive
            } else {
                Kind::FalseNegative
            },
            video_id: case.video_id.clone(),
            score: case.score,
            faces,
            timeline,
            saliency: maps,
        });
    }
    Ok(GalleryModel {
        model: model.model.clone(),
        saliency_unavailable: unavailable,
        cases,
    })
}

/// At most `limit` of `samples` (in table order, which is time order), spread evenly: the rule
/// of [`crate::model_inputs::spread_frames`], over decoded samples.
fn spread(samples: &[ModelSample], limit: u32) -> Vec<&ModelSample> {
    let limit = limit as usize;
    if samples.len() <= limit {
        return samples.iter().collect();
    }
    (0..limit)
        .map(|i| &samples[i * samples.len() / limit])
        .collect()
}

/// The rows of table `R` in `input` whose `video_id` is in `videos`, filtered batch by batch
/// before they become rows: the report reads the crops of a handful of videos, not of the
/// dataset.
fn rows_of_videos<R: TableRow>(
    input: &StageInput,
    videos: &BTreeSet<&str>,
) -> Result<Vec<R>, StageError> {
    let mut rows = Vec::new();
    for batch in input.table(&R::TABLE)? {
        let kept = keep_videos(batch, videos)
            .map_err(|e| StageError::Other(format!("table {}: {e}", R::TABLE.name)))?;
        if kept.num_rows() > 0 {
            rows.extend(R::from_batch(&kept)?);
        }
    }
    Ok(rows)
}

fn keep_videos(batch: &RecordBatch, videos: &BTreeSet<&str>) -> Result<RecordBatch, String> {
    let ids = batch
        .column_by_name("video_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("no string column video_id")?;
    let mask: BooleanArray = (0..ids.len())
        .map(|i| Some(!ids.is_null(i) && videos.contains(ids.value(i))))
        .collect();
    filter_record_batch(batch, &mask).map_err(|e| e.to_string())
}
