//! Restream destinations and streaming sessions.

use sqlx::Row;

use crate::channels::Page;
use crate::crypto::{last4, SecretBox};
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub id: String,
    pub organization_id: String,
    pub owner_id: Option<String>,
    pub name: String,
    /// `youtube`, `x`, `linkedin` or `custom`.
    pub platform: String,
    /// `rtmp://host[:port]/app` or `rtmps://…`, without the key.
    pub rtmp_url: String,
    pub stream_key_last4: String,
    pub enabled: bool,
    pub auto_start: bool,
    pub preset_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewDestination<'a> {
    pub organization_id: &'a str,
    pub owner_id: Option<&'a str>,
    pub name: &'a str,
    pub platform: &'a str,
    pub rtmp_url: &'a str,
    pub stream_key: &'a str,
    pub enabled: bool,
    pub auto_start: bool,
    pub preset_id: Option<&'a str>,
}

/// Changes to a destination; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct DestinationPatch {
    pub name: Option<String>,
    pub rtmp_url: Option<String>,
    pub stream_key: Option<String>,
    pub enabled: Option<bool>,
    pub auto_start: Option<bool>,
    /// `Some(None)` clears the preset.
    pub preset_id: Option<Option<String>>,
}

const COLUMNS: &str = "id, organization_id, owner_id, name, platform, rtmp_url, stream_key_last4, \
     enabled, auto_start, preset_id, version, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Destination, sqlx::Error> {
    Ok(Destination {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        owner_id: r.try_get("owner_id")?,
        name: r.try_get("name")?,
        platform: r.try_get("platform")?,
        rtmp_url: r.try_get("rtmp_url")?,
        stream_key_last4: r.try_get("stream_key_last4")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        auto_start: r.try_get::<i64, _>("auto_start")? != 0,
        preset_id: r.try_get("preset_id")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// One streaming session (a channel pushed to its destinations from start to stop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingSession {
    pub id: String,
    pub organization_id: String,
    pub channel_id: String,
    pub started_by: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}

/// What one destination delivered during a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDestination {
    pub destination_id: String,
    pub destination_name: String,
    pub platform: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub bytes_sent: i64,
    pub connected_ms: i64,
    pub reconnects: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    pub at: i64,
    pub destination_id: Option<String>,
    pub kind: String,
    pub message: String,
}

const SESSION_COLUMNS: &str =
    "id, organization_id, channel_id, started_by, started_at, ended_at, end_reason";

fn session_from_row(r: &sqlx::any::AnyRow) -> Result<StreamingSession, sqlx::Error> {
    Ok(StreamingSession {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        channel_id: r.try_get("channel_id")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        end_reason: r.try_get("end_reason")?,
    })
}

impl Db {
    pub async fn create_destination(
        &self,
        new: &NewDestination<'_>,
        secrets: &SecretBox,
    ) -> Result<Destination, StoreError> {
        let now = now_ms();
        let id = new_id();
        let q = self.sql(
            "INSERT INTO destinations (id, organization_id, owner_id, name, platform, rtmp_url, \
             stream_key_sealed, stream_key_last4, enabled, auto_start, preset_id, version, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        );
        self.execute(
            "destination_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(new.organization_id)
                .bind(new.owner_id)
                .bind(new.name)
                .bind(new.platform)
                .bind(new.rtmp_url)
                .bind(secrets.seal(new.stream_key))
                .bind(last4(new.stream_key))
                .bind(i64::from(new.enabled))
                .bind(i64::from(new.auto_start))
                .bind(new.preset_id)
                .bind(now)
                .bind(now),
        )
        .await?;
        self.destination(new.organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn destination(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Destination>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM destinations WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "destination_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The stream key in clear, for the push only (never for an API answer).
    pub async fn destination_stream_key(
        &self,
        organization_id: &str,
        id: &str,
        secrets: &SecretBox,
    ) -> Result<String, StoreError> {
        let q = self
            .sql("SELECT stream_key_sealed FROM destinations WHERE organization_id = ? AND id = ?");
        let row = self
            .timed(
                "destination_key",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        secrets.open(&row.try_get::<String, _>("stream_key_sealed")?)
    }

    pub async fn list_destinations(
        &self,
        organization_id: &str,
        owner_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Destination>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM destinations WHERE organization_id = ? \
             AND (? IS NULL OR owner_id = ?) AND id > ? ORDER BY id LIMIT ?"
        ));
        let rows = self
            .timed(
                "destination_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(owner_id)
                    .bind(owner_id)
                    .bind(cursor.unwrap_or(""))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|d| d.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn update_destination(
        &self,
        organization_id: &str,
        id: &str,
        patch: &DestinationPatch,
        expected_version: Option<i64>,
        secrets: &SecretBox,
    ) -> Result<Destination, StoreError> {
        let (preset_set, preset_value) = match &patch.preset_id {
            Some(v) => (1i64, v.clone()),
            None => (0i64, None),
        };
        let q = self.sql(
            "UPDATE destinations SET name = COALESCE(?, name), rtmp_url = COALESCE(?, rtmp_url), \
             stream_key_sealed = COALESCE(?, stream_key_sealed), \
             stream_key_last4 = COALESCE(?, stream_key_last4), \
             enabled = COALESCE(?, enabled), auto_start = COALESCE(?, auto_start), \
             preset_id = CASE WHEN ? = 1 THEN ? ELSE preset_id END, \
             version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "destination_update",
                sqlx::query(&q)
                    .bind(patch.name.as_deref())
                    .bind(patch.rtmp_url.as_deref())
                    .bind(patch.stream_key.as_deref().map(|k| secrets.seal(k)))
                    .bind(patch.stream_key.as_deref().map(last4))
                    .bind(patch.enabled.map(i64::from))
                    .bind(patch.auto_start.map(i64::from))
                    .bind(preset_set)
                    .bind(preset_value)
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await?;
        if r.rows_affected() == 0 {
            return match self.destination(organization_id, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "the destination was changed by someone else; reload it and try again".into(),
                )),
                None => Err(StoreError::NotFound),
            };
        }
        self.destination(organization_id, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn delete_destination(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM destinations WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "destination_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn start_streaming_session(
        &self,
        organization_id: &str,
        channel_id: &str,
        started_by: Option<&str>,
    ) -> Result<StreamingSession, StoreError> {
        let id = new_id();
        let q = self.sql(format!(
            "INSERT INTO streaming_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL)"
        ));
        self.execute(
            "session_start",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(channel_id)
                .bind(started_by)
                .bind(now_ms()),
        )
        .await?;
        self.streaming_session(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn end_streaming_session(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE streaming_sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
        );
        self.execute(
            "session_end",
            sqlx::query(&q).bind(now_ms()).bind(reason).bind(id),
        )
        .await?;
        Ok(())
    }

    /// Sessions left open by a crash are closed at start-up.
    pub async fn close_orphan_sessions(&self) -> Result<u64, StoreError> {
        let q = self.sql(
            "UPDATE streaming_sessions SET ended_at = ?, end_reason = 'server_restarted' \
             WHERE ended_at IS NULL",
        );
        let r = self
            .execute("session_orphans", sqlx::query(&q).bind(now_ms()))
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn streaming_session(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<StreamingSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM streaming_sessions WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "session_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(session_from_row).transpose()?)
    }

    /// Sessions of an organization (optionally one channel), newest first.
    pub async fn list_streaming_sessions(
        &self,
        organization_id: &str,
        channel_id: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page<StreamingSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM streaming_sessions WHERE organization_id = ? \
             AND (? IS NULL OR channel_id = ?) AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "session_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(channel_id)
                    .bind(channel_id)
                    .bind(before)
                    .bind(before)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows
            .iter()
            .map(session_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|s| s.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Records (or updates) what a destination delivered in a session.
    pub async fn upsert_session_destination(
        &self,
        session_id: &str,
        d: &SessionDestination,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO session_destinations (session_id, destination_id, destination_name, platform, \
             started_at, ended_at, bytes_sent, connected_ms, reconnects, last_error) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (session_id, destination_id) DO UPDATE SET ended_at = excluded.ended_at, \
             bytes_sent = excluded.bytes_sent, connected_ms = excluded.connected_ms, \
             reconnects = excluded.reconnects, last_error = excluded.last_error",
        );
        self.execute(
            "session_destination_upsert",
            sqlx::query(&q)
                .bind(session_id)
                .bind(&d.destination_id)
                .bind(&d.destination_name)
                .bind(&d.platform)
                .bind(d.started_at)
                .bind(d.ended_at)
                .bind(d.bytes_sent)
                .bind(d.connected_ms)
                .bind(d.reconnects)
                .bind(d.last_error.as_deref()),
        )
        .await?;
        Ok(())
    }

    pub async fn session_destinations(
        &self,
        session_id: &str,
    ) -> Result<Vec<SessionDestination>, StoreError> {
        let q = self.sql(
            "SELECT destination_id, destination_name, platform, started_at, ended_at, bytes_sent, \
             connected_ms, reconnects, last_error FROM session_destinations WHERE session_id = ? \
             ORDER BY started_at",
        );
        let rows = self
            .timed(
                "session_destinations",
                sqlx::query(&q).bind(session_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionDestination {
                    destination_id: r.try_get("destination_id")?,
                    destination_name: r.try_get("destination_name")?,
                    platform: r.try_get("platform")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    bytes_sent: r.try_get("bytes_sent")?,
                    connected_ms: r.try_get("connected_ms")?,
                    reconnects: r.try_get("reconnects")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn add_session_event(
        &self,
        session_id: &str,
        destination_id: Option<&str>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO session_events (id, session_id, at, destination_id, kind, message) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "session_event_add",
            sqlx::query(&q)
                .bind(new_id())
                .bind(session_id)
                .bind(now_ms())
                .bind(destination_id)
                .bind(kind)
                .bind(message),
        )
        .await?;
        Ok(())
    }

    pub async fn session_events(&self, session_id: &str) -> Result<Vec<SessionEvent>, StoreError> {
        let q = self.sql(
            "SELECT at, destination_id, kind, message FROM session_events WHERE session_id = ? \
             ORDER BY at LIMIT 1000",
        );
        let rows = self
            .timed(
                "session_events",
                sqlx::query(&q).bind(session_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionEvent {
                    at: r.try_get("at")?,
                    destination_id: r.try_get("destination_id")?,
                    kind: r.try_get("kind")?,
                    message: r.try_get("message")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
