//! Named topics over NATS: a topic travels as subject tokens, and a local subscription's
//! pattern becomes the subject the join subscribes to, so the server does the filtering.

mod common;

use common::{eventually, schema, tick, NatsServer};
use mycelium_contracts::TradeTick;
use mycelium_nats::{NatsBridge, NatsConfig};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, SubscribeOptions, TopicName, TopicPattern};

fn topic(t: &str) -> TopicName {
    TopicName::new(t).expect("topic")
}

fn on(pattern: &str) -> SubscribeOptions {
    SubscribeOptions::default()
        .with_capacity(4096)
        .with_pattern(TopicPattern::new(pattern).expect("pattern"))
}

async fn two_joined(server: &NatsServer) -> (MessageBus, NatsBridge, MessageBus, NatsBridge) {
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = NatsBridge::connect(&a, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect a");
    let jb = NatsBridge::connect(&b, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect b");
    (a, ja, b, jb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_cross_and_the_server_filters_by_pattern() {
    let server = NatsServer::start("");
    let (a, ja, b, jb) = two_joined(&server).await;
    let btc = b.subscribe_raw(TradeTick::TYPE_ID, on("ticks/BTC-USD"));
    eventually("b subscribed", || jb.is_ready()).await;
    assert_eq!(jb.stats().subscribed.get(), 1, "one pattern, one subject");
    // 100 of another symbol and 10 without a topic, then 5 of the wanted one.
    for i in 0..100 {
        a.publish_on(&topic("ticks/ETH-USD"), &tick(i))
            .expect("publish");
    }
    for i in 0..10 {
        a.publish(&tick(i)).expect("publish");
    }
    for i in 0..5 {
        a.publish_on(&topic("ticks/BTC-USD"), &tick(i))
            .expect("publish");
    }
    ja.flush().await.expect("flush");
    eventually("the five", || jb.stats().received.get() >= 5).await;
    for _ in 0..5 {
        let envelope = btc.recv().await.expect("message");
        assert_eq!(envelope.topic, Some(topic("ticks/BTC-USD")), "topic kept");
    }
    // A marker on the wanted topic: everything sent before it has arrived or never will.
    a.publish_on(&topic("ticks/BTC-USD"), &tick(99))
        .expect("marker");
    ja.flush().await.expect("flush");
    btc.recv().await.expect("marker");
    assert_eq!(
        jb.stats().received.get(),
        6,
        "the server sent b only the wanted topic (110 others filtered out there)"
    );
    assert_eq!(ja.stats().sent.get(), 116);
    ja.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_patterns_and_plain_subscribers_get_each_message_once() {
    let server = NatsServer::start("");
    let (a, ja, b, jb) = two_joined(&server).await;
    let star = b.subscribe_raw(TradeTick::TYPE_ID, on("ticks/*"));
    let exact = b.subscribe_raw(TradeTick::TYPE_ID, on("ticks/BTC-USD"));
    let rest = b.subscribe_raw(TradeTick::TYPE_ID, on("ticks/>"));
    eventually("b subscribed", || jb.is_ready()).await;
    assert_eq!(
        jb.stats().subscribed.get(),
        1,
        "overlapping patterns: one subject for every topic of the type"
    );
    a.publish_on(&topic("ticks/BTC-USD"), &tick(1))
        .expect("publish");
    a.publish_on(&topic("ticks/ETH-USD/x"), &tick(2))
        .expect("publish");
    ja.flush().await.expect("flush");
    assert_eq!(
        star.recv().await.expect("star").topic,
        Some(topic("ticks/BTC-USD"))
    );
    assert_eq!(
        exact.recv().await.expect("exact").topic,
        Some(topic("ticks/BTC-USD"))
    );
    assert_eq!(
        rest.recv().await.expect("rest").topic,
        Some(topic("ticks/BTC-USD"))
    );
    assert_eq!(
        rest.recv().await.expect("rest").topic,
        Some(topic("ticks/ETH-USD/x"))
    );
    eventually("both received", || jb.stats().received.get() >= 2).await;

    // A plain subscriber joins: it sees messages with and without a topic, and nobody sees a
    // message twice although the join now subscribes to two subjects.
    let plain = b.subscribe_raw(
        TradeTick::TYPE_ID,
        SubscribeOptions::default().with_capacity(64),
    );
    eventually("b subscribed again", || jb.is_ready()).await;
    assert_eq!(jb.stats().subscribed.get(), 2);
    a.publish(&tick(3)).expect("publish");
    a.publish_on(&topic("ticks/BTC-USD"), &tick(4))
        .expect("publish");
    ja.flush().await.expect("flush");
    // Both arrive; their relative order is not kept: a plain subscriber's messages with and
    // without a topic come through two NATS subscriptions (docs/distributed.md).
    let mut topics = vec![
        plain.recv().await.expect("plain").topic,
        plain.recv().await.expect("plain").topic,
    ];
    topics.sort();
    assert_eq!(topics, [None, Some(topic("ticks/BTC-USD"))]);
    exact.recv().await.expect("exact");
    eventually("b received 4", || jb.stats().received.get() >= 4).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(jb.stats().received.get(), 4, "no message arrived twice");
    assert!(plain.try_recv().is_err() && exact.try_recv().is_err());
    ja.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_a_new_pattern_on_a_type_already_subscribed() {
    let server = NatsServer::start("");
    let (a, ja, b, jb) = two_joined(&server).await;
    let _x = b.subscribe_raw(TradeTick::TYPE_ID, on("room/x"));
    eventually("b subscribed", || jb.is_ready()).await;
    // A second pattern of the same type: ready only once its subject is on the server.
    let y = b.subscribe_raw(TradeTick::TYPE_ID, on("room/y"));
    assert!(
        jb.wait_ready(std::time::Duration::from_secs(10)).await,
        "ready again"
    );
    assert_eq!(jb.stats().subscribed.get(), 2);
    a.publish_on(&topic("room/y"), &tick(7)).expect("publish");
    ja.flush().await.expect("flush");
    let got = y.recv().await.expect("the message on the new pattern");
    assert_eq!(got.topic, Some(topic("room/y")));
    ja.close().await;
    jb.close().await;
}
