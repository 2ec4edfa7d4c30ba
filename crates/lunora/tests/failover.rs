//! Source redundancy end to end: real encoders (FFmpeg over SRT and RTMP, srt-live-transmit)
//! feeding a primary and a secondary input, a real destination (nginx-rtmp), and what the
//! destination receives when the primary dies, comes back, or is switched away from.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::media::{packet_times, record, test_file, Publisher};
use common::nginx::Nginx;
use common::*;
use lunora_testkit::{db_tests, DbKind, Server};
use serde_json::{json, Value};

db_tests!(source_settings_are_validated_stored_and_applied);

/// FFmpeg publishing the test file over SRT (MPEG-TS), killed on drop.
struct SrtPublisher {
    children: Vec<Child>,
}

impl SrtPublisher {
    /// FFmpeg as an SRT caller to `url` (`srt://…?streamid=…[&passphrase=…]`).
    fn ffmpeg(url: &str) -> SrtPublisher {
        let child = Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(test_file())
            .args(["-c", "copy", "-f", "mpegts", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        SrtPublisher {
            children: vec![child],
        }
    }

    /// FFmpeg feeding `srt-live-transmit` over local UDP, which calls `url`.
    fn srt_live_transmit(url: &str) -> SrtPublisher {
        lunora_testkit::require("srt-live-transmit", "srt-tools").unwrap();
        let port = free_udp_port();
        let slt = Command::new("srt-live-transmit")
            .args(["-q", &format!("udp://127.0.0.1:{port}"), url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ffmpeg = Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(test_file())
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        SrtPublisher {
            children: vec![ffmpeg, slt],
        }
    }

    /// FFmpeg as an SRT listener on `port` (for Lunora's caller mode).
    fn ffmpeg_listener(port: u16, passphrase: &str) -> SrtPublisher {
        Self::ffmpeg(&format!(
            "srt://127.0.0.1:{port}?mode=listener&passphrase={passphrase}&pbkeylen=16"
        ))
    }

    /// Waits for the first process to exit (a refused publisher); its stderr.
    fn refused_within(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let child = &mut self.children[0];
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Some(err);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SrtPublisher {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

struct Api<'a> {
    server: &'a Server,
    token: String,
}

impl Api<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        call(
            self.server,
            method,
            path,
            Some(self.token.as_str()),
            body.as_ref(),
        )
        .await
    }

    async fn status(&self, channel: &str) -> Value {
        let a = self
            .call(
                "GET",
                &format!("/api/v1/channels/{channel}/sources/status"),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        a.body
    }

    /// Polls the sources status until `pred` holds.
    async fn wait_status(
        &self,
        channel: &str,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let st = self.status(channel).await;
            if pred(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never happened: {st}\n{}",
                tail(&self.server.logs())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_destination_live(&self, channel: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let a = self
                .call(
                    "GET",
                    &format!("/api/v1/channels/{channel}/streaming/status"),
                    None,
                )
                .await;
            let d = &a.body["destinations"][0];
            if d["state"] == "live" && d["bytes_sent"].as_u64().unwrap_or(0) > 100_000 {
                return d.clone();
            }
            assert!(
                Instant::now() < deadline,
                "destination never went live: {a:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn input_state<'a>(st: &'a Value, role: &str) -> &'a str {
    st["inputs"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["role"] == role))
        .and_then(|i| i["state"].as_str())
        .unwrap_or("")
}

fn srt_addr(server: &Server) -> SocketAddr {
    server.addrs.srt.expect("the server logs its SRT address")
}

/// The key at the end of a publish URL (`…/live/KEY` or `…?streamid=KEY`).
fn key_of(url: &str) -> String {
    url.rsplit(['/', '=']).next().unwrap().to_string()
}

/// Ids of the clients publishing `stream` on nginx, from its stat page.
fn publishers(stat: &str, stream: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for block in stat.split("<stream>").skip(1) {
        let block = block.split("</stream>").next().unwrap_or("");
        if !block.contains(&format!("<name>{stream}</name>")) {
            continue;
        }
        for client in block.split("<client>").skip(1) {
            let client = client.split("</client>").next().unwrap_or("");
            if client.contains("<publishing/>") {
                if let Some(id) = client
                    .split("<id>")
                    .nth(1)
                    .and_then(|s| s.split("</id>").next())
                {
                    ids.push(id.to_string());
                }
            }
        }
    }
    ids
}

/// Largest step between consecutive video packets, and whether they always increase.
fn video_gaps(file: &Path) -> (usize, f64, bool) {
    let v = packet_times(file, "v");
    let largest = v.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let increasing = v.windows(2).all(|w| w[1] > w[0]);
    (v.len(), largest, increasing)
}

/// Records `secs` of the destination stream in the background.
fn start_recording(
    url: String,
    secs: u32,
    out: std::path::PathBuf,
) -> tokio::task::JoinHandle<std::process::Output> {
    tokio::task::spawn_blocking(move || record(&url, secs, &out))
}

/// Watches nginx's stat page: every publishing session id seen, and whether one was always there.
fn watch_publishers(
    nginx_stat: SocketAddr,
    stream: &'static str,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<(Vec<String>, usize)>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut seen: Vec<String> = Vec::new();
        let mut missing = 0;
        loop {
            if let Ok(res) = reqwest::get(format!("http://{nginx_stat}/stat")).await {
                if let Ok(text) = res.text().await {
                    let ids = publishers(&text, stream);
                    if ids.is_empty() {
                        missing += 1;
                    }
                    for id in ids {
                        if !seen.contains(&id) {
                            seen.push(id);
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stopped.changed() => break,
            }
        }
        (seen, missing)
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srt_primary_fails_over_to_an_rtmp_backup_and_back_without_the_destination_noticing() {
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let res = create_channel(&server, &api.token, "redundant").await;
    assert_eq!(res.status(), 201);
    let ch: Value = res.json().await.unwrap();
    let channel = ch["id"].as_str().unwrap().to_string();
    let primary_key = key_of(ch["publish_url"].as_str().unwrap());

    // Primary over SRT (encrypted), backup over RTMP; a 1 s threshold and a 2 s return hold.
    let passphrase = "correct-horse-battery";
    let a = api
        .call(
            "PUT",
            &format!("/api/v1/channels/{channel}/sources/config"),
            Some(json!({
                "redundancy_mode": "auto_failover",
                "failover_threshold": 1,
                "auto_return": true,
                "auto_return_hold": 2,
                "primary_source": {"protocol": "srt", "latency": 120, "passphrase": passphrase},
                "secondary_source": {"protocol": "rtmp"}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        !a.body.to_string().contains(passphrase),
        "passphrase leaked: {}",
        a.body
    );
    let primary_url = a.body["primary_source"]["publish_url"].as_str().unwrap();
    assert!(
        primary_url.starts_with("srt://") && primary_url.contains("?streamid=****"),
        "{primary_url}"
    );
    let secondary_url = a.body["secondary_source"]["publish_url"].as_str().unwrap();
    assert!(secondary_url.starts_with("rtmp://"), "{secondary_url}");
    let secondary_key = key_of(secondary_url);
    assert!(
        !secondary_key.starts_with("****"),
        "the new key is shown once: {secondary_url}"
    );

    let srt_url = format!(
        "srt://{}?streamid={primary_key}&passphrase={passphrase}&latency=120000",
        srt_addr(&server)
    );
    let mut primary = SrtPublisher::ffmpeg(&srt_url);
    let _backup = Publisher::start(&format!(
        "rtmp://{}/live/{secondary_key}",
        server.rtmp_addr().unwrap()
    ));
    let st = api
        .wait_status(&channel, Duration::from_secs(20), "both inputs up", |st| {
            st["active"] == "primary"
                && input_state(st, "primary") == "active"
                && input_state(st, "secondary") == "standby"
        })
        .await;
    let srt = &st["inputs"][0]["srt"];
    assert_eq!(srt["encrypted"], true, "{st}");
    assert_eq!(srt["mode"], "listener");

    // One destination.
    let a = api
        .call(
            "POST",
            "/api/v1/destinations",
            Some(json!({"name": "nginx", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "dest"})),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let dest = a.body["id"].as_str().unwrap().to_string();
    let a = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/start"),
            Some(json!({"destination_ids": [dest]})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    api.wait_destination_live(&channel).await;
    let (stop_watch, watcher) = watch_publishers(nginx.stat, "dest");
    let dest_url = format!("{}/dest", nginx.url());
    let dir = tempfile::tempdir().unwrap();

    // Kill the primary encoder mid-stream while recording what the destination receives.
    let rec = start_recording(dest_url.clone(), 10, dir.path().join("failover.flv"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    primary.kill();
    let st = api
        .wait_status(&channel, Duration::from_secs(10), "failover", |st| {
            st["active"] == "secondary"
        })
        .await;
    assert_eq!(st["last_switch"]["reason"], "primary_lost", "{st}");
    assert_eq!(st["last_switch"]["from"], "primary");
    assert_eq!(input_state(&st, "primary"), "lost");
    assert_eq!(input_state(&st, "secondary"), "active");
    let out = rec.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (frames, gap, increasing) = video_gaps(&dir.path().join("failover.flv"));
    assert!(frames > 200, "only {frames} frames");
    assert!(increasing, "timestamps went backwards at the destination");
    // Threshold (1 s) + one GOP (1 s).
    assert!(gap < 2.0, "largest gap in delivered frames: {gap:.3} s");
    println!("failover: largest gap at the destination {gap:.3} s over {frames} frames");

    // The primary comes back: after the 2 s hold the channel returns to it.
    let _primary = SrtPublisher::ffmpeg(&srt_url);
    let st = api
        .wait_status(&channel, Duration::from_secs(20), "auto return", |st| {
            st["active"] == "primary" && st["last_switch"]["reason"] == "primary_restored"
        })
        .await;
    assert_eq!(input_state(&st, "secondary"), "standby");

    // Manual switch while both are healthy: no gap beyond one GOP.
    let rec = start_recording(dest_url.clone(), 6, dir.path().join("manual.flv"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/sources/switch"),
            Some(json!({"to": "secondary"})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    api.wait_status(&channel, Duration::from_secs(5), "manual switch", |st| {
        st["active"] == "secondary" && st["last_switch"]["reason"] == "manual"
    })
    .await;
    let out = rec.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (frames, gap, increasing) = video_gaps(&dir.path().join("manual.flv"));
    assert!(frames > 120 && increasing);
    assert!(gap < 1.0, "largest gap across a manual switch: {gap:.3} s");
    println!("manual switch: largest gap at the destination {gap:.3} s");

    // One publishing session at the destination the whole time, never a reconnect.
    let _ = stop_watch.send(true);
    let (seen, missing) = watcher.await.unwrap();
    assert_eq!(seen.len(), 1, "the destination saw publishers {seen:?}");
    assert_eq!(
        missing, 0,
        "the destination lost its publisher {missing} times"
    );
    let d = api.wait_destination_live(&channel).await;
    assert_eq!(d["reconnects"], 0, "{d}");

    // Every switch is in the metrics and the session history.
    let metrics = metrics_text(&server).await;
    for reason in ["primary_lost", "primary_restored", "manual"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("lunora_failovers_total")
                    && l.contains(&channel)
                    && l.contains(&format!("reason=\"{reason}\""))),
            "no {reason} in /metrics"
        );
    }
    let a = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/stop"),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.status, 200);
    let hist = api
        .call(
            "GET",
            &format!("/api/v1/streaming/sessions?channel_id={channel}"),
            None,
        )
        .await;
    let session = hist.body["items"][0]["id"].as_str().unwrap().to_string();
    let detail = api
        .call(
            "GET",
            &format!("/api/v1/streaming/sessions/{session}"),
            None,
        )
        .await;
    let failovers = detail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "failover")
        .count();
    assert!(failovers >= 3, "{}", detail.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_input_left_the_destination_gets_the_fill_signal_then_the_input_again() {
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let ch: Value = create_channel(&server, &api.token, "fill")
        .await
        .json()
        .await
        .unwrap();
    let channel = ch["id"].as_str().unwrap().to_string();
    let primary_key = key_of(ch["publish_url"].as_str().unwrap());
    let path = format!("/api/v1/channels/{channel}/sources/config");
    let a = api
        .call(
            "PUT",
            &path,
            Some(json!({
                "redundancy_mode": "auto_failover", "failover_threshold": 1, "fill_hold": 30,
                "primary_source": {"protocol": "rtmp"}, "secondary_source": {"protocol": "srt"}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["fill_hold"], 30.0);
    let primary_url = format!("rtmp://{}/live/{primary_key}", server.rtmp_addr().unwrap());
    let mut primary = Publisher::start(&primary_url);
    api.wait_status(
        &channel,
        Duration::from_secs(20),
        "the primary live",
        |st| st["active"] == "primary" && input_state(st, "primary") == "active",
    )
    .await;
    let a = api
        .call("POST", "/api/v1/destinations", Some(json!({"name": "n", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "fill"})))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let dest = a.body["id"].as_str().unwrap().to_string();
    let a = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/start"),
            Some(json!({"destination_ids": [dest]})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    api.wait_destination_live(&channel).await;
    let (stop_watch, watcher) = watch_publishers(nginx.stat, "fill");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fill.flv");

    // The only publisher dies: after the 1 s threshold the destination gets the last keyframe
    // held still with silence; the publisher comes back 5 s later and the channel is live again.
    let rec = start_recording(format!("{}/fill", nginx.url()), 12, file.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    primary.kill();
    let st = api
        .wait_status(&channel, Duration::from_secs(5), "the fill signal", |st| {
            st["fill_since"].is_string()
        })
        .await;
    assert_eq!(input_state(&st, "primary"), "lost");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let primary_again = Publisher::start(&primary_url);
    api.wait_status(&channel, Duration::from_secs(10), "live again", |st| {
        st["fill_since"].is_null() && input_state(st, "primary") == "active"
    })
    .await;
    let out = rec.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (frames, gap, increasing) = video_gaps(&file);
    assert!(increasing, "timestamps went backwards at the destination");
    // 12 s at 30 fps: the fill keeps the frame rate (skipped pictures between keyframes).
    assert!(frames > 300, "only {frames} frames");
    // The threshold (1 s) plus a frame or two, then at most one GOP (1 s) until the input's
    // keyframe is not a hole: the fill runs until then.
    assert!(gap < 1.5, "largest gap in delivered frames: {gap:.3} s");
    let audio = packet_times(&file, "a");
    let audio_gap = audio.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(audio_gap < 1.5, "largest audio gap: {audio_gap:.3} s");
    assert!(
        audio.windows(2).all(|w| w[1] > w[0]),
        "audio timestamps went backwards"
    );
    // The fill (repeated keyframe, skipped pictures, silent AAC) and the way back decode without
    // a decoder error (a recording that starts mid-GOP may miss its first pictures' reference).
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&decode.stderr);
    let decoder_errors: Vec<&str> = errors
        .lines()
        .filter(|l| l.starts_with("[h264") || l.starts_with("[aac"))
        .filter(|l| !l.contains("non-existing PPS") && !l.contains("no frame!"))
        .collect();
    assert!(decoder_errors.is_empty(), "decoding errors: {errors}");
    println!("fill: largest gap at the destination {gap:.3} s (audio {audio_gap:.3} s) over {frames} frames");
    let _ = stop_watch.send(true);
    let (seen, missing) = watcher.await.unwrap();
    assert_eq!(
        (seen.len(), missing),
        (1, 0),
        "the destination saw publishers {seen:?}"
    );

    // With a 2 s hold, a publisher that does not come back ends the streaming session.
    let a = api.call("PUT", &path, Some(json!({"fill_hold": 2}))).await;
    assert_eq!(a.status, 200, "{a:?}");
    drop(primary_again);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = api
            .call(
                "GET",
                &format!("/api/v1/channels/{channel}/streaming/status"),
                None,
            )
            .await;
        if a.body["streaming"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the destinations were not stopped: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hist = api
        .call(
            "GET",
            &format!("/api/v1/streaming/sessions?channel_id={channel}"),
            None,
        )
        .await;
    let session = hist.body["items"][0]["id"].as_str().unwrap().to_string();
    let detail = api
        .call(
            "GET",
            &format!("/api/v1/streaming/sessions/{session}"),
            None,
        )
        .await;
    let fills = detail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "fill")
        .count();
    assert!(
        fills >= 3,
        "started, ended, started (expired stops the session): {}",
        detail.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_srt_publishers_are_refused_and_the_live_channel_goes_on() {
    let server = start(DbKind::Sqlite).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let res = create_channel(&server, &api.token, "srt").await;
    let ch: Value = res.json().await.unwrap();
    let channel = ch["id"].as_str().unwrap().to_string();
    let primary_key = key_of(ch["publish_url"].as_str().unwrap());
    let passphrase = "a-long-passphrase-256";
    let a = api
        .call(
            "PUT",
            &format!("/api/v1/channels/{channel}/sources/config"),
            Some(json!({
                "redundancy_mode": "auto_failover",
                "failover_threshold": 1,
                "auto_return_hold": 1,
                "primary_source": {"protocol": "srt", "passphrase": passphrase, "key_length": 256},
                "secondary_source": {"protocol": "srt"}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let secondary_key = key_of(a.body["secondary_source"]["publish_url"].as_str().unwrap());
    let srt = srt_addr(&server);

    // The backup through srt-live-transmit, with a `#!::` stream id.
    let _backup = SrtPublisher::srt_live_transmit(&format!(
        "srt://{srt}?streamid=%23!::r={secondary_key},m=publish"
    ));
    api.wait_status(&channel, Duration::from_secs(20), "the backup live", |st| {
        st["active"] == "secondary" && input_state(st, "secondary") == "active"
    })
    .await;

    let refused = |url: String, what: &'static str| async move {
        let mut p = SrtPublisher::ffmpeg(&url);
        let err = tokio::task::spawn_blocking(move || p.refused_within(Duration::from_secs(15)))
            .await
            .unwrap();
        assert!(err.is_some(), "{what}: the publisher was not refused");
    };
    refused(
        format!("srt://{srt}?streamid=live_not-a-key"),
        "unknown stream id",
    )
    .await;
    refused(
        format!("srt://{srt}?streamid={primary_key}&passphrase=wrong-passphrase&pbkeylen=32"),
        "wrong passphrase",
    )
    .await;
    refused(
        format!("srt://{srt}?streamid={primary_key}"),
        "no passphrase",
    )
    .await;
    refused(
        format!("srt://{srt}?streamid=%23!::r={primary_key},m=request"),
        "a play request",
    )
    .await;
    // Garbage on the SRT port.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..200u32 {
        let junk: Vec<u8> = (0..(i % 64 + 1) * 20)
            .map(|j| (i * 31 + j * 7) as u8)
            .collect();
        udp.send_to(&junk, srt).unwrap();
    }

    // The right primary: accepted (AES-256), and the channel returns to it after the hold.
    let good = format!("srt://{srt}?streamid={primary_key}&passphrase={passphrase}&pbkeylen=32");
    let mut primary = SrtPublisher::ffmpeg(&good);
    let st = api
        .wait_status(
            &channel,
            Duration::from_secs(20),
            "the primary back",
            |st| {
                st["active"] == "primary"
                    && st["inputs"][0]["srt"]["packets_received"]
                        .as_u64()
                        .unwrap_or(0)
                        > 0
            },
        )
        .await;
    let stats = &st["inputs"][0]["srt"];
    assert_eq!(
        (stats["encrypted"].as_bool(), stats["key_length"].as_u64()),
        (Some(true), Some(256)),
        "{st}"
    );
    assert!(
        stats["rtt_ms"].as_f64().is_some() && stats["latency_ms"].as_u64().unwrap() >= 120,
        "{st}"
    );

    // A third publisher on the taken input is refused; the live one goes on.
    let uptime = st["inputs"][0]["uptime_seconds"].as_f64().unwrap();
    refused(good.clone(), "a third publisher").await;
    let st = api.status(&channel).await;
    assert_eq!(st["active"], "primary");
    assert!(
        st["inputs"][0]["uptime_seconds"].as_f64().unwrap() > uptime,
        "{st}"
    );
    assert!(
        st["inputs"][0]["bitrate_bps"].as_u64().unwrap() > 100_000,
        "{st}"
    );
    assert_eq!(
        st["switches"], 1,
        "nothing but the return to the primary: {st}"
    );

    let logs = server.logs();
    for expected in [
        "the stream id is not a valid publish key",
        "passphrase",
        "this input requires encryption",
        "m=publish",
        "already publishing",
        "ignored datagrams that are not SRT",
    ] {
        assert!(
            logs.contains(expected),
            "no log line about `{expected}`:\n{}",
            tail(&logs)
        );
    }
    assert!(!logs.contains(passphrase), "the passphrase was logged");
    assert!(!logs.contains(&primary_key), "a publish key was logged");

    // Caller mode: the secondary becomes an encoder's listener that Lunora calls.
    let port = free_udp_port();
    let _encoder = SrtPublisher::ffmpeg_listener(port, "listener-passphrase");
    let a = api
        .call(
            "PUT",
            &format!("/api/v1/channels/{channel}/sources/config"),
            Some(json!({
                "secondary_source": {"protocol": "srt", "address": "127.0.0.1", "port": port,
                                     "passphrase": "listener-passphrase", "latency": 200}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["secondary_source"]["mode"], "caller");
    let st = api
        .wait_status(
            &channel,
            Duration::from_secs(20),
            "the caller connected",
            |st| {
                st["inputs"][1]["srt"]["mode"] == "caller"
                    && input_state(st, "secondary") == "standby"
            },
        )
        .await;
    assert_eq!(st["inputs"][1]["srt"]["latency_ms"], 200, "{st}");
    assert_eq!(st["active"], "primary");

    // Two SRT encoders (FFmpeg calling Lunora, FFmpeg listening for Lunora's call) and one
    // destination on nginx: the primary dies, the SRT backup takes over, nginx never notices.
    let nginx = Nginx::start(false);
    let a = api
        .call(
            "POST",
            "/api/v1/destinations",
            Some(json!({"name": "n", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "srt"})),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let dest = a.body["id"].as_str().unwrap().to_string();
    let a = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/start"),
            Some(json!({"destination_ids": [dest]})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    api.wait_destination_live(&channel).await;
    let (stop_watch, watcher) = watch_publishers(nginx.stat, "srt");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("srt-failover.flv");
    let rec = start_recording(format!("{}/srt", nginx.url()), 7, file.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    primary.kill();
    let st = api
        .wait_status(
            &channel,
            Duration::from_secs(10),
            "failover to the SRT backup",
            |st| st["active"] == "secondary",
        )
        .await;
    assert_eq!(st["last_switch"]["reason"], "primary_lost", "{st}");
    let out = rec.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (frames, gap, increasing) = video_gaps(&file);
    assert!(
        frames > 150 && increasing,
        "{frames} frames, increasing: {increasing}"
    );
    // Threshold (1 s) + one GOP (1 s).
    assert!(gap < 2.0, "largest gap in delivered frames: {gap:.3} s");
    println!("SRT to SRT failover: largest gap at the destination {gap:.3} s");
    let _ = stop_watch.send(true);
    let (seen, missing) = watcher.await.unwrap();
    assert_eq!(
        (seen.len(), missing),
        (1, 0),
        "the destination saw publishers {seen:?}"
    );
}

async fn source_settings_are_validated_stored_and_applied(db: DbKind) {
    let mut server = start(db).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let ch: Value = create_channel(&server, &api.token, "settings")
        .await
        .json()
        .await
        .unwrap();
    let channel = ch["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/channels/{channel}/sources/config");

    // Defaults before anything is saved.
    let a = api.call("GET", &path, None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["redundancy_mode"], "single");
    assert_eq!(a.body["failover_threshold"], 5.0);
    assert_eq!(a.body["primary_source"]["protocol"], "rtmp");
    assert!(a.body["secondary_source"].is_null());

    for (body, field) in [
        (json!({"failover_threshold": 0.1}), "failover_threshold"),
        (json!({"failover_threshold": 61}), "failover_threshold"),
        (
            json!({"redundancy_mode": "load_balance"}),
            "redundancy_mode",
        ),
        (
            json!({"redundancy_mode": "auto_failover"}),
            "secondary_source",
        ),
        (
            json!({"primary_source": {"protocol": "udp"}}),
            "primary_source.protocol",
        ),
        (
            json!({"primary_source": {"protocol": "rtmp", "passphrase": "0123456789"}}),
            "primary_source.passphrase",
        ),
        (
            json!({"primary_source": {"protocol": "srt", "passphrase": "short"}}),
            "primary_source.passphrase",
        ),
        (
            json!({"primary_source": {"protocol": "srt", "key_length": 100}}),
            "primary_source.key_length",
        ),
        (
            json!({"primary_source": {"protocol": "srt", "latency": 5}}),
            "primary_source.latency",
        ),
        (
            json!({"primary_source": {"protocol": "srt", "address": "10.0.0.1"}}),
            "primary_source.port",
        ),
        (
            json!({"primary_source": {"protocol": "srt", "address": "a b", "port": 9000}}),
            "primary_source.address",
        ),
        (
            json!({"secondary_source": {"protocol": "srt", "address": "10.0.0.1", "port": 70000}}),
            "secondary_source.port",
        ),
    ] {
        let a = api.call("PUT", &path, Some(body.clone())).await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert_eq!(a.body["field"], field, "{body}: {a:?}");
    }
    let a = api.call("PUT", &path, Some(json!({"colour": "red"}))).await;
    assert_eq!(a.status, 400, "unknown fields are refused: {a:?}");
    // Nothing was written by the refusals.
    assert_eq!(api.call("GET", &path, None).await.body["version"], 0);

    let a = api
        .call(
            "PUT",
            &path,
            Some(json!({
                "redundancy_mode": "manual",
                "failover_threshold": 2.5,
                "health_check_interval": 0.5,
                "auto_return": false,
                "primary_source": {"protocol": "srt", "latency": 300, "passphrase": "0123456789abc", "key_length": 192},
                "secondary_source": {"protocol": "srt", "address": "192.0.2.10", "port": 9000, "stream_id": "cam-b"}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let etag = a.headers.get("etag").unwrap().to_str().unwrap().to_string();
    let secondary_key = key_of(a.body["secondary_source"]["publish_url"].as_str().unwrap());
    let a = api.call("GET", &path, None).await;
    let b = &a.body;
    assert_eq!(
        (
            b["redundancy_mode"].as_str(),
            b["failover_threshold"].as_f64()
        ),
        (Some("manual"), Some(2.5))
    );
    assert_eq!(
        (
            b["health_check_interval"].as_f64(),
            b["auto_return"].as_bool()
        ),
        (Some(0.5), Some(false))
    );
    let p = &b["primary_source"];
    assert_eq!(
        (
            p["protocol"].as_str(),
            p["latency"].as_i64(),
            p["encryption"].as_bool(),
            p["key_length"].as_i64()
        ),
        (Some("srt"), Some(300), Some(true), Some(192))
    );
    let s = &b["secondary_source"];
    assert_eq!(
        (
            s["mode"].as_str(),
            s["address"].as_str(),
            s["port"].as_i64(),
            s["stream_id"].as_str()
        ),
        (
            Some("caller"),
            Some("192.0.2.10"),
            Some(9000),
            Some("cam-b")
        )
    );
    assert!(
        !b.to_string().contains(&secondary_key),
        "keys are shown once: {b}"
    );
    assert!(!b.to_string().contains("0123456789abc"));

    // The status names every input; the engine already has the settings.
    let st = api.status(&channel).await;
    assert_eq!(st["redundancy_mode"], "manual");
    assert_eq!(input_state(&st, "primary"), "lost");

    // A stale ETag is refused; a fresh one applies. The passphrase stays unless changed.
    let a = call_with(
        &server.client,
        &server,
        "PUT",
        &path,
        Some(api.token.as_str()),
        Some(&json!({"failover_threshold": 3})),
    )
    .await;
    assert_eq!(a.status, 200);
    let stale = server
        .client
        .put(server.url(&path))
        .bearer_auth(&api.token)
        .header("if-match", &etag)
        .json(&json!({"failover_threshold": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let a = api
        .call(
            "PUT",
            &path,
            Some(json!({"redundancy_mode": "single", "secondary_source": null})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body["secondary_source"].is_null());
    assert_eq!(a.body["primary_source"]["encryption"], true);
    assert_eq!(a.body["failover_threshold"], 3.0);
    let st = api.status(&channel).await;
    assert_eq!(input_state(&st, "secondary"), "not_configured");

    // A switch on a channel with nothing live is a conflict; a bad target is bad input.
    let sw = format!("/api/v1/channels/{channel}/sources/switch");
    let a = api.call("POST", &sw, Some(json!({"to": "tertiary"}))).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("to")));
    let a = api.call("POST", &sw, Some(json!({"to": "primary"}))).await;
    assert_eq!(a.status, 409, "{a:?}");
    // Another organization's channel is not found.
    let a = call(
        &server,
        "GET",
        "/api/v1/channels/00000000-0000-0000-0000-000000000000/sources/status",
        Some(api.token.as_str()),
        None,
    )
    .await;
    assert_eq!(a.status, 404);

    // The settings survive a restart (and are applied to the engine at start).
    let token = api.token.clone();
    server.restart().await.unwrap();
    let a = call(&server, "GET", &path, Some(token.as_str()), None).await;
    assert_eq!(
        (
            a.body["redundancy_mode"].as_str(),
            a.body["failover_threshold"].as_f64()
        ),
        (Some("single"), Some(3.0)),
        "{a:?}"
    );
    assert_eq!(a.body["primary_source"]["latency"], 300);
}

/// Benchmark, not a test (`cargo test -p lunora --test failover -- --ignored --nocapture`):
/// the gap in delivered frames at an nginx destination when the SRT primary is killed while
/// an RTMP backup is sending, for thresholds of 0.5, 1 and 5 s, over repeated kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_failover_gap_at_the_destination() {
    const KILLS: usize = 5;
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let ch: Value = create_channel(&server, &api.token, "bench")
        .await
        .json()
        .await
        .unwrap();
    let channel = ch["id"].as_str().unwrap().to_string();
    let primary_key = key_of(ch["publish_url"].as_str().unwrap());
    let path = format!("/api/v1/channels/{channel}/sources/config");
    let a = api
        .call(
            "PUT",
            &path,
            Some(json!({
                "redundancy_mode": "auto_failover", "failover_threshold": 5, "auto_return_hold": 2,
                "primary_source": {"protocol": "srt"}, "secondary_source": {"protocol": "rtmp"}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let secondary_key = key_of(a.body["secondary_source"]["publish_url"].as_str().unwrap());
    let srt_url = format!("srt://{}?streamid={primary_key}", srt_addr(&server));
    let mut primary = SrtPublisher::ffmpeg(&srt_url);
    let _backup = Publisher::start(&format!(
        "rtmp://{}/live/{secondary_key}",
        server.rtmp_addr().unwrap()
    ));
    let a = api
        .call("POST", "/api/v1/destinations", Some(json!({"name": "n", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "bench"})))
        .await;
    let dest = a.body["id"].as_str().unwrap().to_string();
    api.call(
        "POST",
        &format!("/api/v1/channels/{channel}/streaming/start"),
        Some(json!({"destination_ids": [dest]})),
    )
    .await;
    api.wait_destination_live(&channel).await;
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for threshold in [0.5f64, 1.0, 5.0] {
        let a = api
            .call("PUT", &path, Some(json!({"failover_threshold": threshold})))
            .await;
        assert_eq!(a.status, 200);
        let mut gaps = Vec::new();
        let mut kill = 0;
        let mut attempts = 0;
        while kill < KILLS && attempts < 2 * KILLS {
            attempts += 1;
            api.wait_status(&channel, Duration::from_secs(30), "primary active", |st| {
                st["active"] == "primary" && input_state(st, "secondary") == "standby"
            })
            .await;
            // Let the backup's GOP cache hold a different part of a GOP each time.
            tokio::time::sleep(Duration::from_millis(1500 + 337 * attempts as u64)).await;
            let out = dir.path().join(format!("t{threshold}-{attempts}.flv"));
            let rec = start_recording(
                format!("{}/bench", nginx.url()),
                threshold.ceil() as u32 + 5,
                out.clone(),
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            let killed_at = Instant::now();
            primary.kill();
            let st = api
                .wait_status(&channel, Duration::from_secs(15), "failover", |st| {
                    st["active"] == "secondary"
                })
                .await;
            let detected = killed_at.elapsed().as_secs_f64();
            let recorded = rec.await.unwrap();
            primary = SrtPublisher::ffmpeg(&srt_url);
            // A kill counts only when the recording covers it: 2 s before, the failover and
            // at least 1 s after (a recorder that joined late or ended early measures nothing).
            let v = packet_times(&out, "v");
            let span = v.last().copied().unwrap_or(0.0) - v.first().copied().unwrap_or(0.0);
            if !recorded.status.success() || span < threshold + 3.0 {
                println!(
                    "threshold {threshold} s: recording {span:.1} s does not cover the kill; again"
                );
                continue;
            }
            assert_eq!(st["last_switch"]["reason"], "primary_lost", "{st}");
            let (_, gap, increasing) = video_gaps(&out);
            assert!(increasing);
            println!("threshold {threshold} s, kill {kill}: gap {gap:.3} s, failover seen by the API after {detected:.2} s");
            gaps.push(gap);
            kill += 1;
        }
        gaps.sort_by(f64::total_cmp);
        report.push((threshold, gaps));
    }
    let d = api.wait_destination_live(&channel).await;
    println!(
        "\nFailover gap at the destination (SRT primary killed, RTMP backup sending, GOP 1 s):"
    );
    println!("threshold | kills | min gap | median | max | max - threshold");
    for (t, g) in &report {
        println!(
            "{t:>7.1} s | {:>5} | {:>5.3} s | {:>5.3} s | {:>5.3} s | {:+.3} s",
            g.len(),
            g[0],
            g[g.len() / 2],
            g[g.len() - 1],
            g[g.len() - 1] - t
        );
    }
    println!("destination reconnects: {}", d["reconnects"]);
}
