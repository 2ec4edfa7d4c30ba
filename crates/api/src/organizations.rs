//! `/api/v1/organizations`: tenants. A platform superadmin lists, creates (inviting the first
//! administrator), changes and disables organizations; an organization's administrators read
//! and change its own policies at `/organizations/current`.

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::{Organization, OrganizationPatch};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Role;
use crate::auth::{allowlist, AuditSlot, MfaPolicy, Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(get_current, update_current))
        .routes(routes!(get_organization, update_organization))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// MFA policy for staff in effect: `required` or `optional`.
    pub staff_mfa: &'static str,
    /// `organization` when set here, `server_default` when it follows `auth.staff_mfa`.
    pub staff_mfa_source: &'static str,
    /// Addresses and CIDR blocks staff and API tokens may connect from; empty allows all.
    pub ip_allowlist: Vec<String>,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

fn view(state: &AppState, o: Organization) -> OrganizationView {
    let own = o.staff_mfa.as_deref().and_then(MfaPolicy::parse);
    OrganizationView {
        staff_mfa: own.unwrap_or(state.auth.staff_mfa).as_str(),
        staff_mfa_source: if own.is_some() {
            "organization"
        } else {
            "server_default"
        },
        ip_allowlist: o
            .ip_allowlist
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        status: if o.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        },
        created_at: rfc3339(o.created_at),
        updated_at: rfc3339(o.updated_at),
        id: o.id,
        name: o.name,
        slug: o.slug,
    }
}

fn require_superadmin(who: &Principal) -> ApiResult<()> {
    if who.superadmin && who.via != crate::auth::Via::ApiToken {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only a platform superadmin, signed in with a session, may do this",
        ))
    }
}

fn valid_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "name must be 1–100 characters"));
    }
    Ok(n.to_string())
}

fn valid_slug(slug: &str) -> ApiResult<String> {
    let ok = (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(slug.to_string())
    } else {
        Err(ApiError::invalid(
            "slug",
            "slug must be 2–63 lower-case letters, digits and dashes",
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicies {
    pub name: Option<String>,
    /// `required`, `optional`, or `default` to follow the server default.
    pub staff_mfa: Option<String>,
    /// Addresses and CIDR blocks; an empty list allows every address.
    pub ip_allowlist: Option<Vec<String>>,
}

fn policy_patch(req: &UpdatePolicies) -> ApiResult<OrganizationPatch> {
    let staff_mfa = match req.staff_mfa.as_deref() {
        None => None,
        Some("default") => Some(None),
        Some(p) => Some(Some(
            MfaPolicy::parse(p)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "staff_mfa",
                        "staff_mfa must be `required`, `optional` or `default`",
                    )
                })?
                .as_str()
                .to_string(),
        )),
    };
    let ip_allowlist = match &req.ip_allowlist {
        None => None,
        Some(list) => {
            if list.len() > 100 {
                return Err(ApiError::invalid("ip_allowlist", "at most 100 entries"));
            }
            Some(allowlist::normalize(list).map_err(|m| ApiError::invalid("ip_allowlist", m))?)
        }
    };
    Ok(OrganizationPatch {
        name: req.name.as_deref().map(valid_name).transpose()?,
        staff_mfa,
        ip_allowlist,
        disabled: None,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationList {
    pub items: Vec<OrganizationView>,
    pub next_cursor: Option<String>,
}

/// Every organization of the platform (superadmin).
#[utoipa::path(
    get, path = "/organizations", tag = "organizations",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = OrganizationList))
)]
async fn list_organizations(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<OrganizationList>> {
    require_superadmin(&who)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_organizations(q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(OrganizationList {
        items: page.items.into_iter().map(|o| view(&state, o)).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
    /// 2–63 lower-case letters, digits and dashes; unique.
    pub slug: String,
    /// Invite this address as the organization's first administrator.
    #[serde(default)]
    pub admin_email: Option<String>,
    /// `required` or `optional`; default: the server default.
    #[serde(default)]
    pub staff_mfa: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedOrganization {
    #[serde(flatten)]
    pub organization: OrganizationView,
    /// The invitation of the first administrator, when `admin_email` was given.
    pub admin_invitation_id: Option<String>,
}

/// Create an organization and, optionally, invite its first administrator (superadmin).
#[utoipa::path(
    post, path = "/organizations", tag = "organizations",
    request_body = CreateOrganization,
    security(("bearer" = [])),
    responses(
        (status = 201, body = CreatedOrganization),
        (status = 400, body = crate::Problem),
        (status = 409, description = "The slug is taken", body = crate::Problem),
    )
)]
async fn create_organization(
    State(state): State<AppState>,
    who: Principal,
    audit: AuditSlot,
    headers: HeaderMap,
    Json(req): Json<CreateOrganization>,
) -> ApiResult<Response> {
    require_superadmin(&who)?;
    let name = valid_name(&req.name)?;
    let slug = valid_slug(req.slug.trim())?;
    let admin_email = req
        .admin_email
        .as_deref()
        .map(crate::auth::valid_email)
        .transpose()?;
    let staff_mfa = match req.staff_mfa.as_deref() {
        None => None,
        Some(p) => Some(MfaPolicy::parse(p).ok_or_else(|| {
            ApiError::invalid("staff_mfa", "staff_mfa must be `required` or `optional`")
        })?),
    };
    let mut org = state.db.create_organization(&slug, &name).await?;
    if let Some(p) = staff_mfa {
        org = state
            .db
            .update_organization(
                &org.id,
                &OrganizationPatch {
                    staff_mfa: Some(Some(p.as_str().to_string())),
                    ..Default::default()
                },
            )
            .await?;
    }
    let invitation = match admin_email {
        Some(email) => Some(
            crate::invitations::invite(
                &state,
                &headers,
                &org.id,
                &who.organization_id,
                Some(&who.user_id),
                &email,
                Role::Admin,
                "",
            )
            .await?,
        ),
        None => None,
    };
    audit.resource_id(&org.id);
    tracing::info!(organization = %org.id, by = %who.user_id, "organization created");
    let location = format!("/api/v1/organizations/{}", org.id);
    let mut res = (
        StatusCode::CREATED,
        axum::Json(CreatedOrganization {
            organization: view(&state, org),
            admin_invitation_id: invitation.map(|i| i.id),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn find(state: &AppState, id: &str) -> ApiResult<Organization> {
    state
        .db
        .organization(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such organization"))
}

/// One organization (superadmin).
#[utoipa::path(
    get, path = "/organizations/{id}", tag = "organizations",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = OrganizationView), (status = 404, body = crate::Problem))
)]
async fn get_organization(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<OrganizationView>> {
    require_superadmin(&who)?;
    Ok(axum::Json(view(&state, find(&state, &id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    pub name: Option<String>,
    /// `required`, `optional`, or `default`.
    pub staff_mfa: Option<String>,
    pub ip_allowlist: Option<Vec<String>>,
    /// `true` disables the organization: its users and API tokens stop working at once.
    pub disabled: Option<bool>,
}

/// Change or disable an organization (superadmin).
#[utoipa::path(
    patch, path = "/organizations/{id}", tag = "organizations",
    params(("id" = String, Path)),
    request_body = UpdateOrganization,
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrganizationView),
        (status = 404, body = crate::Problem),
        (status = 409, description = "Own organization cannot be disabled", body = crate::Problem),
    )
)]
async fn update_organization(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<UpdateOrganization>,
) -> ApiResult<axum::Json<OrganizationView>> {
    require_superadmin(&who)?;
    let org = find(&state, &id).await?;
    if req.disabled == Some(true) && org.id == who.organization_id {
        return Err(
            ApiError::conflict("you cannot disable your own organization")
                .with_code("cannot_change_self"),
        );
    }
    let mut patch = policy_patch(&UpdatePolicies {
        name: req.name,
        staff_mfa: req.staff_mfa,
        ip_allowlist: req.ip_allowlist,
    })?;
    patch.disabled = req.disabled;
    let org = state.db.update_organization(&org.id, &patch).await?;
    Ok(axum::Json(view(&state, org)))
}

/// The caller's organization.
#[utoipa::path(
    get, path = "/organizations/current", tag = "organizations",
    security(("bearer" = [])),
    responses((status = 200, body = OrganizationView))
)]
async fn get_current(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<OrganizationView>> {
    Ok(axum::Json(view(
        &state,
        find(&state, &who.organization_id).await?,
    )))
}

/// Change the caller's organization's name, MFA policy or IP allow-list. An allow-list that
/// would shut out the caller's own address is refused.
#[utoipa::path(
    patch, path = "/organizations/current", tag = "organizations",
    request_body = UpdatePolicies,
    security(("bearer" = [])),
    responses((status = 200, body = OrganizationView), (status = 400, body = crate::Problem))
)]
async fn update_current(
    State(state): State<AppState>,
    who: Principal,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<UpdatePolicies>,
) -> ApiResult<axum::Json<OrganizationView>> {
    who.require(Permission::OrganizationManage)?;
    let patch = policy_patch(&req)?;
    if let Some(list) = &patch.ip_allowlist {
        if !allowlist::allows(list, peer.ip()) {
            return Err(ApiError::invalid(
                "ip_allowlist",
                format!("the list does not include your own address {}", peer.ip()),
            )
            .with_code("would_lock_out"));
        }
    }
    let org = state
        .db
        .update_organization(&who.organization_id, &patch)
        .await?;
    Ok(axum::Json(view(&state, org)))
}
