//! The pipeline's stages as typed bus handlers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mycelium_contracts::{Order, OrderDecision, TradeTick};
use mycelium_transport::{HandlerHandle, MessageBus, OverflowPolicy, SubscribeOptions};

#[derive(Clone, Copy)]
pub struct Config {
    pub rate: u64,
    pub order_every: u64,
    pub capacity: usize,
    pub policy: OverflowPolicy,
}

/// Counters each stage bumps, read by the progress line.
#[derive(Default)]
pub struct Counters {
    pub ticks_seen: AtomicU64,
    pub orders_sent: AtomicU64,
    pub decisions_sent: AtomicU64,
    pub approvals_seen: AtomicU64,
    pub rejections_seen: AtomicU64,
}

pub struct Pipeline {
    pub counters: Arc<Counters>,
    handlers: Vec<HandlerHandle>,
    bus: MessageBus,
}

impl Pipeline {
    /// Waits (up to `limit`) until every stage has consumed what is queued for it.
    pub async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let snap = self.bus.metrics();
            if snap.subscribers.iter().all(|s| s.queue_depth == 0) {
                // One more round: a stage may be publishing the result of its last message.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if self
                    .bus
                    .metrics()
                    .subscribers
                    .iter()
                    .all(|s| s.queue_depth == 0)
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn join(self) {
        for h in self.handlers {
            if let Err(e) = h.join().await {
                eprintln!("warning: a stage ended abnormally: {e}");
            }
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn opts(config: &Config, label: &str) -> SubscribeOptions {
    SubscribeOptions::new(config.capacity, config.policy).with_label(label)
}

/// Starts strategy, risk and book; must run inside the tokio runtime.
pub fn start(bus: &MessageBus, config: &Config) -> Pipeline {
    let counters = Arc::new(Counters::default());
    let mut handlers = Vec::new();

    // Strategy: every `order_every`-th tick becomes a limit order at the traded price.
    let (b, c, every) = (bus.clone(), counters.clone(), config.order_every);
    let mut next_id = 0u64;
    handlers.push(
        bus.subscribe_handler(opts(config, "rust-strategy"), move |tick: TradeTick| {
            let n = c.ticks_seen.fetch_add(1, Ordering::Relaxed) + 1;
            if n % every == 0 {
                next_id += 1;
                let order = Order {
                    order_id: next_id,
                    symbol: tick.symbol,
                    side: tick.side,
                    qty: tick.size.max(1),
                    limit_price: tick.price,
                    ts_ns: now_ns(),
                };
                b.publish(&order).map_err(|e| e.to_string())?;
                c.orders_sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }),
    );

    // Risk: refuse orders above a notional limit.
    let (b, c) = (bus.clone(), counters.clone());
    handlers.push(
        bus.subscribe_handler(opts(config, "rust-risk"), move |order: Order| {
            let notional = order.limit_price * order.qty as f64;
            let approved = notional <= 250_000.0;
            let decision = OrderDecision {
                order_id: order.order_id,
                approved,
                reason: if approved {
                    String::new()
                } else {
                    format!("notional {notional:.0} over limit")
                },
                ts_ns: now_ns(),
            };
            b.publish(&decision).map_err(|e| e.to_string())?;
            c.decisions_sent.fetch_add(1, Ordering::Relaxed);
            Ok::<(), String>(())
        }),
    );

    // Book: counts the answers.
    let c = counters.clone();
    handlers.push(
        bus.subscribe_handler(opts(config, "rust-book"), move |d: OrderDecision| {
            if d.approved {
                c.approvals_seen.fetch_add(1, Ordering::Relaxed);
            } else {
                c.rejections_seen.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }),
    );

    Pipeline {
        counters,
        handlers,
        bus: bus.clone(),
    }
}

/// The market: publishes ticks at `rate` per second for `duration` on its own thread and
/// returns how many it published.
pub fn spawn_market(bus: MessageBus, config: Config, duration: Duration) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        const SYMBOLS: [&str; 4] = ["BTC-USD", "ETH-USD", "ACME", "GLOBEX"];
        let start = Instant::now();
        let mut sent = 0u64;
        let mut price = 100.0f64;
        while start.elapsed() < duration {
            if config.rate > 0 {
                // Pace by schedule, not by sleeping per message: sleep only when ahead.
                let due = (start.elapsed().as_secs_f64() * config.rate as f64) as u64;
                if sent >= due {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
            }
            price += ((sent % 7) as f64 - 3.0) * 0.01;
            let tick = TradeTick {
                symbol: SYMBOLS[(sent % 4) as usize].to_string(),
                price,
                size: 1 + (sent % 5000) as u32,
                ts_ns: now_ns(),
                side: (sent % 2) as u8,
            };
            match bus.publish(&tick) {
                Ok(()) => sent += 1,
                Err(e) => {
                    eprintln!("market: publish failed: {e}");
                    if bus.is_closed() {
                        break;
                    }
                }
            }
        }
        sent
    })
}
