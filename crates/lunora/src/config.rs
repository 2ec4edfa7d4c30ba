//! Configuration in two stages.
//!
//! Stage one gathers raw string values per key from, in rising precedence, built-in defaults,
//! the TOML file (`--config`), `LUNORA_*` environment variables and command-line flags; unknown
//! keys in the file are refused with their path. Stage two parses every value into [`Config`],
//! naming the key and where its bad value came from.
//!
//! Every option is declared once, in [`KEYS`]: its dotted name, its environment variable, its
//! default, whether it is a secret (masked in `lunora config check`) and what it means.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// One configuration option.
pub struct Key {
    /// Dotted name, as in the TOML file (`http.addr` is `[http] addr = …`).
    pub name: &'static str,
    pub env: &'static str,
    /// Default as text; `None` when unset means "derived" or "off".
    pub default: Option<&'static str>,
    pub secret: bool,
    pub doc: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "data_dir",
        env: "LUNORA_DATA_DIR",
        default: Some("./data"),
        secret: false,
        doc: "Directory for the SQLite database, media, recordings and generated keys.",
    },
    Key {
        name: "database_url",
        env: "LUNORA_DATABASE_URL",
        default: None,
        secret: true,
        doc: "sqlite://PATH or postgres://USER:PASS@HOST/DB; default: SQLite file lunora.db in the data dir.",
    },
    Key {
        name: "master_key_file",
        env: "LUNORA_MASTER_KEY_FILE",
        default: None,
        secret: false,
        doc: "File with the 32-byte master key (base64) that seals stream keys; generated with mode 0600 on first start. Default: master.key in the data dir.",
    },
    Key {
        name: "admin.email",
        env: "LUNORA_ADMIN_EMAIL",
        default: None,
        secret: false,
        doc: "Email of the first administrator, created on first start with an empty database.",
    },
    Key {
        name: "admin.password",
        env: "LUNORA_ADMIN_PASSWORD",
        default: None,
        secret: true,
        doc: "Password of the first administrator (staff policy: 12+ characters, upper, lower, digit, special).",
    },
    Key {
        name: "rtmp.public_url",
        env: "LUNORA_RTMP_PUBLIC_URL",
        default: None,
        secret: false,
        doc: "rtmp://host:port publishers should use, when it differs from this server's address (proxy, NAT).",
    },
    Key {
        name: "rtmps.extra_ca_file",
        env: "LUNORA_RTMPS_EXTRA_CA_FILE",
        default: None,
        secret: false,
        doc: "PEM file of extra CA certificates trusted for rtmps:// destinations, besides the system's.",
    },
    Key {
        name: "http.addr",
        env: "LUNORA_HTTP_ADDR",
        default: Some("0.0.0.0:8080"),
        secret: false,
        doc: "Address of the HTTP server (API, UI, HLS, metrics). Port 0 picks a free port.",
    },
    Key {
        name: "http.body_limit",
        env: "LUNORA_HTTP_BODY_LIMIT",
        default: Some("1048576"),
        secret: false,
        doc: "Largest request body in bytes.",
    },
    Key {
        name: "http.request_timeout",
        env: "LUNORA_HTTP_REQUEST_TIMEOUT",
        default: Some("30"),
        secret: false,
        doc: "Seconds a plain API request may take.",
    },
    Key {
        name: "rtmp.addr",
        env: "LUNORA_RTMP_ADDR",
        default: Some("0.0.0.0:1935"),
        secret: false,
        doc: "Address of the RTMP ingest and play server. Port 0 picks a free port.",
    },
    Key {
        name: "srt.addr",
        env: "LUNORA_SRT_ADDR",
        default: Some("0.0.0.0:9998"),
        secret: false,
        doc: "Address of the SRT listener. Port 0 picks a free port.",
    },
    Key {
        name: "log.format",
        env: "LUNORA_LOG_FORMAT",
        default: Some("pretty"),
        secret: false,
        doc: "pretty (for people) or json (one object per line, for machines).",
    },
    Key {
        name: "log.level",
        env: "LUNORA_LOG_LEVEL",
        default: Some("info"),
        secret: false,
        doc: "A tracing filter: error, warn, info, debug, trace, or per-target directives.",
    },
    Key {
        name: "storage.min_free_mb",
        env: "LUNORA_STORAGE_MIN_FREE_MB",
        default: Some("512"),
        secret: false,
        doc: "Below this much free space in the data dir, health reports the disk unhealthy.",
    },
    Key {
        name: "storage.warm_dir",
        env: "LUNORA_STORAGE_WARM_DIR",
        default: None,
        secret: false,
        doc: "Directory of the warm tier of recordings (a larger, slower disk). Default: warm in the data dir.",
    },
    Key {
        name: "storage.hot_days",
        env: "LUNORA_STORAGE_HOT_DAYS",
        default: Some("7"),
        secret: false,
        doc: "Days after its end a recording moves from the hot to the warm tier (fractions allowed).",
    },
    Key {
        name: "storage.warm_days",
        env: "LUNORA_STORAGE_WARM_DAYS",
        default: Some("30"),
        secret: false,
        doc: "Days after its end a recording moves from the warm to the cold tier, when storage.cold.url is set.",
    },
    Key {
        name: "storage.retention_days",
        env: "LUNORA_STORAGE_RETENTION_DAYS",
        default: Some("0"),
        secret: false,
        doc: "Days after its end a recording is deleted from every tier; 0 keeps recordings.",
    },
    Key {
        name: "storage.lifecycle_interval",
        env: "LUNORA_STORAGE_LIFECYCLE_INTERVAL",
        default: Some("3600"),
        secret: false,
        doc: "Seconds between runs of the storage lifecycle (tier moves and retention).",
    },
    Key {
        name: "viewer.settle_interval",
        env: "LUNORA_VIEWER_SETTLE_INTERVAL",
        default: Some("300"),
        secret: false,
        doc: "Seconds between background rounds that renew or expire subscriptions whose period ended.",
    },
    Key {
        name: "storage.cold.url",
        env: "LUNORA_STORAGE_COLD_URL",
        default: None,
        secret: false,
        doc: "s3://bucket or s3://bucket/prefix of the cold tier (any S3-compatible store); unset keeps recordings warm.",
    },
    Key {
        name: "storage.cold.endpoint",
        env: "LUNORA_STORAGE_COLD_ENDPOINT",
        default: None,
        secret: false,
        doc: "http(s)://host:port of a non-AWS S3-compatible server (MinIO, Garage, Ceph); unset for AWS.",
    },
    Key {
        name: "storage.cold.region",
        env: "LUNORA_STORAGE_COLD_REGION",
        default: Some("us-east-1"),
        secret: false,
        doc: "Region of the cold store's bucket.",
    },
    Key {
        name: "storage.cold.access_key_id",
        env: "LUNORA_STORAGE_COLD_ACCESS_KEY_ID",
        default: None,
        secret: false,
        doc: "Access key id for the cold store.",
    },
    Key {
        name: "storage.cold.secret_access_key",
        env: "LUNORA_STORAGE_COLD_SECRET_ACCESS_KEY",
        default: None,
        secret: true,
        doc: "Secret access key for the cold store.",
    },
    Key {
        name: "shutdown.grace",
        env: "LUNORA_SHUTDOWN_GRACE",
        default: Some("8"),
        secret: false,
        doc: "Seconds to drain in-flight work on SIGTERM/SIGINT before exiting.",
    },
    Key {
        name: "http.public_url",
        env: "LUNORA_HTTP_PUBLIC_URL",
        default: None,
        secret: false,
        doc: "Base URL of links in e-mail (https://lunora.example.com); default: the request's host.",
    },
    Key {
        name: "http.app_hosts",
        env: "LUNORA_HTTP_APP_HOSTS",
        default: None,
        secret: false,
        doc: "Host names that open one app at `/`, as app=host pairs: stream=stream.example.com,admin=admin.example.com (apps: stream, admin, ads, watch, account).",
    },
    Key {
        name: "auth.cookie_domain",
        env: "LUNORA_AUTH_COOKIE_DOMAIN",
        default: None,
        secret: false,
        doc: "Domain of the sign-in cookies (example.com) so one sign-in serves the apps on its sub-domains; unset keeps them to the host that set them.",
    },
    Key {
        name: "auth.access_ttl",
        env: "LUNORA_AUTH_ACCESS_TTL",
        default: Some("900"),
        secret: false,
        doc: "Seconds an access token (JWT) is valid; refresh tokens renew it.",
    },
    Key {
        name: "auth.staff_mfa",
        env: "LUNORA_AUTH_STAFF_MFA",
        default: Some("required"),
        secret: false,
        doc: "TOTP for staff in organizations that set no policy: required (enrol at first sign-in) or optional (for local trials).",
    },
    Key {
        name: "auth.password_max_age_days",
        env: "LUNORA_AUTH_PASSWORD_MAX_AGE_DAYS",
        default: Some("90"),
        secret: false,
        doc: "Days after which a staff password must be changed at sign-in; 0 never expires them.",
    },
    Key {
        name: "auth.password_history",
        env: "LUNORA_AUTH_PASSWORD_HISTORY",
        default: Some("12"),
        secret: false,
        doc: "A new staff password may not be one of this many recent ones.",
    },
    Key {
        name: "auth.operator.max_sessions",
        env: "LUNORA_AUTH_OPERATOR_MAX_SESSIONS",
        default: Some("2"),
        secret: false,
        doc: "Concurrent sessions of an operator; signing in once more ends the oldest.",
    },
    Key {
        name: "auth.operator.session_timeout",
        env: "LUNORA_AUTH_OPERATOR_SESSION_TIMEOUT",
        default: Some("28800"),
        secret: false,
        doc: "Seconds an operator session lasts at most (absolute timeout).",
    },
    Key {
        name: "auth.operator.idle_timeout",
        env: "LUNORA_AUTH_OPERATOR_IDLE_TIMEOUT",
        default: Some("7200"),
        secret: false,
        doc: "Seconds of inactivity after which an operator session ends.",
    },
    Key {
        name: "auth.admin.max_sessions",
        env: "LUNORA_AUTH_ADMIN_MAX_SESSIONS",
        default: Some("5"),
        secret: false,
        doc: "Concurrent sessions of every other role (administrators and the rest).",
    },
    Key {
        name: "auth.admin.session_timeout",
        env: "LUNORA_AUTH_ADMIN_SESSION_TIMEOUT",
        default: Some("43200"),
        secret: false,
        doc: "Seconds an administrator (or other non-operator) session lasts at most.",
    },
    Key {
        name: "auth.admin.idle_timeout",
        env: "LUNORA_AUTH_ADMIN_IDLE_TIMEOUT",
        default: Some("14400"),
        secret: false,
        doc: "Seconds of inactivity after which an administrator (or other non-operator) session ends.",
    },
    Key {
        name: "auth.lockout.slowdown_after",
        env: "LUNORA_AUTH_LOCKOUT_SLOWDOWN_AFTER",
        default: Some("3"),
        secret: false,
        doc: "Failed sign-ins of one account from one address after which each try must wait 1, 2, 4, … s (0: never).",
    },
    Key {
        name: "auth.lockout.threshold",
        env: "LUNORA_AUTH_LOCKOUT_THRESHOLD",
        default: Some("10"),
        secret: false,
        doc: "Failed sign-ins of one account from one address that lock that pair out (0: never).",
    },
    Key {
        name: "auth.lockout.duration",
        env: "LUNORA_AUTH_LOCKOUT_DURATION",
        default: Some("900"),
        secret: false,
        doc: "Seconds a sign-in lock lasts, and failures are remembered.",
    },
    Key {
        name: "auth.lockout.account_threshold",
        env: "LUNORA_AUTH_LOCKOUT_ACCOUNT_THRESHOLD",
        default: Some("100"),
        secret: false,
        doc: "Failed sign-ins of one account from all addresses that lock it for addresses it never signed in from (0: never).",
    },
    Key {
        name: "auth.lockout.ip_threshold",
        env: "LUNORA_AUTH_LOCKOUT_IP_THRESHOLD",
        default: Some("200"),
        secret: false,
        doc: "Failed sign-ins from one address over all accounts that lock the address out (0: never).",
    },
    Key {
        name: "ratelimit.staff_per_minute",
        env: "LUNORA_RATELIMIT_STAFF_PER_MINUTE",
        default: Some("600"),
        secret: false,
        doc: "API requests per minute of one staff member signed in with a session (0: unlimited).",
    },
    Key {
        name: "ratelimit.audience_per_minute",
        env: "LUNORA_RATELIMIT_AUDIENCE_PER_MINUTE",
        default: Some("120"),
        secret: false,
        doc: "API requests per minute of one audience member (0: unlimited).",
    },
    Key {
        name: "ratelimit.api_token_per_minute",
        env: "LUNORA_RATELIMIT_API_TOKEN_PER_MINUTE",
        default: Some("600"),
        secret: false,
        doc: "API requests per minute of one API token (0: unlimited).",
    },
    Key {
        name: "ratelimit.anonymous_per_minute",
        env: "LUNORA_RATELIMIT_ANONYMOUS_PER_MINUTE",
        default: Some("120"),
        secret: false,
        doc: "Requests per minute to public API routes from one address (0: unlimited).",
    },
    Key {
        name: "ratelimit.auth_per_minute",
        env: "LUNORA_RATELIMIT_AUTH_PER_MINUTE",
        default: Some("30"),
        secret: false,
        doc: "Sign-in, sign-up, invitation and password-reset requests per minute from one address (0: unlimited).",
    },
    Key {
        name: "audit.retention_days",
        env: "LUNORA_AUDIT_RETENTION_DAYS",
        default: Some("90"),
        secret: false,
        doc: "Days the audit log (and the e-mail outbox) keeps entries.",
    },
    Key {
        name: "smtp.url",
        env: "LUNORA_SMTP_URL",
        default: None,
        secret: true,
        doc: "smtp://user:pass@host:587?tls=required or smtps://user:pass@host:465; unset keeps e-mail in the outbox (GET /api/v1/outbox).",
    },
    Key {
        name: "smtp.from",
        env: "LUNORA_SMTP_FROM",
        default: Some("Lunora <no-reply@localhost>"),
        secret: false,
        doc: "From: address of e-mail Lunora sends.",
    },
];

/// Where a value came from, reported by `lunora config check` and in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("unknown configuration key `{key}` (from {source_name}); known keys: {known}")]
    UnknownKey {
        key: String,
        source_name: &'static str,
        known: String,
    },
    #[error("invalid value for `{key}` (from {source_name}): {message}")]
    Invalid {
        key: &'static str,
        source_name: &'static str,
        message: String,
    },
}

impl ConfigError {
    /// The key at fault, for tools that want it alone.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } => Some(key),
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Raw values by key, with their sources.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl RawConfig {
    /// Gathers values from defaults, the file, the environment and the flags, in that order.
    pub fn gather(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(String, String)],
    ) -> Result<RawConfig, ConfigError> {
        let mut raw = RawConfig::default();
        for key in KEYS {
            if let Some(d) = key.default {
                raw.values
                    .insert(key.name, (d.to_string(), Source::Default));
            }
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Toml {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })?;
            let mut flat = Vec::new();
            flatten("", &toml::Value::Table(table), &mut flat);
            for (name, value) in flat {
                raw.set(&name, value, Source::File)?;
            }
        }
        for (var, value) in env {
            if let Some(key) = KEYS.iter().find(|k| k.env == var) {
                raw.values.insert(key.name, (value, Source::Env));
            }
        }
        for (name, value) in flags {
            raw.set(name, value.clone(), Source::Flag)?;
        }
        Ok(raw)
    }

    fn set(&mut self, name: &str, value: String, source: Source) -> Result<(), ConfigError> {
        let key = KEYS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| ConfigError::UnknownKey {
                key: name.to_string(),
                source_name: source.name(),
                known: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
            })?;
        self.values.insert(key.name, (value, source));
        Ok(())
    }

    fn get(&self, name: &'static str) -> Option<(&str, Source)> {
        self.values.get(name).map(|(v, s)| (v.as_str(), *s))
    }

    /// Each key with its effective value (secrets masked) and source.
    pub fn describe(&self, resolved: &Config) -> Vec<(&'static str, String, &'static str)> {
        KEYS.iter()
            .map(|k| {
                let (value, source) = match self.get(k.name) {
                    Some((v, s)) => (v.to_string(), s.name()),
                    None if k.name == "database_url" => (resolved.database_url.clone(), "derived"),
                    None if k.name == "master_key_file" => {
                        (resolved.master_key_file.display().to_string(), "derived")
                    }
                    None => (String::new(), "unset"),
                };
                let shown = if k.secret { mask_secret(&value) } else { value };
                (k.name, shown, source)
            })
            .collect()
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Masks a secret for display: URLs keep everything but their password, other values keep at
/// most their last 4 characters.
pub fn mask_secret(value: &str) -> String {
    if let Some((scheme, rest)) = value.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                return format!("{scheme}://{user}:****@{host}");
            }
        }
        return value.to_string();
    }
    let n = value.chars().count();
    if n <= 8 {
        "****".to_string()
    } else {
        let tail: String = value.chars().skip(n - 4).collect();
        format!("****{tail}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The validated configuration, passed explicitly to whatever needs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub http_addr: SocketAddr,
    pub http_body_limit: usize,
    pub http_request_timeout: Duration,
    pub rtmp_addr: SocketAddr,
    pub srt_addr: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    pub storage_min_free_bytes: u64,
    pub shutdown_grace: Duration,
    /// Between background rounds of subscription renewal and expiry.
    pub viewer_settle_interval: Duration,
    pub master_key_file: PathBuf,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub rtmp_public_url: Option<String>,
    pub rtmps_extra_ca_file: Option<PathBuf>,
    /// Storage tiers of recordings.
    pub storage: lunora_api::tiers::StorageConfig,
    /// Sign-in, sessions, MFA, abuse limits, audit retention and e-mail.
    pub auth: lunora_api::auth::AuthConfig,
}

impl Config {
    pub fn from_raw(raw: &RawConfig) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(text(raw, "data_dir")?);
        let database_url = match raw.get("database_url") {
            Some((url, source)) => {
                let ok = url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://");
                if !ok {
                    return Err(ConfigError::Invalid {
                        key: "database_url",
                        source_name: source.name(),
                        message: "expected sqlite://PATH or postgres://USER:PASS@HOST/DB"
                            .to_string(),
                    });
                }
                url.to_string()
            }
            None => format!("sqlite://{}", data_dir.join("lunora.db").display()),
        };
        Ok(Config {
            database_url,
            http_addr: parse(raw, "http.addr", parse_addr)?,
            http_body_limit: parse(raw, "http.body_limit", |s| {
                parse_range::<usize>(s, 1024, 1024 * 1024 * 1024)
            })?,
            http_request_timeout: parse(raw, "http.request_timeout", parse_seconds)?,
            rtmp_addr: parse(raw, "rtmp.addr", parse_addr)?,
            srt_addr: parse(raw, "srt.addr", parse_addr)?,
            log_format: parse(raw, "log.format", |s| match s {
                "pretty" => Ok(LogFormat::Pretty),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("expected `pretty` or `json`, got `{other}`")),
            })?,
            log_level: parse(raw, "log.level", |s| {
                tracing_subscriber::EnvFilter::try_new(s)
                    .map(|_| s.to_string())
                    .map_err(|e| e.to_string())
            })?,
            storage_min_free_bytes: parse(raw, "storage.min_free_mb", |s| {
                parse_range::<u64>(s, 0, 1 << 30).map(|mb| mb * 1024 * 1024)
            })?,
            shutdown_grace: parse(raw, "shutdown.grace", parse_seconds)?,
            viewer_settle_interval: parse(raw, "viewer.settle_interval", positive_seconds)?,
            master_key_file: raw
                .get("master_key_file")
                .map(|(v, _)| PathBuf::from(v))
                .unwrap_or_else(|| data_dir.join("master.key")),
            admin_email: raw.get("admin.email").map(|(v, _)| v.to_string()),
            admin_password: raw.get("admin.password").map(|(v, _)| v.to_string()),
            rtmp_public_url: match raw.get("rtmp.public_url") {
                Some((v, source)) if !v.starts_with("rtmp://") && !v.starts_with("rtmps://") => {
                    return Err(ConfigError::Invalid {
                        key: "rtmp.public_url",
                        source_name: source.name(),
                        message: "expected rtmp://host:port or rtmps://host:port".into(),
                    })
                }
                other => other.map(|(v, _)| v.to_string()),
            },
            auth: auth_config(raw)?,
            rtmps_extra_ca_file: raw
                .get("rtmps.extra_ca_file")
                .map(|(v, _)| PathBuf::from(v)),
            storage: storage(raw)?,
            data_dir,
        })
    }
}

fn positive_seconds(s: &str) -> Result<Duration, String> {
    let d = parse_seconds(s)?;
    if d.is_zero() {
        return Err("must be more than 0 seconds".to_string());
    }
    Ok(d)
}

fn auth_config(raw: &RawConfig) -> Result<lunora_api::auth::AuthConfig, ConfigError> {
    use lunora_api::auth::{
        AuthConfig, LockoutPolicy, MfaPolicy, RateLimits, SessionPolicy, SmtpUrl,
    };
    let days = |key: &'static str| parse(raw, key, |s| parse_range::<u64>(s, 0, 36_500));
    let count = |key: &'static str, max: u32| parse(raw, key, |s| parse_range::<u32>(s, 0, max));
    let per_minute = |key: &'static str| count(key, 1_000_000);
    let session = |max: &'static str,
                   absolute: &'static str,
                   idle: &'static str|
     -> Result<SessionPolicy, ConfigError> {
        Ok(SessionPolicy {
            max_sessions: parse(raw, max, |s| parse_range::<usize>(s, 1, 1000))?,
            absolute: parse(raw, absolute, positive_seconds)?,
            idle: parse(raw, idle, positive_seconds)?,
        })
    };
    let max_age = days("auth.password_max_age_days")?;
    let retention = days("audit.retention_days")?.max(1);
    Ok(AuthConfig {
        access_ttl: parse(raw, "auth.access_ttl", positive_seconds)?,
        operator: session(
            "auth.operator.max_sessions",
            "auth.operator.session_timeout",
            "auth.operator.idle_timeout",
        )?,
        admin: session(
            "auth.admin.max_sessions",
            "auth.admin.session_timeout",
            "auth.admin.idle_timeout",
        )?,
        staff_mfa: parse(raw, "auth.staff_mfa", |s| {
            MfaPolicy::parse(s)
                .ok_or_else(|| format!("expected `required` or `optional`, got `{s}`"))
        })?,
        staff_password_max_age: (max_age > 0).then(|| Duration::from_secs(max_age * 86_400)),
        password_history: count("auth.password_history", 100)?.max(1),
        lockout: LockoutPolicy {
            slowdown_after: count("auth.lockout.slowdown_after", 1000)?,
            threshold: count("auth.lockout.threshold", 100_000)?,
            duration: parse(raw, "auth.lockout.duration", positive_seconds)?,
            account_threshold: count("auth.lockout.account_threshold", 10_000_000)?,
            ip_threshold: count("auth.lockout.ip_threshold", 10_000_000)?,
        },
        rate: RateLimits {
            staff_per_minute: per_minute("ratelimit.staff_per_minute")?,
            audience_per_minute: per_minute("ratelimit.audience_per_minute")?,
            api_token_per_minute: per_minute("ratelimit.api_token_per_minute")?,
            anonymous_per_minute: per_minute("ratelimit.anonymous_per_minute")?,
            auth_per_minute: per_minute("ratelimit.auth_per_minute")?,
        },
        audit_retention: Duration::from_secs(retention * 86_400),
        smtp_url: match raw.get("smtp.url") {
            Some((v, source)) if !v.starts_with("smtp://") && !v.starts_with("smtps://") => {
                return Err(ConfigError::Invalid {
                    key: "smtp.url",
                    source_name: source.name(),
                    message: "expected smtp://[user:pass@]host[:port] or smtps://…".into(),
                })
            }
            Some((v, _)) if !v.trim().is_empty() => Some(SmtpUrl(v.trim().to_string())),
            _ => None,
        },
        mail_from: text(raw, "smtp.from")?,
        public_url: match raw.get("http.public_url") {
            Some((v, source)) if !v.starts_with("http://") && !v.starts_with("https://") => {
                return Err(ConfigError::Invalid {
                    key: "http.public_url",
                    source_name: source.name(),
                    message: "expected http://host[:port] or https://host[:port]".into(),
                })
            }
            other => other.map(|(v, _)| v.trim_end_matches('/').to_string()),
        },
        cookie_domain: match raw.get("auth.cookie_domain") {
            Some((v, source)) => {
                let d = v.trim().trim_start_matches('.');
                if d.is_empty()
                    || !d
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(ConfigError::Invalid {
                        key: "auth.cookie_domain",
                        source_name: source.name(),
                        message: format!("expected a domain name such as example.com, got `{v}`"),
                    });
                }
                Some(d.to_ascii_lowercase())
            }
            None => None,
        },
        app_hosts: match raw.get("http.app_hosts") {
            Some((v, source)) => app_hosts(v).map_err(|message| ConfigError::Invalid {
                key: "http.app_hosts",
                source_name: source.name(),
                message,
            })?,
            None => Vec::new(),
        },
        ..AuthConfig::default()
    })
}

/// Parses `app=host,app=host` into (host, app path).
fn app_hosts(v: &str) -> Result<Vec<(String, &'static str)>, String> {
    const APPS: [(&str, &str); 5] = [
        ("stream", "/stream"),
        ("admin", "/admin"),
        ("ads", "/ads"),
        ("watch", "/watch"),
        ("account", "/account"),
    ];
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (app, host) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected app=host, got `{pair}`"))?;
        let path = APPS
            .iter()
            .find(|(name, _)| *name == app.trim())
            .map(|(_, path)| *path)
            .ok_or_else(|| {
                format!(
                    "unknown app `{}`: expected stream, admin, ads, watch or account",
                    app.trim()
                )
            })?;
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(format!(
                "expected a host name for `{}`, got `{host}`",
                app.trim()
            ));
        }
        if out.iter().any(|(h, _)| *h == host) {
            return Err(format!("host `{host}` is given to two apps"));
        }
        out.push((host, path));
    }
    Ok(out)
}

fn storage(raw: &RawConfig) -> Result<lunora_api::tiers::StorageConfig, ConfigError> {
    let days = |key: &'static str| {
        parse(raw, key, |s| {
            let v: f64 = s
                .parse()
                .map_err(|_| format!("`{s}` is not a number of days"))?;
            if !(0.0..=36_500.0).contains(&v) {
                return Err(format!("{v} days is outside 0–36500"));
            }
            Ok(Duration::from_secs_f64(v * 86_400.0))
        })
    };
    let optional = |key: &'static str| raw.get(key).map(|(v, _)| v.to_string());
    let cold = match raw.get("storage.cold.url") {
        Some((url, source)) => {
            lunora_api::tiers::parse_s3_url(url).map_err(|message| ConfigError::Invalid {
                key: "storage.cold.url",
                source_name: source.name(),
                message,
            })?;
            let endpoint = optional("storage.cold.endpoint");
            if let (Some(e), Some((_, source))) = (&endpoint, raw.get("storage.cold.endpoint")) {
                if !e.starts_with("http://") && !e.starts_with("https://") {
                    return Err(ConfigError::Invalid {
                        key: "storage.cold.endpoint",
                        source_name: source.name(),
                        message: "expected http://host:port or https://host:port".into(),
                    });
                }
            }
            Some(lunora_api::tiers::ColdStore {
                url: url.to_string(),
                endpoint,
                region: text(raw, "storage.cold.region")?,
                access_key_id: optional("storage.cold.access_key_id"),
                secret_access_key: optional("storage.cold.secret_access_key"),
            })
        }
        None => None,
    };
    let retention = days("storage.retention_days")?;
    let interval = parse(raw, "storage.lifecycle_interval", parse_seconds)?;
    if interval.is_zero() {
        return Err(ConfigError::Invalid {
            key: "storage.lifecycle_interval",
            source_name: raw
                .get("storage.lifecycle_interval")
                .map_or("default", |(_, s)| s.name()),
            message: "must be more than 0 seconds".into(),
        });
    }
    Ok(lunora_api::tiers::StorageConfig {
        warm_dir: raw.get("storage.warm_dir").map(|(v, _)| PathBuf::from(v)),
        hot_max_age: days("storage.hot_days")?,
        warm_max_age: days("storage.warm_days")?,
        retention: (!retention.is_zero()).then_some(retention),
        interval,
        cold,
    })
}

fn text(raw: &RawConfig, key: &'static str) -> Result<String, ConfigError> {
    parse(raw, key, |s| {
        if s.trim().is_empty() {
            Err("must not be empty".to_string())
        } else {
            Ok(s.to_string())
        }
    })
}

fn parse<T>(
    raw: &RawConfig,
    key: &'static str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let (value, source) = raw.get(key).ok_or(ConfigError::Invalid {
        key,
        source_name: "default",
        message: "missing".to_string(),
    })?;
    f(value.trim()).map_err(|message| ConfigError::Invalid {
        key,
        source_name: source.name(),
        message,
    })
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("`{s}` is not an IP address with a port, such as 0.0.0.0:8080 or [::]:8080")
    })
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{v} s is outside 0–86400 s"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_range<T>(s: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside {min}–{max}"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let raw = RawConfig::gather(None, env(&[]), &[]).unwrap();
        let c = Config::from_raw(&raw).unwrap();
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.rtmp_addr.to_string(), "0.0.0.0:1935");
        assert_eq!(c.srt_addr.to_string(), "0.0.0.0:9998");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database_url, "sqlite://./data/lunora.db");
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lunora.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/lunora\"\n[http]\naddr = \"127.0.0.1:1000\"\n[rtmp]\naddr = \"127.0.0.1:1001\"\n[srt]\naddr = \"127.0.0.1:1002\"\n",
        )
        .unwrap();
        let raw = RawConfig::gather(
            Some(&file),
            env(&[
                ("LUNORA_HTTP_ADDR", "127.0.0.1:2000"),
                ("LUNORA_RTMP_ADDR", "127.0.0.1:2001"),
            ]),
            &[("http.addr".to_string(), "127.0.0.1:3000".to_string())],
        )
        .unwrap();
        let c = Config::from_raw(&raw).unwrap();
        assert_eq!(c.http_addr.port(), 3000);
        assert_eq!(c.rtmp_addr.port(), 2001);
        assert_eq!(c.srt_addr.port(), 1002);
        assert_eq!(c.database_url, "sqlite:///srv/lunora/lunora.db");
    }

    #[test]
    fn unknown_file_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lunora.toml");
        std::fs::write(&file, "[http]\nadress = \"x\"\n").unwrap();
        let err = RawConfig::gather(Some(&file), env(&[]), &[]).unwrap_err();
        assert_eq!(err.key(), Some("http.adress"));
    }

    #[test]
    fn bad_values_name_the_key_and_source() {
        let raw = RawConfig::gather(None, env(&[("LUNORA_HTTP_ADDR", "localhost")]), &[]).unwrap();
        let err = Config::from_raw(&raw).unwrap_err();
        assert_eq!(err.key(), Some("http.addr"));
        assert!(err.to_string().contains("from env"), "{err}");
        let raw = RawConfig::gather(None, env(&[("LUNORA_LOG_FORMAT", "xml")]), &[]).unwrap();
        assert_eq!(
            Config::from_raw(&raw).unwrap_err().key(),
            Some("log.format")
        );
        let raw =
            RawConfig::gather(None, env(&[("LUNORA_DATABASE_URL", "mysql://x")]), &[]).unwrap();
        assert_eq!(
            Config::from_raw(&raw).unwrap_err().key(),
            Some("database_url")
        );
    }

    #[test]
    fn identity_defaults_follow_the_seeds_and_env_overrides_them() {
        let raw = RawConfig::gather(None, env(&[]), &[]).unwrap();
        let a = Config::from_raw(&raw).unwrap().auth;
        assert_eq!(a.staff_mfa, lunora_api::auth::MfaPolicy::Required);
        assert_eq!(a.operator.max_sessions, 2);
        assert_eq!(a.operator.absolute, Duration::from_secs(8 * 3600));
        assert_eq!(a.operator.idle, Duration::from_secs(2 * 3600));
        assert_eq!(a.admin.max_sessions, 5);
        assert_eq!(a.admin.absolute, Duration::from_secs(12 * 3600));
        assert_eq!(a.admin.idle, Duration::from_secs(4 * 3600));
        assert_eq!(a.password_history, 12);
        assert_eq!(
            a.staff_password_max_age,
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(a.audit_retention, Duration::from_secs(90 * 86_400));
        assert!(a.smtp_url.is_none());

        let raw = RawConfig::gather(
            None,
            env(&[
                ("LUNORA_AUTH_STAFF_MFA", "optional"),
                ("LUNORA_AUTH_OPERATOR_IDLE_TIMEOUT", "3"),
                ("LUNORA_AUTH_PASSWORD_MAX_AGE_DAYS", "0"),
                ("LUNORA_SMTP_URL", "smtp://mailer:pw@mail.example:587"),
            ]),
            &[],
        )
        .unwrap();
        let a = Config::from_raw(&raw).unwrap().auth;
        assert_eq!(a.staff_mfa, lunora_api::auth::MfaPolicy::Optional);
        assert_eq!(a.operator.idle, Duration::from_secs(3));
        assert_eq!(a.staff_password_max_age, None);
        assert!(
            !format!("{a:?}").contains("pw@"),
            "the SMTP password is not in Debug"
        );

        for (var, value, key) in [
            ("LUNORA_AUTH_STAFF_MFA", "sometimes", "auth.staff_mfa"),
            (
                "LUNORA_AUTH_ADMIN_IDLE_TIMEOUT",
                "0",
                "auth.admin.idle_timeout",
            ),
            ("LUNORA_SMTP_URL", "mail.example:25", "smtp.url"),
            (
                "LUNORA_HTTP_PUBLIC_URL",
                "lunora.example",
                "http.public_url",
            ),
            (
                "LUNORA_HTTP_APP_HOSTS",
                "studio=stream.example.com",
                "http.app_hosts",
            ),
            (
                "LUNORA_HTTP_APP_HOSTS",
                "stream=a.example.com,admin=a.example.com",
                "http.app_hosts",
            ),
            (
                "LUNORA_AUTH_COOKIE_DOMAIN",
                "exa mple.com",
                "auth.cookie_domain",
            ),
        ] {
            let raw = RawConfig::gather(None, env(&[(var, value)]), &[]).unwrap();
            assert_eq!(
                Config::from_raw(&raw).unwrap_err().key(),
                Some(key),
                "{var}"
            );
        }
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(
            mask_secret("postgres://lunora:hunter2@db:5432/lunora"),
            "postgres://lunora:****@db:5432/lunora"
        );
        assert_eq!(mask_secret("abcdefghijkl"), "****ijkl");
        assert_eq!(mask_secret("short"), "****");
    }

    #[test]
    fn app_hosts_and_cookie_domain() {
        let raw = RawConfig::gather(
            None,
            env(&[
                (
                    "LUNORA_HTTP_APP_HOSTS",
                    " stream=Stream.Example.com , admin=admin.example.com",
                ),
                ("LUNORA_AUTH_COOKIE_DOMAIN", ".Example.com"),
            ]),
            &[],
        )
        .unwrap();
        let a = Config::from_raw(&raw).unwrap().auth;
        assert_eq!(
            a.app_hosts,
            vec![
                ("stream.example.com".to_string(), "/stream"),
                ("admin.example.com".to_string(), "/admin"),
            ]
        );
        assert_eq!(a.cookie_domain.as_deref(), Some("example.com"));
        let raw = RawConfig::gather(None, env(&[]), &[]).unwrap();
        let a = Config::from_raw(&raw).unwrap().auth;
        assert!(a.app_hosts.is_empty() && a.cookie_domain.is_none());
    }
}
