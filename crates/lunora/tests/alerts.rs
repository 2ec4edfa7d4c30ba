//! Alerts: a camera that dies raises `camera_offline` (event stream, API, signed webhook to a
//! local receiver) and resolves it by itself when it comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::media::Publisher;
use common::*;
use lunora_testkit::DbKind;
use serde_json::{json, Value};

type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on a free loopback port recording (timestamp, signature, body).
async fn receiver() -> (String, Received) {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_hook(got: &Received, kind: &str, secs: u64) -> (String, String, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((ts, sig, body)) = got
            .lock()
            .unwrap()
            .iter()
            .find(|(_, _, b)| b.contains(kind))
            .cloned()
        {
            return (ts, sig, serde_json::from_str(&body).unwrap());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind} webhook within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_camera_raises_and_resolves_an_alert_with_a_signed_webhook() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let (hook_url, got) = receiver().await;
    let res = server
        .client
        .post(server.url("/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": hook_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let res = server
        .client
        .post(server.url("/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": "ftp://nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let cam: Value = server
        .client
        .post(server.url("/api/v1/cameras"))
        .bearer_auth(&token)
        .json(&json!({"name": "Gate"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = cam["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let url = format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap());
    let mut publisher = Publisher::start(&url);
    let cam_id = cam["id"].as_str().unwrap().to_string();
    let status_url = server.url(&format!("/api/v1/cameras/{cam_id}/status"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s: Value = server
            .client
            .get(&status_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["online"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "camera never online"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    publisher.kill();
    let (ts, sig, body) = wait_hook(&got, "alert.raised", 20).await;
    assert_eq!(body["alert"]["rule"], "camera_offline");
    assert_eq!(body["alert"]["subject"], format!("camera:{cam_id}"));
    let raw = got
        .lock()
        .unwrap()
        .iter()
        .find(|(_, _, b)| b.contains("alert.raised"))
        .unwrap()
        .2
        .clone();
    let expected = hmac_sha256::HMAC::mac(format!("{ts}.{raw}").as_bytes(), secret.as_bytes());
    assert_eq!(
        sig,
        format!("sha256={}", hex(&expected)),
        "webhook signature"
    );

    let active: Value = server
        .client
        .get(server.url("/api/v1/alerts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alert = &active["items"][0];
    assert_eq!(
        (alert["rule"].as_str(), alert["state"].as_str()),
        (Some("camera_offline"), Some("active")),
        "{active}"
    );
    let id = alert["id"].as_str().unwrap();
    let acked: Value = server
        .client
        .post(server.url(&format!("/api/v1/alerts/{id}/acknowledge")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acked["state"], "acknowledged");

    // The camera comes back: the alert resolves by itself.
    let _again = Publisher::start(&url);
    let (_, _, body) = wait_hook(&got, "alert.resolved", 30).await;
    assert_eq!(body["alert"]["id"], id);
    let history: Value = server
        .client
        .get(server.url("/api/v1/alerts?state=history"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"][0]["id"], id);
    assert!(history["items"][0]["resolved_at"].is_string());
}
