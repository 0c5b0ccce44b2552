//! The market: a Rust thread publishing `TradeTick`s at a steady rate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mycelium_contracts::TradeTick;
use mycelium_transport::{MessageBus, TopicName};

use crate::clock::now_ns;
use crate::error::DemoError;

/// Symbols traded, with a starting price and the largest trade size. The sizes are picked so
/// that a few orders go over the risk engine's notional limit (250 000) and are refused.
const SYMBOLS: [(&str, f64, u32); 4] = [
    ("BTC-USD", 64_000.0, 4),
    ("ETH-USD", 3_400.0, 80),
    ("ACME", 120.0, 2_500),
    ("GLOBEX", 45.0, 6_000),
];

/// Deterministic prices: each symbol follows a random walk (steps of up to 0.1%) pulled back
/// towards its starting price, so it keeps crossing its moving average.
pub struct PriceModel {
    state: u64,
    prices: [f64; SYMBOLS.len()],
    next_symbol: usize,
}

impl PriceModel {
    pub fn new(seed: u64) -> PriceModel {
        PriceModel {
            // xorshift never leaves 0
            state: seed.max(1),
            prices: SYMBOLS.map(|(_, start, _)| start),
            next_symbol: 0,
        }
    }

    /// xorshift64: fast, dependency-free, and good enough for made-up prices.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// Uniform in [-1, 1].
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// The next trade, cycling through the symbols.
    pub fn next_tick(&mut self, ts_ns: u64) -> TradeTick {
        let i = self.next_symbol;
        self.next_symbol = (i + 1) % SYMBOLS.len();
        let (symbol, start, max_size) = SYMBOLS[i];
        let step = 0.001 * self.next_unit();
        let price = self.prices[i] * (1.0 + step) + 0.02 * (start - self.prices[i]);
        self.prices[i] = price;
        let size = 1 + (self.next_u64() % u64::from(max_size)) as u32;
        let side = (self.next_u64() & 1) as u8;
        TradeTick {
            symbol: symbol.to_owned(),
            price,
            size,
            ts_ns,
            side,
        }
    }
}

/// How many ticks are due after `elapsed` at `rate` per second: tick `k` is due at `k / rate`,
/// the first at once, so a run of `d` seconds publishes `ceil(d * rate)` ticks (1 for one second
/// at 1/s, 10 at 10/s; it was one less, 0 and 9, when the first tick waited a whole period).
fn ticks_due(elapsed: Duration, rate: u64) -> u64 {
    (elapsed.as_secs_f64() * rate as f64) as u64 + 1
}

/// The running market thread.
pub struct Market {
    thread: JoinHandle<()>,
    published: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Market {
    /// Publishes `rate` ticks per second (0: as fast as publishing returns) until `duration`
    /// has passed or `stop` is set.
    pub fn spawn(
        bus: MessageBus,
        rate: u64,
        duration: Duration,
        stop: &'static AtomicBool,
    ) -> Result<Market, DemoError> {
        let published = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (p, f) = (published.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("market".into())
            .spawn(move || {
                let mut prices = PriceModel::new(0x5eed_cafe);
                // Each symbol's ticks go out on its own topic, ticks/<symbol> (docs/topics.md);
                // the strategy subscribes to ticks/*.
                let topics: std::collections::HashMap<&str, TopicName> = SYMBOLS
                    .iter()
                    .map(|(symbol, _, _)| {
                        let topic = TopicName::new(&format!("ticks/{symbol}"))
                            .expect("the demo's symbols make valid topics");
                        (*symbol, topic)
                    })
                    .collect();
                let start = Instant::now();
                let mut sent = 0u64;
                while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
                    if rate > 0 {
                        // Pace by schedule, not by sleeping per message: sleep only when ahead.
                        if sent >= ticks_due(start.elapsed(), rate) {
                            std::thread::sleep(Duration::from_micros(200));
                            continue;
                        }
                    }
                    let tick = prices.next_tick(now_ns());
                    match bus.publish_on(&topics[tick.symbol.as_str()], &tick) {
                        Ok(()) => {
                            sent += 1;
                            p.store(sent, Ordering::Relaxed);
                        }
                        Err(e) if bus.is_closed() => {
                            eprintln!("market: stopped, the bus closed: {e}");
                            break;
                        }
                        Err(_) => {
                            f.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        let thread = thread.map_err(|source| DemoError::Spawn {
            stage: "market",
            source,
        })?;
        Ok(Market {
            thread,
            published,
            failed,
        })
    }

    /// Ticks published so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the thread; returns (ticks published, publishes that failed).
    pub fn join(self) -> (u64, u64) {
        // The loop above cannot panic short of an allocation failure; the counters are valid
        // either way.
        let _ = self.thread.join();
        (
            self.published.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_makes_a_valid_topic() {
        for (symbol, _, _) in SYMBOLS {
            TopicName::new(&format!("ticks/{symbol}")).expect(symbol);
        }
    }

    #[test]
    fn prices_are_reproducible_and_stay_near_their_start() {
        let (mut a, mut b) = (PriceModel::new(7), PriceModel::new(7));
        for i in 0..40_000u64 {
            let (x, y) = (a.next_tick(i), b.next_tick(i));
            assert_eq!(x, y, "same seed, same ticks");
            let (_, start, max_size) = SYMBOLS
                .iter()
                .find(|(s, _, _)| *s == x.symbol)
                .copied()
                .expect("a known symbol");
            assert!((x.price / start - 1.0).abs() < 0.2, "{x:?} wandered off");
            assert!((1..=max_size).contains(&x.size), "{x:?}");
            assert!(x.side <= 1);
        }
        assert_ne!(
            PriceModel::new(8).next_tick(0),
            PriceModel::new(7).next_tick(0)
        );
    }

    #[test]
    fn a_run_publishes_rate_times_duration_ticks_rounded_up() {
        // The pacing loop publishes while `sent < ticks_due(elapsed)` and `elapsed < duration`:
        // count what it would send if it ran at every instant of the run.
        let sent_in = |seconds: f64, rate: u64| -> u64 {
            let duration = Duration::from_secs_f64(seconds);
            let mut sent = 0;
            let mut t = Duration::ZERO;
            while t < duration {
                while sent < ticks_due(t, rate) {
                    sent += 1;
                }
                t += Duration::from_micros(100);
            }
            sent
        };
        assert_eq!(sent_in(1.0, 1), 1);
        assert_eq!(sent_in(1.0, 10), 10);
        assert_eq!(sent_in(2.0, 1000), 2000);
        assert_eq!(sent_in(0.5, 3), 2);
    }

    #[test]
    fn symbols_take_turns() {
        let mut m = PriceModel::new(1);
        let names: Vec<String> = (0..8).map(|_| m.next_tick(0).symbol).collect();
        assert_eq!(names[..4], names[4..]);
        assert_eq!(names[..4], SYMBOLS.map(|(s, _, _)| s.to_owned()));
    }
}
