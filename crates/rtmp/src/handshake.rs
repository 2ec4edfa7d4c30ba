//! The RTMP handshake, server and client side.
//!
//! Both the simple handshake (S2 echoes C1) and the digest handshake of Flash Player 9+ /
//! FMS are supported. In the digest scheme C1 carries an HMAC-SHA256 digest keyed with the
//! "Genuine Adobe Flash Player 001" key at one of two offsets; the server answers with S1
//! digested under "Genuine Adobe Flash Media Server 001" and an S2 signed with a key derived
//! from the client's digest (the scheme FFmpeg, librtmp/OBS and nginx-rtmp use). A server
//! receiving a C1 without a valid digest falls back to the simple echo handshake.

use bytes::{BufMut, Bytes, BytesMut};

use crate::crypto::{fill_bytes, hmac_sha256};
use crate::HandshakeError;

/// Size of C1/C2/S1/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// The RTMP version in C0/S0.
pub const RTMP_VERSION: u8 = 3;

const DIGEST_LEN: usize = 32;

/// "Genuine Adobe Flash Player 001" followed by the 32-byte constant; the first 30 bytes key
/// C1's digest, all 62 key C2's signature.
const FP_KEY: [u8; 62] = {
    let text = *b"Genuine Adobe Flash Player 001";
    let mut k = [0u8; 62];
    let mut i = 0;
    while i < 30 {
        k[i] = text[i];
        i += 1;
    }
    let mut j = 0;
    while j < 32 {
        k[30 + j] = KEY_TAIL[j];
        j += 1;
    }
    k
};

/// "Genuine Adobe Flash Media Server 001" followed by the same 32-byte constant; the first
/// 36 bytes key S1's digest, all 68 key S2's signature.
const FMS_KEY: [u8; 68] = {
    let text = *b"Genuine Adobe Flash Media Server 001";
    let mut k = [0u8; 68];
    let mut i = 0;
    while i < 36 {
        k[i] = text[i];
        i += 1;
    }
    let mut j = 0;
    while j < 32 {
        k[36 + j] = KEY_TAIL[j];
        j += 1;
    }
    k
};

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

const FP_PARTIAL: usize = 30;
const FMS_PARTIAL: usize = 36;

/// Version we put in S1 (nginx-rtmp's; clients check only that the first byte is >= 3).
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];
/// Version we put in a digest C1 (a Flash Player 9 style version, as FFmpeg sends).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7C, 0x02];

/// Which handshake was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeMode {
    /// Plain echo handshake.
    Simple,
    /// Digest handshake; the digest was at `scheme` 0 (offset from bytes 8..12) or 1
    /// (offset from bytes 772..776).
    Digest {
        /// 0 or 1.
        scheme: u8,
    },
}

/// Offset of the 32-byte digest in a 1536-byte C1/S1 for `scheme` (0 or 1).
fn digest_offset(block: &[u8], scheme: u8) -> usize {
    let base = if scheme == 0 { 8 } else { 772 };
    let sum: usize = block[base..base + 4].iter().map(|&b| usize::from(b)).sum();
    sum % 728 + base + 4
}

fn compute_digest(block: &[u8], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&block[..offset], &block[offset + DIGEST_LEN..]])
}

/// Finds a valid digest in `block` under `key`, trying `order` schemes in turn.
fn find_digest(block: &[u8], key: &[u8], order: [u8; 2]) -> Option<(u8, [u8; DIGEST_LEN])> {
    for scheme in order {
        let off = digest_offset(block, scheme);
        let expected = compute_digest(block, off, key);
        if block[off..off + DIGEST_LEN] == expected {
            return Some((scheme, expected));
        }
    }
    None
}

fn write_digest(block: &mut [u8], scheme: u8, key: &[u8]) -> [u8; DIGEST_LEN] {
    let off = digest_offset(block, scheme);
    let d = compute_digest(block, off, key);
    block[off..off + DIGEST_LEN].copy_from_slice(&d);
    d
}

/// A C2/S2 in the digest scheme: filler then an HMAC over it, keyed by
/// HMAC(full key, peer digest).
fn signed_response(seed: &[u8], label: &[u8], full_key: &[u8], peer_digest: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HANDSHAKE_SIZE];
    fill_bytes(seed, label, &mut out[..HANDSHAKE_SIZE - DIGEST_LEN]);
    let sig = response_signature(&out, full_key, peer_digest);
    out[HANDSHAKE_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
    out
}

fn response_signature(block: &[u8], full_key: &[u8], peer_digest: &[u8]) -> [u8; DIGEST_LEN] {
    let key = hmac_sha256(full_key, &[peer_digest]);
    hmac_sha256(&key, &[&block[..HANDSHAKE_SIZE - DIGEST_LEN]])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// Server side of the handshake: reads C0+C1, answers S0+S1+S2, reads C2.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    state: ServerState,
    buf: Vec<u8>,
    seed: [u8; 32],
    epoch: u32,
    mode: HandshakeMode,
    /// S1's digest, to check the client's C2 signature.
    s1_digest: Option<[u8; DIGEST_LEN]>,
    c2_verified: bool,
}

impl ServerHandshake {
    /// A server handshake. `seed` makes S1/S2 filler (pass random bytes); `epoch` is S1's
    /// time field in milliseconds.
    pub fn new(seed: [u8; 32], epoch: u32) -> Self {
        ServerHandshake {
            state: ServerState::AwaitC0C1,
            buf: Vec::with_capacity(1 + HANDSHAKE_SIZE),
            seed,
            epoch,
            mode: HandshakeMode::Simple,
            s1_digest: None,
            c2_verified: false,
        }
    }

    /// Whether C2 has been received.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// The handshake mode chosen from C1 (meaningful once S0-S2 are sent).
    pub fn mode(&self) -> HandshakeMode {
        self.mode
    }

    /// Whether the client's C2 carried a valid digest-scheme signature (informational:
    /// like nginx-rtmp, a bad C2 is not fatal).
    pub fn c2_verified(&self) -> bool {
        self.c2_verified
    }

    /// Consumes handshake bytes from `input`, pushing anything to send onto `out`. Returns
    /// how many bytes of `input` were consumed; bytes after C2 belong to the chunk stream.
    pub fn handle(&mut self, input: &[u8], out: &mut Vec<Bytes>) -> Result<usize, HandshakeError> {
        let mut used = 0;
        loop {
            let need = match self.state {
                ServerState::AwaitC0C1 => 1 + HANDSHAKE_SIZE,
                ServerState::AwaitC2 => HANDSHAKE_SIZE,
                ServerState::Done => return Ok(used),
            };
            // Check C0 as soon as it arrives.
            if self.state == ServerState::AwaitC0C1 && self.buf.is_empty() {
                if let Some(&v) = input.get(used) {
                    if v != RTMP_VERSION {
                        return Err(HandshakeError::UnsupportedVersion(v));
                    }
                }
            }
            let take = (need - self.buf.len()).min(input.len() - used);
            self.buf.extend_from_slice(&input[used..used + take]);
            used += take;
            if self.buf.len() < need {
                return Ok(used);
            }
            match self.state {
                ServerState::AwaitC0C1 => {
                    let c1 = self.buf[1..].to_vec();
                    self.respond(&c1, out);
                    self.state = ServerState::AwaitC2;
                }
                ServerState::AwaitC2 => {
                    if let Some(d) = self.s1_digest {
                        let sig = response_signature(&self.buf, &FP_KEY, &d);
                        self.c2_verified = self.buf[HANDSHAKE_SIZE - DIGEST_LEN..] == sig;
                    }
                    self.state = ServerState::Done;
                }
                ServerState::Done => {}
            }
            self.buf.clear();
        }
    }

    fn respond(&mut self, c1: &[u8], out: &mut Vec<Bytes>) {
        let mut resp = BytesMut::with_capacity(1 + 2 * HANDSHAKE_SIZE);
        resp.put_u8(RTMP_VERSION);
        let mut s1 = vec![0u8; HANDSHAKE_SIZE];
        s1[..4].copy_from_slice(&self.epoch.to_be_bytes());
        fill_bytes(&self.seed, b"s1", &mut s1[8..]);
        let client_digest = if c1[4..8] == [0, 0, 0, 0] {
            None
        } else {
            find_digest(c1, &FP_KEY[..FP_PARTIAL], [1, 0])
        };
        match client_digest {
            Some((scheme, digest)) => {
                self.mode = HandshakeMode::Digest { scheme };
                s1[4..8].copy_from_slice(&SERVER_VERSION);
                self.s1_digest = Some(write_digest(&mut s1, scheme, &FMS_KEY[..FMS_PARTIAL]));
                resp.put_slice(&s1);
                resp.put_slice(&signed_response(&self.seed, b"s2", &FMS_KEY, &digest));
            }
            None => {
                self.mode = HandshakeMode::Simple;
                resp.put_slice(&s1);
                resp.put_slice(c1);
            }
        }
        out.push(resp.freeze());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    AwaitS0S1S2,
    Done,
}

/// Client side of the handshake: sends C0+C1, reads S0+S1+S2, sends C2.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    state: ClientState,
    buf: Vec<u8>,
    seed: [u8; 32],
    epoch: u32,
    digest: bool,
    c1_digest: Option<[u8; DIGEST_LEN]>,
    mode: HandshakeMode,
}

impl ClientHandshake {
    /// A client handshake; `digest` selects the Flash Player 9 digest scheme (what servers
    /// such as nginx-rtmp, YouTube and FMS expect from encoders) over the simple one.
    pub fn new(seed: [u8; 32], epoch: u32, digest: bool) -> Self {
        ClientHandshake {
            state: ClientState::Start,
            buf: Vec::new(),
            seed,
            epoch,
            digest,
            c1_digest: None,
            mode: HandshakeMode::Simple,
        }
    }

    /// Whether S2 has been received and C2 sent.
    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Digest if the server's S1 carried a valid digest, else simple.
    pub fn mode(&self) -> HandshakeMode {
        self.mode
    }

    /// C0+C1, to send first. Returns `None` after the first call.
    pub fn start(&mut self) -> Option<Bytes> {
        if self.state != ClientState::Start {
            return None;
        }
        let mut c1 = vec![0u8; HANDSHAKE_SIZE];
        c1[..4].copy_from_slice(&self.epoch.to_be_bytes());
        fill_bytes(&self.seed, b"c1", &mut c1[8..]);
        if self.digest {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            self.c1_digest = Some(write_digest(&mut c1, 0, &FP_KEY[..FP_PARTIAL]));
        }
        let mut out = BytesMut::with_capacity(1 + HANDSHAKE_SIZE);
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1);
        self.state = ClientState::AwaitS0S1S2;
        self.buf.reserve(1 + 2 * HANDSHAKE_SIZE);
        Some(out.freeze())
    }

    /// Consumes handshake bytes; pushes C2 onto `out` once S0+S1+S2 are in. Returns bytes
    /// consumed; what follows S2 belongs to the chunk stream.
    pub fn handle(&mut self, input: &[u8], out: &mut Vec<Bytes>) -> Result<usize, HandshakeError> {
        if self.state != ClientState::AwaitS0S1S2 {
            return Ok(0);
        }
        if self.buf.is_empty() {
            if let Some(&v) = input.first() {
                if v != RTMP_VERSION {
                    return Err(HandshakeError::UnsupportedVersion(v));
                }
            }
        }
        let need = 1 + 2 * HANDSHAKE_SIZE;
        let take = (need - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        if self.buf.len() < need {
            return Ok(take);
        }
        let s1 = &self.buf[1..1 + HANDSHAKE_SIZE];
        let s2 = &self.buf[1 + HANDSHAKE_SIZE..];
        let server_digest = match self.c1_digest {
            Some(_) if s1[4..8] != [0, 0, 0, 0] => find_digest(s1, &FMS_KEY[..FMS_PARTIAL], [0, 1]),
            _ => None,
        };
        let c2 = match (server_digest, self.c1_digest) {
            (Some((scheme, sd)), Some(cd)) => {
                if s2[HANDSHAKE_SIZE - DIGEST_LEN..] != response_signature(s2, &FMS_KEY, &cd) {
                    return Err(HandshakeError::S2SignatureMismatch);
                }
                self.mode = HandshakeMode::Digest { scheme };
                Bytes::from(signed_response(&self.seed, b"c2", &FP_KEY, &sd))
            }
            _ => {
                self.mode = HandshakeMode::Simple;
                Bytes::copy_from_slice(s1)
            }
        };
        out.push(c2);
        self.state = ClientState::Done;
        self.buf = Vec::new();
        Ok(take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client: &mut ClientHandshake, server: &mut ServerHandshake) {
        let c0c1 = client.start().unwrap();
        let mut out = Vec::new();
        assert_eq!(server.handle(&c0c1, &mut out).unwrap(), c0c1.len());
        let s = out.concat();
        assert_eq!(s.len(), 1 + 2 * HANDSHAKE_SIZE);
        let mut c2 = Vec::new();
        assert_eq!(client.handle(&s, &mut c2).unwrap(), s.len());
        assert!(client.is_done());
        let c2 = c2.concat();
        let mut none = Vec::new();
        assert_eq!(server.handle(&c2, &mut none).unwrap(), HANDSHAKE_SIZE);
        assert!(none.is_empty());
        assert!(server.is_done());
    }

    #[test]
    fn digest_handshake_verified_both_ways() {
        let mut client = ClientHandshake::new([1; 32], 0, true);
        let mut server = ServerHandshake::new([2; 32], 1000);
        run(&mut client, &mut server);
        assert_eq!(server.mode(), HandshakeMode::Digest { scheme: 0 });
        assert_eq!(client.mode(), HandshakeMode::Digest { scheme: 0 });
        assert!(server.c2_verified());
    }

    #[test]
    fn scheme_1_c1_is_recognised() {
        // Build a C1 with its digest at scheme 1, like an RTMPE-capable client.
        let mut c1 = vec![0u8; HANDSHAKE_SIZE];
        fill_bytes(b"x", b"c1", &mut c1[8..]);
        c1[4..8].copy_from_slice(&[0x80, 0, 7, 2]);
        let cd = write_digest(&mut c1, 1, &FP_KEY[..FP_PARTIAL]);
        let mut server = ServerHandshake::new([2; 32], 0);
        let mut out = Vec::new();
        let mut input = vec![3u8];
        input.extend_from_slice(&c1);
        server.handle(&input, &mut out).unwrap();
        assert_eq!(server.mode(), HandshakeMode::Digest { scheme: 1 });
        let resp = out.concat();
        let s1 = &resp[1..1 + HANDSHAKE_SIZE];
        let s2 = &resp[1 + HANDSHAKE_SIZE..];
        // S1's digest is at the same scheme, under the FMS key.
        assert_eq!(
            find_digest(s1, &FMS_KEY[..FMS_PARTIAL], [1, 1]).map(|x| x.0),
            Some(1)
        );
        assert!(s1[4] >= 3, "FFmpeg checks the S1 version's first byte");
        assert_eq!(
            &s2[HANDSHAKE_SIZE - DIGEST_LEN..],
            &response_signature(s2, &FMS_KEY, &cd)
        );
    }

    #[test]
    fn simple_client_gets_echo() {
        let mut client = ClientHandshake::new([1; 32], 0, false);
        let c0c1 = client.start().unwrap();
        let mut server = ServerHandshake::new([2; 32], 0);
        let mut out = Vec::new();
        server.handle(&c0c1, &mut out).unwrap();
        assert_eq!(server.mode(), HandshakeMode::Simple);
        let resp = out.concat();
        // S2 echoes C1.
        assert_eq!(&resp[1 + HANDSHAKE_SIZE..], &c0c1[1..]);
        let mut c2 = Vec::new();
        client.handle(&resp, &mut c2).unwrap();
        assert_eq!(client.mode(), HandshakeMode::Simple);
        // C2 echoes S1.
        assert_eq!(&c2.concat()[..], &resp[1..1 + HANDSHAKE_SIZE]);
    }

    #[test]
    fn tampered_c1_digest_falls_back_to_simple() {
        let mut client = ClientHandshake::new([1; 32], 0, true);
        let mut c0c1 = client.start().unwrap().to_vec();
        let off = digest_offset(&c0c1[1..], 0) + 1;
        c0c1[off] ^= 0xFF;
        let mut server = ServerHandshake::new([2; 32], 0);
        let mut out = Vec::new();
        server.handle(&c0c1, &mut out).unwrap();
        assert_eq!(server.mode(), HandshakeMode::Simple);
        assert_eq!(&out.concat()[1 + HANDSHAKE_SIZE..], &c0c1[1..]);
    }

    #[test]
    fn tampered_s2_is_rejected_by_client() {
        let mut client = ClientHandshake::new([1; 32], 0, true);
        let c0c1 = client.start().unwrap();
        let mut server = ServerHandshake::new([2; 32], 0);
        let mut out = Vec::new();
        server.handle(&c0c1, &mut out).unwrap();
        let mut resp = out.concat();
        let last = resp.len() - 1;
        resp[last] ^= 1;
        let mut c2 = Vec::new();
        assert_eq!(
            client.handle(&resp, &mut c2),
            Err(HandshakeError::S2SignatureMismatch)
        );
    }

    #[test]
    fn digest_client_accepts_simple_server() {
        // A server that echoes (old/simple servers): S1 version zero, S2 = C1.
        let mut client = ClientHandshake::new([1; 32], 0, true);
        let c0c1 = client.start().unwrap();
        let mut resp = vec![3u8];
        resp.extend_from_slice(&[0u8; HANDSHAKE_SIZE]);
        resp.extend_from_slice(&c0c1[1..]);
        let mut c2 = Vec::new();
        client.handle(&resp, &mut c2).unwrap();
        assert!(client.is_done());
        assert_eq!(client.mode(), HandshakeMode::Simple);
    }

    #[test]
    fn byte_by_byte_and_trailing_data() {
        let mut client = ClientHandshake::new([9; 32], 0, true);
        let mut server = ServerHandshake::new([8; 32], 0);
        let c0c1 = client.start().unwrap();
        let mut out = Vec::new();
        for b in c0c1.iter() {
            assert_eq!(server.handle(std::slice::from_ref(b), &mut out).unwrap(), 1);
        }
        let resp = out.concat();
        let mut c2 = Vec::new();
        for b in resp.iter() {
            client.handle(std::slice::from_ref(b), &mut c2).unwrap();
        }
        let mut c2 = c2.concat();
        c2.extend_from_slice(b"chunk data");
        let mut none = Vec::new();
        assert_eq!(server.handle(&c2, &mut none).unwrap(), HANDSHAKE_SIZE);
        assert!(server.is_done() && server.c2_verified());
    }

    #[test]
    fn wrong_versions_rejected() {
        let mut server = ServerHandshake::new([0; 32], 0);
        assert_eq!(
            server.handle(&[6], &mut Vec::new()),
            Err(HandshakeError::UnsupportedVersion(6))
        );
        let mut client = ClientHandshake::new([0; 32], 0, true);
        client.start();
        assert_eq!(
            client.handle(&[0x47, 0x45, 0x54], &mut Vec::new()),
            Err(HandshakeError::UnsupportedVersion(0x47))
        );
    }
}
