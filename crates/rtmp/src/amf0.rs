//! AMF0 (Action Message Format 0): the encoding of RTMP command and data messages.
//!
//! Decoding is bounded: nesting depth and the total number of values per decode are capped
//! ([`Amf0Limits`]), container sizes are never preallocated from the wire, and strings are
//! decoded lossily (invalid UTF-8 becomes U+FFFD) so odd encoder metadata does not drop a
//! connection. The AVM+ switch to AMF3 is rejected with [`AmfError::Amf3NotSupported`].

use bytes::{BufMut, BytesMut};

use crate::AmfError;

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const RECORDSET: u8 = 0x0E;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS: u8 = 0x11;
}

/// Properties of an AMF0 object or ECMA array, in wire order.
pub type Amf0Object = Vec<(String, Amf0Value)>;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// IEEE 754 double.
    Number(f64),
    /// Boolean.
    Boolean(bool),
    /// String (encoded as a long string when over 65535 bytes).
    String(String),
    /// Anonymous object.
    Object(Amf0Object),
    /// null.
    Null,
    /// undefined.
    Undefined,
    /// Reference to an earlier complex value (index), kept as-is.
    Reference(u16),
    /// Associative array (its count hint is ignored on decode).
    EcmaArray(Amf0Object),
    /// Dense array.
    StrictArray(Vec<Amf0Value>),
    /// Date: milliseconds since the epoch, and a time zone (should be 0).
    Date {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        millis: f64,
        /// Time zone offset (reserved, 0).
        time_zone: i16,
    },
    /// The "unsupported" marker.
    Unsupported,
    /// XML document (long string).
    XmlDocument(String),
    /// Object with a class name.
    TypedObject {
        /// Class name.
        class: String,
        /// Properties.
        properties: Amf0Object,
    },
}

impl Amf0Value {
    /// Builds an object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        Amf0Value::String(s.into())
    }

    /// The string, for `String`, `XmlDocument`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::XmlDocument(s) => Some(s),
            _ => None,
        }
    }

    /// The number, for `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, for `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties, for `Object`, `EcmaArray` and `TypedObject`.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p)
            | Amf0Value::EcmaArray(p)
            | Amf0Value::TypedObject { properties: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The first property named `key`, for object-like values.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Appends this value's encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), AmfError> {
        encode_value(self, out, 0)
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amf0Limits {
    /// Deepest nesting of objects/arrays (the top level is depth 1).
    pub max_depth: usize,
    /// Most values (including nested ones and object properties) in one decode.
    pub max_values: usize,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits {
            max_depth: 32,
            max_values: 65_536,
        }
    }
}

/// A cursor decoding AMF0 values one after another from a byte slice.
#[derive(Debug)]
pub struct Amf0Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    limits: Amf0Limits,
    values: usize,
}

impl<'a> Amf0Decoder<'a> {
    /// A decoder with default limits.
    pub fn new(data: &'a [u8]) -> Self {
        Self::with_limits(data, Amf0Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(data: &'a [u8], limits: Amf0Limits) -> Self {
        Amf0Decoder {
            data,
            pos: 0,
            limits,
            values: 0,
        }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Decodes the next value; `Ok(None)` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Amf0Value>, AmfError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.value(1).map(Some)
    }

    /// Decodes all remaining values.
    pub fn decode_all(mut self) -> Result<Vec<Amf0Value>, AmfError> {
        let mut out = Vec::new();
        while let Some(v) = self.next_value()? {
            out.push(v);
        }
        Ok(out)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        let end = self.pos.checked_add(n).ok_or(AmfError::Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(AmfError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AmfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, AmfError> {
        let b = self.take(len)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn short_string(&mut self) -> Result<String, AmfError> {
        let len = usize::from(self.u16()?);
        self.utf8(len)
    }

    fn long_string(&mut self) -> Result<String, AmfError> {
        let len = self.u32()? as usize;
        self.utf8(len)
    }

    fn count_value(&mut self) -> Result<(), AmfError> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(AmfError::TooManyValues(self.limits.max_values));
        }
        Ok(())
    }

    /// Object properties until the `00 00 09` end marker.
    fn properties(&mut self, depth: usize) -> Result<Amf0Object, AmfError> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.data.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, AmfError> {
        if depth > self.limits.max_depth {
            return Err(AmfError::TooDeep(self.limits.max_depth));
        }
        self.count_value()?;
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64()?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            marker::STRING => Amf0Value::String(self.short_string()?),
            marker::OBJECT => Amf0Value::Object(self.properties(depth)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::REFERENCE => Amf0Value::Reference(self.u16()?),
            marker::ECMA_ARRAY => {
                let _count_hint = self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Each element takes at least one byte: a count beyond the input is a lie.
                if count > self.data.len() - self.pos {
                    return Err(AmfError::Truncated);
                }
                let mut items = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let time_zone = self.u16()? as i16;
                Amf0Value::Date { millis, time_zone }
            }
            marker::LONG_STRING => Amf0Value::String(self.long_string()?),
            marker::UNSUPPORTED => Amf0Value::Unsupported,
            marker::XML_DOCUMENT => Amf0Value::XmlDocument(self.long_string()?),
            marker::TYPED_OBJECT => {
                let class = self.short_string()?;
                Amf0Value::TypedObject {
                    class,
                    properties: self.properties(depth)?,
                }
            }
            marker::AVMPLUS => return Err(AmfError::Amf3NotSupported),
            marker::MOVIECLIP | marker::RECORDSET | marker::OBJECT_END => {
                return Err(AmfError::UnknownMarker(m))
            }
            other => return Err(AmfError::UnknownMarker(other)),
        })
    }
}

/// Decodes every value in `data` with default limits.
pub fn decode_all(data: &[u8]) -> Result<Vec<Amf0Value>, AmfError> {
    Amf0Decoder::new(data).decode_all()
}

/// Encodes `values` one after another.
pub fn encode_all(values: &[Amf0Value]) -> Result<BytesMut, AmfError> {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out)?;
    }
    Ok(out)
}

const MAX_ENCODE_DEPTH: usize = 64;

fn put_short_string(out: &mut BytesMut, s: &str) -> Result<(), AmfError> {
    let len = u16::try_from(s.len()).map_err(|_| AmfError::StringTooLong(s.len()))?;
    out.put_u16(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_long_string(out: &mut BytesMut, s: &str) -> Result<(), AmfError> {
    let len = u32::try_from(s.len()).map_err(|_| AmfError::StringTooLong(s.len()))?;
    out.put_u32(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_properties(out: &mut BytesMut, props: &Amf0Object, depth: usize) -> Result<(), AmfError> {
    for (k, v) in props {
        put_short_string(out, k)?;
        encode_value(v, out, depth + 1)?;
    }
    out.put_slice(&[0, 0, marker::OBJECT_END]);
    Ok(())
}

fn encode_value(v: &Amf0Value, out: &mut BytesMut, depth: usize) -> Result<(), AmfError> {
    if depth > MAX_ENCODE_DEPTH {
        return Err(AmfError::TooDeep(MAX_ENCODE_DEPTH));
    }
    match v {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) => {
            if s.len() <= usize::from(u16::MAX) {
                out.put_u8(marker::STRING);
                put_short_string(out, s)?;
            } else {
                out.put_u8(marker::LONG_STRING);
                put_long_string(out, s)?;
            }
        }
        Amf0Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            put_properties(out, props, depth)?;
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::Reference(r) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*r);
        }
        Amf0Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
            put_properties(out, props, depth)?;
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            let n = u32::try_from(items.len()).map_err(|_| AmfError::StringTooLong(items.len()))?;
            out.put_u32(n);
            for item in items {
                encode_value(item, out, depth + 1)?;
            }
        }
        Amf0Value::Date { millis, time_zone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
        Amf0Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_string(out, s)?;
        }
        Amf0Value::TypedObject { class, properties } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_short_string(out, class)?;
            put_properties(out, properties, depth)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Amf0Value) -> Amf0Value {
        let mut out = BytesMut::new();
        v.encode(&mut out).unwrap();
        let mut d = Amf0Decoder::new(&out);
        let back = d.next_value().unwrap().unwrap();
        assert!(d.is_empty());
        back
    }

    #[test]
    fn scalars_round_trip() {
        for v in [
            Amf0Value::Number(0.0),
            Amf0Value::Number(-1.5e300),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(false),
            Amf0Value::string(""),
            Amf0Value::string("héllo"),
            Amf0Value::Null,
            Amf0Value::Undefined,
            Amf0Value::Reference(7),
            Amf0Value::Date {
                millis: 1.7e12,
                time_zone: -60,
            },
            Amf0Value::Unsupported,
            Amf0Value::XmlDocument("<a/>".into()),
        ] {
            assert_eq!(round_trip(&v), v);
        }
    }

    #[test]
    fn containers_round_trip() {
        let v = Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("flashVer", Amf0Value::string("FMLE/3.0")),
            ("fpad", Amf0Value::Boolean(false)),
            ("audioCodecs", Amf0Value::Number(3575.0)),
            (
                "nested",
                Amf0Value::EcmaArray(vec![
                    ("width".into(), Amf0Value::Number(1280.0)),
                    (
                        "list".into(),
                        Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Number(1.0)]),
                    ),
                ]),
            ),
            (
                "typed",
                Amf0Value::TypedObject {
                    class: "Foo".into(),
                    properties: vec![("x".into(), Amf0Value::Boolean(true))],
                },
            ),
        ]);
        let back = round_trip(&v);
        assert_eq!(back, v);
        assert_eq!(back.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(
            back.get("audioCodecs").and_then(Amf0Value::as_f64),
            Some(3575.0)
        );
        assert!(back.get("missing").is_none());
    }

    #[test]
    fn known_bytes() {
        // "connect", 1.0, {app: "live"}
        let bytes: &[u8] = b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\
\x03\x00\x03app\x02\x00\x04live\x00\x00\x09";
        let vals = decode_all(bytes).unwrap();
        assert_eq!(
            vals,
            vec![
                Amf0Value::string("connect"),
                Amf0Value::Number(1.0),
                Amf0Value::object([("app", Amf0Value::string("live"))]),
            ]
        );
        assert_eq!(&encode_all(&vals).unwrap()[..], bytes);
    }

    #[test]
    fn long_string_chosen_automatically() {
        let s = "x".repeat(70_000);
        let mut out = BytesMut::new();
        Amf0Value::string(s.clone()).encode(&mut out).unwrap();
        assert_eq!(out[0], marker::LONG_STRING);
        assert_eq!(
            round_trip(&Amf0Value::String(s.clone())),
            Amf0Value::String(s)
        );
        // An object key cannot be long.
        let bad = Amf0Value::object([("k".repeat(70_000), Amf0Value::Null)]);
        assert!(matches!(
            bad.encode(&mut BytesMut::new()),
            Err(AmfError::StringTooLong(_))
        ));
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        // Count says 5, one property present.
        let bytes = b"\x08\x00\x00\x00\x05\x00\x01a\x05\x00\x00\x09";
        assert_eq!(
            decode_all(bytes).unwrap(),
            vec![Amf0Value::EcmaArray(vec![("a".into(), Amf0Value::Null)])]
        );
    }

    #[test]
    fn truncation_everywhere_is_an_error() {
        let v = Amf0Value::object([
            ("a", Amf0Value::Number(1.0)),
            ("b", Amf0Value::StrictArray(vec![Amf0Value::string("xyz")])),
            (
                "c",
                Amf0Value::Date {
                    millis: 0.0,
                    time_zone: 0,
                },
            ),
        ]);
        let mut out = BytesMut::new();
        v.encode(&mut out).unwrap();
        for n in 1..out.len() {
            assert_eq!(
                Amf0Decoder::new(&out[..n]).next_value(),
                Err(AmfError::Truncated),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        // 1000 nested strict arrays of one element.
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend_from_slice(&[marker::STRICT_ARRAY, 0, 0, 0, 1]);
        }
        bytes.push(marker::NULL);
        assert_eq!(decode_all(&bytes), Err(AmfError::TooDeep(32)));
        // 1000 nested objects.
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend_from_slice(&[marker::OBJECT, 0, 1, b'k']);
        }
        assert_eq!(decode_all(&bytes), Err(AmfError::TooDeep(32)));
        // Exactly at the limit is fine.
        let mut bytes = Vec::new();
        for _ in 0..31 {
            bytes.extend_from_slice(&[marker::STRICT_ARRAY, 0, 0, 0, 1]);
        }
        bytes.push(marker::NULL);
        assert!(decode_all(&bytes).is_ok());
    }

    #[test]
    fn too_many_values_and_lying_counts() {
        // A strict array claiming 4 billion elements in 10 bytes: no allocation, an error.
        let bytes = [marker::STRICT_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF, 5, 5, 5, 5, 5];
        assert_eq!(decode_all(&bytes), Err(AmfError::Truncated));
        let limits = Amf0Limits {
            max_depth: 32,
            max_values: 10,
        };
        let mut bytes = vec![marker::STRICT_ARRAY, 0, 0, 0, 20];
        bytes.extend_from_slice(&[marker::NULL; 20]);
        assert_eq!(
            Amf0Decoder::with_limits(&bytes, limits).decode_all(),
            Err(AmfError::TooManyValues(10))
        );
    }

    #[test]
    fn amf3_and_unknown_markers() {
        assert_eq!(
            decode_all(&[marker::AVMPLUS, 1]),
            Err(AmfError::Amf3NotSupported)
        );
        assert_eq!(decode_all(&[0x42]), Err(AmfError::UnknownMarker(0x42)));
        assert_eq!(
            decode_all(&[marker::OBJECT_END]),
            Err(AmfError::UnknownMarker(marker::OBJECT_END))
        );
    }

    #[test]
    fn invalid_utf8_is_lossy_not_fatal() {
        let bytes = [marker::STRING, 0, 2, 0xFF, b'a'];
        assert_eq!(
            decode_all(&bytes).unwrap(),
            vec![Amf0Value::string("\u{FFFD}a")]
        );
    }
}
