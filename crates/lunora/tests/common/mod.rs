//! Shared pieces of the end-to-end tests: a server with a first administrator, signed in.
#![allow(dead_code)]

pub mod media;

use lunora_testkit::{DbKind, Server, ServerOptions};
use serde_json::{json, Value};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "Correct-Horse-Battery-9";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lunora")
}

/// A server with the first administrator. Staff MFA is `optional` here so tests that are not
/// about MFA can sign in with a password alone; MFA tests set `LUNORA_AUTH_STAFF_MFA=required`
/// (later settings win).
pub fn options(db: DbKind) -> ServerOptions {
    ServerOptions::new(db)
        .env("LUNORA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("LUNORA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LUNORA_AUTH_STAFF_MFA", "optional")
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
