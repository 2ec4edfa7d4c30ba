//! One load run: prepare streams, ramp publishers then players, warm up, measure for the
//! duration (server CPU and memory, delivered bytes, stalls, relay latency), stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::conn::{self, Clock, PlayerState, PublisherState, SendLog, Shared};
use crate::hls::{self, HlsMode, HlsOutcome, HlsPlayerConfig};
use crate::media::Clip;
use crate::report::RunResult;
use crate::stats::{
    allowed_cpus, busy_share, clock_ticks_per_sec, latency_histogram, process_tree,
    read_cpu_jiffies, read_tcp_segments, tree_size, write_bytes, Percentiles, ProcSample,
};
use crate::target::Target;

/// Everything a run needs.
pub struct RunConfig {
    pub target: Target,
    pub publishers: usize,
    pub players_per_stream: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// New connections per second while ramping up.
    pub ramp_rate: f64,
    /// No video for this long makes a player stalled.
    pub stall_after: Duration,
    pub clip: Arc<Clip>,
    pub clip_name: String,
    /// The server process (its descendants are counted too).
    pub server_pid: Option<u32>,
    pub scenario: String,
    pub server_name: String,
    pub json_out: Option<PathBuf>,
    /// Publishers stamp every video frame with its send instant ([`crate::sei`]).
    pub stamp: bool,
    /// Players are HLS players of this kind instead of RTMP players (Lunora targets).
    pub hls: Option<HlsMode>,
    /// HLS players leave and join again this often (first-frame timing).
    pub rejoin: Option<Duration>,
    /// Recording was turned on for every channel.
    pub recording: bool,
    /// A directory whose growth is the server's disk write rate (its data directory).
    pub watch_dir: Option<PathBuf>,
    /// `http://host:port` of a Lunora server: `/metrics` is read at the end of the window.
    pub metrics_url: Option<String>,
}

struct Pub {
    state: Arc<PublisherState>,
    task: JoinHandle<anyhow::Result<()>>,
}

struct Player {
    state: Arc<PlayerState>,
    task: JoinHandle<HlsOutcome>,
}

pub async fn run(cfg: RunConfig) -> anyhow::Result<RunResult> {
    let n = cfg.publishers.max(1);
    let m = cfg.players_per_stream;
    let tag = format!("{:x}", rand::random::<u32>());
    let mode = cfg.hls.map_or("rtmp", HlsMode::name);
    eprintln!(
        "bench: {} — {}: {n} publisher(s) of {} ({:.2} Mb/s){}, {m} {mode} player(s) each{}",
        cfg.scenario,
        cfg.server_name,
        cfg.clip_name,
        cfg.clip.mbps(),
        if cfg.stamp { " frame-stamped" } else { "" },
        if cfg.recording { ", recording" } else { "" },
    );
    let specs = cfg
        .target
        .prepare(n, &tag)
        .await
        .context("preparing streams")?;
    let shared = Arc::new(Shared {
        clock: Clock {
            base: Instant::now(),
        },
        measuring: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let gap = Duration::from_secs_f64(1.0 / cfg.ramp_rate.max(0.1));

    // Publishers first, ramped.
    let logs: Vec<Arc<SendLog>> = (0..n).map(|_| Arc::new(SendLog::default())).collect();
    let mut pubs = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(gap);
    for (i, spec) in specs.iter().enumerate() {
        tick.tick().await;
        let state = Arc::new(PublisherState::default());
        let task = tokio::spawn(conn::publish(
            spec.publish_server.clone(),
            spec.publish_key.clone(),
            cfg.clip.clone(),
            cfg.stamp,
            logs[i].clone(),
            state.clone(),
            shared.clone(),
            stop_rx.clone(),
        ));
        pubs.push(Pub { state, task });
    }
    wait_until(Duration::from_secs(30), || {
        pubs.iter().all(|p| {
            p.state.started.load(Ordering::Relaxed) || p.state.ended.load(Ordering::Relaxed)
        })
    })
    .await;
    let failed_publishers = pubs
        .iter()
        .filter(|p| !p.state.started.load(Ordering::Relaxed))
        .count();
    if failed_publishers == n {
        let _ = stop_tx.send(true);
        let err = match pubs.into_iter().next() {
            Some(p) => match p.task.await {
                Ok(Err(e)) => format!("{e:#}"),
                _ => "no publisher started".into(),
            },
            None => "no publisher".into(),
        };
        anyhow::bail!("no publisher could start: {err}");
    }
    // Let every stream reach a keyframe, so players of a GOP-caching server start at once.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Players, spread over the streams, ramped.
    let total_players = n * m;
    let mut players = Vec::with_capacity(total_players);
    let hls_config = match cfg.hls {
        Some(mode) => Some(Arc::new(HlsPlayerConfig {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .tcp_nodelay(true)
                .build()?,
            mode,
            rejoin: cfg.rejoin,
        })),
        None => None,
    };
    for j in 0..total_players {
        tick.tick().await;
        let s = j % n;
        let state = Arc::new(PlayerState::default());
        let mut outcome = HlsOutcome::new()?;
        let task = match &hls_config {
            Some(hc) => {
                let url = specs[s]
                    .hls_url
                    .clone()
                    .context("HLS players need a Lunora target (--lunora-url)")?;
                tokio::spawn(hls::play(
                    hc.clone(),
                    url,
                    state.clone(),
                    shared.clone(),
                    stop_rx.clone(),
                    outcome,
                ))
            }
            None => {
                let play = conn::play(
                    specs[s].play_server.clone(),
                    specs[s].play_name.clone(),
                    logs[s].clone(),
                    state.clone(),
                    shared.clone(),
                    stop_rx.clone(),
                    latency_histogram()?,
                );
                tokio::spawn(async move {
                    let (latency, error) = play.await;
                    outcome.latency = latency;
                    outcome.error = error;
                    outcome
                })
            }
        };
        players.push(Player { state, task });
    }
    wait_until(Duration::from_secs(20), || {
        players.iter().all(|p| {
            p.state.started.load(Ordering::Relaxed) || p.state.ended.load(Ordering::Relaxed)
        })
    })
    .await;
    tokio::time::sleep(cfg.warmup).await;

    // Measure.
    // The tree is listed again at each sample: helpers the server starts during the window
    // (and those it reaped, through its cutime) are counted.
    let server_pids = || cfg.server_pid.map(process_tree).unwrap_or_default();
    let ticks = clock_ticks_per_sec();
    let me = std::process::id();
    let bytes_at = |players: &[Player]| -> u64 {
        players
            .iter()
            .map(|p| p.state.bytes.load(Ordering::Relaxed))
            .sum()
    };
    let gen_cpus = allowed_cpus("self").unwrap_or_else(|| vec![0]);
    let server_cpus = cfg.server_pid.and_then(|p| allowed_cpus(&p.to_string()));
    let server_jiffies0 = server_cpus.as_deref().map(read_cpu_jiffies);
    let gen_jiffies0 = read_cpu_jiffies(&gen_cpus);
    let segments0 = read_tcp_segments();
    let server0 = ProcSample::take(&server_pids());
    let written0 = write_bytes(&server_pids());
    let dir_size = |dir: Option<PathBuf>| async move {
        match dir {
            Some(d) => tokio::task::spawn_blocking(move || tree_size(&d))
                .await
                .ok(),
            None => None,
        }
    };
    let dir0 = dir_size(cfg.watch_dir.clone()).await;
    let self0 = ProcSample::take(&[me]);
    let bytes0 = bytes_at(&players);
    shared.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let mut stalled = vec![false; players.len()];
    let mut ever_stalled = vec![false; players.len()];
    let mut stall_events = 0u64;
    let stall_ms = cfg.stall_after.as_millis() as u64;
    let mut check = tokio::time::interval(Duration::from_millis(100));
    while start.elapsed() < cfg.duration {
        check.tick().await;
        let now = shared.clock.ms(Instant::now());
        for (i, p) in players.iter().enumerate() {
            let last = p.state.last_video_ms.load(Ordering::Relaxed);
            let starving = last == 0 || now.saturating_sub(last - 1) > stall_ms;
            // A player that never got video is stalled from the start of the window.
            if starving
                && (last != 0
                    || start.elapsed() >= cfg.stall_after
                    || p.state.ended.load(Ordering::Relaxed))
            {
                if !stalled[i] {
                    stalled[i] = true;
                    ever_stalled[i] = true;
                    stall_events += 1;
                }
            } else if !starving {
                stalled[i] = false;
            }
        }
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let server1 = ProcSample::take(&server_pids());
    let segments1 = read_tcp_segments();
    let written1 = write_bytes(&server_pids());
    let dir1 = dir_size(cfg.watch_dir.clone()).await;
    let self1 = ProcSample::take(&[me]);
    let server_busy = match (&server_cpus, server_jiffies0) {
        (Some(cpus), Some(j0)) => busy_share(j0, read_cpu_jiffies(cpus)),
        _ => None,
    };
    let gen_busy = busy_share(gen_jiffies0, read_cpu_jiffies(&gen_cpus)).unwrap_or(0.0);
    let bytes1 = bytes_at(&players);
    let wall = server1.at.duration_since(server0.at).as_secs_f64();
    let gauges = match &cfg.metrics_url {
        Some(url) => {
            match crate::target::scrape_metrics(
                url,
                &["lunora_hls_channels", "lunora_recordings_active"],
            )
            .await
            {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("bench: reading /metrics: {e:#}");
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    let gauge = |name: &str| gauges.iter().find(|(n, _)| n == name).map(|(_, v)| *v);

    // Stop and collect.
    let _ = stop_tx.send(true);
    let mut all = HlsOutcome::new()?;
    let mut disconnected = 0;
    let mut first_error: Option<String> = None;
    for p in players.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(5), &mut p.task).await {
            Ok(Ok(o)) => {
                let _ = all.latency.add(&o.latency);
                let _ = all.first_frame.add(&o.first_frame);
                let _ = all.first_frame_first_join.add(&o.first_frame_first_join);
                let _ = all.fetch.add(&o.fetch);
                all.resyncs += o.resyncs;
                if let Some(e) = o.error {
                    disconnected += 1;
                    first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
            _ => p.task.abort(),
        }
    }
    let mut max_lag_ms = 0;
    for p in pubs.iter_mut() {
        max_lag_ms = max_lag_ms.max(p.state.max_lag_ms.load(Ordering::Relaxed));
        match tokio::time::timeout(Duration::from_secs(5), &mut p.task).await {
            Ok(Ok(Err(e))) => {
                first_error.get_or_insert_with(|| format!("publisher: {e:#}"));
            }
            Ok(_) => {}
            Err(_) => p.task.abort(),
        }
    }
    let failed_players = players
        .iter()
        .filter(|p| p.state.failed.load(Ordering::Relaxed))
        .count();

    let delivered_mbps = bytes1.saturating_sub(bytes0) as f64 * 8.0 / 1e6 / wall.max(1e-9);
    let server_cores = server0.cores_until(&server1, ticks);
    let generator_cores = self0.cores_until(&self1, ticks);
    let expected_mbps = cfg.clip.mbps() * total_players as f64;
    let mut result = RunResult {
        scenario: cfg.scenario.clone(),
        server: cfg.server_name.clone(),
        clip: cfg.clip_name.clone(),
        stream_mbps: cfg.clip.mbps(),
        publishers: n,
        players_per_stream: m,
        players: total_players,
        duration_s: wall,
        delivered_mbps,
        expected_mbps,
        server_cores: cfg.server_pid.map(|_| server_cores),
        cores_per_gbit: cfg
            .server_pid
            .filter(|_| delivered_mbps > 0.0)
            .map(|_| server_cores / (delivered_mbps / 1000.0)),
        rss_mib: cfg.server_pid.map(|_| server1.rss_kib as f64 / 1024.0),
        rss_peak_mib: cfg.server_pid.map(|_| server1.hwm_kib as f64 / 1024.0),
        server_cpus: server_cpus.as_ref().map(Vec::len),
        server_cpu_busy: server_busy,
        tcp_segments_per_s: segments0
            .zip(segments1)
            .map(|(a, b)| b.saturating_sub(a) as f64 / wall.max(1e-9)),
        stalled_players: ever_stalled.iter().filter(|s| **s).count(),
        stall_events,
        failed_publishers,
        failed_players,
        disconnected_players: disconnected,
        latency: Percentiles::of(&all.latency),
        mode: mode.to_string(),
        stamped: cfg.stamp,
        recording: cfg.recording,
        first_frame: Percentiles::of(&all.first_frame),
        first_frame_first_join: Percentiles::of(&all.first_frame_first_join),
        fetch: Percentiles::of(&all.fetch),
        resyncs: all.resyncs,
        hls_channels: gauge("lunora_hls_channels"),
        recordings_active: gauge("lunora_recordings_active"),
        disk_growth_mbps: match (dir0, dir1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * 8.0 / 1e6 / wall.max(1e-9)),
            _ => None,
        },
        server_write_mbps: cfg
            .server_pid
            .map(|_| written1.saturating_sub(written0) as f64 * 8.0 / 1e6 / wall.max(1e-9)),
        generator_cores,
        generator_cpus: gen_cpus.len(),
        generator_cpu_busy: gen_busy,
        publisher_max_lag_ms: max_lag_ms,
        limit: String::new(),
        error: first_error,
    };
    result.limit = result.judge_limit();
    eprintln!("{}", result.summary());
    if let Some(path) = &cfg.json_out {
        result.append_to(path)?;
    }
    Ok(result)
}

async fn wait_until(within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pid of the process listening on TCP `port` (IPv4 or IPv6), from `/proc`.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(listening_inodes(&text, port));
    }
    if inodes.is_empty() {
        return None;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                let link = link.to_string_lossy();
                if inodes.iter().any(|i| link == format!("socket:[{i}]")) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Inodes of sockets in LISTEN state (0A) on `port` in a `/proc/net/tcp` table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            let p = u16::from_str_radix(local_port, 16).ok()?;
            (p == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:078F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:078F 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(listening_inodes(table, 1935), vec![31337]);
        assert!(listening_inodes(table, 80).is_empty());
    }
}
