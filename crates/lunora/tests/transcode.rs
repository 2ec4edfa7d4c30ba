//! Encoding presets and transcoding end to end: the presets API (validation naming the field,
//! read-only built-ins, clone, import/export), and destinations with presets pushing to a
//! real nginx-rtmp: what it receives (ffprobe), one FFmpeg per distinct preset, an FFmpeg
//! killed mid-stream, and a server without FFmpeg.
//!
//! The media tests take turns (one at a time in this binary): the machine has 2 cores and
//! every encode is real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::media::{
    probe_streams, record, record_ok, stream, test_file, test_file_sparse_keyframes, wait_children,
    Publisher,
};
use common::nginx::Nginx;
use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

/// Media tests run one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Api<'a> {
    server: &'a Server,
    token: String,
}

impl Api<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        call(self.server, method, path, Some(&self.token), body.as_ref()).await
    }

    async fn get(&self, path: &str) -> Value {
        let a = self.call("GET", path, None).await;
        assert_eq!(a.status, 200, "GET {path}: {a:?}");
        a.body
    }

    async fn destination(&self, name: &str, url: &str, key: &str, preset: Option<&str>) -> String {
        let a = self
            .call(
                "POST",
                "/api/v1/destinations",
                Some(json!({"name": name, "platform": "custom", "rtmp_url": url, "stream_key": key, "preset_id": preset})),
            )
            .await;
        assert_eq!(a.status, 201, "{a:?}");
        a.body["id"].as_str().unwrap().to_string()
    }

    async fn status(&self, channel: &str) -> Value {
        self.get(&format!("/api/v1/channels/{channel}/streaming/status"))
            .await
    }

    /// Polls the streaming status until `pred` holds for the destination.
    async fn wait_destination(
        &self,
        channel: &str,
        dest: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let st = self.status(channel).await;
            if let Some(d) = st["destinations"]
                .as_array()
                .and_then(|a| a.iter().find(|d| d["destination_id"] == dest))
            {
                if pred(d) {
                    return d.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "destination never got there: {st}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn valid_preset(name: &str) -> Value {
    json!({
        "name": name,
        "platform": "custom",
        "video": {
            "codec": "h264", "profile": "main", "width": 1280, "height": 720, "fps": 30,
            "bitrate_kbps": 3000, "keyframe_interval_s": 2, "b_frames": 1, "rate_control": "cbr"
        },
        "audio": {"codec": "aac", "bitrate_kbps": 128, "sample_rate": 48000, "channels": 2}
    })
}

/// `base` with `path` (dotted) set to `value`.
fn with(base: &Value, path: &str, value: Value) -> Value {
    let mut v = base.clone();
    let mut at = &mut v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = &mut at[*p];
    }
    at[parts[parts.len() - 1]] = value;
    v
}

lunora_testkit::db_tests!(presets_api_validates_protects_builtins_and_round_trips);

async fn presets_api_validates_protects_builtins_and_round_trips(db: DbKind) {
    let server = start(db).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };

    // Built-ins: the seed's values, read-only, listed first.
    let list = api.get("/api/v1/presets").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "{list}");
    assert!(items.iter().all(|p| p["builtin"] == true));
    let yt = &items[0];
    assert_eq!(
        (yt["id"].as_str(), yt["name"].as_str()),
        (Some("builtin-youtube-1080p30"), Some("YouTube HD"))
    );
    assert_eq!(yt["summary"], "1080p30, 6 Mbps");
    assert_eq!(
        (
            &yt["video"]["width"],
            &yt["video"]["height"],
            &yt["video"]["fps"],
            &yt["video"]["bitrate_kbps"]
        ),
        (&json!(1920), &json!(1080), &json!(30), &json!(6000))
    );
    assert_eq!(
        (
            &yt["video"]["profile"],
            &yt["video"]["keyframe_interval_s"],
            &yt["video"]["b_frames"],
            &yt["video"]["rate_control"],
            &yt["video"]["buffer_kbps"]
        ),
        (
            &json!("high"),
            &json!(2),
            &json!(2),
            &json!("cbr"),
            &json!(12000)
        )
    );
    let x = api.get("/api/v1/presets/builtin-x-720p30").await;
    assert_eq!(
        (
            &x["video"]["profile"],
            &x["audio"]["sample_rate"],
            &x["summary"]
        ),
        (&json!("main"), &json!(44100), &json!("720p30, 2.5 Mbps"))
    );
    let li = api.get("/api/v1/presets/platform/linkedin").await;
    let names: Vec<&str> = li["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["LinkedIn HD", "LinkedIn Mobile"]);
    let a = api
        .call("GET", "/api/v1/presets/platform/myspace", None)
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("platform")),
        "{a:?}"
    );

    for (method, body) in [("PUT", Some(valid_preset("Mine"))), ("DELETE", None)] {
        let a = api
            .call(method, "/api/v1/presets/builtin-youtube-1080p30", body)
            .await;
        assert_eq!(
            (a.status, a.code()),
            (403, "builtin_preset_read_only"),
            "{method}: {a:?}"
        );
        assert!(
            a.body["detail"].as_str().unwrap().contains("clone"),
            "{a:?}"
        );
    }

    // Every range edge, both sides; unknown codecs; 4K60 over the bitrate cap.
    let base = valid_preset("Edges");
    let uhd = with(
        &with(
            &with(&base, "video.width", json!(3840)),
            "video.height",
            json!(2160),
        ),
        "video.profile",
        json!("high"),
    );
    let bad: Vec<(Value, &str, &str)> = vec![
        (
            with(&base, "video.height", json!(719)),
            "video.height",
            "720, 1080, 1440 or 2160",
        ),
        (
            with(&base, "video.height", json!(2161)),
            "video.height",
            "720p to 4K",
        ),
        (
            with(
                &with(&base, "video.height", json!(480)),
                "video.width",
                json!(854),
            ),
            "video.height",
            "720p to 4K",
        ),
        (
            with(&base, "video.width", json!(1920)),
            "video.width",
            "1280 for 720p",
        ),
        (
            with(&base, "video.fps", json!(23)),
            "video.fps",
            "24 fps, 30 fps or 60 fps",
        ),
        (
            with(&base, "video.fps", json!(25)),
            "video.fps",
            "24 fps, 30 fps or 60 fps",
        ),
        (
            with(&base, "video.fps", json!(61)),
            "video.fps",
            "24 fps, 30 fps or 60 fps",
        ),
        (
            with(&base, "video.bitrate_kbps", json!(999)),
            "video.bitrate_kbps",
            "between 1000 and 10000 kbps",
        ),
        (
            with(&base, "video.bitrate_kbps", json!(10001)),
            "video.bitrate_kbps",
            "between 1000 and 10000 kbps",
        ),
        (
            with(
                &with(&uhd, "video.fps", json!(60)),
                "video.bitrate_kbps",
                json!(25000),
            ),
            "video.bitrate_kbps",
            "between 1000 and 20000 kbps at 2160p",
        ),
        (
            with(&uhd, "video.bitrate_kbps", json!(20001)),
            "video.bitrate_kbps",
            "20000",
        ),
        (
            with(&base, "video.keyframe_interval_s", json!(0)),
            "video.keyframe_interval_s",
            "between 1 and 4 seconds",
        ),
        (
            with(&base, "video.keyframe_interval_s", json!(5)),
            "video.keyframe_interval_s",
            "between 1 and 4 seconds",
        ),
        (
            with(&base, "video.b_frames", json!(5)),
            "video.b_frames",
            "between 0 and 4",
        ),
        (
            with(&base, "video.profile", json!("baseline")),
            "video.b_frames",
            "baseline",
        ),
        (
            with(&base, "video.buffer_kbps", json!(1499)),
            "video.buffer_kbps",
            "1500 to 12000",
        ),
        (
            with(&base, "video.buffer_kbps", json!(12001)),
            "video.buffer_kbps",
            "1500 to 12000",
        ),
        (
            with(&base, "video.codec", json!("vp9")),
            "video.codec",
            "\"h264\" or \"h265\"",
        ),
        (
            with(&base, "video.profile", json!("extended")),
            "video.profile",
            "\"baseline\", \"main\" or \"high\"",
        ),
        (
            with(
                &with(&base, "video.codec", json!("h265")),
                "video.profile",
                json!("high"),
            ),
            "video.profile",
            "h265",
        ),
        (
            with(&base, "video.rate_control", json!("crf")),
            "video.rate_control",
            "\"cbr\" or \"vbr\"",
        ),
        (
            with(&base, "audio.codec", json!("opus")),
            "audio.codec",
            "\"aac\" or \"mp3\"",
        ),
        (
            with(&base, "audio.bitrate_kbps", json!(63)),
            "audio.bitrate_kbps",
            "between 64 and 320 kbps",
        ),
        (
            with(&base, "audio.bitrate_kbps", json!(321)),
            "audio.bitrate_kbps",
            "between 64 and 320 kbps",
        ),
        (
            with(&base, "audio.sample_rate", json!(44099)),
            "audio.sample_rate",
            "44100 or 48000 Hz",
        ),
        (
            with(&base, "audio.sample_rate", json!(22050)),
            "audio.sample_rate",
            "44100 or 48000 Hz",
        ),
        (
            with(&base, "audio.channels", json!(0)),
            "audio.channels",
            "1 (mono) or 2 (stereo)",
        ),
        (
            with(&base, "audio.channels", json!(3)),
            "audio.channels",
            "1 (mono) or 2 (stereo)",
        ),
        (
            with(&base, "platform", json!("myspace")),
            "platform",
            "\"youtube\", \"x\", \"linkedin\" or \"custom\"",
        ),
        (
            with(&base, "name", json!("")),
            "name",
            "between 1 and 100 characters",
        ),
        (
            with(&base, "name", json!("n".repeat(101))),
            "name",
            "between 1 and 100 characters",
        ),
        (
            with(&base, "video.sharpness", json!(3)),
            "video.sharpness",
            "unknown field",
        ),
        (
            with(&base, "video.fps", json!("thirty")),
            "video.fps",
            "invalid type",
        ),
    ];
    for (body, field, words) in bad {
        let a = api
            .call("POST", "/api/v1/presets", Some(body.clone()))
            .await;
        assert_eq!(
            (a.status, a.code(), a.body["field"].as_str()),
            (400, "validation_failed", Some(field)),
            "{body} -> {a:?}"
        );
        let detail = a.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(words),
            "{field}: {detail:?} should contain {words:?}"
        );
    }
    // Both sides of each edge that is allowed.
    let good: Vec<Value> = vec![
        with(&base, "video.bitrate_kbps", json!(1000)),
        with(&base, "video.bitrate_kbps", json!(10000)),
        with(&base, "video.keyframe_interval_s", json!(1)),
        with(&base, "video.keyframe_interval_s", json!(4)),
        with(&base, "video.fps", json!(24)),
        with(&base, "video.fps", json!(60)),
        with(&base, "audio.bitrate_kbps", json!(64)),
        with(&base, "audio.bitrate_kbps", json!(320)),
        with(&base, "audio.sample_rate", json!(44100)),
        with(&base, "audio.channels", json!(1)),
        with(
            &with(&uhd, "video.fps", json!(60)),
            "video.bitrate_kbps",
            json!(20000),
        ),
        with(
            &with(&base, "video.codec", json!("h265")),
            "audio.codec",
            json!("mp3"),
        ),
        with(&base, "name", json!("n".repeat(100))),
    ];
    for (i, body) in good.into_iter().enumerate() {
        let body = with(
            &body,
            "name",
            json!(format!(
                "{} {i}",
                body["name"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .take(90)
                    .collect::<String>()
            )),
        );
        let a = api
            .call("POST", "/api/v1/presets", Some(body.clone()))
            .await;
        assert_eq!(a.status, 201, "{body} -> {a:?}");
        assert_eq!(a.body["builtin"], false);
    }

    // Create, read with an ETag, update with If-Match, conflicts.
    let a = api
        .call("POST", "/api/v1/presets", Some(valid_preset("Studio 720p")))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.headers["etag"], "\"1\"");
    let dup = api
        .call("POST", "/api/v1/presets", Some(valid_preset("Studio 720p")))
        .await;
    assert_eq!(
        (dup.status, dup.code(), dup.body["field"].as_str()),
        (409, "name_taken", Some("name")),
        "{dup:?}"
    );
    // A GET answer can be sent back to PUT as it is.
    let mut got = api.get(&format!("/api/v1/presets/{id}")).await;
    got["video"]["bitrate_kbps"] = json!(3500);
    let res = server
        .client
        .put(server.url(&format!("/api/v1/presets/{id}")))
        .bearer_auth(&api.token)
        .header("if-match", "\"1\"")
        .json(&got)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(
        (
            updated["video"]["bitrate_kbps"].as_u64(),
            updated["version"].as_i64()
        ),
        (Some(3500), Some(2))
    );
    let res = server
        .client
        .put(server.url(&format!("/api/v1/presets/{id}")))
        .bearer_auth(&api.token)
        .header("if-match", "\"1\"")
        .json(&got)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412, "a stale If-Match is refused");
    let a = api
        .call(
            "PUT",
            &format!("/api/v1/presets/{id}"),
            Some(with(&got, "video.fps", json!(50))),
        )
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("video.fps"))
    );

    // Clone: a built-in becomes a custom copy; twice gives another name.
    let c1 = api
        .call("POST", "/api/v1/presets/builtin-x-720p30/clone", None)
        .await;
    assert_eq!(c1.status, 201, "{c1:?}");
    assert_eq!(
        (c1.body["name"].as_str(), c1.body["builtin"].as_bool()),
        (Some("X Optimized (copy)"), Some(false))
    );
    assert_eq!(
        c1.body["encoding_key"], x["encoding_key"],
        "a clone encodes the same way"
    );
    let c2 = api
        .call(
            "POST",
            "/api/v1/presets/builtin-x-720p30/clone",
            Some(json!({})),
        )
        .await;
    assert_eq!(c2.body["name"], "X Optimized (copy 2)");
    let c3 = api
        .call(
            "POST",
            &format!("/api/v1/presets/{id}/clone"),
            Some(json!({"name": "Studio B"})),
        )
        .await;
    assert_eq!(
        (c3.status, c3.body["name"].as_str()),
        (201, Some("Studio B"))
    );
    let a = api.call("POST", "/api/v1/presets/nope/clone", None).await;
    assert_eq!(a.status, 404);

    // Destinations: the preset must exist (built-in or the organization's).
    let a = api
        .call("POST", "/api/v1/destinations", Some(json!({"name": "d", "platform": "custom", "rtmp_url": "rtmp://h/a", "stream_key": "k", "preset_id": "nope"})))
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("preset_id")),
        "{a:?}"
    );
    let d = api
        .destination("uses studio", "rtmp://h/a", "k1", Some(&id))
        .await;
    let a = api
        .call(
            "PATCH",
            &format!("/api/v1/destinations/{d}"),
            Some(json!({"preset_id": "builtin-nope"})),
        )
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("preset_id"))
    );
    let a = api
        .call("DELETE", &format!("/api/v1/presets/{id}"), None)
        .await;
    assert_eq!((a.status, a.code()), (409, "preset_in_use"), "{a:?}");
    assert!(a.body["detail"].as_str().unwrap().contains("uses studio"));
    let a = api
        .call(
            "PATCH",
            &format!("/api/v1/destinations/{d}"),
            Some(json!({"preset_id": "builtin-x-720p30"})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = api
        .call("DELETE", &format!("/api/v1/presets/{id}"), None)
        .await;
    assert_eq!(a.status, 204);
    assert_eq!(
        api.call("GET", &format!("/api/v1/presets/{id}"), None)
            .await
            .status,
        404
    );

    // Export, then import into another organization's view: per-item report.
    let export = api.call("GET", "/api/v1/presets/export", None).await;
    assert_eq!(export.status, 200);
    assert!(export.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    assert_eq!(export.body["format"], "lunora-presets");
    let exported = export.body["presets"].as_array().unwrap().clone();
    assert!(exported.iter().all(|p| p["builtin"] == false));
    let custom_count = exported.len();
    assert!(exported.iter().any(|p| p["name"] == "Studio B"));
    // Importing the export again: every name is taken.
    let a = api
        .call("POST", "/api/v1/presets/import", Some(export.body.clone()))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (a.body["created"].as_u64(), a.body["skipped"].as_u64()),
        (Some(0), Some(custom_count as u64))
    );
    // A mixed document: new, taken (renamed), invalid.
    let doc = json!({"format": "lunora-presets", "version": 1, "presets": [
        valid_preset("Imported A"),
        exported[0].clone(),
        with(&valid_preset("Broken"), "video.fps", json!(25)),
    ]});
    let dry = api
        .call(
            "POST",
            "/api/v1/presets/import?on_conflict=rename&dry_run=true",
            Some(doc.clone()),
        )
        .await;
    assert_eq!(
        (dry.body["created"].as_u64(), dry.body["dry_run"].as_bool()),
        (Some(2), Some(true)),
        "{dry:?}"
    );
    let before = api.get("/api/v1/presets?kind=custom&limit=500").await["items"]
        .as_array()
        .unwrap()
        .len();
    let a = api
        .call(
            "POST",
            "/api/v1/presets/import?on_conflict=rename",
            Some(doc),
        )
        .await;
    assert_eq!(a.status, 200);
    let r = &a.body;
    assert_eq!(
        (
            r["created"].as_u64(),
            r["skipped"].as_u64(),
            r["invalid"].as_u64()
        ),
        (Some(2), Some(0), Some(1)),
        "{r}"
    );
    assert_eq!(r["items"][0]["status"], "created");
    assert_eq!(r["items"][1]["status"], "created");
    assert!(
        r["items"][1]["name"].as_str().unwrap().ends_with("(copy)"),
        "{r}"
    );
    assert_eq!(
        (
            r["items"][2]["status"].as_str(),
            r["items"][2]["field"].as_str()
        ),
        (Some("invalid"), Some("presets[2].video.fps"))
    );
    let after = api.get("/api/v1/presets?kind=custom&limit=500").await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before + 2);
    let a = api
        .call(
            "POST",
            "/api/v1/presets/import",
            Some(json!({"format": "other", "presets": []})),
        )
        .await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("format")));

    // Paging walks built-ins then custom presets.
    let p1 = api.get("/api/v1/presets?limit=5").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 5);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = api
        .get(&format!("/api/v1/presets?limit=500&cursor={cursor}"))
        .await;
    // The sixth built-in follows the fifth; two pages hold every preset once, in list order.
    assert_eq!(p2["items"][0]["id"], "builtin-custom-1080p60");
    assert!(p2["next_cursor"].is_null());
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let whole = api.get("/api/v1/presets?limit=500").await;
    assert_eq!([ids(&p1), ids(&p2)].concat(), ids(&whole));

    // Operators read presets but only administrators manage them.
    invite_user(
        &server,
        &api.token,
        "op@example.com",
        "operator",
        "Operator-Pass-123!",
    )
    .await;
    let op = token_for(&server, "op@example.com", "Operator-Pass-123!").await;
    assert_eq!(
        call(&server, "GET", "/api/v1/presets", Some(&op), None)
            .await
            .status,
        200
    );
    let a = call(
        &server,
        "POST",
        "/api/v1/presets",
        Some(&op),
        Some(&valid_preset("Op's")),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
}

// ---------------------------------------------------------------------------------------
// Media

async fn live_channel(server: &Server, token: &str) -> (String, Publisher) {
    live_channel_paced(server, token, test_file(), 1.0).await
}

/// A new channel (source-only HLS) with `file` published to it at `pace` × real time.
async fn live_channel_paced(
    server: &Server,
    token: &str,
    file: &Path,
    pace: f64,
) -> (String, Publisher) {
    let res = create_channel(server, token, "transcode").await;
    assert_eq!(res.status(), 201);
    let ch: Value = res.json().await.unwrap();
    // Source-only HLS: these tests count the destinations' FFmpeg processes.
    let a = call(
        server,
        "PUT",
        &format!("/api/v1/channels/{}/hls", ch["id"].as_str().unwrap()),
        Some(token),
        Some(&json!({ "ladder": [] })),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let key = ch["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let publisher = Publisher::start_file(
        &format!("rtmp://{}/live/{key}", server.rtmp_addr().unwrap()),
        file,
        pace,
    );
    (ch["id"].as_str().unwrap().to_string(), publisher)
}

async fn start_streaming(api: &Api<'_>, channel: &str, ids: &[&str]) {
    let a = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/start"),
            Some(json!({"destination_ids": ids})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
}

fn is_live(d: &Value) -> bool {
    d["state"] == "live" && d["bytes_sent"].as_u64().unwrap_or(0) > 100_000
}

/// (pts seconds, dts seconds, size bytes, keyframe) of every packet of one stream kind.
fn packets(file: &Path, kind: &str) -> Vec<(f64, f64, u64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", kind])
        .args([
            "-show_entries",
            "packet=pts_time,dts_time,size,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(',').collect();
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.starts_with('K'),
            ))
        })
        .collect()
}

/// ffprobe of the recorded file, stream fields.
fn probe_file(file: &Path) -> Value {
    probe_streams(file.to_str().unwrap())
}

/// Stream seconds of what nginx receives that are recorded and checked: five or six whole
/// 2 s GOPs whatever frame nginx starts the recording on.
const RECORD_SECS: u32 = 12;

/// A channel sending to nginx-rtmp through a destination with one preset, and what nginx
/// received, already checked against the preset.
struct AtNginx {
    server: Server,
    token: String,
    channel: String,
    destination: String,
    /// The destination's status when it went live.
    live: Value,
    _nginx: Nginx,
    _publisher: Publisher,
}

/// Publishes the test file with a keyframe every 4 s (720p30, 48 kHz; no built-in preset can
/// pass it through) at `pace` × real time to a new channel, sends
/// it to nginx-rtmp through a destination with `preset_id`, records [`RECORD_SECS`] of what
/// nginx receives and checks it against the preset's own settings, read from the API:
/// resolution, frame rate, keyframe interval, profile, audio sample rate and channels exact,
/// video bitrate within ±15 % over whole GOPs.
///
/// The largest presets (1440p, 1080p60, 4K) encode slower than real time on this 2-core
/// machine; the publisher is paced to what the encoder keeps up with (`-readrate`), which
/// changes when frames arrive but not their timestamps, and the timestamps are what the
/// checks measure. Real-time capacity per preset is a benchmark (`BENCHMARKS.md`).
async fn preset_at_nginx(preset_id: &str, pace: f64) -> AtNginx {
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let token = admin_token(&server).await;
    let api = Api {
        server: &server,
        token: token.clone(),
    };
    let preset = api.get(&format!("/api/v1/presets/{preset_id}")).await;
    let (channel, publisher) =
        live_channel_paced(&server, &token, test_file_sparse_keyframes(), pace).await;
    let key = format!("{preset_id}-key");
    let d = api
        .destination(preset_id, &nginx.url(), &key, Some(preset_id))
        .await;
    start_streaming(&api, &channel, &[&d]).await;
    let live = api
        .wait_destination(
            &channel,
            &d,
            Duration::from_secs_f64(40.0 / pace.min(1.0)),
            is_live,
        )
        .await;
    let t = &live["transcode"];
    assert_eq!(
        (t["mode"].as_str(), t["preset_id"].as_str()),
        (Some("transcoding"), Some(preset_id)),
        "{live}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("at-nginx.flv");
    let url = format!("{}/{key}", nginx.url());
    let out = record_ok(url, RECORD_SECS, out, &format!("{preset_id}: ")).await;
    let summary = tokio::task::spawn_blocking(move || check_against_preset(&out, &preset))
        .await
        .unwrap();
    eprintln!("{preset_id} at nginx (publisher paced at {pace}x): {summary}");
    AtNginx {
        server,
        token,
        channel,
        destination: d,
        live,
        _nginx: nginx,
        _publisher: publisher,
    }
}

/// ffprobe's name of an H.264 profile.
fn profile_name(profile: &str) -> &'static str {
    match profile {
        "baseline" => "Constrained Baseline",
        "main" => "Main",
        "high" => "High",
        other => panic!("unknown profile {other}"),
    }
}

/// Checks a recording of what nginx received against a preset (as the API shows it) and
/// returns a one-line summary of the measured figures.
fn check_against_preset(file: &Path, preset: &Value) -> String {
    let id = preset["id"].as_str().unwrap();
    let pv = &preset["video"];
    let pa = &preset["audio"];
    let (width, height, fps_want) = (
        pv["width"].as_u64().unwrap(),
        pv["height"].as_u64().unwrap(),
        pv["fps"].as_u64().unwrap(),
    );
    let probe = probe_file(file);
    let v = stream(&probe, "video");
    assert_eq!(
        (
            v["codec_name"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("h264"), Some(width), Some(height)),
        "{id}: {v}"
    );
    assert_eq!(
        v["profile"],
        profile_name(pv["profile"].as_str().unwrap()),
        "{id}: {v}"
    );
    assert_eq!(v["r_frame_rate"], format!("{fps_want}/1"), "{id}: {v}");
    let au = stream(&probe, "audio");
    assert_eq!(
        (
            au["codec_name"].as_str(),
            au["sample_rate"].as_str(),
            au["channels"].as_u64()
        ),
        (
            Some("aac"),
            Some(pa["sample_rate"].to_string().as_str()),
            pa["channels"].as_u64()
        ),
        "{id}: {au}"
    );

    let video = packets(file, "v");
    let min_frames = (RECORD_SECS as u64 - 2) * fps_want;
    assert!(
        video.len() as u64 > min_frames,
        "{id}: only {} video packets in {RECORD_SECS} s",
        video.len()
    );
    // Frame rate on the timeline.
    let dts: Vec<f64> = video.iter().map(|p| p.1).collect();
    let span = dts[dts.len() - 1] - dts[0];
    let fps = (dts.len() - 1) as f64 / span;
    assert!(
        (fps - fps_want as f64).abs() < 0.5,
        "{id}: {fps} fps, want {fps_want}"
    );
    // Keyframe interval from the packet flags: exactly fps × interval frames.
    let gop_s = pv["keyframe_interval_s"].as_u64().unwrap();
    let gop = (gop_s * fps_want) as usize;
    let keys: Vec<usize> = video
        .iter()
        .enumerate()
        .filter(|(_, p)| p.3)
        .map(|(i, _)| i)
        .collect();
    assert!(keys.len() >= 4, "{id}: keyframes at {keys:?}");
    for w in keys.windows(2) {
        assert_eq!(
            w[1] - w[0],
            gop,
            "{id}: keyframes every {gop} frames: {keys:?}"
        );
    }
    let key_times: Vec<f64> = keys.iter().map(|&i| video[i].0).collect();
    for w in key_times.windows(2) {
        assert!(
            (w[1] - w[0] - gop_s as f64).abs() < 0.04,
            "{id}: keyframes every {gop_s} s: {key_times:?}"
        );
    }
    // Bitrate over whole GOPs (from the second keyframe to the last): within 15 %.
    let want = pv["bitrate_kbps"].as_f64().unwrap();
    let (a, b) = (keys[1], keys[keys.len() - 1]);
    let bytes: u64 = video[a..b].iter().map(|p| p.2).sum();
    let secs = video[b].1 - video[a].1;
    let kbps = bytes as f64 * 8.0 / secs / 1000.0;
    assert!(
        (want * 0.85..=want * 1.15).contains(&kbps),
        "{id}: video bitrate {kbps:.0} kbit/s, want {want} ± 15 %"
    );
    format!(
        "{width}x{height} {} {fps:.2} fps, keyframe every {gop} frames, {kbps:.0} kbit/s video over {secs:.1} s, audio {} Hz × {}",
        v["profile"].as_str().unwrap_or("?"),
        pa["sample_rate"],
        pa["channels"]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_preset_reaches_nginx_with_its_resolution_rate_keyframes_profile_audio_and_bitrate() {
    let _turn = HEAVY.lock().await;
    let at = preset_at_nginx("builtin-x-720p30", 1.0).await;
    let (server, channel, d) = (&at.server, at.channel.as_str(), at.destination.as_str());
    let api = Api {
        server,
        token: at.token.clone(),
    };
    let t = &at.live["transcode"];
    assert!(
        t["transcode_reasons"]
            .to_string()
            .contains("audio.sample_rate"),
        "the 48 kHz source is transcoded for the 44.1 kHz preset: {t}"
    );

    // The progress shows in the destination status and in /metrics.
    let st = api
        .wait_destination(channel, d, Duration::from_secs(10), |d| {
            d["transcode"]["fps"].as_f64().unwrap_or(0.0) > 0.0
        })
        .await;
    assert!(st["transcode"]["speed"].as_f64().is_some(), "{st}");
    let metrics = metrics_text(server).await;
    for name in [
        "lunora_transcode_up",
        "lunora_transcode_fps",
        "lunora_transcode_speed",
        "lunora_transcode_bitrate_kbps",
        "lunora_transcode_dropped_frames",
    ] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(channel)
                    && l.contains("preset=\"builtin-x-720p30\"")
            })
            .unwrap_or_else(|| panic!("{name} for the channel is missing from /metrics"));
        if name == "lunora_transcode_up" {
            assert!(line.ends_with(" 1"), "{line}");
        }
    }
}

/// One test per built-in preset besides X (above): what nginx receives matches the preset.
/// The pace is what the encode keeps up with on 2 cores, with room to spare (see
/// [`preset_at_nginx`]).
macro_rules! builtin_preset_at_nginx {
    ($($name:ident: $id:literal at $pace:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let _turn = HEAVY.lock().await;
            preset_at_nginx($id, $pace).await;
        }
    )*};
}

builtin_preset_at_nginx! {
    youtube_hd_preset_reaches_nginx_as_set: "builtin-youtube-1080p30" at 0.6;
    youtube_4k_preset_reaches_nginx_as_set: "builtin-youtube-2160p30" at 0.15;
    linkedin_hd_preset_reaches_nginx_as_set: "builtin-linkedin-1080p30" at 0.6;
    linkedin_mobile_preset_reaches_nginx_as_set: "builtin-linkedin-720p30" at 1.0;
    high_quality_1080p60_preset_reaches_nginx_as_set: "builtin-custom-1080p60" at 0.4;
    low_bandwidth_480p_preset_reaches_nginx_as_set: "builtin-custom-480p30" at 1.0;
    ultra_hd_1440p_preset_reaches_nginx_as_set: "builtin-custom-1440p30" at 0.4;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ffmpeg_per_distinct_preset_passthrough_without_and_stopped_with_the_last_user() {
    let _turn = HEAVY.lock().await;
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let pid = server.pid().unwrap();
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let (channel, _publisher) = live_channel(&server, &api.token).await;
    // A custom preset that encodes exactly like X Optimized shares its encode.
    let clone = api
        .call(
            "POST",
            "/api/v1/presets/builtin-x-720p30/clone",
            Some(json!({"name": "Our X"})),
        )
        .await;
    let clone_id = clone.body["id"].as_str().unwrap().to_string();
    let a = api
        .destination("A", &nginx.url(), "a", Some("builtin-x-720p30"))
        .await;
    let b = api
        .destination("B", &nginx.url(), "b", Some(&clone_id))
        .await;
    let c = api
        .destination("C", &nginx.url(), "c", Some("builtin-custom-480p30"))
        .await;
    // LinkedIn Mobile (720p30, High or lower, 2 Mbps, 48 kHz) is what the source already is.
    let m = api
        .destination("M", &nginx.url(), "m", Some("builtin-linkedin-720p30"))
        .await;

    start_streaming(&api, &channel, &[&a, &b, &m]).await;
    for d in [&a, &b, &m] {
        api.wait_destination(&channel, d, Duration::from_secs(40), is_live)
            .await;
    }
    let kids = wait_children(pid, 1, Duration::from_secs(10)).await;
    assert_eq!(kids.len(), 1, "A and B share one FFmpeg; M needs none");
    let st = api.status(&channel).await;
    let by = |id: &str| {
        st["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["destination_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by(&a)["transcode"]["pid"], by(&b)["transcode"]["pid"]);
    assert_eq!(
        by(&a)["transcode"]["pid"].as_u64(),
        Some(u64::from(kids[0]))
    );
    assert_eq!(by(&m)["transcode"]["mode"], "passthrough", "{st}");
    assert!(by(&m)["transcode"]["pid"].is_null());

    // A third preset: a second FFmpeg.
    let a2 = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/destinations/{c}/start"),
            None,
        )
        .await;
    assert_eq!(a2.status, 200, "{a2:?}");
    api.wait_destination(&channel, &c, Duration::from_secs(40), is_live)
        .await;
    let kids = wait_children(pid, 2, Duration::from_secs(10)).await;
    let probe = tokio::task::spawn_blocking({
        let u = format!("{}/c", nginx.url());
        move || probe_streams(&u)
    })
    .await
    .unwrap();
    let v = stream(&probe, "video");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(854), Some(480))
    );

    // Stopping one of the two users of the shared encode keeps it; the last one stops it.
    for d in [&a, &c] {
        let r = api
            .call(
                "POST",
                &format!("/api/v1/channels/{channel}/streaming/destinations/{d}/stop"),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let left = wait_children(pid, 1, Duration::from_secs(10)).await;
    assert!(kids.contains(&left[0]));
    api.wait_destination(&channel, &b, Duration::from_secs(5), is_live)
        .await;
    let r = api
        .call(
            "POST",
            &format!("/api/v1/channels/{channel}/streaming/stop"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    wait_children(pid, 0, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ffmpeg_restarts_its_destinations_keep_going_and_passthrough_never_notices() {
    let _turn = HEAVY.lock().await;
    let nginx = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let pid = server.pid().unwrap();
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let (channel, _publisher) = live_channel(&server, &api.token).await;
    let t = api
        .destination("T", &nginx.url(), "t", Some("builtin-custom-480p30"))
        .await;
    let p = api.destination("P", &nginx.url(), "p", None).await;
    start_streaming(&api, &channel, &[&t, &p]).await;
    api.wait_destination(&channel, &t, Duration::from_secs(40), is_live)
        .await;
    api.wait_destination(&channel, &p, Duration::from_secs(20), is_live)
        .await;
    let first = wait_children(pid, 1, Duration::from_secs(10)).await[0];
    let before = api
        .wait_destination(&channel, &t, Duration::from_secs(5), is_live)
        .await;

    let killed = Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let restarted = api
        .wait_destination(&channel, &t, Duration::from_secs(20), |d| {
            d["transcode"]["restarts"].as_u64() >= Some(1)
                && d["transcode"]["state"] == "running"
                && d["transcode"]["pid"]
                    .as_u64()
                    .is_some_and(|p| p != u64::from(first))
        })
        .await;
    assert!(
        restarted["transcode"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("signal 9"),
        "{restarted}"
    );
    let second = wait_children(pid, 1, Duration::from_secs(10)).await[0];
    assert_ne!(first, second);
    // T kept its connection and goes on sending; what nginx gets moves forward.
    let sent = before["bytes_sent"].as_u64().unwrap();
    let after = api
        .wait_destination(&channel, &t, Duration::from_secs(20), |d| {
            d["state"] == "live" && d["bytes_sent"].as_u64().unwrap_or(0) > sent + 500_000
        })
        .await;
    assert_eq!(
        after["reconnects"], 0,
        "T kept its connection through the restart: {after}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.flv");
    let url = format!("{}/t", nginx.url());
    let rec = tokio::task::spawn_blocking({
        let out = out.clone();
        move || record(&url, 4, &out)
    })
    .await
    .unwrap();
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let video = packets(&out, "v");
    let gaps: Vec<String> = video
        .windows(2)
        .filter(|w| w[1].1 - w[0].1 > 0.1)
        .map(|w| format!("{:.3}→{:.3}", w[0].1, w[1].1))
        .collect();
    // The recording may start with audio before the first keyframe: judge the video's own
    // span. The restarted encode keeps real time: 30 frames per second of media, no holes.
    let span = video.last().map_or(0.0, |v| v.1) - video.first().map_or(0.0, |v| v.1);
    let rate = (video.len().saturating_sub(1)) as f64 / span.max(0.001);
    assert!(
        span >= 2.0 && (27.0..=33.0).contains(&rate) && gaps.is_empty(),
        "{} frames over {span:.3} s of video ({rate:.1} fps); gaps over 100 ms: {gaps:?}",
        video.len()
    );
    assert!(
        video.windows(2).all(|w| w[1].1 > w[0].1),
        "video dts goes forward"
    );
    // The passthrough destination never noticed.
    let p_now = api
        .wait_destination(&channel, &p, Duration::from_secs(5), is_live)
        .await;
    assert_eq!(p_now["reconnects"], 0, "{p_now}");
    assert!(
        p_now["transcode"].is_null(),
        "no preset, no rendition: {p_now}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ffmpeg_the_destination_fails_clearly_and_the_server_stays_up() {
    let _turn = HEAVY.lock().await;
    let nginx = Nginx::start(false);
    let empty = tempfile::tempdir().unwrap();
    let server = Server::start(
        bin(),
        options(DbKind::Sqlite).env("PATH", empty.path().to_str().unwrap()),
    )
    .await
    .unwrap();
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let (channel, _publisher) = live_channel(&server, &api.token).await;
    let t = api
        .destination("T", &nginx.url(), "t", Some("builtin-x-720p30"))
        .await;
    let p = api.destination("P", &nginx.url(), "p", None).await;
    start_streaming(&api, &channel, &[&t, &p]).await;
    let failed = api
        .wait_destination(&channel, &t, Duration::from_secs(30), |d| {
            d["state"] == "failed"
        })
        .await;
    let err = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("FFmpeg is not installed or not on PATH"),
        "{failed}"
    );
    assert_eq!(failed["transcode"]["state"], "failed", "{failed}");
    // The other destination and the server carry on.
    api.wait_destination(&channel, &p, Duration::from_secs(20), is_live)
        .await;
    let health = call(&server, "GET", "/api/v1/health/overall", None, None).await;
    assert_eq!(health.status, 200, "{health:?}");
    let again = api
        .wait_destination(&channel, &t, Duration::from_secs(5), |d| {
            d["state"] == "failed"
        })
        .await;
    assert_eq!(again["last_error"], failed["last_error"]);
}
