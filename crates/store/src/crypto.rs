//! Secrets at rest: AES-256-GCM under a master key, and hashing of bearer secrets for lookup.
//!
//! Sealed values read `v1:` + base64(nonce ‖ ciphertext ‖ tag); the version prefix leaves room for
//! a new scheme. The master key is 32 random bytes in a file created with mode 0600.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::StoreError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Seals and opens secrets with the master key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// SHA-256 of the key, to derive other keys (token signing) without reusing it.
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(****)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        SecretBox {
            cipher: Aes256Gcm::new(&key.into()),
            fingerprint: Sha256::digest(key).into(),
        }
    }

    /// Reads the master key file, creating it (mode 0600, parent dirs too) when absent.
    pub fn load_or_create(path: &Path) -> Result<SecretBox, StoreError> {
        let key_err = |e: std::io::Error| StoreError::MasterKey {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let raw = B64.decode(text.trim().trim_end_matches('=')).map_err(|e| {
                    StoreError::MasterKey {
                        path: path.display().to_string(),
                        message: format!("not base64: {e}"),
                    }
                })?;
                let key: [u8; 32] = raw.try_into().map_err(|_| StoreError::MasterKey {
                    path: path.display().to_string(),
                    message: "must hold exactly 32 bytes (base64)".into(),
                })?;
                Ok(SecretBox::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(key_err)?;
                }
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                write_private(path, B64.encode(key).as_bytes()).map_err(key_err)?;
                tracing::info!(path = %path.display(), "generated a new master key");
                Ok(SecretBox::new(key))
            }
            Err(e) => Err(key_err(e)),
        }
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a fresh nonce cannot fail for inputs this small.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("v1:{}", B64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, StoreError> {
        let bad = || StoreError::SecretUnreadable;
        let body = sealed.strip_prefix("v1:").ok_or_else(bad)?;
        let raw = B64.decode(body).map_err(|_| bad())?;
        if raw.len() < 12 + 16 {
            return Err(bad());
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| bad())?;
        String::from_utf8(pt).map_err(|_| bad())
    }

    /// A short public id of the master key (16 hex characters): names the key that sealed a
    /// file without revealing anything of it.
    pub fn key_id(&self) -> String {
        hex(&self.derive("key-id")[..8])
    }

    /// Seals `plaintext` with AES-256-GCM under a key derived for `purpose`, binding `aad`
    /// (authenticated, not encrypted): nonce ‖ ciphertext ‖ tag.
    pub fn seal_bytes(&self, purpose: &str, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(&self.derive(purpose).into());
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption fails only past the GCM length limit (64 GiB), far above any backup.
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                aes_gcm::aead::Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`SecretBox::seal_bytes`] sealed; any change to it or to `aad` is refused.
    pub fn open_bytes(
        &self,
        purpose: &str,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 12 + 16 {
            return Err(StoreError::SecretUnreadable);
        }
        let cipher = Aes256Gcm::new(&self.derive(purpose).into());
        let (nonce, ct) = sealed.split_at(12);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                aes_gcm::aead::Payload { msg: ct, aad },
            )
            .map_err(|_| StoreError::SecretUnreadable)
    }

    /// A 32-byte key for `purpose`, derived from the master key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"lunora/derive/v1/");
        h.update(purpose.as_bytes());
        h.update(self.fingerprint);
        h.finalize().into()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Hex SHA-256 of a high-entropy bearer secret (stream key, refresh or API token), the form in
/// which the database stores it for lookup.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A new random secret: `prefix` + 32 bytes in URL-safe base64 (43 characters).
pub fn random_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// The last 4 characters, the most of a secret ever shown after creation; nothing at all of a
/// secret shorter than 12 characters, where 4 would give too much away.
pub fn last4(secret: &str) -> String {
    let n = secret.chars().count();
    if n < 12 {
        return String::new();
    }
    secret.chars().skip(n - 4).collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let b = SecretBox::new([7u8; 32]);
        let s = b.seal("live_abcdef");
        assert!(s.starts_with("v1:"));
        assert!(!s.contains("live_abcdef"));
        assert_eq!(b.open(&s).unwrap(), "live_abcdef");
        // Two seals of one value differ (fresh nonce).
        assert_ne!(b.seal("x"), b.seal("x"));
        // A flipped byte is refused.
        let mut raw = B64.decode(&s[3..]).unwrap();
        raw[14] ^= 1;
        assert!(b.open(&format!("v1:{}", B64.encode(raw))).is_err());
        // Another key cannot open it.
        assert!(SecretBox::new([8u8; 32]).open(&s).is_err());
    }

    #[test]
    fn master_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let a = SecretBox::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(b.open(&a.seal("k")).unwrap(), "k");
        std::fs::write(&path, "short").unwrap();
        assert!(SecretBox::load_or_create(&path).is_err());
    }

    #[test]
    fn secrets_are_random_and_masked() {
        let a = random_secret("live_");
        assert!(a.starts_with("live_") && a.len() == 5 + 43);
        assert_ne!(a, random_secret("live_"));
        assert_eq!(last4("abcdefghijkl"), "ijkl");
        assert_eq!(last4("abcdefgh"), "", "short secrets show nothing");
        assert_eq!(hash_secret("x").len(), 64);
    }
}
