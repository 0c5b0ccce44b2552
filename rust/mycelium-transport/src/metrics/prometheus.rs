//! Prometheus text exposition format 0.0.4.
//!
//! Written by hand: the format is a few lines of text per sample, and the `prometheus` or
//! `metrics-exporter-prometheus` crates would mean keeping a second registry in sync with the
//! bus's own atomics, for no gain in a read-only export of a snapshot.

use std::collections::HashMap;
use std::fmt::Write;

use super::{MetricsSnapshot, ServiceMetrics, SubscriberMetrics, TopicMetrics, TypeMetrics};

const NANOS_PER_SECOND: f64 = 1e9;

/// Escapes a Prometheus label value: backslash, double quote and line feed must be escaped.
/// Public (as `prometheus_escape_label`) for crates that append their own series, such as
/// the socket bridges' counters.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Renders `{k="v",...}` from pairs, skipping absent values.
fn labels(pairs: &[(&str, Option<&str>)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}=\"{}\"", escape_label(v))))
        .collect();
    if body.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", body.join(","))
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

fn type_labels(t: &TypeMetrics) -> (String, Option<&str>) {
    (t.type_id.to_string(), t.name.as_deref())
}

pub(super) fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::new();

    header(
        &mut out,
        "mycelium_bus_closed",
        "gauge",
        "1 once the bus has been closed, else 0.",
    );
    sample(
        &mut out,
        "mycelium_bus_closed",
        "",
        u8::from(snapshot.closed),
    );

    let refused = "mycelium_publishes_refused_total";
    header(
        &mut out,
        refused,
        "counter",
        "Publishes refused, by reason (closed, too_large, queue_full, interrupted, invalid, unknown_type).",
    );
    for (reason, count) in &snapshot.refused {
        sample(
            &mut out,
            refused,
            &labels(&[("reason", Some(reason))]),
            count,
        );
    }

    type Getter = fn(&TypeMetrics) -> u64;
    let type_counters: [(&str, &str, &str, Getter); 5] = [
        (
            "mycelium_messages_published_total",
            "counter",
            "Publishes accepted by the bus, per message type.",
            |t| t.published,
        ),
        (
            "mycelium_published_bytes_total",
            "counter",
            "Payload bytes of accepted publishes, per message type.",
            |t| t.published_bytes,
        ),
        (
            "mycelium_messages_delivered_total",
            "counter",
            "Messages taken from a queue by a subscriber, per message type.",
            |t| t.delivered,
        ),
        (
            "mycelium_messages_dropped_total",
            "counter",
            "Messages a subscriber did not get (evicted, refused, or queued at unsubscribe).",
            |t| t.dropped,
        ),
        (
            "mycelium_subscribers",
            "gauge",
            "Live subscriptions, per message type.",
            |t| t.subscribers as u64,
        ),
    ];
    for (name, kind, help, get) in type_counters {
        header(&mut out, name, kind, help);
        for t in &snapshot.types {
            let (id, message) = type_labels(t);
            let l = labels(&[("type_id", Some(&id)), ("message", message)]);
            sample(&mut out, name, &l, get(t));
        }
    }

    // Per topic only when enabled (`MessageBus::enable_topic_metrics`): a series per topic
    // is what the limit exists to bound.
    type TopicGetter = fn(&TopicMetrics) -> u64;
    let topic_counters: [(&str, &str, TopicGetter); 2] = [
        (
            "mycelium_topic_messages_published_total",
            "Publishes accepted, per message type and topic (opt-in, up to a limit of topics).",
            |t| t.published,
        ),
        (
            "mycelium_topic_published_bytes_total",
            "Payload bytes of accepted publishes, per message type and topic (opt-in).",
            |t| t.published_bytes,
        ),
    ];
    if !snapshot.topics.is_empty() || snapshot.topics_untracked > 0 {
        for (name, help, get) in topic_counters {
            header(&mut out, name, "counter", help);
            for t in &snapshot.topics {
                let id = t.type_id.to_string();
                let l = labels(&[
                    ("type_id", Some(&id)),
                    ("message", t.name.as_deref()),
                    ("topic", Some(&t.topic)),
                ]);
                sample(&mut out, name, &l, get(t));
            }
        }
        let untracked = "mycelium_topic_messages_untracked_total";
        header(
            &mut out,
            untracked,
            "counter",
            "Publishes under a topic beyond the per-topic metrics' limit (counted together).",
        );
        sample(&mut out, untracked, "", snapshot.topics_untracked);
    }

    let hist = "mycelium_delivery_latency_seconds";
    header(
        &mut out,
        hist,
        "histogram",
        "Time from publish to dequeue by a subscriber, per message type.",
    );
    for t in &snapshot.types {
        let (id, message) = type_labels(t);
        for bucket in &t.latency.buckets {
            let le = (bucket.le_ns as f64 / NANOS_PER_SECOND).to_string();
            let l = labels(&[
                ("type_id", Some(&id)),
                ("message", message),
                ("le", Some(&le)),
            ]);
            sample(
                &mut out,
                &format!("{hist}_bucket"),
                &l,
                bucket.cumulative_count,
            );
        }
        let l = labels(&[
            ("type_id", Some(&id)),
            ("message", message),
            ("le", Some("+Inf")),
        ]);
        sample(&mut out, &format!("{hist}_bucket"), &l, t.latency.count);
        let l = labels(&[("type_id", Some(&id)), ("message", message)]);
        sample(
            &mut out,
            &format!("{hist}_sum"),
            &l,
            t.latency.sum_ns as f64 / NANOS_PER_SECOND,
        );
        sample(&mut out, &format!("{hist}_count"), &l, t.latency.count);
    }

    let names: HashMap<u16, &str> = snapshot
        .types
        .iter()
        .filter_map(|t| t.name.as_deref().map(|n| (t.type_id, n)))
        .collect();
    type SubGetter = fn(&SubscriberMetrics) -> u64;
    let subscriber_series: [(&str, &str, &str, SubGetter); 6] = [
        (
            "mycelium_subscriber_queue_depth",
            "gauge",
            "Messages waiting in the subscriber's queue.",
            |s| s.queue_depth as u64,
        ),
        (
            "mycelium_subscriber_queue_capacity",
            "gauge",
            "Capacity of the subscriber's queue.",
            |s| s.capacity as u64,
        ),
        (
            "mycelium_subscriber_delivered_total",
            "counter",
            "Messages the subscriber has taken.",
            |s| s.delivered,
        ),
        (
            "mycelium_subscriber_dropped_total",
            "counter",
            "Messages the subscriber missed.",
            |s| s.dropped,
        ),
        (
            "mycelium_subscriber_handler_errors_total",
            "counter",
            "Handler calls that failed or panicked.",
            |s| s.handler_errors,
        ),
        (
            "mycelium_subscriber_decode_errors_total",
            "counter",
            "Payloads a typed subscription could not decode.",
            |s| s.decode_errors,
        ),
    ];
    let stable = stable_names(&snapshot.subscribers, &names);
    for (name, kind, help, get) in subscriber_series {
        header(&mut out, name, kind, help);
        for (s, subscriber) in snapshot.subscribers.iter().zip(&stable) {
            let type_id = s.type_id.to_string();
            let l = labels(&[
                ("type_id", Some(&type_id)),
                ("message", names.get(&s.type_id).copied()),
                ("subscriber", Some(subscriber)),
            ]);
            sample(&mut out, name, &l, get(s));
        }
    }
    render_services(&mut out, &snapshot.services);
    out
}

/// Request/reply counters, one series set per service (request type, reply type).
fn render_services(out: &mut String, services: &[ServiceMetrics]) {
    type Getter = fn(&ServiceMetrics) -> u64;
    let series: [(&str, &str, &str, Getter); 7] = [
        (
            "mycelium_service_responders",
            "gauge",
            "Live responders of the service.",
            |s| s.responders as u64,
        ),
        (
            "mycelium_service_requests_total",
            "counter",
            "Requests made to the service (including those with no responder).",
            |s| s.requests,
        ),
        (
            "mycelium_service_replies_total",
            "counter",
            "Successful replies delivered to a waiting requester.",
            |s| s.replies,
        ),
        (
            "mycelium_service_timeouts_total",
            "counter",
            "Requests that timed out before the answers they waited for.",
            |s| s.timeouts,
        ),
        (
            "mycelium_service_no_responder_total",
            "counter",
            "Requests refused at once because nobody served the service.",
            |s| s.no_responder,
        ),
        (
            "mycelium_service_responder_failures_total",
            "counter",
            "Failure answers (handler error or panic, full queue, responder gone).",
            |s| s.responder_failures,
        ),
        (
            "mycelium_service_late_replies_total",
            "counter",
            "Answers that arrived after the requester stopped waiting (discarded).",
            |s| s.late_replies,
        ),
    ];
    for (name, kind, help, get) in series {
        header(out, name, kind, help);
        for s in services {
            let request_type = s.request_type.to_string();
            let reply_type = s.reply_type.to_string();
            let l = labels(&[
                ("service", s.name.as_deref()),
                ("request_type", Some(&request_type)),
                ("request", s.request_name.as_deref()),
                ("reply_type", Some(&reply_type)),
                ("reply", s.reply_name.as_deref()),
            ]);
            sample(out, name, &l, get(s));
        }
    }
}

/// A name per subscriber that is the same after a restart, so its series continue in
/// Prometheus: its label, else its message name (or type id); a name that several subscribers
/// share gets `#1`, `#2`, ... in subscription order. (The process-local subscription id would
/// start a new series at every restart.)
fn stable_names(subscribers: &[SubscriberMetrics], names: &HashMap<u16, &str>) -> Vec<String> {
    let mut order: Vec<usize> = (0..subscribers.len()).collect();
    order.sort_by_key(|&i| subscribers[i].id);
    let base = |s: &SubscriberMetrics| match (&s.label, names.get(&s.type_id)) {
        (Some(label), _) => label.clone(),
        (None, Some(message)) => (*message).to_owned(),
        (None, None) => format!("type {}", s.type_id),
    };
    let mut total: HashMap<String, usize> = HashMap::new();
    for s in subscribers {
        *total.entry(base(s)).or_default() += 1;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = vec![String::new(); subscribers.len()];
    for i in order {
        let b = base(&subscribers[i]);
        let n = seen.entry(b.clone()).or_default();
        *n += 1;
        out[i] = if total[&b] > 1 { format!("{b}#{n}") } else { b };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(
            labels(&[("a", Some("1")), ("b", None), ("c", Some("q\""))]),
            r#"{a="1",c="q\""}"#
        );
        assert_eq!(labels(&[("b", None)]), "");
    }

    fn sub(id: u64, type_id: u16, label: Option<&str>) -> SubscriberMetrics {
        SubscriberMetrics {
            id,
            type_id,
            label: label.map(str::to_owned),
            policy: Default::default(),
            capacity: 1,
            queue_depth: 0,
            delivered: 0,
            dropped: 0,
            handler_errors: 0,
            decode_errors: 0,
            last_error: None,
        }
    }

    #[test]
    fn subscriber_names_come_from_labels_and_messages_not_ids() {
        let names: HashMap<u16, &str> = [(1, "TradeTick")].into_iter().collect();
        // listed out of id order on purpose: numbering follows subscription order
        let subs = [
            sub(40, 1, None),
            sub(7, 1, Some("python-strategy")),
            sub(9, 1, None),
            sub(3, 2, None),
            sub(11, 1, Some("dup")),
            sub(12, 1, Some("dup")),
        ];
        assert_eq!(
            stable_names(&subs, &names),
            [
                "TradeTick#2",
                "python-strategy",
                "TradeTick#1",
                "type 2",
                "dup#1",
                "dup#2"
            ]
        );
        // the same subscriptions under other ids (another run) get the same names
        let again = [
            sub(140, 1, None),
            sub(107, 1, Some("python-strategy")),
            sub(109, 1, None),
            sub(103, 2, None),
            sub(111, 1, Some("dup")),
            sub(112, 1, Some("dup")),
        ];
        assert_eq!(stable_names(&again, &names), stable_names(&subs, &names));
    }
}
