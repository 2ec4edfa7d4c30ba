//! One publisher to 1, 100 and 1000 subscribers. Throughput is in subscriber-frames, so the
//! reported time per element is the cost per frame per subscriber.
//!
//! - `bus/send_drain`: `send` then every subscriber `try_recv`s it (no task wake-ups).
//! - `bus/send_lagging`: nobody reads; every queue overflows and skips to keyframes.
//! - `bus/tasks`: one tokio task per subscriber awaiting `recv`, current-thread runtime; each
//!   iteration is a `send` plus a yield that lets every woken subscriber take the frame.
//! - `broadcast/send_drain`: the same as `bus/send_drain` with `tokio::sync::broadcast`, a
//!   shared ring, as the baseline.

// A benchmark is test code: a failed setup should abort it.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lunora_media::bus::{bus, BusConfig, BusSender};
use lunora_media::{Codec, Frame, SubscribeOptions, Subscription};

const COUNTS: [usize; 3] = [1, 100, 1000];

/// A 30-frame GOP of shared frames, sent round robin.
fn gop() -> Vec<Arc<Frame>> {
    (0..30)
        .map(|i| {
            let size = if i == 0 { 60_000 } else { 8_000 };
            Arc::new(Frame::video(
                Codec::H264,
                i == 0,
                i * 3000,
                i * 3000,
                Bytes::from(vec![0u8; size]),
            ))
        })
        .collect()
}

fn setup(n: usize, options: SubscribeOptions) -> (BusSender, Vec<Subscription>) {
    let (tx, bus) = bus(BusConfig::default());
    tx.send(Arc::new(Frame::video_config(
        Codec::H264,
        Bytes::from_static(b"avcc"),
    )))
    .unwrap();
    let subs = (0..n).map(|_| bus.subscribe_with(options)).collect();
    (tx, subs)
}

fn send_drain(c: &mut Criterion) {
    let frames = gop();
    let mut group = c.benchmark_group("bus/send_drain");
    for n in COUNTS {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (tx, mut subs) = setup(n, SubscribeOptions::default());
            for s in &mut subs {
                while s.try_recv().is_ok() {}
            }
            let mut i = 0;
            b.iter(|| {
                tx.send(frames[i % frames.len()].clone()).unwrap();
                i += 1;
                for s in &mut subs {
                    black_box(s.try_recv().unwrap());
                }
            });
        });
    }
    group.finish();
}

fn send_lagging(c: &mut Criterion) {
    let frames = gop();
    let mut group = c.benchmark_group("bus/send_lagging");
    for n in COUNTS {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let options = SubscribeOptions::default().queue_limits(100, 1 << 20);
            let (tx, subs) = setup(n, options);
            let mut i = 0;
            b.iter(|| {
                tx.send(frames[i % frames.len()].clone()).unwrap();
                i += 1;
            });
            black_box(subs);
        });
    }
    group.finish();
}

fn tasks(c: &mut Criterion) {
    let frames = gop();
    let mut group = c.benchmark_group("bus/tasks");
    for n in COUNTS {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let (tx, subs) = rt.block_on(async { setup(n, SubscribeOptions::default()) });
            let readers: Vec<_> = subs
                .into_iter()
                .map(|mut s| {
                    rt.spawn(async move {
                        let mut count = 0u64;
                        while let Some(f) = s.recv().await {
                            black_box(f);
                            count += 1;
                        }
                        count
                    })
                })
                .collect();
            let mut i = 0;
            b.iter_custom(|iters| {
                rt.block_on(async {
                    tokio::task::yield_now().await;
                    let start = Instant::now();
                    for _ in 0..iters {
                        tx.send(frames[i % frames.len()].clone()).unwrap();
                        i += 1;
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                })
            });
            drop(tx);
            rt.block_on(async {
                for r in readers {
                    r.await.unwrap();
                }
            });
        });
    }
    group.finish();
}

fn broadcast_baseline(c: &mut Criterion) {
    let frames = gop();
    let mut group = c.benchmark_group("broadcast/send_drain");
    for n in COUNTS {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (tx, _) = tokio::sync::broadcast::channel::<Arc<Frame>>(4096);
            let mut subs: Vec<_> = (0..n).map(|_| tx.subscribe()).collect();
            let mut i = 0;
            b.iter(|| {
                tx.send(frames[i % frames.len()].clone()).unwrap();
                i += 1;
                for s in &mut subs {
                    black_box(s.try_recv().unwrap());
                }
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = send_drain, send_lagging, tasks, broadcast_baseline
}
criterion_main!(benches);
