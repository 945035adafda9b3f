//! Config values that would hang or fail late are refused at start-up, naming the key.

use std::process::Stdio;
use std::time::{Duration, Instant};

use dfd_tests::Dfd;

/// `dfd ARGS`, killed after `limit`; (finished in time, success, stderr).
fn run_with_limit(dfd: &Dfd, args: &[&str], limit: Duration) -> (bool, bool, String) {
    let mut child = dfd
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return (false, false, String::new());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        true,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_sampling_interval_below_one_frame_of_1000_fps_is_refused() {
    let dfd = Dfd::new();
    for value in ["1e-12", "0.0001", "-1", "nan"] {
        let err = dfd.fails(&["--set", &format!("decode.interval_s={value}"), "config"]);
        assert!(err.contains("decode.interval_s"), "{value}: {err}");
    }
    dfd.ok(&["--set", "decode.interval_s=0.001", "config"]);
}

#[test]
fn a_thread_count_far_beyond_the_cores_is_refused_at_once() {
    let dfd = Dfd::new();
    let (finished, ok, err) = run_with_limit(
        &dfd,
        &["--set", "runner.threads=100000", "config"],
        Duration::from_secs(20),
    );
    assert!(finished, "dfd config did not return within 20 s");
    assert!(!ok);
    assert!(err.contains("runner.threads"), "{err}");
    assert!(err.contains("cores"), "{err}");
    // Within the bound, a command that does no per-video work builds no pool and returns at once.
    let (finished, ok, err) = run_with_limit(
        &dfd,
        &["--set", "runner.threads=2", "config"],
        Duration::from_secs(20),
    );
    assert!(finished && ok, "{err}");
}

#[test]
fn a_crop_size_the_detectors_cannot_take_is_refused_before_any_work() {
    let dfd = Dfd::new();
    let err = dfd.fails(&["--set", "crop.size=192", "config"]);
    assert!(err.contains("crop.size") && err.contains("224"), "{err}");
    dfd.ok(&["--set", "crop.size=224", "config"]);
}

/// Only EfficientNet-Lite0 has ImageNet weights that ship: asking a pretrained start of the demo
/// profile's MesoNet-4 is refused before any work, naming the architecture; with Lite0 alone it is
/// accepted and shows in `dfd config`.
#[test]
fn a_pretrained_start_of_an_architecture_without_shipped_weights_is_refused_naming_it() {
    let dfd = Dfd::new();
    let err = dfd.fails(&[
        "--set",
        "train.pretrained=true",
        "--set",
        r#"train.models=["efficientnet_lite0-single", "mesonet4-single"]"#,
        "config",
    ]);
    assert!(err.contains("train.pretrained"), "{err}");
    assert!(
        err.contains("mesonet4 has no shipped ImageNet weights"),
        "{err}"
    );
    let config = dfd.ok(&[
        "--set",
        "train.pretrained=true",
        "--set",
        r#"train.models=["efficientnet_lite0-single"]"#,
        "config",
    ]);
    assert!(config.contains("pretrained = true"), "{config}");
    let demo = dfd.ok(&["config"]);
    assert!(
        demo.contains(r#"pretrained = ["efficientnet_lite0"]"#),
        "the demo profile's mix: {demo}"
    );
}

/// The BatchNorm rate of a pretrained backbone shows in `dfd config` (0.1 for the demo profile's
/// ImageNet Lite0); asking it of a run with no pretrained model, or outside (0, 1], is refused
/// naming the key.
#[test]
fn a_pretrained_batch_norm_momentum_without_a_pretrained_model_is_refused() {
    let dfd = Dfd::new();
    let demo = dfd.ok(&["config"]);
    assert!(
        demo.contains("pretrained_batch_norm_momentum = 0.1"),
        "the demo profile's: {demo}"
    );
    let err = dfd.fails(&[
        "--set",
        r#"train.models=["mesonet4-single"]"#,
        "--set",
        "train.pretrained_batch_norm_momentum=0.1",
        "config",
    ]);
    assert!(
        err.contains("train.pretrained_batch_norm_momentum is set but no model"),
        "{err}"
    );
    let err = dfd.fails(&[
        "--set",
        "train.pretrained_batch_norm_momentum=1.5",
        "config",
    ]);
    assert!(err.contains("must be in (0, 1], got 1.5"), "{err}");
}
