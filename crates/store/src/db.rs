use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://PATH` (created if missing) or `postgres://USER:PASS@HOST/DB`.
    pub url: String,
    pub max_connections: u32,
    /// How long start-up waits for the database before giving up.
    pub connect_timeout: Duration,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: url.into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Schema versions: what the database holds and what this binary knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationState {
    pub database: i64,
    pub binary: i64,
}

/// The connection pool and the dialect it speaks. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    target: String,
    table_cache: Arc<TableCache>,
}

/// How long cached table rows may serve without a write through this `Db` to invalidate
/// it: the bound on staleness for writes made some other way.
pub(crate) const SNAPSHOT_TTL: Duration = Duration::from_secs(5);

/// Whole-table reads that background loops make every second or two (the camera monitor,
/// the alert evaluator, the pull reconciler, the dashboards), kept in memory until a write
/// through this `Db` changes cameras or channels, or for [`SNAPSHOT_TTL`] at most. Reading
/// 1000 cameras through the pool every second cost up to a second of latency per scan on a
/// busy core, and held a connection the API's requests were waiting for.
#[derive(Debug, Default)]
pub(crate) struct TableCache {
    /// Bumped after every committed write to `cameras` or `channels`.
    generation: AtomicU64,
    pub(crate) cameras: Slot<Vec<crate::Camera>>,
    pub(crate) channel_orgs: Slot<Vec<(String, String)>>,
}

/// Where one table's cached rows live.
pub(crate) type Slot<T> = Mutex<Option<CachedRows<T>>>;

/// A table read at a generation, when.
#[derive(Debug)]
pub(crate) struct CachedRows<T> {
    generation: u64,
    at: Instant,
    rows: Arc<T>,
}

impl Db {
    /// Connects, creating the SQLite file (and its directory) when needed, and applies the
    /// embedded migrations. Refuses a database whose schema is newer than this binary.
    pub async fn open(config: &DbConfig) -> Result<Db, StoreError> {
        let db = Db::connect(config).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without migrating.
    pub async fn connect(config: &DbConfig) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(&config.url)?;
        let target = redact_url(&url);
        let mut options = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.connect_timeout);
        if backend == Backend::Sqlite {
            if let Some(parent) = sqlite_path(&url).and_then(|p| Path::new(p).parent()) {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Unreachable {
                        target: target.clone(),
                        source: sqlx::Error::Io(e),
                    })?;
                }
            }
            // SQLite allows one writer at a time; a small pool avoids lock churn.
            options = options
                .max_connections(config.max_connections.min(8))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL for concurrent readers; FULL sync so an acknowledged commit
                        // survives power loss, not only a process crash.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        Ok(())
                    })
                });
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Unreachable {
                target: target.clone(),
                source,
            })?;
        Ok(Db {
            pool,
            backend,
            target,
            table_cache: Arc::default(),
        })
    }

    /// Marks the table_cache of cameras and channels stale: call after a committed write to
    /// either table.
    pub(crate) fn cameras_or_channels_changed(&self) {
        self.table_cache.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The rows in `slot` (of `self.table_cache`) while no write made it stale, else
    /// `load`'s rows, kept for next time.
    pub(crate) async fn cached_rows<T>(
        &self,
        slot: impl Fn(&TableCache) -> &Slot<T>,
        load: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<Arc<T>, StoreError> {
        // Read before loading: a write committed during the load leaves the kept rows stale.
        let generation = self.table_cache.generation.load(Ordering::Acquire);
        {
            let kept = slot(&self.table_cache)
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(s) = kept.as_ref() {
                if s.generation == generation && s.at.elapsed() < SNAPSHOT_TTL {
                    return Ok(s.rows.clone());
                }
            }
        }
        let rows = Arc::new(load.await?);
        *slot(&self.table_cache)
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(CachedRows {
            generation,
            at: Instant::now(),
            rows: rows.clone(),
        });
        Ok(rows)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database location with any password masked, for logs and health answers.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The schema version stored in the database (0 when it is empty) and the newest this binary
    /// carries.
    pub async fn migration_state(&self) -> Result<MigrationState, StoreError> {
        let binary = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let exists: Option<(String,)> = match self.backend {
            Backend::Sqlite => sqlx::query_as(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_optional(&self.pool)
            .await?,
            Backend::Postgres => {
                sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                )
                .fetch_optional(&self.pool)
                .await?
            }
        };
        let database = if exists.is_some() {
            let (v,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                    .fetch_one(&self.pool)
                    .await?;
            v.unwrap_or(0)
        } else {
            0
        };
        Ok(MigrationState { database, binary })
    }

    /// Applies every embedded migration the database lacks.
    pub async fn migrate(&self) -> Result<MigrationState, StoreError> {
        let state = self.migration_state().await?;
        if state.database > state.binary {
            return Err(StoreError::TooNew {
                target: self.target.clone(),
                db_version: state.database,
                binary_version: state.binary,
            });
        }
        if state.database < state.binary {
            tracing::info!(
                from = state.database,
                to = state.binary,
                backend = self.backend.name(),
                "applying database migrations"
            );
        }
        self.migrator().run(&self.pool).await?;
        Ok(MigrationState {
            database: state.binary,
            binary: state.binary,
        })
    }

    /// Rewrites `?` placeholders to `$1, $2, …` for PostgreSQL; SQLite takes them as they are.
    /// Queries never carry a literal `?` inside a string.
    pub fn sql(&self, query: impl AsRef<str>) -> String {
        match self.backend {
            Backend::Sqlite => query.as_ref().to_owned(),
            Backend::Postgres => to_numbered_placeholders(query.as_ref()),
        }
    }

    /// `SELECT 1`, timed, for health checks.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(started.elapsed())
    }

    /// Runs `fut` and records its latency as `lunora_db_query_duration_seconds{query=name}`.
    pub async fn timed<T, F>(&self, name: &'static str, fut: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let started = Instant::now();
        let out = fut.await;
        metrics::histogram!("lunora_db_query_duration_seconds", "query" => name)
            .record(started.elapsed().as_secs_f64());
        if out.is_err() {
            metrics::counter!("lunora_db_query_errors_total", "query" => name).increment(1);
        }
        Ok(out?)
    }

    /// Executes one statement, timed.
    pub async fn execute<'q>(
        &self,
        name: &'static str,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<AnyQueryResult, StoreError> {
        self.timed(name, query.execute(&self.pool)).await
    }

    /// Closes the pool, waiting for connections to return; SQLite checkpoints its WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Accepts `sqlite:PATH`, `sqlite://PATH`, `postgres://…` and `postgresql://…`.
fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            let path = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .to_string();
            let (path, query) = match path.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (path, None),
            };
            let query = match query {
                Some(q) if q.contains("mode=") => q,
                Some(q) => format!("{q}&mode=rwc"),
                None => "mode=rwc".to_string(),
            };
            Ok((Backend::Sqlite, format!("sqlite://{path}?{query}")))
        }
        "postgres" | "postgresql" => Ok((Backend::Postgres, url.to_string())),
        other => Err(StoreError::UnsupportedUrl {
            scheme: other.to_string(),
        }),
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let tail = tail.split('?').next().unwrap_or(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => format!("{scheme}://{authority}{tail}"),
    }
}

pub(crate) fn to_numbered_placeholders(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 8);
    let mut n = 0;
    for ch in query.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            to_numbered_placeholders("SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
    }

    #[test]
    fn passwords_never_leave_redact_url() {
        let r = redact_url("postgres://lunora:hunter2@db.local:5432/lunora?sslmode=require");
        assert_eq!(r, "postgres://lunora:***@db.local:5432/lunora");
        assert!(!r.contains("hunter2"));
        assert_eq!(
            redact_url("sqlite://data/lunora.db"),
            "sqlite://data/lunora.db"
        );
    }

    #[test]
    fn sqlite_urls_are_normalized_to_create_mode() {
        let (b, u) = normalize_url("sqlite:data/x.db").unwrap();
        assert_eq!(b, Backend::Sqlite);
        assert_eq!(u, "sqlite://data/x.db?mode=rwc");
        assert!(normalize_url("mysql://x").is_err());
    }

    #[tokio::test]
    async fn opens_migrates_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/lunora.db", dir.path().display());
        let db = Db::open(&DbConfig::new(&url)).await.unwrap();
        let state = db.migration_state().await.unwrap();
        assert!(state.binary >= 1);
        assert_eq!(state.database, state.binary);
        // Pretend a newer release migrated this database.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999999, 'future', TRUE, x'00', 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
        let err = Db::open(&DbConfig::new(&url)).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    db_version: 99999999,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("newer than this binary"));
    }
}
