//! The edited models against the files as fetched, on the same inputs, in ONNX Runtime with the
//! sessions' settings: every output equal to the bit. Needs vendor/mtcnn (`scripts/setup.sh`).

use std::path::Path;

use ndarray::Array4;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor/mtcnn");

fn session(file: &str, edited: bool) -> Session {
    let env = super::super::networks::ort_environment().unwrap();
    let path = Path::new(WEIGHTS).join(file);
    let builder = Session::builder(&env)
        .unwrap()
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .unwrap()
        .with_intra_threads(1)
        .unwrap();
    if edited {
        let model = super::load_model(&path).unwrap();
        super::commit(builder, &model).unwrap()
    } else {
        let mut builder = builder;
        builder.commit_from_file(&path).unwrap()
    }
}

/// Pixels as the networks see them (multiples of 1/128 in [-1, 1)), from a fixed LCG.
fn input(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    let mut state = seed;
    Array4::from_shape_fn(shape, |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (((state >> 33) % 256) as f32 - 127.5) * 0.0078125
    })
}

fn outputs(session: &mut Session, input: &Array4<f32>) -> Vec<(String, Vec<u32>)> {
    let tensor = TensorRef::from_array_view(input.view()).unwrap();
    let out = session.run(ort::inputs![tensor]).unwrap();
    let mut all: Vec<(String, Vec<u32>)> = out
        .iter()
        .map(|(name, value)| {
            let (_, data) = value.try_extract_tensor::<f32>().unwrap();
            (name.to_string(), data.iter().map(|v| v.to_bits()).collect())
        })
        .collect();
    all.sort();
    all
}

fn check(file: &str, shapes: &[(usize, usize, usize, usize)]) {
    let mut original = session(file, false);
    let mut edited = session(file, true);
    for (k, &shape) in shapes.iter().enumerate() {
        let x = input(shape, k as u64 + 1);
        let (a, b) = (outputs(&mut original, &x), outputs(&mut edited, &x));
        for ((name, a), (_, b)) in a.iter().zip(&b) {
            let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(
                differ,
                0,
                "{file} {shape:?} output {name}: {differ} of {} differ",
                a.len()
            );
        }
    }
}

/// The first sessions of a process built on several threads at once (see [`super::commit`]).
/// Only a process's first registration of the domain can race, so the test runs itself again
/// as a child process of this test binary, a few times, and the child builds the sessions.
#[test]
fn first_sessions_built_at_once() {
    const CHILD: &str = "DFD_TEST_PRELU_CHILD";
    const NAME: &str = "detect::prelu::same_outputs::first_sessions_built_at_once";
    if std::env::var_os(CHILD).is_some() {
        let start = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    start.wait();
                    session("pnet.onnx", true)
                });
            }
        });
        return;
    }
    for _ in 0..5 {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        // Success alone would also be a child that found no test of that name.
        assert!(
            child.status.success() && stdout.contains("1 passed"),
            "{stdout}"
        );
    }
}

#[test]
fn pnet() {
    check(
        "pnet.onnx",
        &[(1, 384, 216, 3), (1, 25, 14, 3), (1, 12, 12, 3)],
    );
}

#[test]
fn rnet() {
    check("rnet.onnx", &[(1, 24, 24, 3), (37, 24, 24, 3)]);
}

#[test]
fn onet() {
    check("onet.onnx", &[(1, 48, 48, 3), (9, 48, 48, 3)]);
}
