//! Per-connection counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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

/// A slow-consumer report after this much quiet starts a new burst, which is logged again.
/// async-nats reports every message it drops, so logging each report floods the log with
/// thousands of identical lines a second (a known bug in NATS-based projects).
const BURST_GAP: Duration = Duration::from_secs(1);

/// Counters of one NATS join.
#[derive(Debug, Default)]
pub struct NatsStats {
    /// Messages published to NATS (JetStream mode: once per message, at the first attempt the
    /// client took, whatever its ack).
    pub sent: Counter,
    /// Messages from NATS published on the local bus.
    pub received: Counter,
    /// Messages refused because their fingerprint header differs from ours.
    pub refused: Counter,
    /// Messages from NATS whose payload failed schema validation.
    pub invalid: Counter,
    /// Local messages larger than the server's max_payload (not sent).
    pub too_large: Counter,
    /// Publishes to NATS that failed (connection gone). Core mode; JetStream mode retries and
    /// counts in `js_publish_failed`.
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
    /// Slow-consumer reports: the client dropped a message for a subscription of ours whose
    /// buffer was full (one report per dropped message), or the server reported us as a slow
    /// consumer. A lower bound of the drops: async-nats discards reports when its own event
    /// queue (128) is full.
    pub slow_consumer: Counter,
    /// JetStream: publishes the stream acknowledged (once per message, however many attempts).
    pub js_acked: Counter,
    /// JetStream: of those, acks flagged duplicate: the stream already had that message id (a
    /// resend whose earlier attempt was stored after all), so it was not stored twice.
    pub js_ack_duplicates: Counter,
    /// JetStream: messages the consumer received again (delivery count above 1: an ack that
    /// did not reach the server in time, a restart).
    pub js_redelivered: Counter,
    /// JetStream: redelivered messages not published locally again, because this process had
    /// already delivered their stream sequence for that durable.
    pub js_skipped_duplicates: Counter,
    /// JetStream: publish attempts that failed or were not acked in time (each is retried
    /// with the same message id until acked).
    pub js_publish_failed: Counter,
    /// Requests of the local bus sent to NATS (no local responder served the service).
    pub requests_sent: Counter,
    /// Requests from NATS answered with a reply by a local responder.
    pub requests_served: Counter,
    /// Requests that failed across NATS, either way: nobody on NATS serves the service, an
    /// error answer, a reply that does not validate, a request from NATS the local bus failed.
    /// (A timeout is the requester's own, counted in the bus's service metrics.)
    pub request_failures: Counter,
    /// When the last slow-consumer report came (bursts are logged once).
    last_slow_report: Mutex<Option<Instant>>,
}

impl NatsStats {
    pub(crate) fn record_event(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::SlowConsumer(_)
            | async_nats::Event::ServerError(async_nats::ServerError::SlowConsumer(_)) => {
                self.slow_consumer_report(event);
                return;
            }
            async_nats::Event::Disconnected => self.disconnects.inc(),
            // The client reports its first connection too; every later one is a reconnect.
            async_nats::Event::Connected => {
                let before = self.connections.0.fetch_add(1, Ordering::Relaxed);
                self.reconnects
                    .0
                    .fetch_add(u64::from(before > 0), Ordering::Relaxed);
            }
            _ => {}
        }
        tracing::info!(event = %event, "NATS connection event");
    }

    /// Counts every report, logs the first of each burst.
    fn slow_consumer_report(&self, event: &async_nats::Event) {
        self.slow_consumer.inc();
        let now = Instant::now();
        let new_burst = {
            let mut last = self.last_slow_report.lock();
            let new_burst = last.is_none_or(|at| now.duration_since(at) >= BURST_GAP);
            *last = Some(now);
            new_burst
        };
        if new_burst {
            tracing::warn!(
                event = %event,
                total = self.slow_consumer.get(),
                "NATS slow consumer: messages dropped (logged once per burst; counted in slow_consumer)"
            );
        }
    }
}
