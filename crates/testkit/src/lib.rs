//! Test harness for end-to-end tests: starts the real `lunora` binary on port 0 with a fresh data
//! dir (and, for PostgreSQL, a fresh database), waits until it is healthy, and hands the test its
//! addresses. Every end-to-end test in the workspace goes through [`Server`].
//!
//! PostgreSQL comes from `LUNORA_TEST_POSTGRES_URL`, an admin URL of a server the test script
//! started (`scripts/test.sh`); each test gets its own database on it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// Generates one test per database for each named `async fn name(db: DbKind)`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::DbKind::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::DbKind::Postgres).await }
            )*
        }
    };
}

/// A fresh PostgreSQL database, dropped when this value is.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> anyhow::Result<PgDatabase> {
        let admin_url = std::env::var("LUNORA_TEST_POSTGRES_URL").map_err(|_| {
            anyhow!(
                "LUNORA_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which \
                 starts PostgreSQL, or point it at a server where this user may CREATE DATABASE"
            )
        })?;
        let name = format!("lunora_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .context("connecting to LUNORA_TEST_POSTGRES_URL")?;
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin_url.clone());
        Ok(PgDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Best effort, off the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut c,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub db: DbKind,
    /// Extra `LUNORA_*` variables.
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments after `serve`.
    pub args: Vec<String>,
}

impl ServerOptions {
    pub fn new(db: DbKind) -> Self {
        ServerOptions {
            db,
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

/// Bound addresses a server reported in its log.
#[derive(Debug, Clone, Default)]
pub struct Addrs {
    pub http: Option<SocketAddr>,
    pub rtmp: Option<SocketAddr>,
    pub srt: Option<SocketAddr>,
}

/// A running `lunora serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub addrs: Addrs,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
    bin: PathBuf,
    options: ServerOptions,
    _tmp: Option<Arc<tempfile::TempDir>>,
    _pg: Option<Arc<PgDatabase>>,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts `bin` (pass `env!("CARGO_BIN_EXE_lunora")`) with a fresh data dir and database.
    pub async fn start(bin: &str, options: ServerOptions) -> anyhow::Result<Server> {
        let tmp = Arc::new(tempfile::tempdir()?);
        let pg = match options.db {
            DbKind::Sqlite => None,
            DbKind::Postgres => Some(Arc::new(PgDatabase::create().await?)),
        };
        let data_dir = tmp.path().join("data");
        let mut server = Server {
            child: None,
            addrs: Addrs::default(),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: pg.as_ref().map(|p| p.url.clone()),
            logs: Arc::new(Mutex::new(Vec::new())),
            bin: PathBuf::from(bin),
            options,
            _tmp: Some(tmp),
            _pg: pg,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        };
        server.spawn().await?;
        Ok(server)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .args(&self.options.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("LUNORA_LOG_FORMAT", "json")
            .env("LUNORA_LOG_LEVEL", "info,lunora=debug")
            .env("LUNORA_DATA_DIR", &self.data_dir)
            .env("LUNORA_HTTP_ADDR", "127.0.0.1:0")
            .env("LUNORA_RTMP_ADDR", "127.0.0.1:0")
            .env("LUNORA_SRT_ADDR", "127.0.0.1:0")
            // Tests run on small tmpfs-like dirs; do not fail health on them.
            .env("LUNORA_STORAGE_MIN_FREE_MB", "1");
        if let Some(url) = &self.database_url {
            cmd.env("LUNORA_DATABASE_URL", url);
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = self.command().spawn().context("spawning lunora")?;
        let (tx, rx) = std::sync::mpsc::channel::<Addrs>();
        for pipe in [
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = self.logs.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut addrs = Addrs::default();
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["message"] == "listening" {
                            let addr = v["addr"].as_str().and_then(|a| a.parse().ok());
                            match v["service"].as_str() {
                                Some("http") => addrs.http = addr,
                                Some("rtmp") => addrs.rtmp = addr,
                                Some("srt") => addrs.srt = addr,
                                _ => {}
                            }
                            let _ = tx.send(addrs.clone());
                        }
                    }
                    if std::env::var_os("LUNORA_TEST_ECHO_LOGS").is_some() {
                        eprintln!("[lunora] {line}");
                    }
                    if let Ok(mut l) = logs.lock() {
                        l.push(line);
                    }
                }
            });
        }
        drop(tx);
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(60);
        let mut addrs = Addrs::default();
        while addrs.http.is_none() {
            if let Some(status) = self.try_wait()? {
                bail!(
                    "lunora exited with {status} before listening:\n{}",
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "lunora did not report its HTTP address within 60 s:\n{}",
                    self.logs()
                );
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => {
                    addrs.http = a.http.or(addrs.http);
                    addrs.rtmp = a.rtmp.or(addrs.rtmp);
                    addrs.srt = a.srt.or(addrs.srt);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        // Other listeners may be reported just after HTTP.
        while let Ok(a) = rx.recv_timeout(Duration::from_millis(200)) {
            addrs.rtmp = a.rtmp.or(addrs.rtmp);
            addrs.srt = a.srt.or(addrs.srt);
        }
        self.http = addrs.http.unwrap_or(self.http);
        self.addrs = addrs;
        self.wait_healthy(Duration::from_secs(30)).await
    }

    async fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait()? {
                bail!("lunora exited with {status}:\n{}", self.logs());
            }
            if let Ok(r) = self
                .client
                .get(self.url("/api/v1/health/overall"))
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("lunora did not become healthy:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => bail!("the server is not running"),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The RTMP address the server bound, when it has one.
    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.addrs.rtmp
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends SIGTERM and waits up to `within` for the exit status.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.pid().ok_or_else(|| anyhow!("not running"))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.try_wait()? {
                self.child = None;
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!("lunora did not stop within {within:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the binary again on the same data dir and database (after [`kill9`] or
    /// [`terminate`]). Ports are new.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.kill9();
        }
        self.spawn().await
    }

    pub fn data_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.data_dir.join(rel)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

/// Requires an external program for a test: fails in CI (where the test script installs it),
/// and tells the developer how to get it.
pub fn require(program: &str, package: &str) -> anyhow::Result<()> {
    if have(program) {
        Ok(())
    } else {
        bail!("`{program}` is not installed: `apt-get install {package}` (scripts/test.sh does it)")
    }
}

/// The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 secret at `unix_secs`, as an
/// authenticator app would show it.
pub fn totp_code(secret_base32: &str, unix_secs: u64) -> anyhow::Result<String> {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_string())
        .to_bytes()
        .map_err(|e| anyhow!("not a base32 secret: {e:?}"))?;
    let t = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        "test".to_string(),
    )
    .map_err(|e| anyhow!("bad TOTP secret: {e}"))?;
    Ok(t.generate(unix_secs))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
