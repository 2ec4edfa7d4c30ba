//! Storage tiers of recordings (seed 001 "Multi-Tier Storage System"): *hot* is
//! `{data_dir}/recordings` where the recorder writes, *warm* another local directory (a larger,
//! slower disk), *cold* any S3-compatible object store (through `object_store`).
//!
//! A lifecycle job runs every `interval`: finished recordings move hot → warm once they ended
//! `hot_max_age` ago, warm → cold after `warm_max_age` (when a cold store is configured), and
//! are deleted after `retention` (when set). A move copies, verifies the copy (size and SHA-256
//! read back from the destination), switches the row's tier, and only then deletes the source:
//! a crash or a failed upload at any point leaves the local file in place and the row naming a
//! tier that holds it. A recording in the cold tier is read through a local cache
//! (`{data_dir}/cache/cold`), fetched and verified on first access, so download, ranges and
//! HLS VOD work the same in every tier.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lunora_store::{Db, Recording};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Where recordings live and when they move.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Root of the warm tier; default `{data_dir}/warm`.
    pub warm_dir: Option<PathBuf>,
    /// A finished recording moves hot → warm this long after it ended.
    pub hot_max_age: Duration,
    /// … and warm → cold this long after it ended (with a cold store).
    pub warm_max_age: Duration,
    /// Recordings are deleted this long after they ended; `None` keeps them.
    pub retention: Option<Duration>,
    /// How often the lifecycle job runs.
    pub interval: Duration,
    /// The S3-compatible cold store; `None` leaves recordings warm.
    pub cold: Option<ColdStore>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            warm_dir: None,
            hot_max_age: Duration::from_secs(7 * 86_400),
            warm_max_age: Duration::from_secs(30 * 86_400),
            retention: None,
            interval: Duration::from_secs(3600),
            cold: None,
        }
    }
}

/// An S3-compatible bucket.
#[derive(Clone)]
pub struct ColdStore {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// `http(s)://host:port` of a non-AWS server (MinIO, Garage, Ceph…); `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for ColdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStore")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "****"),
            )
            .finish()
    }
}

/// `s3://bucket[/prefix]` split into bucket and prefix.
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| "expected s3://bucket or s3://bucket/prefix".to_string())?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !valid {
        return Err(format!(
            "`{bucket}` is not a bucket name (3–63 lowercase letters, digits, `-`, `.`)"
        ));
    }
    if prefix.split('/').any(|c| c == "..") {
        return Err("the prefix must not contain `..`".into());
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Why a tier operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("the recording's path is not valid")]
    BadPath,
    #[error("the recording is in the `{0}` tier, which is not configured here")]
    Unavailable(String),
    #[error("the file of this recording is missing")]
    Missing,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cold store: {0}")]
    Store(#[from] object_store::Error),
    #[error("the copy does not match the original ({0})")]
    Mismatch(String),
}

/// What one lifecycle run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    pub to_warm: usize,
    pub to_cold: usize,
    pub deleted: usize,
    pub failed: usize,
}

pub struct Tiers {
    hot: PathBuf,
    warm: PathBuf,
    cache: PathBuf,
    cold: Option<(Arc<dyn ObjectStore>, String)>,
    config: StorageConfig,
}

/// Files larger than this go up in parts.
const MULTIPART_OVER: u64 = 16 * 1024 * 1024;
const CHUNK: usize = 8 * 1024 * 1024;
/// Recordings handled per tier and run, so one run stays bounded.
const BATCH: i64 = 200;

impl Tiers {
    pub fn new(data_dir: &FsPath, config: StorageConfig) -> Self {
        let cold = config.cold.as_ref().and_then(|c| match build_store(c) {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::error!(error = %e, "the cold store is not usable; recordings stay warm");
                None
            }
        });
        Tiers {
            hot: data_dir.join("recordings"),
            warm: config
                .warm_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("warm")),
            cache: data_dir.join("cache").join("cold"),
            cold,
            config,
        }
    }

    pub fn hot_root(&self) -> &FsPath {
        &self.hot
    }

    pub fn interval(&self) -> Duration {
        self.config.interval
    }

    /// Root directories of the local tiers: (tier, root).
    pub fn local_roots(&self) -> [(&'static str, &FsPath); 2] {
        [("hot", &self.hot), ("warm", &self.warm)]
    }

    /// Whether a cold store is configured (and was usable at start).
    pub fn has_cold(&self) -> bool {
        self.cold.is_some()
    }

    /// The tier's root for a relative path, refusing anything that could leave it.
    fn local(&self, tier: &str, rel: &str) -> Result<PathBuf, TierError> {
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == ".." || c == ".")
            || rel.starts_with('/')
        {
            return Err(TierError::BadPath);
        }
        match tier {
            "hot" => Ok(self.hot.join(rel)),
            "warm" => Ok(self.warm.join(rel)),
            "cold" => Ok(self.cache.join(rel)),
            other => Err(TierError::Unavailable(other.to_string())),
        }
    }

    fn object(&self, rel: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath), TierError> {
        let (store, prefix) = self
            .cold
            .as_ref()
            .ok_or_else(|| TierError::Unavailable("cold".into()))?;
        let key = if prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{prefix}/{rel}")
        };
        let path = ObjectPath::parse(&key).map_err(|_| TierError::BadPath)?;
        Ok((store.clone(), path))
    }

    /// A local file holding the recording, whatever its tier: a cold recording is fetched
    /// into the cache (and checked against its size) on first access.
    pub async fn local_file(&self, r: &Recording) -> Result<PathBuf, TierError> {
        let path = self.local(&r.tier, &r.path)?;
        if r.tier != "cold" {
            return match tokio::fs::metadata(&path).await {
                Ok(_) => Ok(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(TierError::Missing),
                Err(e) => Err(e.into()),
            };
        }
        if let Ok(m) = tokio::fs::metadata(&path).await {
            if m.len() == r.size_bytes as u64 {
                return Ok(path);
            }
        }
        let (store, key) = self.object(&r.path)?;
        let result = match store.get(&key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(TierError::Missing),
            Err(e) => return Err(e.into()),
        };
        let tmp = temp_name(&path);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut stream = result.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        drop(file);
        if written != r.size_bytes as u64 && r.size_bytes > 0 {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(TierError::Mismatch(format!(
                "{written} bytes fetched, {} recorded",
                r.size_bytes
            )));
        }
        tokio::fs::rename(&tmp, &path).await?;
        tracing::info!(recording = %r.id, "fetched a cold recording into the cache");
        Ok(path)
    }

    /// Deletes the recording's file in its tier (and its cached copy).
    pub async fn delete_file(&self, r: &Recording) -> Result<(), TierError> {
        let local = self.local(&r.tier, &r.path)?;
        remove_if_present(&local).await?;
        if r.tier == "cold" {
            let (store, key) = self.object(&r.path)?;
            match store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// One pass of the lifecycle at `now_ms`.
    pub async fn run_once(&self, db: &Db, now_ms: i64) -> LifecycleReport {
        let mut report = LifecycleReport::default();
        let age = |d: Duration| now_ms.saturating_sub(d.as_millis() as i64);
        if let Some(retention) = self.config.retention {
            for tier in ["hot", "warm", "cold"] {
                for r in due(db, tier, age(retention)).await {
                    match self.delete_file(&r).await {
                        Ok(()) => match db.delete_recording_row(&r.id).await {
                            Ok(_) => {
                                report.deleted += 1;
                                tracing::info!(recording = %r.id, tier, "recording deleted by retention");
                            }
                            Err(e) => {
                                report.failed += 1;
                                tracing::warn!(recording = %r.id, error = %e, "cannot delete a recording's row");
                            }
                        },
                        Err(e) => {
                            report.failed += 1;
                            tracing::warn!(recording = %r.id, error = %e, "cannot delete a recording's file");
                        }
                    }
                }
            }
        }
        for r in due(db, "hot", age(self.config.hot_max_age)).await {
            match self.move_local(db, &r, now_ms).await {
                Ok(true) => report.to_warm += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    metrics::counter!("lunora_storage_moves_failed_total", "to" => "warm")
                        .increment(1);
                    tracing::warn!(recording = %r.id, error = %e, "cannot move a recording to the warm tier; it stays hot");
                }
            }
        }
        if self.cold.is_some() {
            for r in due(db, "warm", age(self.config.warm_max_age)).await {
                match self.move_cold(db, &r, now_ms).await {
                    Ok(true) => report.to_cold += 1,
                    Ok(false) => {}
                    Err(e) => {
                        report.failed += 1;
                        metrics::counter!("lunora_storage_moves_failed_total", "to" => "cold")
                            .increment(1);
                        tracing::warn!(recording = %r.id, error = %e, "cannot move a recording to the cold tier; it stays warm");
                    }
                }
            }
        }
        metrics::counter!("lunora_storage_moves_total", "to" => "warm")
            .increment(report.to_warm as u64);
        metrics::counter!("lunora_storage_moves_total", "to" => "cold")
            .increment(report.to_cold as u64);
        metrics::counter!("lunora_storage_retention_deletes_total")
            .increment(report.deleted as u64);
        report
    }

    /// hot → warm: copy to a temporary name, fsync, verify, rename, switch the row, delete.
    async fn move_local(&self, db: &Db, r: &Recording, now_ms: i64) -> Result<bool, TierError> {
        let from = self.local("hot", &r.path)?;
        let to = self.local("warm", &r.path)?;
        if tokio::fs::metadata(&from).await.is_err() {
            return Err(TierError::Missing);
        }
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = temp_name(&to);
        let original = copy_hashing(&from, &tmp).await?;
        let copy = hash_file(&tmp).await?;
        if original != copy {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(TierError::Mismatch("warm copy".into()));
        }
        tokio::fs::rename(&tmp, &to).await?;
        sync_dir(&to).await;
        if !db
            .set_recording_tier(&r.id, "hot", "warm", now_ms)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
        {
            // Deleted meanwhile: the copy goes too.
            let _ = tokio::fs::remove_file(&to).await;
            return Ok(false);
        }
        remove_if_present(&from).await?;
        tracing::info!(recording = %r.id, bytes = original.1, "recording moved to the warm tier");
        Ok(true)
    }

    /// warm → cold: upload, read back and compare, switch the row, delete the local file.
    async fn move_cold(&self, db: &Db, r: &Recording, now_ms: i64) -> Result<bool, TierError> {
        let from = self.local("warm", &r.path)?;
        let (store, key) = self.object(&r.path)?;
        let original = upload(&store, &key, &from).await?;
        // Verified from what the store gives back, not from what was sent.
        let mut stream = store.get(&key).await?.into_stream();
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let copy = (hasher.finalize().into(), len);
        if copy != original {
            let _ = store.delete(&key).await;
            return Err(TierError::Mismatch(format!(
                "cold copy: {len} bytes read back of {}",
                original.1
            )));
        }
        if !db
            .set_recording_tier(&r.id, "warm", "cold", now_ms)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
        {
            let _ = store.delete(&key).await;
            return Ok(false);
        }
        remove_if_present(&from).await?;
        tracing::info!(recording = %r.id, bytes = len, "recording moved to the cold tier");
        Ok(true)
    }
}

fn build_store(c: &ColdStore) -> Result<(Arc<dyn ObjectStore>, String), String> {
    let (bucket, prefix) = parse_s3_url(&c.url)?;
    // Bounded: an unreachable store fails this run in seconds; the next run tries again.
    let retry = object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let client = object_store::ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300));
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&c.region)
        .with_retry(retry)
        .with_client_options(client);
    if let Some(endpoint) = &c.endpoint {
        b = b
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let Some(id) = &c.access_key_id {
        b = b.with_access_key_id(id);
    }
    if let Some(secret) = &c.secret_access_key {
        b = b.with_secret_access_key(secret);
    }
    let store = b.build().map_err(|e| e.to_string())?;
    Ok((Arc::new(store), prefix))
}

async fn due(db: &Db, tier: &str, ended_before: i64) -> Vec<Recording> {
    match db.recordings_due(tier, ended_before, BATCH).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(tier, error = %e, "cannot list recordings for the storage lifecycle");
            Vec::new()
        }
    }
}

type Digest32 = ([u8; 32], u64);

fn temp_name(path: &FsPath) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

async fn remove_if_present(path: &FsPath) -> std::io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

async fn sync_dir(path: &FsPath) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = tokio::fs::File::open(dir).await {
            let _ = d.sync_all().await;
        }
    }
}

/// Copies `from` to `to` (fsynced), answering the SHA-256 and length of what was read.
async fn copy_hashing(from: &FsPath, to: &FsPath) -> std::io::Result<Digest32> {
    let mut dst = tokio::fs::File::create(to).await?;
    let digest = read_hashing(from, Some(&mut dst)).await?;
    dst.sync_all().await?;
    Ok(digest)
}

async fn hash_file(path: &FsPath) -> std::io::Result<Digest32> {
    read_hashing(path, None).await
}

/// Reads `path` through, answering its SHA-256 and length, writing it to `copy` on the way.
async fn read_hashing(
    path: &FsPath,
    mut copy: Option<&mut tokio::fs::File>,
) -> std::io::Result<Digest32> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(dst) = copy.as_deref_mut() {
            dst.write_all(&buf[..n]).await?;
        }
        len += n as u64;
    }
    Ok((hasher.finalize().into(), len))
}

/// Uploads a file (in parts when large), answering the SHA-256 and length sent.
async fn upload(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    from: &FsPath,
) -> Result<Digest32, TierError> {
    let mut f = tokio::fs::File::open(from).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TierError::Missing
        } else {
            e.into()
        }
    })?;
    let size = f.metadata().await?.len();
    let mut hasher = Sha256::new();
    if size <= MULTIPART_OVER {
        let mut data = Vec::with_capacity(size as usize);
        f.read_to_end(&mut data).await?;
        hasher.update(&data);
        let len = data.len() as u64;
        store.put(key, PutPayload::from(data)).await?;
        return Ok((hasher.finalize().into(), len));
    }
    let upload = store.put_multipart(key).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
        writer.wait_for_capacity(4).await?;
        writer.write(&buf[..n]);
    }
    writer.finish().await?;
    Ok((hasher.finalize().into(), len))
}

/// Runs the lifecycle every `interval` until `shutdown`.
pub fn spawn(state: crate::AppState, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.tiers.interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let report = state
                .tiers
                .run_once(&state.db, lunora_store::now_ms())
                .await;
            if report != LifecycleReport::default() {
                tracing::info!(?report, "storage lifecycle ran");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://lunora-archive/site-a/").unwrap(),
            ("lunora-archive".into(), "site-a".into())
        );
        assert_eq!(
            parse_s3_url("s3://bucket").unwrap(),
            ("bucket".into(), String::new())
        );
        for bad in [
            "http://bucket",
            "s3://",
            "s3://UPPER",
            "s3://b/../x",
            "s3://ab",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_not_in_debug() {
        let c = ColdStore {
            url: "s3://b-1".into(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: Some("AKIA".into()),
            secret_access_key: Some("very-secret".into()),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }

    #[test]
    fn paths_cannot_leave_their_tier() {
        let t = Tiers::new(FsPath::new("/data"), StorageConfig::default());
        assert!(t.local("hot", "2026/11/23/c/a.mp4").is_ok());
        for bad in ["../x", "a//b", "/etc/passwd", "a/./b"] {
            assert!(
                matches!(t.local("hot", bad), Err(TierError::BadPath)),
                "{bad}"
            );
        }
        assert!(matches!(
            t.local("lukewarm", "a"),
            Err(TierError::Unavailable(_))
        ));
        assert!(matches!(t.object("a"), Err(TierError::Unavailable(_))));
    }
}
