//! `/api/v1/health/...`: the state of each component, 200 when all are healthy, 503 otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overall))
        .routes(routes!(engine))
        .routes(routes!(sources))
        .routes(routes!(destinations))
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// One component's state with the figures behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentHealth {
    pub status: HealthStatus,
    /// Why the component is not healthy, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Component-specific figures (latency, free bytes, channel counts).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub figures: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverallHealth {
    /// The worst status of any component.
    pub status: HealthStatus,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub components: BTreeMap<&'static str, ComponentHealth>,
}

/// Health of the whole server: database, disk space of the data dir and the media engine.
#[utoipa::path(
    get,
    path = "/health/overall",
    tag = "health",
    responses(
        (status = 200, description = "Every component is healthy or degraded", body = OverallHealth),
        (status = 503, description = "At least one component is unhealthy", body = OverallHealth),
    )
)]
async fn overall(State(state): State<AppState>) -> Response {
    let mut components = BTreeMap::new();
    components.insert("database", database(&state).await);
    components.insert(
        "disk",
        disk(&state.config.data_dir, state.config.disk_min_free_bytes),
    );
    components.insert("media_engine", media_engine(&state));
    let status = components
        .values()
        .map(|c| c.status)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    let body = OverallHealth {
        status,
        version: crate::VERSION,
        uptime_seconds: state.started_at.elapsed().as_secs(),
        components,
    };
    let code = if status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(body)).into_response()
}

fn figures(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn database(state: &AppState) -> ComponentHealth {
    let backend = serde_json::Value::from(state.db.backend().name());
    let ping = tokio::time::timeout(std::time::Duration::from_secs(3), state.db.ping()).await;
    match ping {
        Ok(Ok(latency)) => ComponentHealth {
            status: HealthStatus::Healthy,
            detail: None,
            figures: figures(&[
                ("backend", backend),
                ("latency_ms", (latency.as_secs_f64() * 1000.0).into()),
            ]),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database health check failed");
            ComponentHealth {
                status: HealthStatus::Unhealthy,
                detail: Some("the database did not answer a query".into()),
                figures: figures(&[("backend", backend)]),
            }
        }
        Err(_) => ComponentHealth {
            status: HealthStatus::Unhealthy,
            detail: Some("the database did not answer within 3 s".into()),
            figures: figures(&[("backend", backend)]),
        },
    }
}

/// Free and total bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> std::io::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let frsize = st.fragment_size() as u64;
    Ok((
        st.blocks_available() as u64 * frsize,
        st.blocks() as u64 * frsize,
    ))
}

fn disk(data_dir: &Path, min_free: u64) -> ComponentHealth {
    match disk_space(data_dir) {
        Ok((free, total)) => {
            metrics::gauge!("lunora_data_dir_free_bytes").set(free as f64);
            metrics::gauge!("lunora_data_dir_total_bytes").set(total as f64);
            let (status, detail) = if free < min_free {
                (
                    HealthStatus::Unhealthy,
                    Some(format!(
                        "only {} MiB free in the data dir, below the {} MiB minimum",
                        free / (1024 * 1024),
                        min_free / (1024 * 1024)
                    )),
                )
            } else if free < min_free.saturating_mul(2) {
                (
                    HealthStatus::Degraded,
                    Some("free space in the data dir is running low".into()),
                )
            } else {
                (HealthStatus::Healthy, None)
            };
            ComponentHealth {
                status,
                detail,
                figures: figures(&[
                    ("free_bytes", free.into()),
                    ("total_bytes", total.into()),
                    ("min_free_bytes", min_free.into()),
                ]),
            }
        }
        Err(e) => ComponentHealth {
            status: HealthStatus::Unhealthy,
            detail: Some(format!("cannot read the data dir's filesystem: {e}")),
            figures: serde_json::Map::new(),
        },
    }
}

fn media_engine(state: &AppState) -> ComponentHealth {
    let h = state.engine.health();
    ComponentHealth {
        status: if h.running {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        },
        detail: (!h.running).then(|| "the media engine is stopped".to_string()),
        figures: figures(&[
            ("channels", (h.channels as u64).into()),
            ("live_channels", (h.live_channels as u64).into()),
        ]),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EngineReport {
    pub status: HealthStatus,
    pub running: bool,
    pub channels: usize,
    pub live_channels: usize,
    /// Subscribers (players, destinations, packagers) over all channels.
    pub subscribers: usize,
    /// Ingest bitrate over all channels.
    pub ingest_bitrate_bps: u64,
    pub uptime_seconds: u64,
}

/// The media engine: channels open and live, subscribers, ingest bitrate.
#[utoipa::path(
    get, path = "/health/engine", tag = "health",
    security(("bearer" = [])),
    responses((status = 200, body = EngineReport), (status = 503, body = EngineReport))
)]
async fn engine(State(state): State<AppState>, _who: crate::auth::Principal) -> Response {
    let h = state.engine.health();
    let statuses: Vec<_> = state.engine.channels().iter().map(|c| c.status()).collect();
    let report = EngineReport {
        status: if h.running {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        },
        running: h.running,
        channels: h.channels,
        live_channels: h.live_channels,
        subscribers: statuses.iter().map(|s| s.subscribers).sum(),
        ingest_bitrate_bps: statuses.iter().map(|s| s.bitrate_bps).sum(),
        uptime_seconds: state.started_at.elapsed().as_secs(),
    };
    let code = if h.running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(report)).into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceHealth {
    pub channel_id: String,
    pub name: String,
    /// The engine's view of the channel's input (state, active input, bitrate, fps, codecs).
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourcesReport {
    /// `healthy` when every channel that is streaming has a live input.
    pub status: HealthStatus,
    pub channels: Vec<SourceHealth>,
}

/// Inputs of the organization's channels that are open in the engine.
#[utoipa::path(
    get, path = "/health/sources", tag = "health",
    security(("bearer" = [])),
    responses((status = 200, body = SourcesReport))
)]
async fn sources(
    State(state): State<AppState>,
    who: crate::auth::Principal,
) -> crate::ApiResult<axum::Json<SourcesReport>> {
    let streaming: std::collections::HashSet<String> = state
        .streaming
        .snapshot()
        .await
        .into_iter()
        .map(|(channel, ..)| channel)
        .collect();
    let mut channels = Vec::new();
    let mut status = HealthStatus::Healthy;
    for c in state.engine.channels() {
        let id = c.id().to_string();
        let Some(row) = state.db.channel(&who.organization_id, &id).await? else {
            continue;
        };
        let st = c.status();
        if streaming.contains(&id) && st.input_state != lunora_media::InputState::Live {
            status = HealthStatus::Unhealthy;
        }
        channels.push(SourceHealth {
            channel_id: id,
            name: row.name,
            input: serde_json::to_value(st).unwrap_or_default(),
        });
    }
    Ok(axum::Json(SourcesReport { status, channels }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationHealth {
    pub channel_id: String,
    pub destination_id: String,
    pub platform: String,
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationsReport {
    /// `healthy` when every pushing destination is live, `degraded` when some retry,
    /// `unhealthy` when one failed.
    pub status: HealthStatus,
    /// Count of destinations by state.
    pub by_state: BTreeMap<String, usize>,
    pub destinations: Vec<DestinationHealth>,
}

/// Destinations being pushed for the organization, by state, with their last errors.
#[utoipa::path(
    get, path = "/health/destinations", tag = "health",
    security(("bearer" = [])),
    responses((status = 200, body = DestinationsReport))
)]
async fn destinations(
    State(state): State<AppState>,
    who: crate::auth::Principal,
) -> crate::ApiResult<axum::Json<DestinationsReport>> {
    let mut out = Vec::new();
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    let mut status = HealthStatus::Healthy;
    for (channel_id, destination_id, platform, s) in state.streaming.snapshot().await {
        if state
            .db
            .destination(&who.organization_id, &destination_id)
            .await?
            .is_none()
        {
            continue;
        }
        let name = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        status = status.max(match s.state {
            lunora_media::push::PushState::Failed => HealthStatus::Unhealthy,
            lunora_media::push::PushState::Retrying | lunora_media::push::PushState::Connecting => {
                HealthStatus::Degraded
            }
            _ => HealthStatus::Healthy,
        });
        *by_state.entry(name).or_default() += 1;
        out.push(DestinationHealth {
            channel_id,
            destination_id,
            platform,
            status: serde_json::to_value(&s).unwrap_or_default(),
        });
    }
    Ok(axum::Json(DestinationsReport {
        status,
        by_state,
        destinations: out,
    }))
}
