//! `lunora-bench`: a load generator for RTMP relays (Lunora, nginx-rtmp or any RTMP server).
//!
//! N publishers replay a real FLV file at real-time pace in a loop; M players per stream read
//! what the server relays. The run reports the bitrate players received, the server's CPU
//! seconds per second and memory (from `/proc`), players that stalled (no video for 2 s), and
//! relay latency percentiles measured on one clock: publishers and players live in the same
//! process, and a player finds when its frame was sent by the frame's content.
//!
//! With `--stamp` every video frame carries its send instant in an SEI NAL unit ([`sei`]), and
//! with `--hls ll|segments` the players are LL-HLS or plain HLS players ([`hls`]) of a Lunora
//! server: they read the frames out of the fMP4 parts or segments ([`mp4`]) and record
//! glass-to-glass latency (send → arrival in the player) and time to first frame. With
//! `--recording` every channel is also recorded; the run then reports the server's gauges
//! and disk write rate.
//!
//! `scripts/bench-relay.sh` runs the same scenarios against Lunora and nginx-rtmp, each pinned
//! to its own core, and prints them side by side; `scripts/bench-hls.sh` runs the HLS
//! scenarios against Lunora; `chat` ([`chat`]) measures live-chat fan-out
//! (`scripts/bench-viewers.sh`). Not part of the test suite.

pub mod cameras;
pub mod chat;
pub mod cli;
pub mod conn;
pub mod hls;
pub mod media;
pub mod mp4;
pub mod report;
pub mod run;
pub mod sei;
pub mod stats;
pub mod target;
