//! HLS players that measure: a Low-Latency HLS player fetching each part as soon as a blocking
//! playlist reload announces it, and a plain HLS player fetching whole segments as soon as they
//! are listed. Each reads the video samples out of the fMP4 it receives, finds the frame stamp
//! the publisher put in each ([`crate::sei`]) and records the time since it was sent; it also
//! times a new viewer's first frame (master playlist request → first keyframe sample in hand).
//!
//! A new viewer starts at the newest independent part (LL-HLS) or the newest complete segment
//! (plain HLS), fetches forward from there and reaches the live edge when a blocking reload
//! first has to wait; latency is recorded from then on (the catch-up of a join is not a
//! steady-state latency).
//!
//! What it does not do: decode or render, buffer, or hold back from the live edge. The latency
//! it records is when a frame is in the player's memory; a real player adds its hold-back
//! (LL-HLS `PART-HOLD-BACK`, three target durations for plain HLS) and its decoder.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use lunora_hls::validate::{self, MediaPlaylist};
use reqwest::{StatusCode, Url};
use tokio::sync::watch;

use crate::conn::{PlayerState, Shared};
use crate::mp4;
use crate::sei::find_stamp;
use crate::stats::latency_histogram;

/// What an HLS player fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HlsMode {
    /// LL-HLS: blocking playlist reloads (`_HLS_msn`/`_HLS_part`), every part.
    Ll,
    /// Plain HLS: whole segments, each as soon as the playlist lists it (blocking reload on
    /// `_HLS_msn` alone, so no polling delay is added).
    Segments,
}

impl HlsMode {
    pub fn name(self) -> &'static str {
        match self {
            HlsMode::Ll => "ll-hls",
            HlsMode::Segments => "hls",
        }
    }
}

/// Shared by every HLS player of a run.
pub struct HlsPlayerConfig {
    pub client: reqwest::Client,
    pub mode: HlsMode,
    /// Leave and join again as a new viewer this often (to time first frames on a channel
    /// that is already being packaged).
    pub rejoin: Option<Duration>,
}

/// What one HLS player measured.
pub struct HlsOutcome {
    /// Frame stamp → arrival in the player, µs, while measuring.
    pub latency: Histogram<u64>,
    /// Time to first frame of joins that started while measuring, µs.
    pub first_frame: Histogram<u64>,
    /// Time to first frame of the player's first join, µs (when the run starts the players,
    /// which on Lunora also starts the channel's packager: HLS is packaged on demand).
    pub first_frame_first_join: Histogram<u64>,
    /// A listed part or segment: request → whole body received, µs, while measuring (served
    /// from memory: what a player waits for once it knows what to fetch).
    pub fetch: Histogram<u64>,
    /// Times the player lost its place (a part or segment gone, a refused reload) and went
    /// back to the live edge.
    pub resyncs: u64,
    pub error: Option<anyhow::Error>,
}

impl HlsOutcome {
    pub fn new() -> anyhow::Result<HlsOutcome> {
        Ok(HlsOutcome {
            latency: latency_histogram()?,
            first_frame: latency_histogram()?,
            first_frame_first_join: latency_histogram()?,
            fetch: latency_histogram()?,
            resyncs: 0,
            error: None,
        })
    }
}

/// Plays the master playlist at `master` until `stop`.
pub async fn play(
    cfg: Arc<HlsPlayerConfig>,
    master: String,
    state: Arc<PlayerState>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut out: HlsOutcome,
) -> HlsOutcome {
    let master = match Url::parse(&master) {
        Ok(u) => u,
        Err(e) => {
            out.error = Some(anyhow!("bad master playlist URL {master}: {e}"));
            state.failed.store(true, Ordering::Relaxed);
            state.ended.store(true, Ordering::Relaxed);
            return out;
        }
    };
    let mut first_join = true;
    loop {
        let r = tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = session(&cfg, &master, &state, &shared, &mut out, first_join) => r,
        };
        if let Err(e) = r {
            out.error = Some(e);
            break;
        }
        first_join = false;
    }
    if out.error.is_some() && !state.started.load(Ordering::Relaxed) {
        state.failed.store(true, Ordering::Relaxed);
    }
    state.ended.store(true, Ordering::Relaxed);
    out
}

/// How long a joining player retries a channel that is not ready yet.
const JOIN_PATIENCE: Duration = Duration::from_secs(20);
/// Consecutive failed requests after which a player gives up.
const MAX_ERRORS_IN_A_ROW: u32 = 50;

/// One viewer: join, then play until the rejoin time (Ok) or a persistent failure (Err).
async fn session(
    cfg: &HlsPlayerConfig,
    master: &Url,
    state: &PlayerState,
    shared: &Shared,
    out: &mut HlsOutcome,
    first_join: bool,
) -> anyhow::Result<()> {
    let joined = Instant::now();
    let mut s = Session {
        cfg,
        state,
        shared,
        joined,
        first_join,
        media: master.clone(),
        pl: MediaPlaylist::default(),
        map: None,
        video_track: 1,
        msn: 0,
        part: 0,
        first_frame: false,
        at_edge: false,
    };
    let text = s.get_text_patiently(master.clone()).await?;
    let variant = pick_variant(&text).context("the master playlist lists no variant")?;
    s.media = master.join(variant)?;
    let text = s.get_text_patiently(s.media.clone()).await?;
    s.take_playlist(&text).await?;
    s.go_to_live_edge();
    let leave = cfg.rejoin.map(|d| joined + d);
    let mut errors = 0u32;
    loop {
        if s.first_frame && leave.is_some_and(|l| Instant::now() >= l) {
            return Ok(());
        }
        match s.step(out).await {
            Ok(()) => errors = 0,
            Err(e) => {
                errors += 1;
                if errors >= MAX_ERRORS_IN_A_ROW {
                    return Err(e.context(format!("{errors} failed requests in a row")));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                // Back to the live edge with a fresh playlist, if it answers.
                if let Ok(text) = s.get_text(s.media.clone()).await {
                    if s.take_playlist(&text).await.is_ok() {
                        s.go_to_live_edge();
                        out.resyncs += 1;
                    }
                }
            }
        }
    }
}

struct Session<'a> {
    cfg: &'a HlsPlayerConfig,
    state: &'a PlayerState,
    shared: &'a Shared,
    joined: Instant,
    first_join: bool,
    /// The media playlist's URL.
    media: Url,
    pl: MediaPlaylist,
    /// The init segment in effect.
    map: Option<String>,
    video_track: u32,
    /// The next segment, and in LL-HLS the next part of it, to fetch.
    msn: u64,
    part: usize,
    first_frame: bool,
    /// A blocking reload had to wait: the player has caught up with the live edge since it
    /// joined (or went back to it). Latency is recorded from then on only.
    at_edge: bool,
}

enum Step {
    Fetch(String),
    NextSegment,
    Reload,
    Resync,
}

impl Session<'_> {
    async fn get(&self, url: Url) -> anyhow::Result<(StatusCode, Bytes)> {
        let res = self.cfg.client.get(url).send().await?;
        let status = res.status();
        let body = res.bytes().await?;
        self.state
            .bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok((status, body))
    }

    async fn get_text(&self, url: Url) -> anyhow::Result<String> {
        let (status, body) = self.get(url.clone()).await?;
        if !status.is_success() {
            bail!("GET {}: HTTP {status}", url.path());
        }
        Ok(String::from_utf8(body.to_vec())?)
    }

    /// A playlist, retried while the channel is not live or its first media has not arrived.
    async fn get_text_patiently(&self, url: Url) -> anyhow::Result<String> {
        let deadline = Instant::now() + JOIN_PATIENCE;
        loop {
            let (status, body) = self.get(url.clone()).await?;
            if status.is_success() {
                return Ok(String::from_utf8(body.to_vec())?);
            }
            let retry = matches!(
                status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::NOT_FOUND
            );
            if !retry || Instant::now() >= deadline {
                bail!(
                    "GET {}: HTTP {status} {}",
                    url.path(),
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Takes a new media playlist, loading the init segment when it changed.
    async fn take_playlist(&mut self, text: &str) -> anyhow::Result<()> {
        self.pl = validate::parse(text).map_err(|e| anyhow!("media playlist: {e}"))?;
        let map = last_map(text);
        if map.is_some() && map != self.map {
            if let Some(uri) = &map {
                let (status, body) = self.get(self.media.join(uri)?).await?;
                if !status.is_success() {
                    bail!("init segment: HTTP {status}");
                }
                self.video_track = mp4::video_track(&body)?.unwrap_or(1);
            }
            self.map = map;
        }
        Ok(())
    }

    fn go_to_live_edge(&mut self) {
        (self.msn, self.part) = live_edge(&self.pl, self.cfg.mode);
        self.at_edge = false;
    }

    fn next(&self) -> Step {
        let pl = &self.pl;
        if self.msn < pl.media_sequence {
            return Step::Resync;
        }
        if let Some(seg) = pl.segment(self.msn) {
            if self.cfg.mode == HlsMode::Segments || seg.parts.is_empty() {
                // Whole segments (in LL-HLS, older segments are listed without their parts).
                return if self.part == 0 {
                    Step::Fetch(seg.uri.clone())
                } else {
                    Step::NextSegment
                };
            }
            return match seg.parts.get(self.part) {
                Some(p) => Step::Fetch(p.uri.clone()),
                None => Step::NextSegment,
            };
        }
        if self.cfg.mode == HlsMode::Ll && self.msn == pl.open_msn() {
            if let Some(p) = pl.open_parts.get(self.part) {
                return Step::Fetch(p.uri.clone());
            }
        }
        Step::Reload
    }

    async fn step(&mut self, out: &mut HlsOutcome) -> anyhow::Result<()> {
        match self.next() {
            Step::NextSegment => {
                self.msn += 1;
                self.part = 0;
            }
            Step::Resync => {
                let text = self.get_text(self.media.clone()).await?;
                self.take_playlist(&text).await?;
                self.go_to_live_edge();
                out.resyncs += 1;
            }
            Step::Reload => {
                let mut url = self.media.clone();
                url.query_pairs_mut()
                    .append_pair("_HLS_msn", &self.msn.to_string());
                if self.cfg.mode == HlsMode::Ll {
                    url.query_pairs_mut()
                        .append_pair("_HLS_part", &self.part.to_string());
                }
                let (status, body) = self.get(url).await?;
                match status {
                    s if s.is_success() => {
                        let text = String::from_utf8(body.to_vec())?;
                        self.take_playlist(&text).await?;
                        self.at_edge = true;
                    }
                    // Nothing new within three target durations (a stalled source): ask again.
                    StatusCode::SERVICE_UNAVAILABLE => {}
                    // Too far ahead of the live edge (the packager restarted): start over.
                    StatusCode::BAD_REQUEST => {
                        let text = self.get_text(self.media.clone()).await?;
                        self.take_playlist(&text).await?;
                        self.go_to_live_edge();
                        out.resyncs += 1;
                    }
                    s => bail!("blocking reload: HTTP {s}"),
                }
            }
            Step::Fetch(uri) => {
                let asked = Instant::now();
                let (status, body) = self.get(self.media.join(&uri)?).await?;
                if status.is_success() && self.shared.measuring.load(Ordering::Relaxed) {
                    let _ = out.fetch.record(asked.elapsed().as_micros().max(1) as u64);
                }
                if status == StatusCode::NOT_FOUND {
                    // Expired from the window, or the stream restarted.
                    let text = self.get_text(self.media.clone()).await?;
                    self.take_playlist(&text).await?;
                    self.go_to_live_edge();
                    out.resyncs += 1;
                    return Ok(());
                }
                if !status.is_success() {
                    bail!("GET {uri}: HTTP {status}");
                }
                self.consume(&body, out)?;
                if self.cfg.mode == HlsMode::Segments
                    || self
                        .pl
                        .segment(self.msn)
                        .is_some_and(|s| s.parts.is_empty())
                {
                    self.msn += 1;
                    self.part = 0;
                } else {
                    self.part += 1;
                }
            }
        }
        Ok(())
    }

    /// The video samples of a part or segment that just arrived.
    fn consume(&mut self, body: &[u8], out: &mut HlsOutcome) -> anyhow::Result<()> {
        let now = Instant::now();
        let now_us = now
            .saturating_duration_since(self.shared.clock.base)
            .as_micros() as u64;
        let measuring = self.shared.measuring.load(Ordering::Relaxed);
        for s in mp4::samples(body)? {
            if s.track != self.video_track {
                continue;
            }
            if !self.first_frame {
                // Playback starts on a keyframe.
                if !s.sync {
                    continue;
                }
                self.first_frame = true;
                let us = (now.saturating_duration_since(self.joined).as_micros() as u64).max(1);
                if self.first_join {
                    let _ = out.first_frame_first_join.record(us);
                }
                if measuring {
                    let _ = out.first_frame.record(us);
                }
            }
            self.state.video_frames.fetch_add(1, Ordering::Relaxed);
            self.state
                .last_video_ms
                .store(self.shared.clock.ms(now) + 1, Ordering::Relaxed);
            self.state.started.store(true, Ordering::Relaxed);
            if measuring && self.at_edge {
                if let Some(sent) = find_stamp(s.data) {
                    let _ = out.latency.record(now_us.saturating_sub(sent).max(1));
                }
            }
        }
        Ok(())
    }
}

/// The variant to play: the channel's own encoding (`source/…`) if listed, else the first.
pub fn pick_variant(master: &str) -> Option<&str> {
    let uris: Vec<&str> = master
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    uris.iter()
        .find(|u| u.starts_with("source/"))
        .or(uris.first())
        .copied()
}

/// The URI of the last `EXT-X-MAP` of a media playlist.
pub fn last_map(text: &str) -> Option<String> {
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("#EXT-X-MAP:"))?;
    let at = line.find("URI=\"")? + 5;
    let len = line[at..].find('"')?;
    Some(line[at..at + len].to_string())
}

/// Where a new viewer starts: in LL-HLS the newest independent part (a keyframe), in plain
/// HLS the newest complete segment; `(msn, part)`.
pub fn live_edge(pl: &MediaPlaylist, mode: HlsMode) -> (u64, usize) {
    let open = pl.open_msn();
    match mode {
        HlsMode::Segments => (open.saturating_sub(u64::from(!pl.segments.is_empty())), 0),
        HlsMode::Ll => {
            if let Some(i) = pl.open_parts.iter().rposition(|p| p.independent) {
                return (open, i);
            }
            for s in pl.segments.iter().rev() {
                if s.parts.is_empty() {
                    return (s.msn, 0);
                }
                if let Some(i) = s.parts.iter().rposition(|p| p.independent) {
                    return (s.msn, i);
                }
            }
            (open, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.2\n#EXT-X-PART-INF:PART-TARGET=0.4\n\
#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI=\"e1/init-0.mp4?token=t\"\n\
#EXTINF:2.0,\ne1/seg-10.m4s\n\
#EXT-X-PART:DURATION=0.4,URI=\"e1/part-11.0.m4s\",INDEPENDENT=YES\n\
#EXT-X-PART:DURATION=0.4,URI=\"e1/part-11.1.m4s\"\n\
#EXTINF:0.8,\ne1/seg-11.m4s\n\
#EXT-X-PART:DURATION=0.4,URI=\"e1/part-12.0.m4s\"\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"e1/part-12.1.m4s\"\n";

    #[test]
    fn new_viewers_start_at_the_newest_keyframe_or_segment() {
        let pl = validate::parse(LL).unwrap();
        assert_eq!(pl.open_msn(), 12);
        // The open part is not independent: the newest independent part is 11.0.
        assert_eq!(live_edge(&pl, HlsMode::Ll), (11, 0));
        assert_eq!(live_edge(&pl, HlsMode::Segments), (11, 0));
        let text = LL.replace("part-12.0.m4s\"", "part-12.0.m4s\",INDEPENDENT=YES");
        let pl = validate::parse(&text).unwrap();
        assert_eq!(live_edge(&pl, HlsMode::Ll), (12, 0));
        assert_eq!(last_map(LL).as_deref(), Some("e1/init-0.mp4?token=t"));
        let empty = validate::parse("#EXTM3U\n#EXT-X-TARGETDURATION:2\n").unwrap();
        assert_eq!(live_edge(&empty, HlsMode::Segments), (0, 0));
        assert_eq!(live_edge(&empty, HlsMode::Ll), (0, 0));
    }

    #[test]
    fn the_source_variant_is_preferred() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/media.m3u8?token=x\n\
#EXT-X-STREAM-INF:BANDWIDTH=2\nsource/media.m3u8?token=x\n";
        assert_eq!(pick_variant(master), Some("source/media.m3u8?token=x"));
        assert_eq!(
            pick_variant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"),
            Some("a.m3u8")
        );
        assert_eq!(pick_variant("#EXTM3U\n"), None);
    }
}
