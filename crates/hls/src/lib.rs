//! Sans-IO HLS packager: access units in; fMP4 init segments, media segments, LL-HLS
//! partial segments and playlist text out.
//!
//! This crate owns:
//! - the fMP4 writer ([`fmp4`]): `ftyp` + `moov` init segments, `styp`, and `moof` + `mdat`
//!   fragments (`tfdt` v1, `trun` v1 with durations, sizes, sync flags and signed composition
//!   offsets);
//! - the segmenter ([`Packager`], one per rendition): segments cut on video keyframes once the
//!   target duration is reached (on time for audio-only streams), LL-HLS parts cut at the part
//!   target, sample durations from the next sample of the same track (one sample held back per
//!   track), discontinuities with init segment versions, a rolling window, and the bytes of
//!   the listed segments plus a small grace;
//! - playlists: the media playlist ([`Packager::media_playlist`]: live, LL-HLS or not, or a
//!   growing `EVENT`/`VOD` playlist for recordings), the master playlist
//!   ([`master_playlist`]), `CODECS` strings ([`StreamConfig::codecs`]), the answer to blocking
//!   reloads ([`Packager::reload_status`]);
//! - [`validate`]: a media playlist parser and checker for tests and end-to-end tests.
//!
//! It does no IO: no sockets, files, clocks or tasks. The caller feeds samples with the wall
//! clock of their arrival, drains [`Event`]s, and serves or stores what the query methods
//! return (`/hls/{channel}/index.m3u8` from [`master_playlist`],
//! `/hls/{channel}/{rendition}/media.m3u8` from [`Packager::media_playlist`], the files from
//! [`Packager::segment`]). Codec configuration records are parsed by `lunora-flv`.
//!
//! # Model
//!
//! - One rendition is one fMP4 stream with video (`track_ID` 1, 90 kHz) and audio (`track_ID`
//!   2, at its sampling rate) multiplexed in every fragment: one playlist per rendition, one
//!   request per part, audio and video always cut together. (Separate audio renditions would
//!   be CMAF proper and would not repeat the audio in every video rendition.)
//! - Names (relative URIs): `init-{version}.mp4`, `seg-{msn}.m4s`, `part-{msn}.{part}.m4s`.
//!   A segment's bytes are `styp` followed by its parts' bytes.
//! - The output timeline starts at 0 at the first keyframe and stays continuous across
//!   discontinuities whatever the new source's timestamps are.

pub mod fmp4;
pub mod validate;

mod config;
mod error;
mod packager;
mod playlist;

pub use config::{AudioConfig, Sample, StreamConfig, Track, VideoConfig, TIMESCALE};
pub use error::HlsError;
pub use packager::{
    Event, Packager, PackagerOptions, PlaylistKind, ReloadStatus, MAX_SEGMENT_BYTES,
};
pub use playlist::{
    init_uri, master_playlist, part_uri, program_date_time, segment_uri, Rendition, Resource,
    VERSION,
};
