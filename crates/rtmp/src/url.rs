//! Parsing `rtmp://` and `rtmps://` server URLs into what a client connection needs.

/// A parsed RTMP server URL (`rtmp[s]://host[:port]/app[/instance]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Whether the scheme is `rtmps` (TLS).
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (default 1935, or 443 for `rtmps`).
    pub port: u16,
    /// Application: the path without the leading slash (e.g. `live2`, `app/instance`).
    pub app: String,
    /// The URL as `tcUrl` (without a trailing slash).
    pub tc_url: String,
}

/// Why a URL is not a usable RTMP server URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RTMP URL: {0}")]
pub struct UrlError(pub &'static str);

impl RtmpUrl {
    /// Parses a server URL (the stream key is not part of it).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim().trim_end_matches('/');
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "rtmps://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "rtmp://") {
            (false, r)
        } else {
            return Err(UrlError("scheme must be rtmp:// or rtmps://"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(UrlError("credentials in the URL are not supported"));
        }
        let default_port = if tls { 443 } else { 1935 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or(UrlError("unclosed IPv6 bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| UrlError("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(UrlError("garbage after IPv6 address")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| UrlError("bad port"))?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(UrlError("no host"));
        }
        if port == 0 {
            return Err(UrlError("port 0"));
        }
        let app = path.split('?').next().unwrap_or_default().to_string();
        if app.is_empty() {
            return Err(UrlError("no application path"));
        }
        Ok(RtmpUrl {
            tls,
            host,
            port,
            app,
            tc_url: url.to_string(),
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youtube_and_friends() {
        let u = RtmpUrl::parse("rtmp://a.rtmp.youtube.com/live2").unwrap();
        assert_eq!(
            u,
            RtmpUrl {
                tls: false,
                host: "a.rtmp.youtube.com".into(),
                port: 1935,
                app: "live2".into(),
                tc_url: "rtmp://a.rtmp.youtube.com/live2".into(),
            }
        );
        let u = RtmpUrl::parse("RTMPS://live-api-s.facebook.com:443/rtmp/").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.app.as_str()), (443, "rtmp"));
        let u = RtmpUrl::parse("rtmps://x.example/app/inst").unwrap();
        assert_eq!((u.port, u.app.as_str()), (443, "app/inst"));
        let u = RtmpUrl::parse("rtmp://[::1]:1936/live").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1936));
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "http://x/live",
            "rtmp://",
            "rtmp://host",
            "rtmp://host:99999/live",
            "rtmp://:1935/live",
            "rtmp://u:p@host/live",
            "rtmp://[::1/live",
            "rtmp://host:0/live",
        ] {
            assert!(RtmpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
