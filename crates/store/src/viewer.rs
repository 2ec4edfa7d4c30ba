//! The viewer platform: catalog metadata of channels, categories, audience profiles and blocks,
//! subscriptions and their payments, viewing sessions, saved streams and follows of creators.

use std::collections::HashMap;

use sqlx::Row;

use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// A channel as the catalog shows it: the channel, its catalog row (defaults when it has none),
/// its category and its owner's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub channel_id: String,
    pub organization_id: String,
    pub owner_id: Option<String>,
    pub creator_name: String,
    pub visibility: String,
    pub title: String,
    pub description: String,
    pub category_id: Option<String>,
    pub category_slug: Option<String>,
    pub category_name: Option<String>,
    pub tags: Vec<String>,
    pub access_level: String,
    pub content_rating: String,
    pub scheduled_start: Option<i64>,
    pub featured: bool,
    pub created_at: i64,
}

/// The editable catalog fields of one channel, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    pub title: String,
    pub description: String,
    pub category_id: Option<String>,
    pub tags: Vec<String>,
    pub access_level: String,
    pub content_rating: String,
    pub scheduled_start: Option<i64>,
    pub featured: bool,
}

/// Which catalog entries to read. Only `visibility = 'public'` channels are in the public
/// catalog; `organization_id` (catalog editing) reaches every channel of that organization.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter<'a> {
    pub organization_id: Option<&'a str>,
    pub channel_id: Option<&'a str>,
    pub featured_only: bool,
    pub category_slug: Option<&'a str>,
    pub owner_ids: Option<&'a [String]>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: String,
    pub organization_id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerProfile {
    pub user_id: String,
    /// JSON object: quality, language, autoplay, notifications.
    pub preferences: String,
    /// `public` or `private`.
    pub profile_visibility: String,
    pub history_enabled: bool,
    /// The highest content rating shown: `general`, `teen`, `mature`, `adult`.
    pub max_rating: String,
    /// Argon2 hash of the parental PIN.
    pub pin_hash: Option<String>,
    pub updated_at: i64,
}

impl ViewerProfile {
    pub fn default_for(user_id: &str) -> Self {
        ViewerProfile {
            user_id: user_id.to_string(),
            preferences: "{}".into(),
            profile_visibility: "public".into(),
            history_enabled: true,
            max_rating: "adult".into(),
            pin_hash: None,
            updated_at: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub user_id: String,
    /// `premium` or `vip`.
    pub plan: String,
    /// `active`, `past_due`, `canceled` or `expired`.
    pub status: String,
    pub started_at: i64,
    pub current_period_end: i64,
    pub auto_renew: bool,
    pub provider: String,
    /// What the provider lets us show of the payment method (e.g. `card •••• 4242`).
    pub payment_method: String,
    pub canceled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub subscription_id: Option<String>,
    pub user_id: String,
    pub plan: String,
    pub amount_cents: i64,
    /// `succeeded` or `declined`.
    pub status: String,
    pub provider_ref: String,
    pub detail: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewingSession {
    pub id: String,
    pub stream_id: String,
    pub user_id: Option<String>,
    pub started_at: i64,
    pub last_heartbeat_at: i64,
    pub ended_at: Option<i64>,
    pub position_ms: i64,
    pub watched_ms: i64,
    pub quality: String,
    pub device: String,
    pub exit_reason: String,
}

/// A subscription with its owner, for the viewer admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionWithUser {
    pub subscription: Subscription,
    pub email: String,
    pub organization_id: String,
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

const ENTRY_SELECT: &str = "SELECT c.id, c.organization_id, c.owner_id, c.name, c.description, \
     c.visibility, c.created_at, s.title, s.description AS s_description, s.category_id, s.tags, \
     s.access_level, s.content_rating, s.scheduled_start, s.featured, k.slug AS k_slug, \
     k.name AS k_name, u.display_name AS u_name \
     FROM channels c LEFT JOIN stream_catalog s ON s.channel_id = c.id \
     LEFT JOIN stream_categories k ON k.id = s.category_id \
     LEFT JOIN users u ON u.id = c.owner_id";

fn entry_from_row(r: &sqlx::any::AnyRow) -> Result<CatalogEntry, sqlx::Error> {
    let name: String = r.try_get("name")?;
    let description: String = r.try_get("description")?;
    let title: Option<String> = r.try_get("title")?;
    let s_description: Option<String> = r.try_get("s_description")?;
    let tags: Option<String> = r.try_get("tags")?;
    let featured: Option<i64> = r.try_get("featured")?;
    Ok(CatalogEntry {
        channel_id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        owner_id: r.try_get("owner_id")?,
        creator_name: r
            .try_get::<Option<String>, _>("u_name")?
            .unwrap_or_default(),
        visibility: r.try_get("visibility")?,
        title: title.filter(|t| !t.is_empty()).unwrap_or(name),
        description: s_description
            .filter(|d| !d.is_empty())
            .unwrap_or(description),
        category_id: r.try_get("category_id")?,
        category_slug: r.try_get("k_slug")?,
        category_name: r.try_get("k_name")?,
        tags: tags.as_deref().map(split_tags).unwrap_or_default(),
        access_level: r
            .try_get::<Option<String>, _>("access_level")?
            .unwrap_or_else(|| "public".into()),
        content_rating: r
            .try_get::<Option<String>, _>("content_rating")?
            .unwrap_or_else(|| "general".into()),
        scheduled_start: r.try_get("scheduled_start")?,
        featured: featured.unwrap_or(0) != 0,
        created_at: r.try_get("created_at")?,
    })
}

const CATEGORY_COLUMNS: &str = "id, organization_id, slug, name, description, created_at";

fn category_from_row(r: &sqlx::any::AnyRow) -> Result<Category, sqlx::Error> {
    Ok(Category {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
    })
}

const PROFILE_COLUMNS: &str =
    "user_id, preferences, profile_visibility, history_enabled, max_rating, pin_hash, updated_at";

fn profile_from_row(r: &sqlx::any::AnyRow) -> Result<ViewerProfile, sqlx::Error> {
    let h: i64 = r.try_get("history_enabled")?;
    Ok(ViewerProfile {
        user_id: r.try_get("user_id")?,
        preferences: r.try_get("preferences")?,
        profile_visibility: r.try_get("profile_visibility")?,
        history_enabled: h != 0,
        max_rating: r.try_get("max_rating")?,
        pin_hash: r.try_get("pin_hash")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const SUB_COLUMNS: &str = "id, user_id, plan, status, started_at, current_period_end, auto_renew, \
     provider, payment_method, canceled_at, created_at, updated_at";

fn sub_from_row(r: &sqlx::any::AnyRow) -> Result<Subscription, sqlx::Error> {
    let a: i64 = r.try_get("auto_renew")?;
    Ok(Subscription {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        plan: r.try_get("plan")?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        current_period_end: r.try_get("current_period_end")?,
        auto_renew: a != 0,
        provider: r.try_get("provider")?,
        payment_method: r.try_get("payment_method")?,
        canceled_at: r.try_get("canceled_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const PAYMENT_COLUMNS: &str =
    "id, subscription_id, user_id, plan, amount_cents, status, provider_ref, detail, created_at";

fn payment_from_row(r: &sqlx::any::AnyRow) -> Result<Payment, sqlx::Error> {
    Ok(Payment {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        user_id: r.try_get("user_id")?,
        plan: r.try_get("plan")?,
        amount_cents: r.try_get("amount_cents")?,
        status: r.try_get("status")?,
        provider_ref: r.try_get("provider_ref")?,
        detail: r.try_get("detail")?,
        created_at: r.try_get("created_at")?,
    })
}

const SESSION_COLUMNS: &str = "id, stream_id, user_id, started_at, last_heartbeat_at, ended_at, \
     position_ms, watched_ms, quality, device, exit_reason";

fn session_from_row(r: &sqlx::any::AnyRow) -> Result<ViewingSession, sqlx::Error> {
    Ok(ViewingSession {
        id: r.try_get("id")?,
        stream_id: r.try_get("stream_id")?,
        user_id: r.try_get("user_id")?,
        started_at: r.try_get("started_at")?,
        last_heartbeat_at: r.try_get("last_heartbeat_at")?,
        ended_at: r.try_get("ended_at")?,
        position_ms: r.try_get("position_ms")?,
        watched_ms: r.try_get("watched_ms")?,
        quality: r.try_get("quality")?,
        device: r.try_get("device")?,
        exit_reason: r.try_get("exit_reason")?,
    })
}

impl Db {
    // ---- catalog ----

    /// Catalog entries, newest channel first.
    pub async fn catalog_entries(
        &self,
        f: &CatalogFilter<'_>,
    ) -> Result<Vec<CatalogEntry>, StoreError> {
        let mut q = String::from(ENTRY_SELECT);
        let mut binds: Vec<String> = Vec::new();
        match f.organization_id {
            Some(org) => {
                q.push_str(" WHERE c.organization_id = ?");
                binds.push(org.to_string());
            }
            None => q.push_str(" WHERE c.visibility = 'public'"),
        }
        if let Some(id) = f.channel_id {
            q.push_str(" AND c.id = ?");
            binds.push(id.to_string());
        }
        if f.featured_only {
            q.push_str(" AND s.featured = 1");
        }
        if let Some(slug) = f.category_slug {
            q.push_str(" AND k.slug = ?");
            binds.push(slug.to_string());
        }
        if let Some(owners) = f.owner_ids {
            if owners.is_empty() {
                return Ok(Vec::new());
            }
            q.push_str(" AND c.owner_id IN (");
            q.push_str(&vec!["?"; owners.len()].join(", "));
            q.push(')');
            binds.extend(owners.iter().cloned());
        }
        q.push_str(&format!(
            " ORDER BY c.created_at DESC, c.id LIMIT {}",
            f.limit.clamp(1, 2000)
        ));
        let q = self.sql(q);
        let mut query = sqlx::query(&q);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = self
            .timed("catalog_entries", query.fetch_all(self.pool()))
            .await?;
        Ok(rows.iter().map(entry_from_row).collect::<Result<_, _>>()?)
    }

    /// Writes a channel's catalog row (creating it the first time).
    pub async fn save_catalog(&self, channel_id: &str, row: &CatalogRow) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO stream_catalog (channel_id, title, description, category_id, tags, \
             access_level, content_rating, scheduled_start, featured, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET \
             title = excluded.title, description = excluded.description, \
             category_id = excluded.category_id, tags = excluded.tags, \
             access_level = excluded.access_level, content_rating = excluded.content_rating, \
             scheduled_start = excluded.scheduled_start, featured = excluded.featured, \
             updated_at = excluded.updated_at",
        );
        self.execute(
            "catalog_save",
            sqlx::query(&q)
                .bind(channel_id)
                .bind(&row.title)
                .bind(&row.description)
                .bind(row.category_id.as_deref())
                .bind(row.tags.join(","))
                .bind(&row.access_level)
                .bind(&row.content_rating)
                .bind(row.scheduled_start)
                .bind(i64::from(row.featured))
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    /// The stored catalog row of a channel, if it has one.
    pub async fn catalog_row(&self, channel_id: &str) -> Result<Option<CatalogRow>, StoreError> {
        let q = self.sql(
            "SELECT title, description, category_id, tags, access_level, content_rating, \
             scheduled_start, featured FROM stream_catalog WHERE channel_id = ?",
        );
        let row = self
            .timed(
                "catalog_row",
                sqlx::query(&q).bind(channel_id).fetch_optional(self.pool()),
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        let tags: String = r.try_get("tags")?;
        let featured: i64 = r.try_get("featured")?;
        Ok(Some(CatalogRow {
            title: r.try_get("title")?,
            description: r.try_get("description")?,
            category_id: r.try_get("category_id")?,
            tags: split_tags(&tags),
            access_level: r.try_get("access_level")?,
            content_rating: r.try_get("content_rating")?,
            scheduled_start: r.try_get("scheduled_start")?,
            featured: featured != 0,
        }))
    }

    /// A channel's access level (`public` without a catalog row).
    pub async fn access_level(&self, channel_id: &str) -> Result<String, StoreError> {
        let q = self.sql("SELECT access_level FROM stream_catalog WHERE channel_id = ?");
        let row = self
            .timed(
                "catalog_access_level",
                sqlx::query(&q).bind(channel_id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(match row {
            Some(r) => r.try_get("access_level")?,
            None => "public".into(),
        })
    }

    // ---- categories ----

    pub async fn create_category(
        &self,
        organization_id: &str,
        slug: &str,
        name: &str,
        description: &str,
    ) -> Result<Category, StoreError> {
        let c = Category {
            id: new_id(),
            organization_id: organization_id.into(),
            slug: slug.into(),
            name: name.into(),
            description: description.into(),
            created_at: now_ms(),
        };
        let q = self.sql(format!(
            "INSERT INTO stream_categories ({CATEGORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        ));
        self.execute(
            "category_create",
            sqlx::query(&q)
                .bind(&c.id)
                .bind(&c.organization_id)
                .bind(&c.slug)
                .bind(&c.name)
                .bind(&c.description)
                .bind(c.created_at),
        )
        .await
        .map_err(|e| e.unique_as_conflict("a category with this slug exists"))?;
        Ok(c)
    }

    /// Categories of one organization, or of all when `organization_id` is `None`.
    pub async fn categories(
        &self,
        organization_id: Option<&str>,
    ) -> Result<Vec<Category>, StoreError> {
        let rows = match organization_id {
            Some(org) => {
                let q = self.sql(format!(
                    "SELECT {CATEGORY_COLUMNS} FROM stream_categories WHERE organization_id = ? \
                     ORDER BY name, id"
                ));
                self.timed(
                    "categories",
                    sqlx::query(&q).bind(org).fetch_all(self.pool()),
                )
                .await?
            }
            None => {
                let q = format!(
                    "SELECT {CATEGORY_COLUMNS} FROM stream_categories ORDER BY name, id LIMIT 1000"
                );
                self.timed("categories", sqlx::query(&q).fetch_all(self.pool()))
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(category_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn category(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Category>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CATEGORY_COLUMNS} FROM stream_categories WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "category",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(category_from_row).transpose()?)
    }

    pub async fn update_category(&self, c: &Category) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE stream_categories SET slug = ?, name = ?, description = ? \
             WHERE organization_id = ? AND id = ?",
        );
        let r = self
            .execute(
                "category_update",
                sqlx::query(&q)
                    .bind(&c.slug)
                    .bind(&c.name)
                    .bind(&c.description)
                    .bind(&c.organization_id)
                    .bind(&c.id),
            )
            .await
            .map_err(|e| e.unique_as_conflict("a category with this slug exists"))?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn delete_category(&self, organization_id: &str, id: &str) -> Result<(), StoreError> {
        let q = self.sql("DELETE FROM stream_categories WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "category_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    // ---- profiles and blocks ----

    /// The viewer profile of a user (defaults when none is stored).
    pub async fn viewer_profile(&self, user_id: &str) -> Result<ViewerProfile, StoreError> {
        let q = self.sql(format!(
            "SELECT {PROFILE_COLUMNS} FROM viewer_profiles WHERE user_id = ?"
        ));
        let row = self
            .timed(
                "viewer_profile",
                sqlx::query(&q).bind(user_id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(match row {
            Some(r) => profile_from_row(&r)?,
            None => ViewerProfile::default_for(user_id),
        })
    }

    pub async fn save_viewer_profile(&self, p: &ViewerProfile) -> Result<(), StoreError> {
        let q = self.sql(format!(
            "INSERT INTO viewer_profiles ({PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET preferences = excluded.preferences, \
             profile_visibility = excluded.profile_visibility, \
             history_enabled = excluded.history_enabled, max_rating = excluded.max_rating, \
             pin_hash = excluded.pin_hash, updated_at = excluded.updated_at"
        ));
        self.execute(
            "viewer_profile_save",
            sqlx::query(&q)
                .bind(&p.user_id)
                .bind(&p.preferences)
                .bind(&p.profile_visibility)
                .bind(i64::from(p.history_enabled))
                .bind(&p.max_rating)
                .bind(p.pin_hash.as_deref())
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    pub async fn block_user(&self, user_id: &str, blocked: &str) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO viewer_blocks (user_id, blocked_user_id, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, blocked_user_id) DO NOTHING",
        );
        self.execute(
            "viewer_block",
            sqlx::query(&q).bind(user_id).bind(blocked).bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    pub async fn unblock_user(&self, user_id: &str, blocked: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM viewer_blocks WHERE user_id = ? AND blocked_user_id = ?");
        let r = self
            .execute(
                "viewer_unblock",
                sqlx::query(&q).bind(user_id).bind(blocked),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// (blocked user id, display name, blocked at).
    pub async fn blocked_users(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let q = self.sql(
            "SELECT b.blocked_user_id, u.display_name, b.created_at FROM viewer_blocks b \
             JOIN users u ON u.id = b.blocked_user_id WHERE b.user_id = ? ORDER BY b.created_at",
        );
        let rows = self
            .timed(
                "viewer_blocks",
                sqlx::query(&q).bind(user_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("blocked_user_id")?,
                    r.try_get("display_name")?,
                    r.try_get("created_at")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Deletes a user and, by cascade, everything that is theirs; in the same transaction the
    /// e-mail kept in the outbox for the address is deleted and the user's audit-log entries
    /// lose the address and browser they came from (the entries stay, naming only the id).
    pub async fn delete_user(&self, user_id: &str) -> Result<(), StoreError> {
        let user = self.user(user_id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.pool().begin().await?;
        let q = self.sql("DELETE FROM outbox WHERE recipient = ?");
        sqlx::query(&q).bind(&user.email).execute(&mut *tx).await?;
        let q = self.sql("UPDATE audit_logs SET ip = '', user_agent = '' WHERE actor_id = ?");
        sqlx::query(&q).bind(user_id).execute(&mut *tx).await?;
        let q = self.sql("DELETE FROM users WHERE id = ?");
        let r = sqlx::query(&q).bind(user_id).execute(&mut *tx).await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- subscriptions ----

    pub async fn save_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
        let q = self.sql(format!(
            "INSERT INTO subscriptions ({SUB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET plan = excluded.plan, status = excluded.status, \
             current_period_end = excluded.current_period_end, \
             auto_renew = excluded.auto_renew, payment_method = excluded.payment_method, \
             canceled_at = excluded.canceled_at, updated_at = excluded.updated_at"
        ));
        self.execute(
            "subscription_save",
            sqlx::query(&q)
                .bind(&s.id)
                .bind(&s.user_id)
                .bind(&s.plan)
                .bind(&s.status)
                .bind(s.started_at)
                .bind(s.current_period_end)
                .bind(i64::from(s.auto_renew))
                .bind(&s.provider)
                .bind(&s.payment_method)
                .bind(s.canceled_at)
                .bind(s.created_at)
                .bind(s.updated_at),
        )
        .await?;
        Ok(())
    }

    /// A user's subscriptions, newest first.
    pub async fn subscriptions_of(&self, user_id: &str) -> Result<Vec<Subscription>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE user_id = ? \
             ORDER BY created_at DESC, id DESC"
        ));
        let rows = self
            .timed(
                "subscriptions_of",
                sqlx::query(&q).bind(user_id).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(sub_from_row).collect::<Result<_, _>>()?)
    }

    /// Audience users with a subscription that needs settling at `now`: an `active`,
    /// `canceled` or `past_due` one whose paid period ended (for `past_due`: whose grace of
    /// `grace_ms` ended too), at most `limit` of them, longest overdue first. Staff accounts are
    /// left out: settling skips them, so listing them would fill every batch with the same rows.
    pub async fn users_with_subscriptions_due(
        &self,
        now: i64,
        grace_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let q = self.sql(
            "SELECT s.user_id, MIN(s.current_period_end) AS due FROM subscriptions s \
             JOIN users u ON u.id = s.user_id AND u.realm = 'audience' \
             WHERE (s.status IN ('active', 'canceled') AND s.current_period_end <= ?) \
                OR (s.status = 'past_due' AND s.current_period_end + ? <= ?) \
             GROUP BY s.user_id ORDER BY due, s.user_id LIMIT ?",
        );
        let rows = self
            .timed(
                "users_with_subscriptions_due",
                sqlx::query(&q)
                    .bind(now)
                    .bind(grace_ms)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("user_id"))
            .collect::<Result<_, _>>()?)
    }

    /// Subscriptions of an organization's users, newest first.
    pub async fn subscriptions_in_org(
        &self,
        organization_id: &str,
        limit: u32,
    ) -> Result<Vec<SubscriptionWithUser>, StoreError> {
        let cols = SUB_COLUMNS
            .split(", ")
            .map(|c| format!("s.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let q = self.sql(format!(
            "SELECT {cols}, u.email, u.organization_id FROM subscriptions s \
             JOIN users u ON u.id = s.user_id WHERE u.organization_id = ? \
             ORDER BY s.created_at DESC, s.id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ));
        let rows = self
            .timed(
                "subscriptions_in_org",
                sqlx::query(&q).bind(organization_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SubscriptionWithUser {
                    subscription: sub_from_row(r)?,
                    email: r.try_get("email")?,
                    organization_id: r.try_get("organization_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn record_payment(&self, p: &Payment) -> Result<(), StoreError> {
        let q = self.sql(format!(
            "INSERT INTO subscription_payments ({PAYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        self.execute(
            "payment_record",
            sqlx::query(&q)
                .bind(&p.id)
                .bind(p.subscription_id.as_deref())
                .bind(&p.user_id)
                .bind(&p.plan)
                .bind(p.amount_cents)
                .bind(&p.status)
                .bind(&p.provider_ref)
                .bind(&p.detail)
                .bind(p.created_at),
        )
        .await?;
        Ok(())
    }

    pub async fn payments_of(&self, user_id: &str) -> Result<Vec<Payment>, StoreError> {
        let q = self.sql(format!(
            "SELECT {PAYMENT_COLUMNS} FROM subscription_payments WHERE user_id = ? \
             ORDER BY created_at DESC, id DESC"
        ));
        let rows = self
            .timed(
                "payments_of",
                sqlx::query(&q).bind(user_id).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(payment_from_row)
            .collect::<Result<_, _>>()?)
    }

    // ---- viewing ----

    pub async fn start_viewing(&self, s: &ViewingSession) -> Result<(), StoreError> {
        let q = self.sql(format!(
            "INSERT INTO viewing_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        self.execute(
            "viewing_start",
            sqlx::query(&q)
                .bind(&s.id)
                .bind(&s.stream_id)
                .bind(s.user_id.as_deref())
                .bind(s.started_at)
                .bind(s.last_heartbeat_at)
                .bind(s.ended_at)
                .bind(s.position_ms)
                .bind(s.watched_ms)
                .bind(&s.quality)
                .bind(&s.device)
                .bind(&s.exit_reason),
        )
        .await?;
        Ok(())
    }

    pub async fn viewing_session(&self, id: &str) -> Result<Option<ViewingSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM viewing_sessions WHERE id = ?"
        ));
        let row = self
            .timed(
                "viewing_session",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(session_from_row).transpose()?)
    }

    /// Writes the mutable fields of a session (heartbeat, position, end).
    pub async fn update_viewing(&self, s: &ViewingSession) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE viewing_sessions SET last_heartbeat_at = ?, ended_at = ?, position_ms = ?, \
             watched_ms = ?, quality = ?, exit_reason = ? WHERE id = ?",
        );
        self.execute(
            "viewing_update",
            sqlx::query(&q)
                .bind(s.last_heartbeat_at)
                .bind(s.ended_at)
                .bind(s.position_ms)
                .bind(s.watched_ms)
                .bind(&s.quality)
                .bind(&s.exit_reason)
                .bind(&s.id),
        )
        .await?;
        Ok(())
    }

    /// Open sessions with a heartbeat at or after `since`, per stream.
    pub async fn viewer_counts(&self, since: i64) -> Result<HashMap<String, i64>, StoreError> {
        let q = self.sql(
            "SELECT stream_id, COUNT(*) AS n FROM viewing_sessions \
             WHERE ended_at IS NULL AND last_heartbeat_at >= ? GROUP BY stream_id",
        );
        let rows = self
            .timed(
                "viewer_counts",
                sqlx::query(&q).bind(since).fetch_all(self.pool()),
            )
            .await?;
        let mut out = HashMap::new();
        for r in rows {
            out.insert(r.try_get("stream_id")?, r.try_get("n")?);
        }
        Ok(out)
    }

    /// Sessions active at or after `since` (every viewer, anonymous included), for trending.
    pub async fn sessions_since(&self, since: i64) -> Result<Vec<ViewingSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM viewing_sessions WHERE last_heartbeat_at >= ? \
             ORDER BY started_at LIMIT 100000"
        ));
        let rows = self
            .timed(
                "sessions_since",
                sqlx::query(&q).bind(since).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// A user's sessions, newest first.
    pub async fn sessions_of(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<ViewingSession>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM viewing_sessions WHERE user_id = ? \
             ORDER BY started_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 10_000)
        ));
        let rows = self
            .timed(
                "sessions_of",
                sqlx::query(&q).bind(user_id).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Forgets a user's viewing history (the sessions stay, without the person).
    pub async fn clear_history(&self, user_id: &str) -> Result<(), StoreError> {
        let q = self.sql("UPDATE viewing_sessions SET user_id = NULL WHERE user_id = ?");
        self.execute("history_clear", sqlx::query(&q).bind(user_id))
            .await?;
        Ok(())
    }

    // ---- saved streams and follows ----

    pub async fn save_stream(&self, user_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO saved_streams (user_id, stream_id, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, stream_id) DO NOTHING",
        );
        self.execute(
            "stream_save",
            sqlx::query(&q).bind(user_id).bind(stream_id).bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    pub async fn unsave_stream(&self, user_id: &str, stream_id: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM saved_streams WHERE user_id = ? AND stream_id = ?");
        let r = self
            .execute(
                "stream_unsave",
                sqlx::query(&q).bind(user_id).bind(stream_id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// (stream id, saved at), newest first.
    pub async fn saved_streams(&self, user_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let q = self.sql(
            "SELECT stream_id, created_at FROM saved_streams WHERE user_id = ? \
             ORDER BY created_at DESC, stream_id",
        );
        let rows = self
            .timed(
                "saved_streams",
                sqlx::query(&q).bind(user_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("stream_id")?, r.try_get("created_at")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn follow_creator(&self, user_id: &str, creator_id: &str) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO creator_follows (user_id, creator_id, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, creator_id) DO NOTHING",
        );
        self.execute(
            "creator_follow",
            sqlx::query(&q)
                .bind(user_id)
                .bind(creator_id)
                .bind(now_ms()),
        )
        .await?;
        Ok(())
    }

    pub async fn unfollow_creator(
        &self,
        user_id: &str,
        creator_id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM creator_follows WHERE user_id = ? AND creator_id = ?");
        let r = self
            .execute(
                "creator_unfollow",
                sqlx::query(&q).bind(user_id).bind(creator_id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// (creator id, display name, followed at), oldest first.
    pub async fn follows(&self, user_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let q = self.sql(
            "SELECT f.creator_id, u.display_name, f.created_at FROM creator_follows f \
             JOIN users u ON u.id = f.creator_id WHERE f.user_id = ? ORDER BY f.created_at",
        );
        let rows = self
            .timed(
                "follows",
                sqlx::query(&q).bind(user_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("creator_id")?,
                    r.try_get("display_name")?,
                    r.try_get("created_at")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::identity::NewUser;
    use crate::DbConfig;

    /// The settler's list holds audience accounts only, longest overdue first: a staff account
    /// with a lapsed subscription (which settling skips) would otherwise be listed every round
    /// and, being the longest overdue, take the batch's slots.
    #[tokio::test]
    async fn only_audience_accounts_are_due_for_settling() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/lunora.db", dir.path().display());
        let db = Db::open(&DbConfig::new(&url)).await.unwrap();
        let org = db.create_organization("acme", "Acme").await.unwrap();
        let mut ids = Vec::new();
        for (email, realm, role) in [
            ("staff@example.com", "staff", "operator"),
            ("late@example.com", "audience", "premium"),
            ("later@example.com", "audience", "vip"),
            ("paid@example.com", "audience", "premium"),
        ] {
            let user = db
                .create_user(&NewUser {
                    organization_id: &org.id,
                    email,
                    display_name: email,
                    realm,
                    role,
                    password_hash: None,
                    superadmin: false,
                    email_verified: true,
                })
                .await
                .unwrap();
            ids.push(user.id);
        }
        let now = 1_000_000_000;
        // Period ends: the staff account's is the oldest; the last account's is still running.
        for (i, end) in [now - 400, now - 200, now - 100, now + 100]
            .into_iter()
            .enumerate()
        {
            db.save_subscription(&Subscription {
                id: format!("sub-{i}"),
                user_id: ids[i].clone(),
                plan: "premium".into(),
                status: "active".into(),
                started_at: 0,
                current_period_end: end,
                auto_renew: true,
                provider: "test".into(),
                payment_method: String::new(),
                canceled_at: None,
                created_at: 0,
                updated_at: 0,
            })
            .await
            .unwrap();
        }
        let due = db.users_with_subscriptions_due(now, 0, 10).await.unwrap();
        assert_eq!(due, [ids[1].clone(), ids[2].clone()]);
        let first = db.users_with_subscriptions_due(now, 0, 1).await.unwrap();
        assert_eq!(
            first,
            [ids[1].clone()],
            "a batch of one takes the longest overdue"
        );
    }
}
