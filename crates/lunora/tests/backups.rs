//! Backups (issue #10): a backup taken while campaigns are being written, a selective restore
//! of campaigns into a changed database checked row by row (users untouched), the dry run, files
//! that were tampered with or made by another server, admin-only access, foreign tenants, the
//! schedule, and a restore refused for a missing advertiser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};
use sqlx::Row;

const PASSWORD: &str = "Staff-Password-42!";

async fn create(server: &Server, token: &str, path: &str, body: Value) -> String {
    let a = call(server, "POST", path, Some(token), Some(&body)).await;
    assert_eq!(a.status, 201, "POST {path} {body}: {a:?}");
    a.body["id"].as_str().unwrap().to_string()
}

/// Rows of a table as (id-ish key, column → value as text), read straight from the database.
async fn rows(pool: &sqlx::AnyPool, sql: &str) -> Vec<Vec<(String, Option<String>)>> {
    let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
    rows.iter()
        .map(|r| {
            use sqlx::Column;
            r.columns()
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let v = r
                        .try_get::<Option<i64>, _>(i)
                        .map(|v| v.map(|n| n.to_string()))
                        .or_else(|_| r.try_get::<Option<String>, _>(i))
                        .unwrap();
                    (c.name().to_string(), v)
                })
                .collect()
        })
        .collect()
}

const CAMPAIGNS: &str = "SELECT id, organization_id, client_id, name, status, budget_cents, \
     start_date, end_date, owner_id, created_at, updated_at FROM ad_campaigns ORDER BY id";
const TEAM: &str = "SELECT campaign_id, user_id, can_edit, can_manage_team, added_at \
     FROM ad_campaign_team ORDER BY campaign_id, user_id";
const USERS: &str = "SELECT id, email, display_name, role, updated_at FROM users ORDER BY id";

fn ids(list: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn entity<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["entity_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report}"))
}

async fn backup_while_writing_then_restore_campaigns(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let pool = db_pool(&server).await;
    let seller = invite_user(&server, &admin, "s@b.example", "seller", PASSWORD).await;
    let client_a = create(&server, &admin, "/api/v1/clients", json!({"name": "Acme"})).await;
    let client_b = create(&server, &admin, "/api/v1/clients", json!({"name": "Bolt"})).await;
    let mut fixed = Vec::new();
    for i in 0..4 {
        let client = if i % 2 == 0 { &client_a } else { &client_b };
        fixed.push(
            create(
                &server,
                &admin,
                "/api/v1/campaigns",
                json!({"client_id": client, "name": format!("Fixed {i}"), "budget_cents": 1000 * i,
                       "start_date": "2026-07-01", "end_date": "2026-08-01"}),
            )
            .await,
        );
    }
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/campaigns/{}/team", fixed[2]),
        Some(&admin),
        Some(&json!({"user_id": seller, "permissions": ["edit"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // A writer keeps adding campaigns while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let (client, url, token, client_a) = (
            server.client.clone(),
            server.url("/api/v1/campaigns"),
            admin.clone(),
            client_a.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"client_id": client_a, "name": format!("Writer {n:04}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
                n += 1;
                written.store(n, Ordering::SeqCst);
            }
        })
    };
    while written.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let b = call(&server, "POST", "/api/v1/backups", Some(&admin), None).await;
    assert_eq!(b.status, 201, "{b:?}");
    // Two more acknowledged writes: at least one is certainly after the snapshot.
    let at_return = written.load(Ordering::SeqCst);
    while written.load(Ordering::SeqCst) < at_return + 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let backup_id = b.body["id"].as_str().unwrap().to_string();
    assert_eq!(b.body["kind"], "manual");
    assert_eq!(b.body["status"], "ready");
    assert_eq!(b.body["sha256"].as_str().unwrap().len(), 64);
    assert!(b.body["size_bytes"].as_i64().unwrap() > 0);
    let in_backup = b.body["row_counts"]["campaigns"].as_u64().unwrap() as usize;
    let total = fixed.len() + written.load(Ordering::SeqCst);
    assert!(
        in_backup >= fixed.len() + 3 && in_backup < total,
        "the backup holds {in_backup} of {total} campaigns: it was taken mid-write"
    );
    assert_eq!(b.body["row_counts"]["clients"], 2);
    let list = call(&server, "GET", "/api/v1/backups", Some(&admin), None).await;
    assert_eq!(list.body["items"][0]["id"], backup_id.as_str());

    // The campaigns the backup must hold: the fixed ones and the writer's first ones, whole.
    let writer_kept = in_backup - fixed.len();
    let keep = |row: &Vec<(String, Option<String>)>| -> bool {
        let name = row[3].1.clone().unwrap();
        match name.strip_prefix("Writer ") {
            Some(n) => n.parse::<usize>().unwrap() < writer_kept,
            None => true,
        }
    };
    let expected: Vec<_> = rows(&pool, CAMPAIGNS)
        .await
        .into_iter()
        .filter(|r| keep(r))
        .collect();
    assert_eq!(expected.len(), in_backup);
    let kept: Vec<String> = expected.iter().map(|r| r[0].1.clone().unwrap()).collect();
    let expected_team: Vec<_> = rows(&pool, TEAM)
        .await
        .into_iter()
        .filter(|r| kept.contains(r[0].1.as_ref().unwrap()))
        .collect();
    let removed_by_restore: Vec<String> = rows(&pool, CAMPAIGNS)
        .await
        .into_iter()
        .filter(|r| !keep(r))
        .map(|r| r[0].1.clone().unwrap())
        .collect();

    // Change the database: edit one campaign, delete one, drop a team member, add one; change
    // a user.
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/campaigns/{}", fixed[0]),
        Some(&admin),
        Some(&json!({"name": "Renamed", "budget_cents": 99})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let version_after_edit = a.body["version"].as_i64().unwrap();
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/campaigns/{}", fixed[1]),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/campaigns/{}/team/{seller}", fixed[2]),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let added = create(
        &server,
        &admin,
        "/api/v1/campaigns",
        json!({"client_id": client_b, "name": "Made after the backup"}),
    )
    .await;
    let a = call(
        &server,
        "PATCH",
        &format!("/api/v1/users/{seller}"),
        Some(&admin),
        Some(&json!({"display_name": "Changed after the backup"})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let users_before = rows(&pool, USERS).await;
    let campaigns_changed = rows(&pool, CAMPAIGNS).await;

    // The dry run shows exactly those changes and changes nothing.
    let body = json!({"backup_id": backup_id, "entity_types": ["campaigns"], "dry_run": true});
    let dry = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&admin),
        Some(&body),
    )
    .await;
    assert_eq!(dry.status, 200, "{dry:?}");
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["entity_types"].as_array().unwrap().len(), 1);
    let c = entity(&dry.body, "campaigns");
    assert_eq!(ids(c["added"].as_array().unwrap()), vec![fixed[1].clone()]);
    let mut want_removed = removed_by_restore.clone();
    want_removed.push(added.clone());
    want_removed.sort();
    assert_eq!(ids(c["removed"].as_array().unwrap()), want_removed);
    let changed = c["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 2, "{c}");
    let edit = changed
        .iter()
        .find(|x| x["id"] == fixed[0].as_str())
        .unwrap();
    let fields: Vec<&str> = edit["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"budget_cents"),
        "{fields:?}"
    );
    assert!(!fields.contains(&"status") && !fields.contains(&"client_id"));
    let team = changed
        .iter()
        .find(|x| x["id"] == fixed[2].as_str())
        .unwrap();
    // Removing a member also touched the campaign's updated_at; nothing else of it changed.
    let team_fields = team["fields"].as_array().unwrap();
    assert!(team_fields.contains(&json!("team")), "{team}");
    assert!(
        team_fields.iter().all(|f| f == "team" || f == "updated_at"),
        "{team}"
    );
    assert_eq!(c["unchanged"].as_u64().unwrap() as usize, in_backup - 3);
    assert_eq!(
        rows(&pool, CAMPAIGNS).await,
        campaigns_changed,
        "a dry run changes nothing"
    );

    // The restore: campaigns and their teams equal the backup row by row, users untouched.
    let mut ws = common::ws::connect(&server, &admin).await;
    let topic = format!("campaign:{}", fixed[0]);
    common::ws::subscribe(&mut ws, &["ads", &topic]).await;
    let body = json!({"backup_id": backup_id, "entity_types": ["campaigns"], "dry_run": false});
    let done = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&admin),
        Some(&body),
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(
        entity(&done.body, "campaigns"),
        c,
        "the restore did what the dry run said"
    );
    // Open pages hear of it.
    let ev = common::ws::next_of(&mut ws, "backup.restored", 10).await;
    assert_eq!(ev["data"]["backup_id"], backup_id.as_str(), "{ev}");
    assert_eq!(ev["data"]["entity_types"]["campaigns"]["added"], 1, "{ev}");
    let ev = common::ws::next_of(&mut ws, "campaign.restored", 10).await;
    assert_eq!(ev["data"]["id"], fixed[0].as_str(), "{ev}");
    assert_eq!(rows(&pool, CAMPAIGNS).await, expected);
    assert_eq!(rows(&pool, TEAM).await, expected_team);
    assert_eq!(
        rows(&pool, USERS).await,
        users_before,
        "users are untouched"
    );
    // The restored row's version moved past the edited one, so a stale If-Match fails.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/campaigns/{}", fixed[0]),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.body["name"], "Fixed 0");
    assert!(a.body["version"].as_i64().unwrap() > version_after_edit);
    // The restore is in the activity log.
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM ad_activities WHERE entity_type = 'backup' AND action = 'restore'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    // Running it again finds nothing to change.
    let again = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&admin),
        Some(&json!({"backup_id": backup_id, "entity_types": ["campaigns"]})),
    )
    .await;
    let c = entity(&again.body, "campaigns");
    assert_eq!(again.body["dry_run"], true, "dry_run defaults to true");
    assert!(c["added"].as_array().unwrap().is_empty());
    assert!(c["removed"].as_array().unwrap().is_empty());
    assert!(c["changed"].as_array().unwrap().is_empty(), "{c}");
    assert_eq!(c["unchanged"].as_u64().unwrap() as usize, in_backup);
}

async fn tampered_and_foreign_files_are_refused(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    create(&server, &admin, "/api/v1/clients", json!({"name": "Acme"})).await;
    let b = call(&server, "POST", "/api/v1/backups", Some(&admin), None).await;
    assert_eq!(b.status, 201, "{b:?}");
    let id = b.body["id"].as_str().unwrap().to_string();

    let res = server
        .client
        .get(server.url(&format!("/api/v1/backups/{id}/download")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let disposition = res.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"lunora-backup-"));
    let file = res.bytes().await.unwrap().to_vec();
    assert_eq!(&file[..8], b"LUNORABK");
    assert_eq!(
        lunora_store::crypto::hex(&<sha2::Sha256 as sha2::Digest>::digest(&file)),
        b.body["sha256"].as_str().unwrap()
    );
    // Nothing of the data is readable in the file.
    assert!(!file.windows(4).any(|w| w == b"Acme"));

    let upload = |bytes: Vec<u8>, server: &Server, token: &str| {
        let req = server
            .client
            .post(server.url("/api/v1/backups/upload"))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A flipped byte in the body is refused with a clear error.
    let mut bad = file.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    let (status, body) = upload(bad, &server, &admin).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "backup_corrupt");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("changed after it was made"));
    // Past the general 1 MiB body limit, uploads are still read (and this one refused as no
    // backup, not as too large).
    let (status, body) = upload(vec![7u8; 3 * 1024 * 1024], &server, &admin).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("backup_corrupt")),
        "{body}"
    );
    let (status, body) = upload(b"not a backup".to_vec(), &server, &admin).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("backup_corrupt"))
    );

    // The intact file is accepted and listed as uploaded.
    let (status, body) = upload(file.clone(), &server, &admin).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "uploaded");
    assert_eq!(body["row_counts"]["clients"], 1);
    assert_eq!(body["created_at"], b.body["created_at"]);

    // A listed file changed on disk: download and restore refuse it.
    let path = server.data_path(format!("backups/{id}.lbk"));
    let mut on_disk = std::fs::read(&path).unwrap();
    let last = on_disk.len() - 40;
    on_disk[last] ^= 0x80;
    std::fs::write(&path, &on_disk).unwrap();
    let a = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&admin),
        Some(&json!({"backup_id": id, "entity_types": ["clients"], "dry_run": true})),
    )
    .await;
    assert_eq!((a.status, a.code()), (422, "backup_corrupt"), "{a:?}");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/backups/{id}/download"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (422, "backup_corrupt"), "{a:?}");

    // Another server (another master key) refuses the file as foreign.
    let other = start(db).await;
    let other_admin = admin_token(&other).await;
    let (status, body) = upload(file, &other, &other_admin).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "backup_foreign_key");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("made by another Lunora server"));

    // Delete removes the row and the file.
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/backups/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    assert!(!path.exists());
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/backups/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 404);
}

async fn access_tenants_schedule_and_references(db: DbKind) {
    let server = start(db).await;
    let root = admin_token(&server).await;
    let b = call(&server, "POST", "/api/v1/backups", Some(&root), None).await;
    assert_eq!(b.status, 201, "{b:?}");
    let id = b.body["id"].as_str().unwrap().to_string();

    // Only administrators.
    for (email, role) in [
        ("o@b.example", "operator"),
        ("s@b.example", "seller"),
        ("p@b.example", "producer"),
        ("c@b.example", "client"),
    ] {
        invite_user(&server, &root, email, role, PASSWORD).await;
        let t = token_for(&server, email, PASSWORD).await;
        for (method, path, body) in [
            ("GET", "/api/v1/backups".to_string(), None),
            ("POST", "/api/v1/backups".to_string(), None),
            ("GET", format!("/api/v1/backups/{id}/download"), None),
            ("GET", "/api/v1/backups/schedule".to_string(), None),
            (
                "POST",
                "/api/v1/backups/restore".to_string(),
                Some(json!({"backup_id": id, "entity_types": ["campaigns"]})),
            ),
        ] {
            let a = call(&server, method, &path, Some(&t), body.as_ref()).await;
            assert_eq!(a.status, 403, "{role} {method} {path}: {a:?}");
        }
    }

    // Another organization's backup is 404 to its administrator.
    let beta = second_organization(
        &server,
        &root,
        "Beta",
        "beta",
        "boss@beta.example",
        PASSWORD,
    )
    .await;
    for (method, path, body) in [
        ("GET", format!("/api/v1/backups/{id}"), None),
        ("GET", format!("/api/v1/backups/{id}/download"), None),
        ("DELETE", format!("/api/v1/backups/{id}"), None),
        (
            "POST",
            "/api/v1/backups/restore".to_string(),
            Some(json!({"backup_id": id, "entity_types": ["campaigns"]})),
        ),
    ] {
        let a = call(&server, method, &path, Some(&beta), body.as_ref()).await;
        assert_eq!(a.status, 404, "{method} {path}: {a:?}");
    }
    let a = call(&server, "GET", "/api/v1/backups", Some(&beta), None).await;
    assert_eq!(a.body["items"], json!([]));

    // The schedule: seed defaults, then a round trip; bad values are refused.
    let a = call(
        &server,
        "GET",
        "/api/v1/backups/schedule",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["enabled"], false);
    assert_eq!(
        (
            &a.body["daily_retention_days"],
            &a.body["weekly_retention_days"],
            &a.body["monthly_retention_days"]
        ),
        (&json!(7), &json!(30), &json!(365))
    );
    let want = json!({"enabled": true, "hour_utc": 22, "daily_retention_days": 5,
                      "weekly_retention_days": 21, "monthly_retention_days": 400});
    let a = call(
        &server,
        "PUT",
        "/api/v1/backups/schedule",
        Some(&root),
        Some(&want),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(
        &server,
        "GET",
        "/api/v1/backups/schedule",
        Some(&root),
        None,
    )
    .await;
    for k in [
        "enabled",
        "hour_utc",
        "daily_retention_days",
        "weekly_retention_days",
        "monthly_retention_days",
    ] {
        assert_eq!(a.body[k], want[k], "{k}");
    }
    let a = call(
        &server,
        "GET",
        "/api/v1/backups/schedule",
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(a.body["enabled"], false, "schedules are per organization");
    let mut bad = want.clone();
    bad["hour_utc"] = json!(24);
    let a = call(
        &server,
        "PUT",
        "/api/v1/backups/schedule",
        Some(&root),
        Some(&bad),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    let a = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&root),
        Some(&json!({"backup_id": id, "entity_types": ["users"]})),
    )
    .await;
    assert_eq!(a.status, 400, "users are not restorable: {a:?}");

    // Campaigns whose advertiser was deleted since: refused, naming the advertiser, nothing
    // changed; restoring advertisers too works.
    let client = create(&server, &root, "/api/v1/clients", json!({"name": "Gone"})).await;
    let campaign = create(
        &server,
        &root,
        "/api/v1/campaigns",
        json!({"client_id": client, "name": "Orphan"}),
    )
    .await;
    let b = call(&server, "POST", "/api/v1/backups", Some(&root), None).await;
    let id = b.body["id"].as_str().unwrap().to_string();
    for path in [
        format!("/api/v1/campaigns/{campaign}"),
        format!("/api/v1/clients/{client}"),
    ] {
        let a = call(&server, "DELETE", &path, Some(&root), None).await;
        assert_eq!(a.status, 204, "{path}: {a:?}");
    }
    let a = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&root),
        Some(&json!({"backup_id": id, "entity_types": ["campaigns"], "dry_run": false})),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (409, "restore_missing_references"),
        "{a:?}"
    );
    assert!(
        a.body["detail"].as_str().unwrap().contains(&client),
        "{a:?}"
    );
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/campaigns/{campaign}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 404, "nothing was restored");
    let a = call(
        &server,
        "POST",
        "/api/v1/backups/restore",
        Some(&root),
        Some(&json!({"backup_id": id, "entity_types": ["campaigns", "clients"], "dry_run": false})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(entity(&a.body, "clients")["added"], json!([client]));
    assert_eq!(entity(&a.body, "campaigns")["added"], json!([campaign]));
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/campaigns/{campaign}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!((a.status, &a.body["client_id"]), (200, &json!(client)));
}

/// The scheduler (it looks every minute) takes the first scheduled backup of the month as
/// `monthly` once the schedule's hour has come, and records the day.
async fn the_scheduler_takes_a_monthly_backup(db: DbKind) {
    let server = start(db).await;
    let admin = admin_token(&server).await;
    let a = call(
        &server,
        "PUT",
        "/api/v1/backups/schedule",
        Some(&admin),
        Some(
            &json!({"enabled": true, "hour_utc": 0, "daily_retention_days": 7,
                     "weekly_retention_days": 30, "monthly_retention_days": 365}),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(150);
    let item = loop {
        let list = call(&server, "GET", "/api/v1/backups", Some(&admin), None).await;
        if let Some(i) = list.body["items"].as_array().and_then(|l| l.first()) {
            break i.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled backup within 150 s"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert_eq!(item["kind"], "monthly", "{item}");
    assert_eq!(item["created_by"], Value::Null);
    let day = &item["created_at"].as_str().unwrap()[..10];
    let mut s = Value::Null;
    for _ in 0..50 {
        s = call(
            &server,
            "GET",
            "/api/v1/backups/schedule",
            Some(&admin),
            None,
        )
        .await
        .body;
        if s["last_run_day"] == day {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(s["last_run_day"], day, "{s}");
    let list = call(&server, "GET", "/api/v1/backups", Some(&admin), None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "one a day");
}

/// A crash between a backup file's rename and its row's insert leaves a file nothing lists: the
/// server removes such files when it starts, once they are a minute old, and keeps every listed
/// backup and any file that may belong to a backup being taken.
async fn unlisted_backup_files_are_swept_at_start(db: DbKind) {
    let mut server = start(db).await;
    let admin = admin_token(&server).await;
    let b = call(&server, "POST", "/api/v1/backups", Some(&admin), None).await;
    assert_eq!(b.status, 201, "{b:?}");
    let id = b.body["id"].as_str().unwrap().to_string();
    let dir = server.data_path("backups");
    let listed: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let stray = dir.join("019a0000-0000-7000-8000-000000000000.lbk");
    std::fs::write(&stray, b"LUNORABK left by a crash").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stray)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    let fresh = dir.join("019a0000-0000-7000-8000-000000000001.lbk");
    std::fs::write(&fresh, b"LUNORABK being taken").unwrap();
    // The listed backup is old enough to be swept too, were it not listed.
    std::fs::File::options()
        .write(true)
        .open(&listed[0])
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();

    server.restart().await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while stray.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unlisted file stayed\n{}",
            server.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listed[0].exists(), "a listed backup was removed");
    assert!(fresh.exists(), "a file younger than a minute was removed");
    let admin = admin_token(&server).await;
    let res = server
        .client
        .get(server.url(&format!("/api/v1/backups/{id}/download")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

lunora_testkit::db_tests!(
    the_scheduler_takes_a_monthly_backup,
    unlisted_backup_files_are_swept_at_start,
    backup_while_writing_then_restore_campaigns,
    tampered_and_foreign_files_are_refused,
    access_tenants_schedule_and_references,
);
