//! The podcast advertising workspace (seed 002): advertisers ("ad clients"), shows, episodes with
//! talent assignments, campaigns with account teams, talent availability and the activity log.
//!
//! Every query is scoped to one organization. Lists take a [`Scope`] that the API derives from
//! the caller's role, so row filters live in SQL and a page never holds a row the caller may not
//! see. Lists page by offset (`cursor` is the offset of the next page) because they sort by any
//! of a few columns; ties break by id so pages are stable.

use sqlx::Row;

use crate::channels::Page;
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// Which rows of a list the caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every row of the organization.
    All,
    /// A seller: campaigns they own or are on the account team of, and those campaigns' clients
    /// (plus clients they own).
    Seller(&'a str),
    /// A client user: only the campaigns (and the one client record) of the advertiser the user
    /// is linked to.
    ClientUser(&'a str),
    /// A talent: only the episodes they are assigned to (and those episodes' shows).
    Talent(&'a str),
    /// Nothing.
    Nothing,
}

impl Scope<'_> {
    fn seller(&self) -> Option<&str> {
        match self {
            Scope::Seller(u) => Some(u),
            _ => None,
        }
    }
    fn client_user(&self) -> Option<&str> {
        match self {
            Scope::ClientUser(u) => Some(u),
            _ => None,
        }
    }
    fn talent(&self) -> Option<&str> {
        match self {
            Scope::Talent(u) => Some(u),
            _ => None,
        }
    }
    fn nothing(&self) -> i64 {
        i64::from(*self == Scope::Nothing)
    }
}

/// Paging and sorting of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Offset of the first row (the previous page's `next_cursor`).
    pub offset: i64,
    pub limit: u32,
    /// A column of the entity's sort whitelist, `-` in front for descending.
    pub sort: Option<String>,
}

fn order_by(sort: Option<&str>, allowed: &[&str], default: &str) -> Result<String, StoreError> {
    let s = sort.unwrap_or(default);
    let (col, dir) = match s.strip_prefix('-') {
        Some(c) => (c, "DESC"),
        None => (s, "ASC"),
    };
    if !allowed.contains(&col) {
        return Err(StoreError::Conflict(format!(
            "cannot sort by {col:?}; one of {}",
            allowed.join(", ")
        )));
    }
    Ok(format!("ORDER BY {col} {dir}, id {dir}"))
}

fn page<T>(mut items: Vec<T>, opts: &ListOptions) -> Page<T> {
    let next_cursor = if items.len() > opts.limit as usize {
        items.truncate(opts.limit as usize);
        Some((opts.offset + i64::from(opts.limit)).to_string())
    } else {
        None
    };
    Page { items, next_cursor }
}

fn like(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| format!("%{}%", s.to_lowercase()))
}

// ---------------------------------------------------------------------------------------------
// Ad clients (advertisers)

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdClient {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub notes: String,
    pub owner_id: Option<String>,
    /// Users of role `client` linked to this advertiser.
    pub user_ids: Vec<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AdClientFields {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AdClientFilter {
    /// Substring of the name.
    pub q: Option<String>,
    /// Exact e-mail (lower-cased).
    pub email: Option<String>,
}

const CLIENT_COLUMNS: &str =
    "id, organization_id, name, email, phone, notes, owner_id, version, created_at, updated_at";

fn client_row(r: &sqlx::any::AnyRow) -> Result<AdClient, sqlx::Error> {
    Ok(AdClient {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        notes: r.try_get("notes")?,
        owner_id: r.try_get("owner_id")?,
        user_ids: Vec::new(),
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// SQL visibility of campaigns (`c` alias) for a scope: binds seller, seller, seller, client
/// user, client user, nothing.
const CAMPAIGN_VISIBLE: &str = "(? IS NULL OR c.owner_id = ? OR c.id IN \
     (SELECT campaign_id FROM ad_campaign_team WHERE user_id = ?)) \
     AND (? IS NULL OR c.client_id = (SELECT client_id FROM ad_client_users WHERE user_id = ?)) \
     AND ? = 0";

impl Db {
    pub async fn create_ad_client(
        &self,
        organization_id: &str,
        owner_id: Option<&str>,
        f: &AdClientFields,
    ) -> Result<AdClient, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(format!(
            "INSERT INTO ad_clients ({CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        ));
        self.execute(
            "ad_client_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(f.name.as_deref().unwrap_or(""))
                .bind(f.email.as_deref().unwrap_or(""))
                .bind(f.phone.as_deref().unwrap_or(""))
                .bind(f.notes.as_deref().unwrap_or(""))
                .bind(owner_id)
                .bind(now)
                .bind(now),
        )
        .await?;
        self.ad_client(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn ad_client(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<AdClient>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CLIENT_COLUMNS} FROM ad_clients WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "ad_client_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        let Some(mut c) = row.as_ref().map(client_row).transpose()? else {
            return Ok(None);
        };
        let q =
            self.sql("SELECT user_id FROM ad_client_users WHERE client_id = ? ORDER BY user_id");
        let rows = self
            .timed(
                "ad_client_users",
                sqlx::query(&q).bind(id).fetch_all(self.pool()),
            )
            .await?;
        c.user_ids = rows
            .iter()
            .map(|r| r.try_get("user_id"))
            .collect::<Result<_, _>>()?;
        Ok(Some(c))
    }

    pub async fn list_ad_clients(
        &self,
        organization_id: &str,
        scope: Scope<'_>,
        filter: &AdClientFilter,
        opts: &ListOptions,
    ) -> Result<Page<AdClient>, StoreError> {
        let order = order_by(
            opts.sort.as_deref(),
            &["name", "email", "created_at", "updated_at"],
            "name",
        )?;
        let q = like(&filter.q);
        let seller = scope.seller();
        let client_user = scope.client_user();
        let sql = self.sql(format!(
            "SELECT {CLIENT_COLUMNS} FROM ad_clients WHERE organization_id = ? \
             AND (? IS NULL OR LOWER(name) LIKE ?) AND (? IS NULL OR email = ?) \
             AND (? IS NULL OR owner_id = ? OR id IN (SELECT c.client_id FROM ad_campaigns c \
                  WHERE c.owner_id = ? OR c.id IN \
                  (SELECT campaign_id FROM ad_campaign_team WHERE user_id = ?))) \
             AND (? IS NULL OR id = (SELECT client_id FROM ad_client_users WHERE user_id = ?)) \
             AND ? = 0 AND ? = 0 {order} LIMIT ? OFFSET ?"
        ));
        let email = filter.email.as_ref().map(|e| e.to_lowercase());
        let rows = self
            .timed(
                "ad_client_list",
                sqlx::query(&sql)
                    .bind(organization_id)
                    .bind(q.as_deref())
                    .bind(q.as_deref())
                    .bind(email.as_deref())
                    .bind(email.as_deref())
                    .bind(seller)
                    .bind(seller)
                    .bind(seller)
                    .bind(seller)
                    .bind(client_user)
                    .bind(client_user)
                    .bind(scope.nothing())
                    .bind(i64::from(scope.talent().is_some()))
                    .bind(i64::from(opts.limit) + 1)
                    .bind(opts.offset)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows.iter().map(client_row).collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, opts))
    }

    pub async fn update_ad_client(
        &self,
        organization_id: &str,
        id: &str,
        f: &AdClientFields,
        expected_version: Option<i64>,
    ) -> Result<AdClient, StoreError> {
        let q = self.sql(
            "UPDATE ad_clients SET name = COALESCE(?, name), email = COALESCE(?, email), \
             phone = COALESCE(?, phone), notes = COALESCE(?, notes), version = version + 1, \
             updated_at = ? WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "ad_client_update",
                sqlx::query(&q)
                    .bind(f.name.as_deref())
                    .bind(f.email.as_deref())
                    .bind(f.phone.as_deref())
                    .bind(f.notes.as_deref())
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await?;
        self.after_update(
            r.rows_affected(),
            self.ad_client(organization_id, id).await?,
        )
    }

    /// Deletes the advertiser; refused while campaigns of it exist.
    pub async fn delete_ad_client(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("SELECT COUNT(*) AS n FROM ad_campaigns WHERE client_id = ?");
        let n: i64 = self
            .timed(
                "ad_client_campaigns",
                sqlx::query(&q).bind(id).fetch_one(self.pool()),
            )
            .await?
            .try_get("n")?;
        if n > 0 {
            return Err(StoreError::Conflict(format!(
                "the client has {n} campaign(s); delete or move them first"
            )));
        }
        let q = self.sql("DELETE FROM ad_clients WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "ad_client_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Links a user (of role `client`) to an advertiser, replacing any previous link.
    pub async fn link_ad_client_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let q = self.sql("DELETE FROM ad_client_users WHERE user_id = ?");
        self.execute("ad_client_unlink", sqlx::query(&q).bind(user_id))
            .await?;
        let q = self.sql("INSERT INTO ad_client_users (user_id, client_id) VALUES (?, ?)");
        self.execute(
            "ad_client_link",
            sqlx::query(&q).bind(user_id).bind(client_id),
        )
        .await?;
        Ok(())
    }

    pub async fn unlink_ad_client_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM ad_client_users WHERE user_id = ? AND client_id = ?");
        let r = self
            .execute(
                "ad_client_unlink",
                sqlx::query(&q).bind(user_id).bind(client_id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The advertiser a client user is linked to.
    pub async fn ad_client_of_user(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let q = self.sql("SELECT client_id FROM ad_client_users WHERE user_id = ?");
        let row = self
            .timed(
                "ad_client_of_user",
                sqlx::query(&q).bind(user_id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.map(|r| r.try_get("client_id")).transpose()?)
    }

    fn after_update<T>(&self, affected: u64, now: Option<T>) -> Result<T, StoreError> {
        match (affected, now) {
            (_, None) => Err(StoreError::NotFound),
            (0, Some(_)) => Err(StoreError::Conflict(
                "changed by someone else; reload it and try again".into(),
            )),
            (_, Some(v)) => Ok(v),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shows

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ShowFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
}

const SHOW_COLUMNS: &str =
    "id, organization_id, name, description, category, version, created_at, updated_at";

fn show_row(r: &sqlx::any::AnyRow) -> Result<Show, sqlx::Error> {
    Ok(Show {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        category: r.try_get("category")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    pub async fn create_show(
        &self,
        organization_id: &str,
        f: &ShowFields,
    ) -> Result<Show, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(format!(
            "INSERT INTO ad_shows ({SHOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
        ));
        self.execute(
            "ad_show_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(f.name.as_deref().unwrap_or(""))
                .bind(f.description.as_deref().unwrap_or(""))
                .bind(f.category.as_deref().unwrap_or(""))
                .bind(now)
                .bind(now),
        )
        .await?;
        self.show(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn show(&self, organization_id: &str, id: &str) -> Result<Option<Show>, StoreError> {
        let q = self.sql(format!(
            "SELECT {SHOW_COLUMNS} FROM ad_shows WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "ad_show_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(show_row).transpose()?)
    }

    pub async fn list_shows(
        &self,
        organization_id: &str,
        scope: Scope<'_>,
        q: &Option<String>,
        opts: &ListOptions,
    ) -> Result<Page<Show>, StoreError> {
        let order = order_by(
            opts.sort.as_deref(),
            &["name", "category", "created_at", "updated_at"],
            "name",
        )?;
        let q = like(q);
        let talent = scope.talent();
        let sql = self.sql(format!(
            "SELECT {SHOW_COLUMNS} FROM ad_shows WHERE organization_id = ? \
             AND (? IS NULL OR LOWER(name) LIKE ?) \
             AND (? IS NULL OR id IN (SELECT e.show_id FROM ad_episodes e JOIN ad_episode_talent t \
                  ON t.episode_id = e.id WHERE t.user_id = ?)) \
             AND ? = 0 {order} LIMIT ? OFFSET ?"
        ));
        let hidden = i64::from(!matches!(scope, Scope::All | Scope::Talent(_)));
        let rows = self
            .timed(
                "ad_show_list",
                sqlx::query(&sql)
                    .bind(organization_id)
                    .bind(q.as_deref())
                    .bind(q.as_deref())
                    .bind(talent)
                    .bind(talent)
                    .bind(hidden)
                    .bind(i64::from(opts.limit) + 1)
                    .bind(opts.offset)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows.iter().map(show_row).collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, opts))
    }

    pub async fn update_show(
        &self,
        organization_id: &str,
        id: &str,
        f: &ShowFields,
        expected_version: Option<i64>,
    ) -> Result<Show, StoreError> {
        let q = self.sql(
            "UPDATE ad_shows SET name = COALESCE(?, name), description = COALESCE(?, description), \
             category = COALESCE(?, category), version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "ad_show_update",
                sqlx::query(&q)
                    .bind(f.name.as_deref())
                    .bind(f.description.as_deref())
                    .bind(f.category.as_deref())
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await?;
        self.after_update(r.rows_affected(), self.show(organization_id, id).await?)
    }

    pub async fn delete_show(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM ad_shows WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "ad_show_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Episodes

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    pub id: String,
    pub organization_id: String,
    pub show_id: String,
    pub title: String,
    pub description: String,
    pub air_date: Option<String>,
    pub record_date: Option<String>,
    /// `draft`, `scheduled`, `recorded`, `published`.
    pub status: String,
    /// A Lunora recording of this episode.
    pub recording_id: Option<String>,
    /// Assigned talent (user ids).
    pub talent_ids: Vec<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of an episode; `None` keeps the stored value. For the optional columns the inner
/// `None` clears them.
#[derive(Debug, Clone, Default)]
pub struct EpisodeFields {
    pub show_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub air_date: Option<Option<String>>,
    pub record_date: Option<Option<String>>,
    pub status: Option<String>,
    pub recording_id: Option<Option<String>>,
    pub talent_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct EpisodeFilter {
    pub show_id: Option<String>,
    pub status: Option<String>,
    /// Air date on or after (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Air date on or before.
    pub to: Option<String>,
    /// Substring of the title.
    pub q: Option<String>,
    /// Episodes this talent is assigned to.
    pub talent_id: Option<String>,
}

const EPISODE_COLUMNS: &str = "id, organization_id, show_id, title, description, air_date, \
     record_date, status, recording_id, version, created_at, updated_at";

fn episode_row(r: &sqlx::any::AnyRow) -> Result<Episode, sqlx::Error> {
    Ok(Episode {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        show_id: r.try_get("show_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        air_date: r.try_get("air_date")?,
        record_date: r.try_get("record_date")?,
        status: r.try_get("status")?,
        recording_id: r.try_get("recording_id")?,
        talent_ids: Vec::new(),
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    pub async fn create_episode(
        &self,
        organization_id: &str,
        f: &EpisodeFields,
    ) -> Result<Episode, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(format!(
            "INSERT INTO ad_episodes ({EPISODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        ));
        self.execute(
            "ad_episode_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(f.show_id.as_deref().unwrap_or(""))
                .bind(f.title.as_deref().unwrap_or(""))
                .bind(f.description.as_deref().unwrap_or(""))
                .bind(f.air_date.clone().flatten())
                .bind(f.record_date.clone().flatten())
                .bind(f.status.as_deref().unwrap_or("draft"))
                .bind(f.recording_id.clone().flatten())
                .bind(now)
                .bind(now),
        )
        .await?;
        if let Some(t) = &f.talent_ids {
            self.set_episode_talent(&id, t).await?;
        }
        self.episode(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn set_episode_talent(
        &self,
        episode_id: &str,
        talent: &[String],
    ) -> Result<(), StoreError> {
        let q = self.sql("DELETE FROM ad_episode_talent WHERE episode_id = ?");
        self.execute("ad_episode_talent_clear", sqlx::query(&q).bind(episode_id))
            .await?;
        let q = self.sql("INSERT INTO ad_episode_talent (episode_id, user_id) VALUES (?, ?)");
        for user in talent {
            self.execute(
                "ad_episode_talent_add",
                sqlx::query(&q).bind(episode_id).bind(user),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn episode(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Episode>, StoreError> {
        let q = self.sql(format!(
            "SELECT {EPISODE_COLUMNS} FROM ad_episodes WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "ad_episode_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        let Some(mut e) = row.as_ref().map(episode_row).transpose()? else {
            return Ok(None);
        };
        e.talent_ids = self.episode_talent(id).await?;
        Ok(Some(e))
    }

    async fn episode_talent(&self, episode_id: &str) -> Result<Vec<String>, StoreError> {
        let q =
            self.sql("SELECT user_id FROM ad_episode_talent WHERE episode_id = ? ORDER BY user_id");
        let rows = self
            .timed(
                "ad_episode_talent",
                sqlx::query(&q).bind(episode_id).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("user_id"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn list_episodes(
        &self,
        organization_id: &str,
        scope: Scope<'_>,
        filter: &EpisodeFilter,
        opts: &ListOptions,
    ) -> Result<Page<Episode>, StoreError> {
        let order = order_by(
            opts.sort.as_deref(),
            &[
                "air_date",
                "record_date",
                "title",
                "status",
                "created_at",
                "updated_at",
            ],
            "air_date",
        )?;
        let q = like(&filter.q);
        let talent = scope.talent();
        let hidden = i64::from(!matches!(scope, Scope::All | Scope::Talent(_)));
        let sql = self.sql(format!(
            "SELECT {EPISODE_COLUMNS} FROM ad_episodes WHERE organization_id = ? \
             AND (? IS NULL OR show_id = ?) AND (? IS NULL OR status = ?) \
             AND (? IS NULL OR air_date >= ?) AND (? IS NULL OR air_date <= ?) \
             AND (? IS NULL OR LOWER(title) LIKE ?) \
             AND (? IS NULL OR id IN (SELECT episode_id FROM ad_episode_talent WHERE user_id = ?)) \
             AND (? IS NULL OR id IN (SELECT episode_id FROM ad_episode_talent WHERE user_id = ?)) \
             AND ? = 0 {order} LIMIT ? OFFSET ?"
        ));
        let rows = self
            .timed(
                "ad_episode_list",
                sqlx::query(&sql)
                    .bind(organization_id)
                    .bind(filter.show_id.as_deref())
                    .bind(filter.show_id.as_deref())
                    .bind(filter.status.as_deref())
                    .bind(filter.status.as_deref())
                    .bind(filter.from.as_deref())
                    .bind(filter.from.as_deref())
                    .bind(filter.to.as_deref())
                    .bind(filter.to.as_deref())
                    .bind(q.as_deref())
                    .bind(q.as_deref())
                    .bind(filter.talent_id.as_deref())
                    .bind(filter.talent_id.as_deref())
                    .bind(talent)
                    .bind(talent)
                    .bind(hidden)
                    .bind(i64::from(opts.limit) + 1)
                    .bind(opts.offset)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows
            .iter()
            .map(episode_row)
            .collect::<Result<Vec<_>, _>>()?;
        for e in &mut items {
            e.talent_ids = self.episode_talent(&e.id).await?;
        }
        Ok(page(items, opts))
    }

    pub async fn update_episode(
        &self,
        organization_id: &str,
        id: &str,
        f: &EpisodeFields,
        expected_version: Option<i64>,
    ) -> Result<Episode, StoreError> {
        let q = self.sql(
            "UPDATE ad_episodes SET show_id = COALESCE(?, show_id), title = COALESCE(?, title), \
             description = COALESCE(?, description), \
             air_date = CASE WHEN ? = 1 THEN ? ELSE air_date END, \
             record_date = CASE WHEN ? = 1 THEN ? ELSE record_date END, \
             status = COALESCE(?, status), \
             recording_id = CASE WHEN ? = 1 THEN ? ELSE recording_id END, \
             version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "ad_episode_update",
                sqlx::query(&q)
                    .bind(f.show_id.as_deref())
                    .bind(f.title.as_deref())
                    .bind(f.description.as_deref())
                    .bind(i64::from(f.air_date.is_some()))
                    .bind(f.air_date.clone().flatten())
                    .bind(i64::from(f.record_date.is_some()))
                    .bind(f.record_date.clone().flatten())
                    .bind(f.status.as_deref())
                    .bind(i64::from(f.recording_id.is_some()))
                    .bind(f.recording_id.clone().flatten())
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await?;
        if r.rows_affected() > 0 {
            if let Some(t) = &f.talent_ids {
                self.set_episode_talent(id, t).await?;
            }
        }
        self.after_update(r.rows_affected(), self.episode(organization_id, id).await?)
    }

    pub async fn delete_episode(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM ad_episodes WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "ad_episode_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Campaigns and account teams

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub user_id: String,
    /// Every member may view; these add to it.
    pub can_edit: bool,
    pub can_manage_team: bool,
    pub added_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    pub organization_id: String,
    pub client_id: String,
    pub name: String,
    /// `draft`, `active`, `paused`, `completed`, `cancelled`.
    pub status: String,
    pub budget_cents: i64,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub owner_id: Option<String>,
    pub team: Vec<TeamMember>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignFields {
    pub client_id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub budget_cents: Option<i64>,
    pub start_date: Option<Option<String>>,
    pub end_date: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub status: Option<String>,
    pub client_id: Option<String>,
    /// Campaigns running on or after this day (end date ≥ from, or open).
    pub from: Option<String>,
    /// Campaigns starting on or before this day.
    pub to: Option<String>,
    /// Substring of the name.
    pub q: Option<String>,
}

const CAMPAIGN_COLUMNS: &str = "c.id, c.organization_id, c.client_id, c.name, c.status, \
     c.budget_cents, c.start_date, c.end_date, c.owner_id, c.version, c.created_at, c.updated_at";

fn campaign_row(r: &sqlx::any::AnyRow) -> Result<Campaign, sqlx::Error> {
    Ok(Campaign {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        client_id: r.try_get("client_id")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        budget_cents: r.try_get("budget_cents")?,
        start_date: r.try_get("start_date")?,
        end_date: r.try_get("end_date")?,
        owner_id: r.try_get("owner_id")?,
        team: Vec::new(),
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    pub async fn create_campaign(
        &self,
        organization_id: &str,
        owner_id: Option<&str>,
        f: &CampaignFields,
    ) -> Result<Campaign, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(
            "INSERT INTO ad_campaigns (id, organization_id, client_id, name, status, budget_cents, \
             start_date, end_date, owner_id, version, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        );
        self.execute(
            "ad_campaign_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(f.client_id.as_deref().unwrap_or(""))
                .bind(f.name.as_deref().unwrap_or(""))
                .bind(f.status.as_deref().unwrap_or("draft"))
                .bind(f.budget_cents.unwrap_or(0))
                .bind(f.start_date.clone().flatten())
                .bind(f.end_date.clone().flatten())
                .bind(owner_id)
                .bind(now)
                .bind(now),
        )
        .await?;
        self.campaign(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn campaign(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Campaign>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM ad_campaigns c WHERE c.organization_id = ? AND c.id = ?"
        ));
        let row = self
            .timed(
                "ad_campaign_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        let Some(mut c) = row.as_ref().map(campaign_row).transpose()? else {
            return Ok(None);
        };
        c.team = self.campaign_team(id).await?;
        Ok(Some(c))
    }

    async fn campaign_team(&self, campaign_id: &str) -> Result<Vec<TeamMember>, StoreError> {
        let q = self.sql(
            "SELECT user_id, can_edit, can_manage_team, added_at FROM ad_campaign_team \
             WHERE campaign_id = ? ORDER BY added_at, user_id",
        );
        let rows = self
            .timed(
                "ad_campaign_team",
                sqlx::query(&q).bind(campaign_id).fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TeamMember {
                    user_id: r.try_get("user_id")?,
                    can_edit: r.try_get::<i64, _>("can_edit")? != 0,
                    can_manage_team: r.try_get::<i64, _>("can_manage_team")? != 0,
                    added_at: r.try_get("added_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn list_campaigns(
        &self,
        organization_id: &str,
        scope: Scope<'_>,
        filter: &CampaignFilter,
        opts: &ListOptions,
    ) -> Result<Page<Campaign>, StoreError> {
        let order = order_by(
            opts.sort.as_deref(),
            &[
                "name",
                "status",
                "start_date",
                "end_date",
                "budget_cents",
                "created_at",
                "updated_at",
            ],
            "-created_at",
        )?
        .replace("ORDER BY ", "ORDER BY c.")
        .replace(", id", ", c.id");
        let q = like(&filter.q);
        let seller = scope.seller();
        let client_user = scope.client_user();
        let hidden = i64::from(matches!(scope, Scope::Nothing | Scope::Talent(_)));
        let sql = self.sql(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM ad_campaigns c WHERE c.organization_id = ? \
             AND (? IS NULL OR c.status = ?) AND (? IS NULL OR c.client_id = ?) \
             AND (? IS NULL OR c.end_date IS NULL OR c.end_date >= ?) \
             AND (? IS NULL OR c.start_date IS NULL OR c.start_date <= ?) \
             AND (? IS NULL OR LOWER(c.name) LIKE ?) AND {CAMPAIGN_VISIBLE} \
             {order} LIMIT ? OFFSET ?"
        ));
        let rows = self
            .timed(
                "ad_campaign_list",
                sqlx::query(&sql)
                    .bind(organization_id)
                    .bind(filter.status.as_deref())
                    .bind(filter.status.as_deref())
                    .bind(filter.client_id.as_deref())
                    .bind(filter.client_id.as_deref())
                    .bind(filter.from.as_deref())
                    .bind(filter.from.as_deref())
                    .bind(filter.to.as_deref())
                    .bind(filter.to.as_deref())
                    .bind(q.as_deref())
                    .bind(q.as_deref())
                    .bind(seller)
                    .bind(seller)
                    .bind(seller)
                    .bind(client_user)
                    .bind(client_user)
                    .bind(hidden)
                    .bind(i64::from(opts.limit) + 1)
                    .bind(opts.offset)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows
            .iter()
            .map(campaign_row)
            .collect::<Result<Vec<_>, _>>()?;
        for c in &mut items {
            c.team = self.campaign_team(&c.id).await?;
        }
        Ok(page(items, opts))
    }

    pub async fn update_campaign(
        &self,
        organization_id: &str,
        id: &str,
        f: &CampaignFields,
        expected_version: Option<i64>,
    ) -> Result<Campaign, StoreError> {
        let q = self.sql(
            "UPDATE ad_campaigns SET client_id = COALESCE(?, client_id), name = COALESCE(?, name), \
             status = COALESCE(?, status), budget_cents = COALESCE(?, budget_cents), \
             start_date = CASE WHEN ? = 1 THEN ? ELSE start_date END, \
             end_date = CASE WHEN ? = 1 THEN ? ELSE end_date END, \
             version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "ad_campaign_update",
                sqlx::query(&q)
                    .bind(f.client_id.as_deref())
                    .bind(f.name.as_deref())
                    .bind(f.status.as_deref())
                    .bind(f.budget_cents)
                    .bind(i64::from(f.start_date.is_some()))
                    .bind(f.start_date.clone().flatten())
                    .bind(i64::from(f.end_date.is_some()))
                    .bind(f.end_date.clone().flatten())
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await?;
        self.after_update(r.rows_affected(), self.campaign(organization_id, id).await?)
    }

    pub async fn delete_campaign(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM ad_campaigns WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "ad_campaign_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Adds or updates a team member; bumps the campaign's version (the team is part of it).
    pub async fn put_team_member(
        &self,
        campaign_id: &str,
        user_id: &str,
        can_edit: bool,
        can_manage_team: bool,
    ) -> Result<(), StoreError> {
        let q = self.sql("DELETE FROM ad_campaign_team WHERE campaign_id = ? AND user_id = ?");
        self.execute(
            "ad_team_replace",
            sqlx::query(&q).bind(campaign_id).bind(user_id),
        )
        .await?;
        let q = self.sql(
            "INSERT INTO ad_campaign_team (campaign_id, user_id, can_edit, can_manage_team, added_at) \
             VALUES (?, ?, ?, ?, ?)",
        );
        self.execute(
            "ad_team_add",
            sqlx::query(&q)
                .bind(campaign_id)
                .bind(user_id)
                .bind(i64::from(can_edit))
                .bind(i64::from(can_manage_team))
                .bind(now_ms()),
        )
        .await?;
        self.bump_campaign(campaign_id).await
    }

    pub async fn remove_team_member(
        &self,
        campaign_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM ad_campaign_team WHERE campaign_id = ? AND user_id = ?");
        let r = self
            .execute(
                "ad_team_remove",
                sqlx::query(&q).bind(campaign_id).bind(user_id),
            )
            .await?;
        if r.rows_affected() > 0 {
            self.bump_campaign(campaign_id).await?;
        }
        Ok(r.rows_affected() > 0)
    }

    async fn bump_campaign(&self, campaign_id: &str) -> Result<(), StoreError> {
        let q =
            self.sql("UPDATE ad_campaigns SET version = version + 1, updated_at = ? WHERE id = ?");
        self.execute(
            "ad_campaign_bump",
            sqlx::query(&q).bind(now_ms()).bind(campaign_id),
        )
        .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Availability

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub id: String,
    pub user_id: String,
    pub start_date: String,
    pub end_date: String,
    pub available: bool,
    pub note: String,
    pub created_at: i64,
}

fn availability_row(r: &sqlx::any::AnyRow) -> Result<Availability, sqlx::Error> {
    Ok(Availability {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        start_date: r.try_get("start_date")?,
        end_date: r.try_get("end_date")?,
        available: r.try_get::<i64, _>("available")? != 0,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    pub async fn create_availability(
        &self,
        organization_id: &str,
        user_id: &str,
        start_date: &str,
        end_date: &str,
        available: bool,
        note: &str,
    ) -> Result<Availability, StoreError> {
        let id = new_id();
        let q = self.sql(
            "INSERT INTO ad_availability (id, organization_id, user_id, start_date, end_date, \
             available, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let now = now_ms();
        self.execute(
            "ad_availability_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(user_id)
                .bind(start_date)
                .bind(end_date)
                .bind(i64::from(available))
                .bind(note)
                .bind(now),
        )
        .await?;
        Ok(Availability {
            id,
            user_id: user_id.into(),
            start_date: start_date.into(),
            end_date: end_date.into(),
            available,
            note: note.into(),
            created_at: now,
        })
    }

    /// Availability of one user (or everyone with `None`), by start date.
    pub async fn list_availability(
        &self,
        organization_id: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<Availability>, StoreError> {
        let q = self.sql(
            "SELECT id, user_id, start_date, end_date, available, note, created_at \
             FROM ad_availability WHERE organization_id = ? AND (? IS NULL OR user_id = ?) \
             ORDER BY start_date, id LIMIT 1000",
        );
        let rows = self
            .timed(
                "ad_availability_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(user_id)
                    .bind(user_id)
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(availability_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn availability(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Availability>, StoreError> {
        let q = self.sql(
            "SELECT id, user_id, start_date, end_date, available, note, created_at \
             FROM ad_availability WHERE organization_id = ? AND id = ?",
        );
        let row = self
            .timed(
                "ad_availability_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(availability_row).transpose()?)
    }

    pub async fn delete_availability(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM ad_availability WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "ad_availability_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Activities

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: String,
    pub organization_id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub actor_id: Option<String>,
    pub action: String,
    /// JSON text of the entity before the change.
    pub before: Option<String>,
    /// JSON text of the entity after the change.
    pub after: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    /// Created at or after (unix ms).
    pub since: Option<i64>,
}

fn activity_row(r: &sqlx::any::AnyRow) -> Result<Activity, sqlx::Error> {
    Ok(Activity {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        entity_type: r.try_get("entity_type")?,
        entity_id: r.try_get("entity_id")?,
        actor_id: r.try_get("actor_id")?,
        action: r.try_get("action")?,
        before: r.try_get("before_json")?,
        after: r.try_get("after_json")?,
        created_at: r.try_get("created_at")?,
    })
}

const ACTIVITY_COLUMNS: &str = "id, organization_id, entity_type, entity_id, actor_id, action, \
     before_json, after_json, created_at";

impl Db {
    #[allow(clippy::too_many_arguments)]
    pub async fn record_activity(
        &self,
        organization_id: &str,
        entity_type: &str,
        entity_id: &str,
        actor_id: Option<&str>,
        action: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<Activity, StoreError> {
        let id = new_id();
        let now = now_ms();
        let q = self.sql(format!(
            "INSERT INTO ad_activities ({ACTIVITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        self.execute(
            "ad_activity_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(entity_type)
                .bind(entity_id)
                .bind(actor_id)
                .bind(action)
                .bind(before)
                .bind(after)
                .bind(now),
        )
        .await?;
        Ok(Activity {
            id,
            organization_id: organization_id.into(),
            entity_type: entity_type.into(),
            entity_id: entity_id.into(),
            actor_id: actor_id.map(str::to_owned),
            action: action.into(),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
            created_at: now,
        })
    }

    pub async fn activity(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Activity>, StoreError> {
        let q = self.sql(format!(
            "SELECT {ACTIVITY_COLUMNS} FROM ad_activities WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "ad_activity_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(activity_row).transpose()?)
    }

    /// Newest first.
    pub async fn list_activities(
        &self,
        organization_id: &str,
        filter: &ActivityFilter,
        opts: &ListOptions,
    ) -> Result<Page<Activity>, StoreError> {
        let q = self.sql(format!(
            "SELECT {ACTIVITY_COLUMNS} FROM ad_activities WHERE organization_id = ? \
             AND (? IS NULL OR entity_type = ?) AND (? IS NULL OR entity_id = ?) \
             AND (? IS NULL OR actor_id = ?) AND (? IS NULL OR created_at >= ?) \
             ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        ));
        let rows = self
            .timed(
                "ad_activity_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(filter.entity_type.as_deref())
                    .bind(filter.entity_type.as_deref())
                    .bind(filter.entity_id.as_deref())
                    .bind(filter.entity_id.as_deref())
                    .bind(filter.actor_id.as_deref())
                    .bind(filter.actor_id.as_deref())
                    .bind(filter.since)
                    .bind(filter.since)
                    .bind(i64::from(opts.limit) + 1)
                    .bind(opts.offset)
                    .fetch_all(self.pool()),
            )
            .await?;
        let items = rows
            .iter()
            .map(activity_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, opts))
    }

    /// Deletes activities older than `cutoff` (unix ms); answers how many.
    pub async fn purge_activities(&self, cutoff: i64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM ad_activities WHERE created_at < ?");
        let r = self
            .execute("ad_activity_purge", sqlx::query(&q).bind(cutoff))
            .await?;
        Ok(r.rows_affected())
    }
}
