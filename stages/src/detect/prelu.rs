//! MTCNN's `PRelu` as a custom ONNX Runtime kernel: the same arithmetic in a plain loop.
//!
//! ONNX Runtime runs the three networks' convolutions in fast blocked kernels, but its `PRelu` is a
//! generic broadcasting element-wise loop. Profiled on P-Net over a 640x360 frame's pyramid (ONNX
//! Runtime 1.32's own profiler, one thread), its three `PRelu` nodes took 7.4 of 13.2 ms: more than
//! all convolutions together. This kernel computes what ONNX Runtime's does, `x > 0 ? x : x *
//! slope` with the slope of `x`'s channel, element by element in f32, so every output of the three
//! networks is the same to the bit (`same_outputs` below runs both on the same inputs) and so are
//! the detections. A whole 640x360 clip's preprocessing took 0.358 s instead of 0.420 s.
//!
//! ONNX Runtime takes custom kernels only for operators of a custom domain, so [`load_model`]
//! moves the models' `PRelu` nodes to [`DOMAIN`] (see [`super::onnx_proto`]) before the session
//! is built; the weights files themselves stay as fetched, sha256 and all.

use std::path::Path;
use std::sync::Mutex;

use ort::operator::{
    BoxedKernel, ComputeContext, KernelContext, Operator, OperatorDomain, OperatorInput,
    OperatorOutput, ShapeInferenceContext,
};
use ort::session::builder::SessionBuilder;
use ort::session::Session;
use ort::value::TensorElementType;

use super::onnx_proto;

/// The operator domain of this crate's kernels in the edited models.
pub const DOMAIN: &str = "dfd.mtcnn";

/// The operator domain to register with every session built from [`load_model`]'s bytes.
fn domain() -> Result<OperatorDomain, ort::Error> {
    OperatorDomain::new(DOMAIN)?.add(PRelu)
}

/// A session of `model` (bytes from [`load_model`]) with this module's kernels registered.
///
/// ONNX Runtime adds a custom domain to a process-wide table the first time a session uses it,
/// checking and adding without a lock: with two detectors loading at once, one in seven runs lost
/// a video to "Trying to add a domain to DomainToVersion map, but the domain is already exist".
/// So the first commit holds a lock; after it, sessions only find the domain in the table.
pub fn commit(builder: SessionBuilder, model: &[u8]) -> ort::Result<Session> {
    static REGISTERED: Mutex<bool> = Mutex::new(false);
    let mut builder = builder.with_operators(domain()?)?;
    let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if *registered {
        drop(registered);
        return builder.commit_from_memory(model);
    }
    let session = builder.commit_from_memory(model)?;
    *registered = true;
    Ok(session)
}

/// The model file at `path` with its `PRelu` nodes moved to [`DOMAIN`].
pub fn load_model(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let (edited, _) = onnx_proto::move_to_domain(&bytes, "PRelu", DOMAIN, 1)
        .map_err(|e| format!("not an ONNX model this reader understands: {e}"))?;
    Ok(edited)
}

/// ONNX's `PRelu`: `slope` broadcast to `x`'s shape (unidirectionally, dimensions aligned from the
/// right). MTCNN's slopes are one per channel (`[1, C, 1, 1]`, or `[C]` after a dense layer), the
/// fast path; any other valid shape (weights of another export under `paths.mtcnn`) takes a slower
/// general one, not an error.
struct PRelu;

impl Operator for PRelu {
    type Kernel<'attr> = BoxedKernel<'attr>;

    fn name(&self) -> &str {
        "PRelu"
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        [
            OperatorInput::required(TensorElementType::Float32),
            OperatorInput::required(TensorElementType::Float32),
        ]
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(TensorElementType::Float32)]
    }

    /// The output is shaped as `x`. Without this, shapes downstream are unknown to ONNX Runtime's
    /// optimizer, which then leaves R-Net's and O-Net's dense layers as `MatMul` + `Add` instead of
    /// fusing them into one `Gemm`: a different summation, and different last bits.
    fn infer_shape(&self, ctx: &mut ShapeInferenceContext) -> ort::Result<()> {
        use ort::AsPointer;
        use ort::Error;
        let api = ort::api();
        let mut x: *mut ort::sys::OrtTensorTypeAndShapeInfo = std::ptr::null_mut();
        // SAFETY: `ctx` is live for the call; the input's info stays owned by the context and is
        // only read here; the output's info is created, handed to the context (which copies it)
        // and released.
        unsafe {
            Error::result_from_status((api.ShapeInferContext_GetInputTypeShape)(
                ctx.ptr(),
                0,
                &mut x,
            ))?;
            if x.is_null() {
                return Err(Error::new("PRelu: no input shape to infer from"));
            }
            let mut rank = 0;
            Error::result_from_status((api.GetDimensionsCount)(x, &mut rank))?;
            let mut dims = vec![0i64; rank];
            Error::result_from_status((api.GetDimensions)(x, dims.as_mut_ptr(), rank))?;
            let mut symbols = vec![std::ptr::null::<std::ffi::c_char>(); rank];
            Error::result_from_status((api.GetSymbolicDimensions)(x, symbols.as_mut_ptr(), rank))?;
            // Unknown dimensions arrive as -1 but also below it (-2 and -4 on P-Net's inner
            // layers), and only -1 is accepted back.
            for d in &mut dims {
                *d = (*d).max(-1);
            }
            let mut y: *mut ort::sys::OrtTensorTypeAndShapeInfo = std::ptr::null_mut();
            Error::result_from_status((api.CreateTensorTypeAndShapeInfo)(&mut y))?;
            let set = Error::result_from_status((api.SetTensorElementType)(
                y,
                ort::sys::ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
            ))
            .and_then(|()| Error::result_from_status((api.SetDimensions)(y, dims.as_ptr(), rank)))
            .and_then(|()| {
                Error::result_from_status((api.SetSymbolicDimensions)(
                    y,
                    symbols.as_mut_ptr(),
                    rank,
                ))
            })
            .and_then(|()| {
                Error::result_from_status((api.ShapeInferContext_SetOutputTypeShape)(
                    ctx.ptr(),
                    0,
                    y,
                ))
            });
            (api.ReleaseTensorTypeAndShapeInfo)(y);
            set
        }
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<Self::Kernel<'attr>> {
        Ok(Box::new(|ctx: &ComputeContext| {
            let missing = || ort::Error::new("PRelu: an input is missing");
            let x = ctx.input(0)?.ok_or_else(missing)?;
            let slope = ctx.input(1)?.ok_or_else(missing)?;
            let (shape, x) = x.try_extract_tensor::<f32>()?;
            let (slope_shape, slope) = slope.try_extract_tensor::<f32>()?;
            let layout = Layout::of(shape, slope_shape).ok_or_else(|| {
                ort::Error::new(format!(
                    "PRelu: a slope of shape {slope_shape:?} does not broadcast to an input of \
                     shape {shape:?}"
                ))
            })?;
            let mut y = ctx
                .output(0, shape.to_vec())?
                .ok_or_else(|| ort::Error::new("PRelu: no output"))?;
            let (_, y) = y.try_extract_tensor_mut::<f32>()?;
            match layout {
                Layout::Runs { inner } => prelu(x, slope, inner, y),
                Layout::General { dims, strides } => prelu_general(x, slope, &dims, &strides, y),
            }
            Ok(())
        }))
    }
}

/// How the slope's values map onto `x`'s elements.
#[derive(Debug, PartialEq)]
enum Layout {
    /// `x` as `[outer, slope.len(), inner]`: the slope varies along one axis at most.
    Runs { inner: usize },
    /// Anything else: `x`'s dimensions and, for each, the slope's stride along it (0 where the
    /// slope is broadcast).
    General {
        dims: Vec<usize>,
        strides: Vec<usize>,
    },
}

impl Layout {
    /// The layout of a slope shaped `slope` over an `x` shaped `x`, or `None` when ONNX's
    /// unidirectional broadcasting does not take one to the other.
    fn of(x: &[i64], slope: &[i64]) -> Option<Layout> {
        let dims = x
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<usize>>>()?;
        let lead = dims.len().checked_sub(slope.len())?;
        let mut aligned = vec![1usize; lead];
        for &d in slope {
            aligned.push(usize::try_from(d).ok()?);
        }
        if aligned.iter().zip(&dims).any(|(&a, &d)| a != 1 && a != d) {
            return None;
        }
        let varying: Vec<usize> = (0..dims.len()).filter(|&k| aligned[k] != 1).collect();
        let product = |d: &[usize]| d.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        match varying[..] {
            [] => Some(Layout::Runs {
                inner: product(&dims)?,
            }),
            [k] => Some(Layout::Runs {
                inner: product(&dims[k + 1..])?,
            }),
            _ => {
                let mut strides = vec![0; dims.len()];
                let mut stride = 1;
                for k in (0..dims.len()).rev() {
                    if aligned[k] != 1 {
                        strides[k] = stride;
                        stride *= aligned[k];
                    }
                }
                Some(Layout::General { dims, strides })
            }
        }
    }
}

/// `y = x > 0 ? x : x * slope[c]` over `x` and `y` as `[outer, slope.len(), inner]` (a branch-free
/// select the compiler vectorises).
fn prelu(x: &[f32], slope: &[f32], inner: usize, y: &mut [f32]) {
    if inner == 0 {
        return;
    }
    let runs = x.chunks_exact(inner).zip(y.chunks_exact_mut(inner));
    for ((x, y), &a) in runs.zip(slope.iter().cycle()) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = if x > 0.0 { x } else { x * a };
        }
    }
}

/// [`prelu`] for a [`Layout::General`] slope: each element's slope index from its coordinates.
fn prelu_general(x: &[f32], slope: &[f32], dims: &[usize], strides: &[usize], y: &mut [f32]) {
    let mut at = vec![0usize; dims.len()];
    for (y, &x) in y.iter_mut().zip(x) {
        let a = slope[at.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>()];
        *y = if x > 0.0 { x } else { x * a };
        // The next coordinates, last axis fastest.
        for k in (0..dims.len()).rev() {
            at[k] += 1;
            if at[k] < dims[k] {
                break;
            }
            at[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(inner: usize) -> Option<Layout> {
        Some(Layout::Runs { inner })
    }

    #[test]
    fn slope_shapes() {
        // MTCNN's, and PyTorch's export of a per-channel PReLU.
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[1, 10, 1, 1]), runs(35));
        assert_eq!(Layout::of(&[3, 128], &[128]), runs(1));
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[10, 1, 1]), runs(35));
        // One slope for all, or one per last-axis position.
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[1]), runs(350));
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[]), runs(350));
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[7]), runs(1));
        assert_eq!(
            Layout::of(&[2, 10, 5, 7], &[10, 5, 1]),
            Some(Layout::General {
                dims: vec![2, 10, 5, 7],
                strides: vec![0, 5, 1, 0],
            })
        );
        // Not broadcastable: a wrong size, a slope of higher rank, an unknown dimension.
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[10]), None);
        assert_eq!(Layout::of(&[1, 10, 5, 7], &[1, 9, 1, 1]), None);
        assert_eq!(Layout::of(&[10], &[1, 10]), None);
        assert_eq!(Layout::of(&[-1, 10], &[10]), None);
    }

    /// Both paths against the definition, element by element, on a slope that varies along two
    /// axes and on one that varies along one.
    #[test]
    fn general_and_runs_match_the_definition() {
        let dims = [2usize, 3, 4, 5];
        let x: Vec<f32> = (0..120).map(|i| ((i * 37) % 23) as f32 - 11.5).collect();
        for slope_shape in [vec![3i64, 1, 5], vec![3, 1, 1]] {
            let len: i64 = slope_shape.iter().product();
            let slope: Vec<f32> = (0..len).map(|i| 0.25 * i as f32 - 1.0).collect();
            let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let mut y = vec![f32::NAN; 120];
            match Layout::of(&shape, &slope_shape).unwrap() {
                Layout::Runs { inner } => prelu(&x, &slope, inner, &mut y),
                Layout::General { dims, strides } => {
                    prelu_general(&x, &slope, &dims, &strides, &mut y)
                }
            }
            for (i, (&x, &y)) in x.iter().zip(&y).enumerate() {
                let (c, w) = ((i / 20) % 3, i % 5);
                let a = if slope_shape.len() == 3 && slope_shape[2] == 5 {
                    slope[c * 5 + w]
                } else {
                    slope[c]
                };
                let want = if x > 0.0 { x } else { x * a };
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "element {i} of {slope_shape:?}"
                );
            }
        }
    }

    #[test]
    fn negative_side_scaled_per_channel() {
        // Two images of two channels of three values.
        let x = [
            1.0, -2.0, 0.0, -1.0, 3.0, -0.0, -4.0, 5.0, 6.0, 7.0, -8.0, -0.5,
        ];
        let mut y = [f32::NAN; 12];
        prelu(&x, &[0.5, -2.0], 3, &mut y);
        let want = [
            1.0, -1.0, 0.0, 2.0, 3.0, 0.0, -2.0, 5.0, 6.0, 7.0, 16.0, 1.0,
        ];
        assert_eq!(y, want);
        // A zero is multiplied too, as in ONNX Runtime's kernel: -0 * -2 = +0.
        assert!(y[5].is_sign_positive());
    }
}

/// The edited models against the files as fetched, on the same inputs, in ONNX Runtime with the
/// sessions' settings: every output equal to the bit. Needs vendor/mtcnn (`scripts/setup.sh`).
#[cfg(test)]
mod same_outputs {
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
            assert!(
                child.status.success(),
                "{}",
                String::from_utf8_lossy(&child.stdout)
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
}
