//! The per-video stages as a Slurm array job on a real Slurm (munged, slurmctld and slurmd on
//! this machine, started by `scripts/slurm-up.sh`, installed by it if missing): four tasks of
//! `dfd run --shard auto`, then one plain `dfd run`, give the tables a single run gives.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dfd_tests::{dfd_bin, Dfd};

use crate::shard_tasks::{finish_and_compare, four_clips, run_args, task_records, PER_VIDEO};

/// A script of this checkout (not `dfd_tests::repo_root`, which is fixed when the support crate
/// is built and may name another checkout sharing the build folder).
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// A one-machine Slurm cluster, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Cluster {
    fn up() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script("slurm-up.sh"))
            .arg(dir.path())
            .output()
            .expect("run scripts/slurm-up.sh");
        assert!(
            out.status.success(),
            "scripts/slurm-up.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Cluster { dir, conf }
    }

    /// `sbatch --array=ARRAY --wait SCRIPT`, each task's output in `task-<index>.log`.
    fn run_array(&self, array: &str, script: &Path) {
        let out = Command::new("sbatch")
            .args(["--array", array, "--wait", "--output"])
            .arg(self.dir.path().join("task-%a.log"))
            .arg(script)
            .env("SLURM_CONF", &self.conf)
            .output()
            .expect("run sbatch");
        let logs: String = (0..4)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("task-{i}.log")))
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            out.status.success(),
            "sbatch failed: {}{}\n{logs}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script("slurm-down.sh"))
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_four_task_slurm_array_then_one_run_gives_the_tables_of_a_single_run() {
    let data = four_clips();
    let dataset = data.path().to_str().unwrap();
    let reference = Dfd::new();
    let started = Instant::now();
    reference.ok(&run_args(dataset, &[]));
    let single = started.elapsed().as_secs_f64();

    let cluster = Cluster::up();
    let dfd = Dfd::new();
    let ws = dfd.workspace.path();
    // The dfd line of docs/slurm.sbatch, with this test's workspace, dataset and --until ssim
    // (the final run is the plain run below, not a dependent job).
    let script = cluster.dir.path().join("job.sh");
    let args = run_args(dataset, &["--shard", "auto"]).join(" ");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\nexec {} --workspace {} {args}\n",
            dfd_bin().display(),
            ws.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    cluster.run_array("0-3", &script);
    let array = started.elapsed().as_secs_f64();
    let records = task_records(ws);
    assert_eq!(records.len(), 4, "one record per task");
    for stage in PER_VIDEO {
        let computed: u64 = records
            .iter()
            .map(|r| crate::shard_tasks::count(r, stage, "shards_computed"))
            .sum();
        assert_eq!(computed, 4, "{stage}: each shard by one task");
    }
    let started = Instant::now();
    finish_and_compare(&dfd, dataset, &reference);
    let finish = started.elapsed().as_secs_f64();
    eprintln!(
        "wall time, 4 videos through ssim: single run {single:.1} s; 4-task Slurm array \
         {array:.1} s + final run {finish:.1} s"
    );
}
