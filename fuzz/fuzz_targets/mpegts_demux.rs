//! Arbitrary bytes into the MPEG-TS demuxer, in pieces: as they are, forced onto 188-byte
//! packet boundaries, and after a valid PAT/PMT so that PES reassembly is reached quickly.
//! Memory stays bounded, nothing delivered exceeds the limits, and ADTS splitting and
//! keyframe detection of whatever comes out never panic. Then the same bytes as a video
//! access unit and an audio PES go through the muxer and must come back unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lunora_mpegts::{
    h264_is_keyframe, hevc_is_keyframe, split_adts, Demuxer, DemuxerConfig, Muxer, MuxerConfig,
    TsEvent, SYNC_BYTE, TS_PACKET_LEN,
};

const CONFIG: DemuxerConfig = DemuxerConfig {
    max_pes_size: 1 << 20,
    max_streams: 8,
};

fn drain(d: &mut Demuxer, out: &mut Vec<TsEvent>) {
    while let Some(e) = d.poll_event() {
        match &e {
            TsEvent::Video { data, .. } => {
                assert!(!data.is_empty() && data.len() <= CONFIG.max_pes_size);
                let _ = h264_is_keyframe(data);
                let _ = hevc_is_keyframe(data);
            }
            TsEvent::Audio { data, pts, .. } => {
                assert!(data.len() <= CONFIG.max_pes_size);
                for frame in split_adts(data.clone(), *pts) {
                    match frame {
                        Ok(f) => assert!(f.raw().len() <= f.adts.len()),
                        Err(_) => break,
                    }
                }
            }
            TsEvent::Streams(s) => assert!(s.len() <= CONFIG.max_streams),
            _ => {}
        }
        out.push(e);
    }
}

fn demux(input: &[u8], piece: usize) -> Vec<TsEvent> {
    let mut d = Demuxer::new(CONFIG);
    let mut events = Vec::new();
    for chunk in input.chunks(piece) {
        d.push(chunk);
        let bound = CONFIG.max_streams * CONFIG.max_pes_size + 2 * 1024 + 2 * TS_PACKET_LEN;
        assert!(d.buffered_bytes() <= bound);
        drain(&mut d, &mut events);
    }
    d.flush();
    drain(&mut d, &mut events);
    events
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    // Byte by byte now and then; mostly datagram-like pieces.
    let piece = [1, 2, 13, 100, 188, 1316, 1500, 1 << 16][usize::from(mode >> 2) % 8];

    let mut input = Vec::with_capacity(2 * TS_PACKET_LEN + data.len());
    if mode & 1 != 0 {
        let mut mux = Muxer::new(MuxerConfig::default()).expect("default config");
        input.extend_from_slice(&mux.write_psi());
    }
    let start = input.len();
    input.extend_from_slice(data);
    if mode & 2 != 0 {
        input[start..]
            .iter_mut()
            .step_by(TS_PACKET_LEN)
            .for_each(|b| *b = SYNC_BYTE);
    }
    demux(&input, piece);

    // Round trip of the bytes as payload.
    if data.is_empty() {
        return;
    }
    let mut mux = Muxer::new(MuxerConfig::default()).expect("default config");
    let pts = 0x1_2345_6789i64 + i64::from(mode) * 1_000_000;
    let mut ts = mux
        .write_video(pts, pts - 3600, mode & 1 != 0, data)
        .expect("video AU")
        .to_vec();
    let audio = data.len() <= 60_000;
    if audio {
        ts.extend_from_slice(&mux.write_audio(pts, data).expect("audio PES"));
    }
    let events = demux(&ts, piece);
    let mut video = 0;
    let mut audios = 0;
    for e in events {
        match e {
            TsEvent::Video {
                pts: p,
                dts,
                keyframe,
                data: d,
                ..
            } => {
                assert_eq!((p, dts), (pts, pts - 3600));
                assert_eq!(keyframe, mode & 1 != 0 || h264_is_keyframe(data));
                assert_eq!(&d[..], data);
                video += 1;
            }
            TsEvent::Audio {
                pts: p, data: d, ..
            } => {
                assert_eq!(p, pts);
                assert_eq!(&d[..], data);
                audios += 1;
            }
            TsEvent::Streams(_) => {}
            other => panic!("round trip reported {other:?}"),
        }
    }
    assert_eq!((video, audios), (1, usize::from(audio)));
});
