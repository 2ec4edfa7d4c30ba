//! The one error type of this crate.

/// A recoverable problem in a transport stream, or a muxer call that cannot be honoured.
///
/// The demuxer never stops on an error: it reports it as [`crate::TsEvent::Error`], drops
/// what it cannot trust (a packet, a section, a PES) and carries on. Every variant names the
/// PID at fault where there is one, so that a server can log it with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    /// A packet did not start with the sync byte 0x47; the demuxer is looking for the next
    /// plausible packet boundary.
    #[error("sync lost at stream offset {offset}")]
    SyncLost {
        /// Byte offset in the pushed stream where the sync byte was missing.
        offset: u64,
    },
    /// The packet's transport_error_indicator is set (the link layer flagged it corrupt); it
    /// was dropped.
    #[error("transport error indicator set on PID {pid:#x}")]
    TransportError {
        /// The PID of the dropped packet.
        pid: u16,
    },
    /// The packet is scrambled (transport_scrambling_control != 0); it was dropped.
    #[error("scrambled packet on PID {pid:#x}")]
    Scrambled {
        /// The PID of the dropped packet.
        pid: u16,
    },
    /// The adaptation field is longer than the packet allows or its fields overrun it; the
    /// packet was dropped.
    #[error("invalid adaptation field on PID {pid:#x}: {reason}")]
    InvalidAdaptationField {
        /// The PID of the dropped packet.
        pid: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A PSI section (PAT or PMT) is malformed; it was ignored.
    #[error("invalid PSI section on PID {pid:#x}: {reason}")]
    InvalidSection {
        /// The PID carrying the section.
        pid: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A PSI section's CRC32 does not match; it was ignored.
    #[error("CRC mismatch in PSI section on PID {pid:#x}")]
    CrcMismatch {
        /// The PID carrying the section.
        pid: u16,
    },
    /// The PMT lists more elementary streams than the demuxer tracks; the extra ones are
    /// ignored.
    #[error("PMT lists {count} streams, only the first {max} are tracked")]
    TooManyStreams {
        /// Streams in the PMT.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// A PES packet is malformed; it was dropped.
    #[error("invalid PES on PID {pid:#x}: {reason}")]
    InvalidPes {
        /// The elementary stream's PID.
        pid: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A PES packet grew past the configured limit; it was dropped and the stream waits for
    /// the next payload unit start.
    #[error("PES on PID {pid:#x} larger than {max} bytes")]
    PesTooLarge {
        /// The elementary stream's PID.
        pid: u16,
        /// The limit.
        max: usize,
    },
    /// A PES packet carries no PTS, so its access unit cannot be placed on the timeline; it
    /// was dropped.
    #[error("PES on PID {pid:#x} has no PTS")]
    MissingPts {
        /// The elementary stream's PID.
        pid: u16,
    },
    /// A muxer configuration or call that cannot be honoured.
    #[error("invalid muxer input: {reason}")]
    InvalidMuxerInput {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl TsError {
    /// A stable snake_case name of the error's kind, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            TsError::SyncLost { .. } => "sync_lost",
            TsError::TransportError { .. } => "transport_error",
            TsError::Scrambled { .. } => "scrambled",
            TsError::InvalidAdaptationField { .. } => "invalid_adaptation_field",
            TsError::InvalidSection { .. } => "invalid_section",
            TsError::CrcMismatch { .. } => "crc_mismatch",
            TsError::TooManyStreams { .. } => "too_many_streams",
            TsError::InvalidPes { .. } => "invalid_pes",
            TsError::PesTooLarge { .. } => "pes_too_large",
            TsError::MissingPts { .. } => "missing_pts",
            TsError::InvalidMuxerInput { .. } => "invalid_muxer_input",
        }
    }

    pub(crate) fn muxer(reason: &'static str) -> Self {
        TsError::InvalidMuxerInput { reason }
    }
}
