//! Viewer platform, social part (seed 000 "Viewer Platform APIs", social): live chat per stream
//! over a WebSocket, likes, reports and the moderation queue. A stream is a channel: the stream
//! id is the channel id.
//!
//! Chat: anyone may read the chat of a stream (`GET /streams/{id}/chat/ws`, history at
//! `/streams/{id}/chat/messages`); signed-in members of the stream's organization post. Each
//! poster has a token bucket ([`BURST`] messages, one more every [`REFILL`]); a moderator may set
//! slow mode (N s between a user's messages), delete a message (every client is told to remove
//! it) and time a user out for N minutes (their posts are refused with the time left). Every
//! moderation action is recorded in `moderation_actions` (who, what, when, why) besides the
//! audit log. Messages are plain text of at most [`MAX_CHARS`] characters: clients render them as
//! text, never as HTML. Each client has a bounded queue ([`CLIENT_QUEUE`] frames); a client that
//! falls behind is closed with code 4008, one that stays silent past a ping with 1001.
//!
//! Moderators: admins, operators and consumer admins (`chat_moderate`), and the owner of the
//! stream's channel for that stream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lunora_store::{Channel, ChatMessage, ModerationAction, NewReport, Report};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{authenticate, has_credentials, peer_ip, Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::util::rfc3339;
use crate::AppState;

/// Longest chat message, in characters.
pub const MAX_CHARS: usize = 500;
/// Messages a user may send at once before the rate limit applies.
pub const BURST: f64 = 5.0;
/// One more message is allowed per this interval.
pub const REFILL: Duration = Duration::from_secs(1);
/// Frames a client may fall behind before it is closed with 4008.
pub const CLIENT_QUEUE: usize = 256;
/// Longest slow mode and timeout.
const MAX_SLOW_MODE_SECONDS: i64 = 3600;
const MAX_TIMEOUT_MINUTES: i64 = 7 * 24 * 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat_socket))
        .routes(routes!(chat_history))
        .routes(routes!(delete_message))
        .routes(routes!(timeout_user))
        .routes(routes!(chat_settings, set_chat_settings))
        .routes(routes!(likes, like, unlike))
        .routes(routes!(report))
        .routes(routes!(list_reports))
        .routes(routes!(review_report))
        .routes(routes!(resolve_report))
        .routes(routes!(list_actions))
}

// ---- the in-process chat hub ---------------------------------------------------------------

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Chat rooms (one broadcast channel per stream with listeners), rate-limit buckets and the
/// time of each poster's last message (slow mode).
#[derive(Default)]
pub struct ChatHub {
    rooms: Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    last_post: Mutex<HashMap<(String, String), Instant>>,
}

impl ChatHub {
    fn join(&self, stream: &str) -> broadcast::Receiver<Utf8Bytes> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(stream.to_string())
            .or_insert_with(|| broadcast::channel(CLIENT_QUEUE).0)
            .subscribe()
    }

    fn leave(&self, stream: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(stream).is_some_and(|r| r.receiver_count() == 0) {
            rooms.remove(stream);
        }
    }

    /// Sends a frame to every client of the stream's chat.
    pub fn broadcast(&self, stream: &str, frame: &serde_json::Value) {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = rooms.get(stream) {
            let _ = room.send(Utf8Bytes::from(frame.to_string()));
        }
    }

    /// Participants connected to a stream's chat.
    pub fn participants(&self, stream: &str) -> usize {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.get(stream).map_or(0, |r| r.receiver_count())
    }

    /// Takes one token of the user's bucket; `Err(wait)` when empty.
    fn take(&self, stream: &str, user: &str) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < REFILL.mul_f64(BURST));
        }
        let b = buckets
            .entry((stream.to_string(), user.to_string()))
            .or_insert(Bucket {
                tokens: BURST,
                at: now,
            });
        let refill = now.duration_since(b.at).as_secs_f64() / REFILL.as_secs_f64();
        b.tokens = (b.tokens + refill).min(BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(REFILL.mul_f64(1.0 - b.tokens))
        }
    }

    /// Checks slow mode: `Err(wait)` when the user's last message is more recent than `secs`.
    fn slow_mode(&self, stream: &str, user: &str, secs: i64) -> Result<(), Duration> {
        if secs <= 0 {
            return Ok(());
        }
        let last = self.last_post.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(&(stream.to_string(), user.to_string())) {
            Some(at) => {
                let gap = Duration::from_secs(secs as u64);
                let since = at.elapsed();
                if since < gap {
                    Err(gap - since)
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    fn posted(&self, stream: &str, user: &str) {
        let mut last = self.last_post.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.len() > 100_000 {
            last.retain(|_, at| now.duration_since(*at) < Duration::from_secs(3600));
        }
        last.insert((stream.to_string(), user.to_string()), now);
    }
}

// ---- who is asking ---------------------------------------------------------------------------

/// The caller when it sent credentials (checked in full), else nobody: for routes that anonymous
/// viewers may use too.
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybePrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(MaybePrincipal(Some(p.clone())));
        }
        if !has_credentials(&parts.headers) {
            return Ok(MaybePrincipal(None));
        }
        let ip = peer_ip(&parts.extensions);
        let p = authenticate(state, &parts.headers, &parts.method, ip).await?;
        Ok(MaybePrincipal((!p.enrolment_only).then_some(p)))
    }
}

/// The stream (channel) `id` as `who` may see it: signed-in callers only reach their own
/// organization's streams.
async fn stream_for(state: &AppState, who: &Principal, id: &str) -> ApiResult<Channel> {
    state
        .db
        .channel(&who.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such stream"))
}

/// A channel by id, of any organization: who may read it is [`check_readable`]'s call.
async fn public_stream(state: &AppState, id: &str) -> ApiResult<Channel> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::not_found("no such stream"));
    }
    state
        .db
        .channel_any_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such stream"))
}

/// Whether `who` may read this stream's chat (and its likes): the staff of the stream's own
/// organization always; everyone else only on a public catalog stream whose access level they
/// reach, like its playback token (`viewer::catalog::admit_viewer`). A private channel answers
/// 404 as it does on `/hls`; a premium or vip one 403 `upgrade_required`.
async fn check_readable(
    state: &AppState,
    who: Option<&Principal>,
    stream: &Channel,
) -> ApiResult<()> {
    if who.is_some_and(|p| p.organization_id == stream.organization_id && !p.role.is_audience()) {
        return Ok(());
    }
    let entry = crate::viewer::catalog::public_entry(state, &stream.id).await?;
    let level = crate::viewer::viewer_level(state, who, &entry.organization_id).await?;
    if crate::viewer::level_rank(level) < crate::viewer::level_rank(&entry.access_level) {
        return Err(ApiError::forbidden(format!(
            "this stream's chat is for {} subscribers, like the stream itself",
            entry.access_level
        ))
        .with_code("upgrade_required"));
    }
    Ok(())
}

fn can_moderate(who: &Principal, stream: &Channel) -> bool {
    who.organization_id == stream.organization_id
        && (who.can(Permission::ChatModerate) || stream.owner_id.as_deref() == Some(&who.user_id))
}

fn require_moderator(who: &Principal, stream: &Channel) -> ApiResult<()> {
    if can_moderate(who, stream) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "the {} role may not moderate this stream's chat",
            who.role.as_str()
        )))
    }
}

/// The name shown next to a user's messages: never the e-mail address.
async fn display_name(state: &AppState, user_id: &str) -> String {
    match state.db.user(user_id).await {
        Ok(Some(u)) if !u.display_name.trim().is_empty() => u.display_name,
        _ => format!("viewer-{}", &user_id[user_id.len().saturating_sub(6)..]),
    }
}

// ---- views -----------------------------------------------------------------------------------

/// A chat message as clients receive it. `body` is plain text: render it as text, never as HTML.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatMessageView {
    pub id: String,
    pub stream_id: String,
    pub user_id: String,
    pub display_name: String,
    pub body: String,
    pub created_at: String,
}

impl From<ChatMessage> for ChatMessageView {
    fn from(m: ChatMessage) -> Self {
        ChatMessageView {
            id: m.id,
            stream_id: m.channel_id,
            user_id: m.user_id,
            display_name: m.display_name,
            body: m.body,
            created_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    pub id: String,
    pub reporter_id: Option<String>,
    /// `message`, `user` or `stream`.
    pub target_type: String,
    pub target_id: String,
    pub stream_id: Option<String>,
    /// The user the report is about (a message's author, the reported user).
    pub target_user_id: Option<String>,
    /// The reported message's text at the time of the report.
    pub excerpt: String,
    pub reason: String,
    pub details: String,
    /// `pending`, `reviewed` or `resolved`.
    pub status: String,
    pub moderator_id: Option<String>,
    /// What resolved it: `dismiss`, `delete_message`, `timeout_user`, `ban_user`.
    pub action: Option<String>,
    pub note: String,
    pub created_at: String,
    pub reviewed_at: Option<String>,
    pub resolved_at: Option<String>,
}

impl From<Report> for ReportView {
    fn from(r: Report) -> Self {
        ReportView {
            id: r.id,
            reporter_id: r.reporter_id,
            target_type: r.target_type,
            target_id: r.target_id,
            stream_id: r.channel_id,
            target_user_id: r.target_user_id,
            excerpt: r.excerpt,
            reason: r.reason,
            details: r.details,
            status: r.status,
            moderator_id: r.moderator_id,
            action: r.action,
            note: r.note,
            created_at: rfc3339(r.created_at),
            reviewed_at: r.reviewed_at.map(rfc3339),
            resolved_at: r.resolved_at.map(rfc3339),
        }
    }
}

/// One moderation action: who did what to whom, when and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModerationActionView {
    pub id: String,
    pub moderator_id: Option<String>,
    /// `delete_message`, `timeout_user`, `ban_user`, `slow_mode`, `dismiss`, `review`.
    pub action: String,
    pub stream_id: Option<String>,
    pub target_type: String,
    pub target_id: String,
    pub target_user_id: Option<String>,
    pub reason: String,
    /// Timeout length or slow-mode interval, in seconds.
    pub duration_seconds: Option<i64>,
    pub report_id: Option<String>,
    pub created_at: String,
}

impl From<ModerationAction> for ModerationActionView {
    fn from(a: ModerationAction) -> Self {
        ModerationActionView {
            id: a.id,
            moderator_id: a.moderator_id,
            action: a.action,
            stream_id: a.channel_id,
            target_type: a.target_type,
            target_id: a.target_id,
            target_user_id: a.target_user_id,
            reason: a.reason,
            duration_seconds: a.duration_seconds,
            report_id: a.report_id,
            created_at: rfc3339(a.created_at),
        }
    }
}

// ---- moderation actions shared by the chat routes and the queue ------------------------------

#[allow(clippy::too_many_arguments)]
async fn record(
    state: &AppState,
    who: &Principal,
    action: &str,
    stream: Option<&str>,
    target: (&str, &str),
    target_user: Option<&str>,
    reason: &str,
    duration_seconds: Option<i64>,
    report_id: Option<&str>,
) -> ApiResult<ModerationAction> {
    Ok(state
        .db
        .record_moderation_action(&ModerationAction {
            id: String::new(),
            organization_id: who.organization_id.clone(),
            moderator_id: Some(who.user_id.clone()),
            action: action.to_string(),
            channel_id: stream.map(str::to_string),
            target_type: target.0.to_string(),
            target_id: target.1.to_string(),
            target_user_id: target_user.map(str::to_string),
            reason: reason.to_string(),
            duration_seconds,
            report_id: report_id.map(str::to_string),
            created_at: 0,
        })
        .await?)
}

/// Deletes a message and tells every client of its stream to remove it.
async fn do_delete(
    state: &AppState,
    who: &Principal,
    message: &ChatMessage,
    reason: &str,
    report_id: Option<&str>,
) -> ApiResult<ModerationAction> {
    state
        .db
        .delete_chat_message(&who.organization_id, &message.id, &who.user_id)
        .await?;
    state.chat.broadcast(
        &message.channel_id,
        &json!({"type": "deleted", "id": message.id, "stream_id": message.channel_id}),
    );
    record(
        state,
        who,
        "delete_message",
        Some(&message.channel_id),
        ("message", &message.id),
        Some(&message.user_id),
        reason,
        None,
        report_id,
    )
    .await
}

/// Times a user out of a stream's chat for `minutes`, and tells its clients.
async fn do_timeout(
    state: &AppState,
    who: &Principal,
    stream: &str,
    user_id: &str,
    minutes: i64,
    reason: &str,
    report_id: Option<&str>,
) -> ApiResult<ModerationAction> {
    if !(1..=MAX_TIMEOUT_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid(
            "minutes",
            format!("minutes must be 1–{MAX_TIMEOUT_MINUTES}"),
        ));
    }
    let until = lunora_store::now_ms() + minutes * 60_000;
    state
        .db
        .restrict_chat_user(
            &who.organization_id,
            stream,
            user_id,
            Some(until),
            &who.user_id,
        )
        .await?;
    state.chat.broadcast(
        stream,
        &json!({"type": "timeout", "user_id": user_id, "minutes": minutes, "until": rfc3339(until)}),
    );
    record(
        state,
        who,
        "timeout_user",
        Some(stream),
        ("user", user_id),
        Some(user_id),
        reason,
        Some(minutes * 60),
        report_id,
    )
    .await
}

// ---- chat ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatIn {
    Send { body: String },
    Ping,
}

fn frame(v: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

/// Why the chat refused a frame: the `code` of its `error` frame, and the AsyncAPI document's
/// list of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    SignInRequired,
    RateLimited,
    SlowMode,
    TimedOut,
    Banned,
    TooLong,
    Empty,
    BadMessage,
    InternalError,
}

impl Refusal {
    pub(crate) const ALL: [Refusal; 9] = [
        Refusal::SignInRequired,
        Refusal::RateLimited,
        Refusal::SlowMode,
        Refusal::TimedOut,
        Refusal::Banned,
        Refusal::TooLong,
        Refusal::Empty,
        Refusal::BadMessage,
        Refusal::InternalError,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Refusal::SignInRequired => "sign_in_required",
            Refusal::RateLimited => "rate_limited",
            Refusal::SlowMode => "slow_mode",
            Refusal::TimedOut => "timed_out",
            Refusal::Banned => "banned",
            Refusal::TooLong => "too_long",
            Refusal::Empty => "empty",
            Refusal::BadMessage => "bad_message",
            Refusal::InternalError => "internal_error",
        }
    }
}

/// The refusal of a frame the server failed on: logged, and told without internals.
fn internal(cause: impl std::fmt::Display) -> serde_json::Value {
    tracing::error!(error = %cause, "chat: internal error");
    refusal(
        Refusal::InternalError,
        crate::error::INTERNAL_DETAIL.into(),
        None,
    )
}

fn refusal(why: Refusal, detail: String, wait: Option<Duration>) -> serde_json::Value {
    let mut v = json!({"type": "error", "code": why.code(), "detail": detail});
    if let Some(w) = wait {
        v["retry_after_ms"] = json!(w.as_millis() as u64);
    }
    v
}

fn human(wait: Duration) -> String {
    let s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if s >= 120 {
        format!("{} min", s.div_ceil(60))
    } else {
        format!("{s} s")
    }
}

/// Posts one message for `who`, or answers the refusal frame.
async fn post(
    state: &AppState,
    who: &Principal,
    name: &str,
    stream: &Channel,
    body: &str,
) -> Result<ChatMessage, serde_json::Value> {
    let body = body.trim();
    if body.is_empty() {
        return Err(refusal(Refusal::Empty, "the message is empty".into(), None));
    }
    let chars = body.chars().count();
    if chars > MAX_CHARS {
        return Err(refusal(
            Refusal::TooLong,
            format!("a message may have at most {MAX_CHARS} characters; this one has {chars}"),
            None,
        ));
    }
    let restriction = state
        .db
        .chat_restriction(&stream.organization_id, &stream.id, &who.user_id)
        .await
        .map_err(internal)?;
    if let Some(r) = restriction {
        return Err(match r.until {
            None => refusal(
                Refusal::Banned,
                "you are banned from this chat".into(),
                None,
            ),
            Some(until) => {
                let wait = Duration::from_millis((until - lunora_store::now_ms()).max(0) as u64);
                refusal(
                    Refusal::TimedOut,
                    format!("you are timed out: you may post again in {}", human(wait)),
                    Some(wait),
                )
            }
        });
    }
    let moderator = can_moderate(who, stream);
    if !moderator {
        let slow = state
            .db
            .chat_slow_mode(&stream.id)
            .await
            .map_err(internal)?;
        if let Err(wait) = state.chat.slow_mode(&stream.id, &who.user_id, slow) {
            return Err(refusal(
                Refusal::SlowMode,
                format!(
                    "slow mode is on ({slow} s between messages): wait {}",
                    human(wait)
                ),
                Some(wait),
            ));
        }
    }
    if let Err(wait) = state.chat.take(&stream.id, &who.user_id) {
        return Err(refusal(
            Refusal::RateLimited,
            format!("you are sending messages too fast: wait {}", human(wait)),
            Some(wait),
        ));
    }
    let m = state
        .db
        .insert_chat_message(
            &stream.organization_id,
            &stream.id,
            &who.user_id,
            name,
            body,
        )
        .await
        .map_err(internal)?;
    state.chat.posted(&stream.id, &who.user_id);
    if let Err(e) = state
        .db
        .record_engagement(
            &stream.organization_id,
            Some(&stream.id),
            Some(&who.user_id),
            "chat_message",
        )
        .await
    {
        tracing::warn!(error = %e, "cannot record an engagement event");
    }
    Ok(m)
}

/// Live chat of a stream (WebSocket). Anyone may read; signed-in members of the stream's
/// organization send `{"type":"send","body":"…"}`. The server sends `hello` (who you are, whether
/// you may post or moderate, slow mode), `message` (`{message: ChatMessage}`), `deleted`
/// (`{id}`: remove that message), `timeout` (`{user_id, minutes, until}`), `slow_mode`
/// (`{seconds}`), `sent` (`{id}` of your accepted message) and `error` (`{code, detail,
/// retry_after_ms?}`; its codes are listed under `chat.error` in the AsyncAPI document,
/// `/api/v1/events/asyncapi.json`). Close codes: 4008 too slow to keep up, 1001 silent past a
/// ping.
#[utoipa::path(
    get, path = "/streams/{id}/chat/ws", tag = "social",
    params(("id" = String, Path, description = "Stream (channel) id")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 404, body = crate::Problem))
)]
async fn chat_socket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: axum::http::request::Parts,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let stream = public_stream(&state, &id).await?;
    // Credentials that do not check out leave the client reading anonymously, told why, so a
    // browser can refresh its session and reconnect.
    let (who, auth_error) = if has_credentials(&parts.headers) {
        let ip = peer_ip(&parts.extensions);
        match authenticate(&state, &parts.headers, &parts.method, ip).await {
            Ok(p) if !p.enrolment_only => (Some(p), None),
            Ok(_) => (None, Some("mfa_enrolment_required")),
            Err(e) => (None, Some(e.code)),
        }
    } else {
        (None, None)
    };
    check_readable(&state, who.as_ref(), &stream).await?;
    // Members of another organization read like anonymous viewers.
    let who = who.filter(|p| p.organization_id == stream.organization_id);
    Ok(ws
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| chat_client(state, stream, who, auth_error, socket)))
}

async fn chat_client(
    state: AppState,
    stream: Channel,
    who: Option<Principal>,
    auth_error: Option<&'static str>,
    mut socket: WebSocket,
) {
    let mut rx = state.chat.join(&stream.id);
    metrics::gauge!("lunora_chat_clients").increment(1.0);
    let name = match &who {
        Some(p) => Some(display_name(&state, &p.user_id).await),
        None => None,
    };
    let slow = state.db.chat_slow_mode(&stream.id).await.unwrap_or(0);
    let hello = json!({
        "type": "hello",
        "stream_id": stream.id,
        "user": who.as_ref().map(|p| json!({"id": p.user_id, "display_name": name})),
        "can_post": who.is_some(),
        "can_moderate": who.as_ref().is_some_and(|p| can_moderate(p, &stream)),
        "slow_mode_seconds": slow,
        "max_chars": MAX_CHARS,
        "auth_error": auth_error,
    });
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    let mut awaiting_pong = false;
    let send_timeout = Duration::from_secs(10);
    let mut close: Option<(u16, &'static str)> = None;
    if socket.send(frame(hello)).await.is_ok() {
        loop {
            tokio::select! {
                incoming = socket.recv() => {
                    let Some(Ok(msg)) = incoming else { break };
                    let reply = match msg {
                        Message::Text(t) => match serde_json::from_str::<ChatIn>(&t) {
                            Ok(ChatIn::Send { body }) => match (&who, &name) {
                                (Some(p), Some(n)) => match post(&state, p, n, &stream, &body).await {
                                    Ok(m) => {
                                        let id = m.id.clone();
                                        state.chat.broadcast(
                                            &stream.id,
                                            &json!({"type": "message", "message": ChatMessageView::from(m)}),
                                        );
                                        Some(json!({"type": "sent", "id": id}))
                                    }
                                    Err(refused) => Some(refused),
                                },
                                _ => Some(refusal(Refusal::SignInRequired, "sign in to chat".into(), None)),
                            },
                            Ok(ChatIn::Ping) => Some(json!({"type": "pong"})),
                            Err(e) => Some(refusal(Refusal::BadMessage, format!("not understood: {e}"), None)),
                        },
                        Message::Pong(_) => {
                            awaiting_pong = false;
                            None
                        }
                        Message::Close(_) => break,
                        _ => None,
                    };
                    if let Some(r) = reply {
                        match tokio::time::timeout(send_timeout, socket.send(frame(r))).await {
                            Ok(Ok(())) => {}
                            _ => break,
                        }
                    }
                }
                out = rx.recv() => match out {
                    Ok(text) => {
                        match tokio::time::timeout(send_timeout, socket.send(Message::Text(text))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break,
                            Err(_) => {
                                close = Some((4008, "too slow: messages were piling up"));
                                break;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        close = Some((4008, "too slow: messages were piling up"));
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = ping.tick() => {
                    if awaiting_pong {
                        close = Some((1001, "no answer to ping"));
                        break;
                    }
                    awaiting_pong = true;
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    if let Some((code, reason)) = close {
        metrics::counter!("lunora_chat_dropped_total").increment(1);
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            socket.send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }))),
        )
        .await;
    }
    drop(rx);
    state.chat.leave(&stream.id);
    metrics::gauge!("lunora_chat_clients").decrement(1.0);
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Messages older than this message id.
    pub before: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatHistory {
    /// Oldest first.
    pub items: Vec<ChatMessageView>,
    /// Pass as `before` for older messages; absent at the start of the kept history.
    pub next_before: Option<String>,
    pub slow_mode_seconds: i64,
}

/// Recent chat messages of a stream, oldest first (deleted ones left out). Anyone may read.
#[utoipa::path(
    get, path = "/streams/{id}/chat/messages", tag = "social",
    params(("id" = String, Path, description = "Stream (channel) id"), HistoryQuery),
    responses((status = 200, body = ChatHistory), (status = 404, body = crate::Problem))
)]
async fn chat_history(
    State(state): State<AppState>,
    who: MaybePrincipal,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<ChatHistory>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let stream = public_stream(&state, &id).await?;
    check_readable(&state, who.0.as_ref(), &stream).await?;
    let mut items = state
        .db
        .chat_messages(&stream.id, q.before.as_deref(), limit)
        .await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|m| m.id.clone()))
        .flatten();
    items.reverse();
    Ok(Json(ChatHistory {
        items: items.into_iter().map(Into::into).collect(),
        next_before,
        slow_mode_seconds: state.db.chat_slow_mode(&stream.id).await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReasonQuery {
    /// Why (kept in the moderation history).
    pub reason: Option<String>,
}

fn reason_of(r: Option<String>) -> ApiResult<String> {
    let r = r.unwrap_or_default().trim().to_string();
    if r.chars().count() > 500 {
        return Err(ApiError::invalid(
            "reason",
            "reason may have at most 500 characters",
        ));
    }
    Ok(r)
}

/// Delete a chat message (moderators): every client of the stream removes it.
#[utoipa::path(
    delete, path = "/streams/{id}/chat/messages/{message_id}", tag = "social",
    params(("id" = String, Path), ("message_id" = String, Path), ReasonQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ModerationActionView), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem))
)]
async fn delete_message(
    State(state): State<AppState>,
    who: Principal,
    Path((id, message_id)): Path<(String, String)>,
    Query(q): Query<ReasonQuery>,
) -> ApiResult<Json<ModerationActionView>> {
    let stream = stream_for(&state, &who, &id).await?;
    require_moderator(&who, &stream)?;
    let message = state
        .db
        .chat_message(&who.organization_id, &message_id)
        .await?
        .filter(|m| m.channel_id == stream.id && m.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("no such message"))?;
    let reason = reason_of(q.reason)?;
    Ok(Json(
        do_delete(&state, &who, &message, &reason, None)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutRequest {
    pub user_id: String,
    /// 1–10080 minutes.
    pub minutes: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Time a user out of a stream's chat for N minutes (moderators): their posts are refused with
/// the time left, and every client is told.
#[utoipa::path(
    post, path = "/streams/{id}/chat/timeouts", tag = "social",
    params(("id" = String, Path)),
    request_body = TimeoutRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ModerationActionView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem))
)]
async fn timeout_user(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<TimeoutRequest>,
) -> ApiResult<Json<ModerationActionView>> {
    let stream = stream_for(&state, &who, &id).await?;
    require_moderator(&who, &stream)?;
    match state.db.user(&req.user_id).await? {
        Some(u) if u.organization_id == who.organization_id => {}
        _ => return Err(ApiError::not_found("no such user").with_field("user_id")),
    }
    if req.user_id == who.user_id {
        return Err(ApiError::invalid("user_id", "you cannot time yourself out"));
    }
    let reason = reason_of(req.reason)?;
    Ok(Json(
        do_timeout(
            &state,
            &who,
            &stream.id,
            &req.user_id,
            req.minutes,
            &reason,
            None,
        )
        .await?
        .into(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatSettings {
    /// Seconds a user must wait between messages; 0 turns slow mode off (0–3600).
    pub slow_mode_seconds: i64,
    /// Why (kept in the moderation history); ignored in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Participants connected right now (answers only).
    #[serde(default)]
    pub participants: usize,
}

/// Chat settings of a stream and its participants right now.
#[utoipa::path(
    get, path = "/streams/{id}/chat/settings", tag = "social",
    params(("id" = String, Path)),
    responses((status = 200, body = ChatSettings), (status = 404, body = crate::Problem))
)]
async fn chat_settings(
    State(state): State<AppState>,
    who: MaybePrincipal,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatSettings>> {
    let stream = public_stream(&state, &id).await?;
    check_readable(&state, who.0.as_ref(), &stream).await?;
    Ok(Json(ChatSettings {
        slow_mode_seconds: state.db.chat_slow_mode(&stream.id).await?,
        reason: None,
        participants: state.chat.participants(&stream.id),
    }))
}

/// Set slow mode of a stream's chat (moderators); every client is told.
#[utoipa::path(
    put, path = "/streams/{id}/chat/settings", tag = "social",
    params(("id" = String, Path)),
    request_body = ChatSettings,
    security(("bearer" = [])),
    responses((status = 200, body = ChatSettings), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem))
)]
async fn set_chat_settings(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<ChatSettings>,
) -> ApiResult<Json<ChatSettings>> {
    let stream = stream_for(&state, &who, &id).await?;
    require_moderator(&who, &stream)?;
    if !(0..=MAX_SLOW_MODE_SECONDS).contains(&req.slow_mode_seconds) {
        return Err(ApiError::invalid(
            "slow_mode_seconds",
            format!("slow_mode_seconds must be 0–{MAX_SLOW_MODE_SECONDS}"),
        ));
    }
    let reason = reason_of(req.reason)?;
    state
        .db
        .set_chat_slow_mode(
            &who.organization_id,
            &stream.id,
            req.slow_mode_seconds,
            &who.user_id,
        )
        .await?;
    state.chat.broadcast(
        &stream.id,
        &json!({"type": "slow_mode", "seconds": req.slow_mode_seconds}),
    );
    record(
        &state,
        &who,
        "slow_mode",
        Some(&stream.id),
        ("stream", &stream.id),
        None,
        &reason,
        Some(req.slow_mode_seconds),
        None,
    )
    .await?;
    Ok(Json(ChatSettings {
        slow_mode_seconds: req.slow_mode_seconds,
        reason: None,
        participants: state.chat.participants(&stream.id),
    }))
}

// ---- likes -----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct Likes {
    pub stream_id: String,
    pub count: i64,
    /// Whether the caller likes it (false for anonymous callers).
    pub liked: bool,
}

/// Likes of a stream. Anyone may read; a signed-in caller also learns whether they like it.
#[utoipa::path(
    get, path = "/streams/{id}/likes", tag = "social",
    params(("id" = String, Path)),
    responses((status = 200, body = Likes), (status = 404, body = crate::Problem))
)]
async fn likes(
    State(state): State<AppState>,
    who: MaybePrincipal,
    Path(id): Path<String>,
) -> ApiResult<Json<Likes>> {
    let stream = public_stream(&state, &id).await?;
    check_readable(&state, who.0.as_ref(), &stream).await?;
    let (count, liked) = state
        .db
        .likes(&stream.id, who.0.as_ref().map(|p| p.user_id.as_str()))
        .await?;
    Ok(Json(Likes {
        stream_id: stream.id,
        count,
        liked,
    }))
}

async fn set_like(state: &AppState, who: &Principal, id: &str, liked: bool) -> ApiResult<Likes> {
    let stream = stream_for(state, who, id).await?;
    let changed = state
        .db
        .set_like(&who.organization_id, &stream.id, &who.user_id, liked)
        .await?;
    if changed {
        state
            .db
            .record_engagement(
                &who.organization_id,
                Some(&stream.id),
                Some(&who.user_id),
                if liked { "like" } else { "unlike" },
            )
            .await?;
    }
    let (count, liked) = state.db.likes(&stream.id, Some(&who.user_id)).await?;
    Ok(Likes {
        stream_id: stream.id,
        count,
        liked,
    })
}

/// Like a stream (idempotent).
#[utoipa::path(
    put, path = "/streams/{id}/like", tag = "social",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Likes), (status = 404, body = crate::Problem))
)]
async fn like(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Likes>> {
    Ok(Json(set_like(&state, &who, &id, true).await?))
}

/// Unlike a stream (idempotent).
#[utoipa::path(
    delete, path = "/streams/{id}/like", tag = "social",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Likes), (status = 404, body = crate::Problem))
)]
async fn unlike(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Likes>> {
    Ok(Json(set_like(&state, &who, &id, false).await?))
}

// ---- reports and the moderation queue --------------------------------------------------------

const REASONS: &[&str] = &["spam", "harassment", "inappropriate", "copyright", "other"];
const RESOLUTIONS: &[&str] = &["dismiss", "delete_message", "timeout_user", "ban_user"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `message`, `user` or `stream`.
    pub target_type: String,
    pub target_id: String,
    /// `spam`, `harassment`, `inappropriate`, `copyright` or `other`.
    pub reason: String,
    #[serde(default)]
    pub details: Option<String>,
}

/// Report a chat message, a user or a stream to the organization's moderators.
#[utoipa::path(
    post, path = "/social/report", tag = "social",
    request_body = ReportRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ReportView), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem))
)]
async fn report(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<ReportRequest>,
) -> ApiResult<(StatusCode, Json<ReportView>)> {
    if !REASONS.contains(&req.reason.as_str()) {
        return Err(ApiError::invalid(
            "reason",
            format!("reason must be one of {}", REASONS.join(", ")),
        ));
    }
    let details = req.details.unwrap_or_default().trim().to_string();
    if details.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "details",
            "details may have at most 1000 characters",
        ));
    }
    let org = &who.organization_id;
    let (channel_id, target_user_id, excerpt) = match req.target_type.as_str() {
        "message" => {
            let m = state
                .db
                .chat_message(org, &req.target_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such message").with_field("target_id"))?;
            (Some(m.channel_id), Some(m.user_id), m.body)
        }
        "user" => match state.db.user(&req.target_id).await? {
            Some(u) if &u.organization_id == org => (None, Some(u.id), String::new()),
            _ => return Err(ApiError::not_found("no such user").with_field("target_id")),
        },
        "stream" => {
            let c = stream_for(&state, &who, &req.target_id).await?;
            (Some(c.id), c.owner_id, String::new())
        }
        _ => {
            return Err(ApiError::invalid(
                "target_type",
                "target_type must be message, user or stream",
            ))
        }
    };
    let r = state
        .db
        .create_report(&NewReport {
            organization_id: org.clone(),
            reporter_id: who.user_id.clone(),
            target_type: req.target_type,
            target_id: req.target_id,
            channel_id,
            target_user_id,
            excerpt,
            reason: req.reason,
            details,
        })
        .await?;
    state
        .db
        .record_engagement(org, r.channel_id.as_deref(), Some(&who.user_id), "report")
        .await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportQuery {
    /// `pending`, `reviewed` or `resolved`; all when absent.
    pub status: Option<String>,
    /// 1–200, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportList {
    pub items: Vec<ReportView>,
}

/// The organization's reports, newest first (the moderation queue).
#[utoipa::path(
    get, path = "/moderation/reports", tag = "social",
    params(ReportQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ReportList), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem))
)]
async fn list_reports(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Json<ReportList>> {
    if let Some(s) = &q.status {
        if !matches!(s.as_str(), "pending" | "reviewed" | "resolved") {
            return Err(ApiError::invalid(
                "status",
                "status must be pending, reviewed or resolved",
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–200"));
    }
    let items = state
        .db
        .reports(&who.organization_id, q.status.as_deref(), limit)
        .await?;
    Ok(Json(ReportList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    #[serde(default)]
    pub note: Option<String>,
}

async fn open_report(state: &AppState, who: &Principal, id: &str) -> ApiResult<Report> {
    let r = state
        .db
        .report(&who.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such report"))?;
    if r.status == "resolved" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_resolved",
            "this report is resolved already",
        ));
    }
    Ok(r)
}

/// Mark a report reviewed (seen by a moderator, not yet resolved).
#[utoipa::path(
    post, path = "/moderation/reports/{id}/review", tag = "social",
    params(("id" = String, Path)),
    request_body = ReviewRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ReportView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn review_report(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Option<Json<ReviewRequest>>,
) -> ApiResult<Json<ReportView>> {
    let r = open_report(&state, &who, &id).await?;
    let note = reason_of(body.and_then(|b| b.0.note))?;
    let r = state
        .db
        .update_report(
            &who.organization_id,
            &r.id,
            "reviewed",
            &who.user_id,
            None,
            &note,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("no such report"))?;
    record(
        &state,
        &who,
        "review",
        r.channel_id.as_deref(),
        (&r.target_type, &r.target_id),
        r.target_user_id.as_deref(),
        &note,
        None,
        Some(&r.id),
    )
    .await?;
    Ok(Json(r.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `dismiss`, `delete_message` (message reports), `timeout_user` or `ban_user` (reports
    /// about a message's author or a user).
    pub action: String,
    /// Timeout length for `timeout_user`, default 10.
    #[serde(default)]
    pub minutes: Option<i64>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Resolve a report with an action, which is carried out and recorded.
#[utoipa::path(
    post, path = "/moderation/reports/{id}/resolve", tag = "social",
    params(("id" = String, Path)),
    request_body = ResolveRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ReportView), (status = 400, body = crate::Problem), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem))
)]
async fn resolve_report(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<ResolveRequest>,
) -> ApiResult<Json<ReportView>> {
    if !RESOLUTIONS.contains(&req.action.as_str()) {
        return Err(ApiError::invalid(
            "action",
            format!("action must be one of {}", RESOLUTIONS.join(", ")),
        ));
    }
    let r = open_report(&state, &who, &id).await?;
    let note = reason_of(req.note)?;
    let reason = if note.is_empty() {
        format!("report: {}", r.reason)
    } else {
        note.clone()
    };
    let user = || {
        r.target_user_id
            .clone()
            .filter(|_| r.target_type != "stream")
            .ok_or_else(|| {
                ApiError::invalid("action", "this report is not about a user or a message")
            })
    };
    match req.action.as_str() {
        "delete_message" => {
            if r.target_type != "message" {
                return Err(ApiError::invalid(
                    "action",
                    "this report is not about a message",
                ));
            }
            match state
                .db
                .chat_message(&who.organization_id, &r.target_id)
                .await?
            {
                Some(m) if m.deleted_at.is_none() => {
                    do_delete(&state, &who, &m, &reason, Some(&r.id)).await?;
                }
                // Gone already (deleted from the chat, or aged out of the history).
                _ => {
                    record(
                        &state,
                        &who,
                        "delete_message",
                        r.channel_id.as_deref(),
                        ("message", &r.target_id),
                        r.target_user_id.as_deref(),
                        &reason,
                        None,
                        Some(&r.id),
                    )
                    .await?;
                }
            }
        }
        "timeout_user" => {
            let user = user()?;
            let stream = r.channel_id.clone().unwrap_or_else(|| "*".to_string());
            do_timeout(
                &state,
                &who,
                &stream,
                &user,
                req.minutes.unwrap_or(10),
                &reason,
                Some(&r.id),
            )
            .await?;
        }
        "ban_user" => {
            let user = user()?;
            state
                .db
                .restrict_chat_user(&who.organization_id, "*", &user, None, &who.user_id)
                .await?;
            if let Some(stream) = &r.channel_id {
                state
                    .chat
                    .broadcast(stream, &json!({"type": "banned", "user_id": user}));
            }
            record(
                &state,
                &who,
                "ban_user",
                r.channel_id.as_deref(),
                ("user", &user),
                Some(&user),
                &reason,
                None,
                Some(&r.id),
            )
            .await?;
        }
        _ => {
            record(
                &state,
                &who,
                "dismiss",
                r.channel_id.as_deref(),
                (&r.target_type, &r.target_id),
                r.target_user_id.as_deref(),
                &reason,
                None,
                Some(&r.id),
            )
            .await?;
        }
    }
    let r = state
        .db
        .update_report(
            &who.organization_id,
            &r.id,
            "resolved",
            &who.user_id,
            Some(&req.action),
            &note,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("no such report"))?;
    Ok(Json(r.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ActionQuery {
    /// Only actions on this stream.
    pub stream_id: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionList {
    pub items: Vec<ModerationActionView>,
}

/// The organization's moderation history, newest first.
#[utoipa::path(
    get, path = "/moderation/actions", tag = "social",
    params(ActionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ActionList), (status = 403, body = crate::Problem))
)]
async fn list_actions(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ActionQuery>,
) -> ApiResult<Json<ActionList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1–500"));
    }
    let items = state
        .db
        .moderation_actions(&who.organization_id, q.stream_id.as_deref(), limit)
        .await?;
    Ok(Json(ActionList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}
