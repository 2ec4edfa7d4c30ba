//! Frame stamps: an H.264 SEI NAL unit carrying the instant a publisher sent a frame, put in
//! front of the frame's own NAL units, so that any player — RTMP or HLS, whatever the server
//! did to the container — finds when the picture it holds left the publisher.
//!
//! The NAL unit: `nal_unit_type` 6 (SEI, `nal_ref_idc` 0), one `user_data_unregistered`
//! message (payload type 5) of 32 bytes — our 16-byte UUID, then the send instant as 16
//! lowercase hexadecimal ASCII digits of microseconds on the run's clock — and the RBSP
//! trailing bits (0x80). No byte of it is zero, so it needs no emulation prevention and can
//! never form a start code (`00 00 0x`). Decoders skip user data they do not know.
//!
//! Samples are AVCC: NAL units each preceded by a 4-byte big-endian length (what FLV, RTMP and
//! fMP4 carry, and what x264 writes there).

use bytes::{BufMut, Bytes, BytesMut};

/// Our `uuid_iso_iec_11578`: ASCII, no zero byte.
pub const STAMP_UUID: [u8; 16] = *b"LunoraBenchStamp";

const SEI_NAL_TYPE: u8 = 6;
const USER_DATA_UNREGISTERED: u8 = 5;
const DIGITS: usize = 16;
const PAYLOAD_LEN: usize = STAMP_UUID.len() + DIGITS;

/// The stamp NAL unit (without its length prefix) for `micros`.
pub fn stamp_nal(micros: u64) -> [u8; 3 + PAYLOAD_LEN + 1] {
    let mut nal = [0u8; 3 + PAYLOAD_LEN + 1];
    nal[0] = SEI_NAL_TYPE;
    nal[1] = USER_DATA_UNREGISTERED;
    nal[2] = PAYLOAD_LEN as u8;
    nal[3..3 + STAMP_UUID.len()].copy_from_slice(&STAMP_UUID);
    let hex = format!("{micros:016x}");
    nal[3 + STAMP_UUID.len()..3 + PAYLOAD_LEN].copy_from_slice(hex.as_bytes());
    nal[3 + PAYLOAD_LEN] = 0x80; // rbsp_stop_one_bit and alignment
    nal
}

/// An AVCC sample with the stamp for `micros` as its first NAL unit.
pub fn stamp_avcc(sample: &[u8], micros: u64) -> Bytes {
    let nal = stamp_nal(micros);
    let mut out = BytesMut::with_capacity(4 + nal.len() + sample.len());
    out.put_u32(nal.len() as u32);
    out.extend_from_slice(&nal);
    out.extend_from_slice(sample);
    out.freeze()
}

/// An FLV/RTMP video tag body (legacy H.264: 5-byte header, then AVCC) with the stamp put in
/// front of its NAL units; other tags (sequence headers, other codecs) are answered as given.
pub fn stamp_flv_video(body: &Bytes, micros: u64) -> Bytes {
    let coded_frame = body.len() > 5 && body[0] & 0x0F == 7 && body[1] == 1;
    if !coded_frame {
        return body.clone();
    }
    let nal = stamp_nal(micros);
    let mut out = BytesMut::with_capacity(body.len() + 4 + nal.len());
    out.extend_from_slice(&body[..5]);
    out.put_u32(nal.len() as u32);
    out.extend_from_slice(&nal);
    out.extend_from_slice(&body[5..]);
    out.freeze()
}

/// The stamp of an AVCC sample: the microseconds of the first of our SEI NAL units in it.
pub fn find_stamp(sample: &[u8]) -> Option<u64> {
    let mut rest = sample;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let nal = rest.get(4..4 + len)?;
        if let Some(us) = stamp_in_nal(nal) {
            return Some(us);
        }
        rest = &rest[4 + len..];
    }
    None
}

/// Reads our `user_data_unregistered` message from one SEI NAL unit.
fn stamp_in_nal(nal: &[u8]) -> Option<u64> {
    if nal.first()? & 0x1F != SEI_NAL_TYPE {
        return None;
    }
    let mut rest = &nal[1..];
    // sei_message()s until the trailing bits.
    while rest.len() > 1 {
        let (kind, r) = sei_number(rest)?;
        let (size, r) = sei_number(r)?;
        let payload = r.get(..size)?;
        if kind == usize::from(USER_DATA_UNREGISTERED)
            && size == PAYLOAD_LEN
            && payload[..STAMP_UUID.len()] == STAMP_UUID
        {
            let digits = std::str::from_utf8(&payload[STAMP_UUID.len()..]).ok()?;
            return u64::from_str_radix(digits, 16).ok();
        }
        rest = &r[size..];
    }
    None
}

/// An SEI payload type or size: 0xFF bytes adding 255 each, then the last byte.
fn sei_number(b: &[u8]) -> Option<(usize, &[u8])> {
    let mut n = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        n += usize::from(byte);
        if byte != 0xFF {
            return Some((n, &b[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn stamps_round_trip() {
        let frame = avcc(&[&[0x09, 0xF0], &[0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01]]);
        for us in [0, 1, 33_366, 0x0123_4567_89AB_CDEF, u64::MAX] {
            let stamped = stamp_avcc(&frame, us);
            assert_eq!(find_stamp(&stamped), Some(us));
            // The frame's own NAL units follow unchanged.
            assert_eq!(&stamped[stamped.len() - frame.len()..], &frame[..]);
        }
        assert_eq!(find_stamp(&frame), None);
    }

    #[test]
    fn stamps_never_contain_a_start_code_or_an_emulation_sequence() {
        for us in [
            0,
            1,
            0x0100,
            0x0001_0000,
            0x0300_0000_0000,
            u64::MAX,
            1 << 40,
        ] {
            let nal = stamp_nal(us);
            assert!(!nal.contains(&0), "{nal:?}");
            assert!(nal
                .windows(3)
                .all(|w| !(w[0] == 0 && w[1] == 0 && w[2] <= 3)));
            assert_eq!(nal[0] & 0x1F, 6);
            assert_eq!(nal[0] & 0x80, 0, "forbidden_zero_bit");
            assert_eq!(*nal.last().unwrap(), 0x80, "rbsp trailing bits");
        }
    }

    #[test]
    fn flv_bodies_get_the_stamp_after_their_header() {
        let payload = avcc(&[&[0x65, 1, 2, 3]]);
        let mut body = vec![0x17, 1, 0, 0, 0x21];
        body.extend_from_slice(&payload);
        let body = Bytes::from(body);
        let stamped = stamp_flv_video(&body, 42);
        assert_eq!(&stamped[..5], &body[..5]);
        assert_eq!(find_stamp(&stamped[5..]), Some(42));
        assert_eq!(stamped.len(), body.len() + 4 + 36);
        // Sequence headers and other codecs are left alone.
        let header = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64]);
        assert_eq!(stamp_flv_video(&header, 42), header);
        let hevc = Bytes::from_static(&[0x1C, 1, 0, 0, 0, 0, 0, 0, 1, 0x26]);
        assert_eq!(stamp_flv_video(&hevc, 42), hevc);
    }

    #[test]
    fn other_sei_and_broken_samples_are_not_stamps() {
        // Another user_data_unregistered message (x264's version string) before ours, in the
        // same SEI NAL unit.
        let mut sei = vec![0x06, 0x05, 20];
        sei.extend_from_slice(&[0xAA; 16]);
        sei.extend_from_slice(b"x264");
        let ours = stamp_nal(7);
        sei.extend_from_slice(&ours[1..ours.len() - 1]);
        sei.push(0x80);
        assert_eq!(find_stamp(&avcc(&[&sei])), Some(7));
        // Wrong UUID, truncated lengths, garbage.
        let mut other = stamp_nal(7);
        other[3] = b'X';
        assert_eq!(find_stamp(&avcc(&[&other])), None);
        let good = stamp_avcc(&[], 9);
        assert_eq!(find_stamp(&good[..good.len() - 5]), None);
        assert_eq!(find_stamp(&[0, 0, 0, 200, 6, 5]), None);
        assert_eq!(find_stamp(&[]), None);
        assert_eq!(find_stamp(&avcc(&[&[0x06, 0xFF, 0xFF]])), None);
    }
}
