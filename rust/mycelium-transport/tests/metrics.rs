//! Metrics: exact reconciliation, JSON and Prometheus output.

mod common;

use std::collections::HashMap;
use std::thread;

use bytes::Bytes;
use common::prometheus_check::check;
use common::{tagged, Reading};
use mycelium_protocol::Message;
use mycelium_transport::{
    MessageBus, MetricsSnapshot, OverflowPolicy, SubscribeOptions, LATENCY_SAMPLE_EVERY,
};

const TYPE: u16 = 12;
const OTHER: u16 = 13;

/// For each type: every (publish, subscriber) pair is delivered, dropped or still queued, and
/// per-subscriber counters add up to the type's.
fn assert_reconciles(m: &MetricsSnapshot, type_id: u16, subscribers: u64) {
    let t = m.type_metrics(type_id).unwrap();
    let queued: u64 = m
        .subscribers
        .iter()
        .filter(|s| s.type_id == type_id)
        .map(|s| s.queue_depth as u64)
        .sum();
    assert_eq!(
        t.published * subscribers,
        t.delivered + t.dropped + queued,
        "type {type_id}: {t:?}"
    );
    let subs: Vec<_> = m
        .subscribers
        .iter()
        .filter(|s| s.type_id == type_id)
        .collect();
    assert_eq!(subs.iter().map(|s| s.delivered).sum::<u64>(), t.delivered);
    assert_eq!(subs.iter().map(|s| s.dropped).sum::<u64>(), t.dropped);
    // Each subscriber samples its first take and every LATENCY_SAMPLE_EVERY-th after it.
    let samples: u64 = subs
        .iter()
        .map(|s| s.delivered.div_ceil(LATENCY_SAMPLE_EVERY))
        .sum();
    assert_eq!(t.latency.count, samples, "latency samples: {t:?}");
}

#[test]
fn counters_reconcile_exactly_under_concurrent_load() {
    let bus = MessageBus::new();
    let block = bus.subscribe_raw(TYPE, SubscribeOptions::new(32, OverflowPolicy::Block));
    let newest = bus.subscribe_raw(TYPE, SubscribeOptions::new(4, OverflowPolicy::DropOldest));
    let strict = bus.subscribe_raw(TYPE, SubscribeOptions::new(4, OverflowPolicy::FailPublish));
    let idle = bus.subscribe_raw(TYPE, SubscribeOptions::new(1000, OverflowPolicy::Block));
    let other = bus.subscribe_raw(OTHER, SubscribeOptions::new(8, OverflowPolicy::DropOldest));

    let consumer = thread::spawn(move || {
        let mut n = 0u64;
        while block.recv_blocking().is_some() {
            n += 1;
            // Take from the lossy queues now and then so all outcomes occur.
            if n.is_multiple_of(7) {
                let _ = newest.try_recv();
                let _ = strict.try_recv();
            }
        }
        (n, block, newest, strict)
    });
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            let bus = bus.clone();
            thread::spawn(move || {
                let mut full = 0u64;
                for seq in 0..300 {
                    if bus.publish_raw(TYPE, tagged(p, seq)).is_err() {
                        full += 1;
                    }
                    bus.publish_raw(OTHER, tagged(p, seq)).unwrap();
                }
                full
            })
        })
        .collect();
    let refused: u64 = publishers.into_iter().map(|p| p.join().unwrap()).sum();
    bus.close();
    // Subscriptions are kept alive so their counters stay in the snapshot.
    let (consumed, block, newest, strict) = consumer.join().unwrap();

    let m = bus.metrics();
    assert_eq!(m.type_metrics(TYPE).unwrap().published, 900);
    assert_eq!(m.type_metrics(OTHER).unwrap().published, 900);
    assert_eq!(consumed, 900, "the Block subscriber got everything");
    assert_eq!(m.subscriber(idle.id()).unwrap().queue_depth, 900);
    assert_eq!(m.subscriber(strict.id()).unwrap().dropped, refused);
    assert_reconciles(&m, TYPE, 4);
    assert_reconciles(&m, OTHER, 1);
    assert_eq!(m.subscriber(other.id()).unwrap().dropped, 900 - 8);
    assert_eq!(
        m.type_metrics(TYPE).unwrap().published_bytes,
        900 * tagged(0, 0).len() as u64
    );

    // Unsubscribing moves the rest of a queue to dropped; totals still reconcile.
    drop(idle);
    drop(newest);
    let m = bus.metrics();
    let t = m.type_metrics(TYPE).unwrap();
    let queued: u64 = m
        .subscribers
        .iter()
        .filter(|s| s.type_id == TYPE)
        .map(|s| s.queue_depth as u64)
        .sum();
    assert_eq!(t.published * 4, t.delivered + t.dropped + queued);
    drop((block, strict));
}

#[test]
fn publishing_without_subscribers_only_counts() {
    let bus = MessageBus::new();
    bus.publish_raw(TYPE, Bytes::from_static(b"abc")).unwrap();
    bus.publish_raw(TYPE, Bytes::from_static(b"de")).unwrap();
    let m = bus.metrics();
    let t = m.type_metrics(TYPE).unwrap();
    assert_eq!(
        (t.published, t.published_bytes, t.delivered, t.dropped),
        (2, 5, 0, 0)
    );
    assert_eq!(t.subscribers, 0);
    assert!(m.subscribers.is_empty());
}

#[test]
fn latency_is_sampled_per_subscriber() {
    assert_eq!(LATENCY_SAMPLE_EVERY, 16, "the counts below assume 16");
    let bus = MessageBus::new();
    let a = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    let b = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    for seq in 0..40 {
        bus.publish_raw(TYPE, tagged(0, seq)).unwrap();
    }
    let mut out = Vec::new();
    // a: takes 1..=4, sampled 1. b: takes 1..=40 in two calls, sampled 1, 17, 33.
    assert_eq!(a.drain_into(&mut out, 4), 4);
    assert_eq!(b.drain_into(&mut out, 20), 20);
    assert!(b.try_recv().is_ok());
    assert_eq!(b.drain_into(&mut out, 100), 19);
    let m = bus.metrics();
    assert_eq!(m.type_metrics(TYPE).unwrap().delivered, 44);
    let l = &m.type_metrics(TYPE).unwrap().latency;
    assert_eq!(l.count, 4);
    assert!(l.p50_ns <= l.p90_ns && l.p90_ns <= l.p99_ns && l.p99_ns <= l.max_ns);
    assert!(l.max_ns > 0);
    assert_eq!(
        l.buckets.last().unwrap().cumulative_count,
        4,
        "all within ~17 s"
    );
}

fn busy_bus() -> (MessageBus, Vec<mycelium_transport::RawSubscription>) {
    let bus = MessageBus::new();
    let mut names = HashMap::new();
    names.insert(TYPE, "Odd \"quoted\" \\ name".to_owned());
    bus.set_type_names(names);
    let subs = vec![
        bus.subscribe_raw(TYPE, SubscribeOptions::default().with_label("ui\nfeed")),
        bus.subscribe_raw(TYPE, SubscribeOptions::new(2, OverflowPolicy::DropOldest)),
        bus.subscribe_raw(Reading::TYPE_ID, SubscribeOptions::default()),
    ];
    for seq in 0..5 {
        bus.publish_raw(TYPE, tagged(0, seq)).unwrap();
    }
    bus.publish(&Reading {
        sensor: 1,
        value: 2,
    })
    .unwrap();
    bus.publish_raw(OTHER, Bytes::new()).unwrap();
    let _ = subs[0].try_recv();
    let _ = subs[2].try_recv();
    subs[1].record_handler_error();
    (bus, subs)
}

#[test]
fn prometheus_output_parses_and_matches_the_snapshot() {
    let (bus, subs) = busy_bus();
    let m = bus.metrics();
    let text = m.to_prometheus();
    let exp = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    let odd = [("type_id", "12"), ("message", "Odd \"quoted\" \\ name")];
    assert_eq!(exp.value("mycelium_messages_published_total", &odd), 5.0);
    assert_eq!(exp.value("mycelium_messages_delivered_total", &odd), 1.0);
    assert_eq!(exp.value("mycelium_messages_dropped_total", &odd), 3.0);
    assert_eq!(exp.value("mycelium_subscribers", &odd), 2.0);
    assert_eq!(
        exp.value(
            "mycelium_messages_published_total",
            &[("type_id", "100"), ("message", "Reading")]
        ),
        1.0
    );
    // No name known for OTHER: the message label is left out.
    let other = exp.find("mycelium_messages_published_total", &[("type_id", "13")]);
    assert_eq!(other.len(), 1);
    assert!(!other[0].labels.contains_key("message"));

    // Subscribers are named by label, else by message (stable across restarts), not by id.
    assert_eq!(
        exp.value(
            "mycelium_subscriber_queue_depth",
            &[("subscriber", "ui\nfeed")]
        ),
        4.0
    );
    let _ = &subs;
    assert_eq!(
        exp.value(
            "mycelium_subscriber_handler_errors_total",
            &[("subscriber", "Odd \"quoted\" \\ name")]
        ),
        1.0
    );
    assert_eq!(
        exp.value("mycelium_delivery_latency_seconds_count", &odd),
        m.type_metrics(TYPE).unwrap().latency.count as f64
    );
    assert_eq!(
        exp.value(
            "mycelium_delivery_latency_seconds_bucket",
            &[("type_id", "12"), ("le", "+Inf")]
        ),
        1.0
    );
    for family in exp.types.keys() {
        assert!(exp.helps.contains_key(family), "{family} has no HELP");
    }
    assert_eq!(exp.types["mycelium_delivery_latency_seconds"], "histogram");
    assert_eq!(exp.value("mycelium_bus_closed", &[]), 0.0);
}

#[test]
fn json_output_round_trips_the_snapshot_fields() {
    let (bus, subs) = busy_bus();
    let m = bus.metrics();
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    let types = json["types"].as_array().unwrap();
    assert_eq!(types.len(), 3);
    let t = types.iter().find(|t| t["type_id"] == 12).unwrap();
    assert_eq!(t["published"], 5);
    assert_eq!(t["dropped"], 3);
    assert_eq!(t["name"], "Odd \"quoted\" \\ name");
    assert!(t["latency"]["p99_ns"].is_u64());
    let s = json["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == subs[1].id())
        .unwrap();
    assert_eq!(s["policy"], "drop_oldest");
    assert_eq!(s["queue_depth"], 2);
    assert_eq!(s["handler_errors"], 1);
}

#[test]
fn explicit_names_win_over_learnt_ones() {
    let bus = MessageBus::new();
    bus.publish(&Reading {
        sensor: 0,
        value: 0,
    })
    .unwrap();
    assert_eq!(bus.type_name(Reading::TYPE_ID).as_deref(), Some("Reading"));
    bus.set_type_name(Reading::TYPE_ID, "sensors.Reading");
    assert_eq!(
        bus.metrics()
            .type_metrics(Reading::TYPE_ID)
            .unwrap()
            .name
            .as_deref(),
        Some("sensors.Reading")
    );
    assert_eq!(bus.type_name(999), None);
}

#[test]
fn checker_rejects_malformed_lines() {
    let good = "# HELP a_total help\n# TYPE a_total counter\na_total{x=\"1\"} 3\n";
    assert!(check(good).is_ok());
    for bad in [
        "a_total 1\n",                                       // no TYPE
        "# TYPE a counter\na{x=1} 1\n",                      // unquoted value
        "# TYPE a counter\na{x=\"1\"}1\n",                   // no space
        "# TYPE a counter\na 1x\n",                          // bad number
        "# TYPE a counter\n# TYPE a counter\na 1\n",         // TYPE twice
        "# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n", // family split
        "# TYPE 1a counter\n1a 1\n",                         // bad name
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", // count mismatch
        "# TYPE a counter\na{x=\"\\q\"} 1\n",                                // bad escape
    ] {
        assert!(check(bad).is_err(), "accepted: {bad:?}");
    }
}

#[test]
fn refused_publishes_are_counted_by_reason() {
    let bus = MessageBus::with_config(mycelium_transport::BusConfig { max_payload: 16 });
    let strict = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::FailPublish));
    bus.publish_raw(TYPE, tagged(0, 0)).unwrap();
    assert!(
        bus.publish_raw(TYPE, tagged(0, 1)).is_err(),
        "the fail subscriber is full"
    );
    assert!(
        bus.publish_raw(TYPE, Bytes::from(vec![0u8; 17])).is_err(),
        "too large"
    );
    bus.record_refused(mycelium_transport::RefusedReason::UnknownType);
    bus.close();
    assert!(bus.publish_raw(TYPE, tagged(0, 2)).is_err(), "closed");
    assert!(
        bus.publish(&Reading {
            sensor: 1,
            value: 2
        })
        .is_err(),
        "closed, typed"
    );

    let m = bus.metrics();
    let count = |reason: &str| m.refused[reason];
    assert_eq!(count("queue_full"), 1);
    assert_eq!(count("too_large"), 1);
    assert_eq!(count("closed"), 2);
    assert_eq!(count("unknown_type"), 1);
    assert_eq!((count("invalid"), count("interrupted")), (0, 0));

    let text = m.to_prometheus();
    let exp = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        exp.value("mycelium_publishes_refused_total", &[("reason", "closed")]),
        2.0
    );
    assert_eq!(
        exp.value("mycelium_publishes_refused_total", &[("reason", "invalid")]),
        0.0
    );
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(json["refused"]["queue_full"], 1);
    drop(strict);
}

/// Per-topic metrics (issue 14): off by default, then counted one by one up to the limit and
/// together beyond it, in the snapshot, its JSON and Prometheus; plain publishes never count.
#[test]
fn per_topic_metrics_are_opt_in_and_bounded() {
    use mycelium_transport::TopicName;
    let bus = MessageBus::new();
    bus.set_type_names(HashMap::from([(TYPE, "Tick".to_string())]));
    let _sub = bus.subscribe_raw(TYPE, SubscribeOptions::default().with_capacity(64));
    let topic = |t: &str| TopicName::new(t).unwrap();
    bus.publish_raw_on(TYPE, &topic("ticks/BTC"), Bytes::from_static(b"123"))
        .unwrap();
    let off = bus.metrics();
    assert!(off.topics.is_empty() && off.topics_untracked == 0);
    assert!(!off.to_prometheus().contains("mycelium_topic_"));
    assert_eq!(bus.topic_metrics_limit(), 0);

    bus.enable_topic_metrics(2);
    for (t, payload) in [
        ("ticks/BTC", &b"12"[..]),
        ("ticks/ETH", b"1"),
        ("ticks/BTC", b"1234"),
        ("ticks/SOL", b"1"),
        ("ticks/XRP", b"1"),
    ] {
        bus.publish_raw_on(TYPE, &topic(t), Bytes::copy_from_slice(payload))
            .unwrap();
    }
    bus.publish_raw(TYPE, Bytes::from_static(b"plain")).unwrap();
    bus.publish_raw_on(OTHER, &topic("ticks/BTC"), Bytes::from_static(b"1"))
        .unwrap();
    let m = bus.metrics();
    let rows: Vec<_> = m
        .topics
        .iter()
        .map(|t| (t.type_id, t.topic.as_str(), t.published, t.published_bytes))
        .collect();
    assert_eq!(rows, [(TYPE, "ticks/BTC", 2, 6), (TYPE, "ticks/ETH", 1, 1)]);
    assert_eq!(m.topics[0].name.as_deref(), Some("Tick"));
    assert_eq!(
        m.topics_untracked, 3,
        "SOL, XRP and OTHER's topic came after the limit"
    );
    assert_eq!(
        m.type_metrics(TYPE).unwrap().published,
        7,
        "per type as ever"
    );

    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(json["topics"][0]["topic"], "ticks/BTC");
    assert_eq!(json["topics"][0]["published_bytes"], 6);
    assert_eq!(json["topics_untracked"], 3);

    let text = m.to_prometheus();
    let exp = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let btc = [
        ("type_id", "12"),
        ("message", "Tick"),
        ("topic", "ticks/BTC"),
    ];
    assert_eq!(
        exp.value("mycelium_topic_messages_published_total", &btc),
        2.0
    );
    assert_eq!(exp.value("mycelium_topic_published_bytes_total", &btc), 6.0);
    assert_eq!(
        exp.value("mycelium_topic_messages_untracked_total", &[]),
        3.0
    );

    bus.enable_topic_metrics(0);
    assert!(
        bus.metrics().topics.is_empty(),
        "off again, counts forgotten"
    );
}
