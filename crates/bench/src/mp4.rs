//! Just enough of an fMP4 reader for a player that measures: which track of an init segment
//! is video, and the samples of media segments and parts (`styp`? then `moof` + `mdat` pairs):
//! per `traf` its `tfhd` defaults and `trun` sizes and flags, the bytes cut out of the file.

use anyhow::{bail, Context};

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    pub track: u32,
    /// A sync sample (keyframe): `sample_is_non_sync_sample` clear, or no flags at all.
    pub sync: bool,
    pub data: &'a [u8],
}

const NON_SYNC: u32 = 0x0001_0000;

/// A box in a buffer: `(type, start of the box, start of its body, end)`.
type BoxAt = ([u8; 4], usize, usize, usize);

/// The boxes in `buf`.
fn boxes(buf: &[u8]) -> anyhow::Result<Vec<BoxAt>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let head = buf.get(at..at + 8).context("truncated box header")?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, body) = match size32 {
            0 => ((buf.len() - at) as u64, at + 8),
            1 => {
                let l = buf.get(at + 8..at + 16).context("truncated largesize")?;
                (u64::from_be_bytes(l.try_into()?), at + 16)
            }
            s => (s, at + 8),
        };
        let end = at
            .checked_add(usize::try_from(size)?)
            .filter(|&e| e <= buf.len() && e >= body)
            .with_context(|| {
                format!(
                    "box {} of {size} bytes does not fit",
                    String::from_utf8_lossy(&kind)
                )
            })?;
        out.push((kind, at, body, end));
        at = end;
    }
    Ok(out)
}

fn u32_at(b: &[u8], at: usize) -> anyhow::Result<u32> {
    let s = b.get(at..at + 4).context("truncated box")?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The `track_ID` of the first video track (`hdlr` `vide`) of an init segment.
pub fn video_track(init: &[u8]) -> anyhow::Result<Option<u32>> {
    for (kind, _, body, end) in boxes(init)? {
        if &kind != b"moov" {
            continue;
        }
        let moov = &init[body..end];
        for (kind, _, body, end) in boxes(moov)? {
            if &kind != b"trak" {
                continue;
            }
            let trak = &moov[body..end];
            let mut id = None;
            let mut video = false;
            for (kind, _, body, end) in boxes(trak)? {
                let b = &trak[body..end];
                match &kind {
                    b"tkhd" => {
                        // version 1: 64-bit creation and modification times.
                        let at = if b.first() == Some(&1) { 4 + 16 } else { 4 + 8 };
                        id = Some(u32_at(b, at)?);
                    }
                    b"mdia" => {
                        for (kind, _, hb, he) in boxes(b)? {
                            if &kind == b"hdlr" {
                                video |= he >= hb + 12 && &b[hb + 8..hb + 12] == b"vide";
                            }
                        }
                    }
                    _ => {}
                }
            }
            if video {
                return Ok(id);
            }
        }
    }
    Ok(None)
}

#[derive(Default, Clone, Copy)]
struct TrackDefaults {
    track: u32,
    base: usize,
    size: Option<u32>,
    flags: Option<u32>,
}

/// The samples of every `moof` + `mdat` in `buf` (a part, or a segment: `styp` and its parts),
/// in file order.
pub fn samples(buf: &[u8]) -> anyhow::Result<Vec<Sample<'_>>> {
    let mut out = Vec::new();
    for (kind, moof_start, body, end) in boxes(buf)? {
        if &kind != b"moof" {
            continue;
        }
        for (kind, _, tb, te) in boxes(&buf[body..end])? {
            if &kind != b"traf" {
                continue;
            }
            let traf = &buf[body + tb..body + te];
            let mut d = TrackDefaults {
                base: moof_start,
                ..TrackDefaults::default()
            };
            // The end of the previous trun's data, for a trun without a data offset.
            let mut next: Option<usize> = None;
            for (kind, _, b, e) in boxes(traf)? {
                let b = &traf[b..e];
                match &kind {
                    b"tfhd" => d = tfhd(b, moof_start)?,
                    b"trun" => {
                        let data_start = next.unwrap_or(d.base);
                        next = Some(trun(b, &d, buf, data_start, &mut out)?);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn tfhd(b: &[u8], moof_start: usize) -> anyhow::Result<TrackDefaults> {
    let flags = u32_at(b, 0)? & 0x00FF_FFFF;
    let mut d = TrackDefaults {
        track: u32_at(b, 4)?,
        base: moof_start,
        ..TrackDefaults::default()
    };
    let mut at = 8;
    if flags & 0x01 != 0 {
        let s = b.get(at..at + 8).context("truncated tfhd")?;
        d.base = usize::try_from(u64::from_be_bytes(s.try_into()?))?;
        at += 8;
    }
    if flags & 0x02 != 0 {
        at += 4; // sample_description_index
    }
    if flags & 0x08 != 0 {
        at += 4; // default_sample_duration
    }
    if flags & 0x10 != 0 {
        d.size = Some(u32_at(b, at)?);
        at += 4;
    }
    if flags & 0x20 != 0 {
        d.flags = Some(u32_at(b, at)?);
    }
    Ok(d)
}

/// Reads one `trun`, pushes its samples and answers where its data ends.
fn trun<'a>(
    b: &[u8],
    d: &TrackDefaults,
    buf: &'a [u8],
    data_start: usize,
    out: &mut Vec<Sample<'a>>,
) -> anyhow::Result<usize> {
    let flags = u32_at(b, 0)? & 0x00FF_FFFF;
    let count = u32_at(b, 4)? as usize;
    let mut at = 8;
    let mut pos = data_start;
    if flags & 0x01 != 0 {
        let off = u32_at(b, at)? as i32;
        pos = usize::try_from(d.base as i64 + i64::from(off))?;
        at += 4;
    }
    let mut first_flags = None;
    if flags & 0x04 != 0 {
        first_flags = Some(u32_at(b, at)?);
        at += 4;
    }
    let per_sample = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count()
        * 4;
    if count.saturating_mul(per_sample) > b.len().saturating_sub(at) {
        bail!("trun of {count} samples does not fit its box");
    }
    for i in 0..count {
        if flags & 0x100 != 0 {
            at += 4; // duration
        }
        let size = if flags & 0x200 != 0 {
            let s = u32_at(b, at)?;
            at += 4;
            s
        } else {
            d.size.context("trun without sample sizes and no default")?
        };
        let sample_flags = if flags & 0x400 != 0 {
            let f = u32_at(b, at)?;
            at += 4;
            Some(f)
        } else if i == 0 && first_flags.is_some() {
            first_flags
        } else {
            d.flags
        };
        if flags & 0x800 != 0 {
            at += 4; // composition time offset
        }
        let end = pos + size as usize;
        let data = buf
            .get(pos..end)
            .with_context(|| format!("sample {i} of track {} outside the file", d.track))?;
        out.push(Sample {
            track: d.track,
            sync: sample_flags.is_none_or(|f| f & NON_SYNC == 0),
            data,
        });
        pos = end;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use lunora_hls::fmp4::{fragment, styp, FragmentSample, TrackFragment};
    use lunora_hls::Track;

    fn sample(sync: bool, data: &'static [u8]) -> FragmentSample {
        FragmentSample {
            duration: 3000,
            composition_offset: 0,
            sync,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn samples_of_lunora_parts_and_segments() {
        let video = [sample(true, b"key-frame"), sample(false, b"p")];
        let audio = [sample(true, b"aac1"), sample(true, b"aac22")];
        let part = |n| {
            fragment(
                n,
                &[
                    TrackFragment {
                        track: Track::Video,
                        base_decode_time: 0,
                        samples: &video,
                    },
                    TrackFragment {
                        track: Track::Audio,
                        base_decode_time: 0,
                        samples: &audio,
                    },
                ],
            )
            .unwrap()
        };
        let p = part(1);
        let s = samples(&p).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s[0].track, s[0].sync, s[0].data),
            (1, true, &b"key-frame"[..])
        );
        assert_eq!((s[1].track, s[1].sync, s[1].data), (1, false, &b"p"[..]));
        assert_eq!((s[3].track, s[3].data), (2, &b"aac22"[..]));
        // A segment: styp, then its parts.
        let mut seg = styp().to_vec();
        seg.extend_from_slice(&part(1));
        seg.extend_from_slice(&part(2));
        let s = samples(&seg).unwrap();
        assert_eq!(s.len(), 8);
        assert_eq!(s[4].data, b"key-frame");
        assert_eq!(s[7].data, b"aac22");
        // Truncated files are errors, not panics.
        assert!(samples(&p[..p.len() - 3]).is_err());
        assert!(samples(&p[..20]).is_err());
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn the_video_track_of_an_init_segment() {
        let trak = |id: u32, handler: &[u8; 4]| {
            let mut tkhd = vec![0u8; 12];
            tkhd.extend_from_slice(&id.to_be_bytes());
            tkhd.extend_from_slice(&[0; 64]);
            let mut hdlr = vec![0u8; 8];
            hdlr.extend_from_slice(handler);
            hdlr.extend_from_slice(&[0; 13]);
            let mut t = boxed(b"tkhd", &tkhd);
            t.extend(boxed(b"mdia", &boxed(b"hdlr", &hdlr)));
            boxed(b"trak", &t)
        };
        let mut moov = trak(2, b"soun");
        moov.extend(trak(7, b"vide"));
        let mut init = boxed(b"ftyp", b"iso6");
        init.extend(boxed(b"moov", &moov));
        assert_eq!(video_track(&init).unwrap(), Some(7));
        let audio_only = boxed(b"moov", &trak(2, b"soun"));
        assert_eq!(video_track(&audio_only).unwrap(), None);
    }
}
