//! Core NATS mode against a real nats-server: forwarding, no echo or loop between three
//! buses, interest-based subscriptions, schema safety and the payload limit.

mod common;

use bytes::Bytes;
use common::{eventually, schema, tick, NatsServer};
use futures_util::StreamExt;
use mycelium_contracts::TradeTick;
use mycelium_nats::{NatsBridge, NatsConfig, SCHEMA_HEADER};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, SubscribeOptions};

/// A bus joined to `server` in core mode.
async fn one_bus(server: &NatsServer) -> (MessageBus, NatsBridge) {
    let bus = MessageBus::new();
    let join = NatsBridge::connect(&bus, &schema(), NatsConfig::new(server.url()))
        .await
        .expect("connect");
    (bus, join)
}

fn subject() -> String {
    format!("mycelium.{}.TradeTick", schema().name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_buses_one_server_no_echo_no_loop() {
    let server = NatsServer::start("");
    let schema = schema();
    let buses: Vec<MessageBus> = (0..3).map(|_| MessageBus::new()).collect();
    let mut joins = Vec::new();
    for bus in &buses {
        joins.push(
            NatsBridge::connect(bus, &schema, NatsConfig::new(server.url()))
                .await
                .expect("connect"),
        );
    }
    // Every bus has a local subscriber, so every bus subscribes on NATS.
    let subs: Vec<_> = buses
        .iter()
        .map(|b| b.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 16)))
        .collect();
    for join in &joins {
        eventually("NATS subscription", || join.is_ready()).await;
    }
    const N: u64 = 500;
    for i in 0..N {
        buses[0].publish(&tick(i)).expect("publish");
    }
    joins[0].flush().await.expect("flush");
    eventually("bus 1 and 2 receive", || {
        joins[1].stats().received.get() == N && joins[2].stats().received.get() == N
    })
    .await;
    // The sender's local subscriber and both remote ones see each message once, in order.
    for sub in &subs {
        for i in 0..N {
            assert_eq!(sub.recv().await.expect("message").size as u64, i);
        }
    }
    // Buses 1 and 2 never sent anything back out, bus 0 never got its own messages back.
    assert_eq!(joins[0].stats().sent.get(), N);
    assert_eq!(joins[1].stats().sent.get(), 0);
    assert_eq!(joins[2].stats().sent.get(), 0);
    assert_eq!(joins[0].stats().received.get(), 0);
    // A marker from bus 2 proves nothing else is in flight: everything before it was counted.
    buses[2].publish(&tick(N)).expect("publish");
    eventually("marker", || joins[0].stats().received.get() == 1).await;
    eventually("marker", || joins[1].stats().received.get() == N + 1).await;
    assert_eq!(subs[0].recv().await.expect("marker").size as u64, N);
    assert_eq!(subs[0].try_recv().ok().map(|t| t.size as u64), None);
    assert_eq!(joins[1].stats().sent.get(), 0);
    assert_eq!(joins[2].stats().sent.get(), 1);
    for join in joins {
        join.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_on_nats_only_while_a_local_subscriber_exists() {
    let server = NatsServer::start("");
    let (bus, join) = one_bus(&server).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        join.stats().subscribed.get(),
        0,
        "forwarders alone are no interest"
    );
    let sub = bus.subscribe::<TradeTick>(SubscribeOptions::default());
    eventually("subscribed", || join.is_ready()).await;
    // A subscriber without a topic pattern wants the type's subject and all its topics.
    assert_eq!(join.stats().subscribed.get(), 2);
    drop(sub);
    eventually("unsubscribed", || join.stats().subscribed.get() == 0).await;
    join.close().await;
}

/// What a plain NATS client sees of one of our messages: one schema header holding the
/// shortened fingerprint and digest, and the payload as encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_one_schema_header_with_fingerprint_and_digest() {
    let server = NatsServer::start("");
    let schema = schema();
    let (bus, join) = one_bus(&server).await;
    let plain = async_nats::connect(server.url())
        .await
        .expect("plain client");
    let mut seen = plain.subscribe(subject()).await.expect("subscribe");
    plain.flush().await.expect("flush");
    bus.publish(&tick(3)).expect("publish");
    join.flush().await.expect("flush");
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), seen.next())
        .await
        .expect("a message within 10 s")
        .expect("subscription open");
    let headers = message.headers.expect("headers");
    let value = headers.get(SCHEMA_HEADER).expect("schema header").as_str();
    let fingerprint = schema.fingerprint("TradeTick").expect("fingerprint");
    let digest = schema.digest();
    assert_eq!(value, format!("{} {}", &fingerprint[..32], &digest[..16]));
    assert_eq!(
        value,
        mycelium_nats::schema_header_value(&fingerprint, &digest)
    );
    assert_eq!(headers.len(), 1, "one header, nothing else: {headers:?}");
    let mut payload = Vec::new();
    tick(3).encode_payload(&mut payload).expect("encode");
    assert_eq!(&message.payload[..], &payload[..]);
    join.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_payloads_are_validated_and_mismatching_fingerprints_refused() {
    let server = NatsServer::start("");
    let (bus, join) = one_bus(&server).await;
    let sub = bus.subscribe::<TradeTick>(SubscribeOptions::default());
    eventually("subscribed", || join.is_ready()).await;
    let foreign = async_nats::connect(server.url())
        .await
        .expect("plain client");
    let mut good = Vec::new();
    tick(7).encode_payload(&mut good).expect("encode");
    // 1. Wrong fingerprint header: refused and counted.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SCHEMA_HEADER, "0000 0ther5chema");
    foreign
        .publish_with_headers(subject(), headers, Bytes::from(good.clone()))
        .await
        .expect("publish");
    // 2. No headers and garbage: fails validation, counted, never delivered.
    foreign
        .publish(subject(), Bytes::from_static(&[0xff, 0x01]))
        .await
        .expect("publish");
    // 3. No headers and a valid payload: delivered.
    foreign
        .publish(subject(), Bytes::from(good))
        .await
        .expect("publish");
    foreign.flush().await.expect("flush");
    eventually("all three handled", || {
        join.stats().refused.get() == 1
            && join.stats().invalid.get() == 1
            && join.stats().received.get() == 1
    })
    .await;
    assert_eq!(sub.recv().await.expect("valid one").size, 7);
    assert!(sub.try_recv().is_err(), "nothing else was delivered");
    join.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_over_server_max_payload_is_counted_not_sent() {
    let server = NatsServer::start("max_payload: 1024");
    let (bus, join) = one_bus(&server).await;
    let mut big = tick(1);
    big.symbol = "X".repeat(4096);
    bus.publish(&big).expect("the bus itself allows it");
    bus.publish(&tick(2)).expect("publish");
    eventually("one sent, one too large", || {
        join.stats().sent.get() == 1 && join.stats().too_large.get() == 1
    })
    .await;
    join.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_typed() {
    let schema = schema();
    let bus = MessageBus::new();
    let err = NatsBridge::connect(
        &bus,
        &schema,
        NatsConfig::new("nats://127.0.0.1:1").with_prefix("a.*"),
    )
    .await
    .err()
    .expect("bad prefix refused");
    assert!(matches!(err, mycelium_nats::NatsError::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_counted_and_forwarding_resumes() {
    let mut server = NatsServer::start("");
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = NatsBridge::connect(&a, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect a");
    let jb = NatsBridge::connect(&b, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect b");
    let sub = b.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1024));
    eventually("subscribed", || jb.is_ready()).await;
    assert_eq!(
        ja.stats().reconnects.get(),
        0,
        "the first connection is not a reconnect"
    );
    assert_eq!(ja.stats().disconnects.get(), 0);
    a.publish(&tick(1)).expect("publish");
    ja.flush().await.expect("flush");
    assert_eq!(sub.recv().await.expect("before the restart").size, 1);

    server.restart();
    eventually("both clients reconnect", || {
        ja.stats().reconnects.get() >= 1 && jb.stats().reconnects.get() >= 1
    })
    .await;
    assert!(ja.stats().disconnects.get() >= 1 && jb.stats().disconnects.get() >= 1);
    // Core NATS is at most once: what was published around the restart may be lost. Once b's
    // client has restored its subscription, a new message gets through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        a.publish(&tick(2)).expect("publish");
        let _ = ja.flush().await;
        match tokio::time::timeout(std::time::Duration::from_millis(200), sub.recv()).await {
            Ok(Some(t)) if t.size == 2 => break,
            Ok(Some(other)) => panic!("unexpected message {other:?}"),
            Ok(None) => panic!("subscription ended"),
            Err(_) => assert!(
                std::time::Instant::now() < deadline,
                "nothing arrived after the restart"
            ),
        }
    }
    ja.close().await;
    jb.close().await;
}

/// Closing right after a burst of local publishes still sends the burst: the forwarders finish
/// what local publishers handed over before the connection drains. And `is_ready` means the
/// server has the subscriber's interest (nothing published after it is missed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_sends_what_was_already_published() {
    let server = NatsServer::start("");
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let sub = b.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 16));
    let jb = NatsBridge::connect(&b, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect b");
    assert!(
        jb.wait_ready(std::time::Duration::from_secs(30)).await,
        "b ready"
    );
    assert!(jb.is_ready());
    let ja = NatsBridge::connect(&a, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect a");
    assert!(
        ja.is_ready(),
        "a has no local subscriber: ready once connected"
    );
    const N: u64 = 3000;
    for i in 0..N {
        a.publish(&tick(i)).expect("publish");
    }
    ja.close().await;
    for i in 0..N {
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), sub.recv())
            .await
            .expect("every message before the close arrives")
            .expect("message");
        assert_eq!(got.size as u64, i);
    }
    assert_eq!(jb.stats().received.get(), N);
    jb.close().await;
}

/// While the server is down the outgoing buffer is bounded and follows its policy: with
/// DropOldest local publishers never wait, the overflow is counted as drops on the forwarding
/// subscription, and once the server is back messages flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_outgoing_buffer_while_the_server_is_down() {
    use mycelium_transport::OverflowPolicy;
    let mut server = NatsServer::start("");
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let sub = b.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 16));
    let jb = NatsBridge::connect(&b, &schema, NatsConfig::new(server.url()))
        .await
        .expect("connect b");
    let ja = NatsBridge::connect(
        &a,
        &schema,
        NatsConfig::new(server.url()).with_outgoing_queue(64, OverflowPolicy::DropOldest),
    )
    .await
    .expect("connect a");
    assert!(jb.wait_ready(std::time::Duration::from_secs(30)).await);
    server.kill();
    eventually("a notices the outage", || !ja.is_connected()).await;
    // Far more than the client's own buffer (2 048 commands) plus our 64: without a bound
    // these publishes would wait for the server (Block) or grow memory.
    const N: u64 = 20_000;
    let publisher = {
        let a = a.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..N {
                a.publish(&tick(i)).expect("DropOldest never refuses");
            }
        })
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), publisher)
        .await
        .expect("publishers do not wait for the server")
        .unwrap();
    let dropped: u64 = a
        .metrics()
        .subscribers
        .iter()
        .filter(|s| s.label.as_deref().is_some_and(|l| l.starts_with("nats:")))
        .map(|s| s.dropped)
        .sum();
    assert!(
        dropped >= N - 2048 - 64 - 1,
        "the overflow is counted as drops: {dropped} of {N}"
    );
    server.start_again();
    eventually("a reconnects", || ja.stats().reconnects.get() >= 1).await;
    eventually("b reconnects", || jb.stats().reconnects.get() >= 1).await;
    assert!(jb.wait_ready(std::time::Duration::from_secs(30)).await);
    a.publish(&tick(N)).expect("publish");
    let mut last = None;
    while last != Some(N) {
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), sub.recv())
            .await
            .expect("messages flow again after the outage")
            .expect("message");
        last = Some(got.size as u64);
    }
    ja.close().await;
    jb.close().await;
}

/// Two buses whose TradeTick differs in one field: each refuses the other's ticks, and each
/// names the field (it asks the peer for its schema's description), ours -> theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_mismatch_is_refused_with_the_field_named_on_both_sides() {
    let server = NatsServer::start("");
    let ours = schema();
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts.yaml"),
    )
    .expect("contracts.yaml");
    let changed = yaml.replacen("- size: u32", "- size: u64", 1);
    assert_ne!(changed, yaml, "the test's edit applies");
    let theirs = mycelium_protocol::Schema::from_yaml_str(&changed).expect("edited schema");
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = NatsBridge::connect(&a, &ours, NatsConfig::new(server.url()))
        .await
        .expect("connect a");
    let jb = NatsBridge::connect(&b, &theirs, NatsConfig::new(server.url()))
        .await
        .expect("connect b");
    let _sa = a.subscribe::<TradeTick>(SubscribeOptions::default());
    let _sb = b.subscribe::<TradeTick>(SubscribeOptions::default());
    assert!(ja.wait_ready(std::time::Duration::from_secs(30)).await);
    assert!(jb.wait_ready(std::time::Duration::from_secs(30)).await);
    for i in 0..3 {
        a.publish(&tick(i)).expect("publish");
        b.publish(&tick(i)).expect("publish");
    }
    eventually("both refuse", || {
        ja.stats().refused.get() == 3 && jb.stats().refused.get() == 3
    })
    .await;
    eventually("both explain", || {
        !ja.schema_mismatches().is_empty() && !jb.schema_mismatches().is_empty()
    })
    .await;
    assert_eq!(ja.schema_mismatches(), ["TradeTick: field size u32 -> u64"]);
    assert_eq!(jb.schema_mismatches(), ["TradeTick: field size u64 -> u32"]);
    assert_eq!(ja.stats().received.get() + jb.stats().received.get(), 0);
    ja.close().await;
    jb.close().await;
}
