//! The three ONNX sessions and the one process-wide ONNX Runtime environment they live in.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ndarray::{Array2, Array4, ArrayView4};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use super::{prelu, DetectError, MtcnnParams};

/// Registers the CPU arena that the MTCNN sessions share ([`Networks::load`] opts them in).
///
/// Each session otherwise grows an arena of its own in power-of-two steps and keeps it for life:
/// two detectors of three sessions held 214 MB at 1080p, most of it never in use at once. One
/// arena for all of them, grown by what is asked (`kSameAsRequested`), holds what the sessions
/// running together need: with memory patterns also off, the peak RSS of 6 videos at 1080p went
/// from 714-722 MB to 565-591 MB at the same CPU time (10.5-10.7 s user either way, 3 runs
/// each). Other sessions of the process (scoring) keep their own allocators.
fn register_shared_arena(env: &Environment) -> Result<(), ort::Error> {
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer;
    // ONNX Runtime's ArenaExtendStrategy: 0 = kNextPowerOfTwo, 1 = kSameAsRequested.
    const SAME_AS_REQUESTED: usize = 1;
    let keys = [c"arena_extend_strategy".as_ptr()];
    let values = [SAME_AS_REQUESTED];
    let memory = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Arena,
        MemoryType::Default,
    )?;
    let api = ort::api();
    let mut config: *mut ort::sys::OrtArenaCfg = std::ptr::null_mut();
    // SAFETY: the key and value arrays are of the length given and outlive the call; `config` is
    // released once, after the allocator copied it; `env` and `memory` are live objects of this
    // library.
    unsafe {
        ort::Error::result_from_status((api.CreateArenaCfgV2)(
            keys.as_ptr(),
            values.as_ptr(),
            keys.len(),
            &mut config,
        ))?;
        let registered = ort::Error::result_from_status((api.CreateAndRegisterAllocator)(
            env.ptr().cast_mut(),
            memory.ptr(),
            config,
        ));
        (api.ReleaseArenaCfg)(config);
        registered
    }
}

/// File names under the weights directory, as fetched by `scripts/setup.sh`.
pub const PNET_FILE: &str = "pnet.onnx";
pub const RNET_FILE: &str = "rnet.onnx";
pub const ONET_FILE: &str = "onet.onnx";

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// The process's ONNX Runtime environment, created on first use. `ort` allows only one per process
/// and never again after it is dropped, so it is kept for the life of the process and shared with
/// any other user of ONNX Runtime in it.
pub fn ort_environment() -> Result<Environment, DetectError> {
    // Held across the build: two threads must not both try to build one.
    let mut slot = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    // Loaded explicitly, from where `ort` itself would look, because `ort`'s implicit loading panics
    // when the library is missing instead of returning an error.
    let library = match std::env::var("ORT_DYLIB_PATH") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(format!(
            "{}onnxruntime{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
    };
    let built = ort::init_from(&library)
        .map_err(|e| DetectError::Runtime {
            path: library.clone(),
            detail: e.to_string(),
        })?
        .with_name("dfd")
        // No telemetry to Microsoft from a research tool (see the CLI's `no_runtime_telemetry`,
        // which stops it before this point).
        .with_telemetry(false)
        .build()
        .map_err(DetectError::Environment)?;
    // Memory only: without it each session grows its own arena, as ONNX Runtime does by default.
    if let Err(error) = register_shared_arena(&built) {
        tracing::warn!("ONNX Runtime: the detectors' shared arena could not be set up: {error}");
    }
    *slot = Some(built.clone());
    Ok(built)
}

/// P-Net's two outputs in the network's own (transposed, x-major) layout: `[W', H', 4]` box
/// regression and `[W', H']` face probability.
pub struct PnetOutput {
    pub regression: Array4<f32>,
    pub probability: Array2<f32>,
}

/// What R-Net (`landmarks` empty) or O-Net says about a batch of crops, one row per crop.
pub struct RefineOutput {
    pub regression: Array2<f32>,
    pub probability: Vec<f32>,
    pub landmarks: Array2<f32>,
}

/// One single-threaded P-Net session per worker (see [`MtcnnParams::intra_op_threads`]), and one
/// R-Net and one O-Net session with `intra_op_threads` ONNX Runtime threads each.
pub struct Networks {
    pnets: Vec<Pnet>,
    rnet: Session,
    onet: Session,
}

/// A P-Net session, run by one pyramid worker at a time.
pub struct Pnet(Session);

/// How many threads the detector uses: the configured count, or one per core.
pub fn thread_count(params: &MtcnnParams) -> usize {
    match params.intra_op_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

impl Networks {
    pub fn load(dir: &Path, params: &MtcnnParams) -> Result<Networks, DetectError> {
        let env = ort_environment()?;
        let threads = thread_count(params);
        let load = |file: &str, outputs: &[&str], threads: usize| -> Result<Session, DetectError> {
            let path = dir.join(file);
            let fail = |detail: String| DetectError::Load {
                path: path.clone(),
                detail,
            };
            if !path.is_file() {
                return Err(fail("no such file (scripts/setup.sh fetches it)".into()));
            }
            let model = prelu::load_model(&path).map_err(fail)?;
            // No spinning: between runs this thread crops and resizes on the same cores, and
            // spinning workers made a frame up to 2x slower on 2 cores.
            let session = Session::builder(&env)
                .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
                .and_then(|b| Ok(b.with_intra_threads(threads)?))
                .and_then(|b| Ok(b.with_intra_op_spinning(false)?))
                // One arena for every detector's sessions (see `register_shared_arena`), and
                // no memory patterns: a pattern is a block sized for one input shape, and
                // P-Net sees a dozen shapes a frame size.
                .and_then(|b| Ok(b.with_env_allocators()?))
                .and_then(|b| Ok(b.with_memory_pattern(false)?))
                .and_then(|b| prelu::commit(b, &model))
                .map_err(|e| fail(e.to_string()))?;
            for name in outputs {
                if !session.outputs().iter().any(|o| o.name() == *name) {
                    return Err(fail(format!("it has no output named {name}")));
                }
            }
            Ok(session)
        };
        let pnets = (0..threads)
            .map(|_| load(PNET_FILE, &["conv2d_4", "softmax"], 1).map(Pnet))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Networks {
            pnets,
            rnet: load(RNET_FILE, &["dense_2", "softmax_1"], threads)?,
            onet: load(ONET_FILE, &["dense_5", "dense_6", "softmax_2"], threads)?,
        })
    }

    /// The detector's thread count (one P-Net session per thread).
    pub fn threads(&self) -> usize {
        self.pnets.len()
    }

    /// The P-Net sessions, one per pyramid worker.
    pub fn pnets(&mut self) -> &mut [Pnet] {
        &mut self.pnets
    }

    /// Runs R-Net on `[N, 24, 24, 3]` crops in one call.
    pub fn rnet(&mut self, input: ArrayView4<f32>) -> Result<RefineOutput, DetectError> {
        refine(&mut self.rnet, "R-Net", input, "dense_2", "softmax_1", None)
    }

    /// Runs O-Net on `[N, 48, 48, 3]` crops in one call.
    pub fn onet(&mut self, input: ArrayView4<f32>) -> Result<RefineOutput, DetectError> {
        refine(
            &mut self.onet,
            "O-Net",
            input,
            "dense_5",
            "softmax_2",
            Some("dense_6"),
        )
    }
}

impl Pnet {
    /// Runs P-Net on one pyramid level given as `[1, W, H, 3]` (transposed, normalised).
    pub fn run(&mut self, input: ArrayView4<f32>) -> Result<PnetOutput, DetectError> {
        const NET: &str = "P-Net";
        let tensor = TensorRef::from_array_view(input).map_err(|source| inference(NET, source))?;
        let outputs = self
            .0
            .run(ort::inputs![tensor])
            .map_err(|source| inference(NET, source))?;
        let regression = extract::<4>(NET, &outputs, "conv2d_4", 4)?;
        let softmax = extract::<4>(NET, &outputs, "softmax", 2)?;
        let probability = softmax
            .index_axis(ndarray::Axis(0), 0)
            .index_axis(ndarray::Axis(2), 1)
            .to_owned();
        if regression.shape()[..3] != [1, probability.nrows(), probability.ncols()] {
            return Err(DetectError::Output {
                net: NET,
                detail: format!(
                    "conv2d_4 {:?} does not match softmax {:?}",
                    regression.shape(),
                    softmax.shape()
                ),
            });
        }
        Ok(PnetOutput {
            regression: regression.to_owned(),
            probability,
        })
    }
}

fn refine(
    session: &mut Session,
    net: &'static str,
    input: ArrayView4<f32>,
    regression: &str,
    softmax: &str,
    landmarks: Option<&str>,
) -> Result<RefineOutput, DetectError> {
    let n = input.shape()[0];
    let tensor = TensorRef::from_array_view(input).map_err(|source| inference(net, source))?;
    let outputs = session
        .run(ort::inputs![tensor])
        .map_err(|source| inference(net, source))?;
    let regression = extract::<2>(net, &outputs, regression, 4)?.to_owned();
    let probability = extract::<2>(net, &outputs, softmax, 2)?.column(1).to_vec();
    let landmarks = match landmarks {
        Some(name) => extract::<2>(net, &outputs, name, 10)?.to_owned(),
        None => Array2::zeros((n, 0)),
    };
    if regression.nrows() != n || probability.len() != n || landmarks.nrows() != n {
        return Err(DetectError::Output {
            net,
            detail: format!("expected {n} rows per output"),
        });
    }
    Ok(RefineOutput {
        regression,
        probability,
        landmarks,
    })
}

/// Borrows output `name` as a `D`-dimensional array whose last axis has `last` entries.
fn extract<'o, const D: usize>(
    net: &'static str,
    outputs: &'o ort::session::SessionOutputs<'_>,
    name: &str,
    last: usize,
) -> Result<ndarray::ArrayView<'o, f32, ndarray::Dim<[usize; D]>>, DetectError>
where
    ndarray::Dim<[usize; D]>: ndarray::Dimension,
{
    let bad = |detail: String| DetectError::Output { net, detail };
    let value = outputs
        .get(name)
        .ok_or_else(|| bad(format!("no output {name}")))?;
    let array = value
        .try_extract_array::<f32>()
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let shape = array.shape().to_vec();
    let array = array
        .into_dimensionality::<ndarray::Dim<[usize; D]>>()
        .map_err(|_| bad(format!("{name} has shape {shape:?}, expected {D} axes")))?;
    if shape.last() != Some(&last) {
        return Err(bad(format!(
            "{name} has shape {shape:?}, expected {last} in the last axis"
        )));
    }
    Ok(array)
}

fn inference(net: &'static str, source: ort::Error) -> DetectError {
    DetectError::Inference { net, source }
}
