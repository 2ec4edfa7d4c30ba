//! The codec helpers the demuxer applies to access units: ADTS splitting and keyframe
//! detection on arbitrary bytes never panic, and ADTS frames stay inside their input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lunora_mpegts::{h264_is_keyframe, hevc_is_keyframe, split_adts};

fuzz_target!(|data: &[u8]| {
    let _ = h264_is_keyframe(data);
    let _ = hevc_is_keyframe(data);
    let mut total = 0usize;
    for frame in split_adts(Bytes::copy_from_slice(data), 0).take(10_000) {
        match frame {
            Ok(f) => {
                total += f.adts.len();
                assert!(total <= data.len());
            }
            Err(_) => break,
        }
    }
});
