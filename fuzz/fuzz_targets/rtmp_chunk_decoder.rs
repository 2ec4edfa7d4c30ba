//! Arbitrary bytes into the chunk decoder, delivered in pieces; then a round trip of every
//! decoded message through the encoder.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lunora_rtmp::{encode_message, ChunkDecoder, ChunkLimits, DEFAULT_CHUNK_SIZE};

const LIMITS: ChunkLimits = ChunkLimits {
    max_message_len: 1 << 20,
    max_buffered: 2 << 20,
    max_chunk_streams: 16,
};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let mut dec = ChunkDecoder::new(LIMITS);
    for piece in data.chunks(1 + usize::from(split)) {
        dec.push(piece);
        loop {
            match dec.next_message() {
                Ok(Some(msg)) => {
                    assert!(msg.payload.len() <= LIMITS.max_message_len as usize);
                    // Whatever decodes re-encodes (at the initial chunk size a fresh decoder
                    // expects) and decodes to the same message.
                    let enc = encode_message(&msg, 9, DEFAULT_CHUNK_SIZE).expect("encodable");
                    let mut again = ChunkDecoder::new(LIMITS);
                    again.push(&enc);
                    let back = again.next_message().expect("decodes").expect("complete");
                    assert_eq!(back, msg);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(dec.buffered_message_bytes() <= LIMITS.max_buffered);
    }
});
