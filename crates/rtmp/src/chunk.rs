//! The chunk stream layer: splitting messages into chunks and reassembling them.
//!
//! [`ChunkDecoder`] handles basic header formats 0-3, 1/2/3-byte chunk stream ids, extended
//! timestamps (including their repetition on type-3 chunks), per-chunk-stream reassembly,
//! Set Chunk Size and Abort. A chunk is consumed only once it is complete, so truncated input
//! just waits. Memory is bounded by [`ChunkLimits`]: a declared message length over the
//! maximum is refused before any of it is buffered, a partial message is allocated for its
//! declared length only up to 256 KiB (larger ones grow as data arrives), and the total
//! of partial messages is capped. Complete payloads are copied out of the input buffer into
//! allocations of their own size, so a long-lived message never pins the input buffer.
//!
//! [`encode_message`] writes a message as chunks with a full type-0 header on the first
//! chunk, so the result depends only on the message, the chunk stream id and the chunk size:
//! it can be built once and sent to every connection using the same chunk size.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::message::{msg_type, Message};
use crate::RtmpError;

/// The chunk size every connection starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the protocol allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Largest message length the 24-bit length field can express.
pub const MAX_MESSAGE_LEN_FIELD: u32 = 0xFF_FFFF;
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// Largest declared message length a partial message is allocated for at once (a 1080p
/// keyframe usually fits). Up to [`ChunkLimits::max_chunk_streams`] such
/// buffers can exist per connection before their data arrives.
const PREALLOCATE_MAX: usize = 256 * 1024;

/// Memory bounds of a [`ChunkDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest accepted message length (default 8 MiB).
    pub max_message_len: u32,
    /// Largest total of bytes held in partially received messages (default 16 MiB).
    pub max_buffered: usize,
    /// Most chunk streams tracked at once (default 64).
    pub max_chunk_streams: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_message_len: 8 * 1024 * 1024,
            max_buffered: 16 * 1024 * 1024,
            max_chunk_streams: 64,
        }
    }
}

/// Validates a chunk size from a Set Chunk Size message.
pub fn validate_chunk_size(size: u32) -> Result<u32, RtmpError> {
    if size == 0 || size > MAX_CHUNK_SIZE {
        Err(RtmpError::ChunkSizeInvalid(size))
    } else {
        Ok(size)
    }
}

#[derive(Debug, Clone, Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// Whether the last type 0/1/2 header used an extended timestamp.
    extended: bool,
    /// The message being reassembled, if any.
    partial: Option<BytesMut>,
}

/// The state of each chunk stream of a connection, by chunk stream id. A connection uses a
/// handful (at most [`ChunkLimits::max_chunk_streams`]): a short list searched in order costs
/// less per chunk than hashing the id.
#[derive(Debug, Clone, Default)]
struct ChunkStreams(Vec<(u32, ChunkStream)>);

impl ChunkStreams {
    fn get(&self, csid: u32) -> Option<&ChunkStream> {
        self.0.iter().find(|(id, _)| *id == csid).map(|(_, s)| s)
    }

    fn get_mut(&mut self, csid: u32) -> Option<&mut ChunkStream> {
        self.0
            .iter_mut()
            .find(|(id, _)| *id == csid)
            .map(|(_, s)| s)
    }

    fn get_or_insert(&mut self, csid: u32) -> &mut ChunkStream {
        let i = match self.0.iter().position(|(id, _)| *id == csid) {
            Some(i) => i,
            None => {
                self.0.push((csid, ChunkStream::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Reassembles messages from a chunk stream.
#[derive(Debug, Clone)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: u32,
    streams: ChunkStreams,
    buffered: usize,
    limits: ChunkLimits,
}

/// A parsed chunk header (nothing consumed yet).
struct Header {
    fmt: u8,
    csid: u32,
    /// Basic + message header + extended timestamp length.
    len: usize,
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new(ChunkLimits::default())
    }
}

impl ChunkDecoder {
    /// A decoder with chunk size 128.
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: ChunkStreams::default(),
            buffered: 0,
            limits,
        }
    }

    /// The current inbound chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes held in partially received messages.
    pub fn buffered_message_bytes(&self) -> usize {
        self.buffered
    }

    /// Bytes of input not yet consumed (at most one incomplete chunk after draining).
    pub fn pending_input(&self) -> usize {
        self.buf.len()
    }

    /// Appends input.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer with room for at least `room` more bytes, to read into directly
    /// (instead of reading elsewhere and [`push`](Self::push)ing a copy). Bytes appended here
    /// are input like pushed ones.
    pub fn input_buffer(&mut self, room: usize) -> &mut BytesMut {
        self.buf.reserve(room);
        &mut self.buf
    }

    /// The next complete message, or `Ok(None)` when more input is needed.
    ///
    /// Set Chunk Size and Abort are applied here, in stream order, and also returned.
    pub fn next_message(&mut self) -> Result<Option<Message>, RtmpError> {
        loop {
            let Some(h) = self.peek_header()? else {
                return Ok(None);
            };
            if let Some(msg) = self.consume_chunk(h)? {
                self.apply_control(&msg)?;
                return Ok(Some(msg));
            }
        }
    }

    fn apply_control(&mut self, msg: &Message) -> Result<(), RtmpError> {
        match msg.type_id {
            msg_type::SET_CHUNK_SIZE => {
                let v = msg.payload_u32()?;
                self.chunk_size = validate_chunk_size(v)?;
            }
            msg_type::ABORT => {
                let csid = msg.payload_u32()?;
                if let Some(s) = self.streams.get_mut(csid) {
                    if let Some(p) = s.partial.take() {
                        self.buffered -= p.len();
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Parses the header of the next chunk and checks that the whole chunk is buffered.
    /// Returns `None` when more bytes are needed. Consumes nothing.
    fn peek_header(&self) -> Result<Option<Header>, RtmpError> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3F {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (64 + u32::from(x) + 256 * u32::from(y), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let mh_len = [11usize, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + mh_len {
            return Ok(None);
        }
        let prev = self.streams.get(csid);
        if fmt != 0 && prev.is_none() {
            return Err(RtmpError::protocol(format!(
                "chunk type {fmt} on chunk stream {csid} with no previous header"
            )));
        }
        if prev.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(RtmpError::TooManyChunkStreams(
                self.limits.max_chunk_streams,
            ));
        }
        let be24 =
            |i: usize| (u32::from(b[i]) << 16) | (u32::from(b[i + 1]) << 8) | u32::from(b[i + 2]);
        let (mut ts_field, mut length, mut type_id, mut stream_id, mut extended) = match prev {
            Some(p) => (p.delta, p.length, p.type_id, p.stream_id, p.extended),
            None => (0, 0, 0, 0, false),
        };
        if fmt <= 2 {
            ts_field = be24(pos);
            extended = ts_field == EXTENDED_TIMESTAMP;
        }
        if fmt <= 1 {
            length = be24(pos + 3);
            type_id = b[pos + 6];
        }
        if fmt == 0 {
            stream_id = u32::from_le_bytes([b[pos + 7], b[pos + 8], b[pos + 9], b[pos + 10]]);
        }
        pos += mh_len;
        if extended {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            if fmt <= 2 {
                ts_field = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            }
            pos += 4;
        }
        if length > self.limits.max_message_len {
            return Err(RtmpError::MessageTooLarge {
                len: length,
                max: self.limits.max_message_len,
            });
        }
        // A type 0/1/2 header always starts a new message; a type 3 continues one if any.
        let received = match prev.and_then(|p| p.partial.as_ref()) {
            Some(p) if fmt == 3 => p.len(),
            _ => 0,
        };
        let data_len = (length as usize - received).min(self.chunk_size as usize);
        if b.len() < pos + data_len {
            return Ok(None);
        }
        Ok(Some(Header {
            fmt,
            csid,
            len: pos,
            ts_field,
            length,
            type_id,
            stream_id,
            extended,
        }))
    }

    /// Consumes the chunk described by `h` (known to be complete).
    fn consume_chunk(&mut self, h: Header) -> Result<Option<Message>, RtmpError> {
        self.buf.advance(h.len);
        let chunk_size = self.chunk_size as usize;
        let st = self.streams.get_or_insert(h.csid);
        let continuing = h.fmt == 3 && st.partial.is_some();
        if !continuing {
            if let Some(p) = st.partial.take() {
                // A new header abandoned a half-received message.
                self.buffered -= p.len();
            }
            match h.fmt {
                0 => {
                    st.timestamp = h.ts_field;
                    // A type 3 chunk starting the next message reuses this as its delta.
                    st.delta = h.ts_field;
                }
                1 | 2 => {
                    st.delta = h.ts_field;
                    st.timestamp = st.timestamp.wrapping_add(h.ts_field);
                }
                _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
            }
            st.length = h.length;
            st.type_id = h.type_id;
            st.stream_id = h.stream_id;
            st.extended = h.extended;
        }
        let received = st.partial.as_ref().map_or(0, BytesMut::len);
        let data_len = (st.length as usize - received).min(chunk_size);
        // Copied out rather than split off: a payload sharing the input buffer would pin all
        // of it (a read's worth, often far more than the message) for as long as the message
        // lives — a media frame in a GOP cache lives for seconds — and would force the next
        // input to a fresh allocation instead of reusing this one.
        let data = &self.buf[..data_len];
        let complete = received + data_len == st.length as usize;
        let payload = match st.partial.take() {
            None if complete => {
                let payload = Bytes::copy_from_slice(data);
                self.buf.advance(data_len);
                payload
            }
            None => {
                self.buffered += data_len;
                if self.buffered > self.limits.max_buffered {
                    return Err(RtmpError::BufferLimit {
                        buffered: self.buffered,
                        max: self.limits.max_buffered,
                    });
                }
                // The whole message at once when it is of a plausible size (one allocation,
                // no regrowth, no slack kept by the finished payload); a larger declared
                // length is not trusted and grows as data arrives.
                let length = st.length as usize;
                let capacity = if length <= PREALLOCATE_MAX {
                    length
                } else {
                    data_len * 2
                };
                let mut p = BytesMut::with_capacity(capacity);
                p.extend_from_slice(data);
                self.buf.advance(data_len);
                st.partial = Some(p);
                return Ok(None);
            }
            Some(mut p) => {
                if complete {
                    self.buffered -= received;
                    p.extend_from_slice(data);
                    self.buf.advance(data_len);
                    p.freeze()
                } else {
                    self.buffered += data_len;
                    if self.buffered > self.limits.max_buffered {
                        return Err(RtmpError::BufferLimit {
                            buffered: self.buffered,
                            max: self.limits.max_buffered,
                        });
                    }
                    p.extend_from_slice(data);
                    self.buf.advance(data_len);
                    st.partial = Some(p);
                    return Ok(None);
                }
            }
        };
        Ok(Some(Message {
            timestamp: st.timestamp,
            type_id: st.type_id,
            stream_id: st.stream_id,
            payload,
        }))
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8((fmt << 6) | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid - 64;
            out.put_u8((fmt << 6) | 1);
            out.put_u8((v & 0xFF) as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

/// Size of the chunked encoding of a message of `payload_len` bytes.
pub fn encoded_len(csid: u32, chunk_size: u32, timestamp: u32, payload_len: usize) -> usize {
    let basic = match csid {
        2..=63 => 1,
        64..=319 => 2,
        _ => 3,
    };
    let ext = if timestamp >= EXTENDED_TIMESTAMP {
        4
    } else {
        0
    };
    let chunks = payload_len.div_ceil(chunk_size.max(1) as usize).max(1);
    basic + 11 + ext + (chunks - 1) * (basic + ext) + payload_len
}

/// Appends `msg` to `out` as chunks on chunk stream `csid` (2..=65599) with `chunk_size`.
///
/// The first chunk has a full type-0 header, the rest are type 3; timestamps of 0xFFFFFF
/// and above use the extended field, repeated on every type-3 chunk.
pub fn encode_message_into(
    out: &mut BytesMut,
    msg: &Message,
    csid: u32,
    chunk_size: u32,
) -> Result<(), RtmpError> {
    encode_parts_into(
        out,
        msg.timestamp,
        msg.type_id,
        msg.stream_id,
        &[&msg.payload],
        csid,
        chunk_size,
    )
}

/// Like [`encode_message_into`] with the payload given in parts (e.g. an FLV tag header and
/// the frame data), so the only copy is the one into the chunked output.
pub fn encode_parts_into(
    out: &mut BytesMut,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    parts: &[&[u8]],
    csid: u32,
    chunk_size: u32,
) -> Result<(), RtmpError> {
    if !(2..=65599).contains(&csid) {
        return Err(RtmpError::InvalidState("chunk stream id must be 2..=65599"));
    }
    let chunk_size = validate_chunk_size(chunk_size)? as usize;
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_MESSAGE_LEN_FIELD as usize {
        return Err(RtmpError::MessageTooLarge {
            len: u32::try_from(len).unwrap_or(u32::MAX),
            max: MAX_MESSAGE_LEN_FIELD,
        });
    }
    out.reserve(encoded_len(csid, chunk_size as u32, timestamp, len));
    let extended = timestamp >= EXTENDED_TIMESTAMP;
    put_basic_header(out, 0, csid);
    put_u24(out, timestamp.min(EXTENDED_TIMESTAMP));
    put_u24(out, len as u32);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    let mut room = chunk_size;
    for part in parts {
        let mut part: &[u8] = part;
        while !part.is_empty() {
            if room == 0 {
                put_basic_header(out, 3, csid);
                if extended {
                    out.put_u32(timestamp);
                }
                room = chunk_size;
            }
            let n = room.min(part.len());
            out.put_slice(&part[..n]);
            part = &part[n..];
            room -= n;
        }
    }
    Ok(())
}

/// A message's chunks that reference its payload instead of holding a copy (see
/// [`encode_message_shared`]): the wire bytes are stretches of `head` (chunk headers and any
/// copied prefix) and of `data` (the payload), in the order of `pieces`.
#[derive(Debug, Clone, Default)]
pub struct SharedChunks {
    head: Bytes,
    data: Bytes,
    /// Empty when the wire bytes are `head` alone. Every byte of `head` and `data` is in
    /// exactly one piece.
    pieces: Vec<ChunkPiece>,
}

/// One stretch of a [`SharedChunks`]: `start..end` of its head or of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkPiece {
    Head(u32, u32),
    Data(u32, u32),
}

impl SharedChunks {
    /// Wire bytes that are all in one buffer (e.g. a small message copied whole).
    pub fn whole(bytes: Bytes) -> Self {
        SharedChunks {
            head: bytes,
            data: Bytes::new(),
            pieces: Vec::new(),
        }
    }

    /// Total wire length.
    pub fn len(&self) -> usize {
        self.head.len() + self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many pieces the wire bytes are in (what a vectored write takes).
    pub fn piece_count(&self) -> usize {
        if self.pieces.is_empty() {
            usize::from(!self.head.is_empty())
        } else {
            self.pieces.len()
        }
    }

    /// Piece `i` (empty past the last).
    pub fn piece(&self, i: usize) -> &[u8] {
        fn stretch(b: &Bytes, start: u32, end: u32) -> &[u8] {
            b.get(start as usize..end as usize).unwrap_or_default()
        }
        match self.pieces.get(i) {
            Some(&ChunkPiece::Head(a, b)) => stretch(&self.head, a, b),
            Some(&ChunkPiece::Data(a, b)) => stretch(&self.data, a, b),
            None if self.pieces.is_empty() && i == 0 => &self.head,
            None => &[],
        }
    }

    /// The wire bytes in one buffer (shared, not copied, when they are one piece).
    pub fn to_bytes(&self) -> Bytes {
        match self.pieces[..] {
            [] => return self.head.clone(),
            [ChunkPiece::Head(a, b)] => return self.head.slice(a as usize..b as usize),
            [ChunkPiece::Data(a, b)] => return self.data.slice(a as usize..b as usize),
            _ => {}
        }
        let mut all = BytesMut::with_capacity(self.len());
        for i in 0..self.pieces.len() {
            all.put_slice(self.piece(i));
        }
        all.freeze()
    }
}

/// Encodes a message whose payload is `prefix` followed by `data` as chunks that reference
/// `data` instead of copying it. The chunk headers and `prefix` (e.g. an FLV tag header) are
/// copied into one small buffer; each stretch of `data` between two chunk headers stays in
/// `data`. The pieces joined are exactly [`encode_parts_into`]'s output for `[prefix, data]`.
pub fn encode_message_shared(
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    prefix: &[u8],
    data: &Bytes,
    csid: u32,
    chunk_size: u32,
) -> Result<SharedChunks, RtmpError> {
    let chunk_size = validate_chunk_size(chunk_size)?;
    let len = prefix.len() + data.len();
    if len > MAX_MESSAGE_LEN_FIELD as usize {
        return Err(RtmpError::MessageTooLarge {
            len: u32::try_from(len).unwrap_or(u32::MAX),
            max: MAX_MESSAGE_LEN_FIELD,
        });
    }
    let chunks = len.div_ceil(chunk_size as usize).max(1);
    let mut head = BytesMut::with_capacity(prefix.len() + chunks * 20);
    // The type-0 header, written for an empty payload and given the real length below.
    encode_parts_into(
        &mut head,
        timestamp,
        type_id,
        stream_id,
        &[],
        csid,
        chunk_size,
    )?;
    let extended = timestamp >= EXTENDED_TIMESTAMP;
    let basic = head.len() - 11 - if extended { 4 } else { 0 };
    head[basic + 3..basic + 6].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
    let chunk_size = chunk_size as usize;
    let mut pieces = Vec::with_capacity(chunks * 2);
    let mut head_start = 0;
    let mut room = chunk_size;
    let mut copied: &[u8] = prefix;
    let mut at = 0;
    // Offsets fit in u32: `len` is at most MAX_MESSAGE_LEN_FIELD.
    let off = |n: usize| n as u32;
    while !copied.is_empty() || at < data.len() {
        if room == 0 {
            put_basic_header(&mut head, 3, csid);
            if extended {
                head.put_u32(timestamp);
            }
            room = chunk_size;
        }
        if !copied.is_empty() {
            let n = room.min(copied.len());
            head.put_slice(&copied[..n]);
            copied = &copied[n..];
            room -= n;
            continue;
        }
        // A stretch of `data`: the head bytes before it become a piece of their own.
        if head_start < head.len() {
            pieces.push(ChunkPiece::Head(off(head_start), off(head.len())));
            head_start = head.len();
        }
        let n = room.min(data.len() - at);
        pieces.push(ChunkPiece::Data(off(at), off(at + n)));
        at += n;
        room -= n;
    }
    if head_start < head.len() {
        pieces.push(ChunkPiece::Head(off(head_start), off(head.len())));
    }
    Ok(SharedChunks {
        head: head.freeze(),
        data: data.clone(),
        pieces,
    })
}

/// Encodes `msg` as chunks into one shareable buffer ("encode once, send many": every
/// connection with this chunk size can be sent the same `Bytes`).
pub fn encode_message(msg: &Message, csid: u32, chunk_size: u32) -> Result<Bytes, RtmpError> {
    let mut out = BytesMut::new();
    encode_message_into(&mut out, msg, csid, chunk_size)?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ts: u32, type_id: u8, stream_id: u32, len: usize) -> Message {
        Message {
            timestamp: ts,
            type_id,
            stream_id,
            payload: Bytes::from((0..len).map(|i| (i * 7 + len) as u8).collect::<Vec<_>>()),
        }
    }

    fn decode_all(dec: &mut ChunkDecoder, data: &[u8]) -> Vec<Message> {
        dec.push(data);
        let mut out = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn round_trip_many_sizes() {
        for chunk_size in [1u32, 2, 127, 128, 129, 4096, 65536] {
            for len in [0usize, 1, 127, 128, 129, 300, 5000] {
                let m = msg(12345, 9, 1, len);
                let enc = encode_message(&m, 6, chunk_size).unwrap();
                assert_eq!(enc.len(), encoded_len(6, chunk_size, 12345, len));
                let mut dec = ChunkDecoder {
                    chunk_size,
                    ..ChunkDecoder::default()
                };
                assert_eq!(decode_all(&mut dec, &enc), vec![m.clone()]);
                assert_eq!(dec.buffered_message_bytes(), 0);
            }
        }
    }

    /// The shared form is the copied form cut into pieces, and its data pieces point into the
    /// given payload rather than at copies of it.
    #[test]
    fn shared_encoding_matches_the_copy_and_references_the_data() {
        for chunk_size in [1u32, 2, 5, 6, 127, 128, 4096] {
            for len in [0usize, 1, 4, 5, 127, 128, 300, 5000] {
                for timestamp in [0u32, 12345, EXTENDED_TIMESTAMP + 9] {
                    let data = Bytes::from((0..len).map(|i| (i * 13) as u8).collect::<Vec<_>>());
                    let prefix = [0x17, 1, 0, 0, 0];
                    let mut copied = BytesMut::new();
                    encode_parts_into(
                        &mut copied,
                        timestamp,
                        9,
                        1,
                        &[&prefix, &data],
                        6,
                        chunk_size,
                    )
                    .unwrap();
                    let chunks =
                        encode_message_shared(timestamp, 9, 1, &prefix, &data, 6, chunk_size)
                            .unwrap();
                    assert_eq!(chunks.len(), copied.len());
                    assert_eq!(chunks.to_bytes(), copied);
                    let pieces: Vec<&[u8]> =
                        (0..chunks.piece_count()).map(|i| chunks.piece(i)).collect();
                    let joined = pieces.concat();
                    assert_eq!(
                        joined,
                        copied.to_vec(),
                        "chunk {chunk_size}, len {len}, ts {timestamp}"
                    );
                    assert!(pieces.iter().all(|p| !p.is_empty()));
                    let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
                    let shared: usize = pieces
                        .iter()
                        .filter(|p| range.contains(&(p.as_ptr() as usize)))
                        .map(|p| p.len())
                        .sum();
                    assert_eq!(shared, len, "every data byte is referenced, none copied");
                    if let [one] = pieces[..] {
                        // One piece (an empty payload): joining shares it, no copy.
                        assert_eq!(chunks.to_bytes().as_ptr(), one.as_ptr());
                    }
                }
            }
        }
        assert!(encode_message_shared(0, 9, 1, &[], &Bytes::new(), 1, 128).is_err());
        assert!(encode_message_shared(0, 9, 1, &[], &Bytes::new(), 6, 0).is_err());
    }

    #[test]
    fn byte_by_byte_reassembly() {
        let m = msg(1, 8, 1, 1000);
        let enc = encode_message(&m, 4, 128).unwrap();
        let mut dec = ChunkDecoder::default();
        let mut got = Vec::new();
        for b in enc.iter() {
            got.extend(decode_all(&mut dec, std::slice::from_ref(b)));
        }
        assert_eq!(got, vec![m]);
    }

    #[test]
    fn payloads_do_not_pin_the_input_buffer_and_it_is_reused() {
        let m = msg(1, 9, 1, 100);
        let enc = encode_message(&m, 6, 128).unwrap();
        let mut dec = ChunkDecoder::default();
        dec.push(&enc);
        let start = dec.buf.as_ptr() as usize;
        let end = start + dec.buf.capacity();
        let got = dec.next_message().unwrap().unwrap();
        assert_eq!(got, m);
        // The payload has an allocation of its own: a frame kept for seconds (GOP cache) does
        // not keep the input buffer alive.
        let p = got.payload.as_ptr() as usize;
        assert!(p < start || p >= end, "payload inside the input buffer");
        // So the next input goes into the same allocation, not a fresh one.
        dec.push(&enc);
        assert_eq!(dec.buf.as_ptr() as usize, start);
        assert_eq!(dec.next_message().unwrap().unwrap(), m);
        // A message over several chunks is allocated once at its declared size.
        let big = msg(1, 9, 1, 10_000);
        let enc = encode_message(&big, 6, 128).unwrap();
        assert_eq!(decode_all(&mut dec, &enc), vec![big]);
    }

    #[test]
    fn csid_forms() {
        for csid in [2u32, 63, 64, 319, 320, 65599] {
            let m = msg(5, 20, 0, 300);
            let enc = encode_message(&m, csid, 128).unwrap();
            let mut dec = ChunkDecoder::default();
            assert_eq!(decode_all(&mut dec, &enc), vec![m], "csid {csid}");
            assert!(dec.streams.get(csid).is_some());
        }
        assert!(encode_message(&msg(0, 1, 0, 1), 1, 128).is_err());
        assert!(encode_message(&msg(0, 1, 0, 1), 65600, 128).is_err());
    }

    #[test]
    fn extended_timestamps_round_trip_and_repeat_on_type3() {
        for ts in [0xFF_FFFEu32, 0xFF_FFFF, 0x0100_0000, u32::MAX] {
            let m = msg(ts, 9, 1, 300);
            let enc = encode_message(&m, 6, 128).unwrap();
            // 3 chunks: 12 + 4 (ext) header, then two type-3 headers each with the repeat.
            if ts >= 0xFF_FFFF {
                assert_eq!(&enc[1..4], &[0xFF, 0xFF, 0xFF]);
                assert_eq!(&enc[12..16], &ts.to_be_bytes());
                let c2 = 16 + 128;
                assert_eq!(enc[c2], 0xC6);
                assert_eq!(&enc[c2 + 1..c2 + 5], &ts.to_be_bytes());
            }
            let mut dec = ChunkDecoder::default();
            assert_eq!(decode_all(&mut dec, &enc), vec![m]);
        }
    }

    /// Builds chunks by hand: type 0 with an extended timestamp, then a type 3 that starts
    /// a new message (which carries the extended field too and reuses the delta).
    #[test]
    fn type3_new_message_after_extended_type0() {
        let ts = 0x0100_0000u32;
        let mut b = BytesMut::new();
        b.put_u8(0x06);
        put_u24(&mut b, 0xFF_FFFF);
        put_u24(&mut b, 2);
        b.put_u8(9);
        b.put_u32_le(1);
        b.put_u32(ts);
        b.put_slice(b"ab");
        b.put_u8(0xC6);
        b.put_u32(ts);
        b.put_slice(b"cd");
        let mut dec = ChunkDecoder::default();
        let got = decode_all(&mut dec, &b);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].timestamp, ts);
        // Spec: the delta of a type 3 following a type 0 is the type 0's timestamp.
        assert_eq!(got[1].timestamp, ts.wrapping_add(ts));
        assert_eq!(&got[1].payload[..], b"cd");
    }

    #[test]
    fn delta_headers() {
        // Type 0 at 1000, type 2 delta 20, type 3 (delta 20 again), type 1 delta 33 new len.
        let mut b = BytesMut::new();
        b.put_u8(0x04);
        put_u24(&mut b, 1000);
        put_u24(&mut b, 1);
        b.put_u8(8);
        b.put_u32_le(1);
        b.put_u8(b'a');
        b.put_u8(0x84);
        put_u24(&mut b, 20);
        b.put_u8(b'b');
        b.put_u8(0xC4);
        b.put_u8(b'c');
        b.put_u8(0x44);
        put_u24(&mut b, 33);
        put_u24(&mut b, 2);
        b.put_u8(8);
        b.put_slice(b"de");
        let mut dec = ChunkDecoder::default();
        let got = decode_all(&mut dec, &b);
        let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![1000, 1020, 1040, 1073]);
        assert!(got.iter().all(|m| m.stream_id == 1 && m.type_id == 8));
        assert_eq!(&got[3].payload[..], b"de");
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a = msg(10, 8, 1, 300);
        let v = msg(20, 9, 1, 300);
        let ea = encode_message(&a, 4, 128).unwrap();
        let ev = encode_message(&v, 6, 128).unwrap();
        // Split each at chunk boundaries (12 + 128, then 1 + 128, then 1 + 44) and interleave.
        let sa = [&ea[..140], &ea[140..269], &ea[269..]];
        let sv = [&ev[..140], &ev[140..269], &ev[269..]];
        let mut stream = Vec::new();
        for i in 0..3 {
            stream.extend_from_slice(sv[i]);
            stream.extend_from_slice(sa[i]);
        }
        let mut dec = ChunkDecoder::default();
        let got = decode_all(&mut dec, &stream);
        assert_eq!(got, vec![v, a]);
    }

    #[test]
    fn chunk_size_change_mid_stream() {
        let mut stream = BytesMut::new();
        let m1 = msg(0, 9, 1, 500);
        encode_message_into(&mut stream, &m1, 6, 128).unwrap();
        encode_message_into(&mut stream, &Message::set_chunk_size(4096), 2, 128).unwrap();
        let m2 = msg(40, 9, 1, 5000);
        encode_message_into(&mut stream, &m2, 6, 4096).unwrap();
        encode_message_into(&mut stream, &Message::set_chunk_size(1), 2, 4096).unwrap();
        let m3 = msg(80, 8, 1, 10);
        encode_message_into(&mut stream, &m3, 4, 1).unwrap();
        let mut dec = ChunkDecoder::default();
        let got = decode_all(&mut dec, &stream);
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], m1);
        assert_eq!(got[2], m2);
        assert_eq!(got[4], m3);
        assert_eq!(dec.chunk_size(), 1);
    }

    #[test]
    fn invalid_chunk_sizes() {
        for bad in [0u32, 0x8000_0000, u32::MAX] {
            let mut b = BytesMut::new();
            let m = Message::new(
                msg_type::SET_CHUNK_SIZE,
                0,
                Bytes::copy_from_slice(&bad.to_be_bytes()),
            );
            encode_message_into(&mut b, &m, 2, 128).unwrap();
            let mut dec = ChunkDecoder::default();
            dec.push(&b);
            assert_eq!(dec.next_message(), Err(RtmpError::ChunkSizeInvalid(bad)));
        }
        // The maximum is accepted.
        let mut dec = ChunkDecoder::default();
        let enc = encode_message(&Message::set_chunk_size(MAX_CHUNK_SIZE), 2, 128).unwrap();
        decode_all(&mut dec, &enc);
        assert_eq!(dec.chunk_size(), MAX_CHUNK_SIZE);
    }

    #[test]
    fn abort_drops_partial_message() {
        let m = msg(0, 9, 1, 300);
        let enc = encode_message(&m, 6, 128).unwrap();
        let mut stream = enc[..140].to_vec(); // first chunk only
        stream.extend_from_slice(&encode_message(&Message::abort(6), 2, 128).unwrap());
        let m2 = msg(40, 9, 1, 50);
        stream.extend_from_slice(&encode_message(&m2, 6, 128).unwrap());
        let mut dec = ChunkDecoder::default();
        let got = decode_all(&mut dec, &stream);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].type_id, msg_type::ABORT);
        assert_eq!(got[1], m2);
        assert_eq!(dec.buffered_message_bytes(), 0);
    }

    #[test]
    fn huge_declared_length_is_refused_before_buffering() {
        let mut b = BytesMut::new();
        b.put_u8(0x06);
        put_u24(&mut b, 0);
        put_u24(&mut b, 0xFF_FFFF);
        b.put_u8(9);
        b.put_u32_le(1);
        let mut dec = ChunkDecoder::default();
        dec.push(&b);
        assert_eq!(
            dec.next_message(),
            Err(RtmpError::MessageTooLarge {
                len: 0xFF_FFFF,
                max: 8 * 1024 * 1024
            })
        );
    }

    #[test]
    fn partial_messages_are_capped_in_total() {
        let limits = ChunkLimits {
            max_message_len: 1000,
            max_buffered: 2500,
            max_chunk_streams: 64,
        };
        let mut dec = ChunkDecoder::new(limits);
        // First chunks (128 bytes each) of 1000-byte messages on many chunk streams.
        let mut err = None;
        for csid in 3..40u32 {
            let enc = encode_message(&msg(0, 9, 1, 1000), csid, 128).unwrap();
            dec.push(&enc[..12 + 128]);
            match dec.next_message() {
                Ok(None) => assert!(dec.buffered_message_bytes() <= 2500),
                Ok(Some(_)) => panic!("no message should complete"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(
            err,
            Some(RtmpError::BufferLimit { max: 2500, .. })
        ));
    }

    #[test]
    fn too_many_chunk_streams() {
        let limits = ChunkLimits {
            max_chunk_streams: 4,
            ..ChunkLimits::default()
        };
        let mut dec = ChunkDecoder::new(limits);
        let mut stream = Vec::new();
        for csid in 3..10 {
            stream.extend_from_slice(&encode_message(&msg(0, 9, 1, 1), csid, 128).unwrap());
        }
        dec.push(&stream);
        let mut n = 0;
        let err = loop {
            match dec.next_message() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("should fail"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 4);
        assert_eq!(err, RtmpError::TooManyChunkStreams(4));
    }

    #[test]
    fn continuation_without_header_is_an_error() {
        let mut dec = ChunkDecoder::default();
        dec.push(&[0xC3, 1, 2, 3]);
        assert!(matches!(dec.next_message(), Err(RtmpError::Protocol(_))));
        let mut dec = ChunkDecoder::default();
        dec.push(&[0x43, 0, 0, 0, 0, 0, 1, 20]);
        assert!(matches!(dec.next_message(), Err(RtmpError::Protocol(_))));
    }

    #[test]
    fn parts_encode_like_one_payload() {
        let m = msg(77, 9, 1, 1000);
        let whole = encode_message(&m, 6, 100).unwrap();
        let mut parts = BytesMut::new();
        encode_parts_into(
            &mut parts,
            77,
            9,
            1,
            &[&m.payload[..5], &m.payload[5..333], &m.payload[333..]],
            6,
            100,
        )
        .unwrap();
        assert_eq!(&parts[..], &whole[..]);
    }
}
