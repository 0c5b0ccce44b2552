//! A 3-node NATS cluster (routes on loopback): a publisher's bus on node 0, subscribers' buses
//! on nodes 1 and 2. Node 1 is killed mid-stream: core NATS is at most once, so the bus on it
//! loses what was in flight and what was published while it reconnected (to another node of
//! the cluster, which the server advertised), and the counters show how much; the bus on node
//! 2 loses nothing and keeps the order.

mod common;

use std::time::Duration;

use common::{eventually, schema, tick, NatsServer};
use mycelium_contracts::TradeTick;
use mycelium_nats::{NatsBridge, NatsConfig};
use mycelium_transport::{MessageBus, SubscribeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_only_what_core_nats_can_lose() {
    let [n0, mut n1, n2] = NatsServer::start_cluster();
    let schema = schema();
    let (a, b, c) = (MessageBus::new(), MessageBus::new(), MessageBus::new());
    let ja = NatsBridge::connect(&a, &schema, NatsConfig::new(n0.url()))
        .await
        .expect("a on node 0");
    let sb = b.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 17));
    let sc = c.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 17));
    let jb = NatsBridge::connect(&b, &schema, NatsConfig::new(n1.url()))
        .await
        .expect("b on node 1");
    let jc = NatsBridge::connect(&c, &schema, NatsConfig::new(n2.url()))
        .await
        .expect("c on node 2");

    // Interest crosses the routes a little after the subscriptions: probe until both remote
    // buses hear node 0 (probes carry size u32::MAX and are drained below).
    let probe = || TradeTick {
        size: u32::MAX,
        ..tick(0)
    };
    eventually("interest across the cluster", || {
        a.publish(&probe()).expect("probe");
        jb.stats().received.get() > 0 && jc.stats().received.get() > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let drain = |s: &mycelium_transport::Subscription<TradeTick>| {
        while s.try_recv().is_ok() {}
    };
    drain(&sb);
    drain(&sc);
    let (b0, c0) = (jb.stats().received.get(), jc.stats().received.get());
    let a0 = ja.stats().sent.get();

    // 20 000 ticks over about two seconds; node 1 dies after a quarter of them.
    const N: u64 = 20_000;
    for i in 0..N {
        a.publish(&tick(i)).expect("publish");
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if i == N / 4 {
            n1.kill();
        }
    }
    ja.flush().await.expect("flush");
    eventually("node 2's bus has every tick", || {
        jc.stats().received.get() - c0 == N
    })
    .await;
    for i in 0..N {
        assert_eq!(sc.recv().await.expect("tick").size as u64, i, "in order");
    }
    // b reconnected to another node by itself and heard the rest of the stream from there.
    eventually("b reconnected", || jb.stats().reconnects.get() >= 1).await;
    let mut last = None;
    while let Ok(t) = sb.try_recv() {
        last = Some(t.size as u64);
    }
    let got = jb.stats().received.get() - b0;
    assert_eq!(ja.stats().sent.get() - a0, N, "a sent every tick");
    assert!(jb.stats().disconnects.get() >= 1);
    assert!(
        last.is_some_and(|l| l > N / 2),
        "b heard ticks published after the kill (last {last:?})"
    );
    // At most once: what b lost is a's count minus b's, nothing arrived twice.
    assert!(got <= N, "b received {got} of {N}: a duplicate");
    eprintln!(
        "core NATS, node killed mid-stream: b lost {} of {N}",
        N - got
    );
    for join in [ja, jb, jc] {
        join.close().await;
    }
    drop((n0, n2));
}

/// JetStream across the same kind of cluster, the stream kept on all three nodes: node 1 (where
/// one subscriber's bus is connected) is killed a quarter into the stream. Both subscribers'
/// durables deliver every message exactly once: the one on node 1 after it reconnected to
/// another node and its durable resumed there.
///
/// Not in order: publishes in flight to a stream leader that dies time out and are retried
/// (same message id) after later ones were stored by the new leader, so the stream itself
/// holds them late (seen here: 253 of 3 000 behind a later one, the same at both durables).
/// An earlier version asserted publish order and failed in one CI run of five, which read as
/// "ticks 700..715 lost"; they were stored after 716... The test checks that any disorder
/// comes with a retried publish or a redelivery, the two causes the docs name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_replicated_over_three_nodes_loses_and_duplicates_nothing() {
    use mycelium_nats::JetStreamOptions;
    let [n0, mut n1, n2] = NatsServer::start_jetstream_cluster();
    let schema = schema();
    let options = |durable: Option<&str>| {
        let o = JetStreamOptions::new("CLUSTER_TICKS")
            .with_replicas(3)
            .with_ack_wait(Duration::from_secs(2));
        match durable {
            Some(d) => o.with_durable(d),
            None => o,
        }
    };
    // JetStream in a cluster answers once its nodes elected a meta leader: retry until then.
    async fn join(
        bus: &MessageBus,
        schema: &mycelium_protocol::Schema,
        url: String,
        options: mycelium_nats::JetStreamOptions,
    ) -> NatsBridge {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match NatsBridge::connect(
                bus,
                schema,
                NatsConfig::new(url.clone()).with_jetstream(options.clone()),
            )
            .await
            {
                Ok(join) => return join,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("JetStream cluster not ready yet: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("JetStream cluster never became ready: {e}"),
            }
        }
    }
    let (a, b, c) = (MessageBus::new(), MessageBus::new(), MessageBus::new());
    let sb = b.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 16));
    let sc = c.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 16));
    let ja = join(&a, &schema, n0.url(), options(None)).await;
    let jb = join(&b, &schema, n1.url(), options(Some("on-node-1"))).await;
    let jc = join(&c, &schema, n2.url(), options(Some("on-node-2"))).await;
    assert!(jb.wait_ready(Duration::from_secs(30)).await);
    assert!(jc.wait_ready(Duration::from_secs(30)).await);

    const N: u64 = 3_000;
    for i in 0..N {
        a.publish(&tick(i)).expect("publish");
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if i == N / 4 {
            n1.kill();
        }
    }
    ja.flush().await.expect("every publish acked");
    // What was on its way to a subscriber through the killed node comes again after
    // `ack_wait`, behind later messages: every tick once, not necessarily in order.
    for (name, sub, join) in [("node 2", &sc, &jc), ("node 1", &sb, &jb)] {
        let mut seen = vec![0u32; N as usize];
        let (mut missing, mut late, mut newest) = (N, 0u64, None::<u64>);
        while missing > 0 {
            let got = tokio::time::timeout(Duration::from_secs(60), sub.recv())
                .await
                .unwrap_or_else(|_| panic!("{name}: {missing} ticks never came"))
                .expect("tick")
                .size as u64;
            assert!(got < N, "{name}: tick {got} was never published");
            seen[got as usize] += 1;
            assert_eq!(seen[got as usize], 1, "{name}: tick {got} twice");
            missing -= 1;
            if newest.is_some_and(|n| got < n) {
                late += 1;
            }
            newest = newest.max(Some(got));
        }
        let (retried, redelivered) = (
            ja.stats().js_publish_failed.get(),
            join.stats().js_redelivered.get(),
        );
        eprintln!(
            "{name}: all {N} ticks once, {late} after a later one; publishes retried {retried}, \
             redelivered {redelivered}, skipped as duplicates {}",
            join.stats().js_skipped_duplicates.get()
        );
        assert!(
            late == 0 || retried > 0 || redelivered > 0,
            "{name}: {late} ticks out of order with no retried publish and no redelivery"
        );
    }
    // Longer than `ack_wait`: a redelivery of something already delivered would show now.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        sb.try_recv().is_err() && sc.try_recv().is_err(),
        "nothing twice"
    );
    assert!(jb.stats().reconnects.get() >= 1, "b moved to another node");
    assert_eq!(ja.stats().js_acked.get(), N);
    for join in [ja, jb, jc] {
        join.close().await;
    }
    drop((n0, n2));
}
