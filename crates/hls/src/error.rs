//! The error type of the packager.

use lunora_flv::FlvError;

use crate::Track;

/// Why a codec configuration or a sample was refused.
///
/// A refused sample is dropped; the packager stays usable. Only [`HlsError::Finished`] is
/// final.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlsError {
    /// A codec configuration record could not be parsed.
    #[error("bad {what}: {source}")]
    Codec {
        /// The record at fault (`AVCDecoderConfigurationRecord`, `AudioSpecificConfig`, ...).
        what: &'static str,
        /// What the parser said.
        source: FlvError,
    },
    /// A configuration this packager cannot use.
    #[error("invalid {what}: {reason}")]
    Config {
        /// The field at fault.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A sample for a track the current [`crate::StreamConfig`] does not have.
    #[error("no {0:?} track in the stream configuration")]
    UnknownTrack(Track),
    /// A sample with no payload.
    #[error("empty {0:?} sample")]
    EmptySample(Track),
    /// A sample whose decode time is not after the previous one of its track.
    #[error("{track:?} dts {dts} is not after the previous sample ({previous})")]
    NonMonotonicDts {
        /// The track.
        track: Track,
        /// The refused sample's dts (90 kHz).
        dts: i64,
        /// The previous sample's dts (90 kHz).
        previous: i64,
    },
    /// A timestamp difference that does not fit the fMP4 fields (32-bit durations and
    /// composition offsets).
    #[error("{what} out of range: {value}")]
    OutOfRange {
        /// The quantity at fault.
        what: &'static str,
        /// Its value in ticks.
        value: i64,
    },
    /// The open segment grew past [`crate::MAX_SEGMENT_BYTES`] without a cut (e.g. audio
    /// keeps flowing while video stalls).
    #[error("segment over {max} bytes")]
    SegmentTooLarge {
        /// The limit.
        max: usize,
    },
    /// [`crate::Packager::finish`] was called; the stream is over.
    #[error("the stream is finished")]
    Finished,
}

impl HlsError {
    /// A stable snake_case name of the error's kind, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            HlsError::Codec { .. } => "codec",
            HlsError::Config { .. } => "config",
            HlsError::UnknownTrack(_) => "unknown_track",
            HlsError::EmptySample(_) => "empty_sample",
            HlsError::NonMonotonicDts { .. } => "non_monotonic_dts",
            HlsError::OutOfRange { .. } => "out_of_range",
            HlsError::SegmentTooLarge { .. } => "segment_too_large",
            HlsError::Finished => "finished",
        }
    }
}
