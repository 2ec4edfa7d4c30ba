//! Encoding presets: what a destination (or an HLS rendition) asks the encoder for.
//!
//! Field names and values follow the seed's `StreamingPresets` table and its
//! "Platform-Specific Streaming Presets" section. [`Preset::validate`] applies the seed's
//! "Custom RTMP (Flexible)" ranges to every preset, with two documented widenings:
//!
//! - **2160p bitrate**: the seed lists "YouTube 4K (2160p30, 15Mbps)" while its flexible
//!   range stops at 10000 kbps, so at 2160p the cap is [`MAX_VIDEO_KBPS_2160P`] (20000 kbps,
//!   the low end of YouTube's 4K60 recommendation). Anything above — e.g. a 4K60 preset at
//!   25000 kbps — is invalid.
//! - **480p**: the seed's flexible range is "720p to 4K", but its preset screen lists "Low
//!   Bandwidth (480p30, 1Mbps)" and the HLS ladder needs a 480p rung. A preset admits 854x480
//!   only when [`Preset::allow_480p`] is set; the "Low Bandwidth" built-in and the ladder's
//!   480p [`Rendition`] set it, a user-created preset may too.
//!
//! Two presets that encode identically share one FFmpeg process: [`Preset::encoding_key`]
//! ignores id, name, platform and flags and keeps only what changes the encoded bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Lowest video bitrate (kbps) a preset may ask for.
pub const MIN_VIDEO_KBPS: u32 = 1000;
/// Highest video bitrate (kbps) below 2160p, from the seed's "1000-10000 kbps range".
pub const MAX_VIDEO_KBPS: u32 = 10_000;
/// Highest video bitrate (kbps) at 2160p (see the module documentation).
pub const MAX_VIDEO_KBPS_2160P: u32 = 20_000;
/// Frame rates the seed offers ("24/30/60 fps options").
pub const FRAME_RATES: [u32; 3] = [24, 30, 60];
/// Keyframe interval range in seconds ("1-4 seconds").
pub const KEYFRAME_INTERVAL_S: std::ops::RangeInclusive<u32> = 1..=4;
/// B-frame range. The seed uses 1 and 2; 4 is a sane upper bound for live encoding.
pub const B_FRAMES: std::ops::RangeInclusive<u32> = 0..=4;
/// Audio bitrate range in kbps ("64-320 kbps").
pub const AUDIO_KBPS: std::ops::RangeInclusive<u32> = 64..=320;
/// Audio sample rates ("44.1/48 kHz").
pub const SAMPLE_RATES: [u32; 2] = [44_100, 48_000];
/// Longest preset name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Resolutions a preset may use: 16:9 from 720p to 4K, plus 480p behind
/// [`Preset::allow_480p`].
pub const RESOLUTIONS: [Resolution; 5] = [
    Resolution::new(854, 480, "480p"),
    Resolution::new(1280, 720, "720p"),
    Resolution::new(1920, 1080, "1080p"),
    Resolution::new(2560, 1440, "1440p"),
    Resolution::new(3840, 2160, "2160p"),
];

/// A named picture size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    pub width: u32,
    pub height: u32,
    pub name: &'static str,
}

impl Resolution {
    const fn new(width: u32, height: u32, name: &'static str) -> Self {
        Self {
            width,
            height,
            name,
        }
    }

    /// The known resolution with this height, if any.
    pub fn by_height(height: u32) -> Option<Resolution> {
        RESOLUTIONS.iter().copied().find(|r| r.height == height)
    }
}

/// Where a preset is meant to stream to. It does not change the encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Youtube,
    X,
    Linkedin,
    Custom,
}

/// Video codec. FFmpeg encoders: `libx264`, `libx265`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    H265,
}

/// Codec profile. H.264 offers all three; H.265 only `main` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Baseline,
    Main,
    High,
}

/// Rate control: constant (what RTMP platforms ask for) or variable (capped) bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateControl {
    Cbr,
    Vbr,
}

/// x264/x265 speed preset: faster means less CPU and lower quality per bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speed {
    Ultrafast,
    Superfast,
    #[default]
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

/// Audio codec. FFmpeg encoders: `aac` (native), `libmp3lame`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    Aac,
    Mp3,
}

macro_rules! names {
    ($ty:ty, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every accepted spelling, as in JSON.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }

        impl FromStr for $ty {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($name => Ok(Self::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(Platform, Youtube => "youtube", X => "x", Linkedin => "linkedin", Custom => "custom");
names!(VideoCodec, H264 => "h264", H265 => "h265");
names!(Profile, Baseline => "baseline", Main => "main", High => "high");
names!(RateControl, Cbr => "cbr", Vbr => "vbr");
names!(
    Speed,
    Ultrafast => "ultrafast",
    Superfast => "superfast",
    Veryfast => "veryfast",
    Faster => "faster",
    Fast => "fast",
    Medium => "medium",
    Slow => "slow",
    Slower => "slower",
    Veryslow => "veryslow",
);
names!(AudioCodec, Aac => "aac", Mp3 => "mp3");

/// Video part of a preset (the seed's `video_settings` and `advanced_settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    pub codec: VideoCodec,
    pub profile: Profile,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Seconds between keyframes; the GOP is `fps * keyframe_interval_s` frames.
    pub keyframe_interval_s: u32,
    pub b_frames: u32,
    pub rate_control: RateControl,
    /// Decoder buffer (VBV) size in kbps; `None` is the seed's "auto-calculated", i.e.
    /// twice the bitrate (what the seed's platform presets use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_kbps: Option<u32>,
    /// Encoder speed preset; defaults to `veryfast`, a common live choice.
    #[serde(default)]
    pub speed: Speed,
}

impl VideoSettings {
    /// Frames between keyframes.
    pub fn gop_frames(&self) -> u32 {
        self.fps.saturating_mul(self.keyframe_interval_s)
    }

    /// The buffer size actually used: the explicit one or twice the bitrate.
    pub fn effective_buffer_kbps(&self) -> u32 {
        self.buffer_kbps
            .unwrap_or_else(|| self.bitrate_kbps.saturating_mul(2))
    }
}

/// Audio part of a preset (the seed's `audio_settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSettings {
    pub codec: AudioCodec,
    pub bitrate_kbps: u32,
    /// 44100 or 48000.
    pub sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: u8,
}

/// An encoding preset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Stable id: `builtin-...` for built-ins; the store assigns ids to user presets.
    pub id: String,
    pub name: String,
    pub platform: Platform,
    /// Shipped with Lunora (clone to change; the API refuses edits and deletes).
    #[serde(default)]
    pub builtin: bool,
    /// Admit 854x480, below the seed's 720p floor (see the module documentation).
    #[serde(default)]
    pub allow_480p: bool,
    pub video: VideoSettings,
    pub audio: AudioSettings,
}

/// One field that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field} must be {allowed} (got {got})")]
pub struct FieldError {
    /// Path of the field, e.g. `video.bitrate_kbps`.
    pub field: &'static str,
    /// What is allowed, in words, e.g. "between 1000 and 10000 kbps".
    pub allowed: String,
    /// The rejected value.
    pub got: String,
}

/// A preset that fails validation: every failing field, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid preset: {}", join(.errors))]
pub struct InvalidPreset {
    pub errors: Vec<FieldError>,
}

impl InvalidPreset {
    /// The field errors' paths, in order.
    pub fn fields(&self) -> Vec<&'static str> {
        self.errors.iter().map(|e| e.field).collect()
    }

    /// The error for `field`, if that field failed.
    pub fn field(&self, field: &str) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.field == field)
    }
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn push(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    allowed: String,
    got: impl fmt::Display,
) {
    errors.push(FieldError {
        field,
        allowed,
        got: got.to_string(),
    });
}

fn one_of<T: fmt::Display>(values: &[T], unit: &str) -> String {
    let words: Vec<String> = values.iter().map(|v| format!("{v}{unit}")).collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl Preset {
    /// Checks every field against the allowed ranges; lists every failing field.
    pub fn validate(&self) -> Result<(), InvalidPreset> {
        let mut errors = Vec::new();
        let v = &self.video;
        let a = &self.audio;

        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || self.name.chars().count() > MAX_NAME_CHARS {
            push(
                &mut errors,
                "name",
                format!("between 1 and {MAX_NAME_CHARS} characters, not blank"),
                format!("{:?}", self.name),
            );
        }

        if v.codec == VideoCodec::H265 && v.profile != Profile::Main {
            push(
                &mut errors,
                "video.profile",
                "main when video.codec is h265 (H.265 has no baseline or high profile)".into(),
                v.profile,
            );
        }

        let resolution =
            Resolution::by_height(v.height).filter(|r| r.height != 480 || self.allow_480p);
        match resolution {
            None => {
                let heights: Vec<u32> = RESOLUTIONS
                    .iter()
                    .filter(|r| r.height != 480 || self.allow_480p)
                    .map(|r| r.height)
                    .collect();
                let floor = if self.allow_480p { "480p" } else { "720p" };
                push(
                    &mut errors,
                    "video.height",
                    format!("{} ({floor} to 4K)", one_of(&heights, "")),
                    v.height,
                );
            }
            Some(r) if r.width != v.width => push(
                &mut errors,
                "video.width",
                format!("{} for {} (16:9)", r.width, r.name),
                v.width,
            ),
            Some(_) => {}
        }

        if !FRAME_RATES.contains(&v.fps) {
            push(
                &mut errors,
                "video.fps",
                one_of(&FRAME_RATES, " fps"),
                v.fps,
            );
        }

        let max_kbps = if v.height >= 2160 {
            MAX_VIDEO_KBPS_2160P
        } else {
            MAX_VIDEO_KBPS
        };
        if !(MIN_VIDEO_KBPS..=max_kbps).contains(&v.bitrate_kbps) {
            let at = if v.height >= 2160 {
                " at 2160p"
            } else {
                " below 2160p"
            };
            push(
                &mut errors,
                "video.bitrate_kbps",
                format!("between {MIN_VIDEO_KBPS} and {max_kbps} kbps{at}"),
                v.bitrate_kbps,
            );
        }

        if !KEYFRAME_INTERVAL_S.contains(&v.keyframe_interval_s) {
            push(
                &mut errors,
                "video.keyframe_interval_s",
                format!(
                    "between {} and {} seconds",
                    KEYFRAME_INTERVAL_S.start(),
                    KEYFRAME_INTERVAL_S.end()
                ),
                v.keyframe_interval_s,
            );
        }

        if v.profile == Profile::Baseline && v.b_frames != 0 {
            push(
                &mut errors,
                "video.b_frames",
                "0 with the baseline profile (baseline has no B-frames)".into(),
                v.b_frames,
            );
        } else if !B_FRAMES.contains(&v.b_frames) {
            push(
                &mut errors,
                "video.b_frames",
                format!("between {} and {}", B_FRAMES.start(), B_FRAMES.end()),
                v.b_frames,
            );
        }

        if let Some(buffer) = v.buffer_kbps {
            let low = v.bitrate_kbps / 2;
            let high = v.bitrate_kbps.saturating_mul(4);
            if !(low..=high).contains(&buffer) {
                push(
                    &mut errors,
                    "video.buffer_kbps",
                    format!(
                        "between half and four times video.bitrate_kbps ({low} to {high} kbps), or absent for twice the bitrate"
                    ),
                    buffer,
                );
            }
        }

        if !AUDIO_KBPS.contains(&a.bitrate_kbps) {
            push(
                &mut errors,
                "audio.bitrate_kbps",
                format!(
                    "between {} and {} kbps",
                    AUDIO_KBPS.start(),
                    AUDIO_KBPS.end()
                ),
                a.bitrate_kbps,
            );
        }
        if !SAMPLE_RATES.contains(&a.sample_rate) {
            push(
                &mut errors,
                "audio.sample_rate",
                "44100 or 48000 Hz".into(),
                a.sample_rate,
            );
        }
        if !(1..=2).contains(&a.channels) {
            push(
                &mut errors,
                "audio.channels",
                "1 (mono) or 2 (stereo)".into(),
                a.channels,
            );
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidPreset { errors })
        }
    }

    /// Parses a preset from JSON and validates it. Unknown enum values (an unknown codec,
    /// say) and malformed fields are reported with their path, like range errors.
    pub fn from_json(value: serde_json::Value) -> Result<Preset, InvalidPreset> {
        let mut errors = Vec::new();
        check_enum(&value, "platform", Platform::NAMES, &mut errors);
        check_enum(&value, "video.codec", VideoCodec::NAMES, &mut errors);
        check_enum(&value, "video.profile", Profile::NAMES, &mut errors);
        check_enum(
            &value,
            "video.rate_control",
            RateControl::NAMES,
            &mut errors,
        );
        check_enum(&value, "video.speed", Speed::NAMES, &mut errors);
        check_enum(&value, "audio.codec", AudioCodec::NAMES, &mut errors);
        if !errors.is_empty() {
            return Err(InvalidPreset { errors });
        }
        let preset: Preset = serde_json::from_value(value).map_err(|e| InvalidPreset {
            errors: vec![FieldError {
                field: "preset",
                allowed: "a preset object with id, name, platform, video and audio".into(),
                got: e.to_string(),
            }],
        })?;
        preset.validate()?;
        Ok(preset)
    }

    /// The canonical description of what this preset makes the encoder produce. Presets
    /// with equal keys are encoded once and shared: id, name, platform, `builtin` and
    /// `allow_480p` do not take part, and an absent buffer size equals its computed value.
    pub fn encoding_key(&self) -> EncodingKey {
        let v = &self.video;
        let a = &self.audio;
        EncodingKey(format!(
            "v={}/{}/{}x{}@{}/{}k/{}/buf{}k/g{}/bf{}/{}|a={}/{}k/{}/{}ch",
            v.codec,
            v.profile,
            v.width,
            v.height,
            v.fps,
            v.bitrate_kbps,
            v.rate_control,
            v.effective_buffer_kbps(),
            v.gop_frames(),
            v.b_frames,
            v.speed,
            a.codec,
            a.bitrate_kbps,
            a.sample_rate,
            a.channels,
        ))
    }
}

fn check_enum(
    value: &serde_json::Value,
    path: &'static str,
    names: &[&str],
    errors: &mut Vec<FieldError>,
) {
    let found = path.split('.').try_fold(value, |v, key| v.get(key));
    let Some(found) = found else { return };
    let ok = found.as_str().is_some_and(|s| names.contains(&s));
    if !ok {
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        push(
            errors,
            path,
            format!("one of {}", one_of(&quoted, "")),
            found,
        );
    }
}

/// Canonical identity of an encode; see [`Preset::encoding_key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncodingKey(String);

impl EncodingKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EncodingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    id: &str,
    name: &str,
    platform: Platform,
    (width, height, fps): (u32, u32, u32),
    (bitrate_kbps, buffer_kbps): (u32, u32),
    profile: Profile,
    b_frames: u32,
    (audio_kbps, sample_rate): (u32, u32),
) -> Preset {
    Preset {
        id: id.into(),
        name: name.into(),
        platform,
        builtin: true,
        allow_480p: height == 480,
        video: VideoSettings {
            codec: VideoCodec::H264,
            profile,
            width,
            height,
            fps,
            bitrate_kbps,
            keyframe_interval_s: 2,
            b_frames,
            rate_control: RateControl::Cbr,
            buffer_kbps: Some(buffer_kbps),
            speed: Speed::Veryfast,
        },
        audio: AudioSettings {
            codec: AudioCodec::Aac,
            bitrate_kbps: audio_kbps,
            sample_rate,
            channels: 2,
        },
    }
}

/// The presets Lunora ships, in the order of the seed's preset screen.
///
/// The first, third and fourth carry the seed's full settings. For the others the seed
/// gives only resolution, frame rate and bitrate; the rest is chosen here: H.264, High
/// profile (Main for 480p), keyframe every 2 s, 2 B-frames (1 for 480p), CBR with a buffer
/// of twice the bitrate, `veryfast`, AAC stereo 48 kHz at 128 kbps (160 kbps for the
/// high-quality custom presets, 96 kbps for "Low Bandwidth").
pub fn builtin_presets() -> Vec<Preset> {
    use Platform::{Custom, Linkedin, Youtube, X};
    use Profile::{High, Main};
    vec![
        builtin(
            "builtin-youtube-1080p30",
            "YouTube HD",
            Youtube,
            (1920, 1080, 30),
            (6000, 12_000),
            High,
            2,
            (128, 48_000),
        ),
        builtin(
            "builtin-youtube-2160p30",
            "YouTube 4K",
            Youtube,
            (3840, 2160, 30),
            (15_000, 30_000),
            High,
            2,
            (128, 48_000),
        ),
        builtin(
            "builtin-x-720p30",
            "X Optimized",
            X,
            (1280, 720, 30),
            (2500, 5000),
            Main,
            1,
            (128, 44_100),
        ),
        builtin(
            "builtin-linkedin-1080p30",
            "LinkedIn HD",
            Linkedin,
            (1920, 1080, 30),
            (4000, 8000),
            High,
            2,
            (128, 48_000),
        ),
        builtin(
            "builtin-linkedin-720p30",
            "LinkedIn Mobile",
            Linkedin,
            (1280, 720, 30),
            (2000, 4000),
            High,
            2,
            (128, 48_000),
        ),
        builtin(
            "builtin-custom-1080p60",
            "High Quality",
            Custom,
            (1920, 1080, 60),
            (8000, 16_000),
            High,
            2,
            (160, 48_000),
        ),
        builtin(
            "builtin-custom-480p30",
            "Low Bandwidth",
            Custom,
            (854, 480, 30),
            (1000, 2000),
            Main,
            1,
            (96, 48_000),
        ),
        builtin(
            "builtin-custom-1440p30",
            "Ultra HD",
            Custom,
            (2560, 1440, 30),
            (10_000, 20_000),
            High,
            2,
            (160, 48_000),
        ),
    ]
}

/// The built-in preset with this id.
pub fn builtin_preset(id: &str) -> Option<Preset> {
    builtin_presets().into_iter().find(|p| p.id == id)
}

/// One rung of an HLS ladder. Renditions are not destination presets: they are encoded
/// for Lunora's own HLS packager, so the 480p rung is allowed (it becomes a preset with
/// [`Preset::allow_480p`]). Frame rate and keyframe interval come from the ladder so every
/// rung has aligned keyframes (HLS segments cut on them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// Short name used in playlists, e.g. `720p`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_kbps: u32,
}

impl Rendition {
    /// The preset that encodes this rung: H.264 (High, Main at 480p), CBR, 2 B-frames,
    /// `veryfast`, AAC stereo 48 kHz.
    pub fn to_preset(&self, fps: u32, keyframe_interval_s: u32) -> Preset {
        let profile = if self.height <= 480 {
            Profile::Main
        } else {
            Profile::High
        };
        Preset {
            id: format!("ladder-{}", self.name),
            name: format!("HLS {}", self.name),
            platform: Platform::Custom,
            builtin: true,
            allow_480p: true,
            video: VideoSettings {
                codec: VideoCodec::H264,
                profile,
                width: self.width,
                height: self.height,
                fps,
                bitrate_kbps: self.video_bitrate_kbps,
                keyframe_interval_s,
                b_frames: 2,
                rate_control: RateControl::Cbr,
                buffer_kbps: None,
                speed: Speed::Veryfast,
            },
            audio: AudioSettings {
                codec: AudioCodec::Aac,
                bitrate_kbps: self.audio_bitrate_kbps,
                sample_rate: 48_000,
                channels: 2,
            },
        }
    }

    /// Validates the rung through the preset it becomes.
    pub fn validate(&self, fps: u32, keyframe_interval_s: u32) -> Result<(), InvalidPreset> {
        self.to_preset(fps, keyframe_interval_s).validate()
    }
}

/// The default HLS ladder (the seed's viewer quality choice "High (1080p) / Medium (720p) /
/// Low (480p)"): 1080p at 5000 kbps, 720p at 2800 kbps, 480p at 1400 kbps, video; AAC at
/// 128/128/96 kbps. Bitrates follow common HLS authoring guidance for 30 fps H.264.
pub fn default_ladder() -> Vec<Rendition> {
    [
        ("1080p", 1920, 1080, 5000, 128),
        ("720p", 1280, 720, 2800, 128),
        ("480p", 854, 480, 1400, 96),
    ]
    .into_iter()
    .map(|(name, width, height, video, audio)| Rendition {
        name: name.into(),
        width,
        height,
        video_bitrate_kbps: video,
        audio_bitrate_kbps: audio,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn youtube() -> Preset {
        builtin_preset("builtin-youtube-1080p30").unwrap()
    }

    fn only_error(p: &Preset) -> FieldError {
        let err = p.validate().unwrap_err();
        assert_eq!(err.errors.len(), 1, "{err}");
        err.errors[0].clone()
    }

    /// Asserts that `set(value)` is valid for each of `ok` and fails on `field` for each
    /// of `bad`.
    fn edges<T: Copy + fmt::Debug>(field: &str, set: impl Fn(&mut Preset, T), ok: &[T], bad: &[T]) {
        for &value in ok {
            let mut p = youtube();
            set(&mut p, value);
            assert_eq!(p.validate(), Ok(()), "{field} = {value:?} should be valid");
        }
        for &value in bad {
            let mut p = youtube();
            set(&mut p, value);
            let err = p
                .validate()
                .expect_err(&format!("{field} = {value:?} should be invalid"));
            assert!(
                err.field(field).is_some(),
                "{field} = {value:?}: expected an error on {field}, got {err}"
            );
        }
    }

    #[test]
    fn builtins_match_the_seed_and_validate() {
        let all = builtin_presets();
        assert_eq!(all.len(), 8);
        for p in &all {
            assert!(p.builtin, "{}", p.id);
            assert!(p.id.starts_with("builtin-"), "{}", p.id);
            p.validate()
                .unwrap_or_else(|e| panic!("{} invalid: {e}", p.id));
        }
        let yt = youtube();
        assert_eq!(
            (yt.video.width, yt.video.height, yt.video.fps),
            (1920, 1080, 30)
        );
        assert_eq!(yt.video.bitrate_kbps, 6000);
        assert_eq!(yt.video.profile, Profile::High);
        assert_eq!(yt.video.keyframe_interval_s, 2);
        assert_eq!(yt.video.gop_frames(), 60);
        assert_eq!(yt.video.b_frames, 2);
        assert_eq!(yt.video.rate_control, RateControl::Cbr);
        assert_eq!(yt.video.effective_buffer_kbps(), 12_000);
        assert_eq!(
            (
                yt.audio.codec,
                yt.audio.bitrate_kbps,
                yt.audio.sample_rate,
                yt.audio.channels
            ),
            (AudioCodec::Aac, 128, 48_000, 2)
        );
        let x = builtin_preset("builtin-x-720p30").unwrap();
        assert_eq!((x.video.width, x.video.height), (1280, 720));
        assert_eq!(
            (x.video.bitrate_kbps, x.video.profile),
            (2500, Profile::Main)
        );
        assert_eq!(
            (x.video.b_frames, x.video.effective_buffer_kbps()),
            (1, 5000)
        );
        assert_eq!(x.audio.sample_rate, 44_100);
        let li = builtin_preset("builtin-linkedin-1080p30").unwrap();
        assert_eq!(
            (li.video.bitrate_kbps, li.video.effective_buffer_kbps()),
            (4000, 8000)
        );
        let uhd = builtin_preset("builtin-youtube-2160p30").unwrap();
        assert_eq!((uhd.video.height, uhd.video.bitrate_kbps), (2160, 15_000));
        let ids: std::collections::HashSet<_> = all.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), all.len(), "ids are unique");
    }

    #[test]
    fn serde_round_trip_uses_snake_case_spellings() {
        let yt = youtube();
        let json = serde_json::to_value(&yt).unwrap();
        assert_eq!(json["platform"], "youtube");
        assert_eq!(json["video"]["codec"], "h264");
        assert_eq!(json["video"]["profile"], "high");
        assert_eq!(json["video"]["rate_control"], "cbr");
        assert_eq!(json["video"]["speed"], "veryfast");
        assert_eq!(json["audio"]["codec"], "aac");
        let back: Preset = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, yt);
        assert_eq!(Preset::from_json(json).unwrap(), yt);
    }

    #[test]
    fn video_bitrate_edges() {
        edges(
            "video.bitrate_kbps",
            |p, v| {
                p.video.bitrate_kbps = v;
                p.video.buffer_kbps = None;
            },
            &[1000, 1001, 9999, 10_000],
            &[0, 999, 10_001, 20_000],
        );
        let mut p = youtube();
        p.video.bitrate_kbps = 10_001;
        p.video.buffer_kbps = None;
        let e = only_error(&p);
        assert_eq!(e.allowed, "between 1000 and 10000 kbps below 2160p");
        assert_eq!(
            e.to_string(),
            "video.bitrate_kbps must be between 1000 and 10000 kbps below 2160p (got 10001)"
        );
    }

    #[test]
    fn uhd_bitrate_cap_and_4k60_over_cap() {
        let base = builtin_preset("builtin-youtube-2160p30").unwrap();
        for (fps, kbps, ok) in [
            (30, 20_000, true),
            (60, 20_000, true),
            (30, 20_001, false),
            (60, 20_001, false),
            (60, 25_000, false),
            (60, 999, false),
        ] {
            let mut p = base.clone();
            p.video.fps = fps;
            p.video.bitrate_kbps = kbps;
            p.video.buffer_kbps = None;
            match p.validate() {
                Ok(()) => assert!(ok, "2160p{fps} at {kbps} should be invalid"),
                Err(e) => {
                    assert!(!ok, "2160p{fps} at {kbps}: {e}");
                    let f = e.field("video.bitrate_kbps").unwrap();
                    assert_eq!(f.allowed, "between 1000 and 20000 kbps at 2160p");
                }
            }
        }
    }

    #[test]
    fn resolution_edges() {
        edges(
            "video.height",
            |p, (w, h)| {
                p.video.width = w;
                p.video.height = h;
            },
            &[(1280, 720), (1920, 1080), (2560, 1440), (3840, 2160)],
            &[
                (1280, 719),
                (1280, 721),
                (3840, 2159),
                (3840, 2161),
                (7680, 4320),
                (854, 480),
                (640, 360),
            ],
        );
        let mut p = youtube();
        p.video.height = 719;
        let e = only_error(&p);
        assert_eq!(e.allowed, "720, 1080, 1440 or 2160 (720p to 4K)");

        let mut p = youtube();
        p.video.width = 1280;
        let e = only_error(&p);
        assert_eq!(e.field, "video.width");
        assert_eq!(e.allowed, "1920 for 1080p (16:9)");
    }

    #[test]
    fn allow_480p_admits_only_854x480() {
        let mut p = youtube();
        p.video.width = 854;
        p.video.height = 480;
        p.video.bitrate_kbps = 1000;
        p.video.buffer_kbps = None;
        assert_eq!(only_error(&p).field, "video.height");
        p.allow_480p = true;
        assert_eq!(p.validate(), Ok(()));
        p.video.height = 360;
        p.video.width = 640;
        let e = only_error(&p);
        assert_eq!(e.allowed, "480, 720, 1080, 1440 or 2160 (480p to 4K)");
    }

    #[test]
    fn fps_edges() {
        edges(
            "video.fps",
            |p, v| p.video.fps = v,
            &[24, 30, 60],
            &[0, 23, 25, 29, 31, 50, 59, 61, 120],
        );
        let mut p = youtube();
        p.video.fps = 25;
        assert_eq!(only_error(&p).allowed, "24 fps, 30 fps or 60 fps");
    }

    #[test]
    fn keyframe_interval_edges() {
        edges(
            "video.keyframe_interval_s",
            |p, v| p.video.keyframe_interval_s = v,
            &[1, 2, 3, 4],
            &[0, 5, 10],
        );
    }

    #[test]
    fn b_frames_edges_and_baseline() {
        edges(
            "video.b_frames",
            |p, v| p.video.b_frames = v,
            &[0, 1, 4],
            &[5, 16],
        );
        let mut p = youtube();
        p.video.profile = Profile::Baseline;
        let e = only_error(&p);
        assert_eq!(e.field, "video.b_frames");
        assert!(e.allowed.contains("baseline"), "{}", e.allowed);
        p.video.b_frames = 0;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn h265_requires_main_profile() {
        let mut p = youtube();
        p.video.codec = VideoCodec::H265;
        assert_eq!(only_error(&p).field, "video.profile");
        p.video.profile = Profile::Main;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn buffer_edges() {
        // bitrate 6000: half is 3000, four times is 24000.
        edges(
            "video.buffer_kbps",
            |p, v| p.video.buffer_kbps = Some(v),
            &[3000, 12_000, 24_000],
            &[0, 2999, 24_001],
        );
    }

    #[test]
    fn audio_edges() {
        edges(
            "audio.bitrate_kbps",
            |p, v| p.audio.bitrate_kbps = v,
            &[64, 65, 319, 320],
            &[0, 63, 321],
        );
        edges(
            "audio.sample_rate",
            |p, v| p.audio.sample_rate = v,
            &[44_100, 48_000],
            &[0, 22_050, 44_099, 48_001, 96_000],
        );
        edges(
            "audio.channels",
            |p, v| p.audio.channels = v,
            &[1, 2],
            &[0, 3, 6],
        );
        let mut p = youtube();
        p.audio.codec = AudioCodec::Mp3;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn name_edges() {
        edges(
            "name",
            |p, v: usize| p.name = "n".repeat(v),
            &[1, MAX_NAME_CHARS],
            &[0, MAX_NAME_CHARS + 1],
        );
        let mut p = youtube();
        p.name = "   ".into();
        assert_eq!(only_error(&p).field, "name");
    }

    #[test]
    fn every_failing_field_is_listed() {
        let mut p = youtube();
        p.video.fps = 25;
        p.audio.channels = 6;
        p.video.bitrate_kbps = 50;
        p.video.buffer_kbps = None;
        let e = p.validate().unwrap_err();
        assert_eq!(
            e.fields(),
            ["video.fps", "video.bitrate_kbps", "audio.channels"]
        );
    }

    #[test]
    fn from_json_names_the_field_of_an_unknown_codec() {
        let mut json = serde_json::to_value(youtube()).unwrap();
        json["video"]["codec"] = "vp9".into();
        json["audio"]["codec"] = "opus".into();
        let e = Preset::from_json(json).unwrap_err();
        assert_eq!(e.fields(), ["video.codec", "audio.codec"]);
        assert_eq!(
            e.errors[0].to_string(),
            "video.codec must be one of \"h264\" or \"h265\" (got \"vp9\")"
        );

        let mut json = serde_json::to_value(youtube()).unwrap();
        json["video"]["profile"] = 3.into();
        assert_eq!(
            Preset::from_json(json).unwrap_err().fields(),
            ["video.profile"]
        );

        let mut json = serde_json::to_value(youtube()).unwrap();
        json["video"]["fps"] = 25.into();
        assert_eq!(Preset::from_json(json).unwrap_err().fields(), ["video.fps"]);

        let mut json = serde_json::to_value(youtube()).unwrap();
        json["video"]["bogus"] = 1.into();
        let e = Preset::from_json(json).unwrap_err();
        assert_eq!(e.fields(), ["preset"]);
        assert!(e.errors[0].got.contains("bogus"), "{e}");
    }

    #[test]
    fn encoding_key_ignores_identity_and_resolves_auto_buffer() {
        let a = youtube();
        let mut b = a.clone();
        b.id = "user-1".into();
        b.name = "My YouTube".into();
        b.platform = Platform::Custom;
        b.builtin = false;
        b.allow_480p = true;
        b.video.buffer_kbps = None; // auto = 2 x 6000 = 12000, as the built-in says
        assert_eq!(a.encoding_key(), b.encoding_key());
        assert_eq!(
            a.encoding_key().as_str(),
            "v=h264/high/1920x1080@30/6000k/cbr/buf12000k/g60/bf2/veryfast|a=aac/128k/48000/2ch"
        );

        let changes: [fn(&mut Preset); 8] = [
            |p| p.video.bitrate_kbps = 6001,
            |p| p.video.fps = 60,
            |p| p.video.keyframe_interval_s = 4,
            |p| p.video.b_frames = 0,
            |p| p.video.speed = Speed::Fast,
            |p| p.video.rate_control = RateControl::Vbr,
            |p| p.audio.sample_rate = 44_100,
            |p| p.audio.channels = 1,
        ];
        for change in changes {
            let mut c = a.clone();
            change(&mut c);
            assert_ne!(a.encoding_key(), c.encoding_key(), "{c:?}");
        }
        // LinkedIn HD and YouTube HD differ only in bitrate: two encodes.
        let li = builtin_preset("builtin-linkedin-1080p30").unwrap();
        assert_ne!(a.encoding_key(), li.encoding_key());
    }

    #[test]
    fn default_ladder_renditions_validate() {
        let ladder = default_ladder();
        let names: Vec<_> = ladder.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["1080p", "720p", "480p"]);
        for r in &ladder {
            r.validate(30, 2).unwrap();
            let p = r.to_preset(30, 2);
            assert_eq!(p.video.gop_frames(), 60);
        }
        let mut small = ladder[2].clone();
        small.height = 360;
        small.width = 640;
        assert_eq!(
            small.validate(30, 2).unwrap_err().fields(),
            ["video.height"]
        );
    }
}
