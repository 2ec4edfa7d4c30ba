//! `/api/v1/analytics/...` (seed 000 "Monitoring & Analytics", seed 001 analytics endpoints):
//! figures over a time range from the session history, plus the live state of the engine.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(system))
        .routes(routes!(camera))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeQuery {
    /// Start, unix milliseconds (default: 7 days before `to`).
    pub from: Option<i64>,
    /// End, unix milliseconds (default: now).
    pub to: Option<i64>,
}

fn range(q: &RangeQuery) -> ApiResult<(i64, i64)> {
    let to = q.to.unwrap_or_else(lunora_store::now_ms);
    let from = q.from.unwrap_or(to - 7 * 86_400_000);
    if from >= to {
        return Err(ApiError::invalid("from", "from must be before to"));
    }
    if to - from > 366 * 86_400_000 {
        return Err(ApiError::invalid(
            "from",
            "the range may span at most 366 days",
        ));
    }
    Ok((from, to))
}

#[derive(Debug, Serialize, ToSchema, Default)]
pub struct PlatformFigures {
    pub sessions: u64,
    pub bytes_sent: i64,
    pub connected_hours: f64,
    pub reconnects: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub from: String,
    pub to: String,
    /// Sum of session durations inside the range, in hours.
    pub streaming_hours: f64,
    pub sessions: u64,
    /// The most sessions running at the same moment inside the range.
    pub peak_concurrent_streams: u64,
    /// Sum of destinations' average bitrates at the busiest moment, bits per second.
    pub peak_bandwidth_bps: u64,
    /// Bytes sent to destinations, total.
    pub egress_bytes: i64,
    pub destination_reconnects: i64,
    /// Per platform: sessions, bytes, connected hours, reconnects.
    pub platforms: BTreeMap<String, PlatformFigures>,
    /// Egress bytes per destination id.
    pub egress_by_destination: BTreeMap<String, i64>,
    /// Now: live channels and sessions.
    pub live_channels: usize,
    pub live_sessions: usize,
}

/// Streaming figures of the organization over a time range.
#[utoipa::path(
    get, path = "/analytics/dashboard", tag = "analytics",
    params(RangeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Dashboard), (status = 400, body = crate::Problem))
)]
async fn dashboard(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<RangeQuery>,
) -> ApiResult<axum::Json<Dashboard>> {
    who.require(Permission::ChannelsRead)?;
    let (from, to) = range(&q)?;
    let now = lunora_store::now_ms();
    let mut sessions = Vec::new();
    let mut cursor: Option<String> = None;
    // Newest first; stop once sessions end before the range.
    'pages: loop {
        let page = state
            .db
            .list_streaming_sessions(&who.organization_id, None, cursor.as_deref(), 200)
            .await?;
        for s in page.items {
            if s.started_at < from && s.ended_at.is_some_and(|e| e < from) {
                break 'pages;
            }
            if s.started_at <= to {
                sessions.push(s);
            }
        }
        match page.next_cursor {
            Some(c) if sessions.len() < 100_000 => cursor = Some(c),
            _ => break,
        }
    }
    let mut out = Dashboard {
        from: rfc3339(from),
        to: rfc3339(to),
        streaming_hours: 0.0,
        sessions: sessions.len() as u64,
        peak_concurrent_streams: 0,
        peak_bandwidth_bps: 0,
        egress_bytes: 0,
        destination_reconnects: 0,
        platforms: BTreeMap::new(),
        egress_by_destination: BTreeMap::new(),
        live_channels: state.engine.health().live_channels,
        live_sessions: 0,
    };
    // Sweep over start/end points for concurrency and bandwidth.
    let mut edges: Vec<(i64, i64, i64)> = Vec::new();
    for s in &sessions {
        let start = s.started_at.max(from);
        let end = s.ended_at.unwrap_or(now).min(to);
        if s.ended_at.is_none() {
            out.live_sessions += 1;
        }
        out.streaming_hours += (end - start).max(0) as f64 / 3_600_000.0;
        let mut bps = 0i64;
        for d in state.db.session_destinations(&s.id).await? {
            out.egress_bytes += d.bytes_sent;
            out.destination_reconnects += d.reconnects;
            *out.egress_by_destination
                .entry(d.destination_id.clone())
                .or_default() += d.bytes_sent;
            let p = out.platforms.entry(d.platform.clone()).or_default();
            p.sessions += 1;
            p.bytes_sent += d.bytes_sent;
            p.connected_hours += d.connected_ms as f64 / 3_600_000.0;
            p.reconnects += d.reconnects;
            if d.connected_ms > 0 {
                bps += d.bytes_sent * 8 * 1000 / d.connected_ms.max(1);
            }
        }
        edges.push((start, 1, bps));
        edges.push((end, -1, -bps));
    }
    edges.sort_by_key(|e| (e.0, e.1));
    let (mut n, mut bw) = (0i64, 0i64);
    for (_, dn, dbw) in edges {
        n += dn;
        bw += dbw;
        out.peak_concurrent_streams = out.peak_concurrent_streams.max(n.max(0) as u64);
        out.peak_bandwidth_bps = out.peak_bandwidth_bps.max(bw.max(0) as u64);
    }
    out.streaming_hours = (out.streaming_hours * 1000.0).round() / 1000.0;
    Ok(axum::Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemFigures {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub channels_open: usize,
    pub live_channels: usize,
    pub subscribers: usize,
    pub ingest_bitrate_bps: u64,
    pub pushing_destinations: usize,
    pub egress_bitrate_bps: u64,
    pub data_dir_free_bytes: Option<u64>,
}

/// The server right now: engine, ingest and egress, disk.
#[utoipa::path(
    get, path = "/analytics/system", tag = "analytics",
    security(("bearer" = [])),
    responses((status = 200, body = SystemFigures))
)]
async fn system(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<SystemFigures>> {
    who.require(Permission::ChannelsRead)?;
    let statuses: Vec<_> = state.engine.channels().iter().map(|c| c.status()).collect();
    let pushes = state.streaming.snapshot().await;
    Ok(axum::Json(SystemFigures {
        version: crate::VERSION,
        uptime_seconds: state.started_at.elapsed().as_secs(),
        channels_open: statuses.len(),
        live_channels: statuses
            .iter()
            .filter(|s| s.input_state == lunora_media::InputState::Live)
            .count(),
        subscribers: statuses.iter().map(|s| s.subscribers).sum(),
        ingest_bitrate_bps: statuses.iter().map(|s| s.bitrate_bps).sum(),
        pushing_destinations: pushes.len(),
        egress_bitrate_bps: pushes.iter().map(|p| p.3.bitrate_bps).sum(),
        data_dir_free_bytes: crate::health::disk_space(&state.config.data_dir)
            .ok()
            .map(|(free, _)| free),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraFigures {
    pub camera_id: String,
    pub online: bool,
    pub bitrate_bps: u64,
    pub fps: f64,
    /// Open alerts about this camera.
    pub open_alerts: usize,
}

/// One camera's figures.
#[utoipa::path(
    get, path = "/analytics/cameras/{id}", tag = "analytics",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CameraFigures), (status = 404, body = crate::Problem))
)]
async fn camera(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CameraFigures>> {
    who.require(Permission::ChannelsRead)?;
    let cam = state
        .db
        .camera(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such camera"))?;
    let st = uuid::Uuid::parse_str(&cam.channel_id)
        .ok()
        .and_then(|cid| state.engine.channel(cid))
        .map(|c| c.status());
    let subject = format!("camera:{}", cam.id);
    let open_alerts = state
        .db
        .list_alerts(&who.organization_id, Some(true), None, 200)
        .await?
        .items
        .iter()
        .filter(|a| a.subject == subject)
        .count();
    Ok(axum::Json(CameraFigures {
        online: state.presence.online(&cam.id).unwrap_or(false),
        bitrate_bps: st.as_ref().map(|s| s.bitrate_bps).unwrap_or(0),
        fps: st.as_ref().map(|s| s.fps).unwrap_or(0.0),
        camera_id: cam.id,
        open_alerts,
    }))
}
