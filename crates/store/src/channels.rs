//! Channels and their inputs.

use sqlx::Row;

use crate::crypto::{hash_secret, last4, SecretBox};
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    pub organization_id: String,
    pub owner_id: Option<String>,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInput {
    pub id: String,
    pub channel_id: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// `rtmp` or `srt`.
    pub protocol: String,
    pub publish_key_last4: String,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewChannel<'a> {
    pub organization_id: &'a str,
    pub owner_id: Option<&'a str>,
    pub name: &'a str,
    pub description: &'a str,
    pub visibility: &'a str,
}

/// Fields of a channel a client may change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<String>,
}

/// One page of a list, with the cursor of the next page when there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

const CHANNEL_COLUMNS: &str =
    "id, organization_id, owner_id, name, description, visibility, version, created_at, updated_at";

fn channel_from_row(r: &sqlx::any::AnyRow) -> Result<Channel, sqlx::Error> {
    Ok(Channel {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        owner_id: r.try_get("owner_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        visibility: r.try_get("visibility")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const INPUT_COLUMNS: &str =
    "id, channel_id, role, protocol, publish_key_last4, enabled, created_at";

fn input_from_row(r: &sqlx::any::AnyRow) -> Result<ChannelInput, sqlx::Error> {
    let enabled: i64 = r.try_get("enabled")?;
    Ok(ChannelInput {
        id: r.try_get("id")?,
        channel_id: r.try_get("channel_id")?,
        role: r.try_get("role")?,
        protocol: r.try_get("protocol")?,
        publish_key_last4: r.try_get("publish_key_last4")?,
        enabled: enabled != 0,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Creates a channel with its primary RTMP input, whose publish key is `publish_key`
    /// (stored hashed for lookup and sealed for reveal, never in clear).
    pub async fn create_channel(
        &self,
        new: &NewChannel<'_>,
        publish_key: &str,
        secrets: &SecretBox,
    ) -> Result<(Channel, Vec<ChannelInput>), StoreError> {
        let mut tx = self.pool().begin().await?;
        let id = self
            .insert_channel(&mut tx, new, publish_key, secrets)
            .await?;
        tx.commit().await?;
        self.cameras_or_channels_changed();
        let channel = self
            .channel(new.organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let inputs = self.channel_inputs(&id).await?;
        Ok((channel, inputs))
    }

    /// Inserts a channel and its primary RTMP input inside `tx`; answers the channel id.
    pub(crate) async fn insert_channel(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        new: &NewChannel<'_>,
        publish_key: &str,
        secrets: &SecretBox,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let id = new_id();
        let q = self.sql(format!(
            "INSERT INTO channels ({CHANNEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)"
        ));
        sqlx::query(&q)
            .bind(&id)
            .bind(new.organization_id)
            .bind(new.owner_id)
            .bind(new.name)
            .bind(new.description)
            .bind(new.visibility)
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        let q = self.sql(
            "INSERT INTO channel_inputs (id, channel_id, role, protocol, publish_key_hash, \
             publish_key_sealed, publish_key_last4, enabled, created_at) \
             VALUES (?, ?, 'primary', 'rtmp', ?, ?, ?, 1, ?)",
        );
        sqlx::query(&q)
            .bind(new_id())
            .bind(&id)
            .bind(hash_secret(publish_key))
            .bind(secrets.seal(publish_key))
            .bind(last4(publish_key))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(id)
    }

    /// Replaces the publish key of a channel input; the old key stops working at once.
    pub async fn rotate_input_key(
        &self,
        channel_id: &str,
        role: &str,
        publish_key: &str,
        secrets: &SecretBox,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE channel_inputs SET publish_key_hash = ?, publish_key_sealed = ?, \
             publish_key_last4 = ? WHERE channel_id = ? AND role = ?",
        );
        let r = self
            .execute(
                "input_rotate_key",
                sqlx::query(&q)
                    .bind(hash_secret(publish_key))
                    .bind(secrets.seal(publish_key))
                    .bind(last4(publish_key))
                    .bind(channel_id)
                    .bind(role),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A channel of `organization_id`; another organization's id is simply not found.
    pub async fn channel(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Channel>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "channel_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(channel_from_row).transpose()?)
    }

    /// A channel by id in any organization — for the media engine's checks, never for answering
    /// a client (use [`Db::channel`], which is scoped to the caller's organization).
    pub async fn channel_any_org(&self, id: &str) -> Result<Option<Channel>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ?"
        ));
        let row = self
            .timed(
                "channel_get_any",
                sqlx::query(&q).bind(id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(channel_from_row).transpose()?)
    }

    /// Channels of an organization in creation order, `limit` at a time after `cursor`;
    /// `owner_id` narrows to one owner's channels.
    pub async fn list_channels(
        &self,
        organization_id: &str,
        owner_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Channel>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE organization_id = ? \
             AND (? IS NULL OR owner_id = ?) AND id > ? ORDER BY id LIMIT ?"
        ));
        let rows = self
            .timed(
                "channel_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(owner_id)
                    .bind(owner_id)
                    .bind(cursor.unwrap_or(""))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows
            .iter()
            .map(channel_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Applies `patch` if the stored version is `expected_version` (when given); answers the
    /// updated channel, `Conflict` on a version mismatch, `NotFound` for a foreign id.
    pub async fn update_channel(
        &self,
        organization_id: &str,
        id: &str,
        patch: &ChannelPatch,
        expected_version: Option<i64>,
    ) -> Result<Channel, StoreError> {
        let q = self.sql(
            "UPDATE channels SET name = COALESCE(?, name), description = COALESCE(?, description), \
             visibility = COALESCE(?, visibility), version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "channel_update",
                sqlx::query(&q)
                    .bind(patch.name.as_deref())
                    .bind(patch.description.as_deref())
                    .bind(patch.visibility.as_deref())
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await?;
        if r.rows_affected() == 0 {
            return match self.channel(organization_id, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "the channel was changed by someone else; reload it and try again".into(),
                )),
                None => Err(StoreError::NotFound),
            };
        }
        self.channel(organization_id, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn delete_channel(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM channels WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "channel_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        self.cameras_or_channels_changed();
        Ok(r.rows_affected() == 1)
    }

    pub async fn channel_inputs(&self, channel_id: &str) -> Result<Vec<ChannelInput>, StoreError> {
        let q = self.sql(format!(
            "SELECT {INPUT_COLUMNS} FROM channel_inputs WHERE channel_id = ? ORDER BY role"
        ));
        let rows = self
            .timed(
                "channel_inputs",
                sqlx::query(&q).bind(channel_id).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(input_from_row).collect::<Result<_, _>>()?)
    }

    /// The input a publish key opens, with its channel's organization.
    pub async fn input_by_publish_key(
        &self,
        publish_key: &str,
    ) -> Result<Option<(ChannelInput, String)>, StoreError> {
        let q = self.sql(
            "SELECT i.id, i.channel_id, i.role, i.protocol, i.publish_key_last4, i.enabled, \
             i.created_at, c.organization_id FROM channel_inputs i \
             JOIN channels c ON c.id = i.channel_id WHERE i.publish_key_hash = ?",
        );
        let row = self
            .timed(
                "input_by_key",
                sqlx::query(&q)
                    .bind(hash_secret(publish_key))
                    .fetch_optional(self.pool()),
            )
            .await?;
        match row {
            Some(r) => Ok(Some((input_from_row(&r)?, r.try_get("organization_id")?))),
            None => Ok(None),
        }
    }
}

impl Db {
    /// A channel's stored HLS ladder (a JSON array), any organization — for the media engine.
    /// `Ok(None)`: the channel has none set (or does not exist).
    pub async fn channel_hls_ladder(&self, channel_id: &str) -> Result<Option<String>, StoreError> {
        let q = self.sql("SELECT hls_ladder FROM channels WHERE id = ?");
        let row = self
            .timed(
                "channel_hls_ladder",
                sqlx::query(&q).bind(channel_id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<String>, _>("hls_ladder")?,
            None => None,
        })
    }

    /// Sets (or with `None` resets to the default) the HLS ladder of a channel of
    /// `organization_id`; `NotFound` for a foreign id.
    pub async fn set_channel_hls_ladder(
        &self,
        organization_id: &str,
        id: &str,
        ladder: Option<&str>,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "UPDATE channels SET hls_ladder = ?, updated_at = ? WHERE organization_id = ? AND id = ?",
        );
        let r = self
            .execute(
                "channel_set_hls_ladder",
                sqlx::query(&q)
                    .bind(ladder)
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id),
            )
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
