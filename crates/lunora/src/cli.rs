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
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and where each value came from;
    /// exit non-zero naming the bad key when it is invalid.
    Check(ConfigArgs),
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
        Command::Config(ConfigCommand::Check(args)) => config_check(&args),
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
