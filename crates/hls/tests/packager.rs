//! The segmenter and its playlists, fed with the real capture (H.264 High with B frames,
//! keyframes every second, AAC LC 44.1 kHz). Every playlist a [`Driver`] sees is validated,
//! and so is every update against the one before.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lunora_hls::fmp4::SYNC_SAMPLE_FLAGS;
use lunora_hls::{
    master_playlist, AudioConfig, Event, HlsError, Packager, PackagerOptions, PlaylistKind,
    ReloadStatus, Sample, StreamConfig, Track,
};
use support::*;

fn packager(opts: PackagerOptions) -> (Fixture, Driver) {
    let fx = fixture();
    let p = Packager::new(opts, fx.config.clone()).unwrap();
    (fx, Driver::new(p))
}

fn non_ll() -> PackagerOptions {
    PackagerOptions {
        part_target: None,
        ..PackagerOptions::default()
    }
}

/// The first video sample of a segment is a sync sample.
fn starts_on_keyframe(p: &Packager, name: &str) -> bool {
    let f = fragments(&bytes_of(p, name));
    f[0].traf(1).unwrap().samples[0].flags == Some(SYNC_SAMPLE_FLAGS)
}

#[test]
fn segments_are_cut_on_keyframes_once_the_target_is_reached() {
    let (fx, mut d) = packager(non_ll());
    d.feed(&looped(&fx, 6, 0));
    let pl = d.last().clone();
    assert_eq!(pl.target_duration, Some(2));
    // 12 s of video: five 2 s segments, the sixth still open (no part tags without LL).
    assert_eq!(pl.segments.len(), 5);
    for s in &pl.segments {
        assert_eq!(s.duration, 2.0, "{}", s.uri);
        assert!(starts_on_keyframe(&d.packager, &s.uri));
        // One fragment per segment without LL-HLS.
        assert_eq!(fragments(&bytes_of(&d.packager, &s.uri)).len(), 1);
    }
    assert!(!d.last_text().contains("#EXT-X-PART"));
    assert!(!d.last_text().contains("SERVER-CONTROL"));
    assert_eq!(d.packager.part(0, 0), None);

    // A 1 s target cuts on every keyframe.
    let (fx, mut d) = packager(PackagerOptions {
        target_duration: Duration::from_secs(1),
        ..non_ll()
    });
    d.feed(&looped(&fx, 3, 0));
    assert_eq!(d.last().target_duration, Some(1));
    assert!(d.last().segments.iter().all(|s| s.duration == 1.0));
    assert_eq!(d.last().segments.len(), 5);

    // A 1.5 s target: the keyframe at 1 s is too early, the one at 2 s cuts.
    let (fx, mut d) = packager(PackagerOptions {
        target_duration: Duration::from_millis(1500),
        ..non_ll()
    });
    d.feed(&looped(&fx, 3, 0));
    assert_eq!(
        d.last().target_duration,
        Some(2),
        "ceil of the longest segment"
    );
    assert!(d.last().segments.iter().all(|s| s.duration == 2.0));
}

#[test]
fn playlists_stay_valid_across_many_updates() {
    let (fx, mut d) = packager(PackagerOptions::default());
    d.feed(&looped(&fx, 30, 0));
    // Every new playlist was validated against the previous one by the driver.
    // One new playlist per part: 60 s of 0.4 s parts.
    assert!(d.playlists.len() >= 145, "{} playlists", d.playlists.len());
    let last = d.last();
    assert_eq!(last.segments.len(), 6, "window");
    assert_eq!(last.media_sequence, 29 - 6);
    assert_eq!(last.discontinuity_sequence, 0);
    // Media sequence numbers only ever advance by whole segments.
    let seqs: Vec<u64> = d.playlists.iter().map(|p| p.media_sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
    // Program date times follow media time exactly.
    let pdt = |i: usize| last.segments[i].program_date_time.clone().unwrap();
    assert_eq!(
        pdt(0),
        lunora_hls::program_date_time(1_700_000_000_000 + 23 * 2000)
    );
    assert_eq!(
        pdt(1),
        lunora_hls::program_date_time(1_700_000_000_000 + 24 * 2000)
    );
}

#[test]
fn ll_parts_make_up_their_segments() {
    let (fx, mut d) = packager(PackagerOptions::default());
    d.feed(&looped(&fx, 5, 0));
    let pl = d.last().clone();
    assert_eq!(pl.part_target, Some(0.4));
    assert_eq!(pl.part_hold_back, Some(1.2));
    assert!(pl.can_block_reload);
    let with_parts: Vec<_> = pl.segments.iter().filter(|s| !s.parts.is_empty()).collect();
    assert!(!with_parts.is_empty());
    for s in with_parts {
        // 25 fps: 0.4 s is exactly 10 frames, so five equal parts per segment.
        assert_eq!(s.parts.len(), 5, "{}", s.uri);
        assert!(s.parts.iter().all(|p| p.duration == 0.4));
        assert!(s.parts[0].independent);
        assert!(s.parts[1..].iter().all(|p| !p.independent));
        // The segment is styp + its parts, byte for byte.
        let mut joined = BytesMut::new();
        joined.extend_from_slice(&lunora_hls::fmp4::styp());
        for p in &s.parts {
            let part = bytes_of(&d.packager, &p.uri);
            assert!(boxes(&part)[0].is("moof"));
            joined.extend_from_slice(&part);
        }
        assert_eq!(joined.freeze(), bytes_of(&d.packager, &s.uri));
    }
    // The open segment's parts and the hint for the next one.
    let open = pl.open_msn();
    assert_eq!(pl.open_parts.len(), 4);
    assert_eq!(
        pl.preload_hint.as_deref(),
        Some(format!("part-{open}.4.m4s").as_str())
    );
    assert!(d.packager.part(open, 3).is_some());
    assert!(d.packager.part(open, 4).is_none());
    // Every part announced in order, each segment after its parts.
    let ready: Vec<Event> = d
        .events
        .iter()
        .copied()
        .filter(|e| matches!(e, Event::PartReady { .. } | Event::SegmentReady { .. }))
        .collect();
    assert_eq!(
        ready[..6],
        [
            Event::PartReady { msn: 0, part: 0 },
            Event::PartReady { msn: 0, part: 1 },
            Event::PartReady { msn: 0, part: 2 },
            Event::PartReady { msn: 0, part: 3 },
            Event::PartReady { msn: 0, part: 4 },
            Event::SegmentReady { msn: 0 },
        ]
    );
}

#[test]
fn blocking_reload_answers() {
    let (fx, mut d) = packager(PackagerOptions::default());
    // Nothing yet: the first segment and part are worth waiting for.
    assert_eq!(d.packager.reload_status(0, Some(0)), ReloadStatus::Wait);
    assert_eq!(d.packager.reload_status(0, None), ReloadStatus::Wait);
    d.feed(&looped(&fx, 3, 0));
    let pl = d.last().clone();
    let last = pl.open_msn() - 1;
    let open = pl.open_msn();
    let parts = pl.open_parts.len() as u32;
    let p = &d.packager;
    assert!(p.is_ready(last, None));
    assert!(
        p.is_ready(last - 1, Some(7)),
        "an older segment is complete"
    );
    assert_eq!(p.reload_status(open, None), ReloadStatus::Wait);
    assert!(p.is_ready(open, Some(parts - 1)));
    assert_eq!(p.reload_status(open, Some(parts)), ReloadStatus::Wait);
    assert_eq!(p.reload_status(open + 1, Some(0)), ReloadStatus::Wait);
    assert_eq!(p.reload_status(last + 2, None), ReloadStatus::Wait);
    assert_eq!(p.reload_status(last + 3, None), ReloadStatus::BadRequest);
    // Advance Part Limit: 3 / 0.4 s = 7.5 parts.
    assert_eq!(
        p.reload_status(open, Some(parts - 1 + 7)),
        ReloadStatus::Wait
    );
    assert_eq!(
        p.reload_status(open, Some(parts - 1 + 8)),
        ReloadStatus::BadRequest
    );

    // The next part makes (open, parts) ready; a finished stream answers everything.
    let more = looped(&fx, 4, 0);
    let mut n = 0;
    while !d.packager.is_ready(open, Some(parts)) {
        d.feed(&more[more.len() / 4 * 3 + n..][..1]);
        n += 1;
    }
    assert!(d.events.contains(&Event::PartReady {
        msn: open,
        part: parts
    }));
    d.packager.finish();
    assert!(d.packager.is_ready(open + 100, Some(3)));
}

#[test]
fn the_window_rolls_and_old_bytes_expire_after_the_grace() {
    let (fx, mut d) = packager(PackagerOptions {
        window: 3,
        grace: 1,
        ..non_ll()
    });
    d.feed(&looped(&fx, 10, 0));
    let pl = d.last();
    // 20 s: 9 complete segments (0..=8); the window holds 3 (6 s = 3 x target).
    assert_eq!(pl.open_msn(), 9);
    assert_eq!(pl.media_sequence, 6);
    assert_eq!(pl.segments.len(), 3);
    assert!(d.packager.segment("seg-5.m4s").is_some(), "grace");
    assert!(d.packager.segment("seg-4.m4s").is_none());
    assert!(d.packager.segment("seg-0.m4s").is_none());
    assert!(d.packager.segment("init-1.mp4").is_some());
    let expired: Vec<u64> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentExpired { msn } => Some(*msn),
            _ => None,
        })
        .collect();
    assert_eq!(expired, (0..=4).collect::<Vec<_>>());
    // The window widens to keep three target durations when segments are short.
    let (fx, mut d) = packager(PackagerOptions {
        window: 2,
        grace: 0,
        target_duration: Duration::from_secs(1),
        ..non_ll()
    });
    d.feed(&looped(&fx, 4, 0));
    assert_eq!(d.last().segments.len(), 3);
}

#[test]
fn a_discontinuity_keeps_the_timeline_and_is_counted_when_it_leaves() {
    let (fx, mut d) = packager(PackagerOptions {
        window: 3,
        grace: 0,
        ..PackagerOptions::default()
    });
    d.feed(&looped(&fx, 3, 0));
    // The encoder reconnects: its timestamps start again from 5 s, and the wall clock has
    // moved on by 10 minutes.
    d.packager.discontinuity();
    d.after();
    d.clock_ms += 600_000;
    d.feed(&looped(&fx, 3, 5_000));
    let pl = d.last().clone();
    let disc: Vec<_> = pl.segments.iter().filter(|s| s.discontinuity).collect();
    assert_eq!(disc.len(), 1);
    let first_new = disc[0];
    assert_eq!(first_new.msn, 3);
    assert_eq!(first_new.discontinuity_number, 1);
    assert_eq!(
        first_new.map.as_deref(),
        Some("init-1.mp4"),
        "same config, same init"
    );
    // The last segment before was flushed with an estimated last duration (40 ms).
    let before = pl.segment(2).unwrap();
    assert_eq!(before.duration, 2.0);
    // The output timeline continues: the new run starts where the old one's last track
    // ended (here audio, which ran 48 ms past the video).
    let old = fragments(&bytes_of(&d.packager, "seg-2.m4s"));
    let end = |id: u32| {
        let t = old.iter().rev().find_map(|f| f.traf(id)).unwrap();
        t.base_decode_time + t.samples.iter().map(|s| u64::from(s.duration)).sum::<u64>()
    };
    assert_eq!(end(1), 6 * 90_000);
    let audio_end_90k = (end(2) * 90_000).div_ceil(44_100);
    assert!(audio_end_90k > 6 * 90_000 && audio_end_90k < 6 * 90_000 + 9_000);
    let new = fragments(&bytes_of(&d.packager, "seg-3.m4s"));
    assert_eq!(new[0].traf(1).unwrap().base_decode_time, audio_end_90k);
    assert!(new[0].traf(2).unwrap().base_decode_time >= end(2));
    // Its date comes from the wall clock again.
    assert_eq!(
        first_new.program_date_time.as_deref(),
        Some(lunora_hls::program_date_time(1_700_000_000_000 + 600_000 + 5_000).as_str())
    );
    assert!(starts_on_keyframe(&d.packager, "seg-3.m4s"));
    // Roll the tagged segment out of the window: the sequence counts it.
    d.feed(&looped(&fx, 3, 11_000));
    let pl = d.last();
    assert!(pl.media_sequence > 3);
    assert_eq!(pl.discontinuity_sequence, 1);
    assert!(pl.segments.iter().all(|s| !s.discontinuity));
}

#[test]
fn a_config_change_makes_a_new_init_version() {
    let (fx, mut d) = packager(PackagerOptions {
        window: 3,
        grace: 0,
        ..PackagerOptions::default()
    });
    d.feed(&looped(&fx, 2, 0));
    // Same config again: nothing happens.
    d.packager.set_config(fx.config.clone()).unwrap();
    assert_eq!(d.packager.init_version(), 1);
    // The same AAC LC 44.1 kHz mono, signalled with an explicit "no SBR" extension.
    let mut cfg = fx.config.clone();
    let mut asc = BytesMut::from(&cfg.audio.as_ref().unwrap().asc[..]);
    asc.extend_from_slice(&[0x56, 0xE5, 0x00]);
    cfg.audio = Some(AudioConfig { asc: asc.freeze() });
    d.packager.set_config(cfg.clone()).unwrap();
    assert_eq!(d.packager.config(), &cfg);
    d.after();
    assert!(d.events.contains(&Event::InitReady { version: 2 }));
    d.feed(&looped(&fx, 2, 4_000));
    let pl = d.last().clone();
    let s = pl.segments.iter().find(|s| s.discontinuity).unwrap();
    assert_eq!(s.map.as_deref(), Some("init-2.mp4"));
    assert!(d
        .last_text()
        .contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\""));
    let init2 = bytes_of(&d.packager, "init-2.mp4");
    assert_ne!(init2, bytes_of(&d.packager, "init-1.mp4"));
    // Once no held segment uses init 1, it goes.
    d.feed(&looped(&fx, 3, 8_000));
    assert!(d.packager.segment("init-1.mp4").is_none());
    assert_eq!(d.packager.segment("init-2.mp4"), Some(init2));
    // A bad config is refused and changes nothing.
    let bad = StreamConfig {
        audio: Some(AudioConfig {
            asc: Bytes::from_static(b"\x00"),
        }),
        ..cfg
    };
    assert!(matches!(
        d.packager.set_config(bad),
        Err(HlsError::Codec { .. })
    ));
    assert_eq!(d.packager.init_version(), 2);
}

#[test]
fn audio_only_streams_are_cut_on_time() {
    let fx = fixture();
    let cfg = StreamConfig {
        video: None,
        audio: fx.config.audio.clone(),
    };
    let mut d = Driver::new(Packager::new(PackagerOptions::default(), cfg).unwrap());
    let audio: Vec<Sample> = looped(&fx, 6, 0)
        .into_iter()
        .filter(|s| s.track == Track::Audio)
        .collect();
    d.feed(&audio);
    let pl = d.last().clone();
    assert_eq!(pl.target_duration, Some(2));
    assert!(pl.segments.len() >= 4);
    for s in &pl.segments {
        // 86 frames of 1024 samples at 44.1 kHz: the most that fits in 2 s.
        // At most 86 frames of 1024 samples at 44.1 kHz (the most that fit in 2 s); one
        // fewer where the loop's 3 ms audio gaps add up to a resync.
        assert!(
            s.duration <= 86.0 * 1024.0 / 44_100.0 + 1e-5,
            "{}",
            s.duration
        );
        assert!(
            s.duration >= 85.0 * 1024.0 / 44_100.0 - 1e-5,
            "{}",
            s.duration
        );
        assert!(s.parts.iter().all(|p| p.independent && p.duration <= 0.4));
        let f = fragments(&bytes_of(&d.packager, &s.uri));
        assert!(f
            .iter()
            .all(|f| f.trafs.len() == 1 && f.trafs[0].track_id == 2));
    }
    assert_eq!(
        d.packager.push(fx.samples[0].clone(), 0),
        Err(HlsError::UnknownTrack(Track::Video))
    );
}

#[test]
fn the_stream_starts_on_the_first_keyframe_with_the_audio_held_meanwhile() {
    let (fx, mut d) = packager(non_ll());
    // Join mid-GOP: the first 10 video frames (and the audio among them) are before 1 s.
    let samples = looped(&fx, 3, 0);
    let first_key = samples
        .iter()
        .position(|s| s.track == Track::Video && s.keyframe && s.dts > 0)
        .unwrap();
    let key_dts = samples[first_key].dts;
    d.feed(&samples[5..]);
    let f = fragments(&bytes_of(&d.packager, "seg-0.m4s"));
    let v = f[0].traf(1).unwrap();
    let a = f[0].traf(2).unwrap();
    assert_eq!(
        v.base_decode_time, 0,
        "the timeline starts at the first keyframe"
    );
    assert_eq!(v.samples[0].flags, Some(SYNC_SAMPLE_FLAGS));
    // The first audio frame at or after the keyframe, 44.1 kHz ticks from it.
    let first_audio = samples
        .iter()
        .find(|s| s.track == Track::Audio && s.dts >= key_dts)
        .unwrap();
    assert_eq!(
        a.base_decode_time,
        ((first_audio.dts - key_dts) * 44_100 / 90_000) as u64
    );
}

#[test]
fn refused_samples_leave_the_packager_usable() {
    let (fx, mut d) = packager(non_ll());
    let samples = looped(&fx, 2, 0);
    d.feed(&samples[..40]);
    let last_video = samples[..40]
        .iter()
        .rev()
        .find(|s| s.track == Track::Video)
        .unwrap()
        .clone();
    assert!(matches!(
        d.packager.push(last_video, 0),
        Err(HlsError::NonMonotonicDts {
            track: Track::Video,
            ..
        })
    ));
    assert_eq!(
        d.packager.push(Sample::audio(10 * 90_000, Bytes::new()), 0),
        Err(HlsError::EmptySample(Track::Audio))
    );
    let mut bad = samples[40..]
        .iter()
        .find(|s| s.track == Track::Video)
        .unwrap()
        .clone();
    bad.pts = bad.dts + (1 << 40);
    assert!(matches!(
        d.packager.push(bad, 0),
        Err(HlsError::OutOfRange { .. })
    ));
    d.feed(&samples[40..]);
    assert_eq!(d.last().segments.len(), 1);
    d.packager.finish();
    d.after();
    assert!(d.last().ended);
    assert_eq!(d.last().segments.len(), 2);
    assert_eq!(
        d.packager.push(samples[0].clone(), 0),
        Err(HlsError::Finished)
    );
}

#[test]
fn a_gop_past_the_maximum_is_cut_without_a_keyframe() {
    let (fx, mut d) = packager(PackagerOptions {
        max_segment_duration: Duration::from_secs(3),
        ..PackagerOptions::default()
    });
    // Keyframes only every 4 s.
    let samples: Vec<Sample> = looped(&fx, 4, 0)
        .into_iter()
        .map(|mut s| {
            s.keyframe &= s.dts % (4 * 90_000) == 0;
            s
        })
        .collect();
    d.allow_target_change = true;
    d.feed(&samples);
    let pl = d.last();
    assert_eq!(pl.target_duration, Some(3));
    assert_eq!(pl.segments[0].duration, 3.0);
    assert!(!pl.segments[1].parts[0].independent);
    assert!(!starts_on_keyframe(&d.packager, "seg-1.m4s"));
    assert_eq!(
        pl.segments[1].duration, 1.0,
        "cut again at the keyframe at 4 s"
    );
}

#[test]
fn an_event_playlist_keeps_every_segment_and_ends_as_vod() {
    let (fx, mut d) = packager(PackagerOptions {
        kind: PlaylistKind::Event,
        window: 2,
        grace: 0,
        ..PackagerOptions::default()
    });
    d.feed(&looped(&fx, 5, 0));
    assert!(d.last_text().contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
    assert_eq!(d.last().media_sequence, 0);
    assert_eq!(d.last().segments.len(), 4);
    assert!(
        d.packager.segment("seg-0.m4s").is_none(),
        "bytes are the writer's"
    );
    assert!(d.events.contains(&Event::SegmentExpired { msn: 0 }));
    d.packager.finish();
    d.after();
    let text = d.last_text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    assert!(!text.contains("#EXT-X-PART") && !text.contains("PRELOAD-HINT"));
    assert_eq!(d.last().segments.len(), 5);
    assert!(d.last().segments.iter().all(|s| s.duration == 2.0));
}

#[test]
fn rendition_and_master_playlist() {
    let (fx, mut d) = packager(PackagerOptions::default());
    assert_eq!(d.packager.rendition("x"), None);
    assert_eq!(fx.config.codecs().unwrap(), "avc1.64000d,mp4a.40.2");
    assert_eq!(fx.config.resolution().unwrap(), Some((320, 240)));
    d.feed(&looped(&fx, 4, 0));
    let r = d.packager.rendition("source/media.m3u8").unwrap();
    assert_eq!(r.codecs, "avc1.64000d,mp4a.40.2");
    assert_eq!(r.resolution, Some((320, 240)));
    assert_eq!(r.frame_rate, Some(25.0));
    let avg = r.average_bandwidth.unwrap();
    assert!(r.bandwidth >= avg && avg > 50_000, "{} {avg}", r.bandwidth);
    let text = master_playlist(&[r]);
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH="));
    assert!(text.contains(",CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=320x240,FRAME-RATE=25.000\nsource/media.m3u8\n"));
}

#[test]
fn timestamp_jumps_without_a_discontinuity_call_become_discontinuities() {
    let (fx, mut d) = packager(PackagerOptions::default());
    d.feed(&looped(&fx, 2, 0));
    // The source jumps 26 s ahead, then back to 0, and nobody said so.
    d.feed(&looped(&fx, 2, 30_000));
    d.feed(&looped(&fx, 2, 0));
    let jumps: Vec<(Track, i64, i64)> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::TimestampJump { track, from, to } => Some((*track, *from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(jumps.len(), 2, "{jumps:?}");
    assert!(jumps[0].2 - jumps[0].1 > 20 * 90_000);
    assert!(jumps[1].2 < jumps[1].1);
    let pl = d.last();
    assert_eq!(pl.segments.iter().filter(|s| s.discontinuity).count(), 2);
    // Every segment is about 2 s (none swallowed the gap) and the timeline stays continuous.
    assert!(pl.segments.iter().all(|s| s.duration <= 2.0));
    let mut next_video = None;
    for s in &pl.segments {
        for f in fragments(&bytes_of(&d.packager, &s.uri)) {
            let v = f.traf(1).unwrap();
            if let Some(n) = next_video {
                assert!(v.base_decode_time >= n && v.base_decode_time < n + 9_000);
            }
            next_video = Some(
                v.base_decode_time + v.samples.iter().map(|x| u64::from(x.duration)).sum::<u64>(),
            );
        }
    }
}
