//! `/api/v1/destinations`: where channels are restreamed (YouTube, X, LinkedIn, any RTMP(S)
//! server). Stream keys are sealed at rest and masked in every answer.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_rtmp::RtmpUrl;
use lunora_store::{Destination, DestinationPatch, NewDestination};
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
        .routes(routes!(create_destination, list_destinations))
        .routes(routes!(
            get_destination,
            update_destination,
            delete_destination
        ))
        .routes(routes!(test_destination))
}

/// Ingest points filled in when a platform's URL is omitted.
pub fn platform_default_url(platform: &str, tls: bool) -> Option<&'static str> {
    match (platform, tls) {
        ("youtube", false) => Some("rtmp://a.rtmp.youtube.com/live2"),
        ("youtube", true) => Some("rtmps://a.rtmps.youtube.com:443/live2"),
        ("x", _) => Some("rtmps://va.pscp.tv:443/x"),
        _ => None,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDestination {
    pub name: String,
    /// `youtube`, `x`, `linkedin` or `custom`.
    pub platform: String,
    /// `rtmp://host[:port]/app` or `rtmps://…`; YouTube and X have defaults.
    #[serde(default)]
    pub rtmp_url: Option<String>,
    pub stream_key: String,
    #[serde(default)]
    pub preset_id: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub auto_start: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDestination {
    pub name: Option<String>,
    pub rtmp_url: Option<String>,
    pub stream_key: Option<String>,
    pub enabled: Option<bool>,
    pub auto_start: Option<bool>,
    /// `null` clears the preset (passthrough).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub preset_id: Option<Option<String>>,
}

fn double_option<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Some(Option::deserialize(d)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationView {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub rtmp_url: String,
    /// All but the last 4 characters hidden.
    pub stream_key_masked: String,
    pub enabled: bool,
    pub auto_start: bool,
    pub preset_id: Option<String>,
    pub owner_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Destination> for DestinationView {
    fn from(d: Destination) -> Self {
        DestinationView {
            stream_key_masked: format!("****{}", d.stream_key_last4),
            id: d.id,
            name: d.name,
            platform: d.platform,
            rtmp_url: d.rtmp_url,
            enabled: d.enabled,
            auto_start: d.auto_start,
            preset_id: d.preset_id,
            owner_id: d.owner_id,
            version: d.version,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationList {
    pub items: Vec<DestinationView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn validate_platform(p: &str) -> ApiResult<()> {
    match p {
        "youtube" | "x" | "linkedin" | "custom" => Ok(()),
        _ => Err(ApiError::invalid(
            "platform",
            "platform must be youtube, x, linkedin or custom",
        )),
    }
}

/// Checks scheme, host and port; the answer names what is wrong.
pub fn validate_url(url: &str) -> ApiResult<String> {
    let url = url.trim();
    if url.len() > 1024 {
        return Err(ApiError::invalid("rtmp_url", "rtmp_url is too long"));
    }
    let parsed = RtmpUrl::parse(url).map_err(|e| {
        ApiError::invalid(
            "rtmp_url",
            format!("{e}: expected rtmp://host[:port]/app or rtmps://host[:port]/app"),
        )
    })?;
    if parsed
        .host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid("rtmp_url", "the host name is not valid"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A destination's preset must be a built-in or one of the organization's presets.
async fn validate_preset(state: &AppState, who: &Principal, id: &str) -> ApiResult<()> {
    match crate::presets::resolve(state, &who.organization_id, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid(
            "preset_id",
            format!("no such preset: {id} (see GET /api/v1/presets)"),
        )),
    }
}

fn validate_key(key: &str) -> ApiResult<()> {
    if key.is_empty() || key.len() > 512 || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid(
            "stream_key",
            "stream_key must be 1–512 characters without spaces",
        ));
    }
    Ok(())
}

fn validate_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "name must be 1–100 characters"));
    }
    Ok(name.to_string())
}

/// A destination the caller may see: foreign ids and other owners' (without the manage-all
/// permission) are not found.
pub async fn visible_destination(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> ApiResult<Destination> {
    state
        .db
        .destination(&who.organization_id, id)
        .await?
        .filter(|d| {
            who.can(Permission::ChannelsManageAll) || d.owner_id.as_deref() == Some(&who.user_id)
        })
        .ok_or_else(|| ApiError::not_found("no such destination"))
}

/// Add a destination. The stream key is stored sealed and never shown again in full.
#[utoipa::path(
    post, path = "/destinations", tag = "destinations",
    request_body = CreateDestination,
    security(("bearer" = [])),
    responses((status = 201, body = DestinationView), (status = 400, body = crate::Problem))
)]
async fn create_destination(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<CreateDestination>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let name = validate_name(&req.name)?;
    validate_platform(&req.platform)?;
    let url = match req.rtmp_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(u) => validate_url(u)?,
        None => platform_default_url(&req.platform, false)
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::invalid(
                    "rtmp_url",
                    format!("rtmp_url is required for {} destinations", req.platform),
                )
            })?,
    };
    validate_key(&req.stream_key)?;
    if let Some(preset) = &req.preset_id {
        validate_preset(&state, &who, preset).await?;
    }
    let dest = state
        .db
        .create_destination(
            &NewDestination {
                organization_id: &who.organization_id,
                owner_id: Some(&who.user_id),
                name: &name,
                platform: &req.platform,
                rtmp_url: &url,
                stream_key: &req.stream_key,
                enabled: req.enabled.unwrap_or(true),
                auto_start: req.auto_start.unwrap_or(false),
                preset_id: req.preset_id.as_deref(),
            },
            &state.secrets,
        )
        .await?;
    let version = dest.version;
    let location = format!("/api/v1/destinations/{}", dest.id);
    let mut res = (StatusCode::CREATED, axum::Json(DestinationView::from(dest))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(crate::util::with_etag(res, version))
}

/// List destinations.
#[utoipa::path(
    get, path = "/destinations", tag = "destinations",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = DestinationList))
)]
async fn list_destinations(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<DestinationList>> {
    who.require(Permission::ChannelsRead)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let owner = (!who.can(Permission::ChannelsManageAll)).then_some(who.user_id.as_str());
    let page = state
        .db
        .list_destinations(&who.organization_id, owner, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(DestinationList {
        items: page.items.into_iter().map(DestinationView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One destination.
#[utoipa::path(
    get, path = "/destinations/{id}", tag = "destinations",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DestinationView), (status = 404, body = crate::Problem))
)]
async fn get_destination(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let d = visible_destination(&state, &who, &id).await?;
    let version = d.version;
    Ok(crate::util::with_etag(
        axum::Json(DestinationView::from(d)).into_response(),
        version,
    ))
}

/// Change a destination (`If-Match` refuses overwriting someone else's change with 412).
#[utoipa::path(
    patch, path = "/destinations/{id}", tag = "destinations",
    params(("id" = String, Path)),
    request_body = UpdateDestination,
    security(("bearer" = [])),
    responses((status = 200, body = DestinationView), (status = 404, body = crate::Problem), (status = 412, body = crate::Problem))
)]
async fn update_destination(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<UpdateDestination>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let current = visible_destination(&state, &who, &id).await?;
    let expected = crate::util::if_match(&headers, current.version, "destination")?;
    if let Some(k) = &req.stream_key {
        validate_key(k)?;
    }
    if let Some(Some(preset)) = &req.preset_id {
        validate_preset(&state, &who, preset).await?;
    }
    let patch = DestinationPatch {
        name: req.name.as_deref().map(validate_name).transpose()?,
        rtmp_url: req.rtmp_url.as_deref().map(validate_url).transpose()?,
        stream_key: req.stream_key,
        enabled: req.enabled,
        auto_start: req.auto_start,
        preset_id: req.preset_id,
    };
    let d = state
        .db
        .update_destination(&who.organization_id, &id, &patch, expected, &state.secrets)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::Conflict(d) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", d)
            }
            other => other.into(),
        })?;
    let version = d.version;
    Ok(crate::util::with_etag(
        axum::Json(DestinationView::from(d)).into_response(),
        version,
    ))
}

/// Delete a destination; if it is streaming, it is stopped first.
#[utoipa::path(
    delete, path = "/destinations/{id}", tag = "destinations",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn delete_destination(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::ChannelsWrite)?;
    let d = visible_destination(&state, &who, &id).await?;
    state
        .streaming
        .stop_destination_everywhere(&state, &d.id)
        .await;
    state
        .db
        .delete_destination(&who.organization_id, &d.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// Whether the server accepted a publish with this URL and key.
    pub ok: bool,
    /// Milliseconds from connecting to the server's acceptance.
    pub latency_ms: Option<u64>,
    /// Why it failed, in words.
    pub error: Option<String>,
}

/// Test connection: connect, hand over the stream key, and disconnect once the server
/// accepts (or refuses) it. No media is sent.
#[utoipa::path(
    post, path = "/destinations/{id}/test", tag = "destinations",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TestResult), (status = 404, body = crate::Problem))
)]
async fn test_destination(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TestResult>> {
    who.require(Permission::ChannelsWrite)?;
    let d = visible_destination(&state, &who, &id).await?;
    let key = state
        .db
        .destination_stream_key(&who.organization_id, &d.id, &state.secrets)
        .await?;
    let target = lunora_media::push::PushTarget {
        url: d.rtmp_url.clone(),
        stream_key: key,
        tls: state.tls.clone(),
    };
    let started = std::time::Instant::now();
    Ok(axum::Json(
        match lunora_media::push::probe(&target, &lunora_media::push::PushConfig::default()).await {
            Ok(()) => TestResult {
                ok: true,
                latency_ms: Some(started.elapsed().as_millis() as u64),
                error: None,
            },
            Err(e) => TestResult {
                ok: false,
                latency_ms: None,
                error: Some(e),
            },
        },
    ))
}
