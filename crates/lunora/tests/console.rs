//! The operator and admin consoles in Debian's Chromium against the real binary, with FFmpeg
//! publishing and nginx-rtmp receiving: `web/e2e/console.mjs` drives the browser and asserts what
//! the pages show; this test starts the peers and publishes when the page has shown the key.
//! Also: the committed OpenAPI snapshot the UI's types come from matches the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::media::Publisher;
use common::nginx::Nginx;
use common::*;
use lunora_testkit::{require, DbKind};
use serde_json::Value;

const USER_PASSWORD: &str = "Console-Test-Pass-42!";

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

/// Screenshots go under the test output dir so a person can look at them afterwards.
fn screenshot_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_the_wizard_to_nginx_and_controls_the_stream_in_chromium() {
    require("node", "nodejs").unwrap();
    require("chromium", "chromium").unwrap();
    require("ffmpeg", "ffmpeg").unwrap();
    assert!(
        web().join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let admin = admin_token(&server).await;
    let operator = "operator@example.com";
    let viewer = "viewer@example.com";
    invite_user(&server, &admin, operator, "operator", USER_PASSWORD).await;
    invite_user(&server, &admin, viewer, "viewer", USER_PASSWORD).await;
    let shots = screenshot_dir("console-screens");
    let rtmp = server.rtmp_addr().expect("the server's RTMP address");

    let mut child = Command::new("node")
        .arg(web().join("e2e/console.mjs"))
        .env("LUNORA_URL", format!("http://{}", server.http))
        .env("LUNORA_SCREENSHOT_DIR", &shots)
        .env("LUNORA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("LUNORA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LUNORA_OPERATOR_EMAIL", operator)
        .env("LUNORA_VIEWER_EMAIL", viewer)
        .env("LUNORA_USER_PASSWORD", USER_PASSWORD)
        .env("LUNORA_NGINX_URL", nginx.url())
        .env("LUNORA_NGINX_STAT", format!("http://{}/stat", nginx.stat))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Reads the script's lines; when it has shown the stream key, FFmpeg publishes with it to the
    // server's real RTMP port (the page shows the configured one, 0 in tests).
    let (lines, publisher) = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let mut publisher = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(key) = line.strip_prefix("@@publish ") {
                publisher = Some(Publisher::start(&format!(
                    "rtmp://{rtmp}/live/{}",
                    key.trim()
                )));
                continue;
            }
            println!("{line}");
            lines.push(line);
        }
        (lines, publisher)
    })
    .await
    .unwrap();
    let out = child.wait_with_output().unwrap();
    drop(publisher);
    let stdout = lines.join("\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "console browser test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.logs()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // What the pages showed is what the server recorded.
    let a = call(
        &server,
        "GET",
        "/api/v1/streaming/sessions",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let sessions = a.body["items"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{a:?}");
    let s = &sessions[0];
    assert!(
        s["ended_at"].is_string(),
        "the session was stopped from the page: {s}"
    );
    let mut names: Vec<&str> = s["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Backup", "Main"]);
    for d in s["destinations"].as_array().unwrap() {
        assert!(d["bytes_sent"].as_i64().unwrap() > 100_000, "{d}");
    }
    // Each step left a screenshot, the phone-width one included.
    let files: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("live-control-390px.png")),
        "{files:?}"
    );
    assert!(files.len() >= 15, "{files:?}");
}

/// `lunora openapi` equals the snapshot the UI's types are generated from, and the committed
/// types are what `openapi-typescript` makes of that snapshot: UI and server cannot drift.
#[test]
fn web_api_snapshot_matches_the_server() {
    let out = Command::new(bin()).arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    let snapshot_path = web().join("src/api/openapi.json");
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot_path).unwrap()).unwrap();
    assert!(
        live == snapshot,
        "web/src/api/openapi.json is not what `lunora openapi` prints: the API changed.\n\
         Refresh it and the UI types with: cd web && LUNORA_BIN={} npm run gen:api",
        bin()
    );

    let generator = web().join("node_modules/openapi-typescript/bin/cli.js");
    if !generator.exists() || !lunora_testkit::have("node") {
        eprintln!("skipping the schema.d.ts check: run `npm ci` in web/");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("schema.d.ts");
    let out = Command::new("node")
        .arg(&generator)
        .arg(&snapshot_path)
        .arg("-o")
        .arg(&fresh)
        .current_dir(web())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(web().join("src/api/schema.d.ts")).unwrap();
    assert!(
        std::fs::read_to_string(&fresh).unwrap() == committed,
        "web/src/api/schema.d.ts is stale: run `npm run gen:api` in web/"
    );
}
