//! Recordings: automatic per-channel recording, `/api/v1/recordings` (list with filters,
//! get, delete, download with HTTP ranges, HLS VOD playback) and the channel's recording
//! settings at `/api/v1/channels/{id}/recording`.
//!
//! The [`Recordings`] manager starts one recorder (`lunora_media::recorder`) per live channel
//! whose recording is enabled, keeps each file's row from the recorder's events, stops a
//! recorder when recording is disabled, and at start-up closes the rows a crash left
//! `recording` (the file is cut back to its last complete segment, size and end computed from
//! it). A recorder that failed (e.g. the disk is full) is not restarted until its channel goes
//! idle and live again, or [`RETRY_AFTER_FAILURE`] passes.
//!
//! Files are written to the hot tier, `{data_dir}/recordings/YYYY/MM/DD/{channel}/`, and move
//! to the warm and cold tiers with [`crate::tiers`].

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_media::recorder::{self, RecorderConfig, RecorderEvent, RecorderHandle};
use lunora_media::InputState;
use lunora_store::{Recording, RecordingEnd, RecordingFilter, RecordingSettings};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, watch, Notify};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

/// A channel whose recorder failed is retried after this long even if it stays live.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);
/// Largest accepted `segment_minutes`.
const MAX_SEGMENT_MINUTES: i64 = 24 * 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_recordings))
        .routes(routes!(usage))
        .routes(routes!(get_recording, delete_recording))
        .routes(routes!(download))
        .routes(routes!(media))
        .routes(routes!(playlist))
        .routes(routes!(get_settings, put_settings))
}

/// The recorders of every recorded channel.
pub struct Recordings {
    /// Root of the hot tier.
    root: PathBuf,
    running: Mutex<HashMap<Uuid, RecorderHandle>>,
    /// Channels whose recorder failed, and when.
    failed: Mutex<HashMap<Uuid, Instant>>,
    events: mpsc::Sender<RecorderEvent>,
    receiver: Mutex<Option<mpsc::Receiver<RecorderEvent>>>,
    wake: Notify,
    idle_grace: Duration,
}

impl Recordings {
    pub fn new(data_dir: &std::path::Path) -> Self {
        let (events, receiver) = mpsc::channel(1024);
        Recordings {
            root: data_dir.join("recordings"),
            running: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            events,
            receiver: Mutex::new(Some(receiver)),
            wake: Notify::new(),
            idle_grace: Duration::from_secs(10),
        }
    }

    /// Root of the hot tier.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn path_of(&self, r: &Recording) -> Option<PathBuf> {
        // Paths are written by the recorder; refuse anything that could leave the root.
        if r.tier != "hot" || r.path.split('/').any(|c| c.is_empty() || c == "..") {
            return None;
        }
        Some(self.root.join(&r.path))
    }

    /// Looks at live channels now instead of at the next scan.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The source of a channel changed: its recording marks a discontinuity.
    pub fn source_changed(&self, channel_id: Uuid) {
        if let Some(h) = self.running.lock().get(&channel_id) {
            h.source_changed();
        }
        self.wake();
    }

    pub fn is_recording(&self, channel_id: Uuid) -> bool {
        self.running
            .lock()
            .get(&channel_id)
            .is_some_and(|h| !h.is_finished())
    }

    /// Stops every recorder (each finishes its file) and waits until their last events are in
    /// the database, at most `within`.
    pub async fn stop_all(&self, within: Duration) {
        let handles: Vec<RecorderHandle> = self.running.lock().drain().map(|(_, h)| h).collect();
        let stop = async {
            for h in handles {
                h.stop().await;
            }
            while self.events.capacity() < self.events.max_capacity() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The consumer may still be writing the last one it took.
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if tokio::time::timeout(within, stop).await.is_err() {
            tracing::warn!("recordings did not all close in time");
        }
    }
}

/// Closes rows left `recording` by a crash, then runs the recorder supervisor and the event
/// writer until `shutdown` turns true.
pub fn spawn(state: &AppState, shutdown: watch::Receiver<bool>) {
    let state = state.clone();
    tokio::spawn(async move {
        recover(&state).await;
        let receiver = state.recordings.receiver.lock().take();
        if let Some(rx) = receiver {
            tokio::spawn(write_events(state.clone(), rx));
        }
        supervise(state, shutdown).await;
    });
}

async fn recover(state: &AppState) {
    let rows = match state.db.recordings_in_progress().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read recordings left in progress");
            return;
        }
    };
    for r in rows {
        let Some(path) = state.recordings.path_of(&r) else {
            continue;
        };
        let index = tokio::task::spawn_blocking(move || recorder::recover(&path)).await;
        let end = match index {
            Ok(Ok(Some(index))) => {
                let duration_ms = (index.duration() * 1000.0).round() as i64;
                RecordingEnd {
                    status: "complete",
                    ended_at: r.started_at + duration_ms,
                    duration_ms,
                    size_bytes: index.file_len as i64,
                    discontinuities: index.segments.iter().filter(|s| s.discontinuity).count()
                        as i64,
                    error: Some(
                        "interrupted: the server stopped while recording; the file ends at its \
                         last complete segment",
                    ),
                }
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no complete init segment".to_string(),
                };
                tracing::warn!(recording = %r.id, error = %why, "recording left by a crash is not playable");
                RecordingEnd {
                    status: "failed",
                    ended_at: r.updated_at.max(r.started_at),
                    duration_ms: 0,
                    size_bytes: 0,
                    discontinuities: 0,
                    error: Some("interrupted: the server stopped before the file held media"),
                }
            }
        };
        match state.db.end_recording(&r.id, &end).await {
            Ok(()) => tracing::warn!(
                recording = %r.id,
                status = end.status,
                duration_ms = end.duration_ms,
                "closed a recording left open by the last run"
            ),
            Err(e) => tracing::error!(recording = %r.id, error = %e, "cannot close a recording"),
        }
    }
}

async fn supervise(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let rec = state.recordings.clone();
    let mut last_usage = Instant::now() - Duration::from_secs(3600);
    loop {
        let enabled: HashMap<String, RecordingSettings> =
            match state.db.recording_enabled_channels().await {
                Ok(v) => v.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read recording settings");
                    HashMap::new()
                }
            };
        // Finished recorders leave; disabled ones are stopped.
        let mut to_stop = Vec::new();
        {
            let mut running = rec.running.lock();
            running.retain(|_, h| !h.is_finished());
            let disabled: Vec<Uuid> = running
                .keys()
                .filter(|id| !enabled.contains_key(&id.to_string()))
                .copied()
                .collect();
            for id in disabled {
                if let Some(h) = running.remove(&id) {
                    to_stop.push(h);
                }
            }
        }
        for h in to_stop {
            tokio::spawn(h.stop());
        }
        for channel in state.engine.channels() {
            let id = channel.id();
            let live = channel.status().input_state == InputState::Live;
            if !live {
                rec.failed.lock().remove(&id);
                continue;
            }
            let Some(settings) = enabled.get(&id.to_string()) else {
                continue;
            };
            if rec.running.lock().contains_key(&id) {
                continue;
            }
            if rec
                .failed
                .lock()
                .get(&id)
                .is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE)
            {
                continue;
            }
            let mut config = RecorderConfig::new(rec.root.clone());
            config.file_duration = Duration::from_secs(settings.segment_minutes.max(1) as u64 * 60);
            config.idle_grace = rec.idle_grace;
            let handle = recorder::spawn(channel.clone(), config, rec.events.clone());
            rec.running.lock().insert(id, handle);
        }
        metrics::gauge!("lunora_recordings_active").set(rec.running.lock().len() as f64);
        if last_usage.elapsed() >= Duration::from_secs(15) {
            last_usage = Instant::now();
            report_usage(&state).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = rec.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Disk and tier usage into `/metrics`, and an alert when the hot tier runs low.
async fn report_usage(state: &AppState) {
    if let Ok(rows) = state.db.recording_usage().await {
        for (tier, files, bytes) in rows {
            metrics::gauge!("lunora_recordings_bytes", "tier" => tier.clone()).set(bytes as f64);
            metrics::gauge!("lunora_recordings_files", "tier" => tier).set(files as f64);
        }
    }
    for (tier, root) in state.tiers.local_roots() {
        if tier == "hot" {
            continue;
        }
        if let Some((free, total)) =
            disk_space(root.to_path_buf(), state.config.data_dir.clone()).await
        {
            metrics::gauge!("lunora_recordings_disk_free_bytes", "tier" => tier).set(free as f64);
            metrics::gauge!("lunora_recordings_disk_total_bytes", "tier" => tier).set(total as f64);
        }
    }
    if let Some((free, total)) =
        disk_space(state.recordings.root.clone(), state.config.data_dir.clone()).await
    {
        let (free, total) = (free as f64, total as f64);
        metrics::gauge!("lunora_recordings_disk_free_bytes", "tier" => "hot").set(free);
        metrics::gauge!("lunora_recordings_disk_total_bytes", "tier" => "hot").set(total);
        if free < state.config.disk_min_free_bytes as f64
            && !state.recordings.running.lock().is_empty()
        {
            tracing::warn!(
                alert = "recording_disk_low",
                free_bytes = free as u64,
                "free space for recordings is low"
            );
        }
    }
}

async fn write_events(state: AppState, mut rx: mpsc::Receiver<RecorderEvent>) {
    while let Some(event) = rx.recv().await {
        let result = match &event {
            RecorderEvent::Started {
                id,
                channel_id,
                path,
                started_at_ms,
            } => match state.db.channel_any_org(&channel_id.to_string()).await {
                Ok(Some(c)) => {
                    let r = state
                        .db
                        .insert_recording(&lunora_store::NewRecording {
                            id: &id.to_string(),
                            organization_id: &c.organization_id,
                            channel_id: &c.id,
                            started_at: *started_at_ms,
                            path,
                        })
                        .await;
                    if r.is_ok() {
                        state.events.publish(
                            &c.organization_id,
                            format!("channel:{}", c.id),
                            &crate::events::catalog::RecordingStartedEvent {
                                recording_id: id.to_string(),
                                channel_id: c.id.clone(),
                                started_at: rfc3339(*started_at_ms),
                            },
                        );
                    }
                    r
                }
                Ok(None) => Ok(()), // the channel was deleted meanwhile
                Err(e) => Err(e),
            },
            RecorderEvent::Progress {
                id,
                bytes,
                duration_ms,
            } => {
                state
                    .db
                    .recording_progress(&id.to_string(), *bytes as i64, *duration_ms)
                    .await
            }
            RecorderEvent::Closed {
                id,
                ended_at_ms,
                bytes,
                duration_ms,
                discontinuities,
            } => {
                metrics::counter!("lunora_recordings_completed_total").increment(1);
                state
                    .db
                    .end_recording(
                        &id.to_string(),
                        &RecordingEnd {
                            status: "complete",
                            ended_at: *ended_at_ms,
                            duration_ms: *duration_ms,
                            size_bytes: *bytes as i64,
                            discontinuities: *discontinuities as i64,
                            error: None,
                        },
                    )
                    .await
            }
            RecorderEvent::Failed {
                id,
                channel_id,
                error,
                disk_full,
                ended_at_ms,
                bytes,
                duration_ms,
            } => {
                state
                    .recordings
                    .failed
                    .lock()
                    .insert(*channel_id, Instant::now());
                match id {
                    Some(id) => {
                        let msg = if *disk_full {
                            format!("the disk is full: {error}")
                        } else {
                            error.clone()
                        };
                        state
                            .db
                            .end_recording(
                                &id.to_string(),
                                &RecordingEnd {
                                    status: "failed",
                                    ended_at: *ended_at_ms,
                                    duration_ms: *duration_ms,
                                    size_bytes: *bytes as i64,
                                    discontinuities: 0,
                                    error: Some(&msg),
                                },
                            )
                            .await
                    }
                    None => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, ?event, "cannot record a recording event");
            continue;
        }
        let stopped = match &event {
            RecorderEvent::Closed { id, .. } => Some((*id, "complete", None)),
            RecorderEvent::Failed {
                id: Some(id),
                error,
                ..
            } => Some((*id, "failed", Some(error.clone()))),
            _ => None,
        };
        if let Some((id, status, error)) = stopped {
            if let Ok(Some(r)) = state.db.recording_any_org(&id.to_string()).await {
                state.events.publish(
                    &r.organization_id,
                    format!("channel:{}", r.channel_id),
                    &crate::events::catalog::RecordingStoppedEvent {
                        recording_id: r.id.clone(),
                        channel_id: r.channel_id.clone(),
                        status: status.to_string(),
                        duration_seconds: r.duration_ms as f64 / 1000.0,
                        size_bytes: r.size_bytes,
                        error,
                    },
                );
            }
        }
    }
}

// ---- HTTP ----

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    pub id: String,
    pub channel_id: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_seconds: f64,
    pub size_bytes: i64,
    /// `hot`, `warm` or `cold`.
    pub tier: String,
    /// Relative to the tier's root: `YYYY/MM/DD/{channel}/HH-MM-SS-{id}.mp4`.
    pub path: String,
    /// `recording`, `complete` or `failed`.
    pub status: String,
    pub error: Option<String>,
    /// Source changes (reconnects, failovers) inside the file.
    pub discontinuities: i64,
    /// The file, with HTTP range requests.
    pub download_url: String,
    /// HLS VOD playback.
    pub playlist_url: String,
}

fn view(r: Recording) -> RecordingView {
    RecordingView {
        download_url: format!("/api/v1/recordings/{}/download", r.id),
        playlist_url: format!("/api/v1/recordings/{}/index.m3u8", r.id),
        id: r.id,
        channel_id: r.channel_id,
        started_at: rfc3339(r.started_at),
        ended_at: r.ended_at.map(rfc3339),
        duration_seconds: r.duration_ms as f64 / 1000.0,
        size_bytes: r.size_bytes,
        tier: r.tier,
        path: r.path,
        status: r.status,
        error: r.error,
        discontinuities: r.discontinuities,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingList {
    pub items: Vec<RecordingView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    pub channel_id: Option<String>,
    /// Recordings that end at or after this time (RFC 3339 or unix milliseconds).
    pub from: Option<String>,
    /// Recordings that start before this time (RFC 3339 or unix milliseconds).
    pub to: Option<String>,
    /// `hot`, `warm` or `cold`.
    pub tier: Option<String>,
    /// `recording`, `complete` or `failed`.
    pub status: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Unix ms from RFC 3339 (`2024-05-01T10:00:00Z`, optional fraction and offset) or digits.
fn parse_time(field: &str, v: &str) -> ApiResult<i64> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse()
            .map_err(|_| ApiError::invalid(field, format!("{field} is out of range")));
    }
    parse_rfc3339(v).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("{field} must be RFC 3339 (2024-05-01T10:00:00Z) or unix milliseconds"),
        )
    })
}

pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<3}", &digits[..digits.len().min(3)]);
        ms = padded.parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierUsage {
    /// `hot`, `warm` or `cold`.
    pub tier: String,
    /// Recordings of the organization in this tier, and their bytes.
    pub files: i64,
    pub bytes: i64,
    /// Free and total bytes of the tier's file system (local tiers only).
    pub disk_free_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    /// Whether this server is configured to use the tier.
    pub configured: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageUsage {
    pub tiers: Vec<TierUsage>,
}

/// Storage use of the organization's recordings per tier, with the free space of the local
/// tiers.
#[utoipa::path(
    get, path = "/recordings/usage", tag = "recordings",
    security(("bearer" = [])),
    responses((status = 200, body = StorageUsage))
)]
async fn usage(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<StorageUsage>> {
    who.require(Permission::ChannelsRead)?;
    let rows = state
        .db
        .organization_recording_usage(&who.organization_id)
        .await?;
    let mut tiers = Vec::new();
    for tier in ["hot", "warm", "cold"] {
        let (files, bytes) = rows
            .iter()
            .find(|(t, _, _)| t == tier)
            .map_or((0, 0), |(_, n, b)| (*n, *b));
        let root = state
            .tiers
            .local_roots()
            .iter()
            .find(|(t, _)| *t == tier)
            .map(|(_, root)| root.to_path_buf());
        let disk = match root {
            Some(root) => disk_space(root, state.config.data_dir.clone()).await,
            None => None,
        };
        tiers.push(TierUsage {
            tier: tier.to_string(),
            files,
            bytes,
            disk_free_bytes: disk.map(|d| d.0),
            disk_total_bytes: disk.map(|d| d.1),
            configured: tier != "cold" || state.tiers.has_cold(),
        });
    }
    Ok(axum::Json(StorageUsage { tiers }))
}

/// Free and total bytes of the file system holding `dir` (or `fallback` while `dir` does not
/// exist yet).
async fn disk_space(dir: PathBuf, fallback: PathBuf) -> Option<(u64, u64)> {
    let probe = if dir.exists() { dir } else { fallback };
    let st = tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(&probe))
        .await
        .ok()?
        .ok()?;
    let frag = st.fragment_size() as u64;
    Some((
        st.blocks_available() as u64 * frag,
        st.blocks() as u64 * frag,
    ))
}

/// Recordings of the caller's organization (own channels only without
/// `channels_manage_all`), newest first.
#[utoipa::path(
    get, path = "/recordings", tag = "recordings",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = RecordingList), (status = 400, body = crate::Problem))
)]
async fn list_recordings(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<RecordingList>> {
    who.require(Permission::ChannelsRead)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    if let Some(t) = q.tier.as_deref() {
        if !matches!(t, "hot" | "warm" | "cold") {
            return Err(ApiError::invalid(
                "tier",
                "tier must be `hot`, `warm` or `cold`",
            ));
        }
    }
    if let Some(s) = q.status.as_deref() {
        if !matches!(s, "recording" | "complete" | "failed") {
            return Err(ApiError::invalid(
                "status",
                "status must be `recording`, `complete` or `failed`",
            ));
        }
    }
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?;
    let to = q.to.as_deref().map(|v| parse_time("to", v)).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid("from", "from must not be after to"));
        }
    }
    let owner = (!who.can(Permission::ChannelsManageAll)).then_some(who.user_id.as_str());
    let page = state
        .db
        .list_recordings(
            &who.organization_id,
            &RecordingFilter {
                channel_id: q.channel_id.as_deref(),
                owner_id: owner,
                from,
                to,
                tier: q.tier.as_deref(),
                status: q.status.as_deref(),
            },
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(axum::Json(RecordingList {
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A recording the caller may see: another organization's, or one of a channel the caller
/// does not own (without `channels_manage_all`), is not found.
async fn visible(state: &AppState, who: &Principal, id: &str) -> ApiResult<Recording> {
    let not_found = || ApiError::not_found("no such recording");
    let r = state
        .db
        .recording(&who.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    if who.can(Permission::ChannelsManageAll) {
        return Ok(r);
    }
    let channel = state
        .db
        .channel(&who.organization_id, &r.channel_id)
        .await?;
    match channel {
        Some(c) if c.owner_id.as_deref() == Some(&who.user_id) => Ok(r),
        _ => Err(not_found()),
    }
}

/// One recording.
#[utoipa::path(
    get, path = "/recordings/{id}", tag = "recordings",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RecordingView), (status = 404, body = crate::Problem))
)]
async fn get_recording(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RecordingView>> {
    who.require(Permission::ChannelsRead)?;
    Ok(axum::Json(view(visible(&state, &who, &id).await?)))
}

/// Delete a finished recording and its file. A recording in progress cannot be deleted (409).
#[utoipa::path(
    delete, path = "/recordings/{id}", tag = "recordings",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem),
    )
)]
async fn delete_recording(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::ChannelsWrite)?;
    let r = visible(&state, &who, &id).await?;
    if r.status == "recording" {
        return Err(ApiError::conflict(
            "this recording is still being written; disable recording or wait for it to end",
        )
        .with_code("recording_in_progress"));
    }
    state.tiers.delete_file(&r).await.map_err(|e| {
        tracing::warn!(recording = %r.id, tier = %r.tier, error = %e, "cannot delete a recording's file");
        ApiError::unavailable(
            "storage_unavailable",
            format!(
                "cannot delete the file of this recording in the {} tier: {e}",
                r.tier
            ),
        )
    })?;
    state
        .db
        .delete_recording(&who.organization_id, &r.id)
        .await?;
    tracing::info!(recording = %r.id, user = %who.user_id, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A local file holding the recording in any tier (a cold one is fetched into the cache).
async fn readable(state: &AppState, r: &Recording) -> ApiResult<PathBuf> {
    state.tiers.local_file(r).await.map_err(|e| match e {
        crate::tiers::TierError::Missing => {
            tracing::warn!(recording = %r.id, tier = %r.tier, "recording file missing");
            ApiError::not_found("the file of this recording is missing").with_code("file_missing")
        }
        crate::tiers::TierError::Unavailable(tier) => ApiError::conflict(format!(
            "this recording is in the {tier} tier, which this server is not configured to read"
        ))
        .with_code("recording_unavailable"),
        e => {
            tracing::warn!(recording = %r.id, tier = %r.tier, error = %e, "cannot read a recording");
            ApiError::unavailable(
                "storage_unavailable",
                format!("the {} tier cannot be read now: {e}", r.tier),
            )
        }
    })
}

/// A byte range request: `bytes=a-b`, `bytes=a-`, `bytes=-n`. `None` for anything else
/// (several ranges, other units): the whole file is sent.
fn parse_range(v: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            let e: u64 = b.parse().ok()?;
            if e < start {
                return None; // syntactically invalid: ignored (RFC 9110 §14.1.1)
            }
            e.min(len.saturating_sub(1))
        };
        if start >= len {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(range))
}

/// The recording's file (`video/mp4`, fragmented MP4), with range requests: `Range: bytes=…`
/// answers 206 with `Content-Range`, an unsatisfiable range 416.
#[utoipa::path(
    get, path = "/recordings/{id}/download", tag = "recordings",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "video/mp4", description = "the whole file"),
        (status = 206, content_type = "video/mp4", description = "the requested range"),
        (status = 404, body = crate::Problem),
        (status = 416, body = crate::Problem),
    )
)]
async fn download(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let r = visible(&state, &who, &id).await?;
    let path = readable(&state, &r).await?;
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::warn!(recording = %r.id, error = %e, "recording file missing");
        ApiError::not_found("the file of this recording is missing").with_code("file_missing")
    })?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(Err(())) => {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file is {len} bytes long"),
            )
            .with_header(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            ));
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(ApiError::internal)?;
    let stream = futures::stream::unfold(
        (file.take(count), vec![0u8; 64 * 1024]),
        |(mut rd, mut buf)| async move {
            match rd.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&buf[..n])),
                    (rd, buf),
                )),
                Err(e) => Some((Err(e), (rd, buf))),
            }
        },
    );
    let mut res = Response::new(Body::from_stream(stream));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    let name = r.path.rsplit('/').next().unwrap_or("recording.mp4");
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(res)
}

/// The same file as `download` under a name with a media extension, which the HLS playlist
/// points at (players such as FFmpeg only fetch segments whose names look like media).
#[utoipa::path(
    get, path = "/recordings/{id}/media.mp4", tag = "recordings",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "video/mp4", description = "the whole file"),
        (status = 206, content_type = "video/mp4", description = "the requested range"),
        (status = 404, body = crate::Problem),
        (status = 416, body = crate::Problem),
    )
)]
async fn media(
    state: State<AppState>,
    who: Principal,
    headers: HeaderMap,
    id: Path<String>,
) -> ApiResult<Response> {
    download(state, who, headers, id).await
}

/// HLS VOD playlist of the recording (byte ranges into `media.mp4`; an `EVENT` playlist while
/// it is being recorded).
#[utoipa::path(
    get, path = "/recordings/{id}/index.m3u8", tag = "recordings",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "application/vnd.apple.mpegurl", description = "media playlist"),
        (status = 404, body = crate::Problem),
    )
)]
async fn playlist(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let r = visible(&state, &who, &id).await?;
    let path = readable(&state, &r).await?;
    let index = tokio::task::spawn_blocking(move || recorder::index_file(&path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|_| {
            ApiError::not_found("the file of this recording is missing").with_code("file_missing")
        })?
        .ok_or_else(|| {
            ApiError::not_found("this recording holds no media yet").with_code("file_empty")
        })?;
    let text = index.playlist("media.mp4", r.status != "recording");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.apple.mpegurl"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            ),
        ],
        text,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingSettingsView {
    pub channel_id: String,
    pub enabled: bool,
    /// A new file starts on the first keyframe after this many minutes.
    pub segment_minutes: i64,
    /// A recorder is running now.
    pub recording: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRecordingSettings {
    pub enabled: bool,
    /// 1–1440 (default: unchanged, 60 at first).
    #[serde(default)]
    pub segment_minutes: Option<i64>,
}

async fn owned_channel(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> ApiResult<lunora_store::Channel> {
    state
        .db
        .channel(&who.organization_id, id)
        .await?
        .filter(|c| {
            who.can(Permission::ChannelsManageAll) || c.owner_id.as_deref() == Some(&who.user_id)
        })
        .ok_or_else(|| ApiError::not_found("no such channel"))
}

fn settings_view(
    state: &AppState,
    channel_id: &str,
    s: RecordingSettings,
) -> RecordingSettingsView {
    RecordingSettingsView {
        channel_id: channel_id.to_string(),
        enabled: s.enabled,
        segment_minutes: s.segment_minutes,
        recording: Uuid::parse_str(channel_id).is_ok_and(|u| state.recordings.is_recording(u)),
    }
}

/// Whether the channel is recorded automatically while live.
#[utoipa::path(
    get, path = "/channels/{id}/recording", tag = "recordings",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RecordingSettingsView), (status = 404, body = crate::Problem))
)]
async fn get_settings(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RecordingSettingsView>> {
    who.require(Permission::ChannelsRead)?;
    let c = owned_channel(&state, &who, &id).await?;
    let s = state.db.recording_settings(&c.id).await?;
    Ok(axum::Json(settings_view(&state, &c.id, s)))
}

/// Turn automatic recording on or off, and set the file length. Recording starts within a
/// second if the channel is live; turning it off finishes the current file.
#[utoipa::path(
    put, path = "/channels/{id}/recording", tag = "recordings",
    params(("id" = String, Path)),
    request_body = PutRecordingSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RecordingSettingsView),
        (status = 400, body = crate::Problem),
        (status = 404, body = crate::Problem),
    )
)]
async fn put_settings(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<PutRecordingSettings>,
) -> ApiResult<axum::Json<RecordingSettingsView>> {
    who.require(Permission::ChannelsWrite)?;
    let c = owned_channel(&state, &who, &id).await?;
    let current = state.db.recording_settings(&c.id).await?;
    let segment_minutes = req.segment_minutes.unwrap_or(current.segment_minutes);
    if !(1..=MAX_SEGMENT_MINUTES).contains(&segment_minutes) {
        return Err(ApiError::invalid(
            "segment_minutes",
            format!("segment_minutes must be 1–{MAX_SEGMENT_MINUTES}"),
        ));
    }
    let s = RecordingSettings {
        enabled: req.enabled,
        segment_minutes,
    };
    state.db.set_recording_settings(&c.id, s).await?;
    state.recordings.wake();
    tracing::info!(channel = %c.id, enabled = s.enabled, segment_minutes, "recording settings changed");
    Ok(axum::Json(settings_view(&state, &c.id, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some(Ok((0, 99))));
        assert_eq!(parse_range("bytes=900-", 1000), Some(Ok((900, 999))));
        assert_eq!(parse_range("bytes=-100", 1000), Some(Ok((900, 999))));
        assert_eq!(parse_range("bytes=-5000", 1000), Some(Ok((0, 999))));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some(Ok((990, 999))));
        assert_eq!(parse_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T13:45:01.250Z"),
            Some(1_709_214_301_250)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T15:45:01.25+02:00"),
            Some(1_709_214_301_250)
        );
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(
            parse_time("from", "1709214301250").unwrap(),
            1_709_214_301_250
        );
        assert!(parse_time("from", "soon").is_err());
    }
}
