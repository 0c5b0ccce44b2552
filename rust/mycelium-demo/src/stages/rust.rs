//! The Rust stages, each a thread taking messages from a typed subscription.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mycelium_contracts::{Order, OrderDecision, RiskCheck, TradeTick};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, ServeGuard, SubscribeOptions, Subscription, TopicPattern};

use super::{Counts, Language, QueueSettings, Stage};
use crate::clock::now_ns;
use crate::error::DemoError;
use crate::rules::{MovingAverageCross, RiskLimits};

/// The market publishes each symbol's ticks on `ticks/<symbol>`; the strategy takes them all.
pub const TICKS: &str = "ticks/*";

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    sent: AtomicU64,
    approved: AtomicU64,
    refused: AtomicU64,
}

/// A thread running `handle` on every message of one subscription.
pub struct RustStage<T: Message> {
    label: &'static str,
    subscription: Arc<Subscription<T>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Message + Send + 'static> RustStage<T> {
    fn spawn<F>(
        bus: &MessageBus,
        label: &'static str,
        queue: QueueSettings,
        pattern: Option<&str>,
        mut handle: F,
    ) -> Result<Self, DemoError>
    where
        F: FnMut(T, &Counters) -> Result<(), String> + Send + 'static,
    {
        let mut options = SubscribeOptions::new(queue.capacity as usize, queue.policy.overflow())
            .with_label(label);
        if let Some(pattern) = pattern {
            let pattern = TopicPattern::new(pattern).map_err(|source| DemoError::Topic {
                stage: label,
                source,
            })?;
            options = options.with_pattern(pattern);
        }
        let subscription = Arc::new(bus.try_subscribe::<T>(options)?);
        let counters = Arc::new(Counters::default());
        let (sub, c) = (subscription.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name(label.to_owned())
            .spawn(move || {
                // Ends once the subscription is closed and drained.
                while let Some(msg) = sub.recv_blocking() {
                    match handle(msg, &c) {
                        Ok(()) => {
                            c.handled.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => sub.raw().record_handler_failure(e),
                    }
                }
            })
            .map_err(|source| DemoError::Spawn {
                stage: label,
                source,
            })?;
        Ok(RustStage {
            label,
            subscription,
            counters,
            thread: Some(thread),
        })
    }

    /// Orders approved and refused (the book's view of the decisions).
    pub fn approvals(&self) -> (u64, u64) {
        (
            self.counters.approved.load(Ordering::Relaxed),
            self.counters.refused.load(Ordering::Relaxed),
        )
    }
}

impl<T: Message> Stage for RustStage<T> {
    fn label(&self) -> &'static str {
        self.label
    }

    fn language(&self) -> Language {
        Language::Rust
    }

    fn counts(&mut self) -> Result<Counts, DemoError> {
        Ok(Counts {
            handled: self.counters.handled.load(Ordering::Relaxed),
            sent: self.counters.sent.load(Ordering::Relaxed),
        })
    }

    fn close(&mut self) -> Result<(), DemoError> {
        self.subscription.close();
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| DemoError::StagePanicked(self.label))?;
        }
        Ok(())
    }
}

impl<T: Message> Drop for RustStage<T> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// How long the strategy waits for the risk service's answer.
pub const RISK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// TradeTick -> Order on moving-average crossings (see `rules`) -> asks the `RiskCheck`
/// service -> publishes the decision it got, for the book.
pub fn strategy(
    bus: &MessageBus,
    queue: QueueSettings,
    order_every: u64,
) -> Result<RustStage<TradeTick>, DemoError> {
    let b = bus.clone();
    let mut rule = MovingAverageCross::new(order_every);
    RustStage::spawn(
        bus,
        "rust-strategy",
        queue,
        Some(TICKS),
        move |tick: TradeTick, c| {
            if let Some(order) = rule.on_tick(&tick, now_ns()) {
                let decision = b
                    .call::<RiskCheck>(&order, RISK_TIMEOUT)
                    .map_err(|e| format!("asking RiskCheck about order {}: {e}", order.order_id))?;
                b.publish(&decision)
                    .map_err(|e| format!("publishing a decision: {e}"))?;
                c.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        },
    )
}

/// The `RiskCheck` service in Rust: Order -> OrderDecision under notional and position limits
/// (see `rules`), answered on its own thread.
pub struct RustRisk {
    guard: Option<ServeGuard>,
    counters: Arc<Counters>,
}

pub fn risk(bus: &MessageBus) -> RustRisk {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let mut limits = RiskLimits::default();
    let guard = bus.serve_service::<RiskCheck, _>(move |order: Order| {
        let verdict = limits.decide(&order);
        let decision = OrderDecision {
            order_id: order.order_id,
            approved: verdict.is_ok(),
            reason: verdict.err().unwrap_or_default(),
            ts_ns: now_ns(),
        };
        c.handled.fetch_add(1, Ordering::Relaxed);
        c.sent.fetch_add(1, Ordering::Relaxed);
        Ok(decision)
    });
    RustRisk {
        guard: Some(guard),
        counters,
    }
}

impl Stage for RustRisk {
    fn label(&self) -> &'static str {
        "rust-risk"
    }

    fn language(&self) -> Language {
        Language::Rust
    }

    fn counts(&mut self) -> Result<Counts, DemoError> {
        Ok(Counts {
            handled: self.counters.handled.load(Ordering::Relaxed),
            sent: self.counters.sent.load(Ordering::Relaxed),
        })
    }

    fn close(&mut self) -> Result<(), DemoError> {
        if let Some(guard) = self.guard.take() {
            guard.stop();
        }
        Ok(())
    }
}

/// Receives the decisions: the end of the pipeline.
pub fn book(bus: &MessageBus, queue: QueueSettings) -> Result<RustStage<OrderDecision>, DemoError> {
    RustStage::spawn(
        bus,
        "rust-book",
        queue,
        None,
        |decision: OrderDecision, c| {
            let counter = if decision.approved {
                &c.approved
            } else {
                &c.refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(())
        },
    )
}
