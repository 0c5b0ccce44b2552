//! The two hooks socket bridges build on: origin tags on envelopes and the subscription
//! watch.

use std::time::Duration;

use bytes::Bytes;
use mycelium_transport::{Envelope, MessageBus, OverflowPolicy, SubscribeOptions};

const TYPE: u16 = 9;
const OTHER: u16 = 10;

fn opts() -> SubscribeOptions {
    SubscribeOptions::new(8, OverflowPolicy::FailPublish)
}

#[test]
fn local_publishes_carry_the_local_origin_and_bridged_ones_their_tag() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, opts());
    bus.publish_raw(TYPE, Bytes::from_static(b"local")).unwrap();
    bus.publish_raw_from(42, TYPE, Bytes::from_static(b"remote"))
        .unwrap();

    let first = sub.try_recv().unwrap();
    assert_eq!(first.origin, Envelope::LOCAL_ORIGIN);
    assert_eq!(first.payload, Bytes::from_static(b"local"));
    let second = sub.try_recv().unwrap();
    assert_eq!(second.origin, 42);
    assert_eq!(second.payload, Bytes::from_static(b"remote"));

    // A tagged publish is an ordinary publish for policies and metrics.
    let metrics = bus.metrics();
    let stats = metrics.type_metrics(TYPE).unwrap();
    assert_eq!((stats.published, stats.delivered), (2, 2));
}

#[tokio::test]
async fn async_tagged_publish_keeps_the_tag_and_waits_for_room() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    bus.publish_raw_from_async(7, TYPE, Bytes::from_static(b"a"))
        .await
        .unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            bus.publish_raw_from_async(8, TYPE, Bytes::from_static(b"b"))
                .await
        })
    };
    assert_eq!(sub.recv().await.unwrap().origin, 7);
    assert_eq!(sub.recv().await.unwrap().origin, 8);
    publisher.await.unwrap().unwrap();
}

#[test]
fn subscriber_ids_list_the_live_subscriptions_of_one_type() {
    let bus = MessageBus::new();
    assert!(bus.subscriber_ids(TYPE).is_empty());
    let a = bus.subscribe_raw(TYPE, opts());
    let b = bus.subscribe_raw(TYPE, opts());
    let other = bus.subscribe_raw(OTHER, opts());
    assert_eq!(bus.subscriber_ids(TYPE), vec![a.id(), b.id()]);
    assert_eq!(bus.subscriber_ids(OTHER), vec![other.id()]);
    drop(a);
    assert_eq!(bus.subscriber_ids(TYPE), vec![b.id()]);
}

#[tokio::test]
async fn the_watch_moves_on_subscribe_unsubscribe_and_close() {
    let bus = MessageBus::new();
    let mut watch = bus.watch_subscriptions();
    let start = *watch.borrow_and_update();

    let sub = bus.subscribe_raw(TYPE, opts());
    changed_within(&mut watch).await;
    assert_ne!(*watch.borrow_and_update(), start);

    sub.close();
    changed_within(&mut watch).await;
    assert_eq!(bus.subscriber_count(TYPE), 0);

    // A publish is not a subscription change.
    bus.publish_raw(TYPE, Bytes::from_static(b"x")).unwrap();
    assert!(!watch.has_changed().unwrap());

    bus.close();
    changed_within(&mut watch).await;
    assert!(bus.is_closed());
}

#[tokio::test]
async fn changes_made_while_nobody_waits_are_coalesced_not_lost() {
    let bus = MessageBus::new();
    let mut watch = bus.watch_subscriptions();
    watch.borrow_and_update();
    let subs: Vec<_> = (0..5).map(|_| bus.subscribe_raw(TYPE, opts())).collect();
    assert!(watch.has_changed().unwrap());
    watch.borrow_and_update();
    assert!(!watch.has_changed().unwrap());
    drop(subs);
    changed_within(&mut watch).await;
    assert!(bus.subscriber_ids(TYPE).is_empty());
}

async fn changed_within(watch: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("the subscription watch did not move")
        .expect("the bus was dropped");
}
