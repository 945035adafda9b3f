//! Moves an ONNX model's nodes of one operator into another operator domain, on the model's bytes.
//!
//! This is the one edit [`super::prelu`] needs (its `PRelu` lives in a domain of its own, because
//! ONNX Runtime supports custom kernels only there), and the one thing this module can do: it walks
//! the protobuf wire format of `ModelProto` -> `GraphProto` -> `NodeProto` just deep enough to
//! rewrite a node's `domain`, copies every other byte as it is, and appends the domain's
//! `opset_import`. A general protobuf library and the ONNX schema would be a large dependency for
//! four field numbers; what it cannot parse it refuses rather than guesses.
//!
//! Field numbers (onnx.proto3, stable since IR version 1): `ModelProto.graph = 7`,
//! `ModelProto.opset_import = 8`, `GraphProto.node = 1`, `NodeProto.op_type = 4`,
//! `NodeProto.domain = 7`, `OperatorSetIdProto.domain = 1`, `OperatorSetIdProto.version = 2`.

const MODEL_GRAPH: u64 = 7;
const MODEL_OPSET_IMPORT: u64 = 8;
const GRAPH_NODE: u64 = 1;
const NODE_OP_TYPE: u64 = 4;
const NODE_DOMAIN: u64 = 7;
const OPSET_DOMAIN: u64 = 1;
const OPSET_VERSION: u64 = 2;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// The model `model` with every node of operator `op_type` (in any domain) moved to `domain`, and
/// `domain` at `version` added to its opset imports; with the number of nodes moved.
pub fn move_to_domain(
    model: &[u8],
    op_type: &str,
    domain: &str,
    version: u64,
) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::with_capacity(model.len() + 64);
    let mut moved = 0;
    let mut graphs = 0;
    for field in Fields::new(model) {
        let field = field.map_err(|e| format!("ModelProto: {e}"))?;
        if field.number == MODEL_GRAPH && field.wire == LENGTH_DELIMITED {
            let (graph, n) = move_in_graph(field.payload, op_type, domain)?;
            write_bytes_field(&mut out, MODEL_GRAPH, &graph);
            moved += n;
            graphs += 1;
        } else {
            out.extend_from_slice(field.raw);
        }
    }
    if graphs != 1 {
        return Err(format!("ModelProto has {graphs} graphs, expected 1"));
    }
    let mut opset = Vec::new();
    write_bytes_field(&mut opset, OPSET_DOMAIN, domain.as_bytes());
    write_varint_field(&mut opset, OPSET_VERSION, version);
    write_bytes_field(&mut out, MODEL_OPSET_IMPORT, &opset);
    Ok((out, moved))
}

/// The graph with the matching nodes' domains replaced; nested graphs (in attributes) untouched.
fn move_in_graph(graph: &[u8], op_type: &str, domain: &str) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::with_capacity(graph.len() + 64);
    let mut moved = 0;
    for field in Fields::new(graph) {
        let field = field.map_err(|e| format!("GraphProto: {e}"))?;
        if field.number == GRAPH_NODE && field.wire == LENGTH_DELIMITED {
            if let Some(node) = moved_node(field.payload, op_type, domain)? {
                write_bytes_field(&mut out, GRAPH_NODE, &node);
                moved += 1;
                continue;
            }
        }
        out.extend_from_slice(field.raw);
    }
    Ok((out, moved))
}

/// The node re-encoded with `domain` when its operator is `op_type`, else `None`.
fn moved_node(node: &[u8], op_type: &str, domain: &str) -> Result<Option<Vec<u8>>, String> {
    let mut is_match = false;
    let mut out = Vec::with_capacity(node.len() + domain.len() + 2);
    for field in Fields::new(node) {
        let field = field.map_err(|e| format!("NodeProto: {e}"))?;
        if field.number == NODE_OP_TYPE && field.wire == LENGTH_DELIMITED {
            is_match = field.payload == op_type.as_bytes();
        }
        if field.number != NODE_DOMAIN {
            out.extend_from_slice(field.raw);
        }
    }
    if !is_match {
        return Ok(None);
    }
    write_bytes_field(&mut out, NODE_DOMAIN, domain.as_bytes());
    Ok(Some(out))
}

/// One field of a message: its number, wire type, payload (for length-delimited fields, the bytes
/// inside the length) and all of its bytes, tag included.
struct Field<'a> {
    number: u64,
    wire: u8,
    payload: &'a [u8],
    raw: &'a [u8],
}

/// The fields of one message, in order; an error ends the iteration.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields {
            bytes,
            at: 0,
            failed: false,
        }
    }

    fn field(&mut self) -> Result<Field<'a>, String> {
        let start = self.at;
        let tag = self.varint()?;
        let wire = (tag & 7) as u8;
        let number = tag >> 3;
        let payload = match wire {
            VARINT => {
                self.varint()?;
                &self.bytes[self.at..self.at]
            }
            FIXED64 => self.take(8)?,
            FIXED32 => self.take(4)?,
            LENGTH_DELIMITED => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
                self.take(len)?
            }
            other => {
                return Err(format!(
                    "field {number} at byte {start} has wire type {other}, which ONNX does not use"
                ))
            }
        };
        Ok(Field {
            number,
            wire,
            payload,
            raw: &self.bytes[start..self.at],
        })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("a field at byte {} runs past the end", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(format!("a varint at byte {} runs past the end", self.at));
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("a varint ending at byte {} is too long", self.at))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        self.failed = field.is_err();
        Some(field)
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    write_varint(out, number << 3 | u64::from(LENGTH_DELIMITED));
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_varint_field(out: &mut Vec<u8>, number: u64, value: u64) {
    write_varint(out, number << 3 | u64::from(VARINT));
    write_varint(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_field(number: u64, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_bytes_field(&mut out, number, text.as_bytes());
        out
    }

    fn node(op_type: &str, domain: Option<&str>) -> Vec<u8> {
        let mut node = string_field(1, "x");
        node.extend(string_field(2, "y"));
        node.extend(string_field(NODE_OP_TYPE, op_type));
        if let Some(domain) = domain {
            node.extend(string_field(NODE_DOMAIN, domain));
        }
        node
    }

    fn model(nodes: &[Vec<u8>]) -> Vec<u8> {
        let mut graph = Vec::new();
        for n in nodes {
            write_bytes_field(&mut graph, GRAPH_NODE, n);
        }
        graph.extend(string_field(2, "g"));
        let mut model = Vec::new();
        write_varint_field(&mut model, 1, 7);
        write_bytes_field(&mut model, MODEL_GRAPH, &graph);
        model
    }

    /// The domain of each node, in order, read back with the same walker.
    fn domains(model: &[u8]) -> Vec<(String, String)> {
        let graph = Fields::new(model)
            .map(Result::unwrap)
            .find(|f| f.number == MODEL_GRAPH)
            .unwrap()
            .payload;
        Fields::new(graph)
            .map(Result::unwrap)
            .filter(|f| f.number == GRAPH_NODE)
            .map(|n| {
                let text = |number| {
                    Fields::new(n.payload)
                        .map(Result::unwrap)
                        .find(|f| f.number == number)
                        .map(|f| String::from_utf8(f.payload.to_vec()).unwrap())
                        .unwrap_or_default()
                };
                (text(NODE_OP_TYPE), text(NODE_DOMAIN))
            })
            .collect()
    }

    #[test]
    fn moves_only_the_named_operator_and_imports_the_domain() {
        let before = model(&[
            node("Conv", None),
            node("PRelu", None),
            node("PRelu", Some("")),
            node("PReluX", None),
        ]);
        let (after, moved) = move_to_domain(&before, "PRelu", "dfd", 1).unwrap();
        assert_eq!(moved, 2);
        assert_eq!(
            domains(&after),
            [
                ("Conv".into(), "".into()),
                ("PRelu".into(), "dfd".into()),
                ("PRelu".into(), "dfd".into()),
                ("PReluX".into(), "".into()),
            ]
        );
        let opset = Fields::new(&after)
            .map(Result::unwrap)
            .find(|f| f.number == MODEL_OPSET_IMPORT)
            .unwrap();
        let mut expected = string_field(OPSET_DOMAIN, "dfd");
        write_varint_field(&mut expected, OPSET_VERSION, 1);
        assert_eq!(opset.payload, expected);
        // Everything but the moved nodes is byte for byte the input.
        let (same, none) = move_to_domain(&before, "Gemm", "dfd", 1).unwrap();
        assert_eq!(none, 0);
        assert_eq!(&same[..before.len()], &before[..]);
    }

    #[test]
    fn refuses_what_it_cannot_parse() {
        let good = model(&[node("PRelu", None)]);
        let cut = &good[..good.len() - 3];
        assert!(move_to_domain(cut, "PRelu", "dfd", 1)
            .unwrap_err()
            .contains("runs past the end"));
        assert!(move_to_domain(&[0x0b], "PRelu", "dfd", 1)
            .unwrap_err()
            .contains("wire type 3"));
        assert!(move_to_domain(&[], "PRelu", "dfd", 1)
            .unwrap_err()
            .contains("0 graphs"));
    }
}
