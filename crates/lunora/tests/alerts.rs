//! Alerts: a camera that dies raises `camera_offline` (event stream, API, signed webhook to a
//! local receiver) and resolves it by itself when it comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::media::Publisher;
use common::*;
use lunora_testkit::DbKind;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_camera_raises_and_resolves_an_alert_with_a_signed_webhook() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let (hook_url, got) = webhook::receiver().await;
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
    let delivery =
        webhook::wait_for(&got, "alert.raised", 20, |b| b["type"] == "alert.raised").await;
    webhook::assert_signed(&secret, &delivery);
    let body: Value = serde_json::from_str(&delivery.2).unwrap();
    assert_eq!(body["alert"]["rule"], "camera_offline");
    assert_eq!(body["alert"]["subject"], format!("camera:{cam_id}"));

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
    let (_, _, raw) = webhook::wait_for(&got, "alert.resolved", 30, |b| {
        b["type"] == "alert.resolved"
    })
    .await;
    let body: Value = serde_json::from_str(&raw).unwrap();
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
