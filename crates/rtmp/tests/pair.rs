//! A ClientSession and a ServerSession back to back in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use bytes::Bytes;
use common::{Pair, Rng, FIXTURE_FLV};
use lunora_flv::{FlvReader, TagType, VideoTag};
use lunora_rtmp::amf0::Amf0Decoder;
use lunora_rtmp::{
    encode_message, msg_type, Amf0Value, ClientConfig, ClientEvent, ClientRole, HandshakeMode,
    Message, PlayRejection, PublishRejection, ServerConfig, ServerEvent, ServerSession,
};

/// Connects and publishes `key`, accepting it; returns the pair with events cleared.
fn published(key: &str) -> Pair {
    let mut p = Pair::publish(key);
    p.drive();
    let events = p.take_server_events();
    assert!(
        matches!(
            &events[..],
            [ServerEvent::Connected { app, tc_url: Some(tc), .. }, ServerEvent::PublishRequested { stream_id: 1, app: app2, stream_key, publish_type }]
                if app == "live" && tc == "rtmp://127.0.0.1/live" && app2 == "live" && stream_key == key && publish_type == "live"
        ),
        "{events:?}"
    );
    p.server.accept_publish().unwrap();
    p.drive();
    assert_eq!(
        p.take_client_events(),
        vec![
            ClientEvent::Connected,
            ClientEvent::StreamCreated { stream_id: 1 },
            ClientEvent::PublishStarted { stream_id: 1 },
        ]
    );
    p
}

#[test]
fn publish_connect_create_accept() {
    let p = published("key123");
    assert_eq!(
        p.client.handshake_mode(),
        HandshakeMode::Digest { scheme: 0 }
    );
    assert_eq!(
        p.server.handshake_mode(),
        HandshakeMode::Digest { scheme: 0 }
    );
    assert_eq!(p.server.app(), Some("live"));
    assert_eq!(p.server.publish_stream_id(), Some(1));
    assert_eq!(p.client.stream_id(), Some(1));
    // Both sides switched to 4096-byte chunks.
    assert_eq!(p.server.in_chunk_size(), 4096);
    assert_eq!(p.server.out_chunk_size(), 4096);
}

#[test]
fn publish_a_real_capture_end_to_end() {
    let mut p = published("cam1");
    p.split = Some(Rng(99));
    let mut reader = FlvReader::new();
    reader.push(FIXTURE_FLV);
    let mut sent = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        match tag.tag_type {
            TagType::Script => {
                let vals = Amf0Decoder::new(&tag.data).decode_all().unwrap();
                p.client.send_metadata(&vals[1]).unwrap();
            }
            TagType::Video => p
                .client
                .send_video(tag.timestamp, tag.data.clone())
                .unwrap(),
            TagType::Audio => p
                .client
                .send_audio(tag.timestamp, tag.data.clone())
                .unwrap(),
            TagType::Other(_) => {}
        }
        sent.push(tag);
        p.drive();
    }
    let events = p.take_server_events();
    assert_eq!(events.len(), sent.len());
    for (tag, ev) in sent.iter().zip(&events) {
        match (tag.tag_type, ev) {
            (TagType::Script, ServerEvent::Metadata { metadata, .. }) => {
                assert_eq!(
                    metadata.get("width").and_then(Amf0Value::as_f64),
                    Some(320.0)
                );
                assert_eq!(
                    metadata.get("height").and_then(Amf0Value::as_f64),
                    Some(240.0)
                );
            }
            (
                TagType::Video,
                ServerEvent::Video {
                    stream_id: 1,
                    timestamp,
                    payload,
                },
            )
            | (
                TagType::Audio,
                ServerEvent::Audio {
                    stream_id: 1,
                    timestamp,
                    payload,
                },
            ) => {
                assert_eq!(*timestamp, tag.timestamp);
                assert_eq!(payload, &tag.data);
            }
            other => panic!("mismatch {other:?}"),
        }
    }
    // The keyframe survived the trip and still parses as H.264.
    let first_video = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::Video { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .unwrap();
    assert!(VideoTag::parse(first_video).unwrap().is_sequence_header());
}

#[test]
fn publish_rejected_with_bad_name() {
    let mut p = Pair::publish("wrong-key");
    p.drive();
    assert!(p
        .take_server_events()
        .iter()
        .any(|e| matches!(e, ServerEvent::PublishRequested { .. })));
    p.server
        .reject_publish(PublishRejection::BadName, "unknown stream key")
        .unwrap();
    p.drive();
    let events = p.take_client_events();
    assert_eq!(
        events.last(),
        Some(&ClientEvent::PublishFailed {
            code: "NetStream.Publish.BadName".into(),
            description: "unknown stream key".into(),
            key_rejected: true,
        })
    );
    // Nothing can be sent and nothing is pending any more.
    assert!(p.client.send_video(0, Bytes::new()).is_err());
    assert!(p.server.accept_publish().is_err());
}

#[test]
fn media_before_accept_is_dropped_not_reported() {
    let mut p = Pair::publish("k");
    p.drive();
    p.take_server_events();
    // The client is not allowed to send yet.
    assert!(p.client.send_video(0, Bytes::from_static(b"x")).is_err());
    p.server.accept_publish().unwrap();
    p.drive();
    assert!(p.server.accept_publish().is_err(), "accepting twice");
}

#[test]
fn close_reports_unpublish_and_delete() {
    let mut p = published("k");
    p.client.close().unwrap();
    p.drive();
    assert_eq!(
        p.take_server_events(),
        vec![
            ServerEvent::FcUnpublish {
                stream_key: "k".into()
            },
            ServerEvent::PublishStopped {
                stream_id: 1,
                stream_key: "k".into()
            },
            ServerEvent::StreamDeleted { stream_id: 1 },
        ]
    );
    assert_eq!(p.server.publish_stream_id(), None);
}

#[test]
fn extended_timestamps_through_the_pair() {
    let mut p = published("k");
    let stamps = [0u32, 0xFF_FFFE, 0xFF_FFFF, 0x0100_0000, u32::MAX - 1];
    for (i, ts) in stamps.iter().enumerate() {
        // 10000 bytes: three 4096-byte chunks, so the extended field repeats on type 3.
        p.client
            .send_video(*ts, Bytes::from(vec![i as u8; 10_000]))
            .unwrap();
    }
    p.drive();
    let got: Vec<u32> = p
        .take_server_events()
        .into_iter()
        .map(|e| match e {
            ServerEvent::Video {
                timestamp, payload, ..
            } => {
                assert_eq!(payload.len(), 10_000);
                timestamp
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, stamps);
}

#[test]
fn server_acknowledges_at_the_client_window() {
    let mut cfg = ClientConfig::new("live", "rtmp://127.0.0.1/live");
    cfg.window_ack_size = 10_000;
    let mut p = Pair::new(
        cfg,
        ClientRole::Publish {
            stream_key: "k".into(),
        },
        ServerConfig::default(),
    );
    p.drive();
    p.server.accept_publish().unwrap();
    p.drive();
    assert_eq!(p.client.last_ack_sequence(), None);
    for i in 0..20u32 {
        p.client
            .send_video(i * 40, Bytes::from(vec![0u8; 3000]))
            .unwrap();
        p.drive();
    }
    let server = p.server.stats();
    let client = p.client.stats();
    // ~60 KB sent in 20 deliveries: one ack per 10 KB window crossed.
    assert!(server.acks_sent >= 5, "{server:?}");
    assert_eq!(client.our_window_ack_size, Some(10_000));
    assert_eq!(server.peer_window_ack_size, Some(10_000));
    let acked = client.last_ack_received.unwrap();
    assert!(u64::from(acked) <= client.bytes_sent);
    assert!(client.unacknowledged_bytes() < 10_000, "{client:?}");
    assert_eq!(client.acks_received, server.acks_sent);
    assert_eq!(client.peer_bandwidth, Some(2_500_000));
    assert_eq!(server.bytes_received, client.bytes_sent);
}

#[test]
fn ping_round_trip() {
    let mut p = published("k");
    p.server.send_ping(4242).unwrap();
    p.drive();
    assert_eq!(
        p.take_server_events(),
        vec![ServerEvent::PingResponse { timestamp: 4242 }]
    );
    p.client.send_ping(7).unwrap();
    p.drive();
    assert_eq!(
        p.take_client_events(),
        vec![ClientEvent::PingResponse { timestamp: 7 }]
    );
}

fn playing(name: &str) -> Pair {
    let mut p = Pair::play(name);
    p.drive();
    let events = p.take_server_events();
    assert!(
        matches!(&events[1], ServerEvent::PlayRequested { stream_id: 1, stream_name, start, .. } if stream_name == name && *start == -2.0),
        "{events:?}"
    );
    p.server.accept_play().unwrap();
    p.drive();
    let events = p.take_client_events();
    assert_eq!(events[0], ClientEvent::Connected);
    assert!(events.contains(&ClientEvent::StreamBegin { stream_id: 1 }));
    assert!(events
        .iter()
        .any(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Play.Reset")));
    assert_eq!(
        events.last(),
        Some(&ClientEvent::PlayStarted { stream_id: 1 })
    );
    p
}

#[test]
fn play_receives_metadata_and_media() {
    let mut p = playing("cam1");
    assert_eq!(p.server.play_stream_id(), Some(1));
    let meta = Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(320.0))]);
    p.server.send_metadata(&meta).unwrap();
    p.server
        .send_video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]))
        .unwrap();
    p.server
        .send_audio(23, Bytes::from(vec![0xAF; 9000]))
        .unwrap();
    p.drive();
    assert_eq!(
        p.take_client_events(),
        vec![
            ClientEvent::Metadata {
                timestamp: 0,
                metadata: meta
            },
            ClientEvent::Video {
                timestamp: 0,
                payload: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2])
            },
            ClientEvent::Audio {
                timestamp: 23,
                payload: Bytes::from(vec![0xAF; 9000])
            },
        ]
    );
    p.server.notify_unpublished().unwrap();
    p.drive();
    let events = p.take_client_events();
    assert!(events.contains(&ClientEvent::StreamEof { stream_id: 1 }));
}

#[test]
fn play_rejected() {
    let mut p = Pair::play("nope");
    p.drive();
    p.server
        .reject_play(PlayRejection::StreamNotFound, "no such stream")
        .unwrap();
    p.drive();
    assert_eq!(
        p.take_client_events().last(),
        Some(&ClientEvent::PlayFailed {
            code: "NetStream.Play.StreamNotFound".into(),
            description: "no such stream".into()
        })
    );
    assert!(p.server.send_video(0, Bytes::new()).is_err());
}

#[test]
fn encode_once_send_to_many_players() {
    let mut players: Vec<Pair> = (0..3).map(|i| playing(&format!("s{i}"))).collect();
    let chunk_size = players[0].server.out_chunk_size();
    let stream_id = players[0].server.play_stream_id().unwrap();
    let frame = Message {
        timestamp: 0x0123_4567,
        type_id: msg_type::VIDEO,
        stream_id,
        payload: Bytes::from((0..20_000u32).map(|i| i as u8).collect::<Vec<_>>()),
    };
    let shared = encode_message(&frame, lunora_rtmp::csid::VIDEO, chunk_size).unwrap();
    for p in &mut players {
        assert_eq!(p.server.out_chunk_size(), chunk_size);
        p.server.send_preencoded(shared.clone()).unwrap();
        // Interleave a per-session message to show shared bytes are position independent.
        p.server.send_audio(5, Bytes::from_static(b"a")).unwrap();
        p.server.send_preencoded(shared.clone()).unwrap();
        p.drive();
        let events = p.take_client_events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0],
            ClientEvent::Video {
                timestamp: 0x0123_4567,
                payload: frame.payload.clone()
            }
        );
        assert_eq!(events[0], events[2]);
    }
    // A session that is not playing refuses pre-encoded media.
    let mut idle = ServerSession::new(ServerConfig::default());
    assert!(idle.send_preencoded(shared).is_err());
}

#[test]
fn random_splits_do_not_change_the_outcome() {
    for seed in 1..20 {
        let mut p = Pair::publish("split");
        p.split = Some(Rng(seed));
        p.drive();
        p.server.accept_publish().unwrap();
        p.drive();
        assert!(p
            .take_client_events()
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
        for i in 0..5u32 {
            p.client
                .send_audio(i, Bytes::from(vec![i as u8; 1 + 2000 * i as usize]))
                .unwrap();
        }
        p.drive();
        let sizes: Vec<usize> = p
            .take_server_events()
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Audio { payload, .. } => Some(payload.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, vec![1, 2001, 4001, 6001, 8001], "seed {seed}");
    }
}

#[test]
fn simple_handshake_client() {
    let mut cfg = ClientConfig::new("app", "rtmp://h/app");
    cfg.digest_handshake = false;
    let mut p = Pair::new(
        cfg,
        ClientRole::Publish {
            stream_key: "k".into(),
        },
        ServerConfig::default(),
    );
    p.drive();
    assert_eq!(p.server.handshake_mode(), HandshakeMode::Simple);
    assert_eq!(p.client.handshake_mode(), HandshakeMode::Simple);
    assert!(p
        .take_server_events()
        .iter()
        .any(|e| matches!(e, ServerEvent::PublishRequested { .. })));
}

#[test]
fn hevc_fourcc_list_is_announced() {
    let mut cfg = ClientConfig::new("live", "rtmp://h/live");
    cfg.fourcc_list = vec!["hvc1".into(), "avc1".into()];
    let mut p = Pair::new(
        cfg,
        ClientRole::Publish {
            stream_key: "k".into(),
        },
        ServerConfig::default(),
    );
    p.drive();
    let events = p.take_server_events();
    let ServerEvent::Connected { command_object, .. } = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(
        command_object.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![
            Amf0Value::string("hvc1"),
            Amf0Value::string("avc1")
        ]))
    );
}
