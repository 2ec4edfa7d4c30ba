//! Helpers shared by the integration tests: a deterministic PRNG, synthetic access units,
//! and a demuxer driver.

#![allow(dead_code)]

use bytes::Bytes;
use lunora_flv::{AdtsHeader, AudioSpecificConfig};
use lunora_mpegts::{Demuxer, DemuxerConfig, TsEvent};

/// xorshift64*: deterministic, no crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// NAL unit payload bytes that contain no zero byte, so no start code emulation.
fn nal_body(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.byte().max(1)).collect()
}

/// An H.264 Annex B access unit: AUD, then for a keyframe SPS + PPS + IDR slice, else a
/// non-IDR slice; `size` bytes of slice data.
pub fn h264_au(rng: &mut Rng, keyframe: bool, size: usize) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x09, 0xF0];
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    } else {
        au.extend_from_slice(&[0, 0, 0, 1, 0x41]);
    }
    au.extend(nal_body(rng, size));
    au
}

/// An HEVC Annex B access unit: AUD, then VPS/SPS/PPS + IDR_W_RADL or a TRAIL_R slice.
pub fn hevc_au(rng: &mut Rng, keyframe: bool, size: usize) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x40, 0x01, 0x0C, 0x01]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x42, 0x01, 0x01, 0x01]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x44, 0x01, 0xC1, 0x72]);
        au.extend_from_slice(&[0, 0, 1, 0x26, 0x01]);
    } else {
        au.extend_from_slice(&[0, 0, 1, 0x02, 0x01]);
    }
    au.extend(nal_body(rng, size));
    au
}

/// An ADTS frame (AAC LC) with `payload_len` bytes of payload.
pub fn adts_frame(rng: &mut Rng, rate: u32, payload_len: usize) -> Vec<u8> {
    let asc = AudioSpecificConfig::aac_lc(rate, 2).unwrap();
    let mut f = AdtsHeader::build(&asc, payload_len).unwrap().to_vec();
    f.extend(rng.bytes(payload_len));
    f
}

/// Pushes `data` into a fresh demuxer in pieces chosen by `pieces`, flushes, and returns every
/// event. Checks the memory bound after each push.
pub fn demux_with(
    config: DemuxerConfig,
    data: &[u8],
    mut pieces: impl FnMut() -> usize,
) -> Vec<TsEvent> {
    let mut d = Demuxer::new(config);
    let mut events = Vec::new();
    let mut rest = data;
    let bound = config.max_streams * (config.max_pes_size + 184) + 4 * 1024 + 2 * 188;
    while !rest.is_empty() {
        let n = pieces().clamp(1, rest.len());
        d.push(&rest[..n]);
        rest = &rest[n..];
        assert!(
            d.buffered_bytes() <= bound,
            "buffered {} > {bound}",
            d.buffered_bytes()
        );
        while let Some(e) = d.poll_event() {
            events.push(e);
        }
    }
    d.flush();
    while let Some(e) = d.poll_event() {
        events.push(e);
    }
    events
}

/// Demuxes `data` in one push with the default configuration.
pub fn demux(data: &[u8]) -> Vec<TsEvent> {
    demux_with(DemuxerConfig::default(), data, || usize::MAX)
}

/// (pid, pts, dts, keyframe, data) of every video event.
pub fn videos(events: &[TsEvent]) -> Vec<(u16, i64, i64, bool, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Video {
                pid,
                pts,
                dts,
                keyframe,
                data,
                ..
            } => Some((*pid, *pts, *dts, *keyframe, data.clone())),
            _ => None,
        })
        .collect()
}

/// (pid, pts, data) of every audio event.
pub fn audios(events: &[TsEvent]) -> Vec<(u16, i64, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Audio { pid, pts, data, .. } => Some((*pid, *pts, data.clone())),
            _ => None,
        })
        .collect()
}

/// Every error and discontinuity event.
pub fn problems(events: &[TsEvent]) -> Vec<TsEvent> {
    events
        .iter()
        .filter(|e| matches!(e, TsEvent::Error(_) | TsEvent::Discontinuity { .. }))
        .cloned()
        .collect()
}
