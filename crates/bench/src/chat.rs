//! `lunora-bench chat`: P WebSocket participants in one stream's live chat, S of them signed-in
//! posters sending at a steady rate; measures the fan-out delay from a poster handing its
//! message to the socket to each participant receiving it, on one clock (posters and readers
//! live in this process: each message carries its send instant, in microseconds since the run
//! started). Also counts refused posts, lost deliveries, participants dropped as too slow, and
//! the server's CPU and memory.
//!
//! Not part of the test suite: `scripts/bench-viewers.sh` builds, starts a server and runs it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{clock_ticks_per_sec, process_tree, ProcSample};

pub struct ChatConfig {
    pub url: String,
    pub email: String,
    pub password: String,
    pub participants: usize,
    pub posters: usize,
    /// Messages per minute of each poster.
    pub per_minute: f64,
    pub duration: Duration,
    pub ramp_rate: f64,
    pub server_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct ChatResult {
    pub participants: usize,
    pub posters: usize,
    pub messages_per_second: f64,
    pub sent: u64,
    pub refused: u64,
    /// Messages received by participants (each accepted message once per participant).
    pub deliveries: u64,
    pub expected_deliveries: u64,
    pub participants_dropped: u64,
    pub fanout_p50_ms: f64,
    pub fanout_p90_ms: f64,
    pub fanout_p99_ms: f64,
    pub fanout_max_ms: f64,
    pub server_cores: f64,
    pub server_rss_mib: f64,
}

async fn api(rb: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let res = rb.send().await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

async fn login(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let v = api(http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password})))
    .await
    .with_context(|| format!("sign-in of {email}"))?;
    v["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access token in the sign-in answer")
}

/// Invites a viewer, accepts from the outbox and signs in: the poster's token.
async fn poster_account(
    http: &reqwest::Client,
    url: &str,
    admin: &str,
    i: usize,
    run: u64,
) -> anyhow::Result<String> {
    let email = format!("chat-bench-{run}-{i}@bench.invalid");
    let password = "Chat-Bench-Passw0rd";
    api(http
        .post(format!("{url}/api/v1/invitations"))
        .bearer_auth(admin)
        .json(&json!({"email": email, "role": "viewer"})))
    .await
    .context("invitation")?;
    let outbox = api(http
        .get(format!("{url}/api/v1/outbox?recipient={email}"))
        .bearer_auth(admin))
    .await
    .context("outbox")?;
    let body = outbox["items"][0]["body"].as_str().unwrap_or("");
    let token: String = body
        .split("token=")
        .nth(1)
        .unwrap_or("")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if token.is_empty() {
        bail!("no invitation link for {email} in the outbox");
    }
    api(http.post(format!("{url}/api/v1/invitations/accept")).json(
        &json!({"token": token, "password": password, "display_name": format!("poster {i}")}),
    ))
    .await
    .context("accepting the invitation")?;
    login(http, url, &email, password).await
}

struct Shared {
    start: Instant,
    hist: Mutex<Histogram<u64>>,
    deliveries: AtomicU64,
    sent: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    measuring: watch::Receiver<bool>,
}

/// One participant: reads every frame; a poster also sends `per_minute` messages a minute.
async fn participant(
    ws_url: String,
    token: Option<String>,
    per_minute: f64,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut req = ws_url.into_client_request()?;
    if let Some(t) = &token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let (mut tx, mut rx) = ws.split();
    let gap = if token.is_some() && per_minute > 0.0 {
        Some(Duration::from_secs_f64(60.0 / per_minute))
    } else {
        None
    };
    // Posters start at a random phase so they do not send in lockstep.
    let first = gap.map(|g| g.mul_f64(rand::random::<f64>()));
    let mut next = tokio::time::Instant::now() + first.unwrap_or(Duration::from_secs(3600));
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep_until(next), if gap.is_some() => {
                seq += 1;
                let at = shared.start.elapsed().as_micros() as u64;
                let body = format!("bench {seq} t={at}");
                tx.send(Message::Text(json!({"type": "send", "body": body}).to_string().into())).await?;
                if *shared.measuring.borrow() {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
                next += gap.unwrap_or_default();
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let now = shared.start.elapsed().as_micros() as u64;
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    match v["type"].as_str() {
                        Some("message") => {
                            let sent_at = v["message"]["body"]
                                .as_str()
                                .and_then(|b| b.rsplit("t=").next())
                                .and_then(|s| s.parse::<u64>().ok());
                            if let (Some(at), true) = (sent_at, *shared.measuring.borrow()) {
                                shared.deliveries.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut h) = shared.hist.lock() {
                                    let _ = h.record(now.saturating_sub(at).max(1));
                                }
                            }
                        }
                        Some("error") if *shared.measuring.borrow() => {
                            shared.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

pub async fn run(config: ChatConfig) -> anyhow::Result<ChatResult> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = config.url.trim_end_matches('/').to_string();
    let admin = login(&http, &url, &config.email, &config.password).await?;
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let channel = api(http
        .post(format!("{url}/api/v1/channels"))
        .bearer_auth(&admin)
        .json(&json!({"name": format!("chat-bench-{run_id}")})))
    .await
    .context("creating the stream")?;
    let stream = channel["id"].as_str().context("no channel id")?.to_string();
    let posters = config.posters.min(config.participants);
    let mut tokens = Vec::with_capacity(posters);
    for i in 0..posters {
        tokens.push(poster_account(&http, &url, &admin, i, run_id).await?);
    }
    let ws_url = format!(
        "{}/api/v1/streams/{stream}/chat/ws",
        url.replacen("http", "ws", 1)
    );
    let (measure_tx, measure_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        hist: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        deliveries: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        measuring: measure_rx,
    });
    let mut tasks = Vec::with_capacity(config.participants);
    let pause = Duration::from_secs_f64(1.0 / config.ramp_rate.max(1.0));
    let mut tokens = tokens.into_iter();
    for _ in 0..config.participants {
        let token = tokens.next();
        tasks.push(tokio::spawn(participant(
            ws_url.clone(),
            token,
            config.per_minute,
            shared.clone(),
            stop_rx.clone(),
        )));
        tokio::time::sleep(pause).await;
    }
    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pids = config.server_pid.map(process_tree).unwrap_or_default();
    let before = ProcSample::take(&pids);
    measure_tx.send_replace(true);
    tokio::time::sleep(config.duration).await;
    measure_tx.send_replace(false);
    let after = ProcSample::take(&pids);
    // Let the last messages arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send_replace(true);
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    let sent = shared.sent.load(Ordering::Relaxed);
    let refused = shared.refused.load(Ordering::Relaxed);
    let h = shared
        .hist
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?
        .clone();
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(ChatResult {
        participants: config.participants,
        posters,
        messages_per_second: sent as f64 / config.duration.as_secs_f64(),
        sent,
        refused,
        deliveries: shared.deliveries.load(Ordering::Relaxed),
        expected_deliveries: sent.saturating_sub(refused) * config.participants as u64,
        participants_dropped: shared.dropped.load(Ordering::Relaxed) + failed,
        fanout_p50_ms: ms(h.value_at_quantile(0.50)),
        fanout_p90_ms: ms(h.value_at_quantile(0.90)),
        fanout_p99_ms: ms(h.value_at_quantile(0.99)),
        fanout_max_ms: ms(h.max()),
        server_cores: before.cores_until(&after, clock_ticks_per_sec()),
        server_rss_mib: after.rss_kib as f64 / 1024.0,
    })
}
