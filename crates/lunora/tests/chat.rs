//! Live chat, likes, reports and the moderation queue of the viewer platform, through the real
//! binary: WebSocket clients of a stream's chat, audience accounts signed up by e-mail, a
//! moderator, and a second organization that must not see the first one's reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use lunora_testkit::{db_tests, DbKind, Server};
use serde_json::{json, Value};
use sqlx::Row;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const AUDIENCE_PASSWORD: &str = "Viewer2024x";

db_tests!(
    chat_is_moderated_and_reports_go_through_the_queue,
    chat_is_as_private_as_its_stream
);

/// The AsyncAPI document, fetched by the first `chat` call: every frame a test receives is
/// checked against its `chat.{type}` message there.
static SCHEMAS: std::sync::OnceLock<common::ws::Schemas> = std::sync::OnceLock::new();

/// A received frame, checked against the document.
fn documented(frame: Value) -> Value {
    if let Some(schemas) = SCHEMAS.get() {
        let kind = frame["type"].as_str().expect("a chat frame has a type");
        schemas.check_as(&format!("chat.{kind}"), &frame);
    }
    frame
}

/// Connects to a stream's chat, signed in with `token` or anonymously, and answers the `hello`.
async fn chat(server: &Server, stream: &str, token: Option<&str>) -> (Ws, Value) {
    if SCHEMAS.get().is_none() {
        let _ = SCHEMAS.set(common::ws::Schemas::fetch(server).await);
    }
    let mut req = format!("ws://{}/api/v1/streams/{stream}/chat/ws", server.http)
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = next_of(&mut ws, "hello").await;
    (ws, hello)
}

async fn say(ws: &mut Ws, body: &str) {
    ws.send(Message::Text(
        json!({"type": "send", "body": body}).to_string().into(),
    ))
    .await
    .unwrap();
}

/// The next frame of type `kind` (others skipped), within 10 s.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no `{kind}` frame within 10 s"))
            .expect("socket open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v = documented(serde_json::from_str(&t).unwrap());
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// The answer to one's own message: `sent` or `error`.
async fn outcome(ws: &mut Ws) -> Value {
    loop {
        let v = next_any(ws).await;
        if v["type"] == "sent" || v["type"] == "error" {
            return v;
        }
    }
}

async fn next_any(ws: &mut Ws) -> Value {
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a frame within 10 s")
        .expect("socket open")
        .expect("frame");
    match msg {
        Message::Text(t) => documented(serde_json::from_str(&t).unwrap()),
        other => json!({"type": "other", "frame": format!("{other:?}")}),
    }
}

/// The next chat message with `body` (earlier messages are skipped).
async fn expect_message(ws: &mut Ws, body: &str) -> Value {
    loop {
        let m = next_of(ws, "message").await;
        if m["message"]["body"] == body {
            return m["message"].clone();
        }
    }
}

async fn chat_is_moderated_and_reports_go_through_the_queue(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let stream = public_channel(&server, &admin, "Live talk").await;
    let alice_id = signup_user(&server, &admin, "alice@example.com", AUDIENCE_PASSWORD).await;
    let bob_id = signup_user(&server, &admin, "bob@example.com", AUDIENCE_PASSWORD).await;
    let alice = token_for(&server, "alice@example.com", AUDIENCE_PASSWORD).await;
    let bob = token_for(&server, "bob@example.com", AUDIENCE_PASSWORD).await;

    // Anonymous viewers read but cannot post.
    let (mut anon, hello) = chat(&server, &stream, None).await;
    assert_eq!(hello["can_post"], false, "{hello}");
    assert_eq!(hello["user"], Value::Null);
    say(&mut anon, "hello from nobody").await;
    let refused = outcome(&mut anon).await;
    assert_eq!(refused["code"], "sign_in_required", "{refused}");
    // A ping is answered; a frame the server does not understand is refused, not fatal.
    for frame in [json!({"type": "ping"}).to_string(), "{not json".to_string()] {
        anon.send(Message::Text(frame.into())).await.unwrap();
    }
    next_of(&mut anon, "pong").await;
    assert_eq!(outcome(&mut anon).await["code"], "bad_message");

    // Two viewers chat; both see each message, and so does the anonymous reader.
    let (mut a, hello) = chat(&server, &stream, Some(&alice)).await;
    assert_eq!(hello["can_post"], true, "{hello}");
    assert_eq!(hello["can_moderate"], false, "{hello}");
    let (mut b, _) = chat(&server, &stream, Some(&bob)).await;
    let (mut m, hello) = chat(&server, &stream, Some(&admin)).await;
    assert_eq!(hello["can_moderate"], true, "{hello}");
    say(&mut a, "hi <b>bob</b>").await;
    assert_eq!(outcome(&mut a).await["type"], "sent");
    let first = expect_message(&mut b, "hi <b>bob</b>").await;
    assert_eq!(first["user_id"], alice_id.as_str());
    assert!(
        !first["display_name"]
            .as_str()
            .unwrap()
            .contains("alice@example.com"),
        "the e-mail address is never shown: {first}"
    );
    expect_message(&mut anon, "hi <b>bob</b>").await;
    expect_message(&mut m, "hi <b>bob</b>").await;
    say(&mut b, "hello alice").await;
    assert_eq!(outcome(&mut b).await["type"], "sent");
    let rude = expect_message(&mut a, "hello alice").await;

    // History: anyone may read it, oldest first.
    let h = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{stream}/chat/messages"),
        None,
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{h:?}");
    let bodies: Vec<&str> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hi <b>bob</b>", "hello alice"]);

    // An oversized message is refused with the limit.
    say(&mut a, &"x".repeat(501)).await;
    let refused = outcome(&mut a).await;
    assert_eq!(refused["code"], "too_long", "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("500"),
        "{refused}"
    );

    // The rate limit: a burst is accepted, then messages are refused with the wait.
    let mut limited = None;
    for i in 0..12 {
        say(&mut b, &format!("spam {i}")).await;
        let o = outcome(&mut b).await;
        if o["type"] == "error" {
            limited = Some(o);
            break;
        }
    }
    let limited = limited.expect("a rate-limit refusal within 12 quick messages");
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    assert!(limited["retry_after_ms"].as_u64().unwrap() > 0, "{limited}");

    // A viewer cannot moderate.
    let path = format!(
        "/api/v1/streams/{stream}/chat/messages/{}",
        first["id"].as_str().unwrap()
    );
    let a403 = call(&server, "DELETE", &path, Some(&bob), None).await;
    assert_eq!(a403.status, 403, "{a403:?}");
    let a403 = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{stream}/chat/timeouts"),
        Some(&bob),
        Some(&json!({"user_id": alice_id, "minutes": 5})),
    )
    .await;
    assert_eq!(a403.status, 403, "{a403:?}");
    let a403 = call(
        &server,
        "GET",
        "/api/v1/moderation/reports",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(a403.status, 403, "{a403:?}");

    // A moderator deletes a message: every client is told to remove it, history forgets it.
    let d = call(
        &server,
        "DELETE",
        &format!("{path}?reason=off%20topic"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(d.status, 200, "{d:?}");
    assert_eq!(d.body["action"], "delete_message");
    for ws in [&mut a, &mut b, &mut anon] {
        let gone = next_of(ws, "deleted").await;
        assert_eq!(gone["id"], first["id"], "{gone}");
    }
    let h = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{stream}/chat/messages"),
        None,
        None,
    )
    .await;
    assert!(!h.body.to_string().contains("hi <b>bob</b>"), "{h:?}");

    // A timeout: broadcast, then the user's posts are refused with the time left.
    let t = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{stream}/chat/timeouts"),
        Some(&admin),
        Some(&json!({"user_id": alice_id, "minutes": 5, "reason": "cool down"})),
    )
    .await;
    assert_eq!(t.status, 200, "{t:?}");
    let told = next_of(&mut a, "timeout").await;
    assert_eq!(told["user_id"], alice_id.as_str(), "{told}");
    assert_eq!(next_of(&mut b, "timeout").await["minutes"], 5);
    say(&mut a, "let me speak").await;
    let refused = outcome(&mut a).await;
    assert_eq!(refused["code"], "timed_out", "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("5 min"),
        "{refused}"
    );
    let left = refused["retry_after_ms"].as_u64().unwrap();
    assert!(left > 240_000 && left <= 300_000, "{refused}");

    // Slow mode on a second stream: one message per N s for viewers; moderators are exempt.
    let quiet = public_channel(&server, &admin, "Quiet room").await;
    let (mut bq, _) = chat(&server, &quiet, Some(&bob)).await;
    let s = call(
        &server,
        "PUT",
        &format!("/api/v1/streams/{quiet}/chat/settings"),
        Some(&bob),
        Some(&json!({"slow_mode_seconds": 30})),
    )
    .await;
    assert_eq!(s.status, 403, "{s:?}");
    let s = call(
        &server,
        "PUT",
        &format!("/api/v1/streams/{quiet}/chat/settings"),
        Some(&admin),
        Some(&json!({"slow_mode_seconds": 30})),
    )
    .await;
    assert_eq!(s.status, 200, "{s:?}");
    assert_eq!(next_of(&mut bq, "slow_mode").await["seconds"], 30);
    say(&mut bq, "first").await;
    assert_eq!(outcome(&mut bq).await["type"], "sent");
    say(&mut bq, "second").await;
    let refused = outcome(&mut bq).await;
    assert_eq!(refused["code"], "slow_mode", "{refused}");
    assert!(
        refused["retry_after_ms"].as_u64().unwrap() > 20_000,
        "{refused}"
    );
    let (mut mq, _) = chat(&server, &quiet, Some(&admin)).await;
    for body in ["mod one", "mod two"] {
        say(&mut mq, body).await;
        assert_eq!(
            outcome(&mut mq).await["type"],
            "sent",
            "moderators are exempt"
        );
    }

    // A report goes through the queue: pending → reviewed → resolved with an action.
    let r = call(
        &server,
        "POST",
        "/api/v1/social/report",
        Some(&alice),
        Some(&json!({"target_type": "message", "target_id": rude["id"], "reason": "harassment", "details": "rude"})),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let report = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["target_user_id"], bob_id.as_str());
    let bad = call(
        &server,
        "POST",
        "/api/v1/social/report",
        Some(&alice),
        Some(&json!({"target_type": "message", "target_id": rude["id"], "reason": "because"})),
    )
    .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let q = call(
        &server,
        "GET",
        "/api/v1/moderation/reports?status=pending",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(q.status, 200, "{q:?}");
    assert_eq!(q.body["items"][0]["id"], report.as_str());
    assert_eq!(q.body["items"][0]["excerpt"], "hello alice");
    let rv = call(
        &server,
        "POST",
        &format!("/api/v1/moderation/reports/{report}/review"),
        Some(&admin),
        Some(&json!({"note": "looking"})),
    )
    .await;
    assert_eq!(rv.status, 200, "{rv:?}");
    assert_eq!(rv.body["status"], "reviewed");

    // Another organization never sees it.
    let o = call(
        &server,
        "POST",
        "/api/v1/organizations",
        Some(&admin),
        Some(&json!({ "name": "Beta", "slug": "beta", "admin_email": "boss@beta.example" })),
    )
    .await;
    assert_eq!(o.status, 201, "{o:?}");
    let inv = outbox_token(&server, &admin, "boss@beta.example", "invitation").await;
    let o = call(
        &server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": inv, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(o.status, 201, "{o:?}");
    let beta = token_for(&server, "boss@beta.example", ADMIN_PASSWORD).await;
    let foreign = call(
        &server,
        "POST",
        &format!("/api/v1/moderation/reports/{report}/resolve"),
        Some(&beta),
        Some(&json!({"action": "dismiss"})),
    )
    .await;
    assert_eq!(foreign.status, 404, "{foreign:?}");
    let foreign = call(
        &server,
        "GET",
        "/api/v1/moderation/reports",
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(foreign.body["items"], json!([]), "{foreign:?}");
    let foreign = call(
        &server,
        "GET",
        "/api/v1/moderation/actions",
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(foreign.body["items"], json!([]), "{foreign:?}");
    let foreign = call(
        &server,
        "DELETE",
        &format!(
            "/api/v1/streams/{stream}/chat/messages/{}",
            rude["id"].as_str().unwrap()
        ),
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(foreign.status, 404, "{foreign:?}");

    // Resolving with delete_message carries it out (clients remove it) and records it.
    let done = call(
        &server,
        "POST",
        &format!("/api/v1/moderation/reports/{report}/resolve"),
        Some(&admin),
        Some(&json!({"action": "delete_message", "note": "harassment confirmed"})),
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body["status"], "resolved");
    assert_eq!(done.body["action"], "delete_message");
    assert_eq!(next_of(&mut b, "deleted").await["id"], rude["id"]);
    let again = call(
        &server,
        "POST",
        &format!("/api/v1/moderation/reports/{report}/resolve"),
        Some(&admin),
        Some(&json!({"action": "dismiss"})),
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    let actions = call(
        &server,
        "GET",
        "/api/v1/moderation/actions",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(actions.status, 200, "{actions:?}");
    let items = actions.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "delete_message",
            "review",
            "slow_mode",
            "timeout_user",
            "delete_message"
        ],
        "{actions:?}"
    );
    let resolved = &items[0];
    assert_eq!(resolved["report_id"], report.as_str());
    assert_eq!(resolved["reason"], "harassment confirmed");
    assert_eq!(resolved["target_user_id"], bob_id.as_str());
    assert!(resolved["moderator_id"].is_string());
    assert_eq!(items[3]["duration_seconds"], 300);
    assert_eq!(items[3]["reason"], "cool down");
    let resolved_list = call(
        &server,
        "GET",
        "/api/v1/moderation/reports?status=resolved",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(resolved_list.body["items"][0]["id"], report.as_str());

    // Likes: count for anyone, liked for the caller, engagement events for analytics.
    for t in [&alice, &bob, &alice] {
        let l = call(
            &server,
            "PUT",
            &format!("/api/v1/streams/{stream}/like"),
            Some(t),
            None,
        )
        .await;
        assert_eq!(l.status, 200, "{l:?}");
        assert_eq!(l.body["liked"], true);
    }
    let l = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{stream}/likes"),
        None,
        None,
    )
    .await;
    assert_eq!(l.body["count"], 2, "{l:?}");
    assert_eq!(l.body["liked"], false);
    let l = call(
        &server,
        "DELETE",
        &format!("/api/v1/streams/{stream}/like"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(
        (l.body["count"].as_i64(), l.body["liked"].as_bool()),
        (Some(1), Some(false))
    );
    let anon_like = call(
        &server,
        "PUT",
        &format!("/api/v1/streams/{stream}/like"),
        None,
        None,
    )
    .await;
    assert_eq!(anon_like.status, 401, "{anon_like:?}");
    let pool = db_pool(&server).await;
    let rows = sqlx::query(&format!(
        "SELECT kind, COUNT(*) AS n FROM engagement_events WHERE channel_id = '{stream}' GROUP BY kind"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let counts: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.get::<String, _>("kind"), r.get::<i64, _>("n")))
        .collect();
    assert!(counts.contains(&("like".into(), 2)), "{counts:?}");
    assert!(counts.contains(&("unlike".into(), 1)), "{counts:?}");
    assert!(counts.contains(&("report".into(), 1)), "{counts:?}");
    assert!(
        counts.iter().any(|(k, n)| k == "chat_message" && *n >= 3),
        "{counts:?}"
    );
}

/// A stream's chat and likes are readable exactly where the stream is watchable: a private
/// channel's are hidden (404) from everyone but its organization's staff, a premium stream's
/// refused (403) to viewers whose plan does not reach it.
async fn chat_is_as_private_as_its_stream(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let private: Value = create_channel(&server, &admin, "Back office")
        .await
        .json()
        .await
        .unwrap();
    let private = private["id"].as_str().unwrap().to_string();
    let premium = public_channel(&server, &admin, "Members only").await;
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/streams/{premium}"),
        Some(&admin),
        Some(&json!({"access_level": "premium"})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    signup_user(&server, &admin, "carol@example.com", AUDIENCE_PASSWORD).await;
    let carol = token_for(&server, "carol@example.com", AUDIENCE_PASSWORD).await;

    for path in ["chat/messages", "chat/settings", "likes"] {
        for token in [None, Some(carol.as_str())] {
            let a = call(
                &server,
                "GET",
                &format!("/api/v1/streams/{private}/{path}"),
                token,
                None,
            )
            .await;
            assert_eq!(a.status, 404, "private {path} as {token:?}: {a:?}");
            let a = call(
                &server,
                "GET",
                &format!("/api/v1/streams/{premium}/{path}"),
                token,
                None,
            )
            .await;
            assert_eq!(
                (a.status, a.body["code"].as_str()),
                (403, Some("upgrade_required")),
                "premium {path} as {token:?}: {a:?}"
            );
        }
        for stream in [&private, &premium] {
            let a = call(
                &server,
                "GET",
                &format!("/api/v1/streams/{stream}/{path}"),
                Some(&admin),
                None,
            )
            .await;
            assert_eq!(a.status, 200, "staff {path}: {a:?}");
        }
    }
    // The socket is refused the same way before it opens.
    for (stream, status) in [(&private, 404), (&premium, 403)] {
        let req = format!("ws://{}/api/v1/streams/{stream}/chat/ws", server.http)
            .into_client_request()
            .unwrap();
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status().as_u16(), status)
            }
            other => panic!("chat socket of a {status} stream: {:?}", other.map(|_| ())),
        }
    }
}
