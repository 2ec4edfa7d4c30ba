//! The muxer: access units in, 188-byte packets out.

use bytes::{Bytes, BytesMut};

use crate::demux::{
    AudioCodec, VideoCodec, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, STREAM_TYPE_HEVC,
};
use crate::packet::{write_packet, CLOCK_HZ, MAX_PAYLOAD, NULL_PID, PAT_PID, TS_PACKET_LEN};
use crate::pes::{write_header, STREAM_ID_AUDIO, STREAM_ID_VIDEO, TS_MASK};
use crate::psi::{write_pat, write_pmt};
use crate::TsError;

/// What a [`Muxer`] writes: one program with at most one video and one audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxerConfig {
    /// program_number of the one program.
    pub program_number: u16,
    /// PID of the PMT.
    pub pmt_pid: u16,
    /// The video stream: PID and codec. Its PID carries the PCR.
    pub video: Option<(u16, VideoCodec)>,
    /// The audio stream: PID and codec. Carries the PCR when there is no video.
    pub audio: Option<(u16, AudioCodec)>,
    /// PAT and PMT are repeated before the first access unit whose timestamp is this far
    /// (90 kHz ticks) past the last repetition, and before every keyframe.
    pub psi_interval: i64,
    /// How far the PCR runs behind the DTS of the access unit it is sent with (90 kHz
    /// ticks): the decoder's buffering time.
    pub pcr_delay: i64,
}

impl Default for MuxerConfig {
    /// FFmpeg's layout: PMT on 0x1000, video on 0x100, audio on 0x101, PSI every 100 ms.
    fn default() -> Self {
        MuxerConfig {
            program_number: 1,
            pmt_pid: 0x1000,
            video: Some((0x100, VideoCodec::H264)),
            audio: Some((0x101, AudioCodec::Aac)),
            psi_interval: CLOCK_HZ / 10,
            pcr_delay: CLOCK_HZ / 10,
        }
    }
}

/// A sans-IO MPEG-TS muxer for one program. Each call returns whole packets (`188 * n`
/// bytes) to send or store as they are.
///
/// It writes PAT and PMT first, before every keyframe and at the configured interval; a PCR
/// in the first packet of every access unit on the PCR PID; PES headers with PTS (and DTS
/// when it differs); adaptation field stuffing to fill the last packet of a PES; and the
/// continuity counters. Video PES packets have unbounded length (0), audio ones their exact
/// length. Timestamps are taken modulo 2^33, so an unwrapped timeline wraps on the wire as
/// it should. H.264 access units are written as given: the caller adds access unit
/// delimiters if its receivers need them.
#[derive(Debug)]
pub struct Muxer {
    config: MuxerConfig,
    pcr_pid: u16,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    last_psi: Option<i64>,
    psi_untimed: bool,
}

impl Muxer {
    /// A muxer for `config`; fails when a PID is reserved or used twice, or there is no
    /// stream.
    pub fn new(config: MuxerConfig) -> Result<Self, TsError> {
        let valid = |pid: u16| (0x0010..NULL_PID).contains(&pid);
        if !valid(config.pmt_pid) {
            return Err(TsError::muxer("PMT PID outside 0x0010..0x1FFF"));
        }
        let video = config.video.map(|(pid, _)| pid);
        let audio = config.audio.map(|(pid, _)| pid);
        for pid in [video, audio].into_iter().flatten() {
            if !valid(pid) || pid == config.pmt_pid {
                return Err(TsError::muxer(
                    "stream PID reserved, outside 0x0010..0x1FFF, or the PMT PID",
                ));
            }
        }
        if video.is_some() && video == audio {
            return Err(TsError::muxer("video and audio on the same PID"));
        }
        let Some(pcr_pid) = video.or(audio) else {
            return Err(TsError::muxer("no stream"));
        };
        if config.psi_interval <= 0 || config.pcr_delay < 0 {
            return Err(TsError::muxer("negative PSI interval or PCR delay"));
        }
        Ok(Muxer {
            config,
            pcr_pid,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            last_psi: None,
            psi_untimed: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MuxerConfig {
        &self.config
    }

    /// PAT and PMT, now (the next access unit call will not repeat them unless due).
    pub fn write_psi(&mut self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 * TS_PACKET_LEN);
        self.psi_into(&mut out);
        self.psi_untimed = true;
        out.freeze()
    }

    /// One video access unit (Annex B), as packets. `keyframe` sets the random access
    /// indicator and repeats PAT/PMT before it.
    pub fn write_video(
        &mut self,
        pts: i64,
        dts: i64,
        keyframe: bool,
        data: &[u8],
    ) -> Result<Bytes, TsError> {
        let Some((pid, _)) = self.config.video else {
            return Err(TsError::muxer("no video stream configured"));
        };
        if pts < dts {
            return Err(TsError::muxer("PTS before DTS"));
        }
        let mut out = BytesMut::new();
        self.maybe_psi(&mut out, dts, keyframe);
        let mut pes = BytesMut::with_capacity(19 + data.len());
        let dts_field = (pts != dts).then_some(wire(dts));
        write_header(
            &mut pes,
            STREAM_ID_VIDEO,
            wire(pts),
            dts_field,
            data.len(),
            true,
        );
        pes.extend_from_slice(data);
        let pcr = (self.pcr_pid == pid).then(|| wire(dts.saturating_sub(self.config.pcr_delay)));
        let mut cc = self.cc_video;
        packetize(&mut out, pid, &mut cc, pcr, keyframe, &pes);
        self.cc_video = cc;
        Ok(out.freeze())
    }

    /// One audio PES: one or more ADTS frames starting at `pts`, as packets.
    pub fn write_audio(&mut self, pts: i64, data: &[u8]) -> Result<Bytes, TsError> {
        let Some((pid, _)) = self.config.audio else {
            return Err(TsError::muxer("no audio stream configured"));
        };
        let mut pes = BytesMut::with_capacity(14 + data.len());
        if !write_header(
            &mut pes,
            STREAM_ID_AUDIO,
            wire(pts),
            None,
            data.len(),
            false,
        ) {
            return Err(TsError::muxer("audio PES over 65535 bytes"));
        }
        pes.extend_from_slice(data);
        let mut out = BytesMut::new();
        self.maybe_psi(&mut out, pts, false);
        let pcr = (self.pcr_pid == pid).then(|| wire(pts.saturating_sub(self.config.pcr_delay)));
        let mut cc = self.cc_audio;
        packetize(&mut out, pid, &mut cc, pcr, false, &pes);
        self.cc_audio = cc;
        Ok(out.freeze())
    }

    fn psi_into(&mut self, out: &mut BytesMut) {
        let c = &self.config;
        let pat = write_pat(c.program_number, c.pmt_pid, 0);
        let streams: Vec<(u8, u16)> = c
            .video
            .map(|(pid, codec)| {
                let t = match codec {
                    VideoCodec::H264 => STREAM_TYPE_H264,
                    VideoCodec::Hevc => STREAM_TYPE_HEVC,
                };
                (t, pid)
            })
            .into_iter()
            .chain(
                c.audio
                    .map(|(pid, AudioCodec::Aac)| (STREAM_TYPE_AAC_ADTS, pid)),
            )
            .collect();
        let pmt = write_pmt(c.program_number, self.pcr_pid, &streams, 0);
        let pmt_pid = c.pmt_pid;
        let mut cc_pat = self.cc_pat;
        let mut cc_pmt = self.cc_pmt;
        psi_packets(out, PAT_PID, &mut cc_pat, &pat);
        psi_packets(out, pmt_pid, &mut cc_pmt, &pmt);
        self.cc_pat = cc_pat;
        self.cc_pmt = cc_pmt;
    }

    /// Writes PAT and PMT when forced or due at `now` (90 kHz).
    fn maybe_psi(&mut self, out: &mut BytesMut, now: i64, force: bool) {
        if self.psi_untimed {
            // Sent by write_psi, which has no clock: count it as sent now.
            self.psi_untimed = false;
            self.last_psi = Some(now);
        }
        let due = self
            .last_psi
            .is_none_or(|last| now.abs_diff(last) >= self.config.psi_interval.unsigned_abs());
        if force || due {
            self.psi_into(out);
            self.last_psi = Some(now);
        }
    }
}

/// A timestamp as its 33 wire bits.
fn wire(ts: i64) -> u64 {
    (ts.rem_euclid(1 << 33) as u64) & TS_MASK
}

/// Splits a PES into packets: the first with payload_unit_start (and the PCR and random
/// access flag), the last padded with adaptation field stuffing.
fn packetize(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    pcr: Option<u64>,
    random_access: bool,
    mut pes: &[u8],
) {
    out.reserve(pes.len().div_ceil(MAX_PAYLOAD - 8) * TS_PACKET_LEN);
    let mut first = true;
    while first || !pes.is_empty() {
        let (pcr, rai) = if first {
            (pcr, random_access)
        } else {
            (None, false)
        };
        let n = write_packet(out, pid, first, *cc, pcr, rai, pes);
        *cc = (*cc + 1) & 0x0F;
        pes = &pes[n..];
        first = false;
    }
}

/// A PSI section in packets: pointer field 0, the section, then 0xFF stuffing.
fn psi_packets(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    let mut payload = Vec::with_capacity(1 + section.len());
    payload.push(0);
    payload.extend_from_slice(section);
    let mut rest = &payload[..];
    let mut first = true;
    while first || !rest.is_empty() {
        let n = rest.len().min(MAX_PAYLOAD);
        let start = out.len();
        out.extend_from_slice(&[
            0x47,
            (u8::from(first) << 6) | ((pid >> 8) as u8 & 0x1F),
            pid as u8,
            0x10 | (*cc & 0x0F),
        ]);
        out.extend_from_slice(&rest[..n]);
        out.resize(start + TS_PACKET_LEN, 0xFF);
        *cc = (*cc + 1) & 0x0F;
        rest = &rest[n..];
        first = false;
    }
}
