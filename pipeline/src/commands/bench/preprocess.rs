//! `dfd bench preprocess CLIP...`: the whole preprocessing of real clips (`dfd run --until ssim`:
//! ingest, decode, detect, crop, ssim) against the floor it cannot beat, FFmpeg decoding the same
//! seconds of the same clip.
//!
//! Each measurement is a fresh `dfd run` child process of this very binary on a throw-away
//! dataset (the clip, hard-linked or copied, and a `metadata.json` listing it) and a throw-away
//! workspace, so nothing is cached and the figures are those of a first run: its wall clock, its
//! peak RSS (from `wait4`, the child alone) and the bytes its workspace holds afterwards. The
//! FFmpeg runs are `ffmpeg -v error -threads 2 -i CLIP -t SECONDS -an -f null -`, SECONDS being
//! the span the decode config samples (`start_s + frames_per_video * interval_s`, 10 s by
//! default); `--batch` puts every clip in one dataset and one run, against the full decode of
//! every clip one after another. dfd and ffmpeg runs alternate, so that load from elsewhere falls
//! on both, and medians are reported.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::config::Config;

/// FFmpeg's decoder threads in the floor measurement: the 2 cores the targets are set on.
pub const FFMPEG_THREADS: usize = 2;

/// What to measure.
pub struct PreprocessRequest<'a> {
    pub clips: &'a [PathBuf],
    /// All clips in one dataset and one run, against the full decode of each clip in turn.
    pub batch: bool,
    pub repeats: usize,
    /// Folder for the throw-away datasets and workspaces; default: the system's temporary folder.
    pub scratch: Option<&'a Path>,
    /// The effective configuration (for the decode span).
    pub config: &'a Config,
    /// `--config` and `--set` as given, passed on to every `dfd run`.
    pub config_file: Option<&'a Path>,
    pub overrides: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct PreprocessReport {
    pub target: &'static str,
    /// `per-clip` or `batch`.
    pub mode: &'static str,
    pub repeats: usize,
    /// `-threads` of the FFmpeg runs.
    pub ffmpeg_threads: usize,
    /// The `-t` of the FFmpeg runs (the span the decode config samples); null in batch mode, where
    /// FFmpeg decodes every clip whole.
    pub ffmpeg_seconds_decoded: Option<f64>,
    pub rows: Vec<PreprocessRow>,
}

#[derive(Debug, Serialize)]
pub struct PreprocessRow {
    /// The clip as given, or `N clips (batch)`.
    pub clip: String,
    pub clips: Vec<String>,
    pub videos: usize,
    /// Width and height of the first video stream (ffprobe), where ffprobe tells them.
    pub resolution: Option<[u32; 2]>,
    /// Medians over the repeats.
    pub dfd_seconds: f64,
    pub ffmpeg_seconds: f64,
    /// `dfd_seconds / ffmpeg_seconds`.
    pub ratio: f64,
    /// Peak resident set size of the `dfd run` process, MB (10^6 bytes).
    pub peak_rss_mb: f64,
    pub ffmpeg_peak_rss_mb: f64,
    /// Bytes under the run's workspace afterwards, divided by the number of videos.
    pub bytes_written_per_video: u64,
    /// Every repeat, in the order run.
    pub dfd_runs: Vec<f64>,
    pub ffmpeg_runs: Vec<f64>,
}

pub fn bench_preprocess(request: &PreprocessRequest) -> Result<PreprocessReport> {
    let repeats = request.repeats.max(1);
    let clips = request
        .clips
        .iter()
        .map(|clip| {
            if !clip.is_file() {
                bail!("no such clip: {}", clip.display());
            }
            clip.canonicalize()
                .with_context(|| format!("cannot resolve clip {}", clip.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    if clips.is_empty() {
        bail!("no clip given: dfd bench preprocess CLIP...");
    }
    check_ffmpeg()?;
    let decode = &request.config.decode;
    let span = decode.start_s + f64::from(decode.frames_per_video) * decode.interval_s;
    let exe = std::env::current_exe().context("cannot find the dfd binary itself")?;
    let scratch_parent = match request.scratch {
        Some(dir) => {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create --scratch {}", dir.display()))?;
            dir.to_path_buf()
        }
        None => std::env::temp_dir(),
    };
    let scratch = tempfile::Builder::new()
        .prefix("dfd-bench-preprocess-")
        .tempdir_in(&scratch_parent)
        .with_context(|| format!("cannot create a folder in {}", scratch_parent.display()))?;
    let dfd = DfdRun {
        exe: &exe,
        config_file: request.config_file,
        overrides: request.overrides,
    };
    match measure_all(request, &clips, span, &dfd, scratch.path(), repeats) {
        Ok(rows) => {
            scratch
                .close()
                .context("cannot remove the bench's scratch folder")?;
            Ok(PreprocessReport {
                target: "preprocess",
                mode: if request.batch { "batch" } else { "per-clip" },
                repeats,
                ffmpeg_threads: FFMPEG_THREADS,
                ffmpeg_seconds_decoded: (!request.batch).then_some(span),
                rows,
            })
        }
        Err(e) => {
            let kept = scratch.keep();
            Err(anyhow!(
                "{e:#}\n(the throw-away datasets and workspaces are left in {} to look at)",
                kept.display()
            ))
        }
    }
}

/// Every row of the report: one per clip, or one for the batch.
fn measure_all(
    request: &PreprocessRequest,
    clips: &[PathBuf],
    span: f64,
    dfd: &DfdRun,
    scratch: &Path,
    repeats: usize,
) -> Result<Vec<PreprocessRow>> {
    let groups: Vec<Vec<PathBuf>> = if request.batch {
        vec![clips.to_vec()]
    } else {
        clips.iter().map(|c| vec![c.clone()]).collect()
    };
    let mut rows = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        let dataset = scratch.join(format!("dataset-{g}"));
        make_dataset(&dataset, group)?;
        let ffmpeg_span = (!request.batch).then_some(span);
        let mut dfd_runs = Vec::with_capacity(repeats);
        let mut ffmpeg_runs = Vec::with_capacity(repeats);
        let (mut rss, mut ffmpeg_rss, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..repeats {
            let workspace = scratch.join(format!("workspace-{g}-{r}"));
            let log = scratch.join(format!("dfd-{g}-{r}.log"));
            // Alternate which goes first, so that neither always runs on a warm page cache or
            // after the other's heat.
            let mut measure_dfd = || -> Result<()> {
                let run = dfd.run(&dataset, &workspace, &log, group)?;
                dfd_runs.push(run.seconds);
                rss.push(run.peak_rss_mb);
                bytes.push(tree_bytes(&workspace)? / group.len() as u64);
                fs::remove_dir_all(&workspace)
                    .with_context(|| format!("cannot remove {}", workspace.display()))?;
                Ok(())
            };
            let mut measure_ffmpeg = || -> Result<()> {
                let run = ffmpeg_decode(group, ffmpeg_span, scratch)?;
                ffmpeg_runs.push(run.seconds);
                ffmpeg_rss.push(run.peak_rss_mb);
                Ok(())
            };
            if r % 2 == 0 {
                measure_dfd()?;
                measure_ffmpeg()?;
            } else {
                measure_ffmpeg()?;
                measure_dfd()?;
            }
        }
        let dfd_seconds = median(&dfd_runs);
        let ffmpeg_seconds = median(&ffmpeg_runs);
        let resolutions: Vec<Option<[u32; 2]>> =
            group.iter().map(|c| probe_resolution(c)).collect();
        let resolution = match resolutions.split_first() {
            Some((first, rest)) if rest.iter().all(|r| r == first) => *first,
            _ => None,
        };
        let clip_names: Vec<String> = if request.batch {
            group.iter().map(|c| c.display().to_string()).collect()
        } else {
            vec![request.clips[g].display().to_string()]
        };
        rows.push(PreprocessRow {
            clip: if request.batch {
                format!("{} clips (batch)", group.len())
            } else {
                clip_names[0].clone()
            },
            clips: clip_names,
            videos: group.len(),
            resolution,
            dfd_seconds,
            ffmpeg_seconds,
            ratio: dfd_seconds / ffmpeg_seconds,
            peak_rss_mb: median(&rss),
            ffmpeg_peak_rss_mb: median(&ffmpeg_rss),
            bytes_written_per_video: {
                bytes.sort_unstable();
                bytes[bytes.len() / 2]
            },
            dfd_runs,
            ffmpeg_runs,
        });
    }
    Ok(rows)
}

pub fn print_text(report: &PreprocessReport) {
    let window = match report.ffmpeg_seconds_decoded {
        Some(s) => format!("the first {s} s"),
        None => "every clip whole, one after another".into(),
    };
    println!(
        "preprocess ({}): `dfd run --until ssim` vs `ffmpeg -threads {}` decoding {window}; \
         medians of {} repeat(s)",
        report.mode, report.ffmpeg_threads, report.repeats
    );
    let header = [
        "clip",
        "resolution",
        "dfd s",
        "ffmpeg s",
        "ratio",
        "peak RSS MB",
        "MB written/video",
    ];
    let rows: Vec<[String; 7]> = report
        .rows
        .iter()
        .map(|row| {
            [
                row.clip.clone(),
                row.resolution
                    .map_or_else(|| "?".into(), |[w, h]| format!("{w}x{h}")),
                // Three and two decimals: the targets are ratios such as 1.6x, and a figure
                // rounded to one decimal cannot say on which side of one it falls.
                format!("{:.3}", row.dfd_seconds),
                format!("{:.3}", row.ffmpeg_seconds),
                format!("{:.2}x", row.ratio),
                format!("{:.0}", row.peak_rss_mb),
                format!("{:.2}", row.bytes_written_per_video as f64 / 1e6),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (c, cell) in cells.iter().enumerate() {
            if c == 0 {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
}

/// Fails, naming FFmpeg and where to get it, when `ffmpeg` cannot be run.
fn check_ffmpeg() -> Result<()> {
    let status = Command::new("ffmpeg")
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    const WHY: &str = "`dfd bench preprocess` times FFmpeg's decode of each clip as the floor \
                       it compares with; scripts/setup.sh installs ffmpeg (apt-get install ffmpeg)";
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("`ffmpeg -version` failed ({status}): {WHY}"),
        Err(e) => bail!("cannot run ffmpeg ({e}): {WHY}"),
    }
}

/// A throw-away DFDC-format dataset of `clips`: each hard-linked (copied across file systems) as
/// `clip-NNN.<ext>` and listed as a REAL training video, which is as much work for every stage up
/// to ssim as any other label.
fn make_dataset(dir: &Path, clips: &[PathBuf]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut metadata = serde_json::Map::new();
    for (i, clip) in clips.iter().enumerate() {
        let ext = clip
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("mp4")
            .to_lowercase();
        let name = format!("clip-{i:03}.{ext}");
        let target = dir.join(&name);
        if fs::hard_link(clip, &target).is_err() {
            fs::copy(clip, &target).with_context(|| {
                format!("cannot copy {} to {}", clip.display(), target.display())
            })?;
        }
        metadata.insert(
            name,
            serde_json::json!({ "label": "REAL", "split": "train" }),
        );
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(metadata))?;
    fs::write(dir.join("metadata.json"), text)
        .with_context(|| format!("cannot write metadata.json in {}", dir.display()))
}

/// One measured child process.
struct Measured {
    seconds: f64,
    peak_rss_mb: f64,
}

struct DfdRun<'a> {
    exe: &'a Path,
    config_file: Option<&'a Path>,
    overrides: &'a [String],
}

impl DfdRun<'_> {
    /// `dfd --workspace WS [--config F] [--set K=V]... run --dataset D --until ssim`, its stdout
    /// and stderr into `log`.
    fn run(
        &self,
        dataset: &Path,
        workspace: &Path,
        log: &Path,
        clips: &[PathBuf],
    ) -> Result<Measured> {
        let mut command = Command::new(self.exe);
        // The log is a file: no colour codes in it.
        command
            .env("NO_COLOR", "1")
            .arg("--workspace")
            .arg(workspace);
        if let Some(config) = self.config_file {
            command.arg("--config").arg(config);
        }
        for set in self.overrides {
            command.arg("--set").arg(set);
        }
        command
            .args(["run", "--dataset"])
            .arg(dataset)
            .args(["--until", "ssim"]);
        let what = || match clips {
            [one] => one.display().to_string(),
            many => format!("{} clips ({}, ...)", many.len(), many[0].display()),
        };
        measure(&mut command, log).with_context(|| format!("`dfd run --until ssim` on {}", what()))
    }
}

/// FFmpeg decoding each clip in turn (the first `span` seconds, or whole), timed together; the
/// peak RSS is the largest of the runs.
fn ffmpeg_decode(clips: &[PathBuf], span: Option<f64>, scratch: &Path) -> Result<Measured> {
    let started = Instant::now();
    let mut peak: f64 = 0.0;
    for clip in clips {
        let mut command = Command::new("ffmpeg");
        command
            .args(["-nostdin", "-v", "error", "-threads"])
            .arg(FFMPEG_THREADS.to_string())
            .arg("-i")
            .arg(clip);
        if let Some(span) = span {
            command.arg("-t").arg(span.to_string());
        }
        command.args(["-an", "-f", "null", "-"]);
        let log = scratch.join("ffmpeg.log");
        let run = measure(&mut command, &log)
            .with_context(|| format!("ffmpeg decoding {}", clip.display()))?;
        peak = peak.max(run.peak_rss_mb);
    }
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: peak,
    })
}

/// Runs `command` to its end, stdout and stderr into `log`; its wall clock and its own peak RSS,
/// from `wait4` (the rusage of that child alone). A failure carries the log's last lines.
fn measure(command: &mut Command, log: &Path) -> Result<Measured> {
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    let (status, usage) = wait4(child.id())?;
    let seconds = started.elapsed().as_secs_f64();
    // Reaped by wait4 above; dropping the handle neither waits nor kills.
    drop(child);
    if !status_ok(status) {
        let text = fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        bail!("{}; its last output:\n{tail}", describe_status(status));
    }
    Ok(Measured {
        seconds,
        peak_rss_mb: max_rss_bytes(&usage) as f64 / 1e6,
    })
}

/// `wait4(pid)`, retried on EINTR: the exit status and the child's resource usage.
fn wait4(pid: u32) -> Result<(libc::c_int, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| anyhow!("pid {pid} out of range"))?;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data, for which all zeroes is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals of the right types; pid is our own child.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4 on a child");
        }
    }
}

fn status_ok(status: libc::c_int) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended with wait status {status}")
    }
}

/// `ru_maxrss` in bytes: kilobytes on Linux, bytes on macOS.
fn max_rss_bytes(usage: &libc::rusage) -> u64 {
    let raw = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    if cfg!(target_os = "macos") {
        raw
    } else {
        raw * 1024
    }
}

/// Total size of the files under `dir` (symbolic links not followed), a file with several hard
/// links under it counted once: the workspace links cached files between folders.
fn tree_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Width and height of the clip's first video stream, from ffprobe; None where it cannot tell.
fn probe_resolution(clip: &Path) -> Option<[u32; 2]> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(clip)
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (w, h) = text.lines().next()?.trim().split_once(',')?;
    Some([w.trim().parse().ok()?, h.trim().parse().ok()?])
}

/// The median (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::{median, tree_bytes};

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_hard_linked_file_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 10]).unwrap();
        std::fs::hard_link(dir.path().join("a/x"), dir.path().join("x2")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("y"), dir.path().join("y2")).unwrap();
        assert_eq!(tree_bytes(dir.path()).unwrap(), 1010);
    }
}
