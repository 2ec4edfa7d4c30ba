//! `/api/v1/streams`: the public catalog, search, trending, categories, catalog editing and
//! playback tokens.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lunora_store::{CatalogEntry, CatalogFilter, CatalogRow, Category};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{is_live, level_rank, not_found, rating_rank, viewer_level, MaybeViewer};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

/// A viewing session counts as watching while its last heartbeat is this recent.
pub const HEARTBEAT_WINDOW_MS: i64 = 60_000;
/// How many catalog entries search and the lists look at (newest channels first).
const CANDIDATES: u32 = 2000;
/// Lifetime of a playback token.
pub const PLAYBACK_TTL_SECONDS: i64 = 4 * 3600;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live_streams))
        .routes(routes!(featured_streams))
        .routes(routes!(list_categories, create_category))
        .routes(routes!(update_category, delete_category))
        .routes(routes!(search_streams))
        .routes(routes!(trending_streams))
        .routes(routes!(get_stream, update_stream))
        .routes(routes!(stream_thumbnail))
        .routes(routes!(playback))
        .routes(routes!(admin_catalog))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatorView {
    pub id: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryRef {
    pub id: String,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamView {
    /// The channel id.
    pub id: String,
    pub title: String,
    pub description: String,
    pub creator: CreatorView,
    pub category: Option<CategoryRef>,
    pub tags: Vec<String>,
    /// JPEG of the newest keyframe while live.
    pub thumbnail_url: String,
    /// Master playlist; `premium` and `vip` streams need `?token=` from the playback endpoint.
    pub hls_url: String,
    /// `public`, `premium` or `vip`.
    pub access_level: String,
    /// `general`, `teen`, `mature` or `adult`.
    pub content_rating: String,
    /// Player sessions with a heartbeat in the last minute.
    pub viewer_count: i64,
    pub scheduled_start: Option<String>,
    pub live: bool,
    pub featured: bool,
    /// Catalog editing only: the channel's visibility (`private` channels are not listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    pub items: Vec<StreamView>,
}

pub(crate) fn view(
    state: &AppState,
    e: &CatalogEntry,
    counts: &HashMap<String, i64>,
) -> StreamView {
    StreamView {
        id: e.channel_id.clone(),
        title: e.title.clone(),
        description: e.description.clone(),
        creator: CreatorView {
            id: e.owner_id.clone(),
            name: e.creator_name.clone(),
        },
        category: match (&e.category_id, &e.category_slug, &e.category_name) {
            (Some(id), Some(slug), Some(name)) => Some(CategoryRef {
                id: id.clone(),
                slug: slug.clone(),
                name: name.clone(),
            }),
            _ => None,
        },
        tags: e.tags.clone(),
        thumbnail_url: format!("/api/v1/streams/{}/thumbnail.jpg", e.channel_id),
        hls_url: format!("/hls/{}/index.m3u8", e.channel_id),
        access_level: e.access_level.clone(),
        content_rating: e.content_rating.clone(),
        viewer_count: counts.get(&e.channel_id).copied().unwrap_or(0),
        scheduled_start: e.scheduled_start.map(rfc3339),
        live: is_live(state, &e.channel_id),
        featured: e.featured,
        visibility: None,
    }
}

pub(crate) async fn counts(state: &AppState) -> ApiResult<HashMap<String, i64>> {
    Ok(state
        .db
        .viewer_counts(lunora_store::now_ms() - HEARTBEAT_WINDOW_MS)
        .await?)
}

/// Public catalog entries (visibility `public`), newest channel first.
pub(crate) async fn public_entries(
    state: &AppState,
    filter: CatalogFilter<'_>,
) -> ApiResult<Vec<CatalogEntry>> {
    Ok(state
        .db
        .catalog_entries(&CatalogFilter {
            organization_id: None,
            limit: if filter.limit == 0 {
                CANDIDATES
            } else {
                filter.limit
            },
            ..filter
        })
        .await?)
}

/// One public catalog entry.
pub(crate) async fn public_entry(state: &AppState, id: &str) -> ApiResult<CatalogEntry> {
    if Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    public_entries(
        state,
        CatalogFilter {
            channel_id: Some(id),
            limit: 1,
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(not_found)
}

/// Drops streams rated above a signed-in viewer's parental limit (they stay reachable by id,
/// where the player asks for the PIN).
pub(crate) async fn within_parental_limit(
    state: &AppState,
    who: Option<&Principal>,
    mut entries: Vec<CatalogEntry>,
) -> ApiResult<Vec<CatalogEntry>> {
    if let Some(p) = who {
        let limit = rating_rank(&state.db.viewer_profile(&p.user_id).await?.max_rating);
        entries.retain(|e| rating_rank(&e.content_rating) <= limit);
    }
    Ok(entries)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this category (its slug).
    pub category: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

fn limit(l: Option<u32>) -> usize {
    l.unwrap_or(50).clamp(1, 200) as usize
}

/// Live streams, most watched first.
#[utoipa::path(
    get, path = "/streams/live", tag = "viewer",
    params(ListQuery),
    responses((status = 200, body = StreamList))
)]
async fn live_streams(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<StreamList>> {
    let entries = public_entries(
        &state,
        CatalogFilter {
            category_slug: q.category.as_deref(),
            ..Default::default()
        },
    )
    .await?;
    let entries = within_parental_limit(&state, who.as_ref(), entries).await?;
    let counts = counts(&state).await?;
    let mut items: Vec<StreamView> = entries
        .iter()
        .map(|e| view(&state, e, &counts))
        .filter(|v| v.live)
        .collect();
    items.sort_by_key(|v| std::cmp::Reverse(v.viewer_count));
    items.truncate(limit(q.limit));
    Ok(axum::Json(StreamList { items }))
}

/// Featured streams, live ones first.
#[utoipa::path(
    get, path = "/streams/featured", tag = "viewer",
    params(ListQuery),
    responses((status = 200, body = StreamList))
)]
async fn featured_streams(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<StreamList>> {
    let entries = public_entries(
        &state,
        CatalogFilter {
            featured_only: true,
            category_slug: q.category.as_deref(),
            ..Default::default()
        },
    )
    .await?;
    let entries = within_parental_limit(&state, who.as_ref(), entries).await?;
    let counts = counts(&state).await?;
    let mut items: Vec<StreamView> = entries.iter().map(|e| view(&state, e, &counts)).collect();
    items.sort_by_key(|v| std::cmp::Reverse(v.live));
    items.truncate(limit(q.limit));
    Ok(axum::Json(StreamList { items }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchQuery {
    /// Words to look for in titles, descriptions, tags, categories and creators; small typos
    /// are forgiven.
    pub q: String,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(flatten)]
    pub stream: StreamView,
    /// 0–1: how well the words matched.
    pub score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

/// Search the catalog: live streams first, then by match quality.
#[utoipa::path(
    get, path = "/streams/search", tag = "viewer",
    params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = crate::Problem))
)]
async fn search_streams(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<SearchResults>> {
    let words = words(&q.q);
    if words.is_empty() || q.q.chars().count() > 200 {
        return Err(ApiError::invalid(
            "q",
            "q must have 1–200 characters with a word",
        ));
    }
    let entries = public_entries(&state, CatalogFilter::default()).await?;
    let entries = within_parental_limit(&state, who.as_ref(), entries).await?;
    let counts = counts(&state).await?;
    let mut items: Vec<SearchHit> = entries
        .iter()
        .filter_map(|e| {
            let score = match_score(&words, e);
            (score > 0.0).then(|| SearchHit {
                stream: view(&state, e, &counts),
                score,
            })
        })
        .collect();
    items.sort_by(|a, b| {
        b.stream
            .live
            .cmp(&a.stream.live)
            .then(b.score.total_cmp(&a.score))
            .then(b.stream.viewer_count.cmp(&a.stream.viewer_count))
    });
    items.truncate(limit(q.limit));
    Ok(axum::Json(SearchResults { items }))
}

/// Lower-case words of a text (letters and digits).
pub(crate) fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Edit distance over characters where swapping two neighbours counts as one edit (optimal
/// string alignment), so "scocer" is one typo away from "soccer".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 0..a.len() {
        cur[0] = i + 1;
        for j in 0..b.len() {
            let sub = prev[j] + usize::from(a[i] != b[j]);
            let mut best = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                best = best.min(before[j - 1] + 1);
            }
            cur[j + 1] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// How well one query word matches one text word: 1 exact, 0.9 prefix, else by edit
/// distance (one edit allowed from 4 characters, two from 8), 0 when too far.
pub(crate) fn word_score(q: &str, w: &str) -> f64 {
    if q == w {
        return 1.0;
    }
    let ql = q.chars().count();
    if ql >= 3 && w.starts_with(q) {
        return 0.9;
    }
    let allowed = match ql {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    if allowed == 0 || w.chars().count().abs_diff(ql) > allowed {
        return 0.0;
    }
    let d = edit_distance(q, w);
    if d <= allowed {
        0.8 - 0.1 * (d as f64 - 1.0)
    } else {
        0.0
    }
}

/// Score of a catalog entry for the query words: every word must match something; title and
/// tag matches weigh more than the description.
pub(crate) fn match_score(query: &[String], e: &CatalogEntry) -> f64 {
    let fields: [(Vec<String>, f64); 5] = [
        (words(&e.title), 1.0),
        (e.tags.iter().flat_map(|t| words(t)).collect(), 0.9),
        (
            words(&format!(
                "{} {}",
                e.category_name.as_deref().unwrap_or(""),
                e.category_slug.as_deref().unwrap_or("")
            )),
            0.8,
        ),
        (words(&e.creator_name), 0.8),
        (words(&e.description), 0.6),
    ];
    let mut total = 0.0;
    for q in query {
        let best = fields
            .iter()
            .flat_map(|(ws, weight)| ws.iter().map(move |w| word_score(q, w) * weight))
            .fold(0.0, f64::max);
        if best == 0.0 {
            return 0.0;
        }
        total += best;
    }
    total / query.len() as f64
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendingItem {
    #[serde(flatten)]
    pub stream: StreamView,
    /// Seconds watched over the last hour, every viewer included.
    pub watch_seconds_last_hour: i64,
    /// The hour before.
    pub watch_seconds_previous_hour: i64,
    /// last hour / previous hour − 1 (1 when new).
    pub growth: f64,
    pub score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendingList {
    pub items: Vec<TrendingItem>,
}

/// Trending streams: recent watch time, boosted by its growth over the hour before.
#[utoipa::path(
    get, path = "/streams/trending", tag = "viewer",
    params(ListQuery),
    responses((status = 200, body = TrendingList))
)]
async fn trending_streams(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<TrendingList>> {
    let now = lunora_store::now_ms();
    let hour = 3_600_000;
    let sessions = state.db.sessions_since(now - 2 * hour).await?;
    // Watch time of a session is spread evenly over its span.
    let mut recent: HashMap<String, f64> = HashMap::new();
    let mut before: HashMap<String, f64> = HashMap::new();
    for s in &sessions {
        let span = (s.last_heartbeat_at - s.started_at).max(1) as f64;
        let overlap = |a: i64, b: i64| {
            let lo = s.started_at.max(a);
            let hi = s.last_heartbeat_at.max(s.started_at + 1).min(b);
            ((hi - lo).max(0) as f64 / span) * s.watched_ms as f64 / 1000.0
        };
        *recent.entry(s.stream_id.clone()).or_default() += overlap(now - hour, now + 1);
        *before.entry(s.stream_id.clone()).or_default() += overlap(now - 2 * hour, now - hour);
    }
    let entries = public_entries(
        &state,
        CatalogFilter {
            category_slug: q.category.as_deref(),
            ..Default::default()
        },
    )
    .await?;
    let entries = within_parental_limit(&state, who.as_ref(), entries).await?;
    let counts = counts(&state).await?;
    let mut items: Vec<TrendingItem> = entries
        .iter()
        .filter_map(|e| {
            let r = recent.get(&e.channel_id).copied().unwrap_or(0.0);
            let b = before.get(&e.channel_id).copied().unwrap_or(0.0);
            if r <= 0.0 {
                return None;
            }
            let growth = if b > 0.0 { r / b - 1.0 } else { 1.0 };
            Some(TrendingItem {
                stream: view(&state, e, &counts),
                watch_seconds_last_hour: r.round() as i64,
                watch_seconds_previous_hour: b.round() as i64,
                growth,
                score: r * (1.0 + growth.clamp(-0.9, 3.0)),
            })
        })
        .collect();
    items.sort_by(|a, b| b.score.total_cmp(&a.score));
    items.truncate(limit(q.limit));
    Ok(axum::Json(TrendingList { items }))
}

/// One stream of the catalog.
#[utoipa::path(
    get, path = "/streams/{id}", tag = "viewer",
    params(("id" = String, Path, description = "The channel id")),
    responses((status = 200, body = StreamView), (status = 404, body = crate::Problem))
)]
async fn get_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<StreamView>> {
    let e = public_entry(&state, &id).await?;
    let counts = counts(&state).await?;
    Ok(axum::Json(view(&state, &e, &counts)))
}

/// The stream's thumbnail (JPEG of the newest keyframe while it is live).
#[utoipa::path(
    get, path = "/streams/{id}/thumbnail.jpg", tag = "viewer",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "image/jpeg"), (status = 404, body = crate::Problem))
)]
async fn stream_thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let e = public_entry(&state, &id).await?;
    let uuid = Uuid::parse_str(&e.channel_id).map_err(|_| not_found())?;
    crate::hls::serve_thumbnail(&state, uuid, "public, max-age=2")
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PlaybackRequest {
    /// The parental PIN, needed when the stream's rating is above the profile's limit.
    #[serde(default)]
    pub pin: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlaybackGrant {
    pub token: String,
    /// The master playlist with the token.
    pub hls_url: String,
    pub expires_at: String,
    pub access_level: String,
    /// The level the caller reaches.
    pub viewer_level: String,
}

/// A playback token for a stream: issued only when the caller's level reaches the stream's
/// access level (anonymous viewers reach `public`). 403 `upgrade_required` otherwise.
#[utoipa::path(
    post, path = "/streams/{id}/playback", tag = "viewer",
    params(("id" = String, Path)),
    request_body = PlaybackRequest,
    responses(
        (status = 200, body = PlaybackGrant),
        (status = 403, body = crate::Problem),
        (status = 404, body = crate::Problem)
    )
)]
async fn playback(
    State(state): State<AppState>,
    MaybeViewer(who): MaybeViewer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<PlaybackGrant>> {
    let req: PlaybackRequest = if body.is_empty() {
        PlaybackRequest::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let e = public_entry(&state, &id).await?;
    let level = admit_viewer(&state, who.as_ref(), &e, req.pin.as_deref()).await?;
    let expires = lunora_store::now_ms() / 1000 + PLAYBACK_TTL_SECONDS;
    let token = state.play_tokens.issue(&e.channel_id, expires);
    Ok(axum::Json(PlaybackGrant {
        hls_url: format!("/hls/{}/index.m3u8?token={token}", e.channel_id),
        token,
        expires_at: rfc3339(expires * 1000),
        access_level: e.access_level.clone(),
        viewer_level: level.to_string(),
    }))
}

/// Checks that `who` may watch `e`: level and parental controls. Answers the caller's level.
pub(crate) async fn admit_viewer(
    state: &AppState,
    who: Option<&Principal>,
    e: &CatalogEntry,
    pin: Option<&str>,
) -> ApiResult<&'static str> {
    let level = viewer_level(state, who, &e.organization_id).await?;
    if level_rank(level) < level_rank(&e.access_level) {
        let detail = match who {
            None => format!(
                "this stream is for {} subscribers: sign in and subscribe \
                 (POST /api/v1/subscriptions) to watch it",
                e.access_level
            ),
            Some(_) => format!(
                "this stream is for {} subscribers and your plan reaches {level}: \
                 upgrade with POST /api/v1/subscriptions",
                e.access_level
            ),
        };
        return Err(ApiError::forbidden(detail).with_code("upgrade_required"));
    }
    if let Some(p) = who {
        let profile = state.db.viewer_profile(&p.user_id).await?;
        if rating_rank(&e.content_rating) > rating_rank(&profile.max_rating) {
            let ok = match (pin, &profile.pin_hash) {
                (Some(pin), Some(hash)) => {
                    crate::auth::password::verify_blocking(pin, hash).await?
                }
                _ => false,
            };
            if !ok {
                return Err(ApiError::forbidden(format!(
                    "this stream is rated {} and parental controls allow up to {}: \
                     enter the parental PIN",
                    e.content_rating, profile.max_rating
                ))
                .with_code("parental_pin_required"));
            }
        }
    }
    Ok(level)
}

// ---- catalog editing ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStream {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Category id; `""` removes the category.
    pub category_id: Option<String>,
    pub tags: Option<Vec<String>>,
    /// `public`, `premium` or `vip`.
    pub access_level: Option<String>,
    /// `general`, `teen`, `mature` or `adult`.
    pub content_rating: Option<String>,
    /// RFC 3339; `""` clears it.
    pub scheduled_start: Option<String>,
    pub featured: Option<bool>,
}

/// The caller's organization's channel as a catalog entry (operators: their own channels).
async fn editable_entry(state: &AppState, who: &Principal, id: &str) -> ApiResult<CatalogEntry> {
    if Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    let e = state
        .db
        .catalog_entries(&CatalogFilter {
            organization_id: Some(&who.organization_id),
            channel_id: Some(id),
            limit: 1,
            ..Default::default()
        })
        .await?
        .into_iter()
        .next()
        .ok_or_else(not_found)?;
    if who.role == crate::auth::Role::Operator && e.owner_id.as_deref() != Some(&who.user_id) {
        return Err(not_found());
    }
    Ok(e)
}

fn check_text(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters without control characters"),
        ));
    }
    Ok(v.to_string())
}

/// Change a stream's catalog metadata (title, category, tags, access level, rating, schedule,
/// featured).
#[utoipa::path(
    patch, path = "/streams/{id}", tag = "viewer",
    params(("id" = String, Path)),
    request_body = UpdateStream,
    security(("bearer" = [])),
    responses((status = 200, body = StreamView), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem))
)]
async fn update_stream(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<UpdateStream>,
) -> ApiResult<axum::Json<StreamView>> {
    let e = editable_entry(&state, &who, &id).await?;
    let mut row = state
        .db
        .catalog_row(&e.channel_id)
        .await?
        .unwrap_or(CatalogRow {
            title: String::new(),
            description: String::new(),
            category_id: None,
            tags: Vec::new(),
            access_level: "public".into(),
            content_rating: "general".into(),
            scheduled_start: None,
            featured: false,
        });
    if let Some(t) = &req.title {
        row.title = check_text("title", t, 200)?;
    }
    if let Some(d) = &req.description {
        row.description = check_text("description", d, 5000)?;
    }
    if let Some(c) = &req.category_id {
        row.category_id = if c.is_empty() {
            None
        } else {
            let cat = state
                .db
                .category(&e.organization_id, c)
                .await?
                .ok_or_else(|| ApiError::invalid("category_id", "no such category"))?;
            Some(cat.id)
        };
    }
    if let Some(tags) = &req.tags {
        if tags.len() > 20 {
            return Err(ApiError::invalid("tags", "at most 20 tags"));
        }
        let mut out = Vec::new();
        for t in tags {
            let t = check_text("tags", t, 40)?.replace(',', " ");
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
        row.tags = out;
    }
    if let Some(a) = &req.access_level {
        if !super::LEVELS.contains(&a.as_str()) {
            return Err(ApiError::invalid(
                "access_level",
                "access_level must be public, premium or vip",
            ));
        }
        row.access_level = a.clone();
    }
    if let Some(r) = &req.content_rating {
        if !super::RATINGS.contains(&r.as_str()) {
            return Err(ApiError::invalid(
                "content_rating",
                "content_rating must be general, teen, mature or adult",
            ));
        }
        row.content_rating = r.clone();
    }
    if let Some(s) = &req.scheduled_start {
        row.scheduled_start = if s.is_empty() {
            None
        } else {
            Some(crate::recordings::parse_rfc3339(s).ok_or_else(|| {
                ApiError::invalid("scheduled_start", "scheduled_start must be RFC 3339")
            })?)
        };
    }
    if let Some(f) = req.featured {
        row.featured = f;
    }
    state.db.save_catalog(&e.channel_id, &row).await?;
    if let Ok(uuid) = Uuid::parse_str(&e.channel_id) {
        state.hls.forget(uuid);
    }
    let e = editable_entry(&state, &who, &id).await?;
    let counts = counts(&state).await?;
    let mut v = view(&state, &e, &counts);
    v.visibility = Some(e.visibility.clone());
    Ok(axum::Json(v))
}

/// The organization's channels as catalog entries, for catalog editing (private ones too).
#[utoipa::path(
    get, path = "/viewer-admin/catalog", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = StreamList))
)]
async fn admin_catalog(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<StreamList>> {
    let entries = state
        .db
        .catalog_entries(&CatalogFilter {
            organization_id: Some(&who.organization_id),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let counts = counts(&state).await?;
    let items = entries
        .iter()
        .filter(|e| {
            who.role != crate::auth::Role::Operator || e.owner_id.as_deref() == Some(&who.user_id)
        })
        .map(|e| {
            let mut v = view(&state, e, &counts);
            v.visibility = Some(e.visibility.clone());
            v
        })
        .collect();
    Ok(axum::Json(StreamList { items }))
}

// ---- categories ----

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Public streams in it, and how many are live.
    pub stream_count: i64,
    pub live_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<CategoryView>,
}

/// Categories with their public streams (every organization's).
#[utoipa::path(
    get, path = "/streams/categories", tag = "viewer",
    responses((status = 200, body = CategoryList))
)]
async fn list_categories(State(state): State<AppState>) -> ApiResult<axum::Json<CategoryList>> {
    let cats = state.db.categories(None).await?;
    let entries = public_entries(&state, CatalogFilter::default()).await?;
    let items = cats
        .into_iter()
        .map(|c| {
            let mine: Vec<&CatalogEntry> = entries
                .iter()
                .filter(|e| e.category_id.as_deref() == Some(&c.id))
                .collect();
            CategoryView {
                stream_count: mine.len() as i64,
                live_count: mine
                    .iter()
                    .filter(|e| is_live(&state, &e.channel_id))
                    .count() as i64,
                id: c.id,
                slug: c.slug,
                name: c.name,
                description: c.description,
            }
        })
        .collect();
    Ok(axum::Json(CategoryList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// 1–60 characters.
    pub name: String,
    /// Lower-case letters, digits and `-`; derived from the name when absent.
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn category_fields(req: &CategoryInput) -> ApiResult<(String, String, String)> {
    let name = check_text("name", &req.name, 60)?;
    if name.is_empty() {
        return Err(ApiError::invalid("name", "name must be 1–60 characters"));
    }
    let slug = slugify(req.slug.as_deref().unwrap_or(&name));
    if slug.is_empty() || slug.len() > 60 {
        return Err(ApiError::invalid(
            "slug",
            "slug must be 1–60 lower-case letters, digits and dashes",
        ));
    }
    let description = check_text("description", req.description.as_deref().unwrap_or(""), 500)?;
    Ok((name, slug, description))
}

fn category_view(c: Category) -> CategoryView {
    CategoryView {
        id: c.id,
        slug: c.slug,
        name: c.name,
        description: c.description,
        stream_count: 0,
        live_count: 0,
    }
}

/// Create a category in the caller's organization.
#[utoipa::path(
    post, path = "/streams/categories", tag = "viewer",
    request_body = CategoryInput,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryView), (status = 409, body = crate::Problem))
)]
async fn create_category(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<CategoryInput>,
) -> ApiResult<(StatusCode, axum::Json<CategoryView>)> {
    let (name, slug, description) = category_fields(&req)?;
    let c = state
        .db
        .create_category(&who.organization_id, &slug, &name, &description)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::Conflict(_) => {
                ApiError::conflict("a category with this slug exists")
            }
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, axum::Json(category_view(c))))
}

/// Rename a category.
#[utoipa::path(
    patch, path = "/streams/categories/{id}", tag = "viewer",
    params(("id" = String, Path)),
    request_body = CategoryInput,
    security(("bearer" = [])),
    responses((status = 200, body = CategoryView), (status = 404, body = crate::Problem))
)]
async fn update_category(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<CategoryInput>,
) -> ApiResult<axum::Json<CategoryView>> {
    let mut c = state
        .db
        .category(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such category"))?;
    let (name, slug, description) = category_fields(&req)?;
    c.name = name;
    c.slug = slug;
    c.description = description;
    state.db.update_category(&c).await.map_err(|e| match e {
        lunora_store::StoreError::Conflict(_) => {
            ApiError::conflict("a category with this slug exists")
        }
        e => e.into(),
    })?;
    Ok(axum::Json(category_view(c)))
}

/// Delete a category (its streams keep no category).
#[utoipa::path(
    delete, path = "/streams/categories/{id}", tag = "viewer",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn delete_category(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .db
        .delete_category(&who.organization_id, &id)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::NotFound => ApiError::not_found("no such category"),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_match_and_short_words_must_be_exact() {
        assert_eq!(word_score("soccer", "soccer"), 1.0);
        assert!(word_score("socer", "soccer") > 0.0);
        assert!(word_score("scocer", "soccer") > 0.0);
        assert!(word_score("tennis", "soccer") == 0.0);
        assert!(word_score("cat", "car") == 0.0);
        assert!(word_score("foot", "football") > 0.0);
        assert!(word_score("champions", "champinos") > 0.0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("scocer", "soccer"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
