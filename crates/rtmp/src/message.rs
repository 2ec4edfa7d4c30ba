//! RTMP messages: the unit the chunk layer carries, protocol control and user control
//! messages, command messages, and aggregate messages.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::amf0::{Amf0Decoder, Amf0Value};
use crate::{AmfError, RtmpError};

/// Message type ids.
pub mod msg_type {
    /// Set Chunk Size (protocol control).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (protocol control).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (protocol control).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (protocol control).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (protocol control).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (an FLV audio tag body).
    pub const AUDIO: u8 = 8;
    /// Video data (an FLV video tag body).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 form.
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 form.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3 form.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message (e.g. `@setDataFrame`/`onMetaData`), AMF0.
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message (e.g. `connect`, `publish`), AMF0.
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (a run of FLV-tag-like sub-messages).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids this crate sends on.
pub mod csid {
    /// Protocol control and user control messages.
    pub const CONTROL: u32 = 2;
    /// NetConnection commands (message stream 0).
    pub const COMMAND: u32 = 3;
    /// Audio.
    pub const AUDIO: u32 = 4;
    /// NetStream commands and data messages.
    pub const STREAM: u32 = 5;
    /// Video.
    pub const VIDEO: u32 = 6;
}

/// One RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Timestamp in milliseconds (32 bits, wraps).
    pub timestamp: u32,
    /// Message type id (see [`msg_type`]).
    pub type_id: u8,
    /// Message stream id (0 for the NetConnection).
    pub stream_id: u32,
    /// The payload; for received messages a zero-copy slice when the message was one chunk.
    pub payload: Bytes,
}

fn u32_payload(v: u32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// Set Peer Bandwidth limit type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandwidthLimit {
    /// 0: hard.
    Hard,
    /// 1: soft.
    Soft,
    /// 2: dynamic.
    Dynamic,
}

impl Message {
    /// A message with timestamp 0.
    pub fn new(type_id: u8, stream_id: u32, payload: Bytes) -> Self {
        Message {
            timestamp: 0,
            type_id,
            stream_id,
            payload,
        }
    }

    /// Set Chunk Size.
    pub fn set_chunk_size(size: u32) -> Self {
        Message::new(msg_type::SET_CHUNK_SIZE, 0, u32_payload(size & 0x7FFF_FFFF))
    }

    /// Abort Message for a chunk stream.
    pub fn abort(csid: u32) -> Self {
        Message::new(msg_type::ABORT, 0, u32_payload(csid))
    }

    /// Acknowledgement with the number of bytes received so far (mod 2^32).
    pub fn acknowledgement(sequence: u32) -> Self {
        Message::new(msg_type::ACKNOWLEDGEMENT, 0, u32_payload(sequence))
    }

    /// Window Acknowledgement Size.
    pub fn window_ack_size(size: u32) -> Self {
        Message::new(msg_type::WINDOW_ACK_SIZE, 0, u32_payload(size))
    }

    /// Set Peer Bandwidth.
    pub fn set_peer_bandwidth(size: u32, limit: BandwidthLimit) -> Self {
        let mut p = BytesMut::with_capacity(5);
        p.put_u32(size);
        p.put_u8(match limit {
            BandwidthLimit::Hard => 0,
            BandwidthLimit::Soft => 1,
            BandwidthLimit::Dynamic => 2,
        });
        Message::new(msg_type::SET_PEER_BANDWIDTH, 0, p.freeze())
    }

    /// A User Control Message.
    pub fn user_control(event: UserControl) -> Self {
        Message::new(msg_type::USER_CONTROL, 0, event.encode())
    }

    /// An AMF0 command message.
    pub fn command(stream_id: u32, command: &Command) -> Result<Self, AmfError> {
        Ok(Message::new(
            msg_type::COMMAND_AMF0,
            stream_id,
            command.encode()?,
        ))
    }

    /// An AMF0 data message made of `values`.
    pub fn data(stream_id: u32, timestamp: u32, values: &[Amf0Value]) -> Result<Self, AmfError> {
        let payload = crate::amf0::encode_all(values)?.freeze();
        Ok(Message {
            timestamp,
            type_id: msg_type::DATA_AMF0,
            stream_id,
            payload,
        })
    }

    /// The payload as a big-endian u32 (protocol control messages).
    pub(crate) fn payload_u32(&self) -> Result<u32, RtmpError> {
        let p = &self.payload;
        if p.len() < 4 {
            return Err(RtmpError::protocol(format!(
                "message type {} needs a 4-byte payload, got {}",
                self.type_id,
                p.len()
            )));
        }
        Ok(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
    }
}

/// User Control Message events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// 0: a stream became functional.
    StreamBegin(u32),
    /// 1: playback of a stream ended.
    StreamEof(u32),
    /// 2: no more data on a stream.
    StreamDry(u32),
    /// 3: the client's buffer length for a stream, in milliseconds.
    SetBufferLength {
        /// Stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        buffer_ms: u32,
    },
    /// 4: the stream is recorded.
    StreamIsRecorded(u32),
    /// 6: ping request with the sender's timestamp.
    PingRequest(u32),
    /// 7: ping response echoing the request's timestamp.
    PingResponse(u32),
    /// Any other event type, kept raw.
    Other {
        /// Event type.
        event: u16,
        /// Event data.
        data: Bytes,
    },
}

impl UserControl {
    /// Parses a User Control Message payload.
    pub fn parse(payload: &Bytes) -> Result<Self, RtmpError> {
        if payload.len() < 2 {
            return Err(RtmpError::protocol(
                "user control message shorter than 2 bytes",
            ));
        }
        let event = u16::from_be_bytes([payload[0], payload[1]]);
        let data = payload.slice(2..);
        let u32_at = |i: usize| -> Result<u32, RtmpError> {
            data.get(i..i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| RtmpError::protocol(format!("user control event {event} too short")))
        };
        Ok(match event {
            0 => UserControl::StreamBegin(u32_at(0)?),
            1 => UserControl::StreamEof(u32_at(0)?),
            2 => UserControl::StreamDry(u32_at(0)?),
            3 => UserControl::SetBufferLength {
                stream_id: u32_at(0)?,
                buffer_ms: u32_at(4)?,
            },
            4 => UserControl::StreamIsRecorded(u32_at(0)?),
            6 => UserControl::PingRequest(u32_at(0)?),
            7 => UserControl::PingResponse(u32_at(0)?),
            _ => UserControl::Other { event, data },
        })
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Bytes {
        let mut p = BytesMut::with_capacity(10);
        let (event, a, b) = match self {
            UserControl::StreamBegin(s) => (0, *s, None),
            UserControl::StreamEof(s) => (1, *s, None),
            UserControl::StreamDry(s) => (2, *s, None),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => (3, *stream_id, Some(*buffer_ms)),
            UserControl::StreamIsRecorded(s) => (4, *s, None),
            UserControl::PingRequest(t) => (6, *t, None),
            UserControl::PingResponse(t) => (7, *t, None),
            UserControl::Other { event, data } => {
                p.put_u16(*event);
                p.put_slice(data);
                return p.freeze();
            }
        };
        p.put_u16(event);
        p.put_u32(a);
        if let Some(b) = b {
            p.put_u32(b);
        }
        p.freeze()
    }
}

/// A command message: name, transaction id, command object, then arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name (`connect`, `publish`, `_result`, `onStatus`, ...).
    pub name: String,
    /// Transaction id (0 when no response is expected).
    pub transaction_id: f64,
    /// Command object (`Null` for most commands but `connect` and `_result`).
    pub command_object: Amf0Value,
    /// Remaining values.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// A command with a `Null` command object.
    pub fn new(name: impl Into<String>, transaction_id: f64, args: Vec<Amf0Value>) -> Self {
        Command {
            name: name.into(),
            transaction_id,
            command_object: Amf0Value::Null,
            args,
        }
    }

    /// Parses a command payload. For type 17 (AMF3 command) pass `amf3 = true`: the leading
    /// format byte is skipped and the rest read as AMF0.
    pub fn parse(payload: &[u8], amf3: bool) -> Result<Self, RtmpError> {
        let payload = if amf3 {
            strip_amf3_marker(payload)
        } else {
            payload
        };
        let mut d = Amf0Decoder::new(payload);
        let name = match d.next_value()? {
            Some(Amf0Value::String(s)) => s,
            _ => return Err(AmfError::Unexpected("command name is not a string").into()),
        };
        let transaction_id = match d.next_value()? {
            Some(Amf0Value::Number(n)) => n,
            // Some encoders omit it on data-like commands (onStatus); treat as 0.
            None => 0.0,
            Some(_) => return Err(AmfError::Unexpected("transaction id is not a number").into()),
        };
        let command_object = d.next_value()?.unwrap_or(Amf0Value::Null);
        let mut args = Vec::new();
        while let Some(v) = d.next_value()? {
            args.push(v);
        }
        Ok(Command {
            name,
            transaction_id,
            command_object,
            args,
        })
    }

    /// Encodes the command as AMF0.
    pub fn encode(&self) -> Result<Bytes, AmfError> {
        let mut out = BytesMut::with_capacity(128);
        Amf0Value::String(self.name.clone()).encode(&mut out)?;
        Amf0Value::Number(self.transaction_id).encode(&mut out)?;
        self.command_object.encode(&mut out)?;
        for a in &self.args {
            a.encode(&mut out)?;
        }
        Ok(out.freeze())
    }

    /// The `i`-th argument as a string.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Amf0Value::as_str)
    }

    /// The `i`-th argument as a number.
    pub fn arg_f64(&self, i: usize) -> Option<f64> {
        self.args.get(i).and_then(Amf0Value::as_f64)
    }
}

/// Skips the format byte (0) that starts AMF3 command and data messages.
pub(crate) fn strip_amf3_marker(payload: &[u8]) -> &[u8] {
    match payload.first() {
        Some(0) => &payload[1..],
        _ => payload,
    }
}

/// Splits an aggregate message (type 22) into its sub-messages. Sub-message timestamps are
/// rebased so the first one has the aggregate's timestamp. Payloads are zero-copy slices.
pub fn split_aggregate(msg: &Message) -> Result<Vec<Message>, RtmpError> {
    let mut data = msg.payload.clone();
    let mut out = Vec::new();
    let mut base: Option<u32> = None;
    while !data.is_empty() {
        if data.len() < 11 {
            return Err(RtmpError::protocol(
                "aggregate sub-message header truncated",
            ));
        }
        let type_id = data[0];
        let size =
            (usize::from(data[1]) << 16) | (usize::from(data[2]) << 8) | usize::from(data[3]);
        let ts = u32::from_be_bytes([data[7], data[4], data[5], data[6]]);
        data.advance(11);
        if data.len() < size + 4 {
            return Err(RtmpError::protocol("aggregate sub-message body truncated"));
        }
        let payload = data.split_to(size);
        data.advance(4); // back pointer
        let first = *base.get_or_insert(ts);
        out.push(Message {
            timestamp: msg.timestamp.wrapping_add(ts.wrapping_sub(first)),
            type_id,
            stream_id: msg.stream_id,
            payload,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trip() {
        for uc in [
            UserControl::StreamBegin(1),
            UserControl::StreamEof(2),
            UserControl::StreamDry(3),
            UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            },
            UserControl::StreamIsRecorded(1),
            UserControl::PingRequest(123_456),
            UserControl::PingResponse(u32::MAX),
            UserControl::Other {
                event: 31,
                data: Bytes::from_static(&[1, 2]),
            },
        ] {
            assert_eq!(UserControl::parse(&uc.encode()).unwrap(), uc);
        }
        assert_eq!(
            &UserControl::PingRequest(0x01020304).encode()[..],
            &[0, 6, 1, 2, 3, 4]
        );
        assert!(UserControl::parse(&Bytes::from_static(&[0])).is_err());
        assert!(UserControl::parse(&Bytes::from_static(&[0, 3, 0, 0, 0, 1])).is_err());
    }

    #[test]
    fn command_round_trip_and_amf3() {
        let c = Command {
            name: "connect".into(),
            transaction_id: 1.0,
            command_object: Amf0Value::object([("app", Amf0Value::string("live"))]),
            args: vec![Amf0Value::Boolean(true)],
        };
        let enc = c.encode().unwrap();
        assert_eq!(Command::parse(&enc, false).unwrap(), c);
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&enc);
        assert_eq!(Command::parse(&amf3, true).unwrap(), c);
        assert!(Command::parse(&[0x05], false).is_err());
        assert!(Command::parse(&[], false).is_err());
        // A value switching to AMF3 is refused clearly.
        let mut bad = BytesMut::new();
        Amf0Value::string("connect").encode(&mut bad).unwrap();
        Amf0Value::Number(1.0).encode(&mut bad).unwrap();
        bad.put_u8(0x11);
        assert_eq!(
            Command::parse(&bad, false),
            Err(RtmpError::Amf(AmfError::Amf3NotSupported))
        );
    }

    #[test]
    fn aggregate_split() {
        let mut p = BytesMut::new();
        for (t, ts, body) in [(9u8, 1000u32, &b"vid"[..]), (8, 1023, &b"au"[..])] {
            p.put_u8(t);
            p.put_slice(&(body.len() as u32).to_be_bytes()[1..]);
            p.put_slice(&ts.to_be_bytes()[1..]);
            p.put_u8((ts >> 24) as u8);
            p.put_slice(&[0, 0, 0]);
            p.put_slice(body);
            p.put_u32(11 + body.len() as u32);
        }
        let msg = Message {
            timestamp: 5000,
            type_id: msg_type::AGGREGATE,
            stream_id: 1,
            payload: p.freeze(),
        };
        let subs = split_aggregate(&msg).unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!((subs[0].type_id, subs[0].timestamp), (9, 5000));
        assert_eq!((subs[1].type_id, subs[1].timestamp), (8, 5023));
        assert_eq!(&subs[1].payload[..], b"au");
        let mut bad = msg.clone();
        bad.payload = msg.payload.slice(..msg.payload.len() - 1);
        assert!(split_aggregate(&bad).is_err());
    }
}
