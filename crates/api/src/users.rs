//! `/api/v1/users`: the organization's accounts for administrators (list, read, role change,
//! disable and enable, MFA reset, sessions) and one's own profile and password.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use lunora_store::{User, UserFilter, UserPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::{self, Role};
use crate::auth::{password, AuditSlot, Permission, Principal, Via};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_me, update_me))
        .routes(routes!(change_my_password))
        .routes(routes!(get_user, update_user))
        .routes(routes!(reset_mfa))
        .routes(routes!(user_sessions))
        .routes(routes!(revoke_user_session))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub display_name: String,
    /// `staff` or `audience`.
    pub realm: String,
    pub role: String,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub superadmin: bool,
    pub last_login_at: Option<String>,
    pub password_changed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub(crate) fn user_view(u: User) -> UserView {
    UserView {
        status: if u.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        },
        email_verified: u.email_verified_at.is_some(),
        mfa_enabled: u.totp_enabled_at.is_some(),
        superadmin: u.superadmin,
        last_login_at: u.last_login_at.map(rfc3339),
        password_changed_at: u.password_changed_at.map(rfc3339),
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
        id: u.id,
        organization_id: u.organization_id,
        email: u.email,
        display_name: u.display_name,
        realm: u.realm,
        role: u.role,
    }
}

/// Whether `who` may hand out `role`: only roles whose every permission it holds itself.
pub(crate) fn can_grant(who: &Principal, role: Role) -> bool {
    permissions::granted(role).iter().all(|p| who.can(*p))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub role: Option<String>,
    /// `staff` or `audience`.
    pub realm: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    /// Part of the e-mail address or display name.
    pub q: Option<String>,
}

/// The organization's users, in creation order, filtered.
#[utoipa::path(
    get, path = "/users", tag = "users",
    params(UserQuery),
    security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 400, body = crate::Problem))
)]
async fn list_users(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<UserQuery>,
) -> ApiResult<axum::Json<UserList>> {
    who.require(Permission::UsersManage)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    if let Some(r) = &q.role {
        Role::parse(r).ok_or_else(|| ApiError::invalid("role", format!("no role `{r}`")))?;
    }
    if let Some(r) = &q.realm {
        if r != "staff" && r != "audience" {
            return Err(ApiError::invalid(
                "realm",
                "realm must be `staff` or `audience`",
            ));
        }
    }
    let disabled = match q.status.as_deref() {
        None => None,
        Some("active") => Some(false),
        Some("disabled") => Some(true),
        Some(_) => {
            return Err(ApiError::invalid(
                "status",
                "status must be `active` or `disabled`",
            ))
        }
    };
    if q.q.as_deref().is_some_and(|s| s.len() > 320) {
        return Err(ApiError::invalid("q", "the search text is too long"));
    }
    let page = state
        .db
        .list_users(
            &who.organization_id,
            &UserFilter {
                role: q.role,
                realm: q.realm,
                disabled,
                query: q.q.filter(|s| !s.is_empty()),
            },
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(axum::Json(UserList {
        items: page.items.into_iter().map(user_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn org_user(state: &AppState, who: &Principal, id: &str) -> ApiResult<User> {
    state
        .db
        .user_in_org(&who.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))
}

/// One user of the organization.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 404, body = crate::Problem))
)]
async fn get_user(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserView>> {
    who.require(Permission::UsersManage)?;
    Ok(axum::Json(user_view(org_user(&state, &who, &id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// A role of the same realm that the caller may grant.
    pub role: Option<String>,
    pub display_name: Option<String>,
    /// `true` disables the account (its sessions end at once), `false` enables it.
    pub disabled: Option<bool>,
}

/// Change a user's role or display name, or disable or enable the account.
#[utoipa::path(
    patch, path = "/users/{id}", tag = "users",
    params(("id" = String, Path)),
    request_body = UpdateUser,
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 400, body = crate::Problem),
        (status = 403, description = "Role not grantable", body = crate::Problem),
        (status = 404, body = crate::Problem),
        (status = 409, description = "Own account or last administrator", body = crate::Problem),
    )
)]
async fn update_user(
    State(state): State<AppState>,
    who: Principal,
    audit: AuditSlot,
    Path(id): Path<String>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<axum::Json<UserView>> {
    who.require(Permission::UsersManage)?;
    let target = org_user(&state, &who, &id).await?;
    let current_role = Role::parse(&target.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", target.id)))?;
    let new_role = match req.role.as_deref() {
        Some(r) => Some(
            Role::parse(r).ok_or_else(|| ApiError::invalid("role", format!("no role `{r}`")))?,
        ),
        None => None,
    };
    let changes_role = new_role.is_some_and(|r| r != current_role);
    let disables = req.disabled == Some(true) && target.disabled_at.is_none();
    if target.id == who.user_id && (changes_role || req.disabled.is_some()) {
        return Err(ApiError::conflict(
            "you cannot change your own role or disable yourself; ask another administrator",
        )
        .with_code("cannot_change_self"));
    }
    if !can_grant(&who, current_role) {
        return Err(ApiError::forbidden(format!(
            "you cannot change a user whose role ({}) has permissions you lack",
            current_role.as_str()
        ))
        .with_code("role_not_grantable"));
    }
    if let Some(r) = new_role.filter(|_| changes_role) {
        if r.realm() != target.realm {
            return Err(ApiError::invalid(
                "role",
                format!(
                    "`{}` is a role of the {} realm; this account is {}",
                    r.as_str(),
                    r.realm(),
                    target.realm
                ),
            )
            .with_code("realm_mismatch"));
        }
        if !can_grant(&who, r) {
            return Err(ApiError::forbidden(format!(
                "you cannot grant the {} role: it has permissions you lack",
                r.as_str()
            ))
            .with_code("role_not_grantable"));
        }
    }
    if current_role == Role::Admin
        && (disables || changes_role)
        && state
            .db
            .count_enabled_with_role(&who.organization_id, "admin")
            .await?
            <= 1
    {
        return Err(
            ApiError::conflict("this is the organization's last active administrator")
                .with_code("last_admin"),
        );
    }
    let display_name = req
        .display_name
        .as_deref()
        .map(|n| crate::auth::valid_display_name(n, "display_name"))
        .transpose()?;
    let user = state
        .db
        .update_user(
            &who.organization_id,
            &id,
            &UserPatch {
                role: new_role
                    .filter(|_| changes_role)
                    .map(|r| r.as_str().to_string()),
                display_name,
                disabled: req.disabled,
            },
        )
        .await?;
    if new_role == Some(Role::ApiOnly) && changes_role {
        // api_only holds API tokens and nothing else.
        state
            .db
            .revoke_all_sessions(&user.id, "role_api_only")
            .await?;
    }
    audit.details(serde_json::json!({
        "role": new_role.filter(|_| changes_role).map(|r| r.as_str()),
        "previous_role": changes_role.then_some(current_role.as_str()),
        "disabled": req.disabled,
    }));
    tracing::info!(user = %user.id, by = %who.user_id, "user updated");
    Ok(axum::Json(user_view(user)))
}

/// Remove a user's TOTP and recovery codes (a lost device); with MFA required they enrol again
/// at their next sign-in.
#[utoipa::path(
    delete, path = "/users/{id}/mfa", tag = "users",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn reset_mfa(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::UsersManage)?;
    let target = org_user(&state, &who, &id).await?;
    let role = Role::parse(&target.role).unwrap_or(Role::Admin);
    if !can_grant(&who, role) {
        return Err(
            ApiError::forbidden("you cannot change a user with more permissions")
                .with_code("role_not_grantable"),
        );
    }
    state.db.disable_totp(&target.id).await?;
    state
        .db
        .revoke_all_sessions(&target.id, "mfa_reset")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's active sessions, newest first.
#[utoipa::path(
    get, path = "/users/{id}/sessions", tag = "users",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = [crate::auth::SessionView]), (status = 404, body = crate::Problem))
)]
async fn user_sessions(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<crate::auth::SessionView>>> {
    who.require(Permission::UsersManage)?;
    let target = org_user(&state, &who, &id).await?;
    let list = state.db.active_sessions(&target.id).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|s| crate::auth::session_view(s, &who.session_id))
            .collect(),
    ))
}

/// End one session of a user.
#[utoipa::path(
    delete, path = "/users/{id}/sessions/{session_id}", tag = "users",
    params(("id" = String, Path), ("session_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn revoke_user_session(
    State(state): State<AppState>,
    who: Principal,
    Path((id, session_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    who.require(Permission::UsersManage)?;
    let target = org_user(&state, &who, &id).await?;
    if state
        .db
        .revoke_session(&target.id, &session_id, "revoked_by_admin")
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such active session"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    #[serde(flatten)]
    pub user: UserView,
    /// When a staff password must be changed at the latest.
    pub password_expires_at: Option<String>,
}

async fn me_user(state: &AppState, who: &Principal) -> ApiResult<User> {
    state
        .db
        .user(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}

fn profile(state: &AppState, u: User) -> Profile {
    let expires = match (u.realm.as_str(), state.auth.staff_password_max_age) {
        ("staff", Some(max)) => u
            .password_changed_at
            .map(|c| rfc3339(c + max.as_millis() as i64)),
        _ => None,
    };
    Profile {
        user: user_view(u),
        password_expires_at: expires,
    }
}

/// The caller's own profile.
#[utoipa::path(
    get, path = "/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Profile))
)]
async fn get_me(State(state): State<AppState>, who: Principal) -> ApiResult<axum::Json<Profile>> {
    let u = me_user(&state, &who).await?;
    Ok(axum::Json(profile(&state, u)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    pub display_name: Option<String>,
}

/// Change the caller's own display name.
#[utoipa::path(
    patch, path = "/users/me", tag = "users",
    request_body = UpdateMe,
    security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 400, body = crate::Problem))
)]
async fn update_me(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<UpdateMe>,
) -> ApiResult<axum::Json<Profile>> {
    let display_name = req
        .display_name
        .as_deref()
        .map(|n| crate::auth::valid_display_name(n, "display_name"))
        .transpose()?;
    let u = state
        .db
        .update_user(
            &who.organization_id,
            &who.user_id,
            &UserPatch {
                display_name,
                ..Default::default()
            },
        )
        .await?;
    Ok(axum::Json(profile(&state, u)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// The realm's policy; staff may not reuse one of their recent passwords.
    pub new_password: String,
}

/// Change the caller's password. Every other session of the account ends.
#[utoipa::path(
    post, path = "/users/me/password", tag = "users",
    request_body = ChangePassword,
    security(("bearer" = [])),
    responses((status = 204), (status = 400, body = crate::Problem))
)]
async fn change_my_password(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    if who.via == Via::ApiToken {
        return Err(ApiError::forbidden(
            "an API token cannot change the account's password",
        ));
    }
    let u = me_user(&state, &who).await?;
    let stored = u
        .password_hash
        .clone()
        .unwrap_or_else(|| password::dummy_hash().to_string());
    if req.current_password.len() > 1024
        || !password::verify_blocking(&req.current_password, &stored).await?
    {
        return Err(
            ApiError::invalid("current_password", "the current password is not correct")
                .with_code("invalid_credentials"),
        );
    }
    crate::auth::change_password(
        &state,
        &u,
        &req.new_password,
        "new_password",
        Some(&who.session_id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
