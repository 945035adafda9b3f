//! The DAG of stages and how a run selects and executes them.

pub mod array;
mod dag;
#[cfg(test)]
mod evaluation_tests;
pub mod executor;
pub mod report;
mod shard;
pub mod share;
pub mod stream;
mod wiring;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use dfd_stages::aggregate::Aggregate;
use dfd_stages::augment::Augment;
use dfd_stages::crop::Crop;
use dfd_stages::cues::Cues;
use dfd_stages::decode::Decode;
use dfd_stages::detect::Detect;
use dfd_stages::ingest::Ingest;
use dfd_stages::report::{Provenance, Report};
use dfd_stages::score::Score;
use dfd_stages::ssim::SsimStage;
use dfd_stages::train::{ImportedModels, Train};
use dfd_stages::Stage;

pub use dag::run_dag;
pub use executor::{Executor, Mode, Upstream};
pub use report::{Outcome, StageReport};
pub use share::{Share, ShareError};
pub use stream::StreamPlan;
pub use wiring::WiringError;

use crate::config::Config;

/// The stages of the pipeline in a topological order, with their edges derived from the tables each
/// one reads. Only [`Pipeline::from_stages`] makes one, so every pipeline has had its wiring checked.
pub struct Pipeline {
    stages: Vec<Arc<dyn Stage>>,
    /// Direct parents of each stage (indices into `stages`), resolved once by the wiring check.
    parents: Vec<BTreeSet<usize>>,
}

impl Pipeline {
    /// Every stage, configured. `dataset` must be absolute. Fails if a stage reads a table no
    /// earlier stage writes (a bug in the stages, caught before anything runs).
    pub fn new(config: &Config, dataset: PathBuf) -> Result<Pipeline, WiringError> {
        let mut stages = Self::preprocessing(config, dataset);
        stages.extend::<[Arc<dyn Stage>; 3]>([
            Arc::new(Augment::new(config.train_params())),
            Arc::new(Train::new(
                config.train_params(),
                config.paths.imagenet_weights.clone(),
            )),
            Arc::new(Score::new(config.score.clone())),
        ]);
        stages.extend(Self::evaluation_stages(config));
        Self::from_stages(stages)
    }

    /// The pipeline of `dfd evaluate`: the dataset preprocessed as in [`Pipeline::new`] (with
    /// the settings the caller took from the models' training), `train` replaced by `models`
    /// trained elsewhere (and no `augment`, which only training reads), every video scored, and
    /// a report that names the models' source. Same stage names, hence the same cache layout and
    /// commands (`dfd inspect score`, `dfd verify`).
    pub fn for_evaluation(
        config: &Config,
        dataset: PathBuf,
        models: ImportedModels,
        provenance: Provenance,
    ) -> Result<Pipeline, WiringError> {
        let mut stages = Self::preprocessing(config, dataset);
        stages.extend::<[Arc<dyn Stage>; 4]>([
            Arc::new(models),
            Arc::new(Score::every_video(config.score.clone())),
            Arc::new(Aggregate::new(config.aggregate.clone())),
            Arc::new(Report::evaluating(config.report.clone(), provenance)),
        ]);
        Self::from_stages(stages)
    }

    /// The per-video stages from the dataset to the SSIM features, and the model-free cues: what
    /// training and evaluating a dataset share.
    fn preprocessing(config: &Config, dataset: PathBuf) -> Vec<Arc<dyn Stage>> {
        vec![
            Arc::new(Ingest::new(dataset)),
            Arc::new(Decode::new(config.decode.clone())),
            Arc::new(
                Detect::new(config.detect.clone(), config.paths.mtcnn.clone())
                    .with_nice(config.runner.detection_nice),
            ),
            Arc::new(Crop::new(config.crop.clone())),
            Arc::new(SsimStage::new(config.ssim.clone())),
            Arc::new(Cues),
        ]
    }

    /// A pipeline of `stages`, in that order, once every input of each names an earlier stage and
    /// a table that stage declares in `outputs()`; otherwise the error names the stage, the input
    /// and what exists.
    pub fn from_stages(stages: Vec<Arc<dyn Stage>>) -> Result<Pipeline, WiringError> {
        let parents = wiring::resolve_parents(&stages)?;
        Ok(Pipeline { stages, parents })
    }

    /// The stages, in topological order.
    pub fn stages(&self) -> &[Arc<dyn Stage>] {
        &self.stages
    }

    /// The stages after `score` and `train`: `aggregate` (video scores, metrics with bootstrap
    /// intervals, baselines) and `report` (summary and plots, copied to `<workspace>/report/`).
    pub fn evaluation_stages(config: &Config) -> Vec<Arc<dyn Stage>> {
        vec![
            Arc::new(Aggregate::new(config.aggregate.clone())),
            Arc::new(Report::new(config.report.clone())),
        ]
    }

    pub fn index_of(&self, name: &str) -> Result<usize> {
        match self.stages.iter().position(|s| s.name() == name) {
            Some(index) => Ok(index),
            None => bail!(
                "no stage named `{name}`; the stages are: {}",
                self.stages
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Direct parents of stage `index`: the stages whose tables it reads (every one of them: the
    /// wiring check refused any input it could not resolve).
    pub fn parents(&self, index: usize) -> BTreeSet<usize> {
        self.parents[index].clone()
    }

    pub fn children(&self, index: usize) -> BTreeSet<usize> {
        (0..self.stages.len())
            .filter(|&child| self.parents(child).contains(&index))
            .collect()
    }

    fn closure(&self, start: usize, next: impl Fn(usize) -> BTreeSet<usize>) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(i) = todo.pop() {
            for j in next(i) {
                if seen.insert(j) {
                    todo.push(j);
                }
            }
        }
        seen
    }

    pub fn ancestors(&self, index: usize) -> BTreeSet<usize> {
        self.closure(index, |i| self.parents(i))
    }

    pub fn descendants(&self, index: usize) -> BTreeSet<usize> {
        self.closure(index, |i| self.children(i))
    }
}

/// Which stages a run executes, and how.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Run just this stage (recomputed); its upstream must be cached.
    pub only: Option<String>,
    /// Recompute this stage and everything downstream; its upstream must be cached.
    pub from: Option<String>,
    /// Recompute these stages even if cached; everything else as usual.
    pub force: Vec<String>,
    /// Stop at this stage: run it and its ancestors only (a target, as in DVC's `repro TARGET`).
    pub until: Option<String>,
}

impl Selection {
    /// The mode of every stage the run touches, by index.
    pub fn modes(&self, pipeline: &Pipeline) -> Result<BTreeMap<usize, Mode>> {
        let mut modes = BTreeMap::new();
        if self.only.is_some() && self.from.is_some() {
            bail!("--only and --from cannot be combined");
        }
        if let Some(name) = self.only.as_deref().or(self.from.as_deref()) {
            let target = pipeline.index_of(name)?;
            for i in pipeline.ancestors(target) {
                modes.insert(i, Mode::CacheOnly);
            }
            modes.insert(target, Mode::Force);
            if self.from.is_some() {
                for i in pipeline.descendants(target) {
                    modes.insert(i, Mode::Force);
                }
            }
        } else {
            for i in 0..pipeline.stages.len() {
                modes.insert(i, Mode::Normal);
            }
        }
        if let Some(name) = self.until.as_deref() {
            if self.only.is_some() {
                bail!("--until and --only cannot be combined: --only runs one stage, --until a stage and the stages it needs");
            }
            let target = pipeline.index_of(name)?;
            let mut wanted = pipeline.ancestors(target);
            wanted.insert(target);
            if let Some(from) = self.from.as_deref() {
                if !wanted.contains(&pipeline.index_of(from)?) {
                    bail!("--until {name} stops before --from {from}: nothing would be recomputed");
                }
            }
            modes.retain(|i, _| wanted.contains(i));
        }
        for name in &self.force {
            let index = pipeline.index_of(name)?;
            if modes.insert(index, Mode::Force).is_none() {
                bail!("--force {name}: that stage is not part of this run");
            }
        }
        Ok(modes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_pipeline_is_wired() {
        let pipeline = Pipeline::new(&Config::default(), PathBuf::from("/data")).unwrap();
        let parents = |name| -> Vec<&str> {
            let index = pipeline.index_of(name).unwrap();
            let parents = pipeline.parents(index);
            parents
                .into_iter()
                .map(|i| pipeline.stages()[i].name())
                .collect()
        };
        assert_eq!(parents("ingest"), Vec::<&str>::new());
        assert_eq!(parents("score"), ["ingest", "crop", "ssim", "train"]);
        assert_eq!(
            parents("report"),
            ["crop", "ssim", "train", "score", "aggregate"]
        );
    }

    #[test]
    fn the_evaluation_pipeline_scores_with_models_from_elsewhere() {
        let source = dfd_stages::train::ModelSource {
            workspace: "/ws/a".into(),
            train_output: "0".repeat(64),
            dataset: "/data/a".into(),
        };
        let provenance = Provenance {
            source: source.clone(),
            models: Vec::new(),
            evaluated_on: "/data/b".into(),
        };
        let pipeline = Pipeline::for_evaluation(
            &Config::default(),
            PathBuf::from("/data/b"),
            ImportedModels::new(source, Vec::new(), Vec::new()),
            provenance,
        )
        .unwrap();
        let names: Vec<&str> = pipeline.stages().iter().map(|s| s.name()).collect();
        assert!(!names.contains(&"augment"), "{names:?}");
        let train = pipeline.index_of("train").unwrap();
        assert!(
            pipeline.parents(train).is_empty(),
            "the models come from elsewhere"
        );
        let score = pipeline.index_of("score").unwrap();
        assert!(pipeline.parents(score).contains(&train));
        assert!(pipeline
            .descendants(train)
            .contains(&pipeline.index_of("report").unwrap()));
    }

    #[test]
    fn until_selects_a_stage_and_its_ancestors() {
        let pipeline = Pipeline::new(&Config::default(), PathBuf::from("/data")).unwrap();
        let names = |selection: Selection| -> Vec<(&str, Mode)> {
            selection
                .modes(&pipeline)
                .unwrap()
                .into_iter()
                .map(|(i, m)| (pipeline.stages()[i].name(), m))
                .collect()
        };
        let until = |stage: &str| Selection {
            until: Some(stage.into()),
            ..Selection::default()
        };
        assert_eq!(
            names(until("crop")),
            [
                ("ingest", Mode::Normal),
                ("decode", Mode::Normal),
                ("detect", Mode::Normal),
                ("crop", Mode::Normal)
            ]
        );
        let from_until = Selection {
            from: Some("detect".into()),
            ..until("crop")
        };
        assert_eq!(
            names(from_until),
            [
                ("ingest", Mode::CacheOnly),
                ("decode", Mode::CacheOnly),
                ("detect", Mode::Force),
                ("crop", Mode::Force)
            ]
        );
        let only_until = Selection {
            only: Some("crop".into()),
            ..until("crop")
        };
        assert!(only_until.modes(&pipeline).is_err());
        let force_outside = Selection {
            force: vec!["train".into()],
            ..until("crop")
        };
        assert!(force_outside.modes(&pipeline).is_err());
    }
}
