//! FLV audio and video tag bodies: the bytes of an RTMP audio (type 8) or video (type 9)
//! message, or of an FLV file tag's data.
//!
//! Parsing slices the payload out of the input `Bytes` without copying. Writing produces only
//! the few header bytes ([`TagHeader`]) so a muxer can emit header then payload.

use std::ops::Deref;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::need;
use crate::FlvError;

/// At most 8 header bytes of a tag body, kept inline (no allocation). The default is empty.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TagHeader {
    buf: [u8; 8],
    len: u8,
}

impl TagHeader {
    fn new() -> Self {
        TagHeader {
            buf: [0; 8],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
                *slot = b;
                self.len += 1;
            }
        }
    }
}

impl Deref for TagHeader {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for TagHeader {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for TagHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TagHeader").field(&self.deref()).finish()
    }
}

/// Video frame type (the high nibble of the first byte; 3 bits in Enhanced RTMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// A random access point (IDR for H.264).
    Keyframe,
    /// A predicted frame.
    Inter,
    /// A disposable inter frame (H.263 only).
    DisposableInter,
    /// A generated keyframe (server use).
    GeneratedKeyframe,
    /// A video info / command frame, not a picture.
    Command,
}

impl FrameType {
    /// The 1..=5 wire value.
    pub fn id(self) -> u8 {
        match self {
            FrameType::Keyframe => 1,
            FrameType::Inter => 2,
            FrameType::DisposableInter => 3,
            FrameType::GeneratedKeyframe => 4,
            FrameType::Command => 5,
        }
    }

    fn from_id(id: u8) -> Result<Self, FlvError> {
        Ok(match id {
            1 => FrameType::Keyframe,
            2 => FrameType::Inter,
            3 => FrameType::DisposableInter,
            4 => FrameType::GeneratedKeyframe,
            5 => FrameType::Command,
            other => {
                return Err(FlvError::Unsupported {
                    what: "video frame type",
                    value: u32::from(other),
                })
            }
        })
    }
}

/// Video codec of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 (legacy codec id 7, or Enhanced RTMP FourCC `avc1`).
    Avc,
    /// H.265 (Enhanced RTMP FourCC `hvc1`).
    Hevc,
    /// AV1 (Enhanced RTMP FourCC `av01`).
    Av1,
    /// VP9 (Enhanced RTMP FourCC `vp09`).
    Vp9,
    /// Another legacy codec id (2 = Sorenson H.263, 4 = VP6, ...): payload passed through.
    Legacy(u8),
}

impl VideoCodec {
    /// The Enhanced RTMP FourCC, for codecs carried with `IsExHeader`.
    pub fn fourcc(self) -> Option<[u8; 4]> {
        match self {
            VideoCodec::Avc => Some(*b"avc1"),
            VideoCodec::Hevc => Some(*b"hvc1"),
            VideoCodec::Av1 => Some(*b"av01"),
            VideoCodec::Vp9 => Some(*b"vp09"),
            VideoCodec::Legacy(_) => None,
        }
    }

    fn from_fourcc(fourcc: [u8; 4]) -> Result<Self, FlvError> {
        Ok(match &fourcc {
            b"avc1" => VideoCodec::Avc,
            b"hvc1" => VideoCodec::Hevc,
            b"av01" => VideoCodec::Av1,
            b"vp09" => VideoCodec::Vp9,
            _ => {
                return Err(FlvError::Unsupported {
                    what: "video fourcc",
                    value: u32::from_be_bytes(fourcc),
                })
            }
        })
    }
}

/// What a video tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoPacketType {
    /// Decoder configuration (AVCDecoderConfigurationRecord / HEVCDecoderConfigurationRecord);
    /// Enhanced RTMP `SequenceStart`.
    SequenceHeader,
    /// Coded pictures (AVCC length-prefixed NAL units for H.264/H.265);
    /// Enhanced RTMP `CodedFrames` / `CodedFramesX`.
    CodedFrames,
    /// End of sequence; Enhanced RTMP `SequenceEnd`.
    EndOfSequence,
    /// The payload of a [`FrameType::Command`] frame (one command byte).
    Command,
}

const VIDEO_CODEC_AVC: u8 = 7;
const EX_SEQUENCE_START: u8 = 0;
const EX_CODED_FRAMES: u8 = 1;
const EX_SEQUENCE_END: u8 = 2;
const EX_CODED_FRAMES_X: u8 = 3;

/// Largest composition time offset representable in the signed 24-bit field.
pub const CTS_MAX: i32 = (1 << 23) - 1;
/// Smallest composition time offset representable in the signed 24-bit field.
pub const CTS_MIN: i32 = -(1 << 23);

fn read_si24(b: &[u8]) -> i32 {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    ((v << 8) as i32) >> 8
}

fn si24_bytes(v: i32) -> Result<[u8; 3], FlvError> {
    if !(CTS_MIN..=CTS_MAX).contains(&v) {
        return Err(FlvError::invalid(
            "composition time",
            "outside the signed 24-bit range",
        ));
    }
    let b = v.to_be_bytes();
    Ok([b[1], b[2], b[3]])
}

/// A parsed video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTag {
    /// The codec.
    pub codec: VideoCodec,
    /// Keyframe, inter frame, ...
    pub frame_type: FrameType,
    /// Sequence header, coded frames or end of sequence.
    pub packet: VideoPacketType,
    /// Composition time offset (pts - dts) in milliseconds; 0 where the format has none.
    pub cts_ms: i32,
    /// The codec payload after the tag header (a slice of the input, not a copy).
    pub payload: Bytes,
}

impl VideoTag {
    /// An H.264 sequence header tag carrying an AVCDecoderConfigurationRecord.
    pub fn avc_sequence_header(record: Bytes) -> Self {
        VideoTag {
            codec: VideoCodec::Avc,
            frame_type: FrameType::Keyframe,
            packet: VideoPacketType::SequenceHeader,
            cts_ms: 0,
            payload: record,
        }
    }

    /// An H.264 access unit in AVCC form.
    pub fn avc_frame(keyframe: bool, cts_ms: i32, avcc: Bytes) -> Self {
        VideoTag {
            codec: VideoCodec::Avc,
            frame_type: if keyframe {
                FrameType::Keyframe
            } else {
                FrameType::Inter
            },
            packet: VideoPacketType::CodedFrames,
            cts_ms,
            payload: avcc,
        }
    }

    /// Whether this tag is a keyframe carrying coded pictures.
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == FrameType::Keyframe && self.packet == VideoPacketType::CodedFrames
    }

    /// Whether this tag carries the decoder configuration.
    pub fn is_sequence_header(&self) -> bool {
        self.packet == VideoPacketType::SequenceHeader
    }

    /// Parses a video tag body. The payload is a zero-copy slice of `data`.
    pub fn parse(data: Bytes) -> Result<Self, FlvError> {
        need("video tag header", &data, 1)?;
        let b0 = data[0];
        if b0 & 0x80 != 0 {
            return Self::parse_ex(data);
        }
        let frame_type = FrameType::from_id((b0 >> 4) & 0x07)?;
        let codec_id = b0 & 0x0F;
        if frame_type == FrameType::Command {
            return Ok(VideoTag {
                codec: if codec_id == VIDEO_CODEC_AVC {
                    VideoCodec::Avc
                } else {
                    VideoCodec::Legacy(codec_id)
                },
                frame_type,
                packet: VideoPacketType::Command,
                cts_ms: 0,
                payload: data.slice(1..),
            });
        }
        if codec_id != VIDEO_CODEC_AVC {
            return Ok(VideoTag {
                codec: VideoCodec::Legacy(codec_id),
                frame_type,
                packet: VideoPacketType::CodedFrames,
                cts_ms: 0,
                payload: data.slice(1..),
            });
        }
        need("AVC video tag header", &data, 5)?;
        let packet = match data[1] {
            0 => VideoPacketType::SequenceHeader,
            1 => VideoPacketType::CodedFrames,
            2 => VideoPacketType::EndOfSequence,
            other => {
                return Err(FlvError::Unsupported {
                    what: "AVC packet type",
                    value: u32::from(other),
                })
            }
        };
        let cts_ms = read_si24(&data[2..5]);
        Ok(VideoTag {
            codec: VideoCodec::Avc,
            frame_type,
            packet,
            cts_ms,
            payload: data.slice(5..),
        })
    }

    fn parse_ex(data: Bytes) -> Result<Self, FlvError> {
        need("enhanced video tag header", &data, 5)?;
        let b0 = data[0];
        let frame_type = FrameType::from_id((b0 >> 4) & 0x07)?;
        let packet_type = b0 & 0x0F;
        let codec = VideoCodec::from_fourcc([data[1], data[2], data[3], data[4]])?;
        if frame_type == FrameType::Command && packet_type != 4 {
            return Ok(VideoTag {
                codec,
                frame_type,
                packet: VideoPacketType::Command,
                cts_ms: 0,
                payload: data.slice(5..),
            });
        }
        let (packet, cts_ms, start) = match packet_type {
            EX_SEQUENCE_START => (VideoPacketType::SequenceHeader, 0, 5),
            EX_CODED_FRAMES if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) => {
                need("enhanced video composition time", &data, 8)?;
                (VideoPacketType::CodedFrames, read_si24(&data[5..8]), 8)
            }
            EX_CODED_FRAMES | EX_CODED_FRAMES_X => (VideoPacketType::CodedFrames, 0, 5),
            EX_SEQUENCE_END => (VideoPacketType::EndOfSequence, 0, 5),
            other => {
                return Err(FlvError::Unsupported {
                    what: "enhanced video packet type",
                    value: u32::from(other),
                })
            }
        };
        Ok(VideoTag {
            codec,
            frame_type,
            packet,
            cts_ms,
            payload: data.slice(start..),
        })
    }

    /// The tag header bytes that precede [`VideoTag::payload`] on the wire.
    ///
    /// H.264 uses the legacy 5-byte header; H.265, AV1 and VP9 use the Enhanced RTMP header
    /// (H.265 coded frames with a zero composition time use `CodedFramesX`).
    pub fn header(&self) -> Result<TagHeader, FlvError> {
        let mut h = TagHeader::new();
        let ft = self.frame_type.id() << 4;
        match self.codec {
            VideoCodec::Legacy(id) => {
                if id > 0x0F {
                    return Err(FlvError::invalid("video codec id", "wider than 4 bits"));
                }
                h.push(&[ft | id]);
            }
            VideoCodec::Avc => {
                h.push(&[ft | VIDEO_CODEC_AVC]);
                let pt = match self.packet {
                    VideoPacketType::Command => return Ok(h),
                    VideoPacketType::SequenceHeader => 0,
                    VideoPacketType::CodedFrames => 1,
                    VideoPacketType::EndOfSequence => 2,
                };
                h.push(&[pt]);
                h.push(&si24_bytes(self.cts_ms)?);
            }
            VideoCodec::Hevc | VideoCodec::Av1 | VideoCodec::Vp9 => {
                let fourcc = self.codec.fourcc().unwrap_or(*b"\0\0\0\0");
                let with_cts = self.codec == VideoCodec::Hevc && self.cts_ms != 0;
                let pt = match self.packet {
                    VideoPacketType::SequenceHeader => EX_SEQUENCE_START,
                    VideoPacketType::CodedFrames if with_cts => EX_CODED_FRAMES,
                    VideoPacketType::CodedFrames if self.codec == VideoCodec::Hevc => {
                        EX_CODED_FRAMES_X
                    }
                    VideoPacketType::CodedFrames | VideoPacketType::Command => EX_CODED_FRAMES,
                    VideoPacketType::EndOfSequence => EX_SEQUENCE_END,
                };
                h.push(&[0x80 | ft | pt]);
                h.push(&fourcc);
                if pt == EX_CODED_FRAMES && with_cts && self.packet == VideoPacketType::CodedFrames
                {
                    h.push(&si24_bytes(self.cts_ms)?);
                }
            }
        }
        Ok(h)
    }

    /// Header followed by payload in one buffer (copies the payload once).
    pub fn encode(&self) -> Result<Bytes, FlvError> {
        let h = self.header()?;
        let mut out = BytesMut::with_capacity(h.len() + self.payload.len());
        out.put_slice(&h);
        out.put_slice(&self.payload);
        Ok(out.freeze())
    }
}

/// Audio sound format (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoundFormat {
    /// 0: linear PCM, platform endian.
    LinearPcm,
    /// 1: ADPCM.
    Adpcm,
    /// 2: MP3.
    Mp3,
    /// 3: linear PCM, little endian.
    LinearPcmLe,
    /// 4: Nellymoser 16 kHz mono.
    Nellymoser16kMono,
    /// 5: Nellymoser 8 kHz mono.
    Nellymoser8kMono,
    /// 6: Nellymoser.
    Nellymoser,
    /// 7: G.711 A-law.
    G711ALaw,
    /// 8: G.711 mu-law.
    G711MuLaw,
    /// 10: AAC.
    Aac,
    /// 11: Speex.
    Speex,
    /// 14: MP3 8 kHz.
    Mp38k,
    /// 15: device-specific sound.
    DeviceSpecific,
}

impl SoundFormat {
    /// The 4-bit wire value.
    pub fn id(self) -> u8 {
        match self {
            SoundFormat::LinearPcm => 0,
            SoundFormat::Adpcm => 1,
            SoundFormat::Mp3 => 2,
            SoundFormat::LinearPcmLe => 3,
            SoundFormat::Nellymoser16kMono => 4,
            SoundFormat::Nellymoser8kMono => 5,
            SoundFormat::Nellymoser => 6,
            SoundFormat::G711ALaw => 7,
            SoundFormat::G711MuLaw => 8,
            SoundFormat::Aac => 10,
            SoundFormat::Speex => 11,
            SoundFormat::Mp38k => 14,
            SoundFormat::DeviceSpecific => 15,
        }
    }

    fn from_id(id: u8) -> Result<Self, FlvError> {
        Ok(match id {
            0 => SoundFormat::LinearPcm,
            1 => SoundFormat::Adpcm,
            2 => SoundFormat::Mp3,
            3 => SoundFormat::LinearPcmLe,
            4 => SoundFormat::Nellymoser16kMono,
            5 => SoundFormat::Nellymoser8kMono,
            6 => SoundFormat::Nellymoser,
            7 => SoundFormat::G711ALaw,
            8 => SoundFormat::G711MuLaw,
            10 => SoundFormat::Aac,
            11 => SoundFormat::Speex,
            14 => SoundFormat::Mp38k,
            15 => SoundFormat::DeviceSpecific,
            other => {
                return Err(FlvError::Unsupported {
                    what: "audio sound format",
                    value: u32::from(other),
                })
            }
        })
    }
}

/// Nominal sample rate bits of an audio tag (AAC always says 44 kHz; the real rate is in the
/// AudioSpecificConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoundRate {
    /// 5.5 kHz.
    Khz5_5,
    /// 11 kHz.
    Khz11,
    /// 22 kHz.
    Khz22,
    /// 44 kHz.
    Khz44,
}

impl SoundRate {
    /// The 2-bit wire value.
    pub fn id(self) -> u8 {
        match self {
            SoundRate::Khz5_5 => 0,
            SoundRate::Khz11 => 1,
            SoundRate::Khz22 => 2,
            SoundRate::Khz44 => 3,
        }
    }

    fn from_id(id: u8) -> Self {
        match id & 3 {
            0 => SoundRate::Khz5_5,
            1 => SoundRate::Khz11,
            2 => SoundRate::Khz22,
            _ => SoundRate::Khz44,
        }
    }
}

/// What an audio tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioPacketType {
    /// AAC AudioSpecificConfig.
    SequenceHeader,
    /// Raw audio frame(s) (for AAC: one raw AAC frame, no ADTS header).
    Raw,
}

/// A parsed audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTag {
    /// The sound format.
    pub format: SoundFormat,
    /// Nominal sample rate bits.
    pub rate: SoundRate,
    /// Sample size: true for 16-bit, false for 8-bit.
    pub bits16: bool,
    /// Channels: true for stereo, false for mono.
    pub stereo: bool,
    /// Sequence header or raw data (non-AAC formats are always raw).
    pub packet: AudioPacketType,
    /// The payload after the tag header (a slice of the input, not a copy).
    pub payload: Bytes,
}

impl AudioTag {
    /// An AAC tag with the conventional header bits (44 kHz, 16-bit, stereo).
    pub fn aac(packet: AudioPacketType, payload: Bytes) -> Self {
        AudioTag {
            format: SoundFormat::Aac,
            rate: SoundRate::Khz44,
            bits16: true,
            stereo: true,
            packet,
            payload,
        }
    }

    /// Whether this tag carries the AAC AudioSpecificConfig.
    pub fn is_sequence_header(&self) -> bool {
        self.packet == AudioPacketType::SequenceHeader
    }

    /// Parses an audio tag body. The payload is a zero-copy slice of `data`.
    pub fn parse(data: Bytes) -> Result<Self, FlvError> {
        need("audio tag header", &data, 1)?;
        let b0 = data[0];
        let format_id = b0 >> 4;
        if format_id == 9 {
            return Err(FlvError::Unsupported {
                what: "enhanced audio (ExHeader)",
                value: 9,
            });
        }
        let format = SoundFormat::from_id(format_id)?;
        let rate = SoundRate::from_id((b0 >> 2) & 3);
        let bits16 = b0 & 0x02 != 0;
        let stereo = b0 & 0x01 != 0;
        if format != SoundFormat::Aac {
            return Ok(AudioTag {
                format,
                rate,
                bits16,
                stereo,
                packet: AudioPacketType::Raw,
                payload: data.slice(1..),
            });
        }
        need("AAC audio tag header", &data, 2)?;
        let packet = match data[1] {
            0 => AudioPacketType::SequenceHeader,
            1 => AudioPacketType::Raw,
            other => {
                return Err(FlvError::Unsupported {
                    what: "AAC packet type",
                    value: u32::from(other),
                })
            }
        };
        Ok(AudioTag {
            format,
            rate,
            bits16,
            stereo,
            packet,
            payload: data.slice(2..),
        })
    }

    /// The tag header bytes that precede [`AudioTag::payload`] on the wire (1 or 2 bytes).
    pub fn header(&self) -> TagHeader {
        let mut h = TagHeader::new();
        h.push(&[(self.format.id() << 4)
            | (self.rate.id() << 2)
            | (u8::from(self.bits16) << 1)
            | u8::from(self.stereo)]);
        if self.format == SoundFormat::Aac {
            h.push(&[match self.packet {
                AudioPacketType::SequenceHeader => 0,
                AudioPacketType::Raw => 1,
            }]);
        }
        h
    }

    /// Header followed by payload in one buffer (copies the payload once).
    pub fn encode(&self) -> Bytes {
        let h = self.header();
        let mut out = BytesMut::with_capacity(h.len() + self.payload.len());
        out.put_slice(&h);
        out.put_slice(&self.payload);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_nalu_tag_parses() {
        let data = Bytes::from_static(&[0x17, 0x01, 0x00, 0x00, 0x28, 0xAA, 0xBB]);
        let tag = VideoTag::parse(data.clone()).unwrap();
        assert_eq!(tag.codec, VideoCodec::Avc);
        assert_eq!(tag.frame_type, FrameType::Keyframe);
        assert_eq!(tag.packet, VideoPacketType::CodedFrames);
        assert_eq!(tag.cts_ms, 40);
        assert_eq!(&tag.payload[..], &[0xAA, 0xBB]);
        assert!(tag.is_keyframe());
        // Zero-copy: the payload points into the input buffer.
        assert_eq!(tag.payload.as_ptr(), data[5..].as_ptr());
        assert_eq!(tag.encode().unwrap(), data);
    }

    #[test]
    fn negative_composition_time() {
        let data = Bytes::from_static(&[0x27, 0x01, 0xFF, 0xFF, 0xD8]);
        let tag = VideoTag::parse(data.clone()).unwrap();
        assert_eq!(tag.cts_ms, -40);
        assert_eq!(tag.frame_type, FrameType::Inter);
        assert_eq!(tag.encode().unwrap(), data);
    }

    #[test]
    fn cts_round_trip_extremes() {
        for cts in [CTS_MIN, -1, 0, 1, CTS_MAX] {
            let tag = VideoTag::avc_frame(false, cts, Bytes::from_static(b"x"));
            let back = VideoTag::parse(tag.encode().unwrap()).unwrap();
            assert_eq!(back, tag);
        }
        let tag = VideoTag::avc_frame(false, CTS_MAX + 1, Bytes::new());
        assert!(tag.header().is_err());
    }

    #[test]
    fn avc_sequence_header_and_eos() {
        let tag = VideoTag::avc_sequence_header(Bytes::from_static(&[1, 2, 3]));
        let enc = tag.encode().unwrap();
        assert_eq!(&enc[..5], &[0x17, 0, 0, 0, 0]);
        assert!(VideoTag::parse(enc).unwrap().is_sequence_header());
        let eos = VideoTag::parse(Bytes::from_static(&[0x17, 2, 0, 0, 0])).unwrap();
        assert_eq!(eos.packet, VideoPacketType::EndOfSequence);
    }

    #[test]
    fn enhanced_hevc_tags() {
        // SequenceStart, keyframe.
        let mut d = vec![0x80 | 0x10 | EX_SEQUENCE_START];
        d.extend_from_slice(b"hvc1");
        d.extend_from_slice(&[9, 9]);
        let tag = VideoTag::parse(Bytes::from(d.clone())).unwrap();
        assert_eq!(tag.codec, VideoCodec::Hevc);
        assert_eq!(tag.packet, VideoPacketType::SequenceHeader);
        assert_eq!(&tag.payload[..], &[9, 9]);
        assert_eq!(&tag.encode().unwrap()[..], &d[..]);

        // CodedFrames with a composition time.
        let mut d = vec![0x80 | 0x20 | EX_CODED_FRAMES];
        d.extend_from_slice(b"hvc1");
        d.extend_from_slice(&[0, 0, 80, 7]);
        let tag = VideoTag::parse(Bytes::from(d.clone())).unwrap();
        assert_eq!(tag.cts_ms, 80);
        assert_eq!(tag.frame_type, FrameType::Inter);
        assert_eq!(&tag.payload[..], &[7]);
        assert_eq!(&tag.encode().unwrap()[..], &d[..]);

        // CodedFramesX: no composition time.
        let mut d = vec![0x80 | 0x10 | EX_CODED_FRAMES_X];
        d.extend_from_slice(b"hvc1");
        d.push(5);
        let tag = VideoTag::parse(Bytes::from(d.clone())).unwrap();
        assert_eq!(tag.packet, VideoPacketType::CodedFrames);
        assert_eq!(tag.cts_ms, 0);
        assert!(tag.is_keyframe());
        assert_eq!(&tag.encode().unwrap()[..], &d[..]);

        // SequenceEnd.
        let mut d = vec![0x80 | 0x10 | EX_SEQUENCE_END];
        d.extend_from_slice(b"hvc1");
        let tag = VideoTag::parse(Bytes::from(d.clone())).unwrap();
        assert_eq!(tag.packet, VideoPacketType::EndOfSequence);
        assert_eq!(&tag.encode().unwrap()[..], &d[..]);
    }

    #[test]
    fn enhanced_unknown_fourcc_and_packet_type_rejected() {
        let mut d = vec![0x90];
        d.extend_from_slice(b"xxxx");
        assert!(matches!(
            VideoTag::parse(Bytes::from(d)),
            Err(FlvError::Unsupported { .. })
        ));
        let mut d = vec![0x90 | 6];
        d.extend_from_slice(b"hvc1");
        assert!(matches!(
            VideoTag::parse(Bytes::from(d)),
            Err(FlvError::Unsupported { .. })
        ));
    }

    #[test]
    fn truncated_video_tags() {
        for d in [
            &[][..],
            &[0x17][..],
            &[0x17, 1, 0, 0][..],
            &[0x91, b'h', b'v'][..],
        ] {
            assert!(matches!(
                VideoTag::parse(Bytes::copy_from_slice(d)),
                Err(FlvError::Truncated { .. })
            ));
        }
        let mut d = vec![0x80 | 0x10 | EX_CODED_FRAMES];
        d.extend_from_slice(b"hvc1");
        d.push(0);
        assert!(VideoTag::parse(Bytes::from(d)).is_err());
        // Frame type 0 is not defined.
        assert!(VideoTag::parse(Bytes::from_static(&[0x07, 1, 0, 0, 0])).is_err());
    }

    #[test]
    fn legacy_codec_and_command_frames() {
        let tag = VideoTag::parse(Bytes::from_static(&[0x22, 1, 2])).unwrap();
        assert_eq!(tag.codec, VideoCodec::Legacy(2));
        assert_eq!(&tag.payload[..], &[1, 2]);
        assert_eq!(&tag.encode().unwrap()[..], &[0x22, 1, 2]);
        let cmd = VideoTag::parse(Bytes::from_static(&[0x57, 0])).unwrap();
        assert_eq!(cmd.packet, VideoPacketType::Command);
        assert_eq!(&cmd.encode().unwrap()[..], &[0x57, 0]);
    }

    #[test]
    fn aac_tags() {
        let data = Bytes::from_static(&[0xAF, 0x00, 0x12, 0x10]);
        let tag = AudioTag::parse(data.clone()).unwrap();
        assert_eq!(tag.format, SoundFormat::Aac);
        assert_eq!(tag.rate, SoundRate::Khz44);
        assert!(tag.bits16 && tag.stereo);
        assert!(tag.is_sequence_header());
        assert_eq!(&tag.payload[..], &[0x12, 0x10]);
        assert_eq!(tag.encode(), data);
        let raw = AudioTag::aac(AudioPacketType::Raw, Bytes::from_static(&[1, 2, 3]));
        assert_eq!(&raw.encode()[..], &[0xAF, 0x01, 1, 2, 3]);
        assert_eq!(AudioTag::parse(raw.encode()).unwrap(), raw);
    }

    #[test]
    fn mp3_and_bad_audio() {
        let tag = AudioTag::parse(Bytes::from_static(&[0x2E, 9])).unwrap();
        assert_eq!(tag.format, SoundFormat::Mp3);
        assert_eq!(tag.rate, SoundRate::Khz44);
        assert!(tag.bits16 && !tag.stereo);
        assert_eq!(&tag.payload[..], &[9]);
        assert_eq!(&tag.encode()[..], &[0x2E, 9]);
        assert!(AudioTag::parse(Bytes::new()).is_err());
        assert!(AudioTag::parse(Bytes::from_static(&[0xAF])).is_err());
        assert!(AudioTag::parse(Bytes::from_static(&[0xAF, 7])).is_err());
        assert!(AudioTag::parse(Bytes::from_static(&[0x9F, 0])).is_err());
        assert!(AudioTag::parse(Bytes::from_static(&[0xCF, 0])).is_err());
    }
}
