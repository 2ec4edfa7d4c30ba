//! The command line: `run`, `media`, `report`, `free-port`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::hls::HlsMode;
use crate::media::{default_cache_dir, ensure_file, Clip, Profile};
use crate::run::{pid_listening_on, RunConfig};
use crate::target::{LunoraTarget, Target};

#[derive(Debug, Parser)]
#[command(
    name = "lunora-bench",
    version,
    about = "Load generator for RTMP relays and HLS: publishers replaying a file at real-time pace, RTMP or HLS players measuring what arrives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario against one server and print (and optionally append as JSON) the result.
    Run(RunArgs),
    /// Encode a test file with FFmpeg into the cache (if missing) and print its path.
    Media(MediaArgs),
    /// Print the side-by-side table of results appended by `run --json`.
    Report {
        /// JSON-lines files written by `run --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
    /// Cameras at scale: N cameras from a CSV import publishing, C WebSocket listeners; camera
    /// list latency and dashboard staleness (JSON on stdout).
    Cameras(CamerasArgs),
    /// Live chat at scale: P WebSocket participants in one stream's chat, S signed-in posters
    /// at a steady rate; fan-out delay from send to receipt (JSON on stdout).
    Chat(ChatArgs),
}

#[derive(Debug, Args)]
struct ChatArgs {
    /// Lunora: `http://host:port` (started with staff MFA optional and the sign-in rate limit
    /// off: the posters are invited and signed in first).
    #[arg(long)]
    lunora_url: String,
    #[arg(long, env = "LUNORA_ADMIN_EMAIL", default_value = "")]
    admin_email: String,
    #[arg(
        long,
        env = "LUNORA_ADMIN_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    admin_password: String,
    /// Participants connected to the stream's chat (posters included).
    #[arg(short = 'p', long, default_value_t = 500)]
    participants: usize,
    /// Signed-in participants that post.
    #[arg(long, default_value_t = 50)]
    posters: usize,
    /// Messages per minute of each poster.
    #[arg(long, default_value_t = 6.0)]
    per_minute: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 200.0)]
    ramp_rate: f64,
    /// The server's pid (default: the process listening on the URL's port).
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct CamerasArgs {
    /// Lunora: `http://host:port`.
    #[arg(long)]
    lunora_url: String,
    #[arg(long, env = "LUNORA_ADMIN_EMAIL", default_value = "")]
    admin_email: String,
    #[arg(
        long,
        env = "LUNORA_ADMIN_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    admin_password: String,
    /// The RTMP address `rtmp://host:port/live` if the API answers another one.
    #[arg(long)]
    lunora_rtmp: Option<String>,
    /// Cameras (each publishes the clip).
    #[arg(short = 'n', long, default_value_t = 1000)]
    cameras: usize,
    /// WebSocket clients listening on the organization's topic.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Seconds of `GET /api/v1/cameras?limit=100` measurements.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Cameras cut and started again, one after another, for the staleness figures.
    #[arg(long, default_value_t = 5)]
    flaps: usize,
    /// New publishers per second while ramping up.
    #[arg(long, default_value_t = 200.0)]
    ramp_rate: f64,
    #[command(flatten)]
    media: MediaArgs,
    /// The server's pid (default: the process listening on the URL's port).
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct MediaArgs {
    /// 1080p (6 Mb/s), 720p (2.6 Mb/s) or 480p (1 Mb/s); aliases 6m, 2.6m, 1m.
    #[arg(long, default_value = "1080p")]
    profile: String,
    /// Length of the generated clip; publishers loop it.
    #[arg(long, default_value_t = 30)]
    clip_seconds: u32,
    /// Where generated files are kept (default ~/.cache/lunora-bench).
    #[arg(long, env = "LUNORA_BENCH_CACHE")]
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Plain RTMP target: `rtmp://host:port/app`; publishers publish `--key`s (default
    /// `{prefix}{run}-{i}`) and players play the same names (or `--play-name`s).
    #[arg(long, conflicts_with = "lunora_url")]
    rtmp: Option<String>,
    /// Publish key of stream i (repeat for each publisher).
    #[arg(long = "key", requires = "rtmp")]
    keys: Vec<String>,
    /// Play name of stream i (repeat; defaults to the publish key).
    #[arg(long = "play-name", requires = "rtmp")]
    play_names: Vec<String>,
    /// Prefix of generated stream names on a plain RTMP target.
    #[arg(long, default_value = "bench-")]
    stream_prefix: String,
    /// Lunora target: `http://host:port`; channels are created through the API.
    #[arg(long)]
    lunora_url: Option<String>,
    #[arg(long, env = "LUNORA_ADMIN_EMAIL", default_value = "")]
    admin_email: String,
    #[arg(
        long,
        env = "LUNORA_ADMIN_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    admin_password: String,
    /// Lunora: the RTMP address `rtmp://host:port/live` if the API answers another one.
    #[arg(long)]
    lunora_rtmp: Option<String>,
    /// Lunora: private channels played with play tokens (default: public channels).
    #[arg(long)]
    private: bool,
    /// Lunora: turn recording on for every channel (`PUT /api/v1/channels/{id}/recording`).
    #[arg(long)]
    recording: bool,

    /// Put each video frame's send instant in an SEI NAL unit in front of the frame (players
    /// then time frames by their stamp instead of looking up their content).
    #[arg(long)]
    stamp: bool,
    /// Players are HLS players instead of RTMP players (Lunora targets): `ll` fetches every
    /// LL-HLS part after a blocking playlist reload, `segments` whole segments.
    #[arg(long, value_enum)]
    hls: Option<HlsMode>,
    /// HLS players leave and join again as new viewers every this many seconds, timing each
    /// first frame.
    #[arg(long)]
    rejoin_every: Option<f64>,
    /// A directory whose growth is reported as the server's disk write rate (its data
    /// directory, with recordings on).
    #[arg(long)]
    watch_dir: Option<PathBuf>,

    /// Publishers (streams).
    #[arg(short = 'n', long, default_value_t = 1)]
    publishers: usize,
    /// Players per stream.
    #[arg(short = 'm', long, default_value_t = 1)]
    players: usize,
    /// Measured seconds (after ramp-up and warm-up).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds between the last player starting and the measurement.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 200.0)]
    ramp_rate: f64,
    /// Seconds without video that make a player stalled.
    #[arg(long, default_value_t = 2.0)]
    stall_after: f64,

    /// FLV file to replay (H.264 + AAC); default: the `--profile` test file.
    #[arg(long)]
    input: Option<PathBuf>,
    #[command(flatten)]
    media: MediaArgs,

    /// The server's pid (its child processes are counted too); default: the process
    /// listening on the target's port.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Scenario name in the results.
    #[arg(long, default_value = "run")]
    scenario: String,
    /// Server name in the results (e.g. lunora, nginx-rtmp).
    #[arg(long, default_value = "server")]
    server_name: String,
    /// Append the result as a JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Runtime worker threads (default: the CPUs this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lunora-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Media(m) => {
            let path = media_file(&m)?;
            let clip = Clip::load(&path)?;
            println!("{}", path.display());
            eprintln!(
                "bench: {:.2} Mb/s, {} video frames, loop {} ms, {} frames without a unique key",
                clip.mbps(),
                clip.video_frames,
                clip.loop_ms,
                clip.ambiguous_frames
            );
            Ok(())
        }
        Command::Report { files } => {
            let mut all = Vec::new();
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                all.extend(crate::report::read_results(&text)?);
            }
            print!("{}", crate::report::table(&all));
            Ok(())
        }
        Command::FreePort => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
            Ok(())
        }
        Command::Run(args) => run(args),
        Command::Cameras(args) => cameras(args),
        Command::Chat(args) => chat(args),
    }
}

fn media_file(m: &MediaArgs) -> anyhow::Result<PathBuf> {
    let profile = Profile::parse(&m.profile)?;
    let dir = m.cache_dir.clone().unwrap_or_else(default_cache_dir);
    ensure_file(profile, m.clip_seconds, &dir)
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let (target, port) = match (&args.rtmp, &args.lunora_url) {
        (Some(url), None) => {
            let parsed = lunora_rtmp::RtmpUrl::parse(url)?;
            (
                Target::Rtmp {
                    url: url.clone(),
                    keys: args.keys.clone(),
                    play_names: args.play_names.clone(),
                    prefix: args.stream_prefix.clone(),
                },
                Some(parsed.port),
            )
        }
        (None, Some(url)) => {
            if args.admin_email.is_empty() || args.admin_password.is_empty() {
                bail!("--lunora-url needs --admin-email/--admin-password (or LUNORA_ADMIN_EMAIL/LUNORA_ADMIN_PASSWORD)");
            }
            let port = url
                .rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok());
            (
                Target::Lunora(LunoraTarget {
                    url: url.clone(),
                    email: args.admin_email.clone(),
                    password: args.admin_password.clone(),
                    rtmp_override: args.lunora_rtmp.clone(),
                    private: args.private,
                    recording: args.recording,
                }),
                port,
            )
        }
        _ => bail!("give a target: --rtmp rtmp://host:port/app or --lunora-url http://host:port"),
    };
    if args.lunora_url.is_none() && (args.hls.is_some() || args.recording) {
        bail!("--hls and --recording need a Lunora target (--lunora-url)");
    }
    let path = match &args.input {
        Some(p) => p.clone(),
        None => media_file(&args.media)?,
    };
    let clip = Arc::new(Clip::load(&path)?);
    let server_pid = args.server_pid.or_else(|| port.and_then(pid_listening_on));
    if server_pid.is_none() {
        eprintln!("bench: server pid unknown (give --server-pid): no CPU or memory figures");
    }
    let config = RunConfig {
        target,
        publishers: args.publishers,
        players_per_stream: args.players,
        duration: Duration::from_secs_f64(args.duration.max(1.0)),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        ramp_rate: args.ramp_rate,
        stall_after: Duration::from_secs_f64(args.stall_after.max(0.1)),
        clip,
        clip_name: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        server_pid,
        scenario: args.scenario.clone(),
        server_name: args.server_name.clone(),
        json_out: args.json.clone(),
        stamp: args.stamp,
        hls: args.hls,
        rejoin: args
            .rejoin_every
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64),
        recording: args.recording,
        watch_dir: args.watch_dir.clone(),
        metrics_url: args.lunora_url.clone(),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = args.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt.enable_all().build()?;
    let result = rt.block_on(crate::run::run(config))?;
    println!("{}", serde_json::to_string(&result)?);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn cameras(args: CamerasArgs) -> anyhow::Result<()> {
    if args.admin_email.is_empty() || args.admin_password.is_empty() {
        bail!("give --admin-email/--admin-password (or LUNORA_ADMIN_EMAIL/LUNORA_ADMIN_PASSWORD)");
    }
    let mut media = args.media;
    if media.profile == "1080p" {
        // The cameras' default: 1 Mb/s.
        media.profile = "480p".into();
    }
    let path = media_file(&media)?;
    let clip = Arc::new(Clip::load(&path)?);
    let port: Option<u16> = args
        .lunora_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok());
    let server_pid = args.server_pid.or_else(|| port.and_then(pid_listening_on));
    let config = crate::cameras::CamerasConfig {
        url: args.lunora_url.clone(),
        email: args.admin_email.clone(),
        password: args.admin_password.clone(),
        rtmp_override: args.lunora_rtmp.clone(),
        cameras: args.cameras.max(1),
        clients: args.clients,
        duration: Duration::from_secs_f64(args.duration.max(1.0)),
        flaps: args.flaps,
        ramp_rate: args.ramp_rate,
        clip,
        server_pid,
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = args.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt.enable_all().build()?;
    let result = rt.block_on(crate::cameras::run(config))?;
    println!("{}", serde_json::to_string(&result)?);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn chat(args: ChatArgs) -> anyhow::Result<()> {
    if args.admin_email.is_empty() || args.admin_password.is_empty() {
        bail!("give --admin-email/--admin-password (or LUNORA_ADMIN_EMAIL/LUNORA_ADMIN_PASSWORD)");
    }
    let port: Option<u16> = args
        .lunora_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok());
    let config = crate::chat::ChatConfig {
        url: args.lunora_url.clone(),
        email: args.admin_email.clone(),
        password: args.admin_password.clone(),
        participants: args.participants.max(1),
        posters: args.posters,
        per_minute: args.per_minute,
        duration: Duration::from_secs_f64(args.duration.max(1.0)),
        ramp_rate: args.ramp_rate,
        server_pid: args.server_pid.or_else(|| port.and_then(pid_listening_on)),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = args.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt.enable_all().build()?;
    let result = rt.block_on(crate::chat::run(config))?;
    println!("{}", serde_json::to_string(&result)?);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
