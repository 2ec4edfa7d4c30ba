//! `lunora-bench`: a load generator for RTMP relays (Lunora, nginx-rtmp or any RTMP server).
//!
//! N publishers replay a real FLV file at real-time pace in a loop; M players per stream read
//! what the server relays. The run reports the bitrate players received, the server's CPU
//! seconds per second and memory (from `/proc`), players that stalled (no video for 2 s), and
//! relay latency percentiles measured on one clock: publishers and players live in the same
//! process, and a player finds when its frame was sent by the frame's content.
//!
//! `scripts/bench-relay.sh` runs the same scenarios against Lunora and nginx-rtmp, each pinned
//! to its own core, and prints them side by side. Not part of the test suite.

pub mod cameras;
pub mod cli;
pub mod conn;
pub mod media;
pub mod report;
pub mod run;
pub mod stats;
pub mod target;
