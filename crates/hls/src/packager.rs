//! The segmenter: samples in; init segments, parts, segments and media playlists out.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::config::{Tracks, AAC_FRAME_SAMPLES};
use crate::fmp4::{self, FragmentSample, TrackFragment};
use crate::playlist::{self, Rendition, Resource};
use crate::{HlsError, Sample, StreamConfig, Track, TIMESCALE};

/// Largest open segment (parts included) in bytes. Past it a segment is cut without waiting
/// for a keyframe, and samples of the other track are refused while the main track stalls.
pub const MAX_SEGMENT_BYTES: usize = 64 << 20;

/// Events kept for [`Packager::poll_event`] before the oldest are dropped.
const MAX_EVENTS: usize = 1024;
/// Audio frames kept while waiting for the first video keyframe of a run (~6 s at 44.1 kHz).
const MAX_WAITING_AUDIO: usize = 256;
/// An audio frame within half a frame of where the previous one ends is placed right there.
const AUDIO_SNAP: u64 = AAC_FRAME_SAMPLES as u64 / 2;

/// What the playlist is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    /// A sliding window of the last segments (live viewing).
    Live,
    /// Every segment since the start stays listed (`EXT-X-PLAYLIST-TYPE:EVENT`, `VOD` once
    /// finished): for recordings. Only the last segments' bytes stay in memory; a writer
    /// persists each one on [`Event::SegmentReady`].
    Event,
}

/// Packager settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackagerOptions {
    /// Segments are cut on the first keyframe at or after 90 % of this (2 s by default).
    /// `EXT-X-TARGETDURATION` is the ceiling of the larger of this and the longest segment.
    pub target_duration: Duration,
    /// LL-HLS part target; `None` turns LL-HLS off (one fragment per segment, no part tags).
    ///
    /// Default 400 ms: a whole number of frames at 25, 30, 50 and 60 fps, so a 2 s segment
    /// is five equal parts with no short tail part, and `PART-HOLD-BACK` (3 parts) is 1.2 s.
    /// (0.5 s gives 12.5 frames at 25 fps: parts of 12 frames and a 2-frame tail.)
    pub part_target: Option<Duration>,
    /// A segment is cut without a keyframe once it is this long (for sources that never send
    /// one again, e.g. intra refresh). Such a segment is not independent.
    pub max_segment_duration: Duration,
    /// Segments listed in a live playlist (more when needed to cover three target durations,
    /// as RFC 8216 §6.2.2 requires).
    pub window: usize,
    /// Segments whose bytes stay available after they leave the window, for players that
    /// fetched the playlist just before.
    pub grace: usize,
    /// Live window or growing event playlist.
    pub kind: PlaylistKind,
}

impl Default for PackagerOptions {
    fn default() -> Self {
        PackagerOptions {
            target_duration: Duration::from_secs(2),
            part_target: Some(Duration::from_millis(400)),
            max_segment_duration: Duration::from_secs(10),
            window: 6,
            grace: 2,
            kind: PlaylistKind::Live,
        }
    }
}

/// Something the IO layer may want to act on. Drain with [`Packager::poll_event`] after each
/// call that feeds the packager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `init-{version}.mp4` exists (at creation and after each configuration change).
    InitReady {
        /// Its version.
        version: u32,
    },
    /// `part-{msn}.{part}.m4s` exists and is listed (LL-HLS only): wake blocked reloads.
    PartReady {
        /// Media sequence number of its segment.
        msn: u64,
        /// Index in the segment.
        part: u32,
    },
    /// `seg-{msn}.m4s` is complete and listed: wake blocked reloads; a writer stores it.
    SegmentReady {
        /// Its media sequence number.
        msn: u64,
    },
    /// The bytes of `seg-{msn}.m4s` (and its parts) are no longer held.
    SegmentExpired {
        /// Its media sequence number.
        msn: u64,
    },
    /// A track's dts jumped by more than the target duration (either way) without
    /// [`Packager::discontinuity`]: the packager made one itself. Worth a log line.
    TimestampJump {
        /// The track.
        track: Track,
        /// The previous sample's dts (90 kHz).
        from: i64,
        /// The new sample's dts.
        to: i64,
    },
}

/// How to answer a blocking playlist reload (`_HLS_msn`, `_HLS_part`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadStatus {
    /// The playlist holds what was asked for: answer now.
    Ready,
    /// Hold the request until an event, then ask again (with a timeout of a few target
    /// durations).
    Wait,
    /// Too far ahead of the live edge (RFC 8216bis §6.2.5.2): answer 400.
    BadRequest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first keyframe of a run (at start and after a discontinuity).
    Waiting,
    Running,
    Finished,
}

/// A sample held back until the next one of its track gives its duration.
#[derive(Debug)]
struct Pending {
    time: u64,
    dts: i64,
    composition_offset: i32,
    sync: bool,
    data: Bytes,
}

#[derive(Debug, Default)]
struct TrackState {
    pending: Option<Pending>,
    /// Decode time just after the last completed sample.
    end: Option<u64>,
    last_duration: Option<u32>,
    /// Input dts of the last accepted sample of this run.
    last_dts: Option<i64>,
}

#[derive(Debug, Default)]
struct PartBuilder {
    samples: [Vec<(u64, FragmentSample)>; 2],
    main_start: Option<u64>,
    main_end: u64,
    independent: bool,
    bytes: usize,
}

#[derive(Clone, Debug)]
struct PartInfo {
    /// In main-track ticks.
    duration: u64,
    independent: bool,
    bytes: Bytes,
}

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    /// Main-track ticks.
    start: u64,
    timescale: u32,
    init_version: u32,
    discontinuity: bool,
    /// Starts with a keyframe (false after a cut forced by the maximum duration).
    independent: bool,
    pdt_ms: Option<i64>,
    parts: Vec<PartInfo>,
    /// Bytes of the finished parts.
    bytes: usize,
    video_frames: u32,
    building: PartBuilder,
}

impl OpenSegment {
    fn secs(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.timescale)
    }

    fn end_secs(&self) -> f64 {
        self.secs(self.start + self.parts.iter().map(|p| p.duration).sum::<u64>())
    }
}

#[derive(Debug)]
struct Segment {
    msn: u64,
    start_secs: f64,
    duration_ticks: u64,
    timescale: u32,
    init_version: u32,
    discontinuity: bool,
    pdt_ms: Option<i64>,
    size: usize,
    video_frames: u32,
    /// `None` once expired.
    bytes: Option<SegmentBytes>,
    /// Kept while they are listed (LL-HLS), then dropped.
    parts: Vec<PartInfo>,
    part_count: u32,
}

/// The bytes of a finished segment. LL-HLS players fetch parts, so a segment made of parts
/// is joined into one buffer only when someone asks for it (a plain-HLS player, the
/// recorder), not for every segment: the join copied every byte of every LL-HLS stream once
/// more.
#[derive(Debug)]
enum SegmentBytes {
    Whole(Bytes),
    Parts {
        parts: Vec<Bytes>,
        joined: std::sync::OnceLock<Bytes>,
    },
}

impl SegmentBytes {
    fn get(&self) -> Bytes {
        match self {
            SegmentBytes::Whole(b) => b.clone(),
            SegmentBytes::Parts { parts, joined } => joined
                .get_or_init(|| {
                    let styp = fmp4::styp();
                    let len = styp.len() + parts.iter().map(Bytes::len).sum::<usize>();
                    let mut buf = BytesMut::with_capacity(len);
                    buf.extend_from_slice(&styp);
                    for p in parts {
                        buf.extend_from_slice(p);
                    }
                    buf.freeze()
                })
                .clone(),
        }
    }
}

impl Segment {
    fn duration_secs(&self) -> f64 {
        self.duration_ticks as f64 / f64::from(self.timescale)
    }

    fn end_secs(&self) -> f64 {
        self.start_secs + self.duration_secs()
    }
}

/// The HLS packager of one rendition. See the crate documentation for the model.
#[derive(Debug)]
pub struct Packager {
    opts: PackagerOptions,
    config: StreamConfig,
    tracks: Tracks,
    init_version: u32,
    inits: BTreeMap<u32, Bytes>,
    phase: Phase,
    /// A run has started at least once.
    started: bool,
    waiting_audio: VecDeque<Sample>,
    /// `dts - origin` is the time on the output timeline (90 kHz).
    origin: i64,
    /// Output time (90 kHz) of the current run's first sample.
    run_start: i64,
    /// Output time (90 kHz) where the last run ended.
    timeline_end: i64,
    tracks_state: [TrackState; 2],
    open: Option<OpenSegment>,
    segments: VecDeque<Segment>,
    /// Discontinuities of segments dropped from `segments`.
    dropped_discontinuities: u64,
    /// Event playlists: index in `segments` of the first segment whose bytes are held.
    first_held: usize,
    next_msn: u64,
    next_sequence: u32,
    next_discontinuity: bool,
    /// Ceiling of the longest segment ever, in seconds.
    longest: u64,
    /// (wall clock ms, output time 90 kHz) of the current run's start.
    pdt_anchor: Option<(i64, i64)>,
    events: VecDeque<Event>,
}

impl Packager {
    /// A packager for a stream with `config`; builds `init-1.mp4`.
    pub fn new(opts: PackagerOptions, config: StreamConfig) -> Result<Self, HlsError> {
        if opts.target_duration < Duration::from_millis(100) {
            return Err(HlsError::Config {
                what: "target_duration",
                reason: "under 100 ms",
            });
        }
        if let Some(p) = opts.part_target {
            if p < Duration::from_millis(50) || p > opts.target_duration {
                return Err(HlsError::Config {
                    what: "part_target",
                    reason: "under 50 ms or over the target duration",
                });
            }
        }
        if opts.max_segment_duration < opts.target_duration {
            return Err(HlsError::Config {
                what: "max_segment_duration",
                reason: "under the target duration",
            });
        }
        if opts.window == 0 {
            return Err(HlsError::Config {
                what: "window",
                reason: "zero",
            });
        }
        let tracks = Tracks::parse(&config)?;
        let init = fmp4::init_segment_for(&tracks)?;
        let mut p = Packager {
            opts,
            config,
            tracks,
            init_version: 1,
            inits: BTreeMap::from([(1, init)]),
            phase: Phase::Waiting,
            started: false,
            waiting_audio: VecDeque::new(),
            origin: 0,
            run_start: 0,
            timeline_end: 0,
            tracks_state: Default::default(),
            open: None,
            segments: VecDeque::new(),
            dropped_discontinuities: 0,
            first_held: 0,
            next_msn: 0,
            next_sequence: 1,
            next_discontinuity: false,
            longest: 0,
            pdt_anchor: None,
            events: VecDeque::new(),
        };
        p.event(Event::InitReady { version: 1 });
        Ok(p)
    }

    /// The options it was made with.
    pub fn options(&self) -> &PackagerOptions {
        &self.opts
    }

    /// The current codec configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Version of the current init segment.
    pub fn init_version(&self) -> u32 {
        self.init_version
    }

    /// Sets the codec configuration. The same configuration again is a no-op; a different
    /// one ends the current segment, makes a new init segment version and starts the next
    /// segment with a discontinuity (waiting for a keyframe, as after [`Self::discontinuity`]).
    pub fn set_config(&mut self, config: StreamConfig) -> Result<(), HlsError> {
        if self.phase == Phase::Finished {
            return Err(HlsError::Finished);
        }
        if config == self.config {
            return Ok(());
        }
        let tracks = Tracks::parse(&config)?;
        let init = fmp4::init_segment_for(&tracks)?;
        self.discontinuity();
        self.tracks = tracks;
        self.config = config;
        self.init_version += 1;
        self.inits.insert(self.init_version, init);
        self.event(Event::InitReady {
            version: self.init_version,
        });
        Ok(())
    }

    /// Marks a source change (failover, reconnect): the samples held back are flushed with
    /// estimated durations, the open segment ends, and the next segment starts on the next
    /// keyframe with `EXT-X-DISCONTINUITY`. The output timeline stays continuous whatever the
    /// new source's timestamps are, and the next segment is dated from the wall clock again.
    pub fn discontinuity(&mut self) {
        if self.phase == Phase::Finished {
            return;
        }
        self.flush();
        if self.started {
            self.next_discontinuity = true;
        }
        self.waiting_audio.clear();
        self.pdt_anchor = None;
    }

    /// Ends the stream: flushes, closes the last segment and adds `EXT-X-ENDLIST`. Later
    /// pushes answer [`HlsError::Finished`].
    pub fn finish(&mut self) {
        if self.phase == Phase::Finished {
            return;
        }
        self.flush();
        self.phase = Phase::Finished;
        self.waiting_audio.clear();
    }

    /// Feeds one access unit. `now_ms` is the wall clock (unix ms) at its arrival: the first
    /// segment of a run (after the start or a discontinuity) is dated by it, later ones by
    /// media time from there, so `EXT-X-PROGRAM-DATE-TIME` advances exactly with `EXTINF`.
    ///
    /// Samples of each track must come in decode order; the two tracks may interleave
    /// loosely. Before the first video keyframe of a run, video is dropped and audio is held.
    /// A dts jump of more than the target duration (either way) is taken as a discontinuity
    /// ([`Event::TimestampJump`]). A refused sample is dropped and the packager stays usable.
    pub fn push(&mut self, sample: Sample, now_ms: i64) -> Result<(), HlsError> {
        if self.phase == Phase::Finished {
            return Err(HlsError::Finished);
        }
        if !self.tracks.has(sample.track) {
            return Err(HlsError::UnknownTrack(sample.track));
        }
        if sample.data.is_empty() {
            return Err(HlsError::EmptySample(sample.track));
        }
        if self.phase == Phase::Running {
            let last = self.tracks_state[sample.track.index()].last_dts;
            let jump = i64::try_from(self.opts.target_duration.as_nanos() * 9 / 100_000)
                .unwrap_or(i64::MAX);
            match last {
                Some(from) if sample.dts.saturating_sub(from).saturating_abs() > jump => {
                    self.event(Event::TimestampJump {
                        track: sample.track,
                        from,
                        to: sample.dts,
                    });
                    self.discontinuity();
                }
                _ => return self.push_running(sample),
            }
        }
        let main = self.tracks.main();
        if sample.track != main {
            if self.waiting_audio.len() == MAX_WAITING_AUDIO {
                self.waiting_audio.pop_front();
            }
            self.waiting_audio.push_back(sample);
            return Ok(());
        }
        if main == Track::Video && !sample.keyframe {
            return Ok(());
        }
        let start_dts = sample.dts;
        self.start_run(start_dts, now_ms)?;
        let result = self.push_running(sample);
        for audio in std::mem::take(&mut self.waiting_audio) {
            if audio.dts >= start_dts {
                // Held audio that does not fit (e.g. out of order) is dropped like any other.
                let _ = self.push_running(audio);
            }
        }
        result
    }

    fn start_run(&mut self, dts: i64, now_ms: i64) -> Result<(), HlsError> {
        let start = if self.started { self.timeline_end } else { 0 };
        self.origin = dts.checked_sub(start).ok_or(HlsError::OutOfRange {
            what: "dts",
            value: dts,
        })?;
        self.run_start = start;
        self.started = true;
        self.phase = Phase::Running;
        for st in &mut self.tracks_state {
            st.pending = None;
            st.end = None;
            st.last_dts = None;
        }
        self.pdt_anchor = Some((now_ms, start));
        let ts = self.tracks.timescale(self.tracks.main());
        self.open_segment(to_ticks(start, ts), true);
        Ok(())
    }

    fn push_running(&mut self, s: Sample) -> Result<(), HlsError> {
        let track = s.track;
        let main = self.tracks.main();
        let ts = self.tracks.timescale(track);
        let rel = s.dts.checked_sub(self.origin).ok_or(HlsError::OutOfRange {
            what: "dts",
            value: s.dts,
        })?;
        let st = &self.tracks_state[track.index()];
        let previous_dts = st
            .pending
            .as_ref()
            .map_or(self.origin + self.run_start, |p| p.dts);
        if rel < self.run_start {
            if track == main {
                return Err(HlsError::NonMonotonicDts {
                    track,
                    dts: s.dts,
                    previous: previous_dts,
                });
            }
            // Audio from before the run's first keyframe.
            return Ok(());
        }
        let raw = to_ticks(rel, ts);
        let time = if track == Track::Audio {
            let expected = st
                .pending
                .as_ref()
                .map(|p| p.time + u64::from(AAC_FRAME_SAMPLES))
                .or(st.end);
            match expected {
                Some(e) if raw.abs_diff(e) <= AUDIO_SNAP => e,
                _ => raw,
            }
        } else {
            raw
        };
        let not_after = match (&st.pending, st.end) {
            (Some(p), _) => time <= p.time,
            (None, Some(end)) => time < end,
            (None, None) => false,
        };
        if not_after {
            return Err(HlsError::NonMonotonicDts {
                track,
                dts: s.dts,
                previous: previous_dts,
            });
        }
        let duration = match &st.pending {
            Some(p) => Some(
                u32::try_from(time - p.time).map_err(|_| HlsError::OutOfRange {
                    what: "sample duration",
                    value: i64::try_from(time - p.time).unwrap_or(i64::MAX),
                })?,
            ),
            None => None,
        };
        let composition_offset = if track == Track::Video {
            let cto = s.pts.saturating_sub(s.dts);
            i32::try_from(cto).map_err(|_| HlsError::OutOfRange {
                what: "composition offset",
                value: cto,
            })?
        } else {
            0
        };
        let open_bytes = self.open.as_ref().map_or(0, |o| o.bytes + o.building.bytes);
        if track != main && open_bytes + s.data.len() > MAX_SEGMENT_BYTES {
            return Err(HlsError::SegmentTooLarge {
                max: MAX_SEGMENT_BYTES,
            });
        }

        if let (Some(d), Some(p)) = (duration, self.tracks_state[track.index()].pending.take()) {
            self.complete(track, p, d)?;
        }
        if track == main {
            let seg_start = self.open.as_ref().map_or(time, |o| o.start);
            let independent = self.open.as_ref().is_none_or(|o| o.independent);
            let elapsed = time.saturating_sub(seg_start);
            let target = to_ticks_duration(self.opts.target_duration, ts);
            let on_time = match track {
                // Video: on a keyframe, from 90 % of the target (so a GOP of exactly the
                // target, whose keyframes jitter by a tick or a millisecond, still cuts), or
                // on the first keyframe after a forced cut, to start on keyframes again.
                Track::Video => s.keyframe && (elapsed >= target * 9 / 10 || !independent),
                // Audio alone: before the frame that would take the segment past the target.
                Track::Audio => elapsed + u64::from(AAC_FRAME_SAMPLES) > target,
            };
            let max = to_ticks_duration(self.opts.max_segment_duration, ts);
            let open_bytes = self.open.as_ref().map_or(0, |o| o.bytes + o.building.bytes);
            let cut = on_time || elapsed >= max || open_bytes + s.data.len() > MAX_SEGMENT_BYTES;
            if cut && elapsed > 0 {
                self.close_segment()?;
                self.open_segment(time, s.keyframe || track == Track::Audio);
            }
        }
        self.tracks_state[track.index()].last_dts = Some(s.dts);
        self.tracks_state[track.index()].pending = Some(Pending {
            time,
            dts: s.dts,
            composition_offset,
            sync: s.keyframe || track == Track::Audio,
            data: s.data,
        });
        Ok(())
    }

    /// Puts a sample whose duration is now known into the part being built, closing that
    /// part first if the sample would take it past the part target, and right after if the
    /// next sample (of the same duration) would.
    fn complete(&mut self, track: Track, p: Pending, duration: u32) -> Result<(), HlsError> {
        let main = self.tracks.main();
        let end = p.time + u64::from(duration);
        let part_ticks = self.opts.part_target.map_or(u64::MAX, |d| {
            to_ticks_duration(d, self.tracks.timescale(main))
        });
        if track == main && main == Track::Audio {
            // Audio alone: a gap may make this frame longer than usual; if it would take the
            // segment past the target, it starts the next one instead.
            let target = to_ticks_duration(self.opts.target_duration, self.tracks.timescale(main));
            let over = self.open.as_ref().is_some_and(|o| {
                (!o.parts.is_empty() || o.building.main_start.is_some()) && end - o.start > target
            });
            if over {
                self.close_segment()?;
                self.open_segment(p.time, true);
            }
        }
        if track == main {
            let over = self
                .open
                .as_ref()
                .and_then(|o| o.building.main_start)
                .is_some_and(|start| end - start > part_ticks);
            if over {
                self.close_part()?;
            }
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let b = &mut open.building;
        if track == main {
            if b.main_start.is_none() {
                b.main_start = Some(p.time);
                b.independent = p.sync;
            }
            b.main_end = end;
        }
        if track == Track::Video {
            open.video_frames += 1;
        }
        b.bytes += p.data.len();
        b.samples[track.index()].push((
            p.time,
            FragmentSample {
                duration,
                composition_offset: p.composition_offset,
                sync: p.sync,
                data: p.data,
            },
        ));
        let full = track == main
            && b.main_start
                .is_some_and(|start| end - start + u64::from(duration) > part_ticks);
        let st = &mut self.tracks_state[track.index()];
        st.end = Some(end);
        st.last_duration = Some(duration);
        if full {
            self.close_part()?;
        }
        Ok(())
    }

    fn open_segment(&mut self, start: u64, independent: bool) {
        let ts = self.tracks.timescale(self.tracks.main());
        let start_90k = from_ticks(start, ts);
        let pdt_ms = self
            .pdt_anchor
            .map(|(ms, at)| ms + (start_90k - at) * 1000 / i64::from(TIMESCALE));
        self.open = Some(OpenSegment {
            msn: self.next_msn,
            start,
            timescale: ts,
            init_version: self.init_version,
            discontinuity: std::mem::take(&mut self.next_discontinuity),
            independent,
            pdt_ms,
            parts: Vec::new(),
            bytes: 0,
            video_frames: 0,
            building: PartBuilder::default(),
        });
        self.next_msn += 1;
    }

    fn close_part(&mut self) -> Result<(), HlsError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let b = std::mem::take(&mut open.building);
        // Samples of the other track alone (the main track stalled) are dropped.
        let Some(main_start) = b.main_start else {
            return Ok(());
        };
        let [video, audio] = b.samples;
        let runs: Vec<(Track, u64, Vec<FragmentSample>)> =
            [(Track::Video, video), (Track::Audio, audio)]
                .into_iter()
                .filter_map(|(t, v)| {
                    let base = v.first()?.0;
                    Some((t, base, v.into_iter().map(|(_, s)| s).collect()))
                })
                .collect();
        let fragments: Vec<TrackFragment<'_>> = runs
            .iter()
            .map(|(track, base, samples)| TrackFragment {
                track: *track,
                base_decode_time: *base,
                samples,
            })
            .collect();
        // Without parts a segment is one fragment: it is made with its `styp` in front, so
        // the segment needs no second copy (`close_segment`).
        let prefix = if self.opts.part_target.is_none() {
            fmp4::styp()
        } else {
            Bytes::new()
        };
        let bytes = fmp4::fragment_with_prefix(&prefix, self.next_sequence, &fragments)?;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let index = u32::try_from(open.parts.len()).unwrap_or(u32::MAX);
        open.bytes += bytes.len();
        open.parts.push(PartInfo {
            duration: b.main_end - main_start,
            independent: b.independent,
            bytes,
        });
        let msn = open.msn;
        if self.opts.part_target.is_some() {
            self.event(Event::PartReady { msn, part: index });
        }
        Ok(())
    }

    fn close_segment(&mut self) -> Result<(), HlsError> {
        self.close_part()?;
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        if open.parts.is_empty() {
            // Nothing was published under this number: the next segment takes it.
            self.next_msn = open.msn;
            self.next_discontinuity |= open.discontinuity;
            return Ok(());
        }
        let duration_ticks: u64 = open.parts.iter().map(|p| p.duration).sum();
        let bytes = match open.parts.as_slice() {
            // Without parts: one fragment, made with its `styp` (`close_part`).
            [only] if self.opts.part_target.is_none() => SegmentBytes::Whole(only.bytes.clone()),
            // (Not reached: without parts only `close_segment` closes one.)
            parts if self.opts.part_target.is_none() => {
                SegmentBytes::Whole(parts.iter().flat_map(|p| p.bytes.iter().copied()).collect())
            }
            parts => SegmentBytes::Parts {
                parts: parts.iter().map(|p| p.bytes.clone()).collect(),
                joined: std::sync::OnceLock::new(),
            },
        };
        let size = match &bytes {
            SegmentBytes::Whole(b) => b.len(),
            SegmentBytes::Parts { parts, .. } => {
                fmp4::STYP_LEN + parts.iter().map(Bytes::len).sum::<usize>()
            }
        };
        let segment = Segment {
            msn: open.msn,
            start_secs: open.secs(open.start),
            duration_ticks,
            timescale: open.timescale,
            init_version: open.init_version,
            discontinuity: open.discontinuity,
            pdt_ms: open.pdt_ms,
            size,
            video_frames: open.video_frames,
            bytes: Some(bytes),
            part_count: u32::try_from(open.parts.len()).unwrap_or(u32::MAX),
            parts: if self.opts.part_target.is_some() {
                open.parts
            } else {
                Vec::new()
            },
        };
        self.longest = self
            .longest
            .max(duration_ticks.div_ceil(u64::from(open.timescale)));
        self.segments.push_back(segment);
        self.event(Event::SegmentReady { msn: open.msn });
        self.prune();
        Ok(())
    }

    /// Completes the held-back samples with estimated durations and closes the segment.
    fn flush(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let main = self.tracks.main();
        let other = match main {
            Track::Video => Track::Audio,
            Track::Audio => Track::Video,
        };
        // The other track first, so that it lands in a part with main-track samples.
        for track in [other, main] {
            if let Some(p) = self.tracks_state[track.index()].pending.take() {
                let d = self.estimated_duration(track);
                // Only fails on absurd sizes; the sample is lost then.
                let _ = self.complete(track, p, d);
            }
        }
        let _ = self.close_segment();
        for track in [Track::Video, Track::Audio] {
            let st = &mut self.tracks_state[track.index()];
            if let Some(end) = st.end {
                let ts = self.tracks.timescale(track);
                let end_90k = i64::try_from(
                    (u128::from(end) * u128::from(TIMESCALE)).div_ceil(u128::from(ts)),
                )
                .unwrap_or(i64::MAX);
                self.timeline_end = self.timeline_end.max(end_90k);
            }
            st.pending = None;
            st.end = None;
        }
        self.phase = Phase::Waiting;
    }

    fn estimated_duration(&self, track: Track) -> u32 {
        match track {
            Track::Audio => AAC_FRAME_SAMPLES,
            Track::Video => self.tracks_state[0].last_duration.unwrap_or_else(|| {
                let fps = self
                    .tracks
                    .video
                    .as_ref()
                    .and_then(|v| v.fps)
                    .unwrap_or(30.0);
                (f64::from(TIMESCALE) / fps).round().clamp(1.0, 90_000.0) as u32
            }),
        }
    }

    /// Index in `segments` of the first segment of a live window: at least `window`
    /// segments and three target durations.
    fn live_window_start(&self) -> usize {
        let min_secs = 3.0 * self.target_duration() as f64;
        let mut secs = 0.0;
        for (n, (i, seg)) in self.segments.iter().enumerate().rev().enumerate() {
            secs += seg.duration_secs();
            if n + 1 >= self.opts.window && secs >= min_secs {
                return i;
            }
        }
        0
    }

    fn playlist_start(&self) -> usize {
        match self.opts.kind {
            PlaylistKind::Live => self.live_window_start(),
            PlaylistKind::Event => 0,
        }
    }

    /// End of the newest listed media, in seconds on the output timeline.
    fn live_edge(&self) -> f64 {
        match (&self.open, self.segments.back()) {
            (Some(o), _) if !o.parts.is_empty() => o.end_secs(),
            (_, Some(s)) => s.end_secs(),
            _ => 0.0,
        }
    }

    fn prune(&mut self) {
        let keep_from = self.live_window_start().saturating_sub(self.opts.grace);
        match self.opts.kind {
            PlaylistKind::Live => {
                for _ in 0..keep_from {
                    if let Some(seg) = self.segments.pop_front() {
                        self.dropped_discontinuities += u64::from(seg.discontinuity);
                        self.event(Event::SegmentExpired { msn: seg.msn });
                    }
                }
            }
            PlaylistKind::Event => {
                let mut expired = Vec::new();
                let from = self.first_held.min(keep_from);
                for seg in self.segments.range_mut(from..keep_from) {
                    if seg.bytes.take().is_some() {
                        seg.parts.clear();
                        expired.push(seg.msn);
                    }
                }
                self.first_held = self.first_held.max(keep_from);
                for msn in expired {
                    self.event(Event::SegmentExpired { msn });
                }
            }
        }
        // Parts stay one target duration longer than they are listed.
        let horizon = self.live_edge() - 4.0 * self.target_duration() as f64;
        for seg in self.segments.iter_mut().rev() {
            if seg.end_secs() < horizon {
                if seg.parts.is_empty() {
                    break; // older ones were cleared before
                }
                seg.parts.clear();
            }
        }
        let oldest_init = self
            .segments
            .front()
            .map_or(self.init_version, |s| s.init_version);
        self.inits
            .retain(|v, _| *v >= oldest_init || *v == self.init_version);
    }

    fn event(&mut self, e: Event) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// `EXT-X-TARGETDURATION`: the ceiling of the larger of the configured target and the
    /// longest segment ever made. It only grows (it grows only if a GOP is longer than the
    /// target).
    pub fn target_duration(&self) -> u64 {
        let configured = self.opts.target_duration.as_millis().div_ceil(1000);
        u64::try_from(configured)
            .unwrap_or(u64::MAX)
            .max(self.longest)
    }

    /// Whether the playlist has `EXT-X-ENDLIST`.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    fn ll(&self) -> Option<f64> {
        if self.phase == Phase::Finished {
            return None;
        }
        self.opts.part_target.map(|d| d.as_secs_f64())
    }

    /// The media playlist, or `None` while nothing is listed yet (before the first part, or
    /// the first segment without LL-HLS).
    pub fn media_playlist(&self) -> Option<String> {
        let start = self.playlist_start();
        let ll = self.ll();
        let open = self
            .open
            .as_ref()
            .filter(|o| ll.is_some() && !o.parts.is_empty());
        let listed = self.segments.len() - start;
        if listed == 0 && open.is_none() {
            return None;
        }
        let td = self.target_duration();
        let mut out = String::with_capacity(256 + 160 * listed);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{td}\n",
            playlist::VERSION
        );
        if self.opts.kind == PlaylistKind::Event {
            let kind = if self.is_finished() { "VOD" } else { "EVENT" };
            let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{kind}");
        }
        if let Some(pt) = ll {
            let _ = write!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n\
                 #EXT-X-PART-INF:PART-TARGET={pt:.3}\n",
                3.0 * pt
            );
        }
        let first_msn = self
            .segments
            .get(start)
            .map(|s| s.msn)
            .or(open.map(|o| o.msn))
            .unwrap_or(0);
        let dseq = self.dropped_discontinuities
            + self
                .segments
                .iter()
                .take(start)
                .filter(|s| s.discontinuity)
                .count() as u64;
        let _ = write!(
            out,
            "#EXT-X-MEDIA-SEQUENCE:{first_msn}\n#EXT-X-DISCONTINUITY-SEQUENCE:{dseq}\n"
        );
        let parts_from = self.live_edge() - 3.0 * td as f64;
        let mut map = None;
        let mut head = |out: &mut String, disc: bool, init: u32, pdt: Option<i64>| {
            if disc {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(init) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", playlist::init_uri(init));
                map = Some(init);
            }
            if let Some(ms) = pdt {
                let _ = writeln!(
                    out,
                    "#EXT-X-PROGRAM-DATE-TIME:{}",
                    playlist::program_date_time(ms)
                );
            }
        };
        for seg in self.segments.iter().skip(start) {
            head(&mut out, seg.discontinuity, seg.init_version, seg.pdt_ms);
            if ll.is_some() && seg.end_secs() > parts_from {
                write_parts(&mut out, seg.msn, &seg.parts, seg.timescale);
            }
            let _ = write!(
                out,
                "#EXTINF:{:.5},\n{}\n",
                seg.duration_secs(),
                playlist::segment_uri(seg.msn)
            );
        }
        if let Some(o) = open {
            head(&mut out, o.discontinuity, o.init_version, o.pdt_ms);
            write_parts(&mut out, o.msn, &o.parts, o.timescale);
        }
        if ll.is_some() && self.phase == Phase::Running {
            if let Some(o) = &self.open {
                let next = u32::try_from(o.parts.len()).unwrap_or(u32::MAX);
                let _ = writeln!(
                    out,
                    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                    playlist::part_uri(o.msn, next)
                );
            }
        }
        if self.is_finished() {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        Some(out)
    }

    /// The bytes behind a name of the URI scheme (`init-{v}.mp4`, `seg-{msn}.m4s`,
    /// `part-{msn}.{part}.m4s`), while held.
    pub fn segment(&self, name: &str) -> Option<Bytes> {
        match Resource::parse(name)? {
            Resource::Init(v) => self.init(v),
            Resource::Segment(msn) => self.find(msn)?.bytes.as_ref().map(SegmentBytes::get),
            Resource::Part(msn, part) => self.part(msn, part),
        }
    }

    /// An init segment by version, while a held segment uses it.
    pub fn init(&self, version: u32) -> Option<Bytes> {
        self.inits.get(&version).cloned()
    }

    /// A part (LL-HLS only), while held.
    pub fn part(&self, msn: u64, part: u32) -> Option<Bytes> {
        self.opts.part_target?;
        let parts = match &self.open {
            Some(o) if o.msn == msn => &o.parts,
            _ => &self.find(msn)?.parts,
        };
        Some(parts.get(usize::try_from(part).ok()?)?.bytes.clone())
    }

    fn find(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(i)
    }

    /// The newest part: (msn, index).
    fn latest_part(&self) -> Option<(u64, u32)> {
        if let Some(o) = self.open.as_ref().filter(|o| !o.parts.is_empty()) {
            return Some((o.msn, u32::try_from(o.parts.len() - 1).unwrap_or(u32::MAX)));
        }
        self.segments
            .back()
            .map(|s| (s.msn, s.part_count.saturating_sub(1)))
    }

    /// A held segment's `EXTINF` duration (seconds, as the playlist writes it) and whether
    /// `EXT-X-DISCONTINUITY` precedes it: what a writer of the segments (the recorder) needs
    /// without rendering and parsing the whole playlist per segment.
    pub fn segment_listing(&self, msn: u64) -> Option<(f64, bool)> {
        let seg = self.find(msn)?;
        let extinf = format!("{:.5}", seg.duration_secs());
        Some((
            extinf.parse().unwrap_or(seg.duration_secs()),
            seg.discontinuity,
        ))
    }

    /// How to answer a playlist request with `_HLS_msn=msn` (and `_HLS_part=part`):
    /// ready once the playlist lists segment `msn` (or, with a part, that part or any later
    /// one). Without LL-HLS the part is ignored. A finished stream is always ready.
    pub fn reload_status(&self, msn: u64, part: Option<u32>) -> ReloadStatus {
        if self.is_finished() {
            return ReloadStatus::Ready;
        }
        let last_segment = self.segments.back().map(|s| i128::from(s.msn));
        let open_msn = self.open.as_ref().map(|o| i128::from(o.msn));
        let reference = last_segment
            .or(open_msn.map(|m| m - 1))
            .unwrap_or(i128::from(self.next_msn) - 1);
        if i128::from(msn) > reference + 2 {
            return ReloadStatus::BadRequest;
        }
        let part = part.filter(|_| self.opts.part_target.is_some());
        let Some(p) = part else {
            return if last_segment.is_some_and(|l| l >= i128::from(msn)) {
                ReloadStatus::Ready
            } else {
                ReloadStatus::Wait
            };
        };
        let latest = self.latest_part();
        if latest.is_some_and(|l| l >= (msn, p)) {
            return ReloadStatus::Ready;
        }
        // Advance Part Limit: 3 / PART-TARGET below one second, else 3.
        let pt = self.opts.part_target.map_or(1.0, |d| d.as_secs_f64());
        let limit = if pt < 1.0 { 3.0 / pt } else { 3.0 };
        let ahead = match latest {
            Some((lm, lp)) if lm == msn => f64::from(p) - f64::from(lp),
            _ => f64::from(p) + 1.0,
        };
        if ahead > limit {
            ReloadStatus::BadRequest
        } else {
            ReloadStatus::Wait
        }
    }

    /// Whether a blocking reload for `msn` (and `part`) can be answered now.
    pub fn is_ready(&self, msn: u64, part: Option<u32>) -> bool {
        self.reload_status(msn, part) == ReloadStatus::Ready
    }

    /// This rendition's master playlist entry, measured over the listed segments, or `None`
    /// before the first segment. `BANDWIDTH` is the peak segment bit rate.
    pub fn rendition(&self, uri: &str) -> Option<Rendition> {
        let listed: Vec<&Segment> = self.segments.iter().skip(self.playlist_start()).collect();
        let mut peak = 0f64;
        let (mut bits, mut secs, mut frames) = (0f64, 0f64, 0u64);
        for s in &listed {
            let d = s.duration_secs();
            if d > 0.0 {
                peak = peak.max(s.size as f64 * 8.0 / d);
            }
            bits += s.size as f64 * 8.0;
            secs += d;
            frames += u64::from(s.video_frames);
        }
        if secs <= 0.0 {
            return None;
        }
        let video = self.tracks.video.as_ref();
        Some(Rendition {
            uri: uri.to_owned(),
            bandwidth: peak.ceil() as u64,
            average_bandwidth: Some((bits / secs).ceil() as u64),
            codecs: self.tracks.codecs(),
            resolution: video.map(|v| (u32::from(v.width), u32::from(v.height))),
            frame_rate: video.map(|v| v.fps.unwrap_or(frames as f64 / secs)),
        })
    }
}

fn write_parts(out: &mut String, msn: u64, parts: &[PartInfo], timescale: u32) {
    for (i, p) in parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
            p.duration as f64 / f64::from(timescale),
            playlist::part_uri(msn, u32::try_from(i).unwrap_or(u32::MAX))
        );
        out.push_str(if p.independent {
            ",INDEPENDENT=YES\n"
        } else {
            "\n"
        });
    }
}

/// 90 kHz output time (non-negative) to ticks of `timescale`.
fn to_ticks(t90k: i64, timescale: u32) -> u64 {
    let t = u128::try_from(t90k).unwrap_or(0);
    u64::try_from(t * u128::from(timescale) / u128::from(TIMESCALE)).unwrap_or(u64::MAX)
}

/// Ticks of `timescale` to 90 kHz.
fn from_ticks(t: u64, timescale: u32) -> i64 {
    i64::try_from(u128::from(t) * u128::from(TIMESCALE) / u128::from(timescale)).unwrap_or(i64::MAX)
}

fn to_ticks_duration(d: Duration, timescale: u32) -> u64 {
    u64::try_from(d.as_nanos() * u128::from(timescale) / 1_000_000_000).unwrap_or(u64::MAX)
}
