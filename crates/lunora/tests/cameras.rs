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

/// The documented bound (README "Cameras"): a camera is offline within 5 s of its last frame
/// (3 s of silence, seen by the once-a-second monitor, plus a second of margin).
const OFFLINE_BOUND: Duration = Duration::from_secs(5);

/// The proof of the issue: twenty cameras from one CSV publish with FFmpeg; one dies; the
/// WebSocket sees it offline within the documented bound, an alert is raised (event stream,
/// in-app notification, signed webhook to a local receiver); it comes back online and the alert
/// resolves by itself. Every event received matches its schema in the AsyncAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cameras_one_dies_is_alerted_and_comes_back() {
    use common::webhook;
    use common::ws;

    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let me = call(&server, "GET", "/api/v1/users/me", Some(&token), None).await;
    let my_id = me.body["id"].as_str().unwrap().to_string();
    let schemas = ws::Schemas::fetch(&server).await;

    let (hook_url, got) = webhook::receiver().await;
    let (s, hook) = post(
        &server,
        &token,
        "/api/v1/webhooks",
        json!({"url": hook_url}),
    )
    .await;
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();

    let mut csv = String::from("name,brand,model,serial_number,location,tags\n");
    for i in 1..=20 {
        csv.push_str(&format!(
            "Cam {i:02},Axis,P1375,SN-{i:04},Site {},outdoor\n",
            i % 3
        ));
    }
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
    assert_eq!(report["created"], 20, "{report}");
    let rows = report["rows"].as_array().unwrap().clone();

    let mut events = ws::connect(&server, &token).await;
    let me_topic = format!("user:{my_id}");
    let sub = ws::subscribe(&mut events, &["org", &me_topic]).await;
    assert_eq!(sub["topics"], json!(["org", me_topic]), "{sub}");
    let mut seen: Vec<Value> = Vec::new();

    let mut publishers: Vec<Publisher> = rows
        .iter()
        .map(|r| Publisher::start(&rtmp_url(&server, r["publish_url"].as_str().unwrap())))
        .collect();
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["camera_id"].as_str().unwrap().to_string())
        .collect();

    // All twenty come online, and the dashboard says so.
    let mut online = std::collections::HashSet::new();
    let mut dashboard_online = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while online.len() < 20 || dashboard_online < 20 {
        let v = ws::next_message(&mut events, deadline)
            .await
            .unwrap_or_else(|| panic!("online: {online:?}, dashboard: {dashboard_online}"));
        if v["type"] == "camera.status" && v["data"]["online"] == true {
            online.insert(v["data"]["camera_id"].as_str().unwrap().to_string());
        }
        if v["type"] == "dashboard.update" {
            dashboard_online = v["data"]["cameras_online"].as_u64().unwrap();
            assert_eq!(v["data"]["cameras_total"], 20, "{v}");
        }
        seen.push(v);
    }
    let (_, list) = get(&server, &token, "/api/v1/cameras?limit=100").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert!(
        items.iter().all(|c| c["status"]["online"] == true),
        "{list}"
    );

    // Camera 7 dies.
    let victim = ids[6].clone();
    publishers[6].kill();
    let killed = tokio::time::Instant::now();
    let mut offline_after = None;
    let mut raised = None;
    let mut notified = false;
    let mut dashboard_offline = false;
    // Alerts for cameras other than the victim, each until it resolves. Another camera can
    // really go quiet for the offline threshold (seen once in CI, with twenty FFmpeg publishers
    // and the other test binaries on two cores): its alert is right, and it must resolve once
    // its frames flow again.
    let mut other_alerts = std::collections::HashSet::new();
    let victim_subject = format!("camera:{victim}");
    let track_others = |v: &Value, others: &mut std::collections::HashSet<String>| {
        let id = v["data"]["id"].as_str().unwrap_or_default().to_string();
        if v["type"] == "alert.raised" && v["data"]["subject"] != victim_subject.as_str() {
            eprintln!(
                "another camera alerted: {v}\nserver log (tail):\n{}",
                tail(&server.logs(), 40)
            );
            others.insert(id);
        } else if v["type"] == "alert.resolved" {
            others.remove(&id);
        }
    };
    let deadline = killed + Duration::from_secs(30);
    while offline_after.is_none() || raised.is_none() || !notified || !dashboard_offline {
        let v = ws::next_message(&mut events, deadline)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "after the kill: offline {offline_after:?}, alert {raised:?}, \
                 notification {notified}, dashboard {dashboard_offline}"
                )
            });
        track_others(&v, &mut other_alerts);
        match v["type"].as_str().unwrap() {
            "camera.status" if v["data"]["camera_id"] == victim.as_str() => {
                assert_eq!(v["data"]["online"], false, "{v}");
                offline_after = Some(killed.elapsed());
            }
            "alert.raised" => {
                assert_eq!(v["data"]["rule"], "camera_offline", "{v}");
                if v["data"]["subject"] == victim_subject.as_str() {
                    raised = Some(v["data"]["id"].as_str().unwrap().to_string());
                }
            }
            "notification" => {
                assert_eq!(v["topic"], me_topic.as_str());
                assert_eq!(v["data"]["kind"], "alert.raised", "{v}");
                notified = true;
            }
            "dashboard.update" if v["data"]["cameras_offline"] == 1 => {
                assert_eq!(v["data"]["cameras_online"], 19, "{v}");
                assert!(
                    v["data"]["active_alerts"].as_u64() <= Some(1 + other_alerts.len() as u64),
                    "{v}"
                );
                dashboard_offline = true;
            }
            _ => {}
        }
        seen.push(v);
    }
    let offline_after = offline_after.unwrap();
    assert!(
        offline_after <= OFFLINE_BOUND,
        "offline seen after {offline_after:?}, documented bound {OFFLINE_BOUND:?}"
    );
    let alert_id = raised.unwrap();

    // The webhook receiver got the alert, signed.
    let delivery = webhook::wait_for(&got, "alert.raised", 30, |b| {
        b["type"] == "alert.raised" && b["alert"]["id"] == alert_id.as_str()
    })
    .await;
    webhook::assert_signed(&secret, &delivery);
    let body: Value = serde_json::from_str(&delivery.2).unwrap();
    assert_eq!(body["alert"]["subject"], format!("camera:{victim}"));
    // And the in-app notification is listed for me.
    let mine = call(
        &server,
        "GET",
        "/api/v1/notifications?unread=true",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(mine.status, 200, "{mine:?}");
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["subject"] == format!("alert:{alert_id}")),
        "{mine:?}"
    );

    // It comes back: online again and the alert resolves by itself.
    publishers[6] = Publisher::start(&rtmp_url(&server, rows[6]["publish_url"].as_str().unwrap()));
    let mut back = false;
    let mut resolved = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !back || !resolved || !other_alerts.is_empty() {
        let v = ws::next_message(&mut events, deadline)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "after the restart: online {back}, resolved {resolved}, \
                     other cameras' alerts still raised: {other_alerts:?}"
                )
            });
        if v["type"] == "camera.status" && v["data"]["camera_id"] == victim.as_str() {
            assert_eq!(v["data"]["online"], true, "{v}");
            back = true;
        }
        if v["type"] == "alert.resolved" && v["data"]["id"] == alert_id.as_str() {
            assert_eq!(v["data"]["state"], "resolved");
            resolved = true;
        }
        track_others(&v, &mut other_alerts);
        seen.push(v);
    }
    let delivery = webhook::wait_for(&got, "alert.resolved", 30, |b| {
        b["type"] == "alert.resolved" && b["alert"]["id"] == alert_id.as_str()
    })
    .await;
    webhook::assert_signed(&secret, &delivery);
    let (_, status) = get(&server, &token, &format!("/api/v1/cameras/{victim}/status")).await;
    assert_eq!(status["online"], true, "{status}");
    let (_, list) = get(&server, &token, "/api/v1/cameras?limit=100").await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"]["online"] == true),
        "{list}"
    );

    // Every event received is described by the AsyncAPI document and matches its schema.
    let events_seen: Vec<&Value> = seen.iter().filter(|v| v["seq"].is_u64()).collect();
    for kind in [
        "camera.status",
        "alert.raised",
        "alert.resolved",
        "notification",
        "dashboard.update",
    ] {
        assert!(
            events_seen.iter().any(|v| v["type"] == kind),
            "no {kind} among the events"
        );
    }
    for v in events_seen {
        schemas.check(v);
    }
}

/// GStreamer's RTSP server (python3-gi + gst-rtsp-server, see scripts/deps.sh) playing an IP
/// camera: H.264 320x180 at 15 fps on `rtsp://USER:PASSWORD@127.0.0.1:PORT/cam`.
const RTSP_CAMERA: &str = r#"
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib

Gst.init(None)
port, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=15/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast bitrate=300 key-int-max=15 "
    "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(True)
auth = GstRtspServer.RTSPAuth()
token = GstRtspServer.RTSPToken()
token.set_string("media.factory.role", "camera")
auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
server.set_auth(auth)
factory.add_role_from_structure(
    Gst.Structure.new_from_string(
        "camera, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    )
)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit("cannot listen")
print("ready", flush=True)
GLib.MainLoop().run()
"#;

/// The RTSP camera, killed on drop.
struct RtspCamera {
    child: std::process::Child,
    port: u16,
}

impl RtspCamera {
    fn start(user: &str, password: &str) -> RtspCamera {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("lunora-rtsp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("rtsp_camera.py");
        std::fs::write(&script, RTSP_CAMERA).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("/usr/bin/python3")
            .arg(&script)
            .args([&port.to_string(), user, password])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3 (run scripts/deps.sh test for GStreamer's RTSP server)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the RTSP server did not start (scripts/deps.sh test installs python3-gi and gir1.2-gst-rtsp-server-1.0)"
        );
        RtspCamera { child, port }
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// FFmpeg pulls (children of `pid` with `-rtsp_transport` on their command line) and their
/// command lines.
fn pulls_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if ppid == pid && state != "Z" && cmdline.contains("-rtsp_transport") {
            out.push(cmdline);
        }
    }
    out
}

async fn wait_until<F: Fn(&Value) -> bool>(
    server: &Server,
    token: &str,
    path: &str,
    secs: u64,
    what: &str,
    ok: F,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, v) = get(server, token, path).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {secs}s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A camera that only serves RTSP is pulled by a supervised FFmpeg into its channel: it goes
/// online with the camera's picture; the password in its URL never shows in answers or logs; a
/// wrong path shows "RTSP server refused: 404 Not Found"; disabling or deleting the camera kills
/// its FFmpeg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_serving_rtsp_is_pulled_and_its_errors_are_in_words() {
    let password = "Pa55-rtsp-secret";
    let rtsp = RtspCamera::start("cam", password);
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let pid = server.pid().unwrap();
    let url = format!("rtsp://cam:{password}@127.0.0.1:{}/cam", rtsp.port);
    let (s, cam) = post(
        &server,
        &token,
        "/api/v1/cameras",
        json!({"name": "Porch", "pull_url": url}),
    )
    .await;
    assert_eq!(s, 201, "{cam}");
    assert!(!cam.to_string().contains(password), "{cam}");
    let id = cam["id"].as_str().unwrap().to_string();
    let status = wait_until(
        &server,
        &token,
        &format!("/api/v1/cameras/{id}/status"),
        60,
        "the pulled camera online",
        |s| s["online"] == true && s["pull"]["state"] == "pulling",
    )
    .await;
    assert_eq!(
        (status["width"].as_u64(), status["height"].as_u64()),
        (Some(320), Some(180)),
        "{status}"
    );
    assert_eq!(status["codec"], "h264");
    assert_eq!(
        status["pull"]["url"],
        format!("rtsp://****@127.0.0.1:{}/cam", rtsp.port)
    );
    assert!(!status.to_string().contains(password), "{status}");
    let running = pulls_of(pid);
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(running[0].contains("-rtsp_transport tcp"), "{running:?}");

    // A wrong path: the status says what the RTSP server answered, and keeps retrying.
    let wrong = format!("rtsp://cam:{password}@127.0.0.1:{}/nope", rtsp.port);
    let (s, bad) = post(
        &server,
        &token,
        "/api/v1/cameras",
        json!({"name": "Shed", "pull_url": wrong}),
    )
    .await;
    assert_eq!(s, 201, "{bad}");
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let status = wait_until(
        &server,
        &token,
        &format!("/api/v1/cameras/{bad_id}/status"),
        60,
        "the refusal in words",
        |s| {
            s["pull"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("RTSP server refused: 404 Not Found"))
        },
    )
    .await;
    assert_eq!(status["online"], false);
    assert!(!status.to_string().contains(password), "{status}");

    // Disabled: its FFmpeg is killed and it goes offline; deleted: the other one's too.
    let res = server
        .client
        .patch(server.url(&format!("/api/v1/cameras/{id}")))
        .bearer_auth(&token)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = server
        .client
        .delete(server.url(&format!("/api/v1/cameras/{bad_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !pulls_of(pid).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pulls still running: {:?}",
            pulls_of(pid)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until(
        &server,
        &token,
        &format!("/api/v1/cameras/{id}/status"),
        15,
        "the disabled camera offline",
        |s| s["online"] == false,
    )
    .await;
    // The password never reached the server's log.
    let logs = server.logs();
    assert!(
        !logs.contains(password),
        "the pull URL's password is in the log"
    );
    assert!(logs.contains("camera pull started"), "no pull in the log");
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
