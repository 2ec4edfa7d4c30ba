//! Fragmented MP4 (ISO/IEC 14496-12) writing: the init segment (`ftyp` + `moov`), the
//! segment type box (`styp`) and fragments (`moof` + `mdat`).
//!
//! One file carries both tracks (video `track_ID` 1, audio `track_ID` 2): a fragment has one
//! `traf` per track that has samples in it, and one `mdat` with the video samples first.
//! Video runs on a 90 kHz media timescale, audio on its sampling rate. Every `trun` is
//! version 1 (signed composition offsets) and carries per-sample durations and sizes; video
//! runs also carry per-sample flags (sync or not) and composition offsets.

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::{AudioTrack, Tracks, VideoKind, VideoTrack};
use crate::{HlsError, StreamConfig, Track};

/// `sample_depends_on = 2` (an I picture): a sync sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_DURATION: u32 = 0x00_0100;
const TRUN_SIZE: u32 = 0x00_0200;
const TRUN_FLAGS: u32 = 0x00_0400;
const TRUN_CTO: u32 = 0x00_0800;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// The identity matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Writes nested boxes into one buffer, patching each box's size when it is closed.
#[derive(Default)]
struct BoxWriter {
    buf: Vec<u8>,
    open: Vec<usize>,
    too_large: bool,
}

impl BoxWriter {
    fn begin(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.buf.extend_from_slice(kind);
    }

    fn begin_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.begin(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
    }

    fn end(&mut self) {
        if let Some(start) = self.open.pop() {
            match u32::try_from(self.buf.len() - start) {
                Ok(len) => self.patch_u32(start, len),
                Err(_) => self.too_large = true,
            }
        }
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn finish(self) -> Result<Vec<u8>, HlsError> {
        if self.too_large || !self.open.is_empty() {
            return Err(HlsError::OutOfRange {
                what: "box size",
                value: i64::try_from(self.buf.len()).unwrap_or(i64::MAX),
            });
        }
        Ok(self.buf)
    }
}

/// Length of [`styp`].
pub const STYP_LEN: usize = 24;

/// The `styp` box that starts every media segment: brand `msdh`, compatible `msdh`, `msix`.
pub fn styp() -> Bytes {
    let mut w = BoxWriter::default();
    w.begin(b"styp");
    w.bytes(b"msdh");
    w.u32(0);
    w.bytes(b"msdh");
    w.bytes(b"msix");
    w.end();
    Bytes::from(w.buf)
}

/// The init segment for `config`: `ftyp` + `moov` with one `trak` per track and an `mvex`.
pub fn init_segment(config: &StreamConfig) -> Result<Bytes, HlsError> {
    init_segment_for(&Tracks::parse(config)?)
}

pub(crate) fn init_segment_for(tracks: &Tracks) -> Result<Bytes, HlsError> {
    let mut w = BoxWriter::default();
    w.begin(b"ftyp");
    w.bytes(b"iso6");
    w.u32(0);
    for brand in [b"iso6", b"iso5", b"mp41"] {
        w.bytes(brand);
    }
    w.end();

    w.begin(b"moov");
    w.begin_full(b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(1000); // timescale
    w.u32(0); // duration: unknown (fragmented)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8);
    for m in MATRIX {
        w.u32(m);
    }
    w.zeros(24); // pre_defined
    w.u32(3); // next_track_ID: after video (1) and audio (2)
    w.end();
    if let Some(v) = &tracks.video {
        write_video_trak(&mut w, v);
    }
    if let Some(a) = &tracks.audio {
        write_audio_trak(&mut w, a);
    }
    w.begin(b"mvex");
    if tracks.video.is_some() {
        write_trex(&mut w, Track::Video.track_id(), NON_SYNC_SAMPLE_FLAGS);
    }
    if tracks.audio.is_some() {
        write_trex(&mut w, Track::Audio.track_id(), SYNC_SAMPLE_FLAGS);
    }
    w.end();
    w.end();
    Ok(Bytes::from(w.finish()?))
}

fn write_trex(w: &mut BoxWriter, track_id: u32, default_flags: u32) {
    w.begin_full(b"trex", 0, 0);
    w.u32(track_id);
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(default_flags);
    w.end();
}

fn write_tkhd(w: &mut BoxWriter, track_id: u32, audio: bool, width: u16, height: u16) {
    w.begin_full(b"tkhd", 0, 0x000003); // enabled, in movie
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(track_id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if audio { 0x0100 } else { 0 }); // volume
    w.u16(0);
    for m in MATRIX {
        w.u32(m);
    }
    w.u32(u32::from(width) << 16);
    w.u32(u32::from(height) << 16);
    w.end();
}

fn write_mdhd_hdlr(w: &mut BoxWriter, timescale: u32, handler: &[u8; 4], name: &str) {
    w.begin_full(b"mdhd", 0, 0);
    w.u32(0);
    w.u32(0);
    w.u32(timescale);
    w.u32(0);
    w.u16(0x55C4); // ISO-639-2/T "und"
    w.u16(0);
    w.end();
    w.begin_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(handler);
    w.zeros(12);
    w.bytes(name.as_bytes());
    w.u8(0);
    w.end();
}

fn write_dinf(w: &mut BoxWriter) {
    w.begin(b"dinf");
    w.begin_full(b"dref", 0, 0);
    w.u32(1);
    w.begin_full(b"url ", 0, 1); // media in the same file
    w.end();
    w.end();
    w.end();
}

fn write_empty_sample_tables(w: &mut BoxWriter) {
    for kind in [b"stts", b"stsc"] {
        w.begin_full(kind, 0, 0);
        w.u32(0);
        w.end();
    }
    w.begin_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.end();
    w.begin_full(b"stco", 0, 0);
    w.u32(0);
    w.end();
}

fn write_video_trak(w: &mut BoxWriter, v: &VideoTrack) {
    w.begin(b"trak");
    write_tkhd(w, Track::Video.track_id(), false, v.width, v.height);
    w.begin(b"mdia");
    write_mdhd_hdlr(w, crate::TIMESCALE, b"vide", "VideoHandler");
    w.begin(b"minf");
    w.begin_full(b"vmhd", 0, 1);
    w.zeros(8); // graphicsmode, opcolor
    w.end();
    write_dinf(w);
    w.begin(b"stbl");
    w.begin_full(b"stsd", 0, 0);
    w.u32(1);
    let (entry, config) = match v.kind {
        VideoKind::H264 => (b"avc1", b"avcC"),
        VideoKind::Hevc => (b"hvc1", b"hvcC"),
    };
    w.begin(entry);
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved
    w.u16(v.width);
    w.u16(v.height);
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame_count
    w.zeros(32); // compressorname
    w.u16(0x0018); // depth
    w.u16(0xFFFF); // pre_defined = -1
    w.begin(config);
    w.bytes(&v.record);
    w.end();
    w.end();
    w.end(); // stsd
    write_empty_sample_tables(w);
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

fn write_audio_trak(w: &mut BoxWriter, a: &AudioTrack) {
    w.begin(b"trak");
    write_tkhd(w, Track::Audio.track_id(), true, 0, 0);
    w.begin(b"mdia");
    write_mdhd_hdlr(w, a.sample_rate, b"soun", "SoundHandler");
    w.begin(b"minf");
    w.begin_full(b"smhd", 0, 0);
    w.u32(0); // balance, reserved
    w.end();
    write_dinf(w);
    w.begin(b"stbl");
    w.begin_full(b"stsd", 0, 0);
    w.u32(1);
    w.begin(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8);
    w.u16(a.channels);
    w.u16(16); // samplesize
    w.u32(0); // pre_defined, reserved
    w.u32(a.sample_rate.min(0xFFFF) << 16);
    write_esds(w, &a.asc);
    w.end(); // mp4a
    w.end(); // stsd
    write_empty_sample_tables(w);
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

/// An MPEG-4 descriptor header: tag and a length in 7-bit groups.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    let mut groups = Vec::with_capacity(4);
    let mut rest = len;
    loop {
        groups.push((rest & 0x7F) as u8);
        rest >>= 7;
        if rest == 0 || groups.len() == 4 {
            break;
        }
    }
    while let Some(g) = groups.pop() {
        out.push(if groups.is_empty() { g } else { g | 0x80 });
    }
    out.extend_from_slice(body);
}

fn write_esds(w: &mut BoxWriter, asc: &[u8]) {
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, asc);
    let mut dcd_body = vec![
        0x40, // objectTypeIndication: MPEG-4 audio
        0x15, // streamType audio (5) << 2 | reserved 1
        0, 0, 0, // bufferSizeDB
        0, 0, 0, 0, // maxBitrate
        0, 0, 0, 0, // avgBitrate
    ];
    dcd_body.extend_from_slice(&dsi);
    let mut dcd = Vec::new();
    descriptor(&mut dcd, 0x04, &dcd_body);
    let mut es_body = vec![0, Track::Audio.track_id() as u8, 0]; // ES_ID, flags
    es_body.extend_from_slice(&dcd);
    descriptor(&mut es_body, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
    let mut es = Vec::new();
    descriptor(&mut es, 0x03, &es_body);
    w.begin_full(b"esds", 0, 0);
    w.bytes(&es);
    w.end();
}

/// One sample of a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentSample {
    /// Duration in the track's media timescale.
    pub duration: u32,
    /// `pts - dts` in the track's media timescale.
    pub composition_offset: i32,
    /// A sync sample (keyframe); always true for audio.
    pub sync: bool,
    /// The sample's bytes.
    pub data: Bytes,
}

/// The run of one track in a fragment.
#[derive(Clone, Copy, Debug)]
pub struct TrackFragment<'a> {
    /// Which track.
    pub track: Track,
    /// Decode time of the first sample in the track's media timescale (`tfdt`).
    pub base_decode_time: u64,
    /// The samples, in decode order, contiguous in time.
    pub samples: &'a [FragmentSample],
}

/// One fragment: `moof` (`mfhd`, then a `traf` with `tfhd`, `tfdt`, `trun` per non-empty
/// track) and one `mdat` holding the tracks' samples in the same order.
pub fn fragment(sequence_number: u32, tracks: &[TrackFragment<'_>]) -> Result<Bytes, HlsError> {
    fragment_with_prefix(&[], sequence_number, tracks)
}

/// [`fragment`] after `prefix` (a `styp`) in the same buffer.
pub fn fragment_with_prefix(
    prefix: &[u8],
    sequence_number: u32,
    tracks: &[TrackFragment<'_>],
) -> Result<Bytes, HlsError> {
    let tracks: Vec<&TrackFragment<'_>> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    let mut w = BoxWriter::default();
    w.begin(b"moof");
    w.begin_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.end();
    let mut offset_slots = Vec::with_capacity(tracks.len());
    for t in &tracks {
        let video = t.track == Track::Video;
        w.begin(b"traf");
        w.begin_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
        w.u32(t.track.track_id());
        w.end();
        w.begin_full(b"tfdt", 1, 0);
        w.u64(t.base_decode_time);
        w.end();
        let mut flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE;
        if video {
            flags |= TRUN_FLAGS | TRUN_CTO;
        }
        w.begin_full(b"trun", 1, flags);
        w.u32(u32::try_from(t.samples.len()).unwrap_or(u32::MAX));
        offset_slots.push(w.len());
        w.i32(0); // data_offset, patched below
        for s in t.samples {
            w.u32(s.duration);
            w.u32(u32::try_from(s.data.len()).unwrap_or(u32::MAX));
            if video {
                w.u32(if s.sync {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                });
                w.i32(s.composition_offset);
            }
        }
        w.end(); // trun
        w.end(); // traf
    }
    w.end(); // moof
    let moof_len = w.len();
    let mut data_start = moof_len + 8;
    let mut payload = 0usize;
    for (t, slot) in tracks.iter().zip(offset_slots) {
        let offset = i32::try_from(data_start).map_err(|_| HlsError::OutOfRange {
            what: "trun data offset",
            value: i64::try_from(data_start).unwrap_or(i64::MAX),
        })?;
        w.patch_u32(slot, offset as u32);
        let len: usize = t.samples.iter().map(|s| s.data.len()).sum();
        data_start += len;
        payload += len;
    }
    let moof = w.finish()?;
    let mdat_len = u32::try_from(payload + 8).map_err(|_| HlsError::OutOfRange {
        what: "mdat size",
        value: i64::try_from(payload).unwrap_or(i64::MAX),
    })?;
    let mut out = BytesMut::with_capacity(prefix.len() + moof.len() + 8 + payload);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&moof);
    out.put_u32(mdat_len);
    out.extend_from_slice(b"mdat");
    for t in &tracks {
        for s in t.samples {
            out.extend_from_slice(&s.data);
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_lengths_use_seven_bit_groups() {
        let mut out = Vec::new();
        descriptor(&mut out, 5, &[1, 2]);
        assert_eq!(out, [5, 2, 1, 2]);
        let mut out = Vec::new();
        descriptor(&mut out, 4, &[0; 200]);
        assert_eq!(&out[..3], &[4, 0x81, 0x48]);
        assert_eq!(out.len(), 203);
    }

    #[test]
    fn styp_is_byte_exact() {
        assert_eq!(styp().len(), STYP_LEN);
        assert_eq!(
            &styp()[..],
            b"\x00\x00\x00\x18stypmsdh\x00\x00\x00\x00msdhmsix"
        );
    }

    #[test]
    fn audio_fragment_is_byte_exact() {
        let samples = [
            FragmentSample {
                duration: 1024,
                composition_offset: 0,
                sync: true,
                data: Bytes::from_static(b"ab"),
            },
            FragmentSample {
                duration: 1024,
                composition_offset: 0,
                sync: true,
                data: Bytes::from_static(b"c"),
            },
        ];
        let frag = fragment(
            7,
            &[TrackFragment {
                track: Track::Audio,
                base_decode_time: 0x1_0000_0002,
                samples: &samples,
            }],
        )
        .unwrap();
        let mut expected = Vec::new();
        // moof(8) + mfhd(16) + traf(8 + tfhd 16 + tfdt 20 + trun 20 + 2 * 8) = 104
        expected.extend_from_slice(b"\x00\x00\x00\x68moof");
        expected.extend_from_slice(b"\x00\x00\x00\x10mfhd\x00\x00\x00\x00\x00\x00\x00\x07");
        expected.extend_from_slice(b"\x00\x00\x00\x50traf");
        expected.extend_from_slice(b"\x00\x00\x00\x10tfhd\x00\x02\x00\x00\x00\x00\x00\x02");
        expected.extend_from_slice(b"\x00\x00\x00\x14tfdt\x01\x00\x00\x00");
        expected.extend_from_slice(&0x1_0000_0002u64.to_be_bytes());
        expected.extend_from_slice(b"\x00\x00\x00\x24trun\x01\x00\x03\x01");
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.extend_from_slice(&(104i32 + 8).to_be_bytes());
        expected.extend_from_slice(&[0, 0, 4, 0, 0, 0, 0, 2, 0, 0, 4, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(b"\x00\x00\x00\x0bmdatabc");
        assert_eq!(&frag[..], &expected[..]);
    }
}
