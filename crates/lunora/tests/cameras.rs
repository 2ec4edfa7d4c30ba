//! Cameras end to end: CSV onboarding with a per-row report, real FFmpeg "cameras" publishing,
//! online/offline over the WebSocket, status, bulk operations and key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::media::Publisher;
use common::*;
use futures::{SinkExt, StreamExt};
use lunora_testkit::{db_tests, DbKind, Server};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

db_tests!(cameras_are_validated_and_scoped);

fn rtmp_url(server: &Server, publish_url: &str) -> String {
    // The publish URL names the port the server bound (the tests configure port 0).
    let port = server.rtmp_addr().unwrap().port();
    assert!(
        publish_url.contains(&format!(":{port}/live/")),
        "{publish_url}"
    );
    let key = publish_url.rsplit('/').next().unwrap();
    format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap())
}

async fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let res = server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn post(server: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = server
        .client
        .post(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_onboarding_status_and_offline_detection() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;

    // Six good rows, one without a name, one repeating a serial number.
    let csv = "name,brand,model,serial_number,location,tags,recording_policy\n\
               Lobby,Axis,P1375,SN-1,HQ,entrance;indoor,off\n\
               Dock,Hikvision,DS-2CD,SN-2,Warehouse,outdoor,continuous\n\
               Gate,Axis,Q1786,SN-3,HQ,entrance;outdoor,off\n\
               Roof,Bosch,Flexidome,SN-4,HQ,outdoor,off\n\
               ,Axis,P1375,SN-5,HQ,,off\n\
               Hall,Axis,P1375,SN-1,HQ,,off\n\
               Yard,Bosch,Flexidome,SN-7,Warehouse,outdoor,off\n\
               Lab,Sony,SNC,SN-8,HQ,indoor,off\n";
    let res = server
        .client
        .post(server.url("/api/v1/cameras/import"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["failed"].as_u64()),
        (Some(6), Some(2)),
        "{report}"
    );
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(
        (rows[4]["row"].as_u64(), rows[4]["field"].as_str()),
        (Some(5), Some("name"))
    );
    assert!(
        rows[5]["error"].as_str().unwrap().contains("serial number"),
        "{}",
        rows[5]
    );
    // A failed row left nothing behind: six cameras, six channels.
    let (_, list) = get(&server, &token, "/api/v1/cameras?limit=200").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 6);
    let (_, channels) = get(&server, &token, "/api/v1/channels?limit=200").await;
    assert_eq!(channels["items"].as_array().unwrap().len(), 6);
    let (_, outdoor) = get(&server, &token, "/api/v1/cameras?tag=outdoor").await;
    assert_eq!(outdoor["items"].as_array().unwrap().len(), 4, "{outdoor}");
    // Keys are shown in the report only.
    assert!(list.to_string().contains("/live/****"));

    // The WebSocket sees cameras come and go.
    let mut req = format!("ws://{}/api/v1/events", server.http)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "topics": ["org"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();

    let ok_rows: Vec<&Value> = rows.iter().filter(|r| r["ok"] == true).collect();
    let mut publishers: Vec<Publisher> = ok_rows
        .iter()
        .take(3)
        .map(|r| Publisher::start(&rtmp_url(&server, r["publish_url"].as_str().unwrap())))
        .collect();
    let watched = ok_rows[0]["camera_id"].as_str().unwrap().to_string();

    let mut online = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while online.len() < 3 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("cameras did not come online")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "camera.status" && v["data"]["online"] == true {
                online.insert(v["data"]["camera_id"].as_str().unwrap().to_string());
            }
        }
    }
    let (_, status) = get(
        &server,
        &token,
        &format!("/api/v1/cameras/{watched}/status"),
    )
    .await;
    assert_eq!(status["online"], true, "{status}");
    assert_eq!(
        (status["width"].as_u64(), status["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(status["codec"], "h264");

    // One camera dies: offline within the documented bound (3 s without frames, checked
    // every second), then back online by itself.
    publishers[0].kill();
    let killed_at = tokio::time::Instant::now();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no offline event")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "camera.status" && v["data"]["camera_id"] == watched.as_str() {
                assert_eq!(v["data"]["online"], false);
                break;
            }
        }
    }
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    let (_, status) = get(
        &server,
        &token,
        &format!("/api/v1/cameras/{watched}/status"),
    )
    .await;
    assert_eq!(status["online"], false);
    publishers[0] = Publisher::start(&rtmp_url(
        &server,
        ok_rows[0]["publish_url"].as_str().unwrap(),
    ));
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("no online event")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "camera.status" && v["data"]["camera_id"] == watched.as_str() {
                assert_eq!(v["data"]["online"], true);
                break;
            }
        }
    }

    // Bulk: rotate the watched camera's key (its old key stops working) and disable another.
    let second = ok_rows[1]["camera_id"].as_str().unwrap().to_string();
    let (s, res) = post(
        &server,
        &token,
        "/api/v1/cameras/bulk",
        json!({"action": "rotate_keys", "ids": [watched, "nope"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (res[0]["ok"].as_bool(), res[1]["ok"].as_bool()),
        (Some(true), Some(false)),
        "{res}"
    );
    let mut old = Publisher::start(&rtmp_url(
        &server,
        ok_rows[0]["publish_url"].as_str().unwrap(),
    ));
    assert!(
        old.wait_exit(Duration::from_secs(15)).is_some(),
        "the old key still publishes"
    );
    let _new = Publisher::start(&rtmp_url(&server, res[0]["publish_url"].as_str().unwrap()));
    let (s, _) = post(
        &server,
        &token,
        "/api/v1/cameras/bulk",
        json!({"action": "disable", "ids": [second]}),
    )
    .await;
    assert_eq!(s, 200);
    let mut disabled = Publisher::start(&rtmp_url(
        &server,
        ok_rows[1]["publish_url"].as_str().unwrap(),
    ));
    assert!(
        disabled.wait_exit(Duration::from_secs(15)).is_some(),
        "a disabled camera publishes"
    );
}

async fn cameras_are_validated_and_scoped(db: DbKind) {
    let server = start(db).await;
    let token = admin_token(&server).await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "a", "tags": ["ok", "bad,tag"]}), "tags[1]"),
        (
            json!({"name": "a", "recording_policy": "sometimes"}),
            "recording_policy",
        ),
        (
            json!({"name": "a", "pull_url": "http://cam/stream"}),
            "pull_url",
        ),
        (
            json!({"name": "a", "serial_number": "x".repeat(101)}),
            "serial_number",
        ),
    ] {
        let (s, p) = post(&server, &token, "/api/v1/cameras", body.clone()).await;
        assert_eq!(
            (s, p["field"].as_str()),
            (400, Some(field)),
            "{body} -> {p}"
        );
    }
    let (s, cam) = post(
        &server,
        &token,
        "/api/v1/cameras",
        json!({"name": "Lobby", "brand": "Axis", "serial_number": "SN-9", "pull_url": "rtsp://10.0.0.5/stream1"}),
    )
    .await;
    assert_eq!(s, 201, "{cam}");
    assert!(cam["publish_url"].as_str().unwrap().contains("/live/cam_"));
    assert_eq!(cam["has_pull_url"], true);
    assert!(
        !cam.to_string().contains("10.0.0.5"),
        "pull URL leaked: {cam}"
    );
    let id = cam["id"].as_str().unwrap();
    let (s, dup) = post(
        &server,
        &token,
        "/api/v1/cameras",
        json!({"name": "Other", "serial_number": "SN-9"}),
    )
    .await;
    assert_eq!((s, dup["code"].as_str()), (409, Some("conflict")), "{dup}");
    // Editing with a stale ETag is refused.
    let res = server
        .client
        .patch(server.url(&format!("/api/v1/cameras/{id}")))
        .bearer_auth(&token)
        .header("if-match", "\"99\"")
        .json(&json!({"location": "Annex"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    let (s, _) = get(
        &server,
        &token,
        "/api/v1/cameras/0190c3a4-0000-7000-8000-000000000000",
    )
    .await;
    assert_eq!(s, 404);
    let res = server
        .client
        .delete(server.url(&format!("/api/v1/cameras/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (s, _) = get(&server, &token, &format!("/api/v1/cameras/{id}")).await;
    assert_eq!(s, 404);
}
