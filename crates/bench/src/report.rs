//! Results: one JSON line per run, and the side-by-side table of several runs.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::stats::Percentiles;

/// The outcome of one run against one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResult {
    pub scenario: String,
    pub server: String,
    pub clip: String,
    /// The clip's audio + video bitrate (tag bodies).
    pub stream_mbps: f64,
    pub publishers: usize,
    pub players_per_stream: usize,
    pub players: usize,
    /// The measured window.
    pub duration_s: f64,
    /// Bytes players read (RTMP chunk headers included) per second, as Mb/s.
    pub delivered_mbps: f64,
    /// `stream_mbps` × players: what players should get.
    pub expected_mbps: f64,
    /// Server CPU seconds per second (its process tree), when its pid is known.
    pub server_cores: Option<f64>,
    pub cores_per_gbit: Option<f64>,
    pub rss_mib: Option<f64>,
    pub rss_peak_mib: Option<f64>,
    /// How many CPUs the server may run on.
    pub server_cpus: Option<usize>,
    /// Share of time those CPUs were busy with anything (the server, interrupts, any other
    /// process that ran there), 0–1.
    pub server_cpu_busy: Option<f64>,
    /// Players that had no video for the stall threshold at some point of the window
    /// (players that never started included).
    pub stalled_players: usize,
    pub stall_events: u64,
    pub failed_publishers: usize,
    pub failed_players: usize,
    pub disconnected_players: usize,
    /// Relay latency (RTMP players) or glass-to-glass to arrival in the player (HLS players):
    /// from a frame's send instant (its stamp, or its content looked up in the send log) to
    /// the player having it in memory.
    pub latency: Percentiles,
    /// `rtmp`, `ll-hls` or `hls` (whole segments).
    pub mode: String,
    /// Publishers stamped each video frame with its send instant.
    pub stamped: bool,
    /// Recording was on for every channel.
    pub recording: bool,
    /// HLS: master playlist request → first keyframe sample received, for viewers that joined
    /// during the window (with `--rejoin-every`).
    pub first_frame: Percentiles,
    /// HLS: the same for each player's first join (at the start of the run).
    pub first_frame_first_join: Percentiles,
    /// HLS: a listed part or segment, request → whole body received.
    pub fetch: Percentiles,
    /// HLS: times players went back to the live edge (part gone, reload refused, errors).
    pub resyncs: u64,
    /// `lunora_hls_channels` and `lunora_recordings_active` at the end of the window.
    pub hls_channels: Option<f64>,
    pub recordings_active: Option<f64>,
    /// Growth of the watched directory (the server's data directory), Mb/s.
    pub disk_growth_mbps: Option<f64>,
    /// The server's `write_bytes` (`/proc/PID/io`), Mb/s.
    pub server_write_mbps: Option<f64>,
    /// TCP segments per second moved by the whole machine, both directions
    /// ([`crate::stats::tcp_segments`]): the generator's and the server's, so only runs with
    /// the same generator load compare.
    pub tcp_segments_per_s: Option<f64>,
    /// The generator's own CPU seconds per second, and how many CPUs it may use.
    pub generator_cores: f64,
    pub generator_cpus: usize,
    /// Share of time the generator's CPUs were busy with anything, 0–1.
    pub generator_cpu_busy: f64,
    /// How far behind its real-time schedule a publisher fell, at worst.
    pub publisher_max_lag_ms: u64,
    /// What limited the run, in words.
    pub limit: String,
    pub error: Option<String>,
}

impl RunResult {
    /// Names what held the run back: the generator's CPU, the server's CPU, or nothing.
    pub fn judge_limit(&self) -> String {
        let mut why = Vec::new();
        // The generator's own CPU time: its cores may be busy with other work too (a build on
        // a shared machine), which runs at a lower priority and only fills idle time; that is
        // named apart below.
        let gen_share = self.generator_cores / self.generator_cpus.max(1) as f64;
        if gen_share >= 0.9 {
            why.push(format!(
                "generator CPU ({:.0}% of {} core{})",
                gen_share * 100.0,
                self.generator_cpus,
                if self.generator_cpus == 1 { "" } else { "s" }
            ));
        }
        if self.publisher_max_lag_ms >= 200 {
            why.push(format!(
                "publishers fell {} ms behind real time",
                self.publisher_max_lag_ms
            ));
        }
        if let (Some(c), Some(n)) = (self.server_cores, self.server_cpus) {
            if c / n.max(1) as f64 >= 0.9 {
                why.push(format!(
                    "server CPU ({:.0}% of {n} core{})",
                    c / n as f64 * 100.0,
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
        if let (Some(c), Some(n), Some(busy)) =
            (self.server_cores, self.server_cpus, self.server_cpu_busy)
        {
            let other = busy - c / n.max(1) as f64;
            if other >= 0.15 {
                why.push(format!(
                    "other load on the server's core{} ({:.0}% busy beside the server)",
                    if n == 1 { "" } else { "s" },
                    other * 100.0
                ));
            }
        }
        let gen_other = self.generator_cpu_busy - gen_share;
        if gen_other >= 0.15 {
            why.push(format!(
                "other load on the generator's core{} ({:.0}% busy beside the generator)",
                if self.generator_cpus == 1 { "" } else { "s" },
                gen_other * 100.0
            ));
        }
        if self.expected_mbps > 0.0 && self.delivered_mbps < 0.97 * self.expected_mbps {
            why.push(format!(
                "under-delivered ({:.0}% of {:.0} Mb/s)",
                self.delivered_mbps / self.expected_mbps * 100.0,
                self.expected_mbps
            ));
        }
        if why.is_empty() {
            "none".into()
        } else {
            why.join("; ")
        }
    }

    pub fn summary(&self) -> String {
        let opt = |v: Option<f64>, prec: usize| match v {
            Some(v) => format!("{v:.prec$}"),
            None => "-".into(),
        };
        let mut s = format!(
            "bench: {} on {}: {} publisher(s) × {} player(s) = {} players over {:.1} s\n",
            self.scenario,
            self.server,
            self.publishers,
            self.players_per_stream,
            self.players,
            self.duration_s
        );
        let _ = writeln!(
            s,
            "  delivered {:.1} Mb/s of {:.1} expected; server {} cores, {} cores/Gbit, RSS {} MiB (peak {})",
            self.delivered_mbps,
            self.expected_mbps,
            opt(self.server_cores, 3),
            opt(self.cores_per_gbit, 3),
            opt(self.rss_mib, 0),
            opt(self.rss_peak_mib, 0)
        );
        let _ = writeln!(
            s,
            "  stalled players {} ({} stalls), failed {} publishers / {} players, {} disconnected",
            self.stalled_players,
            self.stall_events,
            self.failed_publishers,
            self.failed_players,
            self.disconnected_players
        );
        if let Some(segs) = self.tcp_segments_per_s {
            let _ = writeln!(
                s,
                "  TCP segments {segs:.0}/s (the whole machine, in + out: server and generator)"
            );
        }
        let _ = writeln!(
            s,
            "  {} latency p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1} ({} frames)",
            if self.mode.is_empty() || self.mode == "rtmp" {
                "relay"
            } else {
                "glass-to-glass (to arrival in the player)"
            },
            self.latency.p50_ms,
            self.latency.p90_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            self.latency.samples
        );
        if !self.mode.is_empty() && self.mode != "rtmp" {
            let _ = writeln!(
                s,
                "  {}: first frame p50 {:.0} ms, p99 {:.0}, max {:.0} ({} joins in the window); first joins p50 {:.0} ms, max {:.0} ({}); {} resyncs",
                self.mode,
                self.first_frame.p50_ms,
                self.first_frame.p99_ms,
                self.first_frame.max_ms,
                self.first_frame.samples,
                self.first_frame_first_join.p50_ms,
                self.first_frame_first_join.max_ms,
                self.first_frame_first_join.samples,
                self.resyncs
            );
            let _ = writeln!(
                s,
                "  {}: part/segment fetch p50 {:.1} ms, p99 {:.1}, max {:.1} ({} fetches)",
                self.mode,
                self.fetch.p50_ms,
                self.fetch.p99_ms,
                self.fetch.max_ms,
                self.fetch.samples
            );
        }
        if self.hls_channels.is_some() || self.disk_growth_mbps.is_some() {
            let _ = writeln!(
                s,
                "  lunora_hls_channels {}, lunora_recordings_active {}; disk: data dir grew {} Mb/s, server write_bytes {} Mb/s",
                opt(self.hls_channels, 0),
                opt(self.recordings_active, 0),
                opt(self.disk_growth_mbps, 1),
                opt(self.server_write_mbps, 1)
            );
        }
        let _ = write!(
            s,
            "  generator {:.2} cores of {} ({:.0}% busy), server cores {} busy; publishers at most {} ms late; limited by: {}",
            self.generator_cores,
            self.generator_cpus,
            self.generator_cpu_busy * 100.0,
            match self.server_cpu_busy {
                Some(b) => format!("{:.0}%", b * 100.0),
                None => "-".into(),
            },
            self.publisher_max_lag_ms,
            self.limit
        );
        if let Some(e) = &self.error {
            let _ = write!(s, "\n  first error: {e}");
        }
        s
    }

    /// Appends this result as one JSON line.
    pub fn append_to(&self, path: &Path) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(self)?)?;
        Ok(())
    }
}

/// Reads the JSON lines written by [`RunResult::append_to`].
pub fn read_results(text: &str) -> anyhow::Result<Vec<RunResult>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// The side-by-side table: one row per run, grouped by scenario in order of first
/// appearance, then per scenario the ratio of the first server's cores per Gbit to the
/// second's (Lunora / nginx-rtmp when the script runs Lunora first).
pub fn table(results: &[RunResult]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut servers: Vec<&str> = Vec::new();
    for r in results {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
    }
    let hls = results
        .iter()
        .any(|r| !r.mode.is_empty() && r.mode != "rtmp");
    let mut header = vec![
        "scenario",
        "server",
        "pubs",
        "players",
        "Mb/s",
        "cores",
        "cores/Gbit",
        "RSS MiB",
        "stalled",
        "p50 ms",
        "p99 ms",
        "gen cores",
        "limited by",
    ];
    // HLS runs: what the player was, recording, the server's gauges, disk, first frame.
    let extra_at = header.len() - 2;
    if hls {
        for (k, h) in [
            "mode",
            "rec",
            "hls ch",
            "rec act",
            "disk Mb/s",
            "1st frame ms",
        ]
        .into_iter()
        .enumerate()
        {
            header.insert(extra_at + k, h);
        }
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let opt = |v: Option<f64>, prec: usize| match v {
        Some(v) => format!("{v:.prec$}"),
        None => "-".into(),
    };
    let mut ratios = Vec::new();
    for sc in &scenarios {
        for r in results.iter().filter(|r| r.scenario == *sc) {
            let mut row = vec![
                r.scenario.clone(),
                r.server.clone(),
                r.publishers.to_string(),
                r.players.to_string(),
                format!("{:.0}", r.delivered_mbps),
                opt(r.server_cores, 3),
                opt(r.cores_per_gbit, 3),
                opt(r.rss_mib, 0),
                r.stalled_players.to_string(),
                format!("{:.1}", r.latency.p50_ms),
                format!("{:.1}", r.latency.p99_ms),
                format!("{:.2}", r.generator_cores),
                r.judge_limit(),
            ];
            if hls {
                let cells = [
                    if r.mode.is_empty() {
                        "rtmp".to_string()
                    } else {
                        r.mode.clone()
                    },
                    if r.recording { "yes" } else { "no" }.to_string(),
                    opt(r.hls_channels, 0),
                    opt(r.recordings_active, 0),
                    opt(r.disk_growth_mbps, 1),
                    if r.first_frame.samples > 0 {
                        format!("{:.0}", r.first_frame.p50_ms)
                    } else if r.first_frame_first_join.samples > 0 {
                        format!("{:.0}", r.first_frame_first_join.p50_ms)
                    } else {
                        "-".into()
                    },
                ];
                for (k, c) in cells.into_iter().enumerate() {
                    row.insert(extra_at + k, c);
                }
            }
            rows.push(row);
        }
        if servers.len() >= 2 {
            let cpg = |server: &str| {
                results
                    .iter()
                    .rev()
                    .find(|r| r.scenario == *sc && r.server == server)
                    .and_then(|r| r.cores_per_gbit)
            };
            if let (Some(a), Some(b)) = (cpg(servers[0]), cpg(servers[1])) {
                if b > 0.0 {
                    ratios.push(format!(
                        "{sc}: {} / {} cores per Gbit = {:.3} / {:.3} = {:.2}",
                        servers[0],
                        servers[1],
                        a,
                        b,
                        a / b
                    ));
                }
            }
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            // Text columns to the left, numbers to the right.
            if i < 2 || i == last {
                let _ = write!(out, "{c:<w$}");
            } else {
                let _ = write!(out, "{c:>w$}");
            }
            out.push_str(if i == last { "\n" } else { "  " });
        }
    };
    line(header.iter().map(|s| s.to_string()).collect(), &mut out);
    line(widths.iter().map(|w| "-".repeat(*w)).collect(), &mut out);
    for row in rows {
        line(row, &mut out);
    }
    if !ratios.is_empty() {
        out.push('\n');
        for r in ratios {
            out.push_str(&r);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(scenario: &str, server: &str, cpg: f64) -> RunResult {
        RunResult {
            scenario: scenario.into(),
            server: server.into(),
            players: 500,
            delivered_mbps: 3000.0,
            expected_mbps: 3000.0,
            server_cores: Some(cpg * 3.0),
            cores_per_gbit: Some(cpg),
            server_cpus: Some(1),
            generator_cpus: 1,
            generator_cores: 0.5,
            limit: "none".into(),
            ..RunResult::default()
        }
    }

    #[test]
    fn json_lines_round_trip_and_table_has_the_ratio() {
        let dir = std::env::temp_dir().join(format!("lunora-bench-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        result("one-to-500", "lunora", 0.06)
            .append_to(&dir)
            .unwrap();
        result("one-to-500", "nginx-rtmp", 0.16)
            .append_to(&dir)
            .unwrap();
        let back = read_results(&std::fs::read_to_string(&dir).unwrap()).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], result("one-to-500", "lunora", 0.06));
        let t = table(&back);
        assert!(
            t.contains("lunora / nginx-rtmp cores per Gbit = 0.060 / 0.160 = 0.38"),
            "{t}"
        );
        assert_eq!(
            t.lines().filter(|l| l.starts_with("one-to-500")).count(),
            3,
            "{t}"
        );
        assert!(read_results("{not json").is_err());
    }

    #[test]
    fn hls_runs_get_their_columns_and_old_lines_still_read() {
        let mut r = result("channels-500", "lunora", 0.1);
        r.mode = "ll-hls".into();
        r.recording = true;
        r.hls_channels = Some(500.0);
        r.recordings_active = Some(499.0);
        r.disk_growth_mbps = Some(512.3);
        r.first_frame_first_join = Percentiles {
            samples: 500,
            p50_ms: 12.0,
            ..Percentiles::default()
        };
        let t = table(std::slice::from_ref(&r));
        assert!(t.lines().next().unwrap().contains("hls ch"), "{t}");
        let row = t.lines().nth(2).unwrap();
        for cell in ["ll-hls", "yes", "500", "499", "512.3", "12", "none"] {
            assert!(row.contains(cell), "{cell} in {t}");
        }
        assert!(row.trim_end().ends_with("none"), "{t}");
        let s = r.summary();
        assert!(
            s.contains("lunora_hls_channels 500, lunora_recordings_active 499"),
            "{s}"
        );
        assert!(s.contains("glass-to-glass"), "{s}");
        // Lines written before these fields existed.
        let old = read_results(r#"{"scenario":"many","server":"lunora","players":3}"#).unwrap();
        assert_eq!((old[0].players, old[0].mode.as_str()), (3, ""));
        assert!(!table(&old).contains("hls ch"));
    }

    #[test]
    fn the_limit_names_the_saturated_side() {
        let mut r = result("s", "lunora", 0.1);
        assert_eq!(r.judge_limit(), "none");
        r.generator_cores = 0.97;
        r.delivered_mbps = 2000.0;
        let why = r.judge_limit();
        assert!(why.contains("generator CPU (97% of 1 core)"), "{why}");
        assert!(why.contains("under-delivered (67% of 3000 Mb/s)"), "{why}");
        r.generator_cores = 0.2;
        r.server_cores = Some(0.95);
        assert!(r.judge_limit().starts_with("server CPU (95% of 1 core)"));
    }
}
