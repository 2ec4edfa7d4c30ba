//! Source redundancy settings: per channel the switch settings (`source_configs`), per input
//! its transport settings (`source_inputs`, beside `channel_inputs`).

use sqlx::Row;

use crate::crypto::{hash_secret, last4, SecretBox};
use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// The switch settings of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub channel_id: String,
    /// `single`, `auto_failover` or `manual`.
    pub redundancy_mode: String,
    pub failover_threshold_ms: i64,
    pub health_check_interval_ms: i64,
    pub auto_return: bool,
    pub return_hold_ms: i64,
    /// How long the fill signal holds the destinations while no input is healthy (0: none).
    pub fill_hold_ms: i64,
    pub version: i64,
    pub updated_at: i64,
}

/// One input of a channel with its transport settings (defaults when none were stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInput {
    pub input_id: String,
    pub channel_id: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// `rtmp` or `srt`.
    pub protocol: String,
    pub publish_key_last4: String,
    pub enabled: bool,
    pub latency_ms: i64,
    /// The SRT passphrase, sealed with the master key.
    pub passphrase_sealed: Option<String>,
    /// AES key length in bits.
    pub key_length: i64,
    /// Caller mode: the encoder's listener.
    pub caller_address: Option<String>,
    pub caller_port: Option<i64>,
    pub caller_stream_id: Option<String>,
}

/// What to do with an input's passphrase.
#[derive(Debug, Clone)]
pub enum PassphraseChange {
    Keep,
    Clear,
    Set(String),
}

/// The wanted state of one input.
#[derive(Debug, Clone)]
pub struct SourceInputUpdate {
    pub role: String,
    pub protocol: String,
    pub latency_ms: i64,
    pub passphrase: PassphraseChange,
    pub key_length: i64,
    /// (address, port, stream id) for caller mode; `None` for listener mode.
    pub caller: Option<(String, i64, Option<String>)>,
    /// The publish key to create the input with, when it does not exist yet.
    pub new_publish_key: Option<String>,
}

/// The wanted state of a channel's sources; roles not listed in `inputs` are removed (except
/// the primary, which always stays).
#[derive(Debug, Clone)]
pub struct SourcesUpdate {
    pub channel_id: String,
    pub redundancy_mode: String,
    pub failover_threshold_ms: i64,
    pub health_check_interval_ms: i64,
    pub auto_return: bool,
    pub return_hold_ms: i64,
    pub fill_hold_ms: i64,
    /// Refuse with `Conflict` unless the stored version is this one (`None`: any).
    pub expected_version: Option<i64>,
    pub inputs: Vec<SourceInputUpdate>,
}

const CONFIG_COLUMNS: &str = "channel_id, redundancy_mode, failover_threshold_ms, \
     health_check_interval_ms, auto_return, return_hold_ms, fill_hold_ms, version, updated_at";

fn config_from_row(r: &sqlx::any::AnyRow) -> Result<SourceConfig, sqlx::Error> {
    let auto_return: i64 = r.try_get("auto_return")?;
    Ok(SourceConfig {
        channel_id: r.try_get("channel_id")?,
        redundancy_mode: r.try_get("redundancy_mode")?,
        failover_threshold_ms: r.try_get("failover_threshold_ms")?,
        health_check_interval_ms: r.try_get("health_check_interval_ms")?,
        auto_return: auto_return != 0,
        return_hold_ms: r.try_get("return_hold_ms")?,
        fill_hold_ms: r.try_get("fill_hold_ms")?,
        version: r.try_get("version")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const INPUT_SELECT: &str = "SELECT i.id, i.channel_id, i.role, i.protocol, i.publish_key_last4, \
     i.enabled, COALESCE(s.latency_ms, 120) AS latency_ms, s.passphrase_sealed, \
     COALESCE(s.key_length, 128) AS key_length, s.caller_address, s.caller_port, \
     s.caller_stream_id FROM channel_inputs i LEFT JOIN source_inputs s ON s.input_id = i.id";

fn input_from_row(r: &sqlx::any::AnyRow) -> Result<SourceInput, sqlx::Error> {
    let enabled: i64 = r.try_get("enabled")?;
    Ok(SourceInput {
        input_id: r.try_get("id")?,
        channel_id: r.try_get("channel_id")?,
        role: r.try_get("role")?,
        protocol: r.try_get("protocol")?,
        publish_key_last4: r.try_get("publish_key_last4")?,
        enabled: enabled != 0,
        latency_ms: r.try_get("latency_ms")?,
        passphrase_sealed: r.try_get("passphrase_sealed")?,
        key_length: r.try_get("key_length")?,
        caller_address: r.try_get("caller_address")?,
        caller_port: r.try_get("caller_port")?,
        caller_stream_id: r.try_get("caller_stream_id")?,
    })
}

impl Db {
    /// The switch settings of a channel, if any were saved.
    pub async fn source_config(
        &self,
        channel_id: &str,
    ) -> Result<Option<SourceConfig>, StoreError> {
        let q = self.sql(format!(
            "SELECT {CONFIG_COLUMNS} FROM source_configs WHERE channel_id = ?"
        ));
        let row = self
            .timed(
                "source_config",
                sqlx::query(&q).bind(channel_id).fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(config_from_row).transpose()?)
    }

    /// Every saved switch setting (applied to the engine at start).
    pub async fn all_source_configs(&self) -> Result<Vec<SourceConfig>, StoreError> {
        let q = format!("SELECT {CONFIG_COLUMNS} FROM source_configs");
        let rows = self
            .timed("source_configs_all", sqlx::query(&q).fetch_all(self.pool()))
            .await?;
        Ok(rows.iter().map(config_from_row).collect::<Result<_, _>>()?)
    }

    /// A channel's inputs with their transport settings, primary first.
    pub async fn source_inputs(&self, channel_id: &str) -> Result<Vec<SourceInput>, StoreError> {
        let q = self.sql(format!(
            "{INPUT_SELECT} WHERE i.channel_id = ? ORDER BY i.role"
        ));
        let rows = self
            .timed(
                "source_inputs",
                sqlx::query(&q).bind(channel_id).fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.iter().map(input_from_row).collect::<Result<_, _>>()?)
    }

    /// Every enabled SRT input in caller mode (started at start).
    pub async fn caller_inputs(&self) -> Result<Vec<SourceInput>, StoreError> {
        let q = format!(
            "{INPUT_SELECT} WHERE s.caller_address IS NOT NULL AND i.protocol = 'srt' \
             AND i.enabled = 1"
        );
        let rows = self
            .timed("source_callers", sqlx::query(&q).fetch_all(self.pool()))
            .await?;
        Ok(rows.iter().map(input_from_row).collect::<Result<_, _>>()?)
    }

    /// The input a publish key opens, with its transport settings and its channel's
    /// organization.
    pub async fn source_input_by_publish_key(
        &self,
        publish_key: &str,
    ) -> Result<Option<(SourceInput, String)>, StoreError> {
        let q = self.sql(
            "SELECT i.id, i.channel_id, i.role, i.protocol, i.publish_key_last4, i.enabled, \
             COALESCE(s.latency_ms, 120) AS latency_ms, s.passphrase_sealed, \
             COALESCE(s.key_length, 128) AS key_length, s.caller_address, s.caller_port, \
             s.caller_stream_id, c.organization_id FROM channel_inputs i \
             JOIN channels c ON c.id = i.channel_id \
             LEFT JOIN source_inputs s ON s.input_id = i.id WHERE i.publish_key_hash = ?",
        );
        let row = self
            .timed(
                "source_input_by_key",
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

    /// Saves a channel's sources in one transaction: the switch settings (version checked),
    /// inputs created (with their publish key), changed or removed, and their transport
    /// settings. Passphrases are sealed with `secrets`.
    pub async fn save_sources(
        &self,
        update: &SourcesUpdate,
        secrets: &SecretBox,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let q = self.sql("SELECT version FROM source_configs WHERE channel_id = ?");
        let current: Option<i64> = sqlx::query(&q)
            .bind(&update.channel_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(expected) = update.expected_version {
            if current.unwrap_or(0) != expected {
                return Err(StoreError::Conflict(
                    "the source configuration was changed by someone else; reload it and try again"
                        .into(),
                ));
            }
        }
        let q = self.sql(format!(
            "INSERT INTO source_configs ({CONFIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) \
             ON CONFLICT (channel_id) DO UPDATE SET redundancy_mode = excluded.redundancy_mode, \
             failover_threshold_ms = excluded.failover_threshold_ms, \
             health_check_interval_ms = excluded.health_check_interval_ms, \
             auto_return = excluded.auto_return, return_hold_ms = excluded.return_hold_ms, \
             fill_hold_ms = excluded.fill_hold_ms, \
             version = source_configs.version + 1, updated_at = excluded.updated_at"
        ));
        sqlx::query(&q)
            .bind(&update.channel_id)
            .bind(&update.redundancy_mode)
            .bind(update.failover_threshold_ms)
            .bind(update.health_check_interval_ms)
            .bind(i64::from(update.auto_return))
            .bind(update.return_hold_ms)
            .bind(update.fill_hold_ms)
            .bind(now)
            .execute(&mut *tx)
            .await?;

        // Inputs no longer wanted go (never the primary).
        let q = self.sql("SELECT id, role FROM channel_inputs WHERE channel_id = ?");
        let existing: Vec<(String, String)> = sqlx::query(&q)
            .bind(&update.channel_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, _>>()?;
        for (id, role) in &existing {
            if role != "primary" && !update.inputs.iter().any(|i| &i.role == role) {
                let q = self.sql("DELETE FROM channel_inputs WHERE id = ?");
                sqlx::query(&q).bind(id).execute(&mut *tx).await?;
            }
        }
        for input in &update.inputs {
            let id = match existing.iter().find(|(_, role)| *role == input.role) {
                Some((id, _)) => {
                    let q = self.sql("UPDATE channel_inputs SET protocol = ? WHERE id = ?");
                    sqlx::query(&q)
                        .bind(&input.protocol)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    id.clone()
                }
                None => {
                    let Some(key) = &input.new_publish_key else {
                        return Err(StoreError::NotFound);
                    };
                    let id = new_id();
                    let q = self.sql(
                        "INSERT INTO channel_inputs (id, channel_id, role, protocol, \
                         publish_key_hash, publish_key_sealed, publish_key_last4, enabled, \
                         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                    );
                    sqlx::query(&q)
                        .bind(&id)
                        .bind(&update.channel_id)
                        .bind(&input.role)
                        .bind(&input.protocol)
                        .bind(hash_secret(key))
                        .bind(secrets.seal(key))
                        .bind(last4(key))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
            };
            let q = self.sql("SELECT passphrase_sealed FROM source_inputs WHERE input_id = ?");
            let stored: Option<Option<String>> = sqlx::query(&q)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let passphrase = match &input.passphrase {
                PassphraseChange::Keep => stored.flatten(),
                PassphraseChange::Clear => None,
                PassphraseChange::Set(p) => Some(secrets.seal(p)),
            };
            let (address, port, stream_id) = match &input.caller {
                Some((a, p, s)) => (Some(a.as_str()), Some(*p), s.as_deref()),
                None => (None, None, None),
            };
            let q = self.sql(
                "INSERT INTO source_inputs (input_id, channel_id, latency_ms, passphrase_sealed, \
                 key_length, caller_address, caller_port, caller_stream_id, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (input_id) DO UPDATE SET \
                 latency_ms = excluded.latency_ms, passphrase_sealed = excluded.passphrase_sealed, \
                 key_length = excluded.key_length, caller_address = excluded.caller_address, \
                 caller_port = excluded.caller_port, caller_stream_id = excluded.caller_stream_id, \
                 updated_at = excluded.updated_at",
            );
            sqlx::query(&q)
                .bind(&id)
                .bind(&update.channel_id)
                .bind(input.latency_ms)
                .bind(passphrase)
                .bind(input.key_length)
                .bind(address)
                .bind(port)
                .bind(stream_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
