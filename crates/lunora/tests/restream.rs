//! Restreaming to real RTMP servers (nginx with the RTMP module), over RTMP and RTMPS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::media::{packet_times, probe_streams, record_ok, stream, Publisher};
use common::nginx::Nginx;
use common::*;
use lunora_testkit::{DbKind, Server};
use serde_json::{json, Value};

struct Api<'a> {
    server: &'a Server,
    token: String,
}

impl Api<'_> {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .server
            .client
            .post(self.server.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        self.server
            .client
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn destination(&self, name: &str, url: &str, key: &str) -> String {
        let (s, d) = self
            .post(
                "/api/v1/destinations",
                json!({"name": name, "platform": "custom", "rtmp_url": url, "stream_key": key}),
            )
            .await;
        assert_eq!(s, 201, "{d}");
        assert!(!d.to_string().contains(key), "stream key leaked: {d}");
        d["id"].as_str().unwrap().to_string()
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
            let st = self
                .get(&format!("/api/v1/channels/{channel}/streaming/status"))
                .await;
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
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn live_channel(server: &Server, token: &str) -> (String, Publisher) {
    let res = create_channel(server, token, "restream").await;
    assert_eq!(res.status(), 201);
    let ch: Value = res.json().await.unwrap();
    let key = ch["publish_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let publisher = Publisher::start(&format!(
        "rtmp://{}/live/{key}",
        server.rtmp_addr().unwrap()
    ));
    (ch["id"].as_str().unwrap().to_string(), publisher)
}

fn is_live(d: &Value) -> bool {
    d["state"] == "live" && d["bytes_sent"].as_u64().unwrap_or(0) > 100_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restreams_to_two_servers_and_rides_out_an_outage_of_one() {
    let mut nginx_a = Nginx::start(false);
    let nginx_b = Nginx::start(false);
    let server = start(DbKind::Sqlite).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let (channel, _publisher) = live_channel(&server, &api.token).await;
    let a = api.destination("A", &nginx_a.url(), "dest-a").await;
    let b = api.destination("B", &nginx_b.url(), "dest-b").await;

    let (s, st) = api
        .post(
            &format!("/api/v1/channels/{channel}/streaming/start"),
            json!({"destination_ids": [a, b]}),
        )
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["destinations"].as_array().unwrap().len(), 2);
    let (s, _) = api
        .post(
            &format!("/api/v1/channels/{channel}/streaming/start"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "a second session on a streaming channel is refused");
    api.wait_destination(&channel, &a, Duration::from_secs(20), is_live)
        .await;
    api.wait_destination(&channel, &b, Duration::from_secs(20), is_live)
        .await;
    let metrics = metrics_text(&server).await;
    let live_line = format!(
        "lunora_destination_state{{channel=\"{channel}\",destination=\"{a}\",platform=\"custom\",state=\"live\"}} 1"
    );
    assert!(
        metrics.contains(&live_line),
        "{live_line} missing from /metrics"
    );
    assert!(metrics.contains(&format!(
        "lunora_channel_input_bitrate_bps{{channel=\"{channel}\"}}"
    )));

    // What the destination server receives is the stream, unchanged.
    let url_b = format!("{}/dest-b", nginx_b.url());
    let probe = tokio::task::spawn_blocking({
        let u = url_b.clone();
        move || probe_streams(&u)
    })
    .await
    .unwrap();
    let v = stream(&probe, "video");
    assert_eq!(
        (
            v["codec_name"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("h264"), Some(1280), Some(720))
    );
    assert_eq!(v["r_frame_rate"], "30/1");
    let au = stream(&probe, "audio");
    assert_eq!(
        (
            au["codec_name"].as_str(),
            au["sample_rate"].as_str(),
            au["channels"].as_u64()
        ),
        (Some("aac"), Some("48000"), Some(2))
    );

    // Destination A's server dies mid-stream and comes back.
    nginx_a.kill();
    let down = api
        .wait_destination(&channel, &a, Duration::from_secs(20), |d| {
            d["state"] == "retrying"
        })
        .await;
    let err = down["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("127.0.0.1")
            && (err.contains("refused") || err.contains("closed") || err.contains("lost")),
        "last error should name the server and what happened: {err}"
    );
    let health = api.get("/api/v1/health/destinations").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["by_state"]["retrying"], 1, "{health}");
    let sources = api.get("/api/v1/health/sources").await;
    assert_eq!(sources["status"], "healthy", "{sources}");
    assert_eq!(
        sources["channels"][0]["input"]["input_state"], "live",
        "{sources}"
    );
    // Meanwhile B records continuously.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.flv");
    let out = record_ok(url_b, 3, out, "").await;
    let video = packet_times(&out, "v");
    assert!(
        video.len() >= 75,
        "B delivered only {} frames in 3 s",
        video.len()
    );
    assert!(
        video.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] < 0.2),
        "gap or jump at B"
    );

    nginx_a.restart();
    api.wait_destination(&channel, &a, Duration::from_secs(30), |d| {
        d["state"] == "live"
    })
    .await;
    let b_now = api
        .wait_destination(&channel, &b, Duration::from_secs(5), is_live)
        .await;
    assert_eq!(b_now["reconnects"], 0, "B noticed A's outage: {b_now}");

    // Stop A alone; B goes on.
    let (s, st) = api
        .post(
            &format!("/api/v1/channels/{channel}/streaming/destinations/{a}/stop"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["destinations"].as_array().unwrap().len(), 1);
    api.wait_destination(&channel, &b, Duration::from_secs(5), is_live)
        .await;

    let (s, st) = api
        .post(
            &format!("/api/v1/channels/{channel}/streaming/stop"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["streaming"], false);

    // The history holds the session, both destinations and what they delivered.
    let hist = api
        .get(&format!("/api/v1/streaming/sessions?channel_id={channel}"))
        .await;
    let session = &hist["items"][0];
    assert!(session["ended_at"].is_string(), "{hist}");
    let detail = api
        .get(&format!(
            "/api/v1/streaming/sessions/{}",
            session["id"].as_str().unwrap()
        ))
        .await;
    let dests = detail["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 2, "{detail}");
    for d in dests {
        assert!(d["bytes_sent"].as_i64().unwrap() > 100_000, "{d}");
    }
    let a_row = dests
        .iter()
        .find(|d| d["destination_id"] == a.as_str())
        .unwrap();
    assert!(a_row["reconnects"].as_i64().unwrap() >= 1, "{a_row}");
    assert!(
        detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "destination_error"),
        "the error log records A's outage: {detail}"
    );

    // Analytics over the last hour count this session and both destinations' bytes.
    let dash = api.get("/api/v1/analytics/dashboard").await;
    assert_eq!(dash["sessions"], 1, "{dash}");
    assert_eq!(dash["peak_concurrent_streams"], 1, "{dash}");
    assert!(dash["streaming_hours"].as_f64().unwrap() > 0.0, "{dash}");
    assert!(
        dash["platforms"]["custom"]["bytes_sent"].as_i64().unwrap() > 200_000,
        "{dash}"
    );
    assert!(
        dash["peak_bandwidth_bps"].as_u64().unwrap() > 500_000,
        "{dash}"
    );
    let (s, bad) = api
        .post("/api/v1/channels/x/streaming/stop", json!({}))
        .await;
    assert_eq!(s, 404, "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmps_reaches_a_tls_endpoint_trusted_through_an_extra_ca() {
    let nginx = Nginx::start(true);
    let ca = nginx.ca_pem.clone().unwrap();
    let server = Server::start(
        bin(),
        options(DbKind::Sqlite).env("LUNORA_RTMPS_EXTRA_CA_FILE", ca.to_str().unwrap()),
    )
    .await
    .unwrap();
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    let (channel, _publisher) = live_channel(&server, &api.token).await;
    let d = api
        .destination("TLS", &nginx.rtmps_url().unwrap(), "secure-key")
        .await;
    let (s, t) = api
        .post(&format!("/api/v1/destinations/{d}/test"), json!({}))
        .await;
    assert_eq!((s, &t["ok"]), (200, &json!(true)), "{t}");
    let (s, _) = api
        .post(
            &format!("/api/v1/channels/{channel}/streaming/start"),
            json!({"destination_ids": [d]}),
        )
        .await;
    assert_eq!(s, 200);
    api.wait_destination(&channel, &d, Duration::from_secs(20), is_live)
        .await;
    let url = format!("{}/secure-key", nginx.url());
    let probe = tokio::task::spawn_blocking(move || probe_streams(&url))
        .await
        .unwrap();
    assert_eq!(stream(&probe, "video")["codec_name"], "h264");

    // A server that does not trust the CA refuses the endpoint, and says why.
    let untrusting = start(DbKind::Sqlite).await;
    let api2 = Api {
        server: &untrusting,
        token: admin_token(&untrusting).await,
    };
    let d2 = api2
        .destination("TLS", &nginx.rtmps_url().unwrap(), "secure-key")
        .await;
    let (_, t) = api2
        .post(&format!("/api/v1/destinations/{d2}/test"), json!({}))
        .await;
    assert_eq!(t["ok"], false);
    assert!(t["error"].as_str().unwrap().contains("TLS"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_validated_masked_and_tested() {
    let server = start(DbKind::Sqlite).await;
    let api = Api {
        server: &server,
        token: admin_token(&server).await,
    };
    for (body, field) in [
        (
            json!({"name": "x", "platform": "custom", "rtmp_url": "http://example.com/live", "stream_key": "k"}),
            "rtmp_url",
        ),
        (
            json!({"name": "x", "platform": "custom", "rtmp_url": "rtmp://:1935/live", "stream_key": "k"}),
            "rtmp_url",
        ),
        (
            json!({"name": "x", "platform": "custom", "rtmp_url": "rtmp://host:99999/live", "stream_key": "k"}),
            "rtmp_url",
        ),
        (
            json!({"name": "x", "platform": "custom", "rtmp_url": "rtmp://host/", "stream_key": "k"}),
            "rtmp_url",
        ),
        (
            json!({"name": "x", "platform": "custom", "stream_key": "k"}),
            "rtmp_url",
        ),
        (
            json!({"name": "x", "platform": "myspace", "rtmp_url": "rtmp://h/a", "stream_key": "k"}),
            "platform",
        ),
        (
            json!({"name": "x", "platform": "custom", "rtmp_url": "rtmp://h/a", "stream_key": "has space"}),
            "stream_key",
        ),
        (
            json!({"name": "", "platform": "custom", "rtmp_url": "rtmp://h/a", "stream_key": "k"}),
            "name",
        ),
    ] {
        let (s, p) = api.post("/api/v1/destinations", body.clone()).await;
        assert_eq!(
            (s, p["field"].as_str()),
            (400, Some(field)),
            "{body} -> {p}"
        );
    }
    // YouTube gets its ingest point filled in; the key is masked to its last 4 characters.
    let (s, d) = api
        .post(
            "/api/v1/destinations",
            json!({"name": "YT", "platform": "youtube", "stream_key": "abcd-efgh-ijkl-mnop"}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(d["rtmp_url"], "rtmp://a.rtmp.youtube.com/live2");
    assert_eq!(d["stream_key_masked"], "****mnop");
    let list = api.get("/api/v1/destinations").await;
    assert!(!list.to_string().contains("abcd-efgh"), "{list}");

    // Testing a destination whose server is down names the address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = api
        .destination("down", &format!("rtmp://127.0.0.1:{port}/live"), "k1")
        .await;
    let (s, t) = api
        .post(&format!("/api/v1/destinations/{id}/test"), json!({}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(t["ok"], false);
    assert_eq!(
        t["error"].as_str().unwrap(),
        format!("connection refused by 127.0.0.1:{port}")
    );
    // Unknown ids are 404s, and a session with one is refused naming the entry.
    let res = server
        .client
        .get(server.url("/api/v1/destinations/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let ch: Value = create_channel(&server, &api.token, "c")
        .await
        .json()
        .await
        .unwrap();
    let (s, p) = api
        .post(
            &format!(
                "/api/v1/channels/{}/streaming/start",
                ch["id"].as_str().unwrap()
            ),
            json!({"destination_ids": [id, "nope"]}),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (400, Some("destination_ids[1]")),
        "{p}"
    );
}
