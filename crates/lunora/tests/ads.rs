//! The podcast advertising workspace (seed 002): role rules on every route and list, foreign
//! tenants, ETag conflicts, the activity log, WebSocket events and presence, validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "Staff-Password-42!";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, token: &str) -> Ws {
    let mut req = format!("ws://{}/api/v1/events", server.http)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message whose `type` is `kind` and that satisfies `pred`, within `secs`.
async fn next_where(ws: &mut Ws, kind: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no matching `{kind}` message within {secs}s"))
            .expect("stream open")
            .expect("message");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind && pred(&v) {
                return v;
            }
        }
    }
}

/// `method path` with an optional `If-Match`.
async fn put_if(server: &Server, path: &str, token: &str, body: Value, if_match: &str) -> Answer {
    let res = server
        .client
        .put(server.url(path))
        .bearer_auth(token)
        .header("if-match", if_match)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

fn ids(list: &Answer) -> Vec<String> {
    list.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list:?}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

struct Staff {
    admin: String,
    seller1: (String, String),
    seller2: (String, String),
    producer: (String, String),
    talent1: (String, String),
    talent2: (String, String),
    client1: (String, String),
    client2: (String, String),
}

/// Invites one user per role and answers (id, token) of each.
async fn staff(server: &Server) -> Staff {
    let admin = admin_token(server).await;
    let mut out = Vec::new();
    for (email, role) in [
        ("s1@ads.example", "seller"),
        ("s2@ads.example", "seller"),
        ("p@ads.example", "producer"),
        ("t1@ads.example", "talent"),
        ("t2@ads.example", "talent"),
        ("c1@ads.example", "client"),
        ("c2@ads.example", "client"),
    ] {
        let id = invite_user(server, &admin, email, role, PASSWORD).await;
        let token = token_for(server, email, PASSWORD).await;
        out.push((id, token));
    }
    let mut it = out.into_iter();
    Staff {
        admin,
        seller1: it.next().unwrap(),
        seller2: it.next().unwrap(),
        producer: it.next().unwrap(),
        talent1: it.next().unwrap(),
        talent2: it.next().unwrap(),
        client1: it.next().unwrap(),
        client2: it.next().unwrap(),
    }
}

async fn create(server: &Server, token: &str, path: &str, body: Value) -> String {
    let a = call(server, "POST", path, Some(token), Some(&body)).await;
    assert_eq!(a.status, 201, "POST {path} {body}: {a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

async fn status(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> u16 {
    call(server, method, path, Some(token), body.as_ref())
        .await
        .status
}

async fn role_rules_and_row_filters(db: DbKind) {
    let server = start(db).await;
    let s = staff(&server).await;
    let (s1_id, s1) = (&s.seller1.0, &s.seller1.1);
    let (s2_id, s2) = (&s.seller2.0, &s.seller2.1);
    let (_, producer) = (&s.producer.0, &s.producer.1);
    let (t1_id, t1) = (&s.talent1.0, &s.talent1.1);
    let (t2_id, t2) = (&s.talent2.0, &s.talent2.1);
    let (c1_id, c1) = (&s.client1.0, &s.client1.1);
    let (c2_id, c2) = (&s.client2.0, &s.client2.1);

    // Sellers create advertisers and campaigns; each owns its own.
    let acme = create(
        &server,
        s1,
        "/api/v1/clients",
        json!({"name": "Acme", "email": "ads@acme.example"}),
    )
    .await;
    let globex = create(
        &server,
        s2,
        "/api/v1/clients",
        json!({"name": "Globex", "email": "ads@globex.example"}),
    )
    .await;
    let a1 = create(&server, s1, "/api/v1/campaigns", json!({"client_id": acme, "name": "Acme spring", "budget_cents": 500000, "start_date": "2026-03-01", "end_date": "2026-04-30"})).await;
    let b1 = create(
        &server,
        s2,
        "/api/v1/campaigns",
        json!({"client_id": globex, "name": "Globex launch", "status": "active"}),
    )
    .await;
    // A seller cannot put a campaign on an advertiser they cannot see.
    let a = call(
        &server,
        "POST",
        "/api/v1/campaigns",
        Some(s1),
        Some(&json!({"client_id": globex, "name": "x"})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("client_id")),
        "{a:?}"
    );

    // Client users are linked to one advertiser each (admins or sellers link them).
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/clients/{acme}/users"),
        Some(&s.admin),
        Some(&json!({"user_id": c1_id})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["user_ids"], json!([c1_id]));
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/clients/{globex}/users"),
        Some(s2),
        Some(&json!({"user_id": c2_id})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // Only users of role client may be linked.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/clients/{acme}/users"),
        Some(&s.admin),
        Some(&json!({"user_id": t1_id})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("user_id")),
        "{a:?}"
    );

    // Lists are filtered by ownership.
    let all = call(&server, "GET", "/api/v1/campaigns", Some(&s.admin), None).await;
    assert_eq!(ids(&all).len(), 2);
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/campaigns", Some(s1), None).await),
        vec![a1.clone()]
    );
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/campaigns", Some(s2), None).await),
        vec![b1.clone()]
    );
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/campaigns", Some(c1), None).await),
        vec![a1.clone()]
    );
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/campaigns", Some(c2), None).await),
        vec![b1.clone()]
    );
    // Even when asking for the other advertiser's campaigns by filter.
    assert!(ids(&call(
        &server,
        "GET",
        &format!("/api/v1/campaigns?client_id={globex}"),
        Some(c1),
        None
    )
    .await)
    .is_empty());
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/clients", Some(c1), None).await),
        vec![acme.clone()]
    );
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/clients", Some(s1), None).await),
        vec![acme.clone()]
    );
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/clients", Some(&s.admin), None).await).len(),
        2
    );

    // A client user: read-only, own advertiser only.
    assert_eq!(
        status(&server, "GET", &format!("/api/v1/campaigns/{a1}"), c1, None).await,
        200
    );
    assert_eq!(
        status(&server, "GET", &format!("/api/v1/campaigns/{b1}"), c1, None).await,
        404
    );
    assert_eq!(
        status(
            &server,
            "GET",
            &format!("/api/v1/clients/{globex}"),
            c1,
            None
        )
        .await,
        404
    );
    assert_eq!(
        status(
            &server,
            "PUT",
            &format!("/api/v1/campaigns/{a1}"),
            c1,
            Some(json!({"name": "mine"}))
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &server,
            "POST",
            "/api/v1/campaigns",
            c1,
            Some(json!({"client_id": acme, "name": "x"}))
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &server,
            "POST",
            "/api/v1/clients",
            c1,
            Some(json!({"name": "x"}))
        )
        .await,
        403
    );
    assert_eq!(status(&server, "GET", "/api/v1/shows", c1, None).await, 403);
    assert_eq!(
        status(&server, "GET", "/api/v1/episodes", c1, None).await,
        403
    );

    // Sellers: the other seller's campaign is invisible until they join its team.
    assert_eq!(
        status(&server, "GET", &format!("/api/v1/campaigns/{b1}"), s1, None).await,
        404
    );
    assert_eq!(
        status(
            &server,
            "PUT",
            &format!("/api/v1/campaigns/{b1}"),
            s1,
            Some(json!({"name": "hijack"}))
        )
        .await,
        404
    );
    assert_eq!(
        status(&server, "GET", "/api/v1/episodes", s1, None).await,
        403
    );
    assert_eq!(
        status(
            &server,
            "POST",
            "/api/v1/shows",
            s1,
            Some(json!({"name": "x"}))
        )
        .await,
        403
    );
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{b1}/team"),
        Some(s2),
        Some(&json!({"user_id": s1_id, "permissions": ["view"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["team"][0]["permissions"], json!(["view"]));
    let mine = ids(&call(
        &server,
        "GET",
        "/api/v1/campaigns?sort=name",
        Some(s1),
        None,
    )
    .await);
    assert_eq!(
        mine,
        vec![a1.clone(), b1.clone()],
        "team membership shows the campaign"
    );
    // ...and its advertiser.
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/clients?sort=name", Some(s1), None).await),
        vec![acme.clone(), globex.clone()]
    );
    // View only: no edit, no team management.
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/campaigns/{b1}"),
        Some(s1),
        Some(&json!({"name": "edited"})),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(
        status(
            &server,
            "POST",
            &format!("/api/v1/campaigns/{b1}/team"),
            s1,
            Some(json!({"user_id": s1_id, "permissions": ["edit"]}))
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &server,
            "DELETE",
            &format!("/api/v1/campaigns/{b1}"),
            s1,
            None
        )
        .await,
        403
    );
    // With edit: can change it.
    call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{b1}/team"),
        Some(s2),
        Some(&json!({"user_id": s1_id, "permissions": ["edit"]})),
    )
    .await;
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/campaigns/{b1}"),
        Some(s1),
        Some(&json!({"name": "Globex launch v2"})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["name"].as_str()),
        (200, Some("Globex launch v2")),
        "{a:?}"
    );
    // Team members must be sellers or admins.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{b1}/team"),
        Some(s2),
        Some(&json!({"user_id": t1_id})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("user_id")),
        "{a:?}"
    );
    // Removed: invisible again.
    assert_eq!(
        status(
            &server,
            "DELETE",
            &format!("/api/v1/campaigns/{b1}/team/{s1_id}"),
            s2,
            None
        )
        .await,
        204
    );
    assert_eq!(
        status(&server, "GET", &format!("/api/v1/campaigns/{b1}"), s1, None).await,
        404
    );

    // Producers: shows and episodes, talent assignment; no campaigns or advertisers.
    assert_eq!(
        status(&server, "GET", "/api/v1/campaigns", producer, None).await,
        403
    );
    assert_eq!(
        status(&server, "GET", "/api/v1/clients", producer, None).await,
        403
    );
    let show = create(
        &server,
        producer,
        "/api/v1/shows",
        json!({"name": "Morning Pod"}),
    )
    .await;
    let other_show = create(
        &server,
        producer,
        "/api/v1/shows",
        json!({"name": "Evening Pod"}),
    )
    .await;
    let e1 = create(&server, producer, "/api/v1/episodes", json!({"show_id": show, "title": "Ep 1", "air_date": "2026-05-01", "status": "scheduled", "talent_ids": [t1_id]})).await;
    let e2 = create(
        &server,
        producer,
        "/api/v1/episodes",
        json!({"show_id": other_show, "title": "Ep 2", "air_date": "2026-05-08"}),
    )
    .await;
    let a = call(
        &server,
        "POST",
        "/api/v1/episodes",
        Some(producer),
        Some(&json!({"show_id": show, "title": "x", "talent_ids": [s1_id]})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("talent_ids[0]")),
        "{a:?}"
    );
    assert_eq!(
        ids(&call(
            &server,
            "GET",
            "/api/v1/episodes?sort=air_date",
            Some(producer),
            None
        )
        .await),
        vec![e1.clone(), e2.clone()]
    );
    assert_eq!(
        ids(&call(
            &server,
            "GET",
            "/api/v1/episodes?from=2026-05-02",
            Some(producer),
            None
        )
        .await),
        vec![e2.clone()]
    );

    // Talent: only assigned episodes (and their shows); read-only.
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/episodes", Some(t1), None).await),
        vec![e1.clone()]
    );
    assert!(ids(&call(&server, "GET", "/api/v1/episodes", Some(t2), None).await).is_empty());
    assert_eq!(
        status(&server, "GET", &format!("/api/v1/episodes/{e1}"), t2, None).await,
        404
    );
    assert_eq!(
        status(&server, "GET", &format!("/api/v1/episodes/{e2}"), t1, None).await,
        404
    );
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/shows", Some(t1), None).await),
        vec![show.clone()]
    );
    assert_eq!(
        status(
            &server,
            "GET",
            &format!("/api/v1/shows/{other_show}"),
            t1,
            None
        )
        .await,
        404
    );
    assert_eq!(
        status(
            &server,
            "PUT",
            &format!("/api/v1/episodes/{e1}"),
            t1,
            Some(json!({"title": "mine"}))
        )
        .await,
        403
    );
    assert_eq!(
        status(&server, "GET", "/api/v1/campaigns", t1, None).await,
        403
    );
    // Reassigning moves the episode from one talent's list to the other's.
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/episodes/{e1}"),
        Some(producer),
        Some(&json!({"talent_ids": [t2_id]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(ids(&call(&server, "GET", "/api/v1/episodes", Some(t1), None).await).is_empty());
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/episodes", Some(t2), None).await),
        vec![e1.clone()]
    );

    // Availability: talent record their own; producers see everyone's.
    let a = call(&server, "POST", "/api/v1/availability", Some(t1), Some(&json!({"start_date": "2026-05-01", "end_date": "2026-05-03", "available": false, "note": "away"}))).await;
    assert_eq!(a.status, 201, "{a:?}");
    let t1_slot = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        status(
            &server,
            "POST",
            "/api/v1/availability",
            t1,
            Some(json!({"user_id": t2_id, "start_date": "2026-05-01", "end_date": "2026-05-02"}))
        )
        .await,
        403
    );
    create(
        &server,
        t2,
        "/api/v1/availability",
        json!({"start_date": "2026-06-01", "end_date": "2026-06-02"}),
    )
    .await;
    let mine = call(&server, "GET", "/api/v1/availability", Some(t1), None).await;
    assert_eq!(ids(&mine), vec![t1_slot.clone()]);
    // A talent asking for someone else's still gets only their own.
    let mine = call(
        &server,
        "GET",
        &format!("/api/v1/availability?talent_id={t2_id}"),
        Some(t1),
        None,
    )
    .await;
    assert_eq!(ids(&mine), vec![t1_slot.clone()]);
    assert_eq!(
        ids(&call(&server, "GET", "/api/v1/availability", Some(producer), None).await).len(),
        2
    );
    assert_eq!(
        status(
            &server,
            "DELETE",
            &format!("/api/v1/availability/{t1_slot}"),
            t2,
            None
        )
        .await,
        404
    );
    assert_eq!(
        status(&server, "GET", "/api/v1/availability", s1, None).await,
        403
    );
    assert_eq!(
        status(&server, "GET", "/api/v1/availability", c1, None).await,
        403
    );

    // Activities: non-admins see entities they can see, or their own actions.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=campaign&entity_id={b1}"),
        Some(c1),
        None,
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=campaign&entity_id={a1}"),
        Some(c1),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["items"][0]["action"], "created");
    let a = call(&server, "GET", "/api/v1/activities", Some(s1), None).await;
    assert!(
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["actor_id"] == s1_id.as_str()),
        "{a:?}"
    );
    let _ = (s2_id, c2);
}

async fn foreign_tenant_ids_are_404(db: DbKind) {
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

    let client = create(
        &server,
        &root,
        "/api/v1/clients",
        json!({"name": "Alpha client"}),
    )
    .await;
    let campaign = create(
        &server,
        &root,
        "/api/v1/campaigns",
        json!({"client_id": client, "name": "Alpha campaign"}),
    )
    .await;
    let show = create(
        &server,
        &root,
        "/api/v1/shows",
        json!({"name": "Alpha show"}),
    )
    .await;
    let episode = create(
        &server,
        &root,
        "/api/v1/episodes",
        json!({"show_id": show, "title": "Alpha ep"}),
    )
    .await;

    for (kind, id) in [
        ("clients", &client),
        ("campaigns", &campaign),
        ("shows", &show),
        ("episodes", &episode),
    ] {
        let path = format!("/api/v1/{kind}/{id}");
        assert_eq!(
            status(&server, "GET", &path, &beta, None).await,
            404,
            "GET {path}"
        );
        assert_eq!(
            status(&server, "PUT", &path, &beta, Some(json!({}))).await,
            404,
            "PUT {path}"
        );
        assert_eq!(
            status(&server, "DELETE", &path, &beta, None).await,
            404,
            "DELETE {path}"
        );
        let list = call(
            &server,
            "GET",
            &format!("/api/v1/{kind}"),
            Some(&beta),
            None,
        )
        .await;
        assert!(
            ids(&list).is_empty(),
            "{kind} of another tenant listed: {list:?}"
        );
    }
    assert_eq!(
        status(
            &server,
            "POST",
            &format!("/api/v1/campaigns/{campaign}/team"),
            &beta,
            Some(json!({"user_id": "x"}))
        )
        .await,
        404
    );
    let a = call(
        &server,
        "POST",
        "/api/v1/campaigns",
        Some(&beta),
        Some(&json!({"client_id": client, "name": "steal"})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("client_id")),
        "{a:?}"
    );
    let a = call(
        &server,
        "POST",
        "/api/v1/episodes",
        Some(&beta),
        Some(&json!({"show_id": show, "title": "steal"})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("show_id")),
        "{a:?}"
    );
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=campaign&entity_id={campaign}"),
        Some(&beta),
        None,
    )
    .await;
    assert!(ids(&a).is_empty(), "{a:?}");
    // The alpha admin's WebSocket may subscribe; beta's may not.
    let mut ws = connect(&server, &beta).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": [format!("campaign:{campaign}"), "ads"]}),
    )
    .await;
    let sub = next_where(&mut ws, "subscribed", 5, |_| true).await;
    assert_eq!(sub["topics"], json!(["ads"]), "{sub}");
}

async fn conflicts_activities_events_and_validation(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let seller_id = invite_user(&server, &admin, "s@ads.example", "seller", PASSWORD).await;
    let seller = token_for(&server, "s@ads.example", PASSWORD).await;
    let client = create(&server, &seller, "/api/v1/clients", json!({"name": "Acme"})).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/campaigns",
        Some(&seller),
        Some(&json!({"client_id": client, "name": "Spring", "budget_cents": 1000})),
    )
    .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.headers["etag"], "\"1\"");
    let id = a.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/campaigns/{id}");

    // A page open on the campaign (the admin's) and on the seller's own user topic.
    let mut ws = connect(&server, &admin).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": [format!("campaign:{id}"), "ads"]}),
    )
    .await;
    let sub = next_where(&mut ws, "subscribed", 5, |_| true).await;
    assert_eq!(sub["refused"], json!([]), "{sub}");

    // Two people read version 1; the first saves.
    let a = put_if(
        &server,
        &path,
        &admin,
        json!({"name": "Spring (admin)", "status": "active"}),
        "\"1\"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.headers["etag"], "\"2\"");
    let ev = next_where(&mut ws, "campaign.updated", 10, |v| {
        v["topic"] == format!("campaign:{id}")
    })
    .await;
    assert_eq!(ev["data"]["after"]["name"], "Spring (admin)");
    assert_eq!(ev["data"]["version"], 2);
    next_where(&mut ws, "campaign.status_changed", 10, |_| true).await;
    // The second save is refused with the other person's change in the answer.
    let a = put_if(
        &server,
        &path,
        &seller,
        json!({"name": "Spring (seller)"}),
        "\"1\"",
    )
    .await;
    assert_eq!(a.status, 412, "{a:?}");
    assert_eq!(a.body["code"], "precondition_failed");
    assert_eq!(a.body["current"]["name"], "Spring (admin)");
    assert_eq!(a.body["current"]["version"], 2);
    assert_eq!(a.headers["etag"], "\"2\"");
    let now = call(&server, "GET", &path, Some(&seller), None).await;
    assert_eq!(now.body["name"], "Spring (admin)");
    // Retrying on the current version works.
    let a = put_if(
        &server,
        &path,
        &seller,
        json!({"name": "Spring (seller)"}),
        "\"2\"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // Activity rows: who, what, before/after.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=campaign&entity_id={id}"),
        Some(&seller),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let items = a.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["updated", "updated", "created"], "{a:?}");
    assert_eq!(items[0]["actor_id"], seller_id.as_str());
    assert_eq!(items[0]["before"]["name"], "Spring (admin)");
    assert_eq!(items[0]["after"]["name"], "Spring (seller)");
    assert_eq!(items[1]["before"]["status"], "draft");
    assert_eq!(items[1]["after"]["status"], "active");
    assert!(items[2]["before"].is_null());
    let one = call(
        &server,
        "GET",
        &format!("/api/v1/activities/{}", items[0]["id"].as_str().unwrap()),
        Some(&seller),
        None,
    )
    .await;
    assert_eq!(one.body["after"]["name"], "Spring (seller)");

    // 90-day retention: an activity older than that is no longer listed.
    let pool = db_pool(&server).await;
    let old = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64)
        - 91 * 86_400_000;
    sqlx::query(&if db == DbKind::Postgres {
        "UPDATE ad_activities SET created_at = $1 WHERE action = 'created' AND entity_id = $2"
            .to_string()
    } else {
        "UPDATE ad_activities SET created_at = ? WHERE action = 'created' AND entity_id = ?"
            .to_string()
    })
    .bind(old)
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=campaign&entity_id={id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 2, "{a:?}");

    // Adding someone to the team tells them on their own topic.
    let other_id = invite_user(&server, &admin, "s2@ads.example", "seller", PASSWORD).await;
    let other = token_for(&server, "s2@ads.example", PASSWORD).await;
    let mut ws2 = connect(&server, &other).await;
    send(
        &mut ws2,
        json!({"type": "subscribe", "topics": [format!("user:{other_id}")]}),
    )
    .await;
    next_where(&mut ws2, "subscribed", 5, |_| true).await;
    let a = call(
        &server,
        "POST",
        &format!("{path}/team"),
        Some(&seller),
        Some(&json!({"user_id": other_id, "permissions": ["edit", "manage_team"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let ev = next_where(&mut ws2, "campaign.team_added", 10, |_| true).await;
    assert_eq!(ev["data"]["campaign_id"], id.as_str());

    // Validation names the field.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"status": "bogus"}), "status"),
        (json!({"budget_cents": -1}), "budget_cents"),
        (
            json!({"start_date": "2026-05-01", "end_date": "2026-04-01"}),
            "end_date",
        ),
        (json!({"start_date": "May 1st"}), "start_date"),
    ] {
        let a = call(&server, "PUT", &path, Some(&seller), Some(&body)).await;
        assert_eq!(
            (a.status, a.body["field"].as_str()),
            (400, Some(field)),
            "{body}: {a:?}"
        );
    }
    let a = call(
        &server,
        "POST",
        "/api/v1/campaigns",
        Some(&seller),
        Some(&json!({"name": "no client"})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("client_id")),
        "{a:?}"
    );
    let a = call(
        &server,
        "POST",
        "/api/v1/clients",
        Some(&seller),
        Some(&json!({"name": "B", "email": "not-an-address"})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("email")),
        "{a:?}"
    );
    for (q, field) in [
        ("limit=0", "limit"),
        ("sort=password", "sort"),
        ("from=tomorrow", "from"),
        ("status=gone", "status"),
    ] {
        let a = call(
            &server,
            "GET",
            &format!("/api/v1/campaigns?{q}"),
            Some(&seller),
            None,
        )
        .await;
        assert_eq!(
            (a.status, a.body["field"].as_str()),
            (400, Some(field)),
            "{q}: {a:?}"
        );
    }
    // Filters: name search, e-mail, paging.
    create(
        &server,
        &seller,
        "/api/v1/clients",
        json!({"name": "Initech", "email": "Buy@Initech.example"}),
    )
    .await;
    let a = call(
        &server,
        "GET",
        "/api/v1/clients?email=buy@initech.example",
        Some(&seller),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 1, "{a:?}");
    assert_eq!(a.body["items"][0]["name"], "Initech");
    let a = call(&server, "GET", "/api/v1/clients?q=ACM", Some(&seller), None).await;
    assert_eq!(a.body["items"][0]["name"], "Acme");
    let p1 = call(
        &server,
        "GET",
        "/api/v1/clients?limit=1&sort=-name",
        Some(&seller),
        None,
    )
    .await;
    assert_eq!(p1.body["items"][0]["name"], "Initech");
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = call(
        &server,
        "GET",
        &format!("/api/v1/clients?limit=1&sort=-name&cursor={cursor}"),
        Some(&seller),
        None,
    )
    .await;
    assert_eq!(p2.body["items"][0]["name"], "Acme");
    assert!(p2.body["next_cursor"].is_null());
}

async fn presence_of_two_sockets(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let seller_id = invite_user(&server, &admin, "s@ads.example", "seller", PASSWORD).await;
    let seller = token_for(&server, "s@ads.example", PASSWORD).await;
    let client = create(&server, &admin, "/api/v1/clients", json!({"name": "Acme"})).await;
    let id = create(
        &server,
        &admin,
        "/api/v1/campaigns",
        json!({"client_id": client, "name": "Spring"}),
    )
    .await;
    let topic = format!("campaign:{id}");

    // Not on the team: the seller may not announce presence there.
    let mut b = connect(&server, &seller).await;
    send(
        &mut b,
        json!({"type": "presence", "topic": topic, "state": "viewing"}),
    )
    .await;
    next_where(&mut b, "error", 5, |_| true).await;
    call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{id}/team"),
        Some(&admin),
        Some(&json!({"user_id": seller_id, "permissions": ["edit"]})),
    )
    .await;

    let mut a = connect(&server, &admin).await;
    send(
        &mut a,
        json!({"type": "presence", "topic": topic, "state": "viewing"}),
    )
    .await;
    next_where(&mut a, "presence_ack", 5, |_| true).await;
    send(
        &mut b,
        json!({"type": "presence", "topic": topic, "state": "editing"}),
    )
    .await;
    let both = next_where(&mut a, "presence", 10, |v| {
        v["data"]["present"].as_array().unwrap().len() == 2
    })
    .await;
    let mut states: Vec<&str> = both["data"]["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, vec!["editing", "viewing"], "{both}");
    assert!(both["data"]["present"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["user_id"] == seller_id.as_str()));
    // B sees A too.
    next_where(&mut b, "presence", 10, |v| {
        v["data"]["present"].as_array().unwrap().len() == 2
    })
    .await;

    // B's socket goes away: A sees only itself.
    drop(b);
    let alone = next_where(&mut a, "presence", 30, |v| {
        v["data"]["present"].as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(alone["data"]["present"][0]["state"], "viewing");
}

/// The caller's notifications of `kind`, waited for (they are stored in the background).
async fn notifications_of(server: &Server, token: &str, kind: &str, want: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let a = call(server, "GET", "/api/v1/notifications", Some(token), None).await;
        assert_eq!(a.status, 200, "{a:?}");
        let found: Vec<Value> = a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == kind)
            .cloned()
            .collect();
        if found.len() >= want {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {want} {kind} notification(s): {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The changes that matter notify the people they concern (team added, campaign status,
/// episode assignment), and batch-read marks exactly the caller's own.
async fn ad_changes_notify_and_batch_read_marks_them(db: DbKind) {
    let server = start(db).await;
    let s = staff(&server).await;
    let (s1_id, s1) = (&s.seller1.0, &s.seller1.1);
    let (t1_id, t1) = (&s.talent1.0, &s.talent1.1);
    let admin = &s.admin;

    let acme = create(&server, admin, "/api/v1/clients", json!({"name": "Acme"})).await;
    let campaign = create(
        &server,
        admin,
        "/api/v1/campaigns",
        json!({"client_id": acme, "name": "Acme summer"}),
    )
    .await;
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{campaign}/team"),
        Some(admin),
        Some(&json!({"user_id": s1_id, "permissions": ["view"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let added = notifications_of(&server, s1, "campaign.team_added", 1).await;
    assert!(
        added[0]["title"].as_str().unwrap().contains("Acme summer"),
        "{added:?}"
    );
    let a = put_if(
        &server,
        &format!("/api/v1/campaigns/{campaign}"),
        admin,
        json!({"status": "active"}),
        // Adding a team member made version 2.
        "\"2\"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let changed = notifications_of(&server, s1, "campaign.status_changed", 1).await;
    assert!(
        changed[0]["title"].as_str().unwrap().contains("active"),
        "{changed:?}"
    );
    let show = create(&server, admin, "/api/v1/shows", json!({"name": "Pod"})).await;
    create(
        &server,
        admin,
        "/api/v1/episodes",
        json!({"show_id": show, "title": "Pilot", "talent_ids": [t1_id]}),
    )
    .await;
    let assigned = notifications_of(&server, t1, "episode.assigned", 1).await;
    assert!(
        assigned[0]["title"].as_str().unwrap().contains("Pilot"),
        "{assigned:?}"
    );
    // Priorities: an assignment asks for action (warning = high), the others inform.
    assert_eq!(assigned[0]["severity"], "warning", "{assigned:?}");
    assert_eq!(added[0]["severity"], "info", "{added:?}");
    // Each was e-mailed too (into the outbox: the test server has no SMTP).
    for (email, kind, what) in [
        ("s1@ads.example", "campaign.team_added", "Acme summer"),
        ("s1@ads.example", "campaign.status_changed", "is now active"),
        ("t1@ads.example", "episode.assigned", "Pilot"),
    ] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let a = call(
                &server,
                "GET",
                &format!("/api/v1/outbox?recipient={email}"),
                Some(admin),
                None,
            )
            .await;
            assert_eq!(a.status, 200, "{a:?}");
            let mailed =
                a.body["items"].as_array().unwrap().iter().any(|m| {
                    m["kind"] == kind && m["subject"].as_str().unwrap_or("").contains(what)
                });
            if mailed {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kind} mail to {email}: {a:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The talent was told nothing about the campaign, the seller nothing about the episode.
    assert!(notifications_of(&server, t1, "campaign.team_added", 0)
        .await
        .is_empty());
    assert!(notifications_of(&server, s1, "episode.assigned", 0)
        .await
        .is_empty());

    // Bad batches are refused with the field named.
    let many: Vec<String> = (0..501).map(|i| format!("n{i}")).collect();
    for body in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": many}),
        json!({"ids": [added[0]["id"]], "all": true}),
        json!({"ids": "x"}),
    ] {
        let a = call(
            &server,
            "POST",
            "/api/v1/notifications/batch-read",
            Some(s1),
            Some(&body),
        )
        .await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
    }
    // Someone else's id in the batch is ignored, not marked.
    let a = call(
        &server,
        "POST",
        "/api/v1/notifications/batch-read",
        Some(s1),
        Some(&json!({"ids": [added[0]["id"], assigned[0]["id"]]})),
    )
    .await;
    assert_eq!((a.status, &a.body["marked"]), (200, &json!(1)), "{a:?}");
    let unread = call(
        &server,
        "GET",
        "/api/v1/notifications?unread=true",
        Some(t1),
        None,
    )
    .await;
    assert!(
        unread.body["items"]
            .to_string()
            .contains(assigned[0]["id"].as_str().unwrap()),
        "the talent's notification was marked by the seller: {unread:?}"
    );
    let unread = call(
        &server,
        "GET",
        "/api/v1/notifications?unread=true",
        Some(s1),
        None,
    )
    .await;
    assert_eq!(
        unread.body["items"].as_array().unwrap().len(),
        1,
        "{unread:?}"
    );
    // All: the rest of mine, once.
    let all = json!({"all": true});
    let a = call(
        &server,
        "POST",
        "/api/v1/notifications/batch-read",
        Some(s1),
        Some(&all),
    )
    .await;
    assert_eq!((a.status, &a.body["marked"]), (200, &json!(1)), "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/notifications/batch-read",
        Some(s1),
        Some(&all),
    )
    .await;
    assert_eq!((a.status, &a.body["marked"]), (200, &json!(0)), "{a:?}");
    let unread = call(
        &server,
        "GET",
        "/api/v1/notifications?unread=true",
        Some(s1),
        None,
    )
    .await;
    assert_eq!(unread.body["items"], json!([]), "{unread:?}");
}

/// A change that is committed stands even when its activity cannot be recorded: the request
/// answers the change (a client that got an error would retry it and make a second one), the
/// failure is counted in /metrics, and recording works again once the table is back.
async fn a_change_stands_when_its_activity_cannot_be_recorded(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let pool = db_pool(&server).await;
    let rename = async |from: &str, to: &str| {
        sqlx::query(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .execute(&pool)
            .await
            .unwrap();
    };
    rename("ad_activities", "ad_activities_away").await;

    let a = call(
        &server,
        "POST",
        "/api/v1/clients",
        Some(&admin),
        Some(&json!({"name": "Acme"})),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.body["id"].as_str().unwrap().to_string();
    let got = call(
        &server,
        "GET",
        &format!("/api/v1/clients/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (got.status, &got.body["name"]),
        (200, &json!("Acme")),
        "{got:?}"
    );
    let list = call(&server, "GET", "/api/v1/clients", Some(&admin), None).await;
    assert_eq!(
        ids(&list),
        std::slice::from_ref(&id),
        "exactly one advertiser: {list:?}"
    );
    let metrics = metrics_text(&server).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("lunora_ad_activity_failures_total") && l.ends_with(" 1")),
        "no failure counted in /metrics"
    );

    // The table is back: the next change is recorded again.
    rename("ad_activities_away", "ad_activities").await;
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/clients/{id}"),
        Some(&admin),
        Some(&json!({"name": "Acme Audio"})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let acts = call(
        &server,
        "GET",
        &format!("/api/v1/activities?entity_type=client&entity_id={id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(acts.status, 200, "{acts:?}");
    let actions: Vec<&str> = acts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["updated"], "{acts:?}");
}

lunora_testkit::db_tests!(
    a_change_stands_when_its_activity_cannot_be_recorded,
    role_rules_and_row_filters,
    foreign_tenant_ids_are_404,
    conflicts_activities_events_and_validation,
    presence_of_two_sockets,
    ad_changes_notify_and_batch_read_marks_them,
);
