//! Program specific information: section reassembly, the PAT and the PMT (read and write),
//! and the MPEG-2 CRC32 that guards them.

use bytes::{BufMut, BytesMut};

use crate::TsError;

/// Largest PAT/PMT section: 3 header bytes + a section_length of at most 1021.
pub(crate) const MAX_SECTION_LEN: usize = 1024;

pub(crate) const TABLE_PAT: u8 = 0x00;
pub(crate) const TABLE_PMT: u8 = 0x02;

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial value all ones, no reflection, no final xor.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Receives each complete section (or why one was dropped).
pub(crate) type OnSection<'a> = dyn FnMut(Result<&[u8], TsError>) + 'a;

/// Reassembles the sections of one PID from packet payloads.
#[derive(Debug, Default)]
pub(crate) struct SectionAssembler {
    buf: Vec<u8>,
    /// Whether `buf` holds the start of a section (we saw its payload unit start).
    active: bool,
}

impl SectionAssembler {
    /// Forgets a partial section (after a continuity error).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    /// Bytes held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds one packet payload; every complete section is handed to `on_section`.
    pub fn push(&mut self, pid: u16, pusi: bool, payload: &[u8], on_section: &mut OnSection<'_>) {
        let mut rest = payload;
        if pusi {
            let Some((&pointer, after)) = rest.split_first() else {
                self.reset();
                return;
            };
            let pointer = usize::from(pointer);
            let Some(tail) = after.get(..pointer) else {
                self.reset();
                on_section(Err(TsError::InvalidSection {
                    pid,
                    reason: "pointer field past the payload",
                }));
                return;
            };
            // The bytes before the new section end the previous one.
            if self.active {
                self.append(pid, tail, on_section);
            }
            self.reset();
            self.active = true;
            rest = &after[pointer..];
        } else if !self.active {
            return;
        }
        self.append(pid, rest, on_section);
    }

    fn append(&mut self, pid: u16, mut data: &[u8], on_section: &mut OnSection<'_>) {
        while self.active && !data.is_empty() {
            // Stuffing: a table id of 0xFF ends the sections of this payload.
            if self.buf.is_empty() && data[0] == 0xFF {
                self.reset();
                return;
            }
            let need = if self.buf.len() < 3 {
                3 - self.buf.len()
            } else {
                let total = 3 + (usize::from(self.buf[1] & 0x0F) << 8 | usize::from(self.buf[2]));
                if total > MAX_SECTION_LEN {
                    self.reset();
                    on_section(Err(TsError::InvalidSection {
                        pid,
                        reason: "section longer than 1024 bytes",
                    }));
                    return;
                }
                total - self.buf.len()
            };
            let take = need.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() >= 3 {
                let total = 3 + (usize::from(self.buf[1] & 0x0F) << 8 | usize::from(self.buf[2]));
                if self.buf.len() == total {
                    on_section(Ok(&self.buf));
                    // Another section may follow in the same payload.
                    self.buf.clear();
                }
            }
        }
    }
}

/// The fixed part of a long-form section header, after checking length, syntax and CRC.
pub(crate) struct Section<'a> {
    pub table_id: u8,
    /// table_id_extension: transport_stream_id (PAT) or program_number (PMT).
    pub id: u16,
    pub version: u8,
    pub current: bool,
    /// The bytes between the 8-byte header and the CRC.
    pub body: &'a [u8],
}

impl<'a> Section<'a> {
    pub fn parse(pid: u16, s: &'a [u8]) -> Result<Self, TsError> {
        let bad = |reason| TsError::InvalidSection { pid, reason };
        if s.len() < 12 {
            return Err(bad("shorter than 12 bytes"));
        }
        if s[1] & 0x80 == 0 {
            return Err(bad("section_syntax_indicator is 0"));
        }
        if crc32_mpeg2(s) != 0 {
            return Err(TsError::CrcMismatch { pid });
        }
        Ok(Section {
            table_id: s[0],
            id: u16::from_be_bytes([s[3], s[4]]),
            version: (s[5] >> 1) & 0x1F,
            current: s[5] & 0x01 != 0,
            body: &s[8..s.len() - 4],
        })
    }
}

/// The first program of a PAT section: (program_number, PMT PID).
pub(crate) fn pat_first_program(pid: u16, body: &[u8]) -> Result<Option<(u16, u16)>, TsError> {
    if !body.chunks_exact(4).remainder().is_empty() {
        return Err(TsError::InvalidSection {
            pid,
            reason: "PAT entries not a multiple of 4 bytes",
        });
    }
    Ok(body.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        let pmt_pid = u16::from_be_bytes([e[2] & 0x1F, e[3]]);
        // Program 0 points at the network information table.
        (program != 0).then_some((program, pmt_pid))
    }))
}

/// A parsed PMT: the PCR PID and (stream_type, elementary PID) in order.
pub(crate) struct Pmt {
    pub pcr_pid: u16,
    pub streams: Vec<(u8, u16)>,
}

pub(crate) fn parse_pmt(pid: u16, body: &[u8]) -> Result<Pmt, TsError> {
    let bad = |reason| TsError::InvalidSection { pid, reason };
    if body.len() < 4 {
        return Err(bad("PMT shorter than its header"));
    }
    let pcr_pid = u16::from_be_bytes([body[0] & 0x1F, body[1]]);
    let info_len = usize::from(body[2] & 0x0F) << 8 | usize::from(body[3]);
    let mut rest = body
        .get(4 + info_len..)
        .ok_or(bad("program_info_length past the section"))?;
    let mut streams = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err(bad("truncated elementary stream entry"));
        }
        let stream_type = rest[0];
        let es_pid = u16::from_be_bytes([rest[1] & 0x1F, rest[2]]);
        let es_info_len = usize::from(rest[3] & 0x0F) << 8 | usize::from(rest[4]);
        rest = rest
            .get(5 + es_info_len..)
            .ok_or(bad("ES_info_length past the section"))?;
        streams.push((stream_type, es_pid));
    }
    Ok(Pmt { pcr_pid, streams })
}

fn finish_section(out: &mut BytesMut, start: usize) {
    // section_length counts from after the length field to the end of the CRC.
    let section_length = out.len() - start - 3 + 4;
    out[start + 1] = 0xB0 | ((section_length >> 8) as u8 & 0x0F);
    out[start + 2] = section_length as u8;
    let crc = crc32_mpeg2(&out[start..]);
    out.put_u32(crc);
}

fn section_header(out: &mut BytesMut, table_id: u8, id: u16, version: u8) -> usize {
    let start = out.len();
    out.put_u8(table_id);
    out.put_u16(0); // syntax indicator + length, filled by finish_section
    out.put_u16(id);
    out.put_u8(0xC1 | ((version & 0x1F) << 1)); // current_next_indicator = 1
    out.put_u8(0); // section_number
    out.put_u8(0); // last_section_number
    start
}

/// A PAT section with one program.
pub(crate) fn write_pat(program_number: u16, pmt_pid: u16, version: u8) -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    let start = section_header(&mut out, TABLE_PAT, 1, version);
    out.put_u16(program_number);
    out.put_u16(0xE000 | pmt_pid);
    finish_section(&mut out, start);
    out
}

/// A PMT section for `streams` as (stream_type, PID), without descriptors.
pub(crate) fn write_pmt(
    program_number: u16,
    pcr_pid: u16,
    streams: &[(u8, u16)],
    version: u8,
) -> BytesMut {
    let mut out = BytesMut::with_capacity(16 + 5 * streams.len());
    let start = section_header(&mut out, TABLE_PMT, program_number, version);
    out.put_u16(0xE000 | pcr_pid);
    out.put_u16(0xF000); // program_info_length 0
    for &(stream_type, pid) in streams {
        out.put_u8(stream_type);
        out.put_u16(0xE000 | pid);
        out.put_u16(0xF000); // ES_info_length 0
    }
    finish_section(&mut out, start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_vector() {
        // CRC-32/MPEG-2 check value.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        let pat = write_pat(1, 0x1000, 0);
        assert_eq!(crc32_mpeg2(&pat), 0);
    }

    #[test]
    fn pat_pmt_round_trip() {
        let pat = write_pat(7, 0x1234, 3);
        let s = Section::parse(0, &pat).unwrap();
        assert_eq!((s.table_id, s.version, s.current), (TABLE_PAT, 3, true));
        assert_eq!(pat_first_program(0, s.body).unwrap(), Some((7, 0x1234)));

        let pmt = write_pmt(7, 0x100, &[(0x1B, 0x100), (0x0F, 0x101)], 0);
        let s = Section::parse(0x1234, &pmt).unwrap();
        assert_eq!((s.table_id, s.id), (TABLE_PMT, 7));
        let p = parse_pmt(0x1234, s.body).unwrap();
        assert_eq!(p.pcr_pid, 0x100);
        assert_eq!(p.streams, vec![(0x1B, 0x100), (0x0F, 0x101)]);

        let mut bad = pmt.clone();
        bad[10] ^= 1;
        assert!(matches!(
            Section::parse(0x1234, &bad),
            Err(TsError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn assembler_spans_packets_and_pointer_field() {
        let pmt = write_pmt(1, 0x100, &[(0x1B, 0x100); 40], 0);
        assert!(pmt.len() > 184);
        let mut asm = SectionAssembler::default();
        let mut got = Vec::new();
        let mut first = vec![0u8];
        first.extend_from_slice(&pmt[..100]);
        asm.push(0x1000, true, &first, &mut |s| {
            got.push(s.map(<[u8]>::to_vec))
        });
        assert!(got.is_empty());
        // Continuation without PUSI, followed by stuffing.
        let mut second = pmt[100..].to_vec();
        second.extend_from_slice(&[0xFF; 20]);
        asm.push(0x1000, false, &second, &mut |s| {
            got.push(s.map(<[u8]>::to_vec))
        });
        assert_eq!(got, vec![Ok(pmt.to_vec())]);
        // Pointer field past the payload.
        got.clear();
        asm.push(0x1000, true, &[50, 1, 2], &mut |s| {
            got.push(s.map(<[u8]>::to_vec))
        });
        assert!(matches!(got[..], [Err(TsError::InvalidSection { .. })]));
    }
}
