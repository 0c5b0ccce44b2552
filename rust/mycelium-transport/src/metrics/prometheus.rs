//! Prometheus text exposition format 0.0.4.
//!
//! Written by hand: the format is a few lines of text per sample, and the `prometheus` or
//! `metrics-exporter-prometheus` crates would mean keeping a second registry in sync with the
//! bus's own atomics, for no gain in a read-only export of a snapshot.

use std::collections::HashMap;
use std::fmt::Write;

use super::{MetricsSnapshot, SubscriberMetrics, TypeMetrics};

const NANOS_PER_SECOND: f64 = 1e9;

/// Escapes a label value: backslash, double quote and line feed must be escaped.
fn escape_label(value: &str) -> String {
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
    for (name, kind, help, get) in subscriber_series {
        header(&mut out, name, kind, help);
        for s in &snapshot.subscribers {
            let type_id = s.type_id.to_string();
            let id = s.id.to_string();
            let l = labels(&[
                ("type_id", Some(&type_id)),
                ("message", names.get(&s.type_id).copied()),
                ("subscriber", Some(&id)),
                ("label", s.label.as_deref()),
            ]);
            sample(&mut out, name, &l, get(s));
        }
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
}
