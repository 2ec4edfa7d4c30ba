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
