//! Shared pieces of the end-to-end tests: a server with a first administrator, signed in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod media;
pub mod nginx;
pub mod webhook;
pub mod ws;

use lunora_testkit::{DbKind, Server, ServerOptions};
use serde_json::{json, Value};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "Correct-Horse-Battery-9";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lunora")
}

/// A server with the first administrator. Staff MFA is `optional` here so tests that are not
/// about MFA can sign in with a password alone; MFA tests set `LUNORA_AUTH_STAFF_MFA=required`
/// (later settings win). Sign-in lock-out stays at its defaults.
pub fn options(db: DbKind) -> ServerOptions {
    ServerOptions::new(db)
        .env("LUNORA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("LUNORA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LUNORA_AUTH_STAFF_MFA", "optional")
        // Every test client comes from 127.0.0.1: request rate limits are off unless a test
        // is about them (identity.rs sets its own).
        .env("LUNORA_RATELIMIT_AUTH_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_STAFF_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_AUDIENCE_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_API_TOKEN_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_ANONYMOUS_PER_MINUTE", "0")
}

pub async fn start(db: DbKind) -> Server {
    Server::start(bin(), options(db))
        .await
        .expect("server starts")
}

/// Signs in and answers the token pair.
pub async fn login(server: &Server, email: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login request")
}

pub async fn admin_token(server: &Server) -> String {
    let res = login(server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200, "admin login");
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// The Prometheus text of `/metrics` (open to scrapers, no token).
pub async fn metrics_text(server: &Server) -> String {
    let res = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("/metrics request");
    assert_eq!(res.status(), 200, "/metrics");
    res.text().await.expect("/metrics body")
}

pub async fn create_channel(server: &Server, token: &str, name: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/v1/channels"))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("create channel request")
}

/// A channel listed in the catalog (public visibility, public access level): its id.
pub async fn public_channel(server: &Server, token: &str, name: &str) -> String {
    let a = call(
        server,
        "POST",
        "/api/v1/channels",
        Some(token),
        Some(&json!({"name": name, "visibility": "public"})),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

/// Creates another organization through `root` (the server's first administrator) and signs
/// its administrator in, invited at `email` with `password`: their access token.
pub async fn second_organization(
    server: &Server,
    root: &str,
    name: &str,
    slug: &str,
    email: &str,
    password: &str,
) -> String {
    let a = call(
        server,
        "POST",
        "/api/v1/organizations",
        Some(root),
        Some(&json!({ "name": name, "slug": slug, "admin_email": email })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let invitation = outbox_token(server, root, email, "invitation").await;
    let a = call(
        server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": invitation, "password": password })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    token_for(server, email, password).await
}

/// An answer: status, JSON body (Null when empty or not JSON) and headers.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The problem `code`, for error answers.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

/// Sends `method path` with an optional bearer token and JSON body, with `client`.
pub async fn call_with(
    client: &reqwest::Client,
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = client.request(method, server.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let res = rb.send().await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

/// [`call_with`] the server's own client.
pub async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    call_with(&server.client, server, method, path, token, body).await
}

/// A client whose requests come from another loopback address (Linux routes all of 127/8).
pub fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The token of the newest one-time link of `kind` e-mailed to `recipient`, read from the outbox
/// by an administrator of the organization that keeps it.
pub async fn outbox_token(server: &Server, admin: &str, recipient: &str, kind: &str) -> String {
    let a = call(
        server,
        "GET",
        &format!("/api/v1/outbox?recipient={recipient}"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "outbox: {a:?}");
    let item = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} mail to {recipient} in {}", a.body));
    let body = item["body"].as_str().unwrap();
    let start = body.find("token=").expect("a link with a token") + "token=".len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Invites `email` with `role` as `admin`, accepts with `password` and answers the new user's id.
pub async fn invite_user(
    server: &Server,
    admin: &str,
    email: &str,
    role: &str,
    password: &str,
) -> String {
    let a = call(
        server,
        "POST",
        "/api/v1/invitations",
        Some(admin),
        Some(&json!({ "email": email, "role": role })),
    )
    .await;
    assert_eq!(a.status, 201, "invite {email}: {a:?}");
    let token = outbox_token(server, admin, email, "invitation").await;
    let a = call(
        server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": token, "password": password, "display_name": role })),
    )
    .await;
    assert_eq!(a.status, 201, "accept {email}: {a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

/// Signs in and answers the access token, asserting success.
pub async fn token_for(server: &Server, email: &str, password: &str) -> String {
    let res = login(server, email, password).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "login {email}: {body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// Signs an audience member up, confirms the address from the outbox and answers the user id.
pub async fn signup_user(server: &Server, admin: &str, email: &str, password: &str) -> String {
    let a = call(
        server,
        "POST",
        "/api/v1/auth/signup",
        None,
        Some(&json!({ "email": email, "password": password })),
    )
    .await;
    assert_eq!(a.status, 202, "signup {email}: {a:?}");
    let token = outbox_token(server, admin, email, "verify_email").await;
    let a = call(
        server,
        "POST",
        "/api/v1/auth/verify-email",
        None,
        Some(&json!({ "token": token })),
    )
    .await;
    assert_eq!(a.status, 200, "verify {email}: {a:?}");
    let t = token_for(server, email, password).await;
    let me = call(server, "GET", "/api/v1/users/me", Some(&t), None).await;
    me.body["id"].as_str().unwrap().to_string()
}

/// A connection to the server's database, for tests that age or inspect rows directly.
pub async fn db_pool(server: &Server) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = server.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rw",
            server.data_path("lunora.db").display()
        )
    });
    sqlx::AnyPool::connect(&url).await.expect("database")
}
