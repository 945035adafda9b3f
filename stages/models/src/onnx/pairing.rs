//! A scoring-time rewrite of an exported detector: its first convolution block runs on two crops
//! at once.
//!
//! Why: ONNX Runtime's CPU convolutions (the NCHWc kernels of MLAS) compute output channels in
//! blocks, 16 wide on AVX-512 machines and 8 wide on AVX2. A first convolution with fewer outputs
//! than a block, such as MesoNet-4's 8, pays for a whole block anyway: on AVX-512 half of the work
//! is padding. Stacking two crops along the channel axis (`[N, C, H, W]` as `[N/2, 2C, H, W]`, a
//! reshape that moves no data) and giving the convolution the block-diagonal weight
//! `[[W, 0], [0, W]]` computes both crops' channels in one block. The ReLU, pooling, BatchNorm or
//! per-channel shift that follow act channel by channel, so they run on the pairs as they are,
//! with their per-channel constants repeated. A second reshape splits the pairs again before the
//! next convolution. Each output is the same sum as before plus exact zeros, so the scores do not
//! change. MesoNet-4 on 2 AVX-512 cores: 965 -> 1,098 crops/s at batch 8
//! (`cargo bench -p dfd-stages --bench score`, ONNX Runtime 1.31). Pairing its second convolution
//! (8 -> 8 channels) as well gained nothing (measured with ONNX Runtime 1.32's Python binding), so
//! only the first block is paired.
//!
//! This is a rewrite of the ONNX bytes at load time, not a different export, because it only pays
//! where a block holds at least twice the convolution's output channels. With 8-wide blocks the
//! paired 8-channel convolution does twice the plain one's work, so the model a user ships stays the plain one, and the scorer
//! decides per machine. The rewritten graph needs an even batch; the scorer pads an odd batch
//! with a blank crop.
//!
//! Only graphs written by [`super::OnnxGraph`] are rewritten: weights as `raw_data`, no subgraphs.
//! Anything else leaves the model as it is (`Ok(None)`).

use std::collections::{HashMap, HashSet};

use super::proto::{self, fields, ProtoWriter, WireError, WireValue};
use super::{float_tensor_proto, int64_tensor_proto};

/// `ModelProto.graph`.
const MODEL_GRAPH: u32 = 7;
/// `GraphProto` fields.
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_OUTPUT: u32 = 12;
/// `NodeProto` fields.
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const NODE_ATTRIBUTE: u32 = 5;
/// `ValueInfoProto.name`.
const VALUE_INFO_NAME: u32 = 1;
/// `TensorProto` fields.
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
/// `AttributeProto` fields.
const ATTRIBUTE_NAME: u32 = 1;
const ATTRIBUTE_INT: u32 = 3;
/// What the renamed values, nodes and weights of the paired block end with.
const SUFFIX: &str = "_pairs";

/// The model of `model` (ONNX bytes) with its first convolution block applied to pairs of crops,
/// when the graph input `input` feeds a convolution with at most `block / 2` output channels;
/// `block` is the width ONNX Runtime computes output channels in (16 on AVX-512). `Ok(None)`
/// when the graph does not have that shape; `Err` when the bytes are not a readable protobuf.
pub fn pair_first_conv(
    model: &[u8],
    input: &str,
    block: usize,
) -> Result<Option<Vec<u8>>, WireError> {
    let model_fields: Vec<(u32, WireValue)> = fields(model).collect::<Result<_, _>>()?;
    let graphs: Vec<&[u8]> = model_fields
        .iter()
        .filter(|(f, _)| *f == MODEL_GRAPH)
        .filter_map(|(_, v)| v.bytes())
        .collect();
    let [graph] = graphs[..] else {
        return Ok(None);
    };
    let graph = Graph::read(graph)?;
    let Some(chain) = graph.first_block(input, block) else {
        return Ok(None);
    };
    let Some(paired_graph) = graph.with_paired(&chain, input) else {
        return Ok(None);
    };
    let mut out = ProtoWriter::default();
    for (field, value) in model_fields {
        match field {
            MODEL_GRAPH => out.message(MODEL_GRAPH, &paired_graph),
            _ => out.field(field, value),
        }
    }
    Ok(Some(out.into_bytes()))
}

/// A node, read as far as the rewrite needs.
struct Node<'a> {
    fields: Vec<(u32, WireValue<'a>)>,
    op_type: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
}

impl<'a> Node<'a> {
    fn read(bytes: &'a [u8]) -> Result<Node<'a>, WireError> {
        let fields: Vec<(u32, WireValue)> = proto::fields(bytes).collect::<Result<_, _>>()?;
        let strings = |wanted: u32| -> Vec<&'a str> {
            fields
                .iter()
                .filter(|(f, _)| *f == wanted)
                .filter_map(|(_, v)| v.string())
                .collect()
        };
        let op_type = strings(NODE_OP_TYPE).first().copied().unwrap_or_default();
        Ok(Node {
            inputs: strings(NODE_INPUT),
            outputs: strings(NODE_OUTPUT),
            op_type,
            fields,
        })
    }

    /// The integer attribute `name`, if the node has it.
    fn int_attribute(&self, name: &str) -> Result<Option<i64>, WireError> {
        for attribute in self.fields.iter().filter(|(f, _)| *f == NODE_ATTRIBUTE) {
            let attribute: Vec<(u32, WireValue)> =
                proto::fields(attribute.1.bytes().unwrap_or_default()).collect::<Result<_, _>>()?;
            let named = attribute
                .iter()
                .any(|(f, v)| *f == ATTRIBUTE_NAME && v.string() == Some(name));
            if named {
                return Ok(attribute
                    .iter()
                    .find(|(f, _)| *f == ATTRIBUTE_INT)
                    .and_then(|(_, v)| v.varint()));
            }
        }
        Ok(None)
    }

    /// The node with its values renamed by `rename` (names it lacks stay) and its name suffixed.
    fn renamed(&self, rename: &HashMap<String, String>) -> Vec<u8> {
        let mut w = ProtoWriter::default();
        for (field, value) in &self.fields {
            let text = value.string();
            match (*field, text) {
                (NODE_INPUT | NODE_OUTPUT, Some(name)) => {
                    w.string(*field, rename.get(name).map_or(name, String::as_str))
                }
                (NODE_NAME, Some(name)) => w.string(*field, &format!("{name}{SUFFIX}")),
                _ => w.field(*field, *value),
            }
        }
        w.into_bytes()
    }
}

/// A float32 initializer as stored: its dims and little-endian bytes, decoded only once the
/// rewrite knows it needs them (a ViT's patch weight is not).
struct Weight<'a> {
    dims: Vec<usize>,
    raw: &'a [u8],
}

/// A weight of the paired block, decoded and laid out for pairs of crops.
struct PairedWeight {
    dims: Vec<usize>,
    values: Vec<f32>,
}

impl<'a> Weight<'a> {
    /// `None` unless the tensor is float32 stored as `raw_data`, as our writer stores it.
    fn read(tensor: &'a [u8]) -> Result<Option<Weight<'a>>, WireError> {
        let (mut dims, mut data_type, mut raw) = (Vec::new(), None, None);
        for field in fields(tensor) {
            match field? {
                (TENSOR_DIMS, WireValue::Varint(d)) => dims.push(d as usize),
                (TENSOR_DATA_TYPE, v) => data_type = v.varint(),
                (TENSOR_RAW_DATA, v) => raw = v.bytes(),
                _ => {}
            }
        }
        let (Some(proto::DATA_TYPE_FLOAT), Some(raw)) = (data_type, raw) else {
            return Ok(None);
        };
        if raw.len() != 4 * dims.iter().product::<usize>() {
            return Ok(None);
        }
        Ok(Some(Weight { dims, raw }))
    }

    fn values(&self) -> Vec<f32> {
        self.raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// `[[W, 0], [0, W]]` of a convolution weight `[O, I, kh, kw]`: `[2O, 2I, kh, kw]`.
    fn block_diagonal(&self) -> Option<PairedWeight> {
        let [outputs, inputs, kh, kw] = self.dims[..] else {
            return None;
        };
        let kernel = kh * kw;
        let plain = self.values();
        let mut values = vec![0.0; 4 * plain.len()];
        for copy in 0..2 {
            for o in 0..outputs {
                for i in 0..inputs {
                    let from = (o * inputs + i) * kernel;
                    let to = ((copy * outputs + o) * 2 * inputs + copy * inputs + i) * kernel;
                    values[to..to + kernel].copy_from_slice(&plain[from..from + kernel]);
                }
            }
        }
        Some(PairedWeight {
            dims: vec![2 * outputs, 2 * inputs, kh, kw],
            values,
        })
    }

    /// A scalar, which serves both crops of a pair as it is.
    fn unchanged(&self) -> PairedWeight {
        PairedWeight {
            dims: self.dims.clone(),
            values: self.values(),
        }
    }

    /// A per-channel constant (`[C]` or `[1, C, 1, 1]`) for both crops of a pair: `[2C]`, `[1, 2C,
    /// 1, 1]`.
    fn repeated(&self) -> PairedWeight {
        let dims = self
            .dims
            .iter()
            .map(|d| if *d == 1 { 1 } else { 2 * d })
            .collect();
        let values = self.values();
        PairedWeight {
            dims,
            values: [&values[..], &values[..]].concat(),
        }
    }
}

/// The nodes of the first block and how each weight of theirs changes.
struct Block {
    /// Indices of the block's nodes in graph order: the input's scalar scalings, then the
    /// convolution and what follows it channel by channel.
    nodes: Vec<usize>,
    /// `(name, paired weight)` for every weight the block's nodes read.
    weights: Vec<(String, PairedWeight)>,
    /// The convolution's input and output channels.
    channels: (usize, usize),
}

/// A graph, read as far as the rewrite needs.
struct Graph<'a> {
    fields: Vec<(u32, WireValue<'a>)>,
    nodes: Vec<Node<'a>>,
    /// Each initializer's encoded `TensorProto` by name, decoded only where the rewrite needs
    /// its values (a ViT's are hundreds of megabytes).
    initializers: HashMap<&'a str, &'a [u8]>,
    outputs: HashSet<&'a str>,
}

impl<'a> Graph<'a> {
    fn read(bytes: &'a [u8]) -> Result<Graph<'a>, WireError> {
        let fields: Vec<(u32, WireValue)> = proto::fields(bytes).collect::<Result<_, _>>()?;
        let mut nodes = Vec::new();
        let mut initializers = HashMap::new();
        let mut outputs = HashSet::new();
        for (field, value) in &fields {
            let Some(bytes) = value.bytes() else { continue };
            match *field {
                GRAPH_NODE => nodes.push(Node::read(bytes)?),
                GRAPH_INITIALIZER => {
                    initializers.extend(string_field(bytes, TENSOR_NAME).map(|name| (name, bytes)))
                }
                GRAPH_OUTPUT => outputs.extend(string_field(bytes, VALUE_INFO_NAME)),
                _ => {}
            }
        }
        Ok(Graph {
            fields,
            nodes,
            initializers,
            outputs,
        })
    }

    /// The one node reading `value`, if exactly one does and `value` is not a graph output.
    fn only_consumer(&self, value: &str) -> Option<usize> {
        if self.outputs.contains(value) {
            return None;
        }
        let mut readers = (0..self.nodes.len()).filter(|&i| self.nodes[i].inputs.contains(&value));
        let first = readers.next()?;
        readers.next().is_none().then_some(first)
    }

    /// The float32 initializer `name`, if there is one.
    fn weight(&self, name: &str) -> Option<Weight<'a>> {
        Weight::read(self.initializers.get(name)?).ok().flatten()
    }

    /// The float32 initializer `name` if its dims are `dims`.
    fn weight_of_dims(&self, name: &str, dims: &[usize]) -> Option<Weight<'a>> {
        self.weight(name).filter(|w| w.dims == dims)
    }

    /// The convolution reading `input` and the channel-wise nodes after it, if the convolution
    /// is narrow enough to pair (see the module documentation).
    fn first_block(&self, input: &str, block: usize) -> Option<Block> {
        // A model's scaling of its pixels (`crate::pixels`) comes first: a `Sub`, `Div`, `Mul`
        // or `Add` of a scalar acts on every element alike, so it runs on the stacked pairs as
        // it is.
        let (mut nodes, mut weights) = (Vec::new(), Vec::new());
        let mut value = input;
        loop {
            let next = self.only_consumer(value)?;
            let node = &self.nodes[next];
            let [first, constant] = node.inputs[..] else {
                break;
            };
            let scalar = matches!(node.op_type, "Sub" | "Div" | "Mul" | "Add")
                .then(|| self.weight_of_dims(constant, &[]))
                .flatten();
            let Some(scalar) = scalar.filter(|_| first == value && node.outputs.len() == 1) else {
                break;
            };
            weights.push((constant.to_string(), scalar.unchanged()));
            nodes.push(next);
            value = node.outputs[0];
        }
        let input = value;
        let conv = self.only_consumer(input)?;
        let node = &self.nodes[conv];
        if node.op_type != "Conv" || node.inputs.first() != Some(&input) {
            return None;
        }
        if node.int_attribute("group").ok()?.unwrap_or(1) != 1 {
            return None;
        }
        let weight = self.weight(node.inputs.get(1)?)?;
        let [outputs, inputs, _, _] = weight.dims[..] else {
            return None;
        };
        if 2 * outputs > block {
            return None;
        }
        weights.push((node.inputs[1].to_owned(), weight.block_diagonal()?));
        if let Some(bias) = node.inputs.get(2) {
            let bias_weight = self.weight_of_dims(bias, &[outputs])?;
            weights.push((bias.to_string(), bias_weight.repeated()));
        }
        nodes.push(conv);
        let mut last = *node.outputs.first()?;
        while let Some(next) = self.only_consumer(last) {
            let node = &self.nodes[next];
            let constants: Vec<Vec<usize>> = match node.op_type {
                "Relu" | "MaxPool" => vec![],
                "Add" => vec![vec![1, outputs, 1, 1]],
                "BatchNormalization" => vec![vec![outputs]; 4],
                _ => break,
            };
            // The block's value first, then its constants; one output (no pooling indices).
            if node.inputs.first() != Some(&last)
                || node.inputs.len() != 1 + constants.len()
                || node.outputs.len() != 1
            {
                break;
            }
            for (name, dims) in node.inputs[1..].iter().zip(constants) {
                let constant = self.weight_of_dims(name, &dims[..])?;
                weights.push((name.to_string(), constant.repeated()));
            }
            nodes.push(next);
            last = node.outputs[0];
        }
        Some(Block {
            nodes,
            weights,
            channels: (inputs, outputs),
        })
    }

    /// The graph's bytes with `block` run on pairs of crops; `None` if a name the rewrite
    /// would add is taken, or a weight of the block is also read outside it.
    fn with_paired(&self, block: &Block, input: &str) -> Option<Vec<u8>> {
        let in_block = |i: &usize| block.nodes.contains(i);
        let read_outside = |name: &str| {
            (0..self.nodes.len()).any(|i| !in_block(&i) && self.nodes[i].inputs.contains(&name))
        };
        if block.weights.iter().any(|(name, _)| read_outside(name)) {
            return None;
        }
        let mut taken: HashSet<&str> = self.initializers.keys().copied().collect();
        taken.extend(self.nodes.iter().flat_map(|n| n.outputs.iter().copied()));
        // Every value the block reads or writes, paired; its last output keeps its name and is
        // the output of the reshape that splits the pairs.
        let last = *self.nodes[*block.nodes.last()?].outputs.first()?;
        let mut rename: HashMap<String, String> = HashMap::new();
        let paired = |name: &str| format!("{name}{SUFFIX}");
        for i in &block.nodes {
            for name in self.nodes[*i].inputs.iter().chain(&self.nodes[*i].outputs) {
                rename.insert(name.to_string(), paired(name));
            }
        }
        let (stack_shape, split_shape) = (paired("stack_shape"), paired("split_shape"));
        let added: Vec<&String> = rename
            .values()
            .chain([&stack_shape, &split_shape])
            .collect();
        if added.iter().any(|name| taken.contains(name.as_str())) {
            return None;
        }
        let (c_in, c_out) = (block.channels.0 as i64, block.channels.1 as i64);
        let stack = reshape(input, &stack_shape, rename.get(input)?);
        let split = reshape(rename.get(last)?, &split_shape, last);

        let mut out = ProtoWriter::default();
        for (index, (field, value)) in self
            .fields
            .iter()
            .filter(|(f, _)| *f == GRAPH_NODE)
            .enumerate()
        {
            if index == block.nodes[0] {
                out.message(GRAPH_NODE, &stack);
                for i in &block.nodes {
                    out.message(GRAPH_NODE, &self.nodes[*i].renamed(&rename));
                }
                out.message(GRAPH_NODE, &split);
            } else if !in_block(&index) {
                out.field(*field, *value);
            }
        }
        let replaced: HashSet<&str> = block.weights.iter().map(|(n, _)| n.as_str()).collect();
        for (field, value) in self.fields.iter().filter(|(f, _)| *f != GRAPH_NODE) {
            let name = (*field == GRAPH_INITIALIZER)
                .then(|| value.bytes().and_then(|t| string_field(t, TENSOR_NAME)))
                .flatten();
            if !name.is_some_and(|n| replaced.contains(n)) {
                out.field(*field, *value);
            }
        }
        for (name, weight) in &block.weights {
            let tensor = float_tensor_proto(rename.get(name)?, &weight.dims, &weight.values);
            out.message(GRAPH_INITIALIZER, &tensor);
        }
        for (name, shape) in [
            (&stack_shape, [-1, 2 * c_in, 0, 0]),
            (&split_shape, [-1, c_out, 0, 0]),
        ] {
            out.message(GRAPH_INITIALIZER, &int64_tensor_proto(name, &shape));
        }
        Some(out.into_bytes())
    }
}

/// A `Reshape` node; a 0 in the shape keeps that dimension.
fn reshape(input: &str, shape: &str, output: &str) -> Vec<u8> {
    let mut w = ProtoWriter::default();
    w.string(NODE_INPUT, input);
    w.string(NODE_INPUT, shape);
    w.string(NODE_OUTPUT, output);
    w.string(NODE_NAME, &format!("reshape_{output}"));
    w.string(NODE_OP_TYPE, "Reshape");
    w.into_bytes()
}

/// The first string field `field` of an encoded message (a tensor's or a value's name).
fn string_field(message: &[u8], field: u32) -> Option<&str> {
    fields(message)
        .filter_map(Result::ok)
        .find(|(f, _)| *f == field)
        .and_then(|(_, v)| v.string())
}
