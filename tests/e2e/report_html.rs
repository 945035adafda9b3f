//! `report.html` in a real browser: after a tiny `dfd run`, headless Chromium loads the page from
//! disk, and the DOM it builds holds the summary table of summary.md cell for cell and every plot
//! of the report as a `data:` URI of the very PNG next to it; its screenshot is a drawn page, not
//! a blank one. A browser, not a string search, because what matters is what a reader sees: a
//! stray `<` in a cell or a broken URI would still "contain" the right text.
//!
//! Chromium is part of the test set-up (`scripts/setup.sh` installs the Debian package
//! `chromium`); without it this test fails and says so rather than passing untested.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dfd_schemas::{Label, ReportFileRow, TableRow, VideoScoreRow};
use dfd_tests::{Dfd, SMALLEST_TRAINING};

/// The `chromium` binary on `PATH`.
fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: this test renders report.html in headless Chromium; \
             `bash scripts/setup.sh` (run by `make test`) installs it, or \
             `apt-get install -y --no-install-recommends chromium`"
        )
    })
}

/// Runs headless Chromium on `page` with `args` (its own throwaway profile, so nothing in $HOME
/// is touched and no other Chromium's lock is met), within two minutes; returns stdout.
fn headless(browser: &Path, page: &Path, args: &[&str], scratch: &Path) -> String {
    let profile = tempfile::tempdir_in(scratch).expect("profile dir");
    let stdout_path = scratch.join("chromium.stdout");
    let stderr_path = scratch.join("chromium.stderr");
    let url = format!("file://{}", page.display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} {url} ran for over two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {args:?} {url}: {status}\n{stderr}"
    );
    std::fs::read_to_string(&stdout_path).expect("chromium's stdout")
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// The value of attribute `name` in one serialised start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    between(tag, &format!(" {name}=\""), "\"").map(unescape)
}

/// Undoes the escaping a DOM serialiser applies to text and attribute values.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text of an element's content: tags dropped, entities undone, trimmed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out).trim().to_string()
}

/// The cells of every `<tag>` (`td`, `th`) in `html`, in order.
fn cells(html: &str, tag: &str) -> Vec<String> {
    html.split(&format!("<{tag}"))
        .skip(1)
        .map(|cell| {
            let content = cell.split_once('>').map_or("", |(_, rest)| rest);
            let end = content.find(&format!("</{tag}>")).unwrap_or(content.len());
            text_of(&content[..end])
        })
        .collect()
}

/// Head and body rows of the rendered `<table id="ID">`.
fn dom_table(dom: &str, id: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let table = between(dom, &format!("<table id=\"{id}\""), "</table>")
        .unwrap_or_else(|| panic!("no table#{id} in the rendered DOM:\n{dom}"));
    let head = between(table, "<thead>", "</thead>").expect("a <thead>");
    let body = between(table, "<tbody>", "</tbody>").expect("a <tbody>");
    let rows = body
        .split("<tr")
        .skip(1)
        .map(|tr| cells(tr, "td"))
        .collect();
    (cells(head, "th"), rows)
}

/// Head and rows of summary.md's first table.
fn markdown_table(md: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let split = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(|c| c.trim().to_string()).collect()
    };
    let mut lines = md.lines().skip_while(|l| !l.starts_with("| Model |"));
    let head = split(lines.next().expect("a table in summary.md"));
    let rows = lines
        .skip(1) // the alignment row
        .take_while(|l| l.starts_with('|'))
        .map(split)
        .collect();
    (head, rows)
}

/// Standard base64 with padding, as in the `data:` URIs.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Vec<u32> = text
        .bytes()
        .filter(|&b| b != b'=')
        .map(|b| match ALPHABET.iter().position(|&a| a == b) {
            Some(i) => i as u32,
            None => panic!("{:?} is not a base64 digit", char::from(b)),
        })
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// The decoded image of a `data:` URI of `media` (`image/jpeg` or `image/png`) in an `<img>` tag.
fn data_image(tag: &str, media: &str) -> image::RgbImage {
    let src = attribute(tag, "src").unwrap_or_else(|| panic!("<img{tag}> has no src"));
    let prefix = format!("data:{media};base64,");
    let data = src
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("<img> src is not a {media} data URI: {src:.80}"));
    image::load_from_memory(&base64_decode(data))
        .unwrap_or_else(|e| panic!("an {media} of the gallery does not decode: {e}"))
        .to_rgb8()
}

/// The `<img>` tags of `html`, without their `<img`.
fn img_tags(html: &str) -> Vec<&str> {
    html.split("<img")
        .skip(1)
        .map(|img| img.split_once('>').map_or(img, |(tag, _)| tag))
        .collect()
}

/// The gallery shows, for the model, its most confident mistakes on the test split, as the
/// `video_scores` table has them (REAL videos called FAKE by score, highest first, then FAKE
/// videos called REAL, lowest first, three of each at most), each with its face crops, its
/// timeline and the saliency of its deciding frames, every image decoding.
fn check_gallery(dfd: &Dfd, gallery: &str) {
    let scores: Vec<VideoScoreRow> =
        dfd.rows("aggregate", "video_scores", VideoScoreRow::from_batch);
    let of_model = |label: Label, predicted: Label| -> Vec<&VideoScoreRow> {
        scores
            .iter()
            .filter(|s| s.model == "mesonet4-single" && s.split == "test" && s.rule == "mean")
            .filter(|s| s.label == Some(label) && s.predicted == predicted)
            .collect()
    };
    let mut fp = of_model(Label::Real, Label::Fake);
    fp.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut fn_ = of_model(Label::Fake, Label::Real);
    fn_.sort_by(|a, b| a.score.total_cmp(&b.score));
    let expected: Vec<&str> = fp
        .iter()
        .take(3)
        .chain(fn_.iter().take(3))
        .map(|s| s.video_id.as_str())
        .collect();
    assert!(
        gallery.contains("data-model=\"mesonet4-single\""),
        "no gallery for the model: {gallery:.500}"
    );
    let cases: Vec<&str> = gallery.split("<div class=\"case ").skip(1).collect();
    let shown: Vec<String> = cases
        .iter()
        .map(|c| attribute(c, "data-video").expect("a case names its video"))
        .collect();
    assert_eq!(shown, expected, "the gallery's cases");
    assert!(
        !cases.is_empty(),
        "the run made no mistake to show: the test checks nothing"
    );
    for case in cases {
        let images = img_tags(case);
        let faces: Vec<&&str> = images
            .iter()
            .filter(|t| t.contains("alt=\"face "))
            .collect();
        assert!(
            !faces.is_empty() && faces.len() <= 6,
            "{} faces",
            faces.len()
        );
        for tag in faces {
            assert_eq!(data_image(tag, "image/jpeg").dimensions(), (80, 80));
        }
        let timeline: Vec<&&str> = images
            .iter()
            .filter(|t| t.contains("class=\"timeline\""))
            .collect();
        assert_eq!(timeline.len(), 1);
        assert!(data_image(timeline[0], "image/png").width() >= 640);
        let saliency: Vec<&&str> = images
            .iter()
            .filter(|t| t.contains("alt=\"saliency "))
            .collect();
        assert!(
            (1..=3).contains(&saliency.len()),
            "{} saliency maps",
            saliency.len()
        );
        for tag in saliency {
            assert_eq!(data_image(tag, "image/jpeg").dimensions(), (112, 112));
        }
    }
}

#[test]
fn report_html_renders_the_summary_and_every_plot_in_a_browser() {
    let browser = chromium(); // first: no point in a run the browser cannot check
    let dfd = Dfd::new();
    let root = tempfile::tempdir().expect("temp dir");
    let dataset = root.path().join("demo");
    dfd.tiny_demo_data(&dataset);
    let mut args = vec!["run", "--dataset", dataset.to_str().expect("UTF-8 path")];
    args.extend(SMALLEST_TRAINING);
    dfd.ok(&args);

    let report = dfd.workspace.path().join("report");
    let page = report.join("report.html");
    let html = std::fs::read_to_string(&page).expect("report/report.html");
    eprintln!("report.html: {} bytes", html.len());

    // A file of the stage's output like summary.md, not something written beside the cache.
    let files: Vec<ReportFileRow> = dfd.rows("report", "report_files", ReportFileRow::from_batch);
    let recorded = files
        .iter()
        .find(|f| f.name == "report.html")
        .expect("report.html in report_files");
    assert_eq!(recorded.media_type, "text/html");
    assert_eq!(recorded.bytes, html.as_bytes());

    // Self-contained: nothing to fetch, nothing to run.
    let lower = html.to_ascii_lowercase();
    for reference in ["http://", "https://", "<script", "<link", "<iframe", "url("] {
        assert!(
            !lower.contains(reference),
            "report.html holds `{reference}`"
        );
    }

    // The DOM Chromium builds from it.
    let dom = headless(&browser, &page, &["--dump-dom"], root.path());
    let summary = std::fs::read_to_string(report.join("summary.md")).expect("summary.md");
    let (md_head, md_rows) = markdown_table(&summary);
    let (dom_head, dom_rows) = dom_table(&dom, "summary");
    assert_eq!(dom_head, md_head);
    assert_eq!(
        dom_rows, md_rows,
        "report.html's table differs from summary.md:\n{summary}"
    );
    // One row per model, constant baseline and cue baseline.
    let names: Vec<&str> = dom_rows.iter().map(|r| r[0].as_str()).collect();
    assert!(names[0].starts_with("mesonet4-single"), "{names:?}");
    for name in [
        "always-fake (baseline)",
        "always-real (baseline)",
        "cue-face-sharpness (cue)",
        "cue-face-area (cue)",
        "cue-face-brightness (cue)",
        "cue-bitrate (cue)",
        "cue-ssim-mean (cue)",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(names.len(), 8, "{names:?}");
    // The flag, when summary.md has one, is in the same cell.
    let flagged = md_rows
        .iter()
        .any(|r| r[0].contains("(not better than cue-"));
    assert_eq!(flagged, dom.contains("(not better than cue-"), "{summary}");

    // Every plot of the report, inlined as the bytes of its PNG file.
    let pngs: BTreeSet<String> = std::fs::read_dir(&report)
        .expect("report/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    for expected in ["roc-test.png", "confusion-test.png", "training-curves.png"] {
        assert!(pngs.contains(expected), "{expected} missing from {pngs:?}");
    }
    // The error gallery has images of its own (JPEG face crops and saliency maps, a PNG
    // timeline per case), checked by `check_gallery`; the plots are the rest of the page.
    let (before, rest) = dom
        .split_once("<section id=\"errors\">")
        .expect("report.html has the error gallery section");
    let (gallery, after) = rest
        .split_once("</section>")
        .expect("the gallery section ends");
    check_gallery(&dfd, gallery);
    let plots = format!("{before}{after}");
    let mut shown = BTreeSet::new();
    for img in plots.split("<img").skip(1) {
        let tag = img.split_once('>').map_or(img, |(tag, _)| tag);
        let src = attribute(tag, "src").unwrap_or_else(|| panic!("<img{tag}> has no src"));
        let data = src
            .strip_prefix("data:image/png;base64,")
            .unwrap_or_else(|| panic!("<img> src is not a PNG data URI: {:.80}", src));
        let file = attribute(tag, "data-file").expect("<img> names its file");
        let on_disk = std::fs::read(report.join(&file)).expect("the PNG it names");
        assert!(
            base64_decode(data) == on_disk,
            "the image of {file} is not its PNG"
        );
        assert!(
            attribute(tag, "alt").is_some_and(|a| !a.is_empty()),
            "{file} has no alt text"
        );
        shown.insert(file);
    }
    assert_eq!(
        shown, pngs,
        "the page shows other plots than the report holds"
    );

    // What a reader sees: a drawn page (tables, text, plots), not a blank one.
    let shot = root.path().join("report.png");
    headless(
        &browser,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
        root.path(),
    );
    let image = image::open(&shot)
        .unwrap_or_else(|e| panic!("{}: {e}", shot.display()))
        .to_rgb8();
    assert_eq!(image.dimensions(), (1200, 1600));
    let total = image.pixels().count();
    let inked = image
        .pixels()
        .filter(|p| p.0.iter().any(|&c| c < 235))
        .count();
    let colours: BTreeSet<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    eprintln!(
        "screenshot: {inked} of {total} pixels not white, {} colours",
        colours.len()
    );
    assert!(
        inked * 50 > total,
        "only {inked} of {total} pixels are not white: a blank page?"
    );
    assert!(colours.len() > 100, "{} colours only", colours.len());

    // Deterministic: rendered again from the same tables, the page is the same bytes.
    let mut again = args.clone();
    again.extend(["--force", "report"]);
    dfd.ok(&again);
    assert_eq!(dfd.outcome("report"), "computed");
    let rerendered = std::fs::read_to_string(&page).expect("report.html");
    assert!(
        rerendered == html,
        "report.html differs between two renders"
    );
}
