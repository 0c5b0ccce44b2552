//! The counters of NATS joins as plain values (JSON through serde) and in the Prometheus text
//! format, to sit next to the bus's own metrics the way the socket bridges' counters do
//! (`mycelium_bridge::bridges_prometheus`).

use serde::Serialize;

use crate::NatsStats;

/// One join's counters at one moment; the fields mean what [`NatsStats`]'s do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NatsSnapshot {
    pub sent: u64,
    pub received: u64,
    pub refused: u64,
    pub invalid: u64,
    pub too_large: u64,
    pub send_failed: u64,
    pub publish_failed: u64,
    pub subscribed: u64,
    pub connections: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub slow_consumer: u64,
    pub js_acked: u64,
    pub js_ack_duplicates: u64,
    pub js_redelivered: u64,
    pub js_skipped_duplicates: u64,
    pub js_publish_failed: u64,
    pub requests_sent: u64,
    pub requests_served: u64,
    pub request_failures: u64,
}

impl NatsStats {
    /// The counters now (each read on its own: not one atomic picture of all of them).
    pub fn snapshot(&self) -> NatsSnapshot {
        NatsSnapshot {
            sent: self.sent.get(),
            received: self.received.get(),
            refused: self.refused.get(),
            invalid: self.invalid.get(),
            too_large: self.too_large.get(),
            send_failed: self.send_failed.get(),
            publish_failed: self.publish_failed.get(),
            subscribed: self.subscribed.get(),
            connections: self.connections.get(),
            disconnects: self.disconnects.get(),
            reconnects: self.reconnects.get(),
            slow_consumer: self.slow_consumer.get(),
            js_acked: self.js_acked.get(),
            js_ack_duplicates: self.js_ack_duplicates.get(),
            js_redelivered: self.js_redelivered.get(),
            js_skipped_duplicates: self.js_skipped_duplicates.get(),
            js_publish_failed: self.js_publish_failed.get(),
            requests_sent: self.requests_sent.get(),
            requests_served: self.requests_served.get(),
            request_failures: self.request_failures.get(),
        }
    }
}

/// NATS joins' counters in the Prometheus text format, one series per join labelled `nats`
/// (its server URL, e.g. "nats://10.0.0.5:4222"; never credentials: pass the URL without
/// them), to append to the bus's `MetricsSnapshot::to_prometheus`. Empty without joins.
pub fn nats_prometheus(joins: &[(String, NatsSnapshot)]) -> String {
    use std::fmt::Write;
    type Get = fn(&NatsSnapshot) -> u64;
    let series: [(&str, &str, &str, Get); 20] = [
        (
            "requests_sent_total",
            "counter",
            "Requests of the local bus sent to NATS.",
            |s| s.requests_sent,
        ),
        (
            "requests_served_total",
            "counter",
            "Requests from NATS answered by a local responder.",
            |s| s.requests_served,
        ),
        (
            "request_failures_total",
            "counter",
            "Requests that failed across NATS, either way (no responder, error answer, bad reply).",
            |s| s.request_failures,
        ),
        (
            "sent_total",
            "counter",
            "Messages published to NATS.",
            |s| s.sent,
        ),
        (
            "received_total",
            "counter",
            "Messages from NATS published on the local bus.",
            |s| s.received,
        ),
        (
            "refused_total",
            "counter",
            "Messages from NATS refused: their schema fingerprint differs from ours.",
            |s| s.refused,
        ),
        (
            "invalid_total",
            "counter",
            "Messages from NATS whose payload failed schema validation.",
            |s| s.invalid,
        ),
        (
            "too_large_total",
            "counter",
            "Local messages larger than the server's max_payload, not sent.",
            |s| s.too_large,
        ),
        (
            "send_failed_total",
            "counter",
            "Publishes to NATS that failed.",
            |s| s.send_failed,
        ),
        (
            "publish_failed_total",
            "counter",
            "Messages from NATS the local bus refused.",
            |s| s.publish_failed,
        ),
        ("subscribed", "gauge", "Subjects subscribed now.", |s| {
            s.subscribed
        }),
        (
            "connections_total",
            "counter",
            "Connections made to a server, the first included.",
            |s| s.connections,
        ),
        (
            "disconnects_total",
            "counter",
            "Times the connection to the server was lost.",
            |s| s.disconnects,
        ),
        (
            "reconnects_total",
            "counter",
            "Times the connection was re-established after a loss.",
            |s| s.reconnects,
        ),
        (
            "slow_consumer_total",
            "counter",
            "Slow-consumer reports (messages dropped for a subscription; a lower bound).",
            |s| s.slow_consumer,
        ),
        (
            "js_acked_total",
            "counter",
            "JetStream publishes acknowledged by the stream.",
            |s| s.js_acked,
        ),
        (
            "js_ack_duplicates_total",
            "counter",
            "JetStream publish acks flagged duplicate (the stream already had that message id).",
            |s| s.js_ack_duplicates,
        ),
        (
            "js_redelivered_total",
            "counter",
            "JetStream messages received again (delivery count above 1).",
            |s| s.js_redelivered,
        ),
        (
            "js_skipped_duplicates_total",
            "counter",
            "JetStream redeliveries already delivered locally, not published again.",
            |s| s.js_skipped_duplicates,
        ),
        (
            "js_publish_failed_total",
            "counter",
            "JetStream publish attempts that failed or timed out (each retried).",
            |s| s.js_publish_failed,
        ),
    ];
    let mut out = String::new();
    if joins.is_empty() {
        return out;
    }
    for (suffix, kind, help, get) in series {
        let name = format!("mycelium_nats_{suffix}");
        // Writing into a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (join, stats) in joins {
            let label = mycelium_transport::prometheus_escape_label(join);
            let _ = writeln!(out, "{name}{{nats=\"{label}\"}} {}", get(stats));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_once_per_family_and_per_join() {
        let a = NatsSnapshot {
            reconnects: 3,
            slow_consumer: 5,
            js_ack_duplicates: 4,
            ..Default::default()
        };
        let b = NatsSnapshot {
            sent: 2,
            subscribed: 1,
            ..Default::default()
        };
        let text = nats_prometheus(&[
            ("nats://127.0.0.1:4222".into(), a),
            ("nats://\"odd\"".into(), b),
        ]);
        assert!(text.contains("mycelium_nats_reconnects_total{nats=\"nats://127.0.0.1:4222\"} 3\n"));
        assert!(
            text.contains("mycelium_nats_slow_consumer_total{nats=\"nats://127.0.0.1:4222\"} 5\n")
        );
        assert!(text.contains("mycelium_nats_sent_total{nats=\"nats://\\\"odd\\\"\"} 2\n"));
        assert!(text
            .contains("mycelium_nats_js_ack_duplicates_total{nats=\"nats://127.0.0.1:4222\"} 4\n"));
        assert!(text.contains("# TYPE mycelium_nats_subscribed gauge\n"));
        assert_eq!(
            text.matches("# TYPE mycelium_nats_reconnects_total counter")
                .count(),
            1
        );
        assert_eq!(nats_prometheus(&[]), "");
    }

    #[test]
    fn snapshot_reads_every_counter_and_serializes_by_name() {
        let stats = NatsStats::default();
        stats.sent.inc();
        stats.reconnects.inc();
        stats.reconnects.inc();
        stats.js_skipped_duplicates.inc();
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.sent, snapshot.reconnects), (1, 2));
        assert_eq!(snapshot.js_skipped_duplicates, 1);
        let json = serde_json::to_value(&snapshot).expect("json");
        assert_eq!(json["reconnects"], 2);
        assert_eq!(json["slow_consumer"], 0);
        assert_eq!(json["js_skipped_duplicates"], 1);
        assert_eq!(json.as_object().expect("object").len(), 20);
    }
}
