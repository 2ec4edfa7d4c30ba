//! Identity at the HTTP edge: sign-in, token rotation, the [`Principal`] extractor that every
//! protected handler takes, and the permission table.

pub mod password;
pub mod permissions;
mod routes;
mod tokens;

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};

pub use permissions::{Permission, Role};
pub use routes::router;
pub use tokens::TokenKeys;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub const ACCESS_COOKIE: &str = "lunora_access";
pub const REFRESH_COOKIE: &str = "lunora_refresh";
pub const CSRF_COOKIE: &str = "lunora_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Session limits of a role (seed 000 "Session Management").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub max_sessions: usize,
    pub absolute: Duration,
    pub idle: Duration,
}

/// Settings of sign-in and tokens.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub access_ttl: Duration,
    pub operator: SessionPolicy,
    pub admin: SessionPolicy,
    /// Cookies carry `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
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

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// The authenticated caller. Taking it as a handler argument makes the route require a valid,
/// unrevoked session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub organization_id: String,
    pub role: Role,
    pub session_id: String,
    pub via: Via,
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        permissions::allows(self.role, permission)
    }

    /// 403 naming the missing permission unless the role has it.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role does not have the {} permission",
                self.role.as_str(),
                serde_json::to_value(permission)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )))
        }
    }
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let (token, via) = match bearer {
            Some(t) => (t.to_string(), Via::Bearer),
            None => match cookie(parts, ACCESS_COOKIE) {
                Some(t) => (t.to_string(), Via::Cookie),
                None => {
                    return Err(ApiError::unauthorized(
                        "sign in first: send `Authorization: Bearer <token>`",
                    ))
                }
            },
        };
        if via == Via::Cookie
            && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        {
            let expected = cookie(parts, CSRF_COOKIE);
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if expected.is_none() || expected != sent {
                return Err(ApiError::forbidden(
                    "missing or wrong CSRF token: send the lunora_csrf cookie's value as x-csrf-token",
                )
                .with_code("csrf_failed"));
            }
        }
        let claims = state.tokens.verify_access(&token)?;
        let session = state
            .db
            .session(&claims.sid)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the session no longer exists"))?;
        let now = lunora_store::now_ms();
        let role = Role::parse(&claims.role)
            .ok_or_else(|| ApiError::unauthorized("the token names an unknown role"))?;
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
        if now - session.last_seen_at > policy.idle.as_millis() as i64 {
            return Err(
                ApiError::unauthorized("the session was idle too long; sign in again")
                    .with_code("session_expired"),
            );
        }
        if now - session.last_seen_at > 30_000 {
            state.db.touch_session(&session.id).await?;
        }
        Ok(Principal {
            user_id: claims.sub,
            organization_id: claims.org,
            role,
            session_id: claims.sid,
            via,
        })
    }
}
