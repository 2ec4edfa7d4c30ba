//! The request guard: one middleware in front of every `/api/v1` route that
//!
//! 1. finds the route's rule in the route table (no rule: refused),
//! 2. applies the rate limit of the route's class and the caller's role,
//! 3. authenticates the caller and checks the rule's access (401 / 403 before any handler runs),
//! 4. records every state-changing request in the audit log, with what handlers add to the
//!    request's [`AuditSlot`] (the actor of a sign-in, details of a secret reveal).
//!
//! Handlers cannot forget any of it: a route without a rule answers 403 `no_access_rule`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lunora_store::AuditEntry;

use super::permissions::{self, Access, RateClass, RouteRule};
use super::{authenticate, enrolment_required, peer_ip, Principal, Realm, Via};
use crate::error::ApiError;
use crate::AppState;

/// What a handler tells the audit log about its request, beyond what the guard sees.
#[derive(Debug, Default, Clone)]
pub struct AuditNote {
    pub actor_id: Option<String>,
    pub organization_id: Option<String>,
    pub api_token_id: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<&'static str>,
    pub details: Option<serde_json::Value>,
    /// Record this request even though its method does not change state.
    pub force: bool,
}

/// The audit record of the current request, shared between the guard and the handler.
#[derive(Debug, Default, Clone)]
pub struct AuditSlot(Arc<Mutex<AuditNote>>);

impl AuditSlot {
    pub fn update(&self, f: impl FnOnce(&mut AuditNote)) {
        if let Ok(mut n) = self.0.lock() {
            f(&mut n);
        }
    }

    /// Names the acting user (for routes that are public, such as sign-in).
    pub fn actor(&self, user_id: &str, organization_id: &str) {
        self.update(|n| {
            n.actor_id = Some(user_id.to_string());
            n.organization_id = Some(organization_id.to_string());
        });
    }

    pub fn resource_id(&self, id: &str) {
        self.update(|n| n.resource_id = Some(id.to_string()));
    }

    pub fn details(&self, details: serde_json::Value) {
        self.update(|n| n.details = Some(details));
    }

    fn note(&self) -> AuditNote {
        self.0.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditSlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<AuditSlot>()
            .cloned()
            .unwrap_or_default())
    }
}

fn too_many(code: &'static str, detail: String, wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, detail).with_header(
        header::RETRY_AFTER,
        HeaderValue::from_str(&secs.to_string()).unwrap_or(HeaderValue::from_static("1")),
    )
}

/// Rate limit of a signed-in caller, by role.
fn caller_limit(state: &AppState, p: &Principal) -> u32 {
    let r = &state.auth.rate;
    match (p.via, p.realm) {
        (Via::ApiToken, _) => r.api_token_per_minute,
        (_, Realm::Audience) => r.audience_per_minute,
        _ => r.staff_per_minute,
    }
}

async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    rule: &RouteRule,
    ip: IpAddr,
    slot: &AuditSlot,
) -> Result<Option<Principal>, ApiError> {
    let limits = &state.identity.limiter;
    let rates = &state.auth.rate;
    if rule.rate == RateClass::Auth {
        limits
            .take(&format!("auth:{ip}"), rates.auth_per_minute)
            .map_err(|w| {
                too_many(
                    "rate_limited",
                    "too many sign-in requests from this address; wait and try again".into(),
                    w,
                )
            })?;
    }
    if rule.access == Access::Public {
        if rule.rate == RateClass::Default {
            limits
                .take(&format!("anon:{ip}"), rates.anonymous_per_minute)
                .map_err(|w| too_many("rate_limited", "too many requests; slow down".into(), w))?;
        }
        return Ok(None);
    }
    let p = authenticate(state, headers, method, ip).await?;
    // Known from here on, so a refusal below is recorded against the caller.
    slot.update(|n| {
        n.actor_id = Some(p.user_id.clone());
        n.organization_id = Some(p.organization_id.clone());
        n.api_token_id = p.api_token_id.clone();
    });
    if rule.rate != RateClass::None {
        let who = p.api_token_id.as_deref().unwrap_or(&p.user_id);
        limits
            .take(&format!("user:{who}"), caller_limit(state, &p))
            .map_err(|w| {
                too_many(
                    "rate_limited",
                    format!(
                        "too many requests for the {} role; slow down",
                        p.role.as_str()
                    ),
                    w,
                )
            })?;
    }
    if p.enrolment_only && !rule.during_mfa_enrolment {
        return Err(enrolment_required());
    }
    match rule.access {
        Access::Public | Access::Authenticated => {}
        Access::Permission(perm) => p.require(perm)?,
        Access::Superadmin => {
            if !p.superadmin || p.via == Via::ApiToken {
                return Err(ApiError::forbidden(
                    "only a platform superadmin, signed in with a session, may do this",
                ));
            }
        }
    }
    Ok(Some(p))
}

/// The middleware. Add it with `Router::layer` so it sees the matched route.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let Some(matched) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let Some(rule) = permissions::route_rule(method.as_str(), &matched) else {
        if permissions::path_known(&matched) {
            return ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method",
            )
            .into_response();
        }
        tracing::error!(route = %matched, %method, "route has no access rule");
        return ApiError::forbidden("this route has no access rule; it is refused")
            .with_code("no_access_rule")
            .into_response();
    };
    let ip = peer_ip(req.extensions());
    let user_agent: String = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());

    // Only the headers cross the await: a request body is not Sync.
    let headers = req.headers().clone();
    let res = match admit(&state, &headers, &method, rule, ip, &slot).await {
        Ok(principal) => {
            if let Some(p) = principal {
                req.extensions_mut().insert(p);
            }
            next.run(req).await
        }
        Err(e) => e.into_response(),
    };

    let note = slot.note();
    let changes_state = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if (changes_state && rule.audited) || note.force {
        let status = res.status();
        let result = if status.is_success() || status.is_redirection() {
            "success"
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            "denied"
        } else {
            "failure"
        };
        let resource_id = note
            .resource_id
            .clone()
            .or_else(|| {
                res.headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| l.rsplit('/').next())
                    .map(str::to_owned)
            })
            .or_else(|| last_param(&matched, &path));
        let entry = AuditEntry {
            id: String::new(),
            organization_id: note.organization_id,
            actor_id: note.actor_id,
            api_token_id: note.api_token_id,
            action: note.action.unwrap_or(rule.action).to_string(),
            method: method.as_str().to_string(),
            resource: path,
            resource_id,
            result: result.to_string(),
            status: i64::from(status.as_u16()),
            ip: ip.to_string(),
            user_agent,
            request_id,
            details: note.details.map(|d| d.to_string()),
            created_at: 0,
        };
        if let Err(e) = state.db.insert_audit(&entry).await {
            tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
        }
    }
    res
}

/// The value of the last `{param}` of `template` in `path`.
fn last_param(template: &str, path: &str) -> Option<String> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter(|(t, _)| t.starts_with('{'))
        .last()
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_param_is_taken_from_the_path() {
        assert_eq!(
            last_param(
                "/api/v1/users/{id}/sessions/{session_id}",
                "/api/v1/users/u1/sessions/s9"
            ),
            Some("s9".into())
        );
        assert_eq!(last_param("/api/v1/users", "/api/v1/users"), None);
    }
}
