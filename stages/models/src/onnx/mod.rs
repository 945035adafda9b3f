//! A small ONNX writer: enough of the format to express our own layer set, built node by node.
//!
//! Why our own and not `burn-onnx`'s exporter: that exporter is experimental and tied to a burn
//! pre-release (0.23.0-pre), and lacks operators our models use (LeakyReLU among them). Writing the
//! few protobuf messages ONNX needs is a few screens of code, and every model's export is checked
//! against its burn forward pass on ONNX Runtime (the parity tests), so the two cannot drift apart.
//!
//! The graph uses opset 17 of the default domain (LayerNormalization, HardSwish and the rest of
//! our layer set are there) and IR version 8, which every ONNX Runtime since 1.13 reads.

pub mod pairing;
mod proto;

use burn::tensor::Tensor;

pub use pairing::pair_first_conv;
use proto::ProtoWriter;
pub use proto::WireError;

/// The opset of the default ONNX domain that exported graphs declare.
pub const OPSET: i64 = 17;
/// ONNX IR version that goes with [`OPSET`].
const IR_VERSION: i64 = 8;

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A weight could not be read back from the backend as f32.
    #[error("reading weight {name} from the backend: {message}")]
    ReadWeight { name: String, message: String },
    /// The module holds something the exporter has no ONNX form for.
    #[error("cannot export {what}: {why}")]
    Unsupported { what: String, why: String },
}

/// One dimension of a graph input or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch dimension, left symbolic (`N`) so one model serves any batch size.
    Batch,
    /// A fixed size.
    Fixed(usize),
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    Floats(&'static str, Vec<f32>),
    Str(&'static str, String),
}

/// An ONNX graph under construction. Value names are generated (`<hint>_<n>`), so helpers can
/// append layers without coordinating names; only graph inputs and outputs are named by the caller.
#[derive(Debug)]
pub struct OnnxGraph {
    name: String,
    nodes: Vec<Vec<u8>>,
    initializers: Vec<Vec<u8>>,
    inputs: Vec<Vec<u8>>,
    outputs: Vec<Vec<u8>>,
    next_id: usize,
}

impl OnnxGraph {
    /// An empty graph; `name` ends up as the graph's name in the file.
    pub fn new(name: &str) -> Self {
        OnnxGraph {
            name: name.to_owned(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            next_id: 0,
        }
    }

    /// Declares a float32 graph input.
    pub fn add_input(&mut self, name: &str, dims: &[Dim]) {
        self.inputs.push(value_info(name, dims));
    }

    /// Declares a float32 graph output. `name` must be the output of some node (see
    /// [`OnnxGraph::op_into`]).
    pub fn add_output(&mut self, name: &str, dims: &[Dim]) {
        self.outputs.push(value_info(name, dims));
    }

    /// A fresh value name.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next_id += 1;
        format!("{hint}_{}", self.next_id)
    }

    /// Embeds a burn tensor as a float32 initializer and returns its name.
    pub fn weight<const D: usize>(
        &mut self,
        hint: &str,
        tensor: &Tensor<D>,
    ) -> Result<String, ExportError> {
        let values = tensor_values(hint, tensor)?;
        Ok(self.weight_f32(hint, &tensor.dims(), &values))
    }

    /// Embeds float32 values of shape `dims` (row-major) as an initializer.
    pub fn weight_f32(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let name = self.fresh(hint);
        self.initializers
            .push(float_tensor_proto(&name, dims, values));
        name
    }

    /// Embeds a 1-D int64 initializer (shapes for Reshape, axes, and the like).
    pub fn const_i64(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(int64_tensor_proto(&name, values));
        name
    }

    /// Appends a node with one output and returns the output's (fresh) name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        let output = self.fresh(&op_type.to_ascii_lowercase());
        self.op_into(op_type, inputs, attrs, &output);
        output
    }

    /// Appends a node with one output of a given name (for graph outputs).
    pub fn op_into(&mut self, op_type: &str, inputs: &[&str], attrs: &[Attr], output: &str) {
        let node_name = self.fresh(&format!("node_{op_type}"));
        let mut w = ProtoWriter::default();
        for input in inputs {
            w.string(1, input);
        }
        w.string(2, output);
        w.string(3, &node_name);
        w.string(4, op_type);
        for attr in attrs {
            w.message(5, &attribute(attr));
        }
        self.nodes.push(w.into_bytes());
    }

    /// The serialised `ModelProto`, ready for ONNX Runtime.
    pub fn to_model_bytes(&self) -> Vec<u8> {
        let mut graph = ProtoWriter::default();
        for node in &self.nodes {
            graph.message(1, node);
        }
        graph.string(2, &self.name);
        for init in &self.initializers {
            graph.message(5, init);
        }
        for input in &self.inputs {
            graph.message(11, input);
        }
        for output in &self.outputs {
            graph.message(12, output);
        }
        let mut opset = ProtoWriter::default();
        opset.string(1, "");
        opset.int64(2, OPSET);

        let mut model = ProtoWriter::default();
        model.int64(1, IR_VERSION);
        model.string(2, "dfd");
        model.string(3, env!("CARGO_PKG_VERSION"));
        model.message(7, &graph.into_bytes());
        model.message(8, &opset.into_bytes());
        model.into_bytes()
    }
}

/// The values of a burn tensor as float32, row-major; `what` names it in the error.
pub fn tensor_values<const D: usize>(
    what: &str,
    tensor: &Tensor<D>,
) -> Result<Vec<f32>, ExportError> {
    tensor
        .to_data_as::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ExportError::ReadWeight {
            name: what.to_owned(),
            message: format!("{e:?}"),
        })
}

fn value_info(name: &str, dims: &[Dim]) -> Vec<u8> {
    let mut shape = ProtoWriter::default();
    for dim in dims {
        let mut d = ProtoWriter::default();
        match dim {
            Dim::Batch => d.string(2, "N"),
            Dim::Fixed(n) => d.int64(1, *n as i64),
        }
        shape.message(1, &d.into_bytes());
    }
    let mut tensor_type = ProtoWriter::default();
    tensor_type.int64(1, proto::DATA_TYPE_FLOAT);
    tensor_type.message(2, &shape.into_bytes());
    let mut type_proto = ProtoWriter::default();
    type_proto.message(1, &tensor_type.into_bytes());
    let mut info = ProtoWriter::default();
    info.string(1, name);
    info.message(2, &type_proto.into_bytes());
    info.into_bytes()
}

/// A float32 `TensorProto` of shape `dims` (row-major values) named `name`.
fn float_tensor_proto(name: &str, dims: &[usize], values: &[f32]) -> Vec<u8> {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_proto(name, dims, proto::DATA_TYPE_FLOAT, &raw)
}

/// A 1-D int64 `TensorProto` named `name`.
fn int64_tensor_proto(name: &str, values: &[i64]) -> Vec<u8> {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_proto(name, &[values.len()], proto::DATA_TYPE_INT64, &raw)
}

fn tensor_proto(name: &str, dims: &[usize], data_type: i64, raw: &[u8]) -> Vec<u8> {
    let mut w = ProtoWriter::default();
    for d in dims {
        w.int64(1, *d as i64);
    }
    w.int64(2, data_type);
    w.string(8, name);
    w.bytes(9, raw);
    w.into_bytes()
}

fn attribute(attr: &Attr) -> Vec<u8> {
    let mut w = ProtoWriter::default();
    match attr {
        Attr::Int(name, v) => {
            w.string(1, name);
            w.int64(3, *v);
            w.int64(20, proto::ATTR_INT);
        }
        Attr::Ints(name, vs) => {
            w.string(1, name);
            for v in vs {
                w.int64(8, *v);
            }
            w.int64(20, proto::ATTR_INTS);
        }
        Attr::Float(name, v) => {
            w.string(1, name);
            w.float(2, *v);
            w.int64(20, proto::ATTR_FLOAT);
        }
        Attr::Floats(name, vs) => {
            w.string(1, name);
            for v in vs {
                w.float(7, *v);
            }
            w.int64(20, proto::ATTR_FLOATS);
        }
        Attr::Str(name, s) => {
            w.string(1, name);
            w.bytes(4, s.as_bytes());
            w.int64(20, proto::ATTR_STRING);
        }
    }
    w.into_bytes()
}
