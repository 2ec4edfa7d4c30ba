//! Identity at the HTTP edge: sign-in, token rotation, MFA, the request guard that enforces the
//! route table before any handler runs, the [`Principal`] it admits, the permission table and
//! the abuse limits.

pub mod allowlist;
mod guard;
pub mod limits;
mod mfa;
pub mod password;
pub mod permissions;
mod routes;
mod tokens;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use lunora_store::crypto::hash_secret;

pub use guard::{guard, AuditSlot};
pub use limits::{LockoutPolicy, LoginThrottle, RateLimiter, RateLimits};
pub use password::Realm;
pub use permissions::{Access, Permission, Role};
pub(crate) use routes::{
    change_password, public_base, session_view, valid_display_name, valid_email,
};
pub use routes::{SessionView, TokenPair};
pub use tokens::TokenKeys;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub const ACCESS_COOKIE: &str = "lunora_access";
pub const REFRESH_COOKIE: &str = "lunora_refresh";
pub const CSRF_COOKIE: &str = "lunora_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Prefix of API tokens, so they are recognisable (and findable by secret scanners).
pub const API_TOKEN_PREFIX: &str = "lnr_";

/// Every identity route: sign-in, sessions, MFA and the permission table.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    routes::router().merge(mfa::router())
}

/// Session limits of a role (seed 000 "Session Management").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub max_sessions: usize,
    pub absolute: Duration,
    pub idle: Duration,
}

/// Whether staff must use TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaPolicy {
    /// Staff without TOTP must enrol at sign-in before anything else works.
    Required,
    Optional,
}

impl MfaPolicy {
    pub fn parse(s: &str) -> Option<MfaPolicy> {
        match s {
            "required" => Some(MfaPolicy::Required),
            "optional" => Some(MfaPolicy::Optional),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MfaPolicy::Required => "required",
            MfaPolicy::Optional => "optional",
        }
    }
}

/// An SMTP URL, which may carry a password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpUrl(****)")
    }
}

/// Settings of sign-in, tokens, MFA, abuse limits, the audit log and e-mail.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub access_ttl: Duration,
    pub operator: SessionPolicy,
    pub admin: SessionPolicy,
    /// Cookies carry `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// `Domain` of the sign-in cookies (`example.com`), so one sign-in serves apps on
    /// sub-domains of it (`stream.example.com`, `admin.example.com`); `None` keeps them
    /// host-only, for the one host that set them.
    pub cookie_domain: Option<String>,
    /// Host names that open one app at `/`: (host, app path such as `/stream`).
    pub app_hosts: Vec<(String, &'static str)>,
    /// Default MFA policy of staff, for organizations that set none.
    pub staff_mfa: MfaPolicy,
    /// Staff passwords older than this must be changed at sign-in; `None` never expires them.
    pub staff_password_max_age: Option<Duration>,
    /// A new staff password may not be one of this many recent ones (the current included).
    pub password_history: u32,
    pub lockout: LockoutPolicy,
    pub rate: RateLimits,
    /// Audit entries older than this are purged.
    pub audit_retention: Duration,
    /// `smtp://`, `smtps://` URL of the mail server; without it mail goes to the outbox.
    pub smtp_url: Option<SmtpUrl>,
    /// `From:` of e-mail Lunora sends.
    pub mail_from: String,
    /// Base URL of links in e-mail (`https://lunora.example.com`); default: the request's host.
    pub public_url: Option<String>,
    pub invitation_ttl: Duration,
    pub password_reset_ttl: Duration,
    pub email_verification_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl: Duration::from_secs(15 * 60),
            operator: SessionPolicy {
                max_sessions: 2,
                absolute: Duration::from_secs(8 * 3600),
                idle: Duration::from_secs(2 * 3600),
            },
            admin: SessionPolicy {
                max_sessions: 5,
                absolute: Duration::from_secs(12 * 3600),
                idle: Duration::from_secs(4 * 3600),
            },
            secure_cookies: false,
            cookie_domain: None,
            app_hosts: Vec::new(),
            staff_mfa: MfaPolicy::Required,
            staff_password_max_age: Some(Duration::from_secs(90 * 86_400)),
            password_history: 12,
            lockout: LockoutPolicy::default(),
            rate: RateLimits::default(),
            audit_retention: Duration::from_secs(90 * 86_400),
            smtp_url: None,
            mail_from: "Lunora <no-reply@localhost>".to_string(),
            public_url: None,
            invitation_ttl: Duration::from_secs(7 * 86_400),
            password_reset_ttl: Duration::from_secs(3600),
            email_verification_ttl: Duration::from_secs(2 * 86_400),
        }
    }
}

impl AuthConfig {
    /// Operators get the operator limits; every other role the admin ones.
    pub fn policy(&self, role: Role) -> SessionPolicy {
        match role {
            Role::Operator => self.operator,
            _ => self.admin,
        }
    }
}

/// The in-memory parts of identity: abuse counters and the mailer. One per server.
pub struct Identity {
    pub limiter: RateLimiter,
    pub throttle: LoginThrottle,
    pub mailer: crate::mail::Mailer,
}

impl Identity {
    pub fn new(config: &AuthConfig) -> Identity {
        Identity {
            limiter: RateLimiter::default(),
            throttle: LoginThrottle::new(config.lockout),
            mailer: crate::mail::Mailer::new(config),
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
    ApiToken,
}

/// The authenticated caller. Taking it as a handler argument makes the route require a valid,
/// unrevoked session or API token; the request guard has checked the route's rule already.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub organization_id: String,
    pub role: Role,
    /// The session; empty for an API token.
    pub session_id: String,
    pub via: Via,
    pub realm: Realm,
    pub superadmin: bool,
    /// The API token in use, if any.
    pub api_token_id: Option<String>,
    /// An API token's scope: the caller may do only what both its role and this allow.
    pub scope: Option<Vec<Permission>>,
    /// The session may only enrol TOTP (organization policy `required`).
    pub enrolment_only: bool,
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        permissions::allows(self.role, permission)
            && self.scope.as_ref().is_none_or(|s| s.contains(&permission))
    }

    /// Everything this caller may do.
    pub fn effective_permissions(&self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.can(*p))
            .collect()
    }

    /// 403 naming the missing permission unless the role (and token scope) has it.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role{} does not have the {} permission",
                self.role.as_str(),
                if self.scope.is_some() {
                    " (with this API token's scope)"
                } else {
                    ""
                },
                permission.as_str()
            )))
        }
    }
}

/// `; Domain=…` for the sign-in cookies when one is configured, else nothing (host-only).
pub(crate) fn cookie_scope(auth: &AuthConfig) -> String {
    auth.cookie_domain
        .as_deref()
        .map(|d| format!("; Domain={d}"))
        .unwrap_or_default()
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The source address of a request (the TCP peer).
pub fn peer_ip(parts_ext: &axum::http::Extensions) -> IpAddr {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// Whether the request carries credentials at all.
pub fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || cookie(headers, ACCESS_COOKIE).is_some()
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether the request's `Origin` (sent by browsers) names the host it was sent to (`Host`, or
/// `X-Forwarded-Host` behind a reverse proxy). A request without one is not from a browser page
/// and passes.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin_host) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'))
    else {
        return false;
    };
    [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .any(|host| host.eq_ignore_ascii_case(origin_host))
}

/// Checks the credentials of a request: a bearer JWT or API token, or the access cookie with the
/// CSRF header for unsafe methods. Every refusal is 401 or 403 with a stable code.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    ip: IpAddr,
) -> ApiResult<Principal> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let (token, via) = match bearer {
        Some(t) => (t.to_string(), Via::Bearer),
        None => match cookie(headers, ACCESS_COOKIE) {
            Some(t) => (t.to_string(), Via::Cookie),
            None => {
                return Err(ApiError::unauthorized(
                    "sign in first: send `Authorization: Bearer <token>`",
                ))
            }
        },
    };
    if via == Via::Cookie && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let expected = cookie(headers, CSRF_COOKIE);
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if expected.is_none() || expected != sent {
            return Err(ApiError::forbidden(
                "missing or wrong CSRF token: send the lunora_csrf cookie's value as x-csrf-token",
            )
            .with_code("csrf_failed"));
        }
    }
    // A browser sends the cookie with a WebSocket handshake from any page that opens one, and a
    // handshake is a GET, so the CSRF check above does not cover it: the page must be ours.
    if via == Via::Cookie && is_websocket_upgrade(headers) && !same_origin(headers) {
        return Err(ApiError::forbidden(
            "a WebSocket signed in with the session cookie must be opened by this server's own pages",
        )
        .with_code("cross_origin"));
    }
    if via == Via::Bearer && token.starts_with(API_TOKEN_PREFIX) {
        return authenticate_api_token(state, &token, ip).await;
    }
    let claims = state.tokens.verify_access(&token)?;
    let auth = state
        .db
        .session_auth(&claims.sid)
        .await?
        .filter(|a| a.session.user_id == claims.sub)
        .ok_or_else(|| {
            ApiError::unauthorized("the session no longer exists").with_code("session_revoked")
        })?;
    let session = &auth.session;
    let now = lunora_store::now_ms();
    let role = Role::parse(&auth.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", session.user_id)))?;
    let policy = state.auth.policy(role);
    if session.revoked_at.is_some() {
        return Err(
            ApiError::unauthorized("the session was signed out or revoked")
                .with_code("session_revoked"),
        );
    }
    if session.expires_at <= now {
        return Err(ApiError::unauthorized("the session expired; sign in again")
            .with_code("session_expired"));
    }
    let idle_ms = policy.idle.as_millis() as i64;
    if now - session.last_seen_at > idle_ms {
        return Err(
            ApiError::unauthorized("the session was idle too long; sign in again")
                .with_code("session_expired"),
        );
    }
    if auth.user_disabled_at.is_some() {
        return Err(
            ApiError::unauthorized("this account is disabled").with_code("account_disabled")
        );
    }
    if auth.org_disabled_at.is_some() {
        return Err(
            ApiError::forbidden("this organization is disabled").with_code("organization_disabled")
        );
    }
    let realm = Realm::parse(&auth.realm).unwrap_or(Realm::Staff);
    if realm == Realm::Staff && !allowlist::allows(&auth.org_ip_allowlist, ip) {
        return Err(ip_refused(ip));
    }
    // Idle bookkeeping, at most a few writes per idle period.
    if now - session.last_seen_at > (idle_ms / 4).clamp(1_000, 30_000) {
        state.db.touch_session(&session.id).await?;
    }
    Ok(Principal {
        user_id: claims.sub,
        organization_id: auth.organization_id,
        role,
        session_id: claims.sid,
        via,
        realm,
        superadmin: auth.superadmin,
        api_token_id: None,
        scope: None,
        enrolment_only: session.scope != "full",
    })
}

fn ip_refused(ip: IpAddr) -> ApiError {
    ApiError::forbidden(format!("the organization does not allow access from {ip}"))
        .with_code("ip_not_allowed")
}

async fn authenticate_api_token(state: &AppState, token: &str, ip: IpAddr) -> ApiResult<Principal> {
    let invalid =
        || ApiError::unauthorized("the API token is not valid").with_code("invalid_token");
    if token.len() > 128 {
        return Err(invalid());
    }
    let auth = state
        .db
        .api_token_auth(&hash_secret(token))
        .await?
        .ok_or_else(invalid)?;
    let t = &auth.token;
    let now = lunora_store::now_ms();
    if t.revoked_at.is_some() {
        return Err(ApiError::unauthorized("the API token was revoked").with_code("token_revoked"));
    }
    if t.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::unauthorized("the API token expired").with_code("token_expired"));
    }
    if auth.user_disabled_at.is_some() {
        return Err(
            ApiError::unauthorized("the token's account is disabled").with_code("account_disabled")
        );
    }
    if auth.org_disabled_at.is_some() {
        return Err(
            ApiError::forbidden("this organization is disabled").with_code("organization_disabled")
        );
    }
    if !allowlist::allows(&auth.org_ip_allowlist, ip) {
        return Err(ip_refused(ip));
    }
    let role = Role::parse(&auth.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", t.user_id)))?;
    if t.last_used_at.is_none_or(|l| now - l > 60_000) {
        state.db.touch_api_token(&t.id).await?;
    }
    Ok(Principal {
        user_id: t.user_id.clone(),
        organization_id: t.organization_id.clone(),
        role,
        session_id: String::new(),
        via: Via::ApiToken,
        realm: Realm::parse(&auth.realm).unwrap_or(Realm::Staff),
        superadmin: false,
        api_token_id: Some(t.id.clone()),
        scope: Some(
            t.permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect(),
        ),
        enrolment_only: false,
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        // Not behind the guard (a public route, or a router used without it): check in full.
        let ip = peer_ip(&parts.extensions);
        let p = authenticate(state, &parts.headers, &parts.method, ip).await?;
        if p.enrolment_only {
            return Err(enrolment_required());
        }
        Ok(p)
    }
}

pub(crate) fn enrolment_required() -> ApiError {
    ApiError::forbidden(
        "this organization requires multi-factor authentication: enrol TOTP with \
         POST /api/v1/auth/mfa/totp/enrol and confirm it with POST /api/v1/auth/mfa/totp/verify",
    )
    .with_code("mfa_enrolment_required")
}
