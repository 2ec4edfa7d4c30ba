#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Storage tiers with the real binary, FFmpeg and a real S3-compatible server (`s3s-fs`, a
//! filesystem-backed S3 implementation, installed by `scripts/test.sh`): a finished recording
//! moves hot → warm → cold, a failed upload leaves the local copy, a cold recording still
//! downloads (whole and by range) and plays as HLS VOD, and deleting it removes the object.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::media::Publisher;
use common::*;
use lunora_testkit::{db_tests, DbKind, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

db_tests!(a_recording_moves_hot_warm_cold_and_still_plays);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_recordings_and_their_files() {
    retention(DbKind::Sqlite).await
}

const BUCKET: &str = "lunora-archive";
const ACCESS_KEY: &str = "lunora-test";
const SECRET_KEY: &str = "lunora-test-secret-key";

/// `s3s-fs` serving `root` (one directory per bucket) on `port`.
struct S3 {
    child: Child,
}

impl S3 {
    /// Starts the server; the bucket (a directory under `root`) is made by the caller.
    fn start(root: &Path, port: u16) -> S3 {
        let mut child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs is installed by scripts/test.sh (cargo install s3s-fs)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            assert!(child.try_wait().unwrap().is_none(), "s3s-fs exited");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Still running: the port answered because it is ours.
        assert!(
            child.try_wait().unwrap().is_none(),
            "s3s-fs exited (port taken?)"
        );
        S3 { child }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn recording(server: &Server, token: &str, id: &str) -> Value {
    let a = call(
        server,
        "GET",
        &format!("/api/v1/recordings/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

async fn wait_recording(
    server: &Server,
    token: &str,
    channel: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let a = call(
            server,
            "GET",
            &format!("/api/v1/recordings?channel_id={channel}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
        if let Some(r) = a.body["items"].as_array().and_then(|v| v.first()) {
            if ok(r) {
                return r.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {}\n{}",
            a.body,
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn download(server: &Server, token: &str, id: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = server
        .client
        .get(server.url(&format!("/api/v1/recordings/{id}/download")))
        .bearer_auth(token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

async fn a_recording_moves_hot_warm_cold_and_still_plays(db: DbKind) {
    // The store runs from the start, but a plain file sits where the prefix's directory must
    // go: every upload fails (the store answers an error) until the test removes it.
    let s3_root = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    let _s3 = S3::start(s3_root.path(), s3_port);
    std::fs::create_dir_all(s3_root.path().join(BUCKET)).unwrap();
    let blocker = s3_root.path().join(BUCKET).join("site-a");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let server = Server::start(
        bin(),
        options(db)
            .env("LUNORA_STORAGE_HOT_DAYS", "0")
            .env("LUNORA_STORAGE_WARM_DAYS", "0")
            .env("LUNORA_STORAGE_LIFECYCLE_INTERVAL", "1")
            .env("LUNORA_STORAGE_COLD_URL", &format!("s3://{BUCKET}/site-a"))
            .env(
                "LUNORA_STORAGE_COLD_ENDPOINT",
                &format!("http://127.0.0.1:{s3_port}"),
            )
            .env("LUNORA_STORAGE_COLD_ACCESS_KEY_ID", ACCESS_KEY)
            .env("LUNORA_STORAGE_COLD_SECRET_ACCESS_KEY", SECRET_KEY),
    )
    .await
    .unwrap();
    let token = admin_token(&server).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/channels",
        Some(&token),
        Some(&json!({ "name": "archived" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let channel = a.body["id"].as_str().unwrap().to_string();
    let key = a.body["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let settings = format!("/api/v1/channels/{channel}/recording");
    let a = call(
        &server,
        "PUT",
        &settings,
        Some(&token),
        Some(&json!({ "enabled": true })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // Record a few seconds, then stop recording: the file is finished.
    let _publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    wait_recording(
        &server,
        &token,
        &channel,
        Duration::from_secs(20),
        "recording",
        |r| r["status"] == "recording" && r["duration_seconds"].as_f64().unwrap_or(0.0) >= 3.0,
    )
    .await;
    let a = call(
        &server,
        "PUT",
        &settings,
        Some(&token),
        Some(&json!({ "enabled": false })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // The cold store refuses the upload: the recording reaches warm and stays there, its file
    // intact.
    let warm = wait_recording(
        &server,
        &token,
        &channel,
        Duration::from_secs(30),
        "the move to warm",
        |r| r["status"] == "complete" && r["tier"] == "warm",
    )
    .await;
    let id = warm["id"].as_str().unwrap().to_string();
    let rel = warm["path"].as_str().unwrap().to_string();
    assert!(
        !server.data_path("recordings").join(&rel).exists(),
        "the hot copy is gone"
    );
    let warm_file = server.data_path("warm").join(&rel);
    let original = std::fs::read(&warm_file).expect("the warm copy exists");
    assert_eq!(original.len() as u64, warm["size_bytes"].as_u64().unwrap());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = recording(&server, &token, &id).await;
    assert_eq!(
        still["tier"], "warm",
        "a failed upload leaves the recording warm: {still}"
    );
    assert!(warm_file.exists(), "a failed upload leaves the local copy");
    assert!(
        server
            .logs()
            .contains("cannot move a recording to the cold tier; it stays warm"),
        "the failed upload is logged"
    );
    let (status, body) = download(&server, &token, &id, None).await;
    assert_eq!((status, sha(&body)), (200, sha(&original)));

    // The store can write again: the next run moves it to cold, verified, and the warm file
    // goes.
    std::fs::remove_file(&blocker).unwrap();
    let cold = wait_recording(
        &server,
        &token,
        &channel,
        Duration::from_secs(60),
        "the move to cold",
        |r| r["tier"] == "cold",
    )
    .await;
    assert_eq!(cold["path"], warm["path"]);
    assert!(
        !warm_file.exists(),
        "the warm copy is deleted once the cold one is verified"
    );
    let objects = files_under(&s3_root.path().join(BUCKET).join("site-a"));
    let object = objects
        .iter()
        .find(|p| p.to_string_lossy().ends_with(&rel))
        .unwrap_or_else(|| panic!("no object for {rel} in {objects:?}"));
    assert_eq!(sha(&std::fs::read(object).unwrap()), sha(&original));

    // A cold recording downloads whole and by range, and plays as HLS VOD.
    let (status, body) = download(&server, &token, &id, None).await;
    assert_eq!((status, sha(&body)), (200, sha(&original)));
    let (status, body) = download(&server, &token, &id, Some("bytes=100-199")).await;
    assert_eq!((status, body.as_slice()), (206, &original[100..200]));
    let playlist = server
        .client
        .get(server.url(&format!("/api/v1/recordings/{id}/index.m3u8")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(playlist.status(), 200);
    let text = playlist.text().await.unwrap();
    assert!(
        text.contains("#EXT-X-ENDLIST") && text.contains("media.mp4"),
        "{text}"
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .args(["-headers", &format!("Authorization: Bearer {token}\r\n")])
        .arg(server.url(&format!("/api/v1/recordings/{id}/index.m3u8")))
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&probe.stdout);
    assert!(
        streams.contains("video"),
        "ffprobe plays the cold recording's VOD playlist: {streams} {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // Tier usage is in /metrics.
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("lunora_storage_moves_total{to=\"cold\"}"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("storage"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // … and in the API, per tier, for the organization.
    let a = call(
        &server,
        "GET",
        "/api/v1/recordings/usage",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let tiers = a.body["tiers"].as_array().unwrap();
    let cold_usage = tiers.iter().find(|t| t["tier"] == "cold").unwrap();
    assert_eq!(
        (
            &cold_usage["files"],
            &cold_usage["bytes"],
            &cold_usage["configured"]
        ),
        (&json!(1), &json!(original.len()), &json!(true)),
        "{}",
        a.body
    );
    let hot_usage = tiers.iter().find(|t| t["tier"] == "hot").unwrap();
    assert_eq!(hot_usage["files"], 0);
    assert!(hot_usage["disk_free_bytes"].as_u64().unwrap() > 0);

    // Deleting it removes the object (and the cached copy).
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/recordings/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert!(!object.exists(), "the object is deleted with the recording");
    assert!(!server.data_path("cache/cold").join(&rel).exists());
}

async fn retention(db: DbKind) {
    // Kept for about two seconds after they end, never moved.
    let server = Server::start(
        bin(),
        options(db)
            .env("LUNORA_STORAGE_RETENTION_DAYS", "0.00002")
            .env("LUNORA_STORAGE_LIFECYCLE_INTERVAL", "1"),
    )
    .await
    .unwrap();
    let token = admin_token(&server).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/channels",
        Some(&token),
        Some(&json!({ "name": "short" })),
    )
    .await;
    let channel = a.body["id"].as_str().unwrap().to_string();
    let key = a.body["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let settings = format!("/api/v1/channels/{channel}/recording");
    call(
        &server,
        "PUT",
        &settings,
        Some(&token),
        Some(&json!({ "enabled": true })),
    )
    .await;
    let _publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    let r = wait_recording(
        &server,
        &token,
        &channel,
        Duration::from_secs(20),
        "recording",
        |r| r["status"] == "recording" && r["duration_seconds"].as_f64().unwrap_or(0.0) >= 2.0,
    )
    .await;
    let file = server
        .data_path("recordings")
        .join(r["path"].as_str().unwrap());
    assert!(file.exists());
    // Still being written: retention never touches it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(file.exists(), "a recording in progress is kept");
    call(
        &server,
        "PUT",
        &settings,
        Some(&token),
        Some(&json!({ "enabled": false })),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = call(
            &server,
            "GET",
            &format!("/api/v1/recordings/{id}"),
            Some(&token),
            None,
        )
        .await;
        if a.status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never deleted it: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!file.exists(), "the file goes with the row");
}
