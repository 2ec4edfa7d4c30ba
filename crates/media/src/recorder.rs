//! The recorder: one task per recorded channel writes the channel's bus into fragmented MP4
//! files, and [`FileIndex`] reads them back (crash recovery, HLS VOD playback).
//!
//! # Files
//!
//! `{root}/YYYY/MM/DD/{channel}/{HH-MM-SS}-{id}.mp4` (UTC), each one playable on its own:
//! `ftyp` + `moov` (the `lunora-hls` init segment), then one media segment after another
//! (`styp` + `moof` + `mdat`, cut on keyframes about every two seconds by the same packager as
//! live HLS). A new file starts every [`RecorderConfig::file_duration`] on the first keyframe
//! past it, and when the codec configuration changes (one MP4 file has one sample
//! description).
//!
//! # Crash safety
//!
//! The file only grows, one whole segment per `write` followed by `fdatasync`; the directory
//! is synced when a file is created. After a kill at any moment the file is its init segment
//! and complete segments, plus at most the tail of the segment being written:
//! [`FileIndex`] finds the end of the last complete segment and [`recover`] cuts the tail
//! off. So a finished file is intact and the one in progress loses at most the last segment
//! (about two seconds).
//!
//! # Source changes
//!
//! A publisher reconnecting (within [`RecorderConfig::idle_grace`]) or a failover continues
//! the same file: the output timeline is continuous, and the segment after the change is
//! preceded by a top-level `free` box holding [`DISCONTINUITY_MARKER`] (players skip `free`
//! boxes; [`FileIndex`] reports it, and HLS VOD playback lists `EXT-X-DISCONTINUITY` there).
//!
//! # Failures
//!
//! A failed write (the disk is full, the directory vanished) truncates the file back to its
//! last complete segment, closes it and ends the task with [`RecorderEvent::Failed`]: the
//! recording stops cleanly, nothing else does.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lunora_hls::{Event, PackagerOptions, PlaylistKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::channel::{Channel, InputState};
use crate::frame::{Codec, Frame, Track, TIMESCALE};
use crate::hls::{unix_ms, Fed, PackagerFeed};

/// Payload that starts the `free` box marking a source change.
pub const DISCONTINUITY_MARKER: &[u8] = b"lunora:discontinuity";

/// Settings of one channel's recorder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Root of the hot tier: files go under `YYYY/MM/DD/{channel}/` in it.
    pub root: PathBuf,
    /// A new file starts on the first keyframe past this length.
    pub file_duration: Duration,
    /// How long a channel without a live input keeps its file open for the publisher to come
    /// back.
    pub idle_grace: Duration,
    /// Segment length: what a crash may lose at most.
    pub segment_duration: Duration,
    /// `fdatasync` after every segment (off only in benchmarks of the write path).
    pub sync: bool,
}

impl RecorderConfig {
    pub fn new(root: PathBuf) -> Self {
        RecorderConfig {
            root,
            file_duration: Duration::from_secs(3600),
            idle_grace: Duration::from_secs(10),
            segment_duration: Duration::from_secs(2),
            sync: true,
        }
    }
}

/// What the recorder tells the control plane, which keeps the recording rows.
#[derive(Clone, Debug, PartialEq)]
pub enum RecorderEvent {
    /// A file was created (its init segment is on disk).
    Started {
        id: Uuid,
        channel_id: Uuid,
        /// Relative to the root, `/`-separated.
        path: String,
        started_at_ms: i64,
    },
    /// The file grew (about every ten seconds).
    Progress {
        id: Uuid,
        bytes: u64,
        duration_ms: i64,
    },
    /// The file is finished and intact.
    Closed {
        id: Uuid,
        ended_at_ms: i64,
        bytes: u64,
        duration_ms: i64,
        discontinuities: u64,
    },
    /// Recording stopped on an error; the file (if any) holds what was written before it.
    Failed {
        id: Option<Uuid>,
        channel_id: Uuid,
        error: String,
        /// The disk (or quota) is full.
        disk_full: bool,
        ended_at_ms: i64,
        bytes: u64,
        duration_ms: i64,
    },
}

/// The running recorder of one channel.
pub struct RecorderHandle {
    channel_id: Uuid,
    stop: watch::Sender<bool>,
    discontinuity: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl RecorderHandle {
    pub fn channel_id(&self) -> Uuid {
        self.channel_id
    }

    /// The source changed (reconnect, failover): the next segment is marked.
    pub fn source_changed(&self) {
        self.discontinuity.send_modify(|n| *n += 1);
    }

    /// The task ended (the channel stayed idle past the grace, closed, or recording failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Finishes the current file and waits for the task (its last event is sent).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts recording `channel`.
pub fn spawn(
    channel: Arc<Channel>,
    config: RecorderConfig,
    events: mpsc::Sender<RecorderEvent>,
) -> RecorderHandle {
    let (stop, stop_rx) = watch::channel(false);
    let (discontinuity, disc_rx) = watch::channel(0);
    let channel_id = channel.id();
    let options = PackagerOptions {
        target_duration: config.segment_duration,
        part_target: None,
        max_segment_duration: (config.segment_duration * 5).max(Duration::from_secs(10)),
        window: 1,
        grace: 1,
        kind: PlaylistKind::Live,
    };
    let rec = Recording {
        channel_id,
        config,
        events,
        feed: PackagerFeed::new(options),
        init_version: 0,
        file: None,
        file_start_dts: None,
        pending_discontinuity: false,
        discontinuities_seen: 0,
    };
    // Subscribed here, not in the task, so no frame sent after this call is missed.
    let sub = channel.subscribe();
    let task = tokio::spawn(rec.run(channel, sub, stop_rx, disc_rx));
    RecorderHandle {
        channel_id,
        stop,
        discontinuity,
        task,
    }
}

struct OpenFile {
    id: Uuid,
    file: File,
    len: u64,
    duration: f64,
    discontinuities: u64,
    last_progress: Instant,
}

/// A write failed: the message and whether the disk was full.
struct WriteError {
    error: String,
    disk_full: bool,
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError {
            disk_full: is_disk_full(&e),
            error: e.to_string(),
        }
    }
}

/// ENOSPC or EDQUOT.
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// What the packager produced, taken out of it before any await.
enum Output {
    Init(u32),
    Segment {
        init_version: u32,
        init: Option<Bytes>,
        bytes: Bytes,
        duration: f64,
        discontinuity: bool,
    },
}

struct Recording {
    channel_id: Uuid,
    config: RecorderConfig,
    events: mpsc::Sender<RecorderEvent>,
    feed: PackagerFeed,
    init_version: u32,
    file: Option<(OpenFile, u32)>,
    /// Output dts of the first media frame of the current file's packager.
    file_start_dts: Option<i64>,
    pending_discontinuity: bool,
    discontinuities_seen: u64,
}

impl Recording {
    async fn run(
        mut self,
        channel: Arc<Channel>,
        mut sub: crate::Subscription,
        mut stop: watch::Receiver<bool>,
        mut discontinuities: watch::Receiver<u64>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle_since: Option<Instant> = None;
        tracing::info!(channel = %self.channel_id, "recording started");
        let result: Result<(), WriteError> = async {
            loop {
                tokio::select! {
                    frame = sub.recv() => match frame {
                        Some(frame) => self.on_frame(&frame).await?,
                        None => break,
                    },
                    changed = discontinuities.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        while let Ok(frame) = sub.try_recv() {
                            self.on_frame(&frame).await?;
                        }
                        self.pending_discontinuity = true;
                    }
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        if channel.is_closed() {
                            break;
                        }
                        if channel.status().input_state == InputState::Live {
                            idle_since = None;
                        } else {
                            let since = *idle_since.get_or_insert_with(Instant::now);
                            self.pending_discontinuity = true;
                            if since.elapsed() >= self.config.idle_grace {
                                break;
                            }
                        }
                    }
                }
            }
            self.finish_file().await
        }
        .await;
        if let Err(e) = result {
            self.fail(e).await;
        }
        tracing::info!(channel = %self.channel_id, "recording stopped");
    }

    async fn on_frame(&mut self, frame: &Arc<Frame>) -> Result<(), WriteError> {
        if !frame.config {
            if self.pending_discontinuity {
                self.pending_discontinuity = false;
                self.feed.discontinuity();
                self.drain().await?;
            }
            let sync_point = frame.is_video_keyframe()
                || (frame.track == Track::Audio && self.feed.video_record().is_none());
            if sync_point && frame.codec != Codec::Hevc {
                let long = self.file_start_dts.is_some_and(|start| {
                    let ticks = self.config.file_duration.as_millis() as i64 * TIMESCALE / 1000;
                    frame.dts - start >= ticks
                });
                if long {
                    self.finish_file().await?;
                    self.feed.packager = None;
                    self.file_start_dts = None;
                }
            }
        }
        let had_packager = self.feed.packager.is_some();
        if let Fed::Refused(reason) = self.feed.push(frame, unix_ms()) {
            if self.feed.refused % 1000 == 1 {
                tracing::warn!(channel = %self.channel_id, %reason, "the recorder refused a frame");
            }
        }
        if !had_packager && self.feed.packager.is_some() {
            self.file_start_dts = Some(frame.dts);
        }
        self.drain().await
    }

    /// Takes the packager's events and writes what they announce.
    async fn drain(&mut self) -> Result<(), WriteError> {
        let mut out = Vec::new();
        while let Some(event) = self.feed.poll_event() {
            let Some(p) = self.feed.packager.as_ref() else {
                break;
            };
            match event {
                Event::InitReady { version } => out.push(Output::Init(version)),
                Event::SegmentReady { msn } => {
                    let Some(bytes) = p.segment(&lunora_hls::segment_uri(msn)) else {
                        continue;
                    };
                    let (duration, discontinuity) = p.segment_listing(msn).unwrap_or((0.0, false));
                    let init_version = match out.iter().rev().find_map(|o| match o {
                        Output::Init(v) => Some(*v),
                        _ => None,
                    }) {
                        Some(v) => v,
                        None => self.init_version,
                    };
                    out.push(Output::Segment {
                        init_version,
                        init: p.init(init_version),
                        bytes,
                        duration,
                        discontinuity,
                    });
                }
                Event::TimestampJump { .. } | Event::PartReady { .. } => {}
                Event::SegmentExpired { .. } => {}
            }
        }
        for o in out {
            match o {
                Output::Init(v) => {
                    if self.file.as_ref().is_some_and(|(_, fv)| *fv != v) {
                        // New codec configuration: a new file.
                        self.close_file().await?;
                    }
                    self.init_version = v;
                }
                Output::Segment {
                    init_version,
                    init,
                    bytes,
                    duration,
                    discontinuity,
                } => {
                    if self.file.is_none() {
                        let Some(init) = init else { continue };
                        self.open_file(init_version, init).await?;
                    }
                    self.append(bytes, duration, discontinuity).await?;
                }
            }
        }
        Ok(())
    }

    async fn open_file(&mut self, init_version: u32, init: Bytes) -> Result<(), WriteError> {
        let id = Uuid::now_v7();
        let now = unix_ms();
        let rel = relative_path(self.channel_id, id, now);
        let path = self.config.root.join(&rel);
        let sync = self.config.sync;
        let opened = tokio::task::spawn_blocking(move || -> io::Result<(File, PathBuf)> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)?;
            file.write_all(&init)?;
            if sync {
                file.sync_data()?;
                File::open(dir)?.sync_all()?;
            }
            Ok((file, path))
        })
        .await
        .map_err(|e| WriteError {
            error: e.to_string(),
            disk_full: false,
        })?;
        let (file, _path) = match opened {
            Ok(x) => x,
            Err(e) => {
                // Nothing usable was written: leave no empty file behind.
                let _ = std::fs::remove_file(self.config.root.join(&rel));
                return Err(e.into());
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        tracing::info!(channel = %self.channel_id, recording = %id, path = %rel, "recording file started");
        self.file = Some((
            OpenFile {
                id,
                file,
                len,
                duration: 0.0,
                discontinuities: 0,
                last_progress: Instant::now(),
            },
            init_version,
        ));
        let _ = self
            .events
            .send(RecorderEvent::Started {
                id,
                channel_id: self.channel_id,
                path: rel,
                started_at_ms: now,
            })
            .await;
        Ok(())
    }

    async fn append(
        &mut self,
        bytes: Bytes,
        duration: f64,
        discontinuity: bool,
    ) -> Result<(), WriteError> {
        let Some((f, v)) = self.file.take() else {
            return Ok(());
        };
        let sync = self.config.sync;
        let mark = discontinuity && f.len > 0 && f.duration > 0.0;
        let (f, written) = tokio::task::spawn_blocking(move || {
            let mut f = f;
            let r = write_segment(&mut f, &bytes, mark, sync);
            (f, r)
        })
        .await
        .map_err(|e| WriteError {
            error: e.to_string(),
            disk_full: false,
        })?;
        let mut f = f;
        if let Err(e) = written {
            // Back to the last complete segment, so the file stays playable.
            let _ = f.file.set_len(f.len);
            let _ = f.file.sync_all();
            self.file = Some((f, v));
            return Err(e.into());
        }
        f.len = f.file.stream_position().unwrap_or(f.len);
        f.duration += duration;
        if mark {
            f.discontinuities += 1;
            self.discontinuities_seen += 1;
        }
        let progress = (f.last_progress.elapsed() >= Duration::from_secs(10)).then(|| {
            f.last_progress = Instant::now();
            RecorderEvent::Progress {
                id: f.id,
                bytes: f.len,
                duration_ms: (f.duration * 1000.0).round() as i64,
            }
        });
        self.file = Some((f, v));
        if let Some(p) = progress {
            let _ = self.events.send(p).await;
        }
        Ok(())
    }

    /// Flushes the packager into the file and closes it.
    async fn finish_file(&mut self) -> Result<(), WriteError> {
        if let Some(p) = self.feed.packager.as_mut() {
            p.finish();
        }
        self.drain().await?;
        self.close_file().await
    }

    async fn close_file(&mut self) -> Result<(), WriteError> {
        let Some((f, _)) = self.file.take() else {
            return Ok(());
        };
        let synced = f.file.sync_all();
        let event = RecorderEvent::Closed {
            id: f.id,
            ended_at_ms: unix_ms(),
            bytes: f.len,
            duration_ms: (f.duration * 1000.0).round() as i64,
            discontinuities: f.discontinuities,
        };
        tracing::info!(channel = %self.channel_id, recording = %f.id, bytes = f.len, duration_s = f.duration, "recording file closed");
        let _ = self.events.send(event).await;
        synced.map_err(WriteError::from)
    }

    async fn fail(&mut self, e: WriteError) {
        let file = self.file.take();
        let (id, bytes, duration) = match &file {
            Some((f, _)) => (Some(f.id), f.len, f.duration),
            None => (None, 0, 0.0),
        };
        if e.disk_full {
            metrics::counter!("lunora_recording_failures_total", "reason" => "disk_full")
                .increment(1);
            tracing::error!(
                channel = %self.channel_id,
                recording = ?id,
                alert = "recording_disk_full",
                error = %e.error,
                "recording stopped: the disk is full"
            );
        } else {
            metrics::counter!("lunora_recording_failures_total", "reason" => "io").increment(1);
            tracing::error!(channel = %self.channel_id, recording = ?id, error = %e.error, "recording stopped: a write failed");
        }
        let _ = self
            .events
            .send(RecorderEvent::Failed {
                id,
                channel_id: self.channel_id,
                error: e.error,
                disk_full: e.disk_full,
                ended_at_ms: unix_ms(),
                bytes,
                duration_ms: (duration * 1000.0).round() as i64,
            })
            .await;
    }
}

fn write_segment(f: &mut OpenFile, bytes: &[u8], mark: bool, sync: bool) -> io::Result<()> {
    f.file.seek(SeekFrom::Start(f.len))?;
    if mark {
        let mut free = Vec::with_capacity(8 + DISCONTINUITY_MARKER.len() + 8);
        let size = (8 + DISCONTINUITY_MARKER.len() + 8) as u32;
        free.extend_from_slice(&size.to_be_bytes());
        free.extend_from_slice(b"free");
        free.extend_from_slice(DISCONTINUITY_MARKER);
        free.extend_from_slice(&unix_ms().to_be_bytes());
        f.file.write_all(&free)?;
    }
    f.file.write_all(bytes)?;
    if sync {
        f.file.sync_data()?;
    }
    Ok(())
}

/// `YYYY/MM/DD/{channel}/HH-MM-SS-{id}.mp4` (UTC) for a file started at `unix_ms`.
pub fn relative_path(channel_id: Uuid, id: Uuid, unix_ms: i64) -> String {
    // `2024-02-29T13:45:01.250Z`
    let date = lunora_hls::program_date_time(unix_ms);
    let (y, m, d) = (&date[0..4], &date[5..7], &date[8..10]);
    let time = date[11..19].replace(':', "-");
    let short = id.simple().to_string();
    format!(
        "{y}/{m}/{d}/{channel_id}/{time}-{}.mp4",
        &short[short.len() - 12..]
    )
}

/// One media segment of a recording file.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexedSegment {
    /// Byte offset of its `styp`.
    pub offset: u64,
    /// Length up to the end of its last `mdat`.
    pub len: u64,
    /// Seconds of the main track (video, else audio).
    pub duration: f64,
    /// A source change happened right before it.
    pub discontinuity: bool,
}

/// What a recording file holds, read from its boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct FileIndex {
    /// Length of `ftyp` + `moov`.
    pub init_len: u64,
    pub segments: Vec<IndexedSegment>,
    /// End of the last complete segment (the init when there is none).
    pub complete_len: u64,
    /// The file's length on disk.
    pub file_len: u64,
}

impl FileIndex {
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// An HLS VOD playlist (or `EVENT` while `ended` is false) over the file at `uri`, with
    /// byte ranges. `suffix` is appended to every URI (e.g. a query).
    pub fn playlist(&self, uri: &str, ended: bool) -> String {
        use std::fmt::Write as _;
        let longest = self
            .segments
            .iter()
            .map(|s| s.duration)
            .fold(1.0f64, f64::max);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PLAYLIST-TYPE:{}\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"{}@0\"\n",
            lunora_hls::VERSION,
            longest.round().max(1.0) as u64,
            if ended { "VOD" } else { "EVENT" },
            self.init_len,
        );
        for s in &self.segments {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = write!(
                out,
                "#EXTINF:{:.5},\n#EXT-X-BYTERANGE:{}@{}\n{uri}\n",
                s.duration, s.len, s.offset
            );
        }
        if ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// Box header: (type, header length, total length). `None` when the header is cut.
fn box_header(
    r: &mut (impl Read + Seek),
    at: u64,
    file_len: u64,
) -> io::Result<Option<([u8; 4], u64, u64)>> {
    if at + 8 > file_len {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(at))?;
    let mut h = [0u8; 8];
    r.read_exact(&mut h)?;
    let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    let kind = [h[4], h[5], h[6], h[7]];
    match size {
        0 => Ok(Some((kind, 8, file_len.saturating_sub(at).max(8) + 1))), // to EOF: never complete
        1 => {
            if at + 16 > file_len {
                return Ok(None);
            }
            let mut l = [0u8; 8];
            r.read_exact(&mut l)?;
            Ok(Some((kind, 16, u64::from_be_bytes(l))))
        }
        n => Ok(Some((kind, 8, n))),
    }
}

/// Largest `moov` or `moof` read into memory.
const MAX_META_BOX: u64 = 16 << 20;

/// Reads the boxes of a recording file. `None` when it has no complete init segment.
pub fn index_file(path: &Path) -> io::Result<Option<FileIndex>> {
    let mut f = File::open(path)?;
    let file_len = f.metadata()?.len();
    let mut at = 0u64;
    let mut init_len = None;
    let mut main: Option<(u32, u32)> = None; // (track_ID, timescale)
    let mut segments = Vec::new();
    let mut current: Option<IndexedSegment> = None;
    let mut complete_len = 0;
    let mut marker = false;
    let mut pending_moof: Option<u64> = None; // duration ticks of a moof awaiting its mdat
    while let Some((kind, header, size)) = box_header(&mut f, at, file_len)? {
        if size < header || at + size > file_len {
            break; // cut short
        }
        match &kind {
            b"ftyp" => {}
            b"moov" => {
                if size > MAX_META_BOX {
                    return Ok(None);
                }
                let body = read_body(&mut f, at + header, size - header)?;
                main = main_track(&body);
                init_len = Some(at + size);
                complete_len = at + size;
            }
            b"free" | b"skip" => {
                let body = read_body(&mut f, at + header, (size - header).min(64))?;
                if body.starts_with(DISCONTINUITY_MARKER) {
                    marker = true;
                }
            }
            b"styp" => {
                if let Some(s) = current.take() {
                    segments.push(s);
                }
                current = Some(IndexedSegment {
                    offset: at,
                    len: 0,
                    duration: 0.0,
                    discontinuity: std::mem::take(&mut marker),
                });
            }
            b"moof" => {
                if size > MAX_META_BOX {
                    break;
                }
                let body = read_body(&mut f, at + header, size - header)?;
                pending_moof = Some(main.map_or(0, |(track, _)| moof_duration(&body, track)));
                if current.is_none() {
                    current = Some(IndexedSegment {
                        offset: at,
                        len: 0,
                        duration: 0.0,
                        discontinuity: std::mem::take(&mut marker),
                    });
                }
            }
            b"mdat" => {
                if let (Some(ticks), Some(s)) = (pending_moof.take(), current.as_mut()) {
                    let timescale = main.map_or(TIMESCALE as u32, |(_, ts)| ts).max(1);
                    s.duration += ticks as f64 / f64::from(timescale);
                    s.len = at + size - s.offset;
                    complete_len = at + size;
                }
            }
            _ => {}
        }
        at += size;
    }
    if let Some(s) = current.take() {
        if s.len > 0 && s.offset + s.len <= complete_len {
            segments.push(s);
        }
    }
    segments.retain(|s| s.len > 0);
    Ok(init_len.map(|init_len| FileIndex {
        init_len,
        segments,
        complete_len,
        file_len,
    }))
}

/// Cuts a file left by a crash back to its last complete segment. Answers its index.
pub fn recover(path: &Path) -> io::Result<Option<FileIndex>> {
    let Some(mut index) = index_file(path)? else {
        return Ok(None);
    };
    if index.complete_len < index.file_len {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(index.complete_len)?;
        f.sync_all()?;
        index.file_len = index.complete_len;
    }
    Ok(Some(index))
}

fn read_body(f: &mut File, at: u64, len: u64) -> io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(at))?;
    let mut body = vec![0u8; usize::try_from(len).unwrap_or(0)];
    f.read_exact(&mut body)?;
    Ok(body)
}

/// Child boxes of a container body: (type, body).
fn children(body: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at + 8 > body.len() {
            return None;
        }
        let size =
            u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize;
        if size < 8 || at + size > body.len() {
            return None;
        }
        let kind = &body[at + 4..at + 8];
        let inner = &body[at + 8..at + size];
        at += size;
        Some((kind, inner))
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The main track (lowest `track_ID`, video when there is video) and its timescale.
fn main_track(moov: &[u8]) -> Option<(u32, u32)> {
    let mut best: Option<(u32, u32)> = None;
    for (kind, trak) in children(moov) {
        if kind != b"trak" {
            continue;
        }
        let mut id = None;
        let mut timescale = None;
        for (k, b) in children(trak) {
            match k {
                b"tkhd" => {
                    let v1 = b.first() == Some(&1);
                    id = be32(b, if v1 { 20 } else { 12 });
                }
                b"mdia" => {
                    for (k2, b2) in children(b) {
                        if k2 == b"mdhd" {
                            let v1 = b2.first() == Some(&1);
                            timescale = be32(b2, if v1 { 20 } else { 12 });
                        }
                    }
                }
                _ => {}
            }
        }
        if let (Some(id), Some(ts)) = (id, timescale) {
            if best.is_none_or(|(b, _)| id < b) {
                best = Some((id, ts));
            }
        }
    }
    best
}

/// Sum of the sample durations of `track` in a `moof` body.
fn moof_duration(moof: &[u8], track: u32) -> u64 {
    let mut total = 0u64;
    for (kind, traf) in children(moof) {
        if kind != b"traf" {
            continue;
        }
        let mut this = false;
        let mut default_duration = 0u32;
        for (k, b) in children(traf) {
            match k {
                b"tfhd" => {
                    let flags = be32(b, 0).unwrap_or(0) & 0x00ff_ffff;
                    this = be32(b, 4) == Some(track);
                    let mut at = 8;
                    if flags & 0x01 != 0 {
                        at += 8;
                    }
                    if flags & 0x02 != 0 {
                        at += 4;
                    }
                    if flags & 0x08 != 0 {
                        default_duration = be32(b, at).unwrap_or(0);
                    }
                }
                b"trun" if this => {
                    let flags = be32(b, 0).unwrap_or(0) & 0x00ff_ffff;
                    let count = be32(b, 4).unwrap_or(0);
                    let mut at = 8;
                    if flags & 0x01 != 0 {
                        at += 4;
                    }
                    if flags & 0x04 != 0 {
                        at += 4;
                    }
                    let per = [0x100, 0x200, 0x400, 0x800]
                        .iter()
                        .filter(|f| flags & **f != 0)
                        .count()
                        * 4;
                    for i in 0..count as usize {
                        let d = if flags & 0x100 != 0 {
                            be32(b, at + i * per).unwrap_or(0)
                        } else {
                            default_duration
                        };
                        total += u64::from(d);
                    }
                }
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::AttachMode;
    use crate::hls::tests::{asc, avc_record, feed};
    use crate::{Engine, EngineConfig};

    async fn collect(rx: &mut mpsc::Receiver<RecorderEvent>) -> Vec<RecorderEvent> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(e);
        }
        out
    }

    #[tokio::test]
    async fn records_cuts_marks_source_changes_and_indexes_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::new(EngineConfig::default()));
        let id = Uuid::new_v4();
        let channel = engine.open_channel(id).unwrap();
        let input = channel
            .attach_input("primary", AttachMode::Exclusive)
            .unwrap();
        input
            .send(Frame::video_config(Codec::H264, avc_record()))
            .unwrap();
        input.send(Frame::audio_config(asc())).unwrap();
        let (tx, mut rx) = mpsc::channel(256);
        let mut config = RecorderConfig::new(dir.path().to_path_buf());
        config.file_duration = Duration::from_secs(8);
        let rec = spawn(channel.clone(), config, tx);

        feed(&input, 0, 6);
        tokio::time::sleep(Duration::from_millis(100)).await;
        rec.source_changed();
        tokio::time::sleep(Duration::from_millis(50)).await;
        feed(&input, 6 * 90_000, 6);
        tokio::time::sleep(Duration::from_millis(100)).await;
        rec.stop().await;

        let events = collect(&mut rx).await;
        let started: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                RecorderEvent::Started { id, path, .. } => Some((*id, path.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(started.len(), 2, "cut after 8 s: {events:?}");
        let closed: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                RecorderEvent::Closed {
                    id,
                    duration_ms,
                    bytes,
                    discontinuities,
                    ..
                } => Some((*id, *duration_ms, *bytes, *discontinuities)),
                _ => None,
            })
            .collect();
        assert_eq!(closed.len(), 2, "{events:?}");
        // The first file is 8 s (cut on the keyframe at 8 s) with the source change inside.
        assert_eq!(closed[0].0, started[0].0);
        assert!((closed[0].1 - 8000).abs() <= 40, "{closed:?}");
        assert_eq!(closed[0].3, 1);
        assert!(started[0].1.starts_with(&format!(
            "{}/",
            &lunora_hls::program_date_time(unix_ms())[0..4]
        )));
        assert!(started[0].1.contains(&format!("/{id}/")));

        let path = dir.path().join(&started[0].1);
        let index = index_file(&path).unwrap().unwrap();
        assert_eq!(index.file_len, closed[0].2);
        assert_eq!(index.complete_len, index.file_len);
        assert!((index.duration() - 8.0).abs() < 0.05, "{index:?}");
        assert_eq!(
            index.segments.iter().filter(|s| s.discontinuity).count(),
            1,
            "{index:?}"
        );
        let vod = index.playlist("file.mp4", true);
        assert!(vod.contains("#EXT-X-DISCONTINUITY\n"), "{vod}");
        assert!(vod.contains("#EXT-X-ENDLIST"));

        // A crash in the middle of a segment: recovery cuts the tail off.
        let whole = std::fs::read(&path).unwrap();
        let cut = index.segments[2].offset + index.segments[2].len / 2;
        std::fs::write(&path, &whole[..cut as usize]).unwrap();
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(recovered.segments.len(), 2);
        assert_eq!(recovered.file_len, index.segments[2].offset);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), recovered.file_len);
        // Garbage, or only part of an init segment: nothing to index.
        std::fs::write(&path, &whole[..20]).unwrap();
        assert!(index_file(&path).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_full_disk_stops_the_recording_with_an_error() {
        // A root that cannot be created stands in for a failing disk here; the end-to-end
        // test fills a real tmpfs.
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let engine = Arc::new(Engine::new(EngineConfig::default()));
        let channel = engine.open_channel(Uuid::new_v4()).unwrap();
        let input = channel
            .attach_input("primary", AttachMode::Exclusive)
            .unwrap();
        input
            .send(Frame::video_config(Codec::H264, avc_record()))
            .unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let rec = spawn(
            channel.clone(),
            RecorderConfig::new(blocker.join("sub")),
            tx,
        );
        feed(&input, 0, 3);
        for _ in 0..100 {
            if rec.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(rec.is_finished());
        let events = collect(&mut rx).await;
        assert!(
            matches!(
                events.last(),
                Some(RecorderEvent::Failed {
                    disk_full: false,
                    id: None,
                    ..
                })
            ),
            "{events:?}"
        );
        assert!(is_disk_full(&io::Error::from_raw_os_error(28)));
    }
}
