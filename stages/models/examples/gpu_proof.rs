//! The GPU proof of issue 19, for a machine with an NVIDIA GPU: seconds per training step of
//! MesoNet-4 and EfficientNetB0 (single-input, batch 16, 224 px, Adam, focal loss: what
//! `benches/train_step.rs` times, through the same [`train`]) on the CPU and on `--device`, and
//! how far one forward pass's P(FAKE) on the GPU is from the CPU's for the same weights.
//!
//! Built with the `tch` feature against a libtorch with CUDA, it runs the GPU path `dfd` takes
//! (`train.device = "cuda:N"` through [`resolve_device`]); on a build without it, `--device cuda`
//! stops with the error `dfd` gives. TF32 is set from outside, by `NVIDIA_TF32_OVERRIDE` (0: off),
//! since tch 0.22 exposes no switch for it: `bench/gpu-proof.sh` runs the proof with it off and on.
//!
//! ```text
//! cargo run --release -p dfd-models --features tch --example gpu_proof -- --device cuda:0 --steps 10
//! ```
//!
//! Prints one `key: value` line per figure, for the script to keep.

use std::time::Instant;

use burn::tensor::activation::sigmoid;
use burn::tensor::Device;
use dfd_models::training::{train, TrainConfig, TrainSample, TrainingData};
use dfd_models::{
    build_variant, resolve_device, Architecture, ComputeDevice, Detector, DetectorInput, Form,
    ModelVariant, VariantVisitor,
};

/// The reference study's batch size.
const BATCH: usize = 16;
/// Faces in the forward pass compared between the devices.
const FORWARD_BATCH: usize = 8;

struct Args {
    device: ComputeDevice,
    steps: usize,
    cpu_steps: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        device: ComputeDevice::Cuda(0),
        steps: 10,
        cpu_steps: 3,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => args.device = value()?.parse()?,
            "--steps" => args.steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--cpu-steps" => {
                args.cpu_steps = value()?.parse().map_err(|e| format!("--cpu-steps: {e}"))?
            }
            _ => {
                return Err(format!(
                    "unknown argument {flag}; usage: gpu_proof [--device cuda:N] [--steps N] \
                     [--cpu-steps N]"
                ))
            }
        }
    }
    if args.steps == 0 || args.cpu_steps == 0 {
        return Err("--steps and --cpu-steps must be at least 1".into());
    }
    Ok(args)
}

/// Seconds per step: one warm-up epoch of one step (kernel selection, allocations), then one
/// epoch of `steps` steps, timed whole (as the bench: the batch building and the loss read-back
/// of a real run included).
struct TimeSteps {
    steps: usize,
}

impl VariantVisitor for TimeSteps {
    type Output = Result<f64, String>;

    fn visit<D: Detector>(self, detector: D) -> Self::Output {
        let config = TrainConfig {
            max_epochs: 1,
            batch_size: BATCH,
            augment: None,
            ..TrainConfig::default()
        };
        let run = |n: usize| {
            let data = TrainingData {
                train: TrainSample::noise(BATCH * n, 0x9E37_79B9_7F4A_7C15),
                validation: Vec::new(),
            };
            let started = Instant::now();
            train(detector.clone(), &data, &config, None, &mut |_| {})
                .map_err(|e| format!("training: {e}"))?;
            Ok::<f64, String>(started.elapsed().as_secs_f64())
        };
        run(1)?;
        Ok(run(self.steps)? / self.steps as f64)
    }
}

/// P(FAKE) of the same faces with the same weights on the CPU and on `gpu` (the detector is
/// built on the CPU and moved): the largest absolute difference.
struct CompareForward {
    gpu: Device,
}

impl VariantVisitor for CompareForward {
    type Output = Result<f64, String>;

    fn visit<D: Detector>(self, detector: D) -> Self::Output {
        let faces: Vec<f32> = TrainSample::noise(FORWARD_BATCH, 7)
            .into_iter()
            .flat_map(|s| s.face.into_iter().map(f32::from))
            .collect();
        let scores = |model: &D, device: &Device| -> Result<Vec<f32>, String> {
            let input =
                DetectorInput::from_values(FORWARD_BATCH, faces.clone(), None, None, device)?;
            sigmoid(model.forward_logits(&input))
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| format!("{e:?}"))
        };
        let cpu = scores(&detector, &dfd_models::default_device())?;
        let on_gpu = detector.to_device(&self.gpu);
        let gpu = scores(&on_gpu, &self.gpu)?;
        Ok(cpu
            .iter()
            .zip(&gpu)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, f64::max))
    }
}

fn main() {
    if let Err(message) = run() {
        eprintln!("gpu_proof: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let gpu = resolve_device(args.device).map_err(|e| format!("{}: {e}", args.device))?;
    let cpu = dfd_models::default_device();
    println!("backend: {}", dfd_models::backend_name(args.device));
    println!("device: {}", args.device);
    println!(
        "NVIDIA_TF32_OVERRIDE: {}",
        std::env::var("NVIDIA_TF32_OVERRIDE").unwrap_or_else(|_| "unset (TF32 allowed)".into())
    );
    #[cfg(feature = "tch")]
    {
        println!("libtorch cuDNN: {}", tch::utils::version_cudnn());
        println!("libtorch CUDA runtime: {}", tch::utils::version_cudart());
        println!("libtorch CPU threads: {}", tch::get_num_threads());
    }
    for architecture in [Architecture::MesoNet4, Architecture::EfficientNetB0] {
        let variant = ModelVariant {
            architecture,
            form: Form::Single,
        };
        let name = variant.name();
        let on_gpu = build_variant(variant, &gpu, 1, TimeSteps { steps: args.steps })?;
        println!("{name} step s on {}: {on_gpu:.4}", args.device);
        let on_cpu = build_variant(
            variant,
            &cpu,
            1,
            TimeSteps {
                steps: args.cpu_steps,
            },
        )?;
        println!("{name} step s on cpu: {on_cpu:.4}");
        println!("{name} speed-up: {:.1}x", on_cpu / on_gpu);
        let diff = build_variant(variant, &cpu, 1, CompareForward { gpu: gpu.clone() })?;
        println!("{name} forward max |p_gpu - p_cpu|: {diff:.3e}");
    }
    Ok(())
}
