//! The switch driven by simulated encoders on tokio's paused clock: every figure here is
//! deterministic.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::time::{advance, Instant};
use uuid::Uuid;

use super::*;
use crate::{AttachMode, Codec, Engine, Frame, InputHandle, Subscription, Track};

/// 30 fps in 90 kHz ticks.
const FRAME: i64 = 3000;
const FRAME_TIME: Duration = Duration::from_micros(33_333);

/// An encoder: 30 fps video with a keyframe every 30 frames, one AAC frame per video frame;
/// payloads carry its tag so the output shows which input they came from.
struct Encoder {
    input: InputHandle,
    tag: u8,
    /// Its own timeline: dts of frame `n` is `base + n * FRAME`.
    base: i64,
    n: i64,
    /// First frame numbers that are keyframes: `n % 30 == phase`.
    phase: i64,
    running: bool,
}

impl Encoder {
    fn new(input: InputHandle, tag: u8, base: i64, phase: i64, config: &'static [u8]) -> Self {
        let e = Encoder {
            input,
            tag,
            base,
            n: 0,
            phase,
            running: true,
        };
        e.input
            .send(Frame::video_config(Codec::H264, Bytes::from_static(config)))
            .unwrap();
        e.input
            .send(Frame::audio_config(Bytes::from_static(&[0x11, 0x90])))
            .unwrap();
        e
    }

    /// One frame time: the encoder's clock runs even when its frames do not arrive.
    fn step(&mut self) {
        if !self.running {
            self.n += 1;
            return;
        }
        let dts = self.base + self.n * FRAME;
        let key = self.n % 30 == self.phase;
        self.input
            .send(Frame::video(
                Codec::H264,
                key,
                dts,
                dts + FRAME,
                Bytes::from(vec![self.tag; 200]),
            ))
            .unwrap();
        self.input
            .send(Frame::audio(dts, Bytes::from(vec![self.tag; 20])))
            .unwrap();
        self.n += 1;
    }
}

/// What left the bus, with the (paused) time it was read.
#[derive(Default)]
struct Output {
    frames: Vec<(Instant, Arc<Frame>)>,
}

impl Output {
    fn drain(&mut self, sub: &mut Subscription) {
        while let Ok(f) = sub.try_recv() {
            self.frames.push((Instant::now(), f));
        }
    }

    fn video(&self) -> Vec<&Arc<Frame>> {
        self.frames
            .iter()
            .map(|(_, f)| f)
            .filter(|f| f.track == Track::Video && !f.config)
            .collect()
    }

    /// Largest dts step between consecutive video frames, in ticks.
    fn largest_video_gap(&self) -> i64 {
        let v = self.video();
        v.windows(2).map(|w| w[1].dts - w[0].dts).max().unwrap_or(0)
    }

    fn assert_monotonic(&self) {
        for track in [Track::Video, Track::Audio] {
            let dts: Vec<i64> = self
                .frames
                .iter()
                .filter(|(_, f)| f.track == track && !f.config)
                .map(|(_, f)| f.dts)
                .collect();
            assert!(
                dts.windows(2).all(|w| w[0] < w[1]),
                "{track:?} dts must increase: {dts:?}"
            );
        }
    }

    /// Index of the first video frame from `tag` at or after `from`.
    fn first_from(&self, tag: u8, from: usize) -> Option<usize> {
        let v = self.video();
        (from..v.len()).find(|&i| v[i].data[0] == tag)
    }
}

async fn run(
    encoders: &mut [&mut Encoder],
    frames: usize,
    sub: &mut Subscription,
    out: &mut Output,
) {
    for _ in 0..frames {
        for e in encoders.iter_mut() {
            e.step();
        }
        out.drain(sub);
        advance(FRAME_TIME).await;
    }
    out.drain(sub);
}

fn config(mode: RedundancyMode, threshold_ms: u64) -> RedundancyConfig {
    RedundancyConfig {
        mode,
        failover_threshold: Duration::from_millis(threshold_ms),
        health_check_interval: Duration::from_millis(100),
        auto_return: true,
        return_hold: Duration::from_secs(2),
        // The fill signal has its own tests below.
        fill_hold: Duration::ZERO,
        inputs: vec!["primary".into(), "secondary".into()],
    }
}

struct Rig {
    engine: Arc<Engine>,
    channel: Arc<crate::Channel>,
    events: broadcast::Receiver<ChannelEvent>,
    sub: Subscription,
    out: Output,
}

fn rig(cfg: RedundancyConfig) -> Rig {
    let engine = Arc::new(Engine::default());
    let id = Uuid::new_v4();
    engine.configure_sources(id, cfg);
    let events = engine.events();
    let channel = engine.open_channel(id).unwrap();
    let sub = channel.subscribe();
    Rig {
        engine,
        channel,
        events,
        sub,
        out: Output::default(),
    }
}

impl Rig {
    fn encoder(
        &self,
        name: &str,
        tag: u8,
        base: i64,
        phase: i64,
        config: &'static [u8],
    ) -> Encoder {
        let input = self
            .channel
            .attach_input(name, AttachMode::Exclusive)
            .unwrap();
        Encoder::new(input, tag, base, phase, config)
    }

    fn switches(&mut self) -> Vec<(Option<String>, String, SwitchReason)> {
        let mut v = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            if let ChannelEvent::Switched {
                from, to, reason, ..
            } = e
            {
                v.push((from, to, reason));
            }
        }
        v
    }

    fn state(&self, name: &str) -> SourceState {
        self.channel
            .sources_status()
            .inputs
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.state)
            .unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_primary_fails_over_within_the_threshold_and_returns_after_the_hold() {
    let mut r = rig(config(RedundancyMode::AutoFailover, 1000));
    let mut p = r.encoder("primary", b'P', 1_000_000, 0, b"config-p");
    // The backup runs on another clock, with keyframes at another phase and another config.
    let mut s = r.encoder("secondary", b'S', 50_000_000, 13, b"config-s");
    run(&mut [&mut p, &mut s], 90, &mut r.sub, &mut r.out).await;
    assert!(
        r.out.video().iter().all(|f| f.data[0] == b'P'),
        "only the primary"
    );
    assert_eq!(
        r.channel.sources_status().active.as_deref(),
        Some("primary")
    );
    assert_eq!(
        (r.state("primary"), r.state("secondary")),
        (SourceState::Active, SourceState::Standby)
    );
    assert!(
        r.switches().is_empty(),
        "the first selection is not a switch"
    );

    // The primary goes silent (its connection stays up).
    p.running = false;
    let silent_at = r.out.video().len();
    run(&mut [&mut p, &mut s], 90, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.switches(),
        [(
            Some("primary".into()),
            "secondary".into(),
            SwitchReason::PrimaryLost
        )]
    );
    assert_eq!(
        (r.state("primary"), r.state("secondary")),
        (SourceState::Lost, SourceState::Active)
    );
    let first_s = r.out.first_from(b'S', silent_at).unwrap();
    let v = r.out.video();
    assert!(v[first_s].keyframe, "the backup starts on a keyframe");
    // The cached GOP fills the gap: the hole in output time is below the threshold.
    let gap = v[first_s].dts - v[first_s - 1].dts;
    assert!(gap > 0 && gap <= 90_000, "gap {gap}");
    // The backup's config reached the outputs before its frames.
    let cfg_pos = r
        .out
        .frames
        .iter()
        .position(|(_, f)| f.config && f.data.as_ref() == b"config-s")
        .unwrap();
    let first_s_pos = r
        .out
        .frames
        .iter()
        .position(|(_, f)| Arc::ptr_eq(f, v[first_s]))
        .unwrap();
    assert!(cfg_pos < first_s_pos);
    r.out.assert_monotonic();
    // Real pace: 180 frames of wall time went by, and so did about 180 frames of output time.
    let last = v.last().unwrap().dts;
    assert!((last - 179 * FRAME).abs() <= 2 * FRAME, "output at {last}");

    // The primary returns (restarting its clock at 0): after the 2 s hold, back on its next
    // keyframe, with no gap.
    p.running = true;
    p.base = 0;
    p.n = 0;
    let back_at = r.out.video().len();
    run(&mut [&mut p, &mut s], 50, &mut r.sub, &mut r.out).await;
    assert!(r.switches().is_empty(), "not before the hold time");
    assert_eq!(r.out.first_from(b'P', back_at), None);
    run(&mut [&mut p, &mut s], 60, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.switches(),
        [(
            Some("secondary".into()),
            "primary".into(),
            SwitchReason::PrimaryRestored
        )]
    );
    let v = r.out.video();
    let first_p = r.out.first_from(b'P', back_at).unwrap();
    assert!(v[first_p].keyframe);
    let gap = v[first_p].dts - v[first_p - 1].dts;
    assert!(gap <= 2 * FRAME, "a planned switch leaves no gap: {gap}");
    r.out.assert_monotonic();
    let status = r.channel.sources_status();
    assert_eq!(status.switches, 2);
    assert_eq!(
        status.last_switch.unwrap().reason,
        SwitchReason::PrimaryRestored
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_fails_over_at_once() {
    let mut r = rig(config(RedundancyMode::AutoFailover, 5000));
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    let mut s = r.encoder("secondary", b'S', 0, 7, b"c");
    run(&mut [&mut p, &mut s], 60, &mut r.sub, &mut r.out).await;
    let before = r.out.video().len();
    drop(p);
    // No threshold wait: the next backup frame switches.
    run(&mut [&mut s], 1, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.switches(),
        [(
            Some("primary".into()),
            "secondary".into(),
            SwitchReason::PrimaryLost
        )]
    );
    assert_eq!(r.state("primary"), SourceState::Lost);
    let v = r.out.video();
    assert!(v.len() > before && v[before].data[0] == b'S' && v[before].keyframe);
    r.out.assert_monotonic();
    assert!(r.out.largest_video_gap() <= 2 * FRAME);
}

#[tokio::test(start_paused = true)]
async fn a_manual_switch_waits_for_the_keyframe_and_leaves_no_gap() {
    let mut r = rig(config(RedundancyMode::Manual, 1000));
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    let mut s = r.encoder("secondary", b'S', 777_777, 20, b"c");
    run(&mut [&mut p, &mut s], 35, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.channel.switch_to("tertiary"),
        Err(SwitchError::NotConfigured("tertiary".into()))
    );
    r.channel.switch_to("secondary").unwrap();
    assert_eq!(
        r.channel.sources_status().switching_to.as_deref(),
        Some("secondary")
    );
    // The primary is forwarded until the backup's keyframe (frame 50 of it).
    run(&mut [&mut p, &mut s], 20, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.switches(),
        [(
            Some("primary".into()),
            "secondary".into(),
            SwitchReason::Manual
        )]
    );
    let v = r.out.video();
    let first_s = r.out.first_from(b'S', 0).unwrap();
    assert!(v[first_s].keyframe);
    assert!(v[..first_s].iter().all(|f| f.data[0] == b'P'));
    assert!(v[first_s..].iter().all(|f| f.data[0] == b'S'));
    assert!(
        r.out.largest_video_gap() <= 2 * FRAME,
        "{}",
        r.out.largest_video_gap()
    );
    r.out.assert_monotonic();

    // Manual mode never moves by itself: the backup goes silent, the channel stays on it.
    s.running = false;
    run(&mut [&mut p, &mut s], 60, &mut r.sub, &mut r.out).await;
    assert!(r.switches().is_empty());
    let status = r.channel.sources_status();
    assert_eq!(status.active.as_deref(), Some("secondary"));
    assert_eq!(r.state("secondary"), SourceState::Lost);
    assert_eq!(r.state("primary"), SourceState::Standby);
    // Switching to a silent input is refused; to the healthy one it happens at once (the
    // active one is lost), starting with the primary's cached GOP.
    assert_eq!(
        r.channel.switch_to("secondary"),
        Err(SwitchError::NotHealthy("secondary".into()))
    );
    drop(s);
    assert_eq!(
        r.channel.switch_to("secondary"),
        Err(SwitchError::NotConnected("secondary".into()))
    );
    r.channel.switch_to("primary").unwrap();
    r.out.drain(&mut r.sub);
    assert_eq!(
        r.switches(),
        [(
            Some("secondary".into()),
            "primary".into(),
            SwitchReason::Manual
        )]
    );
    let v = r.out.video();
    let first_p = r.out.first_from(b'P', first_s).unwrap();
    assert!(v[first_p].keyframe);
    r.out.assert_monotonic();
}

#[tokio::test(start_paused = true)]
async fn single_mode_never_uses_the_secondary_and_settings_apply_at_once() {
    let mut r = rig(config(RedundancyMode::Single, 1000));
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    let mut s = r.encoder("secondary", b'S', 0, 5, b"c");
    run(&mut [&mut p, &mut s], 30, &mut r.sub, &mut r.out).await;
    p.running = false;
    run(&mut [&mut p, &mut s], 90, &mut r.sub, &mut r.out).await;
    assert!(r.out.video().iter().all(|f| f.data[0] == b'P'));
    assert!(r.switches().is_empty());

    // Auto failover switched on live: the silent primary is left at once.
    r.engine
        .configure_sources(r.channel.id(), config(RedundancyMode::AutoFailover, 1000));
    assert_eq!(r.channel.redundancy().mode, RedundancyMode::AutoFailover);
    assert_eq!(
        r.switches(),
        [(
            Some("primary".into()),
            "secondary".into(),
            SwitchReason::PrimaryLost
        )]
    );
    r.out.drain(&mut r.sub);
    assert!(r.out.video().last().unwrap().data[0] == b'S');
    r.out.assert_monotonic();
}

#[tokio::test(start_paused = true)]
async fn with_no_healthy_input_the_output_waits_and_the_watchdog_reports_the_loss() {
    let mut r = rig(config(RedundancyMode::AutoFailover, 500));
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    run(&mut [&mut p], 30, &mut r.sub, &mut r.out).await;
    p.running = false;
    // No frame arrives from anyone: the watchdog notices.
    run(&mut [&mut p], 21, &mut r.sub, &mut r.out).await;
    tokio::task::yield_now().await;
    assert_eq!(r.state("primary"), SourceState::Lost);
    let mut lost = false;
    while let Ok(e) = r.events.try_recv() {
        lost |= matches!(e, ChannelEvent::InputState { ref input, state: SourceState::Lost, .. } if input == "primary");
    }
    assert!(lost, "an input_state lost event");
    // It comes back: the same input resumes (no switch), at the real pace.
    p.running = true;
    let before = r.out.video().len();
    run(&mut [&mut p], 31, &mut r.sub, &mut r.out).await;
    assert!(r.switches().is_empty());
    let v = r.out.video();
    assert!(v.len() > before);
    let gap = v[before].dts - v[before - 1].dts;
    assert!(gap >= 60_000, "the silence shows in output time: {gap}");
    r.out.assert_monotonic();
    let status = r.channel.sources_status();
    let primary = &status.inputs[0];
    assert!(primary.connected && primary.fps > 0.0 && primary.bitrate_bps > 0);
    assert_eq!(status.inputs[1].state, SourceState::Lost);
    assert!(!status.inputs[1].connected);
}

#[tokio::test(start_paused = true)]
async fn unknown_inputs_are_not_configured_and_never_chosen() {
    let mut r = rig(config(RedundancyMode::AutoFailover, 500));
    let mut x = r.encoder("intruder", b'X', 0, 0, b"c");
    run(&mut [&mut x], 40, &mut r.sub, &mut r.out).await;
    assert!(r.out.video().is_empty());
    assert_eq!(r.state("intruder"), SourceState::NotConfigured);
    assert_eq!(r.channel.sources_status().active, None);
}

#[tokio::test(start_paused = true)]
async fn a_live_input_is_not_taken_over_but_a_silent_one_is() {
    let mut r = rig(config(RedundancyMode::AutoFailover, 1000));
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    run(&mut [&mut p], 30, &mut r.sub, &mut r.out).await;
    let stale = AttachMode::TakeoverStale(Duration::from_secs(1));
    assert!(matches!(
        r.channel.attach_input("primary", stale),
        Err(crate::AttachError::InputBusy { .. })
    ));
    assert!(!p.input.is_cancelled(), "the live publisher goes on");
    // It dies without closing: after a second of silence a new connection replaces it.
    p.running = false;
    run(&mut [&mut p], 31, &mut r.sub, &mut r.out).await;
    let fresh = r.channel.attach_input("primary", stale).unwrap();
    assert!(p.input.is_cancelled());
    drop(fresh);
}

#[tokio::test(start_paused = true)]
async fn a_channel_that_started_on_the_backup_returns_to_the_primary_after_the_hold() {
    let mut r = rig(config(RedundancyMode::AutoFailover, 1000));
    let mut s = r.encoder("secondary", b'S', 0, 0, b"c");
    run(&mut [&mut s], 40, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.channel.sources_status().active.as_deref(),
        Some("secondary")
    );
    // The primary connects later: after the 2 s hold, the switch returns to it on its
    // keyframe, without a gap.
    let mut p = r.encoder("primary", b'P', 5_000_000, 7, b"c");
    let back_at = r.out.video().len();
    run(&mut [&mut s, &mut p], 50, &mut r.sub, &mut r.out).await;
    assert_eq!(r.out.first_from(b'P', back_at), None, "not before the hold");
    run(&mut [&mut s, &mut p], 40, &mut r.sub, &mut r.out).await;
    assert_eq!(
        r.switches(),
        [(
            Some("secondary".into()),
            "primary".into(),
            SwitchReason::PrimaryRestored
        )]
    );
    assert!(r.out.largest_video_gap() <= 2 * FRAME);
    r.out.assert_monotonic();
    assert_eq!(r.channel.sources_status().switches, 1);
}

fn fill_events(r: &mut Rig) -> Vec<FillState> {
    let mut v = Vec::new();
    while let Ok(e) = r.events.try_recv() {
        if let ChannelEvent::Fill { state, .. } = e {
            v.push(state);
        }
    }
    v
}

#[tokio::test(start_paused = true)]
async fn with_no_healthy_input_the_fill_holds_the_outputs_until_a_keyframe_comes_back() {
    let mut cfg = config(RedundancyMode::AutoFailover, 500);
    cfg.fill_hold = Duration::from_secs(10);
    let mut r = rig(cfg);
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    run(&mut [&mut p], 30, &mut r.sub, &mut r.out).await;
    p.running = false;
    let silent_at = r.out.frames.len();
    // 3 s without any input: the outputs get the last keyframe again and silence.
    run(&mut [&mut p], 90, &mut r.sub, &mut r.out).await;
    assert_eq!(fill_events(&mut r), [FillState::Started]);
    assert!(r.channel.sources_status().fill_since_ms.is_some());
    let fill: Vec<&Arc<Frame>> = r.out.frames[silent_at..].iter().map(|(_, f)| f).collect();
    let keys: Vec<i64> = fill
        .iter()
        .filter(|f| f.is_video_keyframe())
        .map(|f| f.dts)
        .collect();
    assert!(
        (2..=3).contains(&keys.len()),
        "a keyframe a second: {keys:?}"
    );
    assert!(fill
        .iter()
        .filter(|f| f.is_video_keyframe())
        .all(|f| f.data[0] == b'P'));
    let silence = fill
        .iter()
        .filter(|f| f.track == Track::Audio && !f.config)
        .count();
    // 48 kHz AAC: 46.9 frames a second, from the threshold on.
    assert!(
        (105..=125).contains(&silence),
        "{silence} silent AAC frames"
    );
    // The fill starts where the input stopped, at the real pace.
    let first_key = keys[0];
    let last_before = r.out.video()[29].dts;
    let gap = first_key - last_before;
    assert!((45_000..=63_000).contains(&gap), "gap {gap}");
    r.out.assert_monotonic();

    // The primary comes back mid-GOP: the fill goes on until its keyframe.
    p.running = true;
    p.n = 10;
    let back_at = r.out.video().len();
    run(&mut [&mut p], 40, &mut r.sub, &mut r.out).await;
    assert_eq!(fill_events(&mut r), [FillState::Ended]);
    let v = r.out.video();
    // Without a parseable SPS/PPS the fill is keyframes alone: the first inter frame is live,
    // and it follows the input's keyframe.
    let first_inter = (back_at..v.len()).find(|&i| !v[i].keyframe).unwrap();
    assert!(v[first_inter - 1].keyframe, "live again on a keyframe");
    assert!(
        first_inter - back_at <= 2,
        "the input's frames before its keyframe are dropped"
    );
    // Keyframes a second apart, then up to a GOP until the input's keyframe.
    assert!(r.out.largest_video_gap() <= 2 * 90_000);
    r.out.assert_monotonic();
    assert_eq!(r.channel.sources_status().fill_since_ms, None);
}

#[tokio::test(start_paused = true)]
async fn the_fill_stops_after_its_hold_and_a_failover_ends_it_at_once() {
    let mut cfg = config(RedundancyMode::AutoFailover, 500);
    cfg.fill_hold = Duration::from_secs(2);
    let mut r = rig(cfg);
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    run(&mut [&mut p], 30, &mut r.sub, &mut r.out).await;
    drop(p);
    run(&mut [], 90, &mut r.sub, &mut r.out).await;
    assert_eq!(
        fill_events(&mut r),
        [FillState::Started, FillState::Expired]
    );
    let n = r.out.frames.len();
    run(&mut [], 30, &mut r.sub, &mut r.out).await;
    assert_eq!(r.out.frames.len(), n, "nothing after the hold");

    // A new primary goes live, is lost again, and a standby backup takes over from the fill.
    let mut p = r.encoder("primary", b'P', 0, 0, b"c");
    run(&mut [&mut p], 30, &mut r.sub, &mut r.out).await;
    drop(p);
    run(&mut [], 30, &mut r.sub, &mut r.out).await;
    assert_eq!(fill_events(&mut r), [FillState::Started]);
    let mut s = r.encoder("secondary", b'S', 0, 0, b"c");
    run(&mut [&mut s], 10, &mut r.sub, &mut r.out).await;
    assert_eq!(fill_events(&mut r), [FillState::Ended]);
    assert_eq!(
        r.channel.sources_status().active.as_deref(),
        Some("secondary")
    );
    assert_eq!(r.out.video().last().unwrap().data[0], b'S');
    r.out.assert_monotonic();
}

#[tokio::test(start_paused = true)]
async fn channels_without_a_source_configuration_do_not_fill() {
    let mut cfg = config(RedundancyMode::Single, 500);
    cfg.inputs.clear();
    cfg.fill_hold = Duration::from_secs(10);
    let mut r = rig(cfg);
    let mut p = r.encoder("cam", b'P', 0, 0, b"c");
    run(&mut [&mut p], 30, &mut r.sub, &mut r.out).await;
    let n = r.out.frames.len();
    drop(p);
    run(&mut [], 60, &mut r.sub, &mut r.out).await;
    assert_eq!(r.out.frames.len(), n);
    assert!(fill_events(&mut r).is_empty());
}
