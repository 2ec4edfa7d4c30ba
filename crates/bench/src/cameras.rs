//! `lunora-bench cameras`: N cameras (created by one CSV import) publishing the 1 Mb/s clip,
//! C WebSocket clients listening on the organization's topic; measures
//!
//! - `GET /api/v1/cameras?limit=100` latency (p50, p99, max) while all of that runs;
//! - dashboard staleness: from a publisher being cut (or started again) to the first
//!   `dashboard.update` that shows it, seen by a listening client;
//! - the server's CPU and memory, and how many listeners were dropped as too slow.
//!
//! Not part of the test suite: `scripts/bench-cameras.sh` builds, starts a server and runs it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Clock, PublisherState, SendLog, Shared};
use crate::media::Clip;
use crate::stats::{clock_ticks_per_sec, process_tree, ProcSample};
use crate::target::split_publish_url;

pub struct CamerasConfig {
    pub url: String,
    pub email: String,
    pub password: String,
    pub rtmp_override: Option<String>,
    pub cameras: usize,
    pub clients: usize,
    pub duration: Duration,
    pub flaps: usize,
    pub ramp_rate: f64,
    pub clip: Arc<Clip>,
    pub server_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct CamerasResult {
    pub cameras: usize,
    pub clip_mbps: f64,
    pub ws_clients: usize,
    pub ws_clients_dropped: u64,
    pub ws_messages_per_client: f64,
    /// Seconds from the first publisher starting to the dashboard showing all online.
    pub all_online_after_s: f64,
    pub list_requests: u64,
    pub list_p50_ms: f64,
    pub list_p99_ms: f64,
    pub list_max_ms: f64,
    /// Cut publisher → `dashboard.update` showing one fewer online, per flap.
    pub offline_staleness_ms: Vec<u64>,
    /// Publisher started again → `dashboard.update` showing all online, per flap.
    pub online_staleness_ms: Vec<u64>,
    pub server_cores: f64,
    pub server_rss_mib: f64,
}

struct Camera {
    server: lunora_rtmp::RtmpUrl,
    key: String,
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

/// Dashboard figures as a listening client sees them.
#[derive(Debug, Clone, Copy)]
struct Seen {
    online: u64,
    at: Instant,
}

async fn listener(
    url: String,
    token: String,
    dashboards: Option<mpsc::UnboundedSender<Seen>>,
    messages: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let ws_url = format!("{}/api/v1/events", url.replacen("http", "ws", 1));
    let mut req = ws_url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::Text(
        json!({"type": "subscribe", "topics": ["org"]})
            .to_string()
            .into(),
    ))
    .await?;
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    messages.fetch_add(1, Ordering::Relaxed);
                    if let Some(tx) = &dashboards {
                        if let Ok(v) = serde_json::from_str::<Value>(&t) {
                            if v["type"] == "dashboard.update" {
                                let online = v["data"]["cameras_online"].as_u64().unwrap_or(0);
                                let _ = tx.send(Seen { online, at: Instant::now() });
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// `GET list` one after the other for `duration` (50 ms apart): the latency histogram (µs).
async fn measure_list(
    list: String,
    token: String,
    duration: Duration,
) -> anyhow::Result<Histogram<u64>> {
    // A client of this thread's runtime: connections made on the generator's runtime would
    // be driven by it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let until = Instant::now() + duration;
    while Instant::now() < until {
        let t = Instant::now();
        let res = client.get(&list).bearer_auth(&token).send().await?;
        let status = res.status();
        let _ = res.bytes().await?;
        if !status.is_success() {
            bail!("GET /api/v1/cameras answered {status}");
        }
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(hist)
}

/// Runs `fut` on a new thread with a single-threaded runtime of its own; the handle answers
/// its result like a spawned task's.
fn on_own_thread<T, F>(fut: F) -> JoinHandle<anyhow::Result<T>>
where
    F: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let out = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(fut));
        let _ = tx.send(out);
    });
    tokio::spawn(async move {
        rx.await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the measuring thread ended early")))
    })
}

/// The first dashboard update at or after `since` with `online` cameras online.
async fn dashboard_reaches(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    online: u64,
    since: Instant,
    within: Duration,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = tokio::time::timeout_at(deadline, rx.recv()).await.ok()??;
        if seen.at >= since && seen.online == online {
            return Some(seen.at);
        }
    }
}

fn spawn_publisher(
    cam: &Camera,
    clip: &Arc<Clip>,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(conn::publish(
        cam.server.clone(),
        cam.key.clone(),
        clip.clone(),
        false,
        Arc::new(SendLog::default()),
        Arc::new(PublisherState::default()),
        shared.clone(),
        stop.clone(),
    ))
}

pub async fn run(cfg: CamerasConfig) -> anyhow::Result<CamerasResult> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = cfg.url.trim_end_matches('/').to_string();
    let login = api(client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": cfg.email, "password": cfg.password})))
    .await
    .context("signing in")?;
    let token = login["access_token"]
        .as_str()
        .context("no access token (start the server with LUNORA_AUTH_STAFF_MFA=optional)")?
        .to_string();

    // One CSV import per 200 cameras (each row is a committed write; a request has 30 s).
    let tag = format!("{:x}", rand::random::<u32>());
    let mut cameras = Vec::with_capacity(cfg.cameras);
    let mut made = 0;
    while made < cfg.cameras {
        let batch = (cfg.cameras - made).min(200);
        let mut csv = String::from("name,serial_number,tags\n");
        for i in made..made + batch {
            csv.push_str(&format!("bench {tag} {i},B-{tag}-{i},bench\n"));
        }
        let report = api(client
            .post(format!("{base}/api/v1/cameras/import"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv))
        .await
        .context("importing cameras")?;
        for row in report["rows"].as_array().context("import report")? {
            let url = row["publish_url"]
                .as_str()
                .with_context(|| format!("import row failed: {row}"))?;
            let (server, key) = split_publish_url(url)?;
            let server = cfg.rtmp_override.clone().unwrap_or(server);
            cameras.push(Camera {
                server: lunora_rtmp::RtmpUrl::parse(&server)?,
                key,
            });
        }
        made += batch;
    }
    eprintln!("bench: {} cameras imported", cameras.len());

    // Listeners: the first one watches the dashboard.
    let (stop_tx, stop_rx) = watch::channel(false);
    let messages = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let (dash_tx, mut dash_rx) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    // The watching client runs on a thread of its own: on the generator's runtime, its
    // messages would wait behind a thousand publishers and the staleness would measure the
    // generator instead of the server.
    listeners.push(on_own_thread(listener(
        base.clone(),
        token.clone(),
        Some(dash_tx.clone()),
        messages.clone(),
        dropped.clone(),
        stop_rx.clone(),
    )));
    for _ in 1..cfg.clients.max(1) {
        listeners.push(tokio::spawn(listener(
            base.clone(),
            token.clone(),
            None,
            messages.clone(),
            dropped.clone(),
            stop_rx.clone(),
        )));
    }
    drop(dash_tx);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Publishers, ramped.
    let shared = Arc::new(Shared {
        clock: Clock {
            base: Instant::now(),
        },
        measuring: AtomicBool::new(false),
    });
    let n = cameras.len() as u64;
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / cfg.ramp_rate.max(0.1));
    let mut tick = tokio::time::interval(gap);
    let mut pubs = Vec::with_capacity(cameras.len());
    for cam in &cameras {
        tick.tick().await;
        pubs.push(spawn_publisher(cam, &cfg.clip, &shared, &stop_rx));
    }
    let all_online = dashboard_reaches(&mut dash_rx, n, started, Duration::from_secs(120))
        .await
        .context("the dashboard never showed every camera online")?;
    let all_online_after_s = all_online.duration_since(started).as_secs_f64();
    eprintln!("bench: all {n} online after {all_online_after_s:.1} s");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The list's latency while everything runs; the server's CPU over the same time.
    let pids = cfg.server_pid.map(process_tree).unwrap_or_default();
    let before = ProcSample::take(&pids);
    // Measured from a thread of its own, like the watching client.
    let hist = on_own_thread(measure_list(
        format!("{base}/api/v1/cameras?limit=100"),
        token.clone(),
        cfg.duration,
    ))
    .await??;
    let after = ProcSample::take(&pids);

    // Staleness: cut one publisher, then start it again; each time, how long until a
    // listener's dashboard shows it.
    let mut offline_staleness_ms = Vec::new();
    let mut online_staleness_ms = Vec::new();
    for k in 0..cfg.flaps.min(pubs.len()) {
        while dash_rx.try_recv().is_ok() {}
        let cut = Instant::now();
        pubs[k].abort();
        let seen = dashboard_reaches(&mut dash_rx, n - 1, cut, Duration::from_secs(20))
            .await
            .context("the dashboard did not show the cut camera offline")?;
        offline_staleness_ms.push(seen.duration_since(cut).as_millis() as u64);
        tokio::time::sleep(Duration::from_secs(1)).await;
        while dash_rx.try_recv().is_ok() {}
        let again = Instant::now();
        pubs[k] = spawn_publisher(&cameras[k], &cfg.clip, &shared, &stop_rx);
        let seen = dashboard_reaches(&mut dash_rx, n, again, Duration::from_secs(20))
            .await
            .context("the dashboard did not show the camera back")?;
        online_staleness_ms.push(seen.duration_since(again).as_millis() as u64);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let _ = stop_tx.send(true);
    for p in pubs {
        p.abort();
    }
    for l in listeners {
        let _ = tokio::time::timeout(Duration::from_secs(2), l).await;
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(CamerasResult {
        cameras: cameras.len(),
        clip_mbps: cfg.clip.mbps(),
        ws_clients: cfg.clients,
        ws_clients_dropped: dropped.load(Ordering::Relaxed),
        ws_messages_per_client: messages.load(Ordering::Relaxed) as f64 / cfg.clients.max(1) as f64,
        all_online_after_s,
        list_requests: hist.len(),
        list_p50_ms: ms(0.5),
        list_p99_ms: ms(0.99),
        list_max_ms: hist.max() as f64 / 1000.0,
        offline_staleness_ms,
        online_staleness_ms,
        server_cores: before.cores_until(&after, clock_ticks_per_sec()),
        server_rss_mib: after.rss_kib as f64 / 1024.0,
    })
}
