//! Encoding presets and FFmpeg supervision: the only crate in Lunora that spawns processes.
//!
//! - [`preset`]: [`Preset`] (the seed's `StreamingPresets`: platform, video, audio), the
//!   built-in presets ([`builtin_presets`]), [`Preset::validate`] with errors that name the
//!   field and the allowed range, HLS ladder [`Rendition`]s, and [`Preset::encoding_key`]:
//!   destinations whose presets encode identically share one encode.
//! - [`args`]: the FFmpeg command line for a preset (FLV on stdin, FLV on stdout, progress
//!   on stderr) and [`passthrough`]: whether a source already satisfies a preset so no
//!   FFmpeg is needed.
//! - [`progress`]: a pure parser of FFmpeg's stderr (`-progress` blocks and leveled log
//!   lines) into typed [`Event`]s, tested on captured output in `tests/fixtures/`.
//! - [`supervisor`]: [`Supervisor`] runs one FFmpeg in its own process group, feeds it from
//!   a bounded queue, returns its output in bounded chunks, restarts it with exponential
//!   backoff and jitter, reports a [`Status`] and [`Metrics`] on watch channels, fails
//!   clearly (FFmpeg missing, encoder missing) instead of looping, and kills the process
//!   group when dropped.
//!
//! The engine decides which encodes run (one per distinct encoding key per channel) and
//! what to feed them; this crate knows nothing of channels, sockets or HTTP.

pub mod args;
pub mod preset;
pub mod progress;
pub mod supervisor;
pub mod thumbnail;

pub use args::{ffmpeg_args, passthrough, Mismatch, Passthrough, SourceInfo};
pub use preset::{
    builtin_preset, builtin_presets, default_ladder, AudioCodec, AudioSettings, EncodingKey,
    FieldError, InvalidPreset, Platform, Preset, Profile, RateControl, Rendition, Speed,
    VideoCodec, VideoSettings,
};
pub use progress::{classify_error, Event, Fatal, Progress, ProgressParser};
pub use supervisor::{Backoff, Metrics, Pipes, Status, Supervisor, SupervisorConfig};
pub use thumbnail::{thumbnail, ThumbnailError};
