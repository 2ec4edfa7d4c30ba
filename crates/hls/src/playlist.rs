//! Playlist text helpers: the URI naming scheme, the master (multivariant) playlist and the
//! `EXT-X-PROGRAM-DATE-TIME` date format. The media playlist is rendered by
//! [`crate::Packager::media_playlist`].

use std::fmt::Write as _;

/// The compatibility version of every playlist this crate writes: 6 is the minimum for
/// `EXT-X-MAP` in a playlist that is not I-frames only (RFC 8216 §7). The LL-HLS tags need no
/// higher version (delta updates, `EXT-X-SKIP`, would need 9; they are not produced).
pub const VERSION: u32 = 6;

/// `init-{version}.mp4`: the init segment of a codec configuration version.
pub fn init_uri(version: u32) -> String {
    format!("init-{version}.mp4")
}

/// `seg-{msn}.m4s`: a media segment.
pub fn segment_uri(msn: u64) -> String {
    format!("seg-{msn}.m4s")
}

/// `part-{msn}.{part}.m4s`: a partial segment.
pub fn part_uri(msn: u64, part: u32) -> String {
    format!("part-{msn}.{part}.m4s")
}

/// A name from this crate's URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `init-{version}.mp4`
    Init(u32),
    /// `seg-{msn}.m4s`
    Segment(u64),
    /// `part-{msn}.{part}.m4s`
    Part(u64, u32),
}

impl Resource {
    /// Parses a file name (no directories, no query). Numbers are plain decimal digits.
    pub fn parse(name: &str) -> Option<Resource> {
        if let Some(v) = name
            .strip_prefix("init-")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return Some(Resource::Init(digits(v)?));
        }
        if let Some(m) = name
            .strip_prefix("seg-")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            return Some(Resource::Segment(digits(m)?));
        }
        let rest = name.strip_prefix("part-")?.strip_suffix(".m4s")?;
        let (m, p) = rest.split_once('.')?;
        Some(Resource::Part(digits(m)?, digits(p)?))
    }
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One variant stream of a master playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendition {
    /// URI of its media playlist, relative to the master playlist (e.g. `720p/media.m3u8`).
    pub uri: String,
    /// Peak bit rate in bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    /// Average bit rate (`AVERAGE-BANDWIDTH`), when known.
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codecs, e.g. from [`crate::StreamConfig::codecs`].
    pub codecs: String,
    /// Display size, for renditions with video.
    pub resolution: Option<(u32, u32)>,
    /// Frame rate, for renditions with video.
    pub frame_rate: Option<f64>,
}

/// The master playlist over `renditions`, in the order given (players that do not measure
/// bandwidth first start with the first one).
pub fn master_playlist(renditions: &[Rendition]) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n");
    for r in renditions {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", r.bandwidth);
        if let Some(avg) = r.average_bandwidth {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={avg}");
        }
        let _ = write!(out, ",CODECS=\"{}\"", r.codecs);
        if let Some((w, h)) = r.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = r.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        let _ = write!(out, "\n{}\n", r.uri);
    }
    out
}

/// Unix milliseconds as an ISO 8601 UTC date with milliseconds, e.g.
/// `2024-02-29T13:45:01.250Z`.
pub fn program_date_time(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(program_date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            program_date_time(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            program_date_time(1_709_214_301_250),
            "2024-02-29T13:45:01.250Z"
        );
        assert_eq!(program_date_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn resource_names() {
        assert_eq!(Resource::parse("init-3.mp4"), Some(Resource::Init(3)));
        assert_eq!(Resource::parse("seg-42.m4s"), Some(Resource::Segment(42)));
        assert_eq!(
            Resource::parse("part-42.7.m4s"),
            Some(Resource::Part(42, 7))
        );
        for bad in [
            "seg-+1.m4s",
            "seg-.m4s",
            "seg-1.mp4",
            "part-1.m4s",
            "part-1.-2.m4s",
            "init-99999999999.mp4",
            "../seg-1.m4s",
        ] {
            assert_eq!(Resource::parse(bad), None, "{bad}");
        }
        assert_eq!(Resource::parse(&part_uri(5, 2)), Some(Resource::Part(5, 2)));
    }

    #[test]
    fn master() {
        let text = master_playlist(&[
            Rendition {
                uri: "source/media.m3u8".into(),
                bandwidth: 2_500_000,
                average_bandwidth: Some(2_000_000),
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(29.97),
            },
            Rendition {
                uri: "audio/media.m3u8".into(),
                bandwidth: 64_000,
                average_bandwidth: None,
                codecs: "mp4a.40.2".into(),
                resolution: None,
                frame_rate: None,
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:6\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,\
             CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970\n\
             source/media.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\"\n\
             audio/media.m3u8\n"
        );
    }
}
