//! Named topics across a socket bridge (protocol 3): the topic travels in a topic frame before
//! its message, and pattern subscribers on the far side get exactly the matching messages.

mod common;

use common::*;
use mycelium_bridge::Limits;
use mycelium_transport::{OverflowPolicy, SubscribeOptions, TopicName, TopicPattern};

fn options() -> SubscribeOptions {
    SubscribeOptions::new(4096, OverflowPolicy::Block)
}

#[tokio::test]
async fn topics_cross_a_unix_bridge_and_patterns_filter_on_the_far_side() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    let every = p.client_bus.subscribe_raw(TRADE_TICK, options());
    let any_tick = p.client_bus.subscribe_raw(
        TRADE_TICK,
        options().with_pattern(TopicPattern::new("ticks/*").unwrap()),
    );
    let eth = p.client_bus.subscribe_raw(
        TRADE_TICK,
        options().with_pattern(TopicPattern::new("ticks/ETH-USD").unwrap()),
    );
    subscribers_at_least(&p.server_bus, TRADE_TICK, 1).await;
    let topics = ["ticks/BTC-USD", "ticks/ETH-USD", "ticks/SOL-USD"];
    for (seq, topic) in topics.iter().enumerate() {
        p.server_bus
            .publish_raw_on(
                TRADE_TICK,
                &TopicName::new(topic).unwrap(),
                tick(seq as u64),
            )
            .unwrap();
    }
    p.server_bus
        .publish_raw_async(TRADE_TICK, tick(3))
        .await
        .unwrap();

    // The plain subscriber sees all four, topics as published.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let env = within("a tick", every.recv()).await.unwrap();
        seen.push(env.topic.map(|t| t.as_str().to_owned()));
    }
    assert_eq!(
        seen,
        [
            Some("ticks/BTC-USD".to_owned()),
            Some("ticks/ETH-USD".to_owned()),
            Some("ticks/SOL-USD".to_owned()),
            None
        ]
    );
    let e = within("ETH", eth.recv()).await.unwrap();
    assert_eq!(
        (e.payload, e.topic.unwrap().as_str()),
        (tick(1), "ticks/ETH-USD")
    );
    assert!(
        eth.try_recv().is_err(),
        "only ETH-USD matches ticks/ETH-USD"
    );
    // ticks/* sees the three topic'd ticks, not the one without a topic.
    for _ in 0..3 {
        assert!(within("a topic'd tick", any_tick.recv())
            .await
            .unwrap()
            .topic
            .is_some());
    }
    assert!(
        any_tick.try_recv().is_err(),
        "a tick without a topic matches no pattern"
    );
    p.client.close_and_join().await.unwrap();
    p.server.close_and_join().await.unwrap();
}
