//! Source redundancy: how a channel chooses between its inputs, and what it reports about them.
//!
//! A channel has one or more inputs (a redundant source: `primary` and `secondary`). Its
//! [`RedundancyConfig`] says how the switch picks the one whose frames reach the outputs:
//!
//! - [`RedundancyMode::Single`]: the first configured input (or, with none configured, the
//!   earliest attached one). Another input takes over only when it disconnects.
//! - [`RedundancyMode::AutoFailover`]: an input is *lost* when it has sent no media for
//!   `failover_threshold` or its connection closed; the switch then moves at once to the
//!   healthiest input by priority, starting from the keyframe the standby input sent last (its
//!   GOP is kept while it stands by), so the outputs see a gap of at most the threshold. With
//!   `auto_return`, once the higher-priority input has been healthy again for `return_hold`
//!   the switch moves back on its next keyframe (a planned switch: the current input is
//!   forwarded until then, so there is no gap at all).
//! - [`RedundancyMode::Manual`]: the switch moves only when told ([`crate::Channel::switch_to`]).
//!
//! Every switch is a [`ChannelEvent::Switched`] on the engine's event stream
//! ([`crate::Engine::events`]) with its [`SwitchReason`], and is counted in the
//! `lunora_failovers_total{channel,reason}` metric. Input state changes (active, standby,
//! lost) are [`ChannelEvent::InputState`] events.
//!
//! While no input is healthy (the chosen one is lost and auto mode has nothing to move to), the
//! channel sends a *fill signal* ([`fill`]): the last keyframe held still with skipped pictures
//! and AAC silence, encoded for the stream's own codec configuration, so destinations and
//! platforms keep a valid stream. It starts when the chosen input is lost, and ends on the
//! next keyframe of an input that comes back (or at once on a failover to a standby input's
//! cached GOP). After `fill_hold` the fill stops and [`ChannelEvent::Fill`] says
//! [`FillState::Expired`]: the control plane stops the channel's destinations then.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

/// How a channel chooses its active input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedundancyMode {
    /// Only the first input; another one is used only when it disconnects.
    #[default]
    Single,
    /// Move to a healthy input when the active one is lost.
    AutoFailover,
    /// Move only on an explicit switch.
    Manual,
}

impl RedundancyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RedundancyMode::Single => "single",
            RedundancyMode::AutoFailover => "auto_failover",
            RedundancyMode::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "single" => Some(RedundancyMode::Single),
            "auto_failover" => Some(RedundancyMode::AutoFailover),
            "manual" => Some(RedundancyMode::Manual),
            _ => None,
        }
    }
}

/// The switch settings of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedundancyConfig {
    pub mode: RedundancyMode,
    /// No media for this long (or a closed connection) and an input is lost.
    pub failover_threshold: Duration,
    /// How often input health is checked without media arriving, and how often input
    /// statistics are sampled.
    pub health_check_interval: Duration,
    /// In auto mode, return to a higher-priority input after a failover once it is healthy
    /// again for `return_hold`.
    pub auto_return: bool,
    pub return_hold: Duration,
    /// How long the fill signal holds the outputs while no input is healthy before it gives up
    /// (the destinations are stopped then). Zero: no fill, the outputs wait for an input.
    pub fill_hold: Duration,
    /// Configured input names, by priority (e.g. `["primary", "secondary"]`). Empty: every
    /// attached input, by attach order. Inputs not listed are never chosen when the list is
    /// not empty, and report [`SourceState::NotConfigured`].
    pub inputs: Vec<String>,
}

impl RedundancyConfig {
    pub const MIN_THRESHOLD: Duration = Duration::from_millis(200);
    pub const MAX_THRESHOLD: Duration = Duration::from_secs(60);
    pub const MAX_FILL_HOLD: Duration = Duration::from_secs(3600);
    pub const DEFAULT_FILL_HOLD: Duration = Duration::from_secs(60);

    /// Clamps the durations into their accepted ranges.
    pub fn normalized(mut self) -> Self {
        self.failover_threshold = self
            .failover_threshold
            .clamp(Self::MIN_THRESHOLD, Self::MAX_THRESHOLD);
        self.health_check_interval = self
            .health_check_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        self.return_hold = self.return_hold.min(Duration::from_secs(3600));
        self.fill_hold = self.fill_hold.min(Self::MAX_FILL_HOLD);
        self
    }
}

impl Default for RedundancyConfig {
    fn default() -> Self {
        Self {
            mode: RedundancyMode::Single,
            failover_threshold: Duration::from_secs(5),
            health_check_interval: Duration::from_secs(1),
            auto_return: true,
            return_hold: Duration::from_secs(10),
            fill_hold: Self::DEFAULT_FILL_HOLD,
            inputs: Vec::new(),
        }
    }
}

/// Why the active input changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchReason {
    /// The primary input was lost; a lower-priority input took over.
    PrimaryLost,
    /// The secondary input was lost while active; another input took over.
    SecondaryLost,
    /// Another active input was lost.
    InputLost,
    /// Someone asked for it.
    Manual,
    /// The primary was healthy again for the hold time (auto return).
    PrimaryRestored,
}

impl SwitchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::PrimaryLost => "primary_lost",
            SwitchReason::SecondaryLost => "secondary_lost",
            SwitchReason::InputLost => "input_lost",
            SwitchReason::Manual => "manual",
            SwitchReason::PrimaryRestored => "primary_restored",
        }
    }

    pub(crate) fn lost(name: &str) -> Self {
        match name {
            "primary" => SwitchReason::PrimaryLost,
            "secondary" => SwitchReason::SecondaryLost,
            _ => SwitchReason::InputLost,
        }
    }
}

/// Where an input stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Its frames reach the outputs.
    Active,
    /// Connected and sending media, ready to take over.
    Standby,
    /// Configured, but disconnected or silent for the failover threshold.
    Lost,
    /// Connected, but not a configured input of the channel.
    NotConfigured,
}

/// Transport figures of an input connection (SRT today), sampled by its driver.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TransportStats {
    /// `srt` or `rtmp`.
    pub protocol: String,
    /// `listener` (the encoder called Lunora) or `caller` (Lunora called the encoder).
    pub mode: String,
    pub peer: String,
    /// Smoothed round-trip time.
    pub rtt_ms: f64,
    /// The negotiated receive latency.
    pub latency_ms: u64,
    /// Data packets received, retransmissions included.
    pub packets_received: u64,
    /// Packets detected missing (reordered or lost).
    pub packets_lost: u64,
    /// Retransmitted packets received.
    pub packets_retransmitted: u64,
    /// Packets that arrived too late to be delivered (dropped).
    pub packets_dropped: u64,
    /// Received bits per second over the last sampling period.
    pub bitrate_bps: u64,
    /// Whether the payload is encrypted (AES).
    pub encrypted: bool,
    /// AES key length in bits when encrypted.
    pub key_length: Option<u16>,
}

/// One input as the control plane sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputStatus {
    pub name: String,
    pub state: SourceState,
    /// A connection is attached.
    pub connected: bool,
    /// Seconds since the current connection attached.
    pub uptime_seconds: Option<f64>,
    /// Payload bits per second received on this input over the last few seconds.
    pub bitrate_bps: u64,
    /// Video frames per second received on this input.
    pub fps: f64,
    /// Milliseconds since this input's last media frame.
    pub last_media_age_ms: Option<u64>,
    pub transport: Option<TransportStats>,
}

/// The last switch of a channel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SwitchRecord {
    pub from: Option<String>,
    pub to: String,
    pub reason: SwitchReason,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// The switch of a channel as the control plane sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourcesStatus {
    pub mode: RedundancyMode,
    pub failover_threshold_ms: u64,
    /// The input the switch has chosen (its state may be `lost` when nothing healthy is left).
    pub active: Option<String>,
    /// A planned switch waiting for a keyframe of this input.
    pub switching_to: Option<String>,
    /// Configured inputs first (by priority), then any other attached input.
    pub inputs: Vec<InputStatus>,
    /// Switches since the channel opened.
    pub switches: u64,
    pub last_switch: Option<SwitchRecord>,
    /// The fill signal runs (no input is healthy), and since when (Unix milliseconds).
    pub fill_since_ms: Option<u64>,
}

/// What the fill signal did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FillState {
    /// No input is healthy: the outputs get the fill signal.
    Started,
    /// An input is live again.
    Ended,
    /// The fill held for `fill_hold` and stopped: the destinations should be stopped.
    Expired,
}

impl FillState {
    pub fn as_str(self) -> &'static str {
        match self {
            FillState::Started => "started",
            FillState::Ended => "ended",
            FillState::Expired => "expired",
        }
    }
}

/// Something a channel's switch did, for the control plane (WebSocket, session history,
/// alerts).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// The active input changed.
    Switched {
        channel: Uuid,
        from: Option<String>,
        to: String,
        reason: SwitchReason,
        /// Unix milliseconds.
        at_ms: u64,
    },
    /// An input's state changed.
    InputState {
        channel: Uuid,
        input: String,
        state: SourceState,
        at_ms: u64,
    },
    /// The fill signal started, ended or expired.
    Fill {
        channel: Uuid,
        state: FillState,
        at_ms: u64,
    },
}

impl ChannelEvent {
    pub fn channel(&self) -> Uuid {
        match self {
            ChannelEvent::Switched { channel, .. }
            | ChannelEvent::InputState { channel, .. }
            | ChannelEvent::Fill { channel, .. } => *channel,
        }
    }
}

/// Why [`crate::Channel::switch_to`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    #[error("input `{0}` is not connected")]
    NotConnected(String),
    #[error("input `{0}` has sent no media within the failover threshold")]
    NotHealthy(String),
    #[error("input `{0}` is not a configured input of this channel")]
    NotConfigured(String),
    #[error("the channel is closed")]
    ChannelClosed,
}

/// The engine's share of source redundancy: the event stream and the settings of channels
/// not open yet.
pub(crate) struct EngineSources {
    events: tokio::sync::broadcast::Sender<ChannelEvent>,
    configs: parking_lot::RwLock<std::collections::HashMap<Uuid, RedundancyConfig>>,
}

impl Default for EngineSources {
    fn default() -> Self {
        Self {
            events: tokio::sync::broadcast::channel(1024).0,
            configs: Default::default(),
        }
    }
}

impl EngineSources {
    pub(crate) fn new_channel(&self, id: Uuid, bus: crate::BusConfig) -> crate::Channel {
        let config = self.configs.read().get(&id).cloned().unwrap_or_default();
        crate::Channel::with_sources(id, bus, config, Some(self.events.clone()))
    }
}

impl crate::Engine {
    /// Switch events (failovers, input states) of every channel. A receiver that lags loses
    /// the oldest events.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<ChannelEvent> {
        self.sources.events.subscribe()
    }

    /// Sets the redundancy settings of channel `id`: at once if it is open, and whenever it
    /// opens.
    pub fn configure_sources(&self, id: Uuid, config: RedundancyConfig) {
        let config = config.normalized();
        self.sources.configs.write().insert(id, config.clone());
        if let Some(channel) = self.channel(id) {
            channel.set_redundancy(config);
        }
    }

    /// The redundancy settings channel `id` has or will have.
    pub fn sources_config(&self, id: Uuid) -> RedundancyConfig {
        match self.channel(id) {
            Some(channel) => channel.redundancy(),
            None => self
                .sources
                .configs
                .read()
                .get(&id)
                .cloned()
                .unwrap_or_default(),
        }
    }
}
pub(crate) mod fill;
#[cfg(test)]
mod tests;
