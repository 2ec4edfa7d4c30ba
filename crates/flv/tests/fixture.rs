//! Tests against a real capture: `testsrc_320x240_25fps.flv`, made with
//! `ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine -t 2 -c:v libx264 -g 25
//! -crf 35 -preset veryfast -c:a aac -b:a 32k -ac 1 -f flv` (ffprobe: 50 video packets, 88
//! audio packets, H.264 High, AAC LC 44100 Hz mono, keyframes at 0 s and 1 s).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use bytes::{Bytes, BytesMut};
use lunora_flv::{
    annexb_to_avcc, avcc_to_annexb, AudioPacketType, AudioSpecificConfig, AudioTag,
    AvcDecoderConfigurationRecord, FlvHeader, FlvReader, FlvTag, FrameType, SoundFormat, TagType,
    VideoCodec, VideoPacketType, VideoTag,
};

const FILE: &[u8] = include_bytes!("fixtures/testsrc_320x240_25fps.flv");

fn read_all(chunk: usize) -> (FlvHeader, Vec<FlvTag>) {
    let mut r = FlvReader::new();
    let mut tags = Vec::new();
    for piece in FILE.chunks(chunk) {
        r.push(piece);
        while let Some(t) = r.next_tag().unwrap() {
            tags.push(t);
        }
    }
    assert_eq!(r.buffered(), 0, "whole file consumed");
    (r.header().unwrap(), tags)
}

#[test]
fn reads_every_tag_whatever_the_read_size() {
    let (header, tags) = read_all(FILE.len());
    assert!(header.has_audio && header.has_video);
    assert_eq!(tags[0].tag_type, TagType::Script);
    let video = tags.iter().filter(|t| t.tag_type == TagType::Video).count();
    let audio = tags.iter().filter(|t| t.tag_type == TagType::Audio).count();
    // Sequence header + 50 frames + end of sequence; sequence header + 88 frames.
    assert_eq!(video, 52);
    assert_eq!(audio, 89);
    for size in [1, 7, 4096] {
        assert_eq!(read_all(size).1, tags, "read size {size}");
    }
}

#[test]
fn rewriting_the_tags_gives_the_same_file() {
    let (header, tags) = read_all(FILE.len());
    let mut out = BytesMut::new();
    out.extend_from_slice(&header.encode());
    for t in &tags {
        t.encode_into(&mut out).unwrap();
    }
    assert_eq!(&out[..], FILE);
}

#[test]
fn video_sequence_header_and_sps() {
    let (_, tags) = read_all(FILE.len());
    let videos: Vec<VideoTag> = tags
        .iter()
        .filter(|t| t.tag_type == TagType::Video)
        .map(|t| VideoTag::parse(t.data.clone()).unwrap())
        .collect();
    let seq = &videos[0];
    assert_eq!(seq.codec, VideoCodec::Avc);
    assert_eq!(seq.packet, VideoPacketType::SequenceHeader);
    let rec = AvcDecoderConfigurationRecord::parse(seq.payload.clone()).unwrap();
    assert_eq!(rec.nal_length_size, 4);
    assert_eq!(rec.profile_indication, 100);
    assert_eq!((rec.sps.len(), rec.pps.len()), (1, 1));
    let sps = rec.parse_sps().unwrap();
    assert_eq!((sps.width, sps.height), (320, 240));
    assert_eq!(sps.profile_idc, 100);
    assert_eq!(sps.fps(), Some(25.0));
    // Re-building the record from its parameter sets gives the same bytes ffmpeg wrote.
    let rebuilt = AvcDecoderConfigurationRecord::from_parameter_sets(&rec.sps, &rec.pps).unwrap();
    assert_eq!(rebuilt.encode().unwrap(), seq.payload);

    let eos = videos.last().unwrap();
    assert_eq!(eos.packet, VideoPacketType::EndOfSequence);
    let frames = &videos[1..videos.len() - 1];
    assert_eq!(frames.len(), 50);
    let keyframes = frames
        .iter()
        .filter(|v| v.frame_type == FrameType::Keyframe)
        .count();
    assert_eq!(keyframes, 2);
    assert!(frames[0].is_keyframe());
    // B-frames: the first frame is shown 80 ms after it is decoded.
    assert_eq!(frames[0].cts_ms, 80);
    for f in frames {
        assert_eq!(f.packet, VideoPacketType::CodedFrames);
        // Each access unit survives AVCC -> Annex B -> AVCC unchanged.
        let mut annexb = BytesMut::new();
        let n = avcc_to_annexb(&f.payload, 4, &mut annexb).unwrap();
        assert!(n >= 1);
        let mut back = BytesMut::new();
        assert_eq!(annexb_to_avcc(&annexb, &mut back).unwrap(), n);
        assert_eq!(&back[..], &f.payload[..]);
        // And the tag header round-trips.
        assert_eq!(f.encode().unwrap().len(), f.payload.len() + 5);
    }
}

#[test]
fn audio_sequence_header_and_frames() {
    let (_, tags) = read_all(FILE.len());
    let audios: Vec<(u32, AudioTag)> = tags
        .iter()
        .filter(|t| t.tag_type == TagType::Audio)
        .map(|t| (t.timestamp, AudioTag::parse(t.data.clone()).unwrap()))
        .collect();
    let (_, seq) = &audios[0];
    assert_eq!(seq.format, SoundFormat::Aac);
    assert_eq!(seq.packet, AudioPacketType::SequenceHeader);
    let asc = AudioSpecificConfig::parse(&seq.payload).unwrap();
    assert_eq!(asc.object_type, 2);
    assert_eq!(asc.sampling_frequency, 44100);
    assert_eq!(asc.channel_configuration, 1);
    let first = audios[1].0;
    let mut last = first;
    for (ts, a) in &audios[1..] {
        assert_eq!(a.packet, AudioPacketType::Raw);
        assert!(!a.payload.is_empty());
        assert!(*ts >= last, "audio timestamps are monotonic");
        last = *ts;
        assert_eq!(AudioTag::parse(a.encode()).unwrap(), *a);
    }
    // ffprobe: audio dts 57, 80, 103 ... 2077 ms (88 frames of 1024 samples at 44.1 kHz).
    assert_eq!((first, last), (57, 2077));
}

#[test]
fn metadata_names_on_metadata() {
    let (_, tags) = read_all(FILE.len());
    let script: &Bytes = &tags[0].data;
    // AMF0 string "onMetaData".
    assert_eq!(&script[..13], b"\x02\x00\x0aonMetaData");
}
