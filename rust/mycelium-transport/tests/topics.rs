//! Named topics on the bus: pattern subscriptions next to plain ones, the index against a
//! simple reference matcher (proptest, PROPTEST_CASES cases; 10 000 in CI), and 10 000
//! patterns on one type.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::Reading;
use mycelium_transport::keys::PatternIndex;
use mycelium_transport::{MessageBus, RawSubscription, SubscribeOptions, TopicName, TopicPattern};
use proptest::prelude::*;

fn name(t: &str) -> TopicName {
    TopicName::new(t).unwrap()
}

fn pattern(p: &str) -> TopicPattern {
    TopicPattern::new(p).unwrap()
}

fn drain(sub: &RawSubscription) -> Vec<Option<String>> {
    let mut got = Vec::new();
    while let Ok(env) = sub.try_recv() {
        got.push(env.topic.map(|t| t.as_str().to_owned()));
    }
    got
}

#[test]
fn pattern_subscribers_get_matching_topics_plain_ones_get_everything() {
    let bus = MessageBus::new();
    let plain = bus.subscribe_raw(1, SubscribeOptions::default());
    let btc = bus.subscribe_raw(
        1,
        SubscribeOptions::default().with_pattern(pattern("ticks/BTC-USD")),
    );
    let any_tick = bus.subscribe_raw(
        1,
        SubscribeOptions::default().with_pattern(pattern("ticks/*")),
    );
    let deep = bus.subscribe_raw(
        1,
        SubscribeOptions::default().with_pattern(pattern("ticks/>")),
    );
    let other_type = bus.subscribe_raw(2, SubscribeOptions::default().with_pattern(pattern(">")));

    bus.publish_raw_on(1, &name("ticks/BTC-USD"), Bytes::from_static(b"1"))
        .unwrap();
    bus.publish_raw_on(1, &name("ticks/ETH-USD"), Bytes::from_static(b"2"))
        .unwrap();
    bus.publish_raw_on(1, &name("ticks/ETH-USD/1m"), Bytes::from_static(b"3"))
        .unwrap();
    bus.publish_raw(1, Bytes::from_static(b"4")).unwrap();

    let t = |s: &str| Some(s.to_owned());
    assert_eq!(
        drain(&plain),
        [
            t("ticks/BTC-USD"),
            t("ticks/ETH-USD"),
            t("ticks/ETH-USD/1m"),
            None
        ],
        "a subscriber without a pattern sees every message of its type, as before"
    );
    assert_eq!(drain(&btc), [t("ticks/BTC-USD")]);
    assert_eq!(drain(&any_tick), [t("ticks/BTC-USD"), t("ticks/ETH-USD")]);
    assert_eq!(
        drain(&deep),
        [
            t("ticks/BTC-USD"),
            t("ticks/ETH-USD"),
            t("ticks/ETH-USD/1m")
        ]
    );
    assert!(
        drain(&other_type).is_empty(),
        "topics route within their type only"
    );

    // Per-type metrics count every publish once.
    let m = bus.metrics();
    assert_eq!(m.type_metrics(1).unwrap().published, 4);

    // Unsubscribing a pattern subscriber takes it out of the index.
    drop(any_tick);
    bus.publish_raw_on(1, &name("ticks/SOL-USD"), Bytes::from_static(b"5"))
        .unwrap();
    assert_eq!(drain(&deep), [t("ticks/SOL-USD")]);
    assert_eq!(drain(&btc), Vec::<Option<String>>::new());
    assert_eq!(bus.subscriber_count(1), 3);
}

#[test]
fn typed_publish_on_carries_the_topic() {
    let bus = MessageBus::new();
    let sub = bus
        .subscribe::<Reading>(SubscribeOptions::default().with_pattern(pattern("sensors/*/temp")));
    let reading = Reading {
        sensor: 7,
        value: -3,
    };
    bus.publish_on(&name("sensors/7/temp"), &reading).unwrap();
    bus.publish_on(&name("sensors/7/humidity"), &reading)
        .unwrap();
    bus.publish(&reading).unwrap();
    assert_eq!(sub.try_recv().unwrap(), reading);
    assert!(sub.try_recv().is_err(), "only the matching topic arrives");
}

#[test]
fn ten_thousand_patterns_on_one_type() {
    let bus = MessageBus::new();
    let subs: Vec<RawSubscription> = (0..10_000)
        .map(|i| {
            bus.subscribe_raw(
                1,
                SubscribeOptions::new(4, mycelium_transport::OverflowPolicy::DropOldest)
                    .with_pattern(pattern(&format!("ticks/S{i}"))),
            )
        })
        .collect();
    let wide = bus.subscribe_raw(
        1,
        SubscribeOptions::default().with_pattern(pattern("ticks/*")),
    );
    bus.publish_raw_on(1, &name("ticks/S4242"), Bytes::from_static(b"x"))
        .unwrap();
    let hit: Vec<usize> = subs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.try_recv().is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hit, [4242]);
    assert!(wide.try_recv().is_ok());
}

// ---- the index against a reference matcher ----

/// The obvious definition, segment by segment.
fn reference(pattern: &[&str], topic: &[&str]) -> bool {
    match (pattern.split_first(), topic.split_first()) {
        (Some((&">", _)), Some(_)) => true,
        (Some((&"*", p)), Some((_, t))) => reference(p, t),
        (Some((a, p)), Some((b, t))) => a == b && reference(p, t),
        (None, None) => true,
        _ => false,
    }
}

fn segment() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("c")]
}

fn topic() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(segment(), 1..5)
}

fn pattern_segments() -> impl Strategy<Value = Vec<&'static str>> {
    (
        prop::collection::vec(prop_oneof![3 => segment(), 1 => Just("*")], 0..4),
        prop::bool::weighted(0.25),
    )
        .prop_filter_map("a pattern has at least one segment", |(mut segs, tail)| {
            if tail {
                segs.push(">");
            }
            (!segs.is_empty()).then_some(segs)
        })
}

proptest! {
    #[test]
    fn the_index_matches_exactly_what_the_reference_does(
        patterns in prop::collection::vec(pattern_segments(), 1..24),
        removed in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        topics in prop::collection::vec(topic(), 1..8),
    ) {
        let mut index = PatternIndex::default();
        let mut live: BTreeSet<usize> = BTreeSet::new();
        for (i, p) in patterns.iter().enumerate() {
            index.insert(&pattern(&p.join("/")), i);
            live.insert(i);
        }
        for r in &removed {
            let i = r.index(patterns.len());
            let was = live.remove(&i);
            prop_assert_eq!(index.remove(&pattern(&patterns[i].join("/")), |v| *v == i), was);
        }
        prop_assert_eq!(index.len(), live.len());
        for t in &topics {
            let mut got = Vec::new();
            index.matches(&t.join("/"), &mut got);
            got.sort_unstable();
            let expected: Vec<usize> = live
                .iter()
                .copied()
                .filter(|&i| reference(&patterns[i], t))
                .collect();
            prop_assert_eq!(&got, &expected, "topic {}", t.join("/"));
            // TopicPattern::matches agrees too.
            for &i in &live {
                prop_assert_eq!(
                    pattern(&patterns[i].join("/")).matches(&name(&t.join("/"))),
                    reference(&patterns[i], t)
                );
            }
        }
    }
}
