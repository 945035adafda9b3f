//! Scheduling the stages on dagrs: one node per stage, one edge per upstream stage it reads.
//!
//! Each node receives its parents' results on its in-channels, runs its stage on a blocking thread
//! (stages are CPU work; the async threads only schedule) and broadcasts its own result to its
//! children, failure included, so a child of a failed stage is skipped instead of waiting forever.
//! dagrs's own checkpointing is not used: the cache is the checkpoint, and a rerun resumes from it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use dagrs::{
    async_trait::async_trait, Action, Content, DefaultNode, EnvVar, Graph, InChannels, Node,
    NodeTable, OutChannels, Output,
};

use super::executor::{Executor, Mode, Upstream};
use super::report::{Outcome, StageReport};
use super::Pipeline;
use crate::cache::Manifest;

/// What a node tells its children.
enum NodeResult {
    Ready(Arc<Manifest>),
    /// The named stage failed (this one or one further up).
    Failed(String),
}

struct StageAction {
    pipeline: Arc<Pipeline>,
    index: usize,
    mode: Mode,
    executor: Arc<Executor>,
    reports: Arc<Mutex<BTreeMap<usize, StageReport>>>,
}

#[async_trait]
impl Action for StageAction {
    async fn run(
        &self,
        in_channels: &mut InChannels,
        out_channels: &mut OutChannels,
        _env: Arc<EnvVar>,
    ) -> Output {
        let name = self.pipeline.stages[self.index].name();
        let received = in_channels
            .map(|content| content.ok().and_then(|c| c.into_inner::<NodeResult>()))
            .await;
        let mut upstream = Upstream::new();
        let mut blocked = None;
        for result in received {
            match result.as_deref() {
                Some(NodeResult::Ready(manifest)) => {
                    upstream.insert(manifest.stage.clone(), manifest.clone());
                }
                Some(NodeResult::Failed(stage)) => blocked = Some(stage.clone()),
                None => blocked = Some("an upstream stage".to_string()),
            }
        }
        let (result, report) = match blocked {
            Some(stage) => (
                NodeResult::Failed(stage.clone()),
                StageReport::not_run(name, Outcome::Skipped(format!("{stage} failed"))),
            ),
            None => {
                let pipeline = self.pipeline.clone();
                let executor = self.executor.clone();
                let (index, mode) = (self.index, self.mode);
                let joined = tokio::task::spawn_blocking(move || {
                    executor.execute(pipeline.stages[index].as_ref(), &upstream, mode)
                })
                .await
                .map_err(|e| anyhow!("stage {name} panicked: {e}"))
                .and_then(|r| r);
                match joined {
                    Ok((manifest, report)) => (NodeResult::Ready(manifest), report),
                    Err(e) => {
                        let message = format!("{e:#}");
                        tracing::error!(stage = name, "{message}");
                        (
                            NodeResult::Failed(name.to_string()),
                            StageReport::not_run(name, Outcome::Failed(message)),
                        )
                    }
                }
            }
        };
        self.executor.note_ended(&report);
        if let Ok(mut reports) = self.reports.lock() {
            reports.insert(self.index, report);
        }
        out_channels.broadcast(Content::new(result)).await;
        Output::empty()
    }
}

/// Runs the stages that `modes` selects (index -> mode) and returns their reports in stage order.
pub async fn run_dag(
    pipeline: Arc<Pipeline>,
    executor: Arc<Executor>,
    modes: &BTreeMap<usize, Mode>,
) -> Result<BTreeMap<usize, StageReport>> {
    let reports = Arc::new(Mutex::new(BTreeMap::new()));
    let mut table = NodeTable::default();
    let mut graph = Graph::new();
    let mut ids = BTreeMap::new();
    for (&index, &mode) in modes {
        let node = DefaultNode::with_action(
            pipeline.stages[index].name().to_string(),
            StageAction {
                pipeline: pipeline.clone(),
                index,
                mode,
                executor: executor.clone(),
                reports: reports.clone(),
            },
            &mut table,
        );
        ids.insert(index, node.id());
        graph
            .add_node(node)
            .map_err(|e| anyhow!("cannot add stage node: {e:?}"))?;
    }
    for &from in modes.keys() {
        let children: Vec<_> = pipeline
            .children(from)
            .into_iter()
            .filter_map(|child| ids.get(&child).copied())
            .collect();
        if !children.is_empty() {
            graph
                .add_edge(ids[&from], children)
                .map_err(|e| anyhow!("cannot add stage edge: {e:?}"))?;
        }
    }
    graph.set_env(EnvVar::new(table));
    graph
        .async_start()
        .await
        .map_err(|e| anyhow!("the DAG scheduler failed: {e:?}"))?;
    let reports = reports
        .lock()
        .map_err(|_| anyhow!("a stage thread panicked while reporting"))?
        .clone();
    Ok(reports)
}
