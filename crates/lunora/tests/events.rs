//! The WebSocket event stream: authentication, topics the caller may see, live events from the
//! engine and stream control, resume after a reconnect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::media::Publisher;
use common::nginx::Nginx;
use common::*;
use futures::{SinkExt, StreamExt};
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, token: &str) -> Ws {
    let mut req = format!("ws://{}/api/v1/events", server.http)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message whose `type` is `kind` (others are skipped), within `secs`.
async fn next_of(ws: &mut Ws, kind: &str, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no `{kind}` message within {secs}s"))
            .expect("stream open")
            .expect("message");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_to_subscribers_and_resume_after_a_reconnect() {
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;

    // Without credentials the upgrade is refused.
    let anon =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/events", server.http)).await;
    assert!(anon.is_err(), "anonymous WebSocket accepted");

    // Signed in by cookie, the socket must come from the server's own pages: a page elsewhere
    // that the browser would send the cookie from is refused; the server's own origin and a
    // client that sends no Origin (not a browser) are not.
    let by_cookie = |origin: Option<String>| {
        let mut req = format!("ws://{}/api/v1/events", server.http)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("cookie", format!("lunora_access={token}").parse().unwrap());
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    match by_cookie(Some("https://evil.example".into())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 403);
            let body = String::from_utf8_lossy(res.body().as_deref().unwrap_or_default());
            assert!(body.contains("cross_origin"), "{body}");
        }
        other => panic!("a cross-origin cookie WebSocket was not refused: {other:?}"),
    }
    let (mut own, _) = by_cookie(Some(format!("http://{}", server.http)))
        .await
        .expect("the server's own origin");
    next_of(&mut own, "hello", 5).await;
    let (mut tool, _) = by_cookie(None).await.expect("no Origin: not a browser");
    next_of(&mut tool, "hello", 5).await;

    let ch: Value = create_channel(&server, &token, "events")
        .await
        .json()
        .await
        .unwrap();
    let id = ch["id"].as_str().unwrap().to_string();
    let mut ws = connect(&server, &token).await;
    next_of(&mut ws, "hello", 5).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": ["org", format!("channel:{id}"), "channel:00000000-0000-0000-0000-000000000000", "user:someone-else"]}),
    )
    .await;
    let sub = next_of(&mut ws, "subscribed", 5).await;
    assert_eq!(
        sub["topics"],
        json!(["org", format!("channel:{id}")]),
        "{sub}"
    );
    assert_eq!(sub["refused"].as_array().unwrap().len(), 2, "{sub}");

    // The encoder goes live: channel.input.
    let key = ch["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let _publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    let ev = next_of(&mut ws, "channel.input", 15).await;
    assert_eq!(ev["topic"], format!("channel:{id}"));
    assert_eq!(ev["data"]["state"], "live");
    let seq_live = ev["seq"].as_u64().unwrap();

    // Streaming to a destination: session.started and destination.status reaching live.
    let dest: Value = server
        .client
        .post(server.url("/api/v1/destinations"))
        .bearer_auth(&token)
        .json(&json!({"name": "N", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "evkey-123456"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = server
        .client
        .post(server.url(&format!("/api/v1/channels/{id}/streaming/start")))
        .bearer_auth(&token)
        .json(&json!({"destination_ids": [dest["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let started = next_of(&mut ws, "session.started", 10).await;
    assert_eq!(started["data"]["channel_id"], id.as_str());
    let last_status = loop {
        let st = next_of(&mut ws, "destination.status", 20).await;
        if st["data"]["state"] == "live" {
            break st;
        }
    };

    // Disconnect, miss an event, come back and resume.
    drop(ws);
    let res = server
        .client
        .post(server.url(&format!("/api/v1/channels/{id}/streaming/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut ws = connect(&server, &token).await;
    next_of(&mut ws, "hello", 5).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": [format!("channel:{id}")]}),
    )
    .await;
    next_of(&mut ws, "subscribed", 5).await;
    send(&mut ws, json!({"type": "resume", "after": seq_live})).await;
    let stopped = next_of(&mut ws, "session.stopped", 5).await;
    assert!(stopped["seq"].as_u64().unwrap() > seq_live);
    next_of(&mut ws, "resumed", 5).await;

    // Garbage from the client gets an error message, not a dropped connection.
    send(&mut ws, json!({"type": "launch_missiles"})).await;
    next_of(&mut ws, "error", 5).await;
    send(&mut ws, json!({"type": "ping"})).await;
    next_of(&mut ws, "pong", 5).await;

    // Recording on the live channel: recording.started, then recording.stopped when it is
    // turned off, with the file's figures.
    let settings = server.url(&format!("/api/v1/channels/{id}/recording"));
    let res = server
        .client
        .put(&settings)
        .bearer_auth(&token)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rec = next_of(&mut ws, "recording.started", 15).await;
    assert_eq!(rec["topic"], format!("channel:{id}"));
    let rec_id = rec["data"]["recording_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let res = server
        .client
        .put(&settings)
        .bearer_auth(&token)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let done = next_of(&mut ws, "recording.stopped", 15).await;
    assert_eq!(done["data"]["recording_id"], rec_id.as_str());
    assert_eq!(done["data"]["status"], "complete", "{done}");
    assert!(done["data"]["size_bytes"].as_u64().unwrap() > 0, "{done}");

    // Each of these real events matches its schema in the AsyncAPI document.
    let schemas = common::ws::Schemas::fetch(&server).await;
    for v in [&ev, &started, &stopped, &rec, &done] {
        schemas.check(v);
    }
    schemas.check(&last_status);
}

/// Every message received within `secs` (the stream stays open).
async fn drain(ws: &mut Ws, secs: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = msg {
            out.push(serde_json::from_str(&t).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organization_never_receives_our_events() {
    let server = start(DbKind::Sqlite).await;
    let root = admin_token(&server).await;
    // A second tenant with its own administrator.
    let a = call(
        &server,
        "POST",
        "/api/v1/organizations",
        Some(&root),
        Some(&json!({ "name": "Beta", "slug": "beta", "admin_email": "boss@beta.example" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let invitation = outbox_token(&server, &root, "boss@beta.example", "invitation").await;
    let password = "Staff-Password-42!";
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": invitation, "password": password })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let beta = token_for(&server, "boss@beta.example", password).await;

    let ch: Value = create_channel(&server, &root, "alpha")
        .await
        .json()
        .await
        .unwrap();
    let id = ch["id"].as_str().unwrap().to_string();
    let topic = format!("channel:{id}");

    // Beta asks for its organization and for our channel: the channel is refused as if it did
    // not exist.
    let mut theirs = connect(&server, &beta).await;
    next_of(&mut theirs, "hello", 5).await;
    send(
        &mut theirs,
        json!({"type": "subscribe", "topics": ["org", topic]}),
    )
    .await;
    let sub = next_of(&mut theirs, "subscribed", 5).await;
    assert_eq!(sub["topics"], json!(["org"]), "{sub}");
    assert_eq!(sub["refused"].as_array().unwrap().len(), 1, "{sub}");
    let mut ours = connect(&server, &root).await;
    next_of(&mut ours, "hello", 5).await;
    send(
        &mut ours,
        json!({"type": "subscribe", "topics": ["org", topic]}),
    )
    .await;
    next_of(&mut ours, "subscribed", 5).await;

    // Our channel goes live and streams: we see it, they see nothing of it.
    let key = ch["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let _publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    let ev = next_of(&mut ours, "channel.input", 15).await;
    assert_eq!(ev["data"]["state"], "live");
    let seen = drain(&mut theirs, 3).await;
    let leaked: Vec<&Value> = seen
        .iter()
        .filter(|m| m.to_string().contains(&id) || m["type"] == "channel.input")
        .collect();
    assert!(
        leaked.is_empty(),
        "another organization received: {leaked:?}"
    );
    // Resuming from the beginning replays nothing of ours either.
    send(&mut theirs, json!({"type": "resume", "after": 0})).await;
    let replay = drain(&mut theirs, 2).await;
    assert!(
        !replay.iter().any(|m| m.to_string().contains(&id)),
        "another organization got our events on resume: {replay:?}"
    );
}

/// The AsyncAPI document names every event type the server emits, each with a JSON schema, and
/// the OpenAPI description of `/api/v1/events` points to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asyncapi_document_describes_every_event_type() {
    let server = start(DbKind::Sqlite).await;
    let schemas = common::ws::Schemas::fetch(&server).await;
    let doc = schemas.document();
    assert!(
        doc["asyncapi"].as_str().unwrap().starts_with("2.6"),
        "{}",
        doc["asyncapi"]
    );
    let messages = doc["components"]["messages"].as_object().unwrap();
    for kind in [
        "camera.status",
        "channel.input",
        "source.failover",
        "source.state",
        "source.fill",
        "destination.status",
        "session.started",
        "session.stopped",
        "recording.started",
        "recording.stopped",
        "alert.raised",
        "alert.resolved",
        "dashboard.update",
        "notification",
    ] {
        let m = messages
            .get(kind)
            .unwrap_or_else(|| panic!("{kind} is not documented"));
        let data = m["payload"]["properties"]["data"]["$ref"].as_str().unwrap();
        let name = data.rsplit('/').next().unwrap();
        let schema = &doc["components"]["schemas"][name];
        assert!(
            schema["properties"].is_object(),
            "{kind}: no schema {name}: {schema}"
        );
    }
    // Every message is reachable from a channel, in one direction or the other.
    let channels = doc["channels"].as_object().unwrap();
    for kind in messages.keys() {
        let wanted = format!("#/components/messages/{kind}");
        assert!(
            channels.values().any(|c| ["subscribe", "publish"]
                .iter()
                .any(|op| c[op]["message"]["oneOf"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["$ref"] == wanted.as_str())))),
            "{kind} is on no channel"
        );
    }
    // The chat socket's frames, both ways, on their own server.
    let chat = &channels["chat/{stream_id}"];
    assert_eq!(chat["servers"], json!(["chat"]), "{chat}");
    for kind in [
        "hello",
        "message",
        "sent",
        "deleted",
        "timeout",
        "banned",
        "slow_mode",
        "error",
        "pong",
    ] {
        let m = format!("#/components/messages/chat.{kind}");
        assert!(
            chat["subscribe"]["message"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["$ref"] == m.as_str()),
            "chat frame `{kind}` is not documented"
        );
    }
    // Every refusal the chat can send, a failure of the server's included.
    let codes =
        &doc["components"]["messages"]["chat.error"]["payload"]["properties"]["code"]["enum"];
    for code in [
        "sign_in_required",
        "rate_limited",
        "slow_mode",
        "timed_out",
        "banned",
        "too_long",
        "empty",
        "bad_message",
        "internal_error",
    ] {
        assert!(
            codes.as_array().unwrap().iter().any(|c| c == code),
            "chat error code `{code}` is not documented: {codes}"
        );
    }
    assert!(
        doc["servers"]["chat"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/streams/{stream_id}/chat/ws"),
        "{}",
        doc["servers"]["chat"]
    );
    let openapi: Value = server
        .client
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = openapi["paths"]["/api/v1/events"]["get"].to_string();
    assert!(
        events.contains("/api/v1/events/asyncapi.json"),
        "the events operation does not link the AsyncAPI document: {events}"
    );
}

/// `dashboard.update` reaches the organization's `org` topic only, `notification` the
/// recipient's own `user:` topic only: another organization, and a viewer of ours, never get
/// another user's notifications; events match their schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_updates_and_notifications_stay_with_their_organization_and_user() {
    use common::ws;

    let server = start(DbKind::Sqlite).await;
    let root = admin_token(&server).await;
    let schemas = ws::Schemas::fetch(&server).await;
    let me = call(&server, "GET", "/api/v1/users/me", Some(&root), None).await;
    let admin_id = me.body["id"].as_str().unwrap().to_string();
    // A viewer of ours, and another organization with its administrator.
    let password = "Staff-Password-42!";
    let viewer_id = invite_user(&server, &root, "viewer@example.com", "viewer", password).await;
    let viewer = token_for(&server, "viewer@example.com", password).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/organizations",
        Some(&root),
        Some(&json!({ "name": "Beta", "slug": "beta", "admin_email": "boss@beta.example" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let invitation = outbox_token(&server, &root, "boss@beta.example", "invitation").await;
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": invitation, "password": password })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let beta_id = a.body["id"].as_str().unwrap().to_string();
    let beta = token_for(&server, "boss@beta.example", password).await;

    let admin_topic = format!("user:{admin_id}");
    let mut ours = ws::connect(&server, &root).await;
    ws::subscribe(&mut ours, &["org", &admin_topic]).await;
    let mut theirs = ws::connect(&server, &beta).await;
    let beta_topic = format!("user:{beta_id}");
    let sub = ws::subscribe(&mut theirs, &["org", &beta_topic, &admin_topic]).await;
    assert_eq!(sub["topics"], json!(["org", beta_topic]), "{sub}");
    let mut view = ws::connect(&server, &viewer).await;
    let viewer_topic = format!("user:{viewer_id}");
    let sub = ws::subscribe(&mut view, &["org", &viewer_topic, &admin_topic]).await;
    assert_eq!(sub["topics"], json!(["org", viewer_topic]), "{sub}");

    // A camera of ours goes live, then dies: dashboard updates and an alert notification.
    let cam = call(
        &server,
        "POST",
        "/api/v1/cameras",
        Some(&root),
        Some(&json!({"name": "Gate"})),
    )
    .await;
    assert_eq!(cam.status, 201, "{cam:?}");
    let key = cam.body["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let mut publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    let mut received = Vec::new();
    loop {
        let v = ws::next_of(&mut ours, "dashboard.update", 30).await;
        received.push(v.clone());
        if v["data"]["cameras_online"] == 1 {
            assert_eq!(v["topic"], "org");
            assert_eq!(v["data"]["live_channels"], 1, "{v}");
            assert!(v["data"]["ingest_bps"].as_u64().unwrap() > 0, "{v}");
            break;
        }
    }
    publisher.kill();
    let n = ws::next_of(&mut ours, "notification", 30).await;
    assert_eq!(n["topic"], admin_topic.as_str());
    assert_eq!(n["data"]["kind"], "alert.raised", "{n}");
    assert_eq!(n["data"]["severity"], "warning");
    received.push(n.clone());
    loop {
        let v = ws::next_of(&mut ours, "dashboard.update", 30).await;
        received.push(v.clone());
        if v["data"]["cameras_offline"] == 1 && v["data"]["active_alerts"] == 1 {
            break;
        }
    }
    for v in &received {
        schemas.check(v);
    }
    // Marked read, it leaves the unread list.
    let id = n["data"]["id"].as_str().unwrap();
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/notifications/{id}/read"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body["read_at"].is_string());
    let a = call(
        &server,
        "GET",
        "/api/v1/notifications?unread=true",
        Some(&root),
        None,
    )
    .await;
    assert!(
        !a.body["items"].to_string().contains(id),
        "still unread: {a:?}"
    );
    // Nobody else can read or mark it.
    for token in [&beta, &viewer] {
        let a = call(
            &server,
            "POST",
            &format!("/api/v1/notifications/{id}/read"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(a.status, 404, "{a:?}");
        let a = call(&server, "GET", "/api/v1/notifications", Some(token), None).await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body["items"], json!([]), "{a:?}");
    }

    // The other organization saw none of it; our viewer saw the dashboard but no notification.
    let seen = drain(&mut theirs, 2).await;
    let leaked: Vec<&Value> = seen
        .iter()
        .filter(|m| m["type"] == "dashboard.update" || m["type"] == "notification")
        .collect();
    assert!(
        leaked.is_empty(),
        "another organization received: {leaked:?}"
    );
    let seen = drain(&mut view, 1).await;
    assert!(
        seen.iter().any(|m| m["type"] == "dashboard.update"),
        "the viewer got no dashboard update: {seen:?}"
    );
    assert!(
        !seen.iter().any(|m| m["type"] == "notification"),
        "the viewer got someone else's notification: {seen:?}"
    );
    // Resuming from the start replays none of it to them either.
    send(&mut theirs, json!({"type": "resume", "after": 0})).await;
    let replay = drain(&mut theirs, 2).await;
    assert!(
        !replay
            .iter()
            .any(|m| m["type"] == "dashboard.update" || m["type"] == "notification"),
        "another organization got our events on resume: {replay:?}"
    );
}
