//! Invitations, one-time e-mail links and API tokens. Every bearer secret is stored as its
//! SHA-256 hash; API tokens also keep their last 4 characters for display.

use sqlx::Row;

use crate::identity::{new_id, paginate, NewUser};
use crate::{now_ms, Db, Page, StoreError, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub invited_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub user_id: Option<String>,
}

impl Invitation {
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub fn status(&self, now: i64) -> &'static str {
        if self.accepted_at.is_some() {
            "accepted"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= now {
            "expired"
        } else {
            "pending"
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewInvitation<'a> {
    pub organization_id: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
    pub invited_by: Option<&'a str>,
    pub token_hash: &'a str,
    pub expires_at: i64,
}

/// What accepting an invitation did.
#[derive(Debug, Clone)]
pub enum AcceptOutcome {
    Accepted(Box<User>),
    /// Unknown, spent, revoked or expired.
    Invalid,
}

const INVITATION_COLUMNS: &str = "id, organization_id, email, display_name, role, invited_by, \
     created_at, expires_at, accepted_at, revoked_at, user_id";

fn invitation_from_row(r: &sqlx::any::AnyRow) -> Result<Invitation, sqlx::Error> {
    Ok(Invitation {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        invited_by: r.try_get("invited_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
        revoked_at: r.try_get("revoked_at")?,
        user_id: r.try_get("user_id")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub name: String,
    pub token_last4: String,
    /// Permission names, the token's scope.
    pub permissions: Vec<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    pub organization_id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub token_last4: &'a str,
    pub permissions: &'a [String],
    pub created_by: Option<&'a str>,
    pub expires_at: Option<i64>,
}

/// An API token with what the HTTP edge needs to admit a request, read in one query.
#[derive(Debug, Clone)]
pub struct ApiTokenAuth {
    pub token: ApiToken,
    pub role: String,
    pub realm: String,
    pub user_disabled_at: Option<i64>,
    pub org_disabled_at: Option<i64>,
    pub org_ip_allowlist: String,
}

const API_TOKEN_COLUMNS: &str = "t.id, t.organization_id, t.user_id, t.name, t.token_last4, \
     t.permissions, t.created_by, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

fn api_token_from_row(r: &sqlx::any::AnyRow) -> Result<ApiToken, sqlx::Error> {
    let perms: String = r.try_get("permissions")?;
    Ok(ApiToken {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        token_last4: r.try_get("token_last4")?,
        permissions: perms
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Db {
    // --- invitations -----------------------------------------------------------------------

    pub async fn create_invitation(
        &self,
        new: &NewInvitation<'_>,
    ) -> Result<Invitation, StoreError> {
        let id = new_id();
        let q = self.sql(
            "INSERT INTO invitations (id, organization_id, email, display_name, role, token_hash, \
             invited_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "invitation_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(new.organization_id)
                .bind(new.email.trim().to_lowercase())
                .bind(new.display_name)
                .bind(new.role)
                .bind(new.token_hash)
                .bind(new.invited_by)
                .bind(now_ms())
                .bind(new.expires_at),
        )
        .await?;
        self.invitation(new.organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// An invitation of `organization_id`; another organization's id is simply not found.
    pub async fn invitation(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        let q = self.sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "invitation_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(invitation_from_row).transpose()?)
    }

    /// A pending invitation to `email` in `organization_id`, if there is one.
    pub async fn pending_invitation_for(
        &self,
        organization_id: &str,
        email: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        let q = self.sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE organization_id = ? AND email = ? \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?"
        ));
        let row = self
            .timed(
                "invitation_pending",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(email.trim().to_lowercase())
                    .bind(now_ms())
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(invitation_from_row).transpose()?)
    }

    /// Invitations of an organization, newest first, `limit` at a time after `cursor`.
    pub async fn list_invitations(
        &self,
        organization_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Invitation>, StoreError> {
        let q = self.sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE organization_id = ? \
             AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "invitation_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(cursor)
                    .bind(cursor)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows
            .iter()
            .map(invitation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(items, limit, |i| i.id.clone()))
    }

    /// Revokes a pending invitation; false when there is no such pending one.
    pub async fn revoke_invitation(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql(
            "UPDATE invitations SET revoked_at = ? WHERE organization_id = ? AND id = ? \
             AND accepted_at IS NULL AND revoked_at IS NULL",
        );
        let r = self
            .execute(
                "invitation_revoke",
                sqlx::query(&q)
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The pending invitation a link token opens.
    pub async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        let q = self.sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?"
        ));
        let row = self
            .timed(
                "invitation_by_token",
                sqlx::query(&q).bind(token_hash).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(invitation_from_row).transpose()?)
    }

    /// Spends an invitation and creates its account in one transaction.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        display_name: &str,
        realm: &str,
        password_hash: &str,
    ) -> Result<AcceptOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self.sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?"
        ));
        let Some(row) = sqlx::query(&q)
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(AcceptOutcome::Invalid);
        };
        let inv = invitation_from_row(&row)?;
        if inv.status(now) != "pending" {
            return Ok(AcceptOutcome::Invalid);
        }
        let q = self.sql(
            "UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL \
             AND revoked_at IS NULL",
        );
        let spent = sqlx::query(&q)
            .bind(now)
            .bind(&inv.id)
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 {
            return Ok(AcceptOutcome::Invalid);
        }
        let name = if display_name.is_empty() {
            inv.display_name.as_str()
        } else {
            display_name
        };
        let user_id = self
            .insert_user(
                &mut tx,
                &NewUser {
                    organization_id: &inv.organization_id,
                    email: &inv.email,
                    display_name: name,
                    realm,
                    role: &inv.role,
                    password_hash: Some(password_hash),
                    superadmin: false,
                    email_verified: true,
                },
            )
            .await?;
        let q = self.sql("UPDATE invitations SET user_id = ? WHERE id = ?");
        sqlx::query(&q)
            .bind(&user_id)
            .bind(&inv.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let user = self.user(&user_id).await?.ok_or(StoreError::NotFound)?;
        Ok(AcceptOutcome::Accepted(Box::new(user)))
    }

    // --- one-time e-mail links -------------------------------------------------------------

    /// Stores a one-time link token for `purpose`, replacing the user's unspent ones.
    pub async fn create_user_token(
        &self,
        user_id: &str,
        purpose: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self
            .sql("DELETE FROM user_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL");
        sqlx::query(&q)
            .bind(user_id)
            .bind(purpose)
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(token_hash)
            .bind(user_id)
            .bind(purpose)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a valid (unspent, unexpired) one-time link token, without spending it.
    pub async fn peek_user_token(
        &self,
        token_hash: &str,
        purpose: &str,
    ) -> Result<Option<String>, StoreError> {
        let q = self.sql(
            "SELECT user_id FROM user_tokens WHERE token_hash = ? AND purpose = ? \
             AND used_at IS NULL AND expires_at > ?",
        );
        let row = self
            .timed(
                "user_token_peek",
                sqlx::query(&q)
                    .bind(token_hash)
                    .bind(purpose)
                    .bind(now_ms())
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// Spends a one-time link token of `purpose`; answers its user when it was valid.
    pub async fn consume_user_token(
        &self,
        token_hash: &str,
        purpose: &str,
    ) -> Result<Option<String>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self.sql(
            "UPDATE user_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? \
             AND used_at IS NULL AND expires_at > ?",
        );
        let r = sqlx::query(&q)
            .bind(now)
            .bind(token_hash)
            .bind(purpose)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(None);
        }
        let q = self.sql("SELECT user_id FROM user_tokens WHERE token_hash = ?");
        let row = sqlx::query(&q).bind(token_hash).fetch_one(&mut *tx).await?;
        let user_id: String = row.try_get("user_id")?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    // --- API tokens ------------------------------------------------------------------------

    pub async fn create_api_token(&self, new: &NewApiToken<'_>) -> Result<ApiToken, StoreError> {
        let id = new_id();
        let q = self.sql(
            "INSERT INTO api_tokens (id, organization_id, user_id, name, token_hash, token_last4, \
             permissions, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "api_token_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(new.organization_id)
                .bind(new.user_id)
                .bind(new.name)
                .bind(new.token_hash)
                .bind(new.token_last4)
                .bind(new.permissions.join(","))
                .bind(new.created_by)
                .bind(now_ms())
                .bind(new.expires_at),
        )
        .await?;
        self.api_token(new.organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// An API token of `organization_id`; another organization's id is simply not found.
    pub async fn api_token(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let q = self.sql(format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens t WHERE t.organization_id = ? AND t.id = ?"
        ));
        let row = self
            .timed(
                "api_token_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(api_token_from_row).transpose()?)
    }

    /// API tokens of an organization (of one user when `user_id` is set), newest first.
    pub async fn list_api_tokens(
        &self,
        organization_id: &str,
        user_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ApiToken>, StoreError> {
        let q = self.sql(format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens t WHERE t.organization_id = ? \
             AND (? IS NULL OR t.user_id = ?) AND (? IS NULL OR t.id < ?) \
             ORDER BY t.id DESC LIMIT ?"
        ));
        let rows = self
            .timed(
                "api_token_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(user_id)
                    .bind(user_id)
                    .bind(cursor)
                    .bind(cursor)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows
            .iter()
            .map(api_token_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(items, limit, |t| t.id.clone()))
    }

    /// Revokes a live API token; false when there is no such live token.
    pub async fn revoke_api_token(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql(
            "UPDATE api_tokens SET revoked_at = ? WHERE organization_id = ? AND id = ? \
             AND revoked_at IS NULL",
        );
        let r = self
            .execute(
                "api_token_revoke",
                sqlx::query(&q)
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The API token a bearer secret (given as its hash) opens, with its holder's state.
    pub async fn api_token_auth(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenAuth>, StoreError> {
        let q = self.sql(format!(
            "SELECT {API_TOKEN_COLUMNS}, u.role, u.realm, u.disabled_at AS user_disabled_at, \
             o.disabled_at AS org_disabled_at, o.ip_allowlist FROM api_tokens t \
             JOIN users u ON u.id = t.user_id JOIN organizations o ON o.id = t.organization_id \
             WHERE t.token_hash = ?"
        ));
        let row = self
            .timed(
                "api_token_auth",
                sqlx::query(&q).bind(token_hash).fetch_optional(self.pool()),
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ApiTokenAuth {
            token: api_token_from_row(&r)?,
            role: r.try_get("role")?,
            realm: r.try_get("realm")?,
            user_disabled_at: r.try_get("user_disabled_at")?,
            org_disabled_at: r.try_get("org_disabled_at")?,
            org_ip_allowlist: r.try_get("ip_allowlist")?,
        }))
    }

    pub async fn touch_api_token(&self, id: &str) -> Result<(), StoreError> {
        let q = self.sql("UPDATE api_tokens SET last_used_at = ? WHERE id = ?");
        self.execute("api_token_touch", sqlx::query(&q).bind(now_ms()).bind(id))
            .await?;
        Ok(())
    }

    /// Deletes spent or expired one-time links and invitations older than `before`.
    pub async fn purge_spent_links(&self, before: i64) -> Result<u64, StoreError> {
        let q = self.sql(
            "DELETE FROM user_tokens WHERE (used_at IS NOT NULL OR expires_at <= ?) AND created_at < ?",
        );
        let r = self
            .execute(
                "user_tokens_purge",
                sqlx::query(&q).bind(now_ms()).bind(before),
            )
            .await?;
        Ok(r.rows_affected())
    }

    /// The sealed publish key of an input of a channel of `organization_id`, with the input's
    /// role; another organization's ids are simply not found.
    pub async fn input_sealed_key(
        &self,
        organization_id: &str,
        channel_id: &str,
        input_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let q = self.sql(
            "SELECT i.publish_key_sealed, i.role FROM channel_inputs i \
             JOIN channels c ON c.id = i.channel_id \
             WHERE c.organization_id = ? AND c.id = ? AND i.id = ?",
        );
        let row = self
            .timed(
                "input_sealed_key",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(channel_id)
                    .bind(input_id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("publish_key_sealed")?, r.try_get("role")?))),
            None => Ok(None),
        }
    }
}
