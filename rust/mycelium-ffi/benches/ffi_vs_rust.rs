//! The C ABI's cost over the Rust API, in one run: the same workload (publish 64-byte
//! TradeTick payloads, a subscriber on another thread counts them) through
//! `MessageBus::publish_raw` + a Rust receiving thread, and through `mycelium_publish` + a C
//! callback on the library's delivery thread. Also one-message latency (publish -> callback).
//!
//! Criterion takes all of one path's samples, then all of the other's: on a VM whose host moves
//! the vCPUs (docs/benchmarks.md) the two sets can come from different phases. For the C ABI's
//! cost over the Rust API use `ffi_paired`, which compares batches taken back to back.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{drain_counting, payload, schema, subscribe_counting, wait_for, BATCH};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mycelium_ffi::exports::{mycelium_publish, mycelium_unsubscribe};
use mycelium_ffi::{mycelium_status, Runtime};
use mycelium_transport::{MessageBus, SubscribeOptions};

fn throughput(c: &mut Criterion) {
    let schema = schema();
    let data = payload();
    let mut group = c.benchmark_group("publish_to_subscriber_64B");
    group.throughput(Throughput::Elements(BATCH));
    group
        .sample_size(15)
        .measurement_time(Duration::from_secs(3));

    // Rust API: publish_raw, a Rust thread drains and counts.
    {
        let bus = MessageBus::new();
        let (counter, t) = drain_counting(&bus);
        let bytes = bytes::Bytes::from(data.clone());
        group.bench_function(BenchmarkId::new("rust_api", BATCH), |b| {
            b.iter(|| {
                let start = counter.load(Ordering::Acquire);
                for _ in 0..BATCH {
                    // the C ABI copies the caller's bytes once; do the same here for parity
                    bus.publish_raw(1, bytes::Bytes::copy_from_slice(&bytes))
                        .unwrap();
                }
                wait_for(&counter, start + BATCH);
            })
        });
        bus.close();
        t.join().unwrap();
    }

    // C ABI: mycelium_publish (schema validation + copy), batch callback on the delivery thread.
    {
        let rt = Runtime::new(&schema);
        let counter = AtomicU64::new(0);
        // SAFETY: `counter` outlives the subscription (unsubscribed below).
        let id = unsafe { subscribe_counting(&rt, &counter) };
        group.bench_function(BenchmarkId::new("c_abi", BATCH), |b| {
            b.iter(|| {
                let start = counter.load(Ordering::Acquire);
                for _ in 0..BATCH {
                    // SAFETY: `data` is a live 64-byte buffer.
                    let st = unsafe { mycelium_publish(rt.as_ptr(), 1, data.as_ptr(), data.len()) };
                    debug_assert_eq!(st, mycelium_status::MYCELIUM_OK);
                }
                wait_for(&counter, start + BATCH);
            })
        });
        // SAFETY: id is live on this handle.
        unsafe { mycelium_unsubscribe(rt.as_ptr(), id) };
    }
    group.finish();
}

fn latency(c: &mut Criterion) {
    let schema = schema();
    let data = payload();
    let mut group = c.benchmark_group("one_message_latency_64B");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    {
        let bus = MessageBus::new();
        let sub = bus.subscribe_raw(1, SubscribeOptions::default());
        let counter = Arc::new(AtomicU64::new(0));
        let c2 = counter.clone();
        let t = std::thread::spawn(move || {
            while sub.recv_blocking().is_some() {
                c2.fetch_add(1, Ordering::Release);
            }
        });
        group.bench_function("rust_api", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = counter.load(Ordering::Acquire);
                    let t0 = Instant::now();
                    bus.publish_raw(1, bytes::Bytes::copy_from_slice(&data))
                        .unwrap();
                    wait_for(&counter, start + 1);
                    total += t0.elapsed();
                }
                total
            })
        });
        bus.close();
        t.join().unwrap();
    }
    {
        let rt = Runtime::new(&schema);
        let counter = AtomicU64::new(0);
        // SAFETY: `counter` outlives the subscription (unsubscribed below).
        let id = unsafe { subscribe_counting(&rt, &counter) };
        group.bench_function("c_abi", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = counter.load(Ordering::Acquire);
                    let t0 = Instant::now();
                    // SAFETY: `data` is a live buffer.
                    unsafe { mycelium_publish(rt.as_ptr(), 1, data.as_ptr(), data.len()) };
                    wait_for(&counter, start + 1);
                    total += t0.elapsed();
                }
                total
            })
        });
        // SAFETY: id is live on this handle.
        unsafe { mycelium_unsubscribe(rt.as_ptr(), id) };
    }
    group.finish();
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);
