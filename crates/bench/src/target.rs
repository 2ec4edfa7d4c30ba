//! Where the load goes: any RTMP server by URL and stream names (nginx-rtmp), or a Lunora
//! server whose channels are created through its API.

use std::time::Duration;

use anyhow::{bail, Context};
use lunora_rtmp::RtmpUrl;
use serde_json::{json, Value};

/// One stream: where its publisher publishes and its players play.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub publish_server: RtmpUrl,
    pub publish_key: String,
    pub play_server: RtmpUrl,
    pub play_name: String,
    /// The HLS master playlist (Lunora targets): `http://host:port/hls/{id}/index.m3u8`, with
    /// `?token=` for private channels.
    pub hls_url: Option<String>,
}

/// A Lunora server reached through its HTTP API.
#[derive(Debug, Clone)]
pub struct LunoraTarget {
    /// `http://host:port`.
    pub url: String,
    pub email: String,
    pub password: String,
    /// `rtmp://host:port/live` to use instead of the one the API answers (a server bound to
    /// port 0 answers port 0).
    pub rtmp_override: Option<String>,
    /// Private channels played with a play token instead of public channels.
    pub private: bool,
    /// Turn automatic recording on for each channel (`PUT /api/v1/channels/{id}/recording`).
    pub recording: bool,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// `rtmp://host:port/app`; stream `i` publishes `keys[i]` (default `{prefix}{i}`) and is
    /// played as `play_names[i]` (default: its key).
    Rtmp {
        url: String,
        keys: Vec<String>,
        play_names: Vec<String>,
        prefix: String,
    },
    Lunora(LunoraTarget),
}

impl Target {
    /// Prepares `n` streams; `tag` names them apart from other runs.
    pub async fn prepare(&self, n: usize, tag: &str) -> anyhow::Result<Vec<StreamSpec>> {
        match self {
            Target::Rtmp {
                url,
                keys,
                play_names,
                prefix,
            } => rtmp_streams(url, keys, play_names, prefix, n, tag),
            Target::Lunora(l) => l.prepare(n, tag).await,
        }
    }
}

fn rtmp_streams(
    url: &str,
    keys: &[String],
    play_names: &[String],
    prefix: &str,
    n: usize,
    tag: &str,
) -> anyhow::Result<Vec<StreamSpec>> {
    let server = RtmpUrl::parse(url)?;
    if !keys.is_empty() && keys.len() < n {
        bail!("{} publish keys given for {n} publishers", keys.len());
    }
    Ok((0..n)
        .map(|i| {
            let key = keys
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("{prefix}{tag}-{i}"));
            StreamSpec {
                publish_server: server.clone(),
                play_server: server.clone(),
                play_name: play_names.get(i).cloned().unwrap_or_else(|| key.clone()),
                publish_key: key,
                hls_url: None,
            }
        })
        .collect())
}

/// Splits `rtmp://host:port/app/key` into the server URL and the key.
pub fn split_publish_url(url: &str) -> anyhow::Result<(String, String)> {
    let (server, key) = url
        .rsplit_once('/')
        .with_context(|| format!("not an RTMP publish URL: {}", mask(url)))?;
    if key.is_empty() || !server.contains("://") || server.ends_with('/') {
        bail!("not an RTMP publish URL: {}", mask(url));
    }
    Ok((server.to_string(), key.to_string()))
}

/// A URL with its last path segment (a stream key) masked to its last 4 characters.
pub fn mask(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, key)) => {
            let tail: String = key
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("{head}/****{tail}")
        }
        None => "****".into(),
    }
}

impl LunoraTarget {
    async fn prepare(&self, n: usize, tag: &str) -> anyhow::Result<Vec<StreamSpec>> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = self.url.trim_end_matches('/');
        let login = send(
            client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({ "email": self.email, "password": self.password })),
        )
        .await
        .context("signing in")?;
        let token = login["access_token"]
            .as_str()
            .context(
                "the sign-in answer has no access token (staff MFA required? start the server \
                 with LUNORA_AUTH_STAFF_MFA=optional)",
            )?
            .to_string();
        let mut out = Vec::with_capacity(n);
        // A few at a time: each creation is a committed database write.
        let mut pending = tokio::task::JoinSet::new();
        let mut next = 0;
        let mut results: Vec<Option<StreamSpec>> = vec![None; n];
        while next < n || !pending.is_empty() {
            while next < n && pending.len() < 8 {
                let (client, token, me, i) = (client.clone(), token.clone(), self.clone(), next);
                let name = format!("bench {tag} {i}");
                pending.spawn(async move { (i, me.create(&client, &token, &name).await) });
                next += 1;
            }
            if let Some(done) = pending.join_next().await {
                let (i, spec) = done?;
                results[i] = Some(spec.with_context(|| format!("creating channel {i}"))?);
            }
        }
        for r in results.into_iter().flatten() {
            out.push(r);
        }
        Ok(out)
    }

    async fn create(
        &self,
        client: &reqwest::Client,
        token: &str,
        name: &str,
    ) -> anyhow::Result<StreamSpec> {
        let base = self.url.trim_end_matches('/');
        let visibility = if self.private { "private" } else { "public" };
        let ch = send(
            client
                .post(format!("{base}/api/v1/channels"))
                .bearer_auth(token)
                .json(&json!({ "name": name, "visibility": visibility })),
        )
        .await?;
        let id = ch["id"].as_str().context("channel without id")?.to_string();
        let publish_url = ch["publish_url"]
            .as_str()
            .context("channel without publish_url")?;
        let (server, key) = split_publish_url(publish_url)?;
        let server = self.rtmp_override.clone().unwrap_or(server);
        if self.recording {
            let r = send(
                client
                    .put(format!("{base}/api/v1/channels/{id}/recording"))
                    .bearer_auth(token)
                    .json(&json!({ "enabled": true })),
            )
            .await
            .context("turning recording on")?;
            if r["enabled"].as_bool() != Some(true) {
                bail!("recording was not turned on: {r}");
            }
        }
        let mut hls_url = format!("{base}/hls/{id}/index.m3u8");
        let play_name = if self.private {
            let t = send(
                client
                    .post(format!("{base}/api/v1/channels/{id}/play-token"))
                    .bearer_auth(token)
                    .json(&json!({ "ttl_seconds": 86_400 })),
            )
            .await?;
            let t = t["token"]
                .as_str()
                .context("play token answer without token")?;
            hls_url = format!("{hls_url}?token={t}");
            format!("{id}?token={t}")
        } else {
            id
        };
        let url = RtmpUrl::parse(&server)?;
        Ok(StreamSpec {
            publish_server: url.clone(),
            publish_key: key,
            play_server: url,
            play_name,
            hls_url: Some(hls_url),
        })
    }
}

/// The value of each sample (`name value`, labels kept in the name) of a Prometheus text page.
pub fn prometheus_values(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.trim().rsplit_once(' ')?;
            Some((name.trim(), value.parse().ok()?))
        })
        .collect()
}

/// Reads `names` (unlabelled gauges) from `{base}/metrics`; missing ones are left out.
pub async fn scrape_metrics(base: &str, names: &[&str]) -> anyhow::Result<Vec<(String, f64)>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let text = client
        .get(format!("{}/metrics", base.trim_end_matches('/')))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(prometheus_values(&text)
        .into_iter()
        .filter(|(n, _)| names.contains(n))
        .map(|(n, v)| (n.to_string(), v))
        .collect())
}

/// Sends a request, retrying on 429 (rate limits) and answering the JSON body of a 2xx.
async fn send(rb: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    for _ in 0..60 {
        let Some(req) = rb.try_clone() else {
            bail!("request cannot be retried");
        };
        let res = req.send().await?;
        let status = res.status();
        if status.as_u16() == 429 {
            let wait = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1u64);
            tokio::time::sleep(Duration::from_secs(wait.clamp(1, 10))).await;
            continue;
        }
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = body["code"].as_str().unwrap_or("");
            let detail = body["detail"].as_str().unwrap_or("");
            bail!("HTTP {status}: {code} {detail}");
        }
        return Ok(body);
    }
    bail!(
        "still rate limited after a minute (set LUNORA_RATELIMIT_STAFF_PER_MINUTE=0 on the server)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_urls_split_into_server_and_key() {
        let (s, k) = split_publish_url("rtmp://127.0.0.1:1935/live/abcdef123456").unwrap();
        assert_eq!(
            (s.as_str(), k.as_str()),
            ("rtmp://127.0.0.1:1935/live", "abcdef123456")
        );
        assert!(split_publish_url("rtmp://127.0.0.1:1935/live/").is_err());
        assert!(split_publish_url("nothing").is_err());
        assert_eq!(mask("rtmp://h/live/abcdef123456"), "rtmp://h/live/****3456");
    }

    #[test]
    fn rtmp_targets_name_streams_or_take_the_given_keys() {
        let s = rtmp_streams("rtmp://127.0.0.1:1935/live", &[], &[], "s", 2, "t1").unwrap();
        assert_eq!(s[1].publish_key, "st1-1");
        assert_eq!(s[1].play_name, "st1-1");
        assert_eq!(s[0].play_server.app, "live");
        let keys = vec!["a".to_string(), "b".to_string()];
        let plays = vec!["pa".to_string()];
        let s = rtmp_streams("rtmp://h/live", &keys, &plays, "", 2, "").unwrap();
        assert_eq!(
            (s[0].play_name.as_str(), s[1].play_name.as_str()),
            ("pa", "b")
        );
        assert!(rtmp_streams("rtmp://h/live", &keys, &[], "", 3, "").is_err());
        assert!(rtmp_streams("http://h/live", &[], &[], "", 1, "").is_err());
    }

    #[test]
    fn prometheus_gauges_by_name() {
        let text = "# HELP lunora_hls_channels x\n# TYPE lunora_hls_channels gauge\n\
lunora_hls_channels 500\nlunora_recordings_active 499\nlunora_x{a=\"b c\"} 1.5\n";
        let v = prometheus_values(text);
        assert!(v.contains(&("lunora_hls_channels", 500.0)));
        assert!(v.contains(&("lunora_recordings_active", 499.0)));
        assert!(v.contains(&("lunora_x{a=\"b c\"}", 1.5)));
        assert_eq!(v.len(), 3);
    }
}
