//! Renditions: a channel re-encoded to a preset, encoded once and shared by every output
//! that asks for the same encode.
//!
//! [`Engine::rendition`] answers an `Arc<Rendition>` for a channel and a [`Preset`]. Two
//! presets with the same [`EncodingKey`] (a destination's "X Optimized" and an HLS rung that
//! encodes identically, say) get the same rendition: one FFmpeg process per distinct
//! encoding key per channel. The `Arc` is the reference count: when the last holder drops
//! it, its FFmpeg is stopped and the registry forgets it. A rendition has its own [`Bus`]
//! that outputs subscribe to exactly like a channel's (destination pushes, the HLS
//! packager, a recorder).
//!
//! # Life of a rendition
//!
//! 1. **Probing**: it subscribes to the channel's bus (cached GOP first) and measures the
//!    source for up to [`TranscodeConfig::probe_window`]: codecs, profile, picture size and
//!    audio format from the codec configurations, frame rate, video and audio bitrate and
//!    the longest keyframe interval from two or more keyframes.
//! 2. **Passthrough** when the source already satisfies the preset
//!    ([`lunora_transcode::passthrough`]): the channel's frames are republished as they
//!    are (the same `Arc`s, no copy, no FFmpeg). A later codec configuration that no longer
//!    satisfies the preset switches to transcoding.
//! 3. **Transcoding** otherwise: a [`Supervisor`] runs FFmpeg with the preset's command
//!    line. Its input is FLV: the preamble (FLV header and both codec configurations, sent
//!    again to every new process) and one FLV tag per frame, starting at a keyframe. When
//!    FFmpeg's input queue is full the feed drops frames up to the next keyframe (counted as
//!    `input_skipped_frames`); memory does not grow and the channel never waits. FFmpeg's
//!    FLV output is parsed back into frames and published on the rendition's bus.
//!
//! # Restarts and timestamps
//!
//! FFmpeg keeps the channel's timestamps (`-copyts`), so a restarted process continues the
//! rendition's timeline; a per-track guard moves the timeline forward if a new process
//! would ever go back in time. After a restart the bus sees the new process's codec
//! configurations (dropped when identical) and then its first keyframe: subscribers keep
//! their connection and never see a frame go back. A changed source configuration restarts
//! FFmpeg with the new preamble the same way. Failures a restart cannot fix (FFmpeg
//! missing, an encoder this FFmpeg lacks) end in [`RenditionState::Failed`] with words for
//! a person; the rendition then stays failed until its last holder lets go, and the next
//! [`Engine::rendition`] call tries again.
//!
//! # Observability
//!
//! [`Rendition::status`] gives mode, state, the last error and FFmpeg's progress (fps,
//! speed, output bitrate, dropped and duplicated frames). The same figures are Prometheus
//! gauges `lunora_transcode_*{channel, preset, encoding}`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lunora_flv::{
    AudioSpecificConfig, AvcDecoderConfigurationRecord, FlvHeader, FlvReader, FlvTag, TagType,
};
use lunora_transcode::{
    passthrough, AudioCodec, Backoff, EncodingKey, Metrics, Passthrough, Preset, Profile,
    SourceInfo, Status, Supervisor, SupervisorConfig, VideoCodec,
};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::bus::{self, Bus, BusSender, SubscribeOptions, Subscription};
use crate::channel::Channel;
use crate::engine::{Engine, EngineError};
use crate::flv::{frame_from_audio, frame_from_video, tag_body, ticks_to_ms};
use crate::frame::{Codec, Frame, Track, TIMESCALE};

/// How renditions run FFmpeg.
#[derive(Debug, Clone)]
pub struct TranscodeConfig {
    /// The FFmpeg binary: a name looked up on `PATH` or a path.
    pub program: PathBuf,
    /// Restart delays after FFmpeg exits unexpectedly.
    pub backoff: Backoff,
    /// FLV tags (one per frame) queued for FFmpeg before the feed skips to the next keyframe.
    pub input_capacity: usize,
    /// Output chunks (up to 64 KiB) queued before FFmpeg's stdout is left unread.
    pub output_capacity: usize,
    /// Longest time spent measuring the source before deciding passthrough or transcode,
    /// counted from its first frame.
    pub probe_window: Duration,
    /// How long a stopping FFmpeg may take to finish before it is killed.
    pub stop_grace: Duration,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("ffmpeg"),
            backoff: Backoff::default(),
            // About 5 s of a 30 fps stream with 48 kHz AAC (77 tags per second).
            input_capacity: 400,
            output_capacity: 256,
            probe_window: Duration::from_secs(5),
            stop_grace: Duration::from_secs(1),
        }
    }
}

/// Whether a rendition encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RenditionMode {
    /// Measuring the source (waiting for it if it is idle).
    Probing,
    /// The source satisfies the preset: relayed as it is, no FFmpeg.
    Passthrough,
    /// FFmpeg encodes the preset.
    Transcoding,
}

/// What a rendition is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RenditionState {
    /// Probing, or FFmpeg started and has not reported progress yet.
    Starting,
    /// Frames flow (relayed, or FFmpeg reports progress).
    Running,
    /// FFmpeg exited unexpectedly and is started again after a backoff.
    Restarting,
    /// Given up: `last_error` says why. Nothing will flow.
    Failed,
    /// The channel closed or the last holder let go.
    Stopped,
}

/// A rendition's status, for destination status answers and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenditionStatus {
    /// The preset the rendition was made for (the first asker's).
    pub preset_id: String,
    /// Its encoding key: every preset with this key shares the rendition.
    pub encoding: String,
    pub mode: RenditionMode,
    pub state: RenditionState,
    /// The last failure, in words (kept after a successful restart).
    pub last_error: Option<String>,
    /// Why the source is transcoded rather than relayed, e.g.
    /// `audio.sample_rate: preset wants 44100 Hz, source has 48000 Hz`.
    pub transcode_reasons: Vec<String>,
    /// The running FFmpeg's process id.
    pub pid: Option<u32>,
    /// FFmpeg restarts after unexpected exits.
    pub restarts: u64,
    /// Frames per second FFmpeg encodes, averaged by FFmpeg.
    pub fps: Option<f64>,
    /// Encoding speed relative to real time (1.0 keeps up).
    pub speed: Option<f64>,
    /// Output bitrate FFmpeg reports, in kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Frames FFmpeg's frame-rate conversion dropped.
    pub dropped_frames: u64,
    /// Frames FFmpeg's frame-rate conversion duplicated.
    pub duplicated_frames: u64,
    /// Source frames not fed to FFmpeg because its input queue was full (skipped to the
    /// next keyframe).
    pub input_skipped_frames: u64,
    /// Frames published on the rendition's bus.
    pub frames_out: u64,
}

impl RenditionStatus {
    fn new(preset_id: &str, encoding: &EncodingKey) -> Self {
        Self {
            preset_id: preset_id.to_string(),
            encoding: encoding.to_string(),
            mode: RenditionMode::Probing,
            state: RenditionState::Starting,
            last_error: None,
            transcode_reasons: Vec::new(),
            pid: None,
            restarts: 0,
            fps: None,
            speed: None,
            bitrate_kbps: None,
            dropped_frames: 0,
            duplicated_frames: 0,
            input_skipped_frames: 0,
            frames_out: 0,
        }
    }
}

/// One channel encoded to one preset; see the module documentation. Dropping the last
/// `Arc` stops it.
pub struct Rendition {
    channel: Arc<Channel>,
    preset: Preset,
    key: EncodingKey,
    bus: Bus,
    status: watch::Receiver<RenditionStatus>,
    stop: watch::Sender<bool>,
}

impl Rendition {
    fn start(channel: Arc<Channel>, preset: Preset, config: TranscodeConfig) -> Arc<Rendition> {
        let key = preset.encoding_key();
        let (sender, bus) = bus::bus(crate::bus::BusConfig::default());
        let (status_tx, status) = watch::channel(RenditionStatus::new(&preset.id, &key));
        let (stop, stop_rx) = watch::channel(false);
        let task = Task {
            labels: Labels {
                channel: channel.id().to_string(),
                preset: preset.id.clone(),
                encoding: key.to_string(),
            },
            channel: channel.clone(),
            preset: preset.clone(),
            key: key.clone(),
            config,
            out: sender,
            status: status_tx,
            stop: stop_rx,
            rebase: Rebaser::default(),
        };
        tracing::info!(channel = %channel.id(), preset = %preset.id, encoding = %key, "rendition started");
        // Subscribed here, not in the task, so no frame sent after this call is missed.
        let sub = channel.subscribe();
        tokio::spawn(task.run(sub));
        Arc::new(Rendition {
            channel,
            preset,
            key,
            bus,
            status,
            stop,
        })
    }

    pub fn channel_id(&self) -> Uuid {
        self.channel.id()
    }

    /// The preset it was started for (the first asker's; others share the encoding key).
    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    /// The rendition's bus, for outputs.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Shorthand for `bus().subscribe()`.
    pub fn subscribe(&self) -> Subscription {
        self.bus.subscribe()
    }

    pub fn subscribe_with(&self, options: SubscribeOptions) -> Subscription {
        self.bus.subscribe_with(options)
    }

    pub fn status(&self) -> RenditionStatus {
        self.status.borrow().clone()
    }

    /// Follows the status.
    pub fn watch_status(&self) -> watch::Receiver<RenditionStatus> {
        self.status.clone()
    }

    /// Whether a new asker may share it: not failed, not ended, same channel instance.
    fn reusable(&self, channel: &Arc<Channel>) -> bool {
        let state = self.status.borrow().state;
        Arc::ptr_eq(&self.channel, channel)
            && !matches!(state, RenditionState::Failed | RenditionState::Stopped)
            && !self.bus.is_closed()
    }
}

impl Drop for Rendition {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl std::fmt::Debug for Rendition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendition")
            .field("channel", &self.channel.id())
            .field("encoding", &self.key)
            .finish()
    }
}

/// The engine's renditions by (channel, encoding key). Holds weak references: the holders
/// of the `Arc`s decide how long a rendition lives.
#[derive(Default)]
pub(crate) struct Renditions {
    config: RwLock<TranscodeConfig>,
    map: Mutex<HashMap<(Uuid, EncodingKey), Weak<Rendition>>>,
}

impl Engine {
    /// Replaces how renditions started from now on run FFmpeg.
    pub fn set_transcode_config(&self, config: TranscodeConfig) {
        *self.renditions.config.write() = config;
    }

    /// The rendition of channel `channel_id` (opened if needed) encoded to `preset`: the
    /// running one with the same encoding key, or a new one. Keep the `Arc` while you use
    /// it; the last drop stops it. Validate presets that come from people first.
    pub fn rendition(
        &self,
        channel_id: Uuid,
        preset: &Preset,
    ) -> Result<Arc<Rendition>, EngineError> {
        let channel = self.open_channel(channel_id)?;
        let key = preset.encoding_key();
        let mut map = self.renditions.map.lock();
        map.retain(|_, weak| weak.strong_count() > 0);
        let entry = (channel_id, key);
        if let Some(existing) = map.get(&entry).and_then(Weak::upgrade) {
            if existing.reusable(&channel) {
                return Ok(existing);
            }
        }
        let config = self.renditions.config.read().clone();
        let rendition = Rendition::start(channel, preset.clone(), config);
        map.insert(entry, Arc::downgrade(&rendition));
        Ok(rendition)
    }

    /// Every rendition in use.
    pub fn renditions(&self) -> Vec<Arc<Rendition>> {
        let map = self.renditions.map.lock();
        map.values().filter_map(Weak::upgrade).collect()
    }
}

/// Prometheus labels of one rendition.
struct Labels {
    channel: String,
    preset: String,
    encoding: String,
}

impl Labels {
    fn gauge(&self, name: &'static str, value: f64) {
        metrics::gauge!(
            name,
            "channel" => self.channel.clone(),
            "preset" => self.preset.clone(),
            "encoding" => self.encoding.clone()
        )
        .set(value);
    }

    fn record(&self, s: &RenditionStatus) {
        let up = s.mode == RenditionMode::Transcoding
            && matches!(s.state, RenditionState::Starting | RenditionState::Running);
        self.gauge("lunora_transcode_up", f64::from(u8::from(up)));
        self.gauge("lunora_transcode_fps", s.fps.unwrap_or(0.0));
        self.gauge("lunora_transcode_speed", s.speed.unwrap_or(0.0));
        self.gauge(
            "lunora_transcode_bitrate_kbps",
            s.bitrate_kbps.unwrap_or(0.0),
        );
        self.gauge("lunora_transcode_dropped_frames", s.dropped_frames as f64);
        self.gauge(
            "lunora_transcode_duplicated_frames",
            s.duplicated_frames as f64,
        );
        self.gauge(
            "lunora_transcode_input_skipped_frames",
            s.input_skipped_frames as f64,
        );
        self.gauge("lunora_transcode_restarts", s.restarts as f64);
    }
}

/// How a phase of the task ended.
enum Next {
    /// Stop requested, or the channel closed.
    End,
    /// Passthrough no longer holds: transcode, for these reasons.
    Transcode(Vec<String>),
}

/// The rendition's task: owns its subscription to the channel, the encoder and the
/// publisher side of the rendition's bus.
struct Task {
    channel: Arc<Channel>,
    preset: Preset,
    key: EncodingKey,
    config: TranscodeConfig,
    out: BusSender,
    status: watch::Sender<RenditionStatus>,
    stop: watch::Receiver<bool>,
    labels: Labels,
    rebase: Rebaser,
}

/// Resolves when a stop is requested (or every `Rendition` is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The next chunk; pends for ever once the receiver is gone.
async fn recv_or_pend(rx: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next value of a watch; `None` once its sender is gone, then pends for ever.
async fn changed_or_pend<T: Clone>(rx: &mut Option<watch::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self, mut sub: Subscription) {
        let mut probe = SourceProbe::default();
        let next = match self.probe(&mut sub, &mut probe).await {
            None => Next::End,
            Some(()) => match passthrough(&self.preset, &probe.info()) {
                Passthrough::Satisfied => self.relay(&mut sub, &mut probe).await,
                Passthrough::Transcode { mismatches } => Next::Transcode(
                    mismatches
                        .iter()
                        .map(|m| format!("{}: {}", m.field, m.reason))
                        .collect(),
                ),
            },
        };
        if let Next::Transcode(reasons) = next {
            tracing::info!(
                channel = %self.channel.id(), encoding = %self.key, reasons = ?reasons,
                "transcoding"
            );
            self.status.send_modify(|s| {
                s.mode = RenditionMode::Transcoding;
                s.state = RenditionState::Starting;
                s.transcode_reasons = reasons;
            });
            self.transcode(sub, probe).await;
        }
        self.out.close();
        self.status.send_modify(|s| {
            if s.state != RenditionState::Failed {
                s.state = RenditionState::Stopped;
            }
            s.pid = None;
        });
        let mut last = self.status.borrow().clone();
        last.fps = None;
        last.speed = None;
        last.bitrate_kbps = None;
        self.labels.record(&last);
        tracing::info!(channel = %self.channel.id(), encoding = %self.key, "rendition stopped");
    }

    /// Measures the source; `None` if stopped or the channel closed first.
    async fn probe(&mut self, sub: &mut Subscription, probe: &mut SourceProbe) -> Option<()> {
        let mut deadline: Option<Instant> = None;
        loop {
            let wait = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stopped(&mut self.stop) => return None,
                () = wait => return Some(()),
                frame = sub.recv() => {
                    let frame = frame?;
                    if !frame.config && deadline.is_none() {
                        deadline = Some(Instant::now() + self.config.probe_window);
                    }
                    probe.observe(&frame);
                    if probe.ready() {
                        return Some(());
                    }
                }
            }
        }
    }

    /// Passthrough: republishes the channel's frames until the source stops satisfying the
    /// preset.
    async fn relay(&mut self, sub: &mut Subscription, probe: &mut SourceProbe) -> Next {
        tracing::info!(channel = %self.channel.id(), encoding = %self.key, "passthrough: the source satisfies the preset");
        self.status.send_modify(|s| {
            s.mode = RenditionMode::Passthrough;
            s.state = RenditionState::Running;
        });
        let mut sent: u64 = 0;
        for frame in probe.take_held() {
            sent += 1;
            if self.out.send(frame).is_err() {
                return Next::End;
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = stopped(&mut self.stop) => return Next::End,
                _ = tick.tick() => {
                    self.status.send_if_modified(|s| {
                        let changed = s.frames_out != sent;
                        s.frames_out = sent;
                        changed
                    });
                }
                frame = sub.recv() => {
                    let Some(frame) = frame else { return Next::End };
                    if frame.config {
                        probe.set_config(&frame);
                        if let Passthrough::Transcode { mismatches } = passthrough(&self.preset, &probe.info()) {
                            // The new configuration goes into the encoder's preamble instead.
                            return Next::Transcode(
                                mismatches.iter().map(|m| format!("{}: {}", m.field, m.reason)).collect(),
                            );
                        }
                    }
                    sent += 1;
                    if self.out.send(frame).is_err() {
                        return Next::End;
                    }
                }
            }
        }
    }

    fn supervisor(
        &self,
        configs: &Configs,
    ) -> (Supervisor, mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
        let cfg = SupervisorConfig {
            program: self.config.program.clone(),
            backoff: self.config.backoff,
            input_capacity: self.config.input_capacity,
            output_capacity: self.config.output_capacity,
            ..SupervisorConfig::for_preset(&self.preset)
        };
        let (sup, pipes) = Supervisor::start(cfg);
        sup.set_preamble(configs.preamble());
        (sup, pipes.input, pipes.output)
    }

    /// Transcoding until stopped or the channel closes.
    async fn transcode(&mut self, mut sub: Subscription, mut probe: SourceProbe) {
        let mut configs = Configs::default();
        for frame in [&probe.video_config, &probe.audio_config]
            .into_iter()
            .flatten()
        {
            configs.set(frame);
        }
        let (mut sup, mut input, output) = self.supervisor(&configs);
        let mut output = Some(output);
        let mut sup_status = Some(sup.status());
        let mut sup_metrics = Some(sup.metrics());
        let mut feed = Feed::default();
        let mut reader = FlvReader::new();
        let mut restarts_before: u64 = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for frame in probe.take_held().iter().filter(|f| !f.config) {
            feed.push(frame, &input);
        }
        loop {
            tokio::select! {
                () = stopped(&mut self.stop) => break,
                frame = sub.recv() => {
                    let Some(frame) = frame else { break };
                    if !frame.config {
                        feed.push(&frame, &input);
                    } else if configs.set(&frame) {
                        // A new source configuration: a new FFmpeg with the new preamble.
                        tracing::info!(channel = %self.channel.id(), encoding = %self.key, "source configuration changed; restarting FFmpeg");
                        restarts_before += sup.metrics().borrow().restarts + 1;
                        let (new_sup, new_input, new_output) = self.supervisor(&configs);
                        drop(std::mem::replace(&mut sup, new_sup));
                        input = new_input;
                        output = Some(new_output);
                        sup_status = Some(sup.status());
                        sup_metrics = Some(sup.metrics());
                        feed = Feed::default();
                    }
                }
                chunk = recv_or_pend(&mut output) => {
                    let Some(chunk) = chunk else {
                        // The supervisor ended; its status says why.
                        output = None;
                        continue;
                    };
                    if chunk.is_empty() {
                        reader = FlvReader::new();
                        self.rebase.discontinuity();
                        continue;
                    }
                    reader.push(&chunk);
                    self.publish(&mut reader);
                }
                st = changed_or_pend(&mut sup_status) => {
                    let Some(st) = st else {
                        sup_status = None;
                        continue;
                    };
                    self.on_status(&st);
                    if let Status::Failed { error } = st {
                        tracing::error!(channel = %self.channel.id(), encoding = %self.key, %error, "transcoding failed");
                        // Stay failed (and readable) until the last holder lets go.
                        drop(sub);
                        stopped(&mut self.stop).await;
                        break;
                    }
                }
                m = changed_or_pend(&mut sup_metrics) => {
                    let Some(m) = m else {
                        sup_metrics = None;
                        continue;
                    };
                    self.on_metrics(&m, restarts_before, feed.skipped);
                }
                _ = tick.tick() => {
                    let skipped = feed.skipped;
                    self.status.send_if_modified(|s| {
                        let changed = s.input_skipped_frames != skipped;
                        s.input_skipped_frames = skipped;
                        changed
                    });
                }
            }
        }
        drop(input);
        let _ = sup.stop(self.config.stop_grace).await;
    }

    fn on_status(&self, st: &Status) {
        self.status.send_modify(|s| match st {
            Status::Starting => s.state = RenditionState::Starting,
            Status::Running => s.state = RenditionState::Running,
            Status::Restarting { last_error, .. } => {
                s.state = RenditionState::Restarting;
                s.last_error = Some(last_error.clone());
            }
            Status::Failed { error } => {
                s.state = RenditionState::Failed;
                s.last_error = Some(error.clone());
            }
            Status::Stopped => s.state = RenditionState::Stopped,
        });
        self.labels.record(&self.status.borrow());
    }

    fn on_metrics(&self, m: &Metrics, restarts_before: u64, skipped: u64) {
        self.status.send_modify(|s| {
            s.pid = m.pid;
            s.restarts = restarts_before + m.restarts;
            s.input_skipped_frames = skipped;
            if let Some(p) = &m.progress {
                s.fps = Some(p.fps);
                s.speed = p.speed;
                s.bitrate_kbps = p.bitrate_kbps;
                s.dropped_frames = p.dropped_frames;
                s.duplicated_frames = p.dup_frames;
            }
        });
        self.labels.record(&self.status.borrow());
    }

    /// Publishes every complete tag FFmpeg wrote.
    fn publish(&mut self, reader: &mut FlvReader) {
        let mut published = 0u64;
        loop {
            let tag = match reader.next_tag() {
                Ok(Some(tag)) => tag,
                Ok(None) => break,
                Err(e) => {
                    // Cannot happen with FFmpeg's muxer; drop this process's rest.
                    tracing::warn!(encoding = %self.key, error = %e, "unreadable FLV from FFmpeg");
                    *reader = FlvReader::new();
                    break;
                }
            };
            let frame = match tag.tag_type {
                TagType::Video => frame_from_video(tag.timestamp, tag.data),
                TagType::Audio => frame_from_audio(tag.timestamp, tag.data),
                _ => continue,
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(encoding = %self.key, error = %e, "FFmpeg tag skipped");
                    continue;
                }
            };
            let (dts, pts) = self.rebase.map(&frame);
            let frame = if (dts, pts) == (frame.dts, frame.pts) {
                frame
            } else {
                frame.with_timestamps(dts, pts)
            };
            if self.out.send(Arc::new(frame)).is_ok() {
                published += 1;
            }
        }
        if published > 0 {
            self.status.send_if_modified(|s| {
                s.frames_out += published;
                false
            });
        }
    }
}

/// The current codec configurations, and the FLV preamble made of them.
#[derive(Default)]
struct Configs {
    video: Option<Arc<Frame>>,
    audio: Option<Arc<Frame>>,
}

impl Configs {
    /// Records a configuration; true if it replaced a different one (not the first).
    fn set(&mut self, frame: &Arc<Frame>) -> bool {
        let slot = match frame.track {
            Track::Video => &mut self.video,
            Track::Audio => &mut self.audio,
        };
        let changed = slot
            .as_ref()
            .is_some_and(|c| c.codec != frame.codec || c.data != frame.data);
        *slot = Some(frame.clone());
        changed
    }

    /// FLV header, then the video and audio configuration tags at time 0.
    fn preamble(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.extend_from_slice(&FlvHeader::new(self.audio.is_some(), true).encode());
        for frame in [&self.video, &self.audio].into_iter().flatten() {
            let tag = flv_tag(frame, 0);
            out.extend_from_slice(&tag);
        }
        out.freeze()
    }
}

/// One frame as one FLV tag (header, body, PreviousTagSize).
fn flv_tag(frame: &Frame, timestamp_ms: u32) -> Bytes {
    let tag = FlvTag {
        tag_type: match frame.track {
            Track::Video => TagType::Video,
            Track::Audio => TagType::Audio,
        },
        timestamp: timestamp_ms,
        data: tag_body(frame),
    };
    let mut out = BytesMut::new();
    match tag.encode_into(&mut out) {
        Ok(()) => out.freeze(),
        Err(_) => Bytes::new(),
    }
}

/// Feeds FFmpeg's bounded input: one tag per frame, skipping to the next keyframe when
/// the queue is full.
#[derive(Default)]
struct Feed {
    skipping: bool,
    /// Frames not fed because the queue was full (or while waiting for the keyframe after).
    skipped: u64,
}

impl Feed {
    fn push(&mut self, frame: &Arc<Frame>, input: &mpsc::Sender<Bytes>) {
        if self.skipping {
            if !frame.is_video_keyframe() {
                self.skipped += 1;
                return;
            }
            self.skipping = false;
        }
        let ts = u32::try_from(ticks_to_ms(frame.dts).max(0)).unwrap_or(u32::MAX);
        let tag = flv_tag(frame, ts);
        if tag.is_empty() {
            return;
        }
        match input.try_send(tag) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.skipping = true;
                self.skipped += 1;
            }
            // The supervisor ended (failed or stopping): nothing to feed.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Keeps the rendition's timeline going forward across FFmpeg processes: within a process
/// timestamps pass unchanged (plus any earlier correction); if the first frame of a new
/// process would not come after what was published, the offset moves it one frame after.
#[derive(Debug, Default)]
struct Rebaser {
    offset: i64,
    /// A new process started: check its first media frame.
    fresh: bool,
    last_dts: [Option<i64>; 2],
}

/// One video frame at 30 fps, the step used to place a new process after the old one.
const STEP: i64 = TIMESCALE / 30;

impl Rebaser {
    fn discontinuity(&mut self) {
        self.fresh = true;
    }

    fn last(&self) -> Option<i64> {
        self.last_dts.iter().flatten().copied().max()
    }

    fn map(&mut self, frame: &Frame) -> (i64, i64) {
        if frame.config {
            let now = self.last().unwrap_or(frame.dts + self.offset);
            return (now, now);
        }
        if std::mem::take(&mut self.fresh) {
            if let Some(last) = self.last() {
                if frame.dts + self.offset <= last {
                    self.offset = last + STEP - frame.dts;
                }
            }
        }
        let t = frame.track.index();
        let mut dts = frame.dts + self.offset;
        if let Some(last) = self.last_dts[t] {
            if dts <= last {
                let bump = last + 1 - dts;
                self.offset += bump;
                dts += bump;
            }
        }
        self.last_dts[t] = Some(dts);
        (dts, frame.pts + self.offset)
    }
}

/// Measures a source from its frames (see [`SourceInfo`]) and keeps them, from the first
/// keyframe on, so that nothing is lost while deciding.
#[derive(Default)]
struct SourceProbe {
    video_config: Option<Arc<Frame>>,
    audio_config: Option<Arc<Frame>>,
    /// (dts, video bytes before it, video frames before it, audio bytes before it) at each
    /// video keyframe.
    keyframes: Vec<(i64, u64, u64, u64)>,
    video_bytes: u64,
    video_frames: u64,
    audio_bytes: u64,
    held: Vec<Arc<Frame>>,
    held_bytes: usize,
}

/// Held frames stop at this many payload bytes (the oldest GOP is dropped).
const MAX_HELD_BYTES: usize = 48 << 20;
/// Keyframes span at least this long before the measurement counts (1 s).
const MIN_SPAN: i64 = TIMESCALE;

impl SourceProbe {
    fn set_config(&mut self, frame: &Arc<Frame>) {
        match frame.track {
            Track::Video => self.video_config = Some(frame.clone()),
            Track::Audio => self.audio_config = Some(frame.clone()),
        }
    }

    fn observe(&mut self, frame: &Arc<Frame>) {
        if frame.config {
            self.set_config(frame);
            self.hold(frame);
            return;
        }
        match frame.track {
            Track::Video => {
                if frame.keyframe {
                    self.keyframes.push((
                        frame.dts,
                        self.video_bytes,
                        self.video_frames,
                        self.audio_bytes,
                    ));
                }
                if !self.keyframes.is_empty() {
                    self.video_bytes += frame.data.len() as u64;
                    self.video_frames += 1;
                }
            }
            Track::Audio => {
                if !self.keyframes.is_empty() {
                    self.audio_bytes += frame.data.len() as u64;
                }
            }
        }
        if !self.keyframes.is_empty() {
            self.hold(frame);
        }
    }

    fn hold(&mut self, frame: &Arc<Frame>) {
        if !frame.config && self.held_bytes + frame.data.len() > MAX_HELD_BYTES {
            // Keep the configs only; the encoder starts at the next keyframe.
            self.held.retain(|f| f.config);
            self.held_bytes = 0;
            if !frame.is_video_keyframe() {
                return;
            }
        }
        self.held_bytes += frame.data.len();
        self.held.push(frame.clone());
    }

    /// Two keyframes at least a second apart: enough to measure.
    fn ready(&self) -> bool {
        match (self.keyframes.first(), self.keyframes.last()) {
            (Some(first), Some(last)) => self.keyframes.len() >= 2 && last.0 - first.0 >= MIN_SPAN,
            _ => false,
        }
    }

    /// The frames held so far (configs first, then from the first keyframe).
    fn take_held(&mut self) -> Vec<Arc<Frame>> {
        self.held_bytes = 0;
        std::mem::take(&mut self.held)
    }

    /// What is known about the source; unknowns never satisfy a preset.
    fn info(&self) -> SourceInfo {
        let mut info = SourceInfo::default();
        if let Some(cfg) = &self.video_config {
            match cfg.codec {
                Codec::H264 => {
                    info.video_codec = Some(VideoCodec::H264);
                    if let Ok(record) = AvcDecoderConfigurationRecord::parse(cfg.data.clone()) {
                        info.video_profile = match record.profile_indication {
                            66 => Some(Profile::Baseline),
                            77 => Some(Profile::Main),
                            100 => Some(Profile::High),
                            _ => None,
                        };
                        if let Ok(sps) = record.parse_sps() {
                            info.width = Some(sps.width);
                            info.height = Some(sps.height);
                        }
                    }
                }
                // No HEVC parameter-set parser here: size and profile stay unknown.
                Codec::Hevc => info.video_codec = Some(VideoCodec::H265),
                Codec::Aac => {}
            }
        }
        if let Some(cfg) = &self.audio_config {
            info.audio_codec = Some(AudioCodec::Aac);
            if let Ok(asc) = AudioSpecificConfig::parse(&cfg.data) {
                info.sample_rate = Some(asc.sampling_frequency);
                info.channels = Some(asc.channel_configuration).filter(|c| *c > 0);
            }
        }
        if let (Some(first), Some(last)) = (self.keyframes.first(), self.keyframes.last()) {
            let span = last.0 - first.0;
            if self.keyframes.len() >= 2 && span > 0 {
                let secs = span as f64 / TIMESCALE as f64;
                info.fps = Some((last.2 - first.2) as f64 / secs);
                info.video_bitrate_kbps =
                    Some(((last.1 - first.1) as f64 * 8.0 / secs / 1000.0).round() as u32);
                if info.audio_codec.is_some() {
                    info.audio_bitrate_kbps =
                        Some(((last.3 - first.3) as f64 * 8.0 / secs / 1000.0).round() as u32);
                }
                let longest = self
                    .keyframes
                    .windows(2)
                    .map(|w| w[1].0 - w[0].0)
                    .max()
                    .unwrap_or(span);
                info.keyframe_interval_s = Some(longest as f64 / TIMESCALE as f64);
            }
        }
        info
    }
}

#[cfg(test)]
mod tests;
