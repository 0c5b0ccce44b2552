//! Publish -> deliver cost and fan-out throughput of the MessageBus, next to the same
//! workload on `tokio::sync::broadcast` and `crossbeam-channel` (one bounded channel per
//! subscriber) as references.
//!
//! - `latency/*`: one thread publishes one message and takes it out of every subscriber's
//!   queue: the in-thread cost of one publish plus N deliveries, no thread hand-off.
//! - `throughput/*`: one publisher thread, one consumer thread per subscriber; time until every
//!   consumer has received a batch. Queues hold 1024 messages; the bus uses the Block policy,
//!   broadcast overwrites (lagging receivers count skipped messages as received so the run
//!   ends), crossbeam blocks. After each bus run the bus's own publish-to-dequeue latency
//!   histogram (cross-thread) is printed.
//! - `round_trip/*`: two threads ping-pong one 16-byte message through two subscriptions, each
//!   waiting in `recv_blocking` (the path of the C ABI's delivery threads and pull receivers);
//!   `spin=0` sleeps at once, `spin=50us` polls first (`SubscribeOptions::spin`). crossbeam's
//!   blocking `recv` on two bounded channels is the reference. A round trip is two wake-ups, so
//!   on an idle VM the figures are dominated by how fast the hypervisor wakes a vCPU.
//!
//! Run: `cargo bench -p mycelium-transport --bench bus` (about three minutes).

use std::hint::black_box;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[path = "common/consumers.rs"]
mod consumers;

use bytes::Bytes;
use consumers::Consumers;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

const SIZES: [usize; 4] = [16, 256, 4096, 65536];
const SUBSCRIBERS: [usize; 2] = [1, 8];
const CAPACITY: usize = 1024;
const BATCH: u64 = 256;
const TYPE: u16 = 1;

fn payload(size: usize) -> Bytes {
    Bytes::from(vec![0xA5u8; size])
}

fn id(subs: usize, size: usize) -> String {
    format!("subs={subs}/bytes={size}")
}

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for subs in SUBSCRIBERS {
        for size in SIZES {
            let data = payload(size);
            group.throughput(Throughput::Elements(1));

            let bus = MessageBus::new();
            let queues: Vec<_> = (0..subs)
                .map(|_| {
                    bus.subscribe_raw(TYPE, SubscribeOptions::new(CAPACITY, OverflowPolicy::Block))
                })
                .collect();
            group.bench_function(BenchmarkId::new("mycelium", id(subs, size)), |b| {
                b.iter(|| {
                    bus.publish_raw(TYPE, data.clone()).unwrap();
                    for q in &queues {
                        black_box(q.try_recv().unwrap());
                    }
                })
            });

            let (tx, _) = tokio::sync::broadcast::channel::<Bytes>(CAPACITY);
            let mut receivers: Vec<_> = (0..subs).map(|_| tx.subscribe()).collect();
            group.bench_function(BenchmarkId::new("tokio_broadcast", id(subs, size)), |b| {
                b.iter(|| {
                    tx.send(data.clone()).unwrap();
                    for rx in &mut receivers {
                        black_box(rx.try_recv().unwrap());
                    }
                })
            });

            let channels: Vec<_> = (0..subs)
                .map(|_| crossbeam_channel::bounded::<Bytes>(CAPACITY))
                .collect();
            group.bench_function(BenchmarkId::new("crossbeam", id(subs, size)), |b| {
                b.iter(|| {
                    for (tx, _) in &channels {
                        tx.send(data.clone()).unwrap();
                    }
                    for (_, rx) in &channels {
                        black_box(rx.try_recv().unwrap());
                    }
                })
            });
        }
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BATCH));
    for subs in SUBSCRIBERS {
        for size in SIZES {
            let data = payload(size);

            let bus = MessageBus::new();
            let consumers = Consumers::of_bus(&bus, TYPE, subs, CAPACITY);
            group.bench_function(BenchmarkId::new("mycelium", id(subs, size)), |b| {
                b.iter_custom(|iters| {
                    consumers.timed(iters * BATCH, || {
                        bus.publish_raw(TYPE, data.clone()).unwrap()
                    })
                })
            });
            bus.close();
            consumers.join();
            let l = bus.metrics().type_metrics(TYPE).map(|t| t.latency.clone());
            // Nothing was delivered when a filter skipped this benchmark.
            if let Some(l) = l.filter(|l| l.count > 0) {
                println!(
                    "mycelium {}: cross-thread publish->dequeue p50 {} ns, p90 {} ns, p99 {} ns, max {} ns over {} sampled deliveries (1 in 16 per subscriber)",
                    id(subs, size), l.p50_ns, l.p90_ns, l.p99_ns, l.max_ns, l.count
                );
            }

            let (tx, _) = tokio::sync::broadcast::channel::<Bytes>(CAPACITY);
            let consumers = Consumers::of_broadcast(&tx, subs);
            group.bench_function(BenchmarkId::new("tokio_broadcast", id(subs, size)), |b| {
                b.iter_custom(|iters| {
                    consumers.timed(iters * BATCH, || {
                        tx.send(data.clone()).unwrap();
                    })
                })
            });
            drop(tx);
            consumers.join();

            let (senders, consumers) = Consumers::of_crossbeam(subs, CAPACITY);
            group.bench_function(BenchmarkId::new("crossbeam", id(subs, size)), |b| {
                b.iter_custom(|iters| {
                    consumers.timed(iters * BATCH, || {
                        for tx in &senders {
                            tx.send(data.clone()).unwrap();
                        }
                    })
                })
            });
            drop(senders);
            consumers.join();
        }
    }
    group.finish();
}

/// Runs `iters` round trips between this thread and an echo thread; `send`/`recv` are the two
/// directions as seen from this thread, `echo` runs on the other one until its input ends.
fn ping_pong(
    iters: u64,
    send: impl Fn(u64),
    recv: impl Fn() -> u64,
    echo: JoinHandle<()>,
) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        send(i);
        assert_eq!(recv(), i);
    }
    let elapsed = start.elapsed();
    drop(send);
    echo.join().unwrap();
    elapsed
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let seq = |n: u64| Bytes::copy_from_slice(&[n.to_le_bytes(), [0; 8]].concat());
    let unseq = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
    for spin_us in [0u64, 50] {
        group.bench_function(
            BenchmarkId::new("mycelium", format!("spin={spin_us}us")),
            |b| {
                b.iter_custom(|iters| {
                    let bus = MessageBus::new();
                    let opts = SubscribeOptions::new(16, OverflowPolicy::Block)
                        .with_spin(Duration::from_micros(spin_us));
                    let pings = bus.subscribe_raw(1, opts.clone());
                    let pongs = bus.subscribe_raw(2, opts);
                    let echo_bus = bus.clone();
                    let echo = thread::spawn(move || {
                        while let Some(env) = pings.recv_blocking() {
                            echo_bus.publish_raw(2, env.payload).unwrap();
                        }
                    });
                    let closer = bus.clone();
                    let elapsed = ping_pong(
                        iters,
                        |i| bus.publish_raw(1, seq(i)).unwrap(),
                        || unseq(&pongs.recv_blocking().unwrap().payload),
                        thread::spawn(|| {}),
                    );
                    closer.close();
                    echo.join().unwrap();
                    elapsed
                })
            },
        );
    }
    group.bench_function(BenchmarkId::new("crossbeam", "blocking"), |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(16);
            let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(16);
            let echo = thread::spawn(move || {
                while let Ok(v) = ping_rx.recv() {
                    pong_tx.send(v).unwrap();
                }
            });
            ping_pong(
                iters,
                move |i| ping_tx.send(i).unwrap(),
                || pong_rx.recv().unwrap(),
                echo,
            )
        })
    });
    group.finish();
}

/// Named topics (docs/topics.md): publish + take on one thread, 256 B, one subscriber that
/// receives everything, without a topic, with a topic, and with a topic while 10 000 other
/// subscribers with distinct patterns wait on the same type (one of them matching).
fn topics(c: &mut Criterion) {
    use mycelium_transport::{TopicName, TopicPattern};
    let mut group = c.benchmark_group("topics");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    let data = payload(256);
    let topic = TopicName::new("ticks/S4242").unwrap();

    let bus = MessageBus::new();
    let q = bus.subscribe_raw(TYPE, SubscribeOptions::new(CAPACITY, OverflowPolicy::Block));
    group.bench_function("publish_without_topic", |b| {
        b.iter(|| {
            bus.publish_raw(TYPE, data.clone()).unwrap();
            black_box(q.try_recv().unwrap());
        })
    });
    group.bench_function("publish_with_topic", |b| {
        b.iter(|| {
            bus.publish_raw_on(TYPE, &topic, data.clone()).unwrap();
            black_box(q.try_recv().unwrap());
        })
    });

    let patterns: Vec<_> = (0..10_000)
        .map(|i| {
            bus.subscribe_raw(
                TYPE,
                SubscribeOptions::new(4, OverflowPolicy::DropOldest)
                    .with_pattern(TopicPattern::new(&format!("ticks/S{i}")).unwrap()),
            )
        })
        .collect();
    let matching = &patterns[4242];
    group.bench_function("publish_with_topic_10k_patterns", |b| {
        b.iter(|| {
            bus.publish_raw_on(TYPE, &topic, data.clone()).unwrap();
            black_box(q.try_recv().unwrap());
            black_box(matching.try_recv().unwrap());
        })
    });
    group.bench_function("publish_without_topic_10k_patterns", |b| {
        b.iter(|| {
            bus.publish_raw(TYPE, data.clone()).unwrap();
            black_box(q.try_recv().unwrap());
        })
    });
    group.finish();
}

criterion_group!(benches, latency, throughput, round_trip, topics);
criterion_main!(benches);
