//! Organizations, users and sign-in sessions with their rotating refresh tokens.

use sqlx::Row;

use crate::{now_ms, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub display_name: String,
    pub realm: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub organization_id: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub realm: &'a str,
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub ip: String,
    pub user_agent: String,
}

/// What happened to a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Valid and now spent; the new token is stored.
    Rotated { session: AuthSession },
    /// Spent already: the whole session was revoked.
    Reused,
    /// Unknown, or its session is revoked or expired.
    Invalid,
}

const USER_COLUMNS: &str = "id, organization_id, email, display_name, realm, role, password_hash, \
     password_changed_at, disabled_at, created_at, updated_at";

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        realm: r.try_get("realm")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        password_changed_at: r.try_get("password_changed_at")?,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent";

fn session_from_row(r: &sqlx::any::AnyRow) -> Result<AuthSession, sqlx::Error> {
    Ok(AuthSession {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
    })
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Db {
    /// The organization with `slug`, created with `name` if it does not exist yet.
    pub async fn ensure_organization(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<Organization, StoreError> {
        let q = self.sql(
            "INSERT INTO organizations (id, name, slug, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (slug) DO NOTHING",
        );
        self.execute(
            "org_ensure",
            sqlx::query(&q)
                .bind(new_id())
                .bind(name)
                .bind(slug)
                .bind(now_ms()),
        )
        .await?;
        let q = self.sql("SELECT id, name, slug, created_at FROM organizations WHERE slug = ?");
        let row = self
            .timed(
                "org_by_slug",
                sqlx::query(&q).bind(slug).fetch_one(self.pool()),
            )
            .await?;
        Ok(Organization {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            slug: row.try_get("slug")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = self
            .timed(
                "users_count",
                sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(self.pool()),
            )
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<User, StoreError> {
        let now = now_ms();
        let id = new_id();
        let email = new.email.trim().to_lowercase();
        let q = self.sql(
            "INSERT INTO users (id, organization_id, email, display_name, realm, role, \
             password_hash, password_changed_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "user_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(new.organization_id)
                .bind(&email)
                .bind(new.display_name)
                .bind(new.realm)
                .bind(new.role)
                .bind(new.password_hash)
                .bind(new.password_hash.map(|_| now))
                .bind(now)
                .bind(now),
        )
        .await
        .map_err(|e| e.unique_as_conflict("a user with this email already exists"))?;
        self.user(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let q = self.sql(format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"));
        let row = self
            .timed(
                "user_get",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn user_by_email(
        &self,
        realm: &str,
        email: &str,
    ) -> Result<Option<User>, StoreError> {
        let q = self.sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE realm = ? AND email = ?"
        ));
        let row = self
            .timed(
                "user_by_email",
                sqlx::query(&q)
                    .bind(realm)
                    .bind(email.trim().to_lowercase())
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Starts a session for `user_id` with its first refresh token (given as a hash).
    pub async fn create_session(
        &self,
        user_id: &str,
        expires_at: i64,
        refresh_hash: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<AuthSession, StoreError> {
        let now = now_ms();
        let id = new_id();
        let mut tx = self.pool().begin().await?;
        let q = self.sql(
            "INSERT INTO auth_sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(&id)
            .bind(user_id)
            .bind(now)
            .bind(now)
            .bind(expires_at)
            .bind(ip)
            .bind(user_agent)
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(refresh_hash)
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.session(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn session(&self, id: &str) -> Result<Option<AuthSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = ?"
        ));
        let row = self
            .timed(
                "session_get",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(session_from_row).transpose()?)
    }

    /// Sessions of a user that are neither revoked nor expired, newest first.
    pub async fn active_sessions(&self, user_id: &str) -> Result<Vec<AuthSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions \
             WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC"
        ));
        let rows = self
            .timed(
                "sessions_active",
                sqlx::query(&q)
                    .bind(user_id)
                    .bind(now_ms())
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Spends `presented_hash` and stores `next_hash` in its place, atomically. A token presented
    /// twice revokes its whole session (family).
    pub async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        idle_cutoff: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self.sql("SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = ?");
        let Some(row) = sqlx::query(&q)
            .bind(presented_hash)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        let session_id: String = row.try_get("session_id")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            let q = self.sql(
                "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = 'refresh_token_reuse' \
                 WHERE id = ? AND revoked_at IS NULL",
            );
            sqlx::query(&q)
                .bind(now)
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::warn!(session = %session_id, "refresh token reused: session revoked");
            return Ok(RefreshOutcome::Reused);
        }
        // Spend it only if still unspent: a concurrent use loses and counts as reuse.
        let q = self
            .sql("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL");
        let spent = sqlx::query(&q)
            .bind(now)
            .bind(presented_hash)
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 {
            return Ok(RefreshOutcome::Reused);
        }
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = ?"
        ));
        let session = session_from_row(
            &sqlx::query(&q)
                .bind(&session_id)
                .fetch_one(&mut *tx)
                .await?,
        )?;
        if session.revoked_at.is_some()
            || session.expires_at <= now
            || session.last_seen_at < idle_cutoff
        {
            tx.commit().await?;
            return Ok(RefreshOutcome::Invalid);
        }
        let q = self.sql(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(next_hash)
            .bind(&session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let q = self.sql("UPDATE auth_sessions SET last_seen_at = ? WHERE id = ?");
        sqlx::query(&q)
            .bind(now)
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated {
            session: AuthSession {
                last_seen_at: now,
                ..session
            },
        })
    }

    /// Marks a session seen now (idle timeout bookkeeping).
    pub async fn touch_session(&self, id: &str) -> Result<(), StoreError> {
        let q = self.sql("UPDATE auth_sessions SET last_seen_at = ? WHERE id = ?");
        self.execute("session_touch", sqlx::query(&q).bind(now_ms()).bind(id))
            .await?;
        Ok(())
    }

    /// Revokes a session of `user_id`; false when there is no such live session.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql(
            "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = ? \
             WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        );
        let r = self
            .execute(
                "session_revoke",
                sqlx::query(&q)
                    .bind(now_ms())
                    .bind(reason)
                    .bind(id)
                    .bind(user_id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
