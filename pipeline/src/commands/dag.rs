//! `dfd dag`: the graph of stages as text, Graphviz DOT or Mermaid.

use clap::ValueEnum;

use crate::runner::Pipeline;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DagFormat {
    Text,
    Dot,
    Mermaid,
}

pub fn render(pipeline: &Pipeline, format: DagFormat) -> String {
    let edges: Vec<(&str, &str, String)> = pipeline
        .stages()
        .iter()
        .flat_map(|stage| {
            stage
                .inputs()
                .iter()
                .map(move |input| (input.stage, stage.name(), input.table.name.to_string()))
        })
        .collect();
    let mut out = String::new();
    match format {
        DagFormat::Text => {
            for stage in pipeline.stages() {
                let reads: Vec<String> = stage
                    .inputs()
                    .iter()
                    .map(|i| format!("{}.{}", i.stage, i.table.name))
                    .collect();
                let writes: Vec<&str> = stage.outputs().iter().map(|t| t.name).collect();
                let reads = if reads.is_empty() {
                    "the dataset folder".to_string()
                } else {
                    reads.join(", ")
                };
                out.push_str(&format!(
                    "{:<8} v{}  reads {reads}\n{:<12}writes {}\n",
                    stage.name(),
                    stage.version(),
                    "",
                    writes.join(", ")
                ));
            }
        }
        DagFormat::Dot => {
            out.push_str("digraph dfd {\n  rankdir=LR;\n");
            for stage in pipeline.stages() {
                out.push_str(&format!("  {};\n", stage.name()));
            }
            for (from, to, table) in &edges {
                out.push_str(&format!("  {from} -> {to} [label=\"{table}\"];\n"));
            }
            out.push_str("}\n");
        }
        DagFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for (from, to, table) in &edges {
                out.push_str(&format!("  {from} -->|{table}| {to}\n"));
            }
        }
    }
    out
}
