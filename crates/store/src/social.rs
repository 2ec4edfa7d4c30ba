//! Viewer platform, social part: live chat messages (bounded history per stream), chat settings
//! and restrictions (timeouts, bans), likes, engagement events, reports and moderation actions.
//! A stream is a channel: `channel_id` is the stream id.

use sqlx::Row;

use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// Messages kept per stream; older ones are removed as new ones arrive.
pub const CHAT_HISTORY: i64 = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: String,
    pub organization_id: String,
    pub channel_id: String,
    pub user_id: String,
    pub display_name: String,
    pub body: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

/// A timeout (`until` set) or a ban (`until` `None`) in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRestriction {
    pub channel_id: String,
    pub user_id: String,
    pub until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: String,
    pub organization_id: String,
    pub reporter_id: Option<String>,
    /// `message`, `user` or `stream`.
    pub target_type: String,
    pub target_id: String,
    pub channel_id: Option<String>,
    pub target_user_id: Option<String>,
    /// The reported message's text when it was reported.
    pub excerpt: String,
    pub reason: String,
    pub details: String,
    /// `pending`, `reviewed` or `resolved`.
    pub status: String,
    pub moderator_id: Option<String>,
    pub action: Option<String>,
    pub note: String,
    pub created_at: i64,
    pub reviewed_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// A report to file.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub organization_id: String,
    pub reporter_id: String,
    pub target_type: String,
    pub target_id: String,
    pub channel_id: Option<String>,
    pub target_user_id: Option<String>,
    pub excerpt: String,
    pub reason: String,
    pub details: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationAction {
    pub id: String,
    pub organization_id: String,
    pub moderator_id: Option<String>,
    /// `delete_message`, `timeout_user`, `ban_user`, `slow_mode`, `dismiss`, `review`.
    pub action: String,
    pub channel_id: Option<String>,
    pub target_type: String,
    pub target_id: String,
    pub target_user_id: Option<String>,
    pub reason: String,
    pub duration_seconds: Option<i64>,
    pub report_id: Option<String>,
    pub created_at: i64,
}

const MESSAGE_COLUMNS: &str =
    "id, organization_id, channel_id, user_id, display_name, body, created_at, deleted_at";
const REPORT_COLUMNS: &str = "id, organization_id, reporter_id, target_type, target_id, \
     channel_id, target_user_id, excerpt, reason, details, status, moderator_id, action, note, \
     created_at, reviewed_at, resolved_at";
const ACTION_COLUMNS: &str = "id, organization_id, moderator_id, action, channel_id, \
     target_type, target_id, target_user_id, reason, duration_seconds, report_id, created_at";

fn message_from(r: &sqlx::any::AnyRow) -> Result<ChatMessage, sqlx::Error> {
    Ok(ChatMessage {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        channel_id: r.try_get("channel_id")?,
        user_id: r.try_get("user_id")?,
        display_name: r.try_get("display_name")?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        deleted_at: r.try_get("deleted_at")?,
    })
}

fn report_from(r: &sqlx::any::AnyRow) -> Result<Report, sqlx::Error> {
    Ok(Report {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        reporter_id: r.try_get("reporter_id")?,
        target_type: r.try_get("target_type")?,
        target_id: r.try_get("target_id")?,
        channel_id: r.try_get("channel_id")?,
        target_user_id: r.try_get("target_user_id")?,
        excerpt: r.try_get("excerpt")?,
        reason: r.try_get("reason")?,
        details: r.try_get("details")?,
        status: r.try_get("status")?,
        moderator_id: r.try_get("moderator_id")?,
        action: r.try_get("action")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
        reviewed_at: r.try_get("reviewed_at")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

fn action_from(r: &sqlx::any::AnyRow) -> Result<ModerationAction, sqlx::Error> {
    Ok(ModerationAction {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        moderator_id: r.try_get("moderator_id")?,
        action: r.try_get("action")?,
        channel_id: r.try_get("channel_id")?,
        target_type: r.try_get("target_type")?,
        target_id: r.try_get("target_id")?,
        target_user_id: r.try_get("target_user_id")?,
        reason: r.try_get("reason")?,
        duration_seconds: r.try_get("duration_seconds")?,
        report_id: r.try_get("report_id")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Stores a chat message and trims the stream's history to [`CHAT_HISTORY`] messages.
    pub async fn insert_chat_message(
        &self,
        organization_id: &str,
        channel_id: &str,
        user_id: &str,
        display_name: &str,
        body: &str,
    ) -> Result<ChatMessage, StoreError> {
        let m = ChatMessage {
            id: new_id(),
            organization_id: organization_id.to_string(),
            channel_id: channel_id.to_string(),
            user_id: user_id.to_string(),
            display_name: display_name.to_string(),
            body: body.to_string(),
            created_at: now_ms(),
            deleted_at: None,
        };
        let q = self.sql(format!(
            "INSERT INTO chat_messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
        ));
        self.execute(
            "chat_message_insert",
            sqlx::query(&q)
                .bind(&m.id)
                .bind(&m.organization_id)
                .bind(&m.channel_id)
                .bind(&m.user_id)
                .bind(&m.display_name)
                .bind(&m.body)
                .bind(m.created_at),
        )
        .await?;
        // Ids are time-ordered (UUID v7): trim now and then, not on every message.
        if m.id.as_bytes().last().is_some_and(|b| b % 16 == 0) {
            let q = self.sql(
                "DELETE FROM chat_messages WHERE channel_id = ? AND id < \
                 (SELECT id FROM chat_messages WHERE channel_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            );
            self.execute(
                "chat_message_trim",
                sqlx::query(&q)
                    .bind(channel_id)
                    .bind(channel_id)
                    .bind(CHAT_HISTORY - 1),
            )
            .await?;
        }
        Ok(m)
    }

    /// The stream's messages before `before` (an id), newest first, deleted ones left out.
    pub async fn chat_messages(
        &self,
        channel_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let q = self.sql(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE channel_id = ? \
             AND deleted_at IS NULL AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "chat_message_list",
                sqlx::query(&q)
                    .bind(channel_id)
                    .bind(before)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(message_from).collect::<Result<_, _>>()?)
    }

    pub async fn chat_message(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let q = self.sql(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "chat_message_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(message_from).transpose()?)
    }

    /// Marks a message deleted; `false` if it was already deleted or does not exist.
    pub async fn delete_chat_message(
        &self,
        organization_id: &str,
        id: &str,
        by: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql(
            "UPDATE chat_messages SET deleted_at = ?, deleted_by = ? \
             WHERE organization_id = ? AND id = ? AND deleted_at IS NULL",
        );
        let done = self
            .execute(
                "chat_message_delete",
                sqlx::query(&q)
                    .bind(now_ms())
                    .bind(by)
                    .bind(organization_id)
                    .bind(id),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Slow mode of a stream in seconds (0: off).
    pub async fn chat_slow_mode(&self, channel_id: &str) -> Result<i64, StoreError> {
        let q = self.sql("SELECT slow_mode_seconds FROM chat_settings WHERE channel_id = ?");
        let row = self
            .timed(
                "chat_settings_get",
                sqlx::query(&q).bind(channel_id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(match row {
            Some(r) => r.try_get("slow_mode_seconds")?,
            None => 0,
        })
    }

    pub async fn set_chat_slow_mode(
        &self,
        organization_id: &str,
        channel_id: &str,
        seconds: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO chat_settings (channel_id, organization_id, slow_mode_seconds, updated_by, updated_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET \
             slow_mode_seconds = excluded.slow_mode_seconds, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        );
        self.execute(
            "chat_settings_set",
            sqlx::query(&q)
                .bind(channel_id)
                .bind(organization_id)
                .bind(seconds)
                .bind(by)
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    /// Times out (`until` set) or bans (`until` `None`) a user on one stream, or on every stream
    /// of the organization with `channel_id` `*`.
    pub async fn restrict_chat_user(
        &self,
        organization_id: &str,
        channel_id: &str,
        user_id: &str,
        until: Option<i64>,
        by: &str,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO chat_restrictions (organization_id, channel_id, user_id, until, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, user_id) DO UPDATE SET \
             until = excluded.until, created_by = excluded.created_by, created_at = excluded.created_at",
        );
        self.execute(
            "chat_restrict",
            sqlx::query(&q)
                .bind(organization_id)
                .bind(channel_id)
                .bind(user_id)
                .bind(until)
                .bind(by)
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    /// The restriction in force on `user_id` in `channel_id` (a ban first, else the timeout
    /// that ends last).
    pub async fn chat_restriction(
        &self,
        organization_id: &str,
        channel_id: &str,
        user_id: &str,
    ) -> Result<Option<ChatRestriction>, StoreError> {
        let q = self.sql(
            "SELECT channel_id, user_id, until FROM chat_restrictions \
             WHERE organization_id = ? AND user_id = ? AND (channel_id = ? OR channel_id = '*') \
             AND (until IS NULL OR until > ?)",
        );
        let rows = self
            .timed(
                "chat_restriction_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(user_id)
                    .bind(channel_id)
                    .bind(now_ms())
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut found: Vec<ChatRestriction> = rows
            .iter()
            .map(|r| {
                Ok::<_, sqlx::Error>(ChatRestriction {
                    channel_id: r.try_get("channel_id")?,
                    user_id: r.try_get("user_id")?,
                    until: r.try_get("until")?,
                })
            })
            .collect::<Result<_, _>>()?;
        found.sort_by_key(|r| std::cmp::Reverse(r.until.unwrap_or(i64::MAX)));
        Ok(found.into_iter().next())
    }

    /// Likes (`true`) or unlikes a stream; answers whether anything changed.
    pub async fn set_like(
        &self,
        organization_id: &str,
        channel_id: &str,
        user_id: &str,
        liked: bool,
    ) -> Result<bool, StoreError> {
        let done = if liked {
            let q = self.sql(
                "INSERT INTO stream_likes (channel_id, user_id, organization_id, created_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (channel_id, user_id) DO NOTHING",
            );
            self.execute(
                "like_set",
                sqlx::query(&q)
                    .bind(channel_id)
                    .bind(user_id)
                    .bind(organization_id)
                    .bind(now_ms()),
            )
            .await?
        } else {
            let q = self.sql("DELETE FROM stream_likes WHERE channel_id = ? AND user_id = ?");
            self.execute("like_unset", sqlx::query(&q).bind(channel_id).bind(user_id))
                .await?
        };
        Ok(done.rows_affected() > 0)
    }

    /// Likes of a stream, and whether `user_id` is among them.
    pub async fn likes(
        &self,
        channel_id: &str,
        user_id: Option<&str>,
    ) -> Result<(i64, bool), StoreError> {
        let q = self.sql(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN user_id = ? THEN 1 ELSE 0 END), 0) AS mine \
             FROM stream_likes WHERE channel_id = ?",
        );
        let row = self
            .timed(
                "like_count",
                sqlx::query(&q)
                    .bind(user_id.unwrap_or(""))
                    .bind(channel_id)
                    .fetch_one(self.pool()),
            )
            .await?;
        let n: i64 = row.try_get("n")?;
        let mine: i64 = row.try_get("mine")?;
        Ok((n, mine > 0))
    }

    /// Records an engagement event (`like`, `unlike`, `chat_message`, `report`) for analytics.
    pub async fn record_engagement(
        &self,
        organization_id: &str,
        channel_id: Option<&str>,
        user_id: Option<&str>,
        kind: &str,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO engagement_events (id, organization_id, channel_id, user_id, kind, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "engagement_insert",
            sqlx::query(&q)
                .bind(new_id())
                .bind(organization_id)
                .bind(channel_id)
                .bind(user_id)
                .bind(kind)
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    /// Engagement events of a stream by kind: (kind, count).
    pub async fn engagement_counts(
        &self,
        channel_id: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let q = self.sql(
            "SELECT kind, COUNT(*) AS n FROM engagement_events WHERE channel_id = ? GROUP BY kind ORDER BY kind",
        );
        let rows = self
            .timed(
                "engagement_counts",
                sqlx::query(&q).bind(channel_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn create_report(&self, new: &NewReport) -> Result<Report, StoreError> {
        let r = Report {
            id: new_id(),
            organization_id: new.organization_id.clone(),
            reporter_id: Some(new.reporter_id.clone()),
            target_type: new.target_type.clone(),
            target_id: new.target_id.clone(),
            channel_id: new.channel_id.clone(),
            target_user_id: new.target_user_id.clone(),
            excerpt: new.excerpt.clone(),
            reason: new.reason.clone(),
            details: new.details.clone(),
            status: "pending".into(),
            moderator_id: None,
            action: None,
            note: String::new(),
            created_at: now_ms(),
            reviewed_at: None,
            resolved_at: None,
        };
        let q = self.sql(format!(
            "INSERT INTO moderation_reports ({REPORT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, '', ?, NULL, NULL)"
        ));
        self.execute(
            "report_create",
            sqlx::query(&q)
                .bind(&r.id)
                .bind(&r.organization_id)
                .bind(&r.reporter_id)
                .bind(&r.target_type)
                .bind(&r.target_id)
                .bind(&r.channel_id)
                .bind(&r.target_user_id)
                .bind(&r.excerpt)
                .bind(&r.reason)
                .bind(&r.details)
                .bind(&r.status)
                .bind(r.created_at),
        )
        .await?;
        Ok(r)
    }

    pub async fn report(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Report>, StoreError> {
        let q = self.sql(format!(
            "SELECT {REPORT_COLUMNS} FROM moderation_reports WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "report_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(report_from).transpose()?)
    }

    /// The organization's reports, newest first, optionally of one status.
    pub async fn reports(
        &self,
        organization_id: &str,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Report>, StoreError> {
        let q = self.sql(format!(
            "SELECT {REPORT_COLUMNS} FROM moderation_reports WHERE organization_id = ? \
             AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "report_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(status)
                    .bind(status)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(report_from).collect::<Result<_, _>>()?)
    }

    /// Moves a report to `reviewed` or `resolved` (with the action taken).
    pub async fn update_report(
        &self,
        organization_id: &str,
        id: &str,
        status: &str,
        moderator_id: &str,
        action: Option<&str>,
        note: &str,
    ) -> Result<Option<Report>, StoreError> {
        let now = now_ms();
        let q = self.sql(
            "UPDATE moderation_reports SET status = ?, moderator_id = ?, \
             action = COALESCE(?, action), note = ?, \
             reviewed_at = COALESCE(reviewed_at, ?), \
             resolved_at = CASE WHEN ? = 'resolved' THEN ? ELSE resolved_at END \
             WHERE organization_id = ? AND id = ?",
        );
        self.execute(
            "report_update",
            sqlx::query(&q)
                .bind(status)
                .bind(moderator_id)
                .bind(action)
                .bind(note)
                .bind(now)
                .bind(status)
                .bind(now)
                .bind(organization_id)
                .bind(id),
        )
        .await?;
        self.report(organization_id, id).await
    }

    pub async fn record_moderation_action(
        &self,
        a: &ModerationAction,
    ) -> Result<ModerationAction, StoreError> {
        let mut a = a.clone();
        a.id = new_id();
        a.created_at = now_ms();
        let q = self.sql(format!(
            "INSERT INTO moderation_actions ({ACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        self.execute(
            "moderation_action_insert",
            sqlx::query(&q)
                .bind(&a.id)
                .bind(&a.organization_id)
                .bind(&a.moderator_id)
                .bind(&a.action)
                .bind(&a.channel_id)
                .bind(&a.target_type)
                .bind(&a.target_id)
                .bind(&a.target_user_id)
                .bind(&a.reason)
                .bind(a.duration_seconds)
                .bind(&a.report_id)
                .bind(a.created_at),
        )
        .await?;
        Ok(a)
    }

    /// The organization's moderation actions, newest first, optionally of one stream.
    pub async fn moderation_actions(
        &self,
        organization_id: &str,
        channel_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ModerationAction>, StoreError> {
        let q = self.sql(format!(
            "SELECT {ACTION_COLUMNS} FROM moderation_actions WHERE organization_id = ? \
             AND (? IS NULL OR channel_id = ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "moderation_action_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(channel_id)
                    .bind(channel_id)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(action_from).collect::<Result<_, _>>()?)
    }
}
