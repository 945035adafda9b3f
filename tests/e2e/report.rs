//! `dfd report` from the command line. The metrics themselves come from `aggregate`, which runs
//! after `score` and `train`; until a workspace has them the command says so and fails. (The
//! rendering and the runner's handling of `aggregate` and `report` are tested in their crates on
//! hand-made tables.)

use dfd_tests::Dfd;

#[test]
fn report_without_metrics_says_why_and_fails() {
    let dfd = Dfd::new();
    for args in [&["report"][..], &["report", "--json"][..]] {
        let err = dfd.fails(args);
        assert!(err.contains("no metrics yet"), "{err}");
        assert!(err.contains("dfd run"), "{err}");
    }
}

#[test]
fn config_lists_the_aggregate_and_report_sections() {
    let text = Dfd::new().ok(&["config", "--set", "aggregate.bootstrap_seed=7"]);
    for key in [
        "[aggregate]",
        "bootstrap_resamples = 1000",
        "bootstrap_seed = 7",
        "[aggregate.confident]",
        "min_fake_frames = 11",
        "[report]",
        "rule = \"mean\"",
    ] {
        assert!(text.contains(key), "`{key}` missing from\n{text}");
    }
    let err = Dfd::new().fails(&["config", "--set", "report.rule=median"]);
    assert!(err.contains("report.rule"), "{err}");
}
