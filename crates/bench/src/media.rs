//! The media a publisher replays: test files made with FFmpeg (cached, never committed) and
//! an FLV file loaded into memory as tags with the key a player uses to find a frame's send
//! instant.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use bytes::Bytes;
use lunora_flv::{FlvReader, TagType};

/// A test stream to generate: 30 fps H.264 (High, 2 s GOP, B-frames, CBR) with 128 kb/s AAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    /// Audio + video, kb/s.
    pub total_kbps: u32,
}

pub const AUDIO_KBPS: u32 = 128;

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "1080p",
        width: 1920,
        height: 1080,
        total_kbps: 6000,
    },
    Profile {
        name: "720p",
        width: 1280,
        height: 720,
        total_kbps: 2600,
    },
    Profile {
        name: "480p",
        width: 854,
        height: 480,
        total_kbps: 1000,
    },
];

impl Profile {
    /// `1080p`, `720p`, `480p`, or an alias `6m`, `2.6m`, `1m`.
    pub fn parse(name: &str) -> anyhow::Result<Profile> {
        let canonical = match name {
            "6m" | "6M" => "1080p",
            "2.6m" | "2.6M" => "720p",
            "1m" | "1M" => "480p",
            other => other,
        };
        PROFILES
            .iter()
            .find(|p| p.name == canonical)
            .copied()
            .with_context(|| {
                format!("unknown profile `{name}` (known: 1080p/6m, 720p/2.6m, 480p/1m)")
            })
    }

    pub fn file_name(&self, seconds: u32) -> String {
        format!(
            "{}30-{}k-gop2s-{}s.flv",
            self.name, self.total_kbps, seconds
        )
    }

    /// The FFmpeg arguments that write this profile to `out` (FLV).
    pub fn ffmpeg_args(&self, seconds: u32, out: &Path) -> Vec<String> {
        let video = format!("{}k", self.total_kbps - AUDIO_KBPS);
        let mut args: Vec<String> = [
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Noise keeps the encoder busy for real; CBR with filler holds the bitrate steady.
        args.push(format!(
            "testsrc2=size={}x{}:rate=30,noise=alls=12:allf=t",
            self.width, self.height
        ));
        args.extend(
            [
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(seconds.to_string());
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "superfast",
                "-profile:v",
                "high",
                "-pix_fmt",
                "yuv420p",
                "-b:v",
                &video,
                "-minrate",
                &video,
                "-maxrate",
                &video,
                "-bufsize",
                &video,
                "-x264-params",
                "keyint=60:min-keyint=60:scenecut=0:nal-hrd=cbr",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-ac",
                "2",
                "-f",
                "flv",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(out.display().to_string());
        args
    }
}

/// The cache directory for generated files: `$LUNORA_BENCH_CACHE`, else
/// `$XDG_CACHE_HOME/lunora-bench`, else `~/.cache/lunora-bench`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LUNORA_BENCH_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("lunora-bench");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache").join("lunora-bench")
}

/// The profile's file in `cache_dir`, encoding it with FFmpeg first if it is not there.
pub fn ensure_file(profile: Profile, seconds: u32, cache_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = cache_dir.join(profile.file_name(seconds));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    let tmp = cache_dir.join(format!(".{}.part", profile.file_name(seconds)));
    eprintln!(
        "bench: encoding {} ({}x{}, {} kb/s, {seconds} s) with FFmpeg...",
        path.display(),
        profile.width,
        profile.height,
        profile.total_kbps
    );
    let out = Command::new("ffmpeg")
        .args(profile.ffmpeg_args(seconds, &tmp))
        .output()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

/// One audio or video tag of the clip.
#[derive(Debug, Clone)]
pub struct ClipTag {
    pub kind: Kind,
    /// Milliseconds from the clip's first tag.
    pub ts: u32,
    /// The FLV tag body (what an RTMP audio/video message carries).
    pub body: Bytes,
    /// A sequence header (codec configuration), sent once per connection.
    pub config: bool,
    /// For video frames with a unique key in the clip: the key players look up.
    pub key: Option<u64>,
}

/// A file loaded for replay.
#[derive(Debug)]
pub struct Clip {
    pub tags: Vec<ClipTag>,
    /// Timestamp offset from one loop to the next (the clip's span plus one frame).
    pub loop_ms: u32,
    /// Audio + video tag body bytes per second of the clip.
    pub bytes_per_sec: f64,
    pub video_frames: usize,
    /// Video frames left out of latency measurement because their key was not unique.
    pub ambiguous_frames: usize,
}

impl Clip {
    pub fn load(path: &Path) -> anyhow::Result<Clip> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut reader = FlvReader::new();
        reader.push(&data);
        let mut raw = Vec::new();
        while let Some(tag) = reader
            .next_tag()
            .with_context(|| format!("parsing {}", path.display()))?
        {
            let kind = match tag.tag_type {
                TagType::Audio => Kind::Audio,
                TagType::Video => Kind::Video,
                _ => continue,
            };
            if tag.data.len() < 2 {
                continue;
            }
            raw.push((kind, tag.timestamp, tag.data));
        }
        Self::from_tags(raw)
    }

    /// Builds a clip from `(kind, timestamp ms, tag body)` in file order.
    pub fn from_tags(raw: Vec<(Kind, u32, Bytes)>) -> anyhow::Result<Clip> {
        let first = raw.iter().map(|t| t.1).min().unwrap_or(0);
        let mut tags: Vec<ClipTag> = raw
            .into_iter()
            .map(|(kind, ts, body)| {
                let config = is_config(kind, &body);
                let key = (kind == Kind::Video && !config)
                    .then(|| video_payload(&body).map(frame_key))
                    .flatten();
                ClipTag {
                    kind,
                    ts: ts - first,
                    body,
                    config,
                    key,
                }
            })
            .collect();
        let video_frames = tags.iter().filter(|t| t.key.is_some()).count();
        if video_frames == 0 {
            bail!("the file has no H.264 video frames");
        }
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for t in &tags {
            if let Some(k) = t.key {
                *seen.entry(k).or_default() += 1;
            }
        }
        let mut ambiguous = 0;
        for t in &mut tags {
            if let Some(k) = t.key {
                if seen.get(&k).copied().unwrap_or(0) > 1 {
                    t.key = None;
                    ambiguous += 1;
                }
            }
        }
        let last = tags.iter().map(|t| t.ts).max().unwrap_or(0);
        let media_ts: Vec<u32> = tags
            .iter()
            .filter(|t| t.kind == Kind::Video && !t.config)
            .map(|t| t.ts)
            .collect();
        let frame_ms = if media_ts.len() > 1 {
            (media_ts[media_ts.len() - 1] - media_ts[0]) / (media_ts.len() as u32 - 1)
        } else {
            33
        };
        let loop_ms = last + frame_ms.max(1);
        let bytes: usize = tags
            .iter()
            .filter(|t| !t.config)
            .map(|t| t.body.len())
            .sum();
        Ok(Clip {
            tags,
            loop_ms,
            bytes_per_sec: bytes as f64 * 1000.0 / f64::from(loop_ms),
            video_frames,
            ambiguous_frames: ambiguous,
        })
    }

    /// Tag-body bitrate in Mb/s (what a player receives, without RTMP chunk headers).
    pub fn mbps(&self) -> f64 {
        self.bytes_per_sec * 8.0 / 1e6
    }
}

fn is_config(kind: Kind, body: &[u8]) -> bool {
    match kind {
        // AVC/HEVC legacy header: packet type 0 is the sequence header.
        Kind::Video => body.len() >= 2 && body[1] == 0 && body[0] & 0x80 == 0,
        // AAC: packet type 0 is the AudioSpecificConfig.
        Kind::Audio => body.len() >= 2 && body[0] >> 4 == 10 && body[1] == 0,
    }
}

/// The coded picture data of an H.264 (legacy FLV) video tag body: what a relay must pass
/// through unchanged even when it rewrites the tag header and timestamps.
pub fn video_payload(body: &[u8]) -> Option<&[u8]> {
    let codec = body.first()? & 0x0F;
    if codec != 7 || body.get(1) != Some(&1) || body.len() <= 5 {
        return None;
    }
    Some(&body[5..])
}

/// A key identifying a video frame by its content: the length, the first 64 bytes and 16
/// bytes at each eighth. Constant cost per frame (players hash gigabits per second), and the
/// samples in the middle land in entropy-coded data, so distinct frames get distinct keys;
/// [`Clip::from_tags`] drops the rare clip frames whose key is not unique.
pub fn frame_key(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write_usize(data.len());
    h.write(&data[..data.len().min(64)]);
    for k in 1..8 {
        let at = data.len() * k / 8;
        h.write(&data[at..(at + 16).min(data.len())]);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(key: bool, cfg: bool, fill: u8, len: usize) -> Bytes {
        let mut b = vec![if key { 0x17 } else { 0x27 }, u8::from(!cfg), 0, 0, 0];
        b.extend(std::iter::repeat_n(fill, len));
        Bytes::from(b)
    }

    #[test]
    fn profiles_parse_by_name_and_alias() {
        assert_eq!(Profile::parse("6m").unwrap().height, 1080);
        assert_eq!(Profile::parse("720p").unwrap().total_kbps, 2600);
        assert_eq!(Profile::parse("1m").unwrap().total_kbps, 1000);
        assert!(Profile::parse("4k").is_err());
        let args = Profile::parse("1080p")
            .unwrap()
            .ffmpeg_args(30, Path::new("/x.flv"));
        assert!(args.contains(&"5872k".to_string()));
        assert!(args
            .iter()
            .any(|a| a.contains("keyint=60:min-keyint=60:scenecut=0")));
    }

    #[test]
    fn keys_ignore_the_tag_header_and_see_the_payload() {
        let a = video(true, false, 1, 1000);
        let mut b = a.to_vec();
        b[2] = 9; // another composition time: same frame
        assert_eq!(
            frame_key(video_payload(&a).unwrap()),
            frame_key(video_payload(&b).unwrap())
        );
        let mut c = a.to_vec();
        c[5 + 500] = 2; // one byte in the middle differs
        assert_ne!(
            frame_key(video_payload(&a).unwrap()),
            frame_key(video_payload(&c).unwrap())
        );
        assert_eq!(video_payload(&video(true, true, 1, 10)), None);
        assert_eq!(video_payload(&[0x17]), None);
    }

    #[test]
    fn clip_rebases_loops_and_drops_ambiguous_keys() {
        let raw = vec![
            (Kind::Video, 1000, video(true, true, 0, 4)),
            (
                Kind::Audio,
                1000,
                Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
            ),
            (Kind::Video, 1000, video(true, false, 1, 100)),
            (Kind::Video, 1033, video(false, false, 2, 100)),
            (Kind::Video, 1066, video(false, false, 2, 100)),
            (Kind::Video, 1100, video(false, false, 3, 100)),
        ];
        let clip = Clip::from_tags(raw).unwrap();
        assert_eq!(clip.tags[0].ts, 0);
        assert!(clip.tags[0].config && clip.tags[1].config);
        assert_eq!(clip.loop_ms, 100 + 33);
        assert_eq!(clip.video_frames, 4);
        assert_eq!(clip.ambiguous_frames, 2);
        assert!(clip.tags[2].key.is_some() && clip.tags[3].key.is_none());
        assert!(Clip::from_tags(vec![]).is_err());
    }
}
