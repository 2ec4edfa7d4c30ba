//! `/api/v1/viewing`: player sessions (start, heartbeat, end), history, continue watching and
//! saved streams.
//!
//! A session is counted as watching (`viewer_count`) while its last heartbeat is under a
//! minute old. Anonymous viewers get sessions for public streams; those sessions, and those of
//! viewers whose history is off, are stored without a user and never show in anyone's history,
//! stats or recommendations. The session id is what a player holds to send heartbeats.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use lunora_store::{CatalogFilter, ViewingSession};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::catalog::{admit_viewer, counts, public_entries, public_entry, view, StreamView};
use super::MaybeViewer;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

/// Players should send a heartbeat this often.
pub const HEARTBEAT_SECONDS: i64 = 15;
/// The most watch time one heartbeat can add (a player that slept does not count as watching).
const MAX_STEP_MS: i64 = 60_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(progress))
        .routes(routes!(end))
        .routes(routes!(history, clear_history))
        .routes(routes!(continue_watching))
        .routes(routes!(saved))
        .routes(routes!(save, unsave))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartViewing {
    pub stream_id: String,
    /// The rendition playing (`source`, `720p`, …).
    #[serde(default)]
    pub quality: Option<String>,
    /// `web`, `tv`, `mobile`, …
    #[serde(default)]
    pub device: Option<String>,
    /// Parental PIN when the stream's rating needs it.
    #[serde(default)]
    pub pin: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewingStarted {
    pub session_id: String,
    /// Send `POST /api/v1/viewing/{id}/progress` this often.
    pub heartbeat_seconds: i64,
    /// Whether this session goes into the caller's history.
    pub in_history: bool,
}

fn short(v: Option<&str>, max: usize) -> String {
    v.unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// Start a viewing session (anonymous viewers too, for streams they may watch).
#[utoipa::path(
    post, path = "/viewing/start", tag = "viewer",
    request_body = StartViewing,
    responses((status = 201, body = ViewingStarted), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem))
)]
async fn start(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Json(req): Json<StartViewing>,
) -> ApiResult<(StatusCode, axum::Json<ViewingStarted>)> {
    let e = public_entry(&state, &req.stream_id).await?;
    admit_viewer(&state, who.as_ref(), &e, req.pin.as_deref()).await?;
    let user_id = match &who {
        Some(p) if state.db.viewer_profile(&p.user_id).await?.history_enabled => {
            Some(p.user_id.clone())
        }
        _ => None,
    };
    let now = lunora_store::now_ms();
    let s = ViewingSession {
        id: lunora_store::new_id(),
        stream_id: e.channel_id.clone(),
        user_id: user_id.clone(),
        started_at: now,
        last_heartbeat_at: now,
        ended_at: None,
        position_ms: 0,
        watched_ms: 0,
        quality: short(req.quality.as_deref(), 20),
        device: short(req.device.as_deref(), 20),
        exit_reason: String::new(),
    };
    state.db.start_viewing(&s).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ViewingStarted {
            session_id: s.id,
            heartbeat_seconds: HEARTBEAT_SECONDS,
            in_history: user_id.is_some(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Playback position in seconds.
    #[serde(default)]
    pub position_seconds: Option<f64>,
    #[serde(default)]
    pub quality: Option<String>,
    /// On end: `completed`, `user_exit` or `error`.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewingSessionView {
    pub id: String,
    pub stream_id: String,
    pub started_at: String,
    pub last_heartbeat_at: String,
    pub ended_at: Option<String>,
    pub position_seconds: f64,
    pub watched_seconds: f64,
    pub quality: String,
    pub device: String,
    pub exit_reason: String,
}

fn session_view(s: &ViewingSession) -> ViewingSessionView {
    ViewingSessionView {
        id: s.id.clone(),
        stream_id: s.stream_id.clone(),
        started_at: rfc3339(s.started_at),
        last_heartbeat_at: rfc3339(s.last_heartbeat_at),
        ended_at: s.ended_at.map(rfc3339),
        position_seconds: s.position_ms as f64 / 1000.0,
        watched_seconds: s.watched_ms as f64 / 1000.0,
        quality: s.quality.clone(),
        device: s.device.clone(),
        exit_reason: s.exit_reason.clone(),
    }
}

/// The session, if the caller may touch it: its id is the capability, and a session of a
/// signed-in viewer answers only that viewer.
async fn own_session(
    state: &AppState,
    who: Option<&Principal>,
    id: &str,
) -> ApiResult<ViewingSession> {
    let s = state
        .db
        .viewing_session(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such viewing session"))?;
    if let Some(owner) = &s.user_id {
        if who.map(|p| &p.user_id) != Some(owner) {
            return Err(ApiError::not_found("no such viewing session"));
        }
    }
    Ok(s)
}

fn step(s: &mut ViewingSession, req: &Progress, now: i64) -> ApiResult<()> {
    if s.ended_at.is_some() {
        return Err(ApiError::conflict("this viewing session has ended").with_code("session_ended"));
    }
    s.watched_ms += (now - s.last_heartbeat_at).clamp(0, MAX_STEP_MS);
    s.last_heartbeat_at = now;
    if let Some(p) = req.position_seconds {
        if !p.is_finite() || p < 0.0 {
            return Err(ApiError::invalid(
                "position_seconds",
                "position_seconds must be a non-negative number",
            ));
        }
        s.position_ms = (p * 1000.0).min(i64::MAX as f64 / 2.0) as i64;
    }
    if let Some(q) = &req.quality {
        s.quality = short(Some(q), 20);
    }
    Ok(())
}

/// Heartbeat of a playing session, with the position.
#[utoipa::path(
    post, path = "/viewing/{id}/progress", tag = "viewer",
    params(("id" = String, Path)),
    request_body = Progress,
    responses((status = 200, body = ViewingSessionView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn progress(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Path(id): Path<String>,
    Json(req): Json<Progress>,
) -> ApiResult<axum::Json<ViewingSessionView>> {
    let mut s = own_session(&state, who.as_ref(), &id).await?;
    step(&mut s, &req, lunora_store::now_ms())?;
    state.db.update_viewing(&s).await?;
    Ok(axum::Json(session_view(&s)))
}

/// End a session.
#[utoipa::path(
    post, path = "/viewing/{id}/end", tag = "viewer",
    params(("id" = String, Path)),
    request_body = Progress,
    responses((status = 200, body = ViewingSessionView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn end(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<ViewingSessionView>> {
    let req: Progress = if body.is_empty() {
        Progress::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let mut s = own_session(&state, who.as_ref(), &id).await?;
    let now = lunora_store::now_ms();
    step(&mut s, &req, now)?;
    s.exit_reason = match req.reason.as_deref().unwrap_or("user_exit") {
        r @ ("completed" | "user_exit" | "error") => r.to_string(),
        _ => {
            return Err(ApiError::invalid(
                "reason",
                "reason must be completed, user_exit or error",
            ))
        }
    };
    s.ended_at = Some(now);
    state.db.update_viewing(&s).await?;
    Ok(axum::Json(session_view(&s)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    #[serde(flatten)]
    pub session: ViewingSessionView,
    /// The stream as the catalog shows it now (absent when it left the catalog).
    pub stream: Option<StreamView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryList {
    pub history_enabled: bool,
    pub items: Vec<HistoryItem>,
}

async fn streams_by_id(state: &AppState) -> ApiResult<HashMap<String, StreamView>> {
    let entries = public_entries(state, CatalogFilter::default()).await?;
    let counts = counts(state).await?;
    Ok(entries
        .iter()
        .map(|e| (e.channel_id.clone(), view(state, e, &counts)))
        .collect())
}

/// The caller's viewing history, newest first (empty while history is off).
#[utoipa::path(
    get, path = "/viewing/history", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = HistoryList))
)]
async fn history(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<HistoryList>> {
    let enabled = state.db.viewer_profile(&who.user_id).await?.history_enabled;
    let sessions = state.db.sessions_of(&who.user_id, 200).await?;
    let streams = streams_by_id(&state).await?;
    let items = sessions
        .iter()
        .map(|s| HistoryItem {
            session: session_view(s),
            stream: streams.get(&s.stream_id).cloned(),
        })
        .collect();
    Ok(axum::Json(HistoryList {
        history_enabled: enabled,
        items,
    }))
}

/// Forget the caller's viewing history.
#[utoipa::path(
    delete, path = "/viewing/history", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 204))
)]
async fn clear_history(State(state): State<AppState>, who: Principal) -> ApiResult<StatusCode> {
    state.db.clear_history(&who.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContinueItem {
    pub stream: StreamView,
    pub last_watched_at: String,
    pub position_seconds: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContinueList {
    pub items: Vec<ContinueItem>,
}

/// Streams the caller watched recently and did not finish, live ones first.
#[utoipa::path(
    get, path = "/viewing/continue", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = ContinueList))
)]
async fn continue_watching(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<ContinueList>> {
    let sessions = state.db.sessions_of(&who.user_id, 500).await?;
    let mut streams = streams_by_id(&state).await?;
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in &sessions {
        if !seen.insert(s.stream_id.clone()) || s.exit_reason == "completed" {
            continue;
        }
        if let Some(stream) = streams.remove(&s.stream_id) {
            items.push(ContinueItem {
                stream,
                last_watched_at: rfc3339(s.last_heartbeat_at),
                position_seconds: s.position_ms as f64 / 1000.0,
            });
        }
        if items.len() >= 20 {
            break;
        }
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.stream.live));
    Ok(axum::Json(ContinueList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavedItem {
    pub stream: StreamView,
    pub saved_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavedList {
    pub items: Vec<SavedItem>,
}

/// The caller's saved streams (the library), newest first.
#[utoipa::path(
    get, path = "/viewing/saved", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = SavedList))
)]
async fn saved(State(state): State<AppState>, who: Principal) -> ApiResult<axum::Json<SavedList>> {
    let rows = state.db.saved_streams(&who.user_id).await?;
    let mut streams = streams_by_id(&state).await?;
    let items = rows
        .into_iter()
        .filter_map(|(id, at)| {
            streams.remove(&id).map(|stream| SavedItem {
                stream,
                saved_at: rfc3339(at),
            })
        })
        .collect();
    Ok(axum::Json(SavedList { items }))
}

/// Save a stream to the library.
#[utoipa::path(
    put, path = "/viewing/saved/{stream_id}", tag = "viewer",
    params(("stream_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn save(
    State(state): State<AppState>,
    who: Principal,
    Path(stream_id): Path<String>,
) -> ApiResult<StatusCode> {
    let e = public_entry(&state, &stream_id).await?;
    state.db.save_stream(&who.user_id, &e.channel_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a stream from the library.
#[utoipa::path(
    delete, path = "/viewing/saved/{stream_id}", tag = "viewer",
    params(("stream_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn unsave(
    State(state): State<AppState>,
    who: Principal,
    Path(stream_id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.db.unsave_stream(&who.user_id, &stream_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("this stream is not in the library"))
    }
}
