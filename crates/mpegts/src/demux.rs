//! The demuxer: bytes in, streams and access units out.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::codec::{h264_is_keyframe, hevc_is_keyframe};
use crate::packet::{split_packet, Header, NULL_PID, PAT_PID, SYNC_BYTE, TS_PACKET_LEN};
use crate::pes::parse_header;
use crate::psi::{parse_pmt, pat_first_program, Section, SectionAssembler, TABLE_PAT, TABLE_PMT};
use crate::{TimestampUnwrapper, TsError};

/// Stream type of H.264 video (ISO/IEC 13818-1 table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// Stream type of HEVC video.
pub const STREAM_TYPE_HEVC: u8 = 0x24;
/// Stream type of AAC audio in ADTS framing.
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// Stream type of AAC audio in LATM framing (reported as unsupported).
pub const STREAM_TYPE_AAC_LATM: u8 = 0x11;

/// A video codec the demuxer reassembles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC, stream type 0x1B.
    H264,
    /// H.265 / HEVC, stream type 0x24.
    Hevc,
}

/// An audio codec the demuxer reassembles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC in ADTS frames, stream type 0x0F.
    Aac,
}

/// What an elementary stream of the program carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Video the demuxer reassembles into access units.
    Video(VideoCodec),
    /// Audio the demuxer reassembles into PES payloads.
    Audio(AudioCodec),
    /// Any other stream type (LATM AAC, AC-3, private data, SCTE-35, ...); listed, not
    /// reassembled.
    Unsupported(u8),
}

impl StreamKind {
    /// The kind of a PMT stream type.
    pub fn from_stream_type(stream_type: u8) -> Self {
        match stream_type {
            STREAM_TYPE_H264 => StreamKind::Video(VideoCodec::H264),
            STREAM_TYPE_HEVC => StreamKind::Video(VideoCodec::Hevc),
            STREAM_TYPE_AAC_ADTS => StreamKind::Audio(AudioCodec::Aac),
            other => StreamKind::Unsupported(other),
        }
    }
}

/// One elementary stream of the selected program, as its PMT lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamInfo {
    /// The PID its packets carry.
    pub pid: u16,
    /// The PMT stream_type.
    pub stream_type: u8,
    /// What the demuxer makes of it.
    pub kind: StreamKind,
}

/// The program the demuxer follows: the first one of the PAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// program_number in the PAT and PMT.
    pub program_number: u16,
    /// The PID of its PMT.
    pub pmt_pid: u16,
    /// The PID whose adaptation fields carry the PCR, once the PMT is known.
    pub pcr_pid: Option<u16>,
    /// Its elementary streams, in PMT order (empty until the PMT is known).
    pub streams: Vec<StreamInfo>,
}

/// What the demuxer found. Drain them with [`Demuxer::poll_event`] after every push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsEvent {
    /// The PMT of the selected program was learned or its list of streams changed. Streams
    /// of other PIDs are forgotten; every event that follows is about these.
    Streams(Vec<StreamInfo>),
    /// One video access unit (one PES packet).
    Video {
        /// The stream's PID.
        pid: u16,
        /// Its codec.
        codec: VideoCodec,
        /// Presentation timestamp, 90 kHz, unwrapped onto the program's timeline.
        pts: i64,
        /// Decode timestamp, 90 kHz (equal to `pts` when the PES carries no DTS).
        dts: i64,
        /// An IDR/IRAP picture, or the packet was flagged random access.
        keyframe: bool,
        /// The Annex B access unit (start codes, NAL units).
        data: Bytes,
    },
    /// The payload of one audio PES packet.
    Audio {
        /// The stream's PID.
        pid: u16,
        /// Its codec.
        codec: AudioCodec,
        /// Presentation timestamp of the first frame, 90 kHz, unwrapped.
        pts: i64,
        /// One or more ADTS frames; [`crate::split_adts`] splits them and times each one.
        data: Bytes,
    },
    /// Packets of this stream were lost (a continuity counter gap): the access unit being
    /// reassembled was dropped, and the stream resumes at the next payload unit start.
    Discontinuity {
        /// The stream's PID.
        pid: u16,
    },
    /// A recoverable problem; the demuxer went on. Meant to be logged.
    Error(TsError),
}

/// Limits of a [`Demuxer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemuxerConfig {
    /// Largest PES packet reassembled per stream; a larger one is dropped with
    /// [`TsError::PesTooLarge`].
    pub max_pes_size: usize,
    /// Most elementary streams of the PMT that are tracked (further ones are ignored with
    /// [`TsError::TooManyStreams`]). Packets of untracked PIDs cost nothing.
    pub max_streams: usize,
}

impl Default for DemuxerConfig {
    fn default() -> Self {
        DemuxerConfig {
            max_pes_size: 8 << 20,
            max_streams: 16,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemuxStats {
    /// Packets processed.
    pub packets: u64,
    /// Bytes skipped while looking for sync (and partial packets dropped at flush).
    pub bytes_skipped: u64,
    /// Times sync was lost.
    pub sync_losses: u64,
    /// Continuity counter gaps on tracked streams.
    pub cc_errors: u64,
    /// Duplicate packets dropped (same continuity counter twice).
    pub duplicates: u64,
    /// PES packets dropped (loss, size, malformed, no PTS).
    pub pes_dropped: u64,
    /// Access units delivered.
    pub access_units: u64,
}

/// A PES packet being reassembled.
#[derive(Debug)]
struct Assembly {
    buf: BytesMut,
    /// Whole PES length (header included) when the header declares one.
    declared: Option<usize>,
    random_access: bool,
}

#[derive(Debug)]
struct EsState {
    info: StreamInfo,
    last_cc: Option<u8>,
    pes: Option<Assembly>,
}

#[derive(Debug, Default)]
struct PsiState {
    last_cc: Option<u8>,
    sections: SectionAssembler,
}

/// A sans-IO MPEG-TS demuxer for one program: push bytes as they arrive (any chunking, e.g.
/// SRT datagrams of 7 packets), then drain [`TsEvent`]s.
///
/// It finds packet boundaries (and finds them again after garbage: a candidate sync byte
/// counts only when the packet after it also starts with 0x47), follows the first program of
/// the PAT, learns its PMT, reassembles H.264/HEVC/AAC PES packets, checks continuity
/// counters, and unwraps timestamps. Memory is bounded by the configuration: a few hundred
/// bytes of input, one section per PSI PID and one PES per tracked stream. Events queue up
/// until polled, so poll after each push.
#[derive(Debug)]
pub struct Demuxer {
    config: DemuxerConfig,
    input: Vec<u8>,
    /// Stream offset of `input[0]`.
    offset: u64,
    synced: bool,
    events: VecDeque<TsEvent>,
    pat: PsiState,
    program: Option<Program>,
    pmt: PsiState,
    pmt_version: Option<u8>,
    streams: Vec<EsState>,
    clock: TimestampUnwrapper,
    last_pcr: Option<u64>,
    stats: DemuxStats,
}

impl Default for Demuxer {
    fn default() -> Self {
        Self::new(DemuxerConfig::default())
    }
}

impl Demuxer {
    /// A demuxer with the given limits.
    pub fn new(config: DemuxerConfig) -> Self {
        Demuxer {
            config,
            input: Vec::with_capacity(2 * TS_PACKET_LEN),
            offset: 0,
            synced: false,
            events: VecDeque::new(),
            pat: PsiState::default(),
            program: None,
            pmt: PsiState::default(),
            pmt_version: None,
            streams: Vec::new(),
            clock: TimestampUnwrapper::new(),
            last_pcr: None,
            stats: DemuxStats::default(),
        }
    }

    /// Feeds bytes of the transport stream, in any chunking.
    pub fn push(&mut self, data: &[u8]) {
        if self.input.is_empty() {
            // Packet-aligned input (the usual datagram) is parsed in place; only a partial
            // packet at the end is kept.
            let used = self.process(data, false);
            self.input.extend_from_slice(&data[used..]);
        } else {
            let mut input = std::mem::take(&mut self.input);
            input.extend_from_slice(data);
            let used = self.process(&input, false);
            input.drain(..used);
            if input.capacity() > 16 * TS_PACKET_LEN {
                input.shrink_to(2 * TS_PACKET_LEN);
            }
            self.input = input;
        }
    }

    /// The end of the input: delivers the access units still being reassembled (a video PES
    /// of unbounded length ends only at the next one) and drops a partial packet. The
    /// demuxer stays usable; the next push is treated as new data on the same program.
    pub fn flush(&mut self) {
        let input = std::mem::take(&mut self.input);
        let used = self.process(&input, true);
        let dropped = (input.len() - used) as u64;
        self.stats.bytes_skipped += dropped;
        self.offset += dropped;
        self.synced = false;
        for i in 0..self.streams.len() {
            if let Some(pes) = self.streams[i].pes.take() {
                self.finish_pes(i, pes);
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<TsEvent> {
        self.events.pop_front()
    }

    /// The program being followed, once the PAT named one.
    pub fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }

    /// The last program clock reference seen on the PCR PID, in 27 MHz ticks (33-bit base
    /// times 300 plus the extension, as on the wire).
    pub fn last_pcr(&self) -> Option<u64> {
        self.last_pcr
    }

    /// Counters for metrics.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// Bytes held: unprocessed input, partial sections and partial PES packets (not the
    /// queued events).
    pub fn buffered_bytes(&self) -> usize {
        self.input.len()
            + self.pat.sections.buffered()
            + self.pmt.sections.buffered()
            + self
                .streams
                .iter()
                .map(|s| s.pes.as_ref().map_or(0, |p| p.buf.len()))
                .sum::<usize>()
    }

    /// Parses the packets of `buf` (the stream from `self.offset` on) and returns how many
    /// bytes were used up; the rest (under two packets) must be offered again with more.
    fn process(&mut self, buf: &[u8], at_end: bool) -> usize {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            if self.synced {
                let Some((packet, _)) = rest.split_first_chunk::<TS_PACKET_LEN>() else {
                    break;
                };
                if packet[0] == SYNC_BYTE {
                    pos += TS_PACKET_LEN;
                    self.handle_packet(packet);
                    continue;
                }
                self.synced = false;
                self.stats.sync_losses += 1;
                self.events.push_back(TsEvent::Error(TsError::SyncLost {
                    offset: self.offset + pos as u64,
                }));
            }
            // Look for a sync byte whose next packet starts with one too (or that ends the
            // input exactly, at the end).
            let mut found = None;
            let mut wait_from = None;
            for (i, &b) in rest.iter().enumerate() {
                if b != SYNC_BYTE {
                    continue;
                }
                match rest.get(i + TS_PACKET_LEN) {
                    Some(&SYNC_BYTE) => {
                        found = Some(i);
                        break;
                    }
                    Some(_) => {}
                    None => {
                        if at_end && rest.len() - i == TS_PACKET_LEN {
                            found = Some(i);
                        } else {
                            wait_from = Some(i);
                        }
                        break;
                    }
                }
            }
            match (found, wait_from) {
                (Some(i), _) => {
                    pos += i;
                    self.stats.bytes_skipped += i as u64;
                    self.synced = true;
                }
                (None, Some(i)) => {
                    pos += i;
                    self.stats.bytes_skipped += i as u64;
                    break;
                }
                (None, None) => {
                    self.stats.bytes_skipped += rest.len() as u64;
                    pos = buf.len();
                    break;
                }
            }
        }
        self.offset += pos as u64;
        pos
    }

    fn handle_packet(&mut self, p: &[u8; TS_PACKET_LEN]) {
        self.stats.packets += 1;
        let h = Header::parse(p);
        if h.pid == NULL_PID {
            return;
        }
        let is_pat = h.pid == PAT_PID;
        let pmt_pid = self.program.as_ref().map(|p| p.pmt_pid);
        let is_pmt = pmt_pid == Some(h.pid);
        let es = self.streams.iter().position(|s| s.info.pid == h.pid);
        if !is_pat && !is_pmt && es.is_none() {
            return;
        }
        if h.transport_error {
            // Corrupt; its loss shows as a continuity gap on the next packet.
            self.events
                .push_back(TsError::TransportError { pid: h.pid }.into());
            return;
        }
        if h.scrambling != 0 {
            self.events
                .push_back(TsError::Scrambled { pid: h.pid }.into());
            return;
        }
        let (af, payload) = match split_packet(&h, p) {
            Ok(x) => x,
            Err(e) => {
                self.events.push_back(e.into());
                return;
            }
        };
        if let (Some(pcr), Some(program)) = (af.pcr, &self.program) {
            if program.pcr_pid == Some(h.pid) {
                self.last_pcr = Some(pcr);
            }
        }
        if is_pat || is_pmt {
            let state = if is_pat { &mut self.pat } else { &mut self.pmt };
            if !h.has_payload {
                return;
            }
            match check_cc(&mut state.last_cc, h.continuity_counter, af.discontinuity) {
                Cc::Duplicate => return,
                Cc::Gap => state.sections.reset(),
                Cc::Ok => {}
            }
            let mut sections = Vec::new();
            state
                .sections
                .push(h.pid, h.payload_unit_start, payload, &mut |s| {
                    sections.push(s.map(<[u8]>::to_vec));
                });
            for s in sections {
                match s {
                    Ok(s) if is_pat => self.on_pat(h.pid, &s),
                    Ok(s) => self.on_pmt(h.pid, &s),
                    Err(e) => self.events.push_back(e.into()),
                }
            }
            return;
        }
        if let Some(i) = es {
            self.on_es_packet(i, &h, af.random_access, af.discontinuity, payload);
        }
    }

    fn on_pat(&mut self, pid: u16, s: &[u8]) {
        let section = match Section::parse(pid, s) {
            Ok(s) => s,
            Err(e) => return self.events.push_back(e.into()),
        };
        if section.table_id != TABLE_PAT || !section.current {
            return;
        }
        let first = match pat_first_program(pid, section.body) {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(e) => return self.events.push_back(e.into()),
        };
        let (program_number, pmt_pid) = first;
        if pmt_pid == PAT_PID || pmt_pid == NULL_PID {
            return self.events.push_back(
                TsError::InvalidSection {
                    pid,
                    reason: "PMT PID is reserved",
                }
                .into(),
            );
        }
        if let Some(p) = &self.program {
            if p.program_number == program_number && p.pmt_pid == pmt_pid {
                return;
            }
        }
        // A new program: forget the old one's streams; its PMT will announce the new ones.
        self.program = Some(Program {
            program_number,
            pmt_pid,
            pcr_pid: None,
            streams: Vec::new(),
        });
        self.pmt = PsiState::default();
        self.pmt_version = None;
        self.streams.clear();
    }

    fn on_pmt(&mut self, pid: u16, s: &[u8]) {
        let section = match Section::parse(pid, s) {
            Ok(s) => s,
            Err(e) => return self.events.push_back(e.into()),
        };
        let Some(program) = &self.program else {
            return;
        };
        if section.table_id != TABLE_PMT
            || !section.current
            || section.id != program.program_number
            || self.pmt_version == Some(section.version)
        {
            return;
        }
        let pmt = match parse_pmt(pid, section.body) {
            Ok(p) => p,
            Err(e) => return self.events.push_back(e.into()),
        };
        let mut infos: Vec<StreamInfo> = Vec::new();
        for (stream_type, es_pid) in pmt.streams {
            let reserved = es_pid == PAT_PID || es_pid == NULL_PID || es_pid == pid;
            if reserved || infos.iter().any(|i| i.pid == es_pid) {
                continue;
            }
            infos.push(StreamInfo {
                pid: es_pid,
                stream_type,
                kind: StreamKind::from_stream_type(stream_type),
            });
        }
        if infos.len() > self.config.max_streams {
            self.events.push_back(
                TsError::TooManyStreams {
                    count: infos.len(),
                    max: self.config.max_streams,
                }
                .into(),
            );
            infos.truncate(self.config.max_streams);
        }
        self.pmt_version = Some(section.version);
        let pcr_pid = (pmt.pcr_pid != NULL_PID).then_some(pmt.pcr_pid);
        let changed = program.streams != infos;
        if let Some(program) = &mut self.program {
            program.pcr_pid = pcr_pid;
            program.streams = infos.clone();
        }
        if !changed {
            return;
        }
        // Keep the reassembly state of streams that stay as they were.
        let mut old = std::mem::take(&mut self.streams);
        for info in &infos {
            let kept = old
                .iter()
                .position(|s| s.info == *info)
                .map(|i| old.swap_remove(i));
            if matches!(info.kind, StreamKind::Unsupported(_)) {
                continue;
            }
            self.streams.push(kept.unwrap_or(EsState {
                info: *info,
                last_cc: None,
                pes: None,
            }));
        }
        self.events.push_back(TsEvent::Streams(infos));
    }

    fn on_es_packet(
        &mut self,
        i: usize,
        h: &Header,
        random_access: bool,
        discontinuity: bool,
        payload: &[u8],
    ) {
        if !h.has_payload {
            return;
        }
        let pid = h.pid;
        match check_cc(
            &mut self.streams[i].last_cc,
            h.continuity_counter,
            discontinuity,
        ) {
            Cc::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
            Cc::Gap => {
                self.stats.cc_errors += 1;
                if self.streams[i].pes.take().is_some() {
                    self.stats.pes_dropped += 1;
                }
                self.events.push_back(TsEvent::Discontinuity { pid });
            }
            Cc::Ok => {}
        }
        if h.payload_unit_start {
            if let Some(pes) = self.streams[i].pes.take() {
                self.finish_pes(i, pes);
            }
            self.streams[i].pes = Some(Assembly {
                buf: BytesMut::new(),
                declared: None,
                random_access,
            });
        }
        let max = self.config.max_pes_size;
        let Some(pes) = self.streams[i].pes.as_mut() else {
            // Waiting for the start of the next PES.
            return;
        };
        if pes.buf.len() + payload.len() > max {
            self.streams[i].pes = None;
            self.stats.pes_dropped += 1;
            self.events
                .push_back(TsError::PesTooLarge { pid, max }.into());
            return;
        }
        if pes.buf.is_empty() {
            // Most PES fit a first allocation that grows by doubling.
            pes.buf.reserve(payload.len().max(4096).min(max));
        }
        pes.buf.extend_from_slice(payload);
        if pes.declared.is_none() && pes.buf.len() >= 6 {
            if pes.buf[..3] != [0, 0, 1] {
                self.streams[i].pes = None;
                self.stats.pes_dropped += 1;
                self.events.push_back(
                    TsError::InvalidPes {
                        pid,
                        reason: "no start code prefix",
                    }
                    .into(),
                );
                return;
            }
            let len = usize::from(u16::from_be_bytes([pes.buf[4], pes.buf[5]]));
            if len > 0 {
                pes.declared = Some(6 + len);
            }
        }
        if let Some(total) = pes.declared {
            if pes.buf.len() >= total {
                // Complete: deliver now rather than at the next payload unit start. Bytes
                // past the declared length until then are ignored.
                pes.buf.truncate(total);
                if let Some(pes) = self.streams[i].pes.take() {
                    self.finish_pes(i, pes);
                }
            }
        }
    }

    /// Turns a reassembled PES into an event (or an error).
    fn finish_pes(&mut self, i: usize, pes: Assembly) {
        let info = self.streams[i].info;
        let pid = info.pid;
        let data = pes.buf.freeze();
        let header = match parse_header(&data) {
            Ok(h) => h,
            Err(reason) => {
                self.stats.pes_dropped += 1;
                self.events
                    .push_back(TsError::InvalidPes { pid, reason }.into());
                return;
            }
        };
        let Some(pts) = header.pts else {
            self.stats.pes_dropped += 1;
            self.events.push_back(TsError::MissingPts { pid }.into());
            return;
        };
        let payload = data.slice(header.payload_offset..);
        if payload.is_empty() {
            return;
        }
        let dts = match header.dts {
            Some(dts) => self.clock.unwrap(dts),
            None => self.clock.unwrap(pts),
        };
        let pts = if header.dts.is_some() {
            self.clock.unwrap(pts)
        } else {
            dts
        };
        self.stats.access_units += 1;
        let event = match info.kind {
            StreamKind::Video(codec) => {
                let keyframe = pes.random_access
                    || match codec {
                        VideoCodec::H264 => h264_is_keyframe(&payload),
                        VideoCodec::Hevc => hevc_is_keyframe(&payload),
                    };
                TsEvent::Video {
                    pid,
                    codec,
                    pts,
                    dts,
                    keyframe,
                    data: payload,
                }
            }
            StreamKind::Audio(codec) => TsEvent::Audio {
                pid,
                codec,
                pts,
                data: payload,
            },
            StreamKind::Unsupported(_) => return,
        };
        self.events.push_back(event);
    }
}

impl From<TsError> for TsEvent {
    fn from(e: TsError) -> Self {
        TsEvent::Error(e)
    }
}

enum Cc {
    Ok,
    Duplicate,
    Gap,
}

/// Checks the continuity counter of a packet with payload against the last one.
fn check_cc(last: &mut Option<u8>, cc: u8, discontinuity: bool) -> Cc {
    let previous = last.replace(cc);
    match previous {
        _ if discontinuity => Cc::Ok,
        None => Cc::Ok,
        Some(p) if p == cc => Cc::Duplicate,
        Some(p) if (p + 1) & 0x0F == cc => Cc::Ok,
        Some(_) => Cc::Gap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::write_packet;
    use crate::psi::{write_pat, write_pmt};

    /// Section in packets (pointer field 0, 0xFF stuffing).
    fn psi_packet(pid: u16, cc: u8, section: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0];
        p.extend_from_slice(section);
        assert!(p.len() <= TS_PACKET_LEN);
        p.resize(TS_PACKET_LEN, 0xFF);
        p
    }

    fn pes_packet(pid: u16, cc: u8, pts: u64, data: &[u8]) -> Vec<u8> {
        let mut pes = BytesMut::new();
        crate::pes::write_header(&mut pes, 0xE0, pts, None, data.len(), true);
        pes.extend_from_slice(data);
        let mut out = BytesMut::new();
        write_packet(&mut out, pid, true, cc, Some(pts), false, &pes);
        out.to_vec()
    }

    fn run(d: &mut Demuxer, packets: &[Vec<u8>]) -> Vec<TsEvent> {
        for p in packets {
            d.push(p);
        }
        d.flush();
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    fn info(pid: u16, stream_type: u8) -> StreamInfo {
        StreamInfo {
            pid,
            stream_type,
            kind: StreamKind::from_stream_type(stream_type),
        }
    }

    #[test]
    fn pmt_update_changes_streams_and_keeps_unchanged_ones() {
        let mut d = Demuxer::default();
        let pat = write_pat(1, 0x1000, 0);
        let v0 = write_pmt(1, 0x100, &[(0x1B, 0x100), (0x11, 0x101)], 0);
        let v1 = write_pmt(1, 0x100, &[(0x1B, 0x100), (0x0F, 0x102)], 1);
        let events = run(
            &mut d,
            &[
                psi_packet(0, 0, &pat),
                psi_packet(0x1000, 0, &v0),
                pes_packet(0x100, 0, 1000, &[0, 0, 1, 0x65, 1]),
                // Same version again: nothing new.
                psi_packet(0x1000, 1, &v0),
                psi_packet(0x1000, 2, &v1),
                // The video PES started before the update is still delivered.
                pes_packet(0x100, 1, 4000, &[0, 0, 1, 0x41, 2]),
            ],
        );
        assert_eq!(
            events,
            vec![
                TsEvent::Streams(vec![info(0x100, 0x1B), info(0x101, 0x11)]),
                TsEvent::Streams(vec![info(0x100, 0x1B), info(0x102, 0x0F)]),
                TsEvent::Video {
                    pid: 0x100,
                    codec: VideoCodec::H264,
                    pts: 1000,
                    dts: 1000,
                    keyframe: true,
                    data: Bytes::from_static(&[0, 0, 1, 0x65, 1]),
                },
                TsEvent::Video {
                    pid: 0x100,
                    codec: VideoCodec::H264,
                    pts: 4000,
                    dts: 4000,
                    keyframe: false,
                    data: Bytes::from_static(&[0, 0, 1, 0x41, 2]),
                },
            ]
        );
        assert_eq!(
            info(0x101, 0x11).kind,
            StreamKind::Unsupported(STREAM_TYPE_AAC_LATM)
        );
        let program = d.program().unwrap();
        assert_eq!((program.program_number, program.pmt_pid), (1, 0x1000));
        assert_eq!(program.pcr_pid, Some(0x100));
        assert_eq!(d.last_pcr(), Some(4000 * 300));
    }

    #[test]
    fn too_many_streams_and_reserved_pids() {
        let mut d = Demuxer::new(DemuxerConfig {
            max_pes_size: 1 << 16,
            max_streams: 3,
        });
        let mut streams: Vec<(u8, u16)> = vec![(0x1B, 0), (0x1B, 0x1000), (0x1B, 0x1FFF)];
        streams.extend((0..100).map(|i| (0x0F, 0x200 + i)));
        streams.push((0x0F, 0x200)); // duplicate
        let pmt = write_pmt(1, 0x1FFF, &streams, 0);
        assert!(pmt.len() > 184);
        let mut section = vec![0u8];
        section.extend_from_slice(&pmt);
        let mut packets = vec![psi_packet(0, 0, &write_pat(1, 0x1000, 0))];
        let mut out = BytesMut::new();
        for (i, chunk) in section.chunks(184).enumerate() {
            let mut p = vec![0x47, if i == 0 { 0x50 } else { 0x10 }, 0x00, 0x10 | i as u8];
            p.extend_from_slice(chunk);
            p.resize(TS_PACKET_LEN, 0xFF);
            out.extend_from_slice(&p);
        }
        packets.push(out.to_vec());
        let events = run(&mut d, &packets);
        assert_eq!(
            events[0],
            TsEvent::Error(TsError::TooManyStreams { count: 100, max: 3 })
        );
        assert_eq!(
            events[1],
            TsEvent::Streams((0..3).map(|i| info(0x200 + i, 0x0F)).collect())
        );
        assert_eq!(d.program().unwrap().pcr_pid, None);
    }

    #[test]
    fn new_program_in_pat_resets_streams() {
        let mut d = Demuxer::default();
        let events = run(
            &mut d,
            &[
                psi_packet(0, 0, &write_pat(1, 0x1000, 0)),
                psi_packet(0x1000, 0, &write_pmt(1, 0x100, &[(0x1B, 0x100)], 0)),
                psi_packet(0, 1, &write_pat(2, 0x1001, 1)),
                // The old PMT PID is no longer followed.
                psi_packet(0x1000, 1, &write_pmt(1, 0x100, &[(0x24, 0x100)], 1)),
                psi_packet(0x1001, 0, &write_pmt(2, 0x100, &[(0x24, 0x100)], 0)),
                pes_packet(0x100, 0, 1000, &[0, 0, 1, 0x26, 1, 1]),
            ],
        );
        assert_eq!(
            events,
            vec![
                TsEvent::Streams(vec![info(0x100, 0x1B)]),
                TsEvent::Streams(vec![info(0x100, 0x24)]),
                TsEvent::Video {
                    pid: 0x100,
                    codec: VideoCodec::Hevc,
                    pts: 1000,
                    dts: 1000,
                    keyframe: true,
                    data: Bytes::from_static(&[0, 0, 1, 0x26, 1, 1]),
                },
            ]
        );
    }

    #[test]
    fn signalled_discontinuity_is_not_a_gap_and_bad_crc_is_reported() {
        let mut d = Demuxer::default();
        let mut jump = pes_packet(0x100, 9, 2000, &[0, 0, 1, 0x41, 1]);
        // Set the discontinuity_indicator in the adaptation field (PCR present).
        jump[5] |= 0x80;
        let mut bad = write_pat(1, 0x1000, 0).to_vec();
        bad[9] ^= 0xFF;
        let events = run(
            &mut d,
            &[
                psi_packet(0, 0, &write_pat(1, 0x1000, 0)),
                psi_packet(0x1000, 0, &write_pmt(1, 0x100, &[(0x1B, 0x100)], 0)),
                pes_packet(0x100, 0, 1000, &[0, 0, 1, 0x41, 0]),
                jump,
                psi_packet(0, 1, &bad),
            ],
        );
        assert_eq!(
            problems(&events),
            vec![TsEvent::Error(TsError::CrcMismatch { pid: 0 })]
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, TsEvent::Video { .. }))
                .count(),
            2
        );
    }

    fn problems(events: &[TsEvent]) -> Vec<TsEvent> {
        events
            .iter()
            .filter(|e| matches!(e, TsEvent::Error(_) | TsEvent::Discontinuity { .. }))
            .cloned()
            .collect()
    }

    #[test]
    fn error_kinds_are_snake_case() {
        for e in [
            TsError::SyncLost { offset: 0 },
            TsError::PesTooLarge { pid: 1, max: 2 },
            TsError::InvalidMuxerInput { reason: "x" },
        ] {
            assert!(e.kind().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!e.to_string().is_empty());
        }
    }
}
