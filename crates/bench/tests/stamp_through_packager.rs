#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The frame stamps of `lunora-bench --stamp` survive Lunora's HLS packager: an FFmpeg-made
//! clip, each video frame stamped, fed to `lunora_hls::Packager` as the server feeds it; the
//! bench's fMP4 reader finds every stamp, in order, in the LL-HLS parts and the segments, and
//! the samples are the published bytes unchanged. (The benchmark itself shows the same through
//! a running server: every frame a player receives carries its stamp.)

use std::collections::HashMap;

use lunora_bench::media::{default_cache_dir, ensure_file, Clip, Kind, Profile};
use lunora_bench::{mp4, sei};
use lunora_hls::{Event, Packager, PackagerOptions, Sample, StreamConfig};

#[test]
fn stamps_reach_the_parts_and_segments_verbatim() {
    let path = ensure_file(Profile::parse("480p").unwrap(), 5, &default_cache_dir()).unwrap();
    let clip = Clip::load(&path).unwrap();
    let config_of = |kind| {
        clip.tags
            .iter()
            .find(|t| t.kind == kind && t.config)
            .unwrap()
            .body
            .clone()
    };
    let config = StreamConfig::h264_aac(
        config_of(Kind::Video).slice(5..),
        config_of(Kind::Audio).slice(2..),
    );
    let mut p = Packager::new(PackagerOptions::default(), config).unwrap();

    let mut sent: Vec<u64> = Vec::new();
    let mut published: HashMap<u64, bytes::Bytes> = HashMap::new();
    let mut from_parts: Vec<u64> = Vec::new();
    let mut segments: Vec<u64> = Vec::new();
    let mut video_track = None;
    // Coded frames only (the file ends with an AVC end-of-sequence tag).
    for t in clip.tags.iter().filter(|t| !t.config && t.body[1] == 1) {
        let dts = i64::from(t.ts) * 90;
        let sample = match t.kind {
            Kind::Video => {
                let b = &t.body;
                let cts =
                    (i32::from(b[2]) << 16 | i32::from(b[3]) << 8 | i32::from(b[4])) << 8 >> 8;
                let us = 1_000_000 + sent.len() as u64 * 33_333;
                let data = sei::stamp_avcc(&b[5..], us);
                sent.push(us);
                published.insert(us, data.clone());
                Sample::video(dts, dts + i64::from(cts) * 90, b[0] >> 4 == 1, data)
            }
            Kind::Audio => Sample::audio(dts, t.body.slice(2..)),
        };
        p.push(sample, i64::from(t.ts)).unwrap();
        while let Some(ev) = p.poll_event() {
            let bytes = match ev {
                Event::InitReady { version } => {
                    video_track = mp4::video_track(&p.init(version).unwrap()).unwrap();
                    continue;
                }
                Event::PartReady { msn, part } => p.part(msn, part).unwrap(),
                Event::SegmentReady { msn } => {
                    let seg = p.segment(&lunora_hls::segment_uri(msn)).unwrap();
                    for s in mp4::samples(&seg).unwrap() {
                        if Some(s.track) == video_track {
                            segments.push(sei::find_stamp(s.data).unwrap());
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            for s in mp4::samples(&bytes).unwrap() {
                if Some(s.track) != video_track {
                    continue;
                }
                let us = sei::find_stamp(s.data).expect("every video sample carries its stamp");
                assert_eq!(
                    s.data,
                    &published[&us][..],
                    "the sample is the published bytes"
                );
                from_parts.push(us);
            }
        }
    }
    assert_eq!(video_track, Some(1));
    // Everything but the open part (and the sample held back for its duration) was packaged.
    assert!(
        from_parts.len() + 15 >= sent.len(),
        "{} of {}",
        from_parts.len(),
        sent.len()
    );
    assert_eq!(
        from_parts[..],
        sent[..from_parts.len()],
        "in order, none lost"
    );
    assert!(
        segments.len() >= 60,
        "{} frames in segments",
        segments.len()
    );
    assert_eq!(segments[..], sent[..segments.len()]);
}
