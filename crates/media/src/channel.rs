//! A channel: one live stream, its inputs (through the switch), its bus and its status.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Serialize, Serializer};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::bus::{self, Bus, BusConfig, SubscribeOptions, Subscription};
use crate::failover::{ChannelEvent, RedundancyConfig, SourcesStatus, SwitchError, TransportStats};
use crate::frame::{Codec, Frame};
use crate::switch::Switch;

/// How [`Channel::attach_input`] treats an input name that is already attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Refuse: the name is in use.
    #[default]
    Exclusive,
    /// Replace the attached handle at once (an encoder reconnecting while its old connection
    /// has not timed out yet). The old handle is cancelled and its sends are refused.
    Takeover,
    /// Replace the attached handle only if it has sent no media for this long (a dead
    /// connection not timed out yet); refuse while it is live, like `Exclusive`.
    TakeoverStale(Duration),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("input {name:?} is already attached")]
    InputBusy { name: String },
    #[error("the channel is closed")]
    ChannelClosed,
}

/// Why an [`InputHandle::send`] was refused; the frame is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Another connection took this input over: stop reading from this one.
    #[error("the input was taken over by another connection")]
    Replaced,
    #[error("the channel is closed")]
    ChannelClosed,
}

/// Whether media is coming in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputState {
    Idle,
    Live,
}

/// What the input learned from the video configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VideoInfo {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
}

/// What the input learned from the audio configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AudioInfo {
    pub codec: Codec,
    pub sample_rate: u32,
    pub channels: u8,
}

/// A snapshot of a channel for the control plane.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelStatus {
    pub id: Uuid,
    pub input_state: InputState,
    /// The input whose frames reach the outputs.
    pub active_input: Option<String>,
    /// Every attached input, in attach order.
    pub inputs: Vec<String>,
    /// Payload bits per second over the last few seconds.
    pub bitrate_bps: u64,
    /// Video frames per second over the last few seconds.
    pub fps: f64,
    pub video: Option<VideoInfo>,
    pub audio: Option<AudioInfo>,
    /// When the channel went live, as Unix milliseconds; `None` while idle.
    #[serde(serialize_with = "unix_millis")]
    pub started_at: Option<SystemTime>,
    pub subscribers: usize,
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Milliseconds since the last frame reached the bus.
    pub last_frame_age_ms: Option<u64>,
}

fn unix_millis<S: Serializer>(at: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => {
            let ms = at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            s.serialize_some(&(ms as u64))
        }
        None => s.serialize_none(),
    }
}

/// One live stream. Outputs subscribe to its bus; inputs attach through its switch.
pub struct Channel {
    id: Uuid,
    bus: Bus,
    inner: Mutex<Inner>,
    /// Where switch events go (the engine's event stream).
    events: Option<broadcast::Sender<ChannelEvent>>,
    /// The health watchdog task runs.
    watchdog: AtomicBool,
}

struct Inner {
    switch: Switch,
    meter: RateMeter,
    live: bool,
    started_at: Option<SystemTime>,
    video: Option<VideoInfo>,
    audio: Option<AudioInfo>,
}

impl Channel {
    #[cfg(test)]
    pub(crate) fn new(id: Uuid, config: BusConfig) -> Self {
        Self::with_sources(id, config, RedundancyConfig::default(), None)
    }

    /// A channel whose switch follows `sources` and reports to `events`.
    pub(crate) fn with_sources(
        id: Uuid,
        config: BusConfig,
        sources: RedundancyConfig,
        events: Option<broadcast::Sender<ChannelEvent>>,
    ) -> Self {
        let (sender, bus) = bus::bus(config);
        Self {
            id,
            bus,
            inner: Mutex::new(Inner {
                switch: Switch::new(id, sender, sources),
                meter: RateMeter::default(),
                live: false,
                started_at: None,
                video: None,
                audio: None,
            }),
            events,
            watchdog: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The channel's bus, for outputs.
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

    /// Attaches an input under `name`. With [`AttachMode::Takeover`] an input already attached
    /// under that name is replaced at once; subscribers stay attached and the output timeline
    /// continues.
    pub fn attach_input(
        self: &Arc<Self>,
        name: &str,
        mode: AttachMode,
    ) -> Result<InputHandle, AttachError> {
        let (generation, cancelled, events) = {
            let mut inner = self.inner.lock();
            let (generation, cancelled) = inner.switch.attach(name, mode, Instant::now())?;
            (generation, cancelled, inner.switch.take_events())
        };
        tracing::info!(channel = %self.id, input = name, generation, ?mode, "input attached");
        self.publish(events);
        self.start_watchdog();
        Ok(InputHandle {
            channel: self.clone(),
            name: name.to_owned(),
            generation,
            cancelled,
        })
    }

    /// Closes the channel: inputs are cancelled, subscribers get their queue then `None`.
    pub fn close(&self) {
        let mut inner = self.inner.lock();
        inner.switch.close();
        inner.go_idle();
    }

    pub fn is_closed(&self) -> bool {
        self.bus.is_closed()
    }

    pub fn status(&self) -> ChannelStatus {
        let now = Instant::now();
        let stats = self.bus.stats();
        let mut inner = self.inner.lock();
        let (bitrate_bps, fps) = inner.meter.rates(now);
        ChannelStatus {
            id: self.id,
            input_state: if inner.live {
                InputState::Live
            } else {
                InputState::Idle
            },
            active_input: inner.switch.active_input().map(str::to_owned),
            inputs: inner.switch.input_names(),
            bitrate_bps,
            fps,
            video: inner.video,
            audio: inner.audio,
            started_at: inner.started_at,
            subscribers: stats.subscribers,
            frames_in: stats.frames_in,
            bytes_in: stats.bytes_in,
            last_frame_age_ms: stats
                .last_frame_at
                .map(|at| now.saturating_duration_since(at).as_millis() as u64),
        }
    }

    fn detach(&self, name: &str, generation: u64) {
        let events = {
            let mut inner = self.inner.lock();
            if !inner.switch.detach(generation, Instant::now()) {
                return;
            }
            tracing::info!(channel = %self.id, input = name, generation, "input detached");
            if !inner.switch.has_inputs() {
                inner.go_idle();
            }
            inner.switch.take_events()
        };
        self.publish(events);
    }

    /// Applies new redundancy settings at once (mode, threshold, configured inputs, ...).
    pub fn set_redundancy(&self, config: RedundancyConfig) {
        let events = {
            let mut inner = self.inner.lock();
            inner.switch.set_config(config, Instant::now());
            inner.switch.take_events()
        };
        self.publish(events);
    }

    pub fn redundancy(&self) -> RedundancyConfig {
        self.inner.lock().switch.config().clone()
    }

    /// Makes `input` the active input: at once when the active one is lost, otherwise on
    /// `input`'s next keyframe (the active input is forwarded until then, so there is no gap).
    pub fn switch_to(&self, input: &str) -> Result<(), SwitchError> {
        let events = {
            let mut inner = self.inner.lock();
            inner.switch.switch_to(input, Instant::now())?;
            inner.switch.take_events()
        };
        self.publish(events);
        Ok(())
    }

    /// Each input's state, rates and transport figures, and the last switch.
    pub fn sources_status(&self) -> SourcesStatus {
        self.inner.lock().switch.status(Instant::now())
    }

    /// Re-checks input health (the watchdog calls it between frames).
    pub(crate) fn tick(&self) {
        let events = {
            let mut inner = self.inner.lock();
            inner.switch.tick(Instant::now());
            inner.switch.take_events()
        };
        self.publish(events);
    }

    /// Logs, counts and broadcasts what the switch did.
    fn publish(&self, events: Vec<ChannelEvent>) {
        for event in events {
            match &event {
                ChannelEvent::Switched {
                    from, to, reason, ..
                } => {
                    metrics::counter!(
                        "lunora_failovers_total",
                        "channel" => self.id.to_string(),
                        "reason" => reason.as_str()
                    )
                    .increment(1);
                    tracing::warn!(
                        channel = %self.id,
                        from = from.as_deref().unwrap_or("-"),
                        to = %to,
                        reason = reason.as_str(),
                        "input switched"
                    );
                }
                ChannelEvent::InputState { input, state, .. } => {
                    tracing::info!(channel = %self.id, %input, ?state, "input state");
                }
                ChannelEvent::Fill { state, .. } => {
                    metrics::counter!(
                        "lunora_fill_signal_total",
                        "channel" => self.id.to_string(),
                        "state" => state.as_str()
                    )
                    .increment(1);
                }
            }
            if let Some(tx) = &self.events {
                let _ = tx.send(event);
            }
        }
    }

    /// Starts the task that notices silent inputs between frames (needs a tokio runtime; without
    /// one, health is re-checked on every frame and status call only).
    fn start_watchdog(self: &Arc<Self>) {
        if self.watchdog.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.watchdog.store(false, Ordering::Release);
            return;
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let period = {
                    let Some(channel) = weak.upgrade() else { break };
                    if channel.is_closed() {
                        break;
                    }
                    channel.tick();
                    if channel.inner.lock().switch.filling() {
                        // The fill signal's frames go out at their pace from here.
                        Duration::from_millis(20)
                    } else {
                        let config = channel.redundancy();
                        (config.failover_threshold / 5)
                            .min(config.health_check_interval)
                            .clamp(Duration::from_millis(20), Duration::from_secs(1))
                    }
                };
                tokio::time::sleep(period).await;
            }
        });
    }
}

impl Inner {
    fn go_idle(&mut self) {
        self.live = false;
        self.started_at = None;
        self.meter = RateMeter::default();
    }
}

/// The right of one input connection to feed a channel. Dropping it detaches the input.
pub struct InputHandle {
    channel: Arc<Channel>,
    name: String,
    generation: u64,
    cancelled: watch::Receiver<bool>,
}

impl InputHandle {
    /// Feeds one frame with the input's own timestamps; the channel rebases them onto its
    /// output timeline. Never waits. After a takeover or close the frame is dropped and the
    /// error tells the connection to stop.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        let now = Instant::now();
        let events = {
            let mut inner = self.channel.inner.lock();
            let sent = inner.switch.forward(self.generation, frame, now)?;
            if sent.media > 0 {
                if !inner.live {
                    inner.live = true;
                    inner.started_at = Some(SystemTime::now());
                    tracing::info!(channel = %self.channel.id, input = %self.name, "channel live");
                }
                inner.meter.record_many(now, sent.bytes, sent.video);
            }
            inner.switch.take_events()
        };
        if !events.is_empty() {
            self.channel.publish(events);
        }
        Ok(())
    }

    /// Records the connection's transport figures (SRT statistics) for the input's status.
    pub fn set_transport_stats(&self, stats: TransportStats) {
        self.channel
            .inner
            .lock()
            .switch
            .set_transport(self.generation, stats);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// Records what the input parsed from its video configuration.
    pub fn set_video_info(&self, info: VideoInfo) {
        self.channel.inner.lock().video = Some(info);
    }

    /// Records what the input parsed from its audio configuration.
    pub fn set_audio_info(&self, info: AudioInfo) {
        self.channel.inner.lock().audio = Some(info);
    }

    /// Taken over by another connection, or the channel closed.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow() || self.cancelled.has_changed().is_err()
    }

    /// Resolves when [`is_cancelled`](Self::is_cancelled) becomes true.
    pub async fn cancelled(&self) {
        let mut rx = self.cancelled.clone();
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for InputHandle {
    fn drop(&mut self) {
        self.channel.detach(&self.name, self.generation);
    }
}

/// Bytes and video frames over a sliding window of time buckets.
pub(crate) struct RateMeter {
    origin: Option<Instant>,
    first_at: Option<Instant>,
    /// (bucket index since `origin`, bytes, video frames), oldest first.
    buckets: VecDeque<(u64, u64, u64)>,
}

const BUCKET: Duration = Duration::from_millis(250);
const WINDOW_BUCKETS: u64 = 20; // 5 s

impl Default for RateMeter {
    fn default() -> Self {
        Self {
            origin: None,
            first_at: None,
            buckets: VecDeque::with_capacity(WINDOW_BUCKETS as usize + 1),
        }
    }
}

impl RateMeter {
    fn index(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        let since = now.saturating_duration_since(origin);
        // In u64: `as_millis` is a u128, and its division was most of a frame's metering.
        (since.as_secs() * 1000 + u64::from(since.subsec_millis())) / BUCKET.as_millis() as u64
    }

    fn expire(&mut self, current: u64) {
        while let Some(&(i, _, _)) = self.buckets.front() {
            if i + WINDOW_BUCKETS <= current {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    pub(crate) fn record(&mut self, now: Instant, bytes: usize, video: bool) {
        self.record_many(now, bytes, u64::from(video));
    }

    pub(crate) fn record_many(&mut self, now: Instant, bytes: usize, frames: u64) {
        self.first_at.get_or_insert(now);
        let i = self.index(now);
        self.expire(i);
        match self.buckets.back_mut() {
            Some(last) if last.0 == i => {
                last.1 += bytes as u64;
                last.2 += frames;
            }
            _ => self.buckets.push_back((i, bytes as u64, frames)),
        }
    }

    /// (bits per second, video frames per second).
    pub(crate) fn rates(&mut self, now: Instant) -> (u64, f64) {
        let (Some(origin), Some(first_at)) = (self.origin, self.first_at) else {
            return (0, 0.0);
        };
        let current = self.index(now);
        self.expire(current);
        let window_start = origin + BUCKET * (current.saturating_sub(WINDOW_BUCKETS - 1) as u32);
        let span = now.saturating_duration_since(window_start.max(first_at));
        let span = span.max(Duration::from_secs(1)).as_secs_f64();
        let (bytes, frames) = self
            .buckets
            .iter()
            .fold((0u64, 0u64), |(b, f), &(_, bytes, frames)| {
                (b + bytes, f + frames)
            });
        ((bytes as f64 * 8.0 / span) as u64, frames as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn channel() -> Arc<Channel> {
        Arc::new(Channel::new(Uuid::new_v4(), BusConfig::default()))
    }

    fn vcfg() -> Frame {
        Frame::video_config(Codec::H264, Bytes::from_static(b"avcc"))
    }

    fn video(dts: i64, key: bool) -> Frame {
        Frame::video(Codec::H264, key, dts, dts, Bytes::from(vec![0; 1250]))
    }

    #[tokio::test]
    async fn takeover_keeps_subscribers_and_timestamps_monotonic() {
        let channel = channel();
        let first = channel
            .attach_input("primary", AttachMode::Exclusive)
            .unwrap();
        let mut sub = channel.subscribe();
        first.send(vcfg()).unwrap();
        for i in 0..60 {
            first.send(video(100_000 + i * 3000, i % 30 == 0)).unwrap();
        }

        // A second connection for the same input is refused, unless it takes over.
        assert_eq!(
            channel.attach_input("primary", AttachMode::Exclusive).err(),
            Some(AttachError::InputBusy {
                name: "primary".into()
            })
        );
        assert!(!first.is_cancelled());
        let second = channel
            .attach_input("primary", AttachMode::Takeover)
            .unwrap();
        assert!(first.is_cancelled());
        tokio::time::timeout(Duration::from_secs(1), first.cancelled())
            .await
            .unwrap();
        assert_eq!(first.send(video(0, true)), Err(SendError::Replaced));

        // The encoder restarts at 0 with an inter frame first: held back until its keyframe.
        second.send(vcfg()).unwrap();
        second.send(video(0, false)).unwrap();
        for i in 1..30 {
            second.send(video(i * 3000, i == 1)).unwrap();
        }
        drop(first); // the stale connection ends late: it must not detach the new one
        assert_eq!(channel.status().active_input.as_deref(), Some("primary"));
        assert_eq!(channel.status().input_state, InputState::Live);

        let mut frames = Vec::new();
        while let Ok(frame) = sub.try_recv() {
            frames.push(frame);
        }
        let media: Vec<_> = frames.iter().filter(|f| !f.config).collect();
        assert_eq!(media.len(), 60 + 29);
        assert_eq!(media[0].dts, 0);
        assert!(media.windows(2).all(|w| w[0].dts < w[1].dts), "monotonic");
        // One frame duration after the last frame of the old connection, then its own pace.
        assert_eq!(media[60].dts, 59 * 3000 + 3000);
        assert!(media[60].keyframe);
        assert_eq!(media[61].dts, media[60].dts + 3000);
        // Identical config from the new connection was not repeated.
        assert_eq!(frames.iter().filter(|f| f.config).count(), 1);
        assert_eq!(channel.status().subscribers, 1);
    }

    #[tokio::test]
    async fn detaching_the_last_input_goes_idle_and_close_ends_everything() {
        let channel = channel();
        let input = channel.attach_input("cam", AttachMode::Exclusive).unwrap();
        let status = channel.status();
        assert_eq!(status.input_state, InputState::Idle);
        assert_eq!(status.inputs, ["cam"]);
        input.send(video(0, true)).unwrap();
        let status = channel.status();
        assert_eq!(status.input_state, InputState::Live);
        assert!(status.started_at.is_some());
        drop(input);
        let status = channel.status();
        assert_eq!(status.input_state, InputState::Idle);
        assert_eq!(status.active_input, None);
        assert_eq!(status.started_at, None);

        let input = channel.attach_input("cam", AttachMode::Exclusive).unwrap();
        let mut sub = channel.subscribe();
        channel.close();
        assert!(input.is_cancelled());
        assert_eq!(input.send(video(1, true)), Err(SendError::ChannelClosed));
        // The subscriber still gets the cached GOP it joined with, then the end.
        assert!(sub.recv().await.is_some());
        assert!(sub.recv().await.is_none());
        assert_eq!(
            channel.attach_input("other", AttachMode::Takeover).err(),
            Some(AttachError::ChannelClosed)
        );
    }

    #[test]
    fn standby_input_does_not_reach_the_bus_until_active() {
        let channel = channel();
        let a = channel.attach_input("a", AttachMode::Exclusive).unwrap();
        let b = channel.attach_input("b", AttachMode::Exclusive).unwrap();
        let mut sub = channel.subscribe();
        b.send(video(0, true)).unwrap();
        assert!(sub.try_recv().is_err());
        a.send(video(0, true)).unwrap();
        assert!(sub.try_recv().is_ok());
        drop(a);
        assert_eq!(channel.status().active_input.as_deref(), Some("b"));
        b.send(video(5000, true)).unwrap();
        assert_eq!(sub.try_recv().unwrap().dts, 3000);
    }

    #[tokio::test(start_paused = true)]
    async fn status_reports_bitrate_fps_and_stream_info() {
        let channel = channel();
        let input = channel.attach_input("cam", AttachMode::Exclusive).unwrap();
        input.set_video_info(VideoInfo {
            codec: Codec::H264,
            width: 1920,
            height: 1080,
        });
        // 25 fps of 1250-byte frames = 250 kbit/s, for 10 s.
        for i in 0..250 {
            input.send(video(i * 3600, i % 50 == 0)).unwrap();
            tokio::time::advance(Duration::from_millis(40)).await;
        }
        let status = channel.status();
        assert!((status.fps - 25.0).abs() < 1.5, "{}", status.fps);
        assert!(
            status.bitrate_bps.abs_diff(250_000) < 15_000,
            "{}",
            status.bitrate_bps
        );
        assert_eq!(status.last_frame_age_ms, Some(40));
        assert_eq!(status.frames_in, 250);

        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["input_state"], "live");
        assert_eq!(json["video"]["codec"], "h264");
        assert_eq!(json["video"]["width"], 1920);
        assert!(json["started_at"].as_u64().unwrap() > 1_600_000_000_000);

        // No media: the rates fall to zero once the window has passed.
        tokio::time::advance(Duration::from_secs(6)).await;
        let status = channel.status();
        assert_eq!((status.bitrate_bps, status.fps), (0, 0.0));
        assert_eq!(status.last_frame_age_ms, Some(6040));
    }
}
