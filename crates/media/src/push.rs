//! Destinations: push a channel to an RTMP or RTMPS server (YouTube, X, LinkedIn, any custom
//! server), reconnecting with backoff, and report a status a person can read.
//!
//! One task per destination owns its socket and a sans-IO [`ClientSession`]. It subscribes to
//! a [`PushSource`]: the channel's bus, never an input, so a failover or an encoder reconnect
//! is invisible to it; or a [`Rendition`] of the channel when the destination has a preset
//! (an FFmpeg restart is invisible too: the rendition's timeline goes on). It counts as
//! `live` only while the server acknowledges what it is sent; a server that stops
//! acknowledging is disconnected and retried. A rendition that fails for good (FFmpeg
//! missing, say) fails the push with the rendition's error.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use lunora_rtmp::{
    encode_message_shared, encode_parts_into, msg_type, ClientConfig, ClientEvent, ClientRole,
    ClientSession, RtmpUrl, SharedChunks,
};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep, timeout, Instant};

use crate::flv::{tag_header, ticks_to_ms};
use crate::frame::{Frame, Track, WireForm, WireKey};
use crate::transcode::{Rendition, RenditionState, RenditionStatus};
use crate::{Bus, Channel, StartAt, SubscribeOptions};

/// What a push sends: a channel as it is, or a rendition of it (which the push keeps alive
/// while it runs).
pub struct PushSource {
    bus: Bus,
    rendition: Option<Arc<Rendition>>,
}

impl From<Arc<Channel>> for PushSource {
    fn from(channel: Arc<Channel>) -> Self {
        PushSource {
            bus: channel.bus().clone(),
            rendition: None,
        }
    }
}

impl From<Arc<Rendition>> for PushSource {
    fn from(rendition: Arc<Rendition>) -> Self {
        PushSource {
            bus: rendition.bus().clone(),
            rendition: Some(rendition),
        }
    }
}

/// Where to push.
#[derive(Clone)]
pub struct PushTarget {
    /// `rtmp://host[:port]/app` or `rtmps://…` (the stream key is separate).
    pub url: String,
    pub stream_key: String,
    /// TLS settings for `rtmps://` (system roots plus any extra CA); `None` refuses RTMPS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTarget")
            .field("url", &self.url)
            .field("stream_key", &"****")
            .finish()
    }
}

/// Timers and limits of a push.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    /// Window we announce; the server acknowledges every this many bytes.
    pub ack_window: u32,
    /// Without an acknowledgement for this long while sending, the connection is dead.
    pub ack_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            ack_window: 256 * 1024,
            ack_timeout: Duration::from_secs(6),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    Idle,
    Connecting,
    Live,
    Retrying,
    Failed,
}

/// What a destination reports.
#[derive(Debug, Clone, Serialize)]
pub struct PushStatus {
    pub state: PushState,
    /// The last failure, in words.
    pub last_error: Option<String>,
    pub bytes_sent: u64,
    /// Over the last few seconds.
    pub bitrate_bps: u64,
    pub reconnects: u64,
    /// Unix ms when the current connection went live.
    pub live_since: Option<i64>,
    /// Seconds connected, over all connections of this push.
    pub connected_seconds: f64,
    /// The rendition it sends, when the destination has a preset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcode: Option<RenditionStatus>,
}

impl Default for PushStatus {
    fn default() -> Self {
        PushStatus {
            state: PushState::Idle,
            last_error: None,
            bytes_sent: 0,
            bitrate_bps: 0,
            reconnects: 0,
            live_since: None,
            connected_seconds: 0.0,
            transcode: None,
        }
    }
}

/// A running push; dropping it (or [`PushHandle::stop`]) ends it.
pub struct PushHandle {
    status: watch::Receiver<PushStatus>,
    rendition: Option<watch::Receiver<RenditionStatus>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PushHandle {
    pub fn status(&self) -> PushStatus {
        let mut s = self.status.borrow().clone();
        s.transcode = self.rendition.as_ref().map(|r| r.borrow().clone());
        s
    }

    pub fn watch(&self) -> watch::Receiver<PushStatus> {
        self.status.clone()
    }

    /// Stops pushing and waits for the connection to close (bounded).
    pub async fn stop(mut self) -> PushStatus {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = timeout(Duration::from_secs(5), task).await;
        }
        let mut s = self.status();
        s.state = PushState::Idle;
        s.bitrate_bps = 0;
        s.live_since = None;
        s
    }
}

impl Drop for PushHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts pushing `source` (a channel or a rendition of it) to `target`.
pub fn spawn(source: impl Into<PushSource>, target: PushTarget, config: PushConfig) -> PushHandle {
    let source = source.into();
    let (status_tx, status) = watch::channel(PushStatus::default());
    let (stop, stop_rx) = watch::channel(false);
    let rendition = source.rendition.as_ref().map(|r| r.watch_status());
    let task = tokio::spawn(run(source, target, config, status_tx, stop_rx));
    PushHandle {
        status,
        rendition,
        stop,
        task: Some(task),
    }
}

/// Resolves with the rendition's error once it has failed for good; never without one.
async fn source_failed(rendition: &mut Option<watch::Receiver<RenditionStatus>>) -> String {
    if let Some(rx) = rendition {
        if let Ok(s) = rx.wait_for(|s| s.state == RenditionState::Failed).await {
            return s
                .last_error
                .clone()
                .unwrap_or_else(|| "transcoding failed".to_string());
        }
    }
    std::future::pending().await
}

enum Outcome {
    Stopped,
    /// Retry after backoff.
    Retry(String),
    /// Do not retry (bad URL, key refused).
    Fatal(String),
}

async fn run(
    source: PushSource,
    target: PushTarget,
    config: PushConfig,
    status: watch::Sender<PushStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let url = match RtmpUrl::parse(&target.url) {
        Ok(u) => u,
        Err(e) => {
            status.send_modify(|s| {
                s.state = PushState::Failed;
                s.last_error = Some(e.to_string());
            });
            return;
        }
    };
    let mut backoff = config.backoff_initial;
    let mut attempt: u64 = 0;
    let mut rendition = source.rendition.as_ref().map(|r| r.watch_status());
    loop {
        if *stop.borrow() {
            break;
        }
        status.send_modify(|s| {
            s.state = if attempt == 0 {
                PushState::Connecting
            } else {
                PushState::Retrying
            };
        });
        let started = Instant::now();
        // Bytes of earlier connections; each connection counts from zero.
        let base = status.borrow().bytes_sent;
        let outcome = tokio::select! {
            o = session(&source.bus, &url, &target, &config, &status, base) => o,
            e = source_failed(&mut rendition) => Outcome::Fatal(e),
            _ = stop.changed() => Outcome::Stopped,
        };
        let connected = status.borrow().live_since.is_some();
        status.send_modify(|s| {
            if let Some(since) = s.live_since.take() {
                s.connected_seconds += (now_ms() - since).max(0) as f64 / 1000.0;
            }
            s.bitrate_bps = 0;
        });
        match outcome {
            Outcome::Stopped => break,
            Outcome::Fatal(e) => {
                tracing::warn!(url = %target.url, error = %e, "destination failed");
                status.send_modify(|s| {
                    s.state = PushState::Failed;
                    s.last_error = Some(e);
                });
                break;
            }
            Outcome::Retry(e) => {
                tracing::info!(url = %target.url, error = %e, "destination disconnected; retrying");
                attempt += 1;
                // A connection that lived a while resets the backoff.
                if connected && started.elapsed() > Duration::from_secs(30) {
                    backoff = config.backoff_initial;
                }
                status.send_modify(|s| {
                    s.state = PushState::Retrying;
                    s.last_error = Some(e);
                    s.reconnects += 1;
                });
                let jitter = rand::random::<f64>() * 0.25;
                let wait = backoff.mul_f64(1.0 - jitter);
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = stop.changed() => break,
                    e = source_failed(&mut rendition) => {
                        status.send_modify(|s| {
                            s.state = PushState::Failed;
                            s.last_error = Some(e);
                        });
                        break;
                    }
                }
                backoff = (backoff * 2).min(config.backoff_max);
            }
        }
    }
    status.send_modify(|s| {
        if s.state != PushState::Failed {
            s.state = PushState::Idle;
        }
    });
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn connect(
    url: &RtmpUrl,
    target: &PushTarget,
    config: &PushConfig,
) -> Result<Box<dyn Io>, String> {
    let addr = format!("{}:{}", url.host, url.port);
    let tcp = match timeout(config.connect_timeout, TcpStream::connect(&addr)).await {
        Err(_) => {
            return Err(format!(
                "no answer from {addr} within {}s",
                config.connect_timeout.as_secs()
            ))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(format!("connection refused by {addr}"))
        }
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}")),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    if !url.tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(url.host.clone())
        .map_err(|_| format!("`{}` is not a valid TLS server name", url.host))?;
    let Some(tls) = target.tls.clone() else {
        return Err("RTMPS is not available: the server has no TLS settings".into());
    };
    let connector = tokio_rustls::TlsConnector::from(tls);
    match timeout(config.connect_timeout, connector.connect(name, tcp)).await {
        Err(_) => Err(format!("TLS handshake with {addr} timed out")),
        Ok(Err(e)) => Err(format!("TLS handshake with {addr} failed: {e}")),
        Ok(Ok(tls)) => Ok(Box::new(tls)),
    }
}

async fn session(
    source: &Bus,
    url: &RtmpUrl,
    target: &PushTarget,
    config: &PushConfig,
    status: &watch::Sender<PushStatus>,
    base_bytes: u64,
) -> Outcome {
    let io = match connect(url, target, config).await {
        Ok(io) => io,
        Err(e) => return Outcome::Retry(e),
    };
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut seed = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut seed);
    let mut client_config = ClientConfig::new(url.app.clone(), url.tc_url.clone());
    client_config.window_ack_size = config.ack_window;
    client_config.seed = seed;
    let mut client = ClientSession::new(
        client_config,
        ClientRole::Publish {
            stream_key: target.stream_key.clone(),
        },
    );
    let mut buf = vec![0u8; 16 * 1024];
    let mut sub = None;
    let mut stream_id = 1;
    let mut meter = Meter::default();
    let mut last_ack_change = Instant::now();
    let mut last_acks = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let setup_deadline = Instant::now() + config.connect_timeout;
    loop {
        if let Err(e) = flush(&mut client, &mut wr, config.write_timeout).await {
            return Outcome::Retry(e);
        }
        let live = sub.is_some();
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) => return Outcome::Retry(format!("{} closed the connection", url.host)),
                Err(e) => return Outcome::Retry(format!("connection to {} lost: {e}", url.host)),
                Ok(n) => {
                    if let Err(e) = client.handle_input(&buf[..n]) {
                        return Outcome::Retry(format!("protocol error from {}: {e}", url.host));
                    }
                    while let Some(ev) = client.poll_event() {
                        match ev {
                            ClientEvent::PublishStarted { stream_id: id } => {
                                stream_id = id;
                                sub = Some(source.subscribe_with(SubscribeOptions {
                                    start: StartAt::CachedGop,
                                    ..SubscribeOptions::default()
                                }));
                                last_ack_change = Instant::now();
                                status.send_modify(|s| {
                                    s.state = PushState::Live;
                                    s.live_since = Some(now_ms());
                                    s.last_error = None;
                                });
                                tracing::info!(url = %target.url, "destination live");
                            }
                            ClientEvent::PublishFailed { description, key_rejected, code } => {
                                return if key_rejected {
                                    Outcome::Fatal(format!("stream key rejected by {} ({code})", url.host))
                                } else {
                                    Outcome::Retry(format!("{} refused publishing: {description}", url.host))
                                };
                            }
                            ClientEvent::ConnectFailed { description, .. } => {
                                return Outcome::Retry(format!("{} refused the connection: {description}", url.host));
                            }
                            _ => {}
                        }
                    }
                }
            },
            frame = next(&mut sub), if live => match frame {
                Some(frame) => {
                    let bytes = encoded(&frame, client.out_chunk_size(), stream_id).bytes();
                    meter.add(bytes.len());
                    if let Err(e) = client.send_preencoded(bytes) {
                        return Outcome::Retry(format!("cannot send: {e}"));
                    }
                }
                None => return Outcome::Retry("the channel closed".into()),
            },
            _ = tick.tick() => {
                if !live && Instant::now() > setup_deadline {
                    return Outcome::Retry(format!("{} did not accept the stream in time", url.host));
                }
                let stats = client.stats();
                if stats.acks_received != last_acks {
                    last_acks = stats.acks_received;
                    last_ack_change = Instant::now();
                }
                let unacked = stats.bytes_sent.saturating_sub(u64::from(stats.last_ack_received.unwrap_or(0)));
                if live && unacked > 2 * u64::from(config.ack_window)
                    && last_ack_change.elapsed() > config.ack_timeout
                {
                    return Outcome::Retry(format!(
                        "{} stopped acknowledging ({} KiB unacknowledged)",
                        url.host,
                        unacked / 1024
                    ));
                }
                let bps = meter.rate();
                status.send_modify(|s| {
                    s.bytes_sent = base_bytes + stats.bytes_sent;
                    s.bitrate_bps = bps;
                });
            }
        }
    }
}

async fn next(sub: &mut Option<crate::Subscription>) -> Option<Arc<Frame>> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// The key of a track's frames chunked with `chunk_size` for message stream `stream_id`.
pub fn wire_key(track: Track, chunk_size: u32, stream_id: u32) -> WireKey {
    WireKey {
        chunk_size,
        chunk_stream_id: match track {
            Track::Video => lunora_rtmp::csid::VIDEO,
            Track::Audio => lunora_rtmp::csid::AUDIO,
        },
        message_stream_id: stream_id,
    }
}

/// Frames up to this size are chunked into one copy; larger ones reference their payload
/// (see [`encoded`]). Below it, a copy costs less than the extra pieces of a vectored write.
const SHARE_PAYLOAD_FROM: usize = 2048;

/// The frame chunked for this connection, shared with every peer that chunks the same way.
///
/// A large frame is not copied: its chunks are small headers between slices of the frame's
/// own payload ([`encode_message_shared`]), written with one vectored write.
pub fn encoded(frame: &Frame, chunk_size: u32, stream_id: u32) -> Arc<WireForm> {
    let key = wire_key(frame.track, chunk_size, stream_id);
    let csid = key.chunk_stream_id;
    let type_id = match frame.track {
        Track::Video => msg_type::VIDEO,
        Track::Audio => msg_type::AUDIO,
    };
    frame.wire_cache().get_or_encode(key, || {
        let timestamp = ticks_to_ms(frame.dts).max(0) as u32;
        let header = tag_header(frame);
        let parts = if frame.data.len() < SHARE_PAYLOAD_FROM {
            let mut out = bytes::BytesMut::new();
            encode_parts_into(
                &mut out,
                timestamp,
                type_id,
                stream_id,
                &[&header, &frame.data],
                csid,
                chunk_size,
            )
            .map(|()| SharedChunks::whole(out.freeze()))
        } else {
            encode_message_shared(
                timestamp,
                type_id,
                stream_id,
                &header,
                &frame.data,
                csid,
                chunk_size,
            )
        };
        WireForm::new(parts.unwrap_or_default())
    })
}

async fn flush<W: AsyncWrite + Unpin>(
    client: &mut ClientSession,
    wr: &mut W,
    within: Duration,
) -> Result<(), String> {
    while let Some(bytes) = client.poll_transmit() {
        match timeout(within, wr.write_all(&bytes)).await {
            Err(_) => {
                return Err(format!(
                    "the destination did not take data for {}s",
                    within.as_secs()
                ))
            }
            Ok(Err(e)) => return Err(format!("write failed: {e}")),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Bytes over a sliding window of about 5 seconds.
#[derive(Default)]
struct Meter {
    buckets: std::collections::VecDeque<(Instant, usize)>,
}

impl Meter {
    fn add(&mut self, n: usize) {
        let now = Instant::now();
        self.buckets.push_back((now, n));
        while let Some((t, _)) = self.buckets.front() {
            if now.duration_since(*t) > Duration::from_secs(5) {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn rate(&self) -> u64 {
        let Some((first, _)) = self.buckets.front() else {
            return 0;
        };
        let secs = first.elapsed().as_secs_f64().max(1.0);
        let total: usize = self.buckets.iter().map(|(_, n)| n).sum();
        (total as f64 * 8.0 / secs) as u64
    }
}

/// TLS settings with the system's roots plus `extra_ca_pem` (a PEM bundle), for `rtmps://`.
pub fn tls_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_ca_pem {
        let mut reader = io::BufReader::new(pem);
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut reader) {
            let cert = cert.map_err(|e| format!("extra CA is not valid PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("extra CA certificate refused: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("the extra CA file holds no certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Test a destination: connect, hand over the key, and stop as soon as the server accepts or
/// refuses the publish. No media is sent.
pub async fn probe(target: &PushTarget, config: &PushConfig) -> Result<(), String> {
    let url = RtmpUrl::parse(&target.url).map_err(|e| e.to_string())?;
    let io = connect(&url, target, config).await?;
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut seed = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut seed);
    let mut client_config = ClientConfig::new(url.app.clone(), url.tc_url.clone());
    client_config.seed = seed;
    let mut client = ClientSession::new(
        client_config,
        ClientRole::Publish {
            stream_key: target.stream_key.clone(),
        },
    );
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + config.connect_timeout;
    loop {
        flush(&mut client, &mut wr, config.write_timeout).await?;
        let n = match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Err(_) => return Err(format!("{} did not answer the publish in time", url.host)),
            Ok(Ok(0)) => return Err(format!("{} closed the connection", url.host)),
            Ok(Err(e)) => return Err(format!("connection to {} lost: {e}", url.host)),
            Ok(Ok(n)) => n,
        };
        client
            .handle_input(&buf[..n])
            .map_err(|e| format!("protocol error from {}: {e}", url.host))?;
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::PublishStarted { .. } => {
                    let _ = client.close();
                    let _ = flush(&mut client, &mut wr, config.write_timeout).await;
                    let _ = wr.shutdown().await;
                    return Ok(());
                }
                ClientEvent::PublishFailed {
                    code,
                    key_rejected,
                    description,
                } => {
                    return Err(if key_rejected {
                        format!("stream key rejected by {} ({code})", url.host)
                    } else {
                        format!("{} refused publishing: {description}", url.host)
                    })
                }
                ClientEvent::ConnectFailed { description, .. } => {
                    return Err(format!(
                        "{} refused the connection: {description}",
                        url.host
                    ))
                }
                _ => {}
            }
        }
    }
}

pub use rustls::ClientConfig as TlsConfig;
