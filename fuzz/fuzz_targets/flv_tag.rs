//! FLV audio/video tag bodies, codec records and the FLV file reader on arbitrary bytes.
//! Whatever parses must write back to something that parses to the same value.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lunora_flv::{
    AdtsFrames, AudioSpecificConfig, AudioTag, AvcDecoderConfigurationRecord, FlvReader,
    VideoTag,
};

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    if let Ok(tag) = VideoTag::parse(b.clone()) {
        if let Ok(enc) = tag.encode() {
            assert_eq!(VideoTag::parse(enc).expect("re-parse"), tag);
        }
    }
    if let Ok(tag) = AudioTag::parse(b.clone()) {
        assert_eq!(AudioTag::parse(tag.encode()).expect("re-parse"), tag);
    }
    if let Ok(rec) = AvcDecoderConfigurationRecord::parse(b.clone()) {
        if let Ok(enc) = rec.encode() {
            assert_eq!(AvcDecoderConfigurationRecord::parse(enc).expect("re-parse"), rec);
        }
        let _ = rec.parse_sps();
    }
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        let enc = asc.encode().expect("parsed config encodes");
        assert_eq!(AudioSpecificConfig::parse(&enc).expect("re-parse"), asc);
    }
    for frame in AdtsFrames::new(b.clone()) {
        if frame.is_err() {
            break;
        }
    }
    let mut r = FlvReader::with_max_tag_size(1 << 20);
    for piece in data.chunks(7) {
        r.push(piece);
        while let Ok(Some(tag)) = r.next_tag() {
            let _ = VideoTag::parse(tag.data.clone());
            let _ = AudioTag::parse(tag.data);
        }
    }
});
