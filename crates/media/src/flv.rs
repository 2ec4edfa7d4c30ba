//! Between FLV tag bodies (what RTMP audio/video messages carry) and [`Frame`]s.
//!
//! Ingest turns each tag into a frame with 90 kHz timestamps; outputs that speak RTMP or FLV
//! (players, destinations, the FFmpeg feed) turn frames back into tag bodies — once per frame,
//! shared by every peer through the frame's wire cache.

use bytes::{Bytes, BytesMut};
use lunora_flv::{
    AudioPacketType, AudioTag, FrameType, SoundFormat, TagHeader, VideoCodec, VideoPacketType,
    VideoTag,
};

use crate::frame::{Codec, Frame, Track};

/// Milliseconds to 90 kHz ticks.
pub fn ms_to_ticks(ms: i64) -> i64 {
    ms * 90
}

/// 90 kHz ticks to milliseconds (rounded down), as RTMP timestamps.
pub fn ticks_to_ms(ticks: i64) -> i64 {
    ticks.div_euclid(90)
}

/// Why a tag did not become a frame. Callers log the first of each kind and drop the tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("malformed FLV tag: {0}")]
    Malformed(String),
    #[error("unsupported codec: {0}")]
    Unsupported(String),
}

/// A video tag body received at `timestamp_ms` as a frame, or `None` for tags that carry no
/// media (end of sequence, commands).
pub fn frame_from_video(timestamp_ms: u32, body: Bytes) -> Result<Option<Frame>, TagError> {
    let tag = VideoTag::parse(body).map_err(|e| TagError::Malformed(e.to_string()))?;
    let codec = match tag.codec {
        VideoCodec::Avc => Codec::H264,
        VideoCodec::Hevc => Codec::Hevc,
        other => return Err(TagError::Unsupported(format!("video {other:?}"))),
    };
    let dts = ms_to_ticks(i64::from(timestamp_ms));
    Ok(match tag.packet {
        VideoPacketType::SequenceHeader => Some(Frame::new(
            Track::Video,
            codec,
            true,
            false,
            dts,
            dts,
            tag.payload,
        )),
        VideoPacketType::CodedFrames => {
            if tag.payload.is_empty() {
                return Ok(None);
            }
            let pts = dts + ms_to_ticks(i64::from(tag.cts_ms));
            Some(Frame::video(
                codec,
                tag.frame_type == FrameType::Keyframe,
                dts,
                pts,
                tag.payload,
            ))
        }
        VideoPacketType::EndOfSequence | VideoPacketType::Command => None,
    })
}

/// An audio tag body received at `timestamp_ms` as a frame.
pub fn frame_from_audio(timestamp_ms: u32, body: Bytes) -> Result<Option<Frame>, TagError> {
    let tag = AudioTag::parse(body).map_err(|e| TagError::Malformed(e.to_string()))?;
    if tag.format != SoundFormat::Aac {
        return Err(TagError::Unsupported(format!("audio {:?}", tag.format)));
    }
    let dts = ms_to_ticks(i64::from(timestamp_ms));
    Ok(match tag.packet {
        AudioPacketType::SequenceHeader => Some(Frame::new(
            Track::Audio,
            Codec::Aac,
            true,
            false,
            dts,
            dts,
            tag.payload,
        )),
        AudioPacketType::Raw if tag.payload.is_empty() => None,
        AudioPacketType::Raw => Some(Frame::audio(dts, tag.payload)),
    })
}

/// The FLV tag body of a frame: its small tag header followed by the payload (one copy).
pub fn tag_body(frame: &Frame) -> Bytes {
    let header = tag_header(frame);
    let mut out = BytesMut::with_capacity(header.len() + frame.data.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&frame.data);
    out.freeze()
}

/// The FLV tag header that goes before a frame's payload in its tag body (a few bytes, inline:
/// this runs once per frame).
pub fn tag_header(frame: &Frame) -> TagHeader {
    match frame.track {
        Track::Video => {
            let codec = match frame.codec {
                Codec::Hevc => VideoCodec::Hevc,
                _ => VideoCodec::Avc,
            };
            let cts = ticks_to_ms(frame.pts - frame.dts).clamp(
                i64::from(lunora_flv::CTS_MIN),
                i64::from(lunora_flv::CTS_MAX),
            ) as i32;
            let tag = VideoTag {
                codec,
                frame_type: if frame.config || frame.keyframe {
                    FrameType::Keyframe
                } else {
                    FrameType::Inter
                },
                packet: if frame.config {
                    VideoPacketType::SequenceHeader
                } else {
                    VideoPacketType::CodedFrames
                },
                cts_ms: if frame.config { 0 } else { cts },
                payload: Bytes::new(),
            };
            tag.header().unwrap_or_default()
        }
        Track::Audio => AudioTag::aac(
            if frame.config {
                AudioPacketType::SequenceHeader
            } else {
                AudioPacketType::Raw
            },
            Bytes::new(),
        )
        .header(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_round_trip_keeps_timestamps_and_flags() {
        let f = Frame::video(
            Codec::H264,
            true,
            9000,
            12600,
            Bytes::from_static(b"\0\0\0\x01\x65"),
        );
        let body = tag_body(&f);
        assert_eq!(&body[..2], &[0x17, 0x01]);
        let back = frame_from_video(100, body).unwrap().unwrap();
        assert_eq!((back.dts, back.pts, back.keyframe), (9000, 12600, true));
        assert_eq!(back.data, f.data);
    }

    #[test]
    fn configs_and_audio_round_trip() {
        let cfg = Frame::video_config(Codec::H264, Bytes::from_static(b"\x01\x64\x00\x1f"));
        let back = frame_from_video(0, tag_body(&cfg)).unwrap().unwrap();
        assert!(back.config && back.track == Track::Video);
        let asc = Frame::audio_config(Bytes::from_static(b"\x12\x10"));
        let back = frame_from_audio(0, tag_body(&asc)).unwrap().unwrap();
        assert!(back.config && back.track == Track::Audio);
        let a = Frame::audio(900, Bytes::from_static(b"aac"));
        let back = frame_from_audio(10, tag_body(&a)).unwrap().unwrap();
        assert_eq!((back.dts, &back.data[..]), (900, &b"aac"[..]));
    }

    #[test]
    fn bad_tags_are_errors_not_panics() {
        assert!(frame_from_video(0, Bytes::new()).is_err());
        assert!(frame_from_audio(0, Bytes::from_static(&[0x2f, 0x01])).is_err());
        assert!(frame_from_video(0, Bytes::from_static(&[0x17])).is_err());
    }
}
