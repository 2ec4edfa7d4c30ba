//! Real-time events: an in-process hub and the WebSocket at `/api/v1/events`.
//!
//! Every event belongs to one organization and one topic (`org`, `channel:{id}`,
//! `destination:{id}`, `user:{id}`). A client subscribes to topics it may see; it never learns of
//! another organization's events. Messages are JSON `{type, topic, data, at, seq}`. The hub keeps
//! the last events in a bounded ring so a client that reconnects can resume after the last `seq`
//! it saw without losing alerts. A client that cannot keep up is closed (code 4008) instead of
//! being buffered without bound; the server pings every 20 s and drops a silent client.
//!
//! Presence: a client announces `{"type":"presence","topic":"campaign:ID","state":"viewing"}`
//! (or `editing`, or `left`) on a topic it may subscribe to; everyone subscribed to the topic
//! receives a `presence` event listing who is there and how. A socket's presence ends when it
//! says `left`, unsubscribes, or goes away (closed, or silent past the ping).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal};
use crate::AppState;

pub mod asyncapi;
pub mod catalog;
pub mod dashboard;

pub use catalog::EventData;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(asyncapi_document))
}

/// One event as clients receive it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// `channel.input`, `destination.status`, `session.started`, `session.stopped`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `org`, `channel:{id}`, `destination:{id}` or `user:{id}`.
    pub topic: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// RFC 3339.
    pub at: String,
    /// Increases by one per event on this server; resume after it.
    pub seq: u64,
    #[serde(skip)]
    pub organization_id: String,
}

/// Events kept for resume. A thousand cameras coming online at once publish two thousand
/// `camera.status` events within seconds: both bounds hold several such bursts.
const RING: usize = 8192;
/// Events a client may fall behind before it is closed with 4008 (each is one `Arc`).
const CLIENT_QUEUE: usize = 8192;

/// The in-process event bus.
pub struct EventHub {
    tx: broadcast::Sender<Arc<Event>>,
    seq: AtomicU64,
    ring: Mutex<VecDeque<Arc<Event>>>,
    /// (organization, topic) → socket id → (user id, `viewing`|`editing`, since ms).
    presence: Mutex<PresenceMap>,
    sockets: AtomicU64,
}

type PresenceMap = HashMap<(String, String), BTreeMap<u64, (String, String, i64)>>;

impl Default for EventHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(CLIENT_QUEUE);
        EventHub {
            tx,
            seq: AtomicU64::new(0),
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            presence: Mutex::new(HashMap::new()),
            sockets: AtomicU64::new(0),
        }
    }
}

impl EventHub {
    /// Publishes an event to every subscriber of `topic` in `organization_id`. Only the types
    /// of [`catalog`] can be published, so each has a schema in the AsyncAPI document.
    pub fn publish<E: EventData>(&self, organization_id: &str, topic: String, event: &E) {
        let kind = event.kind();
        let data = match serde_json::to_value(event) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, kind, "event cannot be serialized");
                return;
            }
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let event = Arc::new(Event {
            kind: kind.to_string(),
            topic,
            data,
            at: crate::util::rfc3339(lunora_store::now_ms()),
            seq,
            organization_id: organization_id.to_string(),
        });
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(event.clone());
        }
        metrics::counter!("lunora_events_total", "type" => kind.to_string()).increment(1);
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Sets (or with `None` clears) the presence of socket `socket` on `topic` and publishes the
    /// topic's `presence` event when it changed.
    fn set_presence(
        &self,
        organization_id: &str,
        topic: &str,
        socket: u64,
        entry: Option<(String, String)>,
    ) {
        let present = {
            let Ok(mut map) = self.presence.lock() else {
                return;
            };
            let key = (organization_id.to_string(), topic.to_string());
            let here = map.entry(key.clone()).or_default();
            let changed = match &entry {
                Some((user, state)) => match here.get(&socket) {
                    Some((u, s, _)) if u == user && s == state => false,
                    _ => {
                        here.insert(
                            socket,
                            (user.clone(), state.clone(), lunora_store::now_ms()),
                        );
                        true
                    }
                },
                None => here.remove(&socket).is_some(),
            };
            if !changed {
                return;
            }
            let present: Vec<serde_json::Value> = here
                .values()
                .map(|(u, s, since)| {
                    serde_json::json!({"user_id": u, "state": s, "since": crate::util::rfc3339(*since)})
                })
                .collect();
            if here.is_empty() {
                map.remove(&key);
            }
            present
        };
        self.publish(
            organization_id,
            topic.to_string(),
            &catalog::WorkspaceEvent::new(
                "presence",
                serde_json::json!({"topic": topic, "present": present}),
            ),
        );
    }

    /// Topics where `socket` is present.
    fn presence_of(&self, organization_id: &str, socket: u64) -> Vec<String> {
        self.presence
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((org, _), here)| org == organization_id && here.contains_key(&socket))
                    .map(|((_, t), _)| t.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Events after `seq` still in the ring, oldest first; `None` if some were already dropped.
    fn since(&self, seq: u64) -> Option<Vec<Arc<Event>>> {
        let ring = self.ring.lock().ok()?;
        if let Some(first) = ring.front() {
            if first.seq > seq + 1 && seq > 0 {
                return None;
            }
        }
        Some(ring.iter().filter(|e| e.seq > seq).cloned().collect())
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        topics: Vec<String>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    Resume {
        after: u64,
    },
    /// `state`: `viewing`, `editing` or `left`.
    Presence {
        topic: String,
        state: String,
    },
    Ping,
}

/// The event stream (WebSocket). Send `{"type":"subscribe","topics":["org","channel:ID"]}`;
/// receive `{type, topic, data, at, seq}`. After a reconnect, send `{"type":"resume","after":SEQ}`
/// to get what was missed. Every event type and its JSON schema is described in the AsyncAPI
/// document at [`/api/v1/events/asyncapi.json`](/api/v1/events/asyncapi.json).
#[utoipa::path(
    get, path = "/events", tag = "events",
    security(("bearer" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 401, body = crate::Problem))
)]
async fn events(State(state): State<AppState>, who: Principal, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| client(state, who, socket))
}

/// The AsyncAPI 2.6 document of the event stream: every event type with its JSON schema,
/// generated from the types the server publishes.
#[utoipa::path(
    get, path = "/events/asyncapi.json", tag = "events",
    responses((status = 200, description = "AsyncAPI 2.6 document", content_type = "application/json", body = Object))
)]
async fn asyncapi_document() -> axum::Json<serde_json::Value> {
    axum::Json(asyncapi::document())
}

/// Whether `who` may receive events of `topic` in its organization.
async fn allowed(state: &AppState, who: &Principal, topic: &str) -> bool {
    match topic.split_once(':') {
        None if topic == "ads" => crate::ads::topic_allowed(state, who, topic).await,
        None => topic == "org" && who.can(Permission::ChannelsRead),
        Some(("user", id)) => id == who.user_id,
        Some(("channel", id)) => {
            who.can(Permission::ChannelsRead)
                && matches!(state.db.channel(&who.organization_id, id).await, Ok(Some(c))
                    if who.can(Permission::ChannelsManageAll) || c.owner_id.as_deref() == Some(&who.user_id))
        }
        Some(("camera", id)) => {
            who.can(Permission::ChannelsRead)
                && matches!(state.db.camera(&who.organization_id, id).await, Ok(Some(_)))
        }
        Some(("campaign" | "client" | "show" | "episode", _)) => {
            crate::ads::topic_allowed(state, who, topic).await
        }
        Some(("destination", id)) => {
            who.can(Permission::ChannelsRead)
                && matches!(state.db.destination(&who.organization_id, id).await, Ok(Some(d))
                    if who.can(Permission::ChannelsManageAll) || d.owner_id.as_deref() == Some(&who.user_id))
        }
        _ => false,
    }
}

fn text(v: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

async fn client(state: AppState, who: Principal, mut socket: WebSocket) {
    let mut rx = state.events.subscribe();
    let mut topics: HashSet<String> = HashSet::new();
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    let mut awaiting_pong = false;
    let socket_id = state.events.sockets.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!("lunora_event_clients").increment(1.0);
    let _ = socket
        .send(text(
            serde_json::json!({"type": "hello", "user_id": who.user_id}),
        ))
        .await;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                match msg {
                    Message::Text(t) => {
                        let reply = match serde_json::from_str::<ClientMessage>(&t) {
                            Ok(ClientMessage::Subscribe { topics: wanted }) => {
                                let mut granted = Vec::new();
                                let mut refused = Vec::new();
                                for t in wanted.into_iter().take(100) {
                                    if topics.len() < 200 && allowed(&state, &who, &t).await {
                                        topics.insert(t.clone());
                                        granted.push(t);
                                    } else {
                                        refused.push(t);
                                    }
                                }
                                serde_json::json!({"type": "subscribed", "topics": granted, "refused": refused})
                            }
                            Ok(ClientMessage::Unsubscribe { topics: gone }) => {
                                for t in &gone {
                                    topics.remove(t);
                                    state.events.set_presence(&who.organization_id, t, socket_id, None);
                                }
                                serde_json::json!({"type": "unsubscribed", "topics": gone})
                            }
                            Ok(ClientMessage::Resume { after }) => match state.events.since(after) {
                                Some(missed) => {
                                    let mut ok = true;
                                    for e in missed {
                                        if e.organization_id == who.organization_id && topics.contains(&e.topic) {
                                            if let Ok(v) = serde_json::to_value(e.as_ref()) {
                                                if socket.send(text(v)).await.is_err() {
                                                    ok = false;
                                                    break;
                                                }
                                            }
                                        }
                                    }
                                    if !ok {
                                        break;
                                    }
                                    serde_json::json!({"type": "resumed", "after": after})
                                }
                                None => serde_json::json!({"type": "resync", "detail": "events were missed; reload the state"}),
                            },
                            Ok(ClientMessage::Presence { topic, state: how }) => {
                                let permitted = topics.contains(&topic)
                                    || (topics.len() < 200 && allowed(&state, &who, &topic).await);
                                if !matches!(how.as_str(), "viewing" | "editing" | "left") {
                                    serde_json::json!({"type": "error", "detail": "presence state must be viewing, editing or left"})
                                } else if !permitted {
                                    serde_json::json!({"type": "error", "detail": format!("not allowed on {topic}")})
                                } else {
                                    // Announcing subscribes: whoever is present hears the others.
                                    topics.insert(topic.clone());
                                    let entry = (how != "left").then(|| (who.user_id.clone(), how.clone()));
                                    state.events.set_presence(&who.organization_id, &topic, socket_id, entry);
                                    serde_json::json!({"type": "presence_ack", "topic": topic, "state": how})
                                }
                            }
                            Ok(ClientMessage::Ping) => serde_json::json!({"type": "pong"}),
                            Err(e) => serde_json::json!({"type": "error", "detail": format!("unknown message: {e}")}),
                        };
                        if socket.send(text(reply)).await.is_err() {
                            break;
                        }
                    }
                    Message::Pong(_) => awaiting_pong = false,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            event = rx.recv() => match event {
                Ok(e) => {
                    if e.organization_id != who.organization_id || !topics.contains(&e.topic) {
                        continue;
                    }
                    let Ok(v) = serde_json::to_value(e.as_ref()) else { continue };
                    match tokio::time::timeout(Duration::from_secs(5), socket.send(text(v))).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(user = %who.user_id, missed = n, "event client too slow; closing");
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 4008,
                            reason: Utf8Bytes::from_static("too slow: reconnect and resume"),
                        })))
                        .await;
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    break;
                }
                awaiting_pong = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    for topic in state.events.presence_of(&who.organization_id, socket_id) {
        state
            .events
            .set_presence(&who.organization_id, &topic, socket_id, None);
    }
    metrics::gauge!("lunora_event_clients").decrement(1.0);
}
