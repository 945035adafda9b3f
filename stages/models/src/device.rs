//! Where a model runs: `cpu` or `cuda[:N]` as the config spells it (`train.device`,
//! `score.device`), and the burn device training gets for it on this build.
//!
//! Asking for a GPU that cannot be had is an error that names what is missing (a build without a
//! GPU backend, a CPU-only libtorch, no NVIDIA driver, no such device), raised before any work:
//! never a quiet fallback to the CPU, which would run for hours and report it as a GPU run, and
//! never burn's own panic deep inside the first tensor.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// The accepted spellings, for error messages.
pub const DEVICE_FORMS: &str = r#""cpu", "cuda" or "cuda:N" (N the index of a CUDA device)"#;

/// Where to compute. `cuda` is `cuda:0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ComputeDevice {
    #[default]
    Cpu,
    Cuda(usize),
}

impl ComputeDevice {
    /// Whether it is the CPU, the default, which no cache key mentions.
    pub fn is_cpu(&self) -> bool {
        *self == ComputeDevice::Cpu
    }

    /// What the device adds to a stage's cache key: nothing for the CPU, so that every key made
    /// before devices existed stays the same, and `cuda` for a GPU, whose arithmetic differs in
    /// the low bits (other kernels, cuDNN's algorithms, TF32). The index is not in it: it picks
    /// which card, not how it computes, just as the CPU's model (AVX2 or AVX-512 kernels) is in
    /// no key either.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ComputeDevice::Cpu => None,
            ComputeDevice::Cuda(_) => Some("cuda"),
        }
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeDevice::Cpu => f.write_str("cpu"),
            ComputeDevice::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

impl FromStr for ComputeDevice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a device: use {DEVICE_FORMS}");
        match text {
            "cpu" => Ok(ComputeDevice::Cpu),
            "cuda" => Ok(ComputeDevice::Cuda(0)),
            _ => {
                let index = text.strip_prefix("cuda:").ok_or_else(bad)?;
                // `usize::from_str` takes a leading `+`; a device index is digits only.
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                index.parse().map(ComputeDevice::Cuda).map_err(|_| bad())
            }
        }
    }
}

impl TryFrom<String> for ComputeDevice {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<ComputeDevice> for String {
    fn from(device: ComputeDevice) -> String {
        device.to_string()
    }
}

/// Why a device cannot be had. Each says what to do about it; the caller names the setting
/// (`train.device = "cuda:0": ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "this dfd was built without a GPU backend (it trains on burn's \
         pure-Rust CPU backend `{backend}`); build the GPU one on a machine with an NVIDIA GPU \
         with `make gpu` (scripts/setup.sh --gpu: libtorch with CUDA from PyPI, dfd built with \
         `--features tch`) and run it through vendor/gpu-env.sh, or use \"cpu\""
    )]
    NoGpuBackend {
        asked: ComputeDevice,
        backend: &'static str,
    },
    #[error(
        "the libtorch this dfd runs on ({library}) is a CPU-only build; \
         scripts/setup.sh --gpu installs PyPI's torch with CUDA and builds dfd against it"
    )]
    CpuOnlyLibtorch {
        asked: ComputeDevice,
        library: String,
    },
    #[error(
        "this machine has no NVIDIA driver (no /proc/driver/nvidia/version, \
         and libcuda.so.1 cannot be loaded); install the driver, or use \"cpu\""
    )]
    NoDriver { asked: ComputeDevice },
    #[error(
        "there is no {asked}: libtorch sees {count} CUDA device(s){seen}; pick an index below \
         {count} (CUDA_VISIBLE_DEVICES renumbers them), or use \"cpu\""
    )]
    NoDevice {
        asked: ComputeDevice,
        count: usize,
        /// ` (cuda:0 .. cuda:K)`, or nothing when there are none.
        seen: String,
    },
}

/// What the machine and the loaded libtorch offer, read once by [`probe`] (tch build only) and
/// judged by [`check_cuda`], which is kept apart so that every verdict is tested on any build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaProbe {
    /// Whether the libtorch in this process was built with CUDA (`tch::utils::has_cuda`).
    pub libtorch_has_cuda: bool,
    /// The libtorch library file in use, when it can be told (for the message).
    pub libtorch_library: Option<PathBuf>,
    /// Whether an NVIDIA driver is installed.
    pub driver: bool,
    /// The CUDA devices libtorch sees.
    pub device_count: usize,
}

/// Whether `asked` (a CUDA device) can be used, given what `probe` found; the first thing missing
/// in the order one has to fix them: the library, the driver, the device.
pub fn check_cuda(asked: ComputeDevice, probe: &CudaProbe) -> Result<(), DeviceError> {
    let ComputeDevice::Cuda(index) = asked else {
        return Ok(());
    };
    if !probe.libtorch_has_cuda {
        return Err(DeviceError::CpuOnlyLibtorch {
            asked,
            library: probe
                .libtorch_library
                .as_ref()
                .map_or_else(|| "libtorch".to_owned(), |p| p.display().to_string()),
        });
    }
    if probe.device_count == 0 && !probe.driver {
        return Err(DeviceError::NoDriver { asked });
    }
    if index >= probe.device_count {
        let seen = match probe.device_count {
            0 => String::new(),
            1 => " (cuda:0)".to_owned(),
            n => format!(" (cuda:0 .. cuda:{})", n - 1),
        };
        return Err(DeviceError::NoDevice {
            asked,
            count: probe.device_count,
            seen,
        });
    }
    Ok(())
}

/// The name of the backend training on `device` runs: `tch` (libtorch, on its CPU or a GPU) on
/// the `tch` build, `cuda` for a GPU on the `cuda` build, else `flex`, burn's pure-Rust CPU
/// backend. Backends draw different seeded weights and round differently, so what a training
/// produces depends on it (with the device itself, see [`ComputeDevice::key`]).
pub fn backend_name(device: ComputeDevice) -> &'static str {
    if cfg!(feature = "cuda") && !device.is_cpu() {
        "cuda"
    } else if cfg!(feature = "tch") {
        "tch"
    } else {
        "flex"
    }
}

/// The burn device for `device` on this build, once it is known to work: libtorch's CPU or
/// GPU N on the `tch` build (cuDNN's benchmark mode off, so that it does not pick algorithms by
/// timing), burn's CUDA backend on the `cuda` build, `flex` for the CPU otherwise. A GPU on a
/// build without a GPU backend, or one the machine lacks, is a [`DeviceError`].
pub fn resolve_device(device: ComputeDevice) -> Result<Device, DeviceError> {
    match device {
        ComputeDevice::Cpu => Ok(default_device()),
        ComputeDevice::Cuda(index) => cuda_device(device, index),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(_asked: ComputeDevice, index: usize) -> Result<Device, DeviceError> {
    Ok(Device::cuda(index))
}

#[cfg(all(feature = "tch", not(feature = "cuda")))]
fn cuda_device(asked: ComputeDevice, index: usize) -> Result<Device, DeviceError> {
    check_cuda(asked, &probe())?;
    tch::Cuda::cudnn_set_benchmark(false);
    // burn-tch is deprecated upstream in favour of CubeCL's CUDA backend, whose build needs a
    // download (LLVM) that cannot happen offline; libtorch from PyPI is the GPU route that works.
    #[allow(deprecated)]
    Ok(Device::libtorch_cuda(index))
}

#[cfg(not(any(feature = "tch", feature = "cuda")))]
fn cuda_device(asked: ComputeDevice, _index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NoGpuBackend {
        asked,
        backend: backend_name(ComputeDevice::Cpu),
    })
}

/// The CPU device of this build's backend: libtorch's CPU with `tch`, else `flex` (the `cuda`
/// build's CPU device too, as burn's CUDA backend has none). For work that has no device setting
/// (Grad-CAM, benchmarks, tests).
pub fn default_device() -> Device {
    #[cfg(feature = "tch")]
    {
        #[allow(deprecated)] // see `cuda_device`
        Device::libtorch()
    }
    #[cfg(not(feature = "tch"))]
    {
        Device::flex()
    }
}

/// What the machine and the loaded libtorch offer (see [`CudaProbe`]).
#[cfg(feature = "tch")]
pub fn probe() -> CudaProbe {
    let libtorch_has_cuda = tch::utils::has_cuda();
    CudaProbe {
        libtorch_has_cuda,
        libtorch_library: loaded_library("libtorch_cpu"),
        driver: nvidia_driver_present(),
        // Asking libtorch for devices without CUDA in it is an error inside libtorch; the count
        // is only read where it can be.
        device_count: if libtorch_has_cuda {
            usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
        } else {
            0
        },
    }
}

/// Whether an NVIDIA driver is installed: its kernel module's version file, or (where that is
/// not mounted, as under WSL) its user-space library loads.
#[cfg(feature = "tch")]
fn nvidia_driver_present() -> bool {
    if std::path::Path::new("/proc/driver/nvidia/version").exists() {
        return true;
    }
    // SAFETY: libcuda's initialisers only register the driver API; nothing of it is called.
    unsafe { libloading::Library::new("libcuda.so.1") }.is_ok()
}

/// The path of the first shared library mapped into this process whose file name starts with
/// `stem` (Linux's /proc/self/maps), for messages that name the library in use.
#[cfg(feature = "tch")]
fn loaded_library(stem: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(stem))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_parse_and_print_back() {
        for (text, device, shown) in [
            ("cpu", ComputeDevice::Cpu, "cpu"),
            ("cuda", ComputeDevice::Cuda(0), "cuda:0"),
            ("cuda:0", ComputeDevice::Cuda(0), "cuda:0"),
            ("cuda:3", ComputeDevice::Cuda(3), "cuda:3"),
        ] {
            let parsed: ComputeDevice = text.parse().expect(text);
            assert_eq!(parsed, device, "{text}");
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(shown.parse::<ComputeDevice>(), Ok(device));
        }
    }

    #[test]
    fn other_spellings_are_refused_with_the_accepted_forms() {
        for text in [
            "gpu", "cuda:x", "cuda:", "cuda:+1", "cuda:-1", "CUDA", " cpu", "cuda0",
        ] {
            let error = text.parse::<ComputeDevice>().expect_err(text);
            assert!(error.contains(&format!("`{text}`")), "{error}");
            assert!(error.contains(r#""cuda:N""#), "{error}");
        }
    }

    #[test]
    fn only_a_gpu_adds_to_a_cache_key_and_never_its_index() {
        assert_eq!(ComputeDevice::Cpu.key(), None);
        assert_eq!(ComputeDevice::Cuda(0).key(), Some("cuda"));
        assert_eq!(ComputeDevice::Cuda(1).key(), ComputeDevice::Cuda(0).key());
    }

    fn machine(has_cuda: bool, driver: bool, devices: usize) -> CudaProbe {
        CudaProbe {
            libtorch_has_cuda: has_cuda,
            libtorch_library: Some(PathBuf::from("/x/torch/lib/libtorch_cpu.so")),
            driver,
            device_count: devices,
        }
    }

    #[test]
    fn each_missing_piece_is_named_in_the_order_it_is_fixed() {
        let cuda1 = ComputeDevice::Cuda(1);
        // A CPU-only libtorch, whatever the machine has.
        let error = check_cuda(cuda1, &machine(false, true, 2)).unwrap_err();
        assert!(
            matches!(error, DeviceError::CpuOnlyLibtorch { .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("/x/torch/lib/libtorch_cpu.so"),
            "{message}"
        );
        assert!(
            message.contains("CPU-only") && message.contains("--gpu"),
            "{message}"
        );
        // A CUDA libtorch on a machine without the driver.
        let error = check_cuda(cuda1, &machine(true, false, 0)).unwrap_err();
        assert_eq!(error, DeviceError::NoDriver { asked: cuda1 });
        assert!(error.to_string().contains("no NVIDIA driver"), "{error}");
        // A driver but no device (all hidden, or the driver does not see the card).
        let error = check_cuda(cuda1, &machine(true, true, 0)).unwrap_err();
        assert!(
            error.to_string().contains("sees 0 CUDA device(s);"),
            "{error}"
        );
        // One device, the second asked.
        let error = check_cuda(cuda1, &machine(true, true, 1)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("no cuda:1") && message.contains("sees 1 CUDA device(s) (cuda:0)"),
            "{message}"
        );
        let error = check_cuda(ComputeDevice::Cuda(4), &machine(true, true, 3)).unwrap_err();
        assert!(error.to_string().contains("(cuda:0 .. cuda:2)"), "{error}");
        // What works.
        check_cuda(cuda1, &machine(true, true, 2)).expect("cuda:1 of two");
        check_cuda(ComputeDevice::Cuda(0), &machine(true, false, 1))
            .expect("a driver /proc misses");
        check_cuda(ComputeDevice::Cpu, &machine(false, false, 0)).expect("the CPU needs nothing");
    }

    #[test]
    fn the_cpu_resolves_on_every_build() {
        resolve_device(ComputeDevice::Cpu).expect("the CPU");
    }

    /// The default build has no GPU backend: asking one is the error that says how to get it,
    /// not a CPU run and not a panic.
    #[cfg(not(any(feature = "tch", feature = "cuda")))]
    #[test]
    fn a_gpu_on_the_default_build_says_how_to_get_a_gpu_build() {
        let error = resolve_device(ComputeDevice::Cuda(0)).expect_err("no GPU backend");
        let message = error.to_string();
        assert!(message.contains("built without a GPU backend"), "{message}");
        assert!(message.contains("make gpu"), "{message}");
        assert!(message.contains("scripts/setup.sh --gpu"), "{message}");
        assert_eq!(backend_name(ComputeDevice::Cuda(0)), "flex");
    }

    /// On the `tch` build, against the libtorch it was built with: a CPU-only one (the CI's and
    /// this machine's) refuses a GPU naming itself; a CUDA one on a machine without a GPU names
    /// the driver or the device; with a GPU, cuda:0 resolves and a device past the last does not.
    #[cfg(feature = "tch")]
    #[test]
    fn a_gpu_on_the_tch_build_is_checked_against_the_machine() {
        let found = probe();
        let asked = ComputeDevice::Cuda(0);
        match resolve_device(asked) {
            Ok(_) => {
                assert!(
                    found.libtorch_has_cuda && found.device_count > 0,
                    "{found:?}"
                );
                let past = ComputeDevice::Cuda(found.device_count);
                let error = resolve_device(past).expect_err("no device past the last");
                assert!(matches!(error, DeviceError::NoDevice { .. }), "{error}");
            }
            Err(error) if !found.libtorch_has_cuda => {
                assert!(
                    matches!(error, DeviceError::CpuOnlyLibtorch { .. }),
                    "{error}"
                );
                assert!(
                    found.libtorch_library.is_some(),
                    "libtorch_cpu is mapped into a tch process: {found:?}"
                );
            }
            Err(error) => assert!(
                matches!(
                    error,
                    DeviceError::NoDriver { .. } | DeviceError::NoDevice { .. }
                ),
                "{error}"
            ),
        }
        assert_eq!(backend_name(asked), "tch");
        assert_eq!(backend_name(ComputeDevice::Cpu), "tch");
    }
}
