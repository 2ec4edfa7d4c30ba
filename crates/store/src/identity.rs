//! Organizations, users and sign-in sessions with their rotating refresh tokens, MFA state and
//! password history.

use sqlx::Row;

use crate::{now_ms, Db, Page, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// `required` or `optional`; `None` follows the server default.
    pub staff_mfa: Option<String>,
    /// Comma-separated addresses or CIDR blocks; empty allows every address.
    pub ip_allowlist: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of an organization that may change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    /// `Some(None)` returns to the server default.
    pub staff_mfa: Option<Option<String>>,
    pub ip_allowlist: Option<String>,
    /// `Some(true)` disables, `Some(false)` enables.
    pub disabled: Option<bool>,
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
    /// Manages organizations across the platform.
    pub superadmin: bool,
    pub email_verified_at: Option<i64>,
    pub last_login_at: Option<i64>,
    /// When TOTP was activated; `None` without MFA.
    pub totp_enabled_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub organization_id: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub realm: &'a str,
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
    pub superadmin: bool,
    /// Whether the address is known to be the user's (an accepted invitation proves it).
    pub email_verified: bool,
}

/// Fields of a user an administrator may change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub role: Option<String>,
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
}

/// Filters of a user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<String>,
    pub realm: Option<String>,
    /// `Some(true)`: disabled ones only; `Some(false)`: enabled ones only.
    pub disabled: Option<bool>,
    /// Part of the email address or display name, case-insensitive.
    pub query: Option<String>,
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
    /// `full`, or `mfa_enrolment` for a sign-in that may only enrol TOTP.
    pub scope: String,
}

/// A session with what the HTTP edge needs to admit a request, read in one query.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub session: AuthSession,
    pub organization_id: String,
    pub role: String,
    pub realm: String,
    pub superadmin: bool,
    pub user_disabled_at: Option<i64>,
    pub org_disabled_at: Option<i64>,
    pub org_ip_allowlist: String,
}

/// What happened to a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Valid and now spent; the new token is stored. `previous_seen` is when the session was
    /// last used before this refresh, for the role's idle timeout.
    Rotated {
        session: AuthSession,
        previous_seen: i64,
    },
    /// Spent already: the whole session was revoked.
    Reused,
    /// Unknown, or its session is revoked or expired.
    Invalid,
}

const ORG_COLUMNS: &str =
    "id, name, slug, staff_mfa, ip_allowlist, disabled_at, created_at, updated_at";

fn org_from_row(r: &sqlx::any::AnyRow) -> Result<Organization, sqlx::Error> {
    Ok(Organization {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        slug: r.try_get("slug")?,
        staff_mfa: r.try_get("staff_mfa")?,
        ip_allowlist: r.try_get("ip_allowlist")?,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const USER_COLUMNS: &str = "id, organization_id, email, display_name, realm, role, password_hash, \
     password_changed_at, disabled_at, created_at, updated_at, superadmin, email_verified_at, \
     last_login_at, totp_enabled_at";

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let superadmin: i64 = r.try_get("superadmin")?;
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
        superadmin: superadmin != 0,
        email_verified_at: r.try_get("email_verified_at")?,
        last_login_at: r.try_get("last_login_at")?,
        totp_enabled_at: r.try_get("totp_enabled_at")?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent, scope";

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
        scope: r.try_get("scope")?,
    })
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `LIKE` pattern matching `text` anywhere, with the wildcards in it taken literally.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// Splits `limit + 1` fetched rows into a page and the next cursor.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next_cursor }
}

impl Db {
    /// The organization with `slug`, created with `name` if it does not exist yet.
    pub async fn ensure_organization(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<Organization, StoreError> {
        let q = self.sql(
            "INSERT INTO organizations (id, name, slug, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (slug) DO NOTHING",
        );
        let now = now_ms();
        self.execute(
            "org_ensure",
            sqlx::query(&q)
                .bind(new_id())
                .bind(name)
                .bind(slug)
                .bind(now)
                .bind(now),
        )
        .await?;
        self.organization_by_slug(slug)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Creates an organization; a taken slug is a conflict.
    pub async fn create_organization(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<Organization, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(
            "INSERT INTO organizations (id, name, slug, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        );
        self.execute(
            "org_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(name)
                .bind(slug)
                .bind(now)
                .bind(now),
        )
        .await
        .map_err(|e| e.unique_as_conflict("an organization with this slug already exists"))?;
        self.organization(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn organization(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let q = self.sql(format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?"
        ));
        let row = self
            .timed(
                "org_get",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(org_from_row).transpose()?)
    }

    pub async fn organization_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<Organization>, StoreError> {
        let q = self.sql(format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE slug = ?"
        ));
        let row = self
            .timed(
                "org_by_slug",
                sqlx::query(&q).bind(slug).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(org_from_row).transpose()?)
    }

    /// Organizations in creation order, `limit` at a time after `cursor`.
    pub async fn list_organizations(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Organization>, StoreError> {
        let q = self.sql(format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE id > ? ORDER BY id LIMIT ?"
        ));
        let rows = self
            .timed(
                "org_list",
                sqlx::query(&q)
                    .bind(cursor.unwrap_or(""))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows
            .iter()
            .map(org_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(items, limit, |o| o.id.clone()))
    }

    pub async fn update_organization(
        &self,
        id: &str,
        patch: &OrganizationPatch,
    ) -> Result<Organization, StoreError> {
        let now = now_ms();
        let (set_mfa, mfa) = match &patch.staff_mfa {
            Some(v) => (1i64, v.clone()),
            None => (0i64, None),
        };
        let disabled_at = patch.disabled.map(|d| if d { now } else { 0 });
        let q = self.sql(
            "UPDATE organizations SET name = COALESCE(?, name), \
             staff_mfa = CASE WHEN ? = 1 THEN ? ELSE staff_mfa END, \
             ip_allowlist = COALESCE(?, ip_allowlist), \
             disabled_at = CASE WHEN ? IS NULL THEN disabled_at WHEN ? = 0 THEN NULL \
                 ELSE COALESCE(disabled_at, ?) END, \
             updated_at = ? WHERE id = ?",
        );
        let r = self
            .execute(
                "org_update",
                sqlx::query(&q)
                    .bind(patch.name.as_deref())
                    .bind(set_mfa)
                    .bind(mfa)
                    .bind(patch.ip_allowlist.as_deref())
                    .bind(disabled_at)
                    .bind(disabled_at)
                    .bind(disabled_at)
                    .bind(now)
                    .bind(id),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.organization(id).await?.ok_or(StoreError::NotFound)
    }

    /// A value of `instance_settings`.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let q = self.sql("SELECT value FROM instance_settings WHERE key = ?");
        let row = self
            .timed(
                "setting_get",
                sqlx::query(&q).bind(key).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO instance_settings (key, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        );
        self.execute(
            "setting_set",
            sqlx::query(&q).bind(key).bind(value).bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    /// Deletes `key` if it holds `value`; true when it did (an atomic claim of a one-time value).
    pub async fn take_setting(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM instance_settings WHERE key = ? AND value = ?");
        let r = self
            .execute("setting_take", sqlx::query(&q).bind(key).bind(value))
            .await?;
        Ok(r.rows_affected() == 1)
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
        let mut tx = self.pool().begin().await?;
        let id = self.insert_user(&mut tx, new).await?;
        tx.commit().await?;
        self.user(&id).await?.ok_or(StoreError::NotFound)
    }

    /// Inserts a user inside a transaction; answers its id.
    pub(crate) async fn insert_user(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        new: &NewUser<'_>,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let id = new_id();
        let email = new.email.trim().to_lowercase();
        let q = self.sql(
            "INSERT INTO users (id, organization_id, email, display_name, realm, role, \
             password_hash, password_changed_at, created_at, updated_at, superadmin, \
             email_verified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
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
            .bind(now)
            .bind(i64::from(new.superadmin))
            .bind(new.email_verified.then_some(now))
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                StoreError::from(e).unique_as_conflict("a user with this email already exists")
            })?;
        Ok(id)
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

    /// A user of `organization_id`; another organization's id is simply not found.
    pub async fn user_in_org(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<User>, StoreError> {
        let q = self.sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "user_get_in_org",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
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

    /// Users of an organization in creation order, filtered, `limit` at a time after `cursor`.
    pub async fn list_users(
        &self,
        organization_id: &str,
        filter: &UserFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<User>, StoreError> {
        let pattern = filter
            .query
            .as_deref()
            .map(|q| contains_pattern(&q.to_lowercase()));
        let disabled = filter.disabled.map(i64::from);
        let q = self.sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE organization_id = ? \
             AND (? IS NULL OR role = ?) AND (? IS NULL OR realm = ?) \
             AND (? IS NULL OR (? = 1 AND disabled_at IS NOT NULL) OR (? = 0 AND disabled_at IS NULL)) \
             AND (? IS NULL OR LOWER(email) LIKE ? ESCAPE '\\' OR LOWER(display_name) LIKE ? ESCAPE '\\') \
             AND id > ? ORDER BY id LIMIT ?"
        ));
        let rows = self
            .timed(
                "user_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(filter.role.as_deref())
                    .bind(filter.role.as_deref())
                    .bind(filter.realm.as_deref())
                    .bind(filter.realm.as_deref())
                    .bind(disabled)
                    .bind(disabled)
                    .bind(disabled)
                    .bind(pattern.as_deref())
                    .bind(pattern.as_deref())
                    .bind(pattern.as_deref())
                    .bind(cursor.unwrap_or(""))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(items, limit, |u| u.id.clone()))
    }

    /// Applies `patch` to a user of `organization_id`. Disabling revokes every session.
    pub async fn update_user(
        &self,
        organization_id: &str,
        id: &str,
        patch: &UserPatch,
    ) -> Result<User, StoreError> {
        let now = now_ms();
        let disabled_at = patch.disabled.map(|d| if d { now } else { 0 });
        let mut tx = self.pool().begin().await?;
        let q = self.sql(
            "UPDATE users SET role = COALESCE(?, role), display_name = COALESCE(?, display_name), \
             disabled_at = CASE WHEN ? IS NULL THEN disabled_at WHEN ? = 0 THEN NULL \
                 ELSE COALESCE(disabled_at, ?) END, \
             updated_at = ? WHERE organization_id = ? AND id = ?",
        );
        let r = sqlx::query(&q)
            .bind(patch.role.as_deref())
            .bind(patch.display_name.as_deref())
            .bind(disabled_at)
            .bind(disabled_at)
            .bind(disabled_at)
            .bind(now)
            .bind(organization_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if patch.disabled == Some(true) {
            let q = self.sql(
                "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = 'account_disabled' \
                 WHERE user_id = ? AND revoked_at IS NULL",
            );
            sqlx::query(&q).bind(now).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.user(id).await?.ok_or(StoreError::NotFound)
    }

    /// Enabled users of an organization with `role`.
    pub async fn count_enabled_with_role(
        &self,
        organization_id: &str,
        role: &str,
    ) -> Result<i64, StoreError> {
        let q = self.sql(
            "SELECT COUNT(*) AS n FROM users WHERE organization_id = ? AND role = ? \
             AND disabled_at IS NULL",
        );
        let row = self
            .timed(
                "users_count_role",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(role)
                    .fetch_one(self.pool()),
            )
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The current hash followed by the `n - 1` most recent earlier ones.
    pub async fn recent_password_hashes(
        &self,
        user_id: &str,
        n: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        if let Some(h) = self.user(user_id).await?.and_then(|u| u.password_hash) {
            out.push(h);
        }
        let q = self.sql(
            "SELECT password_hash FROM password_history WHERE user_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT ?",
        );
        let rows = self
            .timed(
                "password_history",
                sqlx::query(&q)
                    .bind(user_id)
                    .bind(i64::from(n.saturating_sub(1)))
                    .fetch_all(self.pool()),
            )
            .await?;
        for r in rows {
            out.push(r.try_get("password_hash")?);
        }
        Ok(out)
    }

    /// Replaces a user's password, keeping the old hash in the history (at most `keep` entries),
    /// and revokes every session but `keep_session`.
    pub async fn set_password(
        &self,
        user_id: &str,
        hash: &str,
        keep: u32,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self.sql("SELECT password_hash FROM users WHERE id = ?");
        let old: Option<String> = sqlx::query(&q)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("password_hash"))
            .transpose()?
            .flatten();
        if let Some(old) = old {
            let q = self.sql(
                "INSERT INTO password_history (id, user_id, password_hash, created_at) \
                 VALUES (?, ?, ?, ?)",
            );
            sqlx::query(&q)
                .bind(new_id())
                .bind(user_id)
                .bind(old)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // Keep the newest `keep` entries.
            let q = self.sql(
                "DELETE FROM password_history WHERE user_id = ? AND id NOT IN \
                 (SELECT id FROM password_history WHERE user_id = ? \
                  ORDER BY created_at DESC, id DESC LIMIT ?)",
            );
            sqlx::query(&q)
                .bind(user_id)
                .bind(user_id)
                .bind(i64::from(keep))
                .execute(&mut *tx)
                .await?;
        }
        let q = self.sql(
            "UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?",
        );
        sqlx::query(&q)
            .bind(hash)
            .bind(now)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = 'password_changed' \
             WHERE user_id = ? AND revoked_at IS NULL AND id <> ?",
        );
        sqlx::query(&q)
            .bind(now)
            .bind(user_id)
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the user's address as verified.
    pub async fn mark_email_verified(&self, user_id: &str) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, ?) WHERE id = ?",
        );
        self.execute(
            "user_verify_email",
            sqlx::query(&q).bind(now_ms()).bind(user_id),
        )
        .await?;
        Ok(())
    }

    pub async fn mark_login(&self, user_id: &str) -> Result<(), StoreError> {
        let q = self.sql("UPDATE users SET last_login_at = ? WHERE id = ?");
        self.execute(
            "user_mark_login",
            sqlx::query(&q).bind(now_ms()).bind(user_id),
        )
        .await?;
        Ok(())
    }

    // --- MFA -------------------------------------------------------------------------------

    /// Stores a TOTP secret (sealed) that waits for its first code.
    pub async fn set_totp_pending(&self, user_id: &str, sealed: &str) -> Result<(), StoreError> {
        let q = self.sql("UPDATE users SET totp_pending_sealed = ? WHERE id = ?");
        self.execute(
            "totp_pending_set",
            sqlx::query(&q).bind(sealed).bind(user_id),
        )
        .await?;
        Ok(())
    }

    /// The sealed pending and active TOTP secrets of a user.
    pub async fn totp_secrets(
        &self,
        user_id: &str,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let q = self.sql("SELECT totp_pending_sealed, totp_secret_sealed FROM users WHERE id = ?");
        let row = self
            .timed(
                "totp_secrets",
                sqlx::query(&q).bind(user_id).fetch_optional(self.pool()),
            )
            .await?;
        match row {
            Some(r) => Ok((
                r.try_get("totp_pending_sealed")?,
                r.try_get("totp_secret_sealed")?,
            )),
            None => Ok((None, None)),
        }
    }

    /// Turns the pending secret into the active one, records `step` as used, replaces the
    /// recovery codes and lifts the enrolment restriction of the user's sessions.
    pub async fn activate_totp(
        &self,
        user_id: &str,
        sealed: &str,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self.sql(
            "UPDATE users SET totp_secret_sealed = ?, totp_pending_sealed = NULL, \
             totp_enabled_at = ?, totp_last_step = ?, updated_at = ? WHERE id = ?",
        );
        sqlx::query(&q)
            .bind(sealed)
            .bind(now)
            .bind(step)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        self.replace_recovery_codes_tx(&mut tx, user_id, recovery_hashes)
            .await?;
        let q = self
            .sql("UPDATE auth_sessions SET scope = 'full' WHERE user_id = ? AND scope <> 'full'");
        sqlx::query(&q).bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_recovery_codes_tx(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user_id: &str,
        hashes: &[String],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let q = self.sql("DELETE FROM recovery_codes WHERE user_id = ?");
        sqlx::query(&q).bind(user_id).execute(&mut **tx).await?;
        let q = self.sql(
            "INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES (?, ?, ?, ?)",
        );
        for h in hashes {
            sqlx::query(&q)
                .bind(new_id())
                .bind(user_id)
                .bind(h)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        self.replace_recovery_codes_tx(&mut tx, user_id, hashes)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records `step` as the last accepted TOTP step; false when it (or a later one) was used
    /// already, which makes each code good once.
    pub async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let q = self.sql(
            "UPDATE users SET totp_last_step = ? WHERE id = ? \
             AND (totp_last_step IS NULL OR totp_last_step < ?)",
        );
        let r = self
            .execute(
                "totp_claim_step",
                sqlx::query(&q).bind(step).bind(user_id).bind(step),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Spends a recovery code; false when it is unknown or spent.
    pub async fn use_recovery_code(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let q = self.sql(
            "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? \
             AND used_at IS NULL",
        );
        let r = self
            .execute(
                "recovery_code_use",
                sqlx::query(&q).bind(now_ms()).bind(user_id).bind(hash),
            )
            .await?;
        Ok(r.rows_affected() >= 1)
    }

    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64, StoreError> {
        let q = self
            .sql("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL");
        let row = self
            .timed(
                "recovery_codes_left",
                sqlx::query(&q).bind(user_id).fetch_one(self.pool()),
            )
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Removes TOTP and recovery codes.
    pub async fn disable_totp(&self, user_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let q = self.sql(
            "UPDATE users SET totp_secret_sealed = NULL, totp_pending_sealed = NULL, \
             totp_enabled_at = NULL, updated_at = ? WHERE id = ?",
        );
        sqlx::query(&q)
            .bind(now_ms())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let q = self.sql("DELETE FROM recovery_codes WHERE user_id = ?");
        sqlx::query(&q).bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- sessions --------------------------------------------------------------------------

    /// Starts a session for `user_id` with its first refresh token (given as a hash).
    pub async fn create_session(
        &self,
        user_id: &str,
        expires_at: i64,
        refresh_hash: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<AuthSession, StoreError> {
        self.create_scoped_session(user_id, expires_at, refresh_hash, ip, user_agent, "full")
            .await
    }

    /// Like [`Db::create_session`] with a scope (`full` or `mfa_enrolment`).
    pub async fn create_scoped_session(
        &self,
        user_id: &str,
        expires_at: i64,
        refresh_hash: &str,
        ip: &str,
        user_agent: &str,
        scope: &str,
    ) -> Result<AuthSession, StoreError> {
        let now = now_ms();
        let id = new_id();
        let mut tx = self.pool().begin().await?;
        let q = self.sql(
            "INSERT INTO auth_sessions (id, user_id, created_at, last_seen_at, expires_at, ip, \
             user_agent, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(&id)
            .bind(user_id)
            .bind(now)
            .bind(now)
            .bind(expires_at)
            .bind(ip)
            .bind(user_agent)
            .bind(scope)
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

    /// A session with its user's role and state and its organization's policy, in one query.
    pub async fn session_auth(&self, id: &str) -> Result<Option<SessionAuth>, StoreError> {
        let q = self.sql(
            "SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, \
             s.ip, s.user_agent, s.scope, u.organization_id, u.role, u.realm, u.superadmin, \
             u.disabled_at AS user_disabled_at, o.disabled_at AS org_disabled_at, \
             o.ip_allowlist FROM auth_sessions s JOIN users u ON u.id = s.user_id \
             JOIN organizations o ON o.id = u.organization_id WHERE s.id = ?",
        );
        let row = self
            .timed(
                "session_auth",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        let superadmin: i64 = r.try_get("superadmin")?;
        Ok(Some(SessionAuth {
            session: session_from_row(&r)?,
            organization_id: r.try_get("organization_id")?,
            role: r.try_get("role")?,
            realm: r.try_get("realm")?,
            superadmin: superadmin != 0,
            user_disabled_at: r.try_get("user_disabled_at")?,
            org_disabled_at: r.try_get("org_disabled_at")?,
            org_ip_allowlist: r.try_get("ip_allowlist")?,
        }))
    }

    /// Sessions of a user that are neither revoked nor expired, newest first.
    pub async fn active_sessions(&self, user_id: &str) -> Result<Vec<AuthSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions \
             WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id DESC"
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
            previous_seen: session.last_seen_at,
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

    /// Revokes every live session of a user.
    pub async fn revoke_all_sessions(
        &self,
        user_id: &str,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let q = self.sql(
            "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = ? \
             WHERE user_id = ? AND revoked_at IS NULL",
        );
        let r = self
            .execute(
                "session_revoke_all",
                sqlx::query(&q).bind(now_ms()).bind(reason).bind(user_id),
            )
            .await?;
        Ok(r.rows_affected())
    }
}
