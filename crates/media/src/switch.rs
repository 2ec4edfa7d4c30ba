//! The switch between a channel's inputs and its bus, and the output timeline.
//!
//! Every attached input has a slot here and calls [`Switch::forward`] for each frame. The slot
//! records the input's liveness (last media, start of its healthy streak, rates) and keeps its
//! codec configs and the frames since its last video keyframe (the *standby GOP*), so that a
//! failover can start the new input at once on a keyframe it already sent.
//!
//! Which input is chosen (the *selected* one, by name, so that an encoder reconnecting under the
//! same name resumes it) follows the channel's [`RedundancyConfig`]; see [`crate::failover`]
//! for the rules. A switch happens in one of three ways:
//!
//! - **immediate, with replay** (the active input was lost, auto mode): the new input's cached
//!   configs and GOP are sent at once, rebased so that its newest frame lands where the output
//!   timeline would be had it kept running at the real pace since the last frame sent. The
//!   outputs see a gap of `threshold - GOP age`, never more than the threshold.
//! - **planned** (manual switch or auto return while the active input is healthy): the active
//!   input keeps being forwarded until the new input's next keyframe, which then continues the
//!   timeline at the real pace. No gap.
//! - **live** (single mode, a takeover by a reconnecting encoder, an input without a cached
//!   keyframe): the timeline waits for the input's next keyframe and continues at the real pace
//!   from the last frame sent (at least one frame later).
//!
//! Codec configs of the new input are always sent first; the bus drops them when they equal
//! the current ones and delivers them before the next media frame when they differ.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::bus::BusSender;
use crate::channel::{AttachError, AttachMode, RateMeter, SendError};
use crate::failover::fill::FillGenerator;
use crate::failover::{
    ChannelEvent, FillState, InputStatus, RedundancyConfig, RedundancyMode, SourceState,
    SourcesStatus, SwitchError, SwitchReason, SwitchRecord, TransportStats,
};
use crate::frame::{Frame, Track, TIMESCALE};

/// `d` in 90 kHz ticks.
fn ticks(d: Duration) -> i64 {
    i64::try_from(d.as_micros() * 90 / 1000).unwrap_or(i64::MAX)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Maps each input's timestamps onto the channel's continuous output timeline.
///
/// Within one input, output = input + offset. At a discontinuity (another input, or the same
/// encoder reconnecting and restarting at 0) the offset is recomputed so that the output keeps
/// the real pace: an anchor frame of the new input lands as far after the last output dts as
/// wall time has passed since that frame was sent (and the first new frame at least one frame
/// duration after it). One offset serves both tracks, which keeps the new input's audio/video
/// sync. Output dts of a track never goes backwards: if it would, the offset moves forward
/// just enough.
#[derive(Debug)]
pub(crate) struct Timeline {
    offset: Option<i64>,
    /// Last output dts per track.
    last_dts: [Option<i64>; 2],
    /// Last input dts per track, for the frame duration estimate.
    last_input_dts: [Option<i64>; 2],
    /// Estimated frame duration per track, in 90 kHz ticks.
    frame_duration: [i64; 2],
    /// When the last media frame was sent.
    last_emit_at: Option<Instant>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            offset: None,
            last_dts: [None; 2],
            last_input_dts: [None; 2],
            // 30 fps video; AAC frames of 1024 samples at 48 kHz.
            frame_duration: [TIMESCALE / 30, 1024 * TIMESCALE / 48_000],
            last_emit_at: None,
        }
    }
}

impl Timeline {
    /// The next frame comes from a new input timeline; its offset is computed from it.
    pub(crate) fn discontinuity(&mut self) {
        self.offset = None;
        self.last_input_dts = [None; 2];
    }

    /// A new input timeline whose first frame sent is `first_dts` (on `track`), paced by an
    /// anchor frame of that timeline (`anchor_dts`, received at `anchor_at`).
    pub(crate) fn rebase(
        &mut self,
        first_dts: i64,
        track: Track,
        anchor_dts: i64,
        anchor_at: Instant,
    ) {
        self.discontinuity();
        let offset = match self.last_output_dts() {
            // The channel's first frame: the timeline starts at 0.
            None => -first_dts,
            Some(last) => {
                let one_frame = last + self.frame_duration[track.index()] - first_dts;
                match self.last_emit_at {
                    Some(at) => {
                        let real =
                            last + ticks(anchor_at.saturating_duration_since(at)) - anchor_dts;
                        real.max(one_frame)
                    }
                    None => one_frame,
                }
            }
        };
        self.offset = Some(offset);
    }

    /// Output (dts, pts) for `frame`, received (or sent) at `now`.
    pub(crate) fn map(&mut self, frame: &Frame, now: Instant) -> (i64, i64) {
        if frame.config {
            // Configs carry no time; give them the current output time.
            let now = self.last_output_dts().unwrap_or(0);
            return (now, now);
        }
        if self.offset.is_none() {
            self.rebase(frame.dts, frame.track, frame.dts, now);
        }
        let t = frame.track.index();
        if let Some(prev) = self.last_input_dts[t] {
            let delta = frame.dts - prev;
            if delta > 0 && delta <= TIMESCALE {
                self.frame_duration[t] = delta;
            }
        }
        self.last_input_dts[t] = Some(frame.dts);

        let mut offset = self.offset.unwrap_or(-frame.dts);
        let mut dts = frame.dts + offset;
        if let Some(last) = self.last_dts[t] {
            if dts <= last {
                let bump = last + 1 - dts;
                offset += bump;
                dts += bump;
            }
        }
        self.offset = Some(offset);
        self.last_dts[t] = Some(dts);
        self.last_emit_at = Some(now);
        (dts, frame.pts + offset)
    }

    fn last_output_dts(&self) -> Option<i64> {
        self.last_dts.iter().flatten().copied().max()
    }

    /// Whether anything was sent yet.
    pub(crate) fn started(&self) -> bool {
        self.last_emit_at.is_some()
    }

    /// The current video frame duration estimate, in 90 kHz ticks.
    pub(crate) fn video_frame_duration(&self) -> i64 {
        self.frame_duration[Track::Video.index()]
    }
}

/// What the outputs last received, for the fill signal.
#[derive(Default)]
struct LastSent {
    configs: [Option<Frame>; 2],
    keyframe: Option<Frame>,
}

/// The fill signal while it runs.
struct Filling {
    generator: FillGenerator,
    /// When the fill started (its timeline's 0).
    started_at: Instant,
    started_ms: u64,
}

/// Bounds of an input's standby cache (its frames since the last keyframe).
const CACHE_MAX_FRAMES: usize = 2000;
const CACHE_MAX_BYTES: usize = 32 << 20;
/// Audio-only inputs: recent frames kept (not replayed, for status only).
const AUDIO_WINDOW: usize = 50;

/// An input's codec configs and the frames since its last video keyframe, with their arrival
/// times, on the input's own timeline.
#[derive(Default)]
struct InputCache {
    configs: [Option<Frame>; 2],
    frames: VecDeque<(Instant, Frame)>,
    bytes: usize,
    has_video: bool,
}

impl InputCache {
    fn record(&mut self, frame: &Frame, now: Instant) {
        if frame.track == Track::Video {
            self.has_video = true;
        }
        if frame.config {
            self.configs[frame.track.index()] = Some(frame.clone());
            return;
        }
        if frame.is_video_keyframe() {
            self.frames.clear();
            self.bytes = 0;
        } else if self.has_video {
            if self.frames.is_empty() {
                return; // waiting for a keyframe to start from
            }
            if self.frames.len() >= CACHE_MAX_FRAMES
                || self.bytes + frame.data.len() > CACHE_MAX_BYTES
            {
                self.frames.clear();
                self.bytes = 0;
                return;
            }
        }
        self.frames.push_back((now, frame.clone()));
        self.bytes += frame.data.len();
        if !self.has_video {
            while self.frames.len() > AUDIO_WINDOW {
                if let Some((_, old)) = self.frames.pop_front() {
                    self.bytes -= old.data.len();
                }
            }
        }
    }

    /// The cached frames start on a video keyframe.
    fn replayable(&self) -> bool {
        self.frames
            .front()
            .is_some_and(|(_, f)| f.is_video_keyframe())
    }

    /// A point the input's output may start at: a video keyframe, or any frame of an input
    /// without video.
    fn is_sync(&self, frame: &Frame) -> bool {
        !frame.config && (frame.is_video_keyframe() || !self.has_video)
    }
}

struct InputSlot {
    name: String,
    generation: u64,
    cancel: watch::Sender<bool>,
    /// When the current connection attached.
    attached_at: Instant,
    last_media: Option<Instant>,
    /// Start of the current run of media without a threshold-long silence.
    healthy_since: Option<Instant>,
    meter: RateMeter,
    cache: InputCache,
    transport: Option<TransportStats>,
}

impl InputSlot {
    fn healthy(&self, now: Instant, threshold: Duration) -> bool {
        self.last_media
            .is_some_and(|t| now.saturating_duration_since(t) < threshold)
    }

    fn record(&mut self, frame: &Frame, now: Instant, threshold: Duration) {
        if !frame.config {
            if !self.healthy(now, threshold) {
                self.healthy_since = Some(now);
            }
            self.last_media = Some(now);
            self.meter
                .record(now, frame.data.len(), frame.track == Track::Video);
        }
        self.cache.record(frame, now);
    }
}

/// What one call sent to the bus, for the channel's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    pub media: u64,
    pub video: u64,
    pub bytes: usize,
}

/// Inputs attached to one channel, the chosen one, and the bus they feed.
pub(crate) struct Switch {
    channel: Uuid,
    output: BusSender,
    config: RedundancyConfig,
    /// In attach order.
    inputs: Vec<InputSlot>,
    /// The chosen input, by name. It may be detached or silent (lost) when nothing better is
    /// available.
    selected: Option<String>,
    /// The connection of the selected input whose frames are being forwarded.
    live_generation: Option<u64>,
    /// A planned switch: waiting for a keyframe of this input.
    pending: Option<(String, SwitchReason)>,
    /// The last switch moved down in priority automatically: auto return may move back.
    returnable: bool,
    next_generation: u64,
    timeline: Timeline,
    /// The selected input's video waits for a keyframe.
    awaiting_keyframe: bool,
    closed: bool,
    /// Last reported state per input name.
    states: Vec<(String, SourceState)>,
    events: Vec<ChannelEvent>,
    sent: Sent,
    switches: u64,
    last_switch: Option<SwitchRecord>,
    last_sent: LastSent,
    filling: Option<Filling>,
    /// The fill ran for its hold and stopped; no new fill until an input is live again.
    fill_expired: bool,
}

impl Switch {
    pub(crate) fn new(channel: Uuid, output: BusSender, config: RedundancyConfig) -> Self {
        Self {
            channel,
            output,
            config: config.normalized(),
            inputs: Vec::new(),
            selected: None,
            live_generation: None,
            pending: None,
            returnable: false,
            next_generation: 1,
            timeline: Timeline::default(),
            awaiting_keyframe: true,
            closed: false,
            states: Vec::new(),
            events: Vec::new(),
            sent: Sent::default(),
            switches: 0,
            last_switch: None,
            last_sent: LastSent::default(),
            filling: None,
            fill_expired: false,
        }
    }

    /// The fill signal runs.
    pub(crate) fn filling(&self) -> bool {
        self.filling.is_some()
    }

    pub(crate) fn config(&self) -> &RedundancyConfig {
        &self.config
    }

    /// Applies new settings at once.
    pub(crate) fn set_config(&mut self, config: RedundancyConfig, now: Instant) {
        self.config = config.normalized();
        if self.config.mode != RedundancyMode::AutoFailover {
            self.returnable = false;
        }
        if let Some((target, _)) = &self.pending {
            if !self.eligible(target) {
                self.pending = None;
            }
        }
        let _ = self.evaluate(now);
    }

    /// Events since the last call.
    pub(crate) fn take_events(&mut self) -> Vec<ChannelEvent> {
        std::mem::take(&mut self.events)
    }

    /// Attaches an input; its generation and cancel signal identify its handle.
    pub(crate) fn attach(
        &mut self,
        name: &str,
        mode: AttachMode,
        now: Instant,
    ) -> Result<(u64, watch::Receiver<bool>), AttachError> {
        if self.closed {
            return Err(AttachError::ChannelClosed);
        }
        let generation = self.next_generation;
        let (cancel, cancelled) = watch::channel(false);
        if let Some(slot) = self.inputs.iter_mut().find(|s| s.name == name) {
            let busy = match mode {
                AttachMode::Exclusive => true,
                AttachMode::Takeover => false,
                AttachMode::TakeoverStale(silence) => {
                    let since = slot
                        .last_media
                        .unwrap_or(slot.attached_at)
                        .max(slot.attached_at);
                    now.saturating_duration_since(since) < silence
                }
            };
            if busy {
                return Err(AttachError::InputBusy {
                    name: name.to_owned(),
                });
            }
            // Takeover: the stale handle is told at once and its sends are refused from now on.
            // The new connection restarts its own timeline: its cache starts afresh; its health
            // carries over (a quick reconnect is not a loss).
            let _ = slot.cancel.send(true);
            slot.generation = generation;
            slot.cancel = cancel;
            slot.attached_at = now;
            slot.cache = InputCache::default();
            slot.transport = None;
        } else {
            self.inputs.push(InputSlot {
                name: name.to_owned(),
                generation,
                cancel,
                attached_at: now,
                last_media: None,
                healthy_since: None,
                meter: RateMeter::default(),
                cache: InputCache::default(),
                transport: None,
            });
        }
        self.next_generation += 1;
        let _ = self.evaluate(now);
        Ok((generation, cancelled))
    }

    /// Detaches the input of `generation` if still attached; true if it was. A detached input
    /// is lost at once.
    pub(crate) fn detach(&mut self, generation: u64, now: Instant) -> bool {
        let Some(i) = self.inputs.iter().position(|s| s.generation == generation) else {
            return false;
        };
        let slot = self.inputs.remove(i);
        if self.live_generation == Some(generation) {
            self.live_generation = None;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|(target, _)| *target == slot.name)
        {
            self.pending = None;
        }
        let _ = self.evaluate(now);
        true
    }

    /// Re-checks input health without a frame (the channel's watchdog calls it).
    pub(crate) fn tick(&mut self, now: Instant) {
        if !self.closed {
            let _ = self.evaluate(now);
            let _ = self.emit_fill(now);
        }
    }

    /// A frame from the input of `generation`, received at `now`. Returns what reached the
    /// bus because of it (nothing for a standby input or video before the selected input's
    /// keyframe; a whole cached GOP when it triggered a failover).
    pub(crate) fn forward(
        &mut self,
        generation: u64,
        frame: Frame,
        now: Instant,
    ) -> Result<Sent, SendError> {
        if self.closed {
            return Err(SendError::ChannelClosed);
        }
        let Some(idx) = self.inputs.iter().position(|s| s.generation == generation) else {
            return Err(SendError::Replaced);
        };
        self.sent = Sent::default();
        let threshold = self.config.failover_threshold;
        self.inputs[idx].record(&frame, now, threshold);
        if self.evaluate(now)? == Some(generation) {
            // The failover replayed this input's cache, this frame included.
            return Ok(std::mem::take(&mut self.sent));
        }
        let slot = &self.inputs[idx];
        let is_pending_target = self
            .pending
            .as_ref()
            .is_some_and(|(target, _)| *target == slot.name);
        if is_pending_target && slot.cache.is_sync(&frame) {
            self.complete_planned(idx, &frame, now)?;
        }
        if self.selected.as_deref() == Some(self.inputs[idx].name.as_str()) {
            if self.live_generation != Some(generation) {
                // Another connection of the selected input (a takeover or a reconnect).
                self.start_live(idx)?;
            }
            if self.filling.is_some() {
                // Back from the fill on the input's next sync point (its configs first), at
                // the real pace after the last fill frame.
                if !self.inputs[idx].cache.is_sync(&frame) {
                    self.emit_fill(now)?;
                    return Ok(std::mem::take(&mut self.sent));
                }
                self.end_fill(FillState::Ended);
                self.timeline.discontinuity();
                self.send_configs(idx)?;
                self.awaiting_keyframe = false;
            }
            if frame.track == Track::Video && !frame.config && self.awaiting_keyframe {
                if !frame.keyframe {
                    return Ok(std::mem::take(&mut self.sent));
                }
                self.awaiting_keyframe = false;
            }
            self.emit(&frame, now)?;
        }
        Ok(std::mem::take(&mut self.sent))
    }

    /// Asks for `name` to become the active input: at once when the active one is lost,
    /// otherwise on `name`'s next keyframe (the active input is forwarded until then).
    pub(crate) fn switch_to(&mut self, name: &str, now: Instant) -> Result<(), SwitchError> {
        if self.closed {
            return Err(SwitchError::ChannelClosed);
        }
        if !self.eligible(name) {
            return Err(SwitchError::NotConfigured(name.to_owned()));
        }
        let threshold = self.config.failover_threshold;
        let Some(idx) = self.inputs.iter().position(|s| s.name == name) else {
            return Err(SwitchError::NotConnected(name.to_owned()));
        };
        if !self.inputs[idx].healthy(now, threshold) {
            return Err(SwitchError::NotHealthy(name.to_owned()));
        }
        self.returnable = false;
        if self.selected.as_deref() == Some(name) {
            self.pending = None;
            return Ok(());
        }
        if self.config.mode == RedundancyMode::Single {
            self.select_live(idx, Some(SwitchReason::Manual));
        } else if self.selected_healthy(now) {
            self.pending = Some((name.to_owned(), SwitchReason::Manual));
        } else {
            let _ = self.switch_now(idx, Some(SwitchReason::Manual), now);
        }
        self.update_states(now);
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        for slot in self.inputs.drain(..) {
            let _ = slot.cancel.send(true);
        }
        self.selected = None;
        self.live_generation = None;
        self.pending = None;
        self.output.close();
    }

    /// The selected input, when a connection for it is attached.
    pub(crate) fn active_input(&self) -> Option<&str> {
        let selected = self.selected.as_deref()?;
        self.inputs
            .iter()
            .any(|s| s.name == selected)
            .then_some(selected)
    }

    pub(crate) fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|s| s.name.clone()).collect()
    }

    pub(crate) fn has_inputs(&self) -> bool {
        !self.inputs.is_empty()
    }

    pub(crate) fn set_transport(&mut self, generation: u64, stats: TransportStats) {
        if let Some(slot) = self.inputs.iter_mut().find(|s| s.generation == generation) {
            slot.transport = Some(stats);
        }
    }

    pub(crate) fn status(&mut self, now: Instant) -> SourcesStatus {
        let mut names: Vec<String> = self.config.inputs.clone();
        for slot in &self.inputs {
            if !names.contains(&slot.name) {
                names.push(slot.name.clone());
            }
        }
        let mut inputs = Vec::with_capacity(names.len());
        for name in names {
            let state = self.state_of(&name, now);
            let input = match self.inputs.iter_mut().find(|s| s.name == name) {
                Some(slot) => {
                    let (bitrate_bps, fps) = slot.meter.rates(now);
                    InputStatus {
                        state,
                        connected: true,
                        uptime_seconds: Some(
                            now.saturating_duration_since(slot.attached_at)
                                .as_secs_f64(),
                        ),
                        bitrate_bps,
                        fps,
                        last_media_age_ms: slot
                            .last_media
                            .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                        transport: slot.transport.clone(),
                        name,
                    }
                }
                None => InputStatus {
                    name,
                    state,
                    connected: false,
                    uptime_seconds: None,
                    bitrate_bps: 0,
                    fps: 0.0,
                    last_media_age_ms: None,
                    transport: None,
                },
            };
            inputs.push(input);
        }
        SourcesStatus {
            mode: self.config.mode,
            failover_threshold_ms: self.config.failover_threshold.as_millis() as u64,
            active: self.selected.clone(),
            switching_to: self.pending.as_ref().map(|(n, _)| n.clone()),
            inputs,
            switches: self.switches,
            last_switch: self.last_switch.clone(),
            fill_since_ms: self.filling.as_ref().map(|f| f.started_ms),
        }
    }

    // ---- the rules ----

    /// Whether `name` may be chosen under the current settings.
    fn eligible(&self, name: &str) -> bool {
        let inputs = &self.config.inputs;
        if inputs.is_empty() {
            return true;
        }
        match self.config.mode {
            RedundancyMode::Single => inputs[0] == name,
            _ => inputs.iter().any(|n| n == name),
        }
    }

    /// Lower is preferred: configured order, then attach order.
    fn priority(&self, name: &str) -> usize {
        match self.config.inputs.iter().position(|n| n == name) {
            Some(p) => p,
            None => {
                self.config.inputs.len()
                    + self
                        .inputs
                        .iter()
                        .position(|s| s.name == name)
                        .unwrap_or(usize::MAX / 2)
            }
        }
    }

    fn slot(&self, name: &str) -> Option<&InputSlot> {
        self.inputs.iter().find(|s| s.name == name)
    }

    fn is_healthy(&self, name: &str, now: Instant) -> bool {
        self.slot(name)
            .is_some_and(|s| s.healthy(now, self.config.failover_threshold))
    }

    fn selected_healthy(&self, now: Instant) -> bool {
        self.selected
            .as_deref()
            .is_some_and(|s| self.is_healthy(s, now))
    }

    /// The preferred attached input that passes `ok`, as an index into `inputs`.
    fn best(&self, ok: impl Fn(&InputSlot) -> bool) -> Option<usize> {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(_, s)| self.eligible(&s.name) && ok(s))
            .min_by_key(|(_, s)| self.priority(&s.name))
            .map(|(i, _)| i)
    }

    /// Applies the mode's rules; returns the generation whose cache was replayed, if any.
    fn evaluate(&mut self, now: Instant) -> Result<Option<u64>, SendError> {
        let threshold = self.config.failover_threshold;
        let mut replayed = None;
        match self.config.mode {
            RedundancyMode::Single => {
                let keep = self.selected.as_deref().is_some_and(|s| {
                    self.eligible(s) && self.inputs.iter().any(|slot| slot.name == s)
                });
                if !keep {
                    if let Some(idx) = self.best(|_| true) {
                        let reason = match self.selected.as_deref() {
                            Some(s) if !self.eligible(s) => Some(SwitchReason::Manual),
                            Some(s) => Some(SwitchReason::lost(s)),
                            None => None,
                        };
                        self.select_live(idx, reason);
                    }
                }
                self.pending = None;
            }
            mode => {
                if let Some((target, _)) = &self.pending {
                    if !self.is_healthy(target, now) || !self.eligible(target) {
                        self.pending = None;
                    }
                }
                // Per frame: the selected name is cloned only on the (rare) loss.
                let selected_healthy = self
                    .selected
                    .as_deref()
                    .map(|current| self.is_healthy(current, now));
                match selected_healthy {
                    None => {
                        if let Some(idx) = self.best(|s| s.healthy(now, threshold)) {
                            replayed = self.switch_now(idx, None, now)?;
                            // Starting on a lower-priority input (the backup was up first):
                            // auto mode moves to the preferred one once it is healthy for the
                            // hold, exactly as after a failover.
                            self.returnable = mode == RedundancyMode::AutoFailover;
                        }
                    }
                    Some(false) => {
                        let current = self.selected.clone().unwrap_or_default();
                        // Lost: a planned switch happens now; auto mode fails over.
                        let target = match self.pending.take() {
                            Some((name, reason)) => self
                                .inputs
                                .iter()
                                .position(|s| s.name == name)
                                .map(|i| (i, reason)),
                            None if mode == RedundancyMode::AutoFailover => self
                                .best(|s| s.name != current && s.healthy(now, threshold))
                                .map(|i| (i, SwitchReason::lost(&current))),
                            None => None,
                        };
                        if let Some((idx, reason)) = target {
                            let down =
                                self.priority(&self.inputs[idx].name) > self.priority(&current);
                            replayed = self.switch_now(idx, Some(reason), now)?;
                            self.returnable = reason != SwitchReason::Manual
                                && mode == RedundancyMode::AutoFailover
                                && down;
                        }
                    }
                    Some(true) => {
                        let hold = self.config.return_hold;
                        if mode == RedundancyMode::AutoFailover
                            && self.config.auto_return
                            && self.returnable
                            && self.pending.is_none()
                        {
                            let current_priority =
                                self.priority(self.selected.as_deref().unwrap_or_default());
                            let better = self.best(|s| {
                                s.healthy(now, threshold)
                                    && s.healthy_since
                                        .is_some_and(|t| now.saturating_duration_since(t) >= hold)
                            });
                            if let Some(idx) = better {
                                let name = self.inputs[idx].name.clone();
                                if self.priority(&name) < current_priority {
                                    self.pending = Some((name, SwitchReason::PrimaryRestored));
                                }
                            }
                        }
                    }
                }
            }
        }
        self.update_fill(now);
        self.update_states(now);
        Ok(replayed)
    }

    /// Starts the fill when the outputs starve (the selected input is lost and nothing took
    /// over), and stops it after its hold.
    fn update_fill(&mut self, now: Instant) {
        let hold = self.config.fill_hold;
        if let Some(f) = &self.filling {
            if hold.is_zero() || now.saturating_duration_since(f.started_at) >= hold {
                let held = now.saturating_duration_since(f.started_at);
                tracing::warn!(
                    channel = %self.channel,
                    held_s = held.as_secs_f64(),
                    "no input came back while the fill signal held: it stops"
                );
                self.end_fill(FillState::Expired);
                self.fill_expired = true;
            }
            return;
        }
        // Only channels with a source configuration (redundant sources) fill; a camera or a
        // plain channel whose publisher leaves just goes idle.
        if self.closed
            || hold.is_zero()
            || self.fill_expired
            || self.config.inputs.is_empty()
            || !self.timeline.started()
        {
            return;
        }
        if self.selected.is_none() || self.selected_healthy(now) {
            return;
        }
        let Some(generator) = FillGenerator::new(
            self.last_sent.configs[Track::Video.index()].as_ref(),
            self.last_sent.keyframe.as_ref(),
            self.last_sent.configs[Track::Audio.index()].as_ref(),
            self.timeline.video_frame_duration(),
        ) else {
            return;
        };
        tracing::warn!(
            channel = %self.channel,
            still_picture = if generator.has_skip_pictures() { "skipped pictures" } else { "keyframes only" },
            "no input is healthy: the outputs get the fill signal"
        );
        // The fill's timeline starts now, at the real pace after the last frame sent.
        self.timeline.rebase(0, Track::Video, 0, now);
        let at_ms = unix_ms();
        self.filling = Some(Filling {
            generator,
            started_at: now,
            started_ms: at_ms,
        });
        self.events.push(ChannelEvent::Fill {
            channel: self.channel,
            state: FillState::Started,
            at_ms,
        });
    }

    fn end_fill(&mut self, state: FillState) {
        if self.filling.take().is_some() {
            if state == FillState::Ended {
                tracing::info!(channel = %self.channel, "an input is live again: the fill signal ends");
            }
            self.events.push(ChannelEvent::Fill {
                channel: self.channel,
                state,
                at_ms: unix_ms(),
            });
        }
    }

    /// Sends the fill frames due by `now`.
    fn emit_fill(&mut self, now: Instant) -> Result<(), SendError> {
        let Some(f) = &mut self.filling else {
            return Ok(());
        };
        let due = ticks(now.saturating_duration_since(f.started_at));
        let frames = f.generator.frames_until(due);
        for frame in &frames {
            self.emit(frame, now)?;
        }
        Ok(())
    }

    /// Selects the input at `idx` without replay: its frames start at its next keyframe.
    fn select_live(&mut self, idx: usize, reason: Option<SwitchReason>) {
        let name = self.inputs[idx].name.clone();
        if self.selected.as_deref() == Some(name.as_str()) {
            return;
        }
        let from = self.selected.replace(name.clone());
        self.live_generation = None;
        self.pending = None;
        if let Some(reason) = reason {
            self.record_switch(from, name, reason);
        }
    }

    /// The selected input's connection changed: wait for its keyframe, on a new timeline.
    fn start_live(&mut self, idx: usize) -> Result<(), SendError> {
        self.live_generation = Some(self.inputs[idx].generation);
        if self.filling.is_some() {
            // The fill goes on until this connection's sync point, which sends its configs.
            return Ok(());
        }
        self.timeline.discontinuity();
        self.awaiting_keyframe = true;
        self.send_configs(idx)
    }

    /// Makes the input at `idx` active now: its cached GOP (when it has one) is sent at once.
    /// Returns its generation when the cache was replayed.
    fn switch_now(
        &mut self,
        idx: usize,
        reason: Option<SwitchReason>,
        now: Instant,
    ) -> Result<Option<u64>, SendError> {
        let name = self.inputs[idx].name.clone();
        let generation = self.inputs[idx].generation;
        let from = self.selected.replace(name.clone());
        self.pending = None;
        self.live_generation = Some(generation);
        if let Some(reason) = reason {
            self.record_switch(from, name, reason);
        }
        if !self.inputs[idx].cache.replayable() {
            if self.filling.is_none() {
                self.send_configs(idx)?;
                self.timeline.discontinuity();
                self.awaiting_keyframe = true;
            }
            // While filling, the fill goes on until the input's keyframe (see `forward`).
            return Ok(None);
        }
        self.end_fill(FillState::Ended);
        self.send_configs(idx)?;
        let frames: Vec<Frame> = self.inputs[idx]
            .cache
            .frames
            .iter()
            .map(|(_, f)| f.clone())
            .collect();
        let (first, (anchor_at, anchor)) = match (
            self.inputs[idx].cache.frames.front(),
            self.inputs[idx].cache.frames.back(),
        ) {
            (Some((_, first)), Some((at, anchor))) => ((first.dts, first.track), (*at, anchor.dts)),
            _ => return Ok(None),
        };
        self.timeline.rebase(first.0, first.1, anchor, anchor_at);
        self.awaiting_keyframe = false;
        for frame in &frames {
            self.emit(frame, now)?;
        }
        Ok(Some(generation))
    }

    /// A planned switch reaches the target's sync point (`frame`, which the caller forwards).
    fn complete_planned(
        &mut self,
        idx: usize,
        frame: &Frame,
        now: Instant,
    ) -> Result<(), SendError> {
        let Some((_, reason)) = self.pending.take() else {
            return Ok(());
        };
        let name = self.inputs[idx].name.clone();
        let from = self.selected.replace(name.clone());
        self.live_generation = Some(self.inputs[idx].generation);
        self.record_switch(from, name.clone(), reason);
        if self.priority(&name) == 0 || reason == SwitchReason::Manual {
            self.returnable = false;
        }
        self.send_configs(idx)?;
        self.timeline.rebase(frame.dts, frame.track, frame.dts, now);
        self.awaiting_keyframe = false;
        self.update_states(now);
        Ok(())
    }

    fn send_configs(&mut self, idx: usize) -> Result<(), SendError> {
        let configs: Vec<Frame> = self.inputs[idx]
            .cache
            .configs
            .iter()
            .flatten()
            .cloned()
            .collect();
        let now = self.timeline.last_emit_at.unwrap_or_else(Instant::now);
        for config in &configs {
            self.emit(config, now)?;
        }
        Ok(())
    }

    fn emit(&mut self, frame: &Frame, now: Instant) -> Result<(), SendError> {
        let (dts, pts) = self.timeline.map(frame, now);
        if self.filling.is_none() {
            if frame.config {
                self.last_sent.configs[frame.track.index()] = Some(frame.clone());
            } else if frame.is_video_keyframe() {
                self.last_sent.keyframe = Some(frame.clone());
            }
            if !frame.config {
                self.fill_expired = false;
            }
        }
        let out = Arc::new(frame.with_timestamps(dts, pts));
        self.output
            .send(out)
            .map_err(|_| SendError::ChannelClosed)?;
        if !frame.config {
            self.sent.media += 1;
            self.sent.bytes += frame.data.len();
            if frame.track == Track::Video {
                self.sent.video += 1;
            }
        }
        Ok(())
    }

    fn record_switch(&mut self, from: Option<String>, to: String, reason: SwitchReason) {
        if from.as_deref() == Some(to.as_str()) {
            return;
        }
        let at_ms = unix_ms();
        self.switches += 1;
        self.last_switch = Some(SwitchRecord {
            from: from.clone(),
            to: to.clone(),
            reason,
            at_ms,
        });
        self.events.push(ChannelEvent::Switched {
            channel: self.channel,
            from,
            to,
            reason,
            at_ms,
        });
    }

    fn state_of(&self, name: &str, now: Instant) -> SourceState {
        if !self.config.inputs.is_empty() && !self.config.inputs.iter().any(|n| n == name) {
            return SourceState::NotConfigured;
        }
        if !self.is_healthy(name, now) {
            SourceState::Lost
        } else if self.selected.as_deref() == Some(name) {
            SourceState::Active
        } else {
            SourceState::Standby
        }
    }

    /// Records state changes of configured and attached inputs as events.
    fn update_states(&mut self, now: Instant) {
        // Runs per frame: the names are walked in place (configured inputs, then connected
        // ones that are not configured, each once), nothing is allocated unless a state changed.
        let configured = &self.config.inputs;
        let connected = self.inputs.iter().enumerate().filter_map(|(i, slot)| {
            let name = slot.name.as_str();
            let seen = configured.iter().any(|c| c == name)
                || self.inputs[..i].iter().any(|s| s.name == name);
            (!seen).then_some(name)
        });
        let mut changed = Vec::new();
        for name in configured.iter().map(String::as_str).chain(connected) {
            let state = self.state_of(name, now);
            match self.states.iter().find(|(n, _)| n == name) {
                Some((_, s)) if *s == state => {}
                // A connection that never sent media is not news.
                None if state == SourceState::Lost => {}
                _ => changed.push((name.to_owned(), state)),
            }
        }
        if changed.is_empty() {
            return;
        }
        let at_ms = unix_ms();
        for (name, state) in changed {
            match self.states.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = state,
                None => self.states.push((name.clone(), state)),
            }
            self.events.push(ChannelEvent::InputState {
                channel: self.channel,
                input: name,
                state,
                at_ms,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Codec;
    use bytes::Bytes;

    fn video(dts: i64, key: bool) -> Frame {
        Frame::video(Codec::H264, key, dts, dts + 6000, Bytes::from_static(b"v"))
    }

    #[test]
    fn first_input_starts_the_timeline_at_zero() {
        let now = Instant::now();
        let mut tl = Timeline::default();
        assert_eq!(tl.map(&video(5000, true), now), (0, 6000));
        assert_eq!(tl.map(&video(8000, false), now), (3000, 9000));
    }

    #[test]
    fn restart_at_zero_continues_one_frame_later_then_at_the_input_pace() {
        let now = Instant::now();
        let mut tl = Timeline::default();
        for i in 0..100 {
            tl.map(&video(i * 1500, i == 0), now); // 60 fps
        }
        let last = 99 * 1500;
        tl.discontinuity();
        // The reconnecting encoder restarts at 0, now at 25 fps.
        assert_eq!(tl.map(&video(0, true), now).0, last + 1500);
        assert_eq!(tl.map(&video(3600, false), now).0, last + 1500 + 3600);
        assert_eq!(
            tl.map(&video(7200, false), now),
            (last + 1500 + 7200, last + 1500 + 13200)
        );
    }

    #[test]
    fn after_a_silence_the_timeline_continues_at_the_real_pace() {
        let t0 = Instant::now();
        let mut tl = Timeline::default();
        tl.map(&video(0, true), t0);
        tl.map(&video(3000, false), t0);
        tl.discontinuity();
        // 2 s later another input's keyframe arrives: 2 s of output time have passed.
        let (dts, _) = tl.map(&video(777, true), t0 + Duration::from_secs(2));
        assert_eq!(dts, 3000 + 180_000);
    }

    #[test]
    fn rebase_on_an_anchor_places_a_cached_gop_inside_the_gap() {
        let t0 = Instant::now();
        let mut tl = Timeline::default();
        tl.map(&video(0, true), t0);
        // The standby's keyframe (dts 50_000) arrived 0.4 s before its newest frame (dts
        // 86_000), which arrived 1 s after the last output frame.
        tl.rebase(50_000, Track::Video, 86_000, t0 + Duration::from_secs(1));
        assert_eq!(tl.map(&video(50_000, true), t0).0, 90_000 - 36_000);
        // Had the cached GOP been older than the gap, its keyframe would come one frame after.
        let mut tl = Timeline::default();
        tl.map(&video(0, true), t0);
        tl.rebase(0, Track::Video, 180_000, t0 + Duration::from_millis(500));
        assert_eq!(tl.map(&video(0, true), t0).0, 3000);
    }

    #[test]
    fn one_offset_keeps_audio_video_sync_across_a_switch() {
        let now = Instant::now();
        let mut tl = Timeline::default();
        tl.map(&video(0, true), now);
        tl.map(&Frame::audio(100, Bytes::new()), now);
        tl.map(&video(3000, false), now);
        tl.discontinuity();
        let (v, _) = tl.map(&video(90_000, true), now);
        let (a, _) = tl.map(&Frame::audio(90_100, Bytes::new()), now);
        assert_eq!(v, 3000 + 3000);
        assert_eq!(a - v, 100);
    }

    #[test]
    fn output_dts_never_goes_backwards_within_a_track() {
        let now = Instant::now();
        let mut tl = Timeline::default();
        tl.map(&video(0, true), now);
        tl.map(&video(3000, false), now);
        // The input jumps back.
        let (dts, _) = tl.map(&video(1000, false), now);
        assert_eq!(dts, 3001);
        assert_eq!(tl.map(&video(4000, false), now).0, 6001);
    }

    #[test]
    fn configs_take_the_current_output_time() {
        let now = Instant::now();
        let mut tl = Timeline::default();
        tl.map(&video(1000, true), now);
        tl.map(&video(4000, false), now);
        let config = Frame::video_config(Codec::H264, Bytes::new());
        assert_eq!(tl.map(&config, now), (3000, 3000));
    }
}
