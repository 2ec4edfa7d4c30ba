//! Sans-IO FLV: the tag bodies that RTMP audio/video messages and FLV files carry, the codec
//! configuration records inside them, and the FLV file container.
//!
//! This crate owns:
//! - audio/video tag headers ([`AudioTag`], [`VideoTag`]), legacy H.264 and Enhanced RTMP
//!   (`IsExHeader` + FourCC: H.265 `hvc1`, plus `av01`/`vp09` pass-through), parsed with
//!   zero-copy payloads and written as small inline headers;
//! - H.264 configuration: [`AvcDecoderConfigurationRecord`], a bounded [`Sps`] parser
//!   (size with cropping, profile, level, VUI frame rate), Annex B <-> AVCC conversion;
//! - AAC configuration: [`AudioSpecificConfig`], ADTS header parse/build/strip;
//! - the FLV file container: [`FlvReader`] (streaming, push bytes / pull tags) and writing
//!   helpers on [`FlvHeader`] and [`FlvTag`].
//!
//! It does not own: sockets or files (callers feed bytes), AMF0 script data (the
//! `lunora-rtmp` crate decodes it), RTMP chunking, MPEG-TS, timestamps rebasing, or decoding
//! pictures and sound. Every parser bounds its reads and returns [`FlvError`] on bad input;
//! none panics.

mod aac;
mod avc;
mod bits;
mod error;
mod file;
mod tag;

pub use aac::{
    sampling_frequency_index, AdtsFrames, AdtsHeader, AudioSpecificConfig, ADTS_HEADER_LEN,
    SAMPLING_FREQUENCIES,
};
pub use avc::{
    annexb_nalus, annexb_to_avcc, avcc_to_annexb, nal_type, nal_unit_type, AccessUnit, AnnexBNalus,
    AvcDecoderConfigurationRecord, AvcHighProfileExt, AvccNalus, Sps,
};
pub use bits::nal_to_rbsp;
pub use error::FlvError;
pub use file::{
    FlvHeader, FlvReader, FlvTag, TagType, FLV_HEADER_LEN, MAX_TAG_DATA_SIZE, TAG_HEADER_LEN,
};
pub use tag::{
    AudioPacketType, AudioTag, FrameType, SoundFormat, SoundRate, TagHeader, VideoCodec,
    VideoPacketType, VideoTag, CTS_MAX, CTS_MIN,
};
