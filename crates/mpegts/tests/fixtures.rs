//! Real FFmpeg output (see `tests/fixtures/README.md`), checked against what ffprobe reports
//! for the same files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use bytes::Bytes;
use common::{audios, demux, demux_with, problems, videos, Rng};
use lunora_flv::{nal_type, nal_unit_type, AnnexBNalus, Sps};
use lunora_mpegts::{
    split_adts, AudioCodec, DemuxerConfig, StreamInfo, StreamKind, TsEvent, VideoCodec,
};

const H264: &[u8] = include_bytes!("fixtures/h264_aac.ts");
const HEVC: &[u8] = include_bytes!("fixtures/hevc_aac.ts");

/// (pts, dts, keyframe) per video access unit, from ffprobe.
fn probe_video(csv: &str) -> Vec<(i64, i64, bool)> {
    csv.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].starts_with('K'),
            )
        })
        .collect()
}

/// pts per AAC frame, from ffprobe.
fn probe_audio(csv: &str) -> Vec<i64> {
    csv.lines().map(|l| l.parse().unwrap()).collect()
}

fn streams(video: VideoCodec, stream_type: u8) -> TsEvent {
    TsEvent::Streams(vec![
        StreamInfo {
            pid: 0x100,
            stream_type,
            kind: StreamKind::Video(video),
        },
        StreamInfo {
            pid: 0x101,
            stream_type: 0x0F,
            kind: StreamKind::Audio(AudioCodec::Aac),
        },
    ])
}

/// Every AAC frame of the audio events, split and timed.
fn aac_frames(events: &[TsEvent]) -> Vec<lunora_mpegts::AacFrame> {
    audios(events)
        .into_iter()
        .flat_map(|(_, pts, data)| split_adts(data, pts).map(Result::unwrap))
        .collect()
}

fn check_video(events: &[TsEvent], csv: &str) -> Vec<(u16, i64, i64, bool, Bytes)> {
    let v = videos(events);
    let want = probe_video(csv);
    let got: Vec<_> = v.iter().map(|v| (v.1, v.2, v.3)).collect();
    assert_eq!(got, want, "pts, dts, keyframe as ffprobe reports them");
    assert!(v.windows(2).all(|w| w[1].2 > w[0].2), "DTS increases");
    assert!(v.iter().all(|v| v.1 >= v.2), "PTS >= DTS");
    assert!(v.iter().any(|v| v.1 > v.2), "B-frames reorder");
    for (_, _, _, _, data) in &v {
        assert!(data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1]));
    }
    v
}

fn check_audio(events: &[TsEvent], csv: &str, rate: u32) -> Vec<lunora_mpegts::AacFrame> {
    let frames = aac_frames(events);
    let want = probe_audio(csv);
    assert_eq!(frames.len(), want.len());
    for (i, (f, w)) in frames.iter().zip(&want).enumerate() {
        // FFmpeg's parser rounds per frame; ours rounds the sum: a tick or two apart.
        assert!((f.pts - w).abs() <= 2, "frame {i}: {} vs {w}", f.pts);
        assert_eq!(f.sample_rate(), rate);
        assert_eq!(f.header.channel_configuration, 1);
        assert_eq!(f.raw().len(), f.header.payload_len());
    }
    frames
}

#[test]
fn ffmpeg_h264_aac() {
    let events = demux(H264);
    assert_eq!(events[0], streams(VideoCodec::H264, 0x1B));
    assert_eq!(problems(&events), vec![]);
    let v = check_video(&events, include_str!("fixtures/h264_aac.video.csv"));
    assert_eq!(v.len(), 50);
    let keyframes: Vec<usize> = (0..v.len()).filter(|&i| v[i].3).collect();
    assert_eq!(keyframes, vec![0, 25]);
    // Every keyframe carries the SPS, which says 320x240.
    for &k in &keyframes {
        let sps = AnnexBNalus::new(&v[k].4)
            .find(|n| nal_unit_type(n) == Some(nal_type::SPS))
            .unwrap();
        let sps = Sps::parse(sps).unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
    }
    let frames = check_audio(&events, include_str!("fixtures/h264_aac.audio.csv"), 44_100);
    assert_eq!(frames.len(), 88);
    let samples: u32 = frames.iter().map(|f| f.samples()).sum();
    let seconds = f64::from(samples) / 44_100.0;
    assert!((1.95..2.1).contains(&seconds), "{seconds} s of audio");
}

#[test]
fn ffmpeg_hevc_aac() {
    let events = demux(HEVC);
    assert_eq!(events[0], streams(VideoCodec::Hevc, 0x24));
    assert_eq!(problems(&events), vec![]);
    let v = check_video(&events, include_str!("fixtures/hevc_aac.video.csv"));
    assert_eq!(v.len(), 25);
    assert_eq!(v.iter().filter(|v| v.3).count(), 1);
    assert!(v[0].3);
    let frames = check_audio(&events, include_str!("fixtures/hevc_aac.audio.csv"), 48_000);
    assert_eq!(frames.len(), 48);
}

#[test]
fn random_chunking_gives_identical_output() {
    for (name, ts) in [("h264", H264), ("hevc", HEVC)] {
        let whole = demux(ts);
        for seed in 1..=8 {
            let mut rng = Rng::new(seed);
            let events = demux_with(DemuxerConfig::default(), ts, || rng.range(1, 1500));
            assert_eq!(events, whole, "{name} seed {seed}");
        }
    }
}

#[test]
fn keyframe_flags_do_not_depend_on_random_access_indicator() {
    // Clear the random_access_indicator everywhere: keyframes still come from the IDR/IRAP
    // NAL units.
    for (ts, keyframes) in [(H264, 2), (HEVC, 1)] {
        let mut ts = ts.to_vec();
        for p in ts.chunks_mut(188) {
            if p[3] & 0x20 != 0 && p[4] > 0 {
                p[5] &= !0x40;
            }
        }
        let events = demux(&ts);
        assert_eq!(problems(&events), vec![]);
        assert_eq!(videos(&events).iter().filter(|v| v.3).count(), keyframes);
    }
}
