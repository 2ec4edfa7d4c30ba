//! Test harness: a client and a server session wired back to back in memory (after
//! quinn-proto's `Pair`), and a tiny deterministic PRNG.

#![allow(dead_code, clippy::unwrap_used)]

use lunora_rtmp::{
    ClientConfig, ClientEvent, ClientRole, ClientSession, ServerConfig, ServerEvent, ServerSession,
};

/// xorshift64*: deterministic, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The FLV capture shared with the lunora-flv tests.
pub const FIXTURE_FLV: &[u8] =
    include_bytes!("../../../flv/tests/fixtures/testsrc_320x240_25fps.flv");

pub struct Pair {
    pub client: ClientSession,
    pub server: ServerSession,
    pub client_events: Vec<ClientEvent>,
    pub server_events: Vec<ServerEvent>,
    /// When set, bytes are delivered in random-sized pieces.
    pub split: Option<Rng>,
    /// Every byte the client sent, for replaying.
    pub client_wire: Vec<u8>,
}

impl Pair {
    pub fn new(client: ClientConfig, role: ClientRole, server: ServerConfig) -> Self {
        Pair {
            client: ClientSession::new(client, role),
            server: ServerSession::new(server),
            client_events: Vec::new(),
            server_events: Vec::new(),
            split: None,
            client_wire: Vec::new(),
        }
    }

    pub fn publish(key: &str) -> Self {
        Self::new(
            ClientConfig::new("live", "rtmp://127.0.0.1/live"),
            ClientRole::Publish {
                stream_key: key.into(),
            },
            ServerConfig::default(),
        )
    }

    pub fn play(name: &str) -> Self {
        Self::new(
            ClientConfig::new("live", "rtmp://127.0.0.1/live"),
            ClientRole::Play {
                stream_name: name.into(),
            },
            ServerConfig::default(),
        )
    }

    fn deliver(split: &mut Option<Rng>, data: &[u8], mut f: impl FnMut(&[u8])) {
        match split {
            None => f(data),
            Some(rng) => {
                let mut pos = 0;
                while pos < data.len() {
                    let n = 1 + rng.below(700);
                    let end = (pos + n).min(data.len());
                    f(&data[pos..end]);
                    pos = end;
                }
            }
        }
    }

    /// Moves bytes both ways until neither side has anything to send; collects events.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(b) = self.client.poll_transmit() {
                moved = true;
                self.client_wire.extend_from_slice(&b);
                let server = &mut self.server;
                Self::deliver(&mut self.split, &b, |d| server.handle_input(d).unwrap());
            }
            while let Some(b) = self.server.poll_transmit() {
                moved = true;
                let client = &mut self.client;
                Self::deliver(&mut self.split, &b, |d| client.handle_input(d).unwrap());
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("pair did not settle");
    }

    pub fn take_client_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.client_events)
    }

    pub fn take_server_events(&mut self) -> Vec<ServerEvent> {
        std::mem::take(&mut self.server_events)
    }
}
