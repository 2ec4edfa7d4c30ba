//! `/api/v1/api-tokens`: named API tokens scoped to a subset of the holder's permissions, with
//! an optional expiry. A token is shown once, at creation; the database keeps its SHA-256 hash
//! and last 4 characters. Tokens start with `lnr_` and are sent as `Authorization: Bearer`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::{hash_secret, last4, random_secret};
use lunora_store::{ApiToken, NewApiToken};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::{self, Role};
use crate::auth::{AuditSlot, Permission, Principal, API_TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(get_token, revoke_token))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    /// The account the token acts as.
    pub user_id: String,
    pub permissions: Vec<String>,
    /// `lnr_****` and the last 4 characters.
    pub token_masked: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    pub created_by: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

fn view(t: ApiToken) -> ApiTokenView {
    let now = lunora_store::now_ms();
    ApiTokenView {
        status: if t.revoked_at.is_some() {
            "revoked"
        } else if t.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        },
        token_masked: format!("{API_TOKEN_PREFIX}****{}", t.token_last4),
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
        last_used_at: t.last_used_at.map(rfc3339),
        revoked_at: t.revoked_at.map(rfc3339),
        id: t.id,
        name: t.name,
        user_id: t.user_id,
        permissions: t.permissions,
        created_by: t.created_by,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub info: ApiTokenView,
    /// The token in full. Shown this once; store it safely.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    /// 1–100 characters.
    pub name: String,
    /// A subset of the holder's permissions; default: all of them.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    /// Days until it expires (1–3650); default: never.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// Create it for another account of the organization (needs `users_manage`); this is how an
    /// `api_only` account gets its tokens.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// Create an API token. The answer carries the token in full, the only time it is shown.
#[utoipa::path(
    post, path = "/api-tokens", tag = "api-tokens",
    request_body = CreateApiToken,
    security(("bearer" = [])),
    responses(
        (status = 201, body = CreatedApiToken),
        (status = 400, body = crate::Problem),
        (status = 403, description = "Scope beyond the holder's permissions", body = crate::Problem),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    who: Principal,
    audit: AuditSlot,
    Json(req): Json<CreateApiToken>,
) -> ApiResult<Response> {
    who.require(Permission::ApiTokensManage)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "name must be 1–100 characters"));
    }
    let holder = match req.user_id.as_deref() {
        Some(id) if id != who.user_id => {
            who.require(Permission::UsersManage)?;
            state
                .db
                .user_in_org(&who.organization_id, id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such user").with_field("user_id"))?
        }
        _ => state
            .db
            .user(&who.user_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?,
    };
    let holder_role = Role::parse(&holder.role)
        .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", holder.id)))?;
    if holder_role.is_audience() {
        return Err(ApiError::invalid(
            "user_id",
            "audience accounts cannot hold API tokens",
        ));
    }
    if holder.disabled_at.is_some() {
        return Err(ApiError::invalid("user_id", "the account is disabled"));
    }
    // The scope: what both the holder's role and the creator may do.
    let available: Vec<Permission> = permissions::granted(holder_role)
        .iter()
        .copied()
        .filter(|p| who.can(*p))
        .collect();
    let scope: Vec<Permission> = match &req.permissions {
        None => available.clone(),
        Some(list) => {
            let mut out = Vec::new();
            for (i, name) in list.iter().enumerate() {
                let p = Permission::parse(name).ok_or_else(|| {
                    ApiError::invalid(
                        format!("permissions[{i}]"),
                        format!("no permission `{name}`"),
                    )
                })?;
                if !available.contains(&p) {
                    return Err(ApiError::forbidden(format!(
                        "`{name}` is not among the permissions the token's holder and you share"
                    ))
                    .with_code("scope_not_grantable")
                    .with_field(format!("permissions[{i}]")));
                }
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            out
        }
    };
    if scope.is_empty() {
        return Err(ApiError::invalid(
            "permissions",
            "the token would have no permission at all",
        ));
    }
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => {
            Some(lunora_store::now_ms() + i64::from(d) * 86_400_000)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "expires_in_days",
                "expires_in_days must be 1–3650",
            ))
        }
    };
    let token = random_secret(API_TOKEN_PREFIX);
    let names: Vec<String> = scope.iter().map(|p| p.as_str().to_string()).collect();
    let created = state
        .db
        .create_api_token(&NewApiToken {
            organization_id: &who.organization_id,
            user_id: &holder.id,
            name,
            token_hash: &hash_secret(&token),
            token_last4: &last4(&token),
            permissions: &names,
            created_by: Some(&who.user_id),
            expires_at,
        })
        .await?;
    audit.resource_id(&created.id);
    audit.details(serde_json::json!({ "holder": holder.id, "permissions": names }));
    tracing::info!(token = %created.id, holder = %holder.id, "API token created");
    let location = format!("/api/v1/api-tokens/{}", created.id);
    let mut res = (
        StatusCode::CREATED,
        axum::Json(CreatedApiToken {
            info: view(created),
            token,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this account's tokens (administrators see every account's by default).
    pub user_id: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenList {
    pub items: Vec<ApiTokenView>,
    pub next_cursor: Option<String>,
}

/// API tokens: one's own, or every one of the organization for administrators.
#[utoipa::path(
    get, path = "/api-tokens", tag = "api-tokens",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ApiTokenList))
)]
async fn list_tokens(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<ApiTokenList>> {
    who.require(Permission::ApiTokensManage)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let user = if who.can(Permission::UsersManage) {
        q.user_id.clone()
    } else {
        Some(who.user_id.clone())
    };
    let page = state
        .db
        .list_api_tokens(
            &who.organization_id,
            user.as_deref(),
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(axum::Json(ApiTokenList {
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn visible(state: &AppState, who: &Principal, id: &str) -> ApiResult<ApiToken> {
    state
        .db
        .api_token(&who.organization_id, id)
        .await?
        .filter(|t| t.user_id == who.user_id || who.can(Permission::UsersManage))
        .ok_or_else(|| ApiError::not_found("no such API token"))
}

/// One API token (never the token itself).
#[utoipa::path(
    get, path = "/api-tokens/{id}", tag = "api-tokens",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ApiTokenView), (status = 404, body = crate::Problem))
)]
async fn get_token(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApiTokenView>> {
    who.require(Permission::ApiTokensManage)?;
    Ok(axum::Json(view(visible(&state, &who, &id).await?)))
}

/// Revoke an API token: it stops working at once.
#[utoipa::path(
    delete, path = "/api-tokens/{id}", tag = "api-tokens",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem))
)]
async fn revoke_token(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::ApiTokensManage)?;
    let t = visible(&state, &who, &id).await?;
    state
        .db
        .revoke_api_token(&who.organization_id, &t.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
