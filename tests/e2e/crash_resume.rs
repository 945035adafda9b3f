//! Kill -9 during decode, at several points; the rerun redoes only the unfinished shards and ends with
//! the same bytes as an uninterrupted run, and no reader ever sees a partial Parquet file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dfd_tests::{read_parquet, Dataset, Dfd};

const VIDEOS: usize = 8;

fn dataset() -> Dataset {
    let mut data = Dataset::new();
    for i in 0..VIDEOS {
        data = data.clip(&format!("clip{i}.mp4"), "WolfgangLanger_Pexels.mp4", "REAL");
    }
    data.write()
}

/// Finished shard records of decode's in-progress output.
fn finished_shards(workspace: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(workspace.join("cache/decode")) else {
        return Vec::new();
    };
    read.flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .flat_map(|p| std::fs::read_dir(p.join("_shards")).into_iter().flatten())
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
}

fn parquet_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files_under(&path));
        } else if path.extension().is_some_and(|x| x == "parquet") {
            out.push(path);
        }
    }
    out
}

#[test]
fn killed_decode_resumes_and_matches_an_uninterrupted_run() {
    let data = dataset();
    let dataset = data.path().to_str().unwrap();
    let shard_size = [
        "--set",
        "runner.videos_per_shard=1",
        "--set",
        "runner.threads=1",
    ];
    let args = |extra: &[&'static str]| -> Vec<String> {
        shard_size
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    let reference = Dfd::new();
    let run_args = args(&["run", "--dataset"]);
    let mut full: Vec<&str> = run_args.iter().map(String::as_str).collect();
    full.push(dataset);
    reference.ok(&full);
    let expected = reference.manifest("decode")["content_hash"].clone();

    let dfd = Dfd::new();
    let mut kills = 0;
    for kill_after in [1, 3, 6] {
        let mut child = dfd.spawn(&full);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if finished_shards(dfd.workspace.path()).len() >= kill_after {
                break;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            kills += 1;
        }
        child.wait().unwrap();

        // Every file a reader can see by its name is a whole Parquet file.
        for file in parquet_files_under(&dfd.workspace.path().join("cache")) {
            let rows: usize = read_parquet(&file).iter().map(|b| b.num_rows()).sum();
            assert!(
                rows > 0 || file.to_string_lossy().contains("errors"),
                "{}",
                file.display()
            );
        }
    }
    assert!(
        kills >= 2,
        "the runs finished before they could be killed ({kills} kills)"
    );

    let done_before = finished_shards(dfd.workspace.path()).len();
    assert!(
        (3..VIDEOS).contains(&done_before),
        "{done_before} shards survived"
    );
    dfd.ok(&full);
    let report = dfd.stage_report("decode");
    assert_eq!(report["outcome"]["kind"], "computed");
    assert_eq!(
        report["shards_reused"].as_u64().unwrap() as usize,
        done_before
    );
    assert_eq!(
        report["shards_computed"].as_u64().unwrap() as usize,
        VIDEOS - done_before
    );
    assert_eq!(dfd.manifest("decode")["content_hash"], expected);
}
