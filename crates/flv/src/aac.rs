//! AAC: AudioSpecificConfig (the body of an FLV AAC sequence header) and ADTS framing (how
//! MPEG-TS carries AAC; FLV/RTMP carries raw frames without it).

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::BitReader;
use crate::error::need;
use crate::FlvError;

/// Sampling frequencies by index (ISO/IEC 14496-3 table 1.18); 13 and 14 are reserved and
/// 15 means "explicit frequency follows".
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Index of `hz` in [`SAMPLING_FREQUENCIES`], if it is a standard rate.
pub fn sampling_frequency_index(hz: u32) -> Option<u8> {
    SAMPLING_FREQUENCIES
        .iter()
        .position(|&f| f == hz)
        .map(|i| i as u8)
}

/// MPEG-4 AudioSpecificConfig, the leading fields (what a muxer or an HLS packager needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC LC, 5 = SBR/HE-AAC, 29 = PS); up to 95.
    pub object_type: u8,
    /// Sampling frequency index (0..=12), or 15 when the frequency is explicit.
    pub sampling_frequency_index: u8,
    /// Sampling frequency in Hz.
    pub sampling_frequency: u32,
    /// Channel configuration (1 = mono, 2 = stereo, ... 7 = 7.1; 0 = defined in-band).
    pub channel_configuration: u8,
}

impl AudioSpecificConfig {
    /// An AAC LC configuration for a standard sample rate.
    pub fn aac_lc(sampling_frequency: u32, channels: u8) -> Result<Self, FlvError> {
        let idx = sampling_frequency_index(sampling_frequency).ok_or(FlvError::Unsupported {
            what: "AAC sampling frequency",
            value: sampling_frequency,
        })?;
        if channels > 15 {
            return Err(FlvError::invalid("AAC channel configuration", "over 15"));
        }
        Ok(AudioSpecificConfig {
            object_type: 2,
            sampling_frequency_index: idx,
            sampling_frequency,
            channel_configuration: channels,
        })
    }

    /// Parses the leading fields of an AudioSpecificConfig; the rest is ignored.
    pub fn parse(data: &[u8]) -> Result<Self, FlvError> {
        let mut r = BitReader::new(data, "AudioSpecificConfig");
        let mut object_type = r.read_u8(5)?;
        if object_type == 31 {
            object_type = 32 + r.read_u8(6)?;
        }
        if object_type == 0 {
            return Err(FlvError::invalid("AudioSpecificConfig", "object type 0"));
        }
        let sampling_frequency_index = r.read_u8(4)?;
        let sampling_frequency = match sampling_frequency_index {
            15 => r.read_bits(24)?,
            i => *SAMPLING_FREQUENCIES
                .get(usize::from(i))
                .ok_or(FlvError::Unsupported {
                    what: "AAC sampling frequency index",
                    value: u32::from(i),
                })?,
        };
        if sampling_frequency == 0 {
            return Err(FlvError::invalid("AudioSpecificConfig", "zero sample rate"));
        }
        let channel_configuration = r.read_u8(4)?;
        Ok(AudioSpecificConfig {
            object_type,
            sampling_frequency_index,
            sampling_frequency,
            channel_configuration,
        })
    }

    /// Serializes the config with a plain GASpecificConfig (1024-sample frames, no core
    /// coder, no extension): 2 bytes for the usual AAC LC case.
    pub fn encode(&self) -> Result<Bytes, FlvError> {
        let mut w = BitWriter::default();
        match self.object_type {
            0 => return Err(FlvError::invalid("AudioSpecificConfig", "object type 0")),
            1..=30 => w.put(u32::from(self.object_type), 5),
            31..=95 => {
                w.put(31, 5);
                w.put(u32::from(self.object_type - 32), 6);
            }
            _ => {
                return Err(FlvError::invalid(
                    "AudioSpecificConfig",
                    "object type over 95",
                ))
            }
        }
        match self.sampling_frequency_index {
            15 => {
                if self.sampling_frequency >= 1 << 24 || self.sampling_frequency == 0 {
                    return Err(FlvError::invalid(
                        "AudioSpecificConfig",
                        "explicit frequency out of 24-bit range",
                    ));
                }
                w.put(15, 4);
                w.put(self.sampling_frequency, 24);
            }
            i if usize::from(i) < SAMPLING_FREQUENCIES.len() => w.put(u32::from(i), 4),
            _ => {
                return Err(FlvError::invalid(
                    "AudioSpecificConfig",
                    "reserved sampling frequency index",
                ))
            }
        }
        if self.channel_configuration > 15 {
            return Err(FlvError::invalid("AudioSpecificConfig", "channels over 15"));
        }
        w.put(u32::from(self.channel_configuration), 4);
        w.put(0, 3); // frameLengthFlag, dependsOnCoreCoder, extensionFlag
        Ok(w.finish())
    }
}

#[derive(Default)]
struct BitWriter {
    out: BytesMut,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc = (self.acc << bits) | u64::from(value & ((1u64 << bits) - 1) as u32);
        self.nbits += bits;
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.out.put_u8((self.acc >> self.nbits) as u8);
        }
    }

    fn finish(mut self) -> Bytes {
        if self.nbits > 0 {
            self.out.put_u8((self.acc << (8 - self.nbits)) as u8);
        }
        self.out.freeze()
    }
}

/// ADTS header length without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

/// A parsed ADTS frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// true for MPEG-2 AAC (ID bit 1), false for MPEG-4.
    pub mpeg2: bool,
    /// Whether a 2-byte CRC follows the 7 header bytes.
    pub has_crc: bool,
    /// Audio object type (profile + 1): 1..=4.
    pub object_type: u8,
    /// Sampling frequency index (0..=12).
    pub sampling_frequency_index: u8,
    /// Channel configuration (0..=7).
    pub channel_configuration: u8,
    /// Whole frame length in bytes, header included.
    pub frame_length: u16,
    /// Buffer fullness (0x7FF = variable bit rate).
    pub buffer_fullness: u16,
    /// Number of raw data blocks in the frame (1..=4).
    pub raw_data_blocks: u8,
}

impl AdtsHeader {
    /// Parses the ADTS header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, FlvError> {
        need("ADTS header", data, ADTS_HEADER_LEN)?;
        if data[0] != 0xFF || data[1] & 0xF0 != 0xF0 {
            return Err(FlvError::invalid("ADTS header", "no sync word"));
        }
        if data[1] & 0x06 != 0 {
            return Err(FlvError::invalid("ADTS header", "layer is not 0"));
        }
        let mpeg2 = data[1] & 0x08 != 0;
        let has_crc = data[1] & 0x01 == 0;
        let object_type = (data[2] >> 6) + 1;
        let sampling_frequency_index = (data[2] >> 2) & 0x0F;
        if usize::from(sampling_frequency_index) >= SAMPLING_FREQUENCIES.len() {
            return Err(FlvError::Unsupported {
                what: "ADTS sampling frequency index",
                value: u32::from(sampling_frequency_index),
            });
        }
        let channel_configuration = ((data[2] & 0x01) << 2) | (data[3] >> 6);
        let frame_length = (u16::from(data[3] & 0x03) << 11)
            | (u16::from(data[4]) << 3)
            | (u16::from(data[5]) >> 5);
        let buffer_fullness = (u16::from(data[5] & 0x1F) << 6) | (u16::from(data[6]) >> 2);
        let raw_data_blocks = (data[6] & 0x03) + 1;
        let h = AdtsHeader {
            mpeg2,
            has_crc,
            object_type,
            sampling_frequency_index,
            channel_configuration,
            frame_length,
            buffer_fullness,
            raw_data_blocks,
        };
        if usize::from(frame_length) < h.header_len() {
            return Err(FlvError::invalid(
                "ADTS header",
                "frame length shorter than header",
            ));
        }
        Ok(h)
    }

    /// Header length: 7, or 9 with CRC.
    pub fn header_len(&self) -> usize {
        if self.has_crc {
            9
        } else {
            7
        }
    }

    /// Length of the raw AAC payload after the header.
    pub fn payload_len(&self) -> usize {
        usize::from(self.frame_length).saturating_sub(self.header_len())
    }

    /// The AudioSpecificConfig this frame implies (for the FLV sequence header).
    pub fn audio_specific_config(&self) -> AudioSpecificConfig {
        AudioSpecificConfig {
            object_type: self.object_type,
            sampling_frequency_index: self.sampling_frequency_index,
            sampling_frequency: SAMPLING_FREQUENCIES
                .get(usize::from(self.sampling_frequency_index))
                .copied()
                .unwrap_or(0),
            channel_configuration: self.channel_configuration,
        }
    }

    /// Builds the 7-byte ADTS header (no CRC, one raw data block, VBR) for a raw AAC frame
    /// of `payload_len` bytes under `config`.
    pub fn build(config: &AudioSpecificConfig, payload_len: usize) -> Result<[u8; 7], FlvError> {
        if !(1..=4).contains(&config.object_type) {
            return Err(FlvError::Unsupported {
                what: "ADTS object type",
                value: u32::from(config.object_type),
            });
        }
        if usize::from(config.sampling_frequency_index) >= SAMPLING_FREQUENCIES.len() {
            return Err(FlvError::Unsupported {
                what: "ADTS sampling frequency index",
                value: u32::from(config.sampling_frequency_index),
            });
        }
        if config.channel_configuration > 7 {
            return Err(FlvError::invalid("ADTS header", "channels over 7"));
        }
        let frame_length = payload_len + ADTS_HEADER_LEN;
        if frame_length > 0x1FFF {
            return Err(FlvError::TooLarge {
                what: "ADTS frame",
                len: frame_length,
                max: 0x1FFF,
            });
        }
        let fl = frame_length as u16;
        let profile = config.object_type - 1;
        let ch = config.channel_configuration;
        let fullness: u16 = 0x7FF;
        Ok([
            0xFF,
            0xF1, // MPEG-4, layer 0, no CRC
            (profile << 6) | (config.sampling_frequency_index << 2) | (ch >> 2),
            ((ch & 3) << 6) | ((fl >> 11) as u8 & 0x03),
            (fl >> 3) as u8,
            (((fl & 7) as u8) << 5) | ((fullness >> 6) as u8 & 0x1F),
            (((fullness & 0x3F) as u8) << 2), // one raw data block
        ])
    }
}

/// Iterates over the ADTS frames of a buffer, yielding each header and its raw payload as a
/// zero-copy slice. A malformed or truncated frame yields an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct AdtsFrames {
    data: Bytes,
    failed: bool,
}

impl AdtsFrames {
    /// Iterates over `data` (e.g. one PES payload).
    pub fn new(data: Bytes) -> Self {
        AdtsFrames {
            data,
            failed: false,
        }
    }
}

impl Iterator for AdtsFrames {
    type Item = Result<(AdtsHeader, Bytes), FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let h = match AdtsHeader::parse(&self.data) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let len = usize::from(h.frame_length);
        if self.data.len() < len {
            self.failed = true;
            return Some(Err(FlvError::truncated("ADTS frame", len, self.data.len())));
        }
        let frame = self.data.split_to(len);
        Some(Ok((h, frame.slice(h.header_len()..))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asc_lc_44100_stereo() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(asc.object_type, 2);
        assert_eq!(asc.sampling_frequency_index, 4);
        assert_eq!(asc.sampling_frequency, 44100);
        assert_eq!(asc.channel_configuration, 2);
        assert_eq!(&asc.encode().unwrap()[..], &[0x12, 0x10]);
        assert_eq!(AudioSpecificConfig::aac_lc(44100, 2).unwrap(), asc);
    }

    #[test]
    fn asc_48000_mono_and_explicit_rate() {
        let asc = AudioSpecificConfig::aac_lc(48000, 1).unwrap();
        assert_eq!(&asc.encode().unwrap()[..], &[0x11, 0x88]);
        let odd = AudioSpecificConfig {
            object_type: 2,
            sampling_frequency_index: 15,
            sampling_frequency: 12345,
            channel_configuration: 2,
        };
        let enc = odd.encode().unwrap();
        assert_eq!(AudioSpecificConfig::parse(&enc).unwrap(), odd);
        let escaped = AudioSpecificConfig {
            object_type: 42,
            ..odd
        };
        let enc = escaped.encode().unwrap();
        assert_eq!(AudioSpecificConfig::parse(&enc).unwrap(), escaped);
    }

    #[test]
    fn asc_errors() {
        assert!(AudioSpecificConfig::parse(&[]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x12]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x00, 0x10]).is_err());
        // Reserved index 13.
        assert!(AudioSpecificConfig::parse(&[0x16, 0x90]).is_err());
        assert!(AudioSpecificConfig::aac_lc(44101, 2).is_err());
    }

    #[test]
    fn adts_build_parse_round_trip() {
        let asc = AudioSpecificConfig::aac_lc(48000, 2).unwrap();
        let hdr = AdtsHeader::build(&asc, 300).unwrap();
        let h = AdtsHeader::parse(&hdr).unwrap();
        assert!(!h.mpeg2 && !h.has_crc);
        assert_eq!(h.object_type, 2);
        assert_eq!(h.sampling_frequency_index, 3);
        assert_eq!(h.channel_configuration, 2);
        assert_eq!(h.frame_length, 307);
        assert_eq!(h.buffer_fullness, 0x7FF);
        assert_eq!(h.raw_data_blocks, 1);
        assert_eq!(h.payload_len(), 300);
        assert_eq!(h.audio_specific_config(), asc);
        assert!(AdtsHeader::build(&asc, 0x2000).is_err());
    }

    #[test]
    fn adts_frames_strip() {
        let asc = AudioSpecificConfig::aac_lc(44100, 2).unwrap();
        let mut buf = Vec::new();
        for (i, len) in [5usize, 0, 17].iter().enumerate() {
            buf.extend_from_slice(&AdtsHeader::build(&asc, *len).unwrap());
            buf.extend(std::iter::repeat_n(i as u8, *len));
        }
        let frames: Vec<_> = AdtsFrames::new(Bytes::from(buf.clone()))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[0].1[..], &[0; 5]);
        assert!(frames[1].1.is_empty());
        assert_eq!(&frames[2].1[..], &[2; 17]);
        // Truncated last frame: two frames then an error.
        buf.truncate(buf.len() - 1);
        let items: Vec<_> = AdtsFrames::new(Bytes::from(buf)).collect();
        assert_eq!(items.len(), 3);
        assert!(items[2].is_err());
    }

    #[test]
    fn adts_rejects_garbage() {
        assert!(AdtsHeader::parse(&[0xFF, 0xF1, 0x50]).is_err());
        assert!(AdtsHeader::parse(&[0, 0, 0, 0, 0, 0, 0]).is_err());
        // Frame length 3 (< header).
        assert!(AdtsHeader::parse(&[0xFF, 0xF1, 0x50, 0x80, 0x00, 0x7F, 0xFC]).is_err());
        let mut it = AdtsFrames::new(Bytes::from_static(&[1, 2, 3]));
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }
}
