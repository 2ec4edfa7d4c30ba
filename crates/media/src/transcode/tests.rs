//! Renditions against real processes: FFmpeg makes the source once; the "encoder" is a
//! shell script that copies stdin to stdout (so the rendition must equal its input), which
//! tests feeding, parsing, restarts, sharing and failure without spending CPU on encoding.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lunora_transcode::builtin_preset;

use super::*;
use crate::channel::{AttachMode, InputHandle};

/// 3 s of 320x240 30 fps H.264 Baseline (keyframe every 1 s, about 300 kbit/s) and 48 kHz
/// stereo AAC, as frames.
fn source_frames() -> &'static Vec<Frame> {
    static FRAMES: OnceLock<Vec<Frame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lunora-rendition-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("source.flv");
        let out = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=30",
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args([
                "-t",
                "3",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-profile:v",
                "baseline",
            ])
            .args(["-g", "30", "-pix_fmt", "yuv420p", "-b:v", "300k"])
            .args(["-c:a", "aac", "-ac", "2", "-b:a", "96k", "-f", "flv"])
            .arg(&path)
            .output()
            .expect("ffmpeg runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut reader = FlvReader::new();
        reader.push(&std::fs::read(&path).unwrap());
        let mut frames = Vec::new();
        while let Some(tag) = reader.next_tag().unwrap() {
            let frame = match tag.tag_type {
                TagType::Video => frame_from_video(tag.timestamp, tag.data).unwrap(),
                TagType::Audio => frame_from_audio(tag.timestamp, tag.data).unwrap(),
                _ => None,
            };
            frames.extend(frame);
        }
        frames
    })
}

/// An executable that copies stdin to stdout whatever its arguments.
fn fake_ffmpeg() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("lunora-fake-ffmpeg-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"#!/bin/sh\nexec cat\n").unwrap();
        drop(f);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
    .clone()
}

fn engine_with(program: &Path) -> Engine {
    let engine = Engine::default();
    engine.set_transcode_config(TranscodeConfig {
        program: program.to_path_buf(),
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: 0.0,
        },
        ..TranscodeConfig::default()
    });
    engine
}

/// Sends `frames` (source timestamps shifted by `offset_ms`), paced at `speed` times real
/// time (0: as fast as possible).
async fn publish(input: &InputHandle, frames: &[Frame], offset_ms: i64, speed: f64) {
    let start = Instant::now();
    for f in frames {
        if speed > 0.0 && !f.config {
            let at = Duration::from_secs_f64(f.dts as f64 / TIMESCALE as f64 / speed);
            tokio::time::sleep_until(start + at).await;
        }
        let shift = offset_ms * 90;
        input
            .send(f.with_timestamps(f.dts + shift, f.pts + shift))
            .unwrap();
    }
}

async fn recv_within(sub: &mut Subscription, within: Duration) -> Option<Arc<Frame>> {
    tokio::time::timeout(within, sub.recv())
        .await
        .ok()
        .flatten()
}

async fn wait_status(
    r: &Rendition,
    within: Duration,
    f: impl Fn(&RenditionStatus) -> bool,
) -> RenditionStatus {
    let mut rx = r.watch_status();
    let got = match tokio::time::timeout(within, rx.wait_for(|s| f(s))).await {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("status never matched: {:?}", r.status()),
    };
    got
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn probe_measures_the_source() {
    let mut probe = SourceProbe::default();
    for f in source_frames() {
        probe.observe(&Arc::new(f.clone()));
    }
    assert!(probe.ready());
    let info = probe.info();
    assert_eq!(info.video_codec, Some(VideoCodec::H264));
    assert_eq!(info.video_profile, Some(Profile::Baseline));
    assert_eq!((info.width, info.height), (Some(320), Some(240)));
    let fps = info.fps.unwrap();
    assert!((fps - 30.0).abs() < 0.5, "{fps}");
    let kf = info.keyframe_interval_s.unwrap();
    assert!((kf - 1.0).abs() < 0.05, "{kf}");
    let vk = info.video_bitrate_kbps.unwrap();
    assert!((150..600).contains(&vk), "{vk} kbit/s");
    let ak = info.audio_bitrate_kbps.unwrap();
    assert!((60..130).contains(&ak), "{ak} kbit/s");
    assert_eq!((info.sample_rate, info.channels), (Some(48_000), Some(2)));
    assert_eq!(info.audio_codec, Some(AudioCodec::Aac));

    // One keyframe is not enough to know the keyframe interval.
    let mut short = SourceProbe::default();
    for f in source_frames().iter().take_while(|f| f.dts < TIMESCALE) {
        short.observe(&Arc::new(f.clone()));
    }
    assert!(!short.ready());
    assert_eq!(short.info().keyframe_interval_s, None);
}

#[test]
fn rebaser_keeps_each_track_going_forward_across_processes() {
    let v = |dts: i64| Frame::video(Codec::H264, true, dts, dts + 3000, Bytes::from_static(b"v"));
    let a = |dts: i64| Frame::audio(dts, Bytes::from_static(b"a"));
    let mut r = Rebaser::default();
    assert_eq!(r.map(&v(900_000)), (900_000, 903_000));
    assert_eq!(r.map(&a(900_500)), (900_500, 900_500));
    // A new process continuing the timeline (-copyts): unchanged.
    r.discontinuity();
    assert_eq!(r.map(&v(990_000)), (990_000, 993_000));
    // A new process that would start before the end: moved one frame after it.
    r.discontinuity();
    let (dts, pts) = r.map(&v(0));
    assert_eq!((dts, pts), (990_000 + STEP, 990_000 + STEP + 3000));
    assert_eq!(r.map(&v(3000)).0, 990_000 + STEP + 3000);
    // A track never goes back, even within a process.
    let (d1, _) = r.map(&a(3000));
    let (d2, _) = r.map(&a(2000));
    assert!(d2 > d1);
    // Configs carry the current time.
    let cfg = Frame::video_config(Codec::H264, Bytes::from_static(b"c"));
    assert_eq!(r.map(&cfg).0, d2.max(990_000 + STEP + 3000));
}

#[test]
fn feed_skips_to_the_next_keyframe_when_the_queue_is_full() {
    let (tx, mut rx) = mpsc::channel(2);
    let mut feed = Feed::default();
    let frames = source_frames();
    let media: Vec<Arc<Frame>> = frames
        .iter()
        .filter(|f| !f.config)
        .skip_while(|f| !f.is_video_keyframe())
        .map(|f| Arc::new(f.clone()))
        .collect();
    for f in &media[..10] {
        feed.push(f, &tx);
    }
    assert_eq!(feed.skipped, 8);
    assert!(feed.skipping);
    // Room again: still waiting for a keyframe.
    let first = rx.try_recv().unwrap();
    assert!(lunora_transcode::supervisor::starts_with_video_keyframe(
        &first
    ));
    while rx.try_recv().is_ok() {}
    let next_key = media
        .iter()
        .skip(10)
        .position(|f| f.is_video_keyframe())
        .unwrap()
        + 10;
    for f in &media[10..next_key] {
        feed.push(f, &tx);
    }
    assert!(rx.try_recv().is_err());
    feed.push(&media[next_key], &tx);
    let tag = rx.try_recv().unwrap();
    assert!(lunora_transcode::supervisor::starts_with_video_keyframe(
        &tag
    ));
    assert!(!feed.skipping);
}

/// A preset the 320x240 source does not satisfy (so it is "transcoded").
fn x_preset() -> Preset {
    builtin_preset("builtin-x-720p30").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_per_encoding_key_shared_and_stopped_with_the_last_holder() {
    let engine = engine_with(&fake_ffmpeg());
    let id = Uuid::new_v4();
    let channel = engine.open_channel(id).unwrap();
    let input = channel.attach_input("main", AttachMode::Exclusive).unwrap();

    let x = x_preset();
    let mut x_clone = x.clone();
    x_clone.id = "user-copy".into();
    x_clone.name = "My X".into();
    let a = engine.rendition(id, &x).unwrap();
    let b = engine.rendition(id, &x_clone).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "same encoding key, same rendition");
    let other = engine
        .rendition(id, &builtin_preset("builtin-linkedin-720p30").unwrap())
        .unwrap();
    assert!(!Arc::ptr_eq(&a, &other));
    assert_eq!(engine.renditions().len(), 2);
    drop(other);

    let mut sub = a.subscribe();
    publish(&input, source_frames(), 0, 0.0).await;
    let status = wait_status(&a, Duration::from_secs(10), |s| s.pid.is_some()).await;
    assert_eq!(status.mode, RenditionMode::Transcoding);
    assert!(
        status
            .transcode_reasons
            .iter()
            .any(|r| r.starts_with("video.height")),
        "{:?}",
        status.transcode_reasons
    );
    let pid = status.pid.unwrap();

    // The copy "encoder" gives back what it was fed: configs, then media from a keyframe.
    let mut got = Vec::new();
    while got.iter().filter(|f: &&Arc<Frame>| !f.config).count() < 60 {
        got.push(
            recv_within(&mut sub, Duration::from_secs(10))
                .await
                .expect("frames"),
        );
    }
    assert!(got[0].config);
    let first_media = got.iter().find(|f| !f.config).unwrap();
    assert!(first_media.is_video_keyframe());
    let video: Vec<i64> = got
        .iter()
        .filter(|f| f.track == Track::Video && !f.config)
        .map(|f| f.dts)
        .collect();
    assert!(video.windows(2).all(|w| w[0] < w[1]));
    let source_video: Vec<i64> = source_frames()
        .iter()
        .filter(|f| f.track == Track::Video && !f.config)
        .map(|f| f.dts)
        .collect();
    assert!(
        source_video.contains(&video[0]),
        "timestamps are the channel's (copyts)"
    );

    drop(sub);
    drop(a);
    assert!(alive(pid), "another holder keeps it");
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the encoder outlived its last holder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(engine.renditions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_encoder_restarts_and_the_timeline_goes_on() {
    let engine = engine_with(&fake_ffmpeg());
    let id = Uuid::new_v4();
    let channel = engine.open_channel(id).unwrap();
    let input = channel.attach_input("main", AttachMode::Exclusive).unwrap();
    let r = engine.rendition(id, &x_preset()).unwrap();
    let mut sub = r.subscribe();

    let feeder = {
        let frames = source_frames().clone();
        tokio::spawn(async move {
            for round in 0..4 {
                publish(&input, &frames, round * 3000, 4.0).await;
            }
            input
        })
    };
    let status = wait_status(&r, Duration::from_secs(10), |s| s.pid.is_some()).await;
    let first_pid = status.pid.unwrap();
    let mut before = Vec::new();
    while before.len() < 40 {
        before.push(
            recv_within(&mut sub, Duration::from_secs(10))
                .await
                .expect("frames"),
        );
    }
    nix_kill(first_pid);
    let status = wait_status(&r, Duration::from_secs(10), |s| {
        s.restarts >= 1 && s.pid.is_some_and(|p| p != first_pid)
    })
    .await;
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("signal 9"),
        "{status:?}"
    );
    // The subscriber stays attached; video goes on from a keyframe, always forward.
    let mut after = Vec::new();
    while after
        .iter()
        .filter(|f: &&Arc<Frame>| f.is_video_keyframe())
        .count()
        < 2
    {
        after.push(
            recv_within(&mut sub, Duration::from_secs(10))
                .await
                .expect("frames after the restart"),
        );
    }
    let video: Vec<&Arc<Frame>> = before
        .iter()
        .chain(after.iter())
        .filter(|f| f.track == Track::Video && !f.config)
        .collect();
    assert!(
        video.windows(2).all(|w| w[0].dts < w[1].dts),
        "video goes forward"
    );
    let audio: Vec<i64> = before
        .iter()
        .chain(after.iter())
        .filter(|f| f.track == Track::Audio && !f.config)
        .map(|f| f.dts)
        .collect();
    assert!(audio.windows(2).all(|w| w[0] < w[1]), "audio goes forward");
    drop(feeder);
}

fn nix_kill(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ffmpeg_fails_clearly_and_a_later_ask_tries_again() {
    let engine = Engine::default();
    engine.set_transcode_config(TranscodeConfig {
        program: PathBuf::from("lunora-no-such-ffmpeg"),
        ..TranscodeConfig::default()
    });
    let id = Uuid::new_v4();
    let channel = engine.open_channel(id).unwrap();
    let input = channel.attach_input("main", AttachMode::Exclusive).unwrap();
    let r = engine.rendition(id, &x_preset()).unwrap();
    publish(&input, source_frames(), 0, 0.0).await;
    let status = wait_status(&r, Duration::from_secs(10), |s| {
        s.state == RenditionState::Failed
    })
    .await;
    assert_eq!(
        status.last_error.as_deref(),
        Some("FFmpeg is not installed or not on PATH (looked for `lunora-no-such-ffmpeg`)")
    );
    assert_eq!(status.mode, RenditionMode::Transcoding);
    let again = engine.rendition(id, &x_preset()).unwrap();
    assert!(
        !Arc::ptr_eq(&r, &again),
        "a failed rendition is not handed out again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_satisfies_the_preset_is_relayed_without_ffmpeg() {
    let engine = engine_with(Path::new("lunora-no-such-ffmpeg"));
    let id = Uuid::new_v4();
    let channel = engine.open_channel(id).unwrap();
    let input = channel.attach_input("main", AttachMode::Exclusive).unwrap();
    let mut preset = x_preset();
    preset.allow_480p = true;
    // What the source is: 320x240 is no preset size, so pretend with its own numbers.
    preset.video.width = 320;
    preset.video.height = 240;
    preset.video.profile = Profile::Main;
    preset.video.bitrate_kbps = 1000;
    preset.audio.sample_rate = 48_000;
    let r = engine.rendition(id, &preset).unwrap();
    let mut from_channel = channel.subscribe();
    let mut sub = r.subscribe();
    publish(&input, source_frames(), 0, 0.0).await;
    let status = wait_status(&r, Duration::from_secs(10), |s| {
        s.mode != RenditionMode::Probing
    })
    .await;
    assert_eq!(status.mode, RenditionMode::Passthrough, "{status:?}");
    assert_eq!(status.state, RenditionState::Running);
    assert_eq!(status.pid, None);
    // The very same frames (no copy), from the first keyframe.
    let mut channel_frames = Vec::new();
    while let Ok(f) = from_channel.try_recv() {
        channel_frames.push(f);
    }
    let mut got = Vec::new();
    while let Some(f) = recv_within(&mut sub, Duration::from_millis(500)).await {
        got.push(f);
    }
    let media: Vec<&Arc<Frame>> = got.iter().filter(|f| !f.config).collect();
    let channel_media: Vec<&Arc<Frame>> = channel_frames.iter().filter(|f| !f.config).collect();
    assert_eq!(media.len(), channel_media.len());
    assert!(media
        .iter()
        .zip(&channel_media)
        .all(|(a, b)| Arc::ptr_eq(a, b)));
}
