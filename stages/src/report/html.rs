//! `report.html`: the summary, its notes and every plot of the report on one page that opens
//! anywhere, offline, years later.
//!
//! Self-contained by construction: the plots are the very PNGs the report writes next to it,
//! inlined as `data:` URIs; the style is one inline `<style>`; there is no script and no reference
//! to any other file or host. The table's cells come from the same formatting functions as
//! summary.md's (`summary::headline_cells`), so the two cannot disagree, flags included. Every
//! text that comes from the data (model names, splits, rules) is escaped, and nothing varies
//! between two renders of the same tables (no clock, no map in hash order), so the stage's output
//! stays byte-stable and its cache valid.

use std::fmt::Write as _;

use dfd_schemas::MetricsRow;

use super::gallery::{Case, GalleryModel, Kind};
use super::summary::{self, RowKind, SummaryChoice, HEADLINE_COLUMNS, OTHER_COLUMNS};

/// The page's file name in `report_files`.
pub const FILE_NAME: &str = "report.html";

/// One plot of the report, shown inline.
pub struct Figure<'a> {
    /// Its file name in the report (`roc-test.png`), shown under it so a reader can find the file.
    pub name: &'a str,
    /// What it shows (the title it was drawn with).
    pub caption: String,
    /// The split it is about; `None` for plots over all splits (training curves).
    pub split: Option<&'a str>,
    /// The PNG bytes, exactly as written to the report folder.
    pub png: &'a [u8],
}

/// The page. Figures appear grouped: those of the quoted split first, then each other split's in
/// name order, then those over all splits; within a group in the order given.
/// `provenance` is an HTML section placed right under the header (a cross-dataset evaluation's
/// models and data); `gallery`, each model's most confident errors, follows the plots.
pub fn page(
    metrics: &[MetricsRow],
    choice: &SummaryChoice,
    figures: &[Figure],
    provenance: Option<&str>,
    gallery: &[GalleryModel],
) -> String {
    let rows = summary::summary_rows(metrics, choice);
    let mut html = String::with_capacity(
        4096 + figures
            .iter()
            .map(|f| f.png.len() * 4 / 3 + 256)
            .sum::<usize>(),
    );
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        html,
        "<title>dfd report: {} split, {} rule</title>",
        escape(&choice.split),
        escape(&choice.rule)
    );
    let _ = writeln!(html, "<style>{STYLE}</style>\n</head>\n<body>");

    html.push_str("<header>\n<h1>Result summary</h1>\n");
    if rows.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", inline(&summary::nothing_scored(choice)));
    } else {
        let _ = writeln!(html, "<p>{}</p>", inline(&summary::intro(&rows, choice)));
    }
    let _ = writeln!(html, "<p>{}</p>\n</header>", inline(&scope(metrics, &rows)));
    if let Some(section) = provenance {
        html.push_str(section);
    }

    if !rows.is_empty() {
        html.push_str("<section>\n<h2>Summary</h2>\n");
        html.push_str("<table id=\"summary\">\n");
        head_row(&mut html, &HEADLINE_COLUMNS);
        html.push_str("<tbody>\n");
        for (kind, cells) in summary::headline_cells(&rows) {
            let class = match kind {
                RowKind::Detector => "detector",
                RowKind::Flagged => "detector flagged",
                RowKind::Baseline => "baseline",
                RowKind::Cue => "cue",
            };
            body_row(&mut html, class, &HEADLINE_COLUMNS, &cells);
        }
        html.push_str("</tbody>\n</table>\n<ul class=\"notes\">\n");
        for note in summary::notes(&rows) {
            let _ = writeln!(html, "<li>{}</li>", inline(&note));
        }
        html.push_str("</ul>\n</section>\n");
    }

    let mut groups: Vec<(String, Vec<&Figure>)> = Vec::new();
    let mut splits: Vec<&str> = figures.iter().filter_map(|f| f.split).collect();
    splits.sort_unstable_by_key(|s| (*s != choice.split, *s));
    splits.dedup();
    for split in splits {
        let title = if split == choice.split {
            format!("Plots of the {split} split")
        } else {
            format!("Plots of the {split} split (not the one quoted above)")
        };
        let of_split = figures.iter().filter(|f| f.split == Some(split)).collect();
        groups.push((title, of_split));
    }
    let overall: Vec<&Figure> = figures.iter().filter(|f| f.split.is_none()).collect();
    if !overall.is_empty() {
        groups.push(("Training".to_string(), overall));
    }
    for (title, group) in groups {
        let _ = writeln!(html, "<section>\n<h2>{}</h2>", escape(&title));
        for figure in group {
            push_figure(&mut html, figure);
        }
        html.push_str("</section>\n");
    }

    if !gallery.is_empty() {
        push_gallery(&mut html, gallery, choice);
    }

    let others = summary::other_rows(metrics, &rows);
    if !rows.is_empty() && !others.is_empty() {
        html.push_str("<section>\n<h2>Other splits, levels and rules</h2>\n");
        html.push_str("<table id=\"others\">\n");
        head_row(&mut html, &OTHER_COLUMNS);
        html.push_str("<tbody>\n");
        for cells in summary::other_cells(&others) {
            body_row(&mut html, "other", &OTHER_COLUMNS, &cells);
        }
        html.push_str("</tbody>\n</table>\n</section>\n");
    }

    html.push_str(
        "<footer>\n<p>Written by dfd's <code>report</code> stage. The same table, at full \
         precision, is in <code>summary.csv</code> and <code>summary.parquet</code>; each plot \
         is also a PNG file of the name under it, in the same folder. This page loads nothing \
         from anywhere and runs no script.</p>\n</footer>\n</body>\n</html>\n",
    );
    html
}

/// The line under the intro: which detectors, baselines and splits the page is about (the stage
/// sees the tables, not the dataset's folder or the run: those would tie the bytes to one
/// machine and one run, and the cache is shared across runs).
fn scope(metrics: &[MetricsRow], rows: &[&MetricsRow]) -> String {
    let kinds = summary::headline_cells(rows);
    let detectors: Vec<String> = rows
        .iter()
        .zip(&kinds)
        .filter(|(_, (kind, _))| matches!(kind, RowKind::Detector | RowKind::Flagged))
        .map(|(r, _)| format!("`{}`", r.model))
        .collect();
    let count = |wanted: RowKind| kinds.iter().filter(|(k, _)| *k == wanted).count();
    let mut splits: Vec<&str> = metrics.iter().map(|m| m.split.as_str()).collect();
    splits.sort_unstable();
    splits.dedup();
    let splits: Vec<String> = splits.iter().map(|s| format!("`{s}`")).collect();
    format!(
        "Detectors: {}. Baselines: {} constant, {} cue. Splits with metrics: {}.",
        if detectors.is_empty() {
            "none".to_string()
        } else {
            detectors.join(", ")
        },
        count(RowKind::Baseline),
        count(RowKind::Cue),
        if splits.is_empty() {
            "none".to_string()
        } else {
            splits.join(", ")
        },
    )
}

fn head_row(html: &mut String, heads: &[&str]) {
    html.push_str("<thead><tr>");
    for head in heads {
        let class = if summary::right_aligned(head) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(html, "<th{class}>{}</th>", escape(head));
    }
    html.push_str("</tr></thead>\n");
}

fn body_row(html: &mut String, class: &str, heads: &[&str], cells: &[String]) {
    let _ = write!(html, "<tr class=\"{class}\">");
    for (head, cell) in heads.iter().zip(cells) {
        let class = if summary::right_aligned(head) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(html, "<td{class}>{}</td>", escape(cell));
    }
    html.push_str("</tr>\n");
}

fn push_figure(html: &mut String, figure: &Figure) {
    let size = png_size(figure.png)
        .map(|(w, h)| format!(" width=\"{w}\" height=\"{h}\""))
        .unwrap_or_default();
    let _ = write!(
        html,
        "<figure>\n<img src=\"data:image/png;base64,{}\"{size} alt=\"{}\" data-file=\"{}\">\n\
         <figcaption>{} (<code>{}</code>)</figcaption>\n</figure>\n",
        base64(figure.png),
        escape(&figure.caption),
        escape(figure.name),
        escape(&figure.caption),
        escape(figure.name),
    );
}

/// The error gallery: per model, its false positives then its false negatives, each a row of
/// face crops, the timeline and the saliency of the deciding frames.
fn push_gallery(html: &mut String, gallery: &[GalleryModel], choice: &SummaryChoice) {
    let _ = writeln!(
        html,
        "<section id=\"errors\">\n<h2>Error gallery: the most confident mistakes on the {} \
         split ({} rule)</h2>\n<p>For each model, up to three REAL videos it scored highest \
         above the threshold and three FAKE videos it scored lowest below it: a strip of their \
         face crops, their frame scores over time, and, for CNN detectors, the Grad-CAM \
         saliency of the frames that decided the wrong verdict (red: what pushed the score \
         toward it).</p>",
        escape(&choice.split),
        escape(&choice.rule)
    );
    for model in gallery {
        let _ = writeln!(
            html,
            "<div class=\"gallery\" data-model=\"{0}\">\n<h3>{0}</h3>",
            escape(&model.model)
        );
        if let Some(reason) = &model.saliency_unavailable {
            let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(reason));
        }
        if model.cases.is_empty() {
            html.push_str("<p>No labelled video of this split was misclassified.</p>\n");
        }
        for kind in [Kind::FalsePositive, Kind::FalseNegative] {
            let cases: Vec<&Case> = model.cases.iter().filter(|c| c.kind == kind).collect();
            if cases.is_empty() {
                continue;
            }
            let _ = writeln!(html, "<h4>{}</h4>", kind.title());
            for case in cases {
                push_case(html, case);
            }
        }
        html.push_str("</div>\n");
    }
    html.push_str("</section>\n");
}

fn push_case(html: &mut String, case: &Case) {
    let video = escape(&case.video_id);
    let _ = writeln!(
        html,
        "<div class=\"case {}\" data-video=\"{video}\">\n<p><code>{video}</code>, video \
         score {:.3}</p>\n<div class=\"strip faces\">",
        case.kind.class(),
        case.score
    );
    for (i, jpeg) in case.faces.iter().enumerate() {
        let _ = write!(
            html,
            "<img src=\"data:image/jpeg;base64,{}\" alt=\"face {} of {video}\">",
            base64(jpeg),
            i + 1
        );
    }
    html.push_str("</div>\n");
    let size = png_size(&case.timeline)
        .map(|(w, h)| format!(" width=\"{w}\" height=\"{h}\""))
        .unwrap_or_default();
    let _ = writeln!(
        html,
        "<img class=\"timeline\" src=\"data:image/png;base64,{}\"{size} alt=\"frame scores \
         of {video} over time\">",
        base64(&case.timeline)
    );
    if !case.saliency.is_empty() {
        html.push_str("<div class=\"strip saliency\">");
        for (frame, p_fake, jpeg) in &case.saliency {
            let _ = write!(
                html,
                "<figure><img src=\"data:image/jpeg;base64,{}\" alt=\"saliency of frame \
                 {frame} of {video}\"><figcaption>frame {frame}, P(FAKE) {p_fake:.3}\
                 </figcaption></figure>",
                base64(jpeg)
            );
        }
        html.push_str("</div>\n");
    }
    html.push_str("</div>\n");
}

/// Width and height from a PNG's header (IHDR is always the first chunk), so the page reserves
/// the plot's room before drawing it; `None` for bytes that are not a PNG.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || !png.starts_with(SIGNATURE) || &png[12..16] != b"IHDR" {
        return None;
    }
    let word =
        |at: usize| -> Option<u32> { Some(u32::from_be_bytes(png[at..at + 4].try_into().ok()?)) };
    Some((word(16)?, word(20)?))
}

/// Text as HTML, safe in element content and in double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The summary's notes use Markdown's `code` spans; here they become `<code>`, the rest escaped.
/// A lone backtick stays a backtick.
fn inline(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        let is_code = i % 2 == 1 && i + 1 < parts.len();
        if is_code {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&escape(part));
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), for the `data:` URIs: a dozen lines rather than a
/// dependency of the whole stages crate.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Plain, print-friendly style; system fonts only (a web font would be a download).
const STYLE: &str = "\n\
body{font-family:\"DejaVu Sans\",Helvetica,Arial,sans-serif;color:#222;background:#fff;\
max-width:1100px;margin:1.5em auto;padding:0 1em;line-height:1.45}\n\
h1{font-size:1.6em;margin:0 0 .4em}\n\
h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc;padding-bottom:.2em}\n\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}\n\
th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\n\
th{background:#e8edf3}\n\
td+td{white-space:nowrap}\n\
.num{text-align:right;font-variant-numeric:tabular-nums}\n\
tr.detector td:first-child{font-weight:bold}\n\
tr.flagged td:first-child{background:#fde9c4}\n\
tr.baseline td,tr.cue td{background:#f6f6f6;color:#444}\n\
ul.notes{font-size:.9em;color:#333}\n\
code{font-family:\"DejaVu Sans Mono\",monospace;font-size:.92em;background:#f1f1f1;padding:0 .2em}\n\
figure{margin:1.2em 0}\n\
img{max-width:100%;height:auto;border:1px solid #ddd}\n\
figcaption{font-size:.9em;color:#555}\n\
footer{margin-top:2em;font-size:.85em;color:#666}\n\
.gallery h3{margin-bottom:.2em}\n\
.case{border-left:4px solid #bbb;padding-left:.8em;margin:1em 0}\n\
.case.fp{border-color:#d98b2b}\n\
.case.fn{border-color:#4a7fb5}\n\
.strip{display:flex;flex-wrap:wrap;gap:4px;align-items:flex-start}\n\
.strip figure{margin:0;width:112px}\n\
.strip figcaption{font-size:.75em;line-height:1.2}\n\
.strip img{border:none}\n\
img.timeline{max-width:640px}\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, rule: &str, auc: f64) -> MetricsRow {
        MetricsRow {
            model: model.into(),
            split: "test".into(),
            level: "video".into(),
            rule: rule.into(),
            n: 4,
            n_fake: 2,
            n_real: 2,
            unscored: 0,
            threshold: 0.5,
            accuracy: Some(0.75),
            precision: None,
            recall: Some(0.5),
            f1: Some(0.667),
            roc_auc: Some(auc),
            average_precision: None,
            log_loss: None,
            eer: None,
            tp: 1,
            fp: 0,
            tn: 2,
            fn_: 1,
            accuracy_ci_low: Some(0.25),
            accuracy_ci_high: Some(1.0),
            roc_auc_ci_low: Some(0.5),
            roc_auc_ci_high: Some(1.0),
            bootstrap_resamples: 100,
            bootstrap_auc_skipped: 0,
            parameters: Some(24_233),
        }
    }

    fn choice() -> SummaryChoice {
        SummaryChoice {
            split: "test".into(),
            rule: "mean".into(),
        }
    }

    /// A model name that would be markup, a script and a broken attribute if pasted raw.
    const HOSTILE: &str = "<script>alert(\"x\")</script>&'<img src=x onerror=y>";

    fn metrics() -> Vec<MetricsRow> {
        let mut other_split = row("mesonet4-single", "mean", 0.6);
        other_split.split = "val<b>".into();
        vec![
            row("mesonet4-single", "mean", 0.9),
            row(HOSTILE, "mean", 0.55),
            row("always-fake", "constant", 0.5),
            row("cue-bitrate", "cue", 0.3),
            other_split,
        ]
    }

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("mesonet4-single — 0.5"), "mesonet4-single — 0.5");
        assert_eq!(
            inline("by `a<b>` and `c`"),
            "by <code>a&lt;b&gt;</code> and <code>c</code>"
        );
        assert_eq!(inline("a lone ` <tick>"), "a lone ` &lt;tick&gt;");
    }

    #[test]
    fn data_text_is_escaped_everywhere() {
        let png = [0u8; 8];
        let figures = [Figure {
            name: "roc-test.png",
            caption: format!("ROC of {HOSTILE}"),
            split: Some("test"),
            png: &png,
        }];
        let html = page(&metrics(), &choice(), &figures, None, &[]);
        for raw in ["<script", "<img src=x", "alert(\"x\")", "<b>"] {
            assert!(
                !html.contains(raw),
                "`{raw}` is in the page unescaped:\n{html}"
            );
        }
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"),
            "{html}"
        );
        // The flag is in the row's name as summary.md writes it, escaped like the rest.
        assert!(
            html.contains("&lt;img src=x onerror=y&gt; (not better than cue-bitrate)</td>"),
            "{html}"
        );
        assert!(html.contains("val&lt;b&gt;"), "{html}");
    }

    #[test]
    fn the_page_is_self_contained_and_deterministic() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x02\xd0\0\0\x02\x80rest".to_vec();
        let figures = [
            Figure {
                name: "training-curves.png",
                caption: "Training curves".into(),
                split: None,
                png: &png,
            },
            Figure {
                name: "roc-val.png",
                caption: "ROC, val".into(),
                split: Some("val"),
                png: &png,
            },
            Figure {
                name: "roc-test.png",
                caption: "ROC, test".into(),
                split: Some("test"),
                png: &png,
            },
        ];
        let html = page(&metrics(), &choice(), &figures, None, &[]);
        assert_eq!(html, page(&metrics(), &choice(), &figures, None, &[]));
        let lower = html.to_ascii_lowercase();
        for reference in ["http://", "https://", "<script", "<link", "@import", "url("] {
            assert!(!lower.contains(reference), "`{reference}` in\n{html}");
        }
        // Every image is a data URI of the PNG's bytes, sized from its header.
        let data = format!("src=\"data:image/png;base64,{}\"", base64(&png));
        assert_eq!(html.matches("<img ").count(), 3, "{html}");
        assert_eq!(html.matches(&data).count(), 3, "{html}");
        assert_eq!(html.matches(" width=\"720\" height=\"640\"").count(), 3);
        // The quoted split's plots first, the training curves last.
        let at = |name: &str| html.find(&format!("data-file=\"{name}\"")).unwrap();
        assert!(at("roc-test.png") < at("roc-val.png"));
        assert!(at("roc-val.png") < at("training-curves.png"));
    }

    #[test]
    fn the_table_holds_summary_md_cells() {
        let metrics = metrics();
        let html = page(&metrics, &choice(), &[], None, &[]);
        let md = summary::markdown(&metrics, &choice());
        let rows = summary::summary_rows(&metrics, &choice());
        assert_eq!(rows.len(), 4);
        for (_, cells) in summary::headline_cells(&rows) {
            assert!(md.contains(&format!("| {} |", cells.join(" | "))), "{md}");
            let tds: String = HEADLINE_COLUMNS
                .iter()
                .zip(&cells)
                .map(|(head, cell)| match summary::right_aligned(head) {
                    true => format!("<td class=\"num\">{}</td>", escape(cell)),
                    false => format!("<td>{}</td>", escape(cell)),
                })
                .collect();
            assert!(html.contains(&tds), "{tds} not in\n{html}");
        }
        assert!(html.contains("<tr class=\"detector flagged\">"), "{html}");
        assert!(html.contains("0.750 [0.250, 1.000]"), "{html}");
    }

    #[test]
    fn a_provenance_section_comes_before_the_summary() {
        let metrics = metrics();
        let section = "<section>\n<h2>Models evaluated</h2>\n</section>\n";
        let html = page(&metrics, &choice(), &[], Some(section), &[]);
        let at = |text: &str| {
            html.find(text)
                .unwrap_or_else(|| panic!("{text} not in {html}"))
        };
        assert!(at("</header>") < at(section) && at(section) < at("<h2>Summary</h2>"));
        assert!(!page(&metrics, &choice(), &[], None, &[]).contains("Models evaluated"));
    }

    #[test]
    fn nothing_scored_still_renders_a_page() {
        let html = page(&[], &choice(), &[], None, &[]);
        assert!(html.contains("nothing was scored there"), "{html}");
        assert!(!html.contains("<table"), "{html}");
        assert!(html.ends_with("</html>\n"));
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn png_size_reads_the_header_only_of_a_png() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x04\xb0\0\0\x01\x90".to_vec();
        assert_eq!(png_size(&png), Some((1200, 400)));
        assert_eq!(png_size(b"GIF89a"), None);
        assert_eq!(png_size(&png[..20]), None);
    }
}
