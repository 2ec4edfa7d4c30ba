//! The FLV file container: a 9-byte header, then tags each followed by its PreviousTagSize.
//!
//! [`FlvReader`] is a sans-IO streaming parser: push bytes as they arrive, pull whole tags.
//! Writing is header-only ([`FlvHeader::encode`], [`FlvTag::header_bytes`],
//! [`FlvTag::previous_tag_size`]) so a recorder can emit header, payload and trailer without
//! copying the payload; [`FlvTag::encode_into`] is the copying convenience.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::FlvError;

/// Length of the FLV file header.
pub const FLV_HEADER_LEN: usize = 9;
/// Length of an FLV tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Largest tag data size the 24-bit DataSize field can express.
pub const MAX_TAG_DATA_SIZE: usize = 0xFF_FFFF;

/// The FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// Version (1).
    pub version: u8,
    /// Whether audio tags are present.
    pub has_audio: bool,
    /// Whether video tags are present.
    pub has_video: bool,
}

impl FlvHeader {
    /// A version 1 header.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        FlvHeader {
            version: 1,
            has_audio,
            has_video,
        }
    }

    /// The 9 header bytes followed by PreviousTagSize0 (4 zero bytes): the first 13 bytes of
    /// a file.
    pub fn encode(&self) -> [u8; FLV_HEADER_LEN + 4] {
        let flags = (u8::from(self.has_audio) << 2) | u8::from(self.has_video);
        [
            b'F',
            b'L',
            b'V',
            self.version,
            flags,
            0,
            0,
            0,
            9,
            0,
            0,
            0,
            0,
        ]
    }

    /// Parses the 9-byte header; returns it and the data offset (where the body starts).
    pub fn parse(data: &[u8]) -> Result<(Self, u32), FlvError> {
        crate::error::need("FLV header", data, FLV_HEADER_LEN)?;
        if &data[..3] != b"FLV" {
            return Err(FlvError::invalid("FLV header", "no FLV signature"));
        }
        let offset = u32::from_be_bytes([data[5], data[6], data[7], data[8]]);
        if offset < FLV_HEADER_LEN as u32 {
            return Err(FlvError::invalid("FLV header", "data offset below 9"));
        }
        Ok((
            FlvHeader {
                version: data[3],
                has_audio: data[4] & 0x04 != 0,
                has_video: data[4] & 0x01 != 0,
            },
            offset,
        ))
    }
}

/// Tag type of an FLV tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagType {
    /// 8: audio.
    Audio,
    /// 9: video.
    Video,
    /// 18: script data (AMF0, e.g. onMetaData).
    Script,
    /// Anything else (passed through).
    Other(u8),
}

impl TagType {
    /// The 5-bit wire value.
    pub fn id(self) -> u8 {
        match self {
            TagType::Audio => 8,
            TagType::Video => 9,
            TagType::Script => 18,
            TagType::Other(id) => id & 0x1F,
        }
    }

    /// The tag type for a wire value (also the RTMP message type id of audio/video/data).
    pub fn from_id(id: u8) -> Self {
        match id & 0x1F {
            8 => TagType::Audio,
            9 => TagType::Video,
            18 => TagType::Script,
            other => TagType::Other(other),
        }
    }
}

/// One FLV file tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Audio, video or script data.
    pub tag_type: TagType,
    /// Decode timestamp in milliseconds (24 bits + 8 extended bits).
    pub timestamp: u32,
    /// Tag data: an audio/video tag body (see [`crate::AudioTag`], [`crate::VideoTag`]) or
    /// AMF0 script data.
    pub data: Bytes,
}

impl FlvTag {
    /// The 11-byte tag header for this tag's data.
    pub fn header_bytes(&self) -> Result<[u8; TAG_HEADER_LEN], FlvError> {
        let len = self.data.len();
        if len > MAX_TAG_DATA_SIZE {
            return Err(FlvError::TooLarge {
                what: "FLV tag data",
                len,
                max: MAX_TAG_DATA_SIZE,
            });
        }
        let l = (len as u32).to_be_bytes();
        let t = self.timestamp.to_be_bytes();
        Ok([
            self.tag_type.id(),
            l[1],
            l[2],
            l[3],
            t[1],
            t[2],
            t[3],
            t[0],
            0,
            0,
            0,
        ])
    }

    /// The PreviousTagSize that follows this tag (11 + data length).
    pub fn previous_tag_size(&self) -> [u8; 4] {
        ((TAG_HEADER_LEN + self.data.len()) as u32).to_be_bytes()
    }

    /// Appends header, data and PreviousTagSize to `out` (copies the data).
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), FlvError> {
        let h = self.header_bytes()?;
        out.reserve(TAG_HEADER_LEN + self.data.len() + 4);
        out.put_slice(&h);
        out.put_slice(&self.data);
        out.put_slice(&self.previous_tag_size());
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Header,
    /// Skipping bytes between the header and the body (data offset > 9), then the first
    /// PreviousTagSize.
    Skip(u64),
    Tags,
}

/// A sans-IO streaming FLV file parser.
///
/// Feed bytes with [`FlvReader::push`] and call [`FlvReader::next_tag`] until it returns
/// `Ok(None)` (more bytes needed). Tag data is a zero-copy slice of the pushed bytes. The
/// reader buffers at most one incomplete tag (bounded by `max_tag_size`) plus whatever the
/// caller pushes without draining.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    state: ReadState,
    header: Option<FlvHeader>,
    max_tag_size: usize,
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvReader {
    /// A reader accepting any tag size the format allows (16 MiB).
    pub fn new() -> Self {
        Self::with_max_tag_size(MAX_TAG_DATA_SIZE)
    }

    /// A reader rejecting tags whose data is larger than `max_tag_size`.
    pub fn with_max_tag_size(max_tag_size: usize) -> Self {
        FlvReader {
            buf: BytesMut::new(),
            state: ReadState::Header,
            header: None,
            max_tag_size: max_tag_size.min(MAX_TAG_DATA_SIZE),
        }
    }

    /// Appends input bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Bytes pushed but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete tag, `Ok(None)` if more bytes are needed, or an error for a
    /// malformed file (the same error again on every later call).
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        loop {
            match self.state {
                ReadState::Header => {
                    if self.buf.len() < FLV_HEADER_LEN {
                        return Ok(None);
                    }
                    let (header, offset) = FlvHeader::parse(&self.buf)?;
                    self.header = Some(header);
                    self.buf.advance(FLV_HEADER_LEN);
                    self.state = ReadState::Skip(u64::from(offset) - FLV_HEADER_LEN as u64 + 4);
                }
                ReadState::Skip(n) => {
                    let take = n.min(self.buf.len() as u64);
                    self.buf.advance(take as usize);
                    if take < n {
                        self.state = ReadState::Skip(n - take);
                        return Ok(None);
                    }
                    self.state = ReadState::Tags;
                }
                ReadState::Tags => return self.read_tag(),
            }
        }
    }

    fn read_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if self.buf.len() < TAG_HEADER_LEN {
            return Ok(None);
        }
        let h = &self.buf[..TAG_HEADER_LEN];
        if h[0] & 0x20 != 0 {
            return Err(FlvError::Unsupported {
                what: "encrypted FLV tag (filter bit)",
                value: u32::from(h[0]),
            });
        }
        let tag_type = TagType::from_id(h[0]);
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        if size > self.max_tag_size {
            return Err(FlvError::TooLarge {
                what: "FLV tag data",
                len: size,
                max: self.max_tag_size,
            });
        }
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let total = TAG_HEADER_LEN + size + 4;
        if self.buf.len() < total {
            // Reserve the rest of the tag once rather than growing in small steps.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(TAG_HEADER_LEN);
        let data = self.buf.split_to(size).freeze();
        // PreviousTagSize: informative only; writers in the wild get it wrong.
        self.buf.advance(4);
        Ok(Some(FlvTag {
            tag_type,
            timestamp,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file() -> (Vec<u8>, Vec<FlvTag>) {
        let tags = vec![
            FlvTag {
                tag_type: TagType::Script,
                timestamp: 0,
                data: Bytes::from_static(b"\x02\x00\x0aonMetaData\x05"),
            },
            FlvTag {
                tag_type: TagType::Video,
                timestamp: 40,
                data: Bytes::from_static(&[0x17, 1, 0, 0, 0, 9, 9, 9]),
            },
            FlvTag {
                tag_type: TagType::Audio,
                timestamp: 0x0123_4567,
                data: Bytes::from_static(&[0xAF, 1, 5]),
            },
        ];
        let mut out = BytesMut::new();
        out.put_slice(&FlvHeader::new(true, true).encode());
        for t in &tags {
            t.encode_into(&mut out).unwrap();
        }
        (out.to_vec(), tags)
    }

    #[test]
    fn write_then_read() {
        let (file, tags) = sample_file();
        assert_eq!(&file[..13], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        let mut r = FlvReader::new();
        r.push(&file);
        let mut got = Vec::new();
        while let Some(t) = r.next_tag().unwrap() {
            got.push(t);
        }
        assert_eq!(got, tags);
        assert_eq!(r.header(), Some(FlvHeader::new(true, true)));
        assert_eq!(r.buffered(), 0);
        // Extended timestamp byte lands in the high byte.
        assert_eq!(got[2].timestamp, 0x0123_4567);
    }

    #[test]
    fn byte_by_byte_feeding() {
        let (file, tags) = sample_file();
        let mut r = FlvReader::new();
        let mut got = Vec::new();
        for b in &file {
            r.push(std::slice::from_ref(b));
            while let Some(t) = r.next_tag().unwrap() {
                got.push(t);
            }
        }
        assert_eq!(got, tags);
    }

    #[test]
    fn data_offset_is_honoured() {
        let mut file = b"FLV\x01\x01\x00\x00\x00\x0c\xAA\xBB\xCC\x00\x00\x00\x00".to_vec();
        let tag = FlvTag {
            tag_type: TagType::Video,
            timestamp: 1,
            data: Bytes::from_static(&[0x27, 1, 0, 0, 0]),
        };
        let mut b = BytesMut::new();
        tag.encode_into(&mut b).unwrap();
        file.extend_from_slice(&b);
        let mut r = FlvReader::new();
        r.push(&file);
        assert_eq!(r.next_tag().unwrap(), Some(tag));
    }

    #[test]
    fn bad_files() {
        let mut r = FlvReader::new();
        r.push(b"FLX\x01\x05\x00\x00\x00\x09");
        assert!(r.next_tag().is_err());
        assert!(r.next_tag().is_err());

        let mut r = FlvReader::new();
        r.push(b"FLV\x01\x05\x00\x00\x00\x03");
        assert!(r.next_tag().is_err());

        let mut r = FlvReader::with_max_tag_size(100);
        r.push(&FlvHeader::new(true, true).encode());
        r.push(&[9, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(r.next_tag(), Err(FlvError::TooLarge { .. })));

        let mut r = FlvReader::new();
        r.push(&FlvHeader::new(true, true).encode());
        r.push(&[0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(r.next_tag(), Err(FlvError::Unsupported { .. })));
    }

    #[test]
    fn truncated_tag_waits() {
        let (file, _) = sample_file();
        let mut r = FlvReader::new();
        r.push(&file[..file.len() - 1]);
        assert!(r.next_tag().unwrap().is_some());
        assert!(r.next_tag().unwrap().is_some());
        assert!(r.next_tag().unwrap().is_none());
        r.push(&file[file.len() - 1..]);
        assert!(r.next_tag().unwrap().is_some());
    }

    #[test]
    fn tag_too_big_to_write() {
        let tag = FlvTag {
            tag_type: TagType::Video,
            timestamp: 0,
            data: Bytes::from(vec![0u8; MAX_TAG_DATA_SIZE + 1]),
        };
        assert!(tag.header_bytes().is_err());
    }
}
