//! Hostile input: random and mutated bytes through every parser. Each must return a value or
//! an error, never panic, and never hold more than it was given.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use bytes::{Bytes, BytesMut};
use lunora_flv::{
    annexb_to_avcc, avcc_to_annexb, AdtsFrames, AudioSpecificConfig, AudioTag,
    AvcDecoderConfigurationRecord, FlvReader, Sps, TagType, VideoTag,
};

/// xorshift64*: a tiny deterministic PRNG so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn parse_everything(data: &[u8]) {
    let b = Bytes::copy_from_slice(data);
    if let Ok(tag) = VideoTag::parse(b.clone()) {
        assert!(tag.payload.len() < data.len());
        let _ = tag.encode();
    }
    if let Ok(tag) = AudioTag::parse(b.clone()) {
        assert!(tag.payload.len() < data.len());
        let _ = tag.encode();
    }
    if let Ok(rec) = AvcDecoderConfigurationRecord::parse(b.clone()) {
        let _ = rec.encode();
        let _ = rec.parse_sps();
    }
    let _ = Sps::parse(data);
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        let _ = asc.encode();
    }
    for frame in AdtsFrames::new(b.clone()) {
        if frame.is_err() {
            break;
        }
    }
    let mut out = BytesMut::new();
    for size in [1, 2, 4] {
        let _ = avcc_to_annexb(data, size, &mut out);
    }
    out.clear();
    let _ = annexb_to_avcc(data, &mut out);
    assert!(out.len() <= data.len() + 4 * (data.len() / 3 + 1));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let data = rng.bytes(64);
        parse_everything(&data);
    }
}

#[test]
fn random_bytes_with_plausible_prefixes() {
    let mut rng = Rng(42);
    let prefixes: [&[u8]; 8] = [
        &[0x17, 0x00, 0, 0, 0, 1],
        &[0x17, 0x01],
        &[0x91, b'h', b'v', b'c', b'1'],
        &[0xAF, 0x00],
        &[0x67, 0x64, 0x00, 0x1F],
        &[0x67, 0x42, 0xC0, 0x28],
        &[0xFF, 0xF1],
        &[1, 100, 0, 31, 0xFF, 0xE1],
    ];
    for i in 0..40_000 {
        let mut data = prefixes[i % prefixes.len()].to_vec();
        data.extend(rng.bytes(48));
        parse_everything(&data);
    }
}

#[test]
fn mutated_fixture_file_never_panics() {
    let file = include_bytes!("fixtures/testsrc_320x240_25fps.flv");
    let mut rng = Rng(7);
    for _ in 0..200 {
        let mut data = file.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        let mut r = FlvReader::with_max_tag_size(64 * 1024);
        let mut pos = 0;
        'feed: while pos < data.len() {
            let n = 1 + rng.below(4096);
            let end = (pos + n).min(data.len());
            r.push(&data[pos..end]);
            pos = end;
            loop {
                match r.next_tag() {
                    Ok(Some(tag)) => {
                        assert!(tag.data.len() <= 64 * 1024);
                        match tag.tag_type {
                            TagType::Video => {
                                if let Ok(v) = VideoTag::parse(tag.data) {
                                    if let Ok(rec) =
                                        AvcDecoderConfigurationRecord::parse(v.payload.clone())
                                    {
                                        let _ = rec.parse_sps();
                                    }
                                    let mut out = BytesMut::new();
                                    let _ = avcc_to_annexb(&v.payload, 4, &mut out);
                                }
                            }
                            TagType::Audio => {
                                if let Ok(a) = AudioTag::parse(tag.data) {
                                    let _ = AudioSpecificConfig::parse(&a.payload);
                                }
                            }
                            _ => {}
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            // Never more than one tag (capped) plus the last read is held.
            assert!(r.buffered() <= 64 * 1024 + 15 + 4096);
        }
    }
}

#[test]
fn flv_reader_random_streams() {
    let mut rng = Rng(1234);
    for _ in 0..2_000 {
        let mut r = FlvReader::with_max_tag_size(1 << 16);
        r.push(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        let data = rng.bytes(512);
        r.push(&data);
        while let Ok(Some(_)) = r.next_tag() {}
    }
}

#[test]
fn huge_declared_sizes_are_refused_not_allocated() {
    // A tag header declaring 16 MiB with a 64 KiB cap: refused at once.
    let mut r = FlvReader::with_max_tag_size(1 << 16);
    r.push(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    r.push(&[9, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0]);
    assert!(r.next_tag().is_err());
    // A data offset of 4 GiB: skipped lazily, nothing buffered.
    let mut r = FlvReader::new();
    r.push(b"FLV\x01\x05\xFF\xFF\xFF\xFF");
    r.push(&[0; 1000]);
    assert!(r.next_tag().unwrap().is_none());
    assert_eq!(r.buffered(), 0);
    // An AVCC length of 4 GiB: an error, not an allocation.
    let mut out = BytesMut::new();
    assert!(avcc_to_annexb(&[0xFF, 0xFF, 0xFF, 0xFF, 1], 4, &mut out).is_err());
}
