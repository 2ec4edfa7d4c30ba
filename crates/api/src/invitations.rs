//! `/api/v1/invitations`: staff join by invitation only. An administrator invites an address with
//! a role; the one-time link is e-mailed (never shown in an answer); accepting it creates the
//! account under the staff password policy.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::{hash_secret, random_secret};
use lunora_store::{AcceptOutcome, Invitation, NewInvitation};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::password::{self, Realm};
use crate::auth::permissions::Role;
use crate::auth::{AuditSlot, Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::mail::Mail;
use crate::users::{can_grant, user_view, UserView};
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invitations, create_invitation))
        .routes(routes!(accept_invitation))
        .routes(routes!(get_invitation, revoke_invitation))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: &'static str,
    pub invited_by: Option<String>,
    /// The account created by accepting it.
    pub user_id: Option<String>,
    pub created_at: String,
    pub expires_at: String,
}

fn view(i: Invitation) -> InvitationView {
    InvitationView {
        status: i.status(lunora_store::now_ms()),
        created_at: rfc3339(i.created_at),
        expires_at: rfc3339(i.expires_at),
        id: i.id,
        email: i.email,
        display_name: i.display_name,
        role: i.role,
        invited_by: i.invited_by,
        user_id: i.user_id,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub email: String,
    /// A staff role the caller may grant.
    pub role: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Sends an invitation e-mail for `invitation` with its one-time link token.
pub(crate) async fn send_invitation(
    state: &AppState,
    headers: &HeaderMap,
    org_name: &str,
    inv: &Invitation,
    token: &str,
    outbox_org: &str,
) {
    let base = crate::auth::public_base(state, headers);
    let days = (state.auth.invitation_ttl.as_secs() / 86_400).max(1);
    state
        .identity
        .mailer
        .send(
            state,
            Mail {
                organization_id: Some(outbox_org),
                to: &inv.email,
                kind: "invitation",
                subject: "You are invited to Lunora",
                body: &format!(
                    "You are invited to join {org_name} on Lunora as {role}.\n\nAccept the \
                     invitation and choose a password at:\n\n{base}/accept-invitation?token={token}\n\n\
                     The link works once, within {days} day(s).\n",
                    role = inv.role
                ),
            },
        )
        .await;
}

/// Creates an invitation (replacing a pending one to the same address) and e-mails it. Without
/// SMTP the message is kept in the outbox of `outbox_org`: the organization itself, or the
/// superadmin's when inviting the first administrator of a new organization.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn invite(
    state: &AppState,
    headers: &HeaderMap,
    organization_id: &str,
    outbox_org: &str,
    invited_by: Option<&str>,
    email: &str,
    role: Role,
    display_name: &str,
) -> ApiResult<Invitation> {
    if let Some(existing) = state.db.user_by_email("staff", email).await? {
        if existing.organization_id == organization_id {
            return Err(ApiError::conflict(
                "this address has an account in the organization already",
            )
            .with_code("user_exists")
            .with_field("email"));
        }
    }
    if let Some(old) = state
        .db
        .pending_invitation_for(organization_id, email)
        .await?
    {
        state.db.revoke_invitation(organization_id, &old.id).await?;
    }
    let token = random_secret("inv_");
    let inv = state
        .db
        .create_invitation(&NewInvitation {
            organization_id,
            email,
            display_name,
            role: role.as_str(),
            invited_by,
            token_hash: &hash_secret(&token),
            expires_at: lunora_store::now_ms() + state.auth.invitation_ttl.as_millis() as i64,
        })
        .await?;
    let org_name = state
        .db
        .organization(organization_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    send_invitation(state, headers, &org_name, &inv, &token, outbox_org).await;
    Ok(inv)
}

/// Invite a staff member by e-mail with a role. The link is e-mailed, never answered.
#[utoipa::path(
    post, path = "/invitations", tag = "users",
    request_body = CreateInvitation,
    security(("bearer" = [])),
    responses(
        (status = 201, body = InvitationView),
        (status = 400, body = crate::Problem),
        (status = 403, description = "Role not grantable", body = crate::Problem),
        (status = 409, description = "The address has an account already", body = crate::Problem),
    )
)]
async fn create_invitation(
    State(state): State<AppState>,
    who: Principal,
    audit: AuditSlot,
    headers: HeaderMap,
    Json(req): Json<CreateInvitation>,
) -> ApiResult<Response> {
    who.require(Permission::UsersManage)?;
    let email = crate::auth::valid_email(&req.email)?;
    let role = Role::parse(&req.role)
        .ok_or_else(|| ApiError::invalid("role", format!("no role `{}`", req.role)))?;
    if role.is_audience() {
        return Err(ApiError::invalid(
            "role",
            "audience accounts sign up themselves; invite staff roles only",
        )
        .with_code("realm_mismatch"));
    }
    if !can_grant(&who, role) {
        return Err(ApiError::forbidden(format!(
            "you cannot grant the {} role: it has permissions you lack",
            role.as_str()
        ))
        .with_code("role_not_grantable"));
    }
    let display_name =
        crate::auth::valid_display_name(req.display_name.as_deref().unwrap_or(""), "display_name")?;
    let inv = invite(
        &state,
        &headers,
        &who.organization_id,
        &who.organization_id,
        Some(&who.user_id),
        &email,
        role,
        &display_name,
    )
    .await?;
    audit.resource_id(&inv.id);
    audit.details(serde_json::json!({ "email": inv.email, "role": inv.role }));
    let location = format!("/api/v1/invitations/{}", inv.id);
    let mut res = (StatusCode::CREATED, axum::Json(view(inv))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub items: Vec<InvitationView>,
    pub next_cursor: Option<String>,
}

/// The organization's invitations, newest first.
#[utoipa::path(
    get, path = "/invitations", tag = "users",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = InvitationList))
)]
async fn list_invitations(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<InvitationList>> {
    who.require(Permission::UsersManage)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_invitations(&who.organization_id, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(InvitationList {
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One invitation of the organization.
#[utoipa::path(
    get, path = "/invitations/{id}", tag = "users",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = InvitationView), (status = 404, body = crate::Problem))
)]
async fn get_invitation(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<InvitationView>> {
    who.require(Permission::UsersManage)?;
    let inv = state
        .db
        .invitation(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such invitation"))?;
    Ok(axum::Json(view(inv)))
}

/// Revoke a pending invitation: its link stops working.
#[utoipa::path(
    delete, path = "/invitations/{id}", tag = "users",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 404, body = crate::Problem),
        (status = 409, description = "Not pending", body = crate::Problem),
    )
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::UsersManage)?;
    let inv = state
        .db
        .invitation(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such invitation"))?;
    if state
        .db
        .revoke_invitation(&who.organization_id, &inv.id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::conflict(format!(
            "the invitation is {} already",
            inv.status(lunora_store::now_ms())
        ))
        .with_code("invitation_not_pending"))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The token from the e-mailed link.
    pub token: String,
    /// Staff policy: 12+ characters with upper and lower case, a digit and a special character.
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Accept an invitation: creates the account, which then signs in (and, where the organization
/// requires MFA, enrols TOTP at its first sign-in).
#[utoipa::path(
    post, path = "/invitations/accept", tag = "users",
    request_body = AcceptInvitation,
    responses(
        (status = 201, body = UserView),
        (status = 400, description = "Weak password or invalid link", body = crate::Problem),
        (status = 409, description = "The address has an account already", body = crate::Problem),
    )
)]
async fn accept_invitation(
    State(state): State<AppState>,
    audit: AuditSlot,
    Json(req): Json<AcceptInvitation>,
) -> ApiResult<Response> {
    let invalid = || {
        ApiError::invalid(
            "token",
            "the invitation is not valid, was used, revoked or expired",
        )
        .with_code("invalid_token")
    };
    if req.token.len() > 128 {
        return Err(invalid());
    }
    let hash = hash_secret(req.token.trim());
    let inv = state
        .db
        .invitation_by_token(&hash)
        .await?
        .filter(|i| i.status(lunora_store::now_ms()) == "pending")
        .ok_or_else(invalid)?;
    password::check_policy(Realm::Staff, &req.password)?;
    let display_name =
        crate::auth::valid_display_name(req.display_name.as_deref().unwrap_or(""), "display_name")?;
    let pw_hash = password::hash_blocking(&req.password).await?;
    let outcome = state
        .db
        .accept_invitation(&hash, &display_name, Realm::Staff.as_str(), &pw_hash)
        .await
        .map_err(|e| match e {
            lunora_store::StoreError::Conflict(_) => ApiError::conflict(
                "an account with this address exists already; sign in or reset its password",
            )
            .with_code("user_exists"),
            other => other.into(),
        })?;
    let AcceptOutcome::Accepted(user) = outcome else {
        return Err(invalid());
    };
    audit.actor(&user.id, &user.organization_id);
    audit.resource_id(&inv.id);
    tracing::info!(user = %user.id, invitation = %inv.id, "invitation accepted");
    Ok((StatusCode::CREATED, axum::Json(user_view(*user))).into_response())
}
