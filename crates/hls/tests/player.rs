//! A real player reads what the packager writes: the init segments, media segments and a VOD
//! playlist go to a temporary directory, then `ffprobe` must see H.264 320x240 and AAC with
//! every packet, and `ffmpeg -v error` must decode it all without a message. Skipped (with a
//! note on stderr) only when `ffprobe`/`ffmpeg` are not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bytes::BytesMut;
use lunora_hls::{AudioConfig, Event, Packager, PackagerOptions, PlaylistKind};
use support::*;

fn tools_present() -> bool {
    for tool in ["ffprobe", "ffmpeg"] {
        if Command::new(tool).arg("-version").output().is_err() {
            eprintln!("skipping the player check: `{tool}` is not installed (or not on PATH)");
            return false;
        }
    }
    true
}

fn recording() -> Driver {
    let fx = fixture();
    let opts = PackagerOptions {
        kind: PlaylistKind::Event,
        window: 1000,
        ..PackagerOptions::default()
    };
    Driver::new(Packager::new(opts, fx.config).unwrap())
}

/// Writes every init segment and segment the packager announced, and the playlist.
fn write_out(d: &Driver, dir: &Path) -> std::path::PathBuf {
    for e in &d.events {
        let name = match e {
            Event::InitReady { version } => lunora_hls::init_uri(*version),
            Event::SegmentReady { msn } => lunora_hls::segment_uri(*msn),
            _ => continue,
        };
        std::fs::write(dir.join(&name), bytes_of(&d.packager, &name)).unwrap();
    }
    let playlist = dir.join("playlist.m3u8");
    std::fs::write(&playlist, d.packager.media_playlist().unwrap()).unwrap();
    playlist
}

/// `ffprobe` stream entries, one map per stream.
fn probe(playlist: &Path) -> Vec<BTreeMap<String, String>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .arg("stream=index,codec_type,codec_name,profile,width,height,sample_rate,channels,nb_read_packets")
        .args(["-of", "default=nw=1"])
        .arg(playlist)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffprobe: {stderr}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("ffprobe {}:\n{text}", playlist.display());
    // The HLS demuxer also lists each stream under its program: keep one entry per index.
    let mut streams: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = String::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=').unwrap();
        if k == "index" {
            index = v.to_owned();
        }
        streams
            .entry(index.clone())
            .or_default()
            .insert(k.to_owned(), v.to_owned());
    }
    streams.into_values().collect()
}

fn decode_cleanly(playlist: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(playlist)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg reported: {stderr}");
}

fn stream<'a>(streams: &'a [BTreeMap<String, String>], kind: &str) -> &'a BTreeMap<String, String> {
    streams
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("a {kind} stream in {streams:?}"))
}

#[test]
fn ffmpeg_plays_the_vod_playlist() {
    if !tools_present() {
        return;
    }
    let fx = fixture();
    let mut d = recording();
    d.feed(&looped(&fx, 5, 0));
    d.packager.finish();
    d.after();
    let dir = tempfile::tempdir().unwrap();
    let playlist = write_out(&d, dir.path());
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.ends_with("#EXT-X-ENDLIST\n"));

    let streams = probe(&playlist);
    assert_eq!(streams.len(), 2);
    let v = stream(&streams, "video");
    assert_eq!(
        (
            v["codec_name"].as_str(),
            v["width"].as_str(),
            v["height"].as_str()
        ),
        ("h264", "320", "240")
    );
    assert_eq!(v["profile"], "High");
    assert_eq!(v["nb_read_packets"], "250", "5 x 50 frames");
    let a = stream(&streams, "audio");
    assert_eq!(
        (
            a["codec_name"].as_str(),
            a["sample_rate"].as_str(),
            a["channels"].as_str()
        ),
        ("aac", "44100", "1")
    );
    assert_eq!(a["nb_read_packets"], "430", "5 x 86 frames");
    decode_cleanly(&playlist);
}

#[test]
fn ffmpeg_plays_across_a_discontinuity_and_a_new_init_segment() {
    if !tools_present() {
        return;
    }
    let fx = fixture();
    let mut d = recording();
    d.feed(&looped(&fx, 2, 0));
    // A reconnect: timestamps restart from zero.
    d.packager.discontinuity();
    d.after();
    d.feed(&looped(&fx, 2, 0));
    // A new configuration (the same AAC, signalled with an explicit "no SBR" extension).
    let mut cfg = fx.config.clone();
    let mut asc = BytesMut::from(&cfg.audio.as_ref().unwrap().asc[..]);
    asc.extend_from_slice(&[0x56, 0xE5, 0x00]);
    cfg.audio = Some(AudioConfig { asc: asc.freeze() });
    d.packager.set_config(cfg).unwrap();
    d.after();
    d.feed(&looped(&fx, 2, 30_000));
    d.packager.finish();
    d.after();
    let dir = tempfile::tempdir().unwrap();
    let playlist = write_out(&d, dir.path());
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2);
    assert!(text.contains("#EXT-X-MAP:URI=\"init-2.mp4\""));

    let streams = probe(&playlist);
    let v = stream(&streams, "video");
    assert_eq!(
        (v["codec_name"].as_str(), v["width"].as_str()),
        ("h264", "320")
    );
    assert_eq!(v["nb_read_packets"], "300", "6 x 50 frames");
    assert_eq!(stream(&streams, "audio")["codec_name"], "aac");
    decode_cleanly(&playlist);
}
