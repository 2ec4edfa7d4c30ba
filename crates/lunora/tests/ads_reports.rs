//! Ad placements, campaign reports and advertiser billing (seed 002: clients view reports and
//! billing, sellers view analytics): what each role may see and book, another organization's
//! ids, and the sums a client would check on its invoice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "Staff-Password-42!";

async fn create(server: &Server, token: &str, path: &str, body: Value) -> String {
    let a = call(server, "POST", path, Some(token), Some(&body)).await;
    assert_eq!(a.status, 201, "POST {path} {body}: {a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

async fn get(server: &Server, path: &str, token: &str) -> Answer {
    call(server, "GET", path, Some(token), None).await
}

async fn user(server: &Server, admin: &str, email: &str, role: &str) -> (String, String) {
    let id = invite_user(server, admin, email, role, PASSWORD).await;
    (id, token_for(server, email, PASSWORD).await)
}

async fn reports_billing_and_their_role_rules(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let (_, s1) = user(&server, &admin, "s1@ads.example", "seller").await;
    let (_, s2) = user(&server, &admin, "s2@ads.example", "seller").await;
    let (_, producer) = user(&server, &admin, "p@ads.example", "producer").await;
    let (t_id, talent) = user(&server, &admin, "t@ads.example", "talent").await;
    let (c1_id, c1) = user(&server, &admin, "c1@ads.example", "client").await;
    let (c2_id, c2) = user(&server, &admin, "c2@ads.example", "client").await;

    // Two advertisers, one campaign each, sold by two sellers; one client user per advertiser.
    let acme = create(&server, &s1, "/api/v1/clients", json!({"name": "Acme"})).await;
    let globex = create(&server, &s2, "/api/v1/clients", json!({"name": "Globex"})).await;
    let spring = create(&server, &s1, "/api/v1/campaigns", json!({"client_id": acme, "name": "Acme spring", "budget_cents": 100_000, "status": "active"})).await;
    let launch = create(
        &server,
        &s2,
        "/api/v1/campaigns",
        json!({"client_id": globex, "name": "Globex launch", "budget_cents": 50_000}),
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

    // The producer's schedule: one episode already out, two still to air.
    let show = create(
        &server,
        &producer,
        "/api/v1/shows",
        json!({"name": "Morning Cast"}),
    )
    .await;
    let other_show = create(
        &server,
        &producer,
        "/api/v1/shows",
        json!({"name": "Night Talk"}),
    )
    .await;
    let aired = create(&server, &producer, "/api/v1/episodes", json!({"show_id": show, "title": "Ep 1", "air_date": "2026-03-10", "status": "published", "talent_ids": [t_id]})).await;
    let next = create(
        &server,
        &producer,
        "/api/v1/episodes",
        json!({"show_id": show, "title": "Ep 2", "air_date": "2026-04-02", "status": "scheduled"}),
    )
    .await;
    let night = create(&server, &producer, "/api/v1/episodes", json!({"show_id": other_show, "title": "Night 1", "air_date": "2026-03-20", "status": "recorded"})).await;

    // The seller picks from the inventory (sellers do not list episodes otherwise).
    let inv = get(&server, "/api/v1/ads/inventory", &s1).await;
    assert_eq!(inv.status, 200, "{inv:?}");
    let titles: Vec<(&str, &str)> = inv.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["title"].as_str().unwrap(),
                e["show_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        vec![
            ("Ep 1", "Morning Cast"),
            ("Night 1", "Night Talk"),
            ("Ep 2", "Morning Cast")
        ]
    );
    assert_eq!(get(&server, "/api/v1/ads/inventory", &c1).await.status, 403);

    // The seller books spots on their campaign.
    let spots = format!("/api/v1/campaigns/{spring}/placements");
    let pre = create(
        &server,
        &s1,
        &spots,
        json!({"episode_id": aired, "position": "pre", "rate_cents": 10_000}),
    )
    .await;
    create(
        &server,
        &s1,
        &spots,
        json!({"episode_id": next, "position": "mid", "rate_cents": 20_000}),
    )
    .await;
    let night_spot = create(
        &server,
        &s1,
        &spots,
        json!({"episode_id": night, "position": "post", "rate_cents": 5_000}),
    )
    .await;
    // The same spot twice, a made-up position, an unknown episode: refused with the reason.
    let a = call(
        &server,
        "POST",
        &spots,
        Some(&s1),
        Some(&json!({"episode_id": aired, "position": "pre", "rate_cents": 1})),
    )
    .await;
    assert_eq!(a.status, 409, "{a:?}");
    let a = call(
        &server,
        "POST",
        &spots,
        Some(&s1),
        Some(&json!({"episode_id": aired, "position": "end", "rate_cents": 1})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("position")),
        "{a:?}"
    );
    let a = call(
        &server,
        "POST",
        &spots,
        Some(&s1),
        Some(&json!({"episode_id": "nope", "position": "mid", "rate_cents": 1})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("episode_id")),
        "{a:?}"
    );
    let a = call(
        &server,
        "POST",
        &spots,
        Some(&s1),
        Some(&json!({"episode_id": next, "position": "post", "rate_cents": -5})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("rate_cents")),
        "{a:?}"
    );

    // Who may book: not the other seller (cannot see it), not a client or talent (no right).
    let body = json!({"episode_id": next, "position": "post", "rate_cents": 1});
    for (who, want) in [(&s2, 404), (&c1, 403), (&talent, 403), (&producer, 403)] {
        let a = call(&server, "POST", &spots, Some(who), Some(&body)).await;
        assert_eq!(a.status, want, "{a:?}");
    }

    // The report: one spot aired (Ep 1 is published), three booked.
    let report = format!("/api/v1/campaigns/{spring}/report");
    let r = get(&server, &report, &s1).await;
    assert_eq!(r.status, 200, "{r:?}");
    let b = &r.body;
    assert_eq!(b["budget_cents"], 100_000);
    assert_eq!(b["booked_spots"], 3);
    assert_eq!(b["booked_cents"], 35_000);
    assert_eq!(b["delivered_spots"], 1);
    assert_eq!(b["spend_cents"], 10_000);
    assert_eq!(b["remaining_cents"], 90_000);
    assert_eq!(b["unbooked_cents"], 65_000);
    let shows: Vec<(&str, i64, i64)> = b["shows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["show_name"].as_str().unwrap(),
                s["booked_cents"].as_i64().unwrap(),
                s["delivered_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shows,
        vec![("Morning Cast", 30_000, 10_000), ("Night Talk", 5_000, 0)]
    );
    let episodes: Vec<&str> = b["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["episode_title"].as_str().unwrap())
        .collect();
    assert_eq!(episodes, vec!["Ep 1", "Night 1", "Ep 2"], "by air date");

    // Who sees the report: the seller, the admin, its advertiser's client user; not the other
    // seller or the other advertiser's client (404 as if it did not exist); not talent (403).
    for (who, want) in [
        (&s1, 200),
        (&admin, 200),
        (&c1, 200),
        (&s2, 404),
        (&c2, 404),
        (&talent, 403),
        (&producer, 403),
    ] {
        assert_eq!(
            get(&server, &report, who).await.status,
            want,
            "report as {want}"
        );
        assert_eq!(
            get(&server, &spots, who).await.status,
            want,
            "spots as {want}"
        );
    }
    // A client of advertiser A is refused B's report and B's billing.
    assert_eq!(
        get(&server, &format!("/api/v1/campaigns/{launch}/report"), &c1)
            .await
            .status,
        404
    );
    assert_eq!(
        get(&server, &format!("/api/v1/clients/{globex}/billing"), &c1)
            .await
            .status,
        404
    );
    assert_eq!(
        get(&server, &format!("/api/v1/campaigns/{launch}/report"), &c2)
            .await
            .status,
        200
    );

    // The spot list says what aired.
    let list = get(&server, &spots, &c1).await;
    let delivered: Vec<(&str, bool)> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["episode_title"].as_str().unwrap(),
                p["delivered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        delivered,
        vec![("Ep 1", true), ("Night 1", false), ("Ep 2", false)]
    );

    // Billing: only delivered spots, per month of air date.
    let billing = format!("/api/v1/clients/{acme}/billing");
    let bill = get(&server, &billing, &c1).await;
    assert_eq!(bill.status, 200, "{bill:?}");
    assert_eq!(bill.body["client_name"], "Acme");
    assert_eq!(bill.body["total_cents"], 10_000);
    assert_eq!(bill.body["open_booked_cents"], 25_000);
    assert_eq!(bill.body["months"].as_array().unwrap().len(), 1, "{bill:?}");
    assert_eq!(bill.body["months"][0]["month"], "2026-03");
    assert_eq!(bill.body["months"][0]["delivered_spots"], 1);
    let line = &bill.body["months"][0]["lines"][0];
    assert_eq!(
        (
            line["campaign_name"].as_str(),
            line["episode_title"].as_str(),
            line["position"].as_str(),
            line["amount_cents"].as_i64()
        ),
        (Some("Acme spring"), Some("Ep 1"), Some("pre"), Some(10_000))
    );
    for (who, want) in [
        (&s1, 200),
        (&admin, 200),
        (&s2, 404),
        (&c2, 404),
        (&talent, 403),
    ] {
        assert_eq!(
            get(&server, &billing, who).await.status,
            want,
            "billing as {want}"
        );
    }

    // Ep 2 and Night 1 air: the report and the bill follow; a new month appears.
    for ep in [&next, &night] {
        let a = call(
            &server,
            "PUT",
            &format!("/api/v1/episodes/{ep}"),
            Some(&producer),
            Some(&json!({"status": "published"})),
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    let r = get(&server, &report, &c1).await;
    assert_eq!(
        (
            r.body["delivered_spots"].as_i64(),
            r.body["spend_cents"].as_i64(),
            r.body["remaining_cents"].as_i64()
        ),
        (Some(3), Some(35_000), Some(65_000))
    );
    let bill = get(&server, &billing, &c1).await;
    let months: Vec<(&str, i64, i64)> = bill.body["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap(),
                m["delivered_spots"].as_i64().unwrap(),
                m["amount_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(months, vec![("2026-03", 2, 15_000), ("2026-04", 1, 20_000)]);
    assert_eq!(bill.body["total_cents"], 35_000);

    // Cancelling a spot: not by the other seller, yes by the owner; the report drops it.
    let one = format!("/api/v1/campaigns/{spring}/placements/{night_spot}");
    assert_eq!(
        call(&server, "DELETE", &one, Some(&s2), None).await.status,
        404
    );
    assert_eq!(
        call(&server, "DELETE", &one, Some(&c1), None).await.status,
        403
    );
    assert_eq!(
        call(&server, "DELETE", &one, Some(&s1), None).await.status,
        204
    );
    assert_eq!(
        call(&server, "DELETE", &one, Some(&s1), None).await.status,
        404
    );
    let r = get(&server, &report, &s1).await;
    assert_eq!(r.body["booked_cents"], 30_000);
    // The spot of another campaign cannot be deleted through this one.
    let wrong = format!("/api/v1/campaigns/{launch}/placements/{pre}");
    assert_eq!(
        call(&server, "DELETE", &wrong, Some(&admin), None)
            .await
            .status,
        404
    );

    // Bookings are in the campaign's activity log.
    let acts = get(
        &server,
        &format!("/api/v1/activities?entity_type=campaign&entity_id={spring}"),
        &s1,
    )
    .await;
    let actions: Vec<&str> = acts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"placement_added"), "{actions:?}");
    assert!(actions.contains(&"placement_removed"), "{actions:?}");

    // The people directory names the workspace's staff; a client user sees only itself.
    let people = get(&server, "/api/v1/ads/people", &s1).await;
    assert_eq!(people.status, 200, "{people:?}");
    let emails: Vec<&str> = people.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&"s2@ads.example") && emails.contains(&"t@ads.example"),
        "{emails:?}"
    );
    assert!(!emails.contains(&"c1@ads.example"), "{emails:?}");
    let people = get(&server, "/api/v1/ads/people", &c1).await;
    assert_eq!(
        people.body["items"].as_array().unwrap().len(),
        1,
        "{people:?}"
    );
    assert_eq!(people.body["items"][0]["email"], "c1@ads.example");
}

async fn another_organizations_ids_are_404(db: DbKind) {
    let server = start(db).await;
    let root = admin_token(&server).await;
    let beta = second_organization(
        &server,
        &root,
        "Beta",
        "beta",
        "boss@beta.example",
        PASSWORD,
    )
    .await;

    let client = create(&server, &root, "/api/v1/clients", json!({"name": "Alpha"})).await;
    let campaign = create(
        &server,
        &root,
        "/api/v1/campaigns",
        json!({"client_id": client, "name": "Alpha spring"}),
    )
    .await;
    let show = create(
        &server,
        &root,
        "/api/v1/shows",
        json!({"name": "Alpha show"}),
    )
    .await;
    let ep = create(
        &server,
        &root,
        "/api/v1/episodes",
        json!({"show_id": show, "title": "A1", "status": "published", "air_date": "2026-01-05"}),
    )
    .await;
    let spot = create(
        &server,
        &root,
        &format!("/api/v1/campaigns/{campaign}/placements"),
        json!({"episode_id": ep, "position": "pre", "rate_cents": 700}),
    )
    .await;

    for path in [
        format!("/api/v1/campaigns/{campaign}/report"),
        format!("/api/v1/campaigns/{campaign}/placements"),
        format!("/api/v1/clients/{client}/billing"),
    ] {
        let a = get(&server, &path, &beta).await;
        assert_eq!(a.status, 404, "{path}: {a:?}");
    }
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/campaigns/{campaign}/placements/{spot}"),
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    // Beta's own campaign cannot book Alpha's episode.
    let bc = create(
        &server,
        &beta,
        "/api/v1/clients",
        json!({"name": "Beta client"}),
    )
    .await;
    let bcamp = create(
        &server,
        &beta,
        "/api/v1/campaigns",
        json!({"client_id": bc, "name": "Beta spring"}),
    )
    .await;
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{bcamp}/placements"),
        Some(&beta),
        Some(&json!({"episode_id": ep, "position": "pre", "rate_cents": 1})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("episode_id")),
        "{a:?}"
    );
    // Beta's directory does not list Alpha's people.
    let people = get(&server, "/api/v1/ads/people", &beta).await;
    assert!(
        people.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["email"] != ADMIN_EMAIL),
        "{people:?}"
    );
    // Alpha still has its spot and bill.
    let bill = get(&server, &format!("/api/v1/clients/{client}/billing"), &root).await;
    assert_eq!(bill.body["total_cents"], 700, "{bill:?}");
}

lunora_testkit::db_tests!(
    reports_billing_and_their_role_rules,
    another_organizations_ids_are_404,
);
