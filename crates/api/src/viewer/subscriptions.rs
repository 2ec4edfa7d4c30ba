//! `/api/v1/subscriptions`: plans, checkout with the payment provider, the caller's
//! subscription, cancelling; and [`settle`], which applies renewals and expiry and keeps the
//! account's group (free, premium, vip) in step with its subscriptions.
//!
//! **Life of a subscription.** Checkout charges the first period (30 days) and makes it
//! `active`; the account moves into the plan's group. When a period ends: an `active`
//! subscription with `auto_renew` is charged again (success: a new period; decline:
//! `past_due`, still honoured for [`GRACE_MS`] while the viewer fixes the card); a `canceled`
//! one (cancel keeps the paid period) or a `past_due` one past its grace becomes `expired` and
//! the account falls back to `free`. Settling happens whenever the account's level matters
//! (playback tokens, viewing, these endpoints), so access never outlives payment, and in the
//! background ([`spawn_settler`]) for accounts not seen since, so renewals are charged and
//! lapsed accounts leave their group on time whether or not the viewer comes back.

use axum::extract::State;
use axum::http::StatusCode;
use lunora_store::{Payment, Subscription, UserPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::payments::PaymentError;
use super::require_audience;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

/// Length of one paid period.
pub const PERIOD_MS: i64 = 30 * 24 * 3_600_000;
/// How long a `past_due` subscription is still honoured.
pub const GRACE_MS: i64 = 3 * 24 * 3_600_000;

/// (plan, price in cents per period, what it unlocks).
pub const PLANS: [(&str, i64, &str); 3] = [
    ("free", 0, "public streams"),
    ("premium", 999, "public and premium streams"),
    ("vip", 2499, "every stream, vip ones included"),
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plans))
        .routes(routes!(checkout))
        .routes(routes!(my_subscription))
        .routes(routes!(cancel))
        .routes(routes!(admin_subscriptions))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub price_cents: i64,
    pub currency: String,
    pub period_days: i64,
    pub unlocks: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub items: Vec<PlanView>,
    /// The payment provider checkout goes through (`test` takes the test cards).
    pub provider: String,
}

/// The plans.
#[utoipa::path(
    get, path = "/subscriptions/plans", tag = "viewer",
    responses((status = 200, body = PlanList))
)]
async fn plans(State(state): State<AppState>) -> axum::Json<PlanList> {
    axum::Json(PlanList {
        items: PLANS
            .iter()
            .map(|(id, price, unlocks)| PlanView {
                id: (*id).into(),
                price_cents: *price,
                currency: "USD".into(),
                period_days: PERIOD_MS / 86_400_000,
                unlocks: (*unlocks).into(),
            })
            .collect(),
        provider: state.payments.name().into(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    /// `premium` or `vip`.
    pub plan: String,
    /// `active`, `past_due`, `canceled` or `expired`.
    pub status: String,
    pub started_at: String,
    /// End of the paid period (renewal date while `auto_renew`).
    pub current_period_end: String,
    pub auto_renew: bool,
    pub provider: String,
    pub payment_method: String,
    pub canceled_at: Option<String>,
}

pub(crate) fn sub_view(s: &Subscription) -> SubscriptionView {
    SubscriptionView {
        id: s.id.clone(),
        plan: s.plan.clone(),
        status: s.status.clone(),
        started_at: rfc3339(s.started_at),
        current_period_end: rfc3339(s.current_period_end),
        auto_renew: s.auto_renew,
        provider: s.provider.clone(),
        payment_method: s.payment_method.clone(),
        canceled_at: s.canceled_at.map(rfc3339),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MySubscription {
    /// The account's group now: `free`, `premium` or `vip`.
    pub group: String,
    /// The subscription that grants it, if any.
    pub current: Option<SubscriptionView>,
    pub history: Vec<SubscriptionView>,
}

fn price(plan: &str) -> Option<i64> {
    PLANS
        .iter()
        .find(|(id, _, _)| *id == plan)
        .map(|(_, p, _)| *p)
}

fn honoured(s: &Subscription, now: i64) -> bool {
    match s.status.as_str() {
        "active" | "canceled" => s.current_period_end > now,
        "past_due" => s.current_period_end + GRACE_MS > now,
        _ => false,
    }
}

/// Applies renewals and expiry to a user's subscriptions and puts an audience account into the
/// group its best honoured subscription grants. Answers the account's role afterwards.
pub async fn settle(state: &AppState, user_id: &str) -> ApiResult<Role> {
    let user = state
        .db
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    let role = Role::parse(&user.role).unwrap_or(Role::Free);
    if !role.is_audience() {
        return Ok(role);
    }
    let now = lunora_store::now_ms();
    let mut subs = state.db.subscriptions_of(user_id).await?;
    for s in subs.iter_mut() {
        let mut changed = false;
        // Renew every period that has ended (at most a year of them at once).
        let mut rounds = 0;
        while s.status == "active" && s.current_period_end <= now && rounds < 13 {
            rounds += 1;
            changed = true;
            if !s.auto_renew {
                s.status = "expired".into();
                break;
            }
            let amount = price(&s.plan).unwrap_or(0);
            let method = s.payment_method_id();
            match state
                .payments
                .charge(&method, amount, &format!("Lunora {} renewal", s.plan))
                .await
            {
                Ok(reference) => {
                    record(state, s, amount, "succeeded", &reference, "renewal").await?;
                    s.current_period_end += PERIOD_MS;
                }
                Err(e) => {
                    record(state, s, amount, "declined", "", &e.to_string()).await?;
                    s.status = "past_due".into();
                }
            }
        }
        if (s.status == "canceled" || s.status == "past_due") && !honoured(s, now) {
            s.status = "expired".into();
            changed = true;
        }
        if changed {
            s.updated_at = now;
            state.db.save_subscription(s).await?;
        }
    }
    let live: Vec<&Subscription> = subs.iter().filter(|s| honoured(s, now)).collect();
    let best = if live.iter().any(|s| s.plan == "vip") {
        Role::Vip
    } else if live.is_empty() {
        Role::Free
    } else {
        Role::Premium
    };
    if best != role {
        state
            .db
            .update_user(
                &user.organization_id,
                user_id,
                &UserPatch {
                    role: Some(best.as_str().to_string()),
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(best)
}

/// Most accounts one background round settles; the rest wait for the next round.
const SETTLE_BATCH: u32 = 500;

/// Settles every account with a subscription due at `now` (up to [`SETTLE_BATCH`]); answers
/// how many were settled. One account's failure (a payment provider error, say) is logged and
/// does not stop the others.
pub async fn settle_due(state: &AppState, now: i64) -> usize {
    let users = match state
        .db
        .users_with_subscriptions_due(now, GRACE_MS, SETTLE_BATCH)
        .await
    {
        Ok(users) => users,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the subscriptions due");
            return 0;
        }
    };
    let mut settled = 0;
    for user_id in &users {
        match settle(state, user_id).await {
            Ok(_) => settled += 1,
            Err(e) => {
                tracing::warn!(user = %user_id, error = %e.detail, "cannot settle a subscription")
            }
        }
    }
    settled
}

/// Settles due subscriptions every `every` until `shutdown`.
pub fn spawn_settler(
    state: AppState,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let n = settle_due(&state, lunora_store::now_ms()).await;
            if n > 0 {
                tracing::info!(accounts = n, "settled due subscriptions");
            }
        }
    });
}

trait MethodId {
    fn payment_method_id(&self) -> String;
}

impl MethodId for Subscription {
    /// `payment_method` holds `{display}|{provider method id}`; only the display is shown.
    fn payment_method_id(&self) -> String {
        self.payment_method
            .split_once('|')
            .map(|(_, id)| id.to_string())
            .unwrap_or_default()
    }
}

async fn record(
    state: &AppState,
    s: &Subscription,
    amount: i64,
    status: &str,
    reference: &str,
    detail: &str,
) -> ApiResult<()> {
    state
        .db
        .record_payment(&Payment {
            id: lunora_store::new_id(),
            subscription_id: Some(s.id.clone()),
            user_id: s.user_id.clone(),
            plan: s.plan.clone(),
            amount_cents: amount,
            status: status.into(),
            provider_ref: reference.into(),
            detail: detail.into(),
            created_at: lunora_store::now_ms(),
        })
        .await?;
    Ok(())
}

fn shown(mut v: SubscriptionView) -> SubscriptionView {
    v.payment_method = v
        .payment_method
        .split_once('|')
        .map(|(d, _)| d.to_string())
        .unwrap_or(v.payment_method);
    v
}

pub(crate) async fn my_subscriptions(
    state: &AppState,
    who: &Principal,
) -> ApiResult<MySubscription> {
    let role = settle(state, &who.user_id).await?;
    let now = lunora_store::now_ms();
    let subs = state.db.subscriptions_of(&who.user_id).await?;
    let current = subs
        .iter()
        .filter(|s| honoured(s, now))
        .max_by_key(|s| (s.plan == "vip", s.current_period_end))
        .map(|s| shown(sub_view(s)));
    Ok(MySubscription {
        group: role.as_str().into(),
        current,
        history: subs.iter().map(|s| shown(sub_view(s))).collect(),
    })
}

/// The caller's subscriptions and the group they put the account in.
#[utoipa::path(
    get, path = "/subscriptions/me", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = MySubscription))
)]
async fn my_subscription(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<MySubscription>> {
    Ok(axum::Json(my_subscriptions(&state, &who).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    /// `premium` or `vip`.
    pub plan: String,
    /// Card number (the `test` provider's test cards; with a real provider the page sends the
    /// provider's payment-method token instead).
    pub card_number: String,
    /// Renew at the end of each period (default true).
    #[serde(default)]
    pub auto_renew: Option<bool>,
}

/// Subscribe (or change plan): charges the first period with the payment provider. A declined
/// card answers 402 `card_declined`; nothing changes.
#[utoipa::path(
    post, path = "/subscriptions", tag = "viewer",
    request_body = Checkout,
    security(("bearer" = [])),
    responses(
        (status = 201, body = MySubscription),
        (status = 400, body = crate::Problem),
        (status = 402, body = crate::Problem),
        (status = 403, body = crate::Problem)
    )
)]
async fn checkout(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<Checkout>,
) -> ApiResult<(StatusCode, axum::Json<MySubscription>)> {
    require_audience(&who)?;
    let amount = match req.plan.as_str() {
        "premium" | "vip" => price(&req.plan).unwrap_or(0),
        _ => {
            return Err(ApiError::invalid(
                "plan",
                "plan must be premium or vip (free needs no subscription)",
            ))
        }
    };
    let failed = |e: PaymentError| match e {
        PaymentError::InvalidCard(m) => {
            ApiError::invalid("card_number", m).with_code("invalid_card")
        }
        PaymentError::Declined(m) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_declined", m)
        }
        PaymentError::Unavailable(m) => ApiError::unavailable("payment_unavailable", m),
    };
    let now = lunora_store::now_ms();
    let method = state.payments.attach(&req.card_number).await;
    let method = match method {
        Ok(m) => m,
        Err(e) => {
            if matches!(e, PaymentError::Declined(_)) {
                state
                    .db
                    .record_payment(&Payment {
                        id: lunora_store::new_id(),
                        subscription_id: None,
                        user_id: who.user_id.clone(),
                        plan: req.plan.clone(),
                        amount_cents: amount,
                        status: "declined".into(),
                        provider_ref: String::new(),
                        detail: e.to_string(),
                        created_at: now,
                    })
                    .await?;
            }
            return Err(failed(e));
        }
    };
    let mut sub = Subscription {
        id: lunora_store::new_id(),
        user_id: who.user_id.clone(),
        plan: req.plan.clone(),
        status: "active".into(),
        started_at: now,
        current_period_end: now + PERIOD_MS,
        auto_renew: req.auto_renew.unwrap_or(true),
        provider: state.payments.name().into(),
        payment_method: format!("{}|{}", method.display, method.id),
        canceled_at: None,
        created_at: now,
        updated_at: now,
    };
    let reference = match state
        .payments
        .charge(&method.id, amount, &format!("Lunora {}", req.plan))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            sub.status = "expired".into();
            state.db.save_subscription(&sub).await?;
            record(&state, &sub, amount, "declined", "", &e.to_string()).await?;
            return Err(failed(e));
        }
    };
    // A new plan replaces the running one (no proration in this version).
    for mut old in state.db.subscriptions_of(&who.user_id).await? {
        if old.status == "active" || old.status == "past_due" {
            old.status = "canceled".into();
            old.auto_renew = false;
            old.canceled_at = Some(now);
            old.current_period_end = old.current_period_end.min(now);
            old.updated_at = now;
            state.db.save_subscription(&old).await?;
        }
    }
    state.db.save_subscription(&sub).await?;
    record(&state, &sub, amount, "succeeded", &reference, "checkout").await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(my_subscriptions(&state, &who).await?),
    ))
}

/// Cancel: no more renewals; the paid period is still honoured, then the account is free.
#[utoipa::path(
    post, path = "/subscriptions/me/cancel", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = MySubscription), (status = 404, body = crate::Problem))
)]
async fn cancel(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<MySubscription>> {
    settle(&state, &who.user_id).await?;
    let now = lunora_store::now_ms();
    let mut any = false;
    for mut s in state.db.subscriptions_of(&who.user_id).await? {
        if s.status == "active" || s.status == "past_due" {
            s.status = "canceled".into();
            s.auto_renew = false;
            s.canceled_at = Some(now);
            s.updated_at = now;
            state.db.save_subscription(&s).await?;
            any = true;
        }
    }
    if !any {
        return Err(ApiError::not_found("no active subscription to cancel"));
    }
    Ok(axum::Json(my_subscriptions(&state, &who).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    pub user_id: String,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSubscriptionList {
    pub items: Vec<AdminSubscription>,
}

/// Subscriptions of the organization's viewers (viewer admin).
#[utoipa::path(
    get, path = "/viewer-admin/subscriptions", tag = "viewer",
    security(("bearer" = [])),
    responses((status = 200, body = AdminSubscriptionList))
)]
async fn admin_subscriptions(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<AdminSubscriptionList>> {
    let rows = state
        .db
        .subscriptions_in_org(&who.organization_id, 500)
        .await?;
    Ok(axum::Json(AdminSubscriptionList {
        items: rows
            .into_iter()
            .map(|r| AdminSubscription {
                user_id: r.subscription.user_id.clone(),
                subscription: shown(sub_view(&r.subscription)),
                email: r.email,
            })
            .collect(),
    }))
}
