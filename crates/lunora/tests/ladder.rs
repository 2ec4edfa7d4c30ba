//! The HLS ladder end to end: the per-channel setting (`/api/v1/channels/{id}/hls`:
//! validation naming the field, another organization's channel not found) and, with real
//! FFmpeg, what a 720p publisher's HLS carries: source plus the 480p rung (never 1080p, and
//! no 720p rung: that is the source), the rung's segments really 854x480 at 30 fps, one FFmpeg
//! shared by the rung and a destination with the same preset, and an empty ladder.
//!
//! The machine has 2 cores: the media test runs one 480p encode.

// Test helpers panic on what they did not expect, like the tests themselves
// (`allow-unwrap-in-tests` only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::media::{ffmpeg_children, probe_streams, stream, wait_children, Publisher};
use common::nginx::Nginx;
use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "Staff-Password-42!";

async fn public_channel(server: &Server, token: &str, name: &str) -> Value {
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

async fn put_ladder(server: &Server, token: &str, channel: &str, body: Value) -> Answer {
    call(
        server,
        "PUT",
        &format!("/api/v1/channels/{channel}/hls"),
        Some(token),
        Some(&body),
    )
    .await
}

lunora_testkit::db_tests!(ladder_setting_is_validated_stored_and_scoped_to_the_organization);

async fn ladder_setting_is_validated_stored_and_scoped_to_the_organization(db: DbKind) {
    let server = start(db).await;
    let root = admin_token(&server).await;
    let ch = public_channel(&server, &root, "ladder").await;
    let id = ch["id"].as_str().unwrap();
    let path = format!("/api/v1/channels/{id}/hls");

    // Default: 1080p, 720p, 480p.
    let a = call(&server, "GET", &path, Some(&root), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["ladder"], json!(["1080p", "720p", "480p"]));
    assert_eq!(a.body["default"], true);
    let r480 = &a.body["renditions"][2];
    assert_eq!(r480["rendition"], "480p");
    assert_eq!(r480["preset_id"], "builtin-custom-480p30");
    assert_eq!(
        (r480["width"].as_u64(), r480["height"].as_u64()),
        (Some(854), Some(480))
    );
    assert_eq!(a.body["live_renditions"], json!([]));

    // Source only, stored.
    let a = put_ladder(&server, &root, id, json!({ "ladder": [] })).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["ladder"], json!([]));
    assert_eq!(a.body["default"], false);
    let a = call(&server, "GET", &path, Some(&root), None).await;
    assert_eq!(
        (a.body["ladder"].clone(), a.body["default"].clone()),
        (json!([]), json!(false))
    );

    // A built-in preset id is a rung too.
    let a = put_ladder(
        &server,
        &root,
        id,
        json!({ "ladder": ["builtin-x-720p30", "480p"] }),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["renditions"][0]["rendition"], "720p");
    let a = call(&server, "GET", &path, Some(&root), None).await;
    assert_eq!(a.body["ladder"], json!(["builtin-x-720p30", "480p"]));

    // Invalid: 400 naming the field; nothing stored.
    for (body, field) in [
        (json!({ "ladder": ["480p", "360p"] }), "ladder[1]"),
        (
            json!({ "ladder": ["720p", "builtin-x-720p30"] }),
            "ladder[1]",
        ),
        (json!({ "ladder": ["nope"] }), "ladder[0]"),
        (
            json!({ "ladder": ["480p", "720p", "1080p", "builtin-custom-1440p30", "builtin-youtube-2160p30", "480p"] }),
            "ladder",
        ),
        (json!({ "ladder": "480p" }), "ladder"),
        (json!({ "ladder": [480] }), "ladder[0]"),
    ] {
        let a = put_ladder(&server, &root, id, body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert_eq!(a.body["field"], field, "{body}: {a:?}");
    }
    let a = put_ladder(&server, &root, id, json!({ "ladders": [] })).await;
    assert_eq!(a.status, 400, "{a:?}");
    let a = call(&server, "GET", &path, Some(&root), None).await;
    assert_eq!(a.body["ladder"], json!(["builtin-x-720p30", "480p"]));

    // Null: back to the default.
    let a = put_ladder(&server, &root, id, json!({ "ladder": null })).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["default"], true);
    let a = call(&server, "GET", &path, Some(&root), None).await;
    assert_eq!(a.body["ladder"], json!(["1080p", "720p", "480p"]));

    // Another organization's administrator: not found, like a channel that does not exist.
    let beta = second_organization(
        &server,
        &root,
        "Beta",
        "beta",
        "boss@beta.example",
        PASSWORD,
    )
    .await;
    let a = call(&server, "GET", &path, Some(&beta), None).await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = put_ladder(&server, &beta, id, json!({ "ladder": [] })).await;
    assert_eq!(a.status, 404, "{a:?}");
    let missing = "0190f5e2-0000-7000-8000-000000000000";
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{missing}/hls"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = call(&server, "GET", &path, Some(&root), None).await;
    assert_eq!(a.body["default"], true, "the foreign PUT changed nothing");
}

// ---------------------------------------------------------------------------------------
// Media

async fn get_text(server: &Server, path: &str) -> (u16, String) {
    let res = server
        .client
        .get(server.url(path))
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

async fn get_bytes(server: &Server, path: &str) -> Vec<u8> {
    let res = server
        .client
        .get(server.url(path))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 200, "GET {path}");
    res.bytes().await.expect("body").to_vec()
}

/// Polls the master playlist until `pred` holds for it.
async fn wait_master(
    server: &Server,
    path: &str,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (status, text) = get_text(server, path).await;
        if status == 200 && pred(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "master playlist never got there: {status}\n{text}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `EXT-X-MAP` URI and the first complete segment's URI of a media playlist.
fn init_and_segment(playlist: &str) -> Option<(String, String)> {
    let init = playlist.lines().find_map(|l| {
        let rest = l.strip_prefix("#EXT-X-MAP:URI=\"")?;
        Some(rest[..rest.find('"')?].to_string())
    })?;
    let seg = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())?
        .to_string();
    Some((init, seg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_720p_input_gets_a_480p_rung_shared_with_a_destination_and_none_with_an_empty_ladder() {
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let pid = server.pid().unwrap();
    let token = admin_token(&server).await;
    let ch = public_channel(&server, &token, "ladder").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let master_path = format!("/hls/{id}/index.m3u8");

    // Default ladder, 720p input: source and 480p; 1080p would upscale, 720p is the source.
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    let master = wait_master(&server, &master_path, Duration::from_secs(60), |t| {
        t.contains("480p/media.m3u8")
    })
    .await;
    let uris: Vec<&str> = master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(uris, ["source/media.m3u8", "480p/media.m3u8"], "{master}");
    let rung = master
        .lines()
        .zip(master.lines().skip(1))
        .find(|(_, uri)| *uri == "480p/media.m3u8")
        .map(|(inf, _)| inf)
        .unwrap();
    assert!(rung.contains("RESOLUTION=854x480"), "{master}");
    assert!(rung.contains("CODECS=\"avc1.4d"), "Main profile: {master}");
    assert!(rung.contains("mp4a.40.2"), "{master}");
    let bandwidth: u64 = rung
        .split("BANDWIDTH=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((300_000..3_000_000).contains(&bandwidth), "{master}");
    let kids = wait_children(pid, 1, Duration::from_secs(10)).await;

    // The rung's own segments, as a player gets them: 854x480 at 30 fps, H.264 + AAC.
    let media_path = format!("/hls/{id}/480p/media.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (init, seg) = loop {
        let (status, text) = get_text(&server, &media_path).await;
        if status == 200 {
            if let Some(found) = init_and_segment(&text) {
                break found;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 480p segment: {status}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut file = get_bytes(&server, &format!("/hls/{id}/480p/{init}")).await;
    file.extend(get_bytes(&server, &format!("/hls/{id}/480p/{seg}")).await);
    let dir = std::env::temp_dir().join(format!("lunora-ladder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("480p.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = probe_streams(path.to_str().unwrap());
    let v = stream(&probe, "video");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(854), Some(480)),
        "{v}"
    );
    assert_eq!(v["r_frame_rate"], "30/1", "{v}");
    let a = stream(&probe, "audio");
    assert_eq!(a["codec_name"], "aac");
    let frames = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_packets"])
        .args([
            "-show_entries",
            "stream=nb_read_packets,duration",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let counted: Value = serde_json::from_slice(&frames.stdout).unwrap();
    let n: f64 = counted["streams"][0]["nb_read_packets"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(n >= 30.0, "a 2 s segment at 30 fps: {counted}");

    // A destination with the Low Bandwidth preset (the 480p rung's preset): the same FFmpeg.
    let a = call(
        &server,
        "POST",
        "/api/v1/destinations",
        Some(&token),
        Some(&json!({"name": "low", "platform": "custom", "rtmp_url": nginx.url(), "stream_key": "low", "preset_id": "builtin-custom-480p30"})),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let dest = a.body["id"].as_str().unwrap().to_string();
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/channels/{id}/streaming/start"),
        Some(&token),
        Some(&json!({"destination_ids": [dest]})),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let d = loop {
        let st = call(
            &server,
            "GET",
            &format!("/api/v1/channels/{id}/streaming/status"),
            Some(&token),
            None,
        )
        .await;
        let d = st.body["destinations"][0].clone();
        if d["state"] == "live" && d["bytes_sent"].as_u64().unwrap_or(0) > 100_000 {
            break d;
        }
        assert!(Instant::now() < deadline, "destination never live: {st:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        d["transcode"]["pid"].as_u64(),
        Some(u64::from(kids[0])),
        "the destination uses the rung's FFmpeg: {d}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        ffmpeg_children(pid),
        kids,
        "one FFmpeg for the rung and the destination"
    );

    // Empty ladder: source only at once; the destination keeps the encode it shares.
    let a = put_ladder(&server, &token, &id, json!({ "ladder": [] })).await;
    assert_eq!(a.status, 200, "{a:?}");
    let master = wait_master(&server, &master_path, Duration::from_secs(10), |t| {
        !t.contains("480p")
    })
    .await;
    assert!(master.contains("source/media.m3u8"), "{master}");
    let (status, _) = get_text(&server, &media_path).await;
    assert_eq!(status, 404);
    assert_eq!(
        ffmpeg_children(pid),
        kids,
        "the destination still holds the encode"
    );
    let a = call(
        &server,
        "GET",
        &format!("/api/v1/channels/{id}/hls"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.body["live_renditions"], json!(["source"]), "{a:?}");
    let a = call(
        &server,
        "POST",
        &format!("/api/v1/channels/{id}/streaming/stop"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    wait_children(pid, 0, Duration::from_secs(10)).await;

    // Back to the default while live: the 480p rung comes back.
    let a = put_ladder(&server, &token, &id, json!({ "ladder": null })).await;
    assert_eq!(a.status, 200, "{a:?}");
    wait_master(&server, &master_path, Duration::from_secs(40), |t| {
        t.contains("480p/media.m3u8")
    })
    .await;
    wait_children(pid, 1, Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
