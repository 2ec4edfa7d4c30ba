//! The viewer portal in Debian's Chromium against the real binary while FFmpeg publishes two
//! live streams: `web/e2e/viewer.mjs` drives the pages. An anonymous viewer plays the public
//! stream with hls.js; a free account is refused the premium stream by the server (no
//! playback token), upgrades with the test payment provider's card and then plays it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::media::Publisher;
use common::*;
use lunora_testkit::{require, DbKind, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "Viewer-Test-Pass-42!";

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

async fn live_channel(
    server: &Server,
    admin: &str,
    title: &str,
    level: &str,
) -> (String, Publisher) {
    let a = call(
        server,
        "POST",
        "/api/v1/channels",
        Some(admin),
        Some(&json!({ "name": title, "visibility": "public" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.body["id"].as_str().unwrap().to_string();
    let key = a.body["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    // The source alone (see hls.rs: the ladder's rungs are tested in ladder.rs).
    let a = call(
        server,
        "PUT",
        &format!("/api/v1/channels/{id}/hls"),
        Some(admin),
        Some(&json!({ "ladder": [] })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(
        server,
        "PATCH",
        &format!("/api/v1/streams/{id}"),
        Some(admin),
        Some(&json!({ "title": title, "access_level": level })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a: Value = call(server, "GET", &format!("/api/v1/streams/{id}"), None, None)
            .await
            .body;
        if a["live"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "{title} never went live");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (id, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_plays_and_a_free_viewer_upgrades_to_play_premium_in_chromium() {
    require("node", "nodejs").unwrap();
    require("chromium", "chromium").unwrap();
    require("ffmpeg", "ffmpeg").unwrap();
    assert!(
        web().join("node_modules/playwright-core").is_dir()
            && web().join("node_modules/hls.js").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let server = start(DbKind::Sqlite).await;
    let admin = admin_token(&server).await;
    let email = "fan@example.com";
    signup_user(&server, &admin, email, PASSWORD).await;
    let (public_id, _p1) = live_channel(&server, &admin, "Open air concert", "public").await;
    let (premium_id, _p2) = live_channel(&server, &admin, "Members final", "premium").await;

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer-screens");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::task::spawn_blocking({
        let url = format!("http://{}", server.http);
        let shots = shots.clone();
        move || {
            std::process::Command::new("node")
                .arg(web().join("e2e/viewer.mjs"))
                .env("LUNORA_URL", url)
                .env("LUNORA_PUBLIC_ID", public_id)
                .env("LUNORA_PREMIUM_ID", &premium_id)
                .env("LUNORA_VIEWER_EMAIL", email)
                .env("LUNORA_VIEWER_PASSWORD", PASSWORD)
                .env("LUNORA_SCREENSHOT_DIR", shots)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "viewer browser test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.logs()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // What the page did is what the server recorded: a premium subscription paid by the test
    // card, and viewing sessions from the players.
    let t = token_for(&server, email, PASSWORD).await;
    let a = call(&server, "GET", "/api/v1/subscriptions/me", Some(&t), None).await;
    assert_eq!(a.body["group"], "premium", "{a:?}");
    assert_eq!(a.body["current"]["payment_method"], "card •••• 4242");
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/analytics",
        Some(&admin),
        None,
    )
    .await;
    assert!(
        a.body["sessions_24h"].as_i64().unwrap() >= 2,
        "sessions from the players: {a:?}"
    );
    assert!(
        a.body["anonymous_sessions_24h"].as_i64().unwrap() >= 1,
        "{a:?}"
    );
}
