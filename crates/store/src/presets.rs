//! Custom encoding presets of an organization. Built-in presets ship in the binary
//! (`lunora-transcode`) and never reach the database; this module stores only what people
//! create, with plain columns for every setting (the API layer validates them).

use sqlx::Row;

use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// Every setting of a preset, as stored: enums as their snake_case names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetSettings {
    pub name: String,
    /// `youtube`, `x`, `linkedin` or `custom`.
    pub platform: String,
    pub allow_480p: bool,
    pub video_codec: String,
    pub video_profile: String,
    pub width: i64,
    pub height: i64,
    pub fps: i64,
    pub video_bitrate_kbps: i64,
    pub keyframe_interval_s: i64,
    pub b_frames: i64,
    pub rate_control: String,
    /// `None`: twice the bitrate.
    pub buffer_kbps: Option<i64>,
    pub speed: String,
    pub audio_codec: String,
    pub audio_bitrate_kbps: i64,
    pub sample_rate: i64,
    pub channels: i64,
}

/// A stored preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPreset {
    pub id: String,
    pub organization_id: String,
    pub settings: PresetSettings,
    pub created_by: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The most custom presets one organization may keep.
pub const MAX_PRESETS_PER_ORGANIZATION: i64 = 500;

const COLUMNS: &str = "id, organization_id, name, platform, allow_480p, video_codec, \
     video_profile, width, height, fps, video_bitrate_kbps, keyframe_interval_s, b_frames, \
     rate_control, buffer_kbps, speed, audio_codec, audio_bitrate_kbps, sample_rate, channels, \
     created_by, version, created_at, updated_at";

const NAME_TAKEN: &str = "a preset with this name already exists";

fn from_row(r: &sqlx::any::AnyRow) -> Result<StoredPreset, sqlx::Error> {
    Ok(StoredPreset {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        settings: PresetSettings {
            name: r.try_get("name")?,
            platform: r.try_get("platform")?,
            allow_480p: r.try_get::<i64, _>("allow_480p")? != 0,
            video_codec: r.try_get("video_codec")?,
            video_profile: r.try_get("video_profile")?,
            width: r.try_get("width")?,
            height: r.try_get("height")?,
            fps: r.try_get("fps")?,
            video_bitrate_kbps: r.try_get("video_bitrate_kbps")?,
            keyframe_interval_s: r.try_get("keyframe_interval_s")?,
            b_frames: r.try_get("b_frames")?,
            rate_control: r.try_get("rate_control")?,
            buffer_kbps: r.try_get("buffer_kbps")?,
            speed: r.try_get("speed")?,
            audio_codec: r.try_get("audio_codec")?,
            audio_bitrate_kbps: r.try_get("audio_bitrate_kbps")?,
            sample_rate: r.try_get("sample_rate")?,
            channels: r.try_get("channels")?,
        },
        created_by: r.try_get("created_by")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    /// Stores a new preset. A name the organization already uses is a
    /// [`StoreError::Conflict`]; so is one preset too many.
    pub async fn create_preset(
        &self,
        organization_id: &str,
        created_by: Option<&str>,
        p: &PresetSettings,
    ) -> Result<StoredPreset, StoreError> {
        if self.count_presets(organization_id).await? >= MAX_PRESETS_PER_ORGANIZATION {
            return Err(StoreError::Conflict(format!(
                "an organization keeps at most {MAX_PRESETS_PER_ORGANIZATION} custom presets; delete some first"
            )));
        }
        let now = now_ms();
        let id = new_id();
        let q = self.sql(format!(
            "INSERT INTO presets ({COLUMNS}) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        ));
        self.execute(
            "preset_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(&p.name)
                .bind(&p.platform)
                .bind(i64::from(p.allow_480p))
                .bind(&p.video_codec)
                .bind(&p.video_profile)
                .bind(p.width)
                .bind(p.height)
                .bind(p.fps)
                .bind(p.video_bitrate_kbps)
                .bind(p.keyframe_interval_s)
                .bind(p.b_frames)
                .bind(&p.rate_control)
                .bind(p.buffer_kbps)
                .bind(&p.speed)
                .bind(&p.audio_codec)
                .bind(p.audio_bitrate_kbps)
                .bind(p.sample_rate)
                .bind(p.channels)
                .bind(created_by)
                .bind(now)
                .bind(now),
        )
        .await
        .map_err(|e| e.unique_as_conflict(NAME_TAKEN))?;
        self.preset(organization_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn preset(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<StoredPreset>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM presets WHERE organization_id = ? AND id = ?"
        ));
        let row = self
            .timed(
                "preset_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The organization's presets (of one platform, if given), oldest first.
    pub async fn list_presets(
        &self,
        organization_id: &str,
        platform: Option<&str>,
    ) -> Result<Vec<StoredPreset>, StoreError> {
        let q = self.sql(format!(
            "SELECT {COLUMNS} FROM presets WHERE organization_id = ? \
             AND (? IS NULL OR platform = ?) ORDER BY id LIMIT ?"
        ));
        let rows = self
            .timed(
                "preset_list",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(platform)
                    .bind(platform)
                    .bind(MAX_PRESETS_PER_ORGANIZATION)
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?)
    }

    pub async fn count_presets(&self, organization_id: &str) -> Result<i64, StoreError> {
        let q = self.sql("SELECT COUNT(*) AS n FROM presets WHERE organization_id = ?");
        let row = self
            .timed(
                "preset_count",
                sqlx::query(&q).bind(organization_id).fetch_one(self.pool()),
            )
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Replaces every setting; `expected_version` (from `If-Match`) refuses a lost update
    /// with [`StoreError::Conflict`].
    pub async fn update_preset(
        &self,
        organization_id: &str,
        id: &str,
        p: &PresetSettings,
        expected_version: Option<i64>,
    ) -> Result<StoredPreset, StoreError> {
        let q = self.sql(
            "UPDATE presets SET name = ?, platform = ?, allow_480p = ?, video_codec = ?, \
             video_profile = ?, width = ?, height = ?, fps = ?, video_bitrate_kbps = ?, \
             keyframe_interval_s = ?, b_frames = ?, rate_control = ?, buffer_kbps = ?, speed = ?, \
             audio_codec = ?, audio_bitrate_kbps = ?, sample_rate = ?, channels = ?, \
             version = version + 1, updated_at = ? \
             WHERE organization_id = ? AND id = ? AND (? IS NULL OR version = ?)",
        );
        let r = self
            .execute(
                "preset_update",
                sqlx::query(&q)
                    .bind(&p.name)
                    .bind(&p.platform)
                    .bind(i64::from(p.allow_480p))
                    .bind(&p.video_codec)
                    .bind(&p.video_profile)
                    .bind(p.width)
                    .bind(p.height)
                    .bind(p.fps)
                    .bind(p.video_bitrate_kbps)
                    .bind(p.keyframe_interval_s)
                    .bind(p.b_frames)
                    .bind(&p.rate_control)
                    .bind(p.buffer_kbps)
                    .bind(&p.speed)
                    .bind(&p.audio_codec)
                    .bind(p.audio_bitrate_kbps)
                    .bind(p.sample_rate)
                    .bind(p.channels)
                    .bind(now_ms())
                    .bind(organization_id)
                    .bind(id)
                    .bind(expected_version)
                    .bind(expected_version),
            )
            .await
            .map_err(|e| e.unique_as_conflict(NAME_TAKEN))?;
        if r.rows_affected() == 0 {
            return match self.preset(organization_id, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "the preset was changed by someone else; reload it and try again".into(),
                )),
                None => Err(StoreError::NotFound),
            };
        }
        self.preset(organization_id, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes a preset; false if there was none.
    pub async fn delete_preset(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM presets WHERE organization_id = ? AND id = ?");
        let r = self
            .execute(
                "preset_delete",
                sqlx::query(&q).bind(organization_id).bind(id),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// (id, name) of the organization's destinations that use preset `preset_id`.
    pub async fn destinations_using_preset(
        &self,
        organization_id: &str,
        preset_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let q = self.sql(
            "SELECT id, name FROM destinations WHERE organization_id = ? AND preset_id = ? \
             ORDER BY name LIMIT 50",
        );
        let rows = self
            .timed(
                "preset_users",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(preset_id)
                    .fetch_all(self.pool()),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbConfig;

    fn settings(name: &str) -> PresetSettings {
        PresetSettings {
            name: name.into(),
            platform: "custom".into(),
            allow_480p: false,
            video_codec: "h264".into(),
            video_profile: "high".into(),
            width: 1920,
            height: 1080,
            fps: 30,
            video_bitrate_kbps: 6000,
            keyframe_interval_s: 2,
            b_frames: 2,
            rate_control: "cbr".into(),
            buffer_kbps: None,
            speed: "veryfast".into(),
            audio_codec: "aac".into(),
            audio_bitrate_kbps: 128,
            sample_rate: 48_000,
            channels: 2,
        }
    }

    #[tokio::test]
    async fn crud_unique_names_versions_and_isolation() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&DbConfig::new(format!(
            "sqlite://{}/p.db",
            dir.path().display()
        )))
        .await
        .unwrap();
        let org = db.create_organization("acme", "Acme").await.unwrap().id;
        let other = db.create_organization("other", "Other").await.unwrap().id;

        let a = db.create_preset(&org, None, &settings("A")).await.unwrap();
        assert_eq!(a.version, 1);
        assert_eq!(a.settings, settings("A"));
        let dup = db
            .create_preset(&org, None, &settings("A"))
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
        // Another organization may use the name; it cannot see ours.
        db.create_preset(&other, None, &settings("A"))
            .await
            .unwrap();
        assert!(db.preset(&other, &a.id).await.unwrap().is_none());

        let mut changed = settings("A2");
        changed.buffer_kbps = Some(9000);
        changed.platform = "youtube".into();
        let b = db
            .update_preset(&org, &a.id, &changed, Some(1))
            .await
            .unwrap();
        assert_eq!((b.version, b.settings.buffer_kbps), (2, Some(9000)));
        let stale = db
            .update_preset(&org, &a.id, &changed, Some(1))
            .await
            .unwrap_err();
        assert!(matches!(stale, StoreError::Conflict(_)));
        assert_eq!(
            db.list_presets(&org, Some("youtube")).await.unwrap().len(),
            1
        );
        assert_eq!(db.list_presets(&org, Some("x")).await.unwrap().len(), 0);
        assert_eq!(db.count_presets(&org).await.unwrap(), 1);

        assert!(db.delete_preset(&org, &a.id).await.unwrap());
        assert!(!db.delete_preset(&org, &a.id).await.unwrap());
        assert!(matches!(
            db.update_preset(&org, &a.id, &changed, None)
                .await
                .unwrap_err(),
            StoreError::NotFound
        ));
    }
}
