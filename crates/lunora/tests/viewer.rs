//! The viewer platform (issue 11, part A) through the real binary on SQLite and PostgreSQL:
//! the public catalog with typo-tolerant, live-first search; subscriptions through the test
//! payment provider and the access level enforced on the HLS playback token while FFmpeg
//! publishes; viewing sessions counted as viewers, history on and off; export and deletion
//! of an account with everything that was theirs; recommendations with their reasons; roles
//! and other organizations' ids refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::media::Publisher;
use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "Correct-Horse-Battery-9";

async fn channel(server: &Server, token: &str, name: &str, visibility: &str) -> Value {
    let a = call(
        server,
        "POST",
        "/api/v1/channels",
        Some(token),
        Some(&json!({ "name": name, "visibility": visibility })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.body
}

/// The publish URL with the server's real RTMP port.
fn publish_url(server: &Server, channel: &Value) -> String {
    let url = channel["publish_url"].as_str().unwrap();
    let key = url.rsplit('/').next().unwrap();
    format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap())
}

async fn patch_stream(server: &Server, token: &str, id: &str, body: Value) -> Value {
    let a = call(
        server,
        "PATCH",
        &format!("/api/v1/streams/{id}"),
        Some(token),
        Some(&body),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

async fn category(server: &Server, token: &str, name: &str) -> String {
    let a = call(
        server,
        "POST",
        "/api/v1/streams/categories",
        Some(token),
        Some(&json!({ "name": name })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

/// A verified free audience account: (user id, access token).
async fn viewer(server: &Server, admin: &str, email: &str) -> (String, String) {
    let id = signup_user(server, admin, email, PASSWORD).await;
    (id, token_for(server, email, PASSWORD).await)
}

/// Waits until the stream shows as live in the catalog.
async fn wait_live(server: &Server, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = call(server, "GET", &format!("/api/v1/streams/{id}"), None, None).await;
        if a.body["live"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never went live: {a:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn hls_status(server: &Server, path: &str) -> (u16, String, String) {
    let res = server.client.get(server.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code, body)
}

/// Polls a master playlist until it answers 200 (the packager starts on demand).
async fn wait_master(server: &Server, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = hls_status(server, path).await;
        if status == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no master at {path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn catalog_search_and_categories(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let sports = category(&server, &admin, "Sports").await;
    let a = call(
        &server,
        "POST",
        "/api/v1/streams/categories",
        Some(&admin),
        Some(&json!({ "name": "sports" })),
    )
    .await;
    assert_eq!(a.status, 409, "same slug twice: {a:?}");

    let final_ = channel(&server, &admin, "cam-1", "public").await;
    let final_id = final_["id"].as_str().unwrap();
    let s = patch_stream(
        &server,
        &admin,
        final_id,
        json!({
            "title": "Championship final",
            "description": "The soccer cup final, live from the stadium",
            "category_id": sports,
            "tags": ["soccer", "cup"],
            "access_level": "public",
            "scheduled_start": "2026-12-24T18:00:00Z",
            "featured": true
        }),
    )
    .await;
    assert_eq!(s["title"], "Championship final");
    assert_eq!(s["category"]["slug"], "sports");

    let other = channel(&server, &admin, "cam-2", "public").await;
    let other_id = other["id"].as_str().unwrap();
    patch_stream(
        &server,
        &admin,
        other_id,
        json!({ "title": "Cup highlights", "tags": ["cup"] }),
    )
    .await;
    let hidden = channel(&server, &admin, "cam-3", "private").await;
    let hidden_id = hidden["id"].as_str().unwrap();
    patch_stream(
        &server,
        &admin,
        hidden_id,
        json!({ "title": "Cup secrets" }),
    )
    .await;

    // Anonymous: the public stream with every catalog field.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{final_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let b = &a.body;
    assert_eq!(b["title"], "Championship final");
    assert!(b["creator"]["id"].as_str().is_some(), "{b}");
    assert_eq!(b["tags"], json!(["soccer", "cup"]));
    assert_eq!(b["access_level"], "public");
    assert_eq!(b["scheduled_start"], "2026-12-24T18:00:00.000Z");
    assert_eq!(b["hls_url"], format!("/hls/{final_id}/index.m3u8"));
    assert_eq!(
        b["thumbnail_url"],
        format!("/api/v1/streams/{final_id}/thumbnail.jpg")
    );
    assert_eq!(b["live"], false);
    assert_eq!(b["viewer_count"], 0);
    // A private channel is not in the catalog.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{hidden_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");

    let a = call(&server, "GET", "/api/v1/streams/featured", None, None).await;
    let ids: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![final_id]);
    let a = call(&server, "GET", "/api/v1/streams/categories", None, None).await;
    let cat = &a.body["items"][0];
    assert_eq!(cat["slug"], "sports");
    assert_eq!(cat["stream_count"], 1);

    // Typos are forgiven; words that match nothing find nothing; private channels never.
    for q in ["socer", "championship", "champinship finl", "SOCCER"] {
        let a = call(
            &server,
            "GET",
            &format!("/api/v1/streams/search?q={q}"),
            None,
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body["items"][0]["id"], final_id, "search {q}: {a:?}");
    }
    let a = call(
        &server,
        "GET",
        "/api/v1/streams/search?q=tennis",
        None,
        None,
    )
    .await;
    assert_eq!(a.body["items"], json!([]));
    let a = call(&server, "GET", "/api/v1/streams/search?q=cup", None, None).await;
    let ids: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&hidden_id), "{ids:?}");
    assert_eq!(ids.len(), 2, "{ids:?}");

    // Live first: the highlights go live and rank above the final, which matches better.
    let a = call(
        &server,
        "GET",
        "/api/v1/streams/search?q=cup+final",
        None,
        None,
    )
    .await;
    assert_eq!(a.body["items"][0]["id"], final_id, "{a:?}");
    let _publisher = Publisher::start(&publish_url(&server, &other));
    wait_live(&server, other_id).await;
    let a = call(&server, "GET", "/api/v1/streams/search?q=cup", None, None).await;
    assert_eq!(a.body["items"][0]["id"], other_id, "live first: {a:?}");
    assert_eq!(a.body["items"][0]["live"], true);
    assert_eq!(a.body["items"][1]["id"], final_id);
    let a = call(&server, "GET", "/api/v1/streams/live", None, None).await;
    let ids: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![other_id]);

    // Categories: rename, delete (the stream keeps no category).
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/streams/categories/{sports}"),
        Some(&admin),
        Some(&json!({ "name": "Football", "slug": "football" })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{final_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(a.body["category"]["name"], "Football");
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/streams/categories/{sports}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/streams/{final_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(a.body["category"], Value::Null);

    // Validation.
    for bad in [
        json!({ "access_level": "gold" }),
        json!({ "content_rating": "x" }),
        json!({ "scheduled_start": "tomorrow" }),
        json!({ "category_id": "nope" }),
    ] {
        let a = call(
            &server,
            "PATCH",
            &format!("/api/v1/streams/{final_id}"),
            Some(&admin),
            Some(&bad),
        )
        .await;
        assert_eq!(a.status, 400, "{bad}: {a:?}");
    }
}

async fn subscription_and_access_on_the_playback_token(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let ch = channel(&server, &admin, "premium", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();
    patch_stream(
        &server,
        &admin,
        &id,
        json!({ "title": "Members match", "access_level": "premium" }),
    )
    .await;
    let vip = channel(&server, &admin, "vip", "public").await;
    let vip_id = vip["id"].as_str().unwrap().to_string();
    patch_stream(&server, &admin, &vip_id, json!({ "access_level": "vip" })).await;
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &id).await;
    let master = format!("/hls/{id}/index.m3u8");

    // The HLS route itself refuses the premium stream without a token.
    let (status, code, _) = hls_status(&server, &master).await;
    assert_eq!((status, code.as_str()), (403, "playback_token_required"));
    let (status, _, _) = hls_status(&server, &format!("{master}?token=1.abc")).await;
    assert_eq!(status, 403);

    // Anonymous and free viewers are refused a token.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        None,
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "upgrade_required"), "{a:?}");
    let (_, free) = viewer(&server, &admin, "fan@example.com").await;
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        Some(&free),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "upgrade_required"), "{a:?}");
    assert!(a.body["detail"].as_str().unwrap().contains("premium"));
    let a = call(
        &server,
        "GET",
        "/api/v1/subscriptions/me",
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.body["group"], "free");

    // A declined card changes nothing; a bad one is a 400.
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions",
        Some(&free),
        Some(&json!({ "plan": "premium", "card_number": "4000 0000 0000 0002" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (402, "card_declined"), "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions",
        Some(&free),
        Some(&json!({ "plan": "premium", "card_number": "1234" })),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");

    // Upgrade: premium group, a token, and the stream plays.
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions",
        Some(&free),
        Some(&json!({ "plan": "premium", "card_number": "4242 4242 4242 4242" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["group"], "premium");
    assert_eq!(a.body["current"]["status"], "active");
    assert_eq!(a.body["current"]["payment_method"], "card •••• 4242");
    assert!(!a.to_string_lossy().contains("pm_test"), "{a:?}");
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["viewer_level"], "premium");
    let url = a.body["hls_url"].as_str().unwrap().to_string();
    let text = wait_master(&server, &url).await;
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(text.contains("?token="), "URIs carry the token on: {text}");
    // The token is for this stream only.
    let token = a.body["token"].as_str().unwrap();
    let (status, _, _) =
        hls_status(&server, &format!("/hls/{vip_id}/index.m3u8?token={token}")).await;
    assert_eq!(status, 403);
    // Premium does not reach vip.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{vip_id}/playback"),
        Some(&free),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "upgrade_required"), "{a:?}");

    // Cancel: the paid period is honoured; when it is over the account is free again.
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions/me/cancel",
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["group"], "premium");
    assert_eq!(a.body["current"]["status"], "canceled");
    let pool = db_pool(&server).await;
    sqlx::query("UPDATE subscriptions SET current_period_end = 1")
        .execute(&pool)
        .await
        .unwrap();
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        Some(&free),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "upgrade_required"), "{a:?}");
    let a = call(
        &server,
        "GET",
        "/api/v1/subscriptions/me",
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.body["group"], "free");
    assert_eq!(a.body["history"][0]["status"], "expired");

    // Renewal: a card that later declines puts the subscription past due (still honoured
    // for the grace period), then expired.
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions",
        Some(&free),
        Some(&json!({ "plan": "vip", "card_number": "4000000000000341" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["group"], "vip");
    let sub = a.body["current"]["id"].as_str().unwrap().to_string();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let q = if db == DbKind::Postgres {
        "UPDATE subscriptions SET current_period_end = $1 WHERE id = $2"
    } else {
        "UPDATE subscriptions SET current_period_end = ? WHERE id = ?"
    };
    sqlx::query(q)
        .bind(now_ms - 1000)
        .bind(&sub)
        .execute(&pool)
        .await
        .unwrap();
    let a = call(
        &server,
        "GET",
        "/api/v1/subscriptions/me",
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.body["current"]["status"], "past_due", "{a:?}");
    assert_eq!(a.body["group"], "vip");
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{vip_id}/playback"),
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "grace period: {a:?}");
    sqlx::query(q)
        .bind(now_ms - 4 * 86_400_000)
        .bind(&sub)
        .execute(&pool)
        .await
        .unwrap();
    let a = call(
        &server,
        "GET",
        "/api/v1/subscriptions/me",
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.body["group"], "free", "{a:?}");
    assert_eq!(a.body["current"], Value::Null);
    // A renewing card renews.
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions",
        Some(&free),
        Some(&json!({ "plan": "premium", "card_number": "4242424242424242" })),
    )
    .await;
    let sub = a.body["current"]["id"].as_str().unwrap().to_string();
    let before = a.body["current"]["current_period_end"]
        .as_str()
        .unwrap()
        .to_string();
    sqlx::query(q)
        .bind(now_ms - 1000)
        .bind(&sub)
        .execute(&pool)
        .await
        .unwrap();
    let a = call(
        &server,
        "GET",
        "/api/v1/subscriptions/me",
        Some(&free),
        None,
    )
    .await;
    assert_eq!(a.body["current"]["status"], "active", "{a:?}");
    assert_eq!(a.body["group"], "premium");
    assert_ne!(a.body["current"]["current_period_end"], before.as_str());

    // Staff of the stream's organization reach every level; a public stream needs nothing.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{vip_id}/playback"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // Staff accounts do not subscribe.
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions",
        Some(&admin),
        Some(&json!({ "plan": "premium", "card_number": "4242424242424242" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "audience_only"), "{a:?}");
}

trait Lossy {
    fn to_string_lossy(&self) -> String;
}

impl Lossy for Answer {
    fn to_string_lossy(&self) -> String {
        self.body.to_string()
    }
}

/// Renewal and expiry do not wait for the viewer to come back: the background settler charges
/// a renewal when the period ends and moves a lapsed account back to `free`, with neither
/// viewer calling the API meanwhile.
async fn unseen_accounts_are_renewed_and_lapse_in_the_background(db: DbKind) {
    let server = Server::start(bin(), options(db).env("LUNORA_VIEWER_SETTLE_INTERVAL", "1"))
        .await
        .expect("server starts");
    let admin = admin_token(&server).await;
    let (renewing_id, renewing) = viewer(&server, &admin, "renews@example.com").await;
    let (lapsing_id, lapsing) = viewer(&server, &admin, "lapses@example.com").await;
    for (token, plan) in [(&renewing, "premium"), (&lapsing, "vip")] {
        let a = call(
            &server,
            "POST",
            "/api/v1/subscriptions",
            Some(token),
            Some(&json!({ "plan": plan, "card_number": "4242424242424242" })),
        )
        .await;
        assert_eq!(a.status, 201, "{a:?}");
    }
    let a = call(
        &server,
        "POST",
        "/api/v1/subscriptions/me/cancel",
        Some(&lapsing),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    let pool = db_pool(&server).await;
    let p = |n: usize| {
        if db == DbKind::Postgres {
            format!("${n}")
        } else {
            "?".to_string()
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    sqlx::query(&format!(
        "UPDATE subscriptions SET current_period_end = {}",
        p(1)
    ))
    .bind(now_ms - 1000)
    .execute(&pool)
    .await
    .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, end): (String, i64) = sqlx::query_as(&format!(
            "SELECT status, current_period_end FROM subscriptions WHERE user_id = {}",
            p(1)
        ))
        .bind(&renewing_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        let renewals: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM subscription_payments WHERE user_id = {} AND detail = 'renewal'",
            p(1)
        ))
        .bind(&renewing_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        let (lapsed_status,): (String,) = sqlx::query_as(&format!(
            "SELECT status FROM subscriptions WHERE user_id = {}",
            p(1)
        ))
        .bind(&lapsing_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        let (lapsed_role,): (String,) =
            sqlx::query_as(&format!("SELECT role FROM users WHERE id = {}", p(1)))
                .bind(&lapsing_id)
                .fetch_one(&pool)
                .await
                .unwrap();
        if renewals == 1 && lapsed_status == "expired" && lapsed_role == "free" {
            assert_eq!(status, "active");
            assert!(end > now_ms + 29 * 86_400_000, "a new period: {end}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: renewing {status} with {renewals} renewal(s), lapsing {lapsed_status} \
             as {lapsed_role}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn stream_count(server: &Server, id: &str) -> i64 {
    let a = call(server, "GET", &format!("/api/v1/streams/{id}"), None, None).await;
    a.body["viewer_count"].as_i64().unwrap()
}

async fn viewing_counts_history_and_privacy(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let ch = channel(&server, &admin, "open", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let paid = channel(&server, &admin, "paid", "public").await;
    let paid_id = paid["id"].as_str().unwrap().to_string();
    patch_stream(
        &server,
        &admin,
        &paid_id,
        json!({ "access_level": "premium" }),
    )
    .await;

    // Anonymous viewers get sessions for public streams, not premium ones.
    let a = call(
        &server,
        "POST",
        "/api/v1/viewing/start",
        None,
        Some(&json!({ "stream_id": id, "quality": "source", "device": "web" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["in_history"], false);
    let anon = a.body["session_id"].as_str().unwrap().to_string();
    let a = call(
        &server,
        "POST",
        "/api/v1/viewing/start",
        None,
        Some(&json!({ "stream_id": paid_id })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "upgrade_required"), "{a:?}");
    assert_eq!(stream_count(&server, &id).await, 1);

    let (_, ana) = viewer(&server, &admin, "ana@example.com").await;
    let a = call(
        &server,
        "POST",
        "/api/v1/viewing/start",
        Some(&ana),
        Some(&json!({ "stream_id": id })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["in_history"], true);
    let mine = a.body["session_id"].as_str().unwrap().to_string();
    assert_eq!(stream_count(&server, &id).await, 2);

    // Heartbeats move the position; someone else cannot touch Ana's session.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/viewing/{mine}/progress"),
        Some(&ana),
        Some(&json!({ "position_seconds": 42.5 })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["position_seconds"], 42.5);
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/viewing/{mine}/progress"),
        None,
        Some(&json!({ "position_seconds": 1 })),
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/viewing/{anon}/progress"),
        None,
        Some(&json!({ "position_seconds": 3 })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // Ending a session stops counting it.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/viewing/{anon}/end"),
        None,
        Some(&json!({ "reason": "user_exit" })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(stream_count(&server, &id).await, 1);
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/viewing/{anon}/progress"),
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(a.status, 409, "{a:?}");
    // A session whose heartbeats stopped stops counting too.
    let pool = db_pool(&server).await;
    sqlx::query("UPDATE viewing_sessions SET last_heartbeat_at = 1")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(stream_count(&server, &id).await, 0);

    // History and continue watching.
    let a = call(&server, "GET", "/api/v1/viewing/history", Some(&ana), None).await;
    let items = a.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{a:?}");
    assert_eq!(items[0]["stream_id"], id.as_str());
    assert_eq!(items[0]["stream"]["id"], id.as_str());
    let a = call(&server, "GET", "/api/v1/viewing/continue", Some(&ana), None).await;
    assert_eq!(a.body["items"][0]["stream"]["id"], id.as_str(), "{a:?}");
    assert_eq!(a.body["items"][0]["position_seconds"], 42.5);

    // History off: new sessions still count as viewers but are not kept for Ana.
    let a = call(
        &server,
        "PATCH",
        "/api/v1/viewer/me",
        Some(&ana),
        Some(&json!({ "history_enabled": false })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["history_enabled"], false);
    let a = call(
        &server,
        "POST",
        "/api/v1/viewing/start",
        Some(&ana),
        Some(&json!({ "stream_id": id })),
    )
    .await;
    assert_eq!(a.body["in_history"], false, "{a:?}");
    assert_eq!(stream_count(&server, &id).await, 1);
    let a = call(&server, "GET", "/api/v1/viewing/history", Some(&ana), None).await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 1, "{a:?}");
    assert_eq!(a.body["history_enabled"], false);
    let a = call(
        &server,
        "DELETE",
        "/api/v1/viewing/history",
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    let a = call(&server, "GET", "/api/v1/viewing/history", Some(&ana), None).await;
    assert_eq!(a.body["items"], json!([]));

    // Saved streams.
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/viewing/saved/{id}"),
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = call(&server, "GET", "/api/v1/viewing/saved", Some(&ana), None).await;
    assert_eq!(a.body["items"][0]["stream"]["id"], id.as_str());
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/viewing/saved/{id}"),
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    let a = call(&server, "GET", "/api/v1/viewing/saved", Some(&ana), None).await;
    assert_eq!(a.body["items"], json!([]));

    // Preferences and parental controls: a mature stream needs the PIN.
    let a = call(
        &server,
        "PATCH",
        "/api/v1/viewer/me",
        Some(&ana),
        Some(&json!({ "preferences": { "quality": "720p", "language": "pt-BR", "autoplay": false, "notifications": true } })),
    )
    .await;
    assert_eq!(a.body["preferences"]["language"], "pt-BR", "{a:?}");
    patch_stream(&server, &admin, &id, json!({ "content_rating": "mature" })).await;
    let a = call(
        &server,
        "PUT",
        "/api/v1/viewer/me/parental",
        Some(&ana),
        Some(&json!({ "max_rating": "teen", "pin": "4321" })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["parental"]["pin_set"], true);
    // Above the limit, the stream leaves Ana's lists (anonymous viewers still find it).
    let a = call(
        &server,
        "GET",
        "/api/v1/streams/search?q=open",
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(a.body["items"], json!([]), "{a:?}");
    let a = call(&server, "GET", "/api/v1/streams/search?q=open", None, None).await;
    assert_eq!(a.body["items"][0]["id"], id.as_str(), "{a:?}");
    let play = format!("/api/v1/streams/{id}/playback");
    let a = call(&server, "POST", &play, Some(&ana), None).await;
    assert_eq!(
        (a.status, a.code()),
        (403, "parental_pin_required"),
        "{a:?}"
    );
    let a = call(
        &server,
        "POST",
        &play,
        Some(&ana),
        Some(&json!({ "pin": "1111" })),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    let a = call(
        &server,
        "POST",
        &play,
        Some(&ana),
        Some(&json!({ "pin": "4321" })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(
        &server,
        "PUT",
        "/api/v1/viewer/me/parental",
        Some(&ana),
        Some(&json!({ "max_rating": "adult" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "parental_pin_wrong"), "{a:?}");
    // Player telemetry stays out of the audit log; playback grants are in it.
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_logs WHERE action IN ('viewing.start', 'viewing.progress', 'viewing.end')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 0);
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_logs WHERE action = 'stream.playback'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(n >= 3, "{n}");
    let stored: String = sqlx::query_scalar("SELECT pin_hash FROM viewer_profiles")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2"), "{stored}");
}

async fn export_and_delete_cascade(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let ch = channel(&server, &admin, "show", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let (me_id, me) = viewer(&server, &admin, "leaving@example.com").await;
    let (other_id, _) = viewer(&server, &admin, "staying@example.com").await;
    let admin_id = call(&server, "GET", "/api/v1/users/me", Some(&admin), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (m, p, b) in [
        (
            "POST",
            "/api/v1/subscriptions".to_string(),
            Some(json!({ "plan": "premium", "card_number": "4242424242424242" })),
        ),
        ("PUT", format!("/api/v1/viewing/saved/{id}"), None),
        ("PUT", format!("/api/v1/viewer/me/follows/{admin_id}"), None),
        ("PUT", format!("/api/v1/viewer/me/blocked/{other_id}"), None),
        (
            "POST",
            "/api/v1/viewing/start".to_string(),
            Some(json!({ "stream_id": id })),
        ),
    ] {
        let a = call(&server, m, &p, Some(&me), b.as_ref()).await;
        assert!(a.status < 300, "{m} {p}: {a:?}");
    }
    let a = call(&server, "GET", "/api/v1/viewer/me/export", Some(&me), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    let d = &a.body;
    assert_eq!(d["profile"]["email"], "leaving@example.com");
    assert_eq!(d["subscriptions"][0]["plan"], "premium");
    assert_eq!(d["subscriptions"][0]["payment_method"], "card •••• 4242");
    assert_eq!(d["payments"][0]["status"], "succeeded");
    assert_eq!(d["viewing_history"][0]["stream_id"], id.as_str());
    assert_eq!(d["saved_streams"][0]["stream_id"], id.as_str());
    assert_eq!(d["follows"][0]["creator_id"], admin_id.as_str());
    assert_eq!(d["blocked_users"][0]["user_id"], other_id.as_str());
    assert!(!d.to_string().contains("pm_test"), "{d}");

    let a = call(
        &server,
        "DELETE",
        "/api/v1/viewer/me",
        Some(&me),
        Some(&json!({ "password": "wrong" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "wrong_password"), "{a:?}");
    let a = call(
        &server,
        "DELETE",
        "/api/v1/viewer/me",
        Some(&admin),
        Some(&json!({ "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "audience_only"), "{a:?}");
    let a = call(
        &server,
        "DELETE",
        "/api/v1/viewer/me",
        Some(&me),
        Some(&json!({ "password": PASSWORD })),
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    // Gone: the token is dead, the address can sign up again, no row names the user.
    let a = call(&server, "GET", "/api/v1/viewer/me", Some(&me), None).await;
    assert_eq!(a.status, 401, "{a:?}");
    let res = login(&server, "leaving@example.com", PASSWORD).await;
    assert_eq!(res.status(), 401);
    let pool = db_pool(&server).await;
    for table in [
        "users WHERE id",
        "viewer_profiles WHERE user_id",
        "subscriptions WHERE user_id",
        "subscription_payments WHERE user_id",
        "viewing_sessions WHERE user_id",
        "saved_streams WHERE user_id",
        "creator_follows WHERE user_id",
        "viewer_blocks WHERE user_id",
        "auth_sessions WHERE user_id",
    ] {
        let q = format!("SELECT COUNT(*) FROM {table} = '{me_id}'");
        let n: i64 = sqlx::query_scalar(&q).fetch_one(&pool).await.unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let q = "SELECT COUNT(*) FROM outbox WHERE recipient = 'leaving@example.com'";
    let n: i64 = sqlx::query_scalar(q).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0, "outbox");
    // (The deletion itself is recorded like every state-changing request.)
    let q = format!(
        "SELECT COUNT(*) FROM audit_logs WHERE actor_id = '{me_id}' AND ip <> '' \
         AND action <> 'viewer.delete'"
    );
    let n: i64 = sqlx::query_scalar(&q).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0, "audit entries keep no address");
    // The other viewer and the stream are untouched.
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM users WHERE id = '{other_id}'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    let a = call(&server, "GET", &format!("/api/v1/streams/{id}"), None, None).await;
    assert_eq!(a.status, 200);
}

async fn recommendations_with_reasons_and_stats(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let sports = category(&server, &admin, "Sports").await;
    let watched = channel(&server, &admin, "a", "public").await;
    let watched_id = watched["id"].as_str().unwrap().to_string();
    patch_stream(
        &server,
        &admin,
        &watched_id,
        json!({ "title": "Cup final", "category_id": sports }),
    )
    .await;
    let similar = channel(&server, &admin, "b", "public").await;
    let similar_id = similar["id"].as_str().unwrap().to_string();
    patch_stream(
        &server,
        &admin,
        &similar_id,
        json!({ "title": "League night", "category_id": sports }),
    )
    .await;
    // Another creator's stream in no category: nothing links it to what Bo watched.
    invite_user(&server, &admin, "sam@example.com", "operator", PASSWORD).await;
    let sam = token_for(&server, "sam@example.com", PASSWORD).await;
    let unrelated = channel(&server, &sam, "c", "public").await;
    let unrelated_id = unrelated["id"].as_str().unwrap().to_string();
    patch_stream(&server, &sam, &unrelated_id, json!({ "title": "Cooking" })).await;
    invite_user(&server, &admin, "rita@example.com", "operator", PASSWORD).await;
    let rita = token_for(&server, "rita@example.com", PASSWORD).await;
    let a = call(
        &server,
        "PATCH",
        "/api/v1/users/me",
        Some(&rita),
        Some(&json!({ "display_name": "Rita" })),
    )
    .await;
    assert!(a.status < 300, "{a:?}");
    let hers = channel(&server, &rita, "rita's", "public").await;
    let hers_id = hers["id"].as_str().unwrap().to_string();
    patch_stream(&server, &rita, &hers_id, json!({ "title": "Rita live" })).await;
    let rita_id = hers["owner_id"].as_str().unwrap().to_string();

    let (_, me) = viewer(&server, &admin, "bo@example.com").await;
    let a = call(
        &server,
        "POST",
        "/api/v1/viewing/start",
        Some(&me),
        Some(&json!({ "stream_id": watched_id, "device": "tv" })),
    )
    .await;
    let session = a.body["session_id"].as_str().unwrap().to_string();
    call(
        &server,
        "POST",
        &format!("/api/v1/viewing/{session}/end"),
        Some(&me),
        Some(&json!({ "reason": "user_exit" })),
    )
    .await;
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/viewer/me/follows/{rita_id}"),
        Some(&me),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = call(&server, "GET", "/api/v1/viewer/me/follows", Some(&me), None).await;
    assert_eq!(a.body["items"][0]["display_name"], "Rita");

    let a = call(
        &server,
        "GET",
        "/api/v1/viewer/me/recommendations",
        Some(&me),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let recs: Vec<(String, String)> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["stream"]["id"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        recs.contains(&(hers_id.clone(), "because you follow Rita".into())),
        "{recs:?}"
    );
    assert!(
        recs.contains(&(similar_id.clone(), "because you watched Cup final".into())),
        "{recs:?}"
    );
    assert!(!recs.iter().any(|(id, _)| *id == unrelated_id), "{recs:?}");
    assert!(!recs.iter().any(|(id, _)| *id == watched_id), "{recs:?}");

    let a = call(&server, "GET", "/api/v1/viewer/me/stats", Some(&me), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["sessions"], 1);
    assert_eq!(a.body["streams_watched"], 1);
    assert_eq!(a.body["favorite_categories"], json!(["Sports"]));
    assert!(a.body["device_usage"]["tv"].is_number(), "{a:?}");

    // Trending counts every viewer's recent watch time.
    let pool = db_pool(&server).await;
    sqlx::query("UPDATE viewing_sessions SET watched_ms = 600000")
        .execute(&pool)
        .await
        .unwrap();
    let a = call(&server, "GET", "/api/v1/streams/trending", None, None).await;
    assert_eq!(a.body["items"][0]["id"], watched_id.as_str(), "{a:?}");
    assert_eq!(a.body["items"][0]["watch_seconds_last_hour"], 600);
}

async fn roles_and_other_organizations(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let ch = channel(&server, &admin, "alpha", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let cat = category(&server, &admin, "News").await;
    let (_, free) = viewer(&server, &admin, "free@example.com").await;
    invite_user(&server, &admin, "op@example.com", "operator", PASSWORD).await;
    let op = token_for(&server, "op@example.com", PASSWORD).await;
    invite_user(
        &server,
        &admin,
        "ca@example.com",
        "consumer_admin",
        PASSWORD,
    )
    .await;
    let ca = token_for(&server, "ca@example.com", PASSWORD).await;

    // Audience accounts edit nothing and see no admin lists.
    for (m, p, b) in [
        (
            "PATCH",
            format!("/api/v1/streams/{id}"),
            json!({ "title": "x" }),
        ),
        (
            "POST",
            "/api/v1/streams/categories".into(),
            json!({ "name": "y" }),
        ),
        (
            "PATCH",
            format!("/api/v1/streams/categories/{cat}"),
            json!({ "name": "y" }),
        ),
        ("GET", "/api/v1/viewer-admin/accounts".into(), json!(null)),
        (
            "GET",
            "/api/v1/viewer-admin/subscriptions".into(),
            json!(null),
        ),
        ("GET", "/api/v1/viewer-admin/analytics".into(), json!(null)),
        ("GET", "/api/v1/viewer-admin/catalog".into(), json!(null)),
    ] {
        let body = (!b.is_null()).then_some(&b);
        let a = call(&server, m, &p, Some(&free), body).await;
        assert_eq!(a.status, 403, "free {m} {p}: {a:?}");
    }
    // Operators edit the catalog of their own channels only, and no categories or accounts.
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/streams/{id}"),
        Some(&op),
        Some(&json!({ "title": "mine now" })),
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    let own = channel(&server, &op, "op's", "public").await;
    patch_stream(
        &server,
        &op,
        own["id"].as_str().unwrap(),
        json!({ "title": "Op show" }),
    )
    .await;
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/accounts",
        Some(&op),
        None,
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    // Consumer admins run the catalog, categories, accounts and subscriptions.
    patch_stream(&server, &ca, &id, json!({ "featured": true })).await;
    category(&server, &ca, "Music").await;
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/accounts",
        Some(&ca),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let emails: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["free@example.com"]);
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/analytics",
        Some(&ca),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/catalog",
        Some(&ca),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 2, "{a:?}");

    // Another organization's administrator reaches none of it.
    let beta = second_organization(
        &server,
        &admin,
        "Beta",
        "beta",
        "boss@beta.example",
        PASSWORD,
    )
    .await;
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/streams/{id}"),
        Some(&beta),
        Some(&json!({ "access_level": "public" })),
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    for m in ["PATCH", "DELETE"] {
        let a = call(
            &server,
            m,
            &format!("/api/v1/streams/categories/{cat}"),
            Some(&beta),
            Some(&json!({ "name": "taken" })),
        )
        .await;
        assert_eq!(a.status, 404, "{m}: {a:?}");
    }
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/accounts",
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(a.body["items"], json!([]), "{a:?}");
    let a = call(
        &server,
        "GET",
        "/api/v1/viewer-admin/catalog",
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(a.body["items"], json!([]), "{a:?}");
    // …and staff of another organization do not reach premium streams of this one.
    patch_stream(&server, &admin, &id, json!({ "access_level": "vip" })).await;
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        Some(&beta),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "upgrade_required"), "{a:?}");
    // Bad credentials are refused, not taken as anonymous.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/streams/{id}/playback"),
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(a.status, 401, "{a:?}");
}

lunora_testkit::db_tests!(
    catalog_search_and_categories,
    subscription_and_access_on_the_playback_token,
    viewing_counts_history_and_privacy,
    export_and_delete_cascade,
    recommendations_with_reasons_and_stats,
    roles_and_other_organizations,
    unseen_accounts_are_renewed_and_lapse_in_the_background,
);
