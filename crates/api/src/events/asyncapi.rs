//! The AsyncAPI 2.6 description of `/api/v1/events`, built from [`super::catalog::CATALOG`].

use serde_json::{json, Map, Value};

use super::catalog::CATALOG;

/// Topic name patterns and what they carry.
const TOPICS: &[(&str, &str)] = &[
    (
        "org",
        "The organization's dashboard: camera status, sessions, alerts and `dashboard.update`.",
    ),
    (
        "channel:{id}",
        "One channel: its inputs, sources, destinations, sessions and recordings.",
    ),
    ("camera:{id}", "One camera's status."),
    ("destination:{id}", "One destination."),
    (
        "user:{id}",
        "The signed-in user's own notifications (only `user:` + their own id).",
    ),
];

/// A frame of the chat socket: (name, which way, summary, payload properties, required).
struct ChatFrame {
    kind: &'static str,
    from_client: bool,
    summary: &'static str,
    properties: fn() -> Value,
    required: &'static [&'static str],
}

/// Every frame of a stream's chat socket (`/api/v1/streams/{id}/chat/ws`, see
/// `social::chat_socket`), documented as messages named `chat.{type}`.
const CHAT_FRAMES: &[ChatFrame] = &[
    ChatFrame {
        kind: "hello",
        from_client: false,
        summary: "First frame: who you are and what you may do.",
        properties: || {
            json!({
                "stream_id": {"type": "string"},
                "user": {"oneOf": [
                    {"type": "null", "description": "Reading anonymously."},
                    {"type": "object", "required": ["id", "display_name"], "properties": {
                        "id": {"type": "string"}, "display_name": {"type": "string"}}}
                ]},
                "can_post": {"type": "boolean"},
                "can_moderate": {"type": "boolean"},
                "slow_mode_seconds": {"type": "integer", "minimum": 0},
                "max_chars": {"type": "integer", "minimum": 1},
                "auth_error": {"type": ["string", "null"], "description": "Why the credentials sent were not accepted (the socket then reads anonymously)."}
            })
        },
        required: &[
            "stream_id",
            "user",
            "can_post",
            "can_moderate",
            "slow_mode_seconds",
            "max_chars",
            "auth_error",
        ],
    },
    ChatFrame {
        kind: "message",
        from_client: false,
        summary: "A new chat message. `body` is plain text: render it as text, never as HTML.",
        properties: || json!({"message": {"$ref": "#/components/schemas/ChatMessageView"}}),
        required: &["message"],
    },
    ChatFrame {
        kind: "sent",
        from_client: false,
        summary: "Your message was accepted (it also arrives as `message`).",
        properties: || json!({"id": {"type": "string"}}),
        required: &["id"],
    },
    ChatFrame {
        kind: "deleted",
        from_client: false,
        summary: "A moderator removed a message: remove it from view.",
        properties: || json!({"id": {"type": "string"}, "stream_id": {"type": "string"}}),
        required: &["id", "stream_id"],
    },
    ChatFrame {
        kind: "timeout",
        from_client: false,
        summary: "A user may not post until `until`.",
        properties: || {
            json!({
                "user_id": {"type": "string"},
                "minutes": {"type": "integer", "minimum": 1},
                "until": {"type": "string", "format": "date-time"}
            })
        },
        required: &["user_id", "minutes", "until"],
    },
    ChatFrame {
        kind: "banned",
        from_client: false,
        summary: "A user was banned from the organization's chats.",
        properties: || json!({"user_id": {"type": "string"}}),
        required: &["user_id"],
    },
    ChatFrame {
        kind: "slow_mode",
        from_client: false,
        summary: "Slow mode changed: one message per `seconds` per user (0: off).",
        properties: || json!({"seconds": {"type": "integer", "minimum": 0}}),
        required: &["seconds"],
    },
    ChatFrame {
        kind: "error",
        from_client: false,
        summary: "Your frame was refused.",
        properties: || {
            json!({
                "code": {"type": "string", "enum": crate::social::Refusal::ALL.map(crate::social::Refusal::code)},
                "detail": {"type": "string"},
                "retry_after_ms": {"type": "integer", "minimum": 0}
            })
        },
        required: &["code", "detail"],
    },
    ChatFrame {
        kind: "pong",
        from_client: false,
        summary: "The answer to `ping`.",
        properties: || json!({}),
        required: &[],
    },
    ChatFrame {
        kind: "send",
        from_client: true,
        summary: "Post a message (signed-in members of the stream's organization).",
        properties: || json!({"body": {"type": "string", "maxLength": crate::social::MAX_CHARS}}),
        required: &["body"],
    },
    ChatFrame {
        kind: "ping",
        from_client: true,
        summary: "Asks for a `pong`.",
        properties: || json!({}),
        required: &[],
    },
];

/// The chat's messages and its channel, added to `messages` and `channels`.
fn add_chat(messages: &mut Map<String, Value>, channels: &mut Map<String, Value>) {
    let mut received = Vec::new();
    let mut sent = Vec::new();
    for f in CHAT_FRAMES {
        let name = format!("chat.{}", f.kind);
        let mut properties = (f.properties)();
        properties["type"] = json!({"type": "string", "const": f.kind});
        let mut required = vec!["type"];
        required.extend_from_slice(f.required);
        messages.insert(
            name.clone(),
            json!({
                "name": name,
                "title": f.kind,
                "summary": f.summary,
                "contentType": "application/json",
                "payload": {"type": "object", "required": required, "properties": properties},
            }),
        );
        let r = json!({"$ref": format!("#/components/messages/{name}")});
        if f.from_client {
            sent.push(r);
        } else {
            received.push(r);
        }
    }
    channels.insert(
        "chat/{stream_id}".to_string(),
        json!({
            "description": "A stream's live chat, its own WebSocket: anyone who may watch the \
                stream reads it; signed-in members of its organization post. A client that cannot \
                keep up is closed with code 4008, one silent past a ping with 1001.",
            "servers": ["chat"],
            "parameters": {"stream_id": {"description": "The stream (channel) id.", "schema": {"type": "string"}}},
            "subscribe": {
                "operationId": "receive_chat",
                "summary": "Frames the server sends",
                "message": {"oneOf": received},
            },
            "publish": {
                "operationId": "send_chat",
                "summary": "Frames a client sends",
                "message": {"oneOf": sent},
            },
        }),
    );
}

/// The AsyncAPI document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    let mut messages = Map::new();
    for ev in CATALOG {
        for (name, schema) in (ev.schemas)() {
            if let Ok(v) = serde_json::to_value(&schema) {
                schemas.insert(name, v);
            }
        }
        messages.insert(
            ev.kind.to_string(),
            json!({
                "name": ev.kind,
                "title": ev.kind,
                "summary": ev.summary,
                "contentType": "application/json",
                "x-topics": ev.topics,
                "payload": {
                    "type": "object",
                    "required": ["type", "topic", "data", "at", "seq"],
                    "properties": {
                        "type": {"type": "string", "const": ev.kind},
                        "topic": {"type": "string", "description": "The topic it was published on."},
                        "data": {"$ref": format!("#/components/schemas/{}", ev.schema)},
                        "at": {"type": "string", "format": "date-time"},
                        "seq": {"type": "integer", "minimum": 1, "description": "Send `{\"type\":\"resume\",\"after\":SEQ}` after a reconnect to get what was missed."}
                    }
                }
            }),
        );
    }
    let mut channels = Map::new();
    for (topic, description) in TOPICS {
        let pattern = topic.split(':').next().unwrap_or(topic);
        let refs: Vec<Value> = CATALOG
            .iter()
            .filter(|e| {
                e.topics
                    .iter()
                    .any(|t| t.split(':').next().unwrap_or(t) == pattern)
            })
            .map(|e| json!({"$ref": format!("#/components/messages/{}", e.kind)}))
            .collect();
        let mut channel = json!({
            "description": description,
            "servers": ["lunora"],
            "subscribe": {
                "operationId": format!("receive_{}", pattern),
                "summary": format!("Events on `{topic}`"),
                "message": {"oneOf": refs},
            },
        });
        if topic.contains("{id}") {
            channel["parameters"] = json!({"id": {"description": "The id of the resource.", "schema": {"type": "string"}}});
        }
        channels.insert(topic.to_string(), channel);
    }
    add_chat(&mut messages, &mut channels);
    for (name, schema) in super::catalog::schemas_of::<crate::social::ChatMessageView>() {
        if let Ok(v) = serde_json::to_value(&schema) {
            schemas.insert(name, v);
        }
    }
    json!({
        "asyncapi": "2.6.0",
        "id": "urn:lunora:events",
        "info": {
            "title": "Lunora real-time events",
            "version": crate::VERSION,
            "description": "WebSocket at `/api/v1/events` (bearer token or session cookie). \
                After the server's `{\"type\":\"hello\"}`, send `{\"type\":\"subscribe\",\"topics\":[…]}`; \
                the answer `{\"type\":\"subscribed\",\"topics\":[…],\"refused\":[…]}` lists what you may see. \
                Each event is `{type, topic, data, at, seq}`. `{\"type\":\"resume\",\"after\":SEQ}` replays \
                missed events (or answers `resync`); `{\"type\":\"ping\"}` answers `pong`. The server pings \
                every 20 s; a client that cannot keep up is closed with code 4008.",
            "license": {"name": "AGPL-3.0-only"}
        },
        "servers": {
            "lunora": {
                "url": "{host}/api/v1/events",
                "protocol": "ws",
                "variables": {"host": {"default": "localhost:8080"}},
                "security": [{"bearer": []}]
            },
            "chat": {
                "url": "{host}/api/v1/streams/{stream_id}/chat/ws",
                "protocol": "ws",
                "description": "A stream's chat (bearer token, session cookie, or none to read).",
                "variables": {
                    "host": {"default": "localhost:8080"},
                    "stream_id": {"description": "The stream (channel) id."}
                }
            }
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or API token"}}
        }
    })
}
