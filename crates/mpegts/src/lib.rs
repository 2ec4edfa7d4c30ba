//! Sans-IO MPEG-TS (ISO/IEC 13818-1): the container SRT ingest carries (encoders such as OBS,
//! FFmpeg, Videon and srt-live-transmit send 188-byte packets, often 7 per datagram), and
//! the one a future SRT/TS output writes.
//!
//! This crate owns:
//! - the [`Demuxer`]: push bytes in any chunking, poll [`TsEvent`]s. It finds packet
//!   boundaries and finds them again after garbage, follows the first program of the PAT and
//!   its PMT ([`StreamInfo`]: H.264 0x1B, HEVC 0x24, AAC ADTS 0x0F; anything else listed as
//!   unsupported), reassembles PES packets into access units with unwrapped 90 kHz
//!   timestamps ([`TimestampUnwrapper`]) and keyframe flags, checks continuity counters
//!   ([`TsEvent::Discontinuity`]) and bounds its memory ([`DemuxerConfig`]);
//! - the [`Muxer`]: access units in, packets out (PAT/PMT, PCR, PES, stuffing, continuity
//!   counters);
//! - the little codec knowledge MPEG-TS ingest adds to `lunora-flv`: random access points in
//!   H.264/HEVC Annex B access units ([`h264_is_keyframe`], [`hevc_is_keyframe`]) and
//!   splitting an ADTS PES payload into frames each with its own PTS ([`split_adts`]).
//!
//! It does not own: sockets, SRT itself, clocks or files (callers feed bytes and take bytes);
//! Annex B <-> AVCC conversion, codec configuration records, SPS and ADTS header parsing
//! (`lunora-flv` has them); rebasing timestamps onto a channel's timeline (the engine's
//! switch); PCR-based clock recovery; multi-program streams, 192/204-byte packets, scrambled
//! streams, LATM AAC and other codecs (reported, not decoded). Every parser bounds its reads
//! and reports bad input as [`TsError`]; none panics.

mod codec;
mod demux;
mod error;
mod mux;
mod packet;
mod pes;
mod psi;
mod timestamp;

pub use codec::{h264_is_keyframe, hevc_is_keyframe, split_adts, AacFrame, AdtsSplit};
pub use demux::{
    AudioCodec, DemuxStats, Demuxer, DemuxerConfig, Program, StreamInfo, StreamKind, TsEvent,
    VideoCodec, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_AAC_LATM, STREAM_TYPE_H264, STREAM_TYPE_HEVC,
};
pub use error::TsError;
pub use mux::{Muxer, MuxerConfig};
pub use packet::{CLOCK_HZ, NULL_PID, PAT_PID, SYNC_BYTE, TS_PACKET_LEN};
pub use timestamp::TimestampUnwrapper;
