//! FFmpeg command lines for a preset, and whether a source needs FFmpeg at all.
//!
//! Every encode reads FLV from stdin and writes FLV to stdout; the engine feeds it tags
//! from the channel's bus and reads the rendition back. Progress goes to stderr as
//! `key=value` lines (`-progress pipe:2 -nostats`), and log lines carry their level
//! (`-loglevel level+warning`) so [`crate::progress::ProgressParser`] can tell errors apart.
//!
//! Timestamps are kept (`-copyts`): the rendition is on the channel's own timeline, so a
//! restarted FFmpeg continues where the last one stopped and renditions of one channel
//! share their clock. Input probing is short (`-probesize 256k -analyzeduration 0.5 s`):
//! the engine sends both codec configurations first, so FFmpeg needs no more to start, and
//! the first encoded frame comes about a second sooner than with FFmpeg's defaults.

use serde::{Deserialize, Serialize};

use crate::preset::{AudioCodec, Preset, Profile, RateControl, VideoCodec};

/// The FFmpeg encoder for a video codec.
pub fn video_encoder(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "libx264",
        VideoCodec::H265 => "libx265",
    }
}

/// The FFmpeg encoder for an audio codec.
pub fn audio_encoder(codec: AudioCodec) -> &'static str {
    match codec {
        AudioCodec::Aac => "aac",
        AudioCodec::Mp3 => "libmp3lame",
    }
}

/// The video filter chain: fit inside the preset's frame keeping the aspect ratio, pad
/// the rest black (centred), square pixels, then constant frame rate. The `fps` filter
/// makes the output rate exact on every FFmpeg version (`-r` alone on an FLV output lets
/// FFmpeg 5 keep a variable rate).
pub fn video_filter(preset: &Preset) -> String {
    let v = &preset.video;
    let (w, h) = (v.width, v.height);
    format!(
        "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,\
         pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={}",
        v.fps
    )
}

/// The full argument list (without the program name) that encodes FLV on stdin into FLV
/// on stdout with `preset`. The preset is taken as given: validate it first where it comes
/// from a person.
///
/// Rate control: CBR is `-b:v = -minrate = -maxrate`, `-bufsize` the preset's buffer, and
/// for x264 `nal-hrd=cbr` (filler data, what RTMP platforms check); for x265 `strict-cbr`.
/// VBR is an average bitrate capped at 1.5 times it, with the same buffer.
/// Keyframes: `-g` = `-keyint_min` = fps x interval and no scene-cut keyframes, so every
/// GOP has the same length and renditions of one channel stay aligned; x265 also gets a
/// closed GOP (its default is open, which players cannot join at).
pub fn ffmpeg_args(preset: &Preset) -> Vec<String> {
    let v = &preset.video;
    let a = &preset.audio;
    let kbps = |n: u32| format!("{n}k");
    let gop = v.gop_frames().to_string();

    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "level+warning",
        "-nostats",
        "-progress",
        "pipe:2",
        "-copyts",
        "-probesize",
        "262144",
        "-analyzeduration",
        "500000",
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));

    push(&["-vf", &video_filter(preset), "-r", &v.fps.to_string()]);
    push(&[
        "-c:v",
        video_encoder(v.codec),
        "-preset",
        v.speed.as_str(),
        "-profile:v",
        profile_name(v.codec, v.profile),
        "-pix_fmt",
        "yuv420p",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-bf",
        &v.b_frames.to_string(),
    ]);

    let buffer = kbps(v.effective_buffer_kbps());
    match v.rate_control {
        RateControl::Cbr => push(&[
            "-b:v",
            &kbps(v.bitrate_kbps),
            "-minrate",
            &kbps(v.bitrate_kbps),
            "-maxrate",
            &kbps(v.bitrate_kbps),
            "-bufsize",
            &buffer,
        ]),
        RateControl::Vbr => push(&[
            "-b:v",
            &kbps(v.bitrate_kbps),
            "-maxrate",
            &kbps(v.bitrate_kbps.saturating_mul(3) / 2),
            "-bufsize",
            &buffer,
        ]),
    }
    match (v.codec, v.rate_control) {
        (VideoCodec::H264, RateControl::Cbr) => push(&["-x264-params", "nal-hrd=cbr"]),
        (VideoCodec::H264, RateControl::Vbr) => {}
        (VideoCodec::H265, rc) => {
            let mut params = format!(
                "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:bframes={}",
                v.b_frames
            );
            if rc == RateControl::Cbr {
                params.push_str(":strict-cbr=1");
            }
            push(&["-x265-params", &params]);
        }
    }

    push(&[
        "-c:a",
        audio_encoder(a.codec),
        "-b:a",
        &kbps(a.bitrate_kbps),
        "-ar",
        &a.sample_rate.to_string(),
        "-ac",
        &a.channels.to_string(),
    ]);

    push(&[
        "-flush_packets",
        "1",
        "-f",
        "flv",
        "-flvflags",
        "no_duration_filesize",
        "pipe:1",
    ]);
    args
}

fn profile_name(codec: VideoCodec, profile: Profile) -> &'static str {
    match (codec, profile) {
        // x265 knows only main/main10/...; validation refuses the others for H.265.
        (VideoCodec::H265, _) => "main",
        (VideoCodec::H264, p) => p.as_str(),
    }
}

/// What the engine knows about a source's media (from its codec configuration records and
/// measurements). Unknown values are `None` and never count as satisfying a preset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub video_codec: Option<VideoCodec>,
    pub video_profile: Option<Profile>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    /// Measured average video bitrate.
    pub video_bitrate_kbps: Option<u32>,
    /// Longest measured distance between keyframes.
    pub keyframe_interval_s: Option<f64>,
    pub audio_codec: Option<AudioCodec>,
    pub audio_bitrate_kbps: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
}

/// One reason a source does not satisfy a preset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The preset field that is not met, e.g. `video.height`.
    pub field: &'static str,
    pub reason: String,
}

/// Whether a destination can take the source as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Passthrough {
    /// The source already meets the preset: relay it, no FFmpeg.
    Satisfied,
    /// Transcode, for these reasons.
    Transcode { mismatches: Vec<Mismatch> },
}

impl Passthrough {
    pub fn is_satisfied(&self) -> bool {
        matches!(self, Passthrough::Satisfied)
    }
}

/// Measured bitrates may exceed the preset by this fraction and still pass: measurements
/// over a few seconds fluctuate around an encoder's CBR target.
pub const BITRATE_TOLERANCE: f64 = 0.10;
/// Frame rates within this fraction count as equal (29.97 passes for 30).
pub const FPS_TOLERANCE: f64 = 0.01;
/// Keyframe intervals may exceed the preset's by this many seconds (timestamp jitter).
pub const KEYFRAME_TOLERANCE_S: f64 = 0.1;

/// Decides whether `source` already satisfies `preset`: same codecs, same picture size,
/// same frame rate, a profile no higher than the preset's, keyframes at least as often,
/// bitrates no higher (within [`BITRATE_TOLERANCE`]), same audio rate and channels.
/// B-frames and rate-control mode are not checked (platforms accept either).
pub fn passthrough(preset: &Preset, source: &SourceInfo) -> Passthrough {
    let v = &preset.video;
    let a = &preset.audio;
    let mut out = Vec::new();
    let mut miss = |field: &'static str, want: String, got: Option<String>| {
        out.push(Mismatch {
            field,
            reason: match got {
                Some(got) => format!("preset wants {want}, source has {got}"),
                None => format!("preset wants {want}, source's is unknown"),
            },
        });
    };
    let within =
        |got: u32, want: u32| f64::from(got) <= f64::from(want) * (1.0 + BITRATE_TOLERANCE);

    if source.video_codec != Some(v.codec) {
        miss(
            "video.codec",
            v.codec.to_string(),
            source.video_codec.map(|c| c.to_string()),
        );
    }
    if source.video_profile.is_none_or(|p| p > v.profile) {
        miss(
            "video.profile",
            format!("{} or lower", v.profile),
            source.video_profile.map(|p| p.to_string()),
        );
    }
    if source.width != Some(v.width) || source.height != Some(v.height) {
        let got = source
            .width
            .zip(source.height)
            .map(|(w, h)| format!("{w}x{h}"));
        miss("video.height", format!("{}x{}", v.width, v.height), got);
    }
    let fps = f64::from(v.fps);
    if !source
        .fps
        .is_some_and(|f| (f - fps).abs() <= fps * FPS_TOLERANCE)
    {
        miss(
            "video.fps",
            format!("{} fps", v.fps),
            source.fps.map(|f| format!("{f} fps")),
        );
    }
    if !source
        .video_bitrate_kbps
        .is_some_and(|k| within(k, v.bitrate_kbps))
    {
        miss(
            "video.bitrate_kbps",
            format!("at most {} kbps", v.bitrate_kbps),
            source.video_bitrate_kbps.map(|k| format!("{k} kbps")),
        );
    }
    if !source
        .keyframe_interval_s
        .is_some_and(|k| k <= f64::from(v.keyframe_interval_s) + KEYFRAME_TOLERANCE_S)
    {
        miss(
            "video.keyframe_interval_s",
            format!("a keyframe at least every {} s", v.keyframe_interval_s),
            source.keyframe_interval_s.map(|k| format!("{k} s")),
        );
    }
    if source.audio_codec != Some(a.codec) {
        miss(
            "audio.codec",
            a.codec.to_string(),
            source.audio_codec.map(|c| c.to_string()),
        );
    }
    if !source
        .audio_bitrate_kbps
        .is_some_and(|k| within(k, a.bitrate_kbps))
    {
        miss(
            "audio.bitrate_kbps",
            format!("at most {} kbps", a.bitrate_kbps),
            source.audio_bitrate_kbps.map(|k| format!("{k} kbps")),
        );
    }
    if source.sample_rate != Some(a.sample_rate) {
        miss(
            "audio.sample_rate",
            format!("{} Hz", a.sample_rate),
            source.sample_rate.map(|r| format!("{r} Hz")),
        );
    }
    if source.channels != Some(a.channels) {
        miss(
            "audio.channels",
            format!("{} channel(s)", a.channels),
            source.channels.map(|c| format!("{c} channel(s)")),
        );
    }

    if out.is_empty() {
        Passthrough::Satisfied
    } else {
        Passthrough::Transcode { mismatches: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{builtin_preset, builtin_presets};

    /// The value after `flag` (the first occurrence).
    fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    }

    #[test]
    fn youtube_hd_full_command_line() {
        let p = builtin_preset("builtin-youtube-1080p30").unwrap();
        assert_eq!(
            ffmpeg_args(&p).join(" "),
            "-hide_banner -nostdin -loglevel level+warning -nostats -progress pipe:2 \
             -copyts -probesize 262144 -analyzeduration 500000 -f flv -i pipe:0 -map 0:v:0 -map 0:a:0? \
             -vf scale=1920:1080:force_original_aspect_ratio=decrease:force_divisible_by=2,\
             pad=1920:1080:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps=30 -r 30 \
             -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
             -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 \
             -b:v 6000k -minrate 6000k -maxrate 6000k -bufsize 12000k -x264-params nal-hrd=cbr \
             -c:a aac -b:a 128k -ar 48000 -ac 2 \
             -flush_packets 1 -f flv -flvflags no_duration_filesize pipe:1"
        );
    }

    #[test]
    fn every_builtin_preset_snapshot() {
        // id, size, -r, profile, -g, -bf, -b:v, -bufsize, -b:a, -ar
        let want = [
            (
                "builtin-youtube-1080p30",
                "1920:1080",
                "30",
                "high",
                "60",
                "2",
                "6000k",
                "12000k",
                "128k",
                "48000",
            ),
            (
                "builtin-youtube-2160p30",
                "3840:2160",
                "30",
                "high",
                "60",
                "2",
                "15000k",
                "30000k",
                "128k",
                "48000",
            ),
            (
                "builtin-x-720p30",
                "1280:720",
                "30",
                "main",
                "60",
                "1",
                "2500k",
                "5000k",
                "128k",
                "44100",
            ),
            (
                "builtin-linkedin-1080p30",
                "1920:1080",
                "30",
                "high",
                "60",
                "2",
                "4000k",
                "8000k",
                "128k",
                "48000",
            ),
            (
                "builtin-linkedin-720p30",
                "1280:720",
                "30",
                "high",
                "60",
                "2",
                "2000k",
                "4000k",
                "128k",
                "48000",
            ),
            (
                "builtin-custom-1080p60",
                "1920:1080",
                "60",
                "high",
                "120",
                "2",
                "8000k",
                "16000k",
                "160k",
                "48000",
            ),
            (
                "builtin-custom-480p30",
                "854:480",
                "30",
                "main",
                "60",
                "1",
                "1000k",
                "2000k",
                "96k",
                "48000",
            ),
            (
                "builtin-custom-1440p30",
                "2560:1440",
                "30",
                "high",
                "60",
                "2",
                "10000k",
                "20000k",
                "160k",
                "48000",
            ),
        ];
        let presets = builtin_presets();
        assert_eq!(presets.len(), want.len());
        for (p, w) in presets.iter().zip(want) {
            assert_eq!(p.id, w.0);
            let args = ffmpeg_args(p);
            let vf = flag(&args, "-vf").unwrap();
            assert!(vf.starts_with(&format!("scale={}:", w.1)), "{}: {vf}", p.id);
            assert!(vf.contains(&format!("pad={}:", w.1)), "{}: {vf}", p.id);
            assert!(vf.ends_with(&format!("fps={}", w.2)), "{}: {vf}", p.id);
            assert_eq!(flag(&args, "-r"), Some(w.2), "{}", p.id);
            assert_eq!(flag(&args, "-c:v"), Some("libx264"), "{}", p.id);
            assert_eq!(flag(&args, "-profile:v"), Some(w.3), "{}", p.id);
            assert_eq!(flag(&args, "-g"), Some(w.4), "{}", p.id);
            assert_eq!(flag(&args, "-keyint_min"), Some(w.4), "{}", p.id);
            assert_eq!(flag(&args, "-sc_threshold"), Some("0"), "{}", p.id);
            assert_eq!(flag(&args, "-bf"), Some(w.5), "{}", p.id);
            assert_eq!(flag(&args, "-b:v"), Some(w.6), "{}", p.id);
            assert_eq!(flag(&args, "-minrate"), Some(w.6), "{}", p.id);
            assert_eq!(flag(&args, "-maxrate"), Some(w.6), "{}", p.id);
            assert_eq!(flag(&args, "-bufsize"), Some(w.7), "{}", p.id);
            assert_eq!(flag(&args, "-x264-params"), Some("nal-hrd=cbr"), "{}", p.id);
            assert_eq!(flag(&args, "-c:a"), Some("aac"), "{}", p.id);
            assert_eq!(flag(&args, "-b:a"), Some(w.8), "{}", p.id);
            assert_eq!(flag(&args, "-ar"), Some(w.9), "{}", p.id);
            assert_eq!(flag(&args, "-ac"), Some("2"), "{}", p.id);
            assert_eq!(flag(&args, "-i"), Some("pipe:0"), "{}", p.id);
            assert_eq!(args.last().map(String::as_str), Some("pipe:1"));
            assert_eq!(flag(&args, "-progress"), Some("pipe:2"));
        }
    }

    #[test]
    fn h265_vbr_mp3_mono() {
        let mut p = builtin_preset("builtin-x-720p30").unwrap();
        p.video.codec = VideoCodec::H265;
        p.video.rate_control = RateControl::Vbr;
        p.video.keyframe_interval_s = 4;
        p.audio.codec = AudioCodec::Mp3;
        p.audio.channels = 1;
        let args = ffmpeg_args(&p);
        assert_eq!(flag(&args, "-c:v"), Some("libx265"));
        assert_eq!(flag(&args, "-profile:v"), Some("main"));
        assert_eq!(flag(&args, "-g"), Some("120"));
        assert_eq!(flag(&args, "-b:v"), Some("2500k"));
        assert_eq!(flag(&args, "-minrate"), None);
        assert_eq!(flag(&args, "-maxrate"), Some("3750k"));
        assert_eq!(flag(&args, "-x264-params"), None);
        assert_eq!(
            flag(&args, "-x265-params"),
            Some("keyint=120:min-keyint=120:scenecut=0:open-gop=0:bframes=1")
        );
        assert_eq!(flag(&args, "-c:a"), Some("libmp3lame"));
        assert_eq!(flag(&args, "-ac"), Some("1"));
        p.video.rate_control = RateControl::Cbr;
        let args = ffmpeg_args(&p);
        assert!(flag(&args, "-x265-params")
            .unwrap()
            .ends_with(":strict-cbr=1"));
        assert_eq!(flag(&args, "-minrate"), Some("2500k"));
    }

    fn matching_source(p: &Preset) -> SourceInfo {
        SourceInfo {
            video_codec: Some(p.video.codec),
            video_profile: Some(p.video.profile),
            width: Some(p.video.width),
            height: Some(p.video.height),
            fps: Some(f64::from(p.video.fps)),
            video_bitrate_kbps: Some(p.video.bitrate_kbps),
            keyframe_interval_s: Some(f64::from(p.video.keyframe_interval_s)),
            audio_codec: Some(p.audio.codec),
            audio_bitrate_kbps: Some(p.audio.bitrate_kbps),
            sample_rate: Some(p.audio.sample_rate),
            channels: Some(p.audio.channels),
        }
    }

    fn fields(d: &Passthrough) -> Vec<&'static str> {
        match d {
            Passthrough::Satisfied => vec![],
            Passthrough::Transcode { mismatches } => mismatches.iter().map(|m| m.field).collect(),
        }
    }

    #[test]
    fn passthrough_when_source_matches() {
        let p = builtin_preset("builtin-youtube-1080p30").unwrap();
        let mut s = matching_source(&p);
        assert!(passthrough(&p, &s).is_satisfied());
        s.fps = Some(29.97);
        s.video_bitrate_kbps = Some(6500); // within 10 %
        s.video_profile = Some(Profile::Main); // lower profile is fine
        s.keyframe_interval_s = Some(1.0); // more keyframes is fine
        s.audio_bitrate_kbps = Some(96);
        assert_eq!(passthrough(&p, &s), Passthrough::Satisfied);
    }

    #[test]
    fn transcode_when_anything_differs_or_is_unknown() {
        let p = builtin_preset("builtin-youtube-1080p30").unwrap();
        type Change = fn(&mut SourceInfo);
        let cases: [(Change, &str); 12] = [
            (|s| s.video_codec = Some(VideoCodec::H265), "video.codec"),
            (|s| s.video_profile = None, "video.profile"),
            (|s| s.width = Some(1280), "video.height"),
            (|s| s.fps = Some(60.0), "video.fps"),
            (|s| s.fps = Some(25.0), "video.fps"),
            (|s| s.video_bitrate_kbps = Some(6601), "video.bitrate_kbps"),
            (
                |s| s.keyframe_interval_s = Some(4.0),
                "video.keyframe_interval_s",
            ),
            (
                |s| s.keyframe_interval_s = None,
                "video.keyframe_interval_s",
            ),
            (|s| s.audio_codec = Some(AudioCodec::Mp3), "audio.codec"),
            (|s| s.audio_bitrate_kbps = Some(320), "audio.bitrate_kbps"),
            (|s| s.sample_rate = Some(44_100), "audio.sample_rate"),
            (|s| s.channels = Some(1), "audio.channels"),
        ];
        for (change, field) in cases {
            let mut s = matching_source(&p);
            change(&mut s);
            assert_eq!(fields(&passthrough(&p, &s)), [field]);
        }
        let unknown = passthrough(&p, &SourceInfo::default());
        assert_eq!(fields(&unknown).len(), 10);
        let mut s = matching_source(&p);
        s.video_profile = Some(Profile::High);
        let x = builtin_preset("builtin-x-720p30").unwrap();
        s.width = Some(1280);
        s.height = Some(720);
        s.video_bitrate_kbps = Some(2500);
        s.sample_rate = Some(44_100);
        // X wants Main: a High-profile source is transcoded.
        assert_eq!(fields(&passthrough(&x, &s)), ["video.profile"]);
    }
}
