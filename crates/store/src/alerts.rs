//! Alerts and the webhooks that receive them.

use sqlx::Row;

use crate::channels::Page;
use crate::crypto::SecretBox;
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: String,
    pub organization_id: String,
    /// The rule that raised it: `camera_offline`, `destination_retrying`, `destination_failed`.
    pub rule: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// What it is about: `camera:{id}`, `destination:{id}`, …
    pub subject: String,
    pub message: String,
    /// `active`, `acknowledged` or `resolved`.
    pub state: String,
    pub raised_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub enabled: bool,
    pub created_at: i64,
}

const COLUMNS: &str = "id, organization_id, rule, severity, subject, message, state, raised_at, \
     acknowledged_at, acknowledged_by, resolved_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Alert, sqlx::Error> {
    Ok(Alert {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        rule: r.try_get("rule")?,
        severity: r.try_get("severity")?,
        subject: r.try_get("subject")?,
        message: r.try_get("message")?,
        state: r.try_get("state")?,
        raised_at: r.try_get("raised_at")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        acknowledged_by: r.try_get("acknowledged_by")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

impl Db {
    /// Raises an alert unless one for the same rule and subject is open; answers the new alert.
    pub async fn raise_alert(
        &self,
        organization_id: &str,
        rule: &str,
        severity: &str,
        subject: &str,
        message: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let id = new_id();
        let q = self.sql(format!(
            "INSERT INTO alerts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, NULL, NULL, NULL) \
             ON CONFLICT DO NOTHING"
        ));
        let r = self
            .execute(
                "alert_raise",
                sqlx::query(&q)
                    .bind(&id)
                    .bind(organization_id)
                    .bind(rule)
                    .bind(severity)
                    .bind(subject)
                    .bind(message)
                    .bind(now_ms()),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.alert(organization_id, &id).await
    }

    /// Resolves the open alert of `rule` on `subject`, if any; answers it.
    pub async fn resolve_alert_for(
        &self,
        organization_id: &str,
        rule: &str,
        subject: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM alerts WHERE organization_id = ? AND rule = ? AND subject = ? \
             AND resolved_at IS NULL"
        ));
        let Some(row) = self
            .timed(
                "alert_open_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(rule)
                    .bind(subject)
                    .fetch_optional(self.pool()),
            )
            .await?
        else {
            return Ok(None);
        };
        let alert = from_row(&row)?;
        self.resolve_alert(organization_id, &alert.id).await
    }

    pub async fn resolve_alert(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let q = self.sql(
            "UPDATE alerts SET state = 'resolved', resolved_at = ? \
             WHERE organization_id = ? AND id = ? AND resolved_at IS NULL",
        );
        let r = self
            .execute(
                "alert_resolve",
                sqlx::query(&q)
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.alert(organization_id, id).await
    }

    pub async fn acknowledge_alert(
        &self,
        organization_id: &str,
        id: &str,
        user_id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let q = self.sql(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ? \
             WHERE organization_id = ? AND id = ? AND state = 'active'",
        );
        let r = self
            .execute(
                "alert_ack",
                sqlx::query(&q)
                    .bind(now_ms())
                    .bind(user_id)
                    .bind(organization_id)
                    .bind(id),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.alert(organization_id, id).await
    }

    pub async fn alert(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM alerts WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "alert_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Alerts newest first; `open` keeps the unresolved ones, otherwise all (history).
    pub async fn list_alerts(
        &self,
        organization_id: &str,
        open: Option<bool>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError> {
        let open_flag = open.map(i64::from);
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM alerts WHERE organization_id = ? \
             AND (? IS NULL OR (? = 1 AND resolved_at IS NULL) OR (? = 0 AND resolved_at IS NOT NULL)) \
             AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "alert_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(open_flag)
                    .bind(open_flag)
                    .bind(open_flag)
                    .bind(before)
                    .bind(before)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|a| a.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn create_webhook(
        &self,
        organization_id: &str,
        url: &str,
        secret: &str,
        secrets: &SecretBox,
    ) -> Result<Webhook, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(
            "INSERT INTO webhooks (id, organization_id, url, secret_sealed, enabled, created_at) \
             VALUES (?, ?, ?, ?, 1, ?)",
        );
        self.execute(
            "webhook_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(url)
                .bind(secrets.seal(secret))
                .bind(now),
        )
        .await?;
        Ok(Webhook {
            id,
            organization_id: organization_id.to_string(),
            url: url.to_string(),
            enabled: true,
            created_at: now,
        })
    }

    /// Webhooks of an organization with their secrets in clear (for signing deliveries only).
    pub async fn webhooks_with_secrets(
        &self,
        organization_id: &str,
        secrets: &SecretBox,
    ) -> Result<Vec<(Webhook, String)>, StoreError> {
        let q = self.sql(
            "SELECT id, organization_id, url, secret_sealed, enabled, created_at FROM webhooks \
             WHERE organization_id = ? ORDER BY id",
        );
        let rows = self
            .timed(
                "webhook_list",
                sqlx::query(&q).bind(organization_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| -> Result<(Webhook, String), StoreError> {
                let hook = Webhook {
                    id: r.try_get("id")?,
                    organization_id: r.try_get("organization_id")?,
                    url: r.try_get("url")?,
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                    created_at: r.try_get("created_at")?,
                };
                let sealed: String = r.try_get("secret_sealed")?;
                Ok((hook, secrets.open(&sealed)?))
            })
            .collect()
    }

    pub async fn delete_webhook(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM webhooks WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "webhook_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
