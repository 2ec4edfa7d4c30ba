//! ServerSession driven by hand-made bytes: exact protocol behaviour and error paths.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use bytes::{BufMut, Bytes, BytesMut};
use lunora_rtmp::{
    csid, encode_message, msg_type, Amf0Value, AmfError, ChunkDecoder, ChunkLimits,
    ClientHandshake, Command, Message, RtmpError, ServerConfig, ServerEvent, ServerSession,
    UserControl, HANDSHAKE_SIZE,
};

/// A hand-driven client: completes the handshake, then sends raw messages and decodes
/// everything the server answers.
struct Raw {
    server: ServerSession,
    chunk_size: u32,
    decoder: ChunkDecoder,
}

impl Raw {
    fn new(config: ServerConfig) -> Self {
        let mut server = ServerSession::new(config);
        let mut hs = ClientHandshake::new([5; 32], 0, true);
        server.handle_input(&hs.start().unwrap()).unwrap();
        let mut s0s1s2 = Vec::new();
        while let Some(b) = server.poll_transmit() {
            s0s1s2.extend_from_slice(&b);
        }
        assert_eq!(s0s1s2.len(), 1 + 2 * HANDSHAKE_SIZE);
        let mut c2 = Vec::new();
        hs.handle(&s0s1s2, &mut c2).unwrap();
        server.handle_input(&c2.concat()).unwrap();
        assert!(server.is_handshake_done());
        Raw {
            server,
            chunk_size: 128,
            decoder: ChunkDecoder::new(ChunkLimits::default()),
        }
    }

    fn bytes(&self, msg: &Message, cs: u32) -> Bytes {
        encode_message(msg, cs, self.chunk_size).unwrap()
    }

    fn send(&mut self, msg: &Message, cs: u32) -> Result<(), RtmpError> {
        let b = self.bytes(msg, cs);
        self.server.handle_input(&b)
    }

    fn command(&mut self, stream_id: u32, cmd: Command) -> Result<(), RtmpError> {
        self.send(&Message::command(stream_id, &cmd).unwrap(), csid::COMMAND)
    }

    fn connect(&mut self) {
        let obj = Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("tcUrl", Amf0Value::string("rtmp://h/live")),
        ]);
        self.command(
            0,
            Command {
                name: "connect".into(),
                transaction_id: 1.0,
                command_object: obj,
                args: vec![],
            },
        )
        .unwrap();
    }

    /// Messages the server sent since the last call.
    fn received(&mut self) -> Vec<Message> {
        while let Some(b) = self.server.poll_transmit() {
            self.decoder.push(&b);
        }
        let mut out = Vec::new();
        while let Some(m) = self.decoder.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    fn events(&mut self) -> Vec<ServerEvent> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }
}

fn commands(msgs: &[Message]) -> Vec<Command> {
    msgs.iter()
        .filter(|m| m.type_id == msg_type::COMMAND_AMF0)
        .map(|m| Command::parse(&m.payload, false).unwrap())
        .collect()
}

#[test]
fn connect_answer_sequence() {
    let mut raw = Raw::new(ServerConfig::default());
    raw.connect();
    let msgs = raw.received();
    let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
    assert_eq!(
        types,
        vec![
            msg_type::WINDOW_ACK_SIZE,
            msg_type::SET_PEER_BANDWIDTH,
            msg_type::SET_CHUNK_SIZE,
            msg_type::COMMAND_AMF0,
            msg_type::COMMAND_AMF0
        ]
    );
    assert_eq!(&msgs[0].payload[..], &2_500_000u32.to_be_bytes());
    assert_eq!(&msgs[1].payload[..], &[0x00, 0x26, 0x25, 0xA0, 2]);
    assert_eq!(&msgs[2].payload[..], &4096u32.to_be_bytes());
    let cmds = commands(&msgs);
    assert_eq!(cmds[0].name, "_result");
    assert_eq!(cmds[0].transaction_id, 1.0);
    assert_eq!(
        cmds[0].args[0].get("code").and_then(Amf0Value::as_str),
        Some("NetConnection.Connect.Success")
    );
    assert_eq!(cmds[1].name, "onBWDone");
    assert_eq!(
        raw.events(),
        vec![ServerEvent::Connected {
            app: "live".into(),
            tc_url: Some("rtmp://h/live".into()),
            command_object: Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("tcUrl", Amf0Value::string("rtmp://h/live")),
            ]),
        }]
    );
}

#[test]
fn amf3_command_message_is_accepted() {
    let mut raw = Raw::new(ServerConfig::default());
    let cmd = Command {
        name: "connect".into(),
        transaction_id: 1.0,
        command_object: Amf0Value::object([("app", Amf0Value::string("a3"))]),
        args: vec![],
    };
    let mut payload = BytesMut::new();
    payload.put_u8(0);
    payload.put_slice(&cmd.encode().unwrap());
    raw.send(
        &Message::new(msg_type::COMMAND_AMF3, 0, payload.freeze()),
        csid::COMMAND,
    )
    .unwrap();
    assert!(matches!(&raw.events()[..], [ServerEvent::Connected { app, .. }] if app == "a3"));
}

#[test]
fn ack_is_sent_when_the_window_is_crossed() {
    let mut raw = Raw::new(ServerConfig::default());
    raw.send(&Message::window_ack_size(1000), csid::CONTROL)
        .unwrap();
    raw.connect();
    raw.received();
    assert_eq!(
        raw.server.stats().acks_sent,
        0,
        "connect is under one window"
    );
    // Each ~600-byte (unknown, ignored) user control message adds bytes.
    let mut acks = Vec::new();
    for _ in 0..10 {
        let msg = Message::new(
            msg_type::USER_CONTROL,
            0,
            UserControl::Other {
                event: 99,
                data: Bytes::from(vec![0u8; 600]),
            }
            .encode(),
        );
        raw.send(&msg, csid::CONTROL).unwrap();
        for m in raw.received() {
            if m.type_id == msg_type::ACKNOWLEDGEMENT {
                let seq =
                    u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
                acks.push(seq);
            }
        }
    }
    let total = raw.server.stats().bytes_received;
    // An ack carries the exact byte count at the time; none is more than a window late.
    // ~6.2 KB in 618-byte steps: an ack each time a 1000-byte window is crossed.
    assert_eq!(acks.len(), 5, "{acks:?}");
    assert!(acks.windows(2).all(|w| w[1] - w[0] >= 1000));
    assert!(total - u64::from(*acks.last().unwrap()) < 1000);
    assert_eq!(raw.server.stats().acks_sent as usize, acks.len());
}

#[test]
fn ping_request_is_answered() {
    let mut raw = Raw::new(ServerConfig::default());
    raw.send(
        &Message::user_control(UserControl::PingRequest(31337)),
        csid::CONTROL,
    )
    .unwrap();
    let msgs = raw.received();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        UserControl::parse(&msgs[0].payload).unwrap(),
        UserControl::PingResponse(31337)
    );
}

#[test]
fn command_before_connect_is_a_protocol_error_then_closed() {
    let mut raw = Raw::new(ServerConfig::default());
    let err = raw
        .command(0, Command::new("createStream", 2.0, vec![]))
        .unwrap_err();
    assert_eq!(err.kind(), "protocol");
    assert_eq!(raw.server.handle_input(&[0]), Err(RtmpError::Closed));
}

#[test]
fn chunk_size_zero_is_refused() {
    let mut raw = Raw::new(ServerConfig::default());
    let msg = Message::new(
        msg_type::SET_CHUNK_SIZE,
        0,
        Bytes::from_static(&[0, 0, 0, 0]),
    );
    let err = raw.send(&msg, csid::CONTROL).unwrap_err();
    assert_eq!(err, RtmpError::ChunkSizeInvalid(0));
    assert_eq!(err.kind(), "chunk_size_invalid");
    assert!(err.to_string().contains("invalid chunk size 0"));
}

#[test]
fn huge_declared_message_is_refused() {
    let mut raw = Raw::new(ServerConfig::default());
    // Type-0 header declaring 16 MiB - 1 of video, no body.
    let hdr = [0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0];
    assert_eq!(
        raw.server.handle_input(&hdr),
        Err(RtmpError::MessageTooLarge {
            len: 0xFF_FFFF,
            max: 8 * 1024 * 1024
        })
    );
    assert!(raw.server.buffered_bytes() <= hdr.len());
}

#[test]
fn truncated_and_deep_amf_commands_are_refused() {
    let mut raw = Raw::new(ServerConfig::default());
    let mut payload = Command::new("connect", 1.0, vec![])
        .encode()
        .unwrap()
        .to_vec();
    payload.truncate(payload.len() - 3);
    let err = raw
        .send(
            &Message::new(msg_type::COMMAND_AMF0, 0, Bytes::from(payload)),
            csid::COMMAND,
        )
        .unwrap_err();
    assert_eq!(err, RtmpError::Amf(AmfError::Truncated));

    let mut raw = Raw::new(ServerConfig::default());
    let mut payload = BytesMut::new();
    Amf0Value::string("connect").encode(&mut payload).unwrap();
    Amf0Value::Number(1.0).encode(&mut payload).unwrap();
    for _ in 0..100 {
        payload.put_slice(&[0x03, 0, 1, b'x']);
    }
    let err = raw
        .send(
            &Message::new(msg_type::COMMAND_AMF0, 0, payload.freeze()),
            csid::COMMAND,
        )
        .unwrap_err();
    assert_eq!(err, RtmpError::Amf(AmfError::TooDeep(32)));
    assert_eq!(err.kind(), "amf");
}

#[test]
fn publish_on_a_stream_never_created_is_refused() {
    let mut raw = Raw::new(ServerConfig::default());
    raw.connect();
    let err = raw
        .command(
            7,
            Command::new("publish", 0.0, vec![Amf0Value::string("k")]),
        )
        .unwrap_err();
    assert!(matches!(err, RtmpError::Protocol(_)));
}

#[test]
fn stream_count_is_capped_with_an_error_answer() {
    let mut raw = Raw::new(ServerConfig {
        max_streams: 2,
        ..ServerConfig::default()
    });
    raw.connect();
    raw.received();
    for tx in 2..6 {
        raw.command(0, Command::new("createStream", f64::from(tx), vec![]))
            .unwrap();
    }
    let names: Vec<String> = commands(&raw.received())
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["_result", "_result", "_error", "_error"]);
}

#[test]
fn second_publish_while_pending_is_answered_bad_name() {
    let mut raw = Raw::new(ServerConfig::default());
    raw.connect();
    raw.command(0, Command::new("createStream", 2.0, vec![]))
        .unwrap();
    raw.command(0, Command::new("createStream", 3.0, vec![]))
        .unwrap();
    raw.received();
    raw.command(
        1,
        Command::new("publish", 0.0, vec![Amf0Value::string("a")]),
    )
    .unwrap();
    raw.command(
        2,
        Command::new("publish", 0.0, vec![Amf0Value::string("b")]),
    )
    .unwrap();
    let cmds = commands(&raw.received());
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].args[0].get("code").and_then(Amf0Value::as_str),
        Some("NetStream.Publish.BadName")
    );
    let requested = raw
        .events()
        .into_iter()
        .filter(|e| matches!(e, ServerEvent::PublishRequested { .. }))
        .count();
    assert_eq!(requested, 1);
}

fn publishing_raw() -> Raw {
    let mut raw = Raw::new(ServerConfig::default());
    raw.connect();
    raw.command(0, Command::new("createStream", 2.0, vec![]))
        .unwrap();
    raw.command(
        1,
        Command::new(
            "publish",
            0.0,
            vec![Amf0Value::string("k"), Amf0Value::string("live")],
        ),
    )
    .unwrap();
    raw.events();
    raw.server.accept_publish().unwrap();
    let cmds = commands(&raw.received());
    assert_eq!(
        cmds.last().unwrap().args[0]
            .get("code")
            .and_then(Amf0Value::as_str),
        Some("NetStream.Publish.Start")
    );
    raw
}

#[test]
fn aggregate_messages_are_split_into_media_events() {
    let mut raw = publishing_raw();
    let mut p = BytesMut::new();
    for (t, ts, body) in [(9u8, 500u32, &b"video"[..]), (8, 520, &b"audio"[..])] {
        p.put_u8(t);
        p.put_slice(&(body.len() as u32).to_be_bytes()[1..]);
        p.put_slice(&ts.to_be_bytes()[1..]);
        p.put_u8(0);
        p.put_slice(&[0, 0, 0]);
        p.put_slice(body);
        p.put_u32(11 + body.len() as u32);
    }
    let msg = Message {
        timestamp: 1000,
        type_id: msg_type::AGGREGATE,
        stream_id: 1,
        payload: p.freeze(),
    };
    raw.send(&msg, 8).unwrap();
    assert_eq!(
        raw.events(),
        vec![
            ServerEvent::Video {
                stream_id: 1,
                timestamp: 1000,
                payload: Bytes::from_static(b"video")
            },
            ServerEvent::Audio {
                stream_id: 1,
                timestamp: 1020,
                payload: Bytes::from_static(b"audio")
            },
        ]
    );
}

#[test]
fn metadata_with_and_without_set_data_frame() {
    let mut raw = publishing_raw();
    let meta = Amf0Value::EcmaArray(vec![("fps".into(), Amf0Value::Number(25.0))]);
    for values in [
        vec![
            Amf0Value::string("@setDataFrame"),
            Amf0Value::string("onMetaData"),
            meta.clone(),
        ],
        vec![Amf0Value::string("onMetaData"), meta.clone()],
    ] {
        raw.send(&Message::data(1, 0, &values).unwrap(), csid::STREAM)
            .unwrap();
        assert_eq!(
            raw.events(),
            vec![ServerEvent::Metadata {
                stream_id: 1,
                timestamp: 0,
                metadata: meta.clone()
            }]
        );
    }
    // Other data messages are ignored.
    raw.send(
        &Message::data(1, 0, &[Amf0Value::string("onTextData")]).unwrap(),
        csid::STREAM,
    )
    .unwrap();
    assert!(raw.events().is_empty());
}

#[test]
fn abort_mid_message_then_continue() {
    let mut raw = publishing_raw();
    let video = Message {
        timestamp: 40,
        type_id: msg_type::VIDEO,
        stream_id: 1,
        payload: Bytes::from(vec![7u8; 300]),
    };
    let enc = raw.bytes(&video, csid::VIDEO);
    raw.server.handle_input(&enc[..12 + 128]).unwrap();
    assert!(raw.server.buffered_bytes() >= 128);
    raw.send(&Message::abort(csid::VIDEO), csid::CONTROL)
        .unwrap();
    raw.send(&video, csid::VIDEO).unwrap();
    assert_eq!(
        raw.events(),
        vec![ServerEvent::Video {
            stream_id: 1,
            timestamp: 40,
            payload: video.payload.clone()
        }]
    );
    assert_eq!(raw.server.buffered_bytes(), 0);
}

#[test]
fn chunk_size_change_from_the_publisher_mid_stream() {
    let mut raw = publishing_raw();
    let mut all = BytesMut::new();
    let mk = |ts: u32, n: usize| Message {
        timestamp: ts,
        type_id: msg_type::VIDEO,
        stream_id: 1,
        payload: Bytes::from(vec![ts as u8; n]),
    };
    all.put_slice(&encode_message(&mk(1, 1000), csid::VIDEO, 128).unwrap());
    all.put_slice(&encode_message(&Message::set_chunk_size(60_000), csid::CONTROL, 128).unwrap());
    all.put_slice(&encode_message(&mk(2, 100_000), csid::VIDEO, 60_000).unwrap());
    all.put_slice(&encode_message(&Message::set_chunk_size(7), csid::CONTROL, 60_000).unwrap());
    all.put_slice(&encode_message(&mk(3, 50), csid::VIDEO, 7).unwrap());
    // Deliver in awkward pieces.
    for piece in all.chunks(333) {
        raw.server.handle_input(piece).unwrap();
    }
    let sizes: Vec<(u32, usize)> = raw
        .events()
        .into_iter()
        .map(|e| match e {
            ServerEvent::Video {
                timestamp, payload, ..
            } => (timestamp, payload.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![(1, 1000), (2, 100_000), (3, 50)]);
    assert_eq!(raw.server.in_chunk_size(), 7);
}

#[test]
fn api_misuse_is_invalid_state_and_not_fatal() {
    let mut raw = Raw::new(ServerConfig::default());
    let err = raw.server.accept_publish().unwrap_err();
    assert_eq!(err.kind(), "invalid_state");
    assert!(raw.server.accept_play().is_err());
    assert!(raw.server.send_video(0, Bytes::new()).is_err());
    // The session still works.
    raw.connect();
    assert_eq!(raw.events().len(), 1);
}
