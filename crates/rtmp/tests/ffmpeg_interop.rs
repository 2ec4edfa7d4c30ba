//! Interoperability with a real peer: FFmpeg publishing to and playing from a
//! `ServerSession`, and a `ClientSession` publishing to FFmpeg's RTMP listener. Each test
//! drives the sans-IO session over a loopback TCP socket (the IO loop lives here, in the
//! test). Skipped, with a note, when `ffmpeg` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::FIXTURE_FLV;
use lunora_flv::{FlvReader, FlvTag, TagType, VideoTag};
use lunora_rtmp::amf0::decode_all;
use lunora_rtmp::{
    Amf0Value, ClientConfig, ClientEvent, ClientRole, ClientSession, HandshakeMode, ServerConfig,
    ServerEvent, ServerSession,
};

fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: ffmpeg is not installed");
    }
    ok
}

fn fixture_tags() -> Vec<FlvTag> {
    let mut r = FlvReader::new();
    r.push(FIXTURE_FLV);
    std::iter::from_fn(|| r.next_tag().unwrap()).collect()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lunora-rtmp-{}-{name}", std::process::id()))
}

/// Kills the child if the test fails early.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ffmpeg(args: &[&str]) -> Reaper {
    Reaper(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

fn wait_exit(child: &mut Reaper, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "ffmpeg did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `step` until it returns false or the peer closes: reads with a short timeout,
/// feeds the session, writes what it has to send.
fn pump(
    sock: &mut TcpStream,
    mut input: impl FnMut(&[u8]),
    mut output: impl FnMut() -> Option<bytes::Bytes>,
    mut step: impl FnMut() -> bool,
) {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(b) = output() {
            if sock.write_all(&b).is_err() {
                return;
            }
        }
        if !step() {
            return;
        }
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => input(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        assert!(Instant::now() < deadline, "session did not finish in time");
    }
}

#[test]
fn ffmpeg_publishes_to_server_session() {
    if !have_ffmpeg() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let input = temp_path("publish-in.flv");
    std::fs::write(&input, FIXTURE_FLV).unwrap();
    let url = format!("rtmp://127.0.0.1:{port}/live/secret-key");
    let mut child = ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "flv",
        &url,
    ]);
    let (mut sock, _) = listener.accept().unwrap();
    let session = std::cell::RefCell::new(ServerSession::new(ServerConfig::default()));
    let mut events = Vec::new();
    pump(
        &mut sock,
        |d| session.borrow_mut().handle_input(d).unwrap(),
        || session.borrow_mut().poll_transmit(),
        || {
            let mut s = session.borrow_mut();
            while let Some(ev) = s.poll_event() {
                if let ServerEvent::PublishRequested { .. } = ev {
                    s.accept_publish().unwrap();
                }
                events.push(ev);
            }
            true
        },
    );
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
    let _ = std::fs::remove_file(&input);
    let session = session.into_inner();
    // FFmpeg uses the digest handshake; we recognised it.
    assert!(matches!(
        session.handshake_mode(),
        HandshakeMode::Digest { .. }
    ));
    assert!(matches!(&events[0], ServerEvent::Connected { app, .. } if app == "live"));
    assert!(events.iter().any(|e| matches!(e,
        ServerEvent::PublishRequested { stream_key, .. } if stream_key == "secret-key")));
    let meta = events.iter().find_map(|e| match e {
        ServerEvent::Metadata { metadata, .. } => Some(metadata.clone()),
        _ => None,
    });
    assert_eq!(
        meta.unwrap().get("width").and_then(Amf0Value::as_f64),
        Some(320.0)
    );
    // Every frame arrived byte for byte, as in the file.
    let want: Vec<(u32, bytes::Bytes)> = fixture_tags()
        .into_iter()
        .filter(|t| t.tag_type == TagType::Video)
        .map(|t| (t.timestamp, t.data))
        .collect();
    let got: Vec<(u32, bytes::Bytes)> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Video {
                timestamp, payload, ..
            } => Some((*timestamp, payload.clone())),
            _ => None,
        })
        .collect();
    // FFmpeg may or may not forward the end-of-sequence tag; the 50 frames must be there.
    assert!(got.len() >= 51, "{} video messages", got.len());
    assert_eq!(&got[..51], &want[..51]);
    let audio = events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Audio { .. }))
        .count();
    assert_eq!(audio, 89);
    assert!(events.iter().any(|e| matches!(
        e,
        ServerEvent::StreamDeleted { .. } | ServerEvent::FcUnpublish { .. }
    )));
}

#[test]
fn ffmpeg_plays_from_server_session() {
    if !have_ffmpeg() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let output = temp_path("play-out.flv");
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    let mut child = ffmpeg(&[
        "-i",
        &url,
        "-c",
        "copy",
        "-f",
        "flv",
        output.to_str().unwrap(),
    ]);
    let (mut sock, _) = listener.accept().unwrap();
    let session = std::cell::RefCell::new(ServerSession::new(ServerConfig::default()));
    let mut requested = None;
    let mut sent = false;
    pump(
        &mut sock,
        |d| session.borrow_mut().handle_input(d).unwrap(),
        || session.borrow_mut().poll_transmit(),
        || {
            let mut s = session.borrow_mut();
            while let Some(ev) = s.poll_event() {
                if let ServerEvent::PlayRequested { stream_name, .. } = ev {
                    requested = Some(stream_name);
                    s.accept_play().unwrap();
                }
            }
            if requested.is_some() && !sent {
                for tag in fixture_tags() {
                    match tag.tag_type {
                        TagType::Script => {
                            let vals = decode_all(&tag.data).unwrap();
                            s.send_metadata(&vals[1]).unwrap();
                        }
                        TagType::Video => s.send_video(tag.timestamp, tag.data).unwrap(),
                        TagType::Audio => s.send_audio(tag.timestamp, tag.data).unwrap(),
                        TagType::Other(_) => {}
                    }
                }
                s.notify_unpublished().unwrap();
                sent = true;
                return true;
            }
            // Everything written: close, which ends FFmpeg's input.
            !sent || s.has_transmit()
        },
    );
    drop(sock);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(requested.as_deref(), Some("cam"));
    // FFmpeg checked our S1 digest and S2 signature (it does when playing).
    assert!(matches!(
        session.borrow().handshake_mode(),
        HandshakeMode::Digest { .. }
    ));
    let out = std::fs::read(&output).unwrap_or_default();
    let _ = std::fs::remove_file(&output);
    assert!(status.success(), "ffmpeg exit {status:?}");
    let mut r = FlvReader::new();
    r.push(&out);
    let tags: Vec<FlvTag> = std::iter::from_fn(|| r.next_tag().unwrap()).collect();
    let frames = tags
        .iter()
        .filter(|t| t.tag_type == TagType::Video)
        .filter(|t| VideoTag::parse(t.data.clone()).unwrap().is_keyframe() || t.data[0] >> 4 == 2)
        .count();
    assert_eq!(frames, 50, "FFmpeg recorded every frame we sent");
}

#[test]
fn client_session_publishes_to_ffmpeg_listener() {
    if !have_ffmpeg() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = temp_path("listen-out.flv");
    let url = format!("rtmp://127.0.0.1:{port}/live/k");
    // "fatal": FFmpeg's listener reports our closing the socket as an I/O error.
    let mut child = ffmpeg(&[
        "-loglevel",
        "fatal",
        "-listen",
        "1",
        "-i",
        &url,
        "-c",
        "copy",
        "-f",
        "flv",
        output.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sock = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("ffmpeg never listened: {e}"),
        }
    };
    let client = std::cell::RefCell::new(ClientSession::new(
        ClientConfig::new("live", format!("rtmp://127.0.0.1:{port}/live")),
        ClientRole::Publish {
            stream_key: "k".into(),
        },
    ));
    let mut events = Vec::new();
    let mut sent = false;
    pump(
        &mut sock,
        |d| client.borrow_mut().handle_input(d).unwrap(),
        || client.borrow_mut().poll_transmit(),
        || {
            let mut c = client.borrow_mut();
            while let Some(ev) = c.poll_event() {
                events.push(ev);
            }
            if events.contains(&ClientEvent::PublishStarted { stream_id: 1 }) && !sent {
                for tag in fixture_tags() {
                    match tag.tag_type {
                        TagType::Script => {
                            let vals = decode_all(&tag.data).unwrap();
                            c.send_metadata(&vals[1]).unwrap();
                        }
                        TagType::Video => c.send_video(tag.timestamp, tag.data).unwrap(),
                        TagType::Audio => c.send_audio(tag.timestamp, tag.data).unwrap(),
                        TagType::Other(_) => {}
                    }
                }
                c.close().unwrap();
                sent = true;
                return true;
            }
            !sent || c.has_transmit()
        },
    );
    drop(sock);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let out = std::fs::read(&output).unwrap_or_default();
    let _ = std::fs::remove_file(&output);
    assert!(
        events.contains(&ClientEvent::PublishStarted { stream_id: 1 }),
        "{events:?}"
    );
    assert!(status.success(), "ffmpeg exit {status:?}");
    let mut r = FlvReader::new();
    r.push(&out);
    let tags: Vec<FlvTag> = std::iter::from_fn(|| r.next_tag().unwrap()).collect();
    let video = tags.iter().filter(|t| t.tag_type == TagType::Video).count();
    let audio = tags.iter().filter(|t| t.tag_type == TagType::Audio).count();
    assert!(video >= 51, "{video} video tags");
    assert_eq!(audio, 89);
}
