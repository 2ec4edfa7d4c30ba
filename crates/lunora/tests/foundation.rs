//! The foundation, end to end against the real binary on both databases: health, problem+json
//! answers for bad input, OpenAPI, metrics, the embedded UI, lifecycle and durability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use lunora_testkit::{db_tests, DbKind, Server};
use serde_json::{json, Value};

db_tests!(
    health_reports_every_component,
    bad_input_answers_problem_json,
    openapi_docs_and_metrics_are_served,
    ui_is_embedded_with_spa_fallback_and_caching,
    sigterm_drains_and_restart_keeps_data,
    kill_9_loses_no_acknowledged_write,
    newer_schema_stops_startup_with_a_clear_message,
);

async fn health_reports_every_component(db: DbKind) {
    let server = start(db).await;
    let res = server
        .client
        .get(server.url("/api/v1/health/overall"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    for component in ["database", "disk", "media_engine"] {
        assert_eq!(body["components"][component]["status"], "healthy", "{body}");
    }
    let backend = match db {
        DbKind::Sqlite => "sqlite",
        DbKind::Postgres => "postgres",
    };
    assert_eq!(body["components"]["database"]["backend"], backend);
    assert!(body["components"]["disk"]["free_bytes"].as_u64().unwrap() > 0);
}

async fn problem(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "status {status}");
    let id = res.headers().get("x-request-id").cloned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["code"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        id.as_ref().map(|v| v.to_str().unwrap()),
        "request id in body and header"
    );
    (status, body)
}

async fn bad_input_answers_problem_json(db: DbKind) {
    let server = start(db).await;
    let c = &server.client;

    let (s, b) = problem(
        c.get(server.url("/api/v1/no/such/thing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")));

    let (s, b) = problem(
        c.delete(server.url("/api/v1/health/overall"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (405, Some("method_not_allowed")));

    // Malformed JSON: position given.
    let (s, b) = problem(
        c.post(server.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body("{\"email\": \"a@b.c\", ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("malformed_json")));
    assert!(b["detail"].as_str().unwrap().contains("line 1"), "{b}");

    // Wrong type: the field is named.
    let (s, b) = problem(
        c.post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": 5, "password": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (400, Some("email")));

    // Missing field: named too.
    let (s, b) = problem(
        c.post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": "a@b.c"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (400, Some("password")));

    // Not JSON at all.
    let (s, _) = problem(
        c.post(server.url("/api/v1/auth/login"))
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 415);

    // A body over the 1 MiB limit. The server answers before reading it all and closes that
    // connection, so it gets a client of its own.
    let c = &reqwest::Client::new();
    let big = format!(
        "{{\"email\":\"a@b.c\",\"password\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (s, b) = problem(
        c.post(server.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (413, Some("body_too_large")));

    // Headers over the limit.
    let c = &reqwest::Client::new();
    let (s, _) = problem(
        c.get(server.url("/api/v1/health/overall"))
            .header("x-padding", "p".repeat(40 * 1024))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 431);

    // A path parameter of the wrong shape is a 4xx problem, never a 500.
    let token = admin_token(&server).await;
    let res = c
        .get(server.url("/api/v1/channels?limit=abc"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (s, _) = problem(res).await;
    assert_eq!(s, 400);

    // The server is still healthy after all of that.
    let res = c
        .get(server.url("/api/v1/health/overall"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn openapi_docs_and_metrics_are_served(db: DbKind) {
    let server = start(db).await;
    let c = &server.client;
    let doc: Value = c
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/health/overall",
        "/api/v1/auth/login",
        "/api/v1/channels",
        "/api/v1/channels/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    // Two types once shared a schema name and the document kept only one of them: a client
    // generated from it got the wrong shape for the other endpoint. Each path names its own.
    let schema_of = |path: &str| -> Value {
        let op = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"];
        let text = op["schema"].to_string();
        let name = text
            .split("#/components/schemas/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("{path} answers no named schema: {text}"))
            .to_string();
        doc["components"]["schemas"][&name].clone()
    };
    let streaming = schema_of("/api/v1/streaming/sessions/{id}");
    assert!(
        streaming["properties"]["channel_id"].is_object(),
        "{streaming}"
    );
    let signin = schema_of("/api/v1/auth/sessions");
    assert!(signin["properties"]["user_agent"].is_object(), "{signin}");
    let docs = c.get(server.url("/api/v1/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("/api/v1/openapi.json"));

    // Make a few requests, then read them back from /metrics.
    let token = admin_token(&server).await;
    assert_eq!(
        create_channel(&server, &token, "metrics").await.status(),
        201
    );
    let text = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "lunora_http_requests_total{method=\"POST\",route=\"/api/v1/channels\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("lunora_http_request_duration_seconds_bucket"));
    assert!(text.contains("lunora_db_query_duration_seconds_bucket{query=\"channel_get\""));
    assert!(text.contains("process_resident_memory_bytes"));
}

async fn ui_is_embedded_with_spa_fallback_and_caching(db: DbKind) {
    let server = start(db).await;
    let c = &server.client;
    let index = c.get(server.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let html = index.text().await.unwrap();
    assert!(html.contains("<title>Lunora"), "{html}");
    // Deep links get the app shell.
    for path in ["/login", "/stream", "/admin/users"] {
        let res = c.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.text().await.unwrap(), html, "{path}");
    }
    // Hashed assets are immutable; a missing asset is a real 404.
    let asset = html
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("index references a hashed script");
    let res = c.get(server.url(asset)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let etag = res.headers()["etag"].clone();
    let again = c
        .get(server.url(asset))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = c
        .get(server.url("/assets/nope-123.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

async fn sigterm_drains_and_restart_keeps_data(db: DbKind) {
    let mut server = start(db).await;
    let token = admin_token(&server).await;
    let res = create_channel(&server, &token, "keeps").await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A request in flight when SIGTERM arrives still completes.
    let slow = {
        let client = server.client.clone();
        let url = server.url("/api/v1/auth/login");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let status = server.terminate(Duration::from_secs(10)).await.unwrap();
    assert!(status.success(), "exit status {status}\n{}", server.logs());
    let answered = slow.await.unwrap();
    if let Ok(r) = answered {
        assert_eq!(r.status(), 200, "in-flight request drained");
    }

    server.restart().await.unwrap();
    let token = admin_token(&server).await;
    let res = server
        .client
        .get(server.url(&format!("/api/v1/channels/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "keeps");
}

async fn kill_9_loses_no_acknowledged_write(db: DbKind) {
    let mut server = start(db).await;
    let token = admin_token(&server).await;
    // Writers keep creating channels; every 201 is an acknowledged write.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = server.client.clone();
        let url = server.url("/api/v1/channels");
        let token = token.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "name": format!("w{w}-{i}") }))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 201 => {
                        if let Ok(v) = r.json::<Value>().await {
                            acked
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap_or_default().to_string());
                        }
                    }
                    _ => break,
                }
            }
        }));
    }
    // Let some writes land, then pull the plug mid-stream.
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    server.restart().await.unwrap();
    let token = admin_token(&server).await;
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = server.url("/api/v1/channels?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = server
            .client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.insert(item["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let lost: Vec<_> = acked.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged channels lost after kill -9: {lost:?}",
        lost.len(),
        acked.len()
    );
}

async fn newer_schema_stops_startup_with_a_clear_message(db: DbKind) {
    let mut server = start(db).await;
    server.terminate(Duration::from_secs(10)).await.unwrap();
    let url = server.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rw",
            server.data_path("lunora.db").display()
        )
    });
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let checksum = match db {
        DbKind::Sqlite => "x'00'",
        DbKind::Postgres => "decode('00', 'hex')",
    };
    sqlx::query(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101, 'from the future', TRUE, {checksum}, 0)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let err = server.restart().await.unwrap_err().to_string();
    assert!(err.contains("newer than this binary"), "{err}");
    assert!(err.contains("exited with exit status: 1"), "{err}");
}

#[tokio::test]
async fn unreachable_database_stops_startup_with_a_clear_message() {
    let options = options(DbKind::Sqlite).env(
        "LUNORA_DATABASE_URL",
        "postgres://lunora:secret-pw@127.0.0.1:1/lunora?connect_timeout=2",
    );
    let err = Server::start(bin(), options)
        .await
        .err()
        .expect("must not start");
    let msg = err.to_string();
    assert!(msg.contains("cannot reach the database"), "{msg}");
    assert!(!msg.contains("secret-pw"), "password leaked: {msg}");
}

/// Host names per app (`http.app_hosts`) open their app at `/`, and with
/// `auth.cookie_domain` the sign-in cookies are scoped to the parent domain so one sign-in
/// serves every app's sub-domain; without it they stay host-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_hosts_open_their_app_and_cookies_are_scoped_to_the_domain() {
    let server = Server::start(
        bin(),
        options(DbKind::Sqlite)
            .env(
                "LUNORA_HTTP_APP_HOSTS",
                "stream=stream.lunora.test,admin=admin.lunora.test",
            )
            .env("LUNORA_AUTH_COOKIE_DOMAIN", "lunora.test"),
    )
    .await
    .unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let port = server.http.port();
    for (host, app) in [
        (format!("admin.lunora.test:{port}"), Some("/admin")),
        (format!("STREAM.lunora.test:{port}"), Some("/stream")),
        (format!("127.0.0.1:{port}"), None),
    ] {
        let res = no_redirects
            .get(server.url("/"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        match app {
            Some(app) => {
                assert_eq!(res.status(), 302, "{host}");
                assert_eq!(res.headers()["location"], app, "{host}");
            }
            None => assert_eq!(res.status(), 200, "{host}: the home page"),
        }
    }
    // Deep links are not redirected, whatever the host.
    let res = no_redirects
        .get(server.url("/admin/users"))
        .header("host", format!("stream.lunora.test:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for c in &cookies {
        assert!(c.ends_with("; Domain=lunora.test"), "{c}");
    }

    // The default: host-only cookies, no redirect at `/`.
    let plain = start(DbKind::Sqlite).await;
    let res = login(&plain, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for c in res.headers().get_all("set-cookie") {
        assert!(!c.to_str().unwrap().contains("Domain="), "{c:?}");
    }
}
