//! Protocol-buffer wire encoding, the little of it ONNX's messages need: varints, 32-bit floats and
//! length-delimited fields (strings, bytes, nested messages), written and read back. Field numbers
//! are those of `onnx/onnx.proto`; the callers in `super` name each one.

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
const WIRE_FIXED64: u64 = 1;
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

/// One field's value as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    /// Strings, bytes, nested messages and packed repeated scalars.
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> WireValue<'a> {
    /// The value of a length-delimited field.
    pub fn bytes(self) -> Option<&'a [u8]> {
        match self {
            WireValue::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value of a varint field (`int64`, `int32`, enums).
    pub fn varint(self) -> Option<i64> {
        match self {
            WireValue::Varint(v) => Some(v as i64),
            _ => None,
        }
    }

    /// The value of a `string` field.
    pub fn string(self) -> Option<&'a str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// Why bytes could not be read as a protobuf message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed protobuf at byte {offset}: {what}")]
pub struct WireError {
    pub offset: usize,
    pub what: &'static str,
}

/// The fields of one encoded message, in order: `(field number, value)`.
pub struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

/// Reads the fields of `message` (nested messages stay encoded: read them with `fields` again).
pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields {
        buf: message,
        at: 0,
    }
}

impl<'a> Fields<'a> {
    fn error(&mut self, what: &'static str) -> WireError {
        let offset = self.at;
        self.at = self.buf.len(); // stop after an error
        WireError { offset, what }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.at) else {
                return Err(self.error("truncated varint"));
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than ten bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        match self.at.checked_add(n).filter(|end| *end <= self.buf.len()) {
            Some(end) => {
                let bytes = &self.buf[self.at..end];
                self.at = end;
                Ok(bytes)
            }
            None => Err(self.error("field runs past the end of the message")),
        }
    }

    fn next_field(&mut self) -> Result<(u32, WireValue<'a>), WireError> {
        let tag = self.varint()?;
        let field = u32::try_from(tag >> 3).map_err(|_| self.error("field number too large"))?;
        let value = match tag & 7 {
            WIRE_VARINT => WireValue::Varint(self.varint()?),
            WIRE_FIXED64 => {
                let b = self.take(8)?;
                WireValue::Fixed64(u64::from_le_bytes(b.try_into().unwrap_or_default()))
            }
            WIRE_LEN => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| self.error("length too large"))?;
                WireValue::Bytes(self.take(len)?)
            }
            WIRE_FIXED32 => {
                let b = self.take(4)?;
                WireValue::Fixed32(u32::from_le_bytes(b.try_into().unwrap_or_default()))
            }
            _ => return Err(self.error("unsupported wire type (groups)")),
        };
        Ok((field, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, WireValue<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.at < self.buf.len()).then(|| self.next_field())
    }
}

impl ProtoWriter {
    /// Re-appends a field read by [`fields`], unchanged.
    pub fn field(&mut self, field: u32, value: WireValue<'_>) {
        match value {
            WireValue::Varint(v) => {
                self.tag(field, WIRE_VARINT);
                self.varint(v);
            }
            WireValue::Fixed64(v) => {
                self.tag(field, WIRE_FIXED64);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            WireValue::Bytes(b) => self.bytes(field, b),
            WireValue::Fixed32(v) => {
                self.tag(field, WIRE_FIXED32);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_field_by_field() {
        let mut w = ProtoWriter::default();
        w.int64(1, 150);
        w.int64(2, -1);
        w.string(3, "testing");
        w.float(4, 1.5);
        let bytes = w.into_bytes();
        let read: Vec<(u32, WireValue)> = fields(&bytes).collect::<Result<_, _>>().expect("reads");
        assert_eq!(read[0], (1, WireValue::Varint(150)));
        assert_eq!(read[1].1.varint(), Some(-1));
        assert_eq!(read[2].1.string(), Some("testing"));
        assert_eq!(read[3], (4, WireValue::Fixed32(1.5f32.to_bits())));
        let mut again = ProtoWriter::default();
        for (field, value) in read {
            again.field(field, value);
        }
        assert_eq!(again.into_bytes(), bytes);
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let mut w = ProtoWriter::default();
        w.string(3, "testing");
        let bytes = w.into_bytes();
        for end in 1..bytes.len() {
            let read: Result<Vec<_>, _> = fields(&bytes[..end]).collect();
            assert!(read.is_err(), "{end} bytes of {}", bytes.len());
        }
        assert!(
            fields(&[0x0b]).next().is_some_and(|r| r.is_err()),
            "group wire type"
        );
    }

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
