//! Consumer threads for the fan-out benchmarks (`bus`, `bus_paired`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Consumer threads each bump their counter per message received.
pub struct Consumers {
    counters: Vec<Arc<AtomicU64>>,
    threads: Vec<JoinHandle<()>>,
}

impl Consumers {
    pub fn spawn<R: Send + 'static>(receivers: Vec<R>, run: fn(R, &AtomicU64)) -> Self {
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
