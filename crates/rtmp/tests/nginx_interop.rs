//! Interoperability with nginx-rtmp: a `ClientSession` publishes the FLV fixture to a real
//! nginx with the RTMP module, a second `ClientSession` plays it back through nginx, and a
//! third publisher of the same key is refused. This checks our digest handshake against an
//! independent implementation (the client verifies nginx's S1 digest and S2 signature) and
//! the acknowledgement tracking. Skipped, with a note, when nginx or its RTMP module is not
//! installed (Debian: `nginx libnginx-mod-rtmp`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::FIXTURE_FLV;
use lunora_flv::{FlvReader, TagType};
use lunora_rtmp::amf0::decode_all;
use lunora_rtmp::{ClientConfig, ClientEvent, ClientRole, ClientSession, HandshakeMode};

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

fn nginx_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() || !Path::new(MODULE).exists() {
        eprintln!("skipping: nginx with {MODULE} is not installed");
        return None;
    }
    found
}

struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nginx(bin: &Path) -> Nginx {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("lunora-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let conf = format!(
        "load_module {MODULE};\n\
         daemon off;\nmaster_process off;\n\
         pid {d}/nginx.pid;\nerror_log {d}/logs/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
           application live {{ live on; }} }} }}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx { child, dir, port }
}

/// Drives `session` over a socket until `step` says stop, the peer closes, or 20 s pass.
fn drive(
    port: u16,
    mut session: ClientSession,
    mut step: impl FnMut(&mut ClientSession, Vec<ClientEvent>) -> bool,
) -> ClientSession {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(b) = session.poll_transmit() {
            sock.write_all(&b).unwrap();
        }
        let events: Vec<ClientEvent> = std::iter::from_fn(|| session.poll_event()).collect();
        if !step(&mut session, events) {
            while let Some(b) = session.poll_transmit() {
                sock.write_all(&b).unwrap();
            }
            return session;
        }
        match sock.read(&mut buf) {
            Ok(0) => return session,
            Ok(n) => session.handle_input(&buf[..n]).unwrap(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "timed out");
    }
}

fn client(port: u16, role: ClientRole, window: u32) -> ClientSession {
    let mut cfg = ClientConfig::new("live", format!("rtmp://127.0.0.1:{port}/live"));
    cfg.window_ack_size = window;
    cfg.seed = [port as u8; 32];
    ClientSession::new(cfg, role)
}

#[test]
fn publish_and_play_through_nginx_rtmp() {
    let Some(bin) = nginx_binary() else {
        return;
    };
    let nginx = start_nginx(&bin);
    let port = nginx.port;
    let (player_ready_tx, player_ready_rx) = mpsc::channel::<()>();
    let (published_tx, published_rx) = mpsc::channel::<()>();

    let publisher = std::thread::spawn(move || {
        let mut sent = false;
        let mut started = false;
        let mut finished_at = None;
        drive(
            port,
            client(
                port,
                ClientRole::Publish {
                    stream_key: "cam".into(),
                },
                8 * 1024,
            ),
            move |c, events| {
                for ev in events {
                    match ev {
                        ClientEvent::PublishStarted { stream_id } => {
                            assert!(stream_id >= 1);
                            started = true;
                            published_tx.send(()).unwrap();
                        }
                        ClientEvent::PublishFailed { code, .. } => panic!("publish failed: {code}"),
                        _ => {}
                    }
                }
                if started && !sent && player_ready_rx.try_recv().is_ok() {
                    let mut r = FlvReader::new();
                    r.push(FIXTURE_FLV);
                    while let Some(tag) = r.next_tag().unwrap() {
                        match tag.tag_type {
                            TagType::Script => {
                                let v = decode_all(&tag.data).unwrap();
                                c.send_metadata(&v[1]).unwrap();
                            }
                            TagType::Video => c.send_video(tag.timestamp, tag.data).unwrap(),
                            TagType::Audio => c.send_audio(tag.timestamp, tag.data).unwrap(),
                            TagType::Other(_) => {}
                        }
                    }
                    sent = true;
                    finished_at = Some(Instant::now());
                }
                // Keep reading for a while so nginx's acknowledgements arrive.
                !matches!(finished_at, Some(t) if t.elapsed() > Duration::from_millis(1500))
            },
        )
    });

    published_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // A second publisher of the same key is refused by nginx.
    let mut refused = None;
    drive(
        port,
        client(
            port,
            ClientRole::Publish {
                stream_key: "cam".into(),
            },
            2_500_000,
        ),
        |_, events| {
            for ev in events {
                if let ClientEvent::PublishFailed { .. } = ev {
                    refused = Some(ev);
                }
            }
            refused.is_none()
        },
    );
    assert!(
        matches!(&refused, Some(ClientEvent::PublishFailed { code, key_rejected: true, .. }) if code == "NetStream.Publish.BadName"),
        "{refused:?}"
    );

    let mut player_events = Vec::new();
    let mut ready_sent = false;
    let player = drive(
        port,
        client(
            port,
            ClientRole::Play {
                stream_name: "cam".into(),
            },
            2_500_000,
        ),
        |_, events| {
            for ev in events {
                if matches!(ev, ClientEvent::PlayStarted { .. }) && !ready_sent {
                    player_ready_tx.send(()).unwrap();
                    ready_sent = true;
                }
                player_events.push(ev);
            }
            let videos = player_events
                .iter()
                .filter(|e| matches!(e, ClientEvent::Video { .. }))
                .count();
            videos < 50
        },
    );
    let publisher = publisher.join().unwrap();

    // The digest handshake was verified both ways with nginx.
    assert!(matches!(
        publisher.handshake_mode(),
        HandshakeMode::Digest { .. }
    ));
    assert!(matches!(
        player.handshake_mode(),
        HandshakeMode::Digest { .. }
    ));
    // nginx acknowledged at the 8 KiB window we announced.
    let stats = publisher.stats();
    assert!(stats.bytes_sent > 40_000, "{stats:?}");
    assert!(stats.acks_received >= 4, "{stats:?}");
    assert!(stats.unacknowledged_bytes() < 8 * 1024, "{stats:?}");
    // The player got metadata, the sequence header and frames with their timestamps.
    assert!(player_events
        .iter()
        .any(|e| matches!(e, ClientEvent::PlayStarted { .. })));
    assert!(player_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Metadata { .. })));
    let videos: Vec<(u32, &bytes::Bytes)> = player_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Video { timestamp, payload } => Some((*timestamp, payload)),
            _ => None,
        })
        .collect();
    assert!(videos.len() >= 50);
    assert_eq!(
        &videos[0].1[..2],
        &[0x17, 0x00],
        "AVC sequence header first"
    );
    assert!(videos.windows(2).all(|w| w[0].0 <= w[1].0));
}
