//! A channel's HLS ladder (seed 001 "Multi-Bitrate Streaming"): which renditions the live HLS
//! carries besides `source`, at `GET|PUT /api/v1/channels/{id}/hls`.
//!
//! A rung is a height shorthand — `1080p` (YouTube HD, 6 Mbps), `720p` (LinkedIn Mobile,
//! 2 Mbps), `480p` (Low Bandwidth, 1 Mbps) — or any built-in preset id
//! (`builtin-x-720p30`). Rungs are encoded by the same machinery as destinations' presets, so
//! a rung and a destination with the same encoding share one FFmpeg. The default ladder is
//! `1080p, 720p, 480p`; `[]` is source only (for small machines). The engine leaves out every
//! rung as tall as the live input or taller (never upscale; a rung as tall as the input would
//! re-encode what `source` already carries). Stored in `channels.hls_ladder` (JSON; NULL is
//! the default) and applied to a live channel at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use lunora_media::hls::{rung_name, LadderFuture, LadderSource};
use lunora_store::Db;
use lunora_transcode::{builtin_preset, Preset};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::AppState;

/// The ladder of a channel that has none set.
pub const DEFAULT_LADDER: [&str; 3] = ["1080p", "720p", "480p"];

/// At most this many rungs (one per height: 480p, 720p, 1080p, 1440p, 2160p).
pub const MAX_RUNGS: usize = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_hls, put_hls))
}

/// The preset a rung names: a height shorthand or a built-in preset id.
pub fn rung_preset(rung: &str) -> Option<Preset> {
    let id = match rung {
        "1080p" => "builtin-youtube-1080p30",
        "720p" => "builtin-linkedin-720p30",
        "480p" => "builtin-custom-480p30",
        other => other,
    };
    builtin_preset(id)
}

/// The stored ladder, or the default when none is set (or it cannot be read).
fn stored_rungs(stored: Option<&str>) -> (Vec<String>, bool) {
    match stored.map(serde_json::from_str::<Vec<String>>) {
        Some(Ok(rungs)) => (rungs, false),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "unreadable stored HLS ladder: using the default");
            (default_rungs(), true)
        }
        None => (default_rungs(), true),
    }
}

fn default_rungs() -> Vec<String> {
    DEFAULT_LADDER.iter().map(|s| s.to_string()).collect()
}

/// Checks a ladder: every rung known, one per height, at most [`MAX_RUNGS`]. Errors name the
/// rung (`ladder[1]`).
pub fn validate_ladder(rungs: &[String]) -> ApiResult<Vec<Preset>> {
    if rungs.len() > MAX_RUNGS {
        return Err(ApiError::invalid(
            "ladder",
            format!(
                "ladder has {} rungs; at most {MAX_RUNGS} (one per height)",
                rungs.len()
            ),
        ));
    }
    let mut presets: Vec<Preset> = Vec::with_capacity(rungs.len());
    for (i, rung) in rungs.iter().enumerate() {
        let field = format!("ladder[{i}]");
        let preset = rung_preset(rung).ok_or_else(|| {
            ApiError::invalid(
                &field,
                format!(
                    "{field}: unknown rung {rung:?}; use 1080p, 720p, 480p or a built-in preset id \
                     (GET /api/v1/presets)"
                ),
            )
        })?;
        if let Some(other) = presets
            .iter()
            .position(|p| p.video.height == preset.video.height)
        {
            return Err(ApiError::invalid(
                &field,
                format!(
                    "{field}: {rung:?} is {}p like ladder[{other}]; one rung per height",
                    preset.video.height
                ),
            ));
        }
        presets.push(preset);
    }
    Ok(presets)
}

/// The ladder setting and what it makes.
#[derive(Debug, Serialize, ToSchema)]
pub struct HlsSettingsView {
    /// Rungs besides `source`: `1080p`, `720p`, `480p` or built-in preset ids.
    pub ladder: Vec<String>,
    /// Whether this is the default ladder (the channel has none set).
    pub default: bool,
    /// What each rung encodes.
    pub renditions: Vec<RungView>,
    /// Renditions of the live HLS now (`source` first; empty when not live). Rungs as tall as
    /// the input or taller are left out, and a rung whose encode failed is dropped.
    pub live_renditions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RungView {
    /// The rung as set.
    pub rung: String,
    /// Its rendition's name in HLS URLs (`/hls/{channel}/{rendition}/media.m3u8`).
    pub rendition: String,
    pub preset_id: String,
    pub preset_name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_kbps: u32,
}

/// The new setting.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HlsSettingsRequest {
    /// Rungs besides `source` (`1080p`, `720p`, `480p` or built-in preset ids), one per
    /// height, at most 5; `[]` for source only; `null` or absent for the default
    /// (`1080p, 720p, 480p`).
    #[serde(default)]
    pub ladder: Option<Vec<String>>,
}

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

fn view(state: &AppState, channel_id: &str, rungs: Vec<String>, default: bool) -> HlsSettingsView {
    let renditions = rungs
        .iter()
        .filter_map(|rung| {
            let p = rung_preset(rung)?;
            Some(RungView {
                rung: rung.clone(),
                rendition: rung_name(&p),
                preset_id: p.id.clone(),
                preset_name: p.name.clone(),
                width: p.video.width,
                height: p.video.height,
                fps: p.video.fps,
                video_bitrate_kbps: p.video.bitrate_kbps,
                audio_bitrate_kbps: p.audio.bitrate_kbps,
            })
        })
        .collect();
    let live_renditions = Uuid::parse_str(channel_id)
        .ok()
        .and_then(|id| state.hls.hls.stream(id))
        .map(|s| {
            s.renditions()
                .iter()
                .map(|r| r.name().to_string())
                .collect()
        })
        .unwrap_or_default();
    HlsSettingsView {
        ladder: rungs,
        default,
        renditions,
        live_renditions,
    }
}

/// The channel's HLS ladder.
#[utoipa::path(
    get, path = "/channels/{id}/hls", tag = "channels",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = HlsSettingsView), (status = 404, body = crate::Problem))
)]
async fn get_hls(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HlsSettingsView>> {
    who.require(Permission::ChannelsRead)?;
    let channel = visible_channel(&state, &who, &id).await?;
    let stored = state.db.channel_hls_ladder(&channel.id).await?;
    let (rungs, default) = stored_rungs(stored.as_deref());
    Ok(axum::Json(view(&state, &channel.id, rungs, default)))
}

/// Set the channel's HLS ladder: rungs besides `source`, `[]` for source only, `null` for the
/// default. A live channel's HLS starts and stops rungs at once.
#[utoipa::path(
    put, path = "/channels/{id}/hls", tag = "channels",
    params(("id" = String, Path)),
    request_body = HlsSettingsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = HlsSettingsView),
        (status = 400, body = crate::Problem),
        (status = 404, body = crate::Problem),
    )
)]
async fn put_hls(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<HlsSettingsRequest>,
) -> ApiResult<axum::Json<HlsSettingsView>> {
    who.require(Permission::ChannelsWrite)?;
    let channel = visible_channel(&state, &who, &id).await?;
    if let Some(rungs) = &req.ladder {
        validate_ladder(rungs)?;
    }
    let stored = match &req.ladder {
        Some(rungs) => Some(serde_json::to_string(rungs).map_err(ApiError::internal)?),
        None => None,
    };
    state
        .db
        .set_channel_hls_ladder(&who.organization_id, &channel.id, stored.as_deref())
        .await?;
    if let Ok(uuid) = Uuid::parse_str(&channel.id) {
        state.hls.hls.ladder_changed(uuid);
    }
    let (rungs, default) = match req.ladder {
        Some(rungs) => (rungs, false),
        None => (default_rungs(), true),
    };
    Ok(axum::Json(view(&state, &channel.id, rungs, default)))
}

/// The stored ladders, for the HLS packager.
pub struct DbLadders {
    db: Db,
}

impl DbLadders {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(DbLadders { db })
    }
}

impl LadderSource for DbLadders {
    fn ladder(&self, channel_id: Uuid) -> LadderFuture {
        let db = self.db.clone();
        Box::pin(async move {
            let stored = match db.channel_hls_ladder(&channel_id.to_string()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(channel = %channel_id, error = %e, "HLS ladder not read: using the default");
                    None
                }
            };
            let (rungs, _) = stored_rungs(stored.as_deref());
            // Stored ladders were validated; an entry no longer known is skipped.
            rungs.iter().filter_map(|r| rung_preset(r)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders_are_validated_by_rung() {
        assert_eq!(
            validate_ladder(&default_rungs()).map(|p| p.len()).ok(),
            Some(3)
        );
        assert_eq!(validate_ladder(&[]).map(|p| p.len()).ok(), Some(0));
        let ok = vec!["builtin-x-720p30".to_string(), "480p".to_string()];
        assert!(validate_ladder(&ok).is_ok());
        let bad = vec!["480p".to_string(), "360p".to_string()];
        assert!(validate_ladder(&bad).is_err());
        let twice = vec!["720p".to_string(), "builtin-x-720p30".to_string()];
        assert!(validate_ladder(&twice).is_err());
        assert_eq!(
            rung_preset("480p").map(|p| (p.video.width, p.video.height)),
            Some((854, 480))
        );
        assert_eq!(stored_rungs(Some("[]")), (vec![], false));
        assert_eq!(stored_rungs(None), (default_rungs(), true));
    }
}
