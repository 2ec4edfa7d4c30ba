//! Identity, access, tenancy, audit and secrets, end to end against the real binary on both
//! databases: the route table against every role, cross-tenant isolation, lock-out, token
//! rotation and revocation, MFA, session limits, invitations and password rules, API tokens,
//! the audit log, abuse limits and secrets at rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use lunora_testkit::{db_tests, totp_code, unix_now, DbKind, Server};
use serde_json::{json, Value};

db_tests!(
    every_route_allows_exactly_the_roles_the_table_names,
    foreign_ids_answer_404_for_every_resource_type,
    failed_logins_slow_down_then_lock_out_only_that_source,
    refresh_reuse_and_expired_or_revoked_tokens_are_refused,
    mfa_is_enforced_with_enrolment_codes_once_and_recovery,
    session_limits_and_timeouts_follow_the_configuration,
    invitations_signup_reset_and_password_rules,
    users_api_lists_filters_changes_roles_and_disables,
    api_tokens_are_scoped_revocable_and_api_only_holds_nothing_else,
    audit_log_records_every_change_with_filters_and_retention,
    rate_limits_and_ip_allowlist,
    secrets_never_appear_in_clear,
    master_key_rotation_reseals_everything,
    first_administrator_from_the_logged_setup_token,
);

const PASSWORD: &str = "Staff-Password-42!";
const AUDIENCE_PASSWORD: &str = "Viewer2024x";
const FAKE_ID: &str = "00000000-0000-7000-8000-000000000000";

fn quiet(db: DbKind) -> lunora_testkit::ServerOptions {
    options(db)
        .env("LUNORA_RATELIMIT_AUTH_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_STAFF_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_AUDIENCE_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_ANONYMOUS_PER_MINUTE", "0")
        .env("LUNORA_RATELIMIT_API_TOKEN_PER_MINUTE", "0")
}

async fn start_quiet(db: DbKind) -> Server {
    Server::start(bin(), quiet(db))
        .await
        .expect("server starts")
}

/// A caller of the route-table test.
struct Caller {
    label: String,
    /// Permissions of its role (all of them for an API token with the role's full scope).
    permissions: Vec<String>,
    superadmin: bool,
    api_token: bool,
    token: Option<String>,
}

async fn every_route_allows_exactly_the_roles_the_table_names(db: DbKind) {
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let table = call(&server, "GET", "/api/v1/permissions", Some(&root), None).await;
    assert_eq!(table.status, 200, "{table:?}");
    let roles: BTreeMap<String, Vec<String>> = table.body["roles"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(roles.len(), 12, "every role of the seeds: {roles:?}");

    let mut callers = vec![
        Caller {
            label: "anonymous".into(),
            permissions: vec![],
            superadmin: false,
            api_token: false,
            token: None,
        },
        Caller {
            label: "superadmin".into(),
            permissions: roles["admin"].clone(),
            superadmin: true,
            api_token: false,
            token: Some(root.clone()),
        },
    ];
    for (role, perms) in &roles {
        let email = format!("role-{role}@example.com");
        let token = match role.as_str() {
            "free" | "premium" | "vip" => {
                let id = signup_user(&server, &root, &email, AUDIENCE_PASSWORD).await;
                if role != "free" {
                    let a = call(
                        &server,
                        "PATCH",
                        &format!("/api/v1/users/{id}"),
                        Some(&root),
                        Some(&json!({ "role": role })),
                    )
                    .await;
                    assert_eq!(a.status, 200, "{a:?}");
                }
                token_for(&server, &email, AUDIENCE_PASSWORD).await
            }
            "api_only" => {
                let id = invite_user(&server, &root, &email, role, PASSWORD).await;
                let a = call(
                    &server,
                    "POST",
                    "/api/v1/api-tokens",
                    Some(&root),
                    Some(&json!({ "name": "robot", "user_id": id })),
                )
                .await;
                assert_eq!(a.status, 201, "{a:?}");
                a.body["token"].as_str().unwrap().to_string()
            }
            _ => {
                invite_user(&server, &root, &email, role, PASSWORD).await;
                token_for(&server, &email, PASSWORD).await
            }
        };
        callers.push(Caller {
            label: role.clone(),
            permissions: perms.clone(),
            superadmin: false,
            api_token: role == "api_only",
            token: Some(token),
        });
    }

    let doc = call(&server, "GET", "/api/v1/openapi.json", None, None).await;
    let rules = table.body["routes"].as_array().unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(ops.len() > 40, "{} operations", ops.len());
    // Signing out ends the caller's session: last.
    ops.sort_by_key(|(m, p)| (p == "/api/v1/auth/logout", m.clone(), p.clone()));
    let mut checked = 0;
    for (method, path) in &ops {
        let rule = rules
            .iter()
            .find(|r| r["method"] == method.as_str() && r["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{method} {path} has no rule in the permission table"));
        let access = &rule["access"];
        let url = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { FAKE_ID } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let body = matches!(method.as_str(), "POST" | "PATCH" | "PUT").then(|| json!({}));
        for c in &callers {
            let allowed = match access["kind"].as_str().unwrap() {
                "public" => true,
                "authenticated" => c.token.is_some(),
                "permission" => c
                    .permissions
                    .iter()
                    .any(|p| access["permission"] == p.as_str()),
                "superadmin" => c.superadmin && !c.api_token,
                other => panic!("unknown access kind {other}"),
            };
            let a = call(&server, method, &url, c.token.as_deref(), body.as_ref()).await;
            if allowed {
                assert!(
                    a.status != 401 && a.status != 403 && a.status != 429,
                    "{} must be allowed {method} {path}: {a:?}",
                    c.label
                );
            } else {
                let want = if c.token.is_none() { 401 } else { 403 };
                assert_eq!(
                    a.status, want,
                    "{} must be refused {method} {path}: {a:?}",
                    c.label
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= ops.len() * 14);
}

async fn foreign_ids_answer_404_for_every_resource_type(db: DbKind) {
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    // A second tenant with its own administrator, invited by the superadmin.
    let a = call(
        &server,
        "POST",
        "/api/v1/organizations",
        Some(&root),
        Some(&json!({ "name": "Beta", "slug": "beta", "admin_email": "boss@beta.example" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let beta_id = a.body["id"].as_str().unwrap().to_string();
    let token = outbox_token(&server, &root, "boss@beta.example", "invitation").await;
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": token, "password": PASSWORD })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["organization_id"], beta_id.as_str());
    assert_eq!(a.body["role"], "admin");
    let beta = token_for(&server, "boss@beta.example", PASSWORD).await;

    // Resources of the first tenant.
    let channel = create_channel(&server, &root, "alpha-only").await;
    assert_eq!(channel.status(), 201);
    let channel: Value = channel.json().await.unwrap();
    let channel_id = channel["id"].as_str().unwrap();
    let input_id = channel["inputs"][0]["id"].as_str().unwrap();
    let inv = call(
        &server,
        "POST",
        "/api/v1/invitations",
        Some(&root),
        Some(&json!({ "email": "pending@alpha.example", "role": "viewer" })),
    )
    .await;
    let inv_id = inv.body["id"].as_str().unwrap();
    let tok = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&root),
        Some(&json!({ "name": "ci" })),
    )
    .await;
    let tok_id = tok.body["id"].as_str().unwrap();
    let me = call(&server, "GET", "/api/v1/auth/me", Some(&root), None).await;
    let user_id = me.body["id"].as_str().unwrap();
    let session_id = me.body["session_id"].as_str().unwrap();
    let audit = call(
        &server,
        "GET",
        "/api/v1/audit-logs?limit=1",
        Some(&root),
        None,
    )
    .await;
    let audit_id = audit.body["items"][0]["id"].as_str().unwrap();

    let probes: Vec<(&str, String)> = vec![
        ("GET", format!("/api/v1/channels/{channel_id}")),
        ("PATCH", format!("/api/v1/channels/{channel_id}")),
        ("DELETE", format!("/api/v1/channels/{channel_id}")),
        ("POST", format!("/api/v1/channels/{channel_id}/play-token")),
        (
            "POST",
            format!("/api/v1/channels/{channel_id}/inputs/{input_id}/reveal"),
        ),
        ("GET", format!("/api/v1/users/{user_id}")),
        ("PATCH", format!("/api/v1/users/{user_id}")),
        ("DELETE", format!("/api/v1/users/{user_id}/mfa")),
        ("GET", format!("/api/v1/users/{user_id}/sessions")),
        (
            "DELETE",
            format!("/api/v1/users/{user_id}/sessions/{session_id}"),
        ),
        ("DELETE", format!("/api/v1/auth/sessions/{session_id}")),
        ("GET", format!("/api/v1/invitations/{inv_id}")),
        ("DELETE", format!("/api/v1/invitations/{inv_id}")),
        ("GET", format!("/api/v1/api-tokens/{tok_id}")),
        ("DELETE", format!("/api/v1/api-tokens/{tok_id}")),
        ("GET", format!("/api/v1/audit-logs/{audit_id}")),
    ];
    for (method, path) in &probes {
        let body = matches!(*method, "POST" | "PATCH").then(|| json!({}));
        let a = call(&server, method, path, Some(&beta), body.as_ref()).await;
        assert_eq!(a.status, 404, "{method} {path} from another tenant: {a:?}");
        // The same answer as an id that does not exist at all.
        assert_eq!(a.code(), "not_found", "{a:?}");
    }
    // Lists never show the other tenant's resources.
    for (path, id) in [
        ("/api/v1/channels", channel_id),
        ("/api/v1/users", user_id),
        ("/api/v1/invitations", inv_id),
        ("/api/v1/api-tokens", tok_id),
        ("/api/v1/audit-logs", audit_id),
    ] {
        let a = call(&server, "GET", path, Some(&beta), None).await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
        assert!(
            !a.body.to_string().contains(id),
            "{path} leaks {id}: {}",
            a.body
        );
    }
    let a = call(&server, "GET", "/api/v1/outbox", Some(&beta), None).await;
    assert!(
        !a.body.to_string().contains("pending@alpha.example"),
        "{a:?}"
    );
    // The tenant administrator does not manage organizations.
    for (method, path) in [
        ("GET", "/api/v1/organizations".to_string()),
        ("GET", format!("/api/v1/organizations/{beta_id}")),
    ] {
        let a = call(&server, method, &path, Some(&beta), None).await;
        assert_eq!(a.status, 403, "{path}: {a:?}");
    }
    // Nothing of the first tenant changed.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{channel_id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/invitations/{inv_id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.body["status"], "pending");
    let a = call(&server, "GET", "/api/v1/auth/me", Some(&root), None).await;
    assert_eq!(a.status, 200, "the session survived: {a:?}");
    // The superadmin sees both organizations; disabling one stops its users at once.
    let a = call(&server, "GET", "/api/v1/organizations", Some(&root), None).await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 2, "{a:?}");
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/organizations/{beta_id}"),
        Some(&root),
        Some(&json!({ "disabled": true })),
    )
    .await;
    assert_eq!(a.body["status"], "disabled", "{a:?}");
    let a = call(&server, "GET", "/api/v1/channels", Some(&beta), None).await;
    assert_eq!(
        (a.status, a.code()),
        (403, "organization_disabled"),
        "{a:?}"
    );
}

async fn failed_logins_slow_down_then_lock_out_only_that_source(db: DbKind) {
    let server = Server::start(
        bin(),
        options(db)
            .env("LUNORA_AUTH_LOCKOUT_SLOWDOWN_AFTER", "2")
            .env("LUNORA_AUTH_LOCKOUT_THRESHOLD", "4")
            .env("LUNORA_AUTH_LOCKOUT_DURATION", "600"),
    )
    .await
    .unwrap();
    let root = admin_token(&server).await;
    invite_user(&server, &root, "op@example.com", "operator", PASSWORD).await;
    let wrong = json!({ "email": ADMIN_EMAIL, "password": "Wrong-Password-1!" });
    let try_wrong = || call(&server, "POST", "/api/v1/auth/login", None, Some(&wrong));
    for _ in 0..2 {
        let a = try_wrong().await;
        assert_eq!((a.status, a.code()), (401, "invalid_credentials"), "{a:?}");
    }
    // Slow down: the next try must wait.
    let a = try_wrong().await;
    assert_eq!((a.status, a.code()), (429, "login_throttled"), "{a:?}");
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "retry-after {wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(try_wrong().await.status, 401);
    let a = try_wrong().await;
    assert_eq!(a.status, 429, "{a:?}");
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(try_wrong().await.status, 401);
    // Four failures: locked, even with the right password.
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (429, "login_locked"), "{a:?}");
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 500, "locked for the configured duration: {wait}");
    // The real user, from another address, is not locked out...
    let elsewhere = client_from([127, 0, 0, 2]);
    let a = call_with(
        &elsewhere,
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // ...and other accounts from the locked address are not either.
    token_for(&server, "op@example.com", PASSWORD).await;
    // The failures are in the audit log, with the address.
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?action=auth.login&result=denied",
        Some(&root),
        None,
    )
    .await;
    let items = a.body["items"].as_array().unwrap();
    assert!(items.len() >= 4, "{a:?}");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?action=auth.login&result=failure",
        Some(&root),
        None,
    )
    .await;
    assert!(
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == 429),
        "{a:?}"
    );
}

async fn refresh_reuse_and_expired_or_revoked_tokens_are_refused(db: DbKind) {
    let server = Server::start(bin(), quiet(db).env("LUNORA_AUTH_ACCESS_TTL", "1"))
        .await
        .unwrap();
    let login_pair = || async {
        let res = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()
    };
    let refresh = |t: String| {
        let server = &server;
        async move {
            call(
                server,
                "POST",
                "/api/v1/auth/refresh",
                None,
                Some(&json!({ "refresh_token": t })),
            )
            .await
        }
    };
    // Rotation: each refresh token works once; reuse revokes the whole family.
    let first = login_pair().await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let second = refresh(r1.clone()).await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.body["token_type"], "Bearer");
    let r2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let a2 = second.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(&a2), None)
            .await
            .status,
        200
    );
    let reuse = refresh(r1).await;
    assert_eq!(
        (reuse.status, reuse.code()),
        (401, "refresh_token_reused"),
        "{reuse:?}"
    );
    let a = call(&server, "GET", "/api/v1/auth/me", Some(&a2), None).await;
    assert_eq!((a.status, a.code()), (401, "session_revoked"), "{a:?}");
    assert_eq!(refresh(r2).await.status, 401, "the family is revoked");

    // An access token expires (TTL 1 s plus 5 s leeway); its refresh token renews it.
    let pair = login_pair().await;
    let access = pair["access_token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let a = call(&server, "GET", "/api/v1/auth/me", Some(access), None).await;
    assert_eq!((a.status, a.code()), (401, "token_expired"), "{a:?}");
    let renewed = refresh(pair["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(renewed.status, 200);
    let access = renewed.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(&access), None)
            .await
            .status,
        200
    );

    // Revoked sessions: signed out, or revoked from another session.
    let other = login_pair().await;
    let other_access = other["access_token"].as_str().unwrap();
    let other_id = call(&server, "GET", "/api/v1/auth/me", Some(other_access), None)
        .await
        .body["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/auth/sessions/{other_id}"),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(other_access), None)
            .await
            .status,
        401
    );
    assert_eq!(
        call(&server, "POST", "/api/v1/auth/logout", Some(&access), None)
            .await
            .status,
        204
    );
    let a = call(&server, "GET", "/api/v1/auth/me", Some(&access), None).await;
    assert_eq!((a.status, a.code()), (401, "session_revoked"), "{a:?}");
    assert_eq!(
        refresh(renewed.body["refresh_token"].as_str().unwrap().to_string())
            .await
            .status,
        401
    );
    // Garbage and forged tokens.
    for bad in [
        "garbage",
        "eyJhbGciOiJIUzI1NiJ9.e30.x",
        "lnr_not-a-real-token",
    ] {
        let a = call(&server, "GET", "/api/v1/auth/me", Some(bad), None).await;
        assert_eq!((a.status, a.code()), (401, "invalid_token"), "{bad}: {a:?}");
    }

    // API tokens: revoked, expired.
    let admin = token_for(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mk = |name: &'static str| {
        let server = &server;
        let admin = admin.clone();
        async move {
            let a = call(
                server,
                "POST",
                "/api/v1/api-tokens",
                Some(&admin),
                Some(&json!({ "name": name, "expires_in_days": 30 })),
            )
            .await;
            assert_eq!(a.status, 201, "{a:?}");
            (
                a.body["id"].as_str().unwrap().to_string(),
                a.body["token"].as_str().unwrap().to_string(),
            )
        }
    };
    let (revoked_id, revoked) = mk("to-revoke").await;
    let (expired_id, expired) = mk("to-expire").await;
    assert_eq!(
        call(&server, "GET", "/api/v1/channels", Some(&revoked), None)
            .await
            .status,
        200
    );
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/api-tokens/{revoked_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    let a = call(&server, "GET", "/api/v1/channels", Some(&revoked), None).await;
    assert_eq!((a.status, a.code()), (401, "token_revoked"), "{a:?}");
    let pool = db_pool(&server).await;
    sqlx::query(&format!(
        "UPDATE api_tokens SET expires_at = 1000 WHERE id = '{expired_id}'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let a = call(&server, "GET", "/api/v1/channels", Some(&expired), None).await;
    assert_eq!((a.status, a.code()), (401, "token_expired"), "{a:?}");
    let a = call(&server, "GET", "/api/v1/api-tokens", Some(&admin), None).await;
    let statuses: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"revoked") && statuses.contains(&"expired"),
        "{statuses:?}"
    );
}

async fn mfa_is_enforced_with_enrolment_codes_once_and_recovery(db: DbKind) {
    let server = Server::start(bin(), quiet(db).env("LUNORA_AUTH_STAFF_MFA", "required"))
        .await
        .unwrap();
    // First sign-in of staff without TOTP: tokens limited to enrolment.
    let res = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let pair: Value = res.json().await.unwrap();
    assert_eq!(pair["next_step"], "mfa_enrolment", "{pair}");
    let limited = pair["access_token"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", "/api/v1/channels"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/auth/sessions"),
        ("POST", "/api/v1/api-tokens"),
    ] {
        let a = call(
            &server,
            method,
            path,
            Some(&limited),
            Some(&json!({ "name": "x" })),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (403, "mfa_enrolment_required"),
            "{path}: {a:?}"
        );
    }
    let me = call(&server, "GET", "/api/v1/auth/me", Some(&limited), None).await;
    assert_eq!(me.body["next_step"], "mfa_enrolment", "{me:?}");
    let status = call(&server, "GET", "/api/v1/auth/mfa", Some(&limited), None).await;
    assert_eq!(status.body["policy"], "required", "{status:?}");

    let enrol = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/enrol",
        Some(&limited),
        None,
    )
    .await;
    assert_eq!(enrol.status, 200, "{enrol:?}");
    let secret = enrol.body["secret"].as_str().unwrap().to_string();
    assert!(enrol.body["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Lunora:"));
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/verify",
        Some(&limited),
        Some(&json!({ "code": "000000" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "invalid_totp"), "{a:?}");
    let now = unix_now();
    let code = totp_code(&secret, now).unwrap();
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/verify",
        Some(&limited),
        Some(&json!({ "code": code })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let recovery: Vec<String> = a.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    // The same session has full access now.
    assert_eq!(
        call(&server, "GET", "/api/v1/channels", Some(&limited), None)
            .await
            .status,
        200
    );

    // Signing in now needs the code: a distinct answer without it.
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "mfa_required"), "{a:?}");
    // The code already used to verify is refused (once per time step).
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": code })),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (401, "invalid_totp"),
        "replayed code: {a:?}"
    );
    // The next step's code works once.
    let next = totp_code(&secret, now + 30).unwrap();
    let with_code = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": next });
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&with_code),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.get("next_step").is_none(), "{a:?}");
    let full = a.body["access_token"].as_str().unwrap().to_string();
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&with_code),
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "invalid_totp"), "replay: {a:?}");
    // A recovery code works once.
    let with_recovery =
        json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": recovery[0] });
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&with_recovery),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&with_recovery),
    )
    .await;
    assert_eq!(a.status, 401, "spent recovery code: {a:?}");
    let status = call(&server, "GET", "/api/v1/auth/mfa", Some(&full), None).await;
    assert_eq!(status.body["recovery_codes_left"], 9, "{status:?}");
    // MFA cannot be turned off where it is required.
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/disable",
        Some(&full),
        Some(&json!({ "password": ADMIN_PASSWORD, "code": recovery[1] })),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (403, "mfa_required_by_policy"),
        "{a:?}"
    );

    // A new staff member must enrol too; after an admin relaxes the organization's policy, not.
    invite_user(&server, &full, "op@example.com", "operator", PASSWORD).await;
    let res = login(&server, "op@example.com", PASSWORD).await;
    let pair: Value = res.json().await.unwrap();
    assert_eq!(pair["next_step"], "mfa_enrolment", "{pair}");
    let a = call(
        &server,
        "PATCH",
        "/api/v1/organizations/current",
        Some(&full),
        Some(&json!({ "staff_mfa": "optional" })),
    )
    .await;
    assert_eq!(
        (
            a.body["staff_mfa"].as_str(),
            a.body["staff_mfa_source"].as_str()
        ),
        (Some("optional"), Some("organization")),
        "{a:?}"
    );
    let res = login(&server, "op@example.com", PASSWORD).await;
    let pair: Value = res.json().await.unwrap();
    assert!(pair.get("next_step").is_none(), "{pair}");
    let op = pair["access_token"].as_str().unwrap();
    assert_eq!(
        call(&server, "GET", "/api/v1/channels", Some(op), None)
            .await
            .status,
        200
    );
    // Where optional, a user may turn MFA off with password and code; an admin can reset it.
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/disable",
        Some(&full),
        Some(&json!({ "password": ADMIN_PASSWORD, "code": recovery[2] })),
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(a.status, 200, "no code needed once disabled: {a:?}");
    // Audience accounts never have to enrol.
    let admin = a.body["access_token"].as_str().unwrap().to_string();
    signup_user(&server, &admin, "viewer@example.com", AUDIENCE_PASSWORD).await;
}

async fn session_limits_and_timeouts_follow_the_configuration(db: DbKind) {
    let server = Server::start(
        bin(),
        quiet(db)
            .env("LUNORA_AUTH_OPERATOR_MAX_SESSIONS", "2")
            .env("LUNORA_AUTH_OPERATOR_IDLE_TIMEOUT", "3")
            .env("LUNORA_AUTH_OPERATOR_SESSION_TIMEOUT", "5")
            .env("LUNORA_AUTH_ADMIN_MAX_SESSIONS", "3"),
    )
    .await
    .unwrap();
    let root = admin_token(&server).await;
    invite_user(&server, &root, "op@example.com", "operator", PASSWORD).await;

    // At most 2 operator sessions: a third sign-in ends the oldest.
    let s1 = token_for(&server, "op@example.com", PASSWORD).await;
    let s2 = token_for(&server, "op@example.com", PASSWORD).await;
    let s3 = token_for(&server, "op@example.com", PASSWORD).await;
    let a = call(&server, "GET", "/api/v1/auth/me", Some(&s1), None).await;
    assert_eq!((a.status, a.code()), (401, "session_revoked"), "{a:?}");
    let list = call(&server, "GET", "/api/v1/auth/sessions", Some(&s3), None).await;
    assert_eq!(list.body.as_array().unwrap().len(), 2, "{list:?}");
    // Admins: 3 configured here.
    let mut admin_tokens = vec![root.clone()];
    for _ in 0..3 {
        admin_tokens.push(token_for(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    }
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/auth/me",
            Some(&admin_tokens[0]),
            None
        )
        .await
        .status,
        401
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/auth/me",
            Some(&admin_tokens[1]),
            None
        )
        .await
        .status,
        200
    );

    // Idle timeout: 3 s without a request ends the session (and its refresh token).
    let res = login(&server, "op@example.com", PASSWORD).await;
    let idle_pair: Value = res.json().await.unwrap();
    let _ = s2;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let a = call(
        &server,
        "GET",
        "/api/v1/auth/me",
        Some(idle_pair["access_token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "session_expired"), "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(&json!({ "refresh_token": idle_pair["refresh_token"] })),
    )
    .await;
    assert_eq!(a.status, 401, "refresh after the idle timeout: {a:?}");

    // Absolute timeout: 5 s even when busy.
    let busy = token_for(&server, "op@example.com", PASSWORD).await;
    let started = std::time::Instant::now();
    loop {
        let a = call(&server, "GET", "/api/v1/auth/me", Some(&busy), None).await;
        if a.status == 401 {
            assert_eq!(a.code(), "session_expired", "{a:?}");
            assert!(
                started.elapsed() >= Duration::from_millis(4500),
                "{:?}",
                started.elapsed()
            );
            break;
        }
        assert_eq!(a.status, 200, "{a:?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the session outlived its limit"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

async fn invitations_signup_reset_and_password_rules(db: DbKind) {
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    // Invitation: the link is e-mailed, never answered.
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations",
        Some(&root),
        Some(&json!({ "email": "Ops@Example.com", "role": "operator", "display_name": "Ops" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["status"], "pending");
    assert_eq!(a.body["email"], "ops@example.com");
    let inv_id = a.body["id"].as_str().unwrap().to_string();
    let token = outbox_token(&server, &root, "ops@example.com", "invitation").await;
    assert!(!a.body.to_string().contains(&token));
    let accept = |password: &str| {
        let server = &server;
        let body = json!({ "token": token, "password": password, "display_name": "Olga" });
        async move {
            call(
                server,
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(&body),
            )
            .await
        }
    };
    let a = accept("weakpassword").await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("password")),
        "{a:?}"
    );
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap()
            .contains("special character"),
        "{a:?}"
    );
    let a = accept(PASSWORD).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        (a.body["role"].as_str(), a.body["realm"].as_str()),
        (Some("operator"), Some("staff"))
    );
    let a = accept(PASSWORD).await;
    assert_eq!((a.status, a.code()), (400, "invalid_token"), "spent: {a:?}");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/invitations/{inv_id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.body["status"], "accepted", "{a:?}");
    let op = token_for(&server, "ops@example.com", PASSWORD).await;
    // Operators do not invite; audience roles are not invited; revoked links stop working.
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations",
        Some(&op),
        Some(&json!({ "email": "x@example.com", "role": "viewer" })),
    )
    .await;
    assert_eq!(a.status, 403);
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations",
        Some(&root),
        Some(&json!({ "email": "x@example.com", "role": "premium" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "realm_mismatch"), "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations",
        Some(&root),
        Some(&json!({ "email": "late@example.com", "role": "viewer" })),
    )
    .await;
    let late = a.body["id"].as_str().unwrap().to_string();
    let late_token = outbox_token(&server, &root, "late@example.com", "invitation").await;
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/invitations/{late}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    let a = call(
        &server,
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(&json!({ "token": late_token, "password": PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "invalid_token"), "{a:?}");

    // Audience sign-up with e-mail verification.
    let signup = json!({ "email": "fan@example.com", "password": AUDIENCE_PASSWORD });
    let a = call(&server, "POST", "/api/v1/auth/signup", None, Some(&signup)).await;
    assert_eq!(a.status, 202, "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/signup",
        None,
        Some(&json!({ "email": "weak@example.com", "password": "short" })),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("password")),
        "{a:?}"
    );
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": "fan@example.com", "password": AUDIENCE_PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "email_not_verified"), "{a:?}");
    // Signing up again answers the same and tells the owner by mail.
    let a = call(&server, "POST", "/api/v1/auth/signup", None, Some(&signup)).await;
    assert_eq!(a.status, 202);
    let verify = outbox_token(&server, &root, "fan@example.com", "verify_email").await;
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/verify-email",
        None,
        Some(&json!({ "token": verify })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let fan = token_for(&server, "fan@example.com", AUDIENCE_PASSWORD).await;
    let me = call(&server, "GET", "/api/v1/users/me", Some(&fan), None).await;
    assert_eq!(
        (me.body["role"].as_str(), me.body["realm"].as_str()),
        (Some("free"), Some("audience"))
    );
    let mail = call(
        &server,
        "GET",
        "/api/v1/outbox?recipient=fan@example.com",
        Some(&root),
        None,
    )
    .await;
    assert!(mail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["kind"] == "signup_existing"));

    // Password reset by e-mailed one-time link.
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/password-reset/request",
        None,
        Some(&json!({ "email": "ops@example.com" })),
    )
    .await;
    assert_eq!(a.status, 202);
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/password-reset/request",
        None,
        Some(&json!({ "email": "nobody@example.com" })),
    )
    .await;
    assert_eq!(a.status, 202, "the same answer for unknown addresses");
    let reset = outbox_token(&server, &root, "ops@example.com", "password_reset").await;
    let confirm = |password: &str| {
        let server = &server;
        let body = json!({ "token": reset, "password": password });
        async move {
            call(
                server,
                "POST",
                "/api/v1/auth/password-reset/confirm",
                None,
                Some(&body),
            )
            .await
        }
    };
    let a = confirm(PASSWORD).await;
    assert_eq!((a.status, a.code()), (400, "password_reused"), "{a:?}");
    let second = "Second-Password-42!";
    let a = confirm(second).await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_eq!(
        confirm("Third-Password-42!").await.status,
        400,
        "a link works once"
    );
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(&op), None)
            .await
            .status,
        401,
        "sessions end"
    );
    let op = token_for(&server, "ops@example.com", second).await;

    // Staff history: none of the last 12 passwords again.
    let change = |current: &str, new: &str| {
        let server = &server;
        let op = op.clone();
        let body = json!({ "current_password": current, "new_password": new });
        async move {
            call(
                server,
                "POST",
                "/api/v1/users/me/password",
                Some(&op),
                Some(&body),
            )
            .await
        }
    };
    let a = change("Not-The-Password-1!", "Fourth-Password-42!").await;
    assert_eq!((a.status, a.code()), (400, "invalid_credentials"), "{a:?}");
    let a = change(second, PASSWORD).await;
    assert_eq!((a.status, a.code()), (400, "password_reused"), "{a:?}");
    let a = change(second, "Fourth-Password-42!").await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(&op), None)
            .await
            .status,
        200,
        "own session kept"
    );

    // Expiry after 90 days: sign-in names the next step; `new_password` completes it.
    let pool = db_pool(&server).await;
    let old = lunora_now_ms() - 91 * 86_400_000;
    sqlx::query(&format!(
        "UPDATE users SET password_changed_at = {old} WHERE email = 'ops@example.com'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let creds = json!({ "email": "ops@example.com", "password": "Fourth-Password-42!" });
    let a = call(&server, "POST", "/api/v1/auth/login", None, Some(&creds)).await;
    assert_eq!((a.status, a.code()), (403, "password_expired"), "{a:?}");
    assert!(
        a.body["detail"].as_str().unwrap().contains("new_password"),
        "{a:?}"
    );
    let mut with_new = creds.clone();
    with_new["new_password"] = json!(second);
    let a = call(&server, "POST", "/api/v1/auth/login", None, Some(&with_new)).await;
    assert_eq!((a.status, a.code()), (400, "password_reused"), "{a:?}");
    with_new["new_password"] = json!("Fifth-Password-42!");
    let a = call(&server, "POST", "/api/v1/auth/login", None, Some(&with_new)).await;
    assert_eq!(a.status, 200, "{a:?}");
    token_for(&server, "ops@example.com", "Fifth-Password-42!").await;
}

fn lunora_now_ms() -> i64 {
    (unix_now() * 1000) as i64
}

async fn users_api_lists_filters_changes_roles_and_disables(db: DbKind) {
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let op_id = invite_user(&server, &root, "op@example.com", "operator", PASSWORD).await;
    invite_user(&server, &root, "view@example.com", "viewer", PASSWORD).await;
    let fan_id = signup_user(&server, &root, "fan@example.com", AUDIENCE_PASSWORD).await;
    let op = token_for(&server, "op@example.com", PASSWORD).await;

    let list = call(&server, "GET", "/api/v1/users?limit=2", Some(&root), None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2, "{list:?}");
    let cursor = list.body["next_cursor"].as_str().unwrap();
    let rest = call(
        &server,
        "GET",
        &format!("/api/v1/users?limit=2&cursor={cursor}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 2, "{rest:?}");
    let ops = call(
        &server,
        "GET",
        "/api/v1/users?role=operator",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(ops.body["items"][0]["id"], op_id.as_str(), "{ops:?}");
    let q = call(
        &server,
        "GET",
        "/api/v1/users?q=VIEW&realm=staff",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(q.body["items"].as_array().unwrap().len(), 1, "{q:?}");
    let aud = call(
        &server,
        "GET",
        "/api/v1/users?realm=audience",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(aud.body["items"][0]["id"], fan_id.as_str());
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/users?status=nope",
            Some(&root),
            None
        )
        .await
        .status,
        400
    );
    // Operators see their own profile only.
    assert_eq!(
        call(&server, "GET", "/api/v1/users", Some(&op), None)
            .await
            .status,
        403
    );
    assert_eq!(
        call(
            &server,
            "GET",
            &format!("/api/v1/users/{op_id}"),
            Some(&op),
            None
        )
        .await
        .status,
        403
    );
    let me = call(&server, "GET", "/api/v1/users/me", Some(&op), None).await;
    assert_eq!(me.body["email"], "op@example.com");
    assert!(me.body["password_expires_at"].is_string(), "{me:?}");
    let a = call(
        &server,
        "PATCH",
        "/api/v1/users/me",
        Some(&op),
        Some(&json!({ "display_name": "Olga" })),
    )
    .await;
    assert_eq!(a.body["display_name"], "Olga", "{a:?}");

    // Role changes: same realm only, never beyond the caller's own permissions, never oneself.
    let path = format!("/api/v1/users/{op_id}");
    let a = call(
        &server,
        "PATCH",
        &path,
        Some(&root),
        Some(&json!({ "role": "premium" })),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "realm_mismatch"), "{a:?}");
    let a = call(
        &server,
        "PATCH",
        &path,
        Some(&root),
        Some(&json!({ "role": "wizard" })),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("role")),
        "{a:?}"
    );
    let a = call(
        &server,
        "PATCH",
        &path,
        Some(&root),
        Some(&json!({ "role": "viewer" })),
    )
    .await;
    assert_eq!(a.body["role"], "viewer", "{a:?}");
    // The new role applies at once to the existing session.
    let a = call(
        &server,
        "POST",
        "/api/v1/channels",
        Some(&op),
        Some(&json!({ "name": "x" })),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    let root_id = call(&server, "GET", "/api/v1/auth/me", Some(&root), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/users/{root_id}"),
        Some(&root),
        Some(&json!({ "disabled": true })),
    )
    .await;
    assert_eq!((a.status, a.code()), (409, "cannot_change_self"), "{a:?}");
    // Disable: sessions end at once and sign-in is refused; enable restores sign-in.
    let a = call(
        &server,
        "PATCH",
        &path,
        Some(&root),
        Some(&json!({ "disabled": true })),
    )
    .await;
    assert_eq!(a.body["status"], "disabled", "{a:?}");
    let a = call(&server, "GET", "/api/v1/auth/me", Some(&op), None).await;
    assert_eq!(a.status, 401, "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": "op@example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "account_disabled"), "{a:?}");
    let disabled = call(
        &server,
        "GET",
        "/api/v1/users?status=disabled",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(disabled.body["items"].as_array().unwrap().len(), 1);
    let a = call(
        &server,
        "PATCH",
        &path,
        Some(&root),
        Some(&json!({ "disabled": false })),
    )
    .await;
    assert_eq!(a.body["status"], "active");
    let op = token_for(&server, "op@example.com", PASSWORD).await;
    // An admin sees and ends another user's sessions.
    let sessions = call(
        &server,
        "GET",
        &format!("{path}/sessions"),
        Some(&root),
        None,
    )
    .await;
    let sid = sessions.body[0]["id"].as_str().unwrap();
    let a = call(
        &server,
        "DELETE",
        &format!("{path}/sessions/{sid}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(&op), None)
            .await
            .status,
        401
    );
    // Every change is audited.
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?action=user.update",
        Some(&root),
        None,
    )
    .await;
    assert!(a.body["items"].as_array().unwrap().len() >= 4, "{a:?}");
}

async fn api_tokens_are_scoped_revocable_and_api_only_holds_nothing_else(db: DbKind) {
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&root),
        Some(&json!({ "name": "reader", "permissions": ["channels_read"], "expires_in_days": 7 })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let token = a.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("lnr_") && token.len() > 40, "{token}");
    assert_eq!(
        a.body["token_masked"],
        format!("lnr_****{}", &token[token.len() - 4..])
    );
    assert!(a.body["expires_at"].is_string());
    assert_eq!(
        call(&server, "GET", "/api/v1/channels", Some(&token), None)
            .await
            .status,
        200
    );
    let a = call(
        &server,
        "POST",
        "/api/v1/channels",
        Some(&token),
        Some(&json!({ "name": "x" })),
    )
    .await;
    assert_eq!(a.status, 403, "beyond the token's scope: {a:?}");
    assert_eq!(
        call(&server, "GET", "/api/v1/users", Some(&token), None)
            .await
            .status,
        403
    );
    let me = call(&server, "GET", "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!(me.body["permissions"], json!(["channels_read"]), "{me:?}");
    // Superadmin powers never go to a token.
    assert_eq!(
        call(&server, "GET", "/api/v1/organizations", Some(&token), None)
            .await
            .status,
        403
    );
    // The list shows it masked only.
    let list = call(&server, "GET", "/api/v1/api-tokens", Some(&root), None).await;
    assert!(!list.body.to_string().contains(&token));
    assert_eq!(list.body["items"][0]["name"], "reader");

    // A scope beyond the holder's permissions is refused.
    invite_user(&server, &root, "op@example.com", "operator", PASSWORD).await;
    let op = token_for(&server, "op@example.com", PASSWORD).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&op),
        Some(&json!({ "name": "grab", "permissions": ["users_manage"] })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "scope_not_grantable"), "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&op),
        Some(&json!({ "name": "mine" })),
    )
    .await;
    assert_eq!(a.status, 201);
    let op_token_id = a.body["id"].as_str().unwrap().to_string();
    // Operators see and revoke their own tokens only.
    let mine = call(&server, "GET", "/api/v1/api-tokens", Some(&op), None).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1, "{mine:?}");
    let reader_id = list.body["items"][0]["id"].as_str().unwrap();
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/api-tokens/{reader_id}"),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/api-tokens/{op_token_id}"),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(a.status, 204);

    // api_only: no password session, tokens only (created by an administrator).
    let bot = invite_user(&server, &root, "bot@example.com", "api_only", PASSWORD).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": "bot@example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "api_only_account"), "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&root),
        Some(&json!({ "name": "bot", "user_id": bot })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        a.body["permissions"],
        json!(["channels_read", "channels_write"]),
        "{a:?}"
    );
    let bot_token = a.body["token"].as_str().unwrap().to_string();
    let a = call(
        &server,
        "POST",
        "/api/v1/channels",
        Some(&bot_token),
        Some(&json!({ "name": "from-ci" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    for (method, path) in [
        ("GET", "/api/v1/auth/sessions"),
        ("GET", "/api/v1/api-tokens"),
        ("POST", "/api/v1/users/me/password"),
    ] {
        let a = call(&server, method, path, Some(&bot_token), Some(&json!({}))).await;
        assert_eq!(a.status, 403, "{path}: {a:?}");
    }
    // Making someone api_only ends their sessions.
    let op_id = call(&server, "GET", "/api/v1/auth/me", Some(&op), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/users/{op_id}"),
        Some(&root),
        Some(&json!({ "role": "api_only" })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        call(&server, "GET", "/api/v1/auth/me", Some(&op), None)
            .await
            .status,
        401
    );
}

async fn audit_log_records_every_change_with_filters_and_retention(db: DbKind) {
    let mut server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let root_id = call(&server, "GET", "/api/v1/auth/me", Some(&root), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = call(&server, "GET", "/api/v1/health/overall", None, None).await;
    assert_eq!(before.status, 200);
    let t0 = lunora_now_ms() - 1000;
    let res = server
        .client
        .post(server.url("/api/v1/channels"))
        .bearer_auth(&root)
        .header("user-agent", "audit-test/1.0")
        .json(&json!({ "name": "audited" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let channel: Value = res.json().await.unwrap();
    let channel_id = channel["id"].as_str().unwrap();
    let input_id = channel["inputs"][0]["id"].as_str().unwrap();
    // A refused change is recorded too.
    invite_user(&server, &root, "view@example.com", "viewer", PASSWORD).await;
    let viewer = token_for(&server, "view@example.com", PASSWORD).await;
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/channels/{channel_id}"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(a.status, 403);
    // A reveal carries what was revealed, never the secret.
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/channels/{channel_id}/inputs/{input_id}/reveal"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let key = a.body["publish_key"].as_str().unwrap().to_string();

    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?action=channel.create",
        Some(&root),
        None,
    )
    .await;
    let e = &a.body["items"][0];
    assert_eq!(e["actor_id"], root_id.as_str(), "{a:?}");
    assert_eq!(e["resource"], "/api/v1/channels");
    assert_eq!(e["resource_id"], channel_id);
    assert_eq!(
        (e["result"].as_str(), e["status"].as_i64()),
        (Some("success"), Some(201))
    );
    assert_eq!(e["ip"], "127.0.0.1");
    assert_eq!(e["user_agent"], "audit-test/1.0");
    assert_eq!(e["method"], "POST");
    assert!(e["request_id"].is_string());
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?result=denied&action=channel.delete",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 1, "{a:?}");
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?action=secret.reveal",
        Some(&root),
        None,
    )
    .await;
    let e = &a.body["items"][0];
    assert_eq!(e["details"]["secret"], "publish_key", "{a:?}");
    assert_eq!(e["resource_id"], input_id);
    assert!(!a.body.to_string().contains(&key));
    // Filters: actor, resource prefix, time range; paging.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/audit-logs?actor_id={root_id}&resource=/api/v1/channels/"),
        Some(&root),
        None,
    )
    .await;
    assert!(
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["resource"]
                .as_str()
                .unwrap()
                .starts_with("/api/v1/channels/")),
        "{a:?}"
    );
    assert!(!a.body["items"].as_array().unwrap().is_empty());
    let future = "2999-01-01T00:00:00Z";
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/audit-logs?since={future}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 0);
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?until=2000-01-01T00:00:00Z",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/audit-logs?since=yesterday",
            Some(&root),
            None
        )
        .await
        .status,
        400
    );
    let all = call(
        &server,
        "GET",
        "/api/v1/audit-logs?limit=500",
        Some(&root),
        None,
    )
    .await;
    let total = all.body["items"].as_array().unwrap().len();
    assert!(total >= 5, "{all:?}");
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let path = if cursor.is_empty() {
            "/api/v1/audit-logs?limit=2".to_string()
        } else {
            format!("/api/v1/audit-logs?limit=2&cursor={cursor}")
        };
        let page = call(&server, "GET", &path, Some(&root), None).await;
        seen += page.body["items"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert!(seen >= total, "paged {seen} of {total}");
    // Reading is not recorded; only admins read.
    assert_eq!(
        call(&server, "GET", "/api/v1/audit-logs", Some(&viewer), None)
            .await
            .status,
        403
    );
    let id = all.body["items"][0]["id"].as_str().unwrap();
    let one = call(
        &server,
        "GET",
        &format!("/api/v1/audit-logs/{id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(one.body["id"], id);
    let _ = t0;

    // Retention: entries past 90 days are purged (at start and hourly).
    let pool = db_pool(&server).await;
    let old = lunora_now_ms() - 91 * 86_400_000;
    sqlx::query(&format!(
        "UPDATE audit_logs SET created_at = {old} WHERE action = 'channel.create'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    server.terminate(Duration::from_secs(10)).await.unwrap();
    server.restart().await.unwrap();
    let root = admin_token(&server).await;
    let mut purged = false;
    for _ in 0..50 {
        let a = call(
            &server,
            "GET",
            "/api/v1/audit-logs?action=channel.create",
            Some(&root),
            None,
        )
        .await;
        if a.body["items"].as_array().unwrap().is_empty() {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(purged, "old entries are purged");
    let a = call(
        &server,
        "GET",
        "/api/v1/audit-logs?action=secret.reveal",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        a.body["items"].as_array().unwrap().len(),
        1,
        "recent entries stay"
    );
}

async fn rate_limits_and_ip_allowlist(db: DbKind) {
    let server = Server::start(
        bin(),
        options(db)
            .env("LUNORA_RATELIMIT_STAFF_PER_MINUTE", "8")
            .env("LUNORA_RATELIMIT_AUTH_PER_MINUTE", "10"),
    )
    .await
    .unwrap();
    let root = admin_token(&server).await;
    let mut limited = None;
    for i in 0..12 {
        let a = call(&server, "GET", "/api/v1/channels", Some(&root), None).await;
        if a.status == 429 {
            limited = Some((i, a));
            break;
        }
        assert_eq!(a.status, 200);
    }
    let (i, a) = limited.expect("the staff limit applies");
    assert_eq!(a.code(), "rate_limited");
    assert!(i >= 7, "not before the limit: {i}");
    assert!(
        a.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Health checks are never limited.
    for _ in 0..20 {
        assert_eq!(
            call(&server, "GET", "/api/v1/health/overall", None, None)
                .await
                .status,
            200
        );
    }
    // Sign-in routes have their own limit per address.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let a = call(
            &server,
            "POST",
            "/api/v1/auth/password-reset/request",
            None,
            Some(&json!({ "email": "nobody@example.com" })),
        )
        .await;
        codes.push(a.status);
    }
    assert!(codes.contains(&429), "{codes:?}");
    let elsewhere = client_from([127, 0, 0, 3]);
    let a = call_with(
        &elsewhere,
        &server,
        "POST",
        "/api/v1/auth/password-reset/request",
        None,
        Some(&json!({ "email": "nobody@example.com" })),
    )
    .await;
    assert_eq!(a.status, 202, "another address has its own budget: {a:?}");

    // IP allow-list of the organization: staff and API tokens from listed addresses only.
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&root),
        Some(&json!({ "name": "ci" })),
    )
    .await;
    let api_token = a.body["token"].as_str().unwrap().to_string();
    signup_user(&server, &root, "fan@example.com", AUDIENCE_PASSWORD).await;
    let a = call(
        &server,
        "PATCH",
        "/api/v1/organizations/current",
        Some(&root),
        Some(&json!({ "ip_allowlist": ["10.0.0.0/8"] })),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "would_lock_out"), "{a:?}");
    let a = call(
        &server,
        "PATCH",
        "/api/v1/organizations/current",
        Some(&root),
        Some(&json!({ "ip_allowlist": ["nonsense"] })),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("ip_allowlist")),
        "{a:?}"
    );
    let a = call(
        &server,
        "PATCH",
        "/api/v1/organizations/current",
        Some(&root),
        Some(&json!({ "ip_allowlist": ["127.0.0.1/32"] })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        call(&server, "GET", "/api/v1/channels", Some(&api_token), None)
            .await
            .status,
        200
    );
    let outside = client_from([127, 0, 0, 9]);
    let a = call_with(
        &outside,
        &server,
        "GET",
        "/api/v1/channels",
        Some(&api_token),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "ip_not_allowed"), "{a:?}");
    let a = call_with(
        &outside,
        &server,
        "GET",
        "/api/v1/channels",
        Some(&root),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "ip_not_allowed"), "{a:?}");
    let a = call_with(
        &outside,
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "ip_not_allowed"), "{a:?}");
    // The audience is not bound by the staff allow-list.
    let a = call_with(
        &outside,
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": "fan@example.com", "password": AUDIENCE_PASSWORD })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
}

async fn secrets_never_appear_in_clear(db: DbKind) {
    let server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let res = create_channel(&server, &root, "secret-channel").await;
    let created: Value = res.json().await.unwrap();
    let url = created["publish_url"].as_str().unwrap();
    let key = url.rsplit('/').next().unwrap().to_string();
    assert!(key.starts_with("live_") && key.len() > 20, "{url}");
    let channel_id = created["id"].as_str().unwrap();
    let input_id = created["inputs"][0]["id"].as_str().unwrap();
    let a = call(
        &server,
        "POST",
        "/api/v1/api-tokens",
        Some(&root),
        Some(&json!({ "name": "ci" })),
    )
    .await;
    let api_token = a.body["token"].as_str().unwrap().to_string();
    let enrol = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/enrol",
        Some(&root),
        None,
    )
    .await;
    let secret = enrol.body["secret"].as_str().unwrap().to_string();
    let code = totp_code(&secret, unix_now()).unwrap();
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/verify",
        Some(&root),
        Some(&json!({ "code": code })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let recovery = a.body["recovery_codes"][0].as_str().unwrap().to_string();
    // A refresh token, for the database check.
    let res = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 401, "MFA is on now");
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": recovery })),
    )
    .await;
    let refresh_token = a.body["refresh_token"].as_str().unwrap().to_string();

    let secrets = [
        ("stream key", key.as_str()),
        ("API token", api_token.as_str()),
        ("TOTP secret", secret.as_str()),
        ("recovery code", recovery.as_str()),
        ("refresh token", refresh_token.as_str()),
        ("admin password", ADMIN_PASSWORD),
    ];
    // API answers: every read shows secrets masked (last 4 at most).
    for path in [
        format!("/api/v1/channels/{channel_id}"),
        "/api/v1/channels".to_string(),
        "/api/v1/api-tokens".to_string(),
        "/api/v1/auth/mfa".to_string(),
        "/api/v1/users/me".to_string(),
        "/api/v1/users".to_string(),
        "/api/v1/auth/sessions".to_string(),
        "/api/v1/audit-logs?limit=500".to_string(),
        "/api/v1/outbox".to_string(),
        "/api/v1/organizations/current".to_string(),
    ] {
        let a = call(&server, "GET", &path, Some(&root), None).await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
        let text = a.body.to_string();
        for (what, s) in &secrets {
            assert!(!text.contains(s), "{what} in the answer of {path}: {text}");
        }
    }
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{channel_id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        a.body["inputs"][0]["publish_key_masked"],
        format!("****{}", &key[key.len() - 4..])
    );
    // The explicit reveal shows it, needs its permission and is audited.
    invite_user(&server, &root, "view@example.com", "viewer", PASSWORD).await;
    let viewer = token_for(&server, "view@example.com", PASSWORD).await;
    let reveal = format!("/api/v1/channels/{channel_id}/inputs/{input_id}/reveal");
    let a = call(&server, "POST", &reveal, Some(&viewer), None).await;
    assert_eq!(a.status, 403, "{a:?}");
    let a = call(&server, "POST", &reveal, Some(&root), None).await;
    assert_eq!(a.body["publish_key"], key.as_str(), "{a:?}");
    assert_eq!(a.headers["cache-control"], "no-store");
    // Logs.
    let logs = server.logs();
    for (what, s) in &secrets {
        assert!(!logs.contains(s), "{what} in the server log");
    }
    // The database: raw SQLite bytes (file and WAL), or every row of PostgreSQL as text.
    let mut dump = Vec::new();
    match db {
        DbKind::Sqlite => {
            for f in ["lunora.db", "lunora.db-wal"] {
                if let Ok(bytes) = std::fs::read(server.data_path(f)) {
                    dump.extend_from_slice(&bytes);
                }
            }
            assert!(dump.len() > 10_000, "read the database file");
        }
        DbKind::Postgres => {
            let pool = db_pool(&server).await;
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(tables.len() > 5);
            for (t,) in tables {
                let rows: Vec<(String,)> =
                    sqlx::query_as(&format!("SELECT row_to_json(x)::text FROM {t} x"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                for (r,) in rows {
                    dump.extend_from_slice(r.as_bytes());
                }
            }
            assert!(
                String::from_utf8_lossy(&dump).contains("secret-channel"),
                "read the rows"
            );
        }
    }
    let hay = |needle: &str| dump.windows(needle.len()).any(|w| w == needle.as_bytes());
    for (what, s) in &secrets {
        assert!(!hay(s), "{what} stored in clear in the database");
    }
}

async fn master_key_rotation_reseals_everything(db: DbKind) {
    let mut server = start_quiet(db).await;
    let root = admin_token(&server).await;
    let res = create_channel(&server, &root, "rotated").await;
    let created: Value = res.json().await.unwrap();
    let key = created["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let channel_id = created["id"].as_str().unwrap().to_string();
    let input_id = created["inputs"][0]["id"].as_str().unwrap().to_string();
    let enrol = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/enrol",
        Some(&root),
        None,
    )
    .await;
    let secret = enrol.body["secret"].as_str().unwrap().to_string();
    let code = totp_code(&secret, unix_now()).unwrap();
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/mfa/totp/verify",
        Some(&root),
        Some(&json!({ "code": code })),
    )
    .await;
    assert_eq!(a.status, 200);
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/password-reset/request",
        None,
        Some(&json!({ "email": ADMIN_EMAIL })),
    )
    .await;
    assert_eq!(a.status, 202);
    server.terminate(Duration::from_secs(10)).await.unwrap();

    let key_file = server.data_path("master.key");
    let old_key = std::fs::read(&key_file).unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["secrets", "rotate-master-key"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LUNORA_DATA_DIR", &server.data_dir);
    if let Some(url) = &server.database_url {
        cmd.env("LUNORA_DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count: u64 = stdout
        .split("re-encrypted ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        count >= 3,
        "stream key, TOTP secret and outbox mail: {stdout}"
    );
    let new_key = std::fs::read(&key_file).unwrap();
    assert_ne!(old_key, new_key);
    let backup = std::fs::read_dir(&server.data_dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("master.key.bak-")
        })
        .expect("a backup of the old key");
    assert_eq!(std::fs::read(backup.path()).unwrap(), old_key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Everything sealed still opens under the new key.
    server.restart().await.unwrap();
    let code = totp_code(&secret, unix_now() + 30).unwrap();
    let a = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": code })),
    )
    .await;
    assert_eq!(a.status, 200, "TOTP secret still opens: {a:?}");
    let root = a.body["access_token"].as_str().unwrap().to_string();
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/channels/{channel_id}/inputs/{input_id}/reveal"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.body["publish_key"], key.as_str(), "{a:?}");
    let a = call(&server, "GET", "/api/v1/outbox", Some(&root), None).await;
    assert!(
        a.body["items"][0]["body"]
            .as_str()
            .unwrap()
            .contains("token="),
        "{a:?}"
    );
    // A second rotation works too; a missing key is refused.
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&key_file).unwrap();
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no master key"));
}

async fn first_administrator_from_the_logged_setup_token(db: DbKind) {
    let server = Server::start(
        bin(),
        lunora_testkit::ServerOptions::new(db).env("LUNORA_AUTH_STAFF_MFA", "optional"),
    )
    .await
    .unwrap();
    let logs = server.logs();
    let token = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| {
            v["setup_path"]
                .as_str()
                .and_then(|p| p.split("token=").nth(1))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no setup link in the log:\n{logs}"));
    let setup = |token: &str, password: &str| {
        let server = &server;
        let body = json!({ "token": token, "email": "first@example.com", "password": password });
        async move { call(server, "POST", "/api/v1/setup", None, Some(&body)).await }
    };
    let a = setup("setup_wrong", PASSWORD).await;
    assert_eq!((a.status, a.code()), (400, "invalid_token"), "{a:?}");
    let a = setup(&token, "weak").await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("password")),
        "{a:?}"
    );
    let a = setup(&token, PASSWORD).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        (a.body["role"].as_str(), a.body["superadmin"].as_bool()),
        (Some("admin"), Some(true))
    );
    let a = setup(&token, PASSWORD).await;
    assert_eq!((a.status, a.code()), (409, "already_set_up"), "{a:?}");
    let t = token_for(&server, "first@example.com", PASSWORD).await;
    assert_eq!(
        call(&server, "GET", "/api/v1/organizations", Some(&t), None)
            .await
            .status,
        200
    );
}
