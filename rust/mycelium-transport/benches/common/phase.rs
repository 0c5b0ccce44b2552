//! The host's placement of two vCPUs, as the cost of moving a cache line between them, for
//! benchmarks that compare cross-thread paths in pairs (`bus_paired`, mycelium-ffi's
//! `ffi_paired`; docs/benchmarks.md).
//!
//! On the 2-vCPU VMs we run on, a cache line's round trip between the two vCPUs sits at about
//! 32 ns, 67 ns or 317 ns for seconds at a time (hyperthreads of one core, cores of one die,
//! two dies), and every cross-thread hand-off pays a few such transfers. A benchmark that
//! times one system and then another can therefore compare two phases; one that alternates
//! them round by round and records the phase of each round can compare like with like.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cache-line round trips per sample.
const TRIPS: u64 = 5_000;

/// Nanoseconds per round trip of one cache line between this thread and a fresh one (on two
/// vCPUs: between the two). Microseconds mean the other thread shared this thread's vCPU.
pub fn ping_pong() -> f64 {
    let line = Arc::new(AtomicU64::new(0));
    let other = Arc::clone(&line);
    let echo = std::thread::spawn(move || {
        let mut expect = 1;
        while expect < 2 * TRIPS {
            if other.load(Ordering::Acquire) == expect {
                other.store(expect + 1, Ordering::Release);
                expect += 2;
            }
            std::hint::spin_loop();
        }
    });
    // Let the echo thread start spinning before the clock runs.
    std::thread::sleep(Duration::from_millis(1));
    let start = Instant::now();
    let mut v = 0;
    for _ in 0..TRIPS {
        line.store(v + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != v + 2 {
            std::hint::spin_loop();
        }
        v += 2;
    }
    let ns = start.elapsed().as_nanos() as f64 / TRIPS as f64;
    echo.join().expect("echo thread");
    ns
}

/// The rows of a per-phase report: a name and the ping-pong range `[low, high)` in ns.
pub const PHASES: [(&str, f64, f64); 5] = [
    ("all rounds", 0.0, f64::INFINITY),
    ("under 50 ns (one core)", 0.0, 50.0),
    ("50-150 ns (one die)", 50.0, 150.0),
    ("150-1000 ns (across dies)", 150.0, 1000.0),
    // Microseconds: the echo thread ran on the timing thread's vCPU, no phase measured.
    ("over 1 µs (ping-pong disturbed)", 1000.0, f64::INFINITY),
];

/// Each row of [`PHASES`] with the rounds whose ping-pong (`ping_pong_ns`) falls in it and
/// their median ping-pong (`None` when there are none).
pub fn by_phase<R>(
    rounds: &[R],
    ping_pong_ns: impl Fn(&R) -> f64,
) -> Vec<(&'static str, Vec<&R>, Option<f64>)> {
    PHASES
        .iter()
        .map(|&(name, low, high)| {
            let rows: Vec<&R> = rounds
                .iter()
                .filter(|r| (low..high).contains(&ping_pong_ns(r)))
                .collect();
            let pp =
                (!rows.is_empty()).then(|| median(rows.iter().map(|r| ping_pong_ns(r)).collect()));
            (name, rows, pp)
        })
        .collect()
}

pub fn median(v: Vec<f64>) -> f64 {
    quantile(v, 0.5)
}

pub fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `MYCELIUM_BENCH_ROUNDS`, else `default`; 3 when run outside `cargo bench` (`cargo test
/// --benches` runs each bench once, as a smoke test).
pub fn rounds(default: usize) -> usize {
    if !std::env::args().any(|a| a == "--bench") {
        return 3;
    }
    std::env::var("MYCELIUM_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
