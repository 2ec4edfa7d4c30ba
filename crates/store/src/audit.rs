//! The audit log and the e-mail outbox.

use sqlx::Row;

use crate::identity::{new_id, paginate};
use crate::{now_ms, Db, Page, SecretBox, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub organization_id: Option<String>,
    pub actor_id: Option<String>,
    pub api_token_id: Option<String>,
    /// What was done, e.g. `channel.create`.
    pub action: String,
    pub method: String,
    /// The request path, which names the resource.
    pub resource: String,
    pub resource_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: String,
    pub status: i64,
    pub ip: String,
    pub user_agent: String,
    pub request_id: Option<String>,
    /// JSON object with more about the event, never a secret.
    pub details: Option<String>,
    pub created_at: i64,
}

/// Filters of an audit log read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    /// Entries whose resource path starts with this.
    pub resource: Option<String>,
    pub result: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

const AUDIT_COLUMNS: &str = "id, organization_id, actor_id, api_token_id, action, method, \
     resource, resource_id, result, status, ip, user_agent, request_id, details, created_at";

fn audit_from_row(r: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        actor_id: r.try_get("actor_id")?,
        api_token_id: r.try_get("api_token_id")?,
        action: r.try_get("action")?,
        method: r.try_get("method")?,
        resource: r.try_get("resource")?,
        resource_id: r.try_get("resource_id")?,
        result: r.try_get("result")?,
        status: r.try_get("status")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        request_id: r.try_get("request_id")?,
        details: r.try_get("details")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A message kept in the outbox, its body opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: String,
    pub organization_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub kind: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewOutboxMessage<'a> {
    pub organization_id: Option<&'a str>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub kind: &'a str,
    pub body: &'a str,
}

impl Db {
    /// Appends one entry (its `id` and `created_at` are set here).
    pub async fn insert_audit(&self, e: &AuditEntry) -> Result<String, StoreError> {
        let id = new_id();
        let q = self.sql(format!(
            "INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        self.execute(
            "audit_insert",
            sqlx::query(&q)
                .bind(&id)
                .bind(e.organization_id.as_deref())
                .bind(e.actor_id.as_deref())
                .bind(e.api_token_id.as_deref())
                .bind(&e.action)
                .bind(&e.method)
                .bind(&e.resource)
                .bind(e.resource_id.as_deref())
                .bind(&e.result)
                .bind(e.status)
                .bind(&e.ip)
                .bind(&e.user_agent)
                .bind(e.request_id.as_deref())
                .bind(e.details.as_deref())
                .bind(now_ms()),
        )
        .await?;
        Ok(id)
    }

    /// Entries of an organization, newest first, filtered, `limit` at a time after `cursor`.
    pub async fn list_audit(
        &self,
        organization_id: &str,
        f: &AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let resource = f.resource.as_deref().map(|r| {
            let mut p = crate::identity::contains_pattern(r);
            p.remove(0);
            p
        });
        let q = self.sql(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE organization_id = ? \
             AND (? IS NULL OR actor_id = ?) AND (? IS NULL OR action = ?) \
             AND (? IS NULL OR resource LIKE ? ESCAPE '\\') AND (? IS NULL OR result = ?) \
             AND (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?) \
             AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "audit_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(f.actor_id.as_deref())
                    .bind(f.actor_id.as_deref())
                    .bind(f.action.as_deref())
                    .bind(f.action.as_deref())
                    .bind(resource.as_deref())
                    .bind(resource.as_deref())
                    .bind(f.result.as_deref())
                    .bind(f.result.as_deref())
                    .bind(f.since)
                    .bind(f.since)
                    .bind(f.until)
                    .bind(f.until)
                    .bind(cursor)
                    .bind(cursor)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(items, limit, |e| e.id.clone()))
    }

    /// One entry of an organization; another organization's id is simply not found.
    pub async fn audit_entry(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let q = self.sql(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "audit_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(audit_from_row).transpose()?)
    }

    /// Deletes entries older than `before` (unix ms); answers how many.
    pub async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM audit_logs WHERE created_at < ?");
        let r = self
            .execute("audit_purge", sqlx::query(&q).bind(before))
            .await?;
        Ok(r.rows_affected())
    }

    /// Keeps a message whose body is sealed with the master key.
    pub async fn insert_outbox(
        &self,
        m: &NewOutboxMessage<'_>,
        secrets: &SecretBox,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let q = self.sql(
            "INSERT INTO outbox (id, organization_id, recipient, subject, kind, body_sealed, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "outbox_insert",
            sqlx::query(&q)
                .bind(&id)
                .bind(m.organization_id)
                .bind(m.recipient)
                .bind(m.subject)
                .bind(m.kind)
                .bind(secrets.seal(m.body))
                .bind(now_ms()),
        )
        .await?;
        Ok(id)
    }

    /// Messages of an organization, newest first, `limit` at a time after `cursor`; `recipient`
    /// narrows to one address.
    pub async fn list_outbox(
        &self,
        organization_id: &str,
        recipient: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
        secrets: &SecretBox,
    ) -> Result<Page<OutboxMessage>, StoreError> {
        let recipient = recipient.map(|r| r.trim().to_lowercase());
        let q = self.sql(
            "SELECT id, organization_id, recipient, subject, kind, body_sealed, created_at \
             FROM outbox WHERE organization_id = ? AND (? IS NULL OR recipient = ?) \
             AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
        );
        let rows = self
            .timed(
                "outbox_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(recipient.as_deref())
                    .bind(recipient.as_deref())
                    .bind(cursor)
                    .bind(cursor)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let sealed: String = r.try_get("body_sealed")?;
            items.push(OutboxMessage {
                id: r.try_get("id")?,
                organization_id: r.try_get("organization_id")?,
                recipient: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                kind: r.try_get("kind")?,
                body: secrets.open(&sealed)?,
                created_at: r.try_get("created_at")?,
            });
        }
        Ok(paginate(items, limit, |m| m.id.clone()))
    }

    /// Deletes outbox messages older than `before` (unix ms).
    pub async fn purge_outbox(&self, before: i64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM outbox WHERE created_at < ?");
        let r = self
            .execute("outbox_purge", sqlx::query(&q).bind(before))
            .await?;
        Ok(r.rows_affected())
    }
}
