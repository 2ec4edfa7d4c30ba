//! A pure parser for what FFmpeg writes on stderr with `-progress pipe:2 -nostats
//! -loglevel level+warning`: blocks of `key=value` lines ending in `progress=continue` or
//! `progress=end`, interleaved with log lines such as
//! `[flv @ 0x55e4] [error] Video codec hevc not compatible with flv` or
//! `[fatal] Unknown encoder 'libx265'`. Lines go in one at a time; typed events come out.
//! No IO, no clock: it is tested on captured output in `tests/fixtures/`.

use serde::Serialize;

/// One progress report (one `-progress` block).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// Frames encoded so far.
    pub frame: u64,
    /// Encoding speed in frames per second, averaged by FFmpeg.
    pub fps: f64,
    /// Output bitrate so far; `None` while FFmpeg reports `N/A`.
    pub bitrate_kbps: Option<f64>,
    /// Output timestamp reached, in microseconds; `None` while unknown.
    pub out_time_us: Option<i64>,
    /// Speed relative to real time (1.0 keeps up with a live source); `None` while unknown.
    pub speed: Option<f64>,
    /// Frames dropped by the frame-rate conversion.
    pub dropped_frames: u64,
    /// Frames duplicated by the frame-rate conversion.
    pub dup_frames: u64,
    /// Bytes written so far.
    pub total_size: Option<u64>,
}

/// What a stderr line means.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// A completed progress block.
    Progress(Progress),
    /// A log line at level `error` or worse (`fatal`, `panic`), with its context, e.g.
    /// `flv: Video codec hevc not compatible with flv`.
    Error(String),
    /// A log line at level `warning`.
    Warning(String),
    /// FFmpeg finished its output (`progress=end`); the process exits next.
    Ended,
}

/// Keys of a `-progress` block (plus `stream_N_M_q`).
const PROGRESS_KEYS: [&str; 11] = [
    "frame",
    "fps",
    "bitrate",
    "total_size",
    "out_time_us",
    "out_time_ms",
    "out_time",
    "dup_frames",
    "drop_frames",
    "speed",
    "progress",
];

/// Messages that mean "error" even when a line has no level tag (older FFmpeg, or a
/// `-loglevel` without `level+`).
const UNTAGGED_ERRORS: [&str; 5] = [
    "Unknown encoder",
    "not compatible with flv",
    "Unrecognized option",
    "Error splitting the argument list",
    "could not find codec parameters",
];

/// Turns stderr lines into [`Event`]s. Keeps the progress block being read.
#[derive(Debug, Default)]
pub struct ProgressParser {
    block: Progress,
}

impl ProgressParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (with or without its line ending). Most lines produce nothing; the
    /// last line of a progress block produces [`Event::Progress`], followed by
    /// [`Event::Ended`] for the final block.
    pub fn push_line(&mut self, line: &str) -> Vec<Event> {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some((key, value)) = progress_pair(line) {
            return self.push_pair(key, value.trim());
        }
        log_event(line).into_iter().collect()
    }

    fn push_pair(&mut self, key: &str, value: &str) -> Vec<Event> {
        let b = &mut self.block;
        match key {
            "frame" => b.frame = value.parse().unwrap_or(b.frame),
            "fps" => b.fps = value.parse().unwrap_or(b.fps),
            "bitrate" => {
                b.bitrate_kbps = value
                    .strip_suffix("kbits/s")
                    .and_then(|v| v.trim().parse().ok())
            }
            "total_size" => b.total_size = value.parse().ok(),
            "out_time_us" => b.out_time_us = value.parse().ok(),
            "dup_frames" => b.dup_frames = value.parse().unwrap_or(b.dup_frames),
            "drop_frames" => b.dropped_frames = value.parse().unwrap_or(b.dropped_frames),
            "speed" => b.speed = value.strip_suffix('x').and_then(|v| v.trim().parse().ok()),
            "progress" => {
                let progress = Event::Progress(std::mem::take(&mut self.block));
                return if value == "end" {
                    vec![progress, Event::Ended]
                } else {
                    vec![progress]
                };
            }
            _ => {}
        }
        Vec::new()
    }
}

fn progress_pair(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    let known = PROGRESS_KEYS.contains(&key)
        || key.strip_prefix("stream_").is_some_and(|k| {
            k.bytes()
                .all(|c| c.is_ascii_digit() || c == b'_' || c == b'q')
        });
    known.then_some((key, value))
}

/// Classifies a log line: `[ctx @ 0xADDR] [level] message`, `[level] message`, or x265's
/// own `x265 [level]: message`.
fn log_event(line: &str) -> Option<Event> {
    let mut rest = line.trim();
    let mut context = None;
    // "[flv @ 0x55e4721563c0] " - keep the name, drop the address.
    if let Some(inner) = rest.strip_prefix('[') {
        if let Some((ctx, after)) = inner.split_once("] ") {
            if let Some((name, _addr)) = ctx.split_once(" @ ") {
                context = Some(name);
                rest = after;
            }
        }
    }
    if let Some(after) = rest.strip_prefix("x265 ") {
        context = Some("x265");
        rest = after;
    }
    let mut level = None;
    if let Some(inner) = rest.strip_prefix('[') {
        if let Some((lvl, after)) = inner.split_once(']') {
            level = Some(lvl);
            rest = after.strip_prefix(':').unwrap_or(after).trim_start();
        }
    }
    let message = match context {
        Some(ctx) => format!("{ctx}: {}", rest.trim_end()),
        None => rest.trim_end().to_string(),
    };
    match level {
        Some("error" | "fatal" | "panic") => Some(Event::Error(message)),
        Some("warning") => Some(Event::Warning(message)),
        Some(_) => None,
        None if UNTAGGED_ERRORS.iter().any(|e| rest.contains(e)) => Some(Event::Error(message)),
        None => None,
    }
}

/// Errors after which restarting FFmpeg cannot help: the same command would fail again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// This FFmpeg build has no such encoder (`Unknown encoder 'libx265'`).
    MissingEncoder(String),
    /// The FLV muxer of this FFmpeg cannot carry the codec (H.265 needs FFmpeg 6.1+).
    CodecNotInFlv(String),
    /// FFmpeg refused its command line (an option this version does not know).
    BadArguments(String),
}

impl Fatal {
    /// Words for a person.
    pub fn message(&self) -> String {
        match self {
            Fatal::MissingEncoder(enc) => format!(
                "this FFmpeg lacks the {enc} encoder; install an FFmpeg built with it or choose another codec"
            ),
            Fatal::CodecNotInFlv(codec) => format!(
                "this FFmpeg cannot put {codec} into FLV (H.265 over RTMP needs FFmpeg 6.1 or newer)"
            ),
            Fatal::BadArguments(line) => format!(
                "this FFmpeg does not understand the command Lunora gave it ({line}); it may be too old"
            ),
        }
    }
}

/// Recognises an [`Event::Error`] message that makes restarting pointless.
pub fn classify_error(message: &str) -> Option<Fatal> {
    if let Some(rest) = message.split_once("Unknown encoder '").map(|(_, r)| r) {
        let encoder = rest.split('\'').next().unwrap_or(rest);
        return Some(Fatal::MissingEncoder(encoder.to_string()));
    }
    if let Some((before, _)) = message.split_once(" not compatible with flv") {
        let codec = before.rsplit(' ').next().unwrap_or(before);
        let codec = if codec == "hevc" { "H.265" } else { codec };
        return Some(Fatal::CodecNotInFlv(codec.to_string()));
    }
    if message.contains("Unrecognized option") || message.contains("Option not found") {
        return Some(Fatal::BadArguments(message.to_string()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Event> {
        let mut p = ProgressParser::new();
        text.lines().flat_map(|l| p.push_line(l)).collect()
    }

    #[test]
    fn one_block() {
        let events = parse(
            "frame=60\nfps=29.5\nstream_0_0_q=-1.0\nbitrate=1075.4kbits/s\ntotal_size=275307\n\
             out_time_us=2048000\nout_time_ms=2048000\nout_time=00:00:02.048000\n\
             dup_frames=3\ndrop_frames=1\nspeed=5.31x\nprogress=continue\n",
        );
        assert_eq!(
            events,
            [Event::Progress(Progress {
                frame: 60,
                fps: 29.5,
                bitrate_kbps: Some(1075.4),
                out_time_us: Some(2_048_000),
                speed: Some(5.31),
                dropped_frames: 1,
                dup_frames: 3,
                total_size: Some(275_307),
            })]
        );
    }

    #[test]
    fn not_available_values_and_crlf() {
        let events = parse(
            "frame=0\r\nfps=0.00\r\nbitrate=N/A\r\ntotal_size=N/A\r\nout_time_us=N/A\r\n\
             speed=N/A\r\nprogress=continue\r\n",
        );
        let Event::Progress(p) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(p.bitrate_kbps, None);
        assert_eq!(p.out_time_us, None);
        assert_eq!(p.speed, None);
        assert_eq!(p.total_size, None);
        // "speed=   0x" from FFmpeg's first block.
        let events = parse("speed=   0x\nprogress=continue");
        assert!(matches!(&events[0], Event::Progress(p) if p.speed == Some(0.0)));
    }

    #[test]
    fn log_lines() {
        assert_eq!(
            parse("[fatal] Unknown encoder 'libx265'"),
            [Event::Error("Unknown encoder 'libx265'".into())]
        );
        assert_eq!(
            parse("[flv @ 0x55e4721563c0] [error] Video codec hevc not compatible with flv"),
            [Event::Error(
                "flv: Video codec hevc not compatible with flv".into()
            )]
        );
        assert_eq!(
            parse("[flv @ 0x55b5] [warning] Packet corrupt (stream = 0, dts = 80)."),
            [Event::Warning(
                "flv: Packet corrupt (stream = 0, dts = 80).".into()
            )]
        );
        assert_eq!(
            parse("x265 [error]: bad things"),
            [Event::Error("x265: bad things".into())]
        );
        assert_eq!(parse("x265 [info]: HEVC encoder version 3.5"), []);
        assert_eq!(parse("[info] something"), []);
        assert_eq!(parse("encoded 0 frames"), []);
        assert_eq!(parse(""), []);
        // Without level tags, known fatal messages still count.
        assert_eq!(
            parse("Unknown encoder 'libfoo'"),
            [Event::Error("Unknown encoder 'libfoo'".into())]
        );
        // A log line containing '=' is not a progress key.
        assert_eq!(parse("[warning] x=1"), [Event::Warning("x=1".into())]);
        assert_eq!(parse("weird=1\nprogress=continue").len(), 1);
    }

    #[test]
    fn classify() {
        assert_eq!(
            classify_error("Unknown encoder 'libx265'"),
            Some(Fatal::MissingEncoder("libx265".into()))
        );
        assert_eq!(
            classify_error("flv: Video codec hevc not compatible with flv"),
            Some(Fatal::CodecNotInFlv("H.265".into()))
        );
        assert!(matches!(
            classify_error("Unrecognized option 'fps_mode'."),
            Some(Fatal::BadArguments(_))
        ));
        assert_eq!(
            classify_error("pipe:0: could not find codec parameters"),
            None
        );
        assert_eq!(
            Fatal::MissingEncoder("libx265".into()).message(),
            "this FFmpeg lacks the libx265 encoder; install an FFmpeg built with it or choose another codec"
        );
    }
}
