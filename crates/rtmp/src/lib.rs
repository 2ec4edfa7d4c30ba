//! Sans-IO RTMP: the handshake, the chunk stream layer, AMF0, and server and client session
//! state machines.
//!
//! This crate owns:
//! - the handshake ([`ServerHandshake`], [`ClientHandshake`]): simple and Flash Player 9
//!   digest (HMAC-SHA256 with the Genuine FMS/FP keys, implemented in-crate);
//! - chunking: [`ChunkDecoder`] (all header forms, extended timestamps, Set Chunk Size,
//!   Abort, bounded reassembly) and [`encode_message`] (encode once, send many);
//! - [`amf0`] encoding/decoding with bounded depth and value counts;
//! - messages: protocol control, [`UserControl`], [`Command`], aggregate splitting;
//! - sessions: [`ServerSession`] (connect, createStream, publish/play decided by the driver,
//!   media events and sending) and [`ClientSession`] (connect, publish or play, ack
//!   tracking), both `handle_input(&[u8])` / `poll_event()` / `poll_transmit()`.
//!
//! It does not own: sockets, TLS, timers or clocks (the driver feeds bytes, writes
//! `poll_transmit` output, and decides timeouts, e.g. from [`ConnectionStats`]), randomness
//! (the driver passes a seed), FLV tag parsing (the `lunora-flv` crate), stream key
//! authorization, and fan-out to many players (the media engine; this crate only makes the
//! shared [`encode_message`] buffer possible). RTMPE, AMF3 values and shared objects are not
//! supported. Hostile input yields an [`RtmpError`] or waits for more bytes; it never panics
//! and memory stays within [`ChunkLimits`].

pub mod amf0;
mod chunk;
mod client;
mod conn;
mod crypto;
mod error;
mod handshake;
mod message;
mod server;
mod url;

pub use amf0::{Amf0Object, Amf0Value};
pub use chunk::{
    encode_message, encode_message_into, encode_message_shared, encode_parts_into, encoded_len,
    validate_chunk_size, ChunkDecoder, ChunkLimits, SharedChunks, DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE, MAX_MESSAGE_LEN_FIELD,
};
pub use client::{ClientConfig, ClientEvent, ClientRole, ClientSession};
pub use conn::ConnectionStats;
pub use error::{AmfError, HandshakeError, RtmpError};
pub use handshake::{
    ClientHandshake, HandshakeMode, ServerHandshake, HANDSHAKE_SIZE, RTMP_VERSION,
};
pub use message::{csid, msg_type, split_aggregate, BandwidthLimit, Command, Message, UserControl};
pub use server::{PlayRejection, PublishRejection, ServerConfig, ServerEvent, ServerSession};
pub use url::{RtmpUrl, UrlError};
