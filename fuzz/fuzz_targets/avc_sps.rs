//! The SPS parser and Annex B <-> AVCC conversion on arbitrary bytes.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use lunora_flv::{annexb_to_avcc, avcc_to_annexb, Sps};

fuzz_target!(|data: &[u8]| {
    if let Ok(sps) = Sps::parse(data) {
        assert!(sps.width > 0 && sps.height > 0);
        assert!(sps.width <= 65536 && sps.height <= 2 * 65536);
    }
    // Annex B -> AVCC -> Annex B -> AVCC is stable after the first conversion.
    let mut avcc = BytesMut::new();
    let n = annexb_to_avcc(data, &mut avcc).expect("in-memory input fits");
    let mut annexb = BytesMut::new();
    assert_eq!(avcc_to_annexb(&avcc, 4, &mut annexb).expect("own output"), n);
    let mut avcc2 = BytesMut::new();
    assert_eq!(annexb_to_avcc(&annexb, &mut avcc2).expect("own output"), n);
    assert_eq!(avcc, avcc2);
    for size in [1, 2] {
        let _ = avcc_to_annexb(data, size, &mut BytesMut::new());
    }
});
