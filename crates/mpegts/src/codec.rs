//! What the demuxer needs to know about the elementary streams it carries: random access
//! points in H.264/HEVC access units, and ADTS frames with their own timestamps.
//!
//! Annex B <-> AVCC conversion, the AVCDecoderConfigurationRecord, the SPS parser and the
//! ADTS header itself live in `lunora-flv`; this module only adds what MPEG-TS ingest needs
//! on top.

use bytes::Bytes;
use lunora_flv::{AdtsHeader, FlvError, SAMPLING_FREQUENCIES};

use crate::packet::CLOCK_HZ;

/// The NAL unit header byte(s) of the first VCL (picture data) NAL unit of an Annex B access
/// unit, found without scanning the picture data itself: parameter sets, SEI and delimiters
/// before it are skipped, and the search stops at the first slice.
fn first_vcl_nal(
    data: &[u8],
    is_vcl: impl Fn(u8) -> bool,
    nal_type: impl Fn(u8) -> u8,
) -> Option<u8> {
    let mut i = 0;
    while i + 3 < data.len() {
        // Find the next 00 00 01.
        if data[i] != 0 || data[i + 1] != 0 || data[i + 2] != 1 {
            i += 1;
            continue;
        }
        let header = data[i + 3];
        let t = nal_type(header);
        if is_vcl(t) {
            return Some(t);
        }
        i += 4;
    }
    None
}

/// Whether an H.264 Annex B access unit is an IDR picture: its first slice is a coded slice
/// of an IDR picture (NAL unit type 5).
pub fn h264_is_keyframe(access_unit: &[u8]) -> bool {
    first_vcl_nal(access_unit, |t| (1..=5).contains(&t), |h| h & 0x1F) == Some(5)
}

/// Whether an HEVC Annex B access unit is an intra random access point: its first slice has
/// a NAL unit type in 16..=23 (BLA, IDR, CRA and the reserved IRAP types).
pub fn hevc_is_keyframe(access_unit: &[u8]) -> bool {
    first_vcl_nal(access_unit, |t| t < 32, |h| (h >> 1) & 0x3F)
        .is_some_and(|t| (16..=23).contains(&t))
}

/// One ADTS frame of an AAC PES payload, with its own presentation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacFrame {
    /// Presentation timestamp, 90 kHz ticks, on the same timeline as the PES.
    pub pts: i64,
    /// The parsed ADTS header (sample rate, channels, profile: what an
    /// `AudioSpecificConfig` needs, see [`AdtsHeader::audio_specific_config`]).
    pub header: AdtsHeader,
    /// The whole ADTS frame, header included (what an MPEG-TS or HLS output writes).
    pub adts: Bytes,
}

impl AacFrame {
    /// The raw AAC payload after the ADTS header (what FLV/RTMP carries).
    pub fn raw(&self) -> Bytes {
        self.adts
            .slice(self.header.header_len().min(self.adts.len())..)
    }

    /// PCM samples per channel the frame decodes to: 1024 per raw data block.
    pub fn samples(&self) -> u32 {
        1024 * u32::from(self.header.raw_data_blocks)
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        sample_rate(&self.header)
    }

    /// The frame's duration in 90 kHz ticks (rounded down).
    pub fn duration(&self) -> i64 {
        i64::from(self.samples()) * CLOCK_HZ / i64::from(self.sample_rate())
    }
}

fn sample_rate(h: &AdtsHeader) -> u32 {
    // AdtsHeader::parse rejects indexes past the table; 44.1 kHz is a harmless fallback.
    SAMPLING_FREQUENCIES
        .get(usize::from(h.sampling_frequency_index))
        .copied()
        .unwrap_or(44_100)
}

/// Splits an ADTS PES payload into frames, zero-copy, giving each frame the PES `pts` plus
/// the duration of the frames before it (1024 samples per raw data block at the frame's own
/// sample rate, accumulated exactly and rounded down, so there is no drift).
///
/// A malformed or truncated frame yields an error and ends the iteration.
pub fn split_adts(data: Bytes, pts: i64) -> AdtsSplit {
    AdtsSplit {
        data,
        base: pts,
        rate: 0,
        samples: 0,
        failed: false,
    }
}

/// The iterator [`split_adts`] returns.
#[derive(Debug, Clone)]
pub struct AdtsSplit {
    data: Bytes,
    /// PTS at the start of the current run of frames at `rate`.
    base: i64,
    rate: u32,
    /// Samples since `base`.
    samples: u64,
    failed: bool,
}

impl Iterator for AdtsSplit {
    type Item = Result<AacFrame, FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let header = match AdtsHeader::parse(&self.data) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let len = usize::from(header.frame_length);
        if self.data.len() < len {
            self.failed = true;
            return Some(Err(FlvError::Truncated {
                what: "ADTS frame",
                need: len,
                have: self.data.len(),
            }));
        }
        let rate = sample_rate(&header);
        if rate != self.rate {
            // A new rate starts a new run at the current position.
            if self.rate != 0 {
                self.base = self.base.saturating_add(self.elapsed());
            }
            self.rate = rate;
            self.samples = 0;
        }
        let pts = self.base.saturating_add(self.elapsed());
        self.samples += 1024 * u64::from(header.raw_data_blocks);
        Some(Ok(AacFrame {
            pts,
            header,
            adts: self.data.split_to(len),
        }))
    }
}

impl AdtsSplit {
    fn elapsed(&self) -> i64 {
        if self.rate == 0 {
            return 0;
        }
        i64::try_from(self.samples * CLOCK_HZ as u64 / u64::from(self.rate)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunora_flv::AudioSpecificConfig;

    #[test]
    fn h264_keyframes() {
        let idr = [
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88,
        ];
        assert!(h264_is_keyframe(&idr));
        let p = [0, 0, 0, 1, 0x09, 0x30, 0, 0, 1, 0x41, 0x9A, 0, 0, 1, 0x65];
        // The first slice decides; a later IDR NAL in the same unit does not make it one.
        assert!(!h264_is_keyframe(&p));
        assert!(!h264_is_keyframe(&[0, 0, 1, 0x67, 0, 0, 1, 0x68]));
        assert!(!h264_is_keyframe(&[]));
        assert!(!h264_is_keyframe(&[0, 0, 1]));
    }

    #[test]
    fn hevc_keyframes() {
        // AUD (35), VPS (32), SPS (33), PPS (34), then IDR_W_RADL (19).
        let idr = [
            0, 0, 0, 1, 0x46, 0x01, 0x10, 0, 0, 1, 0x40, 0x01, 0, 0, 1, 0x42, 0x01, 0, 0, 1, 0x44,
            0x01, 0, 0, 1, 0x26, 0x01, 0xAF,
        ];
        assert!(hevc_is_keyframe(&idr));
        // CRA (21).
        assert!(hevc_is_keyframe(&[0, 0, 1, 0x2A, 0x01, 0x00]));
        // TRAIL_R (1).
        assert!(!hevc_is_keyframe(&[
            0, 0, 1, 0x46, 0x01, 0, 0, 1, 0x02, 0x01, 0x00
        ]));
        assert!(!hevc_is_keyframe(&[0, 0, 1, 0x40, 0x01]));
    }

    fn adts(config: &AudioSpecificConfig, payload_len: usize, fill: u8) -> Vec<u8> {
        let mut v = AdtsHeader::build(config, payload_len).unwrap().to_vec();
        v.extend(std::iter::repeat_n(fill, payload_len));
        v
    }

    #[test]
    fn split_gives_each_frame_its_pts_without_drift() {
        let asc = AudioSpecificConfig::aac_lc(44_100, 2).unwrap();
        let mut data = Vec::new();
        for i in 0..100u8 {
            data.extend(adts(&asc, 10 + usize::from(i), i));
        }
        let frames: Vec<_> = split_adts(Bytes::from(data), 1_000)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 100);
        for (i, f) in frames.iter().enumerate() {
            let expected = 1_000 + (i as i64 * 1024 * 90_000) / 44_100;
            assert_eq!(f.pts, expected, "frame {i}");
            assert_eq!(f.raw().len(), 10 + i);
            assert!(f.raw().iter().all(|&b| b == i as u8));
            assert_eq!(f.adts.len(), 17 + i);
            assert_eq!(f.sample_rate(), 44_100);
            assert_eq!(f.duration(), 2089);
        }
    }

    #[test]
    fn split_handles_rate_change_and_truncation() {
        let a = AudioSpecificConfig::aac_lc(48_000, 2).unwrap();
        let b = AudioSpecificConfig::aac_lc(24_000, 1).unwrap();
        let mut data = adts(&a, 5, 0);
        data.extend(adts(&a, 5, 0));
        data.extend(adts(&b, 5, 0));
        data.extend(adts(&b, 5, 0));
        let mut truncated = data.clone();
        let frames: Vec<_> = split_adts(Bytes::from(data), 0)
            .collect::<Result<_, _>>()
            .unwrap();
        let pts: Vec<_> = frames.iter().map(|f| f.pts).collect();
        assert_eq!(pts, vec![0, 1920, 3840, 3840 + 3840]);
        truncated.pop();
        let items: Vec<_> = split_adts(Bytes::from(truncated), 0).collect();
        assert_eq!(items.len(), 4);
        assert!(items[3].is_err());
        let items: Vec<_> = split_adts(Bytes::from_static(&[0xFF, 0xF1, 0]), 0).collect();
        assert!(matches!(items[..], [Err(_)]));
    }
}
