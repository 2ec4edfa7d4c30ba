//! `/api/v1/viewer/me`: the audience account's profile, viewing preferences, privacy, parental
//! controls, blocked users, follows of creators, stats, recommendations, export and deletion;
//! `/api/v1/viewer-admin/accounts|analytics` for the viewer admin.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use lunora_store::{CatalogFilter, UserFilter, UserPatch};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::catalog::{counts, public_entries, view, StreamView};
use super::{require_audience, viewer_level, RATINGS};
use crate::auth::{password, Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me, delete_me))
        .routes(routes!(set_parental))
        .routes(routes!(verify_pin))
        .routes(routes!(list_blocked))
        .routes(routes!(block, unblock))
        .routes(routes!(list_follows))
        .routes(routes!(follow, unfollow))
        .routes(routes!(export))
        .routes(routes!(stats))
        .routes(routes!(recommendations))
        .routes(routes!(admin_accounts))
        .routes(routes!(admin_analytics))
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// `auto` or a rendition name (`source`, `720p`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// BCP 47 language tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoplay: Option<bool>,
    /// E-mail or in-app notices when followed creators go live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Parental {
    pub max_rating: String,
    pub pin_set: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerMe {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// The account's group: `free`, `premium`, `vip` (staff: their role).
    pub group: String,
    /// The stream access level reached (`public`, `premium`, `vip`).
    pub level: String,
    pub preferences: Preferences,
    /// `public` or `private`.
    pub profile_visibility: String,
    pub history_enabled: bool,
    pub parental: Parental,
    pub created_at: String,
}

async fn me(state: &AppState, who: &Principal) -> ApiResult<ViewerMe> {
    let level = viewer_level(state, Some(who), &who.organization_id).await?;
    let user = state
        .db
        .user(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    let p = state.db.viewer_profile(&who.user_id).await?;
    Ok(ViewerMe {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        group: user.role,
        level: level.into(),
        preferences: serde_json::from_str(&p.preferences).unwrap_or_default(),
        profile_visibility: p.profile_visibility,
        history_enabled: p.history_enabled,
        parental: Parental {
            max_rating: p.max_rating,
            pin_set: p.pin_hash.is_some(),
        },
        created_at: rfc3339(user.created_at),
    })
}

/// The caller's viewer profile.
#[utoipa::path(
    get, path = "/viewer/me", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = ViewerMe))
)]
async fn get_me(State(state): State<AppState>, who: Principal) -> ApiResult<axum::Json<ViewerMe>> {
    Ok(axum::Json(me(&state, &who).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateViewerMe {
    pub display_name: Option<String>,
    /// Replaces the stored preferences.
    pub preferences: Option<Preferences>,
    /// `public` or `private`.
    pub profile_visibility: Option<String>,
    /// Off: new viewing sessions are stored without the account (no history, no
    /// recommendations from them).
    pub history_enabled: Option<bool>,
}

/// Change the profile, preferences and privacy settings.
#[utoipa::path(
    patch, path = "/viewer/me", tag = "viewer",
    request_body = UpdateViewerMe,
    security(("bearer" = [])),
    responses((status = 200, body = ViewerMe), (status = 400, body = crate::Problem))
)]
async fn update_me(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<UpdateViewerMe>,
) -> ApiResult<axum::Json<ViewerMe>> {
    let mut p = state.db.viewer_profile(&who.user_id).await?;
    if let Some(prefs) = &req.preferences {
        if let Some(q) = &prefs.quality {
            if q.is_empty() || q.len() > 20 || !q.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ApiError::invalid(
                    "preferences.quality",
                    "quality is `auto` or a rendition name",
                ));
            }
        }
        if let Some(l) = &prefs.language {
            if l.is_empty()
                || l.len() > 35
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(ApiError::invalid(
                    "preferences.language",
                    "language is a BCP 47 tag such as en or pt-BR",
                ));
            }
        }
        p.preferences = serde_json::to_string(prefs).map_err(ApiError::internal)?;
    }
    if let Some(v) = &req.profile_visibility {
        if v != "public" && v != "private" {
            return Err(ApiError::invalid(
                "profile_visibility",
                "profile_visibility must be public or private",
            ));
        }
        p.profile_visibility = v.clone();
    }
    if let Some(h) = req.history_enabled {
        p.history_enabled = h;
    }
    state.db.save_viewer_profile(&p).await?;
    if let Some(n) = &req.display_name {
        let n = n.trim();
        if n.chars().count() > 100 || n.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "display_name",
                "the display name must be at most 100 characters without control characters",
            ));
        }
        state
            .db
            .update_user(
                &who.organization_id,
                &who.user_id,
                &UserPatch {
                    display_name: Some(n.to_string()),
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(axum::Json(me(&state, &who).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetParental {
    /// `general`, `teen`, `mature` or `adult` (no limit).
    pub max_rating: String,
    /// New PIN, 4–8 digits; needed to set a limit the first time.
    #[serde(default)]
    pub pin: Option<String>,
    /// The PIN in force, needed to change anything once one is set.
    #[serde(default)]
    pub current_pin: Option<String>,
}

fn valid_pin(pin: &str) -> ApiResult<()> {
    if (4..=8).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid("pin", "the PIN is 4–8 digits"))
    }
}

async fn pin_ok(pin: Option<&str>, hash: &Option<String>) -> ApiResult<bool> {
    Ok(match (pin, hash) {
        (_, None) => true,
        (Some(p), Some(h)) => password::verify_blocking(p, h).await?,
        (None, Some(_)) => false,
    })
}

/// Set parental controls: the highest content rating shown and the PIN that unlocks more.
/// The PIN is stored as an Argon2 hash, like passwords.
#[utoipa::path(
    put, path = "/viewer/me/parental", tag = "viewer",
    request_body = SetParental,
    security(("bearer" = [])),
    responses((status = 200, body = ViewerMe), (status = 403, body = crate::Problem))
)]
async fn set_parental(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<SetParental>,
) -> ApiResult<axum::Json<ViewerMe>> {
    if !RATINGS.contains(&req.max_rating.as_str()) {
        return Err(ApiError::invalid(
            "max_rating",
            "max_rating must be general, teen, mature or adult",
        ));
    }
    let mut p = state.db.viewer_profile(&who.user_id).await?;
    if !pin_ok(req.current_pin.as_deref(), &p.pin_hash).await? {
        return Err(
            ApiError::forbidden("the current parental PIN is wrong or missing")
                .with_code("parental_pin_wrong"),
        );
    }
    if let Some(pin) = &req.pin {
        valid_pin(pin)?;
        p.pin_hash = Some(password::hash_blocking(pin).await?);
    } else if p.pin_hash.is_none() && req.max_rating != "adult" {
        return Err(ApiError::invalid(
            "pin",
            "choose a PIN to set a limit (it unlocks streams above it)",
        ));
    }
    p.max_rating = req.max_rating.clone();
    state.db.save_viewer_profile(&p).await?;
    Ok(axum::Json(me(&state, &who).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinCheck {
    pub pin: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PinResult {
    pub ok: bool,
}

/// Check the parental PIN (403 `parental_pin_wrong` when it does not match).
#[utoipa::path(
    post, path = "/viewer/me/parental/verify", tag = "viewer",
    request_body = PinCheck,
    security(("bearer" = [])),
    responses((status = 200, body = PinResult), (status = 403, body = crate::Problem))
)]
async fn verify_pin(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<PinCheck>,
) -> ApiResult<axum::Json<PinResult>> {
    let p = state.db.viewer_profile(&who.user_id).await?;
    let Some(hash) = &p.pin_hash else {
        return Err(ApiError::not_found("no parental PIN is set"));
    };
    if password::verify_blocking(&req.pin, hash).await? {
        Ok(axum::Json(PinResult { ok: true }))
    } else {
        Err(ApiError::forbidden("the parental PIN is wrong").with_code("parental_pin_wrong"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonView {
    pub user_id: String,
    pub display_name: String,
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonList {
    pub items: Vec<PersonView>,
}

/// Users the caller blocked (their chat messages are hidden from the caller).
#[utoipa::path(
    get, path = "/viewer/me/blocked", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = PersonList))
)]
async fn list_blocked(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<PersonList>> {
    let rows = state.db.blocked_users(&who.user_id).await?;
    Ok(axum::Json(PersonList {
        items: rows
            .into_iter()
            .map(|(id, name, at)| PersonView {
                user_id: id,
                display_name: name,
                since: rfc3339(at),
            })
            .collect(),
    }))
}

/// Someone the caller may name: an account of the caller's organization.
async fn other_user(state: &AppState, who: &Principal, id: &str) -> ApiResult<String> {
    if id == who.user_id {
        return Err(ApiError::invalid("user_id", "that is you"));
    }
    let u = state
        .db
        .user_in_org(&who.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok(u.id)
}

/// Block a user.
#[utoipa::path(
    put, path = "/viewer/me/blocked/{user_id}", tag = "viewer",
    params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn block(
    State(state): State<AppState>,
    who: Principal,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = other_user(&state, &who, &user_id).await?;
    state.db.block_user(&who.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unblock a user.
#[utoipa::path(
    delete, path = "/viewer/me/blocked/{user_id}", tag = "viewer",
    params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn unblock(
    State(state): State<AppState>,
    who: Principal,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.db.unblock_user(&who.user_id, &user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("that user is not blocked"))
    }
}

/// Creators the caller follows.
#[utoipa::path(
    get, path = "/viewer/me/follows", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = PersonList))
)]
async fn list_follows(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<PersonList>> {
    let rows = state.db.follows(&who.user_id).await?;
    Ok(axum::Json(PersonList {
        items: rows
            .into_iter()
            .map(|(id, name, at)| PersonView {
                user_id: id,
                display_name: name,
                since: rfc3339(at),
            })
            .collect(),
    }))
}

/// Follow a creator: the owner of a stream in the public catalog.
#[utoipa::path(
    put, path = "/viewer/me/follows/{creator_id}", tag = "viewer",
    params(("creator_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn follow(
    State(state): State<AppState>,
    who: Principal,
    Path(creator_id): Path<String>,
) -> ApiResult<StatusCode> {
    let entries = public_entries(
        &state,
        CatalogFilter {
            owner_ids: Some(std::slice::from_ref(&creator_id)),
            limit: 1,
            ..Default::default()
        },
    )
    .await?;
    if entries.is_empty() || creator_id == who.user_id {
        return Err(ApiError::not_found(
            "no such creator (a creator owns a stream in the catalog)",
        ));
    }
    state.db.follow_creator(&who.user_id, &creator_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop following a creator.
#[utoipa::path(
    delete, path = "/viewer/me/follows/{creator_id}", tag = "viewer",
    params(("creator_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn unfollow(
    State(state): State<AppState>,
    who: Principal,
    Path(creator_id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.db.unfollow_creator(&who.user_id, &creator_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("you do not follow that creator"))
    }
}

/// Everything Lunora keeps about the caller as a viewer, as one JSON document.
#[utoipa::path(
    get, path = "/viewer/me/export", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = Object))
)]
async fn export(State(state): State<AppState>, who: Principal) -> ApiResult<axum::Json<Value>> {
    let profile = me(&state, &who).await?;
    let subs = state.db.subscriptions_of(&who.user_id).await?;
    let payments = state.db.payments_of(&who.user_id).await?;
    let sessions = state.db.sessions_of(&who.user_id, 10_000).await?;
    let saved = state.db.saved_streams(&who.user_id).await?;
    let follows = state.db.follows(&who.user_id).await?;
    let blocked = state.db.blocked_users(&who.user_id).await?;
    let sessions_auth = state.db.active_sessions(&who.user_id).await?;
    let doc = serde_json::json!({
        "exported_at": rfc3339(lunora_store::now_ms()),
        "profile": profile,
        "subscriptions": subs.iter().map(|s| {
            let v = super::subscriptions::sub_view(s);
            serde_json::json!({
                "id": v.id, "plan": v.plan, "status": v.status, "started_at": v.started_at,
                "current_period_end": v.current_period_end, "auto_renew": v.auto_renew,
                "provider": v.provider,
                "payment_method": s.payment_method.split('|').next().unwrap_or(""),
                "canceled_at": v.canceled_at,
            })
        }).collect::<Vec<_>>(),
        "payments": payments.iter().map(|p| serde_json::json!({
            "id": p.id, "subscription_id": p.subscription_id, "plan": p.plan,
            "amount_cents": p.amount_cents, "status": p.status, "reference": p.provider_ref,
            "detail": p.detail, "created_at": rfc3339(p.created_at),
        })).collect::<Vec<_>>(),
        "viewing_history": sessions.iter().map(|s| serde_json::json!({
            "session_id": s.id, "stream_id": s.stream_id, "started_at": rfc3339(s.started_at),
            "ended_at": s.ended_at.map(rfc3339), "watched_seconds": s.watched_ms as f64 / 1000.0,
            "position_seconds": s.position_ms as f64 / 1000.0, "quality": s.quality,
            "device": s.device, "exit_reason": s.exit_reason,
        })).collect::<Vec<_>>(),
        "saved_streams": saved.iter().map(|(id, at)| serde_json::json!({
            "stream_id": id, "saved_at": rfc3339(*at),
        })).collect::<Vec<_>>(),
        "follows": follows.iter().map(|(id, name, at)| serde_json::json!({
            "creator_id": id, "display_name": name, "since": rfc3339(*at),
        })).collect::<Vec<_>>(),
        "blocked_users": blocked.iter().map(|(id, name, at)| serde_json::json!({
            "user_id": id, "display_name": name, "since": rfc3339(*at),
        })).collect::<Vec<_>>(),
        "sign_in_sessions": sessions_auth.iter().map(|s| serde_json::json!({
            "id": s.id, "created_at": rfc3339(s.created_at), "ip": s.ip,
            "user_agent": s.user_agent,
        })).collect::<Vec<_>>(),
    });
    Ok(axum::Json(doc))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMe {
    /// The account's password, to confirm.
    pub password: String,
}

/// Delete the caller's audience account and everything that is theirs (ARCHITECTURE.md,
/// "Deleting a viewer account"). Running subscriptions end without refund.
#[utoipa::path(
    delete, path = "/viewer/me", tag = "viewer",
    request_body = DeleteMe,
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::Problem))
)]
async fn delete_me(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<DeleteMe>,
) -> ApiResult<StatusCode> {
    require_audience(&who)?;
    let user = state
        .db
        .user(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    let ok = match &user.password_hash {
        Some(h) => password::verify_blocking(&req.password, h).await?,
        None => false,
    };
    if !ok {
        return Err(ApiError::forbidden("the password is wrong").with_code("wrong_password"));
    }
    state.db.delete_user(&who.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerStats {
    pub total_watch_seconds: i64,
    pub sessions: i64,
    pub streams_watched: i64,
    /// Category names, most watched first.
    pub favorite_categories: Vec<String>,
    /// UTC hour (0–23) with the most watch time; absent without history.
    pub peak_viewing_hour: Option<u32>,
    /// Watch seconds per device.
    #[schema(value_type = Object)]
    pub device_usage: HashMap<String, i64>,
    pub last_30_days_watch_seconds: i64,
}

/// The caller's viewing statistics (from the history the account keeps).
#[utoipa::path(
    get, path = "/viewer/me/stats", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = ViewerStats))
)]
async fn stats(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<ViewerStats>> {
    let sessions = state.db.sessions_of(&who.user_id, 10_000).await?;
    let entries = public_entries(&state, CatalogFilter::default()).await?;
    let category: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|e| Some((e.channel_id.as_str(), e.category_name.as_deref()?)))
        .collect();
    let now = lunora_store::now_ms();
    let mut cats: HashMap<String, i64> = HashMap::new();
    let mut hours = [0i64; 24];
    let mut devices: HashMap<String, i64> = HashMap::new();
    let mut total = 0;
    let mut recent = 0;
    for s in &sessions {
        total += s.watched_ms;
        if s.started_at > now - 30 * 86_400_000 {
            recent += s.watched_ms;
        }
        if let Some(c) = category.get(s.stream_id.as_str()) {
            *cats.entry((*c).to_string()).or_default() += s.watched_ms;
        }
        hours[((s.started_at / 3_600_000).rem_euclid(24)) as usize] += s.watched_ms;
        let d = if s.device.is_empty() {
            "unknown"
        } else {
            &s.device
        };
        *devices.entry(d.to_string()).or_default() += s.watched_ms / 1000;
    }
    let mut fav: Vec<(String, i64)> = cats.into_iter().collect();
    fav.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let peak = hours
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0)
        .max_by_key(|(_, v)| **v)
        .map(|(h, _)| h as u32);
    Ok(axum::Json(ViewerStats {
        total_watch_seconds: total / 1000,
        sessions: sessions.len() as i64,
        streams_watched: sessions
            .iter()
            .map(|s| s.stream_id.as_str())
            .collect::<HashSet<_>>()
            .len() as i64,
        favorite_categories: fav.into_iter().map(|(c, _)| c).take(5).collect(),
        peak_viewing_hour: peak,
        device_usage: devices,
        last_30_days_watch_seconds: recent / 1000,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation {
    pub stream: StreamView,
    /// Why: "because you follow Ana", "because you watched Cup final".
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationList {
    pub items: Vec<Recommendation>,
}

/// Recommendations from the caller's follows and watch history, each with its reason; live
/// streams first.
#[utoipa::path(
    get, path = "/viewer/me/recommendations", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = RecommendationList))
)]
async fn recommendations(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<RecommendationList>> {
    let entries = public_entries(&state, CatalogFilter::default()).await?;
    let counts = counts(&state).await?;
    let follows = state.db.follows(&who.user_id).await?;
    let sessions = state.db.sessions_of(&who.user_id, 500).await?;
    let by_id: HashMap<&str, &lunora_store::CatalogEntry> =
        entries.iter().map(|e| (e.channel_id.as_str(), e)).collect();
    // Watched streams, most watched first.
    let mut watched: HashMap<&str, i64> = HashMap::new();
    for s in &sessions {
        *watched.entry(s.stream_id.as_str()).or_default() += s.watched_ms.max(1);
    }
    let mut watched: Vec<(&str, i64)> = watched.into_iter().collect();
    watched.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out: Vec<(f64, Recommendation)> = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    for e in &entries {
        if let Some((_, name, _)) = follows
            .iter()
            .find(|(id, _, _)| e.owner_id.as_deref() == Some(id.as_str()))
        {
            taken.insert(e.channel_id.clone());
            out.push((
                3.0,
                Recommendation {
                    stream: view(&state, e, &counts),
                    reason: format!("because you follow {name}"),
                },
            ));
        }
    }
    for (rank, (id, _)) in watched.iter().enumerate().take(10) {
        let Some(seen) = by_id.get(id) else { continue };
        for e in &entries {
            if e.channel_id == seen.channel_id
                || taken.contains(&e.channel_id)
                || watched.iter().any(|(w, _)| *w == e.channel_id)
            {
                continue;
            }
            let same_category = e.category_id.is_some() && e.category_id == seen.category_id;
            let shared_tags = e.tags.iter().filter(|t| seen.tags.contains(t)).count();
            let same_creator = e.owner_id.is_some() && e.owner_id == seen.owner_id;
            if !(same_category || shared_tags > 0 || same_creator) {
                continue;
            }
            taken.insert(e.channel_id.clone());
            let score = 2.0 - rank as f64 * 0.1
                + f64::from(u8::from(same_category)) * 0.5
                + shared_tags as f64 * 0.2;
            out.push((
                score,
                Recommendation {
                    stream: view(&state, e, &counts),
                    reason: format!("because you watched {}", seen.title),
                },
            ));
        }
    }
    out.sort_by(|a, b| {
        b.1.stream
            .live
            .cmp(&a.1.stream.live)
            .then(b.0.total_cmp(&a.0))
    });
    Ok(axum::Json(RecommendationList {
        items: out.into_iter().map(|(_, r)| r).take(30).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub group: String,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
}

/// The organization's audience accounts (viewer admin).
#[utoipa::path(
    get, path = "/viewer-admin/accounts", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = AccountList))
)]
async fn admin_accounts(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<AccountList>> {
    let mut items = Vec::new();
    for role in [Role::Free, Role::Premium, Role::Vip] {
        let page = state
            .db
            .list_users(
                &who.organization_id,
                &UserFilter {
                    role: Some(role.as_str().to_string()),
                    ..Default::default()
                },
                None,
                200,
            )
            .await?;
        items.extend(page.items.into_iter().map(|u| AccountView {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            group: u.role,
            email_verified: u.email_verified_at.is_some(),
            disabled: u.disabled_at.is_some(),
            created_at: rfc3339(u.created_at),
            last_login_at: u.last_login_at.map(rfc3339),
        }));
    }
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(axum::Json(AccountList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAnalytics {
    /// Open sessions with a recent heartbeat, all of the organization's streams.
    pub viewers_now: i64,
    /// Watch seconds of the organization's streams over the last 24 hours.
    pub watch_seconds_24h: i64,
    pub sessions_24h: i64,
    pub anonymous_sessions_24h: i64,
    /// Streams by watch time over the last 24 hours.
    pub top_streams: Vec<TopStream>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopStream {
    pub stream_id: String,
    pub title: String,
    pub watch_seconds: i64,
    pub sessions: i64,
}

/// Viewing figures of the organization's streams (viewer admin).
#[utoipa::path(
    get, path = "/viewer-admin/analytics", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = AdminAnalytics))
)]
async fn admin_analytics(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<AdminAnalytics>> {
    let entries = state
        .db
        .catalog_entries(&CatalogFilter {
            organization_id: Some(&who.organization_id),
            limit: 2000,
            ..Default::default()
        })
        .await?;
    let titles: HashMap<&str, &str> = entries
        .iter()
        .map(|e| (e.channel_id.as_str(), e.title.as_str()))
        .collect();
    let counts = counts(&state).await?;
    let sessions = state
        .db
        .sessions_since(lunora_store::now_ms() - 86_400_000)
        .await?;
    let mut per: HashMap<&str, (i64, i64)> = HashMap::new();
    let (mut watch, mut n, mut anon) = (0, 0, 0);
    for s in sessions
        .iter()
        .filter(|s| titles.contains_key(s.stream_id.as_str()))
    {
        watch += s.watched_ms;
        n += 1;
        if s.user_id.is_none() {
            anon += 1;
        }
        let e = per.entry(s.stream_id.as_str()).or_default();
        e.0 += s.watched_ms;
        e.1 += 1;
    }
    let mut top: Vec<TopStream> = per
        .into_iter()
        .map(|(id, (w, c))| TopStream {
            stream_id: id.to_string(),
            title: titles.get(id).copied().unwrap_or("").to_string(),
            watch_seconds: w / 1000,
            sessions: c,
        })
        .collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.watch_seconds));
    top.truncate(10);
    Ok(axum::Json(AdminAnalytics {
        viewers_now: titles.keys().filter_map(|id| counts.get(*id)).sum(),
        watch_seconds_24h: watch / 1000,
        sessions_24h: n,
        anonymous_sessions_24h: anon,
        top_streams: top,
    }))
}
