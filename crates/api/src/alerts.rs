//! Alert rules evaluated inside Lunora (seed 000 "Alerting Strategy"), `/api/v1/alerts`, and
//! delivery of alerts to the event stream and to signed webhooks.
//!
//! Rules, checked every 2 s: a camera goes offline (`camera_offline`, warning), a destination
//! retries for longer than 15 s (`destination_retrying`, warning) or fails
//! (`destination_failed`, critical). An alert resolves by itself when its condition clears.
//! Webhooks receive `{"type": "alert.raised" | "alert.resolved", "alert": {…}}` with
//! `X-Lunora-Signature: sha256=HEX` (HMAC-SHA256 of `{timestamp}.{body}` under the webhook's
//! secret) and `X-Lunora-Timestamp`, retried with backoff up to 5 times.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use lunora_media::push::PushState;
use lunora_store::Alert;
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
        .routes(routes!(list_alerts))
        .routes(routes!(acknowledge))
        .routes(routes!(resolve))
        .routes(routes!(create_webhook))
        .routes(routes!(delete_webhook))
}

/// How long a destination may retry before it raises an alert.
pub const RETRYING_ALERT_AFTER: Duration = Duration::from_secs(15);

#[derive(Debug, Serialize, ToSchema, Clone)]
pub struct AlertView {
    pub id: String,
    pub rule: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    pub subject: String,
    pub message: String,
    /// `active`, `acknowledged` or `resolved`.
    pub state: String,
    pub raised_at: String,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        AlertView {
            id: a.id,
            rule: a.rule,
            severity: a.severity,
            subject: a.subject,
            message: a.message,
            state: a.state,
            raised_at: rfc3339(a.raised_at),
            acknowledged_at: a.acknowledged_at.map(rfc3339),
            acknowledged_by: a.acknowledged_by,
            resolved_at: a.resolved_at.map(rfc3339),
        }
    }
}

async fn announce(state: &AppState, kind: &'static str, alert: Alert) {
    use crate::events::catalog::AlertEvent;
    let org = alert.organization_id.clone();
    let view = AlertView::from(alert);
    let data = serde_json::to_value(&view).unwrap_or_default();
    let event = if kind == "alert.raised" {
        AlertEvent::Raised(view.clone())
    } else {
        AlertEvent::Resolved(view.clone())
    };
    state.events.publish(&org, "org".into(), &event);
    metrics::counter!("lunora_alerts_total", "type" => kind, "rule" => view.rule.clone())
        .increment(1);
    crate::notifications::deliver_alert(state, &org, &event).await;
    let hooks = match state.db.webhooks_with_secrets(&org, &state.secrets).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot read webhooks");
            return;
        }
    };
    let body = serde_json::json!({"type": kind, "alert": data}).to_string();
    for (hook, secret) in hooks.into_iter().filter(|(h, _)| h.enabled) {
        let body = body.clone();
        let client = state.http_client.clone();
        tokio::spawn(async move { deliver(client, hook.url, secret, body).await });
    }
}

/// Posts one signed webhook body, retrying with exponential backoff (5 attempts).
async fn deliver(client: reqwest::Client, url: String, secret: String, body: String) {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=5 {
        let ts = (lunora_store::now_ms() / 1000).to_string();
        let mac = hmac_sha256::HMAC::mac(format!("{ts}.{body}").as_bytes(), secret.as_bytes());
        let res = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-lunora-timestamp", &ts)
            .header(
                "x-lunora-signature",
                format!("sha256={}", lunora_store::crypto::hex(&mac)),
            )
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                metrics::counter!("lunora_webhook_deliveries_total", "result" => "ok").increment(1);
                return;
            }
            Ok(r) => {
                tracing::warn!(%url, status = %r.status(), attempt, "webhook refused the alert")
            }
            Err(e) => tracing::warn!(%url, error = %e, attempt, "webhook delivery failed"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    metrics::counter!("lunora_webhook_deliveries_total", "result" => "failed").increment(1);
}

/// Evaluates the rules every 2 s.
pub fn spawn_evaluator(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        // When each destination was first seen not live.
        let mut not_live_since: HashMap<String, Instant> = HashMap::new();
        loop {
            tick.tick().await;
            if let Err(e) = evaluate(&state, &mut not_live_since).await {
                tracing::warn!(error = %e.detail, "alert evaluation failed");
            }
        }
    })
}

pub(crate) async fn raise(
    state: &AppState,
    org: &str,
    rule: &str,
    severity: &str,
    subject: &str,
    message: String,
) -> ApiResult<()> {
    if let Some(a) = state
        .db
        .raise_alert(org, rule, severity, subject, &message)
        .await?
    {
        tracing::warn!(rule, subject, %message, "alert raised");
        announce(state, "alert.raised", a).await;
    }
    Ok(())
}

pub(crate) async fn clear(state: &AppState, org: &str, rule: &str, subject: &str) -> ApiResult<()> {
    if let Some(a) = state.db.resolve_alert_for(org, rule, subject).await? {
        tracing::info!(rule, subject, "alert resolved");
        announce(state, "alert.resolved", a).await;
    }
    Ok(())
}

async fn evaluate(
    state: &AppState,
    not_live_since: &mut HashMap<String, Instant>,
) -> ApiResult<()> {
    // Cameras: offline once they have been seen online.
    for cam in state.db.all_cameras().await?.iter() {
        let subject = format!("camera:{}", cam.id);
        match state.presence.online(&cam.id) {
            Some(false) if cam.enabled && state.presence.lost(&cam.id) => {
                raise(
                    state,
                    &cam.organization_id,
                    "camera_offline",
                    "warning",
                    &subject,
                    format!("camera `{}` is offline", cam.name),
                )
                .await?
            }
            Some(true) => clear(state, &cam.organization_id, "camera_offline", &subject).await?,
            _ => {}
        }
    }
    // Destinations of running sessions.
    let mut seen = HashSet::new();
    for (channel, destination, _platform, s) in state.streaming.snapshot().await {
        seen.insert(destination.clone());
        let Some(org) = state
            .db
            .channel_any_org(&channel)
            .await?
            .map(|c| c.organization_id)
        else {
            continue;
        };
        let subject = format!("destination:{destination}");
        match s.state {
            PushState::Live => {
                not_live_since.remove(&destination);
                clear(state, &org, "destination_retrying", &subject).await?;
                clear(state, &org, "destination_failed", &subject).await?;
            }
            PushState::Failed => {
                let why = s.last_error.unwrap_or_default();
                raise(
                    state,
                    &org,
                    "destination_failed",
                    "critical",
                    &subject,
                    format!("destination failed: {why}"),
                )
                .await?;
            }
            PushState::Retrying | PushState::Connecting => {
                let since = *not_live_since
                    .entry(destination.clone())
                    .or_insert_with(Instant::now);
                if since.elapsed() >= RETRYING_ALERT_AFTER {
                    let why = s.last_error.unwrap_or_default();
                    raise(
                        state,
                        &org,
                        "destination_retrying",
                        "warning",
                        &subject,
                        format!(
                            "destination retrying for {} s: {why}",
                            since.elapsed().as_secs()
                        ),
                    )
                    .await?;
                }
            }
            PushState::Idle => {}
        }
    }
    not_live_since.retain(|d, _| seen.contains(d));
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertQuery {
    /// `active` (unresolved, the default) or `history` (resolved).
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub items: Vec<AlertView>,
    pub next_cursor: Option<String>,
}

/// Active alerts (default) or the history of resolved ones, newest first.
#[utoipa::path(
    get, path = "/alerts", tag = "alerts",
    params(AlertQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AlertList))
)]
async fn list_alerts(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<AlertQuery>,
) -> ApiResult<axum::Json<AlertList>> {
    who.require(Permission::ChannelsRead)?;
    let open = match q.state.as_deref().unwrap_or("active") {
        "active" => Some(true),
        "history" => Some(false),
        "all" => None,
        _ => {
            return Err(ApiError::invalid(
                "state",
                "state must be active, history or all",
            ))
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_alerts(&who.organization_id, open, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(AlertList {
        items: page.items.into_iter().map(AlertView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Acknowledge an active alert (it stays open until its condition clears or it is resolved).
#[utoipa::path(
    post, path = "/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AlertView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn acknowledge(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AlertView>> {
    who.require(Permission::ChannelsWrite)?;
    match state
        .db
        .acknowledge_alert(&who.organization_id, &id, &who.user_id)
        .await?
    {
        Some(a) => Ok(axum::Json(a.into())),
        None => match state.db.alert(&who.organization_id, &id).await? {
            Some(_) => Err(ApiError::conflict(
                "only an active alert can be acknowledged",
            )),
            None => Err(ApiError::not_found("no such alert")),
        },
    }
}

/// Resolve an alert by hand.
#[utoipa::path(
    post, path = "/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AlertView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn resolve(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AlertView>> {
    who.require(Permission::ChannelsWrite)?;
    match state.db.resolve_alert(&who.organization_id, &id).await? {
        Some(a) => {
            announce(&state, "alert.resolved", a.clone()).await;
            Ok(axum::Json(a.into()))
        }
        None => match state.db.alert(&who.organization_id, &id).await? {
            Some(_) => Err(ApiError::conflict("the alert is already resolved")),
            None => Err(ApiError::not_found("no such alert")),
        },
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://…` (or `http://` for a receiver on this network).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    pub id: String,
    pub url: String,
    /// The signing secret, shown once: verify `X-Lunora-Signature` with it.
    pub secret: String,
}

/// Add a webhook for the organization's alerts; the signing secret is shown once.
#[utoipa::path(
    post, path = "/webhooks", tag = "alerts",
    request_body = CreateWebhook,
    security(("bearer" = [])),
    responses((status = 201, body = WebhookCreated), (status = 400, body = crate::Problem))
)]
async fn create_webhook(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<CreateWebhook>,
) -> ApiResult<(StatusCode, axum::Json<WebhookCreated>)> {
    who.require(Permission::OrganizationManage)?;
    let url = req.url.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && url
            .split("://")
            .nth(1)
            .is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
    if !ok {
        return Err(ApiError::invalid(
            "url",
            "url must be an http(s):// address with a host",
        ));
    }
    let secret = lunora_store::crypto::random_secret("whsec_");
    let hook = state
        .db
        .create_webhook(&who.organization_id, url, &secret, &state.secrets)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookCreated {
            id: hook.id,
            url: hook.url,
            secret,
        }),
    ))
}

/// Remove a webhook.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "alerts",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn delete_webhook(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::OrganizationManage)?;
    if state.db.delete_webhook(&who.organization_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such webhook"))
    }
}
