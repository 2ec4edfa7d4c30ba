//! AMF0 decoding of arbitrary bytes: never panics, and whatever decodes re-encodes stably.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lunora_rtmp::amf0::{decode_all, encode_all};
use lunora_rtmp::Command;

fuzz_target!(|data: &[u8]| {
    let _ = Command::parse(data, false);
    let _ = Command::parse(data, true);
    if let Ok(values) = decode_all(data) {
        let once = encode_all(&values).expect("decoded values encode");
        let again = decode_all(&once).expect("encoded values decode");
        let twice = encode_all(&again).expect("re-decoded values encode");
        assert_eq!(once, twice);
    }
});
