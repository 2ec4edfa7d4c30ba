//! The Lunora live media engine.
//!
//! It owns the media path of every live stream: [`Engine`] is the registry of [`Channel`]s; a
//! channel's inputs attach through [`Channel::attach_input`] and feed [`Frame`]s via an
//! [`InputHandle`]; a switch (today: single input, with takeover by a reconnecting encoder)
//! picks the active input and rebases its timestamps onto one continuous output timeline; the
//! channel's [`bus`] fans frames out to every output (destinations, HLS packager, recorder, RTMP
//! players, transcoder feeds) with a GOP cache for instant start and bounded per-subscriber
//! queues that skip to the next keyframe instead of holding the publisher.
//!
//! The engine knows nothing of HTTP, SQL or JSON APIs: the control plane drives it through this
//! small API (open/close channels, attach inputs, subscribe, read status). Protocol and
//! container codecs live in their own sans-IO crates; frames here are codec-level units with
//! 90 kHz timestamps and shared `bytes::Bytes` payloads, never copied per subscriber.

pub mod bus;
pub mod channel;
pub mod engine;
pub mod failover;
pub mod flv;
pub mod frame;
pub mod hls;
pub mod push;
pub mod recorder;
pub mod rtmp_server;
pub mod srt_server;
mod switch;
pub mod transcode;
pub mod ts_ingest;
pub mod wire_file;

pub use bus::{Bus, BusConfig, BusSender, StartAt, SubscribeOptions, Subscription};
pub use channel::{
    AttachError, AttachMode, AudioInfo, Channel, ChannelStatus, InputHandle, InputState, SendError,
    VideoInfo,
};
pub use engine::{Engine, EngineConfig, EngineError, EngineHealth};
pub use failover::{
    ChannelEvent, FillState, RedundancyConfig, RedundancyMode, SourceState, SourcesStatus,
    SwitchError, SwitchReason, TransportStats,
};
pub use frame::{Codec, Frame, Track, WireCache, WireForm, WireKey, TIMESCALE};
pub use transcode::{Rendition, RenditionMode, RenditionState, RenditionStatus, TranscodeConfig};
