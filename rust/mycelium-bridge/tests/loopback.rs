//! Two buses in one process, bridged through a real Unix socket or TCP on 127.0.0.1.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::*;
use mycelium_bridge::{
    Bridge, BridgeError, ConnectConfig, Endpoint, Limits, ListenConfig, RefusalKind, Token,
};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions, TryRecvError};

fn options() -> SubscribeOptions {
    SubscribeOptions::new(4096, OverflowPolicy::Block)
}

async fn round_trip(endpoint: Endpoint) {
    let p = pair(endpoint, Limits::default(), None).await;
    // Server -> client.
    let ticks = p.client_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&p.server_bus, TRADE_TICK, 1).await;
    for seq in 0..100 {
        p.server_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    for seq in 0..100 {
        let envelope = within("a tick", ticks.recv()).await.unwrap();
        assert_eq!(
            envelope.payload,
            tick(seq),
            "in publish order, byte for byte"
        );
    }
    // Client -> server, on the same connection.
    let texts = p.server_bus.subscribe_raw(TEXT_MESSAGE, options());
    subscribers_at_least(&p.client_bus, TEXT_MESSAGE, 1).await;
    p.client_bus
        .publish_raw_async(TEXT_MESSAGE, text("hi"))
        .await
        .unwrap();
    assert_eq!(
        within("a text", texts.recv()).await.unwrap().payload,
        text("hi")
    );

    let (server, client) = (p.server.stats(), p.client.stats());
    assert_eq!((server.messages_out, client.messages_in), (100, 100));
    assert_eq!((client.messages_out, server.messages_in), (1, 1));
    assert_eq!((server.sessions, client.sessions), (1, 1));
    p.client.close_and_join().await.unwrap();
    p.server.close_and_join().await.unwrap();
}

#[tokio::test]
async fn messages_cross_a_unix_socket_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(unix_endpoint(dir.path(), "bus.sock")).await;
}

#[tokio::test]
async fn messages_cross_tcp_on_loopback_both_ways() {
    round_trip(Endpoint::tcp("127.0.0.1:0").unwrap()).await;
}

#[tokio::test]
async fn only_subscribed_types_cross_and_unsubscribing_propagates() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    let ticks = p.client_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&p.server_bus, TRADE_TICK, 1).await;
    // Nobody across the connection wants TextMessage: no forwarder exists for it.
    assert_eq!(p.server_bus.subscriber_count(TEXT_MESSAGE), 0);
    for seq in 0..10 {
        p.server_bus
            .publish_raw_async(TEXT_MESSAGE, text("local only"))
            .await
            .unwrap();
        p.server_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    for _ in 0..10 {
        within("a tick", ticks.recv()).await.unwrap();
    }
    assert_eq!(
        p.server.stats().messages_out,
        10,
        "only the ticks were sent"
    );
    let client_metrics = p.client_bus.metrics();
    assert!(client_metrics
        .type_metrics(TEXT_MESSAGE)
        .is_none_or(|m| m.published == 0));

    drop(ticks);
    subscribers_exactly(&p.server_bus, TRADE_TICK, 0).await;
}

#[tokio::test]
async fn a_message_is_never_sent_back_to_the_connection_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    // Both sides subscribe to the same type, so each side forwards it to the other.
    let at_server = p.server_bus.subscribe_raw(TRADE_TICK, options());
    let at_client = p.client_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&p.server_bus, TRADE_TICK, 2).await;
    subscribers_at_least(&p.client_bus, TRADE_TICK, 2).await;
    for seq in 0..50 {
        p.server_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    for seq in 0..50 {
        assert_eq!(
            seq_of(&within("a tick", at_client.recv()).await.unwrap().payload),
            seq
        );
    }
    // A marker from the client travels the same connection after any echo would have; the
    // server must see its own 50 and then the marker, nothing in between.
    p.client_bus
        .publish_raw_async(TRADE_TICK, tick(1_000))
        .await
        .unwrap();
    for seq in 0..50 {
        assert_eq!(seq_of(&at_server.try_recv().unwrap().payload), seq);
    }
    assert_eq!(
        seq_of(
            &within("the marker", at_server.recv())
                .await
                .unwrap()
                .payload
        ),
        1_000
    );
    assert_eq!(at_server.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(p.server.stats().messages_in, 1);
    assert_eq!(p.client.stats().messages_in, 50);
}

#[tokio::test]
async fn a_hub_relays_between_its_peers_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema();
    let hub_bus = MessageBus::new();
    let hub = Bridge::listen(
        &hub_bus,
        &schema,
        ListenConfig::new([unix_endpoint(dir.path(), "hub.sock")]),
    )
    .await
    .unwrap();
    let endpoint = hub.endpoints()[0].clone();
    let (b_bus, c_bus) = (MessageBus::new(), MessageBus::new());
    let b = Bridge::connect(&b_bus, &schema, ConnectConfig::new(endpoint.clone()))
        .await
        .unwrap();
    let c = Bridge::connect(&c_bus, &schema, ConnectConfig::new(endpoint))
        .await
        .unwrap();
    assert!(within("two sessions", hub.wait_for_sessions(2)).await);

    let at_c = c_bus.subscribe_raw(TRADE_TICK, options());
    // C's interest reaches the hub, and the hub's forwarder for C is interest towards B.
    subscribers_at_least(&b_bus, TRADE_TICK, 1).await;
    let at_b = b_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&c_bus, TRADE_TICK, 2).await;
    for seq in 0..20 {
        b_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    for seq in 0..20 {
        assert_eq!(
            seq_of(&within("a relayed tick", at_c.recv()).await.unwrap().payload),
            seq
        );
    }
    // B's own ticks reached B's subscriber locally, once each; none came back via the hub.
    c_bus
        .publish_raw_async(TRADE_TICK, tick(500))
        .await
        .unwrap();
    let mut seen_at_b = Vec::new();
    while seen_at_b.last() != Some(&500) {
        seen_at_b.push(seq_of(
            &within("ticks at B", at_b.recv()).await.unwrap().payload,
        ));
    }
    let expected: Vec<u64> = (0..20).chain([500]).collect();
    assert_eq!(seen_at_b, expected);
    drop((b, c));
}

#[tokio::test]
async fn a_schema_mismatch_is_refused_naming_the_message_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let server_bus = MessageBus::new();
    let server = Bridge::listen(
        &server_bus,
        &schema(),
        ListenConfig::new([unix_endpoint(dir.path(), "bus.sock")]),
    )
    .await
    .unwrap();
    let client_bus = MessageBus::new();
    let client = Bridge::connect(
        &client_bus,
        &changed_schema(),
        ConnectConfig::new(server.endpoints()[0].clone()),
    )
    .await
    .unwrap();
    match within("the refusal", client.join()).await {
        Err(BridgeError::Refused { kind, reason, .. }) => {
            assert_eq!(kind, RefusalKind::Schema);
            // The client's own view: ours (f32) -> theirs (f64).
            assert!(
                reason.contains("TradeTick: field price f32 -> f64"),
                "{reason}"
            );
        }
        other => panic!("expected a schema refusal, got {other:?}"),
    }
    eventually("the server's rejection", || server.stats().rejected == 1).await;
    let rejection = &server.stats().rejections[0];
    assert!(
        rejection
            .reason
            .contains("TradeTick: field price f64 -> f32"),
        "{rejection:?}"
    );
    assert_eq!(server.stats().sessions, 0);
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema();
    let server_bus = MessageBus::new();
    let listen = ListenConfig::new([unix_endpoint(dir.path(), "bus.sock")])
        .with_token(Token::new(b"open sesame".to_vec()).unwrap());
    let server = Bridge::listen(&server_bus, &schema, listen).await.unwrap();
    let endpoint = server.endpoints()[0].clone();

    for token in [None, Some(b"open sesamE".to_vec())] {
        let mut config = ConnectConfig::new(endpoint.clone());
        config.token = token.map(|t| Token::new(t).unwrap());
        let client = Bridge::connect(&MessageBus::new(), &schema, config)
            .await
            .unwrap();
        match within("the refusal", client.join()).await {
            Err(BridgeError::Refused { kind, .. }) => assert_eq!(kind, RefusalKind::Token),
            other => panic!("expected a token refusal, got {other:?}"),
        }
    }
    eventually("two rejections", || server.stats().rejected == 2).await;
    assert!(server
        .stats()
        .rejections
        .iter()
        .all(|r| r.reason.contains("token")));

    let good =
        ConnectConfig::new(endpoint).with_token(Token::new(b"open sesame".to_vec()).unwrap());
    let client = Bridge::connect(&MessageBus::new(), &schema, good)
        .await
        .unwrap();
    assert!(within("the session", client.wait_for_sessions(1)).await);
}

#[tokio::test]
async fn unix_sockets_are_created_0600_unless_configured_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema();
    let bus = MessageBus::new();
    let default = Bridge::listen(
        &bus,
        &schema,
        ListenConfig::new([unix_endpoint(dir.path(), "a.sock")]),
    )
    .await
    .unwrap();
    let mut config = ListenConfig::new([unix_endpoint(dir.path(), "b.sock")]);
    config.socket_mode = 0o660;
    let custom = Bridge::listen(&bus, &schema, config).await.unwrap();
    for (name, mode) in [("a.sock", 0o600), ("b.sock", 0o660)] {
        let meta = std::fs::metadata(dir.path().join(name)).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
    default.close_and_join().await.unwrap();
    custom.close_and_join().await.unwrap();
    assert!(
        !dir.path().join("a.sock").exists(),
        "closing removes the socket file"
    );
}

#[tokio::test]
async fn tcp_refuses_non_loopback_addresses_unless_allowed() {
    let config = ListenConfig::new([Endpoint::tcp("0.0.0.0:0").unwrap()]);
    let err = Bridge::listen(&MessageBus::new(), &schema(), config)
        .await
        .unwrap_err();
    assert!(matches!(err, BridgeError::NotLoopback { .. }), "{err}");
}

#[tokio::test]
async fn closing_sends_what_is_already_queued_then_says_bye() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    let ticks = p.client_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&p.server_bus, TRADE_TICK, 1).await;
    for seq in 0..1000 {
        p.server_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    p.server.close_and_join().await.unwrap();
    for seq in 0..1000 {
        assert_eq!(
            seq_of(&within("a tick", ticks.recv()).await.unwrap().payload),
            seq
        );
    }
    eventually("the client to notice", || {
        p.client.stats().closed.len() == 1
    })
    .await;
    let closed = &p.client.stats().closed[0];
    assert!(closed.reason.contains("shutting down"), "{closed:?}");
}

#[tokio::test]
async fn a_client_reconnects_after_the_server_restarts_and_nothing_is_delivered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema();
    let endpoint = unix_endpoint(dir.path(), "bus.sock");
    let server_bus = MessageBus::new();
    let client_bus = MessageBus::new();
    let server = Bridge::listen(&server_bus, &schema, ListenConfig::new([endpoint.clone()]))
        .await
        .unwrap();
    let mut connect = ConnectConfig::new(endpoint.clone());
    connect.backoff.min = Duration::from_millis(20);
    connect.backoff.max = Duration::from_millis(200);
    let client = Bridge::connect(&client_bus, &schema, connect)
        .await
        .unwrap();
    let ticks = client_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&server_bus, TRADE_TICK, 1).await;
    for seq in 0..100 {
        server_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    let mut seen = HashSet::new();
    for _ in 0..100 {
        assert!(seen.insert(seq_of(
            &within("a tick", ticks.recv()).await.unwrap().payload
        )));
    }
    server.close_and_join().await.unwrap();
    // Published while no server exists: goes nowhere, and is not replayed later.
    subscribers_exactly(&server_bus, TRADE_TICK, 0).await;
    server_bus
        .publish_raw_async(TRADE_TICK, tick(999))
        .await
        .unwrap();

    let server = Bridge::listen(&server_bus, &schema, ListenConfig::new([endpoint]))
        .await
        .unwrap();
    subscribers_at_least(&server_bus, TRADE_TICK, 1).await;
    for seq in 100..200 {
        server_bus
            .publish_raw_async(TRADE_TICK, tick(seq))
            .await
            .unwrap();
    }
    for _ in 0..100 {
        assert!(seen.insert(seq_of(
            &within("a tick", ticks.recv()).await.unwrap().payload
        )));
    }
    assert_eq!(client.stats().reconnects, 1);
    server.close_and_join().await.unwrap();
    client.close_and_join().await.unwrap();
    assert_eq!(seen, (0..200).collect::<HashSet<u64>>());
    assert_eq!(
        ticks.try_recv().map(|e| seq_of(&e.payload)),
        Err(TryRecvError::Empty)
    );
}

#[tokio::test]
async fn load_for_a_bounded_time_reconciles_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        queue_capacity: 256,
        ..Limits::default()
    };
    let p = pair(unix_endpoint(dir.path(), "bus.sock"), limits, None).await;
    let ticks = p.client_bus.subscribe_raw(TRADE_TICK, options());
    subscribers_at_least(&p.server_bus, TRADE_TICK, 1).await;
    let consumer = tokio::spawn(async move {
        let mut next = 0u64;
        while let Some(envelope) = ticks.recv().await {
            assert_eq!(
                seq_of(&envelope.payload),
                next,
                "in order, none lost or repeated"
            );
            next += 1;
        }
        next
    });
    // As many as fit in one second (bounded by count too, for fast machines).
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut published = 0u64;
    while Instant::now() < deadline && published < 2_000_000 {
        p.server_bus
            .publish_raw_async(TRADE_TICK, tick(published))
            .await
            .unwrap();
        published += 1;
    }
    // A graceful close sends everything queued; closing the client bus then ends the consumer.
    p.server.close_and_join().await.unwrap();
    eventually("every message to arrive", || {
        p.client.stats().messages_in == published
    })
    .await;
    p.client.close_and_join().await.unwrap();
    p.client_bus.close();
    let received = within("the consumer", consumer).await.unwrap();
    let server = p.server_bus.metrics();
    let sent = server.type_metrics(TRADE_TICK).unwrap();
    println!("load: {published} messages in 1 s through the Unix bridge");
    assert_eq!(received, published);
    assert_eq!(sent.published, published);
    assert_eq!(sent.dropped, 0, "Block policy: nothing dropped");
    let client_ticks = p.client_bus.metrics();
    assert_eq!(
        client_ticks.type_metrics(TRADE_TICK).unwrap().published,
        published
    );
}
