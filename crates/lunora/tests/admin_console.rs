//! The admin console's media screens in Debian's Chromium against the real binary, with FFmpeg
//! publishing and nginx-rtmp receiving: `web/e2e/admin.mjs` drives the browser and asserts what
//! the pages show (presets, sources and failover, cameras from CSV coming online, a recording
//! played, analytics, alerts, phone width); this test prepares a redundant channel streaming to
//! nginx-rtmp and starts or stops encoders when the script asks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::Publisher;
use common::nginx::Nginx;
use common::*;
use lunora_testkit::{require, DbKind, Server};
use serde_json::{json, Value};

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

fn screenshot_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The key at the end of `rtmp://HOST:PORT/live/KEY`.
fn key_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

/// Polls `GET path` until `ok` holds for its body.
async fn wait_for(
    server: &Server,
    token: &str,
    path: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = call(server, "GET", path, Some(token), None).await;
        if a.status == 200 && ok(&a.body) {
            return a.body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {a:?}\n--- server log ---\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_presets_sources_cameras_and_recordings_in_chromium() {
    require("node", "nodejs").unwrap();
    require("chromium", "chromium").unwrap();
    require("ffmpeg", "ffmpeg").unwrap();
    assert!(
        web().join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let rtmp = server.rtmp_addr().expect("the server's RTMP address");
    let shots = screenshot_dir("admin-console-screens");

    // A channel with a primary and a backup RTMP input, both publishing, streaming to nginx.
    let res = create_channel(&server, &token, "Redundant").await;
    assert_eq!(res.status(), 201);
    let ch: Value = res.json().await.unwrap();
    let channel = ch["id"].as_str().unwrap().to_string();
    let primary_key = key_of(ch["publish_url"].as_str().unwrap());
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/channels/{channel}/sources/config"),
        Some(&token),
        Some(&json!({
            "redundancy_mode": "auto_failover",
            "failover_threshold": 1,
            "auto_return": false,
            "secondary_source": {"protocol": "rtmp"}
        })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let secondary_key = key_of(a.body["secondary_source"]["publish_url"].as_str().unwrap());
    let mut primary = Some(Publisher::start(&format!(
        "rtmp://{rtmp}/live/{primary_key}"
    )));
    let status_path = format!("/api/v1/channels/{channel}/sources/status");
    // The primary first: with auto-return off, whichever input comes up first stays on air.
    wait_for(&server, &token, &status_path, "the primary on air", |st| {
        st["active"] == "primary"
    })
    .await;
    let _backup = Publisher::start(&format!("rtmp://{rtmp}/live/{secondary_key}"));
    wait_for(&server, &token, &status_path, "both inputs up", |st| {
        st["active"] == "primary"
            && st["inputs"]
                .as_array()
                .is_some_and(|i| i.iter().all(|i| i["connected"] == true))
    })
    .await;
    let a = call(
        &server,
        "POST",
        "/api/v1/destinations",
        Some(&token),
        Some(&json!({"name": "nginx", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "redundant"})),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let dest = a.body["id"].as_str().unwrap().to_string();
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/channels/{channel}/streaming/start"),
        Some(&token),
        Some(&json!({"destination_ids": [dest]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    wait_for(
        &server,
        &token,
        &format!("/api/v1/channels/{channel}/streaming/status"),
        "the destination live",
        |st| st["destinations"][0]["state"] == "live",
    )
    .await;

    let mut child = Command::new("node")
        .arg(web().join("e2e/admin.mjs"))
        .env("LUNORA_URL", format!("http://{}", server.http))
        .env("LUNORA_SCREENSHOT_DIR", &shots)
        .env("LUNORA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("LUNORA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The script's requests for media: cameras publish with the keys the import report showed
    // (the page shows the configured RTMP port, 0 in tests), and the primary encoder dies.
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let mut cameras: HashMap<String, Publisher> = HashMap::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("@@publish ") {
                let key = key_of(url.trim());
                cameras.insert(
                    key.clone(),
                    Publisher::start(&format!("rtmp://{rtmp}/live/{key}")),
                );
                continue;
            }
            if let Some(url) = line.strip_prefix("@@stop ") {
                if let Some(mut p) = cameras.remove(&key_of(url.trim())) {
                    p.kill();
                }
                continue;
            }
            if line.trim() == "@@kill-primary" {
                if let Some(mut p) = primary.take() {
                    p.kill();
                }
                continue;
            }
            println!("{line}");
            lines.push(line);
        }
        lines
    })
    .await
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = lines.join("\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "admin console browser test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.logs()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // What the pages did is what the server has.
    let a = call(&server, "GET", "/api/v1/presets", Some(&token), None).await;
    let names: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["builtin"] == false)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Church 720p"), "{names:?}");
    let st = call(&server, "GET", &status_path, Some(&token), None).await;
    assert_eq!(st.body["active"], "secondary", "{st:?}");
    assert_eq!(st.body["last_switch"]["reason"], "primary_lost", "{st:?}");
    let a = call(&server, "GET", "/api/v1/cameras", Some(&token), None).await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 2, "{a:?}");
    let a = call(
        &server,
        "GET",
        "/api/v1/recordings?status=complete",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 1, "{a:?}");
    let files: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for want in [
        "preset-created",
        "sources-automatic-failover",
        "cameras-online",
        "recording-playing",
        "analytics",
        "cameras-390px",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(&format!("{want}.png"))),
            "{want}: {files:?}"
        );
    }
}
