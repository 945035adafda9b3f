//! Protocol-buffer wire encoding, the little of it ONNX's messages need: varints, 32-bit floats and
//! length-delimited fields (strings, bytes, nested messages). Field numbers are those of
//! `onnx/onnx.proto`; the callers in `super` name each one.

/// `TensorProto.DataType.FLOAT`.
pub const DATA_TYPE_FLOAT: i64 = 1;
/// `TensorProto.DataType.INT64`.
pub const DATA_TYPE_INT64: i64 = 7;
/// `AttributeProto.AttributeType` values.
pub const ATTR_FLOAT: i64 = 1;
pub const ATTR_INT: i64 = 2;
pub const ATTR_STRING: i64 = 3;
pub const ATTR_FLOATS: i64 = 6;
pub const ATTR_INTS: i64 = 7;

const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// Appends fields to one message's bytes.
#[derive(Default)]
pub struct ProtoWriter {
    buf: Vec<u8>,
}

impl ProtoWriter {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u64) {
        self.varint(((field as u64) << 3) | wire);
    }

    /// An `int64`/`int32`/enum field. Negative values take ten bytes, as protobuf encodes them.
    pub fn int64(&mut self, field: u32, v: i64) {
        self.tag(field, WIRE_VARINT);
        self.varint(v as u64);
    }

    /// A `float` field.
    pub fn float(&mut self, field: u32, v: f32) {
        self.tag(field, WIRE_FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `bytes` field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, WIRE_LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// A `string` field.
    pub fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }

    /// An embedded message, already encoded.
    pub fn message(&mut self, field: u32, encoded: &[u8]) {
        self.bytes(field, encoded);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_examples() {
        // From the protobuf encoding guide: field 1 = 150 is 08 96 01.
        let mut w = ProtoWriter::default();
        w.int64(1, 150);
        assert_eq!(w.into_bytes(), vec![0x08, 0x96, 0x01]);
        // A negative int64 is ten bytes of two's complement.
        let mut w = ProtoWriter::default();
        w.int64(1, -1);
        assert_eq!(w.into_bytes().len(), 11);
        // field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        let mut w = ProtoWriter::default();
        w.string(2, "testing");
        assert_eq!(
            w.into_bytes(),
            vec![0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]
        );
    }
}
