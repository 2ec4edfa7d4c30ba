//! The HLS output: one LL-HLS packager per live channel, fed from the channel's bus, whose
//! playlists and files the HTTP edge serves.
//!
//! # Life of a channel's HLS
//!
//! - **Start: eager.** [`Hls::run`] looks at the engine every [`HlsConfig::scan_interval`]
//!   (and at once when [`Hls::wake`] is called, e.g. on a publish) and starts one task per
//!   channel whose input is live. The task subscribes to the bus from the cached GOP, so the
//!   first parts exist a moment after the publisher's first keyframe, before any viewer asks:
//!   a new viewer's first playlist already lists media (time to first frame is one request
//!   round, not a segment duration).
//! - **Feeding.** Frames become [`lunora_hls::Sample`]s (AVCC H.264 and raw AAC pass as they
//!   are); codec configuration frames become the packager's [`StreamConfig`] (a changed one
//!   makes a new init segment version with a discontinuity). HEVC is not packaged (its
//!   sample entry needs the picture size, which the engine does not parse): such a channel
//!   gets an audio-only rendition.
//! - **Source changes.** The switch keeps the output timeline continuous across a takeover or
//!   failover, but the new source is another encoder: [`Hls::source_changed`] (the hook the
//!   control plane calls when an input starts publishing, and the switch on a failover) drains
//!   the frames of the old source already queued, then marks an `EXT-X-DISCONTINUITY` before
//!   the new source's first keyframe. A channel seen idle between two frames gets one too.
//! - **Idle.** When the channel has no live input, the task keeps the last window for
//!   [`HlsConfig::idle_grace`] (a publisher reconnecting within it continues the same playlist
//!   after a discontinuity), then ends; requests answer "not live" from then on.
//! - **Reading.** Handlers take a read lock on a rendition's packager only to copy a playlist
//!   or a `Bytes` handle; blocking playlist reloads wait on a `watch` bumped by every new part
//!   or segment ([`HlsRendition::wait_for`]), never by polling.
//! - **Memory** is bounded by the packager's window: [`PackagerOptions::window`] segments
//!   (at least three target durations) plus [`PackagerOptions::grace`], and the parts of the
//!   last four target durations.
//!
//! # Ladder
//!
//! Besides `source`, a channel's HLS carries the rungs of its ladder: presets the
//! [`LadderSource`] (the control plane's per-channel setting) answers, each encoded by the
//! same machinery as a destination's preset ([`Engine::rendition`]), so a rung and a
//! destination with the same encoding share one FFmpeg. A rung is named by its height
//! (`480p`) and packaged like the source, with LL-HLS parts. Rungs never upscale: a rung as
//! tall as the input or taller is left out (one as tall would re-encode what `source`
//! already carries at that size); the set is worked out again when the input's picture size
//! or the ladder changes ([`Hls::ladder_changed`]). A channel whose video is not H.264 (its
//! size is unknown here) gets no rungs. A rung whose encode fails
//! ([`RenditionState::Failed`]) or ends is dropped from the master playlist; the source is
//! untouched. Rungs end with the channel's output.
//!
//! # URLs
//!
//! Each run of a channel's packager has an **epoch** (a random token): media sequence numbers
//! restart at 0 with a new packager, so the file URLs carry the epoch
//! (`/hls/{channel}/{rendition}/{epoch}/seg-{msn}.m4s`) and can be cached as immutable. The
//! HTTP edge rewrites the packager's relative URIs with [`rewrite_uris`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use lunora_hls::{
    AudioConfig, Event, HlsError, Packager, PackagerOptions, ReloadStatus, Rendition, Sample,
    StreamConfig, VideoConfig,
};
use lunora_transcode::{EncodingKey, Preset};
use parking_lot::RwLock;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use crate::channel::{Channel, InputState};
use crate::frame::{Codec, Frame, Track};
use crate::transcode::{Rendition as Encode, RenditionState};
use crate::Engine;

/// Name of the rendition that carries the channel's own encoding (no transcoding).
pub const SOURCE_RENDITION: &str = "source";

/// A channel's ladder encodes stop this long after the last HLS request for it.
pub const LADDER_IDLE: Duration = Duration::from_secs(60);

/// What [`LadderSource::ladder`] answers.
pub type LadderFuture = Pin<Box<dyn Future<Output = Vec<Preset>> + Send + 'static>>;

/// Where a channel's ladder comes from (the control plane's stored per-channel setting).
pub trait LadderSource: Send + Sync {
    /// The presets of the channel's ladder, before the rungs too tall for the input are left
    /// out. Empty: source only.
    fn ladder(&self, channel_id: Uuid) -> LadderFuture;
}

/// The rungs of `ladder` an input `source_height` pixels tall gets: those strictly shorter
/// (never upscale; a rung as tall as the input is what `source` already carries), one per
/// height and per encoding, tallest first. No known height (no H.264 video): none.
pub fn select_rungs(ladder: &[Preset], source_height: Option<u32>) -> Vec<Preset> {
    let Some(h) = source_height else {
        return Vec::new();
    };
    let mut out: Vec<Preset> = Vec::new();
    for p in ladder {
        let dup = out
            .iter()
            .any(|o| o.video.height == p.video.height || o.encoding_key() == p.encoding_key());
        if p.video.height < h && !dup {
            out.push(p.clone());
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.video.height));
    out
}

/// The name of a rung's rendition in URLs and the master playlist, e.g. `480p`.
pub fn rung_name(preset: &Preset) -> String {
    format!("{}p", preset.video.height)
}

/// Settings of the HLS output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    /// Packager settings of every live rendition (LL-HLS with 400 ms parts and 2 s segments by
    /// default).
    pub packager: PackagerOptions,
    /// How long a channel without a live input keeps its playlist before the packager stops.
    pub idle_grace: Duration,
    /// How often the engine is scanned for channels that went live.
    pub scan_interval: Duration,
    /// `Some(grace)`: package a channel only while it is watched — [`Hls::start`] is called
    /// by the HTTP side on a request, and the packager stops `grace` after the last one
    /// ([`LiveHls::touch`]). `None`: every live channel is packaged from the moment it goes
    /// live. On demand, a new viewer still gets media at once: the packager starts from the
    /// channel's cached GOP.
    pub on_demand: Option<Duration>,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            packager: PackagerOptions::default(),
            idle_grace: Duration::from_secs(10),
            scan_interval: Duration::from_millis(250),
            on_demand: None,
        }
    }
}

/// The answer to a blocking playlist reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The playlist has what was asked for.
    Ready,
    /// Not within the time allowed (the HTTP edge answers 503).
    TimedOut,
    /// Too far ahead of the live edge (400).
    BadRequest,
    /// The stream ended while waiting.
    Gone,
}

/// Every channel's HLS output.
pub struct Hls {
    engine: Arc<Engine>,
    config: HlsConfig,
    streams: RwLock<HashMap<Uuid, Arc<LiveHls>>>,
    wake: Notify,
    ladders: RwLock<Option<Arc<dyn LadderSource>>>,
}

impl Hls {
    pub fn new(engine: Arc<Engine>, config: HlsConfig) -> Arc<Self> {
        Arc::new(Hls {
            engine,
            config,
            streams: RwLock::new(HashMap::new()),
            wake: Notify::new(),
            ladders: RwLock::new(None),
        })
    }

    /// Where channels' ladders come from; without one, channels get the source only.
    pub fn set_ladder_source(&self, source: Arc<dyn LadderSource>) {
        *self.ladders.write() = Some(source);
    }

    /// The hook for a changed ladder setting: a running output works its rungs out again.
    pub fn ladder_changed(&self, channel_id: Uuid) {
        if let Some(s) = self.stream(channel_id) {
            s.ladder_version.send_modify(|n| *n += 1);
        }
    }

    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    /// The HLS output of a channel while it runs (live, or idle within the grace).
    pub fn stream(&self, channel_id: Uuid) -> Option<Arc<LiveHls>> {
        self.streams.read().get(&channel_id).cloned()
    }

    /// Every running output.
    pub fn streams(&self) -> Vec<Arc<LiveHls>> {
        self.streams.read().values().cloned().collect()
    }

    /// Looks for live channels now instead of at the next scan.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The hook for a source change on a channel (an input took over or started publishing,
    /// or the switch failed over): the next segment starts with a discontinuity.
    pub fn source_changed(&self, channel_id: Uuid) {
        if let Some(s) = self.stream(channel_id) {
            s.discontinuity.send_modify(|n| *n += 1);
        }
        self.wake();
    }

    /// Starts and forgets packager tasks until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.config.on_demand.is_some() {
            // Packagers are started by requests (`start`); nothing to scan for.
            let _ = shutdown.wait_for(|s| *s).await;
            return;
        }
        loop {
            for channel in self.engine.channels() {
                if channel.status().input_state == InputState::Live {
                    self.start(&channel);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.scan_interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// Starts the packager task of `channel` unless one runs. Answers its output.
    pub fn start(self: &Arc<Self>, channel: &Arc<Channel>) -> Arc<LiveHls> {
        let id = channel.id();
        let mut streams = self.streams.write();
        if let Some(s) = streams.get(&id) {
            return s.clone();
        }
        let live = Arc::new(LiveHls {
            channel_id: id,
            epoch: new_epoch(),
            source: Arc::new(HlsRendition::new(
                SOURCE_RENDITION,
                self.config.packager.clone(),
                None,
            )),
            rungs: RwLock::new(Vec::new()),
            source_height: watch::channel(None).0,
            ladder_version: watch::channel(0).0,
            watched: watch::channel(false).0,
            last_request: parking_lot::Mutex::new(None),
            stopped: watch::channel(false).0,
            discontinuity: watch::channel(0).0,
            keyframe: RwLock::new(None),
            started_at: SystemTime::now(),
        });
        streams.insert(id, live.clone());
        drop(streams);
        tracing::info!(channel = %id, epoch = %live.epoch, "HLS packager started");
        metrics::gauge!("lunora_hls_channels").increment(1.0);
        // Subscribed here, not in the task, so no frame sent after this call is missed.
        let sub = channel.subscribe();
        tokio::spawn(run_channel(
            self.clone(),
            channel.clone(),
            live.clone(),
            sub,
        ));
        tokio::spawn(run_ladder(self.clone(), live.clone()));
        live
    }

    fn remove(&self, live: &Arc<LiveHls>) {
        let mut streams = self.streams.write();
        if streams
            .get(&live.channel_id)
            .is_some_and(|s| Arc::ptr_eq(s, live))
        {
            streams.remove(&live.channel_id);
        }
    }
}

/// One channel's HLS output.
pub struct LiveHls {
    channel_id: Uuid,
    epoch: String,
    source: Arc<HlsRendition>,
    /// The ladder's rungs that run, tallest first.
    rungs: RwLock<Vec<Rung>>,
    /// The input's picture height (H.264 only), set by the source task.
    source_height: watch::Sender<Option<u32>>,
    /// Bumped when the channel's ladder setting changes.
    ladder_version: watch::Sender<u64>,
    /// True while HLS clients ask for this output (a request in the last [`LADDER_IDLE`]):
    /// the ladder's encodes run only then, so a channel nobody watches over HLS costs no
    /// FFmpeg (the source rendition is packaged regardless, for a fast first frame).
    watched: watch::Sender<bool>,
    last_request: parking_lot::Mutex<Option<Instant>>,
    /// Turns true when the output ends; rungs end with it.
    stopped: watch::Sender<bool>,
    discontinuity: watch::Sender<u64>,
    /// The newest video keyframe with the configuration record it decodes with.
    keyframe: RwLock<Option<(Arc<Frame>, Bytes)>>,
    started_at: SystemTime,
}

impl LiveHls {
    /// An HLS client asked for something of this output: the ladder runs (again).
    pub fn touch(&self) {
        *self.last_request.lock() = Some(Instant::now());
        self.watched
            .send_if_modified(|w| !std::mem::replace(w, true));
    }

    pub fn channel_id(&self) -> Uuid {
        self.channel_id
    }

    /// The token in this run's file URLs.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Whether the stream still runs.
    pub fn is_running(&self) -> bool {
        !self.source.ended.load(Ordering::Acquire)
    }

    /// The renditions, source first, then the ladder's rungs tallest first.
    pub fn renditions(&self) -> Vec<Arc<HlsRendition>> {
        let mut out = vec![self.source.clone()];
        out.extend(self.rungs.read().iter().map(|r| r.hls.clone()));
        out
    }

    /// The encodes of the running rungs (shared with destinations of the same encoding).
    pub fn rung_encodes(&self) -> Vec<Arc<Encode>> {
        self.rungs.read().iter().map(|r| r.encode.clone()).collect()
    }

    fn remove_rung(&self, hls: &Arc<HlsRendition>) {
        self.rungs.write().retain(|r| !Arc::ptr_eq(&r.hls, hls));
    }

    pub fn rendition(&self, name: &str) -> Option<Arc<HlsRendition>> {
        self.renditions().into_iter().find(|r| r.name == name)
    }

    /// The master playlist (`{rendition}/media.m3u8` URIs), or `None` while no rendition
    /// knows its codecs yet. A rendition without a complete segment yet is announced with
    /// `fallback_bandwidth` (e.g. the input's measured bit rate).
    pub fn master_playlist(&self, fallback_bandwidth: u64) -> Option<String> {
        let variants: Vec<Rendition> = self
            .renditions()
            .iter()
            .filter_map(|r| r.variant(fallback_bandwidth))
            .collect();
        if variants.is_empty() {
            return None;
        }
        Some(lunora_hls::master_playlist(&variants))
    }

    /// Annex B bytes (SPS, PPS, then the picture) of the newest H.264 keyframe, for a
    /// thumbnail decoder; with the keyframe's dts so a caller can tell a new one.
    pub fn keyframe_annexb(&self) -> Option<(i64, Bytes)> {
        let (frame, record) = self.keyframe.read().clone()?;
        let rec = lunora_flv::AvcDecoderConfigurationRecord::parse(record).ok()?;
        let mut out = BytesMut::with_capacity(frame.data.len() + 256);
        for ps in rec.sps.iter().chain(rec.pps.iter()) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(ps);
        }
        lunora_flv::avcc_to_annexb(&frame.data, rec.nal_length_size, &mut out).ok()?;
        Some((frame.dts, out.freeze()))
    }
}

/// A running ladder rung: its encode, its packaged rendition, and its task's stop signal
/// (dropping the sender stops the task).
struct Rung {
    key: EncodingKey,
    height: u32,
    encode: Arc<Encode>,
    hls: Arc<HlsRendition>,
    _stop: watch::Sender<bool>,
}

/// One rendition: its packager and the signal of its progress.
pub struct HlsRendition {
    name: String,
    /// Announced bandwidth before the first complete segment (a rung's preset bitrate);
    /// `None` uses the caller's fallback (the input's measured bitrate).
    nominal_bandwidth: Option<u64>,
    feed: RwLock<PackagerFeed>,
    /// Bumped on every new part, segment or init, and at the end.
    progress: watch::Sender<u64>,
    ended: AtomicBool,
    /// Bumped under the packager's write lock whenever the playlist may have changed (a new
    /// part, segment or init), so that a reader holding the read lock sees the version of
    /// exactly the state it reads.
    version: AtomicU64,
    /// The media playlist rendered at `version`: blocking reloads of every player of the
    /// rendition answer the same text until the next part, rendered once.
    playlist: parking_lot::Mutex<Option<(u64, Arc<str>)>>,
}

impl HlsRendition {
    fn new(name: &str, options: PackagerOptions, nominal_bandwidth: Option<u64>) -> Self {
        HlsRendition {
            name: name.to_owned(),
            nominal_bandwidth,
            feed: RwLock::new(PackagerFeed::new(options)),
            progress: watch::channel(0).0,
            ended: AtomicBool::new(false),
            version: AtomicU64::new(0),
            playlist: parking_lot::Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The media playlist with the packager's relative URIs, or `None` before the first
    /// part. Shared: every player of the rendition gets the same text until the next part,
    /// without a copy per request.
    pub fn media_playlist(&self) -> Option<Arc<str>> {
        let feed = self.feed.read();
        let version = self.version.load(Ordering::Acquire);
        if let Some((v, text)) = &*self.playlist.lock() {
            if *v == version {
                return Some(text.clone());
            }
        }
        let text: Arc<str> = feed.packager.as_ref()?.media_playlist()?.into();
        *self.playlist.lock() = Some((version, text.clone()));
        Some(text)
    }

    /// An init segment, segment or part by its name (`init-1.mp4`, `seg-3.m4s`,
    /// `part-3.1.m4s`) while it is held.
    pub fn file(&self, name: &str) -> Option<Bytes> {
        self.feed.read().packager.as_ref()?.segment(name)
    }

    /// Target duration in seconds (the configured one before the packager starts).
    pub fn target_duration(&self) -> u64 {
        let feed = self.feed.read();
        match &feed.packager {
            Some(p) => p.target_duration(),
            None => feed.options.target_duration.as_secs().max(1),
        }
    }

    /// The master playlist entry of this rendition.
    fn variant(&self, fallback_bandwidth: u64) -> Option<Rendition> {
        let feed = self.feed.read();
        let p = feed.packager.as_ref()?;
        let uri = format!("{}/media.m3u8", self.name);
        if let Some(r) = p.rendition(&uri) {
            return Some(r);
        }
        let config = p.config();
        Some(Rendition {
            uri,
            bandwidth: self
                .nominal_bandwidth
                .unwrap_or(fallback_bandwidth)
                .max(64_000),
            average_bandwidth: None,
            codecs: config.codecs().ok()?,
            resolution: config.resolution().ok().flatten(),
            frame_rate: config.frame_rate().ok().flatten(),
        })
    }

    fn reload_status(&self, msn: u64, part: Option<u32>) -> ReloadStatus {
        match self.feed.read().packager.as_ref() {
            Some(p) => p.reload_status(msn, part),
            // Nothing yet: only the very start may be waited for.
            None if msn <= 1 && part.is_none_or(|p| p < 8) => ReloadStatus::Wait,
            None => ReloadStatus::BadRequest,
        }
    }

    /// Waits until the playlist lists segment `msn` (part `part` of it, with LL-HLS), at most
    /// `timeout`. Woken by the packager task; never polls.
    pub async fn wait_for(&self, msn: u64, part: Option<u32>, timeout: Duration) -> Reload {
        let deadline = Instant::now() + timeout;
        let mut progress = self.progress.subscribe();
        loop {
            match self.reload_status(msn, part) {
                ReloadStatus::Ready => return Reload::Ready,
                ReloadStatus::BadRequest => return Reload::BadRequest,
                ReloadStatus::Wait => {}
            }
            if self.ended.load(Ordering::Acquire) {
                return Reload::Gone;
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Reload::Gone,
                Err(_) => return Reload::TimedOut,
            }
        }
    }

    /// [`Self::file`], but a part or segment that is about to exist (the preload hint, the
    /// segment being written) is waited for, at most `timeout`. Unknown names, names too far
    /// ahead and expired files answer `None`.
    pub async fn wait_for_file(&self, name: &str, timeout: Duration) -> Option<Bytes> {
        if let Some(bytes) = self.file(name) {
            return Some(bytes);
        }
        let (msn, part) = match lunora_hls::Resource::parse(name)? {
            lunora_hls::Resource::Init(_) => return None,
            lunora_hls::Resource::Segment(msn) => (msn, None),
            lunora_hls::Resource::Part(msn, part) => (msn, Some(part)),
        };
        match self.wait_for(msn, part, timeout).await {
            Reload::Ready => self.file(name),
            _ => None,
        }
    }

    fn bump(&self) {
        self.progress.send_modify(|n| *n += 1);
    }

    /// Feeds one frame to the packager (a pending discontinuity goes before the next media
    /// frame) and wakes waiters on a new part, segment or init. Answers the reason and the
    /// count of refusals when the packager refused it.
    fn feed_frame(&self, frame: &Frame, pending: &mut bool) -> Option<(String, u64)> {
        let mut feed = self.feed.write();
        if *pending && !frame.config {
            feed.discontinuity();
            *pending = false;
        }
        let refused = match feed.push(frame, unix_ms()) {
            Fed::Ok => None,
            Fed::Refused(reason) => Some((reason, feed.refused)),
        };
        let mut progressed = false;
        while let Some(event) = feed.poll_event() {
            match event {
                Event::PartReady { .. } | Event::SegmentReady { .. } | Event::InitReady { .. } => {
                    progressed = true
                }
                Event::TimestampJump { track, from, to } => {
                    tracing::debug!(rendition = %self.name, ?track, from, to, "HLS timestamp jump: discontinuity");
                }
                Event::SegmentExpired { .. } => {}
            }
        }
        if progressed {
            self.version.fetch_add(1, Ordering::Release);
        }
        drop(feed);
        if progressed {
            self.bump();
        }
        refused
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.bump();
    }
}

/// Frames in, one packager fed: tracks the codec configurations, builds the packager at the
/// first media frame that has its configuration, and turns frames into samples. Shared by the
/// live output and the recorder.
pub(crate) struct PackagerFeed {
    pub(crate) options: PackagerOptions,
    pub(crate) packager: Option<Packager>,
    video: Option<Bytes>,
    audio: Option<Bytes>,
    warned_hevc: bool,
    pub(crate) refused: u64,
}

/// What a frame did to a [`PackagerFeed`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Config recorded, sample pushed, or frame skipped.
    Ok,
    /// The packager refused it (logged by the caller at most once in a while).
    Refused(String),
}

impl PackagerFeed {
    pub(crate) fn new(options: PackagerOptions) -> Self {
        PackagerFeed {
            options,
            packager: None,
            video: None,
            audio: None,
            warned_hevc: false,
            refused: 0,
        }
    }

    fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            video: self
                .video
                .clone()
                .map(|record| VideoConfig::H264 { record }),
            audio: self.audio.clone().map(|asc| AudioConfig { asc }),
        }
    }

    /// The current H.264 configuration record.
    pub(crate) fn video_record(&self) -> Option<&Bytes> {
        self.video.as_ref()
    }

    pub(crate) fn push(&mut self, frame: &Frame, now_ms: i64) -> Fed {
        if frame.config {
            match frame.codec {
                Codec::H264 => self.video = Some(frame.data.clone()),
                Codec::Aac => self.audio = Some(frame.data.clone()),
                Codec::Hevc => {
                    if !self.warned_hevc {
                        self.warned_hevc = true;
                        tracing::warn!("HEVC video is not packaged for HLS or recordings");
                    }
                    return Fed::Ok;
                }
            }
            let config = self.stream_config();
            if let Some(p) = &mut self.packager {
                if let Err(e) = p.set_config(config) {
                    return self.refused(e);
                }
            }
            return Fed::Ok;
        }
        let sample = match (frame.track, frame.codec) {
            (Track::Video, Codec::H264) if self.video.is_some() => {
                Sample::video(frame.dts, frame.pts, frame.keyframe, frame.data.clone())
            }
            (Track::Audio, Codec::Aac) if self.audio.is_some() => {
                Sample::audio(frame.dts, frame.data.clone())
            }
            _ => return Fed::Ok,
        };
        if self.packager.is_none() {
            match Packager::new(self.options.clone(), self.stream_config()) {
                Ok(p) => self.packager = Some(p),
                Err(e) => return self.refused(e),
            }
        }
        let Some(p) = &mut self.packager else {
            return Fed::Ok;
        };
        match p.push(sample, now_ms) {
            Ok(()) => Fed::Ok,
            Err(e) => self.refused(e),
        }
    }

    fn refused(&mut self, e: HlsError) -> Fed {
        self.refused += 1;
        Fed::Refused(e.to_string())
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.packager.as_mut()?.poll_event()
    }

    pub(crate) fn discontinuity(&mut self) {
        if let Some(p) = &mut self.packager {
            p.discontinuity();
        }
    }
}

/// Unix milliseconds now.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_epoch() -> String {
    let n: u64 = rand::random();
    format!("{:010x}", n & 0xff_ffff_ffff)
}

async fn run_channel(
    hls: Arc<Hls>,
    channel: Arc<Channel>,
    live: Arc<LiveHls>,
    mut sub: crate::Subscription,
) {
    let id = channel.id();
    let rendition = live.source.clone();
    let mut discontinuities = live.discontinuity.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since: Option<Instant> = None;
    let started = Instant::now();
    let mut pending_discontinuity = false;
    let mut last_refusal: Option<Instant> = None;
    let mut feed_one = |frame: &Arc<Frame>, pending: &mut bool| {
        if frame.codec == Codec::H264 {
            if frame.config {
                let height = lunora_flv::AvcDecoderConfigurationRecord::parse(frame.data.clone())
                    .ok()
                    .and_then(|r| r.parse_sps().ok())
                    .map(|sps| sps.height);
                live.source_height.send_if_modified(|h| {
                    let changed = *h != height;
                    *h = height;
                    changed
                });
            } else if frame.is_video_keyframe() {
                if let Some(record) = rendition.feed.read().video_record().cloned() {
                    *live.keyframe.write() = Some((frame.clone(), record));
                }
            }
        }
        if let Some((reason, refused)) = rendition.feed_frame(frame, pending) {
            let now = Instant::now();
            if last_refusal.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
                last_refusal = Some(now);
                tracing::warn!(channel = %id, %reason, refused, "HLS packager refused a frame");
            }
        }
    };
    loop {
        tokio::select! {
            frame = sub.recv() => match frame {
                Some(frame) => feed_one(&frame, &mut pending_discontinuity),
                None => break, // the channel closed
            },
            changed = discontinuities.changed() => {
                if changed.is_err() {
                    break;
                }
                // Frames queued before the change belong to the old source.
                while let Ok(frame) = sub.try_recv() {
                    feed_one(&frame, &mut pending_discontinuity);
                }
                pending_discontinuity = true;
            }
            _ = tick.tick() => {
                if channel.is_closed() {
                    break;
                }
                if let Some(grace) = hls.config.on_demand {
                    let last = (*live.last_request.lock()).unwrap_or(started);
                    if last.elapsed() >= grace {
                        tracing::info!(channel = %id, "nobody watches the channel's HLS");
                        break;
                    }
                }
                if channel.status().input_state == InputState::Live {
                    idle_since = None;
                } else {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    pending_discontinuity = true;
                    if since.elapsed() >= hls.config.idle_grace {
                        break;
                    }
                }
            }
        }
    }
    hls.remove(&live);
    live.stopped.send_replace(true);
    live.rungs.write().clear();
    rendition.ended.store(true, Ordering::Release);
    rendition.bump();
    metrics::gauge!("lunora_hls_channels").decrement(1.0);
    tracing::info!(channel = %id, "HLS packager stopped");
}

/// Works the rungs of a channel's output out whenever the input's picture height or the
/// channel's ladder setting changes, until the output ends.
async fn run_ladder(hls: Arc<Hls>, live: Arc<LiveHls>) {
    let mut height = live.source_height.subscribe();
    let mut version = live.ladder_version.subscribe();
    let mut watched = live.watched.subscribe();
    let mut stopped = live.stopped.subscribe();
    let mut idle_check = tokio::time::interval(LADDER_IDLE / 4);
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The height may have been set before this task subscribed: look once at the start.
    height.mark_changed();
    loop {
        tokio::select! {
            r = height.changed() => if r.is_err() { break },
            r = version.changed() => if r.is_err() { break },
            r = watched.changed() => if r.is_err() { break },
            _ = idle_check.tick() => {
                let idle = live
                    .last_request
                    .lock()
                    .is_none_or(|at| at.elapsed() >= LADDER_IDLE);
                // Nobody asked for a while: the rungs' encodes stop until the next request.
                if !(idle && live.watched.send_if_modified(|w| std::mem::replace(w, false))) {
                    continue;
                }
            }
            _ = stopped.wait_for(|s| *s) => break,
        }
        let h = *height.borrow_and_update();
        version.borrow_and_update();
        let on = *watched.borrow_and_update();
        let source = hls.ladders.read().clone();
        let ladder = match (source, h) {
            (Some(source), Some(_)) if on => source.ladder(live.channel_id).await,
            _ => Vec::new(),
        };
        if *live.stopped.borrow() {
            break;
        }
        reconcile(&hls, &live, select_rungs(&ladder, h));
    }
    live.rungs.write().clear();
}

/// Stops the rungs not in `wanted` and starts the missing ones.
fn reconcile(hls: &Arc<Hls>, live: &Arc<LiveHls>, wanted: Vec<Preset>) {
    let id = live.channel_id;
    let keys: Vec<EncodingKey> = wanted.iter().map(Preset::encoding_key).collect();
    live.rungs.write().retain(|r| keys.contains(&r.key));
    for (preset, key) in wanted.into_iter().zip(keys) {
        if live.rungs.read().iter().any(|r| r.key == key) {
            continue;
        }
        let encode = match hls.engine.rendition(id, &preset) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(channel = %id, preset = %preset.id, error = %e, "HLS rung not started");
                continue;
            }
        };
        let name = rung_name(&preset);
        let bandwidth =
            u64::from(preset.video.bitrate_kbps + preset.audio.bitrate_kbps).saturating_mul(1000);
        let out = Arc::new(HlsRendition::new(
            &name,
            hls.config.packager.clone(),
            Some(bandwidth),
        ));
        let (stop, stop_rx) = watch::channel(false);
        // Subscribed before the task starts, from the cached GOP.
        let sub = encode.subscribe();
        tracing::info!(channel = %id, rendition = %name, preset = %preset.id, encoding = %key, "HLS rung started");
        {
            let mut rungs = live.rungs.write();
            rungs.push(Rung {
                key,
                height: preset.video.height,
                encode: encode.clone(),
                hls: out.clone(),
                _stop: stop,
            });
            rungs.sort_by_key(|r| std::cmp::Reverse(r.height));
        }
        tokio::spawn(run_rung(live.clone(), encode, out, sub, stop_rx));
    }
}

/// Packages one rung from its encode's bus until the rung is stopped, its encode fails or
/// ends; then drops it from the master playlist.
async fn run_rung(
    live: Arc<LiveHls>,
    encode: Arc<Encode>,
    out: Arc<HlsRendition>,
    mut sub: crate::Subscription,
    mut stop: watch::Receiver<bool>,
) {
    let id = live.channel_id;
    let mut status = encode.watch_status();
    let mut pending = false;
    let mut last_refusal: Option<Instant> = None;
    let mut dropped: Option<String> = None;
    if status.borrow_and_update().state == RenditionState::Failed {
        dropped = status.borrow().last_error.clone().or(Some("failed".into()));
    }
    while dropped.is_none() {
        tokio::select! {
            frame = sub.recv() => match frame {
                Some(frame) => {
                    if let Some((reason, refused)) = out.feed_frame(&frame, &mut pending) {
                        let now = Instant::now();
                        if last_refusal.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
                            last_refusal = Some(now);
                            tracing::warn!(channel = %id, rendition = %out.name, %reason, refused, "HLS packager refused a frame");
                        }
                    }
                }
                None => dropped = Some("its encode ended".into()),
            },
            changed = status.changed() => {
                if changed.is_err() {
                    dropped = Some("its encode ended".into());
                } else {
                    let s = status.borrow_and_update().clone();
                    match s.state {
                        RenditionState::Failed => {
                            dropped = Some(s.last_error.unwrap_or_else(|| "failed".into()))
                        }
                        RenditionState::Stopped => dropped = Some("its encode stopped".into()),
                        _ => {}
                    }
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    live.remove_rung(&out);
    out.end();
    match dropped {
        Some(reason) if !*live.stopped.borrow() => {
            tracing::warn!(channel = %id, rendition = %out.name, %reason, "HLS rung dropped from the master playlist");
        }
        _ => tracing::info!(channel = %id, rendition = %out.name, "HLS rung stopped"),
    }
}

/// Rewrites every URI of a playlist written by `lunora-hls` (URI lines and `URI="…"`
/// attributes) with `f`.
pub fn rewrite_uris(playlist: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(playlist.len() + playlist.len() / 4);
    for line in playlist.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(&f(line));
        } else if let Some(start) = line.find("URI=\"") {
            let value_start = start + 5;
            match line[value_start..].find('"') {
                Some(len) => {
                    out.push_str(&line[..value_start]);
                    out.push_str(&f(&line[value_start..value_start + len]));
                    out.push_str(&line[value_start + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::channel::AttachMode;
    use crate::EngineConfig;

    /// A real AVCDecoderConfigurationRecord (x264, 1280x720 High) and a 48 kHz stereo ASC.
    pub(crate) fn avc_record() -> Bytes {
        const SPS: &[u8] = &[
            0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x83, 0x19, 0x60,
        ];
        const PPS: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];
        lunora_flv::AvcDecoderConfigurationRecord::from_parameter_sets(
            &[Bytes::from_static(SPS)],
            &[Bytes::from_static(PPS)],
        )
        .unwrap()
        .encode()
        .unwrap()
    }

    pub(crate) fn asc() -> Bytes {
        lunora_flv::AudioSpecificConfig::aac_lc(48_000, 2)
            .unwrap()
            .encode()
            .unwrap()
    }

    fn picture(key: bool) -> Bytes {
        // One NAL unit with a 4-byte length: IDR (5) or non-IDR (1).
        let mut v = vec![0, 0, 0, 5, if key { 0x65 } else { 0x41 }, 1, 2, 3, 4];
        v.resize(200, 7);
        v[3] = 196;
        Bytes::from(v)
    }

    /// Feeds `secs` seconds of 30 fps video (keyframe every second) and 48 kHz AAC, in
    /// time order.
    pub(crate) fn feed(input: &crate::InputHandle, start: i64, secs: i64) {
        let end = start + secs * 90_000;
        let (mut v, mut a) = (start, start);
        while v < end || a < end {
            if v <= a && v < end {
                let key = (v - start) % 90_000 == 0;
                input
                    .send(Frame::video(Codec::H264, key, v, v, picture(key)))
                    .unwrap();
                v += 3000;
            } else {
                input
                    .send(Frame::audio(a, Bytes::from_static(&[0x21, 0x10, 0x04])))
                    .unwrap();
                a += 1920;
            }
        }
    }

    fn engine() -> Arc<Engine> {
        Arc::new(Engine::new(EngineConfig::default()))
    }

    #[tokio::test]
    async fn live_channel_gets_playlists_files_and_blocking_reloads() {
        let engine = engine();
        let hls = Hls::new(engine.clone(), HlsConfig::default());
        let id = Uuid::new_v4();
        let channel = engine.open_channel(id).unwrap();
        let input = channel
            .attach_input("primary", AttachMode::Exclusive)
            .unwrap();
        input
            .send(Frame::video_config(Codec::H264, avc_record()))
            .unwrap();
        input.send(Frame::audio_config(asc())).unwrap();
        let live = hls.start(&channel);
        assert!(
            Arc::ptr_eq(&live, &hls.start(&channel)),
            "one task per channel"
        );
        let source = live.rendition(SOURCE_RENDITION).unwrap();

        // A reload for the first segment waits until it exists.
        let waiter = tokio::spawn({
            let source = source.clone();
            async move { source.wait_for(0, None, Duration::from_secs(5)).await }
        });
        feed(&input, 0, 5);
        assert_eq!(waiter.await.unwrap(), Reload::Ready);

        let text = source.media_playlist().unwrap();
        let p = lunora_hls::validate::validate(&text).unwrap();
        assert!(p.segments.len() >= 2, "{text}");
        assert!(source.file("init-1.mp4").is_some());
        assert!(source.file("seg-0.m4s").is_some());
        assert!(source.file("seg-999.m4s").is_none());
        let master = live.master_playlist(1_000_000).unwrap();
        assert!(master.contains("RESOLUTION=1280x720"), "{master}");
        assert!(master.contains("source/media.m3u8"));
        let (_, annexb) = live.keyframe_annexb().unwrap();
        assert_eq!(&annexb[..5], &[0, 0, 0, 1, 0x67]);

        // Far ahead of the live edge: refused at once.
        assert_eq!(
            source.wait_for(1000, None, Duration::from_secs(5)).await,
            Reload::BadRequest
        );
        // The next part: waits, then times out when nothing comes.
        let next = p.open_msn();
        assert_eq!(
            source
                .wait_for(next + 1, Some(0), Duration::from_millis(100))
                .await,
            Reload::TimedOut
        );

        // A source change: the next segment carries a discontinuity.
        hls.source_changed(id);
        tokio::time::sleep(Duration::from_millis(50)).await;
        feed(&input, 5 * 90_000, 5);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text = source.media_playlist().unwrap();
        assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        lunora_hls::validate::validate(&text).unwrap();

        // The channel closes: the output ends and waiters are released.
        engine.close_channel(id);
        for _ in 0..100 {
            if hls.stream(id).is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(hls.stream(id).is_none());
        assert!(!live.is_running());
        let open = lunora_hls::validate::parse(&source.media_playlist().unwrap())
            .unwrap()
            .open_msn();
        assert_eq!(
            source
                .wait_for(open + 1, None, Duration::from_secs(5))
                .await,
            Reload::Gone
        );
    }

    fn ladder() -> Vec<Preset> {
        [
            "builtin-youtube-1080p30",
            "builtin-linkedin-720p30",
            "builtin-custom-480p30",
        ]
        .iter()
        .filter_map(|id| lunora_transcode::builtin_preset(id))
        .collect()
    }

    #[test]
    fn rungs_never_upscale_and_skip_the_source_height() {
        let names =
            |h| -> Vec<String> { select_rungs(&ladder(), h).iter().map(rung_name).collect() };
        assert_eq!(names(Some(1080)), ["720p", "480p"]);
        assert_eq!(names(Some(720)), ["480p"]);
        assert_eq!(names(Some(1440)), ["1080p", "720p", "480p"]);
        assert!(names(Some(480)).is_empty());
        assert!(names(None).is_empty(), "no known height: no rungs");
        assert!(select_rungs(&[], Some(2160)).is_empty());
        // One rung per height.
        let mut twice = ladder();
        twice.extend(lunora_transcode::builtin_preset("builtin-x-720p30"));
        assert_eq!(select_rungs(&twice, Some(1080)).len(), 2);
    }

    struct Fixed(Vec<Preset>);

    impl LadderSource for Fixed {
        fn ladder(&self, _: Uuid) -> LadderFuture {
            let l = self.0.clone();
            Box::pin(async move { l })
        }
    }

    #[tokio::test]
    async fn a_rung_whose_encode_fails_is_dropped_and_the_source_goes_on() {
        let engine = engine();
        engine.set_transcode_config(crate::transcode::TranscodeConfig {
            program: "/nonexistent/ffmpeg".into(),
            probe_window: Duration::from_millis(500),
            ..Default::default()
        });
        let hls = Hls::new(engine.clone(), HlsConfig::default());
        hls.set_ladder_source(Arc::new(Fixed(ladder())));
        let id = Uuid::new_v4();
        let channel = engine.open_channel(id).unwrap();
        let input = channel
            .attach_input("primary", AttachMode::Exclusive)
            .unwrap();
        input
            .send(Frame::video_config(Codec::H264, avc_record()))
            .unwrap();
        input.send(Frame::audio_config(asc())).unwrap();
        let live = hls.start(&channel);
        // Nobody watches yet: no rung runs.
        feed(&input, 0, 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(live.renditions().len(), 1, "no encode while nobody watches");
        // A client asks: the 720p input gets one rung (480p): 1080p would upscale, 720p is
        // the source. Its encode probes the source, then fails: FFmpeg is missing.
        live.touch();
        feed(&input, 90_000, 3);
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let names: Vec<String> = live
                .renditions()
                .iter()
                .map(|r| r.name().to_string())
                .collect();
            if names.len() > 1 {
                seen = names;
            } else if !seen.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, ["source", "480p"]);
        assert_eq!(live.renditions().len(), 1, "the failed rung is dropped");
        feed(&input, 4 * 90_000, 3);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let master = live.master_playlist(1_000_000).unwrap();
        assert!(master.contains("source/media.m3u8"), "{master}");
        assert!(!master.contains("480p"), "{master}");
        let source = live.rendition(SOURCE_RENDITION).unwrap();
        let p = lunora_hls::validate::validate(&source.media_playlist().unwrap()).unwrap();
        assert!(p.segments.len() >= 2);
        engine.close_channel(id);
    }

    #[test]
    fn uris_are_rewritten_in_lines_and_attributes() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-PART:DURATION=0.4,URI=\"part-0.0.m4s\",INDEPENDENT=YES\n#EXTINF:2.0,\nseg-0.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-1.0.m4s\"\n";
        let out = rewrite_uris(text, |u| format!("e1/{u}?token=t"));
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"e1/init-1.mp4?token=t\"\n#EXT-X-PART:DURATION=0.4,URI=\"e1/part-0.0.m4s?token=t\",INDEPENDENT=YES\n#EXTINF:2.0,\ne1/seg-0.m4s?token=t\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"e1/part-1.0.m4s?token=t\"\n"
        );
    }
}
