//! `/api/v1/channels`: live channels with their inputs and live status.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::random_secret;
use lunora_store::{Channel, ChannelInput, ChannelPatch, NewChannel};
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
        .routes(routes!(create_channel, list_channels))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(play_token))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PlayTokenRequest {
    /// Lifetime in seconds, 60–86400 (default 3600).
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlayTokenView {
    pub token: String,
    /// `rtmp://HOST:PORT/live/{channel_id}?token=…` for monitoring with any RTMP player.
    pub rtmp_url: String,
    pub expires_at: String,
}

/// A signed, expiring token to watch a private channel (RTMP monitoring now, HLS later).
#[utoipa::path(
    post, path = "/channels/{id}/play-token", tag = "channels",
    params(("id" = String, Path)),
    request_body = PlayTokenRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PlayTokenView), (status = 404, body = crate::Problem))
)]
async fn play_token(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<PlayTokenView>> {
    who.require(Permission::ChannelsRead)?;
    let req: PlayTokenRequest = if body.is_empty() {
        PlayTokenRequest::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let ttl = req.ttl_seconds.unwrap_or(3600);
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_seconds",
            "ttl_seconds must be 60–86400",
        ));
    }
    let channel = visible_channel(&state, &who, &id).await?;
    let expires = lunora_store::now_ms() / 1000 + ttl;
    let token = state.play_tokens.issue(&channel.id, expires);
    Ok(axum::Json(PlayTokenView {
        rtmp_url: format!(
            "{}/live/{}?token={token}",
            rtmp_base(&state, &headers),
            channel.id
        ),
        token,
        expires_at: rfc3339(expires * 1000),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// 1–100 characters.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `private` (default) or `public`.
    #[serde(default)]
    pub visibility: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InputView {
    pub id: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// `rtmp` or `srt`.
    pub protocol: String,
    pub enabled: bool,
    /// The publish key with all but its last 4 characters hidden.
    pub publish_key_masked: String,
    /// The publish URL, in full only in the answer that created the key.
    pub publish_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub owner_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub inputs: Vec<InputView>,
    /// The primary input's publish URL: in full only when the channel was just created.
    pub publish_url: String,
    /// Live state from the media engine.
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn validate_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "name must be 1–100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

fn validate_description(d: &str) -> ApiResult<String> {
    if d.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "description",
            "description must be at most 2000 characters",
        ));
    }
    Ok(d.to_string())
}

fn validate_visibility(v: &str) -> ApiResult<String> {
    match v {
        "private" | "public" => Ok(v.to_string()),
        _ => Err(ApiError::invalid(
            "visibility",
            "visibility must be `private` or `public`",
        )),
    }
}

/// `rtmp://host:port` as publishers should reach this server.
pub(crate) fn rtmp_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.rtmp_public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| {
            if h.starts_with('[') {
                h.split(']')
                    .next()
                    .map(|s| format!("{s}]"))
                    .unwrap_or_default()
            } else {
                h.split(':').next().unwrap_or("").to_string()
            }
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("rtmp://{host}:{}", state.config.rtmp_port)
}

fn view(
    state: &AppState,
    base: &str,
    channel: Channel,
    inputs: Vec<ChannelInput>,
    fresh_key: Option<&str>,
) -> ChannelView {
    let inputs: Vec<InputView> = inputs
        .into_iter()
        .map(|i| {
            let masked = format!("****{}", i.publish_key_last4);
            let key = match (fresh_key, i.role.as_str()) {
                (Some(k), "primary") => k.to_string(),
                _ => masked.clone(),
            };
            InputView {
                publish_url: format!("{base}/live/{key}"),
                id: i.id,
                role: i.role,
                protocol: i.protocol,
                enabled: i.enabled,
                publish_key_masked: masked,
            }
        })
        .collect();
    let publish_url = inputs
        .iter()
        .find(|i| i.role == "primary")
        .map(|i| i.publish_url.clone())
        .unwrap_or_default();
    let status = uuid::Uuid::parse_str(&channel.id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .and_then(|c| serde_json::to_value(c.status()).ok())
        .unwrap_or_else(|| serde_json::json!({ "input_state": "idle" }));
    ChannelView {
        id: channel.id,
        name: channel.name,
        description: channel.description,
        visibility: channel.visibility,
        owner_id: channel.owner_id,
        version: channel.version,
        created_at: rfc3339(channel.created_at),
        updated_at: rfc3339(channel.updated_at),
        inputs,
        publish_url,
        status,
    }
}

/// Loads a channel the caller may see: foreign ids and other owners' channels (without
/// `channels_manage_all`) are not found.
async fn visible_channel(state: &AppState, who: &Principal, id: &str) -> ApiResult<Channel> {
    let channel = state
        .db
        .channel(&who.organization_id, id)
        .await?
        .filter(|c| {
            who.can(Permission::ChannelsManageAll) || c.owner_id.as_deref() == Some(&who.user_id)
        })
        .ok_or_else(|| ApiError::not_found("no such channel"))?;
    Ok(channel)
}

/// Create a channel. The answer carries the primary input's publish URL with its key in full;
/// this is the only time the key is shown.
#[utoipa::path(
    post, path = "/channels", tag = "channels",
    request_body = CreateChannel,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ChannelView),
        (status = 400, body = crate::Problem),
        (status = 403, body = crate::Problem),
    )
)]
async fn create_channel(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Json(req): Json<CreateChannel>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let name = validate_name(&req.name)?;
    let description = validate_description(req.description.as_deref().unwrap_or(""))?;
    let visibility = validate_visibility(req.visibility.as_deref().unwrap_or("private"))?;
    let key = random_secret("live_");
    let (channel, inputs) = state
        .db
        .create_channel(
            &NewChannel {
                organization_id: &who.organization_id,
                owner_id: Some(&who.user_id),
                name: &name,
                description: &description,
                visibility: &visibility,
            },
            &key,
            &state.secrets,
        )
        .await?;
    tracing::info!(channel = %channel.id, user = %who.user_id, "channel created");
    let version = channel.version;
    let location = format!("/api/v1/channels/{}", channel.id);
    let base = rtmp_base(&state, &headers);
    let body = view(&state, &base, channel, inputs, Some(&key));
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(crate::util::with_etag(res, version))
}

/// List channels: all of the organization's for admins, one's own otherwise.
#[utoipa::path(
    get, path = "/channels", tag = "channels",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ChannelList))
)]
async fn list_channels(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<ChannelList>> {
    who.require(Permission::ChannelsRead)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let owner = (!who.can(Permission::ChannelsManageAll)).then_some(who.user_id.as_str());
    let page = state
        .db
        .list_channels(&who.organization_id, owner, q.cursor.as_deref(), limit)
        .await?;
    let base = rtmp_base(&state, &headers);
    let mut items = Vec::with_capacity(page.items.len());
    for c in page.items {
        let inputs = state.db.channel_inputs(&c.id).await?;
        items.push(view(&state, &base, c, inputs, None));
    }
    Ok(axum::Json(ChannelList {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// One channel with its inputs and live status.
#[utoipa::path(
    get, path = "/channels/{id}", tag = "channels",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::Problem))
)]
async fn get_channel(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let channel = visible_channel(&state, &who, &id).await?;
    let inputs = state.db.channel_inputs(&channel.id).await?;
    let version = channel.version;
    let base = rtmp_base(&state, &headers);
    Ok(crate::util::with_etag(
        axum::Json(view(&state, &base, channel, inputs, None)).into_response(),
        version,
    ))
}

/// Change a channel. Send `If-Match` with the ETag you read to refuse overwriting someone
/// else's change (412).
#[utoipa::path(
    patch, path = "/channels/{id}", tag = "channels",
    params(("id" = String, Path)),
    request_body = UpdateChannel,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ChannelView),
        (status = 404, body = crate::Problem),
        (status = 412, body = crate::Problem),
    )
)]
async fn update_channel(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<UpdateChannel>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsWrite)?;
    let current = visible_channel(&state, &who, &id).await?;
    let expected = crate::util::if_match(&headers, current.version, "channel")?;
    let patch = ChannelPatch {
        name: req.name.as_deref().map(validate_name).transpose()?,
        description: req
            .description
            .as_deref()
            .map(validate_description)
            .transpose()?,
        visibility: req
            .visibility
            .as_deref()
            .map(validate_visibility)
            .transpose()?,
    };
    let channel = state
        .db
        .update_channel(&who.organization_id, &id, &patch, expected)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::Conflict(d) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", d)
            }
            other => other.into(),
        })?;
    let inputs = state.db.channel_inputs(&channel.id).await?;
    let version = channel.version;
    let base = rtmp_base(&state, &headers);
    Ok(crate::util::with_etag(
        axum::Json(view(&state, &base, channel, inputs, None)).into_response(),
        version,
    ))
}

/// Delete a channel; a live one is disconnected.
#[utoipa::path(
    delete, path = "/channels/{id}", tag = "channels",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn delete_channel(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::ChannelsWrite)?;
    let channel = visible_channel(&state, &who, &id).await?;
    state
        .db
        .delete_channel(&who.organization_id, &channel.id)
        .await?;
    if let Ok(uuid) = uuid::Uuid::parse_str(&channel.id) {
        state.engine.close_channel(uuid);
    }
    tracing::info!(channel = %channel.id, user = %who.user_id, "channel deleted");
    Ok(StatusCode::NO_CONTENT)
}
