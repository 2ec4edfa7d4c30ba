//! The viewer platform (issue 11): the public stream catalog (a catalog "stream" is a channel:
//! `/api/v1/streams/{id}` takes the channel id), playback tokens that enforce the stream's
//! access level, viewing sessions with history, saved streams and follows, audience profiles
//! and privacy, subscriptions through a [`payments::PaymentProvider`], trending and
//! recommendations, and the viewer admin.
//!
//! **Levels.** Streams are `public`, `premium` or `vip`; a viewer's level is `public`
//! (anonymous, free), `premium` or `vip` (from an active subscription, which puts the account
//! into that group), and staff of the stream's organization reach every level. The level is
//! checked when a playback token is issued (`POST /api/v1/streams/{id}/playback`); the HLS
//! routes refuse premium and vip streams without such a token (see `crate::hls`).

pub mod account;
pub mod catalog;
pub mod payments;
pub mod subscriptions;
pub mod viewing;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(catalog::router())
        .merge(viewing::router())
        .merge(account::router())
        .merge(subscriptions::router())
}

/// The caller when the request carries credentials, else `None` (an anonymous viewer). Bad
/// credentials are refused rather than taken as anonymous.
pub struct MaybeViewer(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(MaybeViewer(Some(p.clone())));
        }
        if !crate::auth::has_credentials(&parts.headers) {
            return Ok(MaybeViewer(None));
        }
        let ip = crate::auth::peer_ip(&parts.extensions);
        let p = crate::auth::authenticate(state, &parts.headers, &parts.method, ip).await?;
        Ok(MaybeViewer(Some(p)))
    }
}

/// Access levels in order.
pub const LEVELS: [&str; 3] = ["public", "premium", "vip"];

pub fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// Content ratings in order; a profile's `max_rating` hides everything above it.
pub const RATINGS: [&str; 4] = ["general", "teen", "mature", "adult"];

pub fn rating_rank(rating: &str) -> usize {
    RATINGS
        .iter()
        .position(|r| *r == rating)
        .unwrap_or(RATINGS.len() - 1)
}

/// The level a caller reaches on streams of `organization_id`, after settling the caller's
/// subscriptions (expiry and renewal happen here, see [`subscriptions::settle`]).
pub async fn viewer_level(
    state: &AppState,
    who: Option<&Principal>,
    organization_id: &str,
) -> Result<&'static str, ApiError> {
    let Some(p) = who else {
        return Ok("public");
    };
    let role = if p.role.is_audience() {
        subscriptions::settle(state, &p.user_id).await?
    } else {
        p.role
    };
    Ok(match role {
        Role::Vip => "vip",
        Role::Premium => "premium",
        Role::Admin | Role::Operator | Role::ConsumerAdmin
            if p.organization_id == organization_id =>
        {
            "vip"
        }
        _ => "public",
    })
}

/// Whether the channel's input is live now.
pub fn is_live(state: &AppState, channel_id: &str) -> bool {
    Uuid::parse_str(channel_id)
        .ok()
        .and_then(|id| state.engine.channel(id))
        .is_some_and(|c| c.status().input_state == lunora_media::InputState::Live)
}

pub(crate) fn not_found() -> ApiError {
    ApiError::not_found("no such stream")
}

/// Only audience accounts have viewer-only features (subscriptions, account deletion).
pub(crate) fn require_audience(p: &Principal) -> Result<(), ApiError> {
    if p.role.is_audience() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only audience accounts (free, premium, vip) can do this; this is a {} account",
            p.role.as_str()
        ))
        .with_code("audience_only"))
    }
}
