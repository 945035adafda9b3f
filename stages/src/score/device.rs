//! `score.device`: scoring on ONNX Runtime's CUDA execution provider.
//!
//! The provider is registered with error-on-failure: ONNX Runtime's default is to log a failed
//! provider and run the session on the CPU, which would make a `cuda` run a slow CPU run that says
//! nothing. The ONNX Runtime `scripts/setup.sh` installs is the CPU build, which has no CUDA
//! provider at all; `scripts/setup.sh --gpu` installs onnxruntime-gpu's library, with the CUDA and
//! cuDNN libraries it loads from their PyPI wheels, and `vendor/gpu-env.sh` points
//! `ORT_DYLIB_PATH` (`paths.onnxruntime`) at it.

use ort::ep::{ExecutionProvider, ExecutionProviderDispatch, CUDA};

use dfd_models::ComputeDevice;

/// Why scoring cannot run on the device asked for.
#[derive(Debug, thiserror::Error)]
pub enum ScoreDeviceError {
    #[error(
        "score.device = \"{asked}\", but the ONNX Runtime library loaded, {library}, has no CUDA \
         execution provider: it is the CPU build (the one scripts/setup.sh installs); \
         `scripts/setup.sh --gpu` installs onnxruntime-gpu's library, and running dfd through \
         vendor/gpu-env.sh points ORT_DYLIB_PATH at it (or set paths.onnxruntime); or use \
         score.device = \"cpu\""
    )]
    NoCudaProvider {
        asked: ComputeDevice,
        library: String,
    },
    #[error(
        "score.device = \"{asked}\": ONNX Runtime's CUDA execution provider (in {library}) did \
         not start: {detail}; it needs an NVIDIA driver, the device, and the CUDA and cuDNN \
         libraries of the nvidia-* wheels scripts/setup.sh --gpu installs on LD_LIBRARY_PATH (run \
         dfd through vendor/gpu-env.sh)"
    )]
    Register {
        asked: ComputeDevice,
        library: String,
        detail: String,
    },
    #[error("score.device = \"{asked}\": ONNX Runtime ({library}): {detail}")]
    Runtime {
        asked: ComputeDevice,
        library: String,
        detail: String,
    },
}

/// The ONNX Runtime library this process loads (`ORT_DYLIB_PATH`, which the CLI sets from
/// `paths.onnxruntime`), for messages.
pub fn ort_library() -> String {
    match std::env::var("ORT_DYLIB_PATH") {
        Ok(path) if !path.is_empty() => path,
        _ => "libonnxruntime.so from the library search path".to_owned(),
    }
}

/// Whether `device` can score here: always for the CPU; for a GPU, the loaded ONNX Runtime must
/// have the CUDA provider. Loads the library. Whether the provider then starts on the device
/// (driver, device, CUDA libraries) only a session can tell: [`cuda_provider`]'s registration
/// fails with [`ScoreDeviceError::Register`] then.
pub fn check_score_device(device: ComputeDevice) -> Result<(), ScoreDeviceError> {
    if device.is_cpu() {
        return Ok(());
    }
    let runtime = |detail: String| ScoreDeviceError::Runtime {
        asked: device,
        library: ort_library(),
        detail,
    };
    crate::detect::ort_environment().map_err(|e| runtime(e.to_string()))?;
    let available = CUDA::is_available().map_err(|e| runtime(e.to_string()))?;
    if !available {
        return Err(ScoreDeviceError::NoCudaProvider {
            asked: device,
            library: ort_library(),
        });
    }
    Ok(())
}

/// The CUDA provider for `device` (`None` for the CPU, ONNX Runtime's default), after
/// [`check_score_device`]; registering it fails rather than falls back to the CPU.
pub fn cuda_provider(
    device: ComputeDevice,
) -> Result<Option<ExecutionProviderDispatch>, ScoreDeviceError> {
    let ComputeDevice::Cuda(index) = device else {
        return Ok(None);
    };
    check_score_device(device)?;
    let id = i32::try_from(index).map_err(|_| ScoreDeviceError::Register {
        asked: device,
        library: ort_library(),
        detail: format!("device index {index} is out of range"),
    })?;
    Ok(Some(
        CUDA::default()
            .with_device_id(id)
            // TF32 stays off (ONNX Runtime's default, said here because it matters): with it,
            // Ampere's and Hopper's matrix units round their inputs to 10 mantissa bits, and the
            // scores no longer match the CPU's float32 ones to the low bits.
            .with_tf32(false)
            .build()
            .error_on_failure(),
    ))
}

/// A registration failure as the error that says what the provider needs.
pub fn register_error(device: ComputeDevice, detail: String) -> ScoreDeviceError {
    ScoreDeviceError::Register {
        asked: device,
        library: ort_library(),
        detail,
    }
}
