//! What a cross-dataset evaluation's report says first: which models, trained on which dataset,
//! were evaluated on which data. Without it a summary of workspace B reads as if its models had
//! been trained on B.

use std::fmt::Write as _;

use serde::Serialize;

use super::html::escape;
use crate::train::{ImportedModel, ModelSource};

/// The models of a `dfd evaluate` run and the data they were evaluated on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub source: ModelSource,
    pub models: Vec<ImportedModel>,
    /// The evaluated dataset folder.
    pub evaluated_on: String,
}

impl Provenance {
    /// The section of `summary.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::from("## Models evaluated\n\n");
        let _ = writeln!(
            md,
            "Models trained on `{}` (workspace `{}`, `train` output `{}`), evaluated on `{}`: \
             every video of it scored whatever its split; unlabelled ones are scored but count \
             in no metric.\n",
            self.source.dataset, self.source.workspace, self.source.train_output, self.evaluated_on
        );
        md.push_str("| model | sha256 of the ONNX export | trained on |\n|---|---|---|\n");
        for m in &self.models {
            let _ = writeln!(
                md,
                "| {} | `{}` | `{}` |",
                m.model, m.sha256, self.source.dataset
            );
        }
        md.push('\n');
        md
    }

    /// The section of `report.html`.
    pub fn html(&self) -> String {
        let mut html = String::from("<section>\n<h2>Models evaluated</h2>\n");
        let _ = writeln!(
            html,
            "<p>Models trained on <code>{}</code> (workspace <code>{}</code>, <code>train</code> \
             output <code>{}</code>), evaluated on <code>{}</code>: every video of it scored \
             whatever its split; unlabelled ones are scored but count in no metric.</p>",
            escape(&self.source.dataset),
            escape(&self.source.workspace),
            escape(&self.source.train_output),
            escape(&self.evaluated_on)
        );
        html.push_str(
            "<table id=\"models\">\n<thead><tr><th>model</th><th>sha256 of the ONNX export</th>\
             <th>trained on</th></tr></thead>\n<tbody>\n",
        );
        for m in &self.models {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(&m.model),
                escape(&m.sha256),
                escape(&self.source.dataset)
            );
        }
        html.push_str("</tbody>\n</table>\n</section>\n");
        html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            source: ModelSource {
                workspace: "/ws/a".into(),
                train_output: "abc123".into(),
                dataset: "/data/a<b>".into(),
            },
            models: vec![ImportedModel {
                model: "mesonet4-single".into(),
                sha256: "f00d".into(),
            }],
            evaluated_on: "/data/b".into(),
        }
    }

    #[test]
    fn both_forms_name_each_model_its_hash_and_both_datasets() {
        let p = provenance();
        let md = p.markdown();
        assert!(
            md.contains("| mesonet4-single | `f00d` | `/data/a<b>` |"),
            "{md}"
        );
        assert!(md.contains("evaluated on `/data/b`"), "{md}");
        let html = p.html();
        assert!(
            html.contains("<td>mesonet4-single</td><td><code>f00d</code></td>"),
            "{html}"
        );
        assert!(
            html.contains("/data/a&lt;b&gt;") && !html.contains("a<b>"),
            "{html}"
        );
        assert!(html.contains("<code>/data/b</code>"), "{html}");
    }
}
