//! E-mail: SMTP through `lettre` when `LUNORA_SMTP_URL` is set; otherwise messages land in the
//! outbox table (bodies sealed with the master key), which administrators read at
//! `GET /api/v1/outbox`. Message bodies carry one-time links, so they are never logged.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthConfig, Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_outbox))
}

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Mail<'a> {
    /// The organization the message concerns; its administrators see it in the outbox.
    pub organization_id: Option<&'a str>,
    pub to: &'a str,
    /// What kind of message: `invitation`, `password_reset`, `verify_email`, …
    pub kind: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Sends e-mail by SMTP, or keeps it in the outbox.
pub struct Mailer {
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: String,
}

impl Mailer {
    pub fn new(config: &AuthConfig) -> Mailer {
        let smtp = config.smtp_url.as_ref().and_then(|url| {
            match AsyncSmtpTransport::<Tokio1Executor>::from_url(&url.0) {
                Ok(b) => Some(b.build()),
                Err(e) => {
                    tracing::error!(error = %e, "the SMTP URL is not usable; e-mail goes to the outbox");
                    None
                }
            }
        });
        Mailer {
            smtp,
            from: config.mail_from.clone(),
        }
    }

    /// Whether messages go out by SMTP (otherwise to the outbox).
    pub fn uses_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// Sends `mail`. Failures are logged, never answered: the caller's answer must not reveal
    /// whether an address has an account.
    pub async fn send(&self, state: &AppState, mail: Mail<'_>) {
        match &self.smtp {
            Some(smtp) => {
                let message = Message::builder()
                    .from(match self.from.parse() {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::error!(error = %e, "mail.from is not a mailbox");
                            return;
                        }
                    })
                    .to(match mail.to.parse() {
                        Ok(t) => t,
                        Err(_) => {
                            tracing::warn!(kind = mail.kind, "not sending to an invalid address");
                            return;
                        }
                    })
                    .subject(mail.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body.to_string());
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, kind = mail.kind, "cannot build the message");
                        return;
                    }
                };
                let smtp = smtp.clone();
                let kind = mail.kind.to_string();
                // Out of the request: a slow mail server must not hold the answer.
                tokio::spawn(async move {
                    match smtp.send(message).await {
                        Ok(_) => tracing::info!(%kind, "e-mail sent"),
                        Err(e) => tracing::error!(error = %e, %kind, "sending e-mail failed"),
                    }
                });
            }
            None => {
                let kept = state
                    .db
                    .insert_outbox(
                        &lunora_store::NewOutboxMessage {
                            organization_id: mail.organization_id,
                            recipient: &mail.to.trim().to_lowercase(),
                            subject: mail.subject,
                            kind: mail.kind,
                            body: mail.body,
                        },
                        &state.secrets,
                    )
                    .await;
                match kept {
                    Ok(id) => {
                        tracing::info!(kind = mail.kind, outbox = %id, "e-mail kept in the outbox (no SMTP configured)")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, kind = mail.kind, "cannot keep e-mail in the outbox")
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OutboxQuery {
    /// Only messages to this address.
    pub recipient: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxView {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub kind: String,
    /// The text, with its one-time links.
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxList {
    pub items: Vec<OutboxView>,
    pub next_cursor: Option<String>,
    /// False: messages are kept here because no SMTP server is configured.
    pub smtp: bool,
}

/// E-mail kept for the organization because no SMTP server is configured, newest first.
#[utoipa::path(
    get, path = "/outbox", tag = "users",
    params(OutboxQuery),
    security(("bearer" = [])),
    responses((status = 200, body = OutboxList))
)]
async fn list_outbox(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<OutboxQuery>,
) -> ApiResult<Response> {
    who.require(Permission::OutboxRead)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let page = state
        .db
        .list_outbox(
            &who.organization_id,
            q.recipient.as_deref(),
            q.cursor.as_deref(),
            limit,
            &state.secrets,
        )
        .await?;
    let mut res = axum::Json(OutboxList {
        items: page
            .items
            .into_iter()
            .map(|m| OutboxView {
                id: m.id,
                recipient: m.recipient,
                subject: m.subject,
                kind: m.kind,
                body: m.body,
                created_at: rfc3339(m.created_at),
            })
            .collect(),
        next_cursor: page.next_cursor,
        smtp: state.identity.mailer.uses_smtp(),
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
