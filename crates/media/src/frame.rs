//! The media unit shared by every input and output.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use lunora_rtmp::SharedChunks;
use serde::Serialize;

use crate::wire_file::WireRegion;

/// Timestamps in a [`Frame`] are in ticks of this clock (90 kHz, as in MPEG-TS).
pub const TIMESCALE: i64 = 90_000;

/// Which elementary stream a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    Video,
    Audio,
}

impl Track {
    /// 0 for video, 1 for audio: an index into per-track arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Track::Video => 0,
            Track::Audio => 1,
        }
    }
}

/// The codec of a frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    H264,
    Hevc,
    Aac,
}

impl Codec {
    /// The track this codec is carried on.
    pub fn track(self) -> Track {
        match self {
            Codec::H264 | Codec::Hevc => Track::Video,
            Codec::Aac => Track::Audio,
        }
    }
}

/// One access unit (or one codec configuration record) of one track.
///
/// Frames travel as `Arc<Frame>`: every subscriber of a channel gets a clone of the same
/// `Arc`, so the payload is never copied per subscriber. Once a frame is inside an `Arc` it is
/// immutable; build a new one (e.g. [`Frame::with_timestamps`]) to change it.
pub struct Frame {
    pub track: Track,
    pub codec: Codec,
    /// Codec configuration (AVCDecoderConfigurationRecord, HEVCDecoderConfigurationRecord or
    /// AudioSpecificConfig), not media.
    pub config: bool,
    /// A random access point (IDR / IRAP picture). Audio frames are always independently
    /// decodable; the flag is informational for them.
    pub keyframe: bool,
    /// Decode timestamp, 90 kHz ticks on the channel's output timeline.
    pub dts: i64,
    /// Presentation timestamp, 90 kHz ticks.
    pub pts: i64,
    /// H.264/HEVC: AVCC length-prefixed NAL units (4-byte lengths); AAC: one raw access unit.
    /// For config frames: the configuration record.
    pub data: Bytes,
    wire: WireCache,
}

impl Frame {
    /// A frame with every field given. The wire cache starts empty.
    pub fn new(
        track: Track,
        codec: Codec,
        config: bool,
        keyframe: bool,
        dts: i64,
        pts: i64,
        data: Bytes,
    ) -> Self {
        Self {
            track,
            codec,
            config,
            keyframe,
            dts,
            pts,
            data,
            wire: WireCache::default(),
        }
    }

    /// A video access unit (`codec` is H.264 or HEVC).
    pub fn video(codec: Codec, keyframe: bool, dts: i64, pts: i64, data: Bytes) -> Self {
        Self::new(Track::Video, codec, false, keyframe, dts, pts, data)
    }

    /// A video decoder configuration record.
    pub fn video_config(codec: Codec, data: Bytes) -> Self {
        Self::new(Track::Video, codec, true, false, 0, 0, data)
    }

    /// An AAC access unit.
    pub fn audio(dts: i64, data: Bytes) -> Self {
        Self::new(Track::Audio, Codec::Aac, false, false, dts, dts, data)
    }

    /// An AAC AudioSpecificConfig.
    pub fn audio_config(data: Bytes) -> Self {
        Self::new(Track::Audio, Codec::Aac, true, false, 0, 0, data)
    }

    /// The same frame with other timestamps; the payload is shared, the wire cache is not
    /// (an encoded form depends on the timestamps).
    pub fn with_timestamps(&self, dts: i64, pts: i64) -> Self {
        Self::new(
            self.track,
            self.codec,
            self.config,
            self.keyframe,
            dts,
            pts,
            self.data.clone(),
        )
    }

    /// A video keyframe (not a config record).
    pub fn is_video_keyframe(&self) -> bool {
        self.track == Track::Video && self.keyframe && !self.config
    }

    /// The slot where an output may keep this frame's encoded wire form, so that a fan-out to
    /// many peers of the same protocol serializes it once.
    pub fn wire_cache(&self) -> &WireCache {
        &self.wire
    }
}

impl Clone for Frame {
    /// Clones share the payload; the clone's wire cache starts empty because its public fields
    /// may be changed before it is shared.
    fn clone(&self) -> Self {
        self.with_timestamps(self.dts, self.pts)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("track", &self.track)
            .field("codec", &self.codec)
            .field("config", &self.config)
            .field("keyframe", &self.keyframe)
            .field("dts", &self.dts)
            .field("pts", &self.pts)
            .field("len", &self.data.len())
            .finish()
    }
}

/// What an encoded wire form depends on besides the frame itself: the RTMP chunking
/// parameters of the peers it is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WireKey {
    pub chunk_size: u32,
    pub chunk_stream_id: u32,
    pub message_stream_id: u32,
}

impl WireKey {
    /// RTMP chunks of 4096 bytes, the chunk size Lunora announces to its players.
    pub const fn rtmp(chunk_stream_id: u32, message_stream_id: u32) -> Self {
        Self {
            chunk_size: 4096,
            chunk_stream_id,
            message_stream_id,
        }
    }
}

/// A write-once slot for one encoded form of a frame (see [`Frame::wire_cache`]).
///
/// The first output to ask with a given [`WireKey`] encodes and stores the bytes; later asks
/// with the same key get a cheap clone of them. An ask with another key encodes without
/// caching, so a peer with unusual parameters is still served correctly.
///
/// Once [`PLACE_AFTER`] peers have asked for the same form, it is also placed in shared memory
/// ([`wire_file`](crate::wire_file)), from where each further peer's socket gets it without a
/// copy. A frame sent to one or two peers is never placed: placing is itself a copy.
#[derive(Default)]
pub struct WireCache {
    slot: OnceLock<Encoded>,
}

/// Peers that ask for an encoded form before it is placed in shared memory.
pub const PLACE_AFTER: u32 = 3;

struct Encoded {
    key: WireKey,
    form: Arc<WireForm>,
    asks: AtomicU32,
    placed: OnceLock<Option<WireRegion>>,
}

/// A frame's encoded wire bytes as pieces in order, written with one vectored write: small
/// headers and stretches of the frame's own payload, so encoding copies only the headers.
pub struct WireForm {
    chunks: SharedChunks,
    joined: OnceLock<Bytes>,
}

impl WireForm {
    pub fn new(chunks: SharedChunks) -> Self {
        Self {
            chunks,
            joined: OnceLock::new(),
        }
    }

    pub fn piece_count(&self) -> usize {
        self.chunks.piece_count()
    }

    /// Piece `i` of the wire bytes (empty past the last).
    pub fn piece(&self, i: usize) -> &[u8] {
        self.chunks.piece(i)
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The bytes in one buffer, joined on the first ask and kept (a lone piece is shared): for
    /// the peers that write one buffer (destinations). Placing in shared memory joins a copy
    /// that is not kept.
    pub fn bytes(&self) -> Bytes {
        if self.piece_count() <= 1 {
            return self.chunks.to_bytes();
        }
        self.joined.get_or_init(|| self.chunks.to_bytes()).clone()
    }
}

impl From<Bytes> for WireForm {
    fn from(bytes: Bytes) -> Self {
        Self::new(SharedChunks::whole(bytes))
    }
}

impl WireCache {
    /// The cached form for `key`, encoding it with `encode` if the slot is empty or holds
    /// another key.
    pub fn get_or_encode(&self, key: WireKey, encode: impl FnOnce() -> WireForm) -> Arc<WireForm> {
        let mut encode = Some(encode);
        let cached = self.slot.get_or_init(|| Encoded {
            key,
            form: Arc::new(
                encode
                    .take()
                    .map_or_else(|| WireForm::new(SharedChunks::default()), |f| f()),
            ),
            asks: AtomicU32::new(0),
            placed: OnceLock::new(),
        });
        if cached.key == key {
            return cached.form.clone();
        }
        // Unreachable without a closure: a mismatched key means `get_or_init` did not run it.
        Arc::new(
            encode
                .take()
                .map_or_else(|| WireForm::new(SharedChunks::default()), |f| f()),
        )
    }

    /// The cached form if it was encoded for `key`.
    pub fn get(&self, key: WireKey) -> Option<Arc<WireForm>> {
        match self.slot.get() {
            Some(e) if e.key == key => Some(e.form.clone()),
            _ => None,
        }
    }

    /// Counts one more peer sending the form encoded for `key` and, from the
    /// [`PLACE_AFTER`]th on, answers it in shared memory (placing it the first time). `None`:
    /// send the bytes from [`get_or_encode`](Self::get_or_encode).
    pub fn placed(&self, key: WireKey) -> Option<WireRegion> {
        let e = self.slot.get().filter(|e| e.key == key)?;
        if e.asks.fetch_add(1, Ordering::Relaxed) < PLACE_AFTER {
            return None;
        }
        e.placed
            .get_or_init(|| crate::wire_file::place(&e.form.chunks.to_bytes()))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn wire_cache_encodes_once_per_key() {
        let frame = Arc::new(Frame::audio(0, Bytes::from_static(b"aac")));
        let calls = AtomicUsize::new(0);
        let key = WireKey::rtmp(4, 1);
        let encode = || {
            calls.fetch_add(1, Ordering::Relaxed);
            WireForm::from(Bytes::from(vec![1, 2, 3]))
        };
        let a = frame.wire_cache().get_or_encode(key, encode);
        let b = frame.wire_cache().get_or_encode(key, encode);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&frame.wire_cache().get(key).unwrap(), &a));

        // Another key is served, not cached.
        let other = WireKey {
            chunk_size: 128,
            ..key
        };
        let c = frame
            .wire_cache()
            .get_or_encode(other, || Bytes::from_static(b"x").into());
        assert_eq!(&c.bytes()[..], b"x");
        assert!(frame.wire_cache().get(other).is_none());
    }

    #[test]
    fn clone_shares_payload_not_cache() {
        let frame = Frame::video(Codec::H264, true, 0, 0, Bytes::from(vec![0; 64]));
        let key = WireKey::rtmp(6, 1);
        frame
            .wire_cache()
            .get_or_encode(key, || Bytes::from_static(b"wire").into());
        let copy = frame.with_timestamps(3000, 3000);
        assert_eq!(copy.data.as_ptr(), frame.data.as_ptr());
        assert!(copy.wire_cache().get(key).is_none());
        assert!(frame.clone().wire_cache().get(key).is_none());
    }

    #[test]
    fn a_form_many_peers_send_is_placed_once_in_shared_memory() {
        let frame = Frame::video(Codec::H264, true, 0, 0, Bytes::from(vec![9; 5000]));
        let key = WireKey::rtmp(6, 1);
        assert!(
            frame.wire_cache().placed(key).is_none(),
            "nothing encoded yet"
        );
        let form = frame.wire_cache().get_or_encode(key, || {
            let data = Bytes::from(vec![6; 3990]);
            let chunks =
                lunora_rtmp::encode_message_shared(0, 9, 1, &[5; 5], &data, 6, 128).unwrap();
            WireForm::new(chunks)
        });
        assert!(form.piece_count() > 2);
        for _ in 0..PLACE_AFTER {
            assert!(frame.wire_cache().placed(key).is_none(), "a few peers copy");
        }
        let a = frame
            .wire_cache()
            .placed(key)
            .expect("placed for the next peer");
        let b = frame.wire_cache().placed(key).expect("and the one after");
        assert_eq!(a.to_vec().unwrap(), form.bytes().to_vec());
        assert_eq!(a.len(), form.len());
        assert!(a.same_place(&b), "placed once, not once per peer");
        let other = WireKey::rtmp(4, 1);
        assert!(
            frame.wire_cache().placed(other).is_none(),
            "only the cached key"
        );
    }
}
