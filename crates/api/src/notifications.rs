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
        let created = state
            .db
            .create_notification(&NewNotification {
                organization_id,
                user_id: &r.user_id,
                kind: crate::events::EventData::kind(event),
                severity: &alert.severity,
                title: &title,
                body: &alert.message,
                subject: &subject,
            })
            .await;
        match created {
            Ok(n) => {
                let view = NotificationView::from(n);
                state
                    .events
                    .publish(organization_id, format!("user:{}", r.user_id), &view);
            }
            Err(e) => tracing::error!(error = %e, "cannot store a notification"),
        }
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
