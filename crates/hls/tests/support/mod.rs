//! Shared test helpers: the real FLV capture as packager samples, a tiny ISO BMFF box reader,
//! and a driver that feeds a packager and validates every playlist it produces.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test crate uses a part

use bytes::Bytes;
use lunora_flv::{AudioPacketType, AudioTag, FlvReader, TagType, VideoPacketType, VideoTag};
use lunora_hls::validate::{self, MediaPlaylist};
use lunora_hls::{Event, Packager, Sample, StreamConfig, Track};

/// `ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine -t 2 -c:v libx264 -g 25
/// -crf 35 -preset veryfast -c:a aac -b:a 32k -ac 1 -f flv`: 50 video frames (H.264 High, B
/// frames, keyframes at 0 s and 1 s), 88 AAC LC frames (44.1 kHz mono) from 57 ms.
pub const FIXTURE: &[u8] = include_bytes!("../../../flv/tests/fixtures/testsrc_320x240_25fps.flv");

/// Length of the fixture's video in ms (50 frames of 40 ms).
pub const FIXTURE_MS: i64 = 2000;

pub struct Fixture {
    pub config: StreamConfig,
    /// In file order (interleaved), timestamps in 90 kHz.
    pub samples: Vec<Sample>,
}

/// The fixture's codec configuration and samples.
pub fn fixture() -> Fixture {
    let mut reader = FlvReader::new();
    reader.push(FIXTURE);
    let (mut record, mut asc) = (None, None);
    let mut samples = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        let ts = i64::from(tag.timestamp);
        match tag.tag_type {
            TagType::Video => {
                let v = VideoTag::parse(tag.data).unwrap();
                match v.packet {
                    VideoPacketType::SequenceHeader => record = Some(v.payload),
                    VideoPacketType::CodedFrames => samples.push(Sample::video(
                        ts * 90,
                        (ts + i64::from(v.cts_ms)) * 90,
                        v.is_keyframe(),
                        v.payload,
                    )),
                    _ => {}
                }
            }
            TagType::Audio => {
                let a = AudioTag::parse(tag.data).unwrap();
                match a.packet {
                    AudioPacketType::SequenceHeader => asc = Some(a.payload),
                    _ => samples.push(Sample::audio(ts * 90, a.payload)),
                }
            }
            _ => {}
        }
    }
    Fixture {
        config: StreamConfig::h264_aac(record.unwrap(), asc.unwrap()),
        samples,
    }
}

/// The fixture played `times` times back to back (2 s each), with timestamps shifted by
/// `start_ms`. Audio frames that would overlap the next copy's first frame are left out.
pub fn looped(fixture: &Fixture, times: i64, start_ms: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    for k in 0..times {
        let shift = (start_ms + k * FIXTURE_MS) * 90;
        for s in &fixture.samples {
            if s.track == Track::Audio && s.dts >= (FIXTURE_MS + 57 - 23) * 90 {
                continue;
            }
            let mut s = s.clone();
            s.dts += shift;
            s.pts += shift;
            out.push(s);
        }
    }
    out
}

/// Feeds `samples` (wall clock: `clock_ms` + media time), validates every new playlist and
/// every update against the previous one, and returns the events seen.
pub struct Driver {
    pub packager: Packager,
    pub playlists: Vec<MediaPlaylist>,
    pub texts: Vec<String>,
    pub events: Vec<Event>,
    pub clock_ms: i64,
    /// Accept `EXT-X-TARGETDURATION` growing (a stream whose GOP outgrows the target).
    pub allow_target_change: bool,
}

impl Driver {
    pub fn new(packager: Packager) -> Self {
        Driver {
            packager,
            playlists: Vec::new(),
            texts: Vec::new(),
            events: Vec::new(),
            clock_ms: 1_700_000_000_000,
            allow_target_change: false,
        }
    }

    pub fn feed(&mut self, samples: &[Sample]) {
        for s in samples {
            self.packager
                .push(s.clone(), self.clock_ms + s.dts / 90)
                .unwrap();
            self.after();
        }
    }

    /// Drains events and validates the playlist if it changed.
    pub fn after(&mut self) {
        while let Some(e) = self.packager.poll_event() {
            self.events.push(e);
        }
        let Some(text) = self.packager.media_playlist() else {
            return;
        };
        if self.texts.last() == Some(&text) {
            return;
        }
        let p = validate::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        if let Some(prev) = self.playlists.last() {
            let mut prev = prev.clone();
            if self.allow_target_change && p.target_duration >= prev.target_duration {
                prev.target_duration = p.target_duration;
            }
            validate::check_update(&prev, &p).unwrap_or_else(|e| {
                panic!(
                    "{e}\n--- before\n{}\n--- after\n{text}",
                    self.texts.last().unwrap()
                )
            });
        }
        self.playlists.push(p);
        self.texts.push(text);
    }

    pub fn last(&self) -> &MediaPlaylist {
        self.playlists.last().unwrap()
    }

    pub fn last_text(&self) -> &str {
        self.texts.last().unwrap()
    }
}

// ---- ISO BMFF reading ----

/// A box: its type and its payload (after the 8-byte header).
#[derive(Clone, Copy, Debug)]
pub struct Mp4Box<'a> {
    pub kind: [u8; 4],
    pub payload: &'a [u8],
    /// Offset of the box header in the buffer it was read from.
    pub offset: usize,
}

impl<'a> Mp4Box<'a> {
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind.as_bytes()
    }

    pub fn children(&self) -> Vec<Mp4Box<'a>> {
        boxes(self.payload)
    }

    /// The single child of this type.
    pub fn child(&self, kind: &str) -> Mp4Box<'a> {
        let all: Vec<_> = self.children().into_iter().filter(|b| b.is(kind)).collect();
        assert_eq!(all.len(), 1, "one {kind} in {}", self.name());
        all[0]
    }

    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }

    /// The full box's (version, flags) and its body.
    pub fn full(&self) -> (u8, u32, &'a [u8]) {
        let p = self.payload;
        (p[0], u32::from_be_bytes([0, p[1], p[2], p[3]]), &p[4..])
    }
}

/// Reads consecutive boxes that exactly fill `data` (panics otherwise).
pub fn boxes(data: &[u8]) -> Vec<Mp4Box<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        assert!(data.len() - at >= 8, "box header truncated at {at}");
        let size = u32_at(data, at) as usize;
        assert!(
            size >= 8 && at + size <= data.len(),
            "box size {size} at {at}"
        );
        out.push(Mp4Box {
            kind: data[at + 4..at + 8].try_into().unwrap(),
            payload: &data[at + 8..at + size],
            offset: at,
        });
        at += size;
    }
    out
}

pub fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(d[at..at + 4].try_into().unwrap())
}

pub fn u16_at(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(d[at..at + 2].try_into().unwrap())
}

pub fn u64_at(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrunSample {
    pub duration: u32,
    pub size: u32,
    pub flags: Option<u32>,
    pub composition_offset: Option<i32>,
}

/// One `traf`, decoded.
#[derive(Clone, Debug)]
pub struct Traf {
    pub track_id: u32,
    pub base_decode_time: u64,
    pub trun_version: u8,
    pub data_offset: i32,
    pub samples: Vec<TrunSample>,
    /// The samples' bytes, located through the data offset.
    pub data: Vec<Vec<u8>>,
}

/// One `moof` + `mdat` pair, decoded.
#[derive(Clone, Debug)]
pub struct Fragment {
    pub sequence: u32,
    pub trafs: Vec<Traf>,
}

impl Fragment {
    pub fn traf(&self, track_id: u32) -> Option<&Traf> {
        self.trafs.iter().find(|t| t.track_id == track_id)
    }
}

/// Decodes every fragment of a media segment or part; checks that each `moof` is followed by
/// an `mdat` that its runs exactly fill, and that only `styp` may precede.
pub fn fragments(data: &[u8]) -> Vec<Fragment> {
    let top = boxes(data);
    let mut out = Vec::new();
    let mut i = 0;
    if top.first().is_some_and(|b| b.is("styp")) {
        i = 1;
    }
    while i < top.len() {
        let (moof, mdat) = (top[i], top[i + 1]);
        assert!(moof.is("moof") && mdat.is("mdat"), "moof+mdat at box {i}");
        let (_, _, mfhd) = moof.child("mfhd").full();
        let mut trafs = Vec::new();
        let mut covered = 0usize;
        for traf in moof.children().into_iter().filter(|b| b.is("traf")) {
            let (_, tfhd_flags, tfhd) = traf.child("tfhd").full();
            assert_eq!(tfhd_flags, 0x02_0000, "default-base-is-moof only");
            let (tfdt_v, _, tfdt) = traf.child("tfdt").full();
            assert_eq!(tfdt_v, 1);
            let (v, flags, trun) = traf.child("trun").full();
            let count = u32_at(trun, 0) as usize;
            assert!(flags & 1 != 0, "data offset present");
            let data_offset = u32_at(trun, 4) as i32;
            let mut at = 8;
            let mut samples = Vec::new();
            for _ in 0..count {
                let mut s = TrunSample {
                    duration: 0,
                    size: 0,
                    flags: None,
                    composition_offset: None,
                };
                if flags & 0x100 != 0 {
                    s.duration = u32_at(trun, at);
                    at += 4;
                }
                if flags & 0x200 != 0 {
                    s.size = u32_at(trun, at);
                    at += 4;
                }
                if flags & 0x400 != 0 {
                    s.flags = Some(u32_at(trun, at));
                    at += 4;
                }
                if flags & 0x800 != 0 {
                    s.composition_offset = Some(u32_at(trun, at) as i32);
                    at += 4;
                }
                samples.push(s);
            }
            assert_eq!(at, trun.len(), "trun fully read");
            let mut pos = moof.offset + data_offset as usize;
            let mut data_parts = Vec::new();
            for s in &samples {
                data_parts.push(data[pos..pos + s.size as usize].to_vec());
                pos += s.size as usize;
            }
            let mdat_start = mdat.offset + 8;
            let mdat_end = mdat_start + mdat.payload.len();
            assert!(moof.offset + data_offset as usize >= mdat_start && pos <= mdat_end);
            covered += samples.iter().map(|s| s.size as usize).sum::<usize>();
            trafs.push(Traf {
                track_id: u32_at(tfhd, 0),
                base_decode_time: u64_at(tfdt, 0),
                trun_version: v,
                data_offset,
                samples,
                data: data_parts,
            });
        }
        assert_eq!(covered, mdat.payload.len(), "runs fill the mdat");
        out.push(Fragment {
            sequence: u32_at(mfhd, 0),
            trafs,
        });
        i += 2;
    }
    out
}

pub fn bytes_of(p: &Packager, name: &str) -> Bytes {
    p.segment(name).unwrap_or_else(|| panic!("{name} is held"))
}
