//! PES packet headers: parsing the timestamps out, writing them in.

use bytes::{BufMut, BytesMut};

/// Mask of the 33 bits a PTS or DTS has on the wire.
pub(crate) const TS_MASK: u64 = (1 << 33) - 1;

/// PES stream ids the muxer uses.
pub(crate) const STREAM_ID_VIDEO: u8 = 0xE0;
pub(crate) const STREAM_ID_AUDIO: u8 = 0xC0;

/// What the header of a complete PES packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesHeader {
    /// 33-bit PTS, if present.
    pub pts: Option<u64>,
    /// 33-bit DTS, if present.
    pub dts: Option<u64>,
    /// Offset of the elementary stream data in the PES packet.
    pub payload_offset: usize,
}

/// Stream ids whose PES packets have no optional header (ISO/IEC 13818-1 table 2-21).
fn has_optional_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

fn read_timestamp(b: &[u8]) -> u64 {
    (u64::from((b[0] >> 1) & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

fn write_timestamp(out: &mut BytesMut, prefix: u8, ts: u64) {
    let ts = ts & TS_MASK;
    out.put_u8((prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1);
    out.put_u16((((ts >> 15) as u16 & 0x7FFF) << 1) | 1);
    out.put_u16(((ts as u16 & 0x7FFF) << 1) | 1);
}

/// Parses the header of a whole PES packet (start code included).
pub(crate) fn parse_header(pes: &[u8]) -> Result<PesHeader, &'static str> {
    if pes.len() < 6 {
        return Err("shorter than the 6-byte header");
    }
    if pes[..3] != [0, 0, 1] {
        return Err("no start code prefix");
    }
    if !has_optional_header(pes[3]) {
        return Ok(PesHeader {
            pts: None,
            dts: None,
            payload_offset: 6,
        });
    }
    if pes.len() < 9 {
        return Err("optional header truncated");
    }
    if pes[6] & 0xC0 != 0x80 {
        return Err("optional header marker bits are not '10'");
    }
    let flags = pes[7] >> 6;
    let header_len = usize::from(pes[8]);
    let payload_offset = 9 + header_len;
    if pes.len() < payload_offset {
        return Err("header_data_length past the packet");
    }
    let fields = &pes[9..payload_offset];
    let (pts, dts) = match flags {
        0b10 => {
            let b = fields.get(..5).ok_or("PTS past the header")?;
            (Some(read_timestamp(b)), None)
        }
        0b11 => {
            let b = fields.get(..10).ok_or("PTS/DTS past the header")?;
            (Some(read_timestamp(&b[..5])), Some(read_timestamp(&b[5..])))
        }
        // 0b01 is forbidden; treat it like no timestamps.
        _ => (None, None),
    };
    Ok(PesHeader {
        pts,
        dts,
        payload_offset,
    })
}

/// Writes a PES header for `payload_len` bytes of data. `packet_length` 0 (unbounded) is used
/// when asked for or when the length does not fit 16 bits.
pub(crate) fn write_header(
    out: &mut BytesMut,
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: usize,
    unbounded: bool,
) -> bool {
    let header_data_len = if dts.is_some() { 10 } else { 5 };
    let len = 3 + header_data_len + payload_len;
    let packet_length = if unbounded {
        0
    } else {
        match u16::try_from(len) {
            Ok(l) => l,
            Err(_) => return false,
        }
    };
    out.put_slice(&[0, 0, 1, stream_id]);
    out.put_u16(packet_length);
    out.put_u8(0x84); // marker '10', data_alignment_indicator
    out.put_u8(if dts.is_some() { 0xC0 } else { 0x80 });
    out.put_u8(header_data_len as u8);
    match dts {
        Some(dts) => {
            write_timestamp(out, 0b0011, pts);
            write_timestamp(out, 0b0001, dts);
        }
        None => write_timestamp(out, 0b0010, pts),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_all_33_bits() {
        for ts in [
            0u64,
            1,
            90_000,
            0x1_2345_6789,
            TS_MASK,
            TS_MASK - 1,
            1 << 32,
        ] {
            let mut out = BytesMut::new();
            assert!(write_header(
                &mut out,
                STREAM_ID_VIDEO,
                ts,
                Some(ts ^ 0x155),
                3,
                true
            ));
            out.put_slice(&[1, 2, 3]);
            let h = parse_header(&out).unwrap();
            assert_eq!(h.pts, Some(ts));
            assert_eq!(h.dts, Some((ts ^ 0x155) & TS_MASK));
            assert_eq!(&out[h.payload_offset..], &[1, 2, 3]);
            assert_eq!(&out[4..6], &[0, 0]);
        }
    }

    #[test]
    fn bounded_length_and_pts_only() {
        let mut out = BytesMut::new();
        assert!(write_header(&mut out, STREAM_ID_AUDIO, 42, None, 10, false));
        assert_eq!(u16::from_be_bytes([out[4], out[5]]), 3 + 5 + 10);
        out.put_bytes(9, 10);
        let h = parse_header(&out).unwrap();
        assert_eq!((h.pts, h.dts, h.payload_offset), (Some(42), None, 14));
        let mut out = BytesMut::new();
        assert!(!write_header(
            &mut out,
            STREAM_ID_AUDIO,
            0,
            None,
            70_000,
            false
        ));
    }

    #[test]
    fn rejects_malformed_headers() {
        assert!(parse_header(&[0, 0, 1]).is_err());
        assert!(parse_header(&[0, 0, 2, 0xE0, 0, 0]).is_err());
        assert!(parse_header(&[0, 0, 1, 0xE0, 0, 0, 0x80]).is_err());
        assert!(parse_header(&[0, 0, 1, 0xE0, 0, 0, 0x40, 0x80, 5]).is_err());
        // header_data_length 200 with 4 bytes.
        assert!(parse_header(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 200, 1, 2, 3, 4]).is_err());
        // PTS flag with a header too short for it.
        assert!(parse_header(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 2, 1, 2]).is_err());
        // Padding stream: no optional header, no timestamps.
        let h = parse_header(&[0, 0, 1, 0xBE, 0, 2, 0xFF, 0xFF]).unwrap();
        assert_eq!((h.pts, h.payload_offset), (None, 6));
    }
}
