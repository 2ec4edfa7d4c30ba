//! The WebSocket event stream from a test's side, and the AsyncAPI schemas its events must
//! match.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use lunora_testkit::Server;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects with a bearer token and waits for the server's `hello`.
pub async fn connect(server: &Server, token: &str) -> Ws {
    let mut req = format!("ws://{}/api/v1/events", server.http)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    next_of(&mut ws, "hello", 5).await;
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Subscribes to `topics` and answers the server's `subscribed` message.
pub async fn subscribe(ws: &mut Ws, topics: &[&str]) -> Value {
    send(ws, json!({"type": "subscribe", "topics": topics})).await;
    next_of(ws, "subscribed", 5).await
}

/// The next JSON message, within `deadline`; `None` once it passed.
pub async fn next_message(ws: &mut Ws, deadline: tokio::time::Instant) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        if let Message::Text(t) = msg.expect("stream open").expect("message") {
            return Some(serde_json::from_str(&t).unwrap());
        }
    }
}

/// The next JSON message whose `type` is `kind` (others are skipped), within `secs`.
pub async fn next_of(ws: &mut Ws, kind: &str, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = next_message(ws, deadline)
            .await
            .unwrap_or_else(|| panic!("no `{kind}` message within {secs}s"));
        if v["type"] == kind {
            return v;
        }
    }
}

/// Every message received within `secs` (the stream stays open).
pub async fn drain(ws: &mut Ws, secs: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    while let Some(v) = next_message(ws, deadline).await {
        out.push(v);
    }
    out
}

/// The event schemas of the server's AsyncAPI document.
pub struct Schemas {
    doc: Value,
}

impl Schemas {
    pub async fn fetch(server: &Server) -> Schemas {
        let res = server
            .client
            .get(server.url("/api/v1/events/asyncapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        Schemas {
            doc: res.json().await.unwrap(),
        }
    }

    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Whether `event` is one the document describes, and valid against its message schema.
    pub fn check(&self, event: &Value) {
        let kind = event["type"].as_str().expect("an event has a type");
        self.check_as(kind, event);
    }

    /// Whether `event` is valid against the schema of the document's message `kind`.
    pub fn check_as(&self, kind: &str, event: &Value) {
        let payload = &self.doc["components"]["messages"][kind]["payload"];
        assert!(
            payload.is_object(),
            "event type `{kind}` is not in the AsyncAPI document"
        );
        // The message payload, with the document's components so `$ref`s resolve.
        let mut schema = payload.clone();
        schema["components"] = self.doc["components"].clone();
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("schema of `{kind}` does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(event)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "`{kind}` event does not match its schema: {errors:?}\n{event}"
        );
    }
}
