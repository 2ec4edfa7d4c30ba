//! The supervisor against the real FFmpeg (`ffmpeg`/`ffprobe` on PATH, or `LUNORA_FFMPEG`
//! / `LUNORA_FFPROBE`). Encodes are tiny: 320x240, ultrafast, a few seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lunora_transcode::{
    ffmpeg_args, AudioCodec, AudioSettings, Backoff, Platform, Preset, Profile, RateControl, Speed,
    Status, Supervisor, SupervisorConfig, VideoCodec, VideoSettings,
};
use tokio::sync::{mpsc, watch};

fn ffmpeg() -> String {
    std::env::var("LUNORA_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

fn ffprobe() -> String {
    std::env::var("LUNORA_FFPROBE").unwrap_or_else(|_| "ffprobe".into())
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lunora-transcode-{}-{name}", std::process::id()))
}

/// A tiny preset outside the destination ranges (tests only; `validate` would refuse it).
fn tiny_preset(fps: u32, keyframe_interval_s: u32) -> Preset {
    Preset {
        id: "test-tiny".into(),
        name: "Tiny".into(),
        platform: Platform::Custom,
        builtin: false,
        allow_480p: false,
        video: VideoSettings {
            codec: VideoCodec::H264,
            profile: Profile::Main,
            width: 320,
            height: 240,
            fps,
            bitrate_kbps: 300,
            keyframe_interval_s,
            b_frames: 1,
            rate_control: RateControl::Cbr,
            buffer_kbps: None,
            speed: Speed::Ultrafast,
        },
        audio: AudioSettings {
            codec: AudioCodec::Aac,
            bitrate_kbps: 64,
            sample_rate: 48_000,
            channels: 2,
        },
    }
}

fn config(args: Vec<String>) -> SupervisorConfig {
    SupervisorConfig {
        program: ffmpeg().into(),
        backoff: Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            jitter: 0.25,
        },
        label: "test".into(),
        ..SupervisorConfig::new(args)
    }
}

/// A 3 s, 25 fps, 400x240 (wider than 4:3) FLV with a 44.1 kHz mono tone.
fn make_source(name: &str) -> Vec<u8> {
    let path = temp_path(name);
    let status = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=400x240:rate=25:duration=3",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=3",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-ac",
            "1",
            "-shortest",
            "-f",
            "flv",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// Waits until `status` satisfies `f`, or panics after `within`.
async fn wait_status(
    status: &mut watch::Receiver<Status>,
    within: Duration,
    f: impl Fn(&Status) -> bool,
) -> Status {
    let got = tokio::time::timeout(within, status.wait_for(|s| f(s)))
        .await
        .map(|r| r.unwrap().clone());
    match got {
        Ok(s) => s,
        Err(_) => panic!("status still {:?}", *status.borrow()),
    }
}

/// Records every status the watch shows.
fn record(mut status: watch::Receiver<Status>) -> tokio::task::JoinHandle<Vec<Status>> {
    tokio::spawn(async move {
        let mut seen = vec![status.borrow_and_update().clone()];
        while status.changed().await.is_ok() {
            let s = status.borrow_and_update().clone();
            let terminal = s.is_terminal();
            seen.push(s);
            if terminal {
                break;
            }
        }
        seen
    })
}

fn collect(mut output: mpsc::Receiver<Bytes>) -> tokio::task::JoinHandle<Vec<Bytes>> {
    tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(c) = output.recv().await {
            chunks.push(c);
        }
        chunks
    })
}

fn probe_json(path: &PathBuf, args: &[&str]) -> serde_json::Value {
    let out = Command::new(ffprobe())
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn encodes_to_the_presets_resolution_fps_and_keyframe_interval() {
    let source = make_source("source.flv");
    let preset = tiny_preset(30, 1);
    let (sup, pipes) = Supervisor::start(config(ffmpeg_args(&preset)));
    let statuses = record(sup.status());
    let output = collect(pipes.output);
    for chunk in source.chunks(16 * 1024) {
        pipes
            .input
            .send(Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    drop(pipes.input); // end of input: FFmpeg finishes, the supervisor stops

    let chunks = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .unwrap()
        .unwrap();
    let statuses = statuses.await.unwrap();
    assert_eq!(statuses.first(), Some(&Status::Starting));
    assert!(statuses.contains(&Status::Running), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&Status::Stopped));
    let metrics = sup.metrics().borrow().clone();
    assert_eq!(metrics.restarts, 0);
    assert_eq!(metrics.bytes_in, source.len() as u64);
    let total: usize = chunks.iter().map(Bytes::len).sum();
    assert_eq!(metrics.bytes_out, total as u64);
    assert!(
        metrics.progress.as_ref().is_some_and(|p| p.frame >= 85),
        "{:?}",
        metrics.progress
    );
    // The boundary marker, then the process's FLV stream.
    assert!(chunks[0].is_empty());
    assert!(chunks[1].starts_with(b"FLV"));

    let out = temp_path("encoded.flv");
    std::fs::write(&out, chunks.concat()).unwrap();
    let streams = probe_json(
        &out,
        &[
            "-show_entries",
            "stream=codec_type,codec_name,profile,width,height,r_frame_rate,sample_rate,channels",
        ],
    );
    let streams = streams["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["profile"], "Main");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(video["r_frame_rate"], "30/1");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);

    let packets = probe_json(
        &out,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
        ],
    );
    let packets = packets["packets"].as_array().unwrap();
    assert!(
        (88..=92).contains(&packets.len()),
        "{} frames for 3 s at 30 fps",
        packets.len()
    );
    let mut keyframes: Vec<f64> = packets
        .iter()
        .filter(|p| p["flags"].as_str().unwrap().starts_with('K'))
        .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
        .collect();
    keyframes.sort_by(f64::total_cmp);
    assert!(keyframes.len() >= 3, "{keyframes:?}");
    for pair in keyframes.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (gap - 1.0).abs() < 0.02,
            "keyframe every 1 s: {keyframes:?}"
        );
    }
    std::fs::remove_file(&out).unwrap();
}

/// FLV file -> (header + codec config tags, media tags). Each tag keeps its trailing
/// previous-tag-size so it can be sent as one chunk.
fn split_flv(flv: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut preamble = flv[..13].to_vec();
    let mut tags = Vec::new();
    let mut at = 13;
    while at + 11 <= flv.len() {
        let size = u32::from_be_bytes([0, flv[at + 1], flv[at + 2], flv[at + 3]]) as usize;
        let end = at + 11 + size + 4;
        let tag = &flv[at..end];
        let body = &tag[11..];
        let config = tag[0] == 18 || ((tag[0] == 8 || tag[0] == 9) && body.get(1) == Some(&0));
        if config && tags.is_empty() {
            preamble.extend_from_slice(tag);
        } else {
            tags.push(tag.to_vec());
        }
        at = end;
    }
    (preamble, tags)
}

fn timestamp(tag: &[u8]) -> u32 {
    u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]])
}

fn set_timestamp(tag: &mut [u8], ts: u32) {
    let b = ts.to_be_bytes();
    tag[4..7].copy_from_slice(&b[1..]);
    tag[7] = b[0];
}

#[tokio::test]
async fn killed_ffmpeg_restarts_and_resumes_from_a_keyframe() {
    let (preamble, tags) = split_flv(&make_source("live.flv"));
    let period = timestamp(tags.last().unwrap()) + 40;
    let preset = tiny_preset(30, 1);
    let (sup, pipes) = Supervisor::start(config(ffmpeg_args(&preset)));
    sup.set_preamble(Bytes::from(preamble));
    let mut status = sup.status();
    let output = collect(pipes.output);

    // Feed tags in real time, looping the source with continuous timestamps; a full queue
    // drops the tag (the engine would skip to the next keyframe).
    let input = pipes.input;
    let feeder = tokio::spawn(async move {
        let start = Instant::now();
        for round in 0u32.. {
            for tag in &tags {
                let mut tag = tag.clone();
                let ts = timestamp(&tag) + round * period;
                set_timestamp(&mut tag, ts);
                let due = start + Duration::from_millis(u64::from(ts));
                tokio::time::sleep_until(due.into()).await;
                if let Err(mpsc::error::TrySendError::Closed(_)) = input.try_send(Bytes::from(tag))
                {
                    return;
                }
            }
        }
    });

    wait_status(&mut status, Duration::from_secs(20), |s| {
        *s == Status::Running
    })
    .await;
    let first_pid = sup.pid().unwrap();
    let statuses = record(sup.status());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let restarting = wait_status(&mut status, Duration::from_secs(10), |s| {
        matches!(s, Status::Restarting { .. })
    })
    .await;
    match &restarting {
        Status::Restarting {
            attempt,
            last_error,
        } => {
            assert_eq!(*attempt, 1);
            assert!(
                last_error.contains("killed by signal 9 (SIGKILL)"),
                "{last_error}"
            );
        }
        other => panic!("{other:?}"),
    }
    wait_status(&mut status, Duration::from_secs(20), |s| {
        *s == Status::Running
    })
    .await;
    let second_pid = sup.pid().unwrap();
    assert_ne!(first_pid, second_pid);
    let metrics = sup.metrics().borrow().clone();
    assert_eq!(metrics.restarts, 1);
    // The new process got the preamble and a keyframe first, so it encodes: wait for a
    // few progress reports from it.
    let mut m = sup.metrics();
    tokio::time::timeout(
        Duration::from_secs(10),
        m.wait_for(|m| m.progress.as_ref().is_some_and(|p| p.frame >= 20)),
    )
    .await
    .unwrap()
    .unwrap();

    let final_status = sup.stop(Duration::from_secs(5)).await;
    assert_eq!(final_status, Status::Stopped);
    let statuses = statuses.await.unwrap();
    let names: Vec<&str> = statuses
        .iter()
        .map(|s| match s {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Restarting { .. } => "restarting",
            Status::Failed { .. } => "failed",
            Status::Stopped => "stopped",
        })
        .collect();
    assert_eq!(
        names,
        ["running", "restarting", "starting", "running", "stopped"]
    );
    feeder.await.unwrap();

    // Both processes wrote an FLV stream; each begins on a new chunk.
    let chunks = output.await.unwrap();
    let headers = chunks.iter().filter(|c| c.starts_with(b"FLV\x01")).count();
    assert_eq!(headers, 2);
    let markers: Vec<usize> = (0..chunks.len())
        .filter(|&i| chunks[i].is_empty())
        .collect();
    assert_eq!(markers.len(), 2, "one boundary marker per process");
    for i in markers {
        assert!(
            chunks[i + 1].starts_with(b"FLV\x01"),
            "a marker precedes each FLV header"
        );
    }
    // Nothing is left running in the killed or the stopped process group.
    for pid in [first_pid, second_pid] {
        assert!(!alive(pid), "pid {pid} still running");
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn missing_binary_fails_clearly_without_restarting() {
    for (program, want) in [
        (
            "/nonexistent/lunora/ffmpeg",
            "FFmpeg is not installed at /nonexistent/lunora/ffmpeg",
        ),
        (
            "lunora-no-such-ffmpeg",
            "FFmpeg is not installed or not on PATH (looked for `lunora-no-such-ffmpeg`)",
        ),
    ] {
        let mut cfg = config(ffmpeg_args(&tiny_preset(30, 1)));
        cfg.program = program.into();
        let (sup, pipes) = Supervisor::start(cfg);
        let mut status = sup.status();
        let s = wait_status(&mut status, Duration::from_secs(5), Status::is_terminal).await;
        assert_eq!(s, Status::Failed { error: want.into() });
        assert_eq!(sup.metrics().borrow().restarts, 0);
        // The input queue is closed, so a feeder notices.
        assert!(pipes.input.send(Bytes::from_static(b"x")).await.is_err());
    }
}

#[tokio::test]
async fn missing_encoder_fails_clearly_without_restarting() {
    let args: Vec<String> = ffmpeg_args(&tiny_preset(30, 1))
        .into_iter()
        .map(|a| {
            if a == "libx264" {
                "libx264_lunora_missing".into()
            } else {
                a
            }
        })
        .collect();
    let (sup, pipes) = Supervisor::start(config(args));
    let mut status = sup.status();
    let statuses = record(sup.status());
    // FFmpeg picks encoders after it has probed the input, so feed some.
    let source = make_source("encoder.flv");
    for chunk in source.chunks(16 * 1024) {
        if pipes
            .input
            .send(Bytes::copy_from_slice(chunk))
            .await
            .is_err()
        {
            break;
        }
    }
    let s = wait_status(&mut status, Duration::from_secs(20), Status::is_terminal).await;
    assert_eq!(
        s,
        Status::Failed {
            error: "this FFmpeg lacks the libx264_lunora_missing encoder; install an FFmpeg built with it or choose another codec".into()
        }
    );
    let statuses = statuses.await.unwrap();
    assert!(
        !statuses
            .iter()
            .any(|s| matches!(s, Status::Restarting { .. })),
        "{statuses:?}"
    );
    assert_eq!(sup.metrics().borrow().restarts, 0);
}

#[tokio::test]
async fn input_queue_is_bounded_and_drop_kills_the_process_group() {
    // `sleep` never reads its stdin: the pipe fills, then the queue.
    let mut cfg = SupervisorConfig::new(vec!["30".into()]);
    cfg.program = "sleep".into();
    cfg.input_capacity = 4;
    let (sup, pipes) = Supervisor::start(cfg);
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(pid) = sup.pid() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no process");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let chunk = Bytes::from(vec![0u8; 256 * 1024]);
    let mut full = false;
    for _ in 0..20 {
        match pipes.input.try_send(chunk.clone()) {
            Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(mpsc::error::TrySendError::Full(_)) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full, "the input queue never filled");
    assert!(alive(pid));
    drop(sup);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} survived the drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn graceful_stop_of_an_idle_encode() {
    let (sup, _pipes) = Supervisor::start(config(ffmpeg_args(&tiny_preset(30, 1))));
    let deadline = Instant::now() + Duration::from_secs(5);
    while sup.pid().is_none() {
        assert!(Instant::now() < deadline, "no process");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = sup.pid().unwrap();
    let started = Instant::now();
    assert_eq!(sup.stop(Duration::from_secs(3)).await, Status::Stopped);
    // FFmpeg exits on end of input well within the grace period.
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!alive(pid));
}
