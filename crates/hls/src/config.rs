//! What the packager is fed: codec configurations and samples, and what it derives from the
//! configurations (timescales, sample entries, RFC 6381 `CODECS` strings).

use bytes::Bytes;
use lunora_flv::{AudioSpecificConfig, AvcDecoderConfigurationRecord};

use crate::HlsError;

/// Clock of every [`Sample`] timestamp: 90 kHz, as in MPEG-TS and the engine's frames.
pub const TIMESCALE: u32 = 90_000;

/// AAC access units are 1024 samples long (at the AudioSpecificConfig's core sampling rate,
/// HE-AAC included).
pub(crate) const AAC_FRAME_SAMPLES: u32 = 1024;

/// The elementary stream a sample belongs to. A rendition has at most one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    /// H.264 or HEVC.
    Video,
    /// AAC.
    Audio,
}

impl Track {
    pub(crate) fn index(self) -> usize {
        match self {
            Track::Video => 0,
            Track::Audio => 1,
        }
    }

    /// The fMP4 `track_ID`: video is always 1 and audio always 2, whichever are present.
    pub fn track_id(self) -> u32 {
        self.index() as u32 + 1
    }
}

/// One access unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Its track.
    pub track: Track,
    /// Decode timestamp, 90 kHz ticks.
    pub dts: i64,
    /// Presentation timestamp, 90 kHz ticks (equal to `dts` for audio).
    pub pts: i64,
    /// A random access point (IDR/IRAP). Ignored for audio (every AAC frame is one).
    pub keyframe: bool,
    /// Video: NAL units with length prefixes of the record's size (4 bytes in practice);
    /// audio: one raw AAC frame (no ADTS header).
    pub data: Bytes,
}

impl Sample {
    /// A video access unit.
    pub fn video(dts: i64, pts: i64, keyframe: bool, data: Bytes) -> Self {
        Sample {
            track: Track::Video,
            dts,
            pts,
            keyframe,
            data,
        }
    }

    /// An AAC frame.
    pub fn audio(dts: i64, data: Bytes) -> Self {
        Sample {
            track: Track::Audio,
            dts,
            pts: dts,
            keyframe: true,
            data,
        }
    }
}

/// The video codec configuration of a rendition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoConfig {
    /// H.264: the AVCDecoderConfigurationRecord (the FLV/RTMP sequence header body), written
    /// into `avcC` as is. Size and frame rate come from its first SPS.
    H264 {
        /// The record.
        record: Bytes,
    },
    /// HEVC: the HEVCDecoderConfigurationRecord, written into `hvcC` as is. This crate does
    /// not parse HEVC SPSs, so the caller gives the picture size.
    Hevc {
        /// The record.
        record: Bytes,
        /// Display width in pixels.
        width: u16,
        /// Display height in pixels.
        height: u16,
    },
}

/// The audio codec configuration of a rendition: AAC only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    /// The MPEG-4 AudioSpecificConfig (the FLV/RTMP AAC sequence header body).
    pub asc: Bytes,
}

/// The codec configuration of one rendition: at least one of video and audio.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamConfig {
    /// The video track, if any.
    pub video: Option<VideoConfig>,
    /// The audio track, if any.
    pub audio: Option<AudioConfig>,
}

impl StreamConfig {
    /// H.264 video with AAC audio.
    pub fn h264_aac(avc_record: Bytes, asc: Bytes) -> Self {
        StreamConfig {
            video: Some(VideoConfig::H264 { record: avc_record }),
            audio: Some(AudioConfig { asc }),
        }
    }

    /// The RFC 6381 `CODECS` attribute value, e.g. `avc1.64000d,mp4a.40.2`.
    pub fn codecs(&self) -> Result<String, HlsError> {
        Ok(Tracks::parse(self)?.codecs())
    }

    /// Display size of the video track, if there is one.
    pub fn resolution(&self) -> Result<Option<(u32, u32)>, HlsError> {
        Ok(Tracks::parse(self)?
            .video
            .map(|v| (u32::from(v.width), u32::from(v.height))))
    }

    /// Frame rate declared in the H.264 SPS (VUI timing), if any.
    pub fn frame_rate(&self) -> Result<Option<f64>, HlsError> {
        Ok(Tracks::parse(self)?.video.and_then(|v| v.fps))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoKind {
    H264,
    Hevc,
}

/// A parsed video configuration.
#[derive(Clone, Debug)]
pub(crate) struct VideoTrack {
    pub kind: VideoKind,
    pub record: Bytes,
    pub width: u16,
    pub height: u16,
    pub fps: Option<f64>,
    pub codecs: String,
}

/// A parsed audio configuration.
#[derive(Clone, Debug)]
pub(crate) struct AudioTrack {
    pub asc: Bytes,
    pub sample_rate: u32,
    pub channels: u16,
    pub codecs: String,
}

/// A parsed [`StreamConfig`].
#[derive(Clone, Debug)]
pub(crate) struct Tracks {
    pub video: Option<VideoTrack>,
    pub audio: Option<AudioTrack>,
}

impl Tracks {
    pub fn parse(config: &StreamConfig) -> Result<Self, HlsError> {
        let video = config.video.as_ref().map(parse_video).transpose()?;
        let audio = config.audio.as_ref().map(parse_audio).transpose()?;
        if video.is_none() && audio.is_none() {
            return Err(HlsError::Config {
                what: "stream configuration",
                reason: "no video and no audio track",
            });
        }
        Ok(Tracks { video, audio })
    }

    pub fn codecs(&self) -> String {
        let v = self.video.iter().map(|v| v.codecs.as_str());
        let a = self.audio.iter().map(|a| a.codecs.as_str());
        v.chain(a).collect::<Vec<_>>().join(",")
    }

    /// The track that drives segmentation: video when there is one.
    pub fn main(&self) -> Track {
        if self.video.is_some() {
            Track::Video
        } else {
            Track::Audio
        }
    }

    pub fn has(&self, track: Track) -> bool {
        match track {
            Track::Video => self.video.is_some(),
            Track::Audio => self.audio.is_some(),
        }
    }

    /// The fMP4 media timescale of a track: 90 kHz for video, the sampling rate for audio
    /// (so every AAC frame lasts exactly 1024 ticks).
    pub fn timescale(&self, track: Track) -> u32 {
        match (track, &self.audio) {
            (Track::Audio, Some(a)) => a.sample_rate,
            _ => TIMESCALE,
        }
    }
}

fn parse_video(config: &VideoConfig) -> Result<VideoTrack, HlsError> {
    match config {
        VideoConfig::H264 { record } => {
            let rec = AvcDecoderConfigurationRecord::parse(record.clone()).map_err(|source| {
                HlsError::Codec {
                    what: "AVCDecoderConfigurationRecord",
                    source,
                }
            })?;
            let sps = rec.parse_sps().map_err(|source| HlsError::Codec {
                what: "SPS",
                source,
            })?;
            let (width, height) = match (u16::try_from(sps.width), u16::try_from(sps.height)) {
                (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
                _ => {
                    return Err(HlsError::Config {
                        what: "SPS picture size",
                        reason: "zero or over 65535",
                    })
                }
            };
            Ok(VideoTrack {
                kind: VideoKind::H264,
                record: record.clone(),
                width,
                height,
                fps: sps.fps().filter(|f| f.is_finite() && *f > 0.0),
                codecs: format!(
                    "avc1.{:02x}{:02x}{:02x}",
                    rec.profile_indication, rec.profile_compatibility, rec.level_indication
                ),
            })
        }
        VideoConfig::Hevc {
            record,
            width,
            height,
        } => {
            if *width == 0 || *height == 0 {
                return Err(HlsError::Config {
                    what: "HEVC picture size",
                    reason: "zero",
                });
            }
            Ok(VideoTrack {
                kind: VideoKind::Hevc,
                record: record.clone(),
                width: *width,
                height: *height,
                fps: None,
                codecs: hevc_codecs(record)?,
            })
        }
    }
}

/// `hvc1.<space><profile>.<compat, bit-reversed hex>.<tier><level>[.<constraint byte>]*`
/// (ISO/IEC 14496-15 annex E), from the fixed header of an HEVCDecoderConfigurationRecord.
pub(crate) fn hevc_codecs(record: &[u8]) -> Result<String, HlsError> {
    // configurationVersion, profile byte, 4 compatibility bytes, 6 constraint bytes, level,
    // then 10 more fixed bytes before the arrays.
    if record.len() < 23 {
        return Err(HlsError::Config {
            what: "HEVCDecoderConfigurationRecord",
            reason: "shorter than its 23-byte header",
        });
    }
    if record[0] != 1 {
        return Err(HlsError::Config {
            what: "HEVCDecoderConfigurationRecord",
            reason: "configurationVersion is not 1",
        });
    }
    let space = ["", "A", "B", "C"][usize::from(record[1] >> 6)];
    let tier = if record[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = record[1] & 0x1f;
    let compat = u32::from_be_bytes([record[2], record[3], record[4], record[5]]).reverse_bits();
    let level = record[12];
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{level}");
    let constraints = &record[6..12];
    let used = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    Ok(s)
}

fn parse_audio(config: &AudioConfig) -> Result<AudioTrack, HlsError> {
    let asc = AudioSpecificConfig::parse(&config.asc).map_err(|source| HlsError::Codec {
        what: "AudioSpecificConfig",
        source,
    })?;
    if asc.sampling_frequency == 0 {
        return Err(HlsError::Config {
            what: "AudioSpecificConfig",
            reason: "sampling frequency is zero",
        });
    }
    // Channel configuration 7 is 7.1 (8 channels); 0 means "in the bitstream": say stereo.
    let channels = match asc.channel_configuration {
        0 => 2,
        7 => 8,
        n => u16::from(n),
    };
    Ok(AudioTrack {
        asc: config.asc.clone(),
        sample_rate: asc.sampling_frequency,
        channels,
        codecs: format!("mp4a.40.{}", asc.object_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_codecs_string_from_the_record_header() {
        // Main profile, Main tier, level 3.1 (93), progressive + frame-only constraint flags
        // (0xB0), as x265 writes it: hvc1.1.6.L93.B0.
        let mut rec = vec![0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0xB0, 0, 0, 0, 0, 0, 93];
        rec.resize(23, 0);
        assert_eq!(hevc_codecs(&rec).unwrap(), "hvc1.1.6.L93.B0");
        // Main 10, High tier, level 5.1, no constraint flags.
        rec[1] = 0x22;
        rec[2..6].copy_from_slice(&[0x20, 0, 0, 0]);
        rec[6] = 0;
        rec[12] = 153;
        assert_eq!(hevc_codecs(&rec).unwrap(), "hvc1.2.4.H153");
        assert!(hevc_codecs(&rec[..10]).is_err());
    }

    #[test]
    fn audio_only_and_empty_configs() {
        let asc = AudioSpecificConfig::aac_lc(48_000, 2)
            .unwrap()
            .encode()
            .unwrap();
        let cfg = StreamConfig {
            video: None,
            audio: Some(AudioConfig { asc }),
        };
        assert_eq!(cfg.codecs().unwrap(), "mp4a.40.2");
        assert_eq!(cfg.resolution().unwrap(), None);
        let t = Tracks::parse(&cfg).unwrap();
        assert_eq!(t.main(), Track::Audio);
        assert_eq!(t.timescale(Track::Audio), 48_000);
        assert!(StreamConfig::default().codecs().is_err());
    }
}
