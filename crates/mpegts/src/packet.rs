//! The 188-byte transport packet: header, adaptation field, and the writer the muxer uses.

use bytes::{BufMut, BytesMut};

use crate::TsError;

/// Length of a transport stream packet.
pub const TS_PACKET_LEN: usize = 188;
/// The byte every packet starts with.
pub const SYNC_BYTE: u8 = 0x47;
/// The PID of the program association table.
pub const PAT_PID: u16 = 0x0000;
/// The PID of null (stuffing) packets.
pub const NULL_PID: u16 = 0x1FFF;
/// Ticks per second of PTS, DTS and the PCR base.
pub const CLOCK_HZ: i64 = 90_000;

/// Payload bytes of a packet without adaptation field.
pub(crate) const MAX_PAYLOAD: usize = TS_PACKET_LEN - 4;

/// The fixed 4-byte header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub transport_error: bool,
    pub payload_unit_start: bool,
    pub pid: u16,
    pub scrambling: u8,
    pub has_adaptation: bool,
    pub has_payload: bool,
    pub continuity_counter: u8,
}

impl Header {
    /// Parses the header of a packet that starts with the sync byte.
    pub fn parse(p: &[u8; TS_PACKET_LEN]) -> Header {
        Header {
            transport_error: p[1] & 0x80 != 0,
            payload_unit_start: p[1] & 0x40 != 0,
            pid: (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]),
            scrambling: p[3] >> 6,
            has_adaptation: p[3] & 0x20 != 0,
            has_payload: p[3] & 0x10 != 0,
            continuity_counter: p[3] & 0x0F,
        }
    }
}

/// The adaptation field fields the demuxer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AdaptationField {
    pub discontinuity: bool,
    pub random_access: bool,
    /// Program clock reference in 27 MHz ticks (base * 300 + extension).
    pub pcr: Option<u64>,
}

/// Splits a packet into its adaptation field (parsed) and its payload.
pub(crate) fn split_packet<'a>(
    h: &Header,
    p: &'a [u8; TS_PACKET_LEN],
) -> Result<(AdaptationField, &'a [u8]), TsError> {
    let body = &p[4..];
    if !h.has_adaptation {
        let payload = if h.has_payload { body } else { &[][..] };
        return Ok((AdaptationField::default(), payload));
    }
    let bad = |reason| TsError::InvalidAdaptationField { pid: h.pid, reason };
    let len = usize::from(body[0]);
    // With a payload the field leaves at least one payload byte; without, it fills the packet.
    if len > MAX_PAYLOAD - 1 {
        return Err(bad("length over 183"));
    }
    if h.has_payload && len == MAX_PAYLOAD - 1 {
        return Err(bad("length 183 leaves no room for the payload"));
    }
    let field = &body[1..1 + len];
    let payload = if h.has_payload {
        &body[1 + len..]
    } else {
        &[][..]
    };
    let mut af = AdaptationField::default();
    if let Some(&flags) = field.first() {
        af.discontinuity = flags & 0x80 != 0;
        af.random_access = flags & 0x40 != 0;
        if flags & 0x10 != 0 {
            let b = field
                .get(1..7)
                .ok_or_else(|| bad("PCR overruns the field"))?;
            let base = (u64::from(b[0]) << 25)
                | (u64::from(b[1]) << 17)
                | (u64::from(b[2]) << 9)
                | (u64::from(b[3]) << 1)
                | (u64::from(b[4]) >> 7);
            let ext = (u64::from(b[4] & 0x01) << 8) | u64::from(b[5]);
            af.pcr = Some(base * 300 + ext);
        }
    }
    Ok((af, payload))
}

/// Writes one packet carrying as much of `payload` as fits, with an adaptation field when a
/// PCR or the random access flag is asked for, or when stuffing is needed. Returns the
/// number of payload bytes written. `pcr` is in 90 kHz ticks (the base; extension 0).
/// `payload` is not empty (a PES packet has at least its header).
pub(crate) fn write_packet(
    out: &mut BytesMut,
    pid: u16,
    pusi: bool,
    cc: u8,
    pcr: Option<u64>,
    random_access: bool,
    payload: &[u8],
) -> usize {
    // Adaptation field content after its length byte: flags (+ PCR).
    let mut af_body = 0usize;
    if pcr.is_some() || random_access {
        af_body = 1 + if pcr.is_some() { 6 } else { 0 };
    }
    let af_total = if af_body > 0 { 1 + af_body } else { 0 };
    let room = MAX_PAYLOAD - af_total;
    let n = payload.len().min(room);
    // Stuffing needed when the payload does not fill the packet.
    let stuffing = room - n;
    let (af_total, af_len) = if af_total == 0 && stuffing > 0 {
        // A new field: one length byte, then flags and 0xFF bytes.
        (stuffing, stuffing - 1)
    } else if af_total > 0 {
        (af_total + stuffing, af_body + stuffing)
    } else {
        (0, 0)
    };
    out.reserve(TS_PACKET_LEN);
    out.put_u8(SYNC_BYTE);
    out.put_u8((u8::from(pusi) << 6) | ((pid >> 8) as u8 & 0x1F));
    out.put_u8(pid as u8);
    let afc = if af_total > 0 { 0x30 } else { 0x10 };
    out.put_u8(afc | (cc & 0x0F));
    if af_total > 0 {
        out.put_u8(af_len as u8);
        if af_len > 0 {
            let mut flags = 0u8;
            if random_access {
                flags |= 0x40;
            }
            if pcr.is_some() {
                flags |= 0x10;
            }
            out.put_u8(flags);
            let mut written = 1;
            if let Some(base) = pcr {
                let base = base & ((1 << 33) - 1);
                out.put_u8((base >> 25) as u8);
                out.put_u8((base >> 17) as u8);
                out.put_u8((base >> 9) as u8);
                out.put_u8((base >> 1) as u8);
                // Low base bit, 6 reserved bits, extension high bit (0).
                out.put_u8((((base & 1) as u8) << 7) | 0x7E);
                out.put_u8(0);
                written += 6;
            }
            out.put_bytes(0xFF, af_len - written);
        }
    }
    out.put_slice(&payload[..n]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_packet(b: &[u8]) -> &[u8; TS_PACKET_LEN] {
        b.try_into().unwrap()
    }

    #[test]
    fn write_then_parse_every_payload_size() {
        for len in 1..=MAX_PAYLOAD + 3 {
            for (pcr, rai) in [(None, false), (Some(123_456_789u64), false), (None, true)] {
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = BytesMut::new();
                let n = write_packet(&mut out, 0x101, true, 7, pcr, rai, &data);
                assert_eq!(out.len(), TS_PACKET_LEN, "len {len}");
                let p = as_packet(&out);
                let h = Header::parse(p);
                assert_eq!(h.pid, 0x101);
                assert!(h.payload_unit_start && h.has_payload && !h.transport_error);
                assert_eq!(h.continuity_counter, 7);
                let (af, payload) = split_packet(&h, p).unwrap();
                assert_eq!(payload, &data[..n]);
                assert_eq!(af.pcr, pcr.map(|b| b * 300));
                assert_eq!(af.random_access, rai);
                if pcr.is_none() && !rai {
                    assert_eq!(n, len.min(MAX_PAYLOAD));
                }
            }
        }
    }

    #[test]
    fn adaptation_field_lengths() {
        let mut p = [0xFFu8; TS_PACKET_LEN];
        p[0] = SYNC_BYTE;
        p[1] = 0x01;
        p[2] = 0x00;
        // Adaptation only, length 183: valid, no payload.
        p[3] = 0x20;
        p[4] = 183;
        let h = Header::parse(&p);
        let (_, payload) = split_packet(&h, &p).unwrap();
        assert!(payload.is_empty());
        // Length 184 or more: invalid.
        for len in [184u8, 200, 255] {
            p[4] = len;
            assert!(split_packet(&Header::parse(&p), &p).is_err());
        }
        // With payload, 183 leaves nothing: invalid; 182 leaves one byte.
        p[3] = 0x30;
        p[4] = 183;
        assert!(split_packet(&Header::parse(&p), &p).is_err());
        p[4] = 182;
        p[5] = 0; // no flags
        let (_, payload) = split_packet(&Header::parse(&p), &p).unwrap();
        assert_eq!(payload.len(), 1);
        // PCR flag with a field too short for it.
        p[4] = 3;
        p[5] = 0x10;
        assert!(split_packet(&Header::parse(&p), &p).is_err());
    }
}
