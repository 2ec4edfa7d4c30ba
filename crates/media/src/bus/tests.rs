use super::*;
use crate::frame::Codec;
use bytes::Bytes;

fn vcfg(tag: u8) -> Arc<Frame> {
    Arc::new(Frame::video_config(Codec::H264, Bytes::from(vec![1, tag])))
}
fn acfg(tag: u8) -> Arc<Frame> {
    Arc::new(Frame::audio_config(Bytes::from(vec![0x12, tag])))
}
fn key(dts: i64) -> Arc<Frame> {
    Arc::new(Frame::video(
        Codec::H264,
        true,
        dts,
        dts,
        Bytes::from(vec![0xAA; 1000]),
    ))
}
fn inter(dts: i64) -> Arc<Frame> {
    Arc::new(Frame::video(
        Codec::H264,
        false,
        dts,
        dts,
        Bytes::from(vec![0xBB; 100]),
    ))
}
fn aud(dts: i64) -> Arc<Frame> {
    Arc::new(Frame::audio(dts, Bytes::from(vec![0xCC; 10])))
}

/// Everything queued now.
fn drain(sub: &mut Subscription) -> Vec<Arc<Frame>> {
    let mut out = Vec::new();
    while let Ok(frame) = sub.try_recv() {
        out.push(frame);
    }
    out
}

fn same(a: &[Arc<Frame>], b: &[Arc<Frame>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

fn describe(frames: &[Arc<Frame>]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            let kind = match (f.track, f.config, f.keyframe) {
                (Track::Video, true, _) => "vcfg",
                (Track::Audio, true, _) => "acfg",
                (Track::Video, false, true) => "key",
                (Track::Video, false, false) => "inter",
                (Track::Audio, false, _) => "aud",
            };
            format!("{kind}@{}", f.dts)
        })
        .collect()
}

#[test]
fn late_joiner_gets_configs_then_gop_from_keyframe() {
    let (tx, bus) = bus(BusConfig::default());
    let (v, a) = (vcfg(1), acfg(1));
    tx.send(v.clone()).unwrap();
    tx.send(a.clone()).unwrap();
    for f in [key(0), inter(3000), aud(3100), inter(6000)] {
        tx.send(f).unwrap();
    }
    let gop = [key(9000), aud(9100), inter(12000), inter(15000)];
    for f in &gop {
        tx.send(f.clone()).unwrap();
    }

    let mut sub = bus.subscribe();
    let got = drain(&mut sub);
    let mut want = vec![v, a];
    want.extend(gop.iter().cloned());
    assert!(same(&got, &want), "got {:?}", describe(&got));

    // Then live frames follow.
    let live = inter(18000);
    tx.send(live.clone()).unwrap();
    assert!(Arc::ptr_eq(&sub.try_recv().unwrap(), &live));
    assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn live_edge_subscriber_waits_for_next_keyframe() {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(vcfg(1)).unwrap();
    tx.send(key(0)).unwrap();
    tx.send(inter(3000)).unwrap();

    let mut sub = bus.subscribe_with(SubscribeOptions::default().live_edge());
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0"]);
    tx.send(inter(6000)).unwrap();
    tx.send(aud(6100)).unwrap();
    assert!(drain(&mut sub).is_empty());
    tx.send(key(9000)).unwrap();
    tx.send(inter(12000)).unwrap();
    // Configs were already delivered and have not changed: not repeated.
    assert_eq!(describe(&drain(&mut sub)), ["key@9000", "inter@12000"]);
    assert_eq!(sub.stats().skipped_frames, 0, "joining is not skipping");
}

#[test]
fn joiner_before_first_keyframe_starts_on_keyframe() {
    let (tx, bus) = bus(BusConfig::default());
    let mut sub = bus.subscribe();
    tx.send(vcfg(1)).unwrap();
    tx.send(acfg(1)).unwrap();
    tx.send(inter(0)).unwrap();
    tx.send(aud(10)).unwrap();
    tx.send(key(3000)).unwrap();
    tx.send(aud(3010)).unwrap();
    assert_eq!(
        describe(&drain(&mut sub)),
        ["vcfg@0", "acfg@0", "key@3000", "aud@3010"]
    );
}

#[test]
fn config_change_delivered_in_order_and_duplicates_dropped() {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(vcfg(1)).unwrap();
    tx.send(key(0)).unwrap();
    let mut sub = bus.subscribe();
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0", "key@0"]);

    tx.send(vcfg(1)).unwrap(); // same bytes: not repeated
    tx.send(inter(3000)).unwrap();
    let changed = vcfg(2);
    tx.send(changed.clone()).unwrap();
    tx.send(key(6000)).unwrap();
    let got = drain(&mut sub);
    assert_eq!(describe(&got), ["inter@3000", "vcfg@0", "key@6000"]);
    assert!(Arc::ptr_eq(&got[1], &changed));
    assert_eq!(bus.configs().len(), 1);
    assert!(Arc::ptr_eq(&bus.configs()[0], &changed));
}

#[test]
fn config_change_inside_gop_is_replayed_to_late_joiner_in_order() {
    let (tx, bus) = bus(BusConfig::default());
    let a1 = acfg(1);
    tx.send(vcfg(1)).unwrap();
    tx.send(a1.clone()).unwrap();
    tx.send(key(0)).unwrap();
    tx.send(aud(10)).unwrap();
    let a2 = acfg(2);
    tx.send(a2.clone()).unwrap();
    tx.send(aud(20)).unwrap();

    let mut sub = bus.subscribe();
    let got = drain(&mut sub);
    assert_eq!(
        describe(&got),
        ["vcfg@0", "acfg@0", "key@0", "aud@10", "acfg@0", "aud@20"]
    );
    assert!(
        Arc::ptr_eq(&got[1], &a1),
        "configs in force at the keyframe come first"
    );
    assert!(Arc::ptr_eq(&got[4], &a2));
}

#[test]
fn slow_subscriber_skips_to_next_keyframe_without_growing_memory() {
    let (tx, bus) = bus(BusConfig::default());
    let (v, a) = (vcfg(1), acfg(1));
    tx.send(v.clone()).unwrap();
    tx.send(a.clone()).unwrap();
    let limits = SubscribeOptions::default().queue_limits(100, 64 << 10);
    let mut slow = bus.subscribe_with(limits);
    let mut fast = bus.subscribe();

    let first = key(0);
    tx.send(first.clone()).unwrap();
    assert_eq!(drain(&mut fast).len(), 3);
    // GOP of 30 video frames, one audio frame after each video frame.
    let mut sent = 1u64;
    let mut dts = 0;
    let mut video_frames = 1;
    while sent < 10_000 {
        dts += 3000;
        let video = if video_frames % 30 == 0 {
            key(dts)
        } else {
            inter(dts)
        };
        video_frames += 1;
        tx.send(video).unwrap();
        tx.send(aud(dts + 10)).unwrap();
        sent += 2;
        // The slow subscriber's queue stays bounded the whole time.
        let stats = slow.stats();
        assert!(stats.queued_frames <= 100, "{stats:?}");
        assert!(stats.queued_bytes <= 64 << 10, "{stats:?}");
        // The fast one reads as it goes.
        drain(&mut fast);
    }
    let stats = slow.stats();
    assert!(stats.skips >= 10, "{stats:?}");
    assert!(stats.skipped_frames > 9000, "{stats:?}");
    assert_eq!(stats.delivered_frames, 0);
    // Nothing keeps the early frames alive: memory did not grow.
    assert_eq!(Arc::strong_count(&first), 1);
    assert_eq!(fast.stats().skips, 0);

    // It reads now: configs re-sent, then a keyframe, then frames in order.
    let got = drain(&mut slow);
    assert!(Arc::ptr_eq(&got[0], &v), "{:?}", &describe(&got)[..3]);
    assert!(Arc::ptr_eq(&got[1], &a));
    assert!(got[2].is_video_keyframe(), "{:?}", &describe(&got)[..3]);
    assert!(got[3..].iter().all(|f| !f.config));
    assert!(got[2..].windows(2).all(|w| w[0].dts < w[1].dts));
    assert_eq!(got.last().map(|f| f.dts), Some(dts + 10));
    assert_eq!(slow.stats().skipped_frames, stats.skipped_frames);
}

#[test]
fn lagging_subscriber_counts_frames_passed_over_while_waiting() {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(vcfg(1)).unwrap();
    tx.send(key(0)).unwrap();
    let mut sub = bus.subscribe_with(SubscribeOptions::default().queue_limits(4, usize::MAX));
    assert_eq!(drain(&mut sub).len(), 2);
    for i in 1..=6 {
        tx.send(inter(i * 3000)).unwrap();
    }
    // 4 queued, the 5th overflowed them (4 + itself skipped), the 6th passed over.
    let stats = sub.stats();
    assert_eq!(
        (stats.skips, stats.skipped_frames, stats.queued_frames),
        (1, 6, 0)
    );
    tx.send(key(21000)).unwrap();
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0", "key@21000"]);
}

#[tokio::test]
async fn fast_subscribers_see_every_frame_in_order() {
    let (tx, bus) = bus(BusConfig::default());
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut sub = bus.subscribe();
        readers.push(tokio::spawn(async move {
            let mut dts = Vec::new();
            while let Some(frame) = sub.recv().await {
                dts.push(frame.dts);
            }
            (dts, sub.stats())
        }));
    }
    let mut want = Vec::new();
    for i in 0..5000i64 {
        let frame = if i % 50 == 0 { key(i) } else { inter(i) };
        tx.send(frame).unwrap();
        want.push(i);
        if i % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(tx);
    for reader in readers {
        let (dts, stats) = reader.await.unwrap();
        assert_eq!(dts, want);
        assert_eq!(stats.skips, 0);
        assert_eq!(stats.delivered_frames, 5000);
    }
}

#[tokio::test]
async fn recv_waits_for_a_frame() {
    let (tx, bus) = bus(BusConfig::default());
    let mut sub = bus.subscribe();
    let reader = tokio::spawn(async move { sub.recv().await.map(|f| f.dts) });
    tokio::task::yield_now().await;
    tx.send(aud(42)).unwrap();
    assert_eq!(reader.await.unwrap(), Some(42));
}

#[tokio::test]
async fn close_ends_subscribers_after_their_queue() {
    let (tx, bus) = bus(BusConfig::default());
    let mut queued = bus.subscribe();
    let mut waiting = bus.subscribe();
    drain(&mut waiting);
    let waiter = tokio::spawn(async move { waiting.recv().await });
    tx.send(aud(1)).unwrap();
    tx.close();
    assert!(waiter.await.unwrap().is_some());
    assert_eq!(queued.recv().await.map(|f| f.dts), Some(1));
    assert!(queued.recv().await.is_none());
    assert!(matches!(queued.try_recv(), Err(TryRecvError::Closed)));
    assert_eq!(tx.send(aud(2)), Err(BusClosed));
    assert!(bus.is_closed());

    let mut late = bus.subscribe();
    assert!(late.recv().await.is_none());
    assert_eq!(bus.subscriber_count(), 1, "a closed bus registers nobody");
}

#[tokio::test]
async fn dropping_the_sender_closes_the_bus() {
    let (tx, bus) = bus(BusConfig::default());
    let mut sub = bus.subscribe();
    let reader = tokio::spawn(async move { sub.recv().await });
    tokio::task::yield_now().await;
    drop(tx);
    assert!(reader.await.unwrap().is_none());
}

#[test]
fn gop_cache_is_capped_without_keyframes() {
    let config = BusConfig {
        gop_max_frames: 100,
        gop_max_bytes: 1 << 20,
        ..BusConfig::default()
    };
    let (tx, bus) = bus(config);
    tx.send(vcfg(1)).unwrap();
    let first = key(0);
    tx.send(first.clone()).unwrap();
    for i in 1..1000 {
        tx.send(inter(i)).unwrap();
        assert!(bus.stats().gop_frames <= 100);
    }
    assert_eq!(
        bus.stats().gop_frames,
        0,
        "a capped GOP is useless and dropped"
    );
    assert_eq!(Arc::strong_count(&first), 1);

    // A joiner gets the configs and waits for the next keyframe.
    let mut sub = bus.subscribe();
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0"]);
    tx.send(inter(1000)).unwrap();
    tx.send(key(1001)).unwrap();
    assert_eq!(describe(&drain(&mut sub)), ["key@1001"]);

    // The byte cap too.
    for i in 0..2000 {
        tx.send(inter(2000 + i)).unwrap();
        assert!(bus.stats().gop_bytes <= 1 << 20);
    }
}

#[test]
fn gop_larger_than_a_subscriber_queue_starts_it_at_live_edge() {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(vcfg(1)).unwrap();
    tx.send(key(0)).unwrap();
    for i in 1..10 {
        tx.send(inter(i)).unwrap();
    }
    let mut sub = bus.subscribe_with(SubscribeOptions::default().queue_limits(5, usize::MAX));
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0"]);
    tx.send(key(10)).unwrap();
    assert_eq!(describe(&drain(&mut sub)), ["key@10"]);
}

#[test]
fn audio_only_stream_keeps_a_window_and_resumes_on_audio() {
    let config = BusConfig {
        audio_window_frames: 5,
        ..BusConfig::default()
    };
    let (tx, bus) = bus(config);
    tx.send(acfg(1)).unwrap();
    for i in 0..100 {
        tx.send(aud(i)).unwrap();
    }
    assert_eq!(bus.stats().gop_frames, 5);
    let mut sub = bus.subscribe();
    assert_eq!(
        describe(&drain(&mut sub)),
        ["acfg@0", "aud@95", "aud@96", "aud@97", "aud@98", "aud@99"]
    );

    let mut slow = bus.subscribe_with(SubscribeOptions::default().queue_limits(10, usize::MAX));
    for i in 100..130 {
        tx.send(aud(i)).unwrap();
    }
    assert!(slow.stats().skips > 0);
    let got = drain(&mut slow);
    assert_eq!(describe(&got[..1]), ["acfg@0"]);
    assert!(got[1..]
        .iter()
        .all(|f| f.track == Track::Audio && !f.config));
    assert_eq!(got.last().map(|f| f.dts), Some(129));
}

#[test]
fn video_appearing_after_audio_starts_on_a_keyframe() {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(acfg(1)).unwrap();
    tx.send(aud(0)).unwrap();
    let mut sub = bus.subscribe();
    assert_eq!(describe(&drain(&mut sub)), ["acfg@0", "aud@0"]);
    tx.send(vcfg(1)).unwrap();
    tx.send(inter(1)).unwrap();
    tx.send(aud(2)).unwrap();
    tx.send(key(3)).unwrap();
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0", "aud@2", "key@3"]);
    assert_eq!(
        bus.stats().gop_frames,
        1,
        "the audio window gave way to the GOP"
    );
}

#[test]
fn subscribers_share_the_payload() {
    let (tx, bus) = bus(BusConfig::default());
    let mut subs: Vec<_> = (0..50).map(|_| bus.subscribe()).collect();
    let frame = key(0);
    let ptr = frame.data.as_ptr();
    tx.send(frame).unwrap();
    let late = bus.subscribe();
    subs.push(late);
    let got: Vec<_> = subs.iter_mut().map(|s| s.try_recv().unwrap()).collect();
    for f in &got {
        assert_eq!(f.data.as_ptr(), ptr);
        assert!(Arc::ptr_eq(f, &got[0]));
    }
}

#[test]
fn dropping_a_subscription_unregisters_it() {
    let (tx, bus) = bus(BusConfig::default());
    let a = bus.subscribe();
    let b = bus.subscribe();
    assert_eq!(bus.subscriber_count(), 2);
    assert_ne!(a.id(), b.id());
    drop(a);
    assert_eq!(bus.subscriber_count(), 1);
    assert_eq!(bus.subscriber_stats()[0].id, b.id());
    drop(b);
    assert_eq!(bus.subscriber_count(), 0);
    tx.send(aud(0)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn records_time_of_last_frame() {
    let (tx, bus) = bus(BusConfig::default());
    assert_eq!(bus.idle_for(Instant::now()), None);
    tx.send(aud(0)).unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(bus.idle_for(Instant::now()), Some(Duration::from_secs(3)));
    tx.send(aud(1)).unwrap();
    assert_eq!(bus.idle_for(Instant::now()), Some(Duration::ZERO));
    let stats = bus.stats();
    assert_eq!((stats.frames_in, stats.bytes_in), (2, 20));
}

/// A direct subscriber as the RTMP player is one: takes frames while open, closes when the bus
/// queues something for it.
#[derive(Default)]
struct FakeDirect {
    open: std::sync::atomic::AtomicBool,
    /// Declines while open (the player's sink does when its socket is busy).
    busy: std::sync::atomic::AtomicBool,
    taken: Mutex<Vec<Arc<Frame>>>,
}

impl DirectSink for FakeDirect {
    fn deliver(&self, frame: &Arc<Frame>) -> bool {
        if !self.open.load(std::sync::atomic::Ordering::SeqCst)
            || self.busy.load(std::sync::atomic::Ordering::SeqCst)
        {
            return false;
        }
        self.taken.lock().push(frame.clone());
        true
    }

    fn queued(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_direct_subscriber_takes_frames_only_while_nothing_is_queued() {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(vcfg(1)).unwrap();
    tx.send(key(0)).unwrap();
    let mut sub = bus.subscribe();
    let direct = Arc::new(FakeDirect::default());
    assert!(sub.set_direct(direct.clone()).is_ok());
    assert!(
        sub.set_direct(direct.clone()).is_err(),
        "once per subscription"
    );
    // Queued frames first: it may not open while they wait.
    assert!(!sub.when_idle(|| direct.open.store(true, std::sync::atomic::Ordering::SeqCst)));
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0", "key@0"]);
    assert!(sub.when_idle(|| direct.open.store(true, std::sync::atomic::Ordering::SeqCst)));

    // Open and idle: frames go straight to it, nothing is queued, they count as delivered.
    tx.send(inter(3000)).unwrap();
    tx.send(aud(3000)).unwrap();
    assert!(drain(&mut sub).is_empty());
    assert_eq!(describe(&direct.taken.lock()), ["inter@3000", "aud@3000"]);
    assert_eq!(sub.stats().delivered_frames, 4);

    // A config change is queued, and closes it: later media queues behind the config.
    tx.send(vcfg(2)).unwrap();
    assert!(!direct.open.load(std::sync::atomic::Ordering::SeqCst));
    tx.send(inter(6000)).unwrap();
    assert_eq!(describe(&drain(&mut sub)), ["vcfg@0", "inter@6000"]);
    assert_eq!(direct.taken.lock().len(), 2);

    // A declined frame is queued and closes it too: the next one queues behind it.
    assert!(sub.when_idle(|| direct.open.store(true, std::sync::atomic::Ordering::SeqCst)));
    direct.busy.store(true, std::sync::atomic::Ordering::SeqCst);
    tx.send(inter(9000)).unwrap();
    assert!(!direct.open.load(std::sync::atomic::Ordering::SeqCst));
    direct
        .busy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    tx.send(inter(12000)).unwrap();
    assert_eq!(describe(&drain(&mut sub)), ["inter@9000", "inter@12000"]);
    assert_eq!(direct.taken.lock().len(), 2);
}
