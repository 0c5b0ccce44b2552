//! The C ABI's cost over the Rust API, measured in pairs so that the host's placement of the
//! two vCPUs cannot pass for a difference between the two paths:
//! `cargo bench -p mycelium-ffi --bench ffi_paired`.
//!
//! On the 2-vCPU VMs we run on, the cost of moving a cache line between the two vCPUs changes
//! by 5-10x for seconds at a time (about 35 ns, 65 ns or 320 ns per round trip: the hypervisor
//! moves the vCPUs between hyperthreads of one core, cores of one die, and dies). Every
//! cross-thread hand-off of the bus pays several such transfers, so a batch of 10 000 messages
//! takes 1.8, 3.2 or 9 ms depending on the phase, on either path. `ffi_vs_rust` (criterion)
//! runs all the Rust API samples, then all the C ABI ones: a phase change between the two
//! reads as a 2-3x "C ABI cost" (or gain). Here each round times one batch on each path back
//! to back (alternating which goes first) and then one cache-line ping-pong between two
//! threads, so each ratio compares two batches of the same phase; the report gives the
//! median ratio overall and per phase.
//!
//! Workload as `ffi_vs_rust`: 10 000 64-byte `TradeTick` payloads to one subscriber on
//! another thread. Rust API: `MessageBus::publish_raw` of a copy of the bytes, a Rust thread
//! draining the queue; C ABI: `mycelium_publish` (which validates the payload) and a batch
//! callback on the library's delivery thread. `MYCELIUM_BENCH_ROUNDS` (default 600) sets the
//! number of rounds. Each round also times 10 000 publish calls on each path with nobody
//! subscribed: what the call itself costs (the C ABI's validation and dispatch), free of the
//! hand-off and so of the phases.

#[path = "common/mod.rs"]
mod common;
#[path = "../../mycelium-transport/benches/common/phase.rs"]
mod phase;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::{drain_counting, payload, schema, subscribe_counting, wait_for, BATCH};
use mycelium_ffi::exports::{mycelium_publish, mycelium_unsubscribe};
use mycelium_ffi::{mycelium_status, Runtime};
use mycelium_transport::MessageBus;
use phase::{by_phase, median, ping_pong, quantile};

/// (rust(), cabi()), run back to back, the Rust API first in even rounds and second in odd
/// ones, so neither path always runs right after the other's hand-offs.
fn paired(round: usize, rust: &dyn Fn() -> f64, cabi: &dyn Fn() -> f64) -> (f64, f64) {
    if round & 1 == 0 {
        let r = rust();
        (r, cabi())
    } else {
        let c = cabi();
        (rust(), c)
    }
}

struct Round {
    rust_ms: f64,
    cabi_ms: f64,
    ping_pong_ns: f64,
    /// Nanoseconds per publish call on a bus nobody subscribes to: the call's own cost, with
    /// no hand-off to another thread (so no phase).
    rust_call_ns: f64,
    cabi_call_ns: f64,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, briefly.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds = phase::rounds(600);
    let schema = schema();
    let data = payload();

    // Rust API: publish_raw, a Rust thread drains and counts.
    let bus = MessageBus::new();
    let (rust_count, drainer) = drain_counting(&bus);
    let bytes = bytes::Bytes::from(data.clone());
    let rust_batch = || {
        let start = Instant::now();
        let from = rust_count.load(Ordering::Acquire);
        for _ in 0..BATCH {
            // the C ABI copies the caller's bytes once; do the same here for parity
            bus.publish_raw(1, bytes::Bytes::copy_from_slice(&bytes))
                .expect("publish");
        }
        wait_for(&rust_count, from + BATCH);
        start.elapsed().as_secs_f64() * 1e3
    };

    // C ABI: mycelium_publish, batch callback on the delivery thread.
    let rt = Runtime::new(&schema);
    let cabi_count = AtomicU64::new(0);
    // SAFETY: `cabi_count` outlives the subscription (unsubscribed below).
    let id = unsafe { subscribe_counting(&rt, &cabi_count) };
    let cabi_batch = || {
        let start = Instant::now();
        let from = cabi_count.load(Ordering::Acquire);
        for _ in 0..BATCH {
            // SAFETY: `data` is a live 64-byte buffer.
            let status = unsafe { mycelium_publish(rt.as_ptr(), 1, data.as_ptr(), data.len()) };
            assert_eq!(status, mycelium_status::MYCELIUM_OK);
        }
        wait_for(&cabi_count, from + BATCH);
        start.elapsed().as_secs_f64() * 1e3
    };

    // The call alone: the same publishes on a bus and a runtime with no subscriber.
    let idle_bus = MessageBus::new();
    let idle_rt = Runtime::new(&schema);
    let rust_calls = || {
        let start = Instant::now();
        for _ in 0..BATCH {
            idle_bus
                .publish_raw(1, bytes::Bytes::copy_from_slice(&bytes))
                .expect("publish");
        }
        start.elapsed().as_nanos() as f64 / BATCH as f64
    };
    let cabi_calls = || {
        let start = Instant::now();
        for _ in 0..BATCH {
            // SAFETY: `data` is a live 64-byte buffer.
            let status =
                unsafe { mycelium_publish(idle_rt.as_ptr(), 1, data.as_ptr(), data.len()) };
            assert_eq!(status, mycelium_status::MYCELIUM_OK);
        }
        start.elapsed().as_nanos() as f64 / BATCH as f64
    };

    // Warm-up: both paths, a few batches each.
    for _ in 0..5 {
        rust_batch();
        cabi_batch();
    }
    let began = Instant::now();
    let mut results = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (rust_ms, cabi_ms) = paired(round, &rust_batch, &cabi_batch);
        let (rust_call_ns, cabi_call_ns) = paired(round, &rust_calls, &cabi_calls);
        results.push(Round {
            rust_ms,
            cabi_ms,
            ping_pong_ns: ping_pong(),
            rust_call_ns,
            cabi_call_ns,
        });
        if !smoke && (round + 1) % 100 == 0 {
            eprintln!(
                "{} / {rounds} rounds, {:.0} s",
                round + 1,
                began.elapsed().as_secs_f64()
            );
        }
    }
    // SAFETY: id is live on this handle.
    unsafe { mycelium_unsubscribe(rt.as_ptr(), id) };
    bus.close();
    drainer.join().expect("drainer thread");
    assert!(
        rust_count.load(Ordering::Acquire) >= (rounds as u64 + 5) * BATCH
            && cabi_count.load(Ordering::Acquire) >= (rounds as u64 + 5) * BATCH,
        "every message counted on both paths"
    );

    report(&results);
}

fn report(results: &[Round]) {
    let ratio = |r: &Round| r.cabi_ms / r.rust_ms - 1.0;
    println!(
        "{} rounds of {BATCH} 64-byte messages per path, back to back (criterion-free)",
        results.len()
    );
    println!();
    println!(
        "| cache-line round trip between the vCPUs | rounds | Rust API batch | C ABI batch | C ABI cost (median of per-round ratios) | p10 .. p90 of the ratios |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, rows, pp) in by_phase(results, |r| r.ping_pong_ns) {
        let Some(pp) = pp else {
            println!("| {name} | 0 | — | — | — | — |");
            continue;
        };
        let ratios: Vec<f64> = rows.iter().map(|r| ratio(r)).collect();
        println!(
            "| {name} (median {pp:.0} ns) | {} | {:.2} ms | {:.2} ms | {:+.1} % | {:+.1} % .. {:+.1} % |",
            rows.len(),
            median(rows.iter().map(|r| r.rust_ms).collect()),
            median(rows.iter().map(|r| r.cabi_ms).collect()),
            100.0 * median(ratios.clone()),
            100.0 * quantile(ratios.clone(), 0.1),
            100.0 * quantile(ratios, 0.9),
        );
    }
    let calls: Vec<f64> = results
        .iter()
        .map(|r| r.cabi_call_ns - r.rust_call_ns)
        .collect();
    println!();
    println!(
        "One publish call, nobody subscribed (the call's own cost): Rust API {:.1} ns, C ABI \
         {:.1} ns, C ABI extra {:.1} ns per call (median of per-round differences; p10 .. p90 \
         {:.1} .. {:.1} ns)",
        median(results.iter().map(|r| r.rust_call_ns).collect()),
        median(results.iter().map(|r| r.cabi_call_ns).collect()),
        median(calls.clone()),
        quantile(calls.clone(), 0.1),
        quantile(calls, 0.9),
    );
}
