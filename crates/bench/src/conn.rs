//! The two kinds of connection the generator opens, each one tokio task driving a sans-IO
//! [`ClientSession`]: a publisher replaying the clip at real-time pace, and a player counting
//! bytes, watching for stalls and timing each video frame against its publisher's send instant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use lunora_rtmp::{
    csid, encode_parts_into, msg_type, ClientConfig, ClientEvent, ClientRole, ClientSession,
    RtmpUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::media::{frame_key, video_payload, Clip, Kind};
use crate::sei::{find_stamp, stamp_flv_video};

/// Milliseconds on one clock shared by every task of the run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub base: Instant,
}

impl Clock {
    pub fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_millis() as u64
    }

    /// Microseconds: what frame stamps carry.
    pub fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_micros() as u64
    }
}

/// When the publisher of one stream handed each video frame to its socket, by frame key.
/// Bounded by the clip: a key is overwritten by the frame's next replay.
#[derive(Default)]
pub struct SendLog {
    sent: Mutex<HashMap<u64, Instant>>,
}

impl SendLog {
    pub fn record(&self, keys: &[u64], at: Instant) {
        if let Ok(mut m) = self.sent.lock() {
            for k in keys {
                m.insert(*k, at);
            }
        }
    }

    pub fn sent_at(&self, key: u64) -> Option<Instant> {
        self.sent.lock().ok()?.get(&key).copied()
    }
}

/// What the coordinator sees of a publisher.
#[derive(Default)]
pub struct PublisherState {
    pub started: AtomicBool,
    pub failed: AtomicBool,
    pub ended: AtomicBool,
    /// How late (ms) a batch of tags went out behind its real-time schedule, at worst,
    /// while measuring.
    pub max_lag_ms: AtomicU64,
    pub bytes_sent: AtomicU64,
}

/// What the coordinator sees of a player.
#[derive(Default)]
pub struct PlayerState {
    pub started: AtomicBool,
    pub failed: AtomicBool,
    pub ended: AtomicBool,
    /// Bytes read from the socket (chunk headers included).
    pub bytes: AtomicU64,
    pub video_frames: AtomicU64,
    /// [`Clock::ms`] + 1 of the last video message; 0 before the first.
    pub last_video_ms: AtomicU64,
}

/// Flags shared by every task.
pub struct Shared {
    pub clock: Clock,
    /// Latency and publisher lag are recorded only while this is set.
    pub measuring: AtomicBool,
}

const READ_BUF: usize = 128 * 1024;

struct Conn {
    stream: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(server: &RtmpUrl, role: ClientRole) -> anyhow::Result<Conn> {
        if server.tls {
            bail!("rtmps:// is not supported by the load generator");
        }
        let stream = TcpStream::connect((server.host.as_str(), server.port))
            .await
            .with_context(|| format!("connecting to {}:{}", server.host, server.port))?;
        stream.set_nodelay(true)?;
        let mut config = ClientConfig::new(server.app.clone(), server.tc_url.clone());
        rand::Rng::fill(&mut rand::thread_rng(), &mut config.seed);
        Ok(Conn {
            stream,
            session: ClientSession::new(config, role),
            buf: vec![0; READ_BUF],
        })
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        while let Some(b) = self.session.poll_transmit() {
            self.stream.write_all(&b).await?;
        }
        Ok(())
    }

    /// Reads once and feeds the session; errors on end of stream.
    async fn read_some(&mut self) -> anyhow::Result<usize> {
        let n = self.stream.read(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.session.handle_input(&self.buf[..n])?;
        Ok(n)
    }

    /// Runs connect / createStream / publish or play until the server says it started.
    /// Events after the start stay queued in the session.
    async fn start(&mut self, within: Duration) -> anyhow::Result<()> {
        let work = async {
            loop {
                self.flush().await?;
                while let Some(ev) = self.session.poll_event() {
                    match ev {
                        ClientEvent::PublishStarted { .. } | ClientEvent::PlayStarted { .. } => {
                            return Ok(())
                        }
                        ClientEvent::ConnectFailed { code, description }
                        | ClientEvent::PlayFailed { code, description }
                        | ClientEvent::PublishFailed {
                            code, description, ..
                        } => bail!("{code}: {description}"),
                        _ => {}
                    }
                }
                self.read_some().await?;
            }
        };
        tokio::time::timeout(within, work)
            .await
            .map_err(|_| anyhow!("the server did not start the stream within {within:?}"))?
    }
}

/// Publishes `clip` in a loop at real-time pace until `stop`, rewriting timestamps so they
/// keep increasing across loops, and records each video frame's send instant in `log`; with
/// `stamp`, each video frame also carries its send instant in an SEI NAL unit ([`crate::sei`]).
#[allow(clippy::too_many_arguments)]
pub async fn publish(
    server: RtmpUrl,
    key: String,
    clip: Arc<Clip>,
    stamp: bool,
    log: Arc<SendLog>,
    state: Arc<PublisherState>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let result = async {
        let mut conn = Conn::open(&server, ClientRole::Publish { stream_key: key }).await?;
        conn.start(Duration::from_secs(20)).await?;
        state.started.store(true, Ordering::Relaxed);
        let stream_id = conn
            .session
            .stream_id()
            .context("publishing without a stream id")?;
        let chunk_size = conn.session.out_chunk_size();
        let mut out = BytesMut::with_capacity(256 * 1024);
        let mut keys: Vec<u64> = Vec::new();
        // Configuration first, once; then media in a loop.
        for t in clip.tags.iter().filter(|t| t.config) {
            encode(&mut out, t.kind, 0, &t.body, stream_id, chunk_size)?;
        }
        let media: Vec<usize> = (0..clip.tags.len())
            .filter(|&i| !clip.tags[i].config)
            .collect();
        if media.is_empty() {
            bail!("the clip has no media tags");
        }
        let t0 = Instant::now();
        let mut pos = 0usize;
        let mut offset_ms: u64 = 0;
        let due = |pos: usize, offset_ms: u64| {
            t0 + Duration::from_millis(offset_ms + u64::from(clip.tags[media[pos]].ts))
        };
        loop {
            if !out.is_empty() {
                let now = Instant::now();
                log.record(&keys, now);
                keys.clear();
                let bytes = out.split().freeze();
                state
                    .bytes_sent
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                conn.session.send_preencoded(bytes)?;
                conn.flush().await?;
            }
            let next = due(pos, offset_ms);
            if next > Instant::now() {
                tokio::select! {
                    _ = stop.changed() => return Ok(()),
                    _ = tokio::time::sleep_until(next.into()) => {}
                    r = conn.read_some() => {
                        r?;
                        while conn.session.poll_event().is_some() {}
                        conn.flush().await?;
                        continue;
                    }
                }
            } else if *stop.borrow() {
                return Ok(());
            }
            // Everything due now goes out in one write, as an encoder's muxer would.
            let now = Instant::now();
            let lag = now.saturating_duration_since(next).as_millis() as u64;
            if shared.measuring.load(Ordering::Relaxed) {
                state.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
            }
            while due(pos, offset_ms) <= now && out.len() < 1 << 20 {
                let t = &clip.tags[media[pos]];
                let ts = offset_ms + u64::from(t.ts);
                if stamp && t.kind == Kind::Video {
                    // The batch goes out right after it is built: its instant is the send time.
                    let body = stamp_flv_video(&t.body, shared.clock.us(now));
                    encode(&mut out, t.kind, ts as u32, &body, stream_id, chunk_size)?;
                } else {
                    encode(&mut out, t.kind, ts as u32, &t.body, stream_id, chunk_size)?;
                }
                if let Some(k) = t.key {
                    keys.push(k);
                }
                pos += 1;
                if pos == media.len() {
                    pos = 0;
                    offset_ms += u64::from(clip.loop_ms);
                }
            }
        }
    }
    .await;
    if result.is_err() && !state.started.load(Ordering::Relaxed) {
        state.failed.store(true, Ordering::Relaxed);
    }
    state.ended.store(true, Ordering::Relaxed);
    result
}

fn encode(
    out: &mut BytesMut,
    kind: Kind,
    ts: u32,
    body: &[u8],
    stream_id: u32,
    chunk_size: u32,
) -> anyhow::Result<()> {
    let (type_id, cs) = match kind {
        Kind::Audio => (msg_type::AUDIO, csid::AUDIO),
        Kind::Video => (msg_type::VIDEO, csid::VIDEO),
    };
    encode_parts_into(out, ts, type_id, stream_id, &[body], cs, chunk_size)?;
    Ok(())
}

/// Plays until `stop`; answers `hist` with the relay latencies it measured (µs) added and why it ended early,
/// if it did.
pub async fn play(
    server: RtmpUrl,
    name: String,
    log: Arc<SendLog>,
    state: Arc<PlayerState>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut hist: Histogram<u64>,
) -> (Histogram<u64>, Option<anyhow::Error>) {
    let result = async {
        let mut conn = Conn::open(&server, ClientRole::Play { stream_name: name }).await?;
        conn.start(Duration::from_secs(20)).await?;
        let mut received_at = Instant::now();
        loop {
            while let Some(ev) = conn.session.poll_event() {
                if let ClientEvent::Video { payload, .. } = ev {
                    state.video_frames.fetch_add(1, Ordering::Relaxed);
                    state
                        .last_video_ms
                        .store(shared.clock.ms(received_at) + 1, Ordering::Relaxed);
                    state.started.store(true, Ordering::Relaxed);
                    if !shared.measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    let Some(data) = video_payload(&payload) else {
                        continue;
                    };
                    let sent = match find_stamp(data) {
                        Some(us) => Some(shared.clock.base + Duration::from_micros(us)),
                        None => log.sent_at(frame_key(data)),
                    };
                    if let Some(sent) = sent {
                        let us = received_at.saturating_duration_since(sent).as_micros() as u64;
                        let _ = hist.record(us.max(1));
                    }
                }
            }
            conn.flush().await?;
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                r = conn.stream.read(&mut conn.buf) => {
                    let n = r?;
                    if n == 0 {
                        bail!("the server closed the connection");
                    }
                    received_at = Instant::now();
                    state.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    conn.session.handle_input(&conn.buf[..n])?;
                }
            }
        }
    }
    .await;
    if result.is_err() && !state.started.load(Ordering::Relaxed) {
        state.failed.store(true, Ordering::Relaxed);
    }
    state.ended.store(true, Ordering::Relaxed);
    (hist, result.err())
}
