//! One-way latency across threads, publish -> take, one subscriber, against crossbeam-channel and
//! `tokio::sync::broadcast` in the same run: `cargo bench -p mycelium-transport --bench one_way`.
//!
//! Issue 16 asks for a cross-thread publish -> take p50 of at most 1 µs at one subscriber on an
//! idle machine, with the p99. Round trips (`bus -- round_trip`) halve two hops that need not be
//! equal; here one message at a time crosses once: the publishing thread reads the clock, publishes
//! and waits until the consumer has stamped its arrival; the consumer, blocked in its receive,
//! reads the clock when the message is in its hands. Both clocks are `Instant` (one monotonic
//! clock for the process), so the difference is the hop.
//!
//! Two spacings, since what a receiver does while it waits decides the figure:
//! - `back-to-back`: the next message leaves as soon as the last one was taken (the receiver is
//!   still in its back-off spin);
//! - `idle 100 µs`: the publisher sleeps 100 µs (plus the timer's slack) between messages, so
//!   the receiver has gone to sleep and each message pays a wake-up. The opt-in `spin` (1 ms
//!   here) keeps it polling.
//!
//! `MYCELIUM_BENCH_ROUNDS` (default 20 000) sets the messages per row; rows are interleaved in
//! blocks of 500 so that a phase of the VM (`common/phase.rs`) touches every row alike.

// Only `rounds`, `quantile` and `ping_pong` are used here.
#[allow(dead_code)]
#[path = "common/phase.rs"]
mod phase;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};
use phase::quantile;

const TYPE: u16 = 1;
const BLOCK: usize = 500;

/// The receiving side of one row: it stamps each arrival (nanoseconds since `epoch`, plus one
/// so that 0 means "not yet") into `arrived`.
struct Receiver {
    arrived: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

fn spawn_receiver(epoch: Instant, mut recv: impl FnMut() -> bool + Send + 'static) -> Receiver {
    let arrived = Arc::new(AtomicU64::new(0));
    let stamp = Arc::clone(&arrived);
    let thread = thread::spawn(move || {
        while recv() {
            let at = epoch.elapsed().as_nanos() as u64 + 1;
            stamp.store(at, Ordering::Release);
        }
    });
    Receiver {
        arrived,
        thread: Some(thread),
    }
}

/// One system under test: how to send, and its receiver.
struct Row {
    name: &'static str,
    gap: Option<Duration>,
    send: Box<dyn FnMut()>,
    receiver: Receiver,
    samples: Vec<f64>,
}

impl Row {
    fn new(
        name: &'static str,
        gap: Option<Duration>,
        send: Box<dyn FnMut()>,
        receiver: Receiver,
    ) -> Row {
        Row {
            name,
            gap,
            send,
            receiver,
            samples: Vec::new(),
        }
    }

    /// Sends one message and returns its latency in nanoseconds.
    fn one(&mut self, epoch: Instant) -> f64 {
        if let Some(gap) = self.gap {
            thread::sleep(gap);
        }
        self.receiver.arrived.store(0, Ordering::Release);
        let sent = epoch.elapsed().as_nanos() as u64;
        (self.send)();
        loop {
            let at = self.receiver.arrived.load(Ordering::Acquire);
            if at != 0 {
                return (at - 1).saturating_sub(sent) as f64;
            }
            std::hint::spin_loop();
        }
    }
}

fn bus_row(
    epoch: Instant,
    name: &'static str,
    gap: Option<Duration>,
    spin: Duration,
) -> (Row, MessageBus) {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(
        TYPE,
        SubscribeOptions::new(1024, OverflowPolicy::Block).with_spin(spin),
    );
    let receiver = spawn_receiver(epoch, move || sub.recv_blocking().is_some());
    let publisher = bus.clone();
    let data = Bytes::from_static(&[0xA5; 16]);
    let send = Box::new(move || publisher.publish_raw(TYPE, data.clone()).unwrap());
    (Row::new(name, gap, send, receiver), bus)
}

fn crossbeam_row(epoch: Instant, name: &'static str, gap: Option<Duration>) -> Row {
    let (tx, rx) = crossbeam_channel::bounded::<Bytes>(1024);
    let receiver = spawn_receiver(epoch, move || rx.recv().is_ok());
    let data = Bytes::from_static(&[0xA5; 16]);
    // Dropping the closure drops the sender, which ends the receiver.
    let send = Box::new(move || tx.send(data.clone()).unwrap());
    Row::new(name, gap, send, receiver)
}

fn broadcast_row(
    epoch: Instant,
    name: &'static str,
    gap: Option<Duration>,
) -> (Row, tokio::sync::broadcast::Sender<Bytes>) {
    let (tx, mut rx) = tokio::sync::broadcast::channel::<Bytes>(1024);
    let receiver = spawn_receiver(epoch, move || rx.blocking_recv().is_ok());
    let data = Bytes::from_static(&[0xA5; 16]);
    let sender = tx.clone();
    let send = Box::new(move || {
        sender.send(data.clone()).unwrap();
    });
    (Row::new(name, gap, send, receiver), tx)
}

fn main() {
    let messages = phase::rounds(20_000).max(BLOCK);
    let epoch = Instant::now();
    let idle = Some(Duration::from_micros(100));
    let mut buses = Vec::new();
    let mut senders = Vec::new();
    let mut rows = Vec::new();
    for (name, gap, spin) in [
        ("mycelium, back-to-back", None, Duration::ZERO),
        ("mycelium, idle 100 µs", idle, Duration::ZERO),
        (
            "mycelium spin 1 ms, idle 100 µs",
            idle,
            Duration::from_millis(1),
        ),
    ] {
        let (row, bus) = bus_row(epoch, name, gap, spin);
        rows.push(row);
        buses.push(bus);
    }
    rows.push(crossbeam_row(
        epoch,
        "crossbeam-channel, back-to-back",
        None,
    ));
    rows.push(crossbeam_row(epoch, "crossbeam-channel, idle 100 µs", idle));
    for (name, gap) in [
        ("tokio broadcast, back-to-back", None),
        ("tokio broadcast, idle 100 µs", idle),
    ] {
        let (row, tx) = broadcast_row(epoch, name, gap);
        rows.push(row);
        senders.push(tx);
    }
    for row in &mut rows {
        for _ in 0..50 {
            row.one(epoch); // warm-up
        }
    }
    let before = phase::ping_pong();
    let mut sent = 0;
    while sent < messages {
        for row in &mut rows {
            for _ in 0..BLOCK {
                let ns = row.one(epoch);
                row.samples.push(ns);
            }
        }
        sent += BLOCK;
    }
    println!(
        "{sent} messages per row, one at a time, 16-byte payloads, one subscriber; rows \
         interleaved in blocks of {BLOCK}; VM phase (cache-line round trip) before {before:.0} ns, \
         after {:.0} ns",
        phase::ping_pong()
    );
    println!();
    println!("| publish -> take | p50 | p90 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for row in &rows {
        let q = |p: f64| quantile(row.samples.clone(), p) / 1000.0;
        println!(
            "| {} | {:.2} µs | {:.2} µs | {:.2} µs | {:.1} µs |",
            row.name,
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        );
    }
    // Closing ends every receiver: the buses close their queues, the channels' senders drop.
    for bus in &buses {
        bus.close();
    }
    drop(senders);
    for mut row in rows {
        drop(row.send);
        if let Some(thread) = row.receiver.thread.take() {
            thread.join().unwrap();
        }
    }
}
