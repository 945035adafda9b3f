//! Config values that would hang or fail late are refused at start-up, naming the key.

use std::process::Stdio;
use std::time::{Duration, Instant};

use dfd_tests::{Dataset, Dfd};

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
fn a_detection_niceness_beyond_19_is_refused_naming_the_key() {
    let dfd = Dfd::new();
    let err = dfd.fails(&["--set", "runner.detection_nice=20", "config"]);
    assert!(err.contains("runner.detection_nice"), "{err}");
    assert!(err.contains("0..=19"), "{err}");
    let listed = dfd.ok(&["--set", "runner.detection_nice=0", "config"]);
    assert!(listed.contains("detection_nice = 0"), "{listed}");
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

/// `train.device` and `score.device` take "cpu", "cuda" or "cuda:N"; any other value is refused
/// naming the key and the accepted forms. `dfd config` shows a GPU setting on a machine without
/// one (it computes nothing), and "cpu" by default.
#[test]
fn a_device_other_than_cpu_or_cuda_is_refused_naming_the_key_and_the_forms() {
    let dfd = Dfd::new();
    for key in ["train.device", "score.device"] {
        for value in ["gpu", "cuda:x"] {
            let err = dfd.fails(&["--set", &format!("{key}={value}"), "config"]);
            assert!(err.contains(&format!("`{key}`")), "{key}={value}: {err}");
            assert!(err.contains(&format!("`{value}` is not a device")), "{err}");
            assert!(err.contains(r#""cpu", "cuda" or "cuda:N""#), "{err}");
        }
        let config = dfd.ok(&["--set", &format!("{key}=cuda:1"), "config"]);
        assert!(config.contains(r#"device = "cuda:1""#), "{key}: {config}");
    }
    let config = dfd.ok(&["config"]);
    assert_eq!(
        config.matches(r#"device = "cpu""#).count(),
        2,
        "[train] and [score]: {config}"
    );
}

/// The default build has no GPU backend: training on "cuda" fails at start-up, before any stage
/// runs (no cache folder), saying how to get the GPU build, instead of training on the CPU.
#[test]
fn training_on_a_gpu_with_the_default_build_is_refused_before_any_work() {
    let dfd = Dfd::new();
    let dataset = Dataset::two_short_clips();
    let dataset = dataset.path().to_str().expect("a UTF-8 path");
    for value in ["cuda", "cuda:1"] {
        let err = dfd.fails(&[
            "--set",
            &format!("train.device={value}"),
            "run",
            "--dataset",
            dataset,
        ]);
        assert!(err.contains("train.device = \"cuda:"), "{err}");
        assert!(err.contains("built without a GPU backend"), "{err}");
        assert!(
            err.contains("make gpu") && err.contains("scripts/setup.sh --gpu"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !dfd.workspace.path().join("cache").exists(),
            "no stage ran: {err}"
        );
    }
}

/// The ONNX Runtime the set-up installs is the CPU build: scoring on "cuda" is refused by every
/// command that scores (run, evaluate, predict) before any work, naming the library loaded and
/// the set-up that installs onnxruntime-gpu's; never a quiet CPU run.
#[test]
fn scoring_on_a_gpu_with_the_cpu_onnx_runtime_names_the_library_before_any_work() {
    let dfd = Dfd::new();
    let dataset = Dataset::two_short_clips();
    let dataset = dataset.path().to_str().expect("a UTF-8 path");
    let models = tempfile::tempdir().expect("temp dir");
    let models = models.path().to_str().expect("a UTF-8 path");
    let clip = dfd_tests::media("single_face.mp4");
    let clip = clip.to_str().expect("a UTF-8 path");
    let commands: [&[&str]; 3] = [
        &["run", "--dataset", dataset],
        &["evaluate", "--dataset", dataset, "--models", models],
        &["predict", clip],
    ];
    for command in commands {
        let mut args = vec!["--set", "score.device=cuda"];
        args.extend_from_slice(command);
        let err = dfd.fails(&args);
        assert!(
            err.contains(r#"score.device = "cuda:0""#),
            "{command:?}: {err}"
        );
        assert!(err.contains("no CUDA execution provider"), "{err}");
        assert!(err.contains("libonnxruntime.so.1.31.1"), "{err}");
        assert!(
            err.contains("CPU build") && err.contains("scripts/setup.sh --gpu"),
            "{err}"
        );
        assert!(
            !dfd.workspace.path().join("cache").exists(),
            "{command:?}: no stage ran: {err}"
        );
    }
}
