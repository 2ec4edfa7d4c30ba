//! Live chat and the moderation queue in Debian's Chromium against the real binary:
//! `web/e2e/chat.mjs` drives three browser sessions (two viewers, a moderator) and an anonymous
//! visitor; this test prepares the stream and the accounts, then checks that what the pages did
//! is what the server recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use lunora_testkit::{require, DbKind};

const VIEWER_PASSWORD: &str = "Viewer2024x";

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_chat_and_a_moderator_deletes_times_out_and_resolves_a_report_in_chromium() {
    require("node", "nodejs").unwrap();
    require("chromium", "chromium").unwrap();
    assert!(
        web().join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let server = start(DbKind::Sqlite).await;
    let admin = admin_token(&server).await;
    let stream = public_channel(&server, &admin, "Tech Talk Live").await;
    signup_user(&server, &admin, "alice@example.com", VIEWER_PASSWORD).await;
    let bob = signup_user(&server, &admin, "bob@example.com", VIEWER_PASSWORD).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-screens");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let url = format!("http://{}", server.http);
    let out = tokio::task::spawn_blocking({
        let shots = shots.clone();
        let stream = stream.clone();
        move || {
            Command::new("node")
                .arg(web().join("e2e/chat.mjs"))
                .env("LUNORA_URL", url)
                .env("LUNORA_STREAM_ID", stream)
                .env("LUNORA_SCREENSHOT_DIR", shots)
                .env("LUNORA_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("LUNORA_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("LUNORA_ALICE_EMAIL", "alice@example.com")
                .env("LUNORA_BOB_EMAIL", "bob@example.com")
                .env("LUNORA_VIEWER_PASSWORD", VIEWER_PASSWORD)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "chat browser test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.logs()
    );

    // What the pages showed is what the server recorded.
    let actions = call(
        &server,
        "GET",
        "/api/v1/moderation/actions",
        Some(&admin),
        None,
    )
    .await;
    let kinds: Vec<&str> = actions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["delete_message", "timeout_user", "delete_message"],
        "{actions:?}"
    );
    assert_eq!(actions.body["items"][1]["target_user_id"], bob.as_str());
    let reports = call(
        &server,
        "GET",
        "/api/v1/moderation/reports?status=resolved",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(reports.body["items"][0]["action"], "delete_message");
    assert_eq!(reports.body["items"][0]["reason"], "spam");
    let history = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{stream}/chat/messages"),
        None,
        None,
    )
    .await;
    let bodies: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["Hello from Alice <b>not bold</b>"], "{history:?}");
}
