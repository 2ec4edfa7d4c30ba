//! Every event the server publishes, as Rust types. The hub only accepts an [`EventData`], and
//! the AsyncAPI document (`GET /api/v1/events/asyncapi.json`) is generated from the same list,
//! so an event cannot be emitted without a documented schema.

use serde::Serialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::alerts::AlertView;

/// `camera.status`: a camera went online or offline (topics `camera:{id}` and `org`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraStatusEvent {
    pub camera_id: String,
    pub channel_id: String,
    pub name: String,
    pub online: bool,
    /// When it changed, RFC 3339.
    pub since: String,
}

/// `channel.input`: an encoder started or stopped publishing to the channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelInputEvent {
    /// The input's name (`primary`, `backup`, …).
    pub input: String,
    /// `live` or `idle`.
    pub state: String,
    /// Why it stopped, in words (only when `idle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `source.failover`: the channel switched inputs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceFailoverEvent {
    pub channel_id: String,
    pub from: Option<String>,
    pub to: String,
    /// `primary_lost`, `primary_restored`, `manual`, …
    pub reason: String,
    pub at: String,
}

/// `source.state`: one input of the channel changed state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceStateEvent {
    pub channel_id: String,
    pub input: String,
    /// `active`, `standby`, `lost` or `not_configured`.
    pub state: String,
    pub at: String,
}

/// `source.fill`: the fill signal started, ended or expired.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceFillEvent {
    pub channel_id: String,
    /// `started`, `ended` or `expired`.
    pub state: String,
    pub at: String,
}

/// `destination.status`: a push to a destination changed state or error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationStatusEvent {
    pub destination_id: String,
    pub name: String,
    /// `idle`, `connecting`, `live`, `retrying` or `failed`.
    pub state: String,
    pub last_error: Option<String>,
    pub reconnects: u64,
}

/// `session.started` and `session.stopped`: a streaming session of the channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionEvent {
    pub channel_id: String,
    pub session_id: String,
}

/// `recording.started`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingStartedEvent {
    pub recording_id: String,
    pub channel_id: String,
    pub started_at: String,
}

/// `recording.stopped`, with the file's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingStoppedEvent {
    pub recording_id: String,
    pub channel_id: String,
    /// `complete` or `failed`.
    pub status: String,
    pub duration_seconds: f64,
    pub size_bytes: i64,
    pub error: Option<String>,
}

/// `dashboard.update`: the organization's live figures, at most once a second and only when
/// one of them changed (bitrates by more than a tenth).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DashboardUpdate {
    pub cameras_total: u64,
    pub cameras_online: u64,
    pub cameras_offline: u64,
    /// Channels with a live input.
    pub live_channels: u64,
    /// Destinations currently receiving a stream.
    pub destinations_live: u64,
    /// Sum of the live channels' input bitrates, bits per second.
    pub ingest_bps: u64,
    /// Sum of the destinations' output bitrates, bits per second.
    pub egress_bps: u64,
    /// Alerts not yet resolved.
    pub active_alerts: u64,
    /// When the figures were taken, RFC 3339.
    pub at: String,
}

/// `notification`: an in-app notification for the user (topic `user:{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    /// `alert.raised`, `alert.resolved`, …
    pub kind: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    pub title: String,
    pub body: String,
    /// What it is about: `alert:{id}`, …
    pub subject: String,
    pub created_at: String,
    pub read_at: Option<String>,
}

/// The payload of one event: its type name comes with it.
pub trait EventData: Serialize {
    fn kind(&self) -> &str;
}

/// An event of the advertising workspace (`campaign.updated`, `episode.assigned`,
/// `presence`, …) with the entity's JSON as payload. Its kinds are named by the workspace at
/// run time and are not in [`CATALOG`] (the AsyncAPI document) yet.
pub struct WorkspaceEvent {
    pub kind: String,
    pub data: serde_json::Value,
}

impl WorkspaceEvent {
    pub fn new(kind: impl Into<String>, data: serde_json::Value) -> Self {
        WorkspaceEvent {
            kind: kind.into(),
            data,
        }
    }
}

impl Serialize for WorkspaceEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

impl EventData for WorkspaceEvent {
    fn kind(&self) -> &str {
        &self.kind
    }
}

/// One documented event type.
pub struct EventType {
    pub kind: &'static str,
    pub summary: &'static str,
    /// The topics it is published on.
    pub topics: &'static [&'static str],
    /// The schema's component name.
    pub schema: &'static str,
    /// The payload's schema and the schemas it refers to.
    pub schemas: fn() -> Vec<(String, RefOr<Schema>)>,
}

pub(crate) fn schemas_of<T: ToSchema>() -> Vec<(String, RefOr<Schema>)> {
    let mut out = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut out);
    out
}

macro_rules! single_kind {
    ($($ty:ty => $kind:literal),* $(,)?) => {
        $(impl EventData for $ty {
            fn kind(&self) -> &str {
                $kind
            }
        })*
    };
}

single_kind!(
    CameraStatusEvent => "camera.status",
    ChannelInputEvent => "channel.input",
    SourceFailoverEvent => "source.failover",
    SourceStateEvent => "source.state",
    SourceFillEvent => "source.fill",
    DestinationStatusEvent => "destination.status",
    RecordingStartedEvent => "recording.started",
    RecordingStoppedEvent => "recording.stopped",
    DashboardUpdate => "dashboard.update",
    NotificationView => "notification",
);

/// `session.started` / `session.stopped`.
pub enum Session {
    Started(SessionEvent),
    Stopped(SessionEvent),
}

impl Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Session::Started(e) | Session::Stopped(e) => e.serialize(s),
        }
    }
}

impl EventData for Session {
    fn kind(&self) -> &str {
        match self {
            Session::Started(_) => "session.started",
            Session::Stopped(_) => "session.stopped",
        }
    }
}

/// `alert.raised` / `alert.resolved`.
pub enum AlertEvent {
    Raised(AlertView),
    Resolved(AlertView),
}

impl AlertEvent {
    pub fn view(&self) -> &AlertView {
        match self {
            AlertEvent::Raised(v) | AlertEvent::Resolved(v) => v,
        }
    }
}

impl Serialize for AlertEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

impl EventData for AlertEvent {
    fn kind(&self) -> &str {
        match self {
            AlertEvent::Raised(_) => "alert.raised",
            AlertEvent::Resolved(_) => "alert.resolved",
        }
    }
}

/// Every event type the server emits. `every_emitted_kind_is_catalogued` keeps it complete.
pub const CATALOG: &[EventType] = &[
    EventType {
        kind: "camera.status",
        summary:
            "A camera went online or offline (offline: no frame for 3 s, seen within 1 s more).",
        topics: &["camera:{id}", "org"],
        schema: "CameraStatusEvent",
        schemas: schemas_of::<CameraStatusEvent>,
    },
    EventType {
        kind: "channel.input",
        summary: "An encoder started or stopped publishing to the channel.",
        topics: &["channel:{id}"],
        schema: "ChannelInputEvent",
        schemas: schemas_of::<ChannelInputEvent>,
    },
    EventType {
        kind: "source.failover",
        summary: "The channel switched from one input to another.",
        topics: &["channel:{id}"],
        schema: "SourceFailoverEvent",
        schemas: schemas_of::<SourceFailoverEvent>,
    },
    EventType {
        kind: "source.state",
        summary: "One input of the channel changed state.",
        topics: &["channel:{id}"],
        schema: "SourceStateEvent",
        schemas: schemas_of::<SourceStateEvent>,
    },
    EventType {
        kind: "source.fill",
        summary: "The fill signal started, ended or expired.",
        topics: &["channel:{id}"],
        schema: "SourceFillEvent",
        schemas: schemas_of::<SourceFillEvent>,
    },
    EventType {
        kind: "destination.status",
        summary: "A push to a destination changed state or error.",
        topics: &["channel:{id}"],
        schema: "DestinationStatusEvent",
        schemas: schemas_of::<DestinationStatusEvent>,
    },
    EventType {
        kind: "session.started",
        summary: "A streaming session of the channel started.",
        topics: &["channel:{id}", "org"],
        schema: "SessionEvent",
        schemas: schemas_of::<SessionEvent>,
    },
    EventType {
        kind: "session.stopped",
        summary: "A streaming session of the channel stopped.",
        topics: &["channel:{id}", "org"],
        schema: "SessionEvent",
        schemas: schemas_of::<SessionEvent>,
    },
    EventType {
        kind: "recording.started",
        summary: "A recording of the channel started.",
        topics: &["channel:{id}"],
        schema: "RecordingStartedEvent",
        schemas: schemas_of::<RecordingStartedEvent>,
    },
    EventType {
        kind: "recording.stopped",
        summary: "A recording of the channel stopped, with the file's figures.",
        topics: &["channel:{id}"],
        schema: "RecordingStoppedEvent",
        schemas: schemas_of::<RecordingStoppedEvent>,
    },
    EventType {
        kind: "alert.raised",
        summary: "One of Lunora's alert rules raised an alert.",
        topics: &["org"],
        schema: "AlertView",
        schemas: schemas_of::<AlertView>,
    },
    EventType {
        kind: "alert.resolved",
        summary: "An alert was resolved (its condition cleared, or by hand).",
        topics: &["org"],
        schema: "AlertView",
        schemas: schemas_of::<AlertView>,
    },
    EventType {
        kind: "dashboard.update",
        summary: "The organization's live figures, at most once a second, only when one changed.",
        topics: &["org"],
        schema: "DashboardUpdate",
        schemas: schemas_of::<DashboardUpdate>,
    },
    EventType {
        kind: "notification",
        summary: "An in-app notification for the user (alerts, …).",
        topics: &["user:{id}"],
        schema: "NotificationView",
        schemas: schemas_of::<NotificationView>,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every type the hub accepts.
    fn samples() -> Vec<Box<dyn Fn() -> String>> {
        fn k<E: EventData>(e: E) -> String {
            e.kind().to_string()
        }
        fn s() -> String {
            String::new()
        }
        fn session() -> SessionEvent {
            SessionEvent {
                channel_id: s(),
                session_id: s(),
            }
        }
        fn alert() -> AlertView {
            AlertView {
                id: s(),
                rule: s(),
                severity: s(),
                subject: s(),
                message: s(),
                state: s(),
                raised_at: s(),
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
            }
        }
        vec![
            Box::new(|| {
                k(CameraStatusEvent {
                    camera_id: s(),
                    channel_id: s(),
                    name: s(),
                    online: true,
                    since: s(),
                })
            }),
            Box::new(|| {
                k(ChannelInputEvent {
                    input: s(),
                    state: s(),
                    reason: None,
                })
            }),
            Box::new(|| {
                k(SourceFailoverEvent {
                    channel_id: s(),
                    from: None,
                    to: s(),
                    reason: s(),
                    at: s(),
                })
            }),
            Box::new(|| {
                k(SourceStateEvent {
                    channel_id: s(),
                    input: s(),
                    state: s(),
                    at: s(),
                })
            }),
            Box::new(|| {
                k(SourceFillEvent {
                    channel_id: s(),
                    state: s(),
                    at: s(),
                })
            }),
            Box::new(|| {
                k(DestinationStatusEvent {
                    destination_id: s(),
                    name: s(),
                    state: s(),
                    last_error: None,
                    reconnects: 0,
                })
            }),
            Box::new(|| k(Session::Started(session()))),
            Box::new(|| k(Session::Stopped(session()))),
            Box::new(|| {
                k(RecordingStartedEvent {
                    recording_id: s(),
                    channel_id: s(),
                    started_at: s(),
                })
            }),
            Box::new(|| {
                k(RecordingStoppedEvent {
                    recording_id: s(),
                    channel_id: s(),
                    status: s(),
                    duration_seconds: 0.0,
                    size_bytes: 0,
                    error: None,
                })
            }),
            Box::new(|| k(AlertEvent::Raised(alert()))),
            Box::new(|| k(AlertEvent::Resolved(alert()))),
            Box::new(|| {
                k(DashboardUpdate {
                    cameras_total: 0,
                    cameras_online: 0,
                    cameras_offline: 0,
                    live_channels: 0,
                    destinations_live: 0,
                    ingest_bps: 0,
                    egress_bps: 0,
                    active_alerts: 0,
                    at: s(),
                })
            }),
            Box::new(|| {
                k(NotificationView {
                    id: s(),
                    kind: s(),
                    severity: s(),
                    title: s(),
                    body: s(),
                    subject: s(),
                    created_at: s(),
                    read_at: None,
                })
            }),
        ]
    }

    #[test]
    fn every_emitted_kind_is_catalogued_with_its_schema() {
        let kinds: Vec<String> = samples().iter().map(|f| f()).collect();
        for kind in &kinds {
            assert!(
                CATALOG.iter().any(|e| e.kind == kind.as_str()),
                "{kind} is not in the catalog"
            );
        }
        for e in CATALOG {
            assert!(
                kinds.iter().any(|k| k == e.kind),
                "{} is never emitted",
                e.kind
            );
            assert!(
                (e.schemas)().iter().any(|(name, _)| name == e.schema),
                "{}: no schema named {}",
                e.kind,
                e.schema
            );
        }
    }
}
