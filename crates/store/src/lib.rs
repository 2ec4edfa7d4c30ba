//! Lunora's database.
//!
//! This crate owns the schema (migrations embedded in the binary and applied at start), the
//! connection pool and every query. It runs the same schema and the same queries on SQLite (the
//! embedded default, in WAL mode with foreign keys on) and on PostgreSQL (selected by a
//! `postgres://` URL). It knows nothing of HTTP, JSON or the media engine.
//!
//! Queries are written once with `?` placeholders; [`Db::sql`] rewrites them to `$n` for
//! PostgreSQL. Identifiers are UUID text and times are unix milliseconds, which both databases
//! store and compare the same way.

mod access;
mod ad_reports;
mod ads;
mod alerts;
mod audit;
pub mod backup;
mod cameras;
mod channels;
pub mod crypto;
mod db;
mod destinations;
mod error;
mod identity;
mod notifications;
mod presets;
mod recordings;
pub mod rekey;
mod social;
mod sources;
mod viewer;

pub use access::{AcceptOutcome, ApiToken, ApiTokenAuth, Invitation, NewApiToken, NewInvitation};
pub use ad_reports::Placement;
pub use ads::{
    Activity, ActivityFilter, AdClient, AdClientFields, AdClientFilter, Availability, Campaign,
    CampaignFields, CampaignFilter, Episode, EpisodeFields, EpisodeFilter, ListOptions, Scope,
    Show, ShowFields, TeamMember,
};
pub use alerts::{Alert, Webhook};
pub use audit::{AuditEntry, AuditFilter, NewOutboxMessage, OutboxMessage};
pub use backup::{BackupError, BackupRecord, BackupSchedule, RestoreOutcome, Snapshot};
pub use cameras::{Camera, CameraFilter, CameraPatch, NewCamera};
pub use channels::{Channel, ChannelInput, ChannelPatch, NewChannel, Page};
pub use crypto::SecretBox;
pub use db::{Backend, Db, DbConfig, MigrationState};
pub use destinations::{
    Destination, DestinationPatch, NewDestination, SessionDestination, SessionEvent,
    StreamingSession,
};
pub use error::StoreError;
pub use identity::{
    new_id, AuthSession, NewUser, Organization, OrganizationPatch, RefreshOutcome, SessionAuth,
    User, UserFilter, UserPatch,
};
pub use notifications::{NewNotification, Notification, Recipient};
pub use presets::{PresetSettings, StoredPreset, MAX_PRESETS_PER_ORGANIZATION};
pub use recordings::{NewRecording, Recording, RecordingEnd, RecordingFilter, RecordingSettings};
pub use social::{ChatMessage, ChatRestriction, ModerationAction, NewReport, Report, CHAT_HISTORY};
pub use sources::{PassphraseChange, SourceConfig, SourceInput, SourceInputUpdate, SourcesUpdate};
pub use viewer::{
    CatalogEntry, CatalogFilter, CatalogRow, Category, Payment, Subscription, SubscriptionWithUser,
    ViewerProfile, ViewingSession,
};

/// Current time as unix milliseconds, the one time representation in the schema.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
