//! Hostile input: garbage, mutations and lies, through every entry point. Each must return
//! an error or wait for more bytes; never panic; and memory must stay within the limits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use bytes::Bytes;
use common::{Pair, Rng};
use lunora_rtmp::amf0::{decode_all, Amf0Decoder, Amf0Limits};
use lunora_rtmp::{
    ChunkDecoder, ChunkLimits, ClientConfig, ClientHandshake, ClientRole, ClientSession, Command,
    RtmpError, ServerConfig, ServerEvent, ServerSession, HANDSHAKE_SIZE,
};

const SMALL: ChunkLimits = ChunkLimits {
    max_message_len: 64 * 1024,
    max_buffered: 256 * 1024,
    max_chunk_streams: 16,
};

fn small_server() -> ServerSession {
    ServerSession::new(ServerConfig {
        limits: SMALL,
        ..ServerConfig::default()
    })
}

/// A server past the handshake (made once, cloned: the digest handshake is slow unoptimized).
fn shaken_server() -> ServerSession {
    static SHAKEN: std::sync::OnceLock<ServerSession> = std::sync::OnceLock::new();
    SHAKEN.get_or_init(shake).clone()
}

fn shake() -> ServerSession {
    let mut server = small_server();
    let mut hs = ClientHandshake::new([1; 32], 0, true);
    server.handle_input(&hs.start().unwrap()).unwrap();
    let mut s = Vec::new();
    while let Some(b) = server.poll_transmit() {
        s.extend_from_slice(&b);
    }
    let mut c2 = Vec::new();
    hs.handle(&s, &mut c2).unwrap();
    server.handle_input(&c2.concat()).unwrap();
    server
}

/// Feeds `data` in random pieces; returns the first error. Checks the memory bound after
/// every piece and drains everything.
fn feed_server(server: &mut ServerSession, data: &[u8], rng: &mut Rng) -> Option<RtmpError> {
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + 1 + rng.below(2048)).min(data.len());
        let r = server.handle_input(&data[pos..end]);
        // An incomplete chunk is at most header + one message; partials are capped.
        assert!(
            server.buffered_bytes()
                <= SMALL.max_buffered + SMALL.max_message_len as usize + 18 + (end - pos),
            "buffered {}",
            server.buffered_bytes()
        );
        while let Some(ev) = server.poll_event() {
            if let ServerEvent::PublishRequested { .. } = ev {
                server.accept_publish().unwrap();
            }
            if let ServerEvent::PlayRequested { .. } = ev {
                server.accept_play().unwrap();
            }
        }
        while server.poll_transmit().is_some() {}
        if let Err(e) = r {
            assert_eq!(server.handle_input(&[0]), Err(RtmpError::Closed));
            return Some(e);
        }
        pos = end;
    }
    None
}

#[test]
fn garbage_before_the_handshake() {
    let mut rng = Rng(0xDEAD_BEEF);
    for _ in 0..500 {
        let mut server = small_server();
        let data = rng.bytes(4000);
        feed_server(&mut server, &data, &mut rng);
    }
}

#[test]
fn garbage_after_the_handshake() {
    let mut rng = Rng(0x1234_5678);
    let mut errors = 0;
    for _ in 0..10_000 {
        let mut server = shaken_server();
        let data = rng.bytes(3000);
        if feed_server(&mut server, &data, &mut rng).is_some() {
            errors += 1;
        }
    }
    // Random bytes are almost always refused (and never panic).
    assert!(errors > 7000, "{errors}");
}

#[test]
fn garbage_with_valid_looking_chunk_headers() {
    let mut rng = Rng(77);
    for _ in 0..10_000 {
        let mut server = shaken_server();
        let mut data = Vec::new();
        for _ in 0..rng.below(30) {
            // A type-0 header on a small csid with a plausible length and a known type.
            let csid = 2 + rng.below(8) as u8;
            let len = rng.below(600) as u32;
            let types = [1u8, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 20, 22];
            data.push(csid | ((rng.below(4) as u8) << 6));
            data.extend_from_slice(&(rng.next() as u32 & 0xFF_FFFF).to_be_bytes()[1..]);
            data.extend_from_slice(&len.to_be_bytes()[1..]);
            data.push(types[rng.below(types.len())]);
            data.extend_from_slice(&(rng.below(3) as u32).to_le_bytes());
            data.extend(rng.bytes(len as usize));
        }
        feed_server(&mut server, &data, &mut rng);
    }
}

/// Replays a real publish session's client bytes with random corruption.
#[test]
fn mutated_publish_sessions() {
    let mut p = Pair::publish("key");
    p.drive();
    p.server.accept_publish().unwrap();
    p.drive();
    for i in 0..40u32 {
        p.client
            .send_video(i * 40, Bytes::from(vec![i as u8; 100 + 300 * i as usize]))
            .unwrap();
        p.client
            .send_audio(i * 23, Bytes::from(vec![0xAF; 50]))
            .unwrap();
    }
    p.drive();
    let wire = p.client_wire.clone();
    assert!(wire.len() > 100_000);
    // The unmodified replay is accepted whole.
    let mut rng = Rng(5);
    let mut clean = small_server();
    assert_eq!(feed_server(&mut clean, &wire, &mut rng), None);

    for round in 0..300 {
        let mut data = wire.clone();
        // Mutate after the handshake most of the time, sometimes inside it.
        let start = if round % 10 == 0 {
            0
        } else {
            1 + 2 * HANDSHAKE_SIZE
        };
        for _ in 0..1 + rng.below(6) {
            let i = start + rng.below(data.len() - start);
            match rng.below(3) {
                0 => data[i] ^= 1 << rng.below(8),
                1 => data[i] = rng.next() as u8,
                _ => data[i] = 0xFF,
            }
        }
        let mut server = small_server();
        feed_server(&mut server, &data, &mut rng);
    }
}

#[test]
fn client_survives_garbage_from_the_server() {
    let mut rng = Rng(31);
    let mut template = Pair::publish("k");
    template.drive();
    for _ in 0..1000 {
        let mut client: ClientSession = template.client.clone();
        let data = rng.bytes(2000);
        let mut pos = 0;
        while pos < data.len() {
            let end = (pos + 1 + rng.below(500)).min(data.len());
            if client.handle_input(&data[pos..end]).is_err() {
                break;
            }
            assert!(client.buffered_bytes() <= 8 * 1024 * 1024 + 18 + 500);
            while client.poll_event().is_some() {}
            while client.poll_transmit().is_some() {}
            pos = end;
        }
    }
    // And before/within its handshake.
    for _ in 0..300 {
        let mut c = ClientSession::new(
            ClientConfig::new("a", "rtmp://h/a"),
            ClientRole::Play {
                stream_name: "s".into(),
            },
        );
        let mut data = vec![3u8];
        data.extend(rng.bytes(5000));
        let _ = c.handle_input(&data);
    }
}

#[test]
fn many_chunk_streams_with_partial_messages_hit_the_cap() {
    let mut server = shaken_server();
    let mut data = Vec::new();
    // 16 chunk streams each holding the first 128 bytes of a 60 KiB message, then more.
    for round in 0..200u32 {
        for csid in 3..19u8 {
            if round == 0 {
                data.push(csid);
                data.extend_from_slice(&[0, 0, 0]);
                data.extend_from_slice(&(60 * 1024u32).to_be_bytes()[1..]);
                data.push(9);
                data.extend_from_slice(&[1, 0, 0, 0]);
            } else {
                data.push(0xC0 | csid);
            }
            data.extend_from_slice(&[0u8; 128]);
        }
    }
    let mut rng = Rng(3);
    let err = feed_server(&mut server, &data, &mut rng);
    assert!(
        matches!(err, Some(RtmpError::BufferLimit { max, .. }) if max == SMALL.max_buffered),
        "{err:?}"
    );
}

#[test]
fn chunk_decoder_random_streams() {
    let mut rng = Rng(2024);
    for _ in 0..5000 {
        let mut dec = ChunkDecoder::new(SMALL);
        let data = rng.bytes(1500);
        dec.push(&data);
        while let Ok(Some(m)) = dec.next_message() {
            assert!(m.payload.len() <= SMALL.max_message_len as usize);
        }
        assert!(dec.buffered_message_bytes() <= SMALL.max_buffered);
    }
}

#[test]
fn amf0_random_and_prefixed_garbage() {
    let mut rng = Rng(8);
    for i in 0..50_000 {
        let mut data = Vec::new();
        if i % 2 == 0 {
            data.push([0x02, 0x03, 0x08, 0x0A, 0x10, 0x0C, 0x0F][rng.below(7)]);
        }
        data.extend(rng.bytes(200));
        let _ = decode_all(&data);
        let _ = Command::parse(&data, i % 3 == 0);
    }
    // Deep nesting in every container kind is refused, at any depth limit.
    for m in [0x03u8, 0x08, 0x0A, 0x10] {
        let mut data = Vec::new();
        for _ in 0..10_000 {
            match m {
                0x03 => data.extend_from_slice(&[0x03, 0, 1, b'k']),
                0x08 => data.extend_from_slice(&[0x08, 0, 0, 0, 1, 0, 1, b'k']),
                0x0A => data.extend_from_slice(&[0x0A, 0, 0, 0, 1]),
                _ => data.extend_from_slice(&[0x10, 0, 1, b'C', 0, 1, b'k']),
            }
        }
        let limits = Amf0Limits {
            max_depth: 8,
            max_values: 1_000_000,
        };
        assert!(Amf0Decoder::with_limits(&data, limits)
            .decode_all()
            .is_err());
        assert!(decode_all(&data).is_err());
    }
}
