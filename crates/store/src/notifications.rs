//! In-app notifications, one row per recipient, and the figures the live dashboard needs.

use sqlx::Row;

use crate::channels::Page;
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    /// `alert.raised`, `alert.resolved`, …
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub body: String,
    /// What it is about: `alert:{id}`, …
    pub subject: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// A notification to create for one user.
#[derive(Debug, Clone, Copy)]
pub struct NewNotification<'a> {
    pub organization_id: &'a str,
    pub user_id: &'a str,
    pub kind: &'a str,
    pub severity: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub subject: &'a str,
}

/// A user who receives an organization's alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: String,
    pub email: String,
    pub role: String,
}

const COLUMNS: &str =
    "id, organization_id, user_id, kind, severity, title, body, subject, created_at, read_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Notification, sqlx::Error> {
    Ok(Notification {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        severity: r.try_get("severity")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        subject: r.try_get("subject")?,
        created_at: r.try_get("created_at")?,
        read_at: r.try_get("read_at")?,
    })
}

impl Db {
    pub async fn create_notification(
        &self,
        new: &NewNotification<'_>,
    ) -> Result<Notification, StoreError> {
        let n = Notification {
            id: new_id(),
            organization_id: new.organization_id.to_string(),
            user_id: new.user_id.to_string(),
            kind: new.kind.to_string(),
            severity: new.severity.to_string(),
            title: new.title.to_string(),
            body: new.body.to_string(),
            subject: new.subject.to_string(),
            created_at: now_ms(),
            read_at: None,
        };
        let q = self.sql(format!(
            "INSERT INTO notifications ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
        ));
        self.execute(
            "notification_create",
            sqlx::query(&q)
                .bind(&n.id)
                .bind(&n.organization_id)
                .bind(&n.user_id)
                .bind(&n.kind)
                .bind(&n.severity)
                .bind(&n.title)
                .bind(&n.body)
                .bind(&n.subject)
                .bind(n.created_at),
        )
        .await?;
        Ok(n)
    }

    /// The user's notifications, newest first; `unread` keeps the unread ones.
    pub async fn list_notifications(
        &self,
        user_id: &str,
        unread: bool,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page<Notification>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ? \
             AND (? = 0 OR read_at IS NULL) \
             AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "notification_list",
                sqlx::query(&q)
                    .bind(user_id)
                    .bind(i64::from(unread))
                    .bind(before)
                    .bind(before)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|n| n.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Marks one of the user's notifications read; `None` if it is not theirs.
    pub async fn mark_notification_read(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<Notification>, StoreError> {
        let q = self.sql(
            "UPDATE notifications SET read_at = ? WHERE user_id = ? AND id = ? AND read_at IS NULL",
        );
        self.execute(
            "notification_read",
            sqlx::query(&q).bind(now_ms()).bind(user_id).bind(id),
        )
        .await?;
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "notification_get",
                sqlx::query(&q)
                    .bind(user_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Marks the user's unread notifications with these ids (every unread one when `None`)
    /// read; answers how many changed. Ids of other users' notifications change nothing.
    pub async fn mark_notifications_read(
        &self,
        user_id: &str,
        ids: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let done = match ids {
            None => {
                let q = self.sql(
                    "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL",
                );
                self.execute(
                    "notification_read_all",
                    sqlx::query(&q).bind(now).bind(user_id),
                )
                .await?
                .rows_affected()
            }
            Some(ids) => {
                let marks = vec!["?"; ids.len()].join(", ");
                let q = self.sql(format!(
                    "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL \
                     AND id IN ({marks})"
                ));
                let mut query = sqlx::query(&q).bind(now).bind(user_id);
                for id in ids {
                    query = query.bind(id);
                }
                self.execute("notification_read_batch", query)
                    .await?
                    .rows_affected()
            }
        };
        Ok(done)
    }

    /// Enabled staff users of the organization with one of `roles`.
    pub async fn alert_recipients(
        &self,
        organization_id: &str,
        roles: &[&str],
    ) -> Result<Vec<Recipient>, StoreError> {
        let q = self.sql(
            "SELECT id, email, role FROM users WHERE organization_id = ? \
             AND disabled_at IS NULL ORDER BY id",
        );
        let rows = self
            .timed(
                "alert_recipients",
                sqlx::query(&q).bind(organization_id).fetch_all(self.pool()),
            )
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let role: String = r.try_get("role")?;
            if roles.contains(&role.as_str()) {
                out.push(Recipient {
                    user_id: r.try_get("id")?,
                    email: r.try_get("email")?,
                    role,
                });
            }
        }
        Ok(out)
    }

    /// Unresolved alerts per organization.
    pub async fn open_alert_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let q = self.sql(
            "SELECT organization_id, COUNT(*) AS n FROM alerts WHERE resolved_at IS NULL \
             GROUP BY organization_id",
        );
        let rows = self
            .timed("alert_counts", sqlx::query(&q).fetch_all(self.pool()))
            .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("organization_id")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Every channel id with its organization (the live dashboard's view), from memory while
    /// no channel changed (see `TableCache`).
    pub async fn channel_organizations(
        &self,
    ) -> Result<std::sync::Arc<Vec<(String, String)>>, StoreError> {
        self.cached_rows(|s| &s.channel_orgs, async {
            let q = self.sql("SELECT id, organization_id FROM channels");
            let rows = self
                .timed("channel_orgs", sqlx::query(&q).fetch_all(self.pool()))
                .await?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("organization_id")?)))
                .collect::<Result<_, sqlx::Error>>()?)
        })
        .await
    }
}
