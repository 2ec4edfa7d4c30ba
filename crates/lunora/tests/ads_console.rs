//! The advertising workspace (`/ads`) in Debian's Chromium against the real binary:
//! `web/e2e/ads.mjs` drives two browser sessions of two sellers on the same campaign (both see
//! each other in presence; the second save with a stale version shows the first seller's value
//! in a conflict panel instead of overwriting it) and a client user who sees only its own
//! campaign's report and billing, a producer scheduling an episode that its talent's open page
//! lists live, and an admin's Backups page (a message, not a crash, while
//! the server has no backups API). This test prepares the data and checks what the server kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lunora_testkit::{require, DbKind, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "Staff-Password-42!";

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

async fn create(server: &Server, token: &str, path: &str, body: Value) -> String {
    let a = call(server, "POST", path, Some(token), Some(&body)).await;
    assert_eq!(a.status, 201, "POST {path} {body}: {a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sellers_conflict_and_a_client_report_in_chromium() {
    require("node", "nodejs").unwrap();
    require("chromium", "chromium").unwrap();
    assert!(
        web().join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let server = start(DbKind::Sqlite).await;
    let admin = admin_token(&server).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ads-console-screens");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let a_id = invite_user(&server, &admin, "anna@ads.example", "seller", PASSWORD).await;
    let b_id = invite_user(&server, &admin, "ben@ads.example", "seller", PASSWORD).await;
    let c1_id = invite_user(&server, &admin, "buyer@acme.example", "client", PASSWORD).await;
    let c2_id = invite_user(&server, &admin, "buyer@globex.example", "client", PASSWORD).await;
    invite_user(&server, &admin, "pat@ads.example", "producer", PASSWORD).await;
    invite_user(&server, &admin, "tia@ads.example", "talent", PASSWORD).await;
    let anna = token_for(&server, "anna@ads.example", PASSWORD).await;

    // Anna sells "Spring push" to Acme and puts Ben on the account team with edit rights.
    let acme = create(&server, &anna, "/api/v1/clients", json!({"name": "Acme"})).await;
    let spring = create(&server, &anna, "/api/v1/campaigns", json!({"client_id": acme, "name": "Spring push", "budget_cents": 500_000, "status": "active"})).await;
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{spring}/team"),
        Some(&anna),
        Some(&json!({"user_id": b_id, "permissions": ["edit"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // Another advertiser's campaign, which Acme's buyer must not see.
    let globex = create(
        &server,
        &admin,
        "/api/v1/clients",
        json!({"name": "Globex"}),
    )
    .await;
    let launch = create(
        &server,
        &admin,
        "/api/v1/campaigns",
        json!({"client_id": globex, "name": "Globex launch", "budget_cents": 90_000}),
    )
    .await;
    for (client, user) in [(&acme, &c1_id), (&globex, &c2_id)] {
        let a = call(
            &server,
            "POST",
            &format!("/api/v1/clients/{client}/users"),
            Some(&admin),
            Some(&json!({ "user_id": user })),
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    // One spot aired on a published episode: $120 delivered and billed.
    let show = create(
        &server,
        &admin,
        "/api/v1/shows",
        json!({"name": "Morning Cast"}),
    )
    .await;
    let ep = create(
        &server,
        &admin,
        "/api/v1/episodes",
        json!({"show_id": show, "title": "Ep 1", "air_date": "2026-03-10", "status": "published"}),
    )
    .await;
    create(
        &server,
        &anna,
        &format!("/api/v1/campaigns/{spring}/placements"),
        json!({"episode_id": ep, "position": "pre", "rate_cents": 12_000}),
    )
    .await;
    let globex_ep = create(
        &server,
        &admin,
        "/api/v1/episodes",
        json!({"show_id": show, "title": "Ep 2", "air_date": "2026-03-12", "status": "published"}),
    )
    .await;
    create(
        &server,
        &admin,
        &format!("/api/v1/campaigns/{launch}/placements"),
        json!({"episode_id": globex_ep, "position": "mid", "rate_cents": 77_000}),
    )
    .await;

    let out = Command::new("node")
        .arg(web().join("e2e/ads.mjs"))
        .env("LUNORA_URL", format!("http://{}", server.http))
        .env("LUNORA_SCREENSHOT_DIR", &shots)
        .env("LUNORA_PASSWORD", PASSWORD)
        .env("LUNORA_SELLER_A", "anna@ads.example")
        .env("LUNORA_SELLER_A_ID", &a_id)
        .env("LUNORA_SELLER_B", "ben@ads.example")
        .env("LUNORA_SELLER_B_ID", &b_id)
        .env("LUNORA_CLIENT", "buyer@acme.example")
        .env("LUNORA_CAMPAIGN_ID", &spring)
        .env("LUNORA_CAMPAIGN_NAME", "Spring push")
        .env("LUNORA_OTHER_CAMPAIGN_ID", &launch)
        .env("LUNORA_OTHER_CAMPAIGN_NAME", "Globex launch")
        .env("LUNORA_PRODUCER", "pat@ads.example")
        .env("LUNORA_TALENT", "tia@ads.example")
        .env("LUNORA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("LUNORA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "ads browser test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.logs()
    );

    // What the server kept: A's name, saved once; B's refused save left no trace.
    let c = call(
        &server,
        "GET",
        &format!("/api/v1/campaigns/{spring}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(c.body["name"], "Spring push (A's edit)", "{c:?}");
    let acts = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=campaign&entity_id={spring}"),
        Some(&admin),
        None,
    )
    .await;
    let updates: Vec<&Value> = acts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "updated")
        .collect();
    assert_eq!(updates.len(), 1, "{acts:?}");
    assert_eq!(updates[0]["actor_id"], a_id.as_str());
    // B read its notifications in the bell.
    let ben = token_for(&server, "ben@ads.example", PASSWORD).await;
    let unread = call(
        &server,
        "GET",
        "/api/v1/notifications?unread=true",
        Some(&ben),
        None,
    )
    .await;
    assert_eq!(
        unread.body["items"].as_array().unwrap().len(),
        0,
        "{unread:?}"
    );
    for want in [
        "presence-both",
        "conflict-panel",
        "client-report",
        "backups",
    ] {
        assert!(
            std::fs::read_dir(&shots).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(want)),
            "no screenshot {want} in {}",
            shots.display()
        );
    }
}
