//! Source redundancy (seed 000 "Source Redundancy System", "Source Management", "Advanced Source
//! Configuration"): a primary and a secondary input per channel, each RTMP or SRT, the switch
//! settings, live input status and manual switching, under `/api/v1/channels/{id}/sources/`.
//!
//! Settings are stored (`source_configs`, `source_inputs`) and applied to the live engine at
//! once; SRT inputs in caller mode get a task that pulls from the encoder's listener. Switch
//! events of the engine are relayed to the WebSocket (`source.failover`,
//! `source.state`, `source.fill`), to the running streaming session's history and to alerts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_media::failover::{ChannelEvent, FillState, InputStatus, SourcesStatus, TransportStats};
use lunora_media::rtmp_server::{
    AuthFuture, Authorizer, Denied, IngestEvent, PlayRequest, PublishGrant, PublishRequest,
};
use lunora_media::srt_server::{self, CallerHandle, CallerTarget, SrtGrant, SrtPublishRequest};
use lunora_media::{RedundancyConfig, RedundancyMode, SwitchError};
use lunora_store::crypto::random_secret;
use lunora_store::{
    Db, PassphraseChange, SecretBox, SourceConfig, SourceInput, SourceInputUpdate, SourcesUpdate,
    StoreError,
};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_config, put_config))
        .routes(routes!(status))
        .routes(routes!(switch))
}

const ROLES: [&str; 2] = ["primary", "secondary"];

/// What the sources feature keeps at run time: the SRT port for publish URLs and the caller
/// tasks by (channel, role).
pub struct SourcesRuntime {
    srt_port: AtomicU16,
    callers: Mutex<HashMap<(String, String), CallerHandle>>,
}

impl Default for SourcesRuntime {
    fn default() -> Self {
        SourcesRuntime {
            srt_port: AtomicU16::new(9998),
            callers: Mutex::new(HashMap::new()),
        }
    }
}

// ---- the API's shapes ----

fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// One input as a client sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// `rtmp` or `srt`.
    pub protocol: String,
    /// SRT receive latency in milliseconds, 20–8000 (default 120).
    #[serde(default)]
    pub latency: Option<i64>,
    /// SRT passphrase (AES encryption), 10–79 characters; `null` turns encryption off,
    /// absent keeps the current one. Never returned.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub passphrase: Option<Option<String>>,
    /// AES key length in bits: 128 (default), 192 or 256.
    #[serde(default)]
    pub key_length: Option<i64>,
    /// Caller mode: the encoder's SRT listener (IP address or host name) that Lunora calls.
    /// Absent: listener mode, the encoder calls Lunora's publish URL.
    #[serde(default)]
    pub address: Option<String>,
    /// Caller mode: the encoder's SRT port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Caller mode: a stream id to send to the encoder, if it wants one.
    #[serde(default)]
    pub stream_id: Option<String>,
}

/// The settings a client sends; absent fields keep their current value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfigRequest {
    /// `single`, `auto_failover` or `manual`.
    #[serde(default)]
    pub redundancy_mode: Option<String>,
    /// Seconds without media (or a closed connection) before an input is lost: 0.2–60
    /// (default 5).
    #[serde(default)]
    pub failover_threshold: Option<f64>,
    /// Seconds between health checks and statistics samples: 0.1–60 (default 1).
    #[serde(default)]
    pub health_check_interval: Option<f64>,
    /// Auto mode: return to the primary once it is healthy again for `auto_return_hold`.
    #[serde(default)]
    pub auto_return: Option<bool>,
    /// Seconds the primary must be healthy before the return: 0–3600 (default 10).
    #[serde(default)]
    pub auto_return_hold: Option<f64>,
    /// Seconds the fill signal (the last keyframe held still, with silence) keeps the
    /// destinations alive while no input is healthy, before they are stopped: 0–3600 (default
    /// 60; 0: no fill, destinations stay connected and wait).
    #[serde(default)]
    pub fill_hold: Option<f64>,
    #[serde(default)]
    pub primary_source: Option<SourceRequest>,
    /// `null` removes the secondary input (and its publish key).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<SourceRequest>)]
    pub secondary_source: Option<Option<SourceRequest>>,
}

/// One input as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// `primary` or `secondary`.
    pub role: String,
    /// `rtmp` or `srt`.
    pub protocol: String,
    /// `listener` (the encoder publishes to `publish_url`) or `caller` (Lunora calls the
    /// encoder at `address`:`port`).
    pub mode: String,
    pub enabled: bool,
    /// SRT latency, milliseconds.
    pub latency: i64,
    /// SRT encryption is on (the passphrase is never shown).
    pub encryption: bool,
    pub key_length: i64,
    pub address: Option<String>,
    pub port: Option<i64>,
    pub stream_id: Option<String>,
    /// The publish key with all but its last 4 characters hidden.
    pub publish_key_masked: String,
    /// `rtmp://HOST:PORT/live/KEY` or `srt://HOST:PORT?streamid=KEY`: the key in full only in
    /// the answer that created it.
    pub publish_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourcesConfigView {
    pub channel_id: String,
    pub redundancy_mode: String,
    /// Seconds.
    pub failover_threshold: f64,
    /// Seconds.
    pub health_check_interval: f64,
    pub auto_return: bool,
    /// Seconds.
    pub auto_return_hold: f64,
    /// Seconds.
    pub fill_hold: f64,
    pub primary_source: Option<SourceView>,
    pub secondary_source: Option<SourceView>,
    pub version: i64,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SrtStatsView {
    pub mode: String,
    pub peer: String,
    pub rtt_ms: f64,
    pub latency_ms: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packets_retransmitted: u64,
    pub packets_dropped: u64,
    pub bitrate_bps: u64,
    pub encrypted: bool,
    pub key_length: Option<u16>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceStatusView {
    pub role: String,
    pub protocol: String,
    /// `active`, `standby`, `lost` or `not_configured`.
    pub state: String,
    pub connected: bool,
    pub uptime_seconds: Option<f64>,
    pub bitrate_bps: u64,
    pub fps: f64,
    pub last_media_age_ms: Option<u64>,
    /// SRT statistics of the current connection.
    pub srt: Option<SrtStatsView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SwitchView {
    pub from: Option<String>,
    pub to: String,
    /// `primary_lost`, `secondary_lost`, `manual` or `primary_restored`.
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourcesStatusView {
    pub channel_id: String,
    pub redundancy_mode: String,
    /// The input whose media reaches the outputs (`primary` or `secondary`).
    pub active: Option<String>,
    /// A switch waiting for a keyframe of this input.
    pub switching_to: Option<String>,
    /// Switches since the channel went live on this server.
    pub switches: u64,
    pub last_switch: Option<SwitchView>,
    /// No input is healthy: the destinations get the fill signal since this time (RFC 3339).
    pub fill_since: Option<String>,
    pub inputs: Vec<SourceStatusView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// `primary` or `secondary`.
    pub to: String,
}

// ---- helpers ----

async fn visible_channel(
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

fn request_host(headers: &HeaderMap) -> String {
    headers
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
        .unwrap_or_else(|| "localhost".to_string())
}

fn publish_url(state: &AppState, headers: &HeaderMap, protocol: &str, key: &str) -> String {
    let host = request_host(headers);
    if protocol == "srt" {
        format!(
            "srt://{host}:{}?streamid={key}",
            state.sources.srt_port.load(Ordering::Relaxed)
        )
    } else {
        let base = match &state.config.rtmp_public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("rtmp://{host}:{}", state.config.rtmp_port),
        };
        format!("{base}/live/{key}")
    }
}

fn default_config(channel_id: &str) -> SourceConfig {
    SourceConfig {
        channel_id: channel_id.to_string(),
        redundancy_mode: "single".into(),
        failover_threshold_ms: 5000,
        health_check_interval_ms: 1000,
        auto_return: true,
        return_hold_ms: 10_000,
        fill_hold_ms: RedundancyConfig::DEFAULT_FILL_HOLD.as_millis() as i64,
        version: 0,
        updated_at: 0,
    }
}

/// The engine's settings for stored ones.
fn engine_config(config: &SourceConfig, inputs: &[SourceInput]) -> RedundancyConfig {
    let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
    RedundancyConfig {
        mode: RedundancyMode::parse(&config.redundancy_mode).unwrap_or_default(),
        failover_threshold: ms(config.failover_threshold_ms),
        health_check_interval: ms(config.health_check_interval_ms),
        auto_return: config.auto_return,
        return_hold: ms(config.return_hold_ms),
        fill_hold: ms(config.fill_hold_ms),
        inputs: ROLES
            .iter()
            .filter(|r| inputs.iter().any(|i| i.role == **r && i.enabled))
            .map(|r| r.to_string())
            .collect(),
    }
}

fn source_view(
    state: &AppState,
    headers: &HeaderMap,
    input: &SourceInput,
    fresh_key: Option<&str>,
) -> SourceView {
    let masked = format!("****{}", input.publish_key_last4);
    let caller = input.protocol == "srt" && input.caller_address.is_some();
    SourceView {
        role: input.role.clone(),
        protocol: input.protocol.clone(),
        mode: if caller { "caller" } else { "listener" }.into(),
        enabled: input.enabled,
        latency: input.latency_ms,
        encryption: input.passphrase_sealed.is_some(),
        key_length: input.key_length,
        address: input.caller_address.clone(),
        port: input.caller_port,
        stream_id: input.caller_stream_id.clone(),
        publish_url: publish_url(
            state,
            headers,
            &input.protocol,
            fresh_key.unwrap_or(&masked),
        ),
        publish_key_masked: masked,
    }
}

fn config_view(
    state: &AppState,
    headers: &HeaderMap,
    config: &SourceConfig,
    inputs: &[SourceInput],
    fresh: &HashMap<String, String>,
) -> SourcesConfigView {
    let view = |role: &str| {
        inputs
            .iter()
            .find(|i| i.role == role)
            .map(|i| source_view(state, headers, i, fresh.get(role).map(String::as_str)))
    };
    SourcesConfigView {
        channel_id: config.channel_id.clone(),
        redundancy_mode: config.redundancy_mode.clone(),
        failover_threshold: config.failover_threshold_ms as f64 / 1000.0,
        health_check_interval: config.health_check_interval_ms as f64 / 1000.0,
        auto_return: config.auto_return,
        auto_return_hold: config.return_hold_ms as f64 / 1000.0,
        fill_hold: config.fill_hold_ms as f64 / 1000.0,
        primary_source: view("primary"),
        secondary_source: view("secondary"),
        version: config.version,
        updated_at: (config.updated_at > 0).then(|| rfc3339(config.updated_at)),
    }
}

fn seconds_ms(field: &str, v: f64, min: f64, max: f64) -> ApiResult<i64> {
    if !v.is_finite() || v < min || v > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be {min}–{max} seconds"),
        ));
    }
    Ok((v * 1000.0).round() as i64)
}

fn valid_host(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 253
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// Validates one input of the request against the stored one.
fn input_update(
    field: &str,
    req: &SourceRequest,
    current: Option<&SourceInput>,
) -> ApiResult<SourceInputUpdate> {
    let f = |name: &str| format!("{field}.{name}");
    let protocol = match req.protocol.as_str() {
        "rtmp" | "srt" => req.protocol.clone(),
        _ => {
            return Err(ApiError::invalid(
                f("protocol"),
                "protocol must be `rtmp` or `srt`",
            ))
        }
    };
    let srt = protocol == "srt";
    let srt_only = |name: &str, present: bool| -> ApiResult<()> {
        if present && !srt {
            return Err(ApiError::invalid(
                f(name),
                format!("{name} applies to SRT inputs only"),
            ));
        }
        Ok(())
    };
    srt_only("latency", req.latency.is_some())?;
    srt_only("passphrase", matches!(req.passphrase, Some(Some(_))))?;
    srt_only("key_length", req.key_length.is_some())?;
    srt_only("address", req.address.is_some())?;
    srt_only("port", req.port.is_some())?;
    srt_only("stream_id", req.stream_id.is_some())?;
    let latency_ms = req.latency.or(current.map(|c| c.latency_ms)).unwrap_or(120);
    if !(20..=8000).contains(&latency_ms) {
        return Err(ApiError::invalid(
            f("latency"),
            "latency must be 20–8000 milliseconds",
        ));
    }
    let key_length = req
        .key_length
        .or(current.map(|c| c.key_length))
        .unwrap_or(128);
    if ![128, 192, 256].contains(&key_length) {
        return Err(ApiError::invalid(
            f("key_length"),
            "key_length must be 128, 192 or 256",
        ));
    }
    let passphrase = match (&req.passphrase, srt) {
        (_, false) => PassphraseChange::Clear,
        (None, true) => PassphraseChange::Keep,
        (Some(None), true) => PassphraseChange::Clear,
        (Some(Some(p)), true) => {
            if !(10..=79).contains(&p.len()) || p.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    f("passphrase"),
                    "passphrase must be 10–79 characters",
                ));
            }
            PassphraseChange::Set(p.clone())
        }
    };
    let caller = match (&req.address, req.port) {
        (None, None) => {
            if req.stream_id.is_some() {
                return Err(ApiError::invalid(
                    f("stream_id"),
                    "stream_id is for caller mode: give the encoder's address and port too",
                ));
            }
            None
        }
        (Some(a), Some(p)) => {
            let a = a.trim();
            if !valid_host(a) {
                return Err(ApiError::invalid(
                    f("address"),
                    "address must be an IP address or host name of the encoder",
                ));
            }
            if !(1..=65535).contains(&p) {
                return Err(ApiError::invalid(f("port"), "port must be 1–65535"));
            }
            if let Some(s) = &req.stream_id {
                if s.len() > 512 || s.chars().any(char::is_control) {
                    return Err(ApiError::invalid(
                        f("stream_id"),
                        "stream_id must be at most 512 printable characters",
                    ));
                }
            }
            Some((a.to_string(), p, req.stream_id.clone()))
        }
        (Some(_), None) => {
            return Err(ApiError::invalid(
                f("port"),
                "caller mode needs the encoder's port too",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                f("address"),
                "caller mode needs the encoder's address too",
            ))
        }
    };
    Ok(SourceInputUpdate {
        role: String::new(),
        protocol,
        latency_ms,
        passphrase,
        key_length,
        caller,
        new_publish_key: None,
    })
}

/// An input kept as it is.
fn unchanged(input: &SourceInput) -> SourceInputUpdate {
    SourceInputUpdate {
        role: input.role.clone(),
        protocol: input.protocol.clone(),
        latency_ms: input.latency_ms,
        passphrase: PassphraseChange::Keep,
        key_length: input.key_length,
        caller: input
            .caller_address
            .clone()
            .zip(input.caller_port)
            .map(|(a, p)| (a, p, input.caller_stream_id.clone())),
        new_publish_key: None,
    }
}

/// Applies a channel's stored settings to the engine and its caller tasks.
async fn apply(state: &AppState, channel_id: &str) -> Result<(), StoreError> {
    let Ok(uuid) = Uuid::parse_str(channel_id) else {
        return Ok(());
    };
    let config = state
        .db
        .source_config(channel_id)
        .await?
        .unwrap_or_else(|| default_config(channel_id));
    let inputs = state.db.source_inputs(channel_id).await?;
    state
        .engine
        .configure_sources(uuid, engine_config(&config, &inputs));
    let mut wanted = Vec::new();
    for input in &inputs {
        if input.protocol != "srt" || !input.enabled {
            continue;
        }
        let (Some(address), Some(port)) = (&input.caller_address, input.caller_port) else {
            continue;
        };
        let passphrase = match &input.passphrase_sealed {
            Some(sealed) => Some(state.secrets.open(sealed)?),
            None => None,
        };
        wanted.push(CallerTarget {
            channel_id: uuid,
            input: input.role.clone(),
            address: if address.contains(':') && !address.starts_with('[') {
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            },
            stream_id: input.caller_stream_id.clone(),
            passphrase,
            key_length: u16::try_from(input.key_length).unwrap_or(128),
            latency: Duration::from_millis(input.latency_ms.max(0) as u64),
        });
    }
    let mut callers = state.sources.callers.lock();
    callers.retain(|(channel, role), handle| {
        channel != channel_id
            || wanted
                .iter()
                .any(|t| same_target(t, handle.target()) && &t.input == role)
    });
    for target in wanted {
        let key = (channel_id.to_string(), target.input.clone());
        if callers.contains_key(&key) {
            continue;
        }
        tracing::info!(channel = %channel_id, input = %target.input, address = %target.address, "SRT caller started");
        let handle = srt_server::spawn_caller(
            state.engine.clone(),
            target,
            srt_server::SrtServerConfig::default(),
        );
        callers.insert(key, handle);
    }
    Ok(())
}

fn same_target(a: &CallerTarget, b: &CallerTarget) -> bool {
    a.address == b.address
        && a.stream_id == b.stream_id
        && a.passphrase == b.passphrase
        && a.key_length == b.key_length
        && a.latency == b.latency
}

// ---- handlers ----

/// The channel's source redundancy settings and its inputs.
#[utoipa::path(
    get, path = "/channels/{id}/sources/config", tag = "sources",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SourcesConfigView), (status = 404, body = crate::Problem))
)]
async fn get_config(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let channel = visible_channel(&state, &who, &id).await?;
    let config = state
        .db
        .source_config(&channel.id)
        .await?
        .unwrap_or_else(|| default_config(&channel.id));
    let inputs = state.db.source_inputs(&channel.id).await?;
    let view = config_view(&state, &headers, &config, &inputs, &HashMap::new());
    Ok(crate::util::with_etag(
        axum::Json(view).into_response(),
        config.version,
    ))
}

/// Change the source redundancy settings (administrators). Absent fields keep their value;
/// `secondary_source: null` removes the secondary input. A new input's publish URL carries
/// its key in full in this answer only. Applied to the live channel at once. Send `If-Match`
/// with the ETag you read to refuse overwriting someone else's change (412).
#[utoipa::path(
    put, path = "/channels/{id}/sources/config", tag = "sources",
    params(("id" = String, Path)),
    request_body = SourcesConfigRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = SourcesConfigView),
        (status = 400, body = crate::Problem),
        (status = 404, body = crate::Problem),
        (status = 412, body = crate::Problem),
    )
)]
async fn put_config(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<SourcesConfigRequest>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsManageAll)?;
    let channel = visible_channel(&state, &who, &id).await?;
    let current = state
        .db
        .source_config(&channel.id)
        .await?
        .unwrap_or_else(|| default_config(&channel.id));
    let inputs = state.db.source_inputs(&channel.id).await?;
    let expected = crate::util::if_match(&headers, current.version, "source configuration")?;

    let mode = req
        .redundancy_mode
        .clone()
        .unwrap_or_else(|| current.redundancy_mode.clone());
    if RedundancyMode::parse(&mode).is_none() {
        return Err(ApiError::invalid(
            "redundancy_mode",
            "redundancy_mode must be `single`, `auto_failover` or `manual`",
        ));
    }
    let threshold = match req.failover_threshold {
        Some(v) => seconds_ms("failover_threshold", v, 0.2, 60.0)?,
        None => current.failover_threshold_ms,
    };
    let interval = match req.health_check_interval {
        Some(v) => seconds_ms("health_check_interval", v, 0.1, 60.0)?,
        None => current.health_check_interval_ms,
    };
    let hold = match req.auto_return_hold {
        Some(v) => seconds_ms("auto_return_hold", v, 0.0, 3600.0)?,
        None => current.return_hold_ms,
    };
    let fill_hold = match req.fill_hold {
        Some(v) => seconds_ms("fill_hold", v, 0.0, 3600.0)?,
        None => current.fill_hold_ms,
    };

    let mut updates = Vec::new();
    let mut fresh = HashMap::new();
    for (role, field) in [
        ("primary", "primary_source"),
        ("secondary", "secondary_source"),
    ] {
        let existing = inputs.iter().find(|i| i.role == role);
        let wanted: Option<&SourceRequest> = match role {
            "primary" => req.primary_source.as_ref(),
            _ => match &req.secondary_source {
                Some(Some(s)) => Some(s),
                Some(None) => continue, // removed
                None => None,
            },
        };
        let mut update = match (wanted, existing) {
            (Some(w), e) => input_update(field, w, e)?,
            (None, Some(e)) => unchanged(e),
            (None, None) if role == "primary" => {
                return Err(ApiError::not_found("the channel has no primary input"))
            }
            (None, None) => continue,
        };
        update.role = role.to_string();
        if existing.is_none() {
            let key = random_secret("live_");
            update.new_publish_key = Some(key.clone());
            fresh.insert(role.to_string(), key);
        }
        updates.push(update);
    }
    if mode != "single" && !updates.iter().any(|u| u.role == "secondary") {
        return Err(ApiError::invalid(
            "secondary_source",
            format!("{mode} needs a secondary_source"),
        ));
    }
    let update = SourcesUpdate {
        channel_id: channel.id.clone(),
        redundancy_mode: mode,
        failover_threshold_ms: threshold,
        health_check_interval_ms: interval,
        auto_return: req.auto_return.unwrap_or(current.auto_return),
        return_hold_ms: hold,
        fill_hold_ms: fill_hold,
        expected_version: expected,
        inputs: updates,
    };
    state
        .db
        .save_sources(&update, &state.secrets)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(d) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", d)
            }
            other => other.into(),
        })?;
    apply(&state, &channel.id).await?;
    tracing::info!(channel = %channel.id, user = %who.user_id, mode = %update.redundancy_mode, "source configuration changed");
    let config = state
        .db
        .source_config(&channel.id)
        .await?
        .unwrap_or_else(|| default_config(&channel.id));
    let inputs = state.db.source_inputs(&channel.id).await?;
    let view = config_view(&state, &headers, &config, &inputs, &fresh);
    let mut res = axum::Json(view).into_response();
    if !fresh.is_empty() {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(crate::util::with_etag(res, config.version))
}

fn srt_view(t: &TransportStats) -> SrtStatsView {
    SrtStatsView {
        mode: t.mode.clone(),
        peer: t.peer.clone(),
        rtt_ms: (t.rtt_ms * 10.0).round() / 10.0,
        latency_ms: t.latency_ms,
        packets_received: t.packets_received,
        packets_lost: t.packets_lost,
        packets_retransmitted: t.packets_retransmitted,
        packets_dropped: t.packets_dropped,
        bitrate_bps: t.bitrate_bps,
        encrypted: t.encrypted,
        key_length: t.key_length,
    }
}

fn state_name(s: lunora_media::SourceState) -> &'static str {
    match s {
        lunora_media::SourceState::Active => "active",
        lunora_media::SourceState::Standby => "standby",
        lunora_media::SourceState::Lost => "lost",
        lunora_media::SourceState::NotConfigured => "not_configured",
    }
}

async fn status_view(state: &AppState, channel_id: &str) -> ApiResult<SourcesStatusView> {
    let inputs = state.db.source_inputs(channel_id).await?;
    let config = state
        .db
        .source_config(channel_id)
        .await?
        .unwrap_or_else(|| default_config(channel_id));
    let live: Option<SourcesStatus> = Uuid::parse_str(channel_id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .map(|c| c.sources_status());
    let mut views = Vec::new();
    for role in ROLES {
        let stored = inputs.iter().find(|i| i.role == role);
        let engine: Option<&InputStatus> = live
            .as_ref()
            .and_then(|s| s.inputs.iter().find(|i| i.name == role));
        if stored.is_none() && engine.is_none_or(|e| !e.connected) {
            views.push(SourceStatusView {
                role: role.into(),
                protocol: String::new(),
                state: "not_configured".into(),
                connected: false,
                uptime_seconds: None,
                bitrate_bps: 0,
                fps: 0.0,
                last_media_age_ms: None,
                srt: None,
            });
            continue;
        }
        views.push(SourceStatusView {
            role: role.into(),
            protocol: stored.map(|s| s.protocol.clone()).unwrap_or_default(),
            state: engine.map(|e| state_name(e.state)).unwrap_or("lost").into(),
            connected: engine.is_some_and(|e| e.connected),
            uptime_seconds: engine.and_then(|e| e.uptime_seconds),
            bitrate_bps: engine.map(|e| e.bitrate_bps).unwrap_or(0),
            fps: engine.map(|e| (e.fps * 10.0).round() / 10.0).unwrap_or(0.0),
            last_media_age_ms: engine.and_then(|e| e.last_media_age_ms),
            srt: engine
                .and_then(|e| e.transport.as_ref())
                .filter(|t| t.protocol == "srt")
                .map(srt_view),
        });
    }
    Ok(SourcesStatusView {
        channel_id: channel_id.to_string(),
        redundancy_mode: config.redundancy_mode,
        active: live.as_ref().and_then(|s| s.active.clone()),
        switching_to: live.as_ref().and_then(|s| s.switching_to.clone()),
        switches: live.as_ref().map(|s| s.switches).unwrap_or(0),
        fill_since: live
            .as_ref()
            .and_then(|s| s.fill_since_ms)
            .map(|ms| rfc3339(ms as i64)),
        last_switch: live.and_then(|s| s.last_switch).map(|l| SwitchView {
            from: l.from,
            to: l.to,
            reason: l.reason.as_str().into(),
            at: rfc3339(l.at_ms as i64),
        }),
        inputs: views,
    })
}

/// Live state of the channel's inputs: which one is active, and each one's state, uptime,
/// bitrate, frame rate and SRT statistics.
#[utoipa::path(
    get, path = "/channels/{id}/sources/status", tag = "sources",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SourcesStatusView), (status = 404, body = crate::Problem))
)]
async fn status(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SourcesStatusView>> {
    who.require(Permission::ChannelsRead)?;
    let channel = visible_channel(&state, &who, &id).await?;
    Ok(axum::Json(status_view(&state, &channel.id).await?))
}

/// Switch the active input (any mode). When the active input is healthy the switch happens
/// on the next keyframe of the new one (`switching_to` until then), so outputs see no gap;
/// when it is lost, at once.
#[utoipa::path(
    post, path = "/channels/{id}/sources/switch", tag = "sources",
    params(("id" = String, Path)),
    request_body = SwitchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = SourcesStatusView),
        (status = 400, body = crate::Problem),
        (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem),
    )
)]
async fn switch(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<SwitchRequest>,
) -> ApiResult<axum::Json<SourcesStatusView>> {
    who.require(Permission::ChannelsWrite)?;
    let channel = visible_channel(&state, &who, &id).await?;
    if !ROLES.contains(&req.to.as_str()) {
        return Err(ApiError::invalid(
            "to",
            "to must be `primary` or `secondary`",
        ));
    }
    let live = Uuid::parse_str(&channel.id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .ok_or_else(|| {
            ApiError::conflict("the channel has no live input to switch").with_code("not_live")
        })?;
    live.switch_to(&req.to).map_err(|e| {
        let code = match e {
            SwitchError::NotConfigured(_) => "input_not_configured",
            SwitchError::NotConnected(_) => "input_not_connected",
            SwitchError::NotHealthy(_) => "input_not_healthy",
            SwitchError::ChannelClosed => "not_live",
        };
        ApiError::conflict(e.to_string()).with_code(code)
    })?;
    tracing::info!(channel = %channel.id, user = %who.user_id, to = %req.to, "manual source switch");
    Ok(axum::Json(status_view(&state, &channel.id).await?))
}

// ---- start-up, ingest authorization, event relay ----

/// Applies every stored configuration to the engine, starts caller inputs and the event relay.
/// `srt_port` is the bound SRT port, for publish URLs.
pub async fn start(state: &AppState, srt_port: u16) -> tokio::task::JoinHandle<()> {
    state.sources.srt_port.store(srt_port, Ordering::Relaxed);
    let mut channels: Vec<String> = match state.db.all_source_configs().await {
        Ok(c) => c.into_iter().map(|c| c.channel_id).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot load source configurations");
            Vec::new()
        }
    };
    match state.db.caller_inputs().await {
        Ok(inputs) => channels.extend(inputs.into_iter().map(|i| i.channel_id)),
        Err(e) => tracing::error!(error = %e, "cannot load SRT caller inputs"),
    }
    channels.sort();
    channels.dedup();
    for channel in channels {
        if let Err(e) = apply(state, &channel).await {
            tracing::error!(channel = %channel, error = %e, "cannot apply a source configuration");
        }
    }
    tokio::spawn(relay_events(state.clone()))
}

/// Switch events to the WebSocket, the running session's history and alerts.
async fn relay_events(state: AppState) {
    let mut events = state.engine.events();
    let mut orgs: HashMap<Uuid, String> = HashMap::new();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "source events relay fell behind");
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        };
        let id = event.channel();
        let org = match orgs.get(&id) {
            Some(o) => o.clone(),
            None => match state.db.channel_any_org(&id.to_string()).await {
                Ok(Some(c)) => {
                    orgs.insert(id, c.organization_id.clone());
                    c.organization_id
                }
                _ => continue,
            },
        };
        let topic = format!("channel:{id}");
        match event {
            ChannelEvent::Switched {
                from,
                to,
                reason,
                at_ms,
                ..
            } => {
                let from_name = from.clone().unwrap_or_else(|| "-".into());
                state.events.publish(
                    &org,
                    topic.clone(),
                    &crate::events::catalog::SourceFailoverEvent {
                        channel_id: id.to_string(),
                        from: from.clone(),
                        to: to.to_string(),
                        reason: reason.as_str().to_string(),
                        at: rfc3339(at_ms as i64),
                    },
                );
                let message = format!(
                    "input switched from {from_name} to {to}: {}",
                    reason.as_str()
                );
                let channel_id = id.to_string();
                if let Ok(page) = state
                    .db
                    .list_streaming_sessions(&org, Some(channel_id.as_str()), None, 1)
                    .await
                {
                    if let Some(s) = page.items.iter().find(|s| s.ended_at.is_none()) {
                        let _ = state
                            .db
                            .add_session_event(&s.id, None, "failover", &message)
                            .await;
                    }
                }
                let subject = topic.clone();
                match reason {
                    lunora_media::SwitchReason::PrimaryRestored => {
                        let _ =
                            crate::alerts::clear(&state, &org, "source_failover", &subject).await;
                    }
                    lunora_media::SwitchReason::Manual => {}
                    _ => {
                        let _ = crate::alerts::raise(
                            &state,
                            &org,
                            "source_failover",
                            "warning",
                            &subject,
                            message.clone(),
                        )
                        .await;
                    }
                }
            }
            ChannelEvent::InputState {
                input,
                state: s,
                at_ms,
                ..
            } => state.events.publish(
                &org,
                topic,
                &crate::events::catalog::SourceStateEvent {
                    channel_id: id.to_string(),
                    input: input.to_string(),
                    state: state_name(s).to_string(),
                    at: rfc3339(at_ms as i64),
                },
            ),
            ChannelEvent::Fill {
                state: fill, at_ms, ..
            } => {
                state.events.publish(
                    &org,
                    topic.clone(),
                    &crate::events::catalog::SourceFillEvent {
                        channel_id: id.to_string(),
                        state: fill.as_str().to_string(),
                        at: rfc3339(at_ms as i64),
                    },
                );
                let channel_id = id.to_string();
                let message = match fill {
                    FillState::Started => {
                        "no input is healthy: the destinations get the fill signal"
                    }
                    FillState::Ended => "an input is live again: the fill signal ended",
                    FillState::Expired => {
                        "no input came back within the fill hold: streaming stopped"
                    }
                };
                if let Ok(page) = state
                    .db
                    .list_streaming_sessions(&org, Some(channel_id.as_str()), None, 1)
                    .await
                {
                    if let Some(s) = page.items.iter().find(|s| s.ended_at.is_none()) {
                        let _ = state
                            .db
                            .add_session_event(&s.id, None, "fill", message)
                            .await;
                    }
                }
                if fill == FillState::Expired {
                    state
                        .streaming
                        .stop_channel(&state, &org, &channel_id, "no_input")
                        .await;
                }
            }
        }
    }
}

/// The authorizer of the ingest servers: `inner` (the database authorizer, possibly wrapped)
/// decides RTMP publish and play and gets every ingest event; SRT publishers are judged here by
/// the publish key in their stream id, with the input's passphrase.
pub fn authorizer(state: &AppState, inner: Arc<dyn Authorizer>) -> Arc<dyn Authorizer> {
    Arc::new(SourcesAuthorizer {
        inner,
        db: state.db.clone(),
        secrets: state.secrets.clone(),
    })
}

struct SourcesAuthorizer {
    inner: Arc<dyn Authorizer>,
    db: Db,
    secrets: SecretBox,
}

impl Authorizer for SourcesAuthorizer {
    fn authorize_publish(&self, req: PublishRequest) -> AuthFuture<Result<PublishGrant, Denied>> {
        self.inner.authorize_publish(req)
    }

    fn authorize_play(&self, req: PlayRequest) -> AuthFuture<Result<Uuid, Denied>> {
        self.inner.authorize_play(req)
    }

    fn event(&self, event: IngestEvent) {
        self.inner.event(event)
    }

    fn authorize_srt_publish(
        &self,
        req: SrtPublishRequest,
    ) -> AuthFuture<Result<SrtGrant, Denied>> {
        let db = self.db.clone();
        let secrets = self.secrets.clone();
        Box::pin(async move {
            let found = db
                .source_input_by_publish_key(&req.key)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "stream key lookup failed");
                    Denied("the server cannot check stream keys right now".into())
                })?;
            let Some((input, _org)) = found else {
                tracing::warn!(
                    peer = %req.peer,
                    key_last4 = %lunora_store::crypto::last4(&req.key),
                    "SRT publish refused: unknown stream id"
                );
                return Err(Denied("the stream id is not a valid publish key".into()));
            };
            if !input.enabled {
                return Err(Denied("this input is disabled".into()));
            }
            let channel_id = Uuid::parse_str(&input.channel_id)
                .map_err(|_| Denied("the channel id is malformed".into()))?;
            let passphrase = match &input.passphrase_sealed {
                Some(sealed) => Some(secrets.open(sealed).map_err(|_| {
                    tracing::error!(channel = %channel_id, "an input passphrase cannot be opened");
                    Denied("the input's passphrase is not readable".into())
                })?),
                None => None,
            };
            Ok(SrtGrant {
                grant: PublishGrant {
                    channel_id,
                    input: input.role,
                },
                passphrase,
            })
        })
    }
}
