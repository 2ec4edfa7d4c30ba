//! `/api/v1/auth/...` and `/api/v1/permissions`: sign-in, token rotation, sessions, audience
//! sign-up with e-mail verification, and password reset by e-mailed one-time link.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::{hash_secret, random_secret};
use lunora_store::{NewUser, RefreshOutcome, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::limits::Throttled;
use super::mfa::{self, SecondFactor};
use super::password::{self, Realm};
use super::permissions::{self, Permission, Role, RouteRule};
use super::{AuditSlot, MfaPolicy, Principal, Via, ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::mail::Mail;
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
        .routes(routes!(signup))
        .routes(routes!(verify_email))
        .routes(routes!(password_reset_request))
        .routes(routes!(password_reset_confirm))
        .routes(routes!(setup))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Six-digit TOTP code (or a recovery code), when the account has MFA.
    #[serde(default)]
    pub totp: Option<String>,
    /// A new password, when the answer was `password_expired`.
    #[serde(default)]
    pub new_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// `mfa_enrolment` when these tokens only reach the TOTP enrolment endpoints until TOTP is
    /// verified (organization policy `required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<&'static str>,
}

pub(crate) fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect()
}

fn throttled(t: Throttled) -> ApiError {
    let (code, wait, detail) = match t {
        Throttled::SlowDown(w) => (
            "login_throttled",
            w,
            "too many failed sign-ins for this account from this address; wait before trying again",
        ),
        Throttled::Locked(w) => (
            "login_locked",
            w,
            "sign-in for this account from this address is locked after repeated failures; \
             wait, or reset the password by e-mail",
        ),
    };
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, detail).with_header(
        header::RETRY_AFTER,
        HeaderValue::from_str(&secs.to_string()).unwrap_or(HeaderValue::from_static("1")),
    )
}

/// Whether a staff password is past its maximum age.
fn password_expired(state: &AppState, user: &User) -> bool {
    if Realm::parse(&user.realm) != Some(Realm::Staff) {
        return false;
    }
    let Some(max) = state.auth.staff_password_max_age else {
        return false;
    };
    let changed = user.password_changed_at.unwrap_or(user.created_at);
    lunora_store::now_ms() - changed > max.as_millis() as i64
}

/// Sets a new password after the realm's policy and, for staff, the history check; every
/// session but `keep_session` is revoked.
pub(crate) async fn change_password(
    state: &AppState,
    user: &User,
    new_password: &str,
    field: &str,
    keep_session: Option<&str>,
) -> ApiResult<()> {
    let hash = check_new_password(state, user, new_password, field).await?;
    let realm = Realm::parse(&user.realm).unwrap_or(Realm::Staff);
    let history = state.auth.password_history.max(1);
    let keep = if realm == Realm::Staff {
        history - 1
    } else {
        0
    };
    state
        .db
        .set_password(&user.id, &hash, keep, keep_session)
        .await?;
    Ok(())
}

/// Checks a new password against the realm's policy and, for staff, the history; answers its
/// hash.
pub(crate) async fn check_new_password(
    state: &AppState,
    user: &User,
    new_password: &str,
    field: &str,
) -> ApiResult<String> {
    let realm = Realm::parse(&user.realm).unwrap_or(Realm::Staff);
    password::check_policy(realm, new_password).map_err(|e| e.with_field(field))?;
    let history = state.auth.password_history.max(1);
    if realm == Realm::Staff {
        let recent = state.db.recent_password_hashes(&user.id, history).await?;
        if password::reused(new_password, recent).await? {
            return Err(ApiError::invalid(
                field,
                format!("choose a password that is not one of your last {history}"),
            )
            .with_code("password_reused"));
        }
    }
    password::hash_blocking(new_password).await
}

/// Sign in with email and password (and a TOTP code when the account has MFA).
///
/// Answers 401 `mfa_required` when the code is missing, 403 `password_expired` when a staff
/// password is older than the maximum age (sign in again with `new_password`), 429
/// `login_throttled` / `login_locked` with `Retry-After` after repeated failures, and tokens with
/// `next_step: "mfa_enrolment"` when TOTP must be enrolled first.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; also sets HttpOnly cookies", body = TokenPair),
        (status = 401, description = "Wrong credentials, or `mfa_required`", body = crate::Problem),
        (status = 403, description = "`password_expired`, `email_not_verified`, `api_only_account`, `ip_not_allowed`", body = crate::Problem),
        (status = 429, description = "Too many failures", body = crate::Problem),
    )
)]
async fn login(
    State(state): State<AppState>,
    audit: AuditSlot,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let ip = peer.ip();
    if req.email.len() > 320 || req.password.len() > 1024 {
        return Err(ApiError::invalid("email", "email or password is too long"));
    }
    let account = req.email.trim().to_lowercase();
    audit.details(serde_json::json!({ "email": account }));
    let staff = state.db.user_by_email("staff", &account).await?;
    let audience = state.db.user_by_email("audience", &account).await?;
    // Failures are recorded against the account they target, for its organization's log.
    if let Some(target) = staff.as_ref().or(audience.as_ref()) {
        audit.actor(&target.id, &target.organization_id);
    }
    state.identity.throttle.check(&account, ip).map_err(|t| {
        tracing::warn!(%ip, "sign-in throttled");
        throttled(t)
    })?;
    let mut user = None;
    for candidate in [staff, audience].into_iter().flatten() {
        if let Some(h) = &candidate.password_hash {
            if password::verify_blocking(&req.password, h).await? {
                user = Some(candidate);
                break;
            }
        }
    }
    if user.is_none() {
        // Same cost whether or not the account exists.
        let _ = password::verify_blocking(&req.password, password::dummy_hash()).await?;
    }
    let Some(user) = user else {
        state.identity.throttle.failure(&account, ip);
        tracing::info!(%ip, "sign-in failed");
        return Err(ApiError::unauthorized("email or password is not correct")
            .with_code("invalid_credentials"));
    };
    audit.actor(&user.id, &user.organization_id);
    let res = complete_login(&state, &headers, ip, &account, user, &req).await;
    if let Err(e) = &res {
        if e.code == "invalid_totp" {
            state.identity.throttle.failure(&account, ip);
        }
    }
    res
}

async fn complete_login(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    account: &str,
    mut user: User,
    req: &LoginRequest,
) -> ApiResult<Response> {
    if user.disabled_at.is_some() {
        return Err(
            ApiError::unauthorized("this account is disabled").with_code("account_disabled")
        );
    }
    let org = state
        .db
        .organization(&user.organization_id)
        .await?
        .ok_or_else(|| ApiError::internal("a user's organization is missing"))?;
    if org.disabled_at.is_some() {
        return Err(
            ApiError::forbidden("this organization is disabled").with_code("organization_disabled")
        );
    }
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", user.id)))?;
    if role == Role::ApiOnly {
        return Err(ApiError::forbidden(
            "this account is for API access only: use an API token as the bearer token",
        )
        .with_code("api_only_account"));
    }
    let realm = Realm::parse(&user.realm).unwrap_or(Realm::Staff);
    if realm == Realm::Audience && user.email_verified_at.is_none() {
        return Err(
            ApiError::forbidden("confirm your e-mail address first with the link we sent")
                .with_code("email_not_verified"),
        );
    }
    if realm == Realm::Staff && !super::allowlist::allows(&org.ip_allowlist, ip) {
        return Err(ApiError::forbidden(format!(
            "the organization does not allow sign-in from {ip}"
        ))
        .with_code("ip_not_allowed"));
    }
    if user.totp_enabled_at.is_some() {
        let Some(code) = req.totp.as_deref().filter(|c| !c.trim().is_empty()) else {
            return Err(ApiError::unauthorized(
                "enter the 6-digit code from your authenticator app (or a recovery code) as `totp`",
            )
            .with_code("mfa_required"));
        };
        if mfa::check_second_factor(state, &user, code).await? != SecondFactor::Accepted {
            return Err(ApiError::unauthorized(
                "the authentication code is not correct or was used already",
            )
            .with_code("invalid_totp")
            .with_field("totp"));
        }
    }
    if password_expired(state, &user) {
        let Some(new_password) = req.new_password.as_deref() else {
            return Err(ApiError::forbidden(
                "the password is older than the maximum age and must be changed: sign in again \
                 with `new_password` set to a new password",
            )
            .with_code("password_expired"));
        };
        change_password(state, &user, new_password, "new_password", None).await?;
        user = state
            .db
            .user(&user.id)
            .await?
            .ok_or(ApiError::not_found("no such user"))?;
    }
    let policy = state.auth.policy(role);
    // At the concurrent-session limit, the oldest sessions make room.
    let active = state.db.active_sessions(&user.id).await?;
    if active.len() >= policy.max_sessions {
        for old in active.iter().skip(policy.max_sessions.saturating_sub(1)) {
            state
                .db
                .revoke_session(&user.id, &old.id, "session_limit")
                .await?;
        }
    }
    let must_enrol = realm == Realm::Staff
        && user.totp_enabled_at.is_none()
        && mfa::policy_for(state, &user).await? == MfaPolicy::Required;
    let scope = if must_enrol { "mfa_enrolment" } else { "full" };
    let refresh_token = random_secret("lrt_");
    let session = state
        .db
        .create_scoped_session(
            &user.id,
            lunora_store::now_ms() + policy.absolute.as_millis() as i64,
            &hash_secret(&refresh_token),
            &ip.to_string(),
            &user_agent(headers),
            scope,
        )
        .await?;
    state.identity.throttle.success(account, ip);
    state.db.mark_login(&user.id).await?;
    tracing::info!(user = %user.id, session = %session.id, scope, "signed in");
    issue(
        state,
        &user.id,
        &user.organization_id,
        role,
        &session.id,
        refresh_token,
        must_enrol.then_some("mfa_enrolment"),
    )
}

fn issue(
    state: &AppState,
    user_id: &str,
    org: &str,
    role: Role,
    session_id: &str,
    refresh_token: String,
    next_step: Option<&'static str>,
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
    let scope = super::cookie_scope(&state.auth);
    let cookies = [
        format!("{ACCESS_COOKIE}={access_token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}{scope}"),
        format!("{REFRESH_COOKIE}={refresh_token}; Path=/api/v1/auth; HttpOnly; SameSite=Strict{secure}{scope}"),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict{secure}{scope}"),
    ];
    let mut res = axum::Json(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
        next_step,
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
    audit: AuditSlot,
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
        .or_else(|| super::cookie(&headers, REFRESH_COOKIE).map(str::to_owned))
        .ok_or_else(|| ApiError::invalid("refresh_token", "refresh_token is required"))?;
    if presented.len() > 256 {
        return Err(
            ApiError::unauthorized("the refresh token is not valid").with_code("invalid_token")
        );
    }
    let next = random_secret("lrt_");
    // Idle limits differ per role; the longest bounds the query, the role's is checked below.
    let longest_idle = state.auth.admin.idle.max(state.auth.operator.idle);
    let cutoff = lunora_store::now_ms() - longest_idle.as_millis() as i64;
    let outcome = state
        .db
        .rotate_refresh_token(&hash_secret(&presented), &hash_secret(&next), cutoff)
        .await?;
    let (session, previous_seen) = match outcome {
        RefreshOutcome::Rotated {
            session,
            previous_seen,
        } => (session, previous_seen),
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
        .ok_or_else(|| {
            ApiError::unauthorized("the account is disabled").with_code("account_disabled")
        })?;
    audit.actor(&user.id, &user.organization_id);
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", user.id)))?;
    // The role's own idle timeout (the query above used the longest of all roles).
    let idle = state.auth.policy(role).idle.as_millis() as i64;
    if lunora_store::now_ms() - previous_seen > idle {
        state
            .db
            .revoke_session(&user.id, &session.id, "idle_timeout")
            .await?;
        return Err(
            ApiError::unauthorized("the session was idle too long; sign in again")
                .with_code("session_expired"),
        );
    }
    if role == Role::ApiOnly {
        return Err(ApiError::forbidden("this account is for API access only")
            .with_code("api_only_account"));
    }
    issue(
        &state,
        &user.id,
        &user.organization_id,
        role,
        &session.id,
        next,
        (session.scope != "full").then_some("mfa_enrolment"),
    )
}

/// End the current session: its access and refresh tokens stop working at once.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), (status = 400, body = crate::Problem))
)]
async fn logout(State(state): State<AppState>, who: Principal) -> ApiResult<Response> {
    if who.via == Via::ApiToken {
        return Err(ApiError::bad_request(
            "not_a_session",
            "an API token has no session to end; revoke it with DELETE /api/v1/api-tokens/{id}",
        ));
    }
    state
        .db
        .revoke_session(&who.user_id, &who.session_id, "logout")
        .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    let scope = super::cookie_scope(&state.auth);
    for name in [ACCESS_COOKIE, CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0{scope}")) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}=; Path=/api/v1/auth; Max-Age=0{scope}"
    )) {
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
    /// What this caller may do (an API token's scope applied).
    pub permissions: Vec<Permission>,
    /// The session; empty for an API token.
    pub session_id: String,
    pub superadmin: bool,
    pub mfa_enabled: bool,
    /// `mfa_enrolment` while the session may only enrol TOTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<&'static str>,
}

/// Who am I: the signed-in account and what it may do.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
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
        permissions: who.effective_permissions(),
        session_id: who.session_id.clone(),
        superadmin: who.superadmin,
        mfa_enabled: user.totp_enabled_at.is_some(),
        next_step: who.enrolment_only.then_some("mfa_enrolment"),
    }))
}

/// A sign-in session (`/auth/sessions`); named apart from a streaming session in the
/// OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuthSessionView)]
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

pub(crate) fn session_view(s: lunora_store::AuthSession, current: &str) -> SessionView {
    SessionView {
        current: s.id == current,
        id: s.id,
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
        ip: s.ip,
        user_agent: s.user_agent,
    }
}

/// The caller's active sessions, newest first.
#[utoipa::path(
    get, path = "/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = [SessionView]))
)]
async fn sessions(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<Vec<SessionView>>> {
    let list = state.db.active_sessions(&who.user_id).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|s| session_view(s, &who.session_id))
            .collect(),
    ))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(
    delete, path = "/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
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
    /// Every API operation with the access it needs.
    pub routes: Vec<RouteRule>,
}

/// The permission table: what each role may do, and what each route needs.
#[utoipa::path(
    get, path = "/permissions", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = PermissionTable))
)]
async fn permission_table(_who: Principal) -> axum::Json<PermissionTable> {
    axum::Json(PermissionTable {
        permissions: Permission::ALL.to_vec(),
        roles: Role::ALL
            .into_iter()
            .map(|r| (r.as_str(), permissions::granted(r).to_vec()))
            .collect(),
        routes: permissions::ROUTES.to_vec(),
    })
}

// --- audience sign-up and e-mail links ---------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    /// Audience policy: 8+ characters with upper and lower case and a digit.
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Slug of the organization to join; default `default`.
    #[serde(default)]
    pub organization: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// What happens next, e.g. `verification_sent`.
    pub status: &'static str,
}

pub(crate) fn valid_email(email: &str) -> ApiResult<String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 320
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>');
    if ok {
        Ok(e)
    } else {
        Err(ApiError::invalid(
            "email",
            "enter an e-mail address such as name@example.com",
        ))
    }
}

pub(crate) fn valid_display_name(name: &str, field: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "the display name must be at most 100 characters without control characters",
        ));
    }
    Ok(n.to_string())
}

/// The base of links in e-mail: the configured public URL, or this request's host.
pub(crate) fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.auth.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = if state.auth.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// Sign up as an audience member. A verification link is e-mailed; the account can sign in once
/// the address is confirmed. The answer is the same whether or not the address has an account.
#[utoipa::path(
    post, path = "/auth/signup", tag = "auth",
    request_body = SignupRequest,
    responses((status = 202, body = Accepted), (status = 400, body = crate::Problem))
)]
async fn signup(
    State(state): State<AppState>,
    audit: AuditSlot,
    headers: HeaderMap,
    Json(req): Json<SignupRequest>,
) -> ApiResult<(StatusCode, axum::Json<Accepted>)> {
    let email = valid_email(&req.email)?;
    password::check_policy(Realm::Audience, &req.password)?;
    let display_name =
        valid_display_name(req.display_name.as_deref().unwrap_or(""), "display_name")?;
    let slug = req.organization.as_deref().unwrap_or("default");
    let org = state
        .db
        .organization_by_slug(slug)
        .await?
        .filter(|o| o.disabled_at.is_none())
        .ok_or_else(|| ApiError::invalid("organization", "no such organization"))?;
    let base = public_base(&state, &headers);
    if let Some(existing) = state.db.user_by_email("audience", &email).await? {
        state
            .identity
            .mailer
            .send(
                &state,
                Mail {
                    organization_id: Some(&existing.organization_id),
                    to: &email,
                    kind: "signup_existing",
                    subject: "Lunora: you already have an account",
                    body: &format!(
                        "Someone (hopefully you) tried to sign up with this address, which \
                         already has an account.\n\nSign in at {base}/login, or reset the \
                         password at {base}/reset-password.\n"
                    ),
                },
            )
            .await;
    } else {
        let hash = password::hash_blocking(&req.password).await?;
        let user = match state
            .db
            .create_user(&NewUser {
                organization_id: &org.id,
                email: &email,
                display_name: &display_name,
                realm: Realm::Audience.as_str(),
                role: Role::Free.as_str(),
                password_hash: Some(&hash),
                superadmin: false,
                email_verified: false,
            })
            .await
        {
            Ok(u) => u,
            // A concurrent sign-up of the same address: same answer.
            Err(lunora_store::StoreError::Conflict(_)) => {
                return Ok((
                    StatusCode::ACCEPTED,
                    axum::Json(Accepted {
                        status: "verification_sent",
                    }),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        audit.actor(&user.id, &user.organization_id);
        send_link(&state, &user, "verify_email", &base).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            status: "verification_sent",
        }),
    ))
}

/// Creates a one-time link token for `purpose` and e-mails it.
async fn send_link(state: &AppState, user: &User, purpose: &str, base: &str) -> ApiResult<()> {
    let token = random_secret("");
    let (ttl, subject, path, words) = match purpose {
        "verify_email" => (
            state.auth.email_verification_ttl,
            "Lunora: confirm your e-mail address",
            "verify-email",
            "Confirm your e-mail address to finish signing up",
        ),
        _ => (
            state.auth.password_reset_ttl,
            "Lunora: reset your password",
            "reset-password",
            "Someone (hopefully you) asked to reset the password of your account. Choose a new one",
        ),
    };
    state
        .db
        .create_user_token(
            &user.id,
            purpose,
            &hash_secret(&token),
            lunora_store::now_ms() + ttl.as_millis() as i64,
        )
        .await?;
    let hours = (ttl.as_secs() / 3600).max(1);
    state
        .identity
        .mailer
        .send(
            state,
            Mail {
                organization_id: Some(&user.organization_id),
                to: &user.email,
                kind: purpose,
                subject,
                body: &format!(
                    "{words} at:\n\n{base}/{path}?token={token}\n\nThe link works once, within \
                     {hours} hour(s). If this was not you, ignore this message.\n"
                ),
            },
        )
        .await;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkToken {
    /// The token from the e-mailed link.
    pub token: String,
}

fn invalid_link() -> ApiError {
    ApiError::invalid(
        "token",
        "the link is not valid, was used already, or expired",
    )
    .with_code("invalid_token")
}

/// Confirm an e-mail address with the token from the verification link.
#[utoipa::path(
    post, path = "/auth/verify-email", tag = "auth",
    request_body = LinkToken,
    responses((status = 200, body = Accepted), (status = 400, body = crate::Problem))
)]
async fn verify_email(
    State(state): State<AppState>,
    audit: AuditSlot,
    Json(req): Json<LinkToken>,
) -> ApiResult<axum::Json<Accepted>> {
    if req.token.len() > 128 {
        return Err(invalid_link());
    }
    let user_id = state
        .db
        .consume_user_token(&hash_secret(req.token.trim()), "verify_email")
        .await?
        .ok_or_else(invalid_link)?;
    state.db.mark_email_verified(&user_id).await?;
    if let Some(u) = state.db.user(&user_id).await? {
        audit.actor(&u.id, &u.organization_id);
    }
    Ok(axum::Json(Accepted { status: "verified" }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

/// Ask for a password reset link by e-mail. The answer is the same whether or not the address
/// has an account.
#[utoipa::path(
    post, path = "/auth/password-reset/request", tag = "auth",
    request_body = ResetRequest,
    responses((status = 202, body = Accepted), (status = 400, body = crate::Problem))
)]
async fn password_reset_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<ResetRequest>,
) -> ApiResult<(StatusCode, axum::Json<Accepted>)> {
    let email = valid_email(&req.email)?;
    let base = public_base(&state, &headers);
    for realm in ["staff", "audience"] {
        if let Some(user) = state.db.user_by_email(realm, &email).await? {
            if user.disabled_at.is_none() && user.role != Role::ApiOnly.as_str() {
                send_link(&state, &user, "password_reset", &base).await?;
            }
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            status: "reset_link_sent_if_the_account_exists",
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the e-mailed link.
    pub token: String,
    /// The new password (the account's realm policy; staff may not reuse a recent one).
    pub password: String,
}

/// Set a new password with the token from a reset link. Every session of the account ends.
#[utoipa::path(
    post, path = "/auth/password-reset/confirm", tag = "auth",
    request_body = ResetConfirm,
    responses((status = 204), (status = 400, body = crate::Problem))
)]
async fn password_reset_confirm(
    State(state): State<AppState>,
    audit: AuditSlot,
    Json(req): Json<ResetConfirm>,
) -> ApiResult<StatusCode> {
    if req.token.len() > 128 {
        return Err(invalid_link());
    }
    let hash = hash_secret(req.token.trim());
    // Check the new password before spending the link, so a weak one can be corrected.
    let user_id = state
        .db
        .peek_user_token(&hash, "password_reset")
        .await?
        .ok_or_else(invalid_link)?;
    let user = state.db.user(&user_id).await?.ok_or_else(invalid_link)?;
    audit.actor(&user.id, &user.organization_id);
    let new_hash = check_new_password(&state, &user, &req.password, "password").await?;
    if state
        .db
        .consume_user_token(&hash, "password_reset")
        .await?
        .as_deref()
        != Some(user.id.as_str())
    {
        return Err(invalid_link());
    }
    let realm = Realm::parse(&user.realm).unwrap_or(Realm::Staff);
    let history = state.auth.password_history.max(1);
    let keep = if realm == Realm::Staff {
        history - 1
    } else {
        0
    };
    state
        .db
        .set_password(&user.id, &new_hash, keep, None)
        .await?;
    state.db.mark_email_verified(&user.id).await?;
    tracing::info!(user = %user.id, "password reset");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time token printed in the server log at start.
    pub token: String,
    pub email: String,
    /// Staff policy: 12+ characters with upper and lower case, a digit and a special character.
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Create the first administrator (also the platform superadmin) with the one-time token the
/// server logged on a first start without `LUNORA_ADMIN_EMAIL` / `LUNORA_ADMIN_PASSWORD`.
#[utoipa::path(
    post, path = "/setup", tag = "auth",
    request_body = SetupRequest,
    responses(
        (status = 201, body = crate::users::UserView),
        (status = 400, description = "Invalid token or weak password", body = crate::Problem),
        (status = 409, description = "Set up already", body = crate::Problem),
    )
)]
async fn setup(
    State(state): State<AppState>,
    audit: AuditSlot,
    Json(req): Json<SetupRequest>,
) -> ApiResult<Response> {
    if state.db.count_users().await? > 0 {
        return Err(
            ApiError::conflict("an administrator exists already; sign in")
                .with_code("already_set_up"),
        );
    }
    let email = valid_email(&req.email)?;
    password::check_policy(Realm::Staff, &req.password)?;
    let display_name = valid_display_name(
        req.display_name.as_deref().unwrap_or("Administrator"),
        "display_name",
    )?;
    let hash = password::hash_blocking(&req.password).await?;
    if req.token.len() > 128
        || !state
            .db
            .take_setting(
                crate::bootstrap::SETUP_TOKEN_KEY,
                &hash_secret(req.token.trim()),
            )
            .await?
    {
        return Err(
            ApiError::invalid("token", "the setup token is not valid or was used")
                .with_code("invalid_token"),
        );
    }
    let org = state
        .db
        .ensure_organization("default", "Default organization")
        .await?;
    let user = state
        .db
        .create_user(&NewUser {
            organization_id: &org.id,
            email: &email,
            display_name: &display_name,
            realm: Realm::Staff.as_str(),
            role: Role::Admin.as_str(),
            password_hash: Some(&hash),
            superadmin: true,
            email_verified: true,
        })
        .await?;
    audit.actor(&user.id, &user.organization_id);
    tracing::info!(user = %user.id, "created the first administrator from the setup token");
    Ok((
        StatusCode::CREATED,
        axum::Json(crate::users::user_view(user)),
    )
        .into_response())
}
