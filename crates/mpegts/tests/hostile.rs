//! Garbage and lies: the demuxer never panics, keeps its memory bounded, reports what it
//! dropped, and gets back on its feet.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::{audios, demux, demux_with, problems, videos, Rng};
use lunora_mpegts::{
    Demuxer, DemuxerConfig, Muxer, MuxerConfig, TsError, TsEvent, SYNC_BYTE, TS_PACKET_LEN,
};

const H264: &[u8] = include_bytes!("fixtures/h264_aac.ts");

const SMALL: DemuxerConfig = DemuxerConfig {
    max_pes_size: 64 * 1024,
    max_streams: 4,
};

/// One packet: header, adaptation field stuffing when `payload` is short, payload.
fn packet(pid: u16, pusi: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
    assert!(!payload.is_empty() && payload.len() <= 184);
    let mut p = vec![
        SYNC_BYTE,
        (u8::from(pusi) << 6) | (pid >> 8) as u8,
        pid as u8,
        0x10 | cc,
    ];
    let stuffing = 184 - payload.len();
    if stuffing > 0 {
        p[3] |= 0x20;
        p.push(stuffing as u8 - 1);
        if stuffing > 1 {
            p.push(0);
            p.extend(std::iter::repeat_n(0xFF, stuffing - 2));
        }
    }
    p.extend_from_slice(payload);
    assert_eq!(p.len(), TS_PACKET_LEN);
    p
}

/// PAT + PMT for H.264 on 0x100 and AAC on 0x101.
fn psi() -> Vec<u8> {
    Muxer::new(MuxerConfig::default())
        .unwrap()
        .write_psi()
        .to_vec()
}

/// A PES header with a PTS and the given PES_packet_length.
fn pes_header(stream_id: u8, declared_len: u16, pts: u64) -> Vec<u8> {
    let l = declared_len.to_be_bytes();
    vec![
        0,
        0,
        1,
        stream_id,
        l[0],
        l[1],
        0x80,
        0x80,
        5,
        0x21 | ((pts >> 29) as u8 & 0x0E),
        (pts >> 22) as u8,
        ((pts >> 14) as u8) | 1,
        (pts >> 7) as u8,
        ((pts << 1) as u8) | 1,
    ]
}

#[test]
fn random_garbage_never_panics_and_memory_stays_bounded() {
    let mut rng = Rng::new(0xBAD);
    let psi = psi();
    for iteration in 0..400 {
        let len = rng.range(0, 30_000);
        let mut data = rng.bytes(len);
        match iteration % 4 {
            // Pure noise.
            0 => {}
            // Noise with sync bytes every 188 bytes, so it parses as packets.
            1 => data.iter_mut().step_by(188).for_each(|b| *b = SYNC_BYTE),
            // Aligned packets on the PIDs the demuxer tracks, after a valid PAT/PMT.
            _ => {
                for (i, p) in data.chunks_mut(188).enumerate() {
                    p[0] = SYNC_BYTE;
                    if let Some(b) = p.get_mut(1..3) {
                        let pid: u16 = [0, 0x1000, 0x100, 0x101][i % 4];
                        b[0] = (b[0] & 0xE0) | (pid >> 8) as u8;
                        b[1] = pid as u8;
                    }
                    if rng.range(0, 3) == 0 {
                        if let Some(b) = p.get_mut(4..10) {
                            // A plausible PES start now and then.
                            b[..3].copy_from_slice(&[0, 0, 1]);
                        }
                    }
                }
                data.splice(0..0, psi.iter().copied());
            }
        }
        let mut chunks = Rng::new(iteration);
        let events = demux_with(SMALL, &data, || chunks.range(1, 2000));
        for e in &events {
            match e {
                TsEvent::Video { data, .. } | TsEvent::Audio { data, .. } => {
                    assert!(data.len() <= SMALL.max_pes_size)
                }
                TsEvent::Streams(s) => assert!(s.len() <= SMALL.max_streams),
                _ => {}
            }
        }
    }
}

#[test]
fn mutated_stream_recovers_to_the_same_tail() {
    let clean = videos(&demux(H264));
    let clean_audio = audios(&demux(H264));
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let mut ts = H264.to_vec();
        // Damage the first 40 %: flip bits, insert and delete bytes, truncate packets.
        let limit = ts.len() * 4 / 10;
        for _ in 0..rng.range(1, 30) {
            let at = rng.range(0, limit);
            match rng.range(0, 3) {
                0 => ts[at] ^= 1 << rng.range(0, 7),
                1 => {
                    let n = rng.range(1, 300);
                    let junk = rng.bytes(n);
                    ts.splice(at..at, junk);
                }
                2 => {
                    let n = rng.range(1, 187);
                    ts.drain(at..at + n);
                }
                _ => {
                    let n = rng.range(1, 400);
                    ts.drain(at..at + n);
                }
            }
        }
        let mut chunks = Rng::new(seed + 1000);
        let events = demux_with(DemuxerConfig::default(), &ts, || chunks.range(1, 1500));
        let v = videos(&events);
        assert!(v.len() >= 15, "seed {seed}: {} AUs", v.len());
        assert_eq!(
            &v[v.len() - 15..],
            &clean[clean.len() - 15..],
            "seed {seed}"
        );
        let a = audios(&events);
        assert!(a.len() >= 3, "seed {seed}: {} audio PES", a.len());
        assert_eq!(&a[a.len() - 3..], &clean_audio[clean_audio.len() - 3..]);
    }
}

#[test]
fn garbage_between_packets_loses_nothing() {
    let mut rng = Rng::new(77);
    let mut ts = Vec::new();
    let mut insertions = 0;
    for (i, p) in H264.chunks(TS_PACKET_LEN).enumerate() {
        if i % 50 == 25 {
            // No sync byte in the junk, so no false packet boundary.
            let junk: Vec<u8> = (0..rng.range(1, 500))
                .map(|_| rng.byte())
                .map(|b| if b == SYNC_BYTE { 0 } else { b })
                .collect();
            ts.extend(junk);
            insertions += 1;
        }
        ts.extend_from_slice(p);
    }
    let events = demux(&ts);
    let lost: Vec<_> = problems(&events);
    assert_eq!(lost.len(), insertions);
    assert!(lost
        .iter()
        .all(|e| matches!(e, TsEvent::Error(TsError::SyncLost { .. }))));
    assert_eq!(videos(&events), videos(&demux(H264)));
    assert_eq!(audios(&events), audios(&demux(H264)));
}

#[test]
fn truncated_packets_are_skipped() {
    let mut ts = Vec::new();
    let mut rng = Rng::new(5);
    for (i, p) in H264.chunks(TS_PACKET_LEN).enumerate() {
        if i % 97 == 40 {
            ts.extend_from_slice(&p[..rng.range(1, 187)]);
        } else {
            ts.extend_from_slice(p);
        }
    }
    // Ends in the middle of a packet too.
    ts.extend_from_slice(&H264[..100]);
    let mut d = Demuxer::default();
    d.push(&ts);
    d.flush();
    let mut events = Vec::new();
    while let Some(e) = d.poll_event() {
        events.push(e);
    }
    assert!(events
        .iter()
        .any(|e| matches!(e, TsEvent::Error(TsError::SyncLost { .. }))));
    let v = videos(&events);
    assert!(v.len() >= 40 && v.len() < 50, "{} AUs", v.len());
    assert!(v.windows(2).all(|w| w[1].2 > w[0].2));
    assert!(d.stats().bytes_skipped > 0);
}

#[test]
fn pes_length_lies() {
    let body: Vec<u8> = (0..100u8).collect();
    let mut ts = psi();
    // 1. Declares 4000 bytes, carries 100: delivered as it is at the next start.
    let mut pes = pes_header(0xC0, 4000, 9000);
    pes.extend_from_slice(&body);
    ts.extend(packet(0x101, true, 0, &pes));
    // 2. Declares 8 + 10 bytes, carries 100: cut to the declared length at once.
    let mut pes = pes_header(0xC0, 8 + 10, 18000);
    pes.extend_from_slice(&body);
    ts.extend(packet(0x101, true, 1, &pes));
    // 3. Declares 1 byte: shorter than its own header.
    let mut pes = pes_header(0xC0, 1, 27000);
    pes.extend_from_slice(&body);
    ts.extend(packet(0x101, true, 2, &pes));
    // 4. A header_data_length running past the packet.
    let mut pes = pes_header(0xC0, 0, 36000);
    pes[8] = 250;
    ts.extend(packet(0x101, true, 3, &pes));
    // 5. A good one to end with.
    let mut pes = pes_header(0xC0, 8 + 100, 45000);
    pes.extend_from_slice(&body);
    ts.extend(packet(0x101, true, 4, &pes));

    let events = demux(&ts);
    let a = audios(&events);
    assert_eq!(a.len(), 3);
    assert_eq!((a[0].1, &a[0].2[..]), (9000, &body[..]));
    assert_eq!((a[1].1, &a[1].2[..]), (18000, &body[..10]));
    assert_eq!((a[2].1, &a[2].2[..]), (45000, &body[..]));
    let errors: Vec<_> = problems(&events);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors
        .iter()
        .all(|e| matches!(e, TsEvent::Error(TsError::InvalidPes { pid: 0x101, .. }))));
}

#[test]
fn adaptation_field_longer_than_183_drops_the_packet() {
    let mut ts = psi();
    let mut first = pes_header(0xE0, 0, 3600);
    first.extend_from_slice(&[0, 0, 0, 1, 0x65, 1, 2, 3]);
    ts.extend(packet(0x100, true, 0, &first));
    for (i, (afc, len)) in [(0x30u8, 183u8), (0x30, 200), (0x20, 184), (0x20, 255)]
        .into_iter()
        .enumerate()
    {
        let mut p = packet(0x100, false, 1 + i as u8, &[7; 184]);
        p[3] = (p[3] & 0x0F) | afc;
        p[4] = len;
        ts.extend(p);
    }
    let mut next = pes_header(0xE0, 0, 7200);
    next.extend_from_slice(&[0, 0, 1, 0x41, 9]);
    ts.extend(packet(0x100, true, 5, &next));
    let events = demux(&ts);
    let errors = problems(&events);
    assert_eq!(
        errors
            .iter()
            .filter(|e| matches!(e, TsEvent::Error(TsError::InvalidAdaptationField { .. })))
            .count(),
        4
    );
    // The packets were lost to the stream: the AU they belonged to is dropped, the next one
    // is delivered.
    assert!(errors.contains(&TsEvent::Discontinuity { pid: 0x100 }));
    let v = videos(&events);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].1, &v[0].4[..]), (7200, &[0, 0, 1, 0x41, 9][..]));
}

#[test]
fn endless_pes_is_dropped_at_the_limit() {
    let config = DemuxerConfig {
        max_pes_size: 1 << 20,
        max_streams: 4,
    };
    let mut d = Demuxer::new(config);
    d.push(&psi());
    let mut cc = 0u8;
    let mut first = pes_header(0xE0, 0, 3600);
    first.extend_from_slice(&[0, 0, 1, 0x65]);
    d.push(&packet(0x100, true, cc, &first));
    let mut errors = 0;
    // 5 MB of one PES without end.
    for _ in 0..(5 << 20) / 184 {
        cc = (cc + 1) & 0x0F;
        d.push(&packet(0x100, false, cc, &[0x11; 184]));
        assert!(d.buffered_bytes() <= config.max_pes_size + 2 * TS_PACKET_LEN);
        while let Some(e) = d.poll_event() {
            if matches!(e, TsEvent::Streams(_)) {
                continue;
            }
            assert_eq!(
                e,
                TsEvent::Error(TsError::PesTooLarge {
                    pid: 0x100,
                    max: 1 << 20
                })
            );
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    // The next PES is fine.
    cc = (cc + 1) & 0x0F;
    let mut next = pes_header(0xE0, 0, 7200);
    next.extend_from_slice(&[0, 0, 1, 0x65, 5]);
    d.push(&packet(0x100, true, cc, &next));
    d.flush();
    let mut events = Vec::new();
    while let Some(e) = d.poll_event() {
        events.push(e);
    }
    let v = videos(&events);
    assert_eq!(v.len(), 1);
    assert!(v[0].3);
    assert_eq!(d.stats().pes_dropped, 1);
}

#[test]
fn scrambled_and_transport_error_packets_are_reported() {
    let mut ts = psi();
    let mut pes = pes_header(0xC0, 0, 1000);
    pes.extend_from_slice(&[1, 2, 3]);
    let mut scrambled = packet(0x101, true, 0, &pes);
    scrambled[3] |= 0x80;
    ts.extend(scrambled);
    let mut tei = packet(0x101, true, 0, &pes);
    tei[1] |= 0x80;
    ts.extend(tei);
    let events = demux(&ts);
    assert_eq!(
        problems(&events),
        vec![
            TsEvent::Error(TsError::Scrambled { pid: 0x101 }),
            TsEvent::Error(TsError::TransportError { pid: 0x101 }),
        ]
    );
    assert!(audios(&events).is_empty());
}

#[test]
fn missing_pts_drops_the_pes() {
    let mut ts = psi();
    let mut pes = vec![0, 0, 1, 0xC0, 0, 6, 0x80, 0x00, 0, 1, 2, 3];
    ts.extend(packet(0x101, true, 0, &pes));
    pes = pes_header(0xC0, 8 + 3, 500);
    pes.extend_from_slice(&[1, 2, 3]);
    ts.extend(packet(0x101, true, 1, &pes));
    let events = demux(&ts);
    assert_eq!(
        problems(&events),
        vec![TsEvent::Error(TsError::MissingPts { pid: 0x101 })]
    );
    assert_eq!(audios(&events).len(), 1);
}
