//! Master key rotation: every sealed value is opened with the old key and sealed with the new one
//! in a single transaction, so a failure leaves the database as it was.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore;
use sqlx::Row;

use crate::{Db, SecretBox, StoreError};

/// Every column that holds a value sealed with the master key, as (table, key column, sealed
/// column). A new sealed column must be added here, or rotation leaves it unreadable.
pub const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("channel_inputs", "id", "publish_key_sealed"),
    ("users", "id", "totp_secret_sealed"),
    ("users", "id", "totp_pending_sealed"),
    ("outbox", "id", "body_sealed"),
    ("source_inputs", "input_id", "passphrase_sealed"),
    ("destinations", "id", "stream_key_sealed"),
    ("cameras", "id", "pull_url_sealed"),
    ("webhooks", "id", "secret_sealed"),
];

/// 32 fresh random bytes for a master key.
pub fn generate_master_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Writes a master key file (base64, mode 0600), failing if `path` exists.
pub fn write_master_key(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(key)
            .as_bytes(),
    )?;
    f.sync_all()
}

impl Db {
    /// Re-seals every sealed value under `new`; answers how many values changed. All or
    /// nothing: a value `old` cannot open aborts the whole rotation.
    pub async fn reseal_all(&self, old: &SecretBox, new: &SecretBox) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut count = 0u64;
        for (table, key, column) in SEALED_COLUMNS {
            let q = format!("SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL");
            let rows = sqlx::query(&q).fetch_all(&mut *tx).await?;
            let update = self.sql(format!("UPDATE {table} SET {column} = ? WHERE {key} = ?"));
            for r in rows {
                let id: String = r.try_get(0)?;
                let sealed: String = r.try_get(1)?;
                let clear = old.open(&sealed)?;
                sqlx::query(&update)
                    .bind(new.seal(&clear))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }
}
