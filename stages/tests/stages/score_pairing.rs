//! The scorer's paired MesoNet-4 graph (`ModelSession::load_with_block`, two crops per first
//! convolution) gives the scores of the graph as exported, for even and odd batches (an odd one
//! gets a blank crop whose score is dropped), in the single and the multi-input form; and the
//! session on a device (`ModelSession::load_on`).

use dfd_models::{default_device, export_fresh_variant, Architecture, Form, ModelVariant};
use dfd_schemas::TrainedModelRow;
use dfd_stages::model_inputs::ModelSample;
use dfd_stages::score::ModelSession;
use ndarray::{Array2, Array3};

fn mesonet4(form: Form) -> TrainedModelRow {
    let variant = ModelVariant {
        architecture: Architecture::MesoNet4,
        form,
    };
    TrainedModelRow {
        model: variant.name(),
        architecture: Architecture::MesoNet4.as_str().into(),
        form: form.as_str().into(),
        parameters: 0,
        epochs_run: 0,
        best_epoch: 0,
        averaged_from: None,
        best_val_loss: None,
        initial_weights: dfd_schemas::InitialWeights::Seeded,
        onnx: export_fresh_variant(variant, &default_device(), 7).expect("export"),
        weights: vec![],
    }
}

/// `n` samples of pseudo-random pixels (xorshift), each with an SSIM map and statistics.
fn samples(n: usize) -> Vec<ModelSample> {
    let mut state = 0x2545_f491_u32;
    let mut byte = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8
    };
    (0..n)
        .map(|i| ModelSample {
            video_id: "v".into(),
            sample_index: i as u32,
            frame_index: i as u64,
            pts_ms: i as f64 * 500.0,
            face: Array3::from_shape_simple_fn((224, 224, 3), &mut byte),
            ssim_map: Some(Array2::from_shape_simple_fn((224, 224), &mut byte)),
            ssim_stats: Some([0.5 + i as f32 / 100.0, 0.01]),
        })
        .collect()
}

fn scores(session: &mut ModelSession, samples: &[ModelSample], batch_size: usize) -> Vec<f32> {
    let refs: Vec<&ModelSample> = samples.iter().collect();
    refs.chunks(batch_size)
        .flat_map(|batch| session.score(batch).expect("scoring"))
        .collect()
}

#[test]
fn paired_mesonet4_scores_equal_the_exported_graph_for_any_batch() {
    let samples = samples(7);
    for form in [Form::Single, Form::Multi] {
        let row = mesonet4(form);
        let mut plain = ModelSession::load_with_block(&row, 2, None).expect("plain session");
        let mut paired = ModelSession::load_with_block(&row, 2, Some(16)).expect("paired session");
        assert!(paired.paired() && !plain.paired(), "{form:?}");
        let expected = scores(&mut plain, &samples, 7);
        assert!(
            expected.iter().any(|s| (s - expected[0]).abs() > 1e-6),
            "{form:?}: different crops get different scores: {expected:?}"
        );
        for batch_size in [1, 2, 3, 7] {
            let got = scores(&mut paired, &samples, batch_size);
            assert_eq!(got.len(), samples.len(), "{form:?} batch {batch_size}");
            let diff = expected
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                diff <= 1e-6,
                "{form:?} batch {batch_size}: {expected:?} vs {got:?}"
            );
        }
    }
}

/// `score.device`: the CPU is the session `load` makes; a GPU on the ONNX Runtime the set-up
/// installs (the CPU build, which the tests run against) is refused naming the model, the
/// library and the GPU set-up, never a session that quietly runs on the CPU.
#[test]
fn a_session_on_a_gpu_is_refused_on_the_cpu_onnx_runtime() {
    use dfd_models::ComputeDevice;
    use dfd_stages::score::{ScoreDeviceError, ScoreError};
    let row = mesonet4(Form::Single);
    let samples = samples(3);
    let mut on_cpu = ModelSession::load_on(&row, 2, ComputeDevice::Cpu).expect("CPU session");
    let mut plain = ModelSession::load(&row, 2).expect("CPU session");
    assert_eq!(on_cpu.paired(), plain.paired());
    assert_eq!(
        scores(&mut on_cpu, &samples, 3),
        scores(&mut plain, &samples, 3)
    );
    let Err(error) = ModelSession::load_on(&row, 2, ComputeDevice::Cuda(0)) else {
        panic!("a CUDA session on the CPU build of ONNX Runtime");
    };
    assert!(
        matches!(
            &error,
            ScoreError::Device {
                source: ScoreDeviceError::NoCudaProvider { .. },
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("mesonet4-single"), "{message}");
    assert!(message.contains("libonnxruntime.so.1.31.1"), "{message}");
    assert!(message.contains("scripts/setup.sh --gpu"), "{message}");
}
