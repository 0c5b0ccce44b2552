//! Consumer threads for the fan-out benchmarks (`bus`, `bus_paired`): one thread per
//! subscriber counting what it receives, for the bus and for both references.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

/// Consumer threads each bump their counter per message received.
pub struct Consumers {
    counters: Vec<Arc<AtomicU64>>,
    threads: Vec<JoinHandle<()>>,
}

impl Consumers {
    fn spawn<R: Send + 'static>(receivers: Vec<R>, run: fn(R, &AtomicU64)) -> Self {
        let counters: Vec<_> = receivers
            .iter()
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let threads = receivers
            .into_iter()
            .zip(&counters)
            .map(|(rx, counter)| {
                let counter = Arc::clone(counter);
                thread::spawn(move || run(rx, &counter))
            })
            .collect();
        Consumers { counters, threads }
    }

    /// `subs` subscribers of `type_id` on `bus` (queues of `capacity`, Block policy), each
    /// drained by a thread blocked in `recv_blocking`.
    pub fn of_bus(bus: &MessageBus, type_id: u16, subs: usize, capacity: usize) -> Self {
        let queues: Vec<_> = (0..subs)
            .map(|_| {
                bus.subscribe_raw(
                    type_id,
                    SubscribeOptions::new(capacity, OverflowPolicy::Block),
                )
            })
            .collect();
        Consumers::spawn(queues, |q, n| {
            while q.recv_blocking().is_some() {
                n.fetch_add(1, Ordering::Release);
            }
        })
    }

    /// `subs` receivers of `tx`; a lagging one counts the messages it skipped as received, so
    /// a timed batch still ends.
    pub fn of_broadcast(tx: &tokio::sync::broadcast::Sender<Bytes>, subs: usize) -> Self {
        let receivers: Vec<_> = (0..subs).map(|_| tx.subscribe()).collect();
        Consumers::spawn(receivers, |mut rx, n| loop {
            use tokio::sync::broadcast::error::RecvError;
            match rx.blocking_recv() {
                Ok(_) => n.fetch_add(1, Ordering::Release),
                Err(RecvError::Lagged(skipped)) => n.fetch_add(skipped, Ordering::Release),
                Err(RecvError::Closed) => break,
            };
        })
    }

    /// `subs` bounded crossbeam channels of `capacity`: their senders, and a blocking receiver
    /// thread on each.
    pub fn of_crossbeam(
        subs: usize,
        capacity: usize,
    ) -> (Vec<crossbeam_channel::Sender<Bytes>>, Self) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..subs)
            .map(|_| crossbeam_channel::bounded::<Bytes>(capacity))
            .unzip();
        let consumers = Consumers::spawn(receivers, |rx, n| {
            while rx.recv().is_ok() {
                n.fetch_add(1, Ordering::Release);
            }
        });
        (senders, consumers)
    }

    /// Publishes `messages` times and waits until every consumer has seen them.
    pub fn timed(&self, messages: u64, mut publish: impl FnMut()) -> Duration {
        let targets: Vec<u64> = self
            .counters
            .iter()
            .map(|c| c.load(Ordering::Acquire) + messages)
            .collect();
        let start = Instant::now();
        for _ in 0..messages {
            publish();
        }
        for (counter, target) in self.counters.iter().zip(targets) {
            while counter.load(Ordering::Acquire) < target {
                thread::yield_now();
            }
        }
        start.elapsed()
    }

    pub fn join(self) {
        for t in self.threads {
            t.join().unwrap();
        }
    }
}
