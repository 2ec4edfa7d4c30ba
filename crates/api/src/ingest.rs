//! The control plane's side of ingest: which stream key may publish to which channel input, and
//! who may play a channel over RTMP. Handed to the media engine as its [`Authorizer`].

use std::sync::Arc;

use hmac_sha256::HMAC;
use lunora_media::rtmp_server::{
    AuthFuture, Authorizer, Denied, IngestEvent, PlayRequest, PublishGrant, PublishRequest,
};
use lunora_store::Db;
use uuid::Uuid;

/// Signs and checks play tokens: `{expires_unix}.{hex hmac}` over the channel id.
#[derive(Clone)]
pub struct PlayTokens {
    key: [u8; 32],
}

impl PlayTokens {
    pub fn new(key: [u8; 32]) -> Self {
        PlayTokens { key }
    }

    pub fn issue(&self, channel_id: &str, expires_unix: i64) -> String {
        format!(
            "{expires_unix}.{}",
            lunora_store::crypto::hex(&self.mac(channel_id, expires_unix))
        )
    }

    fn mac(&self, channel_id: &str, expires_unix: i64) -> [u8; 32] {
        HMAC::mac(
            format!("play:{channel_id}:{expires_unix}").as_bytes(),
            self.key,
        )
    }

    /// Whether `token` grants playing `channel_id` at `now_unix`.
    pub fn check(&self, channel_id: &str, token: &str, now_unix: i64) -> bool {
        let Some((exp, sig)) = token.split_once('.') else {
            return false;
        };
        let Ok(exp) = exp.parse::<i64>() else {
            return false;
        };
        if exp < now_unix {
            return false;
        }
        let want = lunora_store::crypto::hex(&self.mac(channel_id, exp));
        constant_time_eq(want.as_bytes(), sig.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Database-backed [`Authorizer`].
pub struct DbAuthorizer {
    pub db: Db,
    pub play_tokens: PlayTokens,
    pub events: Arc<crate::events::EventHub>,
}

impl DbAuthorizer {
    pub fn new(db: Db, play_tokens: PlayTokens, events: Arc<crate::events::EventHub>) -> Arc<Self> {
        Arc::new(DbAuthorizer {
            db,
            play_tokens,
            events,
        })
    }

    /// Publishes `channel.input` on the channel's topic (the organization is looked up).
    fn input_event(&self, channel_id: Uuid, data: crate::events::catalog::ChannelInputEvent) {
        let db = self.db.clone();
        let hub = self.events.clone();
        tokio::spawn(async move {
            if let Ok(Some(c)) = db.channel_any_org(&channel_id.to_string()).await {
                hub.publish(&c.organization_id, format!("channel:{}", c.id), &data);
            }
        });
    }
}

const APP: &str = "live";

/// Records a refused publish in the audit log (the key itself never; at most its last 4).
async fn audit_refusal(
    db: &Db,
    organization_id: Option<String>,
    channel_id: Option<String>,
    req: &PublishRequest,
    why: &str,
) {
    let entry = lunora_store::AuditEntry {
        id: String::new(),
        organization_id,
        actor_id: None,
        api_token_id: None,
        action: "ingest.publish_refused".into(),
        method: "RTMP".into(),
        resource: format!("rtmp://{APP}/{}", mask(&req.key)),
        resource_id: channel_id,
        result: "denied".into(),
        status: 0,
        ip: req.peer.ip().to_string(),
        user_agent: String::new(),
        request_id: None,
        details: Some(serde_json::json!({ "reason": why }).to_string()),
        created_at: 0,
    };
    if let Err(e) = db.insert_audit(&entry).await {
        tracing::error!(error = %e, "could not audit a refused publish");
    }
}

fn mask(key: &str) -> String {
    format!("****{}", lunora_store::crypto::last4(key))
}

impl Authorizer for DbAuthorizer {
    fn authorize_publish(&self, req: PublishRequest) -> AuthFuture<Result<PublishGrant, Denied>> {
        let db = self.db.clone();
        Box::pin(async move {
            if req.app != APP {
                return Err(Denied(format!(
                    "unknown application `{}`: publish to rtmp://HOST/{APP}/STREAM_KEY",
                    req.app
                )));
            }
            let found = db.input_by_publish_key(&req.key).await.map_err(|e| {
                tracing::error!(error = %e, "stream key lookup failed");
                Denied("the server cannot check stream keys right now".into())
            })?;
            let Some((input, org)) = found else {
                metrics::counter!("lunora_ingest_rejected_total", "reason" => "bad_key")
                    .increment(1);
                tracing::warn!(
                    peer = %req.peer,
                    key_last4 = %lunora_store::crypto::last4(&req.key),
                    "publish refused: unknown stream key"
                );
                audit_refusal(&db, None, None, &req, "unknown stream key").await;
                return Err(Denied("the stream key is not valid".into()));
            };
            if !input.enabled {
                metrics::counter!("lunora_ingest_rejected_total", "reason" => "disabled")
                    .increment(1);
                let channel = Some(input.channel_id.clone());
                audit_refusal(&db, Some(org), channel, &req, "input disabled").await;
                return Err(Denied("this input is disabled".into()));
            }
            let channel_id = Uuid::parse_str(&input.channel_id)
                .map_err(|_| Denied("the channel id is malformed".into()))?;
            Ok(PublishGrant {
                channel_id,
                input: input.role,
            })
        })
    }

    fn authorize_play(&self, req: PlayRequest) -> AuthFuture<Result<Uuid, Denied>> {
        let db = self.db.clone();
        let tokens = self.play_tokens.clone();
        Box::pin(async move {
            if req.app != APP {
                return Err(Denied(format!("unknown application `{}`", req.app)));
            }
            let (name, query) = match req.name.split_once('?') {
                Some((n, q)) => (n, q),
                None => (req.name.as_str(), ""),
            };
            let not_found = || Denied("no such channel, or it needs a play token".into());
            let channel_id = Uuid::parse_str(name).map_err(|_| not_found())?;
            let channel = db
                .channel_any_org(&channel_id.to_string())
                .await
                .map_err(|_| Denied("the server cannot check channels right now".into()))?
                .ok_or_else(not_found)?;
            if channel.visibility == "public" {
                return Ok(channel_id);
            }
            let token = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .unwrap_or("");
            if tokens.check(&channel.id, token, lunora_store::now_ms() / 1000) {
                Ok(channel_id)
            } else {
                Err(not_found())
            }
        })
    }

    fn event(&self, event: IngestEvent) {
        match event {
            IngestEvent::PublishStarted {
                channel_id, input, ..
            } => {
                metrics::counter!("lunora_ingest_publish_total").increment(1);
                tracing::info!(channel = %channel_id, %input, "input live");
                self.input_event(
                    channel_id,
                    crate::events::catalog::ChannelInputEvent {
                        input,
                        state: "live".into(),
                        reason: None,
                    },
                );
            }
            IngestEvent::PublishStopped {
                channel_id,
                input,
                reason,
                ..
            } => {
                tracing::info!(channel = %channel_id, %input, %reason, "input stopped");
                self.input_event(
                    channel_id,
                    crate::events::catalog::ChannelInputEvent {
                        input,
                        state: "idle".into(),
                        reason: Some(reason),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_tokens_bind_channel_and_expiry() {
        let t = PlayTokens::new([3u8; 32]);
        let tok = t.issue("chan-a", 2_000);
        assert!(t.check("chan-a", &tok, 1_999));
        assert!(!t.check("chan-a", &tok, 2_001), "expired");
        assert!(!t.check("chan-b", &tok, 1_000), "other channel");
        assert!(!t.check("chan-a", "2000.deadbeef", 1_000), "forged");
        assert!(!t.check("chan-a", "garbage", 1_000));
        let other = PlayTokens::new([4u8; 32]);
        assert!(!other.check("chan-a", &tok, 1_000), "other key");
    }
}
