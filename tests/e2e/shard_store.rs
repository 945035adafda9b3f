//! The shard store: a shard of a per-video stage computed once is taken again by its own key
//! (recipe, videos, the content of what that shard reads), whichever output asks for it. So a
//! video added to a dataset, which changes every fingerprint downstream of `ingest`, costs the
//! shard it lands in, not the whole dataset again.

use dfd_tests::{Dataset, Dfd};

const PER_VIDEO: [&str; 4] = ["decode", "detect", "crop", "ssim"];

fn count(dfd: &Dfd, stage: &str, field: &str) -> u64 {
    dfd.stage_report(stage)[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{stage} has no {field} in its run record"))
}

/// Finished entries of the store of `stage`.
fn store_entries(dfd: &Dfd, stage: &str) -> usize {
    let dir = dfd.workspace.path().join("shards").join(stage);
    std::fs::read_dir(&dir)
        .map(|read| {
            read.flatten()
                .filter(|e| !e.file_name().to_string_lossy().contains('.'))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_video_added_to_the_dataset_costs_only_its_own_shard() {
    let data = Dataset::new()
        .clip("a.mp4", "single_face.mp4", "REAL")
        .clip("b.mp4", "carphone_pristine.mp4", "FAKE")
        .write();
    let dataset = data.path().to_str().unwrap().to_string();
    // `settings` go before `run`, `flags` after it.
    let run_with = |dfd: &Dfd, settings: &[&str], flags: &[&str]| {
        let mut args = vec!["--set", "runner.videos_per_shard=1"];
        args.extend_from_slice(settings);
        args.extend_from_slice(&["run", "--dataset", &dataset, "--until", "ssim"]);
        args.extend_from_slice(flags);
        dfd.ok(&args)
    };
    let run = |dfd: &Dfd, settings: &[&str]| run_with(dfd, settings, &[]);
    let dfd = Dfd::new();
    run(&dfd, &[]);
    for stage in PER_VIDEO {
        assert_eq!(count(&dfd, stage, "shards_computed"), 2, "{stage}");
        assert_eq!(count(&dfd, stage, "shards_from_store"), 0, "{stage}");
        assert_eq!(store_entries(&dfd, stage), 2, "{stage}");
    }

    // A third video, whose name sorts last: ingest's table changes, and with it every
    // fingerprint; the first two shards of every stage read the same rows as before.
    let data = data.clip("c.mp4", "single_face.mp4", "FAKE").write();
    let out = run(&dfd, &[]);
    for stage in PER_VIDEO {
        assert_eq!(dfd.outcome(stage), "computed", "{stage}");
        assert_eq!(count(&dfd, stage, "shards_computed"), 1, "{stage}: {out}");
        assert_eq!(count(&dfd, stage, "shards_from_store"), 2, "{stage}: {out}");
    }

    // What the store gave is what computing gives: a fresh workspace on the same three videos
    // holds the same tables, file for file.
    let fresh = Dfd::new();
    run(&fresh, &[]);
    for stage in PER_VIDEO {
        dfd.assert_same_output(&fresh, stage);
    }

    // `--force` computes, whatever the store holds.
    let force: Vec<&str> = PER_VIDEO.iter().flat_map(|s| ["--force", s]).collect();
    let out = run_with(&dfd, &[], &force);
    for stage in PER_VIDEO {
        assert_eq!(count(&dfd, stage, "shards_computed"), 3, "{stage}: {out}");
        assert_eq!(count(&dfd, stage, "shards_from_store"), 0, "{stage}");
    }

    // gc keeps the entries the kept outputs hold and removes the others.
    dfd.ok(&["gc", "--keep-runs", "1"]);
    for stage in PER_VIDEO {
        assert_eq!(store_entries(&dfd, stage), 3, "{stage}");
    }
    run(&dfd, &["--set", "decode.frames_per_video=3"]);
    dfd.ok(&["gc", "--keep-runs", "1"]);
    for stage in PER_VIDEO {
        assert_eq!(
            store_entries(&dfd, stage),
            3,
            "{stage}: only the new recipe's"
        );
    }
    drop(data);
}
