//! The command line: `lunora serve`, `lunora config check`, `lunora version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, RawConfig};

#[derive(Debug, Parser)]
#[command(
    name = "lunora",
    version,
    about = "Lunora, the self-hosted live media platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: HTTP API and UI, RTMP and SRT ingest, media engine.
    Serve(ConfigArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API (the web UI generates its types from it).
    Openapi,
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and where each value came from;
    /// exit non-zero naming the bad key when it is invalid.
    Check(ConfigArgs),
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every sealed value (stream keys, TOTP secrets, outbox mail) under a new master
    /// key in one transaction, keep the old key file as a backup, then install the new one.
    /// Stop the server first; signed-in users sign in again (access tokens are signed with a key
    /// derived from the master key).
    RotateMasterKey(ConfigArgs),
}

/// Options shared by every command that reads the configuration. Flags win over `LUNORA_*`
/// environment variables, which win over the file.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (database, media, recordings).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// sqlite://PATH or postgres://USER:PASS@HOST/DB.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// HTTP address, e.g. 0.0.0.0:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// RTMP address, e.g. 0.0.0.0:1935.
    #[arg(long, value_name = "ADDR")]
    pub rtmp_addr: Option<String>,
    /// SRT address, e.g. 0.0.0.0:9998.
    #[arg(long, value_name = "ADDR")]
    pub srt_addr: Option<String>,
    /// Log format: pretty or json.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Any other option as KEY=VALUE with its dotted name (see `lunora config check`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    fn flags(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut flags = Vec::new();
        let named = [
            ("data_dir", &self.data_dir),
            ("database_url", &self.database_url),
            ("http.addr", &self.http_addr),
            ("rtmp.addr", &self.rtmp_addr),
            ("srt.addr", &self.srt_addr),
            ("log.format", &self.log_format),
        ];
        for (key, value) in named {
            if let Some(v) = value {
                flags.push((key.to_string(), v.clone()));
            }
        }
        for kv in &self.set {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: "--set",
                source_name: "flag",
                message: format!("`{kv}` is not KEY=VALUE"),
            })?;
            flags.push((k.trim().to_string(), v.to_string()));
        }
        Ok(flags)
    }

    /// Gathers and validates the configuration from file, environment and flags.
    pub fn load(&self) -> Result<(RawConfig, Config), ConfigError> {
        let raw = RawConfig::gather(self.config.as_deref(), std::env::vars(), &self.flags()?)?;
        let config = Config::from_raw(&raw)?;
        Ok((raw, config))
    }
}

/// Entry point of the binary.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("lunora {}", lunora_api::VERSION);
            ExitCode::SUCCESS
        }
        Command::Openapi => match lunora_api::openapi().to_pretty_json() {
            Ok(doc) => {
                use std::io::Write;
                // A closed pipe (`| head`) is not an error worth a panic.
                let _ = writeln!(std::io::stdout(), "{doc}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lunora: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Config(ConfigCommand::Check(args)) => config_check(&args),
        Command::Secrets(SecretsCommand::RotateMasterKey(args)) => match args.load() {
            Ok((_, config)) => rotate_master_key(&config),
            Err(e) => {
                eprintln!("lunora: configuration error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => match args.load() {
            Ok((_, config)) => crate::serve::run(config),
            Err(e) => {
                eprintln!("lunora: configuration error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn config_check(args: &ConfigArgs) -> ExitCode {
    match args.load() {
        Ok((raw, config)) => {
            for (key, value, source) in raw.describe(&config) {
                println!("{key} = {value:?}  # {source}");
            }
            println!("# configuration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lunora: configuration error: {e}");
            ExitCode::from(2)
        }
    }
}

fn rotate_master_key(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lunora: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rotate(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lunora: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn rotate(config: &Config) -> anyhow::Result<()> {
    use anyhow::Context;
    use lunora_store::rekey::{generate_master_key, write_master_key};

    let path = &config.master_key_file;
    if !path.is_file() {
        anyhow::bail!(
            "there is no master key at {}: nothing to rotate",
            path.display()
        );
    }
    let old =
        lunora_store::SecretBox::load_or_create(path).context("the master key is not usable")?;
    let db = lunora_store::Db::open(&lunora_store::DbConfig::new(&config.database_url))
        .await
        .context("the database is not usable")?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "master.key".into());
    let pending = path.with_file_name(format!("{file_name}.new"));
    if pending.exists() {
        anyhow::bail!(
            "{} exists: an earlier rotation did not finish. If the database was re-encrypted, \
             move it over {}; otherwise delete it, then run this again",
            pending.display(),
            path.display()
        );
    }
    // 1. Keep the old key.
    let backup = path.with_file_name(format!("{file_name}.bak-{}", lunora_store::now_ms()));
    std::fs::copy(path, &backup)
        .with_context(|| format!("cannot back up the master key to {}", backup.display()))?;
    // 2. The new key, beside the old one until the database is re-encrypted.
    let key = generate_master_key();
    write_master_key(&pending, &key)
        .with_context(|| format!("cannot write {}", pending.display()))?;
    let new = lunora_store::SecretBox::new(key);
    // 3. Every sealed value, in one transaction.
    let count = match db.reseal_all(&old, &new).await {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&pending);
            let _ = std::fs::remove_file(&backup);
            return Err(anyhow::Error::new(e).context("re-encrypting failed; nothing was changed"));
        }
    };
    db.close().await;
    // 4. Install the new key (an atomic rename over the old one).
    std::fs::rename(&pending, path).with_context(|| {
        format!(
            "the database now uses the key in {}, but it could not replace {}: move it there by hand",
            pending.display(),
            path.display()
        )
    })?;
    println!(
        "re-encrypted {count} sealed values under a new master key at {}",
        path.display()
    );
    println!("the old key is kept at {}", backup.display());
    println!("signed-in users must sign in again; refresh tokens keep working");
    Ok(())
}
