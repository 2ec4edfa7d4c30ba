//! A local webhook receiver that records what Lunora posts, and the signature check.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// (timestamp header, signature header, raw body) per delivery.
pub type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on a free loopback port: its URL and what it received.
pub async fn receiver() -> (String, Received) {
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let got = got.clone();
            move |headers: axum::http::HeaderMap, body: String| {
                let got = got.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    got.lock().unwrap().push((
                        h("x-lunora-timestamp"),
                        h("x-lunora-signature"),
                        body,
                    ));
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), got)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first delivery whose body satisfies `matches`, within `secs`: (timestamp, signature,
/// raw body).
pub async fn wait_for(
    got: &Received,
    what: &str,
    secs: u64,
    matches: impl Fn(&Value) -> bool,
) -> (String, String, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let found = got
            .lock()
            .unwrap()
            .iter()
            .find(|(_, _, b)| serde_json::from_str::<Value>(b).is_ok_and(|v| matches(&v)))
            .cloned();
        if let Some(hit) = found {
            return hit;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} webhook within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts `X-Lunora-Signature` is `sha256=` HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
pub fn assert_signed(secret: &str, (ts, sig, body): &(String, String, String)) {
    assert!(!ts.is_empty(), "no X-Lunora-Timestamp");
    let expected = hmac_sha256::HMAC::mac(format!("{ts}.{body}").as_bytes(), secret.as_bytes());
    assert_eq!(
        *sig,
        format!("sha256={}", hex(&expected)),
        "webhook signature"
    );
}
