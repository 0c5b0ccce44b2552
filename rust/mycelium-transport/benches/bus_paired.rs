//! Cross-thread fan-out of the MessageBus against `tokio::sync::broadcast` and
//! `crossbeam-channel`, measured in rounds so that the host's placement of the vCPUs cannot pass
//! for a difference between them: `cargo bench -p mycelium-transport --bench bus_paired`.
//!
//! `bus`'s `throughput/*` (criterion) times all of one system's samples, then the next's; the
//! cost of a cross-thread hand-off changes 5-10x for seconds at a time on our VMs
//! (`common/phase.rs`), so its ratios compare phases as much as code. Here each round times one
//! batch on each of the three, back to back, in an order that rotates, then samples the phase;
//! the report gives each system's median and the median of the per-round ratios, overall and
//! per phase.
//!
//! Workload as `throughput/*`: one publisher thread, one consumer thread per subscriber (1 or 8),
//! 16-byte payloads, queues of 1024; the bus with the Block policy, broadcast overwriting
//! (a lagging receiver counts skipped messages as received), crossbeam blocking. A batch is
//! `MESSAGES` messages, until every consumer has them. `MYCELIUM_BENCH_ROUNDS` (default 200)
//! sets the rounds per subscriber count.

#[path = "common/consumers.rs"]
mod consumers;
#[path = "common/phase.rs"]
mod phase;

use std::time::Duration;

use bytes::Bytes;
use consumers::Consumers;
use mycelium_transport::MessageBus;
use phase::{by_phase, median, ping_pong, quantile};

const CAPACITY: usize = 1024;
const MESSAGES: u64 = 4096;
const TYPE: u16 = 1;
const SYSTEMS: [&str; 3] = ["mycelium", "tokio broadcast", "crossbeam"];

/// One round: microseconds per batch of each system (in `SYSTEMS` order) and the phase.
struct Round {
    micros: [f64; 3],
    ping_pong_ns: f64,
}

/// The three systems with `subs` consumers each; `run(i)` times one batch on system `i`.
struct Systems {
    bus: MessageBus,
    bus_consumers: Consumers,
    broadcast: tokio::sync::broadcast::Sender<Bytes>,
    broadcast_consumers: Consumers,
    crossbeam: Vec<crossbeam_channel::Sender<Bytes>>,
    crossbeam_consumers: Consumers,
    data: Bytes,
}

impl Systems {
    fn new(subs: usize) -> Systems {
        let bus = MessageBus::new();
        let bus_consumers = Consumers::of_bus(&bus, TYPE, subs, CAPACITY);
        let (broadcast, _) = tokio::sync::broadcast::channel::<Bytes>(CAPACITY);
        let broadcast_consumers = Consumers::of_broadcast(&broadcast, subs);
        let (crossbeam, crossbeam_consumers) = Consumers::of_crossbeam(subs, CAPACITY);
        Systems {
            bus,
            bus_consumers,
            broadcast,
            broadcast_consumers,
            crossbeam,
            crossbeam_consumers,
            data: Bytes::from(vec![0xA5u8; 16]),
        }
    }

    fn run(&self, system: usize) -> Duration {
        match system {
            0 => self.bus_consumers.timed(MESSAGES, || {
                self.bus.publish_raw(TYPE, self.data.clone()).unwrap();
            }),
            1 => self.broadcast_consumers.timed(MESSAGES, || {
                self.broadcast.send(self.data.clone()).unwrap();
            }),
            _ => self.crossbeam_consumers.timed(MESSAGES, || {
                for tx in &self.crossbeam {
                    tx.send(self.data.clone()).unwrap();
                }
            }),
        }
    }

    fn close(self) {
        self.bus.close();
        self.bus_consumers.join();
        drop(self.broadcast);
        self.broadcast_consumers.join();
        drop(self.crossbeam);
        self.crossbeam_consumers.join();
    }
}

fn main() {
    let rounds = phase::rounds(200);
    println!(
        "{rounds} rounds per subscriber count; a batch is {MESSAGES} 16-byte messages to every \
         subscriber; per round one batch of each system back to back (rotating order), then \
         the phase"
    );
    for subs in [1usize, 8] {
        let systems = Systems::new(subs);
        for system in 0..3 {
            systems.run(system); // warm-up
        }
        let mut results = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut micros = [0.0; 3];
            for k in 0..3 {
                let system = (round + k) % 3;
                micros[system] = systems.run(system).as_secs_f64() * 1e6;
            }
            results.push(Round {
                micros,
                ping_pong_ns: ping_pong(),
            });
        }
        systems.close();
        report(subs, &results);
    }
}

fn report(subs: usize, results: &[Round]) {
    println!();
    println!("{subs} subscriber(s), µs per batch of {MESSAGES} (median), and mycelium's time over each reference's (median of per-round ratios, p10 .. p90):");
    println!();
    println!(
        "| phase (cache-line round trip) | rounds | {} | {} | {} | mycelium / tokio | mycelium / crossbeam |",
        SYSTEMS[0], SYSTEMS[1], SYSTEMS[2]
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, rows, pp) in by_phase(results, |r| r.ping_pong_ns) {
        let Some(pp) = pp else {
            println!("| {name} | 0 | — | — | — | — | — |");
            continue;
        };
        let col = |i: usize| median(rows.iter().map(|r| r.micros[i]).collect());
        let ratio = |i: usize| {
            let v: Vec<f64> = rows.iter().map(|r| r.micros[0] / r.micros[i]).collect();
            format!(
                "{:.2}x ({:.2} .. {:.2})",
                median(v.clone()),
                quantile(v.clone(), 0.1),
                quantile(v, 0.9)
            )
        };
        println!(
            "| {name} (median {pp:.0} ns) | {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            rows.len(),
            col(0),
            col(1),
            col(2),
            ratio(1),
            ratio(2),
        );
    }
}
