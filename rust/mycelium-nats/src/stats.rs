//! Per-connection counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// One monotonically increasing (or set) counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of one NATS join.
#[derive(Debug, Default)]
pub struct NatsStats {
    /// Messages published to NATS.
    pub sent: Counter,
    /// Messages from NATS published on the local bus.
    pub received: Counter,
    /// Messages refused because their fingerprint header differs from ours.
    pub refused: Counter,
    /// Messages from NATS whose payload failed schema validation.
    pub invalid: Counter,
    /// Local messages larger than the server's max_payload (not sent).
    pub too_large: Counter,
    /// Publishes to NATS that failed (connection gone).
    pub send_failed: Counter,
    /// Messages from NATS the local bus refused.
    pub publish_failed: Counter,
    /// Subjects currently subscribed.
    pub subscribed: Counter,
    /// Connections made to a server, the first included.
    pub connections: Counter,
    /// Times the connection to the server was lost.
    pub disconnects: Counter,
    /// Times it was re-established after a loss (the client reconnects by itself, with backoff;
    /// what was published locally meanwhile and could not be sent is in `send_failed`).
    pub reconnects: Counter,
    /// Slow-consumer reports from the client: the server or the client dropped messages for a
    /// subscription of ours that did not keep up.
    pub slow_consumer: Counter,
}

impl NatsStats {
    pub(crate) fn record_event(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Disconnected => self.disconnects.inc(),
            // The client reports its first connection too; every later one is a reconnect.
            async_nats::Event::Connected => {
                let before = self.connections.0.fetch_add(1, Ordering::Relaxed);
                self.reconnects
                    .0
                    .fetch_add(u64::from(before > 0), Ordering::Relaxed);
            }
            async_nats::Event::SlowConsumer(_) => self.slow_consumer.inc(),
            _ => {}
        }
        tracing::info!(event = %event, "NATS connection event");
    }
}
