//! Explicit secret reveal: `POST /api/v1/channels/{id}/inputs/{input_id}/reveal` opens a
//! publish key sealed with the master key. It needs `secrets_reveal`, reaches only channels the
//! caller may see, is never cached, and is recorded in the audit log with what was revealed.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuditSlot, Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reveal_input_key))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedKey {
    pub channel_id: String,
    pub input_id: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// The publish (stream) key in clear.
    pub publish_key: String,
}

/// Reveal an input's publish key in clear (audited).
#[utoipa::path(
    post, path = "/channels/{id}/inputs/{input_id}/reveal", tag = "channels",
    params(("id" = String, Path), ("input_id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = RevealedKey),
        (status = 403, body = crate::Problem),
        (status = 404, body = crate::Problem),
    )
)]
async fn reveal_input_key(
    State(state): State<AppState>,
    who: Principal,
    audit: AuditSlot,
    Path((channel_id, input_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Permission::SecretsReveal)?;
    let not_found = || ApiError::not_found("no such channel input");
    let channel = state
        .db
        .channel(&who.organization_id, &channel_id)
        .await?
        .filter(|c| {
            who.can(Permission::ChannelsManageAll) || c.owner_id.as_deref() == Some(&who.user_id)
        })
        .ok_or_else(not_found)?;
    let (sealed, role) = state
        .db
        .input_sealed_key(&who.organization_id, &channel.id, &input_id)
        .await?
        .ok_or_else(not_found)?;
    let key = state.secrets.open(&sealed)?;
    audit.update(|n| {
        n.resource_id = Some(input_id.clone());
        n.details = Some(serde_json::json!({
            "secret": "publish_key",
            "channel_id": channel.id,
            "input_id": input_id,
            "last4": lunora_store::crypto::last4(&key),
        }));
    });
    tracing::info!(channel = %channel.id, input = %input_id, user = %who.user_id, "publish key revealed");
    let mut res = axum::Json(RevealedKey {
        channel_id: channel.id,
        input_id,
        role,
        publish_key: key,
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
