//! The fMP4 boxes, read back with a small box reader.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod support;

use lunora_flv::{AudioSpecificConfig, AvcDecoderConfigurationRecord};
use lunora_hls::fmp4::{
    self, FragmentSample, TrackFragment, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS,
};
use lunora_hls::{Packager, PackagerOptions, StreamConfig, Track};
use support::*;

#[test]
fn init_segment_has_both_tracks_with_their_configs() {
    let fx = fixture();
    let init = fmp4::init_segment(&fx.config).unwrap();
    let top = boxes(&init);
    let kinds: Vec<String> = top.iter().map(|b| b.name()).collect();
    assert_eq!(kinds, ["ftyp", "moov"]);
    assert_eq!(&top[0].payload[..4], b"iso6");
    let moov = top[1];
    let kinds: Vec<String> = moov.children().iter().map(|b| b.name()).collect();
    assert_eq!(kinds, ["mvhd", "trak", "trak", "mvex"]);
    let (_, _, mvhd) = moov.child("mvhd").full();
    assert_eq!(mvhd.len(), 96);
    assert_eq!(u32_at(mvhd, 92), 3, "next_track_ID");

    let traks: Vec<_> = moov
        .children()
        .into_iter()
        .filter(|b| b.is("trak"))
        .collect();
    // Video.
    let (_, tkhd_flags, tkhd) = traks[0].child("tkhd").full();
    assert_eq!(tkhd_flags, 3);
    assert_eq!(u32_at(tkhd, 8), 1, "video track_ID");
    assert_eq!((u32_at(tkhd, 72) >> 16, u32_at(tkhd, 76) >> 16), (320, 240));
    let mdia = traks[0].child("mdia");
    let (_, _, mdhd) = mdia.child("mdhd").full();
    assert_eq!(u32_at(mdhd, 8), 90_000);
    let (_, _, hdlr) = mdia.child("hdlr").full();
    assert_eq!(&hdlr[4..8], b"vide");
    let stbl = mdia.child("minf").child("stbl");
    let kinds: Vec<String> = stbl.children().iter().map(|b| b.name()).collect();
    assert_eq!(kinds, ["stsd", "stts", "stsc", "stsz", "stco"]);
    let (_, _, stsd) = stbl.child("stsd").full();
    assert_eq!(u32_at(stsd, 0), 1);
    let avc1 = boxes(&stsd[4..])[0];
    assert!(avc1.is("avc1"));
    assert_eq!(
        (u16_at(avc1.payload, 24), u16_at(avc1.payload, 26)),
        (320, 240)
    );
    let avcc = boxes(&avc1.payload[78..]);
    assert!(avcc[0].is("avcC"));
    let record = match &fx.config.video {
        Some(lunora_hls::VideoConfig::H264 { record }) => record.clone(),
        _ => unreachable!(),
    };
    assert_eq!(avcc[0].payload, &record[..], "avcC is the record as is");
    AvcDecoderConfigurationRecord::parse(bytes::Bytes::copy_from_slice(avcc[0].payload)).unwrap();

    // Audio.
    let (_, _, tkhd) = traks[1].child("tkhd").full();
    assert_eq!(u32_at(tkhd, 8), 2, "audio track_ID");
    let mdia = traks[1].child("mdia");
    let (_, _, mdhd) = mdia.child("mdhd").full();
    assert_eq!(
        u32_at(mdhd, 8),
        44_100,
        "audio timescale is the sampling rate"
    );
    let (_, _, stsd) = mdia.child("minf").child("stbl").child("stsd").full();
    let mp4a = boxes(&stsd[4..])[0];
    assert!(mp4a.is("mp4a"));
    assert_eq!(u16_at(mp4a.payload, 16), 1, "channels");
    assert_eq!(u32_at(mp4a.payload, 24) >> 16, 44_100);
    let esds = boxes(&mp4a.payload[28..])[0];
    assert!(esds.is("esds"));
    let asc = fx.config.audio.as_ref().unwrap().asc.clone();
    let (_, _, es) = esds.full();
    // ES_Descriptor(3) > DecoderConfigDescriptor(4) > DecoderSpecificInfo(5) = the ASC.
    assert_eq!(es[0], 3);
    let dsi = es
        .windows(asc.len() + 2)
        .position(|w| w[0] == 5 && w[1] as usize == asc.len() && w[2..] == asc[..]);
    assert!(dsi.is_some(), "esds carries the AudioSpecificConfig");
    assert_eq!(
        AudioSpecificConfig::parse(&asc).unwrap().sampling_frequency,
        44_100
    );

    let trex: Vec<_> = moov
        .child("mvex")
        .children()
        .into_iter()
        .map(|b| {
            let (_, _, t) = b.full();
            (u32_at(t, 0), u32_at(t, 16))
        })
        .collect();
    assert_eq!(trex, [(1, NON_SYNC_SAMPLE_FLAGS), (2, SYNC_SAMPLE_FLAGS)]);
}

#[test]
fn audio_only_init_has_one_track() {
    let asc = AudioSpecificConfig::aac_lc(48_000, 2)
        .unwrap()
        .encode()
        .unwrap();
    let cfg = StreamConfig {
        video: None,
        audio: Some(lunora_hls::AudioConfig { asc }),
    };
    let init = fmp4::init_segment(&cfg).unwrap();
    let moov = boxes(&init)[1];
    let kinds: Vec<String> = moov.children().iter().map(|b| b.name()).collect();
    assert_eq!(kinds, ["mvhd", "trak", "mvex"]);
}

#[test]
fn fragment_with_two_tracks_locates_every_sample() {
    let video = [
        FragmentSample {
            duration: 3600,
            composition_offset: 7200,
            sync: true,
            data: bytes::Bytes::from_static(b"\x00\x00\x00\x02\x65\x88"),
        },
        FragmentSample {
            duration: 3600,
            composition_offset: -3600,
            sync: false,
            data: bytes::Bytes::from_static(b"\x00\x00\x00\x01\x41"),
        },
    ];
    let audio = [FragmentSample {
        duration: 1024,
        composition_offset: 0,
        sync: true,
        data: bytes::Bytes::from_static(b"aac"),
    }];
    let frag = fmp4::fragment(
        9,
        &[
            TrackFragment {
                track: Track::Video,
                base_decode_time: 180_000,
                samples: &video,
            },
            TrackFragment {
                track: Track::Audio,
                base_decode_time: 88_200,
                samples: &audio,
            },
        ],
    )
    .unwrap();
    let f = &fragments(&frag)[0];
    assert_eq!(f.sequence, 9);
    let v = f.traf(1).unwrap();
    assert_eq!((v.base_decode_time, v.trun_version), (180_000, 1));
    assert_eq!(v.samples[0].flags, Some(SYNC_SAMPLE_FLAGS));
    assert_eq!(v.samples[1].flags, Some(NON_SYNC_SAMPLE_FLAGS));
    assert_eq!(v.samples[0].composition_offset, Some(7200));
    assert_eq!(
        v.samples[1].composition_offset,
        Some(-3600),
        "signed (trun v1)"
    );
    assert_eq!(v.data[1], b"\x00\x00\x00\x01\x41");
    let a = f.traf(2).unwrap();
    assert_eq!((a.base_decode_time, a.samples[0].duration), (88_200, 1024));
    assert_eq!(a.samples[0].flags, None);
    assert_eq!(a.data[0], b"aac");
}

#[test]
fn packaged_segments_are_styp_then_fragments_with_continuous_decode_times() {
    let fx = fixture();
    let mut d = Driver::new(Packager::new(PackagerOptions::default(), fx.config.clone()).unwrap());
    d.feed(&looped(&fx, 4, 0));
    let mut next_time = [None::<u64>, None];
    let mut last_seq = 0;
    for s in &d.last().segments {
        let bytes = bytes_of(&d.packager, &s.uri);
        assert!(boxes(&bytes)[0].is("styp"));
        let frags = fragments(&bytes);
        let first = frags[0].traf(1).unwrap();
        assert_eq!(
            first.samples[0].flags,
            Some(SYNC_SAMPLE_FLAGS),
            "{} starts on a keyframe",
            s.uri
        );
        for f in &frags {
            assert!(f.sequence > last_seq, "mfhd sequence numbers increase");
            last_seq = f.sequence;
            for t in &f.trafs {
                let i = t.track_id as usize - 1;
                if let Some(expected) = next_time[i] {
                    assert_eq!(
                        t.base_decode_time, expected,
                        "track {} tfdt continuous",
                        t.track_id
                    );
                }
                next_time[i] = Some(
                    t.base_decode_time
                        + t.samples.iter().map(|x| u64::from(x.duration)).sum::<u64>(),
                );
                // AVCC samples: the 4-byte lengths add up to the sample.
                if t.track_id == 1 {
                    for data in &t.data {
                        let mut at = 0;
                        while at < data.len() {
                            at += 4 + u32_at(data, at) as usize;
                        }
                        assert_eq!(at, data.len());
                    }
                } else {
                    assert!(
                        t.samples.iter().all(|x| x.duration == 1024),
                        "AAC frames are 1024 samples"
                    );
                }
            }
        }
    }
    // B-frames: the first picture is presented 80 ms (7200 ticks) after it is decoded.
    let first = fragments(&bytes_of(&d.packager, "seg-0.m4s"));
    let v = first[0].traf(1).unwrap();
    assert_eq!(v.base_decode_time, 0);
    assert_eq!(v.samples[0].composition_offset, Some(7200));
    assert!(v.samples.iter().all(|x| x.duration == 3600), "25 fps");
}
