//! In-process request/reply round trip next to the pub/sub round trip it is built beside.
//!
//! - `request_reply/request`: one thread calls `request_raw` (first reply wins) on a service
//!   whose responder is `serve_raw_with` echoing the 16-byte payload on its own thread: two
//!   thread wake-ups per round trip, plus the correlation-id inbox.
//! - `request_reply/pubsub`: the same two threads ping-pong the payload through two ordinary
//!   subscriptions waiting in `recv_blocking` (spin 0), as `bus`'s `round_trip` group does.
//!
//! Run: `cargo bench -p mycelium-transport --bench request_reply` (about 20 s).

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use mycelium_transport::{MessageBus, OverflowPolicy, ServeOptions, SubscribeOptions};

const PAYLOAD: &[u8; 16] = b"0123456789abcdef";

fn round_trips(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_reply");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("request", |b| {
        b.iter_custom(|iters| {
            let bus = MessageBus::new();
            let guard = bus.serve_raw_with(1, 2, ServeOptions::default(), Ok);
            let payload = Bytes::from_static(PAYLOAD);
            let start = Instant::now();
            for _ in 0..iters {
                let reply = bus
                    .request_raw(1, 2, payload.clone(), Duration::from_secs(10))
                    .unwrap();
                assert_eq!(reply.len(), PAYLOAD.len());
            }
            let elapsed = start.elapsed();
            drop(guard);
            elapsed
        })
    });

    group.bench_function("pubsub", |b| {
        b.iter_custom(|iters| {
            let bus = MessageBus::new();
            let opts = SubscribeOptions::new(16, OverflowPolicy::Block);
            let pings = bus.subscribe_raw(1, opts.clone());
            let pongs = bus.subscribe_raw(2, opts);
            let echo_bus = bus.clone();
            let echo = thread::spawn(move || {
                while let Some(env) = pings.recv_blocking() {
                    echo_bus.publish_raw(2, env.payload).unwrap();
                }
            });
            let payload = Bytes::from_static(PAYLOAD);
            let start = Instant::now();
            for _ in 0..iters {
                bus.publish_raw(1, payload.clone()).unwrap();
                let pong = pongs.recv_blocking().unwrap();
                assert_eq!(pong.payload.len(), PAYLOAD.len());
            }
            let elapsed = start.elapsed();
            bus.close();
            echo.join().unwrap();
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
