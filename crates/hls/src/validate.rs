//! A media playlist parser and checker, for tests here and end-to-end tests of the server.
//!
//! [`parse`] reads the tags this crate writes (and skips the others); [`check`] verifies one
//! playlist against the MUST rules of RFC 8216 / draft-pantos-hls-rfc8216bis that a live
//! packager can break; [`check_update`] verifies that a reload is a valid successor of the
//! previous playlist. [`validate`] is `parse` + `check`.
//!
//! Checked: `EXT-X-TARGETDURATION` ≥ every `EXTINF` rounded to the nearest integer and never
//! changing; `EXT-X-PART` durations ≤ `PART-TARGET` (plus [`PART_DURATION_TOLERANCE`] for
//! decimal rounding) and adding up to their segment's `EXTINF`; `PART-HOLD-BACK` ≥ 2 ×
//! `PART-TARGET`; across reloads: media sequence never going back, listed segments never
//! changing URI, duration or discontinuity sequence number, segments never vanishing from
//! the end, `EXT-X-DISCONTINUITY-SEQUENCE` counting exactly the removed discontinuities,
//! parts of the open segment kept, and nothing changing after `EXT-X-ENDLIST`.

/// How much a part may exceed `PART-TARGET`: decimal rounding of the written durations.
pub const PART_DURATION_TOLERANCE: f64 = 0.001;

/// A parsed media playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-VERSION`.
    pub version: Option<u32>,
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: Option<u64>,
    /// `EXT-X-MEDIA-SEQUENCE` (0 when absent).
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent).
    pub discontinuity_sequence: u64,
    /// `EXT-X-PLAYLIST-TYPE`.
    pub playlist_type: Option<String>,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`.
    pub part_hold_back: Option<f64>,
    /// `EXT-X-PART-INF:PART-TARGET`.
    pub part_target: Option<f64>,
    /// The complete segments, in order.
    pub segments: Vec<Segment>,
    /// Parts after the last segment: the segment being written (its media sequence number is
    /// the last segment's plus one).
    pub open_parts: Vec<Part>,
    /// An `EXT-X-DISCONTINUITY` before the open parts.
    pub open_discontinuity: bool,
    /// `EXT-X-PRELOAD-HINT` URI.
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
}

impl MediaPlaylist {
    /// Media sequence number of the open segment (the one after the last complete segment).
    pub fn open_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    /// The segment with this media sequence number, if listed.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let i = usize::try_from(msn.checked_sub(self.media_sequence)?).ok()?;
        self.segments.get(i)
    }
}

/// A complete media segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// URI line.
    pub uri: String,
    /// `EXTINF` duration in seconds.
    pub duration: f64,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// Its discontinuity sequence number.
    pub discontinuity_number: u64,
    /// The `EXT-X-MAP` URI in effect.
    pub map: Option<String>,
    /// `EXT-X-PROGRAM-DATE-TIME` right before it.
    pub program_date_time: Option<String>,
    /// Its `EXT-X-PART`s, when listed.
    pub parts: Vec<Part>,
}

/// A partial segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// URI.
    pub uri: String,
    /// Duration in seconds.
    pub duration: f64,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

/// What is wrong with a playlist or an update.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Invalid {
    /// A line that cannot be parsed.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A required tag is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A segment longer than the target duration allows.
    #[error("segment {msn}: EXTINF {duration} rounds above EXT-X-TARGETDURATION {target}")]
    SegmentTooLong {
        /// Its media sequence number.
        msn: u64,
        /// Its duration.
        duration: f64,
        /// The target duration.
        target: u64,
    },
    /// A part longer than the part target.
    #[error("part {uri}: DURATION {duration} over PART-TARGET {part_target}")]
    PartTooLong {
        /// Its URI.
        uri: String,
        /// Its duration.
        duration: f64,
        /// The part target.
        part_target: f64,
    },
    /// A segment's parts do not add up to its duration.
    #[error("segment {msn}: parts add up to {parts}, EXTINF is {duration}")]
    PartsMismatch {
        /// Its media sequence number.
        msn: u64,
        /// Sum of the parts.
        parts: f64,
        /// Its duration.
        duration: f64,
    },
    /// `PART-HOLD-BACK` under twice the part target.
    #[error("PART-HOLD-BACK {hold_back} under 2 x PART-TARGET {part_target}")]
    PartHoldBack {
        /// The hold back.
        hold_back: f64,
        /// The part target.
        part_target: f64,
    },
    /// A reload that is not a valid successor of the previous playlist.
    #[error("update: {0}")]
    Update(String),
}

fn syntax(line: usize, reason: impl Into<String>) -> Invalid {
    Invalid::Syntax {
        line,
        reason: reason.into(),
    }
}

/// Splits an attribute list (`A=1,B="x,y",C=YES`) into name/value pairs, quotes removed.
fn attributes(list: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((v, n)) => (v, n),
                None => (quoted, ""),
            }
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        out.push((name.trim(), value));
        rest = next.strip_prefix(',').unwrap_or(next);
    }
    out
}

fn number<T: std::str::FromStr>(line: usize, what: &str, v: &str) -> Result<T, Invalid> {
    v.trim()
        .parse()
        .map_err(|_| syntax(line, format!("bad {what}: {v:?}")))
}

/// Parses a media playlist.
pub fn parse(text: &str) -> Result<MediaPlaylist, Invalid> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    match lines.next() {
        Some((_, "#EXTM3U")) => {}
        _ => return Err(syntax(1, "does not start with #EXTM3U")),
    }
    let mut p = MediaPlaylist::default();
    let mut extinf: Option<f64> = None;
    let mut discontinuity = false;
    let mut discontinuities = 0u64;
    let mut map: Option<String> = None;
    let mut pdt: Option<String> = None;
    let mut parts: Vec<Part> = Vec::new();
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            let Some(duration) = extinf.take() else {
                return Err(syntax(n, "URI without #EXTINF"));
            };
            if discontinuity {
                discontinuities += 1;
            }
            p.segments.push(Segment {
                msn: p.media_sequence + p.segments.len() as u64,
                uri: line.to_owned(),
                duration,
                discontinuity: std::mem::take(&mut discontinuity),
                discontinuity_number: p.discontinuity_sequence + discontinuities,
                map: map.clone(),
                program_date_time: pdt.take(),
                parts: std::mem::take(&mut parts),
            });
            continue;
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let before_segments = |what: &str| {
            if p.segments.is_empty() && parts.is_empty() {
                Ok(())
            } else {
                Err(syntax(n, format!("{what} after the first segment")))
            }
        };
        match tag {
            "#EXT-X-VERSION" => p.version = Some(number(n, "version", value)?),
            "#EXT-X-TARGETDURATION" => {
                p.target_duration = Some(number(n, "target duration", value)?)
            }
            "#EXT-X-MEDIA-SEQUENCE" => {
                before_segments(tag)?;
                p.media_sequence = number(n, "media sequence", value)?;
            }
            "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                before_segments(tag)?;
                p.discontinuity_sequence = number(n, "discontinuity sequence", value)?;
            }
            "#EXT-X-PLAYLIST-TYPE" => p.playlist_type = Some(value.to_owned()),
            "#EXT-X-ENDLIST" => p.ended = true,
            "#EXT-X-DISCONTINUITY" => discontinuity = true,
            "#EXT-X-PROGRAM-DATE-TIME" => pdt = Some(value.to_owned()),
            "#EXT-X-MAP" => {
                let uri = attributes(value)
                    .into_iter()
                    .find(|(k, _)| *k == "URI")
                    .ok_or_else(|| syntax(n, "EXT-X-MAP without URI"))?;
                map = Some(uri.1.to_owned());
            }
            "#EXTINF" => {
                let d = value.split_once(',').map_or(value, |(d, _)| d);
                let d: f64 = number(n, "EXTINF", d)?;
                if !(d.is_finite() && d > 0.0) {
                    return Err(syntax(n, "EXTINF not positive"));
                }
                extinf = Some(d);
            }
            "#EXT-X-SERVER-CONTROL" => {
                for (k, v) in attributes(value) {
                    match k {
                        "CAN-BLOCK-RELOAD" => p.can_block_reload = v == "YES",
                        "PART-HOLD-BACK" => {
                            p.part_hold_back = Some(number(n, "PART-HOLD-BACK", v)?)
                        }
                        _ => {}
                    }
                }
            }
            "#EXT-X-PART-INF" => {
                for (k, v) in attributes(value) {
                    if k == "PART-TARGET" {
                        p.part_target = Some(number(n, "PART-TARGET", v)?);
                    }
                }
            }
            "#EXT-X-PART" => {
                let mut uri = None;
                let mut duration = None;
                let mut independent = false;
                for (k, v) in attributes(value) {
                    match k {
                        "URI" => uri = Some(v.to_owned()),
                        "DURATION" => duration = Some(number::<f64>(n, "part DURATION", v)?),
                        "INDEPENDENT" => independent = v == "YES",
                        _ => {}
                    }
                }
                parts.push(Part {
                    uri: uri.ok_or_else(|| syntax(n, "EXT-X-PART without URI"))?,
                    duration: duration.ok_or_else(|| syntax(n, "EXT-X-PART without DURATION"))?,
                    independent,
                });
            }
            "#EXT-X-PRELOAD-HINT" => {
                p.preload_hint = attributes(value)
                    .into_iter()
                    .find(|(k, _)| *k == "URI")
                    .map(|(_, v)| v.to_owned());
            }
            _ => {}
        }
    }
    if extinf.is_some() {
        return Err(syntax(text.lines().count(), "#EXTINF without a URI"));
    }
    p.open_parts = parts;
    p.open_discontinuity = discontinuity;
    Ok(p)
}

/// Checks one playlist.
pub fn check(p: &MediaPlaylist) -> Result<(), Invalid> {
    let target = p
        .target_duration
        .ok_or(Invalid::Missing("EXT-X-TARGETDURATION"))?;
    for s in &p.segments {
        if s.duration.round() > target as f64 {
            return Err(Invalid::SegmentTooLong {
                msn: s.msn,
                duration: s.duration,
                target,
            });
        }
    }
    let all_parts = p
        .segments
        .iter()
        .flat_map(|s| &s.parts)
        .chain(&p.open_parts);
    let mut any_part = false;
    for part in all_parts {
        any_part = true;
        let pt = p.part_target.ok_or(Invalid::Missing("EXT-X-PART-INF"))?;
        if part.duration > pt + PART_DURATION_TOLERANCE {
            return Err(Invalid::PartTooLong {
                uri: part.uri.clone(),
                duration: part.duration,
                part_target: pt,
            });
        }
    }
    for s in p.segments.iter().filter(|s| !s.parts.is_empty()) {
        let sum: f64 = s.parts.iter().map(|x| x.duration).sum();
        if (sum - s.duration).abs() > PART_DURATION_TOLERANCE * s.parts.len() as f64 {
            return Err(Invalid::PartsMismatch {
                msn: s.msn,
                parts: sum,
                duration: s.duration,
            });
        }
    }
    if let Some(pt) = p.part_target {
        if any_part || p.can_block_reload {
            let hold_back = p.part_hold_back.ok_or(Invalid::Missing("PART-HOLD-BACK"))?;
            if hold_back < 2.0 * pt {
                return Err(Invalid::PartHoldBack {
                    hold_back,
                    part_target: pt,
                });
            }
        }
    }
    Ok(())
}

/// Parses and checks a playlist.
pub fn validate(text: &str) -> Result<MediaPlaylist, Invalid> {
    let p = parse(text)?;
    check(&p)?;
    Ok(p)
}

/// Checks that `next` is a valid reload of `prev` (both already checked on their own).
pub fn check_update(prev: &MediaPlaylist, next: &MediaPlaylist) -> Result<(), Invalid> {
    let fail = |m: String| Err(Invalid::Update(m));
    if prev.ended && !next.ended {
        return fail("EXT-X-ENDLIST went away".into());
    }
    if next.target_duration != prev.target_duration {
        return fail(format!(
            "EXT-X-TARGETDURATION changed from {:?} to {:?}",
            prev.target_duration, next.target_duration
        ));
    }
    if next.media_sequence < prev.media_sequence {
        return fail(format!(
            "media sequence went back from {} to {}",
            prev.media_sequence, next.media_sequence
        ));
    }
    if next.open_msn() < prev.open_msn() {
        return fail(format!(
            "segments vanished from the end: {} complete before, {} now",
            prev.open_msn(),
            next.open_msn()
        ));
    }
    if prev.ended
        && (next.open_msn() != prev.open_msn() || next.segments.len() != prev.segments.len())
    {
        return fail("segments changed after EXT-X-ENDLIST".into());
    }
    for a in &prev.segments {
        let Some(b) = next.segment(a.msn) else {
            continue;
        };
        if a.uri != b.uri || a.duration != b.duration {
            return fail(format!(
                "segment {} changed: {} {} -> {} {}",
                a.msn, a.uri, a.duration, b.uri, b.duration
            ));
        }
        if a.discontinuity_number != b.discontinuity_number {
            return fail(format!(
                "segment {}: discontinuity sequence number {} -> {}",
                a.msn, a.discontinuity_number, b.discontinuity_number
            ));
        }
    }
    // Discontinuity sequence: exactly the tags that were removed.
    if next.media_sequence <= prev.open_msn() {
        let removed = prev
            .segments
            .iter()
            .filter(|s| s.msn < next.media_sequence && s.discontinuity)
            .count() as u64;
        let expected = prev.discontinuity_sequence + removed;
        if next.discontinuity_sequence != expected {
            return fail(format!(
                "EXT-X-DISCONTINUITY-SEQUENCE {} (expected {expected})",
                next.discontinuity_sequence
            ));
        }
    } else if next.discontinuity_sequence < prev.discontinuity_sequence {
        return fail("EXT-X-DISCONTINUITY-SEQUENCE went back".into());
    }
    // The open segment's parts stay, in order.
    let open = prev.open_msn();
    let later_parts = match next.segment(open) {
        Some(s) => {
            if prev.open_discontinuity && !s.discontinuity {
                return fail(format!("segment {open} lost its EXT-X-DISCONTINUITY"));
            }
            Some(&s.parts)
        }
        None if next.open_msn() == open => Some(&next.open_parts),
        None => None,
    };
    if let Some(parts) = later_parts.filter(|p| !p.is_empty()) {
        if parts.len() < prev.open_parts.len()
            || parts[..prev.open_parts.len()] != prev.open_parts[..]
        {
            return fail(format!("parts of segment {open} changed"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.200\n\
        #EXT-X-PART-INF:PART-TARGET=0.400\n#EXT-X-MEDIA-SEQUENCE:10\n\
        #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
        #EXTINF:2.00000,\nseg-10.m4s\n\
        #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:02.000Z\n\
        #EXT-X-PART:DURATION=0.40000,URI=\"part-11.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.40000,URI=\"part-11.1.m4s\"\n\
        #EXTINF:0.80000,\nseg-11.m4s\n\
        #EXT-X-PART:DURATION=0.40000,URI=\"part-12.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-12.1.m4s\"\n";

    #[test]
    fn parses_what_the_packager_writes() {
        let p = validate(GOOD).unwrap();
        assert_eq!(p.media_sequence, 10);
        assert_eq!(p.segments.len(), 2);
        let s = &p.segments[1];
        assert_eq!(
            (s.msn, s.discontinuity, s.discontinuity_number),
            (11, true, 2)
        );
        assert_eq!(s.map.as_deref(), Some("init-2.mp4"));
        assert_eq!(s.parts.len(), 2);
        assert!(s.parts[0].independent && !s.parts[1].independent);
        assert_eq!(p.open_msn(), 12);
        assert_eq!(p.open_parts.len(), 1);
        assert_eq!(p.preload_hint.as_deref(), Some("part-12.1.m4s"));
        assert_eq!(p.part_target, Some(0.4));
    }

    #[test]
    fn finds_broken_playlists() {
        let long = GOOD.replace("#EXTINF:2.00000", "#EXTINF:2.60000");
        assert!(matches!(
            validate(&long),
            Err(Invalid::SegmentTooLong { msn: 10, .. })
        ));
        // 2.4 rounds to 2: allowed.
        assert!(validate(&GOOD.replace("#EXTINF:2.00000", "#EXTINF:2.40000")).is_ok());
        let part = GOOD.replace(
            "DURATION=0.40000,URI=\"part-12.0",
            "DURATION=0.41000,URI=\"part-12.0",
        );
        assert!(matches!(validate(&part), Err(Invalid::PartTooLong { .. })));
        let sum = GOOD.replace("#EXTINF:0.80000", "#EXTINF:0.90000");
        assert!(matches!(
            validate(&sum),
            Err(Invalid::PartsMismatch { msn: 11, .. })
        ));
        let hold = GOOD.replace("PART-HOLD-BACK=1.200", "PART-HOLD-BACK=0.500");
        assert!(matches!(validate(&hold), Err(Invalid::PartHoldBack { .. })));
        assert!(validate("#EXTM3U\n#EXT-X-TARGETDURATION:2\nseg-1.m4s\n").is_err());
        assert!(validate("seg-1.m4s\n").is_err());
    }

    #[test]
    fn checks_updates() {
        let prev = validate(GOOD).unwrap();
        // The open segment completes; the first segment (no tag) leaves the window.
        let next_text = GOOD
            .replace("#EXT-X-MEDIA-SEQUENCE:10", "#EXT-X-MEDIA-SEQUENCE:11")
            .replace("#EXTINF:2.00000,\nseg-10.m4s\n", "")
            .replace(
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-12.1.m4s\"\n",
                "#EXTINF:0.40000,\nseg-12.m4s\n",
            );
        let next = validate(&next_text).unwrap();
        check_update(&prev, &next).unwrap();
        // Removing segment 11 (with its tag) requires the sequence to go up.
        let third_text = next_text
            .replace("#EXT-X-MEDIA-SEQUENCE:11", "#EXT-X-MEDIA-SEQUENCE:12")
            .replace("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n", "");
        let cut = |t: &str| {
            let start = t.find("#EXT-X-PROGRAM-DATE-TIME").unwrap();
            let end = t.find("seg-11.m4s\n").unwrap() + "seg-11.m4s\n".len();
            format!(
                "{}#EXT-X-MAP:URI=\"init-2.mp4\"\n{}",
                &t[..start],
                &t[end..]
            )
        };
        let stale = validate(&cut(&third_text)).unwrap();
        assert!(matches!(
            check_update(&next, &stale),
            Err(Invalid::Update(_))
        ));
        let fixed = validate(&cut(&third_text).replace(
            "#EXT-X-DISCONTINUITY-SEQUENCE:1",
            "#EXT-X-DISCONTINUITY-SEQUENCE:2",
        ))
        .unwrap();
        check_update(&next, &fixed).unwrap();
        // Going back is refused.
        assert!(check_update(&next, &prev).is_err());
        let changed = validate(&next_text.replace("seg-12.m4s", "other.m4s")).unwrap();
        assert!(check_update(&next, &changed).is_err());
    }
}
