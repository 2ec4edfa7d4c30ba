//! Feeds arbitrary bytes to a ServerSession past a simple handshake, optionally after a
//! canned connect/createStream/publish (or play) so that deep states are reached quickly.
//! Publish and play requests are accepted, and media is sent back when playing.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lunora_rtmp::{
    csid, encode_message, Amf0Value, ChunkLimits, Command, Message, ServerConfig, ServerEvent,
    ServerSession, HANDSHAKE_SIZE,
};

fn command(stream_id: u32, cmd: Command) -> Bytes {
    let cs = if stream_id == 0 { csid::COMMAND } else { csid::STREAM };
    let msg = Message::command(stream_id, &cmd).unwrap_or_else(|_| Message::set_chunk_size(128));
    encode_message(&msg, cs, 128).unwrap_or_default()
}

fn prelude(play: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let connect = Command {
        name: "connect".into(),
        transaction_id: 1.0,
        command_object: Amf0Value::object([("app", Amf0Value::string("live"))]),
        args: vec![],
    };
    out.extend_from_slice(&command(0, connect));
    out.extend_from_slice(&command(0, Command::new("createStream", 2.0, vec![])));
    let name = if play { "play" } else { "publish" };
    out.extend_from_slice(&command(
        1,
        Command::new(name, 0.0, vec![Amf0Value::string("key")]),
    ));
    out
}

fn drain(server: &mut ServerSession) {
    while let Some(ev) = server.poll_event() {
        match ev {
            ServerEvent::PublishRequested { .. } => {
                let _ = server.accept_publish();
            }
            ServerEvent::PlayRequested { .. } => {
                let _ = server.accept_play();
                let _ = server.send_video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0]));
                let _ = server.send_metadata(&Amf0Value::Null);
            }
            ServerEvent::Video { timestamp, payload, .. } => {
                let _ = server.send_audio(timestamp, payload);
            }
            _ => {}
        }
    }
    while server.poll_transmit().is_some() {}
}

/// Sessions past the handshake (and the prelude), built once and cloned per input.
fn template(mode: u8) -> ServerSession {
    static TEMPLATES: OnceLock<Vec<ServerSession>> = OnceLock::new();
    let all = TEMPLATES.get_or_init(|| {
        (0..3)
            .map(|m| {
                let mut server = ServerSession::new(ServerConfig {
                    limits: LIMITS,
                    ..ServerConfig::default()
                });
                let mut input = vec![3u8];
                input.extend_from_slice(&[0u8; 2 * HANDSHAKE_SIZE]);
                match m {
                    1 => input.extend_from_slice(&prelude(false)),
                    2 => input.extend_from_slice(&prelude(true)),
                    _ => {}
                }
                server.handle_input(&input).expect("canned input is valid");
                drain(&mut server);
                server
            })
            .collect()
    });
    all[usize::from(mode % 3)].clone()
}

const LIMITS: ChunkLimits = ChunkLimits {
    max_message_len: 1 << 20,
    max_buffered: 4 << 20,
    max_chunk_streams: 32,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut server = template(mode);
    let piece = 1 + usize::from(mode / 3) * 37;
    for chunk in data.chunks(piece) {
        let r = server.handle_input(chunk);
        assert!(
            server.buffered_bytes()
                <= LIMITS.max_buffered + LIMITS.max_message_len as usize + 18 + piece
        );
        drain(&mut server);
        if r.is_err() {
            assert!(server.handle_input(&[0]).is_err());
            return;
        }
    }
});
