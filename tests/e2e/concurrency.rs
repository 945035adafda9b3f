//! Two `dfd run` on one workspace: the second refuses with a message naming the holder, or waits
//! with --wait.

use std::time::{Duration, Instant};

use dfd_tests::{Dataset, Dfd};

fn dataset() -> Dataset {
    let mut data = Dataset::new();
    for i in 0..6 {
        data = data.clip(&format!("clip{i}.mp4"), "WolfgangLanger_Pexels.mp4", "REAL");
    }
    data.write()
}

/// Waits until the first run holds the lock (it writes its pid and host into the lock file).
fn wait_for_lock(dfd: &Dfd, child: &mut std::process::Child) {
    let lock = dfd.workspace.path().join("lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    let holder = format!("pid {} on ", child.id());
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .starts_with(&holder)
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "first run ended too early"
        );
        assert!(Instant::now() < deadline, "first run never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_run_refuses_while_the_first_holds_the_workspace() {
    let data = dataset();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let mut first = dfd.spawn(&["--set", "runner.threads=1", "run", "--dataset", dataset]);
    wait_for_lock(&dfd, &mut first);
    let err = dfd.fails(&["run", "--dataset", dataset]);
    assert!(
        err.contains("another dfd run") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(first.wait().unwrap().success());
    // The lock is gone with its holder.
    dfd.ok(&["run", "--dataset", dataset]);
    assert_eq!(dfd.outcome("decode"), "cached");
}

#[test]
fn a_second_run_with_wait_runs_after_the_first() {
    let data = dataset();
    let dataset = data.path().to_str().unwrap();
    let dfd = Dfd::new();
    let mut first = dfd.spawn(&["--set", "runner.threads=1", "run", "--dataset", dataset]);
    wait_for_lock(&dfd, &mut first);
    // Without --wait this run would be refused (see above); with it, it runs once the first run has
    // released the workspace, and finds everything the first run computed.
    dfd.ok(&["run", "--dataset", dataset, "--wait"]);
    assert!(first.wait().unwrap().success());
    assert_eq!(dfd.outcome("ingest"), "cached");
    assert_eq!(dfd.outcome("decode"), "cached");
}
