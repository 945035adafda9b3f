//! MTCNN's `PRelu` as a custom ONNX Runtime kernel: the same arithmetic in a plain loop.
//!
//! ONNX Runtime runs the three networks' convolutions in fast blocked kernels, but its `PRelu` is a
//! generic broadcasting element-wise loop. Profiled on P-Net over a 640x360 frame's pyramid (ONNX
//! Runtime 1.32's own profiler, one thread), its three `PRelu` nodes took 7.4 of 13.2 ms: more than
//! all convolutions together. This kernel computes what ONNX Runtime's does, `x > 0 ? x : x *
//! slope` with the slope broadcast to `x`, element by element in f32, so every output of the three
//! networks is the same to the bit (`same_outputs.rs` runs both on the same inputs) and so are the
//! detections. A whole 640x360 clip's preprocessing took 0.350-0.363 s instead of 0.422 s.
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

mod kernel;
#[cfg(test)]
mod same_outputs;

use kernel::{prelu, prelu_general, Layout};

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
