//! Recording with the real binary and FFmpeg: automatic recording per channel, the rows, the
//! files (ffprobe plays them), a reconnect continuing the same file, kill -9 in the middle,
//! range downloads, HLS VOD playback, and a full disk on a real size-limited filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::media::{stream, Publisher};
use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

async fn channel(server: &Server, token: &str, name: &str) -> Value {
    let a = call(
        server,
        "POST",
        "/api/v1/channels",
        Some(token),
        Some(&json!({ "name": name, "visibility": "public" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.body
}

fn publish_url(server: &Server, channel: &Value) -> String {
    let url = channel["publish_url"].as_str().unwrap();
    let key = url.rsplit('/').next().unwrap();
    format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap())
}

async fn enable(server: &Server, token: &str, id: &str) {
    let a = call(
        server,
        "PUT",
        &format!("/api/v1/channels/{id}/recording"),
        Some(token),
        Some(&json!({ "enabled": true, "segment_minutes": 60 })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["enabled"], true);
}

async fn recordings(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let a = call(
        server,
        "GET",
        &format!("/api/v1/recordings{query}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.body["items"].as_array().unwrap().clone()
}

/// Waits for the channel's recordings to satisfy `ok`.
async fn wait_rows(
    server: &Server,
    token: &str,
    id: &str,
    within: Duration,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let rows = recordings(server, token, &format!("?channel_id={id}")).await;
        if ok(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "recordings never got there: {rows:?}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_live(server: &Server, token: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = call(
            server,
            "GET",
            &format!("/api/v1/channels/{id}"),
            Some(token),
            None,
        )
        .await;
        if a.body["status"]["input_state"] == "live" {
            return;
        }
        assert!(Instant::now() < deadline, "never live\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn file_of(server: &Server, row: &Value) -> PathBuf {
    server
        .data_path("recordings")
        .join(row["path"].as_str().unwrap())
}

/// ffprobe of a file or URL (with extra headers): streams and format, as JSON.
fn probe(target: &str, headers: Option<&str>) -> Value {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-rw_timeout", "15000000"]);
    if let Some(h) = headers {
        cmd.args(["-headers", h]);
    }
    let out = cmd
        .args(["-show_streams", "-show_format", "-of", "json", target])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes every frame of a file; answers (ok, decoded video frames, stderr).
fn decode(path: &Path) -> (bool, usize, String) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    (
        out.status.success(),
        frames,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn duration_of(p: &Value) -> f64 {
    p["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

async fn records_six_seconds_plays_downloads_and_deletes(db: DbKind) {
    let server = start(db).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "recorded").await;
    let id = ch["id"].as_str().unwrap().to_string();

    // Settings: off by default, validated.
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{id}/recording"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (a.status, &a.body["enabled"], &a.body["segment_minutes"]),
        (200, &json!(false), &json!(60))
    );
    for bad in [
        json!({ "enabled": true, "segment_minutes": 0 }),
        json!({ "enabled": true, "segment_minutes": 1441 }),
    ] {
        let a = call(
            &server,
            "PUT",
            &format!("/api/v1/channels/{id}/recording"),
            Some(&token),
            Some(&bad),
        )
        .await;
        assert_eq!(a.status, 400, "{a:?}");
        assert_eq!(a.body["field"], "segment_minutes");
    }
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/channels/{id}/recording"),
        Some(&token),
        Some(&json!({ "enabled": "yes" })),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    enable(&server, &token, &id).await;

    let mut publisher = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id).await;
    let live_at = Instant::now();
    let rows = wait_rows(&server, &token, &id, Duration::from_secs(15), |r| {
        !r.is_empty()
    })
    .await;
    assert_eq!(rows[0]["status"], "recording");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{id}/recording"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.body["recording"], true);
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(live_at.elapsed())).await;
    publisher.kill();
    let published = live_at.elapsed().as_secs_f64();

    // The file closes once the channel stays idle past the grace.
    let rows = wait_rows(&server, &token, &id, Duration::from_secs(30), |r| {
        r.len() == 1 && r[0]["status"] == "complete"
    })
    .await;
    let row = &rows[0];
    let duration = row["duration_seconds"].as_f64().unwrap();
    assert!(
        (published - 1.5..=published + 1.0).contains(&duration),
        "recorded {duration} s of {published} s published: {row}"
    );
    assert_eq!(row["tier"], "hot");
    assert_eq!(row["discontinuities"], 0);
    let path = row["path"].as_str().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(parts.len(), 5, "{path}");
    assert_eq!(parts[3], id, "YYYY/MM/DD/{{channel}}/file: {path}");
    assert!(row["started_at"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}-{}-{}", parts[0], parts[1], parts[2])));
    let file = file_of(&server, row);
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(row["size_bytes"].as_u64(), Some(size));

    // ffprobe plays the file on its own: both tracks, the recorded duration.
    let p = tokio::task::spawn_blocking({
        let f = file.clone();
        move || probe(f.to_str().unwrap(), None)
    })
    .await
    .unwrap();
    let v = stream(&p, "video");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(stream(&p, "audio")["codec_name"], "aac");
    assert!(
        (duration_of(&p) - duration).abs() < 0.5,
        "{} vs {duration}",
        duration_of(&p)
    );
    let (ok, frames, err) = tokio::task::spawn_blocking({
        let f = file.clone();
        move || decode(&f)
    })
    .await
    .unwrap();
    assert!(ok && err.trim().is_empty(), "{err}");
    assert!(
        (frames as f64 - duration * 30.0).abs() <= 3.0,
        "{frames} frames in {duration} s"
    );

    // HLS VOD playback of the recording: a valid VOD playlist that ffprobe plays.
    let rid = row["id"].as_str().unwrap().to_string();
    let res = server
        .client
        .get(server.url(&format!("/api/v1/recordings/{rid}/index.m3u8")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let text = res.text().await.unwrap();
    let vod = lunora_hls::validate::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        vod.ended && vod.playlist_type.as_deref() == Some("VOD"),
        "{text}"
    );
    let listed: f64 = vod.segments.iter().map(|s| s.duration).sum();
    assert!((listed - duration).abs() < 0.1, "{listed} vs {duration}");
    let url = server.url(&format!("/api/v1/recordings/{rid}/index.m3u8"));
    let auth = format!("Authorization: Bearer {token}\r\n");
    let p = tokio::task::spawn_blocking(move || probe(&url, Some(&auth)))
        .await
        .unwrap();
    assert_eq!(stream(&p, "video")["width"], 1280);

    // Range downloads.
    let whole = std::fs::read(&file).unwrap();
    let get = |range: Option<String>| {
        let mut rb = server
            .client
            .get(server.url(&format!("/api/v1/recordings/{rid}/download")))
            .bearer_auth(&token);
        if let Some(r) = range {
            rb = rb.header("range", r);
        }
        rb.send()
    };
    let res = get(None).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.headers()["content-type"], "video/mp4");
    assert_eq!(res.bytes().await.unwrap().as_ref(), &whole[..]);
    let res = get(Some("bytes=100-1099".into())).await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-1099/{size}").as_str()
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &whole[100..1100]);
    let res = get(Some("bytes=-500".into())).await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        &whole[whole.len() - 500..]
    );
    let res = get(Some(format!("bytes={size}-"))).await.unwrap();
    assert_eq!(res.status(), 416);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    let anon = server
        .client
        .get(server.url(&format!("/api/v1/recordings/{rid}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    // Filters and paging.
    assert_eq!(recordings(&server, &token, "?tier=hot").await.len(), 1);
    assert_eq!(recordings(&server, &token, "?tier=cold").await.len(), 0);
    assert_eq!(
        recordings(&server, &token, "?status=complete&limit=1")
            .await
            .len(),
        1
    );
    assert_eq!(
        recordings(
            &server,
            &token,
            "?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z"
        )
        .await
        .len(),
        0
    );
    assert_eq!(
        recordings(
            &server,
            &token,
            &format!("?from={}", lunora_testkit::unix_now() * 1000 - 600_000)
        )
        .await
        .len(),
        1
    );
    for (q, field) in [
        ("?tier=lukewarm", "tier"),
        ("?from=soon", "from"),
        ("?limit=0", "limit"),
    ] {
        let a = call(
            &server,
            "GET",
            &format!("/api/v1/recordings{q}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(a.status, 400, "{q}: {a:?}");
        assert_eq!(a.body["field"], field);
    }

    // Delete: the row and the file go.
    let a = call(
        &server,
        "DELETE",
        &format!("/api/v1/recordings/{rid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert!(!file.exists());
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/recordings/{rid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 404);
}

async fn a_reconnect_continues_the_same_file_with_a_discontinuity(db: DbKind) {
    let server = start(db).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "reconnecting").await;
    let id = ch["id"].as_str().unwrap().to_string();
    enable(&server, &token, &id).await;
    let mut first = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id).await;
    wait_rows(&server, &token, &id, Duration::from_secs(15), |r| {
        !r.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    first.kill();
    // The encoder comes back within the grace, its timestamps starting over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut second = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    second.kill();
    let rows = wait_rows(&server, &token, &id, Duration::from_secs(30), |r| {
        r.iter().all(|x| x["status"] == "complete") && !r.is_empty()
    })
    .await;
    assert_eq!(rows.len(), 1, "one file, not fragments: {rows:?}");
    let row = &rows[0];
    assert_eq!(row["discontinuities"], 1, "{row}");
    let duration = row["duration_seconds"].as_f64().unwrap();
    assert!((6.0..14.0).contains(&duration), "{row}");
    let file = file_of(&server, row);
    let (ok, _, err) = tokio::task::spawn_blocking(move || decode(&file))
        .await
        .unwrap();
    assert!(ok && err.trim().is_empty(), "{err}");
    let rid = row["id"].as_str().unwrap();
    let text = server
        .client
        .get(server.url(&format!("/api/v1/recordings/{rid}/index.m3u8")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
}

async fn kill_9_while_recording_leaves_a_playable_file_and_a_closed_row(db: DbKind) {
    let mut server = start(db).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "crashing").await;
    let id = ch["id"].as_str().unwrap().to_string();
    enable(&server, &token, &id).await;
    let mut publisher = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id).await;
    let rows = wait_rows(&server, &token, &id, Duration::from_secs(15), |r| {
        !r.is_empty()
    })
    .await;
    let rid = rows[0]["id"].as_str().unwrap().to_string();
    let file = file_of(&server, &rows[0]);
    tokio::time::sleep(Duration::from_millis(5300)).await;
    server.kill9();
    publisher.kill();
    let on_disk = std::fs::metadata(&file).unwrap().len();
    assert!(on_disk > 100_000, "{on_disk} bytes");

    server.restart().await.unwrap();
    let token = admin_token(&server).await;
    // Start-up closes the row left `recording` (in the background, right after start).
    let deadline = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let path = format!("/api/v1/recordings/{rid}");
        let a = call(&server, "GET", &path, Some(&token), None).await;
        assert_eq!(a.status, 200, "{a:?}");
        if a.body["status"] != "recording" {
            break a.body;
        }
        assert!(Instant::now() < deadline, "never closed: {a:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(row["status"], "complete", "{row}");
    assert!(
        row["error"].as_str().unwrap().contains("interrupted"),
        "{row}"
    );
    assert!(row["ended_at"].is_string());
    let duration = row["duration_seconds"].as_f64().unwrap();
    assert!((3.0..=9.0).contains(&duration), "{row}");
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(row["size_bytes"].as_u64(), Some(size));
    assert!(server
        .logs()
        .contains("closed a recording left open by the last run"));
    let p = tokio::task::spawn_blocking({
        let f = file.clone();
        move || probe(f.to_str().unwrap(), None)
    })
    .await
    .unwrap();
    assert!((duration_of(&p) - duration).abs() < 0.5, "{p}");
    let (ok, frames, err) = tokio::task::spawn_blocking(move || decode(&file))
        .await
        .unwrap();
    assert!(ok && err.trim().is_empty(), "{err}");
    assert!(frames as f64 >= duration * 30.0 - 3.0, "{frames} frames");
}

/// A camera created with `recording_policy: continuous` is recorded as soon as it publishes,
/// with its channel's own switch untouched; turning the policy off stops the recording.
async fn a_continuous_camera_is_recorded_without_its_channel_switch(db: DbKind) {
    let server = start(db).await;
    let token = admin_token(&server).await;
    let a = call(
        &server,
        "POST",
        "/api/v1/cameras",
        Some(&token),
        Some(&json!({ "name": "Dock door", "recording_policy": "continuous" })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let (cam, channel) = (
        a.body["id"].as_str().unwrap().to_string(),
        a.body["channel_id"].as_str().unwrap().to_string(),
    );
    let settings = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{channel}/recording"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(settings.body["enabled"], false, "{settings:?}");
    let _camera = Publisher::start(&publish_url(&server, &a.body));
    let rows = wait_rows(&server, &token, &channel, Duration::from_secs(30), |r| {
        r.iter().any(|r| r["status"] == "recording")
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");

    let off = call(
        &server,
        "PATCH",
        &format!("/api/v1/cameras/{cam}"),
        Some(&token),
        Some(&json!({ "recording_policy": "off" })),
    )
    .await;
    assert_eq!(off.status, 200, "{off:?}");
    wait_rows(&server, &token, &channel, Duration::from_secs(30), |r| {
        r.len() == 1 && r[0]["status"] == "complete"
    })
    .await;
}

lunora_testkit::db_tests!(
    records_six_seconds_plays_downloads_and_deletes,
    a_reconnect_continues_the_same_file_with_a_discontinuity,
    kill_9_while_recording_leaves_a_playable_file_and_a_closed_row,
    a_continuous_camera_is_recorded_without_its_channel_switch,
);

/// A tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_not_the_server_or_the_live_stream() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "filling").await;
    let id = ch["id"].as_str().unwrap().to_string();
    // The recordings directory is a real 3 MiB filesystem: ~15 s of the test stream.
    let _fs = Tmpfs::mount(&server.data_path("recordings"), "3m");
    enable(&server, &token, &id).await;
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id).await;

    let rows = wait_rows(&server, &token, &id, Duration::from_secs(60), |r| {
        r.iter().any(|x| x["status"] == "failed")
    })
    .await;
    let row = rows.iter().find(|x| x["status"] == "failed").unwrap();
    assert!(
        row["error"].as_str().unwrap().contains("disk is full"),
        "{row}"
    );
    assert!(
        server
            .logs()
            .contains("recording stopped: the disk is full"),
        "{}",
        server.logs()
    );
    assert!(server.logs().contains("recording_disk_full"));
    // What was written is playable up to its last complete segment.
    let file = file_of(&server, row);
    assert_eq!(
        row["size_bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
    let (ok, frames, err) = tokio::task::spawn_blocking(move || decode(&file))
        .await
        .unwrap();
    assert!(ok && err.trim().is_empty(), "{err}");
    assert!(frames > 60, "{frames}");

    // The server and the live stream go on; the recorder is not restarted in a loop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let health = call(&server, "GET", "/api/v1/health/overall", None, None).await;
    assert_eq!(health.status, 200, "{health:?}");
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.body["status"]["input_state"], "live");
    let media = server
        .client
        .get(server.url(&format!("/hls/{id}/source/media.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), 200);
    lunora_hls::validate::validate(&media.text().await.unwrap()).unwrap();
    let rows = recordings(&server, &token, &format!("?channel_id={id}")).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("lunora_recording_failures_total{reason=\"disk_full\"} 1"),
        "{metrics}"
    );
}
