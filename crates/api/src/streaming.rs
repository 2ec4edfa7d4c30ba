//! Stream control (seed 000 "Stream Control"), scoped to a channel: start and stop a streaming
//! session to a set of destinations, start and stop one destination while the others run, live
//! status, and the session history at `/api/v1/streaming/sessions`.
//!
//! The [`Streaming`] manager keeps one push per (channel, destination) in memory; the database
//! keeps each session's record, per-destination figures and error log.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use lunora_media::push::{self, PushConfig, PushHandle, PushState, PushTarget};
use lunora_store::{Destination, SessionDestination};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(status))
        .routes(routes!(start_destination))
        .routes(routes!(stop_destination))
        .routes(routes!(list_sessions))
        .routes(routes!(get_session))
}

struct LivePush {
    destination: Destination,
    handle: PushHandle,
    started_at: i64,
    last_logged_error: Option<String>,
}

struct LiveSession {
    id: String,
    started_at: i64,
    pushes: HashMap<String, LivePush>,
}

/// Running sessions by channel id.
#[derive(Default)]
pub struct Streaming {
    sessions: Mutex<HashMap<String, LiveSession>>,
    config: PushConfig,
}

impl Streaming {
    pub fn new(config: PushConfig) -> Self {
        Streaming {
            sessions: Mutex::new(HashMap::new()),
            config,
        }
    }

    async fn push(
        &self,
        state: &AppState,
        channel_id: &str,
        d: &Destination,
    ) -> ApiResult<PushHandle> {
        let key = state
            .db
            .destination_stream_key(&d.organization_id, &d.id, &state.secrets)
            .await?;
        let uuid = uuid::Uuid::parse_str(channel_id)
            .map_err(|_| ApiError::not_found("no such channel"))?;
        let channel = state
            .engine
            .open_channel(uuid)
            .map_err(|e| ApiError::unavailable("engine_stopped", e.to_string()))?;
        // With a preset the destination gets the channel's rendition for it (shared by every
        // destination whose preset encodes the same way); without, the channel as it is.
        let source: push::PushSource = match &d.preset_id {
            None => channel.into(),
            Some(preset_id) => {
                let preset = crate::presets::resolve(state, &d.organization_id, preset_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::conflict(format!(
                            "destination `{}` uses preset {preset_id}, which no longer exists; choose another",
                            d.name
                        ))
                        .with_code("preset_missing")
                    })?;
                state
                    .engine
                    .rendition(uuid, &preset)
                    .map_err(|e| ApiError::unavailable("engine_stopped", e.to_string()))?
                    .into()
            }
        };
        let handle = push::spawn(
            source,
            PushTarget {
                url: d.rtmp_url.clone(),
                stream_key: key,
                tls: state.tls.clone(),
            },
            self.config.clone(),
        );
        forward_status(state, channel_id, d, handle.watch());
        Ok(handle)
    }

    /// Every running push: (channel id, destination id, platform, status).
    pub async fn snapshot(&self) -> Vec<(String, String, String, push::PushStatus)> {
        let sessions = self.sessions.lock().await;
        sessions
            .iter()
            .flat_map(|(channel, s)| {
                s.pushes.values().map(move |p| {
                    (
                        channel.clone(),
                        p.destination.id.clone(),
                        p.destination.platform.clone(),
                        p.handle.status(),
                    )
                })
            })
            .collect()
    }

    /// Stops a destination in every running session (it is being deleted).
    pub async fn stop_destination_everywhere(&self, state: &AppState, destination_id: &str) {
        let mut finished = Vec::new();
        {
            let mut sessions = self.sessions.lock().await;
            for s in sessions.values_mut() {
                if let Some(p) = s.pushes.remove(destination_id) {
                    finished.push((s.id.clone(), p));
                }
            }
        }
        for (session_id, p) in finished {
            record(state, &session_id, p).await;
        }
    }

    /// Stops the channel's running session, if any, as the server's own decision (`reason` is
    /// recorded, e.g. `no_input` when the fill signal held for its time); true if one ran.
    pub async fn stop_channel(
        &self,
        state: &AppState,
        org: &str,
        channel_id: &str,
        reason: &str,
    ) -> bool {
        let session = self.sessions.lock().await.remove(channel_id);
        let Some(mut session) = session else {
            return false;
        };
        log_errors(state, &mut session).await;
        for (_, p) in session.pushes {
            record(state, &session.id, p).await;
        }
        let _ = state.db.end_streaming_session(&session.id, reason).await;
        let _ = state
            .db
            .add_session_event(
                &session.id,
                None,
                "session_stopped",
                &format!("streaming stopped: {reason}"),
            )
            .await;
        session_event(state, org, channel_id, "session.stopped", &session.id);
        tracing::warn!(channel = %channel_id, %reason, "streaming stopped by the server");
        true
    }

    /// Stops every session (server shutdown).
    pub async fn stop_all(&self, state: &AppState, reason: &str) {
        let sessions: Vec<LiveSession> =
            self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        for s in sessions {
            for (_, p) in s.pushes {
                record(state, &s.id, p).await;
            }
            let _ = state.db.end_streaming_session(&s.id, reason).await;
        }
    }
}

/// Publishes `destination.status` on the channel's topic whenever a push changes state or error.
fn forward_status(
    state: &AppState,
    channel_id: &str,
    d: &Destination,
    mut status: tokio::sync::watch::Receiver<push::PushStatus>,
) {
    let hub = state.events.clone();
    let org = d.organization_id.clone();
    let topic = format!("channel:{channel_id}");
    let destination_id = d.id.clone();
    let name = d.name.clone();
    tokio::spawn(async move {
        let mut last: Option<(PushState, Option<String>)> = None;
        while status.changed().await.is_ok() {
            let s = status.borrow_and_update().clone();
            let now = (s.state, s.last_error.clone());
            if last.as_ref() == Some(&now) {
                continue;
            }
            last = Some(now);
            hub.publish(
                &org,
                topic.clone(),
                &crate::events::catalog::DestinationStatusEvent {
                    destination_id: destination_id.clone(),
                    name: name.clone(),
                    state: serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    last_error: s.last_error.clone(),
                    reconnects: s.reconnects,
                },
            );
        }
    });
}

fn session_event(state: &AppState, org: &str, channel_id: &str, kind: &str, session_id: &str) {
    use crate::events::catalog::{Session, SessionEvent};
    let data = SessionEvent {
        channel_id: channel_id.to_string(),
        session_id: session_id.to_string(),
    };
    let event = if kind == "session.started" {
        Session::Started(data)
    } else {
        Session::Stopped(data)
    };
    state
        .events
        .publish(org, format!("channel:{channel_id}"), &event);
    state.events.publish(org, "org".into(), &event);
}

/// Stops a push and stores what it delivered.
async fn record(state: &AppState, session_id: &str, p: LivePush) {
    let s = p.handle.stop().await;
    let row = SessionDestination {
        destination_id: p.destination.id.clone(),
        destination_name: p.destination.name.clone(),
        platform: p.destination.platform.clone(),
        started_at: p.started_at,
        ended_at: Some(lunora_store::now_ms()),
        bytes_sent: s.bytes_sent as i64,
        connected_ms: (s.connected_seconds * 1000.0) as i64,
        reconnects: s.reconnects as i64,
        last_error: s.last_error.clone(),
    };
    if let Err(e) = state.db.upsert_session_destination(session_id, &row).await {
        tracing::error!(error = %e, "cannot record a session destination");
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Destinations to push to; omitted: every enabled destination marked `auto_start`.
    #[serde(default)]
    pub destination_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationStatus {
    pub destination_id: String,
    pub name: String,
    pub platform: String,
    /// `idle`, `connecting`, `live`, `retrying` or `failed`.
    #[schema(value_type = String)]
    pub state: PushState,
    pub last_error: Option<String>,
    pub bitrate_bps: u64,
    pub bytes_sent: u64,
    pub reconnects: u64,
    pub connected_seconds: f64,
    pub live_since: Option<String>,
    /// The encode this destination gets when it has a preset: passthrough or transcoding,
    /// FFmpeg's state, last error, fps, speed, bitrate, dropped frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub transcode: Option<lunora_media::RenditionStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamingStatus {
    pub channel_id: String,
    /// Whether a session is running.
    pub streaming: bool,
    pub session_id: Option<String>,
    pub started_at: Option<String>,
    /// Seconds since the session started.
    pub elapsed_seconds: Option<f64>,
    pub destinations: Vec<DestinationStatus>,
    /// Sum of the destinations' bitrates.
    pub total_bitrate_bps: u64,
    /// The channel's input, from the media engine.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

async fn channel_for(
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

async fn log_errors(state: &AppState, session: &mut LiveSession) {
    for p in session.pushes.values_mut() {
        let s = p.handle.status();
        if s.last_error.is_some() && s.last_error != p.last_logged_error {
            p.last_logged_error = s.last_error.clone();
            let _ = state
                .db
                .add_session_event(
                    &session.id,
                    Some(&p.destination.id),
                    "destination_error",
                    s.last_error.as_deref().unwrap_or_default(),
                )
                .await;
        }
    }
}

async fn build_status(state: &AppState, channel_id: &str) -> StreamingStatus {
    let input = uuid::Uuid::parse_str(channel_id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .and_then(|c| serde_json::to_value(c.status()).ok())
        .unwrap_or_else(|| serde_json::json!({"input_state": "idle"}));
    let mut sessions = state.streaming.sessions.lock().await;
    let Some(session) = sessions.get_mut(channel_id) else {
        return StreamingStatus {
            channel_id: channel_id.to_string(),
            streaming: false,
            session_id: None,
            started_at: None,
            elapsed_seconds: None,
            destinations: Vec::new(),
            total_bitrate_bps: 0,
            input,
        };
    };
    log_errors(state, session).await;
    let mut destinations: Vec<DestinationStatus> = session
        .pushes
        .values()
        .map(|p| {
            let s = p.handle.status();
            DestinationStatus {
                destination_id: p.destination.id.clone(),
                name: p.destination.name.clone(),
                platform: p.destination.platform.clone(),
                state: s.state,
                last_error: s.last_error,
                bitrate_bps: s.bitrate_bps,
                bytes_sent: s.bytes_sent,
                reconnects: s.reconnects,
                connected_seconds: s.connected_seconds
                    + s.live_since
                        .map(|t| (lunora_store::now_ms() - t).max(0) as f64 / 1000.0)
                        .unwrap_or(0.0),
                live_since: s.live_since.map(rfc3339),
                transcode: s.transcode,
            }
        })
        .collect();
    destinations.sort_by(|a, b| a.name.cmp(&b.name));
    StreamingStatus {
        channel_id: channel_id.to_string(),
        streaming: true,
        session_id: Some(session.id.clone()),
        started_at: Some(rfc3339(session.started_at)),
        elapsed_seconds: Some((lunora_store::now_ms() - session.started_at).max(0) as f64 / 1000.0),
        total_bitrate_bps: destinations.iter().map(|d| d.bitrate_bps).sum(),
        destinations,
        input,
    }
}

/// Start a streaming session: push the channel to the given destinations.
#[utoipa::path(
    post, path = "/channels/{id}/streaming/start", tag = "streaming",
    params(("id" = String, Path)),
    request_body = StartRequest,
    security(("bearer" = [])),
    responses((status = 200, body = StreamingStatus), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn start(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<StartRequest>,
) -> ApiResult<axum::Json<StreamingStatus>> {
    who.require(Permission::ChannelsWrite)?;
    let channel = channel_for(&state, &who, &id).await?;
    let destinations = match req.destination_ids {
        Some(ids) => {
            if ids.len() > 50 {
                return Err(ApiError::invalid(
                    "destination_ids",
                    "at most 50 destinations per session",
                ));
            }
            let mut out = Vec::new();
            for (i, did) in ids.iter().enumerate() {
                let d = crate::destinations::visible_destination(&state, &who, did)
                    .await
                    .map_err(|_| {
                        ApiError::invalid(
                            format!("destination_ids[{i}]"),
                            format!("no such destination: {did}"),
                        )
                    })?;
                if !d.enabled {
                    return Err(ApiError::invalid(
                        format!("destination_ids[{i}]"),
                        format!("destination `{}` is disabled", d.name),
                    ));
                }
                out.push(d);
            }
            out
        }
        None => {
            let owner = (!who.can(Permission::ChannelsManageAll)).then_some(who.user_id.as_str());
            state
                .db
                .list_destinations(&who.organization_id, owner, None, 50)
                .await?
                .items
                .into_iter()
                .filter(|d| d.enabled && d.auto_start)
                .collect()
        }
    };
    {
        let mut sessions = state.streaming.sessions.lock().await;
        if sessions.contains_key(&channel.id) {
            return Err(ApiError::conflict(
                "this channel is already streaming; stop it first or start single destinations",
            )
            .with_code("already_streaming"));
        }
        let record = state
            .db
            .start_streaming_session(&who.organization_id, &channel.id, Some(&who.user_id))
            .await?;
        let mut session = LiveSession {
            id: record.id.clone(),
            started_at: record.started_at,
            pushes: HashMap::new(),
        };
        for d in destinations {
            let handle = state.streaming.push(&state, &channel.id, &d).await?;
            session.pushes.insert(
                d.id.clone(),
                LivePush {
                    destination: d,
                    handle,
                    started_at: lunora_store::now_ms(),
                    last_logged_error: None,
                },
            );
        }
        let _ = state
            .db
            .add_session_event(&record.id, None, "session_started", "streaming started")
            .await;
        sessions.insert(channel.id.clone(), session);
    }
    if let Some(session_id) = state
        .streaming
        .sessions
        .lock()
        .await
        .get(&channel.id)
        .map(|s| s.id.clone())
    {
        session_event(
            &state,
            &who.organization_id,
            &channel.id,
            "session.started",
            &session_id,
        );
    }
    tracing::info!(channel = %channel.id, user = %who.user_id, "streaming started");
    Ok(axum::Json(build_status(&state, &channel.id).await))
}

/// Stop the channel's streaming session: every destination disconnects.
#[utoipa::path(
    post, path = "/channels/{id}/streaming/stop", tag = "streaming",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = StreamingStatus), (status = 404, body = crate::Problem))
)]
async fn stop(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<StreamingStatus>> {
    who.require(Permission::ChannelsWrite)?;
    let channel = channel_for(&state, &who, &id).await?;
    let session = state.streaming.sessions.lock().await.remove(&channel.id);
    let Some(mut session) = session else {
        return Err(ApiError::conflict("this channel is not streaming").with_code("not_streaming"));
    };
    log_errors(&state, &mut session).await;
    for (_, p) in session.pushes {
        record(&state, &session.id, p).await;
    }
    state
        .db
        .end_streaming_session(&session.id, "stopped")
        .await?;
    let _ = state
        .db
        .add_session_event(&session.id, None, "session_stopped", "streaming stopped")
        .await;
    session_event(
        &state,
        &who.organization_id,
        &channel.id,
        "session.stopped",
        &session.id,
    );
    tracing::info!(channel = %channel.id, user = %who.user_id, "streaming stopped");
    Ok(axum::Json(build_status(&state, &channel.id).await))
}

/// Live status of the channel's streaming session, per destination.
#[utoipa::path(
    get, path = "/channels/{id}/streaming/status", tag = "streaming",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = StreamingStatus), (status = 404, body = crate::Problem))
)]
async fn status(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<StreamingStatus>> {
    who.require(Permission::ChannelsRead)?;
    let channel = channel_for(&state, &who, &id).await?;
    Ok(axum::Json(build_status(&state, &channel.id).await))
}

/// Start one more destination in the running session (or retry a failed one).
#[utoipa::path(
    post, path = "/channels/{id}/streaming/destinations/{destination_id}/start", tag = "streaming",
    params(("id" = String, Path), ("destination_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = StreamingStatus), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn start_destination(
    State(state): State<AppState>,
    who: Principal,
    Path((id, destination_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<StreamingStatus>> {
    who.require(Permission::ChannelsWrite)?;
    let channel = channel_for(&state, &who, &id).await?;
    let d = crate::destinations::visible_destination(&state, &who, &destination_id).await?;
    if !d.enabled {
        return Err(ApiError::conflict(format!(
            "destination `{}` is disabled",
            d.name
        )));
    }
    let old = {
        let mut sessions = state.streaming.sessions.lock().await;
        let Some(session) = sessions.get_mut(&channel.id) else {
            return Err(
                ApiError::conflict("start the channel's streaming session first")
                    .with_code("not_streaming"),
            );
        };
        let handle = state.streaming.push(&state, &channel.id, &d).await?;
        let old = session.pushes.insert(
            d.id.clone(),
            LivePush {
                destination: d.clone(),
                handle,
                started_at: lunora_store::now_ms(),
                last_logged_error: None,
            },
        );
        old.map(|p| (session.id.clone(), p))
    };
    if let Some((session_id, p)) = old {
        record(&state, &session_id, p).await;
    }
    Ok(axum::Json(build_status(&state, &channel.id).await))
}

/// Stop one destination; the others keep running.
#[utoipa::path(
    post, path = "/channels/{id}/streaming/destinations/{destination_id}/stop", tag = "streaming",
    params(("id" = String, Path), ("destination_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = StreamingStatus), (status = 404, body = crate::Problem))
)]
async fn stop_destination(
    State(state): State<AppState>,
    who: Principal,
    Path((id, destination_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<StreamingStatus>> {
    who.require(Permission::ChannelsWrite)?;
    let channel = channel_for(&state, &who, &id).await?;
    let removed = {
        let mut sessions = state.streaming.sessions.lock().await;
        sessions
            .get_mut(&channel.id)
            .and_then(|s| s.pushes.remove(&destination_id).map(|p| (s.id.clone(), p)))
    };
    let Some((session_id, p)) = removed else {
        return Err(ApiError::not_found(
            "that destination is not streaming on this channel",
        ));
    };
    record(&state, &session_id, p).await;
    Ok(axum::Json(build_status(&state, &channel.id).await))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SessionQuery {
    pub channel_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDestinationView {
    pub destination_id: String,
    pub name: String,
    pub platform: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub bytes_sent: i64,
    pub connected_seconds: f64,
    pub reconnects: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEventView {
    pub at: String,
    pub destination_id: Option<String>,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub channel_id: String,
    pub started_by: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub duration_seconds: f64,
    pub destinations: Vec<SessionDestinationView>,
    pub events: Vec<SessionEventView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
    pub next_cursor: Option<String>,
}

async fn session_view(
    state: &AppState,
    s: lunora_store::StreamingSession,
    detail: bool,
) -> ApiResult<SessionView> {
    let destinations = state
        .db
        .session_destinations(&s.id)
        .await?
        .into_iter()
        .map(|d| SessionDestinationView {
            destination_id: d.destination_id,
            name: d.destination_name,
            platform: d.platform,
            started_at: rfc3339(d.started_at),
            ended_at: d.ended_at.map(rfc3339),
            bytes_sent: d.bytes_sent,
            connected_seconds: d.connected_ms as f64 / 1000.0,
            reconnects: d.reconnects,
            last_error: d.last_error,
        })
        .collect();
    let events = if detail {
        state
            .db
            .session_events(&s.id)
            .await?
            .into_iter()
            .map(|e| SessionEventView {
                at: rfc3339(e.at),
                destination_id: e.destination_id,
                kind: e.kind,
                message: e.message,
            })
            .collect()
    } else {
        Vec::new()
    };
    let end = s.ended_at.unwrap_or_else(lunora_store::now_ms);
    Ok(SessionView {
        duration_seconds: (end - s.started_at).max(0) as f64 / 1000.0,
        id: s.id,
        channel_id: s.channel_id,
        started_by: s.started_by,
        started_at: rfc3339(s.started_at),
        ended_at: s.ended_at.map(rfc3339),
        end_reason: s.end_reason,
        destinations,
        events,
    })
}

/// Session history, newest first.
#[utoipa::path(
    get, path = "/streaming/sessions", tag = "streaming",
    params(SessionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SessionList))
)]
async fn list_sessions(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<SessionQuery>,
) -> ApiResult<axum::Json<SessionList>> {
    who.require(Permission::ChannelsRead)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_streaming_sessions(
            &who.organization_id,
            q.channel_id.as_deref(),
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for s in page.items {
        items.push(session_view(&state, s, false).await?);
    }
    Ok(axum::Json(SessionList {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// One session with its per-destination figures and error log.
#[utoipa::path(
    get, path = "/streaming/sessions/{id}", tag = "streaming",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 404, body = crate::Problem))
)]
async fn get_session(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SessionView>> {
    who.require(Permission::ChannelsRead)?;
    let s = state
        .db
        .streaming_session(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such session"))?;
    Ok(axum::Json(session_view(&state, s, true).await?))
}
