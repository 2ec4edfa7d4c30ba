//! Live HLS / LL-HLS from the real binary while FFmpeg publishes over RTMP: ffprobe plays it,
//! every playlist passes the validator across reloads, blocking reloads wait for the next
//! part, private channels need a playback token, thumbnails appear, hls.js plays it in
//! Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::media::{probe_streams, stream, Publisher};
use common::*;
use lunora_hls::validate;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

async fn channel(server: &Server, token: &str, name: &str, visibility: &str) -> Value {
    let a = call(
        server,
        "POST",
        "/api/v1/channels",
        Some(token),
        Some(&json!({ "name": name, "visibility": visibility })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.body
}

/// The publish URL with the server's real RTMP port.
fn publish_url(server: &Server, channel: &Value) -> String {
    let url = channel["publish_url"].as_str().unwrap();
    let key = url.rsplit('/').next().unwrap();
    format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap())
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn get(server: &Server, path: &str) -> Got {
    let res = server
        .client
        .get(server.url(path))
        .send()
        .await
        .expect("request");
    Got {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    }
}

/// Polls the master playlist until it answers 200.
async fn wait_master(server: &Server, path: &str, within: Duration) -> Got {
    let deadline = Instant::now() + within;
    loop {
        let g = get(server, path).await;
        if g.status == 200 {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "no master playlist at {path}: {} {}\n{}",
            g.status,
            g.text(),
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `base` joined with a relative URI (which may carry its own query).
fn join(base: &str, rel: &str) -> String {
    let dir = &base[..base.rfind('/').unwrap() + 1];
    format!("{dir}{rel}")
}

/// `uri` with one more query parameter.
fn with_query(uri: &str, extra: &str) -> String {
    if uri.contains('?') {
        format!("{uri}&{extra}")
    } else {
        format!("{uri}?{extra}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_hls_plays_validates_across_reloads_and_blocks_for_the_next_part() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "hls", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();

    // Not live yet: a clear 404.
    let idle = get(&server, &format!("/hls/{id}/index.m3u8")).await;
    assert_eq!(idle.status, 404);
    assert_eq!(idle.json()["code"], "channel_not_live", "{}", idle.text());

    let _publisher = Publisher::start(&publish_url(&server, &ch));
    // Live, but nobody has asked for its HLS: nothing is packaged (HLS is made on demand).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = call(
            &server,
            "GET",
            &format!("/api/v1/channels/{id}"),
            Some(&token),
            None,
        )
        .await;
        if a.body["status"]["input_state"] == "live" {
            break;
        }
        assert!(Instant::now() < deadline, "never live: {a:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        hls_channels(&server).await,
        0,
        "a channel nobody watches is not packaged"
    );
    let master_path = format!("/hls/{id}/index.m3u8");
    let master = wait_master(&server, &master_path, Duration::from_secs(20)).await;
    assert_eq!(
        hls_channels(&server).await,
        1,
        "the first request starts the packager"
    );
    assert_eq!(
        master.header("content-type"),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(master.header("access-control-allow-origin"), "*");
    assert!(master.header("cache-control").contains("no-cache"));
    let text = master.text();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    assert!(text.contains("CODECS=\"avc1."), "{text}");
    assert!(text.contains("mp4a.40.2"), "{text}");
    assert!(text.contains("RESOLUTION=1280x720"), "{text}");
    let media_uri = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap()
        .to_string();
    assert_eq!(media_uri, "source/media.m3u8");
    let media_path = join(&master_path, &media_uri);

    // Blocking reloads, segment after segment, until three exist.
    loop {
        let g = get(&server, &media_path).await;
        assert_eq!(g.status, 200, "{}", g.text());
        let p = validate::validate(&g.text()).unwrap();
        if p.segments.len() >= 3 {
            break;
        }
        let g = get(&server, &format!("{media_path}?_HLS_msn={}", p.open_msn())).await;
        assert_eq!(g.status, 200, "{}", g.text());
    }

    // Several successive playlists: each valid, each a valid successor of the previous.
    let mut prev: Option<validate::MediaPlaylist> = None;
    let mut last_text = String::new();
    for _ in 0..8 {
        let g = get(&server, &media_path).await;
        assert_eq!(g.status, 200, "{}", g.text());
        assert_eq!(g.header("content-type"), "application/vnd.apple.mpegurl");
        let text = g.text();
        let p = validate::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(p.can_block_reload, "{text}");
        assert_eq!(p.part_target, Some(0.4));
        assert!(p.preload_hint.is_some(), "{text}");
        if let Some(prev) = &prev {
            validate::check_update(prev, &p).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
        prev = Some(p);
        last_text = text;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let p = prev.unwrap();
    assert!(p.segments.len() >= 3, "{last_text}");
    let td = p.target_duration.unwrap();
    assert_eq!(td, 2, "{last_text}");
    for s in &p.segments {
        assert!(s.duration <= td as f64 + 0.5, "{last_text}");
    }

    // Blocking reload: ask for the part after the newest; the answer lists it.
    let (msn, part) = (p.open_msn(), p.open_parts.len() as u64);
    let started = Instant::now();
    let g = get(
        &server,
        &format!("{media_path}?_HLS_msn={msn}&_HLS_part={part}"),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(g.status, 200, "{}", g.text());
    let next = validate::validate(&g.text()).unwrap();
    let listed = next
        .segment(msn)
        .map(|s| s.parts.len() as u64 > part || s.parts.is_empty())
        .unwrap_or(false)
        || (next.open_msn() == msn && next.open_parts.len() as u64 > part)
        || next.open_msn() > msn;
    assert!(listed, "part {msn}.{part} not in\n{}", g.text());
    assert!(waited < Duration::from_secs(6), "held {waited:?}");
    validate::check_update(&p, &next).unwrap();

    // Files: init, a segment, a part; immutable and with the right types.
    let init_uri = next.segments[0].map.clone().unwrap();
    let init = get(&server, &join(&media_path, &init_uri)).await;
    assert_eq!(init.status, 200);
    assert_eq!(init.header("content-type"), "video/mp4");
    assert_eq!(&init.body[4..8], b"ftyp");
    let seg_uri = next.segments.last().unwrap().uri.clone();
    let seg = get(&server, &join(&media_path, &seg_uri)).await;
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("content-type"), "video/iso.segment");
    assert!(seg.header("cache-control").contains("immutable"));
    assert_eq!(seg.header("access-control-allow-origin"), "*");
    assert_eq!(&seg.body[4..8], b"styp");
    let part_uri = next
        .open_parts
        .first()
        .map(|p| p.uri.clone())
        .unwrap_or_else(|| {
            next.segments
                .last()
                .unwrap()
                .parts
                .first()
                .unwrap()
                .uri
                .clone()
        });
    let part = get(&server, &join(&media_path, &part_uri)).await;
    assert_eq!(part.status, 200);
    assert_eq!(&part.body[4..8], b"moof");

    // Bad and unknown requests.
    let missing = get(
        &server,
        &join(&media_path, &seg_uri.replace("seg-", "seg-9999")),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "segment_not_found");
    let expired = get(&server, &join(&media_path, "0000000000/seg-0.m4s")).await;
    assert_eq!(expired.status, 404);
    let far = get(&server, &format!("{media_path}?_HLS_msn={}", msn + 1000)).await;
    assert_eq!(far.status, 400, "{}", far.text());
    let part_only = get(&server, &format!("{media_path}?_HLS_part=1")).await;
    assert_eq!(part_only.status, 400);
    assert_eq!(part_only.json()["field"], "_HLS_part");
    let bad_msn = get(&server, &format!("{media_path}?_HLS_msn=x")).await;
    assert_eq!(bad_msn.status, 400);
    let other_rendition = get(&server, &format!("/hls/{id}/1080p/media.m3u8")).await;
    assert_eq!(other_rendition.status, 404);
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url(&media_path))
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    // ffprobe plays the live master playlist: both tracks, as published.
    let url = server.url(&master_path);
    let probe = tokio::task::spawn_blocking(move || probe_streams(&url))
        .await
        .unwrap();
    let v = stream(&probe, "video");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let a = stream(&probe, "audio");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["sample_rate"], "48000");

    // A thumbnail of the live channel, for whoever may read the channel.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = server
            .client
            .get(server.url(&format!("/api/v1/channels/{id}/thumbnail.jpg")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            assert_eq!(res.headers()["content-type"], "image/jpeg");
            let body = res.bytes().await.unwrap();
            assert_eq!(&body[..2], &[0xFF, 0xD8]);
            break;
        }
        assert_eq!(res.status(), 404);
        assert!(Instant::now() < deadline, "no thumbnail\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let anon = get(&server, &format!("/api/v1/channels/{id}/thumbnail.jpg")).await;
    assert_eq!(anon.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_channels_need_a_playback_token_and_leak_nothing() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "private", "private").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let _publisher = Publisher::start(&publish_url(&server, &ch));

    let tok: Value = call(
        &server,
        "POST",
        &format!("/api/v1/channels/{id}/play-token"),
        Some(&token),
        None,
    )
    .await
    .body;
    let play = tok["token"].as_str().unwrap().to_string();
    let master_path = format!("/hls/{id}/index.m3u8?token={play}");
    let master = wait_master(&server, &master_path, Duration::from_secs(20)).await;
    // The token travels into the media playlist URI…
    assert!(
        master
            .text()
            .contains(&format!("source/media.m3u8?token={play}")),
        "{}",
        master.text()
    );
    let media_path = format!("/hls/{id}/source/media.m3u8?token={play}");
    // Wait (blocking reload) until two segments are complete.
    let media = get(&server, &with_query(&media_path, "_HLS_msn=1")).await;
    assert_eq!(media.status, 200);
    let p = validate::validate(&media.text()).unwrap();
    // …and into every file URI of it.
    for line in media.text().lines().filter(|l| !l.starts_with('#')) {
        assert!(line.ends_with(&format!("?token={play}")), "{line}");
    }
    assert!(media.text().contains(&format!(".mp4?token={play}\"")));
    let seg = &p.segments.last().or(p.segments.first()).unwrap().uri;
    let file = get(&server, &join(&format!("/hls/{id}/source/media.m3u8"), seg)).await;
    assert_eq!(file.status, 200);
    // The blocking reload parameters go after the token.
    let g = get(
        &server,
        &with_query(&media_path, &format!("_HLS_msn={}", p.open_msn())),
    )
    .await;
    assert_eq!(g.status, 200);

    // Without a token, with a forged or another channel's token: the same 404 as a channel
    // that does not exist.
    let unknown = get(
        &server,
        "/hls/0190b6a2-0000-7000-8000-000000000000/index.m3u8",
    )
    .await;
    assert_eq!(unknown.status, 404);
    let other = channel(&server, &token, "other", "private").await;
    let other_tok: Value = call(
        &server,
        "POST",
        &format!(
            "/api/v1/channels/{}/play-token",
            other["id"].as_str().unwrap()
        ),
        Some(&token),
        None,
    )
    .await
    .body;
    let forged = format!("{}.{}", play.split('.').next().unwrap(), "0".repeat(64));
    for path in [
        format!("/hls/{id}/index.m3u8"),
        format!("/hls/{id}/index.m3u8?token={forged}"),
        format!("/hls/{id}/index.m3u8?token=1.00"),
        format!(
            "/hls/{id}/index.m3u8?token={}",
            other_tok["token"].as_str().unwrap()
        ),
        format!("/hls/{id}/source/media.m3u8"),
        format!("/hls/{id}/source/{}", seg.split('?').next().unwrap()),
        "/hls/not-a-uuid/index.m3u8".to_string(),
    ] {
        let g = get(&server, &path).await;
        assert_eq!(g.status, 404, "{path}: {}", g.text());
        assert_eq!(g.json()["code"], unknown.json()["code"], "{path}");
        assert_eq!(g.json()["detail"], unknown.json()["detail"], "{path}");
    }
    // The guard does not refuse /hls (no access rule is needed outside /api/v1), and the UI
    // fallback does not swallow it.
    assert!(!server.logs().contains("no_access_rule"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_the_live_stream_in_chromium() {
    lunora_testkit::require("node", "nodejs").unwrap();
    lunora_testkit::require("chromium", "chromium").unwrap();
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/hls.js").is_dir()
            && web.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "browser", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();
    // The source alone: this test is about the player and the source's LL-HLS (the ladder's
    // rungs are checked in ladder.rs; hls.js switching to a rung whose live edge trails the
    // source by its encode can rebuffer for a moment).
    let a = call(
        &server,
        "PUT",
        &format!("/api/v1/channels/{id}/hls"),
        Some(&token),
        Some(&serde_json::json!({ "ladder": [] })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    let master = format!("/hls/{id}/index.m3u8");
    wait_master(&server, &master, Duration::from_secs(20)).await;
    let shots = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let url = server.url(&master);
        let shots = shots.path().to_path_buf();
        move || {
            std::process::Command::new("node")
                .arg(web.join("e2e/hls.mjs"))
                .env("LUNORA_HLS_URL", url)
                .env("LUNORA_SCREENSHOT_DIR", shots)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hls.js test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Unix ms of an `EXT-X-PROGRAM-DATE-TIME` value (`2024-02-29T13:45:01.250Z`).
fn pdt_ms(s: &str) -> f64 {
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    ((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Benchmark (run with `--ignored --nocapture`): how long after a frame reaches the server a
/// player can have it (LL-HLS part / HLS segment), and a new viewer's time to first media.
/// The frame's arrival time comes from `EXT-X-PROGRAM-DATE-TIME` (the wall clock of the run's
/// first frame at the server, then media time), on the same machine as the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_hls_latency_and_time_to_first_media() {
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let ch = channel(&server, &token, "bench", "public").await;
    let id = ch["id"].as_str().unwrap().to_string();
    let _publisher = Publisher::start(&publish_url(&server, &ch));
    let master = format!("/hls/{id}/index.m3u8");
    wait_master(&server, &master, Duration::from_secs(20)).await;
    let media = format!("/hls/{id}/source/media.m3u8");
    tokio::time::sleep(Duration::from_secs(4)).await;

    // LL-HLS: follow the live edge part by part with blocking reloads.
    let mut part_delays = Vec::new();
    let mut segment_delays = Vec::new();
    let g = get(&server, &media).await;
    let mut p = validate::validate(&g.text()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (msn, part) = (p.open_msn(), p.open_parts.len());
        let g = get(&server, &format!("{media}?_HLS_msn={msn}&_HLS_part={part}")).await;
        let text = g.text();
        let next = validate::validate(&text).unwrap();
        // The part asked for: fetch it and time its arrival against its last frame.
        let (seg_start, uri, end_offset, whole) = if next.open_msn() == msn {
            let Some(last) = p.segments.last() else {
                p = next;
                continue;
            };
            let start = pdt_ms(last.program_date_time.as_deref().unwrap()) + last.duration * 1000.0;
            let end: f64 = next.open_parts[..=part.min(next.open_parts.len() - 1)]
                .iter()
                .map(|x| x.duration)
                .sum();
            (
                start,
                next.open_parts[part.min(next.open_parts.len() - 1)]
                    .uri
                    .clone(),
                end,
                None,
            )
        } else {
            let s = next.segment(msn).unwrap();
            let start = pdt_ms(s.program_date_time.as_deref().unwrap());
            (
                start,
                s.parts
                    .last()
                    .map(|x| x.uri.clone())
                    .unwrap_or(s.uri.clone()),
                s.duration,
                Some(s.uri.clone()),
            )
        };
        let f = get(&server, &join(&media, &uri)).await;
        assert_eq!(f.status, 200);
        let arrived = now_ms();
        part_delays.push(arrived - (seg_start + end_offset * 1000.0));
        if let Some(seg) = whole {
            let f = get(&server, &join(&media, &seg)).await;
            assert_eq!(f.status, 200);
            segment_delays.push(arrived - (seg_start + end_offset * 1000.0));
        }
        p = next;
    }
    // Time to first media for a new viewer: master, media playlist, init, newest independent part.
    let mut ttfm = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let m = get(&server, &master).await;
        assert_eq!(m.status, 200);
        let g = get(&server, &media).await;
        let pl = validate::validate(&g.text()).unwrap();
        let init = pl.segments.last().and_then(|s| s.map.clone()).unwrap();
        assert_eq!(get(&server, &join(&media, &init)).await.status, 200);
        let last = pl.segments.last().unwrap();
        let first = last
            .parts
            .iter()
            .rev()
            .find(|x| x.independent)
            .map(|x| x.uri.clone())
            .unwrap_or(last.uri.clone());
        assert_eq!(get(&server, &join(&media, &first)).await.status, 200);
        ttfm.push(t0.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let n = part_delays.len();
    println!(
        "LL-HLS: {n} parts; frame at server -> its part at the client: median {:.0} ms, max {:.0} ms",
        median(&mut part_delays.clone()),
        part_delays.iter().cloned().fold(0.0, f64::max)
    );
    if !segment_delays.is_empty() {
        println!(
            "HLS: {} segments; last frame at server -> segment at the client: median {:.0} ms",
            segment_delays.len(),
            median(&mut segment_delays)
        );
    }
    println!(
        "time to first media (master + playlist + init + part over HTTP): median {:.0} ms, max {:.0} ms",
        median(&mut ttfm.clone()),
        ttfm.iter().cloned().fold(0.0, f64::max)
    );
}

/// The `lunora_hls_channels` gauge (0 when never set).
async fn hls_channels(server: &Server) -> u64 {
    let text = metrics_text(server).await;
    text.lines()
        .find_map(|l| l.strip_prefix("lunora_hls_channels "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}
