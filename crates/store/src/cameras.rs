//! IP cameras, each backed by a channel whose primary RTMP input carries the camera's key.

use std::sync::Arc;

use sqlx::Row;

use crate::channels::{NewChannel, Page};
use crate::crypto::SecretBox;
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    pub id: String,
    pub organization_id: String,
    pub channel_id: String,
    pub name: String,
    pub brand: String,
    pub model: String,
    pub serial_number: String,
    pub location: String,
    pub tags: Vec<String>,
    /// Whether an RTSP/SRT pull URL is configured (the URL itself is sealed).
    pub has_pull_url: bool,
    /// `off`, `continuous`.
    pub recording_policy: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewCamera {
    pub name: String,
    pub brand: String,
    pub model: String,
    pub serial_number: String,
    pub location: String,
    pub tags: Vec<String>,
    pub pull_url: Option<String>,
    pub recording_policy: String,
    pub enabled: bool,
}

/// Changes to a camera; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct CameraPatch {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub location: Option<String>,
    pub tags: Option<Vec<String>>,
    pub recording_policy: Option<String>,
    pub enabled: Option<bool>,
}

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct CameraFilter {
    pub tag: Option<String>,
    pub location: Option<String>,
    /// Substring of name, brand, model or serial number.
    pub search: Option<String>,
}

const COLUMNS: &str =
    "id, organization_id, channel_id, name, brand, model, serial_number, location, \
     tags, pull_url_sealed, recording_policy, enabled, version, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Camera, sqlx::Error> {
    let tags: String = r.try_get("tags")?;
    Ok(Camera {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        channel_id: r.try_get("channel_id")?,
        name: r.try_get("name")?,
        brand: r.try_get("brand")?,
        model: r.try_get("model")?,
        serial_number: r.try_get("serial_number")?,
        location: r.try_get("location")?,
        tags: split_tags(&tags),
        has_pull_url: r.try_get::<Option<String>, _>("pull_url_sealed")?.is_some(),
        recording_policy: r.try_get("recording_policy")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Tags are stored as `,a,b,` so that `LIKE '%,tag,%'` finds one exactly.
fn join_tags(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(",{},", tags.join(","))
    }
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Db {
    /// Creates the camera and its channel in one transaction: either both exist or neither.
    pub async fn create_camera(
        &self,
        organization_id: &str,
        owner_id: Option<&str>,
        new: &NewCamera,
        publish_key: &str,
        secrets: &SecretBox,
    ) -> Result<Camera, StoreError> {
        let mut tx = self.pool().begin().await?;
        let channel_id = self
            .insert_channel(
                &mut tx,
                &NewChannel {
                    organization_id,
                    owner_id,
                    name: &new.name,
                    description: "",
                    visibility: "private",
                },
                publish_key,
                secrets,
            )
            .await?;
        let now = now_ms();
        let id = new_id();
        let q = self.sql(format!(
            "INSERT INTO cameras ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        ));
        sqlx::query(&q)
            .bind(&id)
            .bind(organization_id)
            .bind(&channel_id)
            .bind(&new.name)
            .bind(&new.brand)
            .bind(&new.model)
            .bind(&new.serial_number)
            .bind(&new.location)
            .bind(join_tags(&new.tags))
            .bind(new.pull_url.as_deref().map(|u| secrets.seal(u)))
            .bind(&new.recording_policy)
            .bind(i64::from(new.enabled))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::from(e)
                    .unique_as_conflict("a camera with this serial number already exists")
            })?;
        tx.commit().await?;
        self.cameras_or_channels_changed();
        self.camera(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn camera(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Camera>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM cameras WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "camera_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Every camera of every organization (the status monitor's view), from memory while no
    /// camera changed (see `TableCache`).
    pub async fn all_cameras(&self) -> Result<Arc<Vec<Camera>>, StoreError> {
        self.cached_rows(|s| &s.cameras, async {
            let q = self.sql(format!("SELECT {COLUMNS} FROM cameras ORDER BY id"));
            let rows = self
                .timed("camera_all", sqlx::query(&q).fetch_all(self.pool()))
                .await?;
            Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn list_cameras(
        &self,
        organization_id: &str,
        filter: &CameraFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Camera>, StoreError> {
        let tag = filter.tag.as_ref().map(|t| format!("%,{t},%"));
        let search = filter
            .search
            .as_ref()
            .map(|s| format!("%{}%", s.to_lowercase()));
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM cameras WHERE organization_id = ? \
             AND (? IS NULL OR tags LIKE ?) AND (? IS NULL OR location = ?) \
             AND (? IS NULL OR LOWER(name) LIKE ? OR LOWER(brand) LIKE ? OR LOWER(model) LIKE ? \
                  OR LOWER(serial_number) LIKE ?) \
             AND id > ? ORDER BY id LIMIT ?"
        ));
        let rows = self
            .timed(
                "camera_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(tag.as_deref())
                    .bind(tag.as_deref())
                    .bind(filter.location.as_deref())
                    .bind(filter.location.as_deref())
                    .bind(search.as_deref())
                    .bind(search.as_deref())
                    .bind(search.as_deref())
                    .bind(search.as_deref())
                    .bind(search.as_deref())
                    .bind(cursor.unwrap_or(""))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(self.pool()),
            )
            .await?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn update_camera(
        &self,
        organization_id: &str,
        id: &str,
        patch: &CameraPatch,
        expected_version: Option<i64>,
    ) -> Result<Camera, StoreError> {
        let q = self.sql(
            "UPDATE cameras SET name = COALESCE(?, name), brand = COALESCE(?, brand), \
             model = COALESCE(?, model), serial_number = COALESCE(?, serial_number), \
             location = COALESCE(?, location), tags = COALESCE(?, tags), \
             recording_policy = COALESCE(?, recording_policy), enabled = COALESCE(?, enabled), \
             version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "camera_update",
                sqlx::query(&q)
                    .bind(patch.name.as_deref())
                    .bind(patch.brand.as_deref())
                    .bind(patch.model.as_deref())
                    .bind(patch.serial_number.as_deref())
                    .bind(patch.location.as_deref())
                    .bind(patch.tags.as_deref().map(join_tags))
                    .bind(patch.recording_policy.as_deref())
                    .bind(patch.enabled.map(i64::from))
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await
            .map_err(|e| e.unique_as_conflict("a camera with this serial number already exists"))?;
        if r.rows_affected() > 0 {
            self.cameras_or_channels_changed();
        }
        if r.rows_affected() == 0 {
            return match self.camera(organization_id, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "the camera was changed by someone else; reload it and try again".into(),
                )),
                None => Err(StoreError::NotFound),
            };
        }
        if let Some(name) = &patch.name {
            let q = self.sql(
                "UPDATE channels SET name = ? WHERE id = (SELECT channel_id FROM cameras WHERE id = ?)",
            );
            self.execute("camera_rename_channel", sqlx::query(&q).bind(name).bind(id))
                .await?;
        }
        if let Some(enabled) = patch.enabled {
            let q = self.sql(
                "UPDATE channel_inputs SET enabled = ? \
                 WHERE channel_id = (SELECT channel_id FROM cameras WHERE id = ?)",
            );
            self.execute(
                "camera_enable_inputs",
                sqlx::query(&q).bind(i64::from(enabled)).bind(id),
            )
            .await?;
        }
        self.camera(organization_id, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes the camera with its channel.
    pub async fn delete_camera(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(camera) = self.camera(organization_id, id).await? else {
            return Ok(false);
        };
        self.delete_channel(organization_id, &camera.channel_id)
            .await
    }
}

impl Db {
    /// The pull URL of a camera and the publish key of its channel's primary input, opened
    /// with the master key; `None` without a pull URL.
    pub async fn camera_pull_secrets(
        &self,
        camera_id: &str,
        secrets: &crate::crypto::SecretBox,
    ) -> Result<Option<(String, String)>, StoreError> {
        let q = self.sql(
            "SELECT c.pull_url_sealed, i.publish_key_sealed FROM cameras c \
             JOIN channel_inputs i ON i.channel_id = c.channel_id AND i.role = 'primary' \
             WHERE c.id = ? AND c.pull_url_sealed IS NOT NULL",
        );
        let row = self
            .timed(
                "camera_pull_secrets",
                sqlx::query(&q).bind(camera_id).fetch_optional(self.pool()),
            )
            .await?;
        match row {
            Some(r) => {
                let url: String = r.try_get("pull_url_sealed")?;
                let key: String = r.try_get("publish_key_sealed")?;
                Ok(Some((secrets.open(&url)?, secrets.open(&key)?)))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::DbConfig;
    use std::time::Duration;

    fn camera(name: &str) -> NewCamera {
        NewCamera {
            name: name.into(),
            recording_policy: "off".into(),
            enabled: true,
            ..NewCamera::default()
        }
    }

    /// The monitors' list of every camera is served from memory, yet shows a change made
    /// through the store at once.
    #[tokio::test]
    async fn the_camera_snapshot_follows_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/lunora.db", dir.path().display());
        let db = Db::open(&DbConfig::new(&url)).await.unwrap();
        let secrets = SecretBox::new([7; 32]);
        let org = db.create_organization("acme", "Acme").await.unwrap();
        assert!(db.all_cameras().await.unwrap().is_empty());

        let cam = db
            .create_camera(&org.id, None, &camera("Gate"), "key-1", &secrets)
            .await
            .unwrap();
        let first = db.all_cameras().await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            Arc::ptr_eq(&first, &db.all_cameras().await.unwrap()),
            "an unchanged table is read once"
        );
        let orgs = db.channel_organizations().await.unwrap();
        assert_eq!(orgs[..], [(cam.channel_id.clone(), org.id.clone())]);

        let patch = CameraPatch {
            name: Some("Gate 2".into()),
            ..CameraPatch::default()
        };
        db.update_camera(&org.id, &cam.id, &patch, None)
            .await
            .unwrap();
        assert_eq!(db.all_cameras().await.unwrap()[0].name, "Gate 2");

        assert!(db.delete_camera(&org.id, &cam.id).await.unwrap());
        assert!(db.all_cameras().await.unwrap().is_empty());
        assert!(db.channel_organizations().await.unwrap().is_empty());
    }

    /// A camera added some other way (another server on the same database, here a second
    /// `Db`) reaches the monitors' list within the snapshot's lifetime, not never.
    #[tokio::test]
    async fn the_camera_snapshot_sees_other_writers_within_its_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/lunora.db", dir.path().display());
        let ours = Db::open(&DbConfig::new(&url)).await.unwrap();
        let other = Db::open(&DbConfig::new(&url)).await.unwrap();
        let secrets = SecretBox::new([7; 32]);
        let org = ours.create_organization("acme", "Acme").await.unwrap();
        let cached = ours.all_cameras().await.unwrap();
        assert!(cached.is_empty());
        let read_at = std::time::Instant::now();

        let cam = other
            .create_camera(&org.id, None, &camera("Dock"), "key-2", &secrets)
            .await
            .unwrap();
        // The other writer's row is in the database; this Db's snapshot may still be the old
        // one, but only until the TTL runs out.
        assert_eq!(other.all_cameras().await.unwrap().len(), 1);
        let seen = loop {
            let now = ours.all_cameras().await.unwrap();
            if !now.is_empty() {
                break now;
            }
            assert!(
                read_at.elapsed() < crate::db::SNAPSHOT_TTL + Duration::from_secs(2),
                "another writer's camera not seen after {:?}",
                read_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(seen[0].id, cam.id);
        assert!(
            read_at.elapsed() >= crate::db::SNAPSHOT_TTL - Duration::from_millis(500),
            "the snapshot was read again before its TTL: {:?}",
            read_at.elapsed()
        );
    }
}
