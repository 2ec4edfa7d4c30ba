//! `/api/v1/cameras`: IP cameras (seed 001 "Camera Onboarding Process"), each backed by a
//! channel. Creating a camera generates its RTMP publish URL and key (shown once, rotatable);
//! status comes from the media engine; a monitor marks silent cameras offline within seconds
//! and raises `camera.status` events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::random_secret;
use lunora_store::{Camera, CameraFilter, CameraPatch, NewCamera};
use serde::{Deserialize, Serialize};
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
        .routes(routes!(create_camera, list_cameras))
        .routes(routes!(get_camera, update_camera, delete_camera))
        .routes(routes!(camera_status))
        .routes(routes!(rotate_key))
        .routes(routes!(import_cameras))
        .routes(routes!(bulk))
}

/// A camera counts as offline when no frame arrived for this long.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(3);

/// Online/offline per camera with the time it last changed.
#[derive(Default)]
pub struct Presence {
    map: std::sync::Mutex<HashMap<String, (bool, i64)>>,
    ever_online: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Presence {
    fn get(&self, id: &str) -> Option<(bool, i64)> {
        self.map.lock().ok().and_then(|m| m.get(id).copied())
    }

    /// Whether the camera is online, once the monitor has seen it.
    pub fn online(&self, id: &str) -> Option<bool> {
        self.get(id).map(|(online, _)| online)
    }

    /// Whether the camera went offline after it had been seen online (a camera that was
    /// never online is not "lost").
    pub fn lost(&self, id: &str) -> bool {
        self.online(id) == Some(false)
            && self.ever_online.lock().is_ok_and(|seen| seen.contains(id))
    }
}

/// Watches every camera once a second and publishes `camera.status` on each change, then the
/// organizations' `dashboard.update` where a figure changed.
pub fn spawn_monitor(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut dashboards = crate::events::dashboard::Dashboards::default();
        loop {
            tick.tick().await;
            let Ok(cameras) = state.db.all_cameras().await else {
                continue;
            };
            let now = lunora_store::now_ms();
            for cam in cameras.iter() {
                let online = online(&state, cam);
                // Frames arrived since the server started, even if the monitor never caught
                // the camera online (it died within a second of starting).
                if online || has_published(&state, cam) {
                    if let Ok(mut seen) = state.presence.ever_online.lock() {
                        if !seen.contains(&cam.id) {
                            seen.insert(cam.id.clone());
                        }
                    }
                }
                let changed = match state.presence.map.lock() {
                    Ok(mut m) => match m.get(&cam.id) {
                        Some((was, _)) if *was == online => false,
                        previous => {
                            let first = previous.is_none();
                            m.insert(cam.id.clone(), (online, now));
                            // The first observation of an offline camera is not news.
                            !first || online
                        }
                    },
                    Err(_) => false,
                };
                if changed {
                    let data = crate::events::catalog::CameraStatusEvent {
                        camera_id: cam.id.clone(),
                        channel_id: cam.channel_id.clone(),
                        name: cam.name.clone(),
                        online,
                        since: rfc3339(now),
                    };
                    state
                        .events
                        .publish(&cam.organization_id, format!("camera:{}", cam.id), &data);
                    state
                        .events
                        .publish(&cam.organization_id, "org".into(), &data);
                    tracing::info!(camera = %cam.id, online, "camera status changed");
                }
            }
            dashboards.refresh(&state, &cameras).await;
        }
    })
}

fn has_published(state: &AppState, cam: &Camera) -> bool {
    uuid::Uuid::parse_str(&cam.channel_id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .is_some_and(|c| c.status().frames_in > 0)
}

fn online(state: &AppState, cam: &Camera) -> bool {
    uuid::Uuid::parse_str(&cam.channel_id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .map(|c| {
            let s = c.status();
            s.input_state == lunora_media::InputState::Live
                && s.last_frame_age_ms
                    .is_some_and(|age| age < OFFLINE_AFTER.as_millis() as u64)
        })
        .unwrap_or(false)
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateCamera {
    pub name: String,
    /// Company / brand.
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `rtsp://…` or `srt://…` for cameras that only serve a stream to pull.
    #[serde(default)]
    pub pull_url: Option<String>,
    /// `off` (default) or `continuous`.
    #[serde(default)]
    pub recording_policy: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCamera {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub location: Option<String>,
    pub tags: Option<Vec<String>>,
    pub recording_policy: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraStatus {
    pub online: bool,
    /// When the camera last went online or offline (as seen by this server).
    pub since: Option<String>,
    pub bitrate_bps: u64,
    pub fps: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub codec: Option<String>,
    /// Milliseconds since the last frame.
    pub last_frame_age_ms: Option<u64>,
    pub recording_policy: String,
    /// For a camera with a pull URL: the pull's state and its last error, in words.
    pub pull: Option<crate::pull::PullStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraView {
    pub id: String,
    pub channel_id: String,
    pub name: String,
    pub brand: String,
    pub model: String,
    pub serial_number: String,
    pub location: String,
    pub tags: Vec<String>,
    pub has_pull_url: bool,
    pub recording_policy: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// `rtmp://HOST:PORT/live/KEY`: in full only when the key was just created or rotated.
    pub publish_url: String,
    pub status: CameraStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraList {
    pub items: Vec<CameraView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub tag: Option<String>,
    pub location: Option<String>,
    /// Substring of name, brand, model or serial number.
    pub q: Option<String>,
}

fn status_of(state: &AppState, cam: &Camera) -> CameraStatus {
    let st = uuid::Uuid::parse_str(&cam.channel_id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .map(|c| c.status());
    let since = state.presence.get(&cam.id).map(|(_, t)| rfc3339(t));
    let online = online(state, cam);
    CameraStatus {
        online,
        since,
        bitrate_bps: st
            .as_ref()
            .filter(|_| online)
            .map(|s| s.bitrate_bps)
            .unwrap_or(0),
        fps: st.as_ref().filter(|_| online).map(|s| s.fps).unwrap_or(0.0),
        width: st.as_ref().and_then(|s| s.video.map(|v| v.width)),
        height: st.as_ref().and_then(|s| s.video.map(|v| v.height)),
        codec: st.as_ref().and_then(|s| {
            s.video
                .and_then(|v| serde_json::to_value(v.codec).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
        }),
        last_frame_age_ms: st.and_then(|s| s.last_frame_age_ms),
        recording_policy: cam.recording_policy.clone(),
        pull: cam.has_pull_url.then(|| {
            state
                .pulls
                .status(&cam.id)
                .unwrap_or_else(|| crate::pull::PullStatus {
                    url: String::new(),
                    state: if cam.enabled {
                        "connecting"
                    } else {
                        "disabled"
                    }
                    .into(),
                    error: None,
                    restarts: 0,
                })
        }),
    }
}

fn rtmp_base(state: &AppState, headers: &HeaderMap) -> String {
    crate::channels::rtmp_base(state, headers)
}

fn view(state: &AppState, base: &str, cam: Camera, key: Option<&str>) -> CameraView {
    let status = status_of(state, &cam);
    CameraView {
        publish_url: match key {
            Some(k) => format!("{base}/live/{k}"),
            None => format!("{base}/live/****"),
        },
        status,
        id: cam.id,
        channel_id: cam.channel_id,
        name: cam.name,
        brand: cam.brand,
        model: cam.model,
        serial_number: cam.serial_number,
        location: cam.location,
        tags: cam.tags,
        has_pull_url: cam.has_pull_url,
        recording_policy: cam.recording_policy,
        enabled: cam.enabled,
        version: cam.version,
        created_at: rfc3339(cam.created_at),
        updated_at: rfc3339(cam.updated_at),
    }
}

fn text_field(field: &str, v: Option<&str>, max: usize) -> ApiResult<String> {
    let v = v.unwrap_or("").trim();
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters without control characters"),
        ));
    }
    Ok(v.to_string())
}

fn validate_tags(tags: &[String]) -> ApiResult<Vec<String>> {
    if tags.len() > 20 {
        return Err(ApiError::invalid("tags", "at most 20 tags"));
    }
    tags.iter()
        .enumerate()
        .map(|(i, t)| {
            let t = t.trim();
            let ok = !t.is_empty()
                && t.len() <= 40
                && t.chars()
                    .all(|c| c.is_alphanumeric() || " _-.:/".contains(c));
            if ok {
                Ok(t.to_string())
            } else {
                Err(ApiError::invalid(
                    format!("tags[{i}]"),
                    "a tag is 1–40 letters, digits, spaces or _-.:/",
                ))
            }
        })
        .collect()
}

fn validate_policy(p: &str) -> ApiResult<String> {
    match p {
        "off" | "continuous" => Ok(p.to_string()),
        _ => Err(ApiError::invalid(
            "recording_policy",
            "recording_policy must be `off` or `continuous`",
        )),
    }
}

fn validate_new(req: &CreateCamera) -> ApiResult<NewCamera> {
    let name = text_field("name", Some(&req.name), 100)?;
    if name.is_empty() {
        return Err(ApiError::invalid("name", "name must be 1–100 characters"));
    }
    let pull_url = match req
        .pull_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(u) => {
            let ok =
                (u.starts_with("rtsp://") || u.starts_with("rtsps://") || u.starts_with("srt://"))
                    && u.len() <= 1024
                    && u.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
            if !ok {
                return Err(ApiError::invalid(
                    "pull_url",
                    "pull_url must be rtsp://, rtsps:// or srt:// with a host",
                ));
            }
            Some(u.to_string())
        }
        None => None,
    };
    Ok(NewCamera {
        name,
        brand: text_field("brand", req.brand.as_deref(), 100)?,
        model: text_field("model", req.model.as_deref(), 100)?,
        serial_number: text_field("serial_number", req.serial_number.as_deref(), 100)?,
        location: text_field("location", req.location.as_deref(), 200)?,
        tags: validate_tags(req.tags.as_deref().unwrap_or_default())?,
        pull_url,
        recording_policy: validate_policy(req.recording_policy.as_deref().unwrap_or("off"))?,
        enabled: req.enabled.unwrap_or(true),
    })
}

async fn visible(state: &AppState, who: &Principal, id: &str) -> ApiResult<Camera> {
    state
        .db
        .camera(&who.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such camera"))
}

/// Register a camera. The answer carries its RTMP publish URL with the key in full, once.
#[utoipa::path(
    post, path = "/cameras", tag = "cameras",
    request_body = CreateCamera,
    security(("bearer" = [])),
    responses((status = 201, body = CameraView), (status = 400, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn create_camera(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Json(req): Json<CreateCamera>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let new = validate_new(&req)?;
    let key = random_secret("cam_");
    let cam = state
        .db
        .create_camera(
            &who.organization_id,
            Some(&who.user_id),
            &new,
            &key,
            &state.secrets,
        )
        .await?;
    let version = cam.version;
    let location = format!("/api/v1/cameras/{}", cam.id);
    let base = rtmp_base(&state, &headers);
    let mut res = (
        StatusCode::CREATED,
        axum::Json(view(&state, &base, cam, Some(&key))),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(crate::util::with_etag(res, version))
}

/// List cameras with filters (tag, location, search) and paging.
#[utoipa::path(
    get, path = "/cameras", tag = "cameras",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CameraList))
)]
async fn list_cameras(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<CameraList>> {
    who.require(Permission::ChannelsRead)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_cameras(
            &who.organization_id,
            &CameraFilter {
                tag: q.tag,
                location: q.location,
                search: q.q,
            },
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    let base = rtmp_base(&state, &headers);
    Ok(axum::Json(CameraList {
        items: page
            .items
            .into_iter()
            .map(|c| view(&state, &base, c, None))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One camera with its live status.
#[utoipa::path(
    get, path = "/cameras/{id}", tag = "cameras",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CameraView), (status = 404, body = crate::Problem))
)]
async fn get_camera(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let cam = visible(&state, &who, &id).await?;
    let version = cam.version;
    let base = rtmp_base(&state, &headers);
    Ok(crate::util::with_etag(
        axum::Json(view(&state, &base, cam, None)).into_response(),
        version,
    ))
}

/// Change a camera (`If-Match` refuses overwriting someone else's change with 412).
#[utoipa::path(
    patch, path = "/cameras/{id}", tag = "cameras",
    params(("id" = String, Path)),
    request_body = UpdateCamera,
    security(("bearer" = [])),
    responses((status = 200, body = CameraView), (status = 404, body = crate::Problem), (status = 412, body = crate::Problem))
)]
async fn update_camera(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<UpdateCamera>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let current = visible(&state, &who, &id).await?;
    let expected = crate::util::if_match(&headers, current.version, "camera")?;
    let name = match req.name.as_deref() {
        Some(n) => {
            let n = text_field("name", Some(n), 100)?;
            if n.is_empty() {
                return Err(ApiError::invalid("name", "name must be 1–100 characters"));
            }
            Some(n)
        }
        None => None,
    };
    let patch = CameraPatch {
        name,
        brand: req
            .brand
            .as_deref()
            .map(|v| text_field("brand", Some(v), 100))
            .transpose()?,
        model: req
            .model
            .as_deref()
            .map(|v| text_field("model", Some(v), 100))
            .transpose()?,
        serial_number: req
            .serial_number
            .as_deref()
            .map(|v| text_field("serial_number", Some(v), 100))
            .transpose()?,
        location: req
            .location
            .as_deref()
            .map(|v| text_field("location", Some(v), 200))
            .transpose()?,
        tags: req.tags.as_deref().map(validate_tags).transpose()?,
        recording_policy: req
            .recording_policy
            .as_deref()
            .map(validate_policy)
            .transpose()?,
        enabled: req.enabled,
    };
    let cam = state
        .db
        .update_camera(&who.organization_id, &id, &patch, expected)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::Conflict(d) if d.contains("changed") => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", d)
            }
            other => other.into(),
        })?;
    if !cam.enabled {
        // A disabled camera neither publishes nor is pulled.
        state.pulls.stop(&cam.id);
        if let Ok(uuid) = uuid::Uuid::parse_str(&cam.channel_id) {
            state.engine.close_channel(uuid);
        }
    }
    let version = cam.version;
    let base = rtmp_base(&state, &headers);
    Ok(crate::util::with_etag(
        axum::Json(view(&state, &base, cam, None)).into_response(),
        version,
    ))
}

/// Delete a camera and its channel; a live camera is disconnected.
#[utoipa::path(
    delete, path = "/cameras/{id}", tag = "cameras",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn delete_camera(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::ChannelsWrite)?;
    let cam = visible(&state, &who, &id).await?;
    remove(&state, &who, &cam).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(state: &AppState, who: &Principal, cam: &Camera) -> ApiResult<()> {
    state
        .db
        .delete_camera(&who.organization_id, &cam.id)
        .await?;
    state.pulls.stop(&cam.id);
    if let Ok(uuid) = uuid::Uuid::parse_str(&cam.channel_id) {
        state.engine.close_channel(uuid);
    }
    if let Ok(mut m) = state.presence.map.lock() {
        m.remove(&cam.id);
    }
    if let Ok(mut seen) = state.presence.ever_online.lock() {
        seen.remove(&cam.id);
    }
    Ok(())
}

/// Online or offline, since when, bitrate, fps, resolution, codec, last frame, recording.
#[utoipa::path(
    get, path = "/cameras/{id}/status", tag = "cameras",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CameraStatus), (status = 404, body = crate::Problem))
)]
async fn camera_status(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CameraStatus>> {
    who.require(Permission::ChannelsRead)?;
    let cam = visible(&state, &who, &id).await?;
    Ok(axum::Json(status_of(&state, &cam)))
}

async fn rotate(state: &AppState, cam: &Camera) -> ApiResult<String> {
    let key = random_secret("cam_");
    state
        .db
        .rotate_input_key(&cam.channel_id, "primary", &key, &state.secrets)
        .await?;
    // The old key's connection, if any, must not keep publishing; a pull restarts with the
    // new key.
    state.pulls.stop(&cam.id);
    if let Ok(uuid) = uuid::Uuid::parse_str(&cam.channel_id) {
        state.engine.close_channel(uuid);
    }
    Ok(key)
}

/// A new publish key; the old one stops working and a connected camera is disconnected.
#[utoipa::path(
    post, path = "/cameras/{id}/rotate-key", tag = "cameras",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CameraView), (status = 404, body = crate::Problem))
)]
async fn rotate_key(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let cam = visible(&state, &who, &id).await?;
    let key = rotate(&state, &cam).await?;
    let base = rtmp_base(&state, &headers);
    let mut res = axum::Json(view(&state, &base, cam, Some(&key))).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRow {
    /// 1-based data row (the header line is row 0).
    pub row: usize,
    pub ok: bool,
    pub camera_id: Option<String>,
    /// The new camera's publish URL, in full, once.
    pub publish_url: Option<String>,
    pub error: Option<String>,
    pub field: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CameraImportReport)]
pub struct ImportReport {
    pub created: usize,
    pub failed: usize,
    pub rows: Vec<ImportRow>,
}

const CSV_COLUMNS: [&str; 8] = [
    "name",
    "brand",
    "model",
    "serial_number",
    "location",
    "tags",
    "recording_policy",
    "enabled",
];

/// Import cameras from CSV (`text/csv`, header row with any of: name, brand, model,
/// serial_number, location, tags (separated by `;`), recording_policy, enabled). Each row is
/// created whole or not at all; the report says, per row, what happened.
#[utoipa::path(
    post, path = "/cameras/import", tag = "cameras",
    request_body(content = String, content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, body = ImportReport), (status = 400, body = crate::Problem))
)]
async fn import_cameras(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<ImportReport>> {
    who.require(Permission::ChannelsWrite)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(body.as_ref());
    let header_row = reader
        .headers()
        .map_err(|e| {
            ApiError::bad_request(
                "malformed_csv",
                format!("the CSV header cannot be read: {e}"),
            )
        })?
        .clone();
    let columns: Vec<String> = header_row.iter().map(|h| h.to_ascii_lowercase()).collect();
    if !columns.iter().any(|c| c == "name") {
        return Err(ApiError::bad_request(
            "malformed_csv",
            "the CSV needs a `name` column",
        ));
    }
    if let Some(bad) = columns.iter().find(|c| !CSV_COLUMNS.contains(&c.as_str())) {
        return Err(ApiError::bad_request(
            "malformed_csv",
            format!("unknown column `{bad}`; known: {}", CSV_COLUMNS.join(", ")),
        ));
    }
    let base = rtmp_base(&state, &headers);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        if row > 5000 {
            return Err(ApiError::bad_request(
                "too_many_rows",
                "import at most 5000 cameras at once",
            ));
        }
        let outcome = async {
            let record =
                record.map_err(|e| ApiError::bad_request("malformed_csv", e.to_string()))?;
            let get = |name: &str| {
                columns
                    .iter()
                    .position(|c| c == name)
                    .and_then(|p| record.get(p))
                    .map(str::to_owned)
                    .filter(|v| !v.is_empty())
            };
            let enabled = match get("enabled").as_deref() {
                None => None,
                Some("true" | "yes" | "1") => Some(true),
                Some("false" | "no" | "0") => Some(false),
                Some(_) => {
                    return Err(ApiError::invalid(
                        "enabled",
                        "enabled must be true or false",
                    ))
                }
            };
            let req = CreateCamera {
                name: get("name").unwrap_or_default(),
                brand: get("brand"),
                model: get("model"),
                serial_number: get("serial_number"),
                location: get("location"),
                tags: get("tags").map(|t| t.split(';').map(str::to_owned).collect()),
                pull_url: None,
                recording_policy: get("recording_policy"),
                enabled,
            };
            let new = validate_new(&req)?;
            let key = random_secret("cam_");
            let cam = state
                .db
                .create_camera(
                    &who.organization_id,
                    Some(&who.user_id),
                    &new,
                    &key,
                    &state.secrets,
                )
                .await?;
            Ok::<_, ApiError>((cam.id, format!("{base}/live/{key}")))
        }
        .await;
        rows.push(match outcome {
            Ok((id, url)) => ImportRow {
                row,
                ok: true,
                camera_id: Some(id),
                publish_url: Some(url),
                error: None,
                field: None,
            },
            Err(e) => ImportRow {
                row,
                ok: false,
                camera_id: None,
                publish_url: None,
                error: Some(e.detail),
                field: e.field,
            },
        });
    }
    let created = rows.iter().filter(|r| r.ok).count();
    Ok(axum::Json(ImportReport {
        created,
        failed: rows.len() - created,
        rows,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// `enable`, `disable`, `delete` or `rotate_keys`.
    pub action: String,
    pub ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub id: String,
    pub ok: bool,
    pub error: Option<String>,
    /// For `rotate_keys`: the new publish URL, once.
    pub publish_url: Option<String>,
}

/// Enable, disable, delete or rotate the keys of many cameras; a result per id.
#[utoipa::path(
    post, path = "/cameras/bulk", tag = "cameras",
    request_body = BulkRequest,
    security(("bearer" = [])),
    responses((status = 200, body = [BulkResult]), (status = 400, body = crate::Problem))
)]
async fn bulk(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Json(req): Json<BulkRequest>,
) -> ApiResult<axum::Json<Vec<BulkResult>>> {
    who.require(Permission::ChannelsWrite)?;
    if !["enable", "disable", "delete", "rotate_keys"].contains(&req.action.as_str()) {
        return Err(ApiError::invalid(
            "action",
            "action must be enable, disable, delete or rotate_keys",
        ));
    }
    if req.ids.is_empty() || req.ids.len() > 1000 {
        return Err(ApiError::invalid("ids", "ids must hold 1–1000 camera ids"));
    }
    let base = rtmp_base(&state, &headers);
    let mut out = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let result = async {
            let cam = visible(&state, &who, &id).await?;
            match req.action.as_str() {
                "enable" | "disable" => {
                    let enabled = req.action == "enable";
                    state
                        .db
                        .update_camera(
                            &who.organization_id,
                            &cam.id,
                            &CameraPatch {
                                enabled: Some(enabled),
                                ..Default::default()
                            },
                            None,
                        )
                        .await?;
                    if !enabled {
                        state.pulls.stop(&cam.id);
                        if let Ok(uuid) = uuid::Uuid::parse_str(&cam.channel_id) {
                            state.engine.close_channel(uuid);
                        }
                    }
                    Ok(None)
                }
                "delete" => remove(&state, &who, &cam).await.map(|()| None),
                _ => rotate(&state, &cam)
                    .await
                    .map(|k| Some(format!("{base}/live/{k}"))),
            }
        }
        .await;
        out.push(match result {
            Ok(url) => BulkResult {
                id,
                ok: true,
                error: None,
                publish_url: url,
            },
            Err(e) => BulkResult {
                id,
                ok: false,
                error: Some(e.detail),
                publish_url: None,
            },
        });
    }
    Ok(axum::Json(out))
}

/// The monitor's presence map, shared through the state.
pub type SharedPresence = Arc<Presence>;
