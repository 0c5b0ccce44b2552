//! Per-publisher ordering with several publisher threads and several subscribers.

mod common;

use std::collections::HashMap;
use std::thread;

use common::{tagged, untag};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

const TYPE: u16 = 3;
const PUBLISHERS: u32 = 4;
const PER_PUBLISHER: u64 = 2_000;

/// Checks that, per publisher, sequence numbers only increase; returns how many were seen.
fn check_order(seen: &[(u32, u64)], gaps_allowed: bool) -> HashMap<u32, u64> {
    let mut last: HashMap<u32, u64> = HashMap::new();
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for &(publisher, seq) in seen {
        if let Some(&prev) = last.get(&publisher) {
            assert!(seq > prev, "publisher {publisher}: {seq} after {prev}");
            if !gaps_allowed {
                assert_eq!(seq, prev + 1, "publisher {publisher}: gap after {prev}");
            }
        } else if !gaps_allowed {
            assert_eq!(seq, 0, "publisher {publisher} started at {seq}");
        }
        last.insert(publisher, seq);
        *counts.entry(publisher).or_default() += 1;
    }
    counts
}

#[test]
fn each_publishers_messages_arrive_in_order_at_every_subscriber() {
    let bus = MessageBus::new();
    // Small Block queues force publishers to interleave and wait on each other.
    let lossless: Vec<_> = (0..3)
        .map(|_| bus.subscribe_raw(TYPE, SubscribeOptions::new(16, OverflowPolicy::Block)))
        .collect();
    let lossy = bus.subscribe_raw(TYPE, SubscribeOptions::new(8, OverflowPolicy::DropOldest));

    let consumers: Vec<_> = lossless
        .into_iter()
        .map(|sub| {
            thread::spawn(move || {
                let mut seen = Vec::new();
                while let Some(env) = sub.recv_blocking() {
                    seen.push(untag(&env.payload));
                }
                seen
            })
        })
        .collect();
    let lossy_consumer = thread::spawn(move || {
        let mut seen = Vec::new();
        while let Some(env) = lossy.recv_blocking() {
            seen.push(untag(&env.payload));
        }
        seen
    });

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = bus.clone();
            thread::spawn(move || {
                for seq in 0..PER_PUBLISHER {
                    bus.publish_raw(TYPE, tagged(p, seq)).unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().unwrap();
    }
    bus.close();

    for consumer in consumers {
        let seen = consumer.join().unwrap();
        let counts = check_order(&seen, false);
        assert_eq!(counts.len(), PUBLISHERS as usize);
        assert!(counts.values().all(|&c| c == PER_PUBLISHER), "{counts:?}");
    }
    // The drop-oldest subscriber may miss messages but never reorders them.
    let seen = lossy_consumer.join().unwrap();
    check_order(&seen, true);

    let t = bus.metrics().type_metrics(TYPE).unwrap().clone();
    let total = u64::from(PUBLISHERS) * PER_PUBLISHER;
    assert_eq!(t.published, total);
    assert_eq!(t.delivered + t.dropped, total * 4);
    assert_eq!(t.delivered, total * 3 + seen.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publishers_keep_order_too() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(4, OverflowPolicy::Block));
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for seq in 0..500 {
                    bus.publish_raw_async(TYPE, tagged(p, seq)).await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    while seen.len() < 1500 {
        seen.push(untag(&sub.recv().await.unwrap().payload));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let counts = check_order(&seen, false);
    assert!(counts.values().all(|&c| c == 500), "{counts:?}");
}
