//! Error types. Each is a reason a server logs when it closes a connection.

/// Why the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// C0/S0 carried a version other than 3 (6 and 8 are RTMPE, unsupported).
    #[error("unsupported RTMP version {0} (only 3 is supported; RTMPE is not)")]
    UnsupportedVersion(u8),
    /// The server's S1 carried a digest but S2's signature does not match our C1 digest.
    #[error("server S2 signature does not match the C1 digest")]
    S2SignatureMismatch,
}

/// Why an AMF0 value could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    /// The data ended inside a value.
    #[error("truncated AMF0 data")]
    Truncated,
    /// A type marker this decoder does not know.
    #[error("unknown AMF0 type marker {0:#04x}")]
    UnknownMarker(u8),
    /// The AVM+ marker (0x11) switching to AMF3, which is not supported.
    #[error("AMF3 values (AVM+ switch marker) are not supported")]
    Amf3NotSupported,
    /// Objects/arrays nested deeper than the limit.
    #[error("AMF0 nesting deeper than {0}")]
    TooDeep(usize),
    /// More values in one decode than the limit.
    #[error("more than {0} AMF0 values")]
    TooManyValues(usize),
    /// A string too long for its encoding (object keys are limited to 65535 bytes).
    #[error("AMF0 string of {0} bytes is too long")]
    StringTooLong(usize),
    /// A value of the wrong type where the protocol expects a specific one.
    #[error("unexpected AMF0 value: {0}")]
    Unexpected(&'static str),
}

/// An RTMP failure. After one is returned from `handle_input`, the session is closed: later
/// input returns [`RtmpError::Closed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtmpError {
    /// The handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer sent Set Chunk Size with 0 or with the high bit set.
    #[error("invalid chunk size {0} (must be 1..=0x7FFFFFFF)")]
    ChunkSizeInvalid(u32),
    /// A message longer than the configured maximum.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// Declared message length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// Partially received messages hold more bytes than the configured limit.
    #[error("{buffered} bytes of partial messages exceed the {max}-byte limit")]
    BufferLimit {
        /// Bytes that would be buffered.
        buffered: usize,
        /// Configured limit.
        max: usize,
    },
    /// More chunk streams in use than the configured limit.
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    /// Bad AMF0 in a command or data message.
    #[error("AMF0 error: {0}")]
    Amf(#[from] AmfError),
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The caller asked for something the session's state does not allow (e.g.
    /// `accept_publish` with no publish request pending). The session stays usable.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// The session already failed; it accepts no more input.
    #[error("session closed after an earlier error")]
    Closed,
}

impl RtmpError {
    /// A stable snake_case name of the error's kind, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            RtmpError::Handshake(_) => "handshake",
            RtmpError::ChunkSizeInvalid(_) => "chunk_size_invalid",
            RtmpError::MessageTooLarge { .. } => "message_too_large",
            RtmpError::BufferLimit { .. } => "buffer_limit",
            RtmpError::TooManyChunkStreams(_) => "too_many_chunk_streams",
            RtmpError::Amf(_) => "amf",
            RtmpError::Protocol(_) => "protocol",
            RtmpError::InvalidState(_) => "invalid_state",
            RtmpError::Closed => "closed",
        }
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        RtmpError::Protocol(msg.into())
    }
}
