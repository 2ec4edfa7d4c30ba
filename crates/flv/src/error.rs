//! The one error type of this crate.

/// Why a tag, a codec configuration or an FLV stream could not be parsed or written.
///
/// Every variant names the structure at fault (`what`) so that a server can log it as the
/// reason for dropping a frame or closing a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The input ended before the structure was complete.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A well-formed value this crate does not handle (e.g. an unknown FourCC).
    #[error("unsupported {what}: {value:#x}")]
    Unsupported {
        /// The field holding the value.
        what: &'static str,
        /// The value found.
        value: u32,
    },
    /// A value that breaks the format's rules.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The structure or field at fault.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A length over a configured or format limit.
    #[error("{what} too large: {len} > {max}")]
    TooLarge {
        /// The structure whose length is too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl FlvError {
    /// A stable snake_case name of the error's kind, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FlvError::Truncated { .. } => "truncated",
            FlvError::Unsupported { .. } => "unsupported",
            FlvError::Invalid { .. } => "invalid",
            FlvError::TooLarge { .. } => "too_large",
        }
    }

    pub(crate) fn truncated(what: &'static str, need: usize, have: usize) -> Self {
        FlvError::Truncated { what, need, have }
    }

    pub(crate) fn invalid(what: &'static str, reason: &'static str) -> Self {
        FlvError::Invalid { what, reason }
    }
}

/// Checks that `data` holds at least `need` bytes.
pub(crate) fn need(what: &'static str, data: &[u8], need: usize) -> Result<(), FlvError> {
    if data.len() < need {
        Err(FlvError::truncated(what, need, data.len()))
    } else {
        Ok(())
    }
}
