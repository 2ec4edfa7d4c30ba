//! Muxer -> demuxer round trips of synthetic H.264/HEVC + AAC streams: what goes in comes out,
//! in any chunking, across the 33-bit wrap, after packet loss and when joining mid-stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use bytes::Bytes;
use common::{adts_frame, audios, demux, demux_with, h264_au, hevc_au, problems, videos, Rng};
use lunora_mpegts::{
    split_adts, AudioCodec, DemuxerConfig, Muxer, MuxerConfig, StreamInfo, StreamKind, TsError,
    TsEvent, VideoCodec, PAT_PID, TS_PACKET_LEN,
};

const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;

struct VideoAu {
    pts: i64,
    dts: i64,
    keyframe: bool,
    data: Vec<u8>,
}

struct AudioPes {
    pts: i64,
    data: Vec<u8>,
    frame_pts: Vec<i64>,
}

struct Stream {
    video: Vec<VideoAu>,
    audio: Vec<AudioPes>,
    ts: Vec<u8>,
}

/// `seconds` of 25 fps video with two B-frames between references (pts >= dts) and a keyframe
/// every 24 frames, plus 44.1 kHz AAC in PES packets of 1 to 3 frames, muxed in time order.
/// `signal_keyframes` false leaves the random access indicator off.
fn synth(seed: u64, codec: VideoCodec, start: i64, seconds: i64, signal_keyframes: bool) -> Stream {
    let mut rng = Rng::new(seed);
    let mut video = Vec::new();
    for n in 0..seconds * 25 {
        let d = match n % 3 {
            0 => n + 2,
            _ => n - 1,
        };
        let keyframe = n % 24 == 0;
        // Sizes around packet boundaries now and then, otherwise 20 bytes to 40 kB.
        let size = match rng.range(0, 5) {
            0 => rng.range(1, 200),
            1 => 184 * rng.range(1, 40) - rng.range(0, 30),
            _ => rng.range(200, 40_000),
        };
        let data = match codec {
            VideoCodec::H264 => h264_au(&mut rng, keyframe, size),
            VideoCodec::Hevc => hevc_au(&mut rng, keyframe, size),
        };
        video.push(VideoAu {
            pts: start + (d + 1) * 3600,
            dts: start + n * 3600,
            keyframe,
            data,
        });
    }
    let mut audio = Vec::new();
    let frame_pts = |k: i64| start + k * 1024 * 90_000 / 44_100;
    let mut k = 0i64;
    while frame_pts(k) < start + seconds * 90_000 {
        let count = rng.range(1, 3) as i64;
        let mut data = Vec::new();
        let mut pts = Vec::new();
        for j in 0..count {
            let len = rng.range(0, 400);
            data.extend(adts_frame(&mut rng, 44_100, len));
            pts.push(frame_pts(k + j));
        }
        audio.push(AudioPes {
            pts: frame_pts(k),
            data,
            frame_pts: pts,
        });
        k += count;
    }
    let mut mux = Muxer::new(MuxerConfig {
        video: Some((VIDEO_PID, codec)),
        audio: Some((AUDIO_PID, AudioCodec::Aac)),
        ..MuxerConfig::default()
    })
    .unwrap();
    // Interleave by decode time.
    let mut ops: Vec<(i64, bool, usize)> = video
        .iter()
        .enumerate()
        .map(|(i, v)| (v.dts, true, i))
        .chain(audio.iter().enumerate().map(|(i, a)| (a.pts, false, i)))
        .collect();
    ops.sort();
    let mut ts = Vec::new();
    for (_, is_video, i) in ops {
        let out = if is_video {
            let v = &video[i];
            mux.write_video(v.pts, v.dts, v.keyframe && signal_keyframes, &v.data)
                .unwrap()
        } else {
            mux.write_audio(audio[i].pts, &audio[i].data).unwrap()
        };
        assert_eq!(out.len() % TS_PACKET_LEN, 0);
        ts.extend_from_slice(&out);
    }
    Stream { video, audio, ts }
}

fn expected_streams(codec: VideoCodec) -> TsEvent {
    TsEvent::Streams(vec![
        StreamInfo {
            pid: VIDEO_PID,
            stream_type: if codec == VideoCodec::H264 {
                0x1B
            } else {
                0x24
            },
            kind: StreamKind::Video(codec),
        },
        StreamInfo {
            pid: AUDIO_PID,
            stream_type: 0x0F,
            kind: StreamKind::Audio(AudioCodec::Aac),
        },
    ])
}

/// Asserts that the events carry exactly the stream's access units.
fn assert_same(s: &Stream, events: &[TsEvent]) {
    assert_eq!(problems(events), vec![]);
    let v = videos(events);
    assert_eq!(v.len(), s.video.len());
    for (i, (got, want)) in v.iter().zip(&s.video).enumerate() {
        assert_eq!(got.0, VIDEO_PID);
        assert_eq!(
            (got.1, got.2, got.3),
            (want.pts, want.dts, want.keyframe),
            "AU {i}"
        );
        assert_eq!(&got.4[..], &want.data[..], "AU {i} data");
    }
    let a = audios(events);
    assert_eq!(a.len(), s.audio.len());
    for (i, (got, want)) in a.iter().zip(&s.audio).enumerate() {
        assert_eq!((got.0, got.1), (AUDIO_PID, want.pts), "PES {i}");
        assert_eq!(&got.2[..], &want.data[..], "PES {i} data");
        let frames: Vec<_> = split_adts(got.2.clone(), got.1)
            .collect::<Result<_, _>>()
            .unwrap();
        let pts: Vec<_> = frames.iter().map(|f| f.pts).collect();
        assert_eq!(pts.len(), want.frame_pts.len());
        for (p, w) in pts.iter().zip(&want.frame_pts) {
            // The PES pts is rounded down once, each frame's again: at most one tick apart.
            assert!(
                (p - w).abs() <= 1,
                "audio PES {i}: {pts:?} vs {:?}",
                want.frame_pts
            );
        }
    }
}

#[test]
fn h264_aac_round_trip_in_one_push() {
    let s = synth(1, VideoCodec::H264, 900_000, 10, true);
    let events = demux(&s.ts);
    assert_eq!(events[0], expected_streams(VideoCodec::H264));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TsEvent::Streams(_)))
            .count(),
        1,
        "PMT repeats without changes announce nothing"
    );
    assert_same(&s, &events);
    assert!(s.video.iter().any(|v| v.pts > v.dts), "B-frames present");
    assert_eq!(s.video.iter().filter(|v| v.keyframe).count(), 11);
}

#[test]
fn hevc_aac_round_trip() {
    let s = synth(2, VideoCodec::Hevc, 0, 5, true);
    let events = demux(&s.ts);
    assert_eq!(events[0], expected_streams(VideoCodec::Hevc));
    assert_same(&s, &events);
}

#[test]
fn keyframes_detected_from_nal_units_without_random_access_indicator() {
    for codec in [VideoCodec::H264, VideoCodec::Hevc] {
        let s = synth(3, codec, 90_000, 4, false);
        assert_same(&s, &demux(&s.ts));
    }
}

#[test]
fn chunking_does_not_change_the_output() {
    let s = synth(4, VideoCodec::H264, 12_345, 4, true);
    let whole = demux(&s.ts);
    // SRT datagrams of 7 packets.
    assert_eq!(demux_with(DemuxerConfig::default(), &s.ts, || 1316), whole);
    for seed in 0..5 {
        let mut rng = Rng::new(seed);
        let events = demux_with(DemuxerConfig::default(), &s.ts, || rng.range(1, 1500));
        assert_eq!(events, whole, "seed {seed}");
    }
    assert_eq!(demux_with(DemuxerConfig::default(), &s.ts, || 1), whole);
}

#[test]
fn timestamps_unwrap_across_33_bits() {
    let wrap = 1i64 << 33;
    let s = synth(5, VideoCodec::H264, wrap - 3 * 90_000, 6, true);
    let events = demux(&s.ts);
    assert_same(&s, &events);
    let v = videos(&events);
    assert!(v.first().unwrap().2 < wrap && v.last().unwrap().2 > wrap);
    assert!(v.windows(2).all(|w| w[1].2 > w[0].2), "DTS monotonic");
    let a = audios(&events);
    assert!(a.windows(2).all(|w| w[1].1 > w[0].1), "audio PTS monotonic");
    assert!(a.last().unwrap().1 > wrap);
}

/// The packets of `pid` as (offset in the stream, payload_unit_start).
fn packets_of(ts: &[u8], pid: u16) -> Vec<(usize, bool)> {
    ts.chunks(TS_PACKET_LEN)
        .enumerate()
        .filter(|(_, p)| (u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])) == pid)
        .map(|(i, p)| (i * TS_PACKET_LEN, p[1] & 0x40 != 0))
        .collect()
}

/// Index of the first video AU whose PES spans at least `n` packets, at or after `from`,
/// with the offsets of its packets.
fn long_au(ts: &[u8], from: usize, n: usize) -> (usize, Vec<usize>) {
    let mut aus: Vec<Vec<usize>> = Vec::new();
    for (off, pusi) in packets_of(ts, VIDEO_PID) {
        if pusi {
            aus.push(Vec::new());
        }
        aus.last_mut().unwrap().push(off);
    }
    aus.into_iter()
        .enumerate()
        .skip(from)
        .find(|(_, p)| p.len() >= n)
        .unwrap()
}

fn without_packet(ts: &[u8], offset: usize) -> Vec<u8> {
    let mut v = ts[..offset].to_vec();
    v.extend_from_slice(&ts[offset + TS_PACKET_LEN..]);
    v
}

#[test]
fn cc_gap_drops_the_broken_au_and_recovers_at_the_next_one() {
    let s = synth(6, VideoCodec::H264, 0, 3, true);
    let (k, packets) = long_au(&s.ts, 10, 4);
    let events = demux(&without_packet(&s.ts, packets[2]));
    assert_eq!(
        problems(&events),
        vec![TsEvent::Discontinuity { pid: VIDEO_PID }]
    );
    let v = videos(&events);
    assert_eq!(v.len(), s.video.len() - 1);
    let want: Vec<_> = s
        .video
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != k)
        .map(|(_, v)| (v.pts, v.dts, Bytes::from(v.data.clone())))
        .collect();
    let got: Vec<_> = v.iter().map(|v| (v.1, v.2, v.4.clone())).collect();
    assert_eq!(got, want);
    // The discontinuity comes right where AU k would have ended.
    let pos = events
        .iter()
        .position(|e| matches!(e, TsEvent::Discontinuity { .. }))
        .unwrap();
    let before = videos(&events[..pos]).len();
    assert_eq!(
        before,
        k - 1 + 1,
        "AU k-1 is delivered at AU k's start, before the gap"
    );
    assert_eq!(audios(&events).len(), s.audio.len());
}

#[test]
fn losing_a_pes_start_loses_that_au_and_the_one_it_would_have_ended() {
    let s = synth(7, VideoCodec::H264, 0, 3, true);
    let (k, packets) = long_au(&s.ts, 10, 2);
    let events = demux(&without_packet(&s.ts, packets[0]));
    assert_eq!(
        problems(&events),
        vec![TsEvent::Discontinuity { pid: VIDEO_PID }]
    );
    let got: Vec<i64> = videos(&events).iter().map(|v| v.2).collect();
    let want: Vec<i64> = s
        .video
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != k && *i != k - 1)
        .map(|(_, v)| v.dts)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn duplicate_packets_are_ignored() {
    let s = synth(8, VideoCodec::H264, 0, 2, true);
    let (_, packets) = long_au(&s.ts, 5, 3);
    let off = packets[1];
    let mut ts = s.ts[..off + TS_PACKET_LEN].to_vec();
    ts.extend_from_slice(&s.ts[off..]);
    assert_same(&s, &demux(&ts));
}

#[test]
fn joining_mid_stream_starts_at_the_next_pat_and_pmt() {
    let s = synth(9, VideoCodec::H264, 0, 4, true);
    let whole = videos(&demux(&s.ts));
    // Start at an odd offset in the middle of the stream.
    let cut = s.ts.len() / 2 + 77;
    let events = demux(&s.ts[cut..]);
    assert!(matches!(events[0], TsEvent::Streams(_)));
    let v = videos(&events);
    assert!(!v.is_empty());
    // Everything after the first delivered AU matches the full run.
    let first = whole.iter().position(|w| w.2 == v[0].2).unwrap();
    assert_eq!(&whole[first..], &v[..]);
    // Nothing but the sync search is reported: the partial first PES is never started.
    assert!(problems(&events).is_empty());
}

#[test]
fn psi_is_repeated_and_precedes_keyframes() {
    let s = synth(10, VideoCodec::H264, 0, 4, true);
    let pat = packets_of(&s.ts, PAT_PID);
    // Before the first access unit 100 ms or more after the last: 30+ in 4 s.
    assert!(pat.len() >= 30, "about every 100 ms: {}", pat.len());
    // Every keyframe PES is preceded by PAT and PMT packets.
    for (off, pusi) in packets_of(&s.ts, VIDEO_PID) {
        let p = &s.ts[off..off + TS_PACKET_LEN];
        let rai = p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x40 != 0;
        if pusi && rai {
            let prev = &s.ts[off - 2 * TS_PACKET_LEN..off - TS_PACKET_LEN];
            assert_eq!(u16::from(prev[1] & 0x1F) << 8 | u16::from(prev[2]), PAT_PID);
        }
    }
}

#[test]
fn muxer_rejects_bad_configuration_and_input() {
    let bad = [
        MuxerConfig {
            pmt_pid: 0,
            ..MuxerConfig::default()
        },
        MuxerConfig {
            video: Some((0x1FFF, VideoCodec::H264)),
            ..MuxerConfig::default()
        },
        MuxerConfig {
            audio: Some((0x100, AudioCodec::Aac)),
            ..MuxerConfig::default()
        },
        MuxerConfig {
            video: None,
            audio: None,
            ..MuxerConfig::default()
        },
    ];
    for c in bad {
        assert!(matches!(
            Muxer::new(c),
            Err(TsError::InvalidMuxerInput { .. })
        ));
    }
    let mut m = Muxer::new(MuxerConfig {
        video: None,
        ..MuxerConfig::default()
    })
    .unwrap();
    assert!(m.write_video(0, 0, true, &[0, 0, 1, 0x65]).is_err());
    assert!(m.write_audio(0, &vec![0u8; 70_000]).is_err());
    // Audio-only: the PCR is on the audio PID, and it demuxes.
    let mut rng = Rng::new(11);
    let mut ts = m.write_psi().to_vec();
    let frame = adts_frame(&mut rng, 48_000, 100);
    for i in 0..10 {
        ts.extend_from_slice(&m.write_audio(i * 1920, &frame).unwrap());
    }
    let events = demux(&ts);
    assert_eq!(audios(&events).len(), 10);
    assert!(problems(&events).is_empty());
    let mut m = Muxer::new(MuxerConfig::default()).unwrap();
    assert!(
        m.write_video(0, 10, false, &[0, 0, 1, 0x41]).is_err(),
        "pts < dts"
    );
}
