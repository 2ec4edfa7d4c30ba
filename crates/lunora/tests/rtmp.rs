//! RTMP ingest and play with real FFmpeg peers against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::media::{
    decode_errors, packet_hashes, packet_times, probe_streams, record_ok, stream, Publisher,
};
use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::Value;

async fn channel(server: &Server, token: &str, name: &str) -> Value {
    let res = create_channel(server, token, name).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// The publish URL with the server's real RTMP port (the API answers the configured one).
fn publish_url(server: &Server, channel: &Value) -> String {
    let url = channel["publish_url"].as_str().unwrap();
    let key = url.rsplit('/').next().unwrap();
    format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap())
}

async fn wait_live(server: &Server, token: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let ch: Value = server
            .client
            .get(server.url(&format!("/api/v1/channels/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ch["status"]["input_state"] == "live" && ch["status"]["video"].is_object() {
            return ch;
        }
        assert!(
            Instant::now() < deadline,
            "channel never went live: {ch}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn play_url(server: &Server, token: &str, id: &str) -> String {
    let res: Value = server
        .client
        .post(server.url(&format!("/api/v1/channels/{id}/play-token")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = res["token"].as_str().unwrap();
    format!("rtmp://{}/live/{id}?token={t}", server.rtmp_addr().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_a_player_receives_the_same_stream() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "studio").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    let live = wait_live(&server, &token, &id, Duration::from_secs(15)).await;
    assert_eq!(live["status"]["video"]["width"], 1280, "{live}");
    assert_eq!(live["status"]["video"]["height"], 720);
    assert_eq!(live["status"]["audio"]["sample_rate"], 48000);

    let url = play_url(&server, &token, &id).await;
    let probe = tokio::task::spawn_blocking({
        let url = url.clone();
        move || probe_streams(&url)
    })
    .await
    .unwrap();
    let v = stream(&probe, "video");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(v["r_frame_rate"], "30/1");
    let a = stream(&probe, "audio");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["sample_rate"], "48000");
    assert_eq!(a["channels"], 2);

    // Four seconds through Lunora: both tracks, timestamps increasing at the real pace.
    let dir = tempfile::tempdir().unwrap();
    let out = record_ok(url, 4, dir.path().join("played.flv"), "").await;
    let video = packet_times(&out, "v");
    let audio = packet_times(&out, "a");
    assert!(video.len() >= 100, "only {} video packets", video.len());
    assert!(audio.len() >= 150, "only {} audio packets", audio.len());
    for w in video.windows(2) {
        assert!(w[1] >= w[0], "video dts went backwards: {w:?}");
        assert!(w[1] - w[0] < 0.2, "gap in video: {w:?}");
    }
    let span = video.last().unwrap() - video.first().unwrap();
    assert!((3.5..=4.5).contains(&span), "video span {span}");
}

/// With more than a few players, each frame is sent from shared memory (`sendfile`) rather than
/// copied for each (`media::wire_file`): every player, whichever way its frames went, gets the
/// same frames, byte for byte, and they decode clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_players_get_the_same_bytes_whichever_way_they_are_sent() {
    const PLAYERS: usize = 6;
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "crowd").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id, Duration::from_secs(15)).await;

    let dir = tempfile::tempdir().unwrap();
    let mut players = Vec::new();
    for i in 0..PLAYERS {
        let url = play_url(&server, &token, &id).await;
        let out = dir.path().join(format!("player{i}.flv"));
        players.push(tokio::spawn(record_ok(url, 4, out, "")));
    }
    let mut videos = Vec::new();
    for player in players {
        let out = player.await.unwrap();
        assert_eq!(decode_errors(&out), "", "{}", out.display());
        assert!(packet_hashes(&out, "a").len() >= 150);
        let video = packet_hashes(&out, "v");
        assert!(video.len() >= 100, "only {} video packets", video.len());
        videos.push(video);
    }
    // Each player's frames, lined up with the first player's where they start, are the same.
    let reference = &videos[0];
    for (i, video) in videos.iter().enumerate().skip(1) {
        let aligned = (0..reference.len()).any(|k| {
            let overlap = reference[k..].iter().zip(video.iter());
            overlap.clone().count() >= 60 && overlap.clone().all(|(a, b)| a == b)
        }) || (0..video.len()).any(|k| {
            let overlap = video[k..].iter().zip(reference.iter());
            overlap.clone().count() >= 60 && overlap.clone().all(|(a, b)| a == b)
        });
        assert!(aligned, "player {i} received other bytes than player 0");
    }
}

/// A player whose network stalls for seconds (a proxy stops reading from the server while the
/// frames pile up in the socket buffers and then in the player's bus queue) gets, once it drains, every frame in order, and the
/// stream decodes clean: frames written on the publisher's side and those its own task writes
/// after a partial write join without a gap or a torn frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_whose_network_stalls_gets_every_frame_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "stalls").await;
    let id = ch["id"].as_str().unwrap().to_string();
    // Four times real time: the stall below leaves more than the kernel's largest socket
    // buffer (4 MiB) unsent, so writes on the publisher's side end part-way through a frame.
    let _publisher = Publisher::start_paced(&publish_url(&server, &ch), 4.0);
    wait_live(&server, &token, &id, Duration::from_secs(15)).await;

    let upstream = server.rtmp_addr().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(8 * 1024).unwrap();
        let server_side = socket.connect(upstream).await.unwrap();
        let (mut from_player, mut to_player) = client.into_split();
        let (mut from_server, mut to_server) = server_side.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut from_player, &mut to_server).await });
        let mut buf = vec![0u8; 16 * 1024];
        let mut forwarded = 0usize;
        let mut stalled = false;
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to_player.write_all(&buf[..n]).await.is_err() {
                break;
            }
            forwarded += n;
            if !stalled && forwarded > 300_000 {
                stalled = true;
                tokio::time::sleep(Duration::from_secs(6)).await;
            }
        }
    });
    let url = play_url(&server, &token, &id)
        .await
        .replace(&upstream.to_string(), &proxy.to_string());
    let dir = tempfile::tempdir().unwrap();
    let out = record_ok(url, 40, dir.path().join("stalled.flv"), "").await;
    assert_eq!(decode_errors(&out), "");
    let video = packet_times(&out, "v");
    assert!(video.len() >= 250, "only {} video packets", video.len());
    // Not one frame missing: 30 fps, so consecutive frames are 33 ms apart.
    for w in video.windows(2) {
        assert!(w[1] >= w[0], "video dts went backwards: {w:?}");
        assert!(w[1] - w[0] < 0.05, "a video frame is missing: {w:?}");
    }
    let audio = packet_times(&out, "a");
    for w in audio.windows(2) {
        assert!(w[1] - w[0] < 0.04, "an audio frame is missing: {w:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_and_tokens_are_refused_and_never_take_over() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "guarded").await;
    let id = ch["id"].as_str().unwrap().to_string();

    // A wrong key is refused with an RTMP error and the publisher gives up.
    let mut wrong = Publisher::start(&format!(
        "rtmp://{}/live/live_not-a-real-key",
        server.rtmp_addr().unwrap()
    ));
    let (status, _stderr) = wrong
        .wait_exit(Duration::from_secs(15))
        .expect("ffmpeg must give up on a refused key");
    assert!(!status.success());
    assert!(
        server.logs().contains("publish refused"),
        "{}",
        server.logs()
    );
    // The key is never logged, not even the wrong one in full.
    assert!(!server.logs().contains("live_not-a-real-key"));
    // The refusal is in the audit log, with the key masked.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&format!(
        "sqlite://{}?mode=ro",
        server.data_path("lunora.db").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT resource, ip FROM audit_logs WHERE action = 'ingest.publish_refused'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(!rows[0].0.contains("not-a-real"), "{rows:?}");
    assert_eq!(rows[0].1, "127.0.0.1");
    db.close().await;

    // The real publisher works; a wrong key during its session does not disturb it.
    let _good = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id, Duration::from_secs(15)).await;
    let mut wrong = Publisher::start(&format!(
        "rtmp://{}/live/live_still-wrong",
        server.rtmp_addr().unwrap()
    ));
    wrong.wait_exit(Duration::from_secs(15)).expect("refused");
    let ch_now: Value = server
        .client
        .get(server.url(&format!("/api/v1/channels/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ch_now["status"]["input_state"], "live");

    // Playing a private channel needs a valid token.
    let rtmp = server.rtmp_addr().unwrap();
    for url in [
        format!("rtmp://{rtmp}/live/{id}"),
        format!("rtmp://{rtmp}/live/{id}?token=9999999999.00"),
    ] {
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("ffprobe")
                .args(["-v", "error", "-rw_timeout", "5000000", &url])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(!out.status.success(), "played without a valid token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_encoder_takes_its_input_over_at_once() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "reconnect").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let url = publish_url(&server, &ch);
    let mut first = Publisher::start(&url);
    wait_live(&server, &token, &id, Duration::from_secs(15)).await;
    // The same encoder comes back on a new connection while the old one still looks alive.
    let _second = Publisher::start(&url);
    let exited = tokio::task::spawn_blocking(move || {
        let r = first.wait_exit(Duration::from_secs(15));
        (r, first)
    })
    .await
    .unwrap();
    assert!(exited.0.is_some(), "the stale connection was not replaced");
    assert!(server
        .logs()
        .contains("another connection took over this input"));
    wait_live(&server, &token, &id, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_rtmp_port_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "robust").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let _pub = Publisher::start(&publish_url(&server, &ch));
    wait_live(&server, &token, &id, Duration::from_secs(15)).await;

    let rtmp = server.rtmp_addr().unwrap();
    // Wrong version byte, then a valid-looking handshake followed by a huge chunk header.
    for payload in [vec![0x42u8; 4096], {
        let mut v = vec![3u8];
        v.extend(std::iter::repeat_n(0u8, 1536));
        v.extend([0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0]);
        v
    }] {
        let mut s = tokio::net::TcpStream::connect(rtmp).await.unwrap();
        let _ = s.write_all(&payload).await;
        let mut sink = vec![0u8; 8192];
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match s.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "server kept a garbage connection open");
    }
    let ch_now: Value = server
        .client
        .get(server.url(&format!("/api/v1/channels/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ch_now["status"]["input_state"], "live",
        "the live channel was disturbed"
    );
}
