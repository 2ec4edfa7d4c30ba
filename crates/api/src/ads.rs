//! The podcast advertising workspace (seed 002, "PodcastFlow Pro"): advertisers (`/clients`),
//! `/shows`, `/episodes`, `/campaigns` with account teams, talent `/availability` and the
//! `/activities` log.
//!
//! Who sees what (the route table in `auth::permissions` gates each route by permission; the
//! rules below filter rows, in SQL for lists and here for single rows):
//! - admin: everything of the organization.
//! - seller: the campaigns they own (created) or are on the account team of, and the advertisers
//!   of those campaigns plus advertisers they created; shows (read-only, to sell against).
//!   Editing a campaign needs ownership or a team membership with `edit`; adding and removing
//!   team members needs ownership or `manage_team`.
//! - producer: every show and episode (create, schedule, assign talent); talent availability.
//! - talent: only the episodes they are assigned to (and those episodes' shows); their own
//!   availability.
//! - client: a user of role `client` is linked to one advertiser and sees that advertiser and its
//!   campaigns, read-only.
//!
//! A row the caller may not see answers 404 like one of another organization, so ids leak
//! nothing. Every change writes an activity (who, what, before/after) and publishes an event on
//! `ads` (the organization's ad topic, for admins), on the entity's topic (`campaign:{id}`,
//! `client:{id}`, `show:{id}`, `episode:{id}`) and on the parent's (`client:{id}` for a
//! campaign, `show:{id}` for an episode), so open pages refresh. Updates take `If-Match`; a
//! stale one answers 412 with the current row in `current` so a UI can show the other change.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::{
    Activity, ActivityFilter, AdClient, AdClientFields, AdClientFilter, Availability, Campaign,
    CampaignFields, CampaignFilter, Episode, EpisodeFields, EpisodeFilter, ListOptions, Scope,
    Show, ShowFields,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::catalog::WorkspaceEvent;
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, create_client))
        .routes(routes!(get_client, update_client, delete_client))
        .routes(routes!(link_client_user))
        .routes(routes!(unlink_client_user))
        .routes(routes!(list_shows, create_show))
        .routes(routes!(get_show, update_show, delete_show))
        .routes(routes!(list_episodes, create_episode))
        .routes(routes!(get_episode, update_episode, delete_episode))
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(add_team_member))
        .routes(routes!(remove_team_member))
        .routes(routes!(list_availability, create_availability))
        .routes(routes!(delete_availability))
        .routes(routes!(list_activities, log_activity))
        .routes(routes!(get_activity))
}

/// How long activities are kept.
pub const ACTIVITY_RETENTION_MS: i64 = 90 * 86_400_000;

/// The single hook for in-app notifications of ad events (assigned to an episode, added to a
/// campaign team, campaign status changed): a `notifications` row for the user and a
/// `notification` event on their `user:{id}` topic (the workspace event itself is published by
/// the caller). Stored in the background by one worker fed through a bounded queue
/// ([`NOTIFY_QUEUE`] deep): a notification never delays or fails the change, and a burst of
/// changes cannot pile up unbounded tasks; when the queue is full the notification is dropped,
/// logged and counted (`lunora_ad_notifications_dropped_total`).
pub fn notify(state: &AppState, organization_id: &str, user_id: &str, kind: &str, data: &Value) {
    let title = match kind {
        "episode.assigned" => format!(
            "You are assigned to the episode {}",
            data["title"].as_str().unwrap_or("")
        ),
        "campaign.team_added" => format!(
            "You were added to the account team of {}",
            data["name"].as_str().unwrap_or("a campaign")
        ),
        "campaign.status_changed" => format!(
            "Campaign {} is now {}",
            data["name"].as_str().unwrap_or(""),
            data["to"].as_str().unwrap_or("changed")
        ),
        other => other.replace(['.', '_'], " "),
    };
    let subject = ["episode_id", "campaign_id", "id"]
        .iter()
        .find_map(|k| data[*k].as_str())
        .map(|id| format!("{}:{id}", kind.split('.').next().unwrap_or("ads")))
        .unwrap_or_default();
    let job = NotifyJob {
        organization_id: organization_id.to_string(),
        user_id: user_id.to_string(),
        kind: kind.to_string(),
        severity: priority(kind, data),
        title,
        body: data.to_string(),
        subject,
    };
    let queue = state.ad_notify.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::channel(NOTIFY_QUEUE);
        tokio::spawn(notify_worker(state.clone(), rx));
        tx
    });
    if let Err(e) = queue.try_send(job) {
        metrics::counter!("lunora_ad_notifications_dropped_total").increment(1);
        tracing::warn!(error = %e, kind, "ad notification queue full: notification dropped");
    }
}

/// How many ad notifications may wait to be stored.
pub const NOTIFY_QUEUE: usize = 1024;

/// The priority of an ad notification, in the notifications' severity levels: `warning` (high)
/// when it asks the person to act or stops their work (assigned to an episode, a campaign of
/// theirs paused or cancelled), `info` otherwise.
fn priority(kind: &str, data: &Value) -> &'static str {
    match kind {
        "episode.assigned" => "warning",
        "campaign.status_changed"
            if matches!(data["to"].as_str(), Some("paused" | "cancelled")) =>
        {
            "warning"
        }
        _ => "info",
    }
}

/// One notification waiting to be stored and mailed.
#[derive(Debug)]
pub struct NotifyJob {
    organization_id: String,
    user_id: String,
    kind: String,
    severity: &'static str,
    title: String,
    body: String,
    subject: String,
}

/// Stores each notification in-app (and pushes it live), then e-mails it to the person (by
/// SMTP, or into the outbox without SMTP), one at a time.
async fn notify_worker(state: AppState, mut rx: tokio::sync::mpsc::Receiver<NotifyJob>) {
    while let Some(j) = rx.recv().await {
        crate::notifications::notify_user(
            &state,
            &lunora_store::NewNotification {
                organization_id: &j.organization_id,
                user_id: &j.user_id,
                kind: &j.kind,
                severity: j.severity,
                title: &j.title,
                body: &j.body,
                subject: &j.subject,
            },
        )
        .await;
        let to = match state.db.user(&j.user_id).await {
            Ok(Some(u)) => u.email,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "ad notification: cannot read the recipient");
                continue;
            }
        };
        let priority = if j.severity == "warning" {
            "high"
        } else {
            "normal"
        };
        let body = format!(
            "{}\n\nPriority: {priority}\nOpen the advertising workspace: /ads\n",
            j.title
        );
        state
            .identity
            .mailer
            .send(
                &state,
                crate::mail::Mail {
                    organization_id: Some(&j.organization_id),
                    to: &to,
                    kind: &j.kind,
                    subject: &format!("[Lunora] {}", j.title),
                    body: &body,
                },
            )
            .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

fn double<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// 1–200, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Column to sort by, `-` in front for descending (see each list for the columns).
    pub sort: Option<String>,
    /// Substring of the name (or title), case-insensitive.
    pub q: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// `YYYY-MM-DD`: campaigns running on or after / episodes airing on or after.
    pub from: Option<String>,
    /// `YYYY-MM-DD`: campaigns starting on or before / episodes airing on or before.
    pub to: Option<String>,
    /// Advertisers: exact e-mail.
    pub email: Option<String>,
    /// Campaigns of one advertiser.
    pub client_id: Option<String>,
    /// Episodes of one show.
    pub show_id: Option<String>,
    /// Episodes one talent is assigned to; availability of one user.
    pub talent_id: Option<String>,
}

fn list_options(q: &ListQuery, sorts: &[&str]) -> ApiResult<ListOptions> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let offset = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ApiError::invalid("cursor", "cursor must be a next_cursor value"))?,
    };
    if let Some(s) = &q.sort {
        if !sorts.contains(&s.trim_start_matches('-')) {
            return Err(ApiError::invalid(
                "sort",
                format!(
                    "sort must be one of {} (prefix - to descend)",
                    sorts.join(", ")
                ),
            ));
        }
    }
    for (field, v) in [("from", &q.from), ("to", &q.to)] {
        if let Some(d) = v {
            date(field, d)?;
        }
    }
    Ok(ListOptions {
        offset,
        limit,
        sort: q.sort.clone(),
    })
}

fn text(field: &str, v: &str, min: usize, max: usize) -> ApiResult<String> {
    let v = v.trim();
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be {min}–{max} characters without control characters"),
        ));
    }
    Ok(v.to_string())
}

fn opt_text(field: &str, v: &Option<String>, min: usize, max: usize) -> ApiResult<Option<String>> {
    v.as_deref().map(|v| text(field, v, min, max)).transpose()
}

/// A calendar day `YYYY-MM-DD`.
fn date(field: &str, v: &str) -> ApiResult<String> {
    let b = v.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && v[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && v[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d));
    if ok {
        Ok(v.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be a date YYYY-MM-DD"),
        ))
    }
}

fn opt_date(field: &str, v: &Option<Option<String>>) -> ApiResult<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(d)) if d.is_empty() => Ok(Some(None)),
        Some(Some(d)) => Ok(Some(Some(date(field, d)?))),
    }
}

fn email(v: &str) -> ApiResult<String> {
    let v = v.trim().to_lowercase();
    if v.is_empty() {
        return Ok(v);
    }
    let ok = v.len() <= 254
        && v.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(v)
    } else {
        Err(ApiError::invalid(
            "email",
            "email must be an e-mail address",
        ))
    }
}

pub(crate) fn one_of(field: &str, v: &str, allowed: &[&str]) -> ApiResult<String> {
    if allowed.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be one of {}", allowed.join(", ")),
        ))
    }
}

fn created<T: Serialize>(location: String, version: i64, body: T) -> Response {
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    crate::util::with_etag(res, version)
}

fn tagged<T: Serialize>(version: i64, body: T) -> Response {
    crate::util::with_etag(axum::Json(body).into_response(), version)
}

/// The version an update must find: `If-Match` against the current row; a stale one answers
/// 412 with the current row in the body.
#[allow(clippy::result_large_err)] // the 412 answer itself; built once per stale save
fn expected<T: Serialize>(
    headers: &HeaderMap,
    what: &str,
    version: i64,
    current: &T,
) -> Result<Option<i64>, Response> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) if crate::util::etag_matches(v, version) => Ok(Some(version)),
        Some(_) => Err(conflict_response(what, version, current)),
    }
}

/// The write every ad update shares: `If-Match` checked against the row as loaded, then the
/// store's update, where a conflict (someone saved between this read and this write) is
/// answered like a stale `If-Match`: 412 with the row as it is now in `current`. `Ok(Err(_))`
/// is that 412, ready to return.
async fn guarded_update<R, V: Serialize>(
    headers: &HeaderMap,
    what: &str,
    version: i64,
    before_view: &V,
    update: impl AsyncFnOnce(Option<i64>) -> Result<R, lunora_store::StoreError>,
    current: impl AsyncFnOnce() -> ApiResult<(i64, V)>,
) -> ApiResult<Result<R, Response>> {
    let expected = match expected(headers, what, version, before_view) {
        Ok(v) => v,
        Err(stale) => return Ok(Err(stale)),
    };
    match update(expected).await {
        Err(lunora_store::StoreError::Conflict(_)) => {
            let (version, now) = current().await?;
            Ok(Err(conflict_response(what, version, &now)))
        }
        other => Ok(Ok(other?)),
    }
}

fn conflict_response<T: Serialize>(what: &str, version: i64, current: &T) -> Response {
    let problem = crate::util::precondition_failed(what).problem();
    let mut body = serde_json::to_value(problem).unwrap_or_else(|_| json!({}));
    body["current"] = serde_json::to_value(current).unwrap_or(Value::Null);
    let mut res = (StatusCode::PRECONDITION_FAILED, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::error::PROBLEM_JSON),
    );
    crate::util::with_etag(res, version)
}

/// Records the activity and publishes the event of a change that is already committed.
///
/// The change stands whatever happens here: a failure to record its activity is logged and
/// counted (`lunora_ad_activity_failures_total`) and the event goes out without an
/// `activity_id`, but the request still answers the change it made. Answering an error for
/// a committed change would make a client retry it (a second advertiser, a second campaign).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn changed(
    state: &AppState,
    who: &Principal,
    entity_type: &str,
    id: &str,
    action: &str,
    before: Option<Value>,
    after: Option<Value>,
    extra_topics: &[String],
) {
    let activity = state
        .db
        .record_activity(
            &who.organization_id,
            entity_type,
            id,
            Some(&who.user_id),
            action,
            before.as_ref().map(Value::to_string).as_deref(),
            after.as_ref().map(Value::to_string).as_deref(),
        )
        .await;
    let activity_id = match activity {
        Ok(a) => Some(a.id),
        Err(e) => {
            metrics::counter!("lunora_ad_activity_failures_total").increment(1);
            tracing::warn!(error = %e, entity_type, id, action, "the change is made but its activity was not recorded");
            None
        }
    };
    let data = json!({
        "id": id,
        "entity_type": entity_type,
        "action": action,
        "actor_id": who.user_id,
        "activity_id": activity_id,
        "version": after.as_ref().and_then(|a| a.get("version")).cloned(),
        "after": after,
    });
    let kind = format!("{entity_type}.{action}");
    let mut topics = vec!["ads".to_string(), format!("{entity_type}:{id}")];
    topics.extend(extra_topics.iter().cloned());
    for t in topics {
        state.events.publish(
            &who.organization_id,
            t,
            &WorkspaceEvent::new(kind.clone(), data.clone()),
        );
    }
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}

/// An organization user of one of `roles`, or 400 naming `field`.
async fn user_with_role(
    state: &AppState,
    who: &Principal,
    field: &str,
    user_id: &str,
    roles: &[Role],
) -> ApiResult<()> {
    let user = state.db.user_in_org(&who.organization_id, user_id).await?;
    match user.and_then(|u| Role::parse(&u.role)) {
        Some(r) if roles.contains(&r) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            field,
            format!(
                "{field} must be a user of role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
        None => Err(ApiError::invalid(
            field,
            format!("{field} names no user of this organization"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Row rules

pub(crate) fn campaign_scope(who: &Principal) -> Scope<'_> {
    match who.role {
        Role::Admin => Scope::All,
        Role::Seller => Scope::Seller(&who.user_id),
        Role::Client => Scope::ClientUser(&who.user_id),
        _ => Scope::Nothing,
    }
}

fn show_scope(who: &Principal) -> Scope<'_> {
    match who.role {
        Role::Admin | Role::Producer | Role::Seller => Scope::All,
        Role::Talent => Scope::Talent(&who.user_id),
        _ => Scope::Nothing,
    }
}

fn episode_scope(who: &Principal) -> Scope<'_> {
    match who.role {
        Role::Admin | Role::Producer => Scope::All,
        Role::Talent => Scope::Talent(&who.user_id),
        _ => Scope::Nothing,
    }
}

async fn campaign_visible(state: &AppState, who: &Principal, c: &Campaign) -> ApiResult<bool> {
    Ok(match who.role {
        Role::Admin => true,
        Role::Seller => {
            c.owner_id.as_deref() == Some(&who.user_id)
                || c.team.iter().any(|m| m.user_id == who.user_id)
        }
        Role::Client => {
            state.db.ad_client_of_user(&who.user_id).await?.as_deref() == Some(&c.client_id)
        }
        _ => false,
    })
}

pub(crate) fn campaign_can(who: &Principal, c: &Campaign, manage_team: bool) -> bool {
    match who.role {
        Role::Admin => true,
        Role::Seller => {
            c.owner_id.as_deref() == Some(&who.user_id)
                || c.team.iter().any(|m| {
                    m.user_id == who.user_id
                        && if manage_team {
                            m.can_manage_team
                        } else {
                            m.can_edit
                        }
                })
        }
        _ => false,
    }
}

pub(crate) async fn load_campaign(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> ApiResult<Campaign> {
    match state.db.campaign(&who.organization_id, id).await? {
        Some(c) if campaign_visible(state, who, &c).await? => Ok(c),
        _ => Err(ApiError::not_found("no such campaign")),
    }
}

async fn client_visible(state: &AppState, who: &Principal, c: &AdClient) -> ApiResult<bool> {
    Ok(match who.role {
        Role::Admin => true,
        Role::Seller => {
            c.owner_id.as_deref() == Some(&who.user_id)
                || !state
                    .db
                    .list_campaigns(
                        &who.organization_id,
                        Scope::Seller(&who.user_id),
                        &CampaignFilter {
                            client_id: Some(c.id.clone()),
                            ..Default::default()
                        },
                        &ListOptions {
                            offset: 0,
                            limit: 1,
                            sort: None,
                        },
                    )
                    .await?
                    .items
                    .is_empty()
        }
        Role::Client => c.user_ids.contains(&who.user_id),
        _ => false,
    })
}

pub(crate) async fn load_client(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> ApiResult<AdClient> {
    match state.db.ad_client(&who.organization_id, id).await? {
        Some(c) if client_visible(state, who, &c).await? => Ok(c),
        _ => Err(ApiError::not_found("no such client")),
    }
}

async fn load_show(state: &AppState, who: &Principal, id: &str) -> ApiResult<Show> {
    let show = state.db.show(&who.organization_id, id).await?;
    let visible = match (&show, show_scope(who)) {
        (None, _) | (_, Scope::Nothing) => false,
        (Some(_), Scope::Talent(uid)) => !state
            .db
            .list_episodes(
                &who.organization_id,
                Scope::Talent(uid),
                &EpisodeFilter {
                    show_id: Some(id.to_string()),
                    ..Default::default()
                },
                &ListOptions {
                    offset: 0,
                    limit: 1,
                    sort: None,
                },
            )
            .await?
            .items
            .is_empty(),
        (Some(_), _) => true,
    };
    match show {
        Some(s) if visible => Ok(s),
        _ => Err(ApiError::not_found("no such show")),
    }
}

async fn load_episode(state: &AppState, who: &Principal, id: &str) -> ApiResult<Episode> {
    let ep = state.db.episode(&who.organization_id, id).await?;
    match (ep, episode_scope(who)) {
        (Some(e), Scope::All) => Ok(e),
        (Some(e), Scope::Talent(uid)) if e.talent_ids.iter().any(|t| t == uid) => Ok(e),
        _ => Err(ApiError::not_found("no such episode")),
    }
}

// ---------------------------------------------------------------------------------------------
// Views

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub notes: String,
    /// The seller who manages this advertiser.
    pub owner_id: Option<String>,
    /// Users of role `client` linked to this advertiser.
    pub user_ids: Vec<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn client_view(c: AdClient) -> ClientView {
    ClientView {
        id: c.id,
        name: c.name,
        email: c.email,
        phone: c.phone,
        notes: c.notes,
        owner_id: c.owner_id,
        user_ids: c.user_ids,
        version: c.version,
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<ClientView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn show_view(s: Show) -> ShowView {
    ShowView {
        id: s.id,
        name: s.name,
        description: s.description,
        category: s.category,
        version: s.version,
        created_at: rfc3339(s.created_at),
        updated_at: rfc3339(s.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowList {
    pub items: Vec<ShowView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EpisodeView {
    pub id: String,
    pub show_id: String,
    pub title: String,
    pub description: String,
    pub air_date: Option<String>,
    pub record_date: Option<String>,
    /// `draft`, `scheduled`, `recorded`, `published`.
    pub status: String,
    /// The Lunora recording of this episode (`/api/v1/recordings/{id}`).
    pub recording_id: Option<String>,
    /// Assigned talent.
    pub talent_ids: Vec<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn episode_view(e: Episode) -> EpisodeView {
    EpisodeView {
        id: e.id,
        show_id: e.show_id,
        title: e.title,
        description: e.description,
        air_date: e.air_date,
        record_date: e.record_date,
        status: e.status,
        recording_id: e.recording_id,
        talent_ids: e.talent_ids,
        version: e.version,
        created_at: rfc3339(e.created_at),
        updated_at: rfc3339(e.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EpisodeList {
    pub items: Vec<EpisodeView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamMemberView {
    pub user_id: String,
    /// What the member may do on this campaign: always `view`, plus `edit`, `manage_team`.
    pub permissions: Vec<String>,
    pub added_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub client_id: String,
    pub name: String,
    /// `draft`, `active`, `paused`, `completed`, `cancelled`.
    pub status: String,
    /// Budget in cents.
    pub budget_cents: i64,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// The seller (or admin) who created it.
    pub owner_id: Option<String>,
    pub team: Vec<TeamMemberView>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn campaign_view(c: Campaign) -> CampaignView {
    CampaignView {
        id: c.id,
        client_id: c.client_id,
        name: c.name,
        status: c.status,
        budget_cents: c.budget_cents,
        start_date: c.start_date,
        end_date: c.end_date,
        owner_id: c.owner_id,
        team: c
            .team
            .into_iter()
            .map(|m| {
                let mut permissions = vec!["view".to_string()];
                if m.can_edit {
                    permissions.push("edit".into());
                }
                if m.can_manage_team {
                    permissions.push("manage_team".into());
                }
                TeamMemberView {
                    user_id: m.user_id,
                    permissions,
                    added_at: rfc3339(m.added_at),
                }
            })
            .collect(),
        version: c.version,
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    pub items: Vec<CampaignView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    pub id: String,
    pub user_id: String,
    pub start_date: String,
    pub end_date: String,
    /// `false`: the talent is away on these days.
    pub available: bool,
    pub note: String,
    pub created_at: String,
}

fn availability_view(a: Availability) -> AvailabilityView {
    AvailabilityView {
        id: a.id,
        user_id: a.user_id,
        start_date: a.start_date,
        end_date: a.end_date,
        available: a.available,
        note: a.note,
        created_at: rfc3339(a.created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityList {
    pub items: Vec<AvailabilityView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    pub id: String,
    /// `campaign`, `client`, `show`, `episode`, `availability`.
    pub entity_type: String,
    pub entity_id: String,
    pub actor_id: Option<String>,
    /// `created`, `updated`, `deleted`, `team_added`, `team_removed`, `user_linked`, `note`, …
    pub action: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub created_at: String,
}

fn activity_view(a: Activity) -> ActivityView {
    ActivityView {
        id: a.id,
        entity_type: a.entity_type,
        entity_id: a.entity_id,
        actor_id: a.actor_id,
        action: a.action,
        before: a.before.and_then(|s| serde_json::from_str(&s).ok()),
        after: a.after.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: rfc3339(a.created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    pub items: Vec<ActivityView>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Clients (advertisers)

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
}

fn client_fields(b: &ClientBody, creating: bool) -> ApiResult<AdClientFields> {
    if creating && b.name.is_none() {
        return Err(ApiError::invalid("name", "name is required"));
    }
    Ok(AdClientFields {
        name: opt_text("name", &b.name, 1, 200)?,
        email: b.email.as_deref().map(email).transpose()?,
        phone: opt_text("phone", &b.phone, 0, 50)?,
        notes: opt_text("notes", &b.notes, 0, 4000)?,
    })
}

const CLIENT_SORTS: &[&str] = &["name", "email", "created_at", "updated_at"];

/// List advertisers (sort: name, email, created_at, updated_at; filters q, email).
#[utoipa::path(get, path = "/clients", tag = "ads", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = ClientList), (status = 400, body = crate::Problem)))]
async fn list_clients(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<ClientList>> {
    let opts = list_options(&q, CLIENT_SORTS)?;
    let page = state
        .db
        .list_ad_clients(
            &who.organization_id,
            campaign_scope(&who),
            &AdClientFilter {
                q: q.q.clone(),
                email: q.email.clone(),
            },
            &opts,
        )
        .await?;
    Ok(axum::Json(ClientList {
        items: page.items.into_iter().map(client_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create an advertiser; the caller becomes its owner.
#[utoipa::path(post, path = "/clients", tag = "ads", request_body = ClientBody, security(("bearer" = [])),
    responses((status = 201, body = ClientView), (status = 400, body = crate::Problem)))]
async fn create_client(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<ClientBody>,
) -> ApiResult<Response> {
    let f = client_fields(&b, true)?;
    let c = state
        .db
        .create_ad_client(&who.organization_id, Some(&who.user_id), &f)
        .await?;
    changed(
        &state,
        &who,
        "client",
        &c.id,
        "created",
        None,
        to_value(&client_view(c.clone())),
        &[],
    )
    .await;
    Ok(created(
        format!("/api/v1/clients/{}", c.id),
        c.version,
        client_view(c),
    ))
}

/// One advertiser.
#[utoipa::path(get, path = "/clients/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 404, body = crate::Problem)))]
async fn get_client(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let c = load_client(&state, &who, &id).await?;
    Ok(tagged(c.version, client_view(c)))
}

/// Change an advertiser (fields left out keep their value). `If-Match`: a stale version
/// answers 412 with the current advertiser in `current`.
#[utoipa::path(put, path = "/clients/{id}", tag = "ads", params(("id" = String, Path)), request_body = ClientBody,
    security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 404, body = crate::Problem), (status = 412, body = crate::Problem)))]
async fn update_client(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<ClientBody>,
) -> ApiResult<Response> {
    let before = load_client(&state, &who, &id).await?;
    let f = client_fields(&b, false)?;
    let before_view = client_view(before.clone());
    let after = match guarded_update(
        &headers,
        "client",
        before.version,
        &before_view,
        async |v| {
            state
                .db
                .update_ad_client(&who.organization_id, &id, &f, v)
                .await
        },
        async || {
            load_client(&state, &who, &id)
                .await
                .map(|now| (now.version, client_view(now)))
        },
    )
    .await?
    {
        Ok(after) => after,
        Err(stale) => return Ok(stale),
    };
    changed(
        &state,
        &who,
        "client",
        &id,
        "updated",
        to_value(&before_view),
        to_value(&client_view(after.clone())),
        &[],
    )
    .await;
    Ok(tagged(after.version, client_view(after)))
}

/// Delete an advertiser without campaigns (admins, or the seller who owns it).
#[utoipa::path(delete, path = "/clients/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem)))]
async fn delete_client(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let c = load_client(&state, &who, &id).await?;
    if who.role != Role::Admin && c.owner_id.as_deref() != Some(&who.user_id) {
        return Err(ApiError::forbidden(
            "only an admin or the seller who owns the client may delete it",
        ));
    }
    state.db.delete_ad_client(&who.organization_id, &id).await?;
    changed(
        &state,
        &who,
        "client",
        &id,
        "deleted",
        to_value(&client_view(c)),
        None,
        &[],
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkUser {
    /// A user of role `client`; a user is linked to one advertiser at a time.
    pub user_id: String,
}

/// Link a client user to this advertiser: they then see its campaigns (read-only).
#[utoipa::path(post, path = "/clients/{id}/users", tag = "ads", params(("id" = String, Path)), request_body = LinkUser,
    security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn link_client_user(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(b): Json<LinkUser>,
) -> ApiResult<Response> {
    let before = load_client(&state, &who, &id).await?;
    user_with_role(&state, &who, "user_id", &b.user_id, &[Role::Client]).await?;
    state.db.link_ad_client_user(&id, &b.user_id).await?;
    let after = load_client(&state, &who, &id).await?;
    changed(
        &state,
        &who,
        "client",
        &id,
        "user_linked",
        to_value(&client_view(before)),
        to_value(&client_view(after.clone())),
        &[],
    )
    .await;
    Ok(tagged(after.version, client_view(after)))
}

/// Unlink a client user from this advertiser.
#[utoipa::path(delete, path = "/clients/{id}/users/{user_id}", tag = "ads",
    params(("id" = String, Path), ("user_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem)))]
async fn unlink_client_user(
    State(state): State<AppState>,
    who: Principal,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let before = load_client(&state, &who, &id).await?;
    if !state.db.unlink_ad_client_user(&id, &user_id).await? {
        return Err(ApiError::not_found("the user is not linked to this client"));
    }
    let after = load_client(&state, &who, &id).await?;
    changed(
        &state,
        &who,
        "client",
        &id,
        "user_unlinked",
        to_value(&client_view(before)),
        to_value(&client_view(after)),
        &[],
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Shows

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
}

fn show_fields(b: &ShowBody, creating: bool) -> ApiResult<ShowFields> {
    if creating && b.name.is_none() {
        return Err(ApiError::invalid("name", "name is required"));
    }
    Ok(ShowFields {
        name: opt_text("name", &b.name, 1, 200)?,
        description: opt_text("description", &b.description, 0, 4000)?,
        category: opt_text("category", &b.category, 0, 100)?,
    })
}

const SHOW_SORTS: &[&str] = &["name", "category", "created_at", "updated_at"];

/// List shows (talent: only shows with an episode assigned to them). Sort: name, category,
/// created_at, updated_at; filter q.
#[utoipa::path(get, path = "/shows", tag = "ads", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = ShowList), (status = 400, body = crate::Problem)))]
async fn list_shows(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<ShowList>> {
    let opts = list_options(&q, SHOW_SORTS)?;
    let page = state
        .db
        .list_shows(&who.organization_id, show_scope(&who), &q.q, &opts)
        .await?;
    Ok(axum::Json(ShowList {
        items: page.items.into_iter().map(show_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a show.
#[utoipa::path(post, path = "/shows", tag = "ads", request_body = ShowBody, security(("bearer" = [])),
    responses((status = 201, body = ShowView), (status = 400, body = crate::Problem)))]
async fn create_show(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<ShowBody>,
) -> ApiResult<Response> {
    let f = show_fields(&b, true)?;
    let s = state.db.create_show(&who.organization_id, &f).await?;
    changed(
        &state,
        &who,
        "show",
        &s.id,
        "created",
        None,
        to_value(&show_view(s.clone())),
        &[],
    )
    .await;
    Ok(created(
        format!("/api/v1/shows/{}", s.id),
        s.version,
        show_view(s),
    ))
}

/// One show.
#[utoipa::path(get, path = "/shows/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ShowView), (status = 404, body = crate::Problem)))]
async fn get_show(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let s = load_show(&state, &who, &id).await?;
    Ok(tagged(s.version, show_view(s)))
}

/// Change a show (`If-Match`; 412 carries the current show in `current`).
#[utoipa::path(put, path = "/shows/{id}", tag = "ads", params(("id" = String, Path)), request_body = ShowBody,
    security(("bearer" = [])),
    responses((status = 200, body = ShowView), (status = 404, body = crate::Problem), (status = 412, body = crate::Problem)))]
async fn update_show(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<ShowBody>,
) -> ApiResult<Response> {
    let before = load_show(&state, &who, &id).await?;
    let f = show_fields(&b, false)?;
    let before_view = show_view(before.clone());
    let after = match guarded_update(
        &headers,
        "show",
        before.version,
        &before_view,
        async |v| state.db.update_show(&who.organization_id, &id, &f, v).await,
        async || {
            load_show(&state, &who, &id)
                .await
                .map(|now| (now.version, show_view(now)))
        },
    )
    .await?
    {
        Ok(after) => after,
        Err(stale) => return Ok(stale),
    };
    changed(
        &state,
        &who,
        "show",
        &id,
        "updated",
        to_value(&before_view),
        to_value(&show_view(after.clone())),
        &[],
    )
    .await;
    Ok(tagged(after.version, show_view(after)))
}

/// Delete a show with its episodes.
#[utoipa::path(delete, path = "/shows/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem)))]
async fn delete_show(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let s = load_show(&state, &who, &id).await?;
    state.db.delete_show(&who.organization_id, &id).await?;
    changed(
        &state,
        &who,
        "show",
        &id,
        "deleted",
        to_value(&show_view(s)),
        None,
        &[],
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Episodes

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpisodeBody {
    pub show_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// `YYYY-MM-DD`; null clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub air_date: Option<Option<String>>,
    /// `YYYY-MM-DD`; null clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub record_date: Option<Option<String>>,
    /// `draft`, `scheduled`, `recorded`, `published`.
    pub status: Option<String>,
    /// A Lunora recording of this organization; null clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub recording_id: Option<Option<String>>,
    /// Users of role `talent` assigned to the episode (replaces the list).
    pub talent_ids: Option<Vec<String>>,
}

const EPISODE_STATUSES: &[&str] = &["draft", "scheduled", "recorded", "published"];

async fn episode_fields(
    state: &AppState,
    who: &Principal,
    b: &EpisodeBody,
    creating: bool,
) -> ApiResult<EpisodeFields> {
    if creating && b.show_id.is_none() {
        return Err(ApiError::invalid("show_id", "show_id is required"));
    }
    if creating && b.title.is_none() {
        return Err(ApiError::invalid("title", "title is required"));
    }
    if let Some(show) = &b.show_id {
        if state.db.show(&who.organization_id, show).await?.is_none() {
            return Err(ApiError::invalid(
                "show_id",
                "show_id names no show of this organization",
            ));
        }
    }
    if let Some(Some(rec)) = &b.recording_id {
        if state
            .db
            .recording(&who.organization_id, rec)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                "recording_id",
                "recording_id names no recording of this organization",
            ));
        }
    }
    let talent_ids = match &b.talent_ids {
        Some(ids) => {
            if ids.len() > 50 {
                return Err(ApiError::invalid(
                    "talent_ids",
                    "at most 50 talent per episode",
                ));
            }
            let mut out: Vec<String> = Vec::new();
            for (i, t) in ids.iter().enumerate() {
                user_with_role(state, who, &format!("talent_ids[{i}]"), t, &[Role::Talent]).await?;
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
            Some(out)
        }
        None => None,
    };
    Ok(EpisodeFields {
        show_id: b.show_id.clone(),
        title: opt_text("title", &b.title, 1, 300)?,
        description: opt_text("description", &b.description, 0, 8000)?,
        air_date: opt_date("air_date", &b.air_date)?,
        record_date: opt_date("record_date", &b.record_date)?,
        status: b
            .status
            .as_deref()
            .map(|s| one_of("status", s, EPISODE_STATUSES))
            .transpose()?,
        recording_id: b.recording_id.clone(),
        talent_ids,
    })
}

const EPISODE_SORTS: &[&str] = &[
    "air_date",
    "record_date",
    "title",
    "status",
    "created_at",
    "updated_at",
];

/// Tells newly assigned talent (event on `user:{id}` and the notification hook).
fn announce_assignments(state: &AppState, who: &Principal, before: &[String], ep: &Episode) {
    for t in ep.talent_ids.iter().filter(|t| !before.contains(t)) {
        let data = json!({"episode_id": ep.id, "show_id": ep.show_id, "title": ep.title,
            "air_date": ep.air_date, "record_date": ep.record_date, "by": who.user_id});
        state.events.publish(
            &who.organization_id,
            format!("user:{t}"),
            &WorkspaceEvent::new("episode.assigned", data.clone()),
        );
        notify(state, &who.organization_id, t, "episode.assigned", &data);
    }
}

/// List episodes (talent: only their assigned ones). Sort: air_date, record_date, title,
/// status, created_at, updated_at; filters show_id, status, from/to (air date), q, talent_id.
#[utoipa::path(get, path = "/episodes", tag = "ads", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = EpisodeList), (status = 400, body = crate::Problem)))]
async fn list_episodes(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<EpisodeList>> {
    let opts = list_options(&q, EPISODE_SORTS)?;
    if let Some(s) = &q.status {
        one_of("status", s, EPISODE_STATUSES)?;
    }
    let page = state
        .db
        .list_episodes(
            &who.organization_id,
            episode_scope(&who),
            &EpisodeFilter {
                show_id: q.show_id.clone(),
                status: q.status.clone(),
                from: q.from.clone(),
                to: q.to.clone(),
                q: q.q.clone(),
                talent_id: q.talent_id.clone(),
            },
            &opts,
        )
        .await?;
    Ok(axum::Json(EpisodeList {
        items: page.items.into_iter().map(episode_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create (schedule) an episode, optionally assigning talent.
#[utoipa::path(post, path = "/episodes", tag = "ads", request_body = EpisodeBody, security(("bearer" = [])),
    responses((status = 201, body = EpisodeView), (status = 400, body = crate::Problem)))]
async fn create_episode(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<EpisodeBody>,
) -> ApiResult<Response> {
    let f = episode_fields(&state, &who, &b, true).await?;
    let e = state.db.create_episode(&who.organization_id, &f).await?;
    changed(
        &state,
        &who,
        "episode",
        &e.id,
        "created",
        None,
        to_value(&episode_view(e.clone())),
        &[format!("show:{}", e.show_id)],
    )
    .await;
    announce_assignments(&state, &who, &[], &e);
    Ok(created(
        format!("/api/v1/episodes/{}", e.id),
        e.version,
        episode_view(e),
    ))
}

/// One episode.
#[utoipa::path(get, path = "/episodes/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = EpisodeView), (status = 404, body = crate::Problem)))]
async fn get_episode(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let e = load_episode(&state, &who, &id).await?;
    Ok(tagged(e.version, episode_view(e)))
}

/// Change an episode: schedule, status, talent, recording (`If-Match`; 412 carries `current`).
#[utoipa::path(put, path = "/episodes/{id}", tag = "ads", params(("id" = String, Path)), request_body = EpisodeBody,
    security(("bearer" = [])),
    responses((status = 200, body = EpisodeView), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem), (status = 412, body = crate::Problem)))]
async fn update_episode(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<EpisodeBody>,
) -> ApiResult<Response> {
    let before = load_episode(&state, &who, &id).await?;
    let f = episode_fields(&state, &who, &b, false).await?;
    let before_view = episode_view(before.clone());
    let after = match guarded_update(
        &headers,
        "episode",
        before.version,
        &before_view,
        async |v| {
            state
                .db
                .update_episode(&who.organization_id, &id, &f, v)
                .await
        },
        async || {
            load_episode(&state, &who, &id)
                .await
                .map(|now| (now.version, episode_view(now)))
        },
    )
    .await?
    {
        Ok(after) => after,
        Err(stale) => return Ok(stale),
    };
    changed(
        &state,
        &who,
        "episode",
        &id,
        "updated",
        to_value(&before_view),
        to_value(&episode_view(after.clone())),
        &[format!("show:{}", after.show_id)],
    )
    .await;
    announce_assignments(&state, &who, &before.talent_ids, &after);
    Ok(tagged(after.version, episode_view(after)))
}

/// Delete an episode.
#[utoipa::path(delete, path = "/episodes/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem)))]
async fn delete_episode(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let e = load_episode(&state, &who, &id).await?;
    state.db.delete_episode(&who.organization_id, &id).await?;
    let show = format!("show:{}", e.show_id);
    changed(
        &state,
        &who,
        "episode",
        &id,
        "deleted",
        to_value(&episode_view(e)),
        None,
        &[show],
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Campaigns

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    pub client_id: Option<String>,
    pub name: Option<String>,
    /// `draft`, `active`, `paused`, `completed`, `cancelled`.
    pub status: Option<String>,
    /// Budget in cents, ≥ 0.
    pub budget_cents: Option<i64>,
    /// `YYYY-MM-DD`; null clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub start_date: Option<Option<String>>,
    /// `YYYY-MM-DD`, not before `start_date`; null clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub end_date: Option<Option<String>>,
}

const CAMPAIGN_STATUSES: &[&str] = &["draft", "active", "paused", "completed", "cancelled"];
const CAMPAIGN_SORTS: &[&str] = &[
    "name",
    "status",
    "start_date",
    "end_date",
    "budget_cents",
    "created_at",
    "updated_at",
];

async fn campaign_fields(
    state: &AppState,
    who: &Principal,
    b: &CampaignBody,
    current: Option<&Campaign>,
) -> ApiResult<CampaignFields> {
    if current.is_none() {
        if b.client_id.is_none() {
            return Err(ApiError::invalid("client_id", "client_id is required"));
        }
        if b.name.is_none() {
            return Err(ApiError::invalid("name", "name is required"));
        }
    }
    if let Some(client) = &b.client_id {
        let ok = match state.db.ad_client(&who.organization_id, client).await? {
            Some(c) => {
                who.role == Role::Admin
                    || c.owner_id.as_deref() == Some(&who.user_id)
                    || client_visible(state, who, &c).await?
            }
            None => false,
        };
        if !ok {
            return Err(ApiError::invalid(
                "client_id",
                "client_id names no client you can see",
            ));
        }
    }
    if b.budget_cents
        .is_some_and(|v| !(0..=1_000_000_000_000).contains(&v))
    {
        return Err(ApiError::invalid(
            "budget_cents",
            "budget_cents must be 0 or more",
        ));
    }
    let start_date = opt_date("start_date", &b.start_date)?;
    let end_date = opt_date("end_date", &b.end_date)?;
    let start = start_date
        .clone()
        .unwrap_or_else(|| current.and_then(|c| c.start_date.clone()));
    let end = end_date
        .clone()
        .unwrap_or_else(|| current.and_then(|c| c.end_date.clone()));
    if let (Some(s), Some(e)) = (&start, &end) {
        if e < s {
            return Err(ApiError::invalid(
                "end_date",
                "end_date must not be before start_date",
            ));
        }
    }
    Ok(CampaignFields {
        client_id: b.client_id.clone(),
        name: opt_text("name", &b.name, 1, 200)?,
        status: b
            .status
            .as_deref()
            .map(|s| one_of("status", s, CAMPAIGN_STATUSES))
            .transpose()?,
        budget_cents: b.budget_cents,
        start_date,
        end_date,
    })
}

pub(crate) fn campaign_topics(c: &Campaign) -> Vec<String> {
    vec![format!("client:{}", c.client_id)]
}

/// List campaigns the caller may see (seller: owned or on the team; client: its advertiser's).
/// Sort: name, status, start_date, end_date, budget_cents, created_at, updated_at (default
/// newest first); filters status, client_id, from/to (running within), q.
#[utoipa::path(get, path = "/campaigns", tag = "ads", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = CampaignList), (status = 400, body = crate::Problem)))]
async fn list_campaigns(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<CampaignList>> {
    let opts = list_options(&q, CAMPAIGN_SORTS)?;
    if let Some(s) = &q.status {
        one_of("status", s, CAMPAIGN_STATUSES)?;
    }
    let page = state
        .db
        .list_campaigns(
            &who.organization_id,
            campaign_scope(&who),
            &CampaignFilter {
                status: q.status.clone(),
                client_id: q.client_id.clone(),
                from: q.from.clone(),
                to: q.to.clone(),
                q: q.q.clone(),
            },
            &opts,
        )
        .await?;
    Ok(axum::Json(CampaignList {
        items: page.items.into_iter().map(campaign_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a campaign; the caller owns it.
#[utoipa::path(post, path = "/campaigns", tag = "ads", request_body = CampaignBody, security(("bearer" = [])),
    responses((status = 201, body = CampaignView), (status = 400, body = crate::Problem)))]
async fn create_campaign(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<CampaignBody>,
) -> ApiResult<Response> {
    let f = campaign_fields(&state, &who, &b, None).await?;
    let c = state
        .db
        .create_campaign(&who.organization_id, Some(&who.user_id), &f)
        .await?;
    changed(
        &state,
        &who,
        "campaign",
        &c.id,
        "created",
        None,
        to_value(&campaign_view(c.clone())),
        &campaign_topics(&c),
    )
    .await;
    Ok(created(
        format!("/api/v1/campaigns/{}", c.id),
        c.version,
        campaign_view(c),
    ))
}

/// One campaign with its account team.
#[utoipa::path(get, path = "/campaigns/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CampaignView), (status = 404, body = crate::Problem)))]
async fn get_campaign(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let c = load_campaign(&state, &who, &id).await?;
    Ok(tagged(c.version, campaign_view(c)))
}

/// Change a campaign (owner, admin, or a team member with `edit`). `If-Match`: a stale version
/// answers 412 with the current campaign in `current`.
#[utoipa::path(put, path = "/campaigns/{id}", tag = "ads", params(("id" = String, Path)), request_body = CampaignBody,
    security(("bearer" = [])),
    responses((status = 200, body = CampaignView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 404, body = crate::Problem), (status = 412, body = crate::Problem)))]
async fn update_campaign(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<CampaignBody>,
) -> ApiResult<Response> {
    let before = load_campaign(&state, &who, &id).await?;
    if !campaign_can(&who, &before, false) {
        return Err(ApiError::forbidden(
            "you may view this campaign but not edit it",
        ));
    }
    let f = campaign_fields(&state, &who, &b, Some(&before)).await?;
    let before_view = campaign_view(before.clone());
    let after = match guarded_update(
        &headers,
        "campaign",
        before.version,
        &before_view,
        async |v| {
            state
                .db
                .update_campaign(&who.organization_id, &id, &f, v)
                .await
        },
        async || {
            load_campaign(&state, &who, &id)
                .await
                .map(|now| (now.version, campaign_view(now)))
        },
    )
    .await?
    {
        Ok(after) => after,
        Err(stale) => return Ok(stale),
    };
    changed(
        &state,
        &who,
        "campaign",
        &id,
        "updated",
        to_value(&before_view),
        to_value(&campaign_view(after.clone())),
        &campaign_topics(&after),
    )
    .await;
    if before.status != after.status {
        let data = json!({"campaign_id": id, "name": after.name, "from": before.status, "to": after.status, "by": who.user_id});
        state.events.publish(
            &who.organization_id,
            format!("campaign:{id}"),
            &WorkspaceEvent::new("campaign.status_changed", data.clone()),
        );
        let mut people: Vec<&str> = after.team.iter().map(|m| m.user_id.as_str()).collect();
        people.extend(after.owner_id.as_deref());
        for u in people.into_iter().filter(|u| *u != who.user_id) {
            notify(
                &state,
                &who.organization_id,
                u,
                "campaign.status_changed",
                &data,
            );
        }
    }
    Ok(tagged(after.version, campaign_view(after)))
}

/// Delete a campaign (admin or owner).
#[utoipa::path(delete, path = "/campaigns/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_campaign(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let c = load_campaign(&state, &who, &id).await?;
    if who.role != Role::Admin && c.owner_id.as_deref() != Some(&who.user_id) {
        return Err(ApiError::forbidden(
            "only an admin or the campaign's owner may delete it",
        ));
    }
    state.db.delete_campaign(&who.organization_id, &id).await?;
    let topics = campaign_topics(&c);
    changed(
        &state,
        &who,
        "campaign",
        &id,
        "deleted",
        to_value(&campaign_view(c)),
        None,
        &topics,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    /// A seller or admin of the organization.
    pub user_id: String,
    /// On top of `view`: `edit`, `manage_team`. Default: none (view only).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// Add a member to the account team, or change their permissions (owner, admin, or a member
/// with `manage_team`).
#[utoipa::path(post, path = "/campaigns/{id}/team", tag = "ads", params(("id" = String, Path)), request_body = TeamBody,
    security(("bearer" = [])),
    responses((status = 200, body = CampaignView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn add_team_member(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(b): Json<TeamBody>,
) -> ApiResult<Response> {
    let before = load_campaign(&state, &who, &id).await?;
    if !campaign_can(&who, &before, true) {
        return Err(ApiError::forbidden(
            "managing this campaign's team needs the manage_team permission on it",
        ));
    }
    user_with_role(
        &state,
        &who,
        "user_id",
        &b.user_id,
        &[Role::Seller, Role::Admin],
    )
    .await?;
    let mut edit = false;
    let mut manage = false;
    for (i, p) in b.permissions.iter().enumerate() {
        match p.as_str() {
            "view" => {}
            "edit" => edit = true,
            "manage_team" => manage = true,
            _ => {
                return Err(ApiError::invalid(
                    format!("permissions[{i}]"),
                    "a permission is view, edit or manage_team",
                ))
            }
        }
    }
    state
        .db
        .put_team_member(&id, &b.user_id, edit, manage)
        .await?;
    let after = load_campaign(&state, &who, &id).await?;
    changed(
        &state,
        &who,
        "campaign",
        &id,
        "team_added",
        to_value(&campaign_view(before.clone())),
        to_value(&campaign_view(after.clone())),
        &campaign_topics(&after),
    )
    .await;
    if !before.team.iter().any(|m| m.user_id == b.user_id) {
        let data = json!({"campaign_id": id, "name": after.name, "by": who.user_id});
        state.events.publish(
            &who.organization_id,
            format!("user:{}", b.user_id),
            &WorkspaceEvent::new("campaign.team_added", data.clone()),
        );
        notify(
            &state,
            &who.organization_id,
            &b.user_id,
            "campaign.team_added",
            &data,
        );
    }
    Ok(tagged(after.version, campaign_view(after)))
}

/// Remove a member from the account team.
#[utoipa::path(delete, path = "/campaigns/{id}/team/{user_id}", tag = "ads",
    params(("id" = String, Path), ("user_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn remove_team_member(
    State(state): State<AppState>,
    who: Principal,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let before = load_campaign(&state, &who, &id).await?;
    if !campaign_can(&who, &before, true) {
        return Err(ApiError::forbidden(
            "managing this campaign's team needs the manage_team permission on it",
        ));
    }
    if !state.db.remove_team_member(&id, &user_id).await? {
        return Err(ApiError::not_found(
            "the user is not on this campaign's team",
        ));
    }
    let after = state
        .db
        .campaign(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such campaign"))?;
    changed(
        &state,
        &who,
        "campaign",
        &id,
        "team_removed",
        to_value(&campaign_view(before)),
        to_value(&campaign_view(after.clone())),
        &campaign_topics(&after),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Availability

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityBody {
    /// Whose availability; default the caller. Only admins and producers name someone else.
    pub user_id: Option<String>,
    pub start_date: String,
    pub end_date: String,
    /// Default `true`; `false` marks days away.
    pub available: Option<bool>,
    pub note: Option<String>,
}

/// Availability: talent see their own; producers and admins everyone's (`talent_id` filter).
#[utoipa::path(get, path = "/availability", tag = "ads", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = AvailabilityList)))]
async fn list_availability(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<AvailabilityList>> {
    let user = match who.role {
        Role::Admin | Role::Producer => q.talent_id.clone(),
        _ => Some(who.user_id.clone()),
    };
    let items = state
        .db
        .list_availability(&who.organization_id, user.as_deref())
        .await?;
    Ok(axum::Json(AvailabilityList {
        items: items.into_iter().map(availability_view).collect(),
    }))
}

/// Record availability (talent for themselves; admins and producers for any talent).
#[utoipa::path(post, path = "/availability", tag = "ads", request_body = AvailabilityBody, security(("bearer" = [])),
    responses((status = 201, body = AvailabilityView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
async fn create_availability(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<AvailabilityBody>,
) -> ApiResult<Response> {
    let user = b.user_id.clone().unwrap_or_else(|| who.user_id.clone());
    if user != who.user_id {
        if !matches!(who.role, Role::Admin | Role::Producer) {
            return Err(ApiError::forbidden(
                "talent record only their own availability",
            ));
        }
        user_with_role(&state, &who, "user_id", &user, &[Role::Talent]).await?;
    }
    let start = date("start_date", &b.start_date)?;
    let end = date("end_date", &b.end_date)?;
    if end < start {
        return Err(ApiError::invalid(
            "end_date",
            "end_date must not be before start_date",
        ));
    }
    let note = text("note", b.note.as_deref().unwrap_or(""), 0, 500)?;
    let a = state
        .db
        .create_availability(
            &who.organization_id,
            &user,
            &start,
            &end,
            b.available.unwrap_or(true),
            &note,
        )
        .await?;
    let view = availability_view(a.clone());
    changed(
        &state,
        &who,
        "availability",
        &a.id,
        "created",
        None,
        to_value(&view),
        &[format!("user:{user}")],
    )
    .await;
    Ok(created(format!("/api/v1/availability/{}", a.id), 1, view))
}

/// Delete an availability record (its talent, a producer or an admin).
#[utoipa::path(delete, path = "/availability/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem)))]
async fn delete_availability(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let a = match state.db.availability(&who.organization_id, &id).await? {
        Some(a) if a.user_id == who.user_id || matches!(who.role, Role::Admin | Role::Producer) => {
            a
        }
        _ => return Err(ApiError::not_found("no such availability record")),
    };
    state
        .db
        .delete_availability(&who.organization_id, &id)
        .await?;
    let user = format!("user:{}", a.user_id);
    changed(
        &state,
        &who,
        "availability",
        &id,
        "deleted",
        to_value(&availability_view(a)),
        None,
        &[user],
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Activities

#[derive(Debug, Deserialize, IntoParams)]
pub struct ActivityQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `campaign`, `client`, `show`, `episode`, `availability`.
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
}

const ENTITY_TYPES: &[&str] = &["campaign", "client", "show", "episode", "availability"];

/// Whether the caller may see entity `kind`/`id` (activities and event topics).
pub async fn entity_visible(
    state: &AppState,
    who: &Principal,
    kind: &str,
    id: &str,
) -> ApiResult<bool> {
    let r = match kind {
        "campaign" => load_campaign(state, who, id).await.map(|_| ()),
        "client" => load_client(state, who, id).await.map(|_| ()),
        "show" => load_show(state, who, id).await.map(|_| ()),
        "episode" => load_episode(state, who, id).await.map(|_| ()),
        _ => return Ok(false),
    };
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `who` may hold the permission the route table gives the entity's read route.
fn may_read(who: &Principal, kind: &str) -> bool {
    let p = match kind {
        "campaign" => Permission::CampaignsRead,
        "client" => Permission::AdClientsRead,
        "show" => Permission::ShowsRead,
        "episode" => Permission::EpisodesRead,
        _ => return false,
    };
    who.can(p)
}

/// The activity log, newest first. Admins see all of it; everyone else names one entity they
/// can see (`entity_type` + `entity_id`) or sees only their own actions.
#[utoipa::path(get, path = "/activities", tag = "ads", params(ActivityQuery), security(("bearer" = [])),
    responses((status = 200, body = ActivityList), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn list_activities(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ActivityQuery>,
) -> ApiResult<axum::Json<ActivityList>> {
    let opts = list_options(
        &ListQuery {
            limit: q.limit,
            cursor: q.cursor.clone(),
            sort: None,
            q: None,
            status: None,
            from: None,
            to: None,
            email: None,
            client_id: None,
            show_id: None,
            talent_id: None,
        },
        &[],
    )?;
    if let Some(t) = &q.entity_type {
        one_of("entity_type", t, ENTITY_TYPES)?;
    }
    let mut filter = ActivityFilter {
        entity_type: q.entity_type.clone(),
        entity_id: q.entity_id.clone(),
        actor_id: q.actor_id.clone(),
        since: Some(lunora_store::now_ms() - ACTIVITY_RETENTION_MS),
    };
    if who.role != Role::Admin {
        match (&q.entity_type, &q.entity_id) {
            (Some(t), Some(id)) => {
                if !(may_read(&who, t) && entity_visible(&state, &who, t, id).await?) {
                    return Err(ApiError::not_found(format!("no such {t}")));
                }
            }
            _ => filter.actor_id = Some(who.user_id.clone()),
        }
    }
    let page = state
        .db
        .list_activities(&who.organization_id, &filter, &opts)
        .await?;
    Ok(axum::Json(ActivityList {
        items: page.items.into_iter().map(activity_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One activity (admins, its actor, or someone who can see its entity).
#[utoipa::path(get, path = "/activities/{id}", tag = "ads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ActivityView), (status = 404, body = crate::Problem)))]
async fn get_activity(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ActivityView>> {
    let a = state
        .db
        .activity(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such activity"))?;
    let ok = who.role == Role::Admin
        || a.actor_id.as_deref() == Some(&who.user_id)
        || (may_read(&who, &a.entity_type)
            && entity_visible(&state, &who, &a.entity_type, &a.entity_id).await?);
    if !ok {
        return Err(ApiError::not_found("no such activity"));
    }
    Ok(axum::Json(activity_view(a)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// `campaign`, `client`, `show`, `episode`.
    pub entity_type: String,
    pub entity_id: String,
    /// A note on the entity's timeline (1–2000 characters).
    pub note: String,
}

/// Log an activity (a note on an entity's timeline) on an entity the caller can see.
#[utoipa::path(post, path = "/activities", tag = "ads", request_body = NoteBody, security(("bearer" = [])),
    responses((status = 201, body = ActivityView), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn log_activity(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<NoteBody>,
) -> ApiResult<Response> {
    one_of("entity_type", &b.entity_type, &ENTITY_TYPES[..4])?;
    let note = text("note", &b.note, 1, 2000)?;
    if !(may_read(&who, &b.entity_type)
        && entity_visible(&state, &who, &b.entity_type, &b.entity_id).await?)
    {
        return Err(ApiError::not_found(format!("no such {}", b.entity_type)));
    }
    let a = state
        .db
        .record_activity(
            &who.organization_id,
            &b.entity_type,
            &b.entity_id,
            Some(&who.user_id),
            "note",
            None,
            Some(&json!({"note": note}).to_string()),
        )
        .await?;
    state.events.publish(
        &who.organization_id,
        format!("{}:{}", b.entity_type, b.entity_id),
        &WorkspaceEvent::new(
            "activity.note",
            json!({"activity_id": a.id, "entity_type": b.entity_type, "entity_id": b.entity_id, "actor_id": who.user_id, "note": note}),
        ),
    );
    let id = a.id.clone();
    Ok(created(
        format!("/api/v1/activities/{id}"),
        1,
        activity_view(a),
    ))
}

/// Whether `who` may subscribe to an ad topic (`ads`, `campaign:{id}`, `client:{id}`,
/// `show:{id}`, `episode:{id}`).
pub async fn topic_allowed(state: &AppState, who: &Principal, topic: &str) -> bool {
    match topic.split_once(':') {
        None => topic == "ads" && who.role == Role::Admin,
        Some((kind, id)) => {
            may_read(who, kind) && entity_visible(state, who, kind, id).await.unwrap_or(false)
        }
    }
}

/// Prunes activities past retention; run hourly by the maintenance task.
pub async fn prune(state: &AppState) {
    match state
        .db
        .purge_activities(lunora_store::now_ms() - ACTIVITY_RETENTION_MS)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "purged ad activities past 90 days"),
        Err(e) => tracing::warn!(error = %e, "purging ad activities failed"),
    }
}
