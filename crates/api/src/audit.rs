//! `/api/v1/audit-logs`: the organization's audit log (every state-changing request and every
//! secret reveal, recorded by the request guard), filtered and paged, newest first; and the
//! periodic purge that keeps it to the retention period.

use axum::extract::{Path, Query, State};
use lunora_store::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(get_audit))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    pub organization_id: Option<String>,
    /// The acting user, when known.
    pub actor_id: Option<String>,
    /// The API token the actor used, if any.
    pub api_token_id: Option<String>,
    /// E.g. `channel.create`, `auth.login`, `secret.reveal`.
    pub action: String,
    pub method: String,
    /// The request path, which names the resource.
    pub resource: String,
    pub resource_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: String,
    pub status: i64,
    pub ip: String,
    pub user_agent: String,
    pub request_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    pub created_at: String,
}

fn view(e: AuditEntry) -> AuditView {
    AuditView {
        details: e
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok()),
        created_at: rfc3339(e.created_at),
        id: e.id,
        organization_id: e.organization_id,
        actor_id: e.actor_id,
        api_token_id: e.api_token_id,
        action: e.action,
        method: e.method,
        resource: e.resource,
        resource_id: e.resource_id,
        result: e.result,
        status: e.status,
        ip: e.ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this user's actions.
    pub actor_id: Option<String>,
    /// Only this action, e.g. `user.update`.
    pub action: Option<String>,
    /// Only resources whose path starts with this, e.g. `/api/v1/channels/`.
    pub resource: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: Option<String>,
    /// From this time on (RFC 3339).
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    pub until: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

/// Parses RFC 3339 (`2026-01-31T12:00:00Z`, fractions and offsets allowed) to unix ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, b),
        None => (clock, ""),
    };
    let mut t = hms.splitn(3, ':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let millis: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        if !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<3}").parse().ok()?
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (yy, mth) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mth + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs) * 1000 + millis)
}

fn time_param(v: Option<&str>, field: &str) -> ApiResult<Option<i64>> {
    v.map(|s| {
        parse_rfc3339(s).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("`{s}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"),
            )
        })
    })
    .transpose()
}

/// The organization's audit log, newest first, filtered by actor, action, resource, result and
/// time range.
#[utoipa::path(
    get, path = "/audit-logs", tag = "audit",
    params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditList), (status = 400, body = crate::Problem))
)]
async fn list_audit(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<AuditList>> {
    who.require(Permission::AuditRead)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–500"));
    }
    if let Some(r) = q.result.as_deref() {
        if !matches!(r, "success" | "failure" | "denied") {
            return Err(ApiError::invalid(
                "result",
                "result must be `success`, `failure` or `denied`",
            ));
        }
    }
    let filter = AuditFilter {
        actor_id: q.actor_id,
        action: q.action,
        resource: q.resource,
        result: q.result,
        since: time_param(q.since.as_deref(), "since")?,
        until: time_param(q.until.as_deref(), "until")?,
    };
    let page = state
        .db
        .list_audit(&who.organization_id, &filter, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(AuditList {
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One audit entry of the organization.
#[utoipa::path(
    get, path = "/audit-logs/{id}", tag = "audit",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AuditView), (status = 404, body = crate::Problem))
)]
async fn get_audit(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AuditView>> {
    who.require(Permission::AuditRead)?;
    let e = state
        .db
        .audit_entry(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such audit entry"))?;
    Ok(axum::Json(view(e)))
}

/// Starts the background upkeep of identity: purges audit entries past retention, spent
/// one-time links and old outbox mail, and prunes the in-memory abuse counters. Runs until the
/// runtime stops.
pub fn spawn_maintenance(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            state.identity.limiter.prune();
            state.identity.throttle.prune();
            // Database purges hourly (and at start).
            if n.is_multiple_of(60) {
                let now = lunora_store::now_ms();
                let cutoff = now - state.auth.audit_retention.as_millis() as i64;
                match state.db.purge_audit(cutoff).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "purged audit entries past retention"),
                    Err(e) => tracing::warn!(error = %e, "audit purge failed"),
                }
                if let Err(e) = state.db.purge_spent_links(now - 86_400_000).await {
                    tracing::warn!(error = %e, "purging spent links failed");
                }
                if let Err(e) = state.db.purge_outbox(cutoff).await {
                    tracing::warn!(error = %e, "outbox purge failed");
                }
                crate::ads::prune(&state).await;
            }
            n = n.wrapping_add(1);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0i64, 951_782_400_123, 1_795_448_481_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
