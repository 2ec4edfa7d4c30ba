//! In-app notifications (seed 002 "Monitoring & Alerting", notifications): each alert raised or
//! resolved becomes a notification for the organization's administrators and operators, kept in
//! the database, pushed as a `notification` event on the recipient's own `user:{id}` topic, and
//! listed at `/api/v1/notifications`. Critical alerts are e-mailed to administrators too.

use axum::extract::{Path, Query, State};
use lunora_store::{NewNotification, Notification};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::events::catalog::{AlertEvent, NotificationView};
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(mark_read))
        .routes(routes!(batch_read))
}

/// Roles whose users receive the organization's alerts in-app.
const ALERT_ROLES: &[&str] = &["admin", "operator"];

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind,
            severity: n.severity,
            title: n.title,
            body: n.body,
            subject: n.subject,
            created_at: rfc3339(n.created_at),
            read_at: n.read_at.map(rfc3339),
        }
    }
}

/// Delivers an alert in-app to the organization's administrators and operators (and by e-mail
/// to administrators when it is critical and raised).
pub async fn deliver_alert(state: &AppState, organization_id: &str, event: &AlertEvent) {
    let alert = event.view();
    let raised = matches!(event, AlertEvent::Raised(_));
    let title = if raised {
        format!("{} alert: {}", alert.severity, alert.rule.replace('_', " "))
    } else {
        format!("resolved: {}", alert.rule.replace('_', " "))
    };
    let recipients = match state
        .db
        .alert_recipients(organization_id, ALERT_ROLES)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the alert recipients");
            return;
        }
    };
    let subject = format!("alert:{}", alert.id);
    for r in recipients {
        notify_user(
            state,
            &NewNotification {
                organization_id,
                user_id: &r.user_id,
                kind: crate::events::EventData::kind(event),
                severity: &alert.severity,
                title: &title,
                body: &alert.message,
                subject: &subject,
            },
        )
        .await;
        if raised && alert.severity == "critical" && r.role == "admin" {
            let body = format!(
                "{}\n\nRule: {}\nSubject: {}\nRaised: {}\n",
                alert.message, alert.rule, alert.subject, alert.raised_at
            );
            state
                .identity
                .mailer
                .send(
                    state,
                    crate::mail::Mail {
                        organization_id: Some(organization_id),
                        to: &r.email,
                        kind: "alert",
                        subject: &format!("[Lunora] {title}"),
                        body: &body,
                    },
                )
                .await;
        }
    }
}

/// Stores one notification for its user and pushes it as a `notification` event on the
/// user's own `user:{id}` topic. A failure is logged: a notification never fails the change
/// that caused it.
pub async fn notify_user(state: &AppState, new: &NewNotification<'_>) {
    match state.db.create_notification(new).await {
        Ok(n) => {
            let view = NotificationView::from(n);
            state
                .events
                .publish(new.organization_id, format!("user:{}", new.user_id), &view);
        }
        Err(e) => tracing::error!(error = %e, "cannot store a notification"),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct NotificationQuery {
    /// Only unread notifications.
    pub unread: Option<bool>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

/// The caller's own notifications, newest first.
#[utoipa::path(
    get, path = "/notifications", tag = "notifications",
    params(NotificationQuery),
    security(("bearer" = [])),
    responses((status = 200, body = NotificationList), (status = 400, body = crate::Problem))
)]
async fn list_notifications(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<NotificationQuery>,
) -> ApiResult<axum::Json<NotificationList>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_notifications(
            &who.user_id,
            q.unread.unwrap_or(false),
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(axum::Json(NotificationList {
        items: page.items.into_iter().map(NotificationView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Mark one of the caller's notifications read.
#[utoipa::path(
    post, path = "/notifications/{id}/read", tag = "notifications",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = NotificationView), (status = 404, body = crate::Problem))
)]
async fn mark_read(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NotificationView>> {
    match state.db.mark_notification_read(&who.user_id, &id).await? {
        Some(n) => Ok(axum::Json(n.into())),
        None => Err(ApiError::not_found("no such notification")),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRead {
    /// Notifications to mark read (1–500 ids); ids that are not the caller's are ignored.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Mark every unread notification of the caller read instead.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchReadResult {
    /// How many notifications went from unread to read.
    pub marked: u64,
}

/// Mark several (or all) of the caller's notifications read.
#[utoipa::path(
    post, path = "/notifications/batch-read", tag = "notifications",
    request_body = BatchRead,
    security(("bearer" = [])),
    responses((status = 200, body = BatchReadResult), (status = 400, body = crate::Problem))
)]
async fn batch_read(
    State(state): State<AppState>,
    who: Principal,
    crate::extract::Json(req): crate::extract::Json<BatchRead>,
) -> ApiResult<axum::Json<BatchReadResult>> {
    let ids = match (req.all, req.ids.len()) {
        (true, 0) => None,
        (true, _) => {
            return Err(ApiError::invalid(
                "ids",
                "give either ids or all: true, not both",
            ))
        }
        (false, 1..=500) => Some(req.ids),
        (false, _) => return Err(ApiError::invalid("ids", "ids must hold 1–500 ids")),
    };
    let marked = state
        .db
        .mark_notifications_read(&who.user_id, ids.as_deref())
        .await?;
    Ok(axum::Json(BatchReadResult { marked }))
}
