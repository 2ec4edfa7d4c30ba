//! `/api/v1/presets`: encoding presets (seed 000 "Platform-Specific Streaming Presets",
//! "Preset Management", "Preset Management Interface").
//!
//! Built-in presets come from `lunora-transcode` with the seed's values; they are listed
//! with `builtin: true`, read-only (changing or deleting one answers 403
//! `builtin_preset_read_only`) and clonable. Custom presets belong to an organization and
//! are validated against the seed's ranges: a 400 names the field at fault (`video.fps`)
//! and the allowed range. Presets export to and import from a JSON document; an import
//! answers a report line per preset.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::{PresetSettings, StoredPreset};
use lunora_transcode::{
    builtin_preset, builtin_presets, AudioCodec, InvalidPreset, Platform, Preset, Profile,
    RateControl, Speed, VideoCodec,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, Json};
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_presets, create_preset))
        .routes(routes!(export_presets))
        .routes(routes!(import_presets))
        .routes(routes!(platform_presets))
        .routes(routes!(get_preset, update_preset, delete_preset))
        .routes(routes!(clone_preset))
}

/// The `format` of an export document.
const EXPORT_FORMAT: &str = "lunora-presets";
/// Most presets one import may carry.
const MAX_IMPORT: usize = 500;
/// Fields of a preset answer that a request may carry back (they are ignored): a preset
/// read with GET or exported can be sent to PUT or import unchanged.
const VIEW_ONLY: [&str; 9] = [
    "id",
    "builtin",
    "encoding_key",
    "summary",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "organization_id",
];

/// Video settings (documentation of the JSON shape).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VideoSettingsDoc {
    /// `h264` or `h265`.
    codec: String,
    /// `baseline`, `main` or `high` (`main` only for H.265; `baseline` has no B-frames).
    profile: String,
    /// 16:9 width for the height: 1280, 1920, 2560 or 3840 (854 with `allow_480p`).
    width: u32,
    /// 720, 1080, 1440 or 2160 (480 with `allow_480p`).
    height: u32,
    /// 24, 30 or 60.
    fps: u32,
    /// 1000–10000 kbps; at 2160p up to 20000.
    bitrate_kbps: u32,
    /// 1–4 seconds.
    keyframe_interval_s: u32,
    /// 0–4.
    b_frames: u32,
    /// `cbr` or `vbr`.
    rate_control: String,
    /// Half to four times the bitrate; absent for twice the bitrate.
    buffer_kbps: Option<u32>,
    /// x264/x265 speed: `ultrafast` … `veryslow` (default `veryfast`).
    speed: Option<String>,
}

/// Audio settings (documentation of the JSON shape).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AudioSettingsDoc {
    /// `aac` or `mp3`.
    codec: String,
    /// 64–320 kbps.
    bitrate_kbps: u32,
    /// 44100 or 48000.
    sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    channels: u8,
}

/// A preset to create or store (documentation of the JSON shape). Fields of a preset
/// answer (`id`, `builtin`, `version`, …) may be sent back and are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PresetInput {
    /// 1–100 characters, unique in the organization.
    name: String,
    /// `youtube`, `x`, `linkedin` or `custom`.
    platform: String,
    /// Admit 854x480 (below the seed's 720p floor).
    allow_480p: Option<bool>,
    video: VideoSettingsDoc,
    audio: AudioSettingsDoc,
}

/// A preset as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresetView {
    /// `builtin-…` for built-ins, a UUID for custom presets.
    pub id: String,
    pub name: String,
    /// `youtube`, `x`, `linkedin` or `custom`.
    pub platform: String,
    /// Shipped with Lunora: read-only, clone it to change it.
    pub builtin: bool,
    pub allow_480p: bool,
    #[schema(value_type = VideoSettingsDoc)]
    pub video: Value,
    #[schema(value_type = AudioSettingsDoc)]
    pub audio: Value,
    /// What the encoder produces; presets with the same key share one encode.
    pub encoding_key: String,
    /// The preset screen's line, e.g. `1080p30, 6 Mbps`.
    pub summary: String,
    /// Custom presets: the version for `If-Match`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// "1080p30, 6 Mbps", "720p30, 2.5 Mbps", "480p30, 1 Mbps".
fn summary(p: &Preset) -> String {
    let v = &p.video;
    let mbps = f64::from(v.bitrate_kbps) / 1000.0;
    format!("{}p{}, {} Mbps", v.height, v.fps, mbps)
}

fn view(p: &Preset, stored: Option<&StoredPreset>) -> PresetView {
    PresetView {
        id: p.id.clone(),
        name: p.name.clone(),
        platform: p.platform.to_string(),
        builtin: p.builtin,
        allow_480p: p.allow_480p,
        video: serde_json::to_value(&p.video).unwrap_or(Value::Null),
        audio: serde_json::to_value(&p.audio).unwrap_or(Value::Null),
        encoding_key: p.encoding_key().to_string(),
        summary: summary(p),
        version: stored.map(|s| s.version),
        created_at: stored.map(|s| rfc3339(s.created_at)),
        updated_at: stored.map(|s| rfc3339(s.updated_at)),
    }
}

/// The stored columns of a preset.
fn settings(p: &Preset) -> PresetSettings {
    let v = &p.video;
    let a = &p.audio;
    PresetSettings {
        name: p.name.trim().to_string(),
        platform: p.platform.to_string(),
        allow_480p: p.allow_480p,
        video_codec: v.codec.to_string(),
        video_profile: v.profile.to_string(),
        width: i64::from(v.width),
        height: i64::from(v.height),
        fps: i64::from(v.fps),
        video_bitrate_kbps: i64::from(v.bitrate_kbps),
        keyframe_interval_s: i64::from(v.keyframe_interval_s),
        b_frames: i64::from(v.b_frames),
        rate_control: v.rate_control.to_string(),
        buffer_kbps: v.buffer_kbps.map(i64::from),
        speed: v.speed.to_string(),
        audio_codec: a.codec.to_string(),
        audio_bitrate_kbps: i64::from(a.bitrate_kbps),
        sample_rate: i64::from(a.sample_rate),
        channels: i64::from(a.channels),
    }
}

/// A stored preset back to a [`Preset`]; a row this binary cannot read is a 500 (logged).
fn from_stored(s: &StoredPreset) -> ApiResult<Preset> {
    fn parse<T: std::str::FromStr>(what: &str, v: &str) -> ApiResult<T> {
        v.parse()
            .map_err(|_| ApiError::internal(format!("stored preset has {what} {v:?}")))
    }
    fn num<T: TryFrom<i64>>(what: &str, v: i64) -> ApiResult<T> {
        T::try_from(v).map_err(|_| ApiError::internal(format!("stored preset has {what} {v}")))
    }
    let c = &s.settings;
    Ok(Preset {
        id: s.id.clone(),
        name: c.name.clone(),
        platform: parse::<Platform>("platform", &c.platform)?,
        builtin: false,
        allow_480p: c.allow_480p,
        video: lunora_transcode::VideoSettings {
            codec: parse::<VideoCodec>("video codec", &c.video_codec)?,
            profile: parse::<Profile>("profile", &c.video_profile)?,
            width: num("width", c.width)?,
            height: num("height", c.height)?,
            fps: num("fps", c.fps)?,
            bitrate_kbps: num("video bitrate", c.video_bitrate_kbps)?,
            keyframe_interval_s: num("keyframe interval", c.keyframe_interval_s)?,
            b_frames: num("b-frames", c.b_frames)?,
            rate_control: parse::<RateControl>("rate control", &c.rate_control)?,
            buffer_kbps: c.buffer_kbps.map(|b| num("buffer", b)).transpose()?,
            speed: parse::<Speed>("speed", &c.speed)?,
        },
        audio: lunora_transcode::AudioSettings {
            codec: parse::<AudioCodec>("audio codec", &c.audio_codec)?,
            bitrate_kbps: num("audio bitrate", c.audio_bitrate_kbps)?,
            sample_rate: num("sample rate", c.sample_rate)?,
            channels: num("channels", c.channels)?,
        },
    })
}

/// 400 naming the first failing field; the detail lists every failing field with its range.
fn invalid(e: &InvalidPreset) -> ApiError {
    let field = e.errors.first().map(|f| f.field).unwrap_or("preset");
    ApiError::invalid(field, e.to_string())
}

/// Parses and validates a preset from a request: view-only fields are ignored, unknown
/// fields and values are refused naming their path, ranges are checked.
pub(crate) fn preset_from_json(mut value: Value, id: &str) -> ApiResult<Preset> {
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::invalid("preset", "a preset is a JSON object"));
    };
    for key in VIEW_ONLY {
        obj.remove(key);
    }
    obj.insert("id".into(), json!(id));
    obj.insert("builtin".into(), json!(false));
    match Preset::from_json(value.clone()) {
        Ok(p) => Ok(p),
        Err(e) if e.fields() == ["preset"] => {
            // Structural: a missing or unknown field, a wrong type. Name its path.
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            Err(parse_json::<Preset>(&bytes)
                .err()
                .unwrap_or_else(|| invalid(&e)))
        }
        Err(e) => Err(invalid(&e)),
    }
}

/// The preset `id` as the organization sees it: a built-in or one of its own.
pub(crate) async fn resolve(
    state: &AppState,
    organization_id: &str,
    id: &str,
) -> ApiResult<Option<Preset>> {
    if let Some(p) = builtin_preset(id) {
        return Ok(Some(p));
    }
    match state.db.preset(organization_id, id).await? {
        Some(s) => Ok(Some(from_stored(&s)?)),
        None => Ok(None),
    }
}

fn read_only(p: &Preset) -> ApiError {
    ApiError::forbidden(format!(
        "`{}` is a built-in preset and cannot be changed or deleted; clone it and change the copy",
        p.name
    ))
    .with_code("builtin_preset_read_only")
}

fn not_found() -> ApiError {
    ApiError::not_found("no such preset")
}

fn created(p: &Preset, stored: &StoredPreset) -> Response {
    let mut res = (StatusCode::CREATED, axum::Json(view(p, Some(stored)))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/presets/{}", p.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    crate::util::with_etag(res, stored.version)
}

fn parse_platform(s: &str, field: &str) -> ApiResult<Platform> {
    s.parse().map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be youtube, x, linkedin or custom (got {s:?})"),
        )
    })
}

/// Built-ins (in the seed's order) then the organization's, optionally of one platform.
async fn all_presets(
    state: &AppState,
    organization_id: &str,
    platform: Option<Platform>,
) -> ApiResult<Vec<(Preset, Option<StoredPreset>)>> {
    let mut out: Vec<(Preset, Option<StoredPreset>)> = builtin_presets()
        .into_iter()
        .filter(|p| platform.is_none_or(|want| p.platform == want))
        .map(|p| (p, None))
        .collect();
    let platform_name = platform.map(|p| p.to_string());
    for s in state
        .db
        .list_presets(organization_id, platform_name.as_deref())
        .await?
    {
        out.push((from_stored(&s)?, Some(s)));
    }
    Ok(out)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only presets for this platform.
    pub platform: Option<String>,
    /// `builtin` or `custom`.
    pub kind: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresetList {
    pub items: Vec<PresetView>,
    pub next_cursor: Option<String>,
}

/// List presets: the built-in platform presets, then the organization's custom ones.
#[utoipa::path(
    get, path = "/presets", tag = "presets",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = PresetList), (status = 400, body = crate::Problem))
)]
async fn list_presets(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<PresetList>> {
    who.require(Permission::ChannelsRead)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–500"));
    }
    let builtin = match q.kind.as_deref() {
        None => None,
        Some("builtin") => Some(true),
        Some("custom") => Some(false),
        Some(_) => return Err(ApiError::invalid("kind", "kind must be builtin or custom")),
    };
    let platform = q
        .platform
        .as_deref()
        .map(|p| parse_platform(p, "platform"))
        .transpose()?;
    let all: Vec<_> = all_presets(&state, &who.organization_id, platform)
        .await?
        .into_iter()
        .filter(|(p, _)| builtin.is_none_or(|b| p.builtin == b))
        .collect();
    let start = match &q.cursor {
        Some(c) => all
            .iter()
            .position(|(p, _)| &p.id == c)
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::invalid("cursor", "unknown cursor"))?,
        None => 0,
    };
    let page: Vec<_> = all.iter().skip(start).take(limit as usize).collect();
    let next_cursor = if start + page.len() < all.len() {
        page.last().map(|(p, _)| p.id.clone())
    } else {
        None
    };
    Ok(axum::Json(PresetList {
        items: page.iter().map(|(p, s)| view(p, s.as_ref())).collect(),
        next_cursor,
    }))
}

/// Presets for one platform (`youtube`, `x`, `linkedin`, `custom`): built-ins first.
#[utoipa::path(
    get, path = "/presets/platform/{platform}", tag = "presets",
    params(("platform" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PresetList), (status = 400, body = crate::Problem))
)]
async fn platform_presets(
    State(state): State<AppState>,
    who: Principal,
    Path(platform): Path<String>,
) -> ApiResult<axum::Json<PresetList>> {
    who.require(Permission::ChannelsRead)?;
    let platform = parse_platform(&platform, "platform")?;
    let all = all_presets(&state, &who.organization_id, Some(platform)).await?;
    Ok(axum::Json(PresetList {
        items: all.iter().map(|(p, s)| view(p, s.as_ref())).collect(),
        next_cursor: None,
    }))
}

/// Create a custom preset.
#[utoipa::path(
    post, path = "/presets", tag = "presets",
    request_body = PresetInput,
    security(("bearer" = [])),
    responses((status = 201, body = PresetView), (status = 400, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn create_preset(
    State(state): State<AppState>,
    who: Principal,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    who.require(Permission::PresetsManage)?;
    let mut preset = preset_from_json(body, "new")?;
    let stored = state
        .db
        .create_preset(&who.organization_id, Some(&who.user_id), &settings(&preset))
        .await
        .map_err(name_conflict)?;
    preset.id = stored.id.clone();
    preset.name = stored.settings.name.clone();
    tracing::info!(preset = %preset.id, user = %who.user_id, "preset created");
    Ok(created(&preset, &stored))
}

fn name_conflict(e: lunora_store::StoreError) -> ApiError {
    match e {
        lunora_store::StoreError::Conflict(d) if d.contains("name") => ApiError::conflict(d)
            .with_field("name")
            .with_code("name_taken"),
        other => other.into(),
    }
}

/// One preset.
#[utoipa::path(
    get, path = "/presets/{id}", tag = "presets",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PresetView), (status = 404, body = crate::Problem))
)]
async fn get_preset(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    if let Some(p) = builtin_preset(&id) {
        return Ok(axum::Json(view(&p, None)).into_response());
    }
    let stored = state
        .db
        .preset(&who.organization_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let p = from_stored(&stored)?;
    Ok(crate::util::with_etag(
        axum::Json(view(&p, Some(&stored))).into_response(),
        stored.version,
    ))
}

/// Replace a custom preset's settings (`If-Match` refuses a lost update with 412).
/// Destinations streaming with it keep their encode until they restart.
#[utoipa::path(
    put, path = "/presets/{id}", tag = "presets",
    params(("id" = String, Path)),
    request_body = PresetInput,
    security(("bearer" = [])),
    responses((status = 200, body = PresetView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem), (status = 412, body = crate::Problem))
)]
async fn update_preset(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    who.require(Permission::PresetsManage)?;
    if let Some(p) = builtin_preset(&id) {
        return Err(read_only(&p));
    }
    let current = state
        .db
        .preset(&who.organization_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let expected = crate::util::if_match(&headers, current.version, "preset")?;
    let preset = preset_from_json(body, &id)?;
    let stored = state
        .db
        .update_preset(&who.organization_id, &id, &settings(&preset), expected)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::Conflict(d) if d.contains("someone else") => {
                crate::util::precondition_failed("preset")
            }
            other => name_conflict(other),
        })?;
    let p = from_stored(&stored)?;
    Ok(crate::util::with_etag(
        axum::Json(view(&p, Some(&stored))).into_response(),
        stored.version,
    ))
}

/// Delete a custom preset. One that destinations use is refused (409 `preset_in_use`).
#[utoipa::path(
    delete, path = "/presets/{id}", tag = "presets",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn delete_preset(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::PresetsManage)?;
    if let Some(p) = builtin_preset(&id) {
        return Err(read_only(&p));
    }
    state
        .db
        .preset(&who.organization_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let users = state
        .db
        .destinations_using_preset(&who.organization_id, &id)
        .await?;
    if !users.is_empty() {
        let names: Vec<String> = users.iter().map(|(_, n)| format!("`{n}`")).collect();
        return Err(ApiError::conflict(format!(
            "the preset is used by destination(s) {}; give them another preset first",
            names.join(", ")
        ))
        .with_code("preset_in_use"));
    }
    state.db.delete_preset(&who.organization_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// Name of the copy; default: the original's with ` (copy)`.
    #[serde(default)]
    pub name: Option<String>,
}

/// Clone a preset (built-in or custom) into a new custom preset.
#[utoipa::path(
    post, path = "/presets/{id}/clone", tag = "presets",
    params(("id" = String, Path)),
    request_body = CloneRequest,
    security(("bearer" = [])),
    responses((status = 201, body = PresetView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn clone_preset(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Permission::PresetsManage)?;
    let req: CloneRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CloneRequest::default()
    } else {
        parse_json(&body)?
    };
    let mut preset = resolve(&state, &who.organization_id, &id)
        .await?
        .ok_or_else(not_found)?;
    preset.builtin = false;
    preset.name = match req.name {
        Some(name) => name,
        None => free_name(&state, &who.organization_id, &preset.name).await?,
    };
    preset.validate().map_err(|e| invalid(&e))?;
    let stored = state
        .db
        .create_preset(&who.organization_id, Some(&who.user_id), &settings(&preset))
        .await
        .map_err(name_conflict)?;
    preset.id = stored.id.clone();
    preset.name = stored.settings.name.clone();
    Ok(created(&preset, &stored))
}

/// `name (copy)`, or `name (copy 2)`, … : the first the organization does not use (the
/// name is cut so the result stays within 100 characters).
async fn free_name(state: &AppState, organization_id: &str, name: &str) -> ApiResult<String> {
    let taken: std::collections::HashSet<String> = state
        .db
        .list_presets(organization_id, None)
        .await?
        .into_iter()
        .map(|s| s.settings.name)
        .collect();
    for n in 1..=1000 {
        let suffix = if n == 1 {
            " (copy)".to_string()
        } else {
            format!(" (copy {n})")
        };
        let keep = lunora_transcode::preset::MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
        let candidate: String = name.chars().take(keep).collect::<String>() + &suffix;
        if !taken.contains(&candidate) {
            return Ok(candidate);
        }
    }
    Err(ApiError::conflict("no free name for the copy; give it a name").with_field("name"))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// Also export the built-in presets (default: only the organization's).
    pub include_builtin: Option<bool>,
}

/// The JSON document of an export.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresetExport {
    /// `lunora-presets`.
    pub format: String,
    /// 1.
    pub version: u32,
    pub exported_at: String,
    pub presets: Vec<PresetView>,
}

/// Export presets as a JSON document that `POST /presets/import` takes back.
#[utoipa::path(
    get, path = "/presets/export", tag = "presets",
    params(ExportQuery),
    security(("bearer" = [])),
    responses((status = 200, body = PresetExport))
)]
async fn export_presets(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let all = all_presets(&state, &who.organization_id, None).await?;
    let include_builtin = q.include_builtin.unwrap_or(false);
    let doc = PresetExport {
        format: EXPORT_FORMAT.into(),
        version: 1,
        exported_at: rfc3339(lunora_store::now_ms()),
        presets: all
            .iter()
            .filter(|(p, _)| include_builtin || !p.builtin)
            .map(|(p, s)| view(p, s.as_ref()))
            .collect(),
    };
    let mut res = axum::Json(doc).into_response();
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lunora-presets.json\""),
    );
    Ok(res)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// What to do with a preset whose name is taken: `skip` (default) or `rename` (import
    /// it as `name (copy)`).
    pub on_conflict: Option<String>,
    /// Check and report without storing anything.
    pub dry_run: Option<bool>,
}

/// What happened to one imported preset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportItem {
    /// Position in the document's `presets`.
    pub index: usize,
    pub name: Option<String>,
    /// `created`, `skipped` (name taken) or `invalid`.
    pub status: String,
    /// The new preset's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For `invalid`: the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PresetImportReport)]
pub struct ImportReport {
    pub created: usize,
    pub skipped: usize,
    pub invalid: usize,
    pub dry_run: bool,
    pub items: Vec<ImportItem>,
}

/// Import presets from an export document (or a bare array of presets). Each preset is
/// validated like a create; the answer reports every one. Built-ins in the document
/// become custom presets.
#[utoipa::path(
    post, path = "/presets/import", tag = "presets",
    params(ImportQuery),
    request_body(content = Object, description = "An export document `{format, version, presets: [...]}` or an array of presets"),
    security(("bearer" = [])),
    responses((status = 200, body = ImportReport), (status = 400, body = crate::Problem))
)]
async fn import_presets(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ImportQuery>,
    Json(body): Json<Value>,
) -> ApiResult<axum::Json<ImportReport>> {
    who.require(Permission::PresetsManage)?;
    let rename = match q.on_conflict.as_deref() {
        None | Some("skip") => false,
        Some("rename") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "on_conflict",
                "on_conflict must be skip or rename",
            ))
        }
    };
    let dry_run = q.dry_run.unwrap_or(false);
    let items = match body {
        Value::Array(items) => items,
        Value::Object(mut doc) => {
            if let Some(format) = doc.get("format") {
                if format != EXPORT_FORMAT {
                    return Err(ApiError::invalid(
                        "format",
                        format!("format must be {EXPORT_FORMAT:?} (got {format})"),
                    ));
                }
            }
            match doc.remove("presets") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(ApiError::invalid(
                        "presets",
                        "the document needs a `presets` array",
                    ))
                }
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "presets",
                "send an export document or an array of presets",
            ))
        }
    };
    if items.len() > MAX_IMPORT {
        return Err(ApiError::invalid(
            "presets",
            format!("at most {MAX_IMPORT} presets per import"),
        ));
    }
    let mut taken: std::collections::HashSet<String> = state
        .db
        .list_presets(&who.organization_id, None)
        .await?
        .into_iter()
        .map(|s| s.settings.name)
        .collect();
    let mut report = ImportReport {
        created: 0,
        skipped: 0,
        invalid: 0,
        dry_run,
        items: Vec::with_capacity(items.len()),
    };
    for (index, item) in items.into_iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string());
        let mut line = ImportItem {
            index,
            name: name.clone(),
            status: "invalid".into(),
            id: None,
            field: None,
            detail: None,
        };
        let mut preset = match preset_from_json(strip_for_import(item), "import") {
            Ok(p) => p,
            Err(e) => {
                line.field = e.field.map(|f| format!("presets[{index}].{f}"));
                line.detail = Some(e.detail);
                report.invalid += 1;
                report.items.push(line);
                continue;
            }
        };
        preset.name = preset.name.trim().to_string();
        if taken.contains(&preset.name) {
            if !rename {
                line.status = "skipped".into();
                line.detail = Some(format!("a preset named `{}` already exists", preset.name));
                report.skipped += 1;
                report.items.push(line);
                continue;
            }
            preset.name = next_free(&taken, &preset.name);
        }
        if !dry_run {
            let stored = state
                .db
                .create_preset(&who.organization_id, Some(&who.user_id), &settings(&preset))
                .await;
            match stored {
                Ok(s) => line.id = Some(s.id),
                Err(lunora_store::StoreError::Conflict(d)) => {
                    line.status = "skipped".into();
                    line.detail = Some(d);
                    report.skipped += 1;
                    report.items.push(line);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        taken.insert(preset.name.clone());
        line.name = Some(preset.name);
        line.status = "created".into();
        report.created += 1;
        report.items.push(line);
    }
    tracing::info!(
        created = report.created,
        skipped = report.skipped,
        invalid = report.invalid,
        dry_run,
        "presets imported"
    );
    Ok(axum::Json(report))
}

/// An exported preset carries read-only fields; keep what a create takes.
fn strip_for_import(mut item: Value) -> Value {
    if let Some(obj) = item.as_object_mut() {
        let keep: Map<String, Value> = std::mem::take(obj)
            .into_iter()
            .filter(|(k, _)| !VIEW_ONLY.contains(&k.as_str()))
            .collect();
        *obj = keep;
    }
    item
}

fn next_free(taken: &std::collections::HashSet<String>, name: &str) -> String {
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                " (copy)".to_string()
            } else {
                format!(" (copy {n})")
            };
            let keep =
                lunora_transcode::preset::MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
            name.chars().take(keep).collect::<String>() + &suffix
        })
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn youtube_json() -> Value {
        serde_json::to_value(builtin_preset("builtin-youtube-1080p30").unwrap()).unwrap()
    }

    #[test]
    fn view_fields_are_ignored_and_ranges_name_the_field() {
        let mut v = youtube_json();
        v["version"] = json!(3);
        v["encoding_key"] = json!("whatever");
        let p = preset_from_json(v.clone(), "x1").unwrap();
        assert_eq!((p.id.as_str(), p.builtin), ("x1", false));

        v["video"]["fps"] = json!(25);
        let e = preset_from_json(v, "x1").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("video.fps"));
        assert!(
            e.detail.contains("24 fps, 30 fps or 60 fps"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn structure_errors_name_their_path() {
        let mut v = youtube_json();
        v["video"]["bogus"] = json!(1);
        let e = preset_from_json(v, "x").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("video.bogus"), "{e}");

        let mut v = youtube_json();
        v["audio"].as_object_mut().unwrap().remove("sample_rate");
        let e = preset_from_json(v, "x").unwrap_err();
        assert!(e.field.as_deref().unwrap().contains("sample_rate"), "{e:?}");

        let mut v = youtube_json();
        v["video"]["bitrate_kbps"] = json!("fast");
        let e = preset_from_json(v, "x").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("video.bitrate_kbps"));

        let mut v = youtube_json();
        v["video"]["codec"] = json!("vp9");
        let e = preset_from_json(v, "x").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("video.codec"));
        assert!(e.detail.contains("\"h264\" or \"h265\""), "{}", e.detail);

        assert_eq!(
            preset_from_json(json!([1]), "x")
                .unwrap_err()
                .field
                .as_deref(),
            Some("preset")
        );
    }

    #[test]
    fn settings_round_trip_through_the_store_columns() {
        for p in builtin_presets() {
            let s = StoredPreset {
                id: p.id.clone(),
                organization_id: "o".into(),
                settings: settings(&p),
                created_by: None,
                version: 1,
                created_at: 0,
                updated_at: 0,
            };
            let mut back = from_stored(&s).unwrap();
            back.builtin = true;
            assert_eq!(back, p);
        }
        assert_eq!(
            summary(&builtin_preset("builtin-x-720p30").unwrap()),
            "720p30, 2.5 Mbps"
        );
        assert_eq!(
            summary(&builtin_preset("builtin-youtube-1080p30").unwrap()),
            "1080p30, 6 Mbps"
        );
    }

    #[test]
    fn copy_names() {
        let mut taken = std::collections::HashSet::new();
        assert_eq!(next_free(&taken, "A"), "A (copy)");
        taken.insert("A (copy)".to_string());
        assert_eq!(next_free(&taken, "A"), "A (copy 2)");
        let long = "n".repeat(100);
        assert_eq!(next_free(&taken, &long).chars().count(), 100);
    }
}
