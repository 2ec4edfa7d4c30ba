//! TOTP (RFC 6238, via `totp-rs`) and one-time recovery codes: `/api/v1/auth/mfa/...`.
//!
//! Secrets are 160 random bits, sealed with the master key at rest. A code is accepted once per
//! 30-second step (the last accepted step is stored), within one step of clock skew. Recovery
//! codes are stored as hashes and each works once.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::crypto::hash_secret;
use lunora_store::User;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, TOTP};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{password, MfaPolicy, Principal, Realm};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mfa_status))
        .routes(routes!(totp_enrol))
        .routes(routes!(totp_verify))
        .routes(routes!(totp_disable))
        .routes(routes!(renew_recovery_codes))
}

const ISSUER: &str = "Lunora";
const STEP: u64 = 30;
const RECOVERY_CODES: usize = 10;
const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn totp(secret: Vec<u8>, account: &str) -> ApiResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret,
        Some(ISSUER.to_string()),
        account.replace(':', "_"),
    )
    .map_err(ApiError::internal)
}

fn secret_bytes(encoded: &str) -> ApiResult<Vec<u8>> {
    totp_rs::Secret::Encoded(encoded.to_string())
        .to_bytes()
        .map_err(|_| ApiError::internal("a stored TOTP secret is not base32"))
}

/// The time step `code` belongs to (within one step of `now`), compared in constant time.
fn matching_step(t: &TOTP, code: &str, now_secs: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now_secs / STEP;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = t.generate(step * STEP);
        let same = expected
            .bytes()
            .zip(code.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
            && expected.len() == code.len();
        if same {
            found = Some(step as i64);
        }
    }
    found
}

fn now_secs() -> u64 {
    (lunora_store::now_ms() / 1000).max(0) as u64
}

/// Whether `code` looks like a TOTP code rather than a recovery code.
pub fn is_totp_code(code: &str) -> bool {
    let c = code.trim();
    c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())
}

fn recovery_hash(user_id: &str, code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hash_secret(&format!("lunora-recovery:{user_id}:{normalized}"))
}

fn new_recovery_codes(user_id: &str) -> (Vec<String>, Vec<String>) {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut rng = rand::rngs::OsRng;
    for _ in 0..RECOVERY_CODES {
        let mut b = [0u8; 12];
        rng.fill_bytes(&mut b);
        let chars: String = b.iter().map(|x| B32[(*x & 31) as usize] as char).collect();
        codes.push(format!(
            "{}-{}-{}",
            &chars[0..4],
            &chars[4..8],
            &chars[8..12]
        ));
    }
    let hashes = codes.iter().map(|c| recovery_hash(user_id, c)).collect();
    (codes, hashes)
}

/// Outcome of checking a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    Accepted,
    /// Wrong, or a code already used in its time step, or a spent recovery code.
    Refused,
}

/// Checks a TOTP or recovery code of a user with active TOTP; a good one is spent.
pub async fn check_second_factor(
    state: &AppState,
    user: &User,
    code: &str,
) -> ApiResult<SecondFactor> {
    if is_totp_code(code) {
        let (_, active) = state.db.totp_secrets(&user.id).await?;
        let Some(sealed) = active else {
            return Ok(SecondFactor::Refused);
        };
        let encoded = state.secrets.open(&sealed)?;
        let t = totp(secret_bytes(&encoded)?, &user.email)?;
        let Some(step) = matching_step(&t, code, now_secs()) else {
            return Ok(SecondFactor::Refused);
        };
        if state.db.claim_totp_step(&user.id, step).await? {
            Ok(SecondFactor::Accepted)
        } else {
            tracing::warn!(user = %user.id, "TOTP code replayed");
            Ok(SecondFactor::Refused)
        }
    } else if code.len() <= 64
        && state
            .db
            .use_recovery_code(&user.id, &recovery_hash(&user.id, code))
            .await?
    {
        tracing::info!(user = %user.id, "recovery code used");
        Ok(SecondFactor::Accepted)
    } else {
        Ok(SecondFactor::Refused)
    }
}

/// The MFA policy that applies to `user`: staff follow their organization (or the server
/// default); audience accounts may always choose.
pub async fn policy_for(state: &AppState, user: &User) -> ApiResult<MfaPolicy> {
    if Realm::parse(&user.realm) != Some(Realm::Staff) {
        return Ok(MfaPolicy::Optional);
    }
    let org = state.db.organization(&user.organization_id).await?;
    Ok(org
        .and_then(|o| o.staff_mfa)
        .and_then(|p| MfaPolicy::parse(&p))
        .unwrap_or(state.auth.staff_mfa))
}

async fn current_user(state: &AppState, who: &Principal) -> ApiResult<User> {
    state
        .db
        .user(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatus {
    pub totp_enabled: bool,
    /// An enrolment was started and waits for its first code.
    pub enrolment_pending: bool,
    pub recovery_codes_left: i64,
    /// `required` or `optional` for this account.
    pub policy: &'static str,
}

/// The caller's MFA state and the policy that applies to it.
#[utoipa::path(
    get, path = "/auth/mfa", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = MfaStatus))
)]
async fn mfa_status(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<MfaStatus>> {
    let user = current_user(&state, &who).await?;
    let (pending, _) = state.db.totp_secrets(&user.id).await?;
    Ok(axum::Json(MfaStatus {
        totp_enabled: user.totp_enabled_at.is_some(),
        enrolment_pending: pending.is_some(),
        recovery_codes_left: state.db.recovery_codes_left(&user.id).await?,
        policy: policy_for(&state, &user).await?.as_str(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The shared secret in base32, for typing into an authenticator app. Shown once.
    pub secret: String,
    /// `otpauth://totp/...` URI, for a QR code.
    pub otpauth_uri: String,
}

/// Start TOTP enrolment: a new secret that becomes active once a code from it is verified.
#[utoipa::path(
    post, path = "/auth/mfa/totp/enrol", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TotpEnrolment),
        (status = 409, description = "TOTP is active already", body = crate::Problem),
    )
)]
async fn totp_enrol(State(state): State<AppState>, who: Principal) -> ApiResult<Response> {
    let user = current_user(&state, &who).await?;
    if user.totp_enabled_at.is_some() {
        return Err(ApiError::conflict(
            "TOTP is active already; disable it first to enrol a new authenticator",
        )
        .with_code("mfa_already_enabled"));
    }
    let mut raw = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let t = totp(raw.to_vec(), &user.email)?;
    let secret = t.get_secret_base32();
    state
        .db
        .set_totp_pending(&user.id, &state.secrets.seal(&secret))
        .await?;
    Ok(no_store(
        axum::Json(TotpEnrolment {
            otpauth_uri: t.get_url(),
            secret,
        })
        .into_response(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// Six-digit code from the authenticator app.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// One-time codes for when the authenticator is lost. Shown once; store them safely.
    pub recovery_codes: Vec<String>,
}

/// Confirm enrolment with a code from the new secret: TOTP becomes active, recovery codes are
/// issued, and a session limited to enrolment gets full access.
#[utoipa::path(
    post, path = "/auth/mfa/totp/verify", tag = "auth",
    request_body = TotpCode,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 400, description = "Wrong code", body = crate::Problem),
        (status = 409, description = "No enrolment pending", body = crate::Problem),
    )
)]
async fn totp_verify(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<TotpCode>,
) -> ApiResult<Response> {
    let user = current_user(&state, &who).await?;
    let (pending, _) = state.db.totp_secrets(&user.id).await?;
    let Some(sealed) = pending else {
        return Err(ApiError::conflict(
            "no TOTP enrolment is pending: start one with POST /api/v1/auth/mfa/totp/enrol",
        )
        .with_code("no_pending_enrolment"));
    };
    let encoded = state.secrets.open(&sealed)?;
    let t = totp(secret_bytes(&encoded)?, &user.email)?;
    let step = matching_step(&t, &req.code, now_secs()).ok_or_else(|| {
        ApiError::invalid("code", "the code does not match; check the device's clock")
            .with_code("invalid_totp")
    })?;
    let (codes, hashes) = new_recovery_codes(&user.id);
    state
        .db
        .activate_totp(&user.id, &sealed, step, &hashes)
        .await?;
    tracing::info!(user = %user.id, "TOTP enrolled");
    Ok(no_store(
        axum::Json(RecoveryCodes {
            recovery_codes: codes,
        })
        .into_response(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotp {
    pub password: String,
    /// A current TOTP code or a recovery code.
    pub code: String,
}

/// Turn TOTP off (password and a code required). Refused where the organization requires MFA.
#[utoipa::path(
    post, path = "/auth/mfa/totp/disable", tag = "auth",
    request_body = DisableTotp,
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 400, body = crate::Problem),
        (status = 403, description = "MFA is required by policy", body = crate::Problem),
    )
)]
async fn totp_disable(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<DisableTotp>,
) -> ApiResult<StatusCode> {
    let user = current_user(&state, &who).await?;
    if user.totp_enabled_at.is_none() {
        return Err(ApiError::conflict("TOTP is not active").with_code("mfa_not_enabled"));
    }
    if policy_for(&state, &user).await? == MfaPolicy::Required {
        return Err(ApiError::forbidden(
            "the organization requires MFA; an administrator can reset it for a lost device",
        )
        .with_code("mfa_required_by_policy"));
    }
    reauthenticate(&state, &user, &req.password, &req.code).await?;
    state.db.disable_totp(&user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reauthenticate(
    state: &AppState,
    user: &User,
    password_text: &str,
    code: &str,
) -> ApiResult<()> {
    let stored = user
        .password_hash
        .clone()
        .unwrap_or_else(|| password::dummy_hash().to_string());
    if password_text.len() > 1024 || !password::verify_blocking(password_text, &stored).await? {
        return Err(ApiError::invalid("password", "the password is not correct")
            .with_code("invalid_credentials"));
    }
    if check_second_factor(state, user, code).await? != SecondFactor::Accepted {
        return Err(
            ApiError::invalid("code", "the code is not correct or was used already")
                .with_code("invalid_totp"),
        );
    }
    Ok(())
}

/// Replace the recovery codes (a current TOTP code required); the old ones stop working.
#[utoipa::path(
    post, path = "/auth/mfa/recovery-codes", tag = "auth",
    request_body = TotpCode,
    security(("bearer" = [])),
    responses((status = 200, body = RecoveryCodes), (status = 400, body = crate::Problem))
)]
async fn renew_recovery_codes(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<TotpCode>,
) -> ApiResult<Response> {
    let user = current_user(&state, &who).await?;
    if user.totp_enabled_at.is_none() {
        return Err(ApiError::conflict("TOTP is not active").with_code("mfa_not_enabled"));
    }
    if !is_totp_code(&req.code)
        || check_second_factor(&state, &user, &req.code).await? != SecondFactor::Accepted
    {
        return Err(
            ApiError::invalid("code", "the code is not correct or was used already")
                .with_code("invalid_totp"),
        );
    }
    let (codes, hashes) = new_recovery_codes(&user.id);
    state.db.replace_recovery_codes(&user.id, &hashes).await?;
    Ok(no_store(
        axum::Json(RecoveryCodes {
            recovery_codes: codes,
        })
        .into_response(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_only() {
        let t = totp(vec![7u8; 20], "a@example.com").unwrap();
        let now = 1_700_000_000u64;
        let code = t.generate(now);
        assert_eq!(matching_step(&t, &code, now), Some((now / STEP) as i64));
        // One step of skew either way.
        assert!(matching_step(&t, &code, now + STEP).is_some());
        assert!(matching_step(&t, &code, now + 3 * STEP).is_none());
        assert!(matching_step(&t, "12345", now).is_none());
        assert!(matching_step(&t, "abcdef", now).is_none());
        assert!(t
            .get_url()
            .starts_with("otpauth://totp/Lunora:a%40example.com?"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_normalized() {
        let (codes, hashes) = new_recovery_codes("u1");
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        assert_eq!(recovery_hash("u1", &codes[0].to_uppercase()), hashes[0]);
        assert_ne!(recovery_hash("u2", &codes[0]), hashes[0]);
        assert!(!is_totp_code(&codes[0]));
    }
}
