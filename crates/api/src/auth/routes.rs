//! `/api/v1/auth/...` and `/api/v1/permissions`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::{hash_secret, random_secret};
use lunora_store::RefreshOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::password;
use super::permissions::{self, Permission, Role};
use super::{Principal, ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(permission_table))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Six-digit TOTP code, when the account has MFA.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Sign in with email and password.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; also sets HttpOnly cookies", body = TokenPair),
        (status = 401, description = "Wrong email or password", body = crate::Problem),
    )
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    if req.email.len() > 320 || req.password.len() > 1024 {
        return Err(ApiError::invalid("email", "email or password is too long"));
    }
    let mut user = state.db.user_by_email("staff", &req.email).await?;
    if user.is_none() {
        user = state.db.user_by_email("audience", &req.email).await?;
    }
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_string());
    let candidate = req.password.clone();
    let ok = tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(u) if ok && u.disabled_at.is_none() => u,
        Some(u) if ok && u.disabled_at.is_some() => {
            return Err(
                ApiError::unauthorized("this account is disabled").with_code("account_disabled")
            )
        }
        _ => {
            tracing::info!(ip = %peer.ip(), "sign-in failed");
            return Err(ApiError::unauthorized("email or password is not correct")
                .with_code("invalid_credentials"));
        }
    };
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", user.id)))?;
    let policy = state.auth.policy(role);

    // At the concurrent-session limit, the oldest session makes room.
    let active = state.db.active_sessions(&user.id).await?;
    if active.len() >= policy.max_sessions {
        for old in active.iter().skip(policy.max_sessions.saturating_sub(1)) {
            state
                .db
                .revoke_session(&user.id, &old.id, "session_limit")
                .await?;
        }
    }
    let refresh_token = random_secret("lrt_");
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect::<String>();
    let session = state
        .db
        .create_session(
            &user.id,
            lunora_store::now_ms() + policy.absolute.as_millis() as i64,
            &hash_secret(&refresh_token),
            &peer.ip().to_string(),
            &user_agent,
        )
        .await?;
    tracing::info!(user = %user.id, session = %session.id, "signed in");
    issue(
        &state,
        &user.id,
        &user.organization_id,
        role,
        &session.id,
        refresh_token,
    )
}

fn issue(
    state: &AppState,
    user_id: &str,
    org: &str,
    role: Role,
    session_id: &str,
    refresh_token: String,
) -> ApiResult<Response> {
    let ttl = state.auth.access_ttl.as_secs();
    let access_token =
        state
            .tokens
            .issue_access(user_id, org, role.as_str(), session_id, ttl as i64)?;
    let secure = if state.auth.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let csrf = random_secret("");
    let cookies = [
        format!("{ACCESS_COOKIE}={access_token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}"),
        format!("{REFRESH_COOKIE}={refresh_token}; Path=/api/v1/auth; HttpOnly; SameSite=Strict{secure}"),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict{secure}"),
    ];
    let mut res = axum::Json(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
    })
    .into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token; browsers may omit it and rely on the HttpOnly cookie.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Trade a refresh token for a new pair. Each refresh token works once; presenting a spent one
/// revokes the whole session.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenPair),
        (status = 401, description = "Unknown, spent or expired refresh token", body = crate::Problem),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let presented = req
        .refresh_token
        .or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == REFRESH_COOKIE)
                .map(|(_, v)| v.to_string())
        })
        .ok_or_else(|| ApiError::invalid("refresh_token", "refresh_token is required"))?;
    let next = random_secret("lrt_");
    // Idle limits differ per role; the longest bounds the query, the role's is checked below.
    let longest_idle = state.auth.admin.idle.max(state.auth.operator.idle);
    let cutoff = lunora_store::now_ms() - longest_idle.as_millis() as i64;
    let outcome = state
        .db
        .rotate_refresh_token(&hash_secret(&presented), &hash_secret(&next), cutoff)
        .await?;
    let session = match outcome {
        RefreshOutcome::Rotated { session } => session,
        RefreshOutcome::Reused => {
            return Err(ApiError::unauthorized(
                "this refresh token was already used; the session has been revoked for safety",
            )
            .with_code("refresh_token_reused"))
        }
        RefreshOutcome::Invalid => {
            return Err(ApiError::unauthorized(
                "the refresh token is not valid or its session ended",
            )
            .with_code("invalid_token"))
        }
    };
    let user = state
        .db
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| ApiError::unauthorized("the account is disabled"))?;
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", user.id)))?;
    issue(
        &state,
        &user.id,
        &user.organization_id,
        role,
        &session.id,
        next,
    )
}

/// End the current session: its access and refresh tokens stop working at once.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out"))
)]
async fn logout(State(state): State<AppState>, who: Principal) -> ApiResult<Response> {
    state
        .db
        .revoke_session(&who.user_id, &who.session_id, "logout")
        .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    for name in [ACCESS_COOKIE, CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0")) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    if let Ok(v) =
        HeaderValue::from_str(&format!("{REFRESH_COOKIE}=; Path=/api/v1/auth; Max-Age=0"))
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub display_name: String,
    pub realm: String,
    pub role: Role,
    pub permissions: Vec<Permission>,
    pub session_id: String,
}

/// Who am I: the signed-in account and what it may do.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = crate::Problem))
)]
async fn me(State(state): State<AppState>, who: Principal) -> ApiResult<axum::Json<Me>> {
    let user = state
        .db
        .user(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    Ok(axum::Json(Me {
        id: user.id,
        organization_id: user.organization_id,
        email: user.email,
        display_name: user.display_name,
        realm: user.realm,
        role: who.role,
        permissions: permissions::granted(who.role).to_vec(),
        session_id: who.session_id,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ip: String,
    pub user_agent: String,
    /// The session this request came from.
    pub current: bool,
}

/// The caller's active sessions, newest first.
#[utoipa::path(
    get, path = "/auth/sessions", tag = "auth",
    responses((status = 200, body = [SessionView]))
)]
async fn sessions(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<Vec<SessionView>>> {
    let list = state.db.active_sessions(&who.user_id).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|s| SessionView {
                current: s.id == who.session_id,
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(
    delete, path = "/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn revoke_session(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .db
        .revoke_session(&who.user_id, &id, "revoked_by_user")
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such active session"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionTable {
    pub permissions: Vec<Permission>,
    /// Permissions granted to each role.
    pub roles: BTreeMap<&'static str, Vec<Permission>>,
}

/// The permission table: what each role may do.
#[utoipa::path(
    get, path = "/permissions", tag = "auth",
    responses((status = 200, body = PermissionTable))
)]
async fn permission_table(_who: Principal) -> axum::Json<PermissionTable> {
    axum::Json(PermissionTable {
        permissions: Permission::ALL.to_vec(),
        roles: Role::ALL
            .into_iter()
            .map(|r| (r.as_str(), permissions::granted(r).to_vec()))
            .collect(),
    })
}
