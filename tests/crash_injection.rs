//! Crash injection at renames: a run killed between writing a file and renaming it leaves a
//! temporary that the next run removes, so a finished output holds exactly its manifest's files.

use std::path::Path;

use dfd_tests::faults::{self, Fault};
use dfd_tests::{output_problems, tree, Dataset, Dfd};

const SETTINGS: [&str; 4] = [
    "--set",
    "runner.videos_per_shard=1",
    "--set",
    "decode.frames_per_video=4",
];

fn dataset() -> Dataset {
    Dataset::new()
        .clip("a.mp4", "single_face.mp4", "REAL")
        .clip("b.mp4", "carphone_pristine.mp4", "FAKE")
        .write()
}

/// Nothing left over: no temporary file, no partial or discarded output.
fn assert_clean(workspace: &Path, when: &str) {
    let leftovers: Vec<String> = tree(workspace)
        .into_iter()
        .filter(|f| f.contains(".tmp-") || f.contains(".partial/") || f.starts_with("trash/"))
        .collect();
    assert!(leftovers.is_empty(), "{when}: left over: {leftovers:?}");
}

#[test]
fn an_orphan_temporary_never_reaches_a_finished_output() {
    let data = dataset();
    let dataset = data.path().to_str().unwrap();
    let mut run: Vec<&str> = SETTINGS.to_vec();
    run.extend(["run", "--dataset", dataset]);
    let probe = Dfd::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = probe.command(&run);
    faults::inject(&mut command, Fault::None, Some(log.path()));
    assert!(command.output().unwrap().status.success());
    // decode's second shard's frames file, renamed from its temporary name.
    let at = faults::read_log(log.path())
        .into_iter()
        .find(|c| c.kind == "rename" && c.to.ends_with("/frames/part-00001.parquet"))
        .expect("decode writes two shards")
        .number;

    let dfd = Dfd::new();
    let mut command = dfd.command(&run);
    faults::inject(&mut command, Fault::BeforeRename(at), None);
    assert!(!command.output().unwrap().status.success());
    let orphans: Vec<String> = tree(dfd.workspace.path())
        .into_iter()
        .filter(|f| f.contains(".tmp-"))
        .collect();
    assert!(!orphans.is_empty(), "the kill left no temporary file");

    dfd.ok(&run);
    let dir = dfd.output_dir(
        "decode",
        dfd.manifest("decode")["fingerprint"].as_str().unwrap(),
    );
    assert_eq!(output_problems(&dir), Vec::<String>::new());
    // A reader of the folder (pyarrow, DuckDB) sees the manifest's rows, no more.
    let on_disk: usize = tree(&dir.join("frames"))
        .iter()
        .flat_map(|f| dfd_tests::read_parquet(&dir.join("frames").join(f)))
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(on_disk, 8, "4 frames from each of 2 clips");
    assert_clean(dfd.workspace.path(), "after the resumed run");
}
