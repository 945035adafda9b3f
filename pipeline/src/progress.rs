//! Progress bars (videos done / total, rate, ETA) that share the terminal with `tracing` logs.
//!
//! Log lines are printed through the same `MultiProgress`, which lifts the bars while a line is
//! written, so bars and logs never tear each other. Off a terminal the bars draw nothing.

use std::io::{self, Write};
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// A bar for one stage's work.
pub struct StageBar {
    bar: ProgressBar,
}

impl StageBar {
    pub fn new(stage: &str, total: u64, unit: &str) -> StageBar {
        let bar = bars().add(ProgressBar::new(total));
        let template =
            format!("{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stage.to_string());
        StageBar { bar }
    }

    /// A bar that draws nothing (work whose progress another bar shows).
    pub fn hidden() -> StageBar {
        StageBar {
            bar: ProgressBar::hidden(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl dfd_stages::Progress for StageBar {
    fn advance(&self, units: u64) {
        self.bar.inc(units);
    }
}

/// The writer `tracing` logs go through (stderr, with the bars lifted).
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        bars().suspend(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Sets up `tracing` from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_target(false)
        .try_init();
}
