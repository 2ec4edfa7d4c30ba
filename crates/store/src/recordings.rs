//! Recordings: per-channel recording settings and one row per recording file.

use sqlx::Row;

use crate::channels::Page;
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// Whether and how a channel is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingSettings {
    pub enabled: bool,
    /// A new file starts on the first keyframe after this many minutes.
    pub segment_minutes: i64,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            enabled: false,
            segment_minutes: 60,
        }
    }
}

/// One recording file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub id: String,
    pub organization_id: String,
    pub channel_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: i64,
    pub size_bytes: i64,
    /// `hot`, `warm` or `cold`.
    pub tier: String,
    /// Relative to the tier's root.
    pub path: String,
    /// `recording`, `complete` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub discontinuities: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new recording row (status `recording`).
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub channel_id: &'a str,
    pub started_at: i64,
    pub path: &'a str,
}

/// Filters of a recordings list; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter<'a> {
    pub channel_id: Option<&'a str>,
    /// Only channels of this owner.
    pub owner_id: Option<&'a str>,
    /// Recordings that end at or after this time (unix ms)…
    pub from: Option<i64>,
    /// …and start before this one.
    pub to: Option<i64>,
    pub tier: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// How a recording ended.
#[derive(Debug, Clone)]
pub struct RecordingEnd<'a> {
    pub status: &'a str,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub discontinuities: i64,
    pub error: Option<&'a str>,
}

const COLUMNS: &str = "id, organization_id, channel_id, started_at, ended_at, duration_ms, \
     size_bytes, tier, path, status, error, discontinuities, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Recording, sqlx::Error> {
    Ok(Recording {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        channel_id: r.try_get("channel_id")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        duration_ms: r.try_get("duration_ms")?,
        size_bytes: r.try_get("size_bytes")?,
        tier: r.try_get("tier")?,
        path: r.try_get("path")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        discontinuities: r.try_get("discontinuities")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    /// A channel's recording settings (the defaults when never set).
    pub async fn recording_settings(
        &self,
        channel_id: &str,
    ) -> Result<RecordingSettings, StoreError> {
        let q = self
            .sql("SELECT enabled, segment_minutes FROM recording_settings WHERE channel_id = ?");
        let row = self
            .timed(
                "recording_settings_get",
                sqlx::query(&q).bind(channel_id).fetch_optional(self.pool()),
            )
            .await?;
        match row {
            Some(r) => {
                let enabled: i64 = r.try_get("enabled")?;
                Ok(RecordingSettings {
                    enabled: enabled != 0,
                    segment_minutes: r.try_get("segment_minutes")?,
                })
            }
            None => Ok(RecordingSettings::default()),
        }
    }

    /// Every channel to record: (channel id, settings). A channel is recorded when its own
    /// recording is enabled, or when it backs an enabled camera whose `recording_policy` is
    /// `continuous` (the camera's policy wins over its channel's switch; the file length
    /// comes from the channel's settings, the default when it has none).
    pub async fn recording_enabled_channels(
        &self,
    ) -> Result<Vec<(String, RecordingSettings)>, StoreError> {
        let q = self.sql(format!(
            "SELECT channel_id, segment_minutes FROM recording_settings WHERE enabled = 1 \
             UNION \
             SELECT c.channel_id, COALESCE(s.segment_minutes, {}) AS segment_minutes \
             FROM cameras c LEFT JOIN recording_settings s ON s.channel_id = c.channel_id \
             WHERE c.recording_policy = 'continuous' AND c.enabled = 1 \
             AND (s.enabled IS NULL OR s.enabled = 0)",
            RecordingSettings::default().segment_minutes
        ));
        let rows = self
            .timed(
                "recording_settings_enabled",
                sqlx::query(&q).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("channel_id")?,
                    RecordingSettings {
                        enabled: true,
                        segment_minutes: r.try_get("segment_minutes")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn set_recording_settings(
        &self,
        channel_id: &str,
        settings: RecordingSettings,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO recording_settings (channel_id, enabled, segment_minutes, updated_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET \
             enabled = excluded.enabled, segment_minutes = excluded.segment_minutes, \
             updated_at = excluded.updated_at",
        );
        self.execute(
            "recording_settings_set",
            sqlx::query(&q)
                .bind(channel_id)
                .bind(i64::from(settings.enabled))
                .bind(settings.segment_minutes)
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    pub async fn insert_recording(&self, new: &NewRecording<'_>) -> Result<(), StoreError> {
        let now = now_ms();
        let q = self.sql(format!(
            "INSERT INTO recordings ({COLUMNS}) \
             VALUES (?, ?, ?, ?, NULL, 0, 0, 'hot', ?, 'recording', NULL, 0, ?, ?)"
        ));
        let id = if new.id.is_empty() {
            new_id()
        } else {
            new.id.to_string()
        };
        self.execute(
            "recording_insert",
            sqlx::query(&q)
                .bind(id)
                .bind(new.organization_id)
                .bind(new.channel_id)
                .bind(new.started_at)
                .bind(new.path)
                .bind(now)
                .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Size and duration of a recording in progress.
    pub async fn recording_progress(
        &self,
        id: &str,
        size_bytes: i64,
        duration_ms: i64,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE recordings SET size_bytes = ?, duration_ms = ?, updated_at = ? WHERE id = ?",
        );
        self.execute(
            "recording_progress",
            sqlx::query(&q)
                .bind(size_bytes)
                .bind(duration_ms)
                .bind(now_ms())
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Closes a recording (`complete` or `failed`).
    pub async fn end_recording(&self, id: &str, end: &RecordingEnd<'_>) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE recordings SET status = ?, ended_at = ?, duration_ms = ?, size_bytes = ?, \
             discontinuities = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ?",
        );
        self.execute(
            "recording_end",
            sqlx::query(&q)
                .bind(end.status)
                .bind(end.ended_at)
                .bind(end.duration_ms)
                .bind(end.size_bytes)
                .bind(end.discontinuities)
                .bind(end.error)
                .bind(now_ms())
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Rows still `recording`: left open by a crash when read at start-up.
    pub async fn recordings_in_progress(&self) -> Result<Vec<Recording>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM recordings WHERE status = 'recording' ORDER BY id"
        ));
        let rows = self
            .timed(
                "recordings_in_progress",
                sqlx::query(&q).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// A recording by id alone, whatever its organization (internal use: events).
    pub async fn recording_any_org(&self, id: &str) -> Result<Option<Recording>, StoreError> {
        let q = self.sql(format!("SELECT {COLUMNS} FROM recordings WHERE id = ?"));
        let row = self
            .timed(
                "recording_get_any",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// A recording of `organization_id`; another organization's id is not found.
    pub async fn recording(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Recording>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM recordings WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "recording_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Recordings of an organization, newest first, `limit` at a time after `cursor`.
    pub async fn list_recordings(
        &self,
        organization_id: &str,
        filter: &RecordingFilter<'_>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Recording>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM recordings WHERE organization_id = ? \
             AND (? IS NULL OR channel_id = ?) \
             AND (? IS NULL OR channel_id IN (SELECT id FROM channels WHERE owner_id = ?)) \
             AND (? IS NULL OR COALESCE(ended_at, ?) >= ?) \
             AND (? IS NULL OR started_at < ?) \
             AND (? IS NULL OR tier = ?) \
             AND (? IS NULL OR status = ?) \
             AND (? IS NULL OR id < ?) \
             ORDER BY id DESC LIMIT ?"
        ));
        let far_future = i64::MAX;
        let rows = self
            .timed(
                "recording_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(filter.channel_id)
                    .bind(filter.channel_id)
                    .bind(filter.owner_id)
                    .bind(filter.owner_id)
                    .bind(filter.from)
                    .bind(far_future)
                    .bind(filter.from)
                    .bind(filter.to)
                    .bind(filter.to)
                    .bind(filter.tier)
                    .bind(filter.tier)
                    .bind(filter.status)
                    .bind(filter.status)
                    .bind(cursor)
                    .bind(cursor)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn delete_recording(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM recordings WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "recording_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Finished recordings (any organization) in `tier` that ended before `ended_before`
    /// (ms), oldest first: the storage lifecycle's work list.
    pub async fn recordings_due(
        &self,
        tier: &str,
        ended_before: i64,
        limit: i64,
    ) -> Result<Vec<Recording>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM recordings \
             WHERE tier = ? AND status <> 'recording' AND ended_at IS NOT NULL AND ended_at < ? \
             ORDER BY ended_at, id LIMIT ?"
        ));
        let rows = self
            .timed(
                "recordings_due",
                sqlx::query(&q)
                    .bind(tier)
                    .bind(ended_before)
                    .bind(limit)
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Moves a recording's row from tier `from` to `to` (false if it is no longer in `from`:
    /// deleted or moved meanwhile).
    pub async fn set_recording_tier(
        &self,
        id: &str,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let q =
            self.sql("UPDATE recordings SET tier = ?, updated_at = ? WHERE id = ? AND tier = ?");
        let r = self
            .execute(
                "recording_set_tier",
                sqlx::query(&q).bind(to).bind(now).bind(id).bind(from),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes a recording's row by id alone (the lifecycle's retention; the API deletes
    /// within an organization with [`Db::delete_recording`]).
    pub async fn delete_recording_row(&self, id: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM recordings WHERE id = ?");
        let r = self
            .execute("recording_delete_row", sqlx::query(&q).bind(id))
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Bytes and count of one organization's recordings per tier: (tier, files, bytes).
    pub async fn organization_recording_usage(
        &self,
        organization_id: &str,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let q = self.sql(
            "SELECT tier, COUNT(*) AS n, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes \
             FROM recordings WHERE organization_id = ? GROUP BY tier ORDER BY tier",
        );
        let rows = self
            .timed(
                "organization_recording_usage",
                sqlx::query(&q).bind(organization_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tier")?, r.try_get("n")?, r.try_get("bytes")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Bytes and count of recordings per tier: (tier, files, bytes).
    pub async fn recording_usage(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let q =
            "SELECT tier, COUNT(*) AS n, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes \
                 FROM recordings GROUP BY tier ORDER BY tier";
        let rows = self
            .timed("recording_usage", sqlx::query(q).fetch_all(self.pool()))
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tier")?, r.try_get("n")?, r.try_get("bytes")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
