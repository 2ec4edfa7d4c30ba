//! MPEG-TS as SRT encoders send it, turned into the engine's [`Frame`]s: H.264 access units in
//! AVCC form with an AVCDecoderConfigurationRecord config frame built from the in-band
//! SPS/PPS (sent again whenever it changes), and AAC raw frames with an AudioSpecificConfig
//! built from the ADTS headers. Sans-IO: bytes in, frames out.
//!
//! H.264 frames before the first SPS/PPS are dropped (nothing could decode them). HEVC and
//! other codecs are reported, not converted (the RTMP/FLV side of the engine speaks H.264 and
//! AAC).

use std::collections::VecDeque;

use bytes::Bytes;
use lunora_flv::AccessUnit;
use lunora_mpegts::{split_adts, Demuxer, StreamKind, TsEvent, VideoCodec};

use crate::frame::{Codec, Frame};

/// Something worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsNotice {
    /// The program's streams (as `h264`, `aac`, `unsupported(0x..)`).
    Streams(Vec<String>),
    /// A stream the engine cannot use is skipped.
    Unsupported(String),
    /// Packets were lost or malformed; counted, the stream goes on.
    Damaged(String),
}

/// The demuxer and codec conversion of one SRT connection.
#[derive(Debug, Default)]
pub struct TsIngest {
    demux: Demuxer,
    video_config: Option<Bytes>,
    audio_config: Option<Bytes>,
    frames: VecDeque<Frame>,
    notices: VecDeque<TsNotice>,
    warned_hevc: bool,
    /// Access units dropped (no config yet, conversion failures).
    pub dropped: u64,
    /// Demuxer errors and discontinuities.
    pub damaged: u64,
}

impl TsIngest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds transport stream bytes (one SRT payload: usually 7 packets).
    pub fn push(&mut self, data: &[u8]) {
        self.demux.push(data);
        self.drain();
    }

    /// The end of the stream: delivers what the demuxer still holds.
    pub fn flush(&mut self) {
        self.demux.flush();
        self.drain();
    }

    /// The next frame, in order.
    pub fn poll_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    pub fn poll_notice(&mut self) -> Option<TsNotice> {
        self.notices.pop_front()
    }

    fn drain(&mut self) {
        while let Some(event) = self.demux.poll_event() {
            match event {
                TsEvent::Streams(streams) => {
                    let names = streams
                        .iter()
                        .map(|s| match s.kind {
                            StreamKind::Video(VideoCodec::H264) => "h264".to_string(),
                            StreamKind::Video(VideoCodec::Hevc) => "hevc".to_string(),
                            StreamKind::Audio(_) => "aac".to_string(),
                            StreamKind::Unsupported(t) => format!("unsupported(0x{t:02x})"),
                        })
                        .collect();
                    self.notices.push_back(TsNotice::Streams(names));
                }
                TsEvent::Video {
                    codec: VideoCodec::H264,
                    pts,
                    dts,
                    keyframe,
                    data,
                    ..
                } => self.h264(dts, pts, keyframe, &data),
                TsEvent::Video {
                    codec: VideoCodec::Hevc,
                    ..
                } => {
                    self.dropped += 1;
                    if !self.warned_hevc {
                        self.warned_hevc = true;
                        self.notices.push_back(TsNotice::Unsupported(
                            "HEVC video over SRT is not supported yet; send H.264".into(),
                        ));
                    }
                }
                TsEvent::Audio { pts, data, .. } => self.aac(pts, data),
                TsEvent::Discontinuity { pid } => {
                    self.damaged += 1;
                    if self.damaged == 1 {
                        self.notices
                            .push_back(TsNotice::Damaged(format!("packets lost on PID {pid}")));
                    }
                }
                TsEvent::Error(e) => {
                    self.damaged += 1;
                    if self.damaged == 1 {
                        self.notices.push_back(TsNotice::Damaged(e.to_string()));
                    }
                }
            }
        }
    }

    fn h264(&mut self, dts: i64, pts: i64, keyframe: bool, data: &Bytes) {
        let au = AccessUnit::from_annexb(data);
        if let Some(Ok(record)) = au.decoder_configuration() {
            if let Ok(bytes) = record.encode() {
                if self.video_config.as_ref() != Some(&bytes) {
                    self.video_config = Some(bytes.clone());
                    self.frames
                        .push_back(Frame::video_config(Codec::H264, bytes));
                }
            }
        }
        if self.video_config.is_none() || au.nalus.is_empty() {
            self.dropped += 1;
            return;
        }
        match au.to_avcc() {
            Ok(avcc) => self.frames.push_back(Frame::video(
                Codec::H264,
                keyframe || au.keyframe,
                dts,
                pts,
                avcc,
            )),
            Err(_) => self.dropped += 1,
        }
    }

    fn aac(&mut self, pts: i64, data: Bytes) {
        for frame in split_adts(data, pts) {
            let Ok(frame) = frame else {
                self.dropped += 1;
                break;
            };
            if let Ok(asc) = frame.header.audio_specific_config().encode() {
                if self.audio_config.as_ref() != Some(&asc) {
                    self.audio_config = Some(asc.clone());
                    self.frames.push_back(Frame::audio_config(asc));
                }
            }
            self.frames.push_back(Frame::audio(frame.pts, frame.raw()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Track;

    const FIXTURE: &[u8] = include_bytes!("../../mpegts/tests/fixtures/h264_aac.ts");
    const VIDEO_CSV: &str = include_str!("../../mpegts/tests/fixtures/h264_aac.video.csv");
    const AUDIO_CSV: &str = include_str!("../../mpegts/tests/fixtures/h264_aac.audio.csv");

    fn frames_of(chunks: impl Iterator<Item = Vec<u8>>) -> Vec<Frame> {
        let mut ts = TsIngest::new();
        let mut out = Vec::new();
        for chunk in chunks {
            ts.push(&chunk);
            while let Some(f) = ts.poll_frame() {
                out.push(f);
            }
        }
        ts.flush();
        while let Some(f) = ts.poll_frame() {
            out.push(f);
        }
        out
    }

    #[test]
    fn ffmpeg_output_becomes_avcc_video_and_raw_aac_with_configs() {
        // SRT payloads of 7 packets, as encoders send them.
        let frames = frames_of(FIXTURE.chunks(7 * 188).map(<[u8]>::to_vec));
        let configs: Vec<_> = frames.iter().filter(|f| f.config).collect();
        assert_eq!(configs.len(), 2, "one config per track, not repeated");
        let avc = configs.iter().find(|f| f.track == Track::Video).unwrap();
        let record = lunora_flv::AvcDecoderConfigurationRecord::parse(avc.data.clone()).unwrap();
        let sps = record.parse_sps().unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
        let asc = configs.iter().find(|f| f.track == Track::Audio).unwrap();
        let asc = lunora_flv::AudioSpecificConfig::parse(&asc.data).unwrap();
        assert_eq!(asc.sampling_frequency, 44_100);

        let video: Vec<_> = frames
            .iter()
            .filter(|f| f.track == Track::Video && !f.config)
            .collect();
        let expected: Vec<(i64, i64, bool)> = VIDEO_CSV
            .lines()
            .map(|l| {
                let p: Vec<&str> = l.split(',').collect();
                (
                    p[1].parse().unwrap(),
                    p[0].parse().unwrap(),
                    p[2].starts_with('K'),
                )
            })
            .collect();
        let got: Vec<(i64, i64, bool)> = video.iter().map(|f| (f.dts, f.pts, f.keyframe)).collect();
        assert_eq!(got, expected);
        // AVCC: 4-byte lengths that add up, no start codes.
        for f in &video {
            let mut rest = &f.data[..];
            while !rest.is_empty() {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                assert!(len > 0 && len + 4 <= rest.len());
                rest = &rest[4 + len..];
            }
        }
        let audio: Vec<i64> = frames
            .iter()
            .filter(|f| f.track == Track::Audio && !f.config)
            .map(|f| f.pts)
            .collect();
        let expected: Vec<i64> = AUDIO_CSV.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(audio.len(), expected.len());
        // Each ADTS frame is timed from its PES: within a tick of what FFmpeg reports.
        for (got, want) in audio.iter().zip(&expected) {
            assert!((got - want).abs() <= 1, "{got} vs {want}");
        }
    }

    #[test]
    fn any_chunking_gives_the_same_frames_and_garbage_is_survived() {
        let whole = frames_of(std::iter::once(FIXTURE.to_vec()));
        let odd = frames_of(FIXTURE.chunks(1000).map(<[u8]>::to_vec));
        assert_eq!(whole.len(), odd.len());
        assert!(whole
            .iter()
            .zip(&odd)
            .all(|(a, b)| a.dts == b.dts && a.data == b.data));

        // Garbage first (a port scanner, a wrong payload), then the stream.
        let mut noisy = vec![0x47u8; 500];
        noisy.extend((0..3000u32).map(|i| (i * 7919 % 251) as u8));
        noisy.extend_from_slice(FIXTURE);
        let frames = frames_of(noisy.chunks(1316).map(<[u8]>::to_vec));
        let video = frames
            .iter()
            .filter(|f| f.track == Track::Video && !f.config)
            .count();
        assert!(video >= 45, "{video}");
    }

    #[test]
    fn video_before_the_parameter_sets_is_dropped() {
        let mut ts = TsIngest::new();
        // An access unit without SPS/PPS.
        ts.h264(
            0,
            0,
            false,
            &Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9a, 0x10]),
        );
        assert!(ts.poll_frame().is_none());
        assert_eq!(ts.dropped, 1);
    }
}
