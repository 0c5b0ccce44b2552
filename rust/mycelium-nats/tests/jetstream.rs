//! JetStream mode against a real nats-server with JetStream: every message once and in order,
//! a server restart and a join restart mid-stream (nothing lost, nothing repeated), replay for
//! late joiners, de-duplication by message id, and the typed error without JetStream.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{eventually, schema, tick, NatsServer};
use mycelium_contracts::TradeTick;
use mycelium_nats::{DeliverFrom, JetStreamOptions, NatsBridge, NatsConfig, NatsError};
use mycelium_transport::{MessageBus, SubscribeOptions, Subscription};

const STREAM: &str = "TICKS";

/// Joins `bus` in JetStream mode; panics with `what` if that fails.
async fn js_join(
    bus: &MessageBus,
    schema: &mycelium_protocol::Schema,
    url: String,
    options: JetStreamOptions,
    what: &str,
) -> NatsBridge {
    NatsBridge::connect(bus, schema, js_config(url, options))
        .await
        .expect(what)
}

fn js_config(url: String, options: JetStreamOptions) -> NatsConfig {
    NatsConfig::new(url).with_jetstream(options)
}

fn big_subscription(bus: &MessageBus) -> Subscription<TradeTick> {
    bus.subscribe::<TradeTick>(SubscribeOptions::default().with_capacity(1 << 16))
}

/// (messages stored in the stream, the durable's messages not yet delivered or not yet acked).
async fn stream_state(url: &str, durable: &str) -> (u64, u64) {
    let client = async_nats::connect(url).await.expect("plain client");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(STREAM).await.expect("stream");
    let messages = stream.info().await.expect("stream info").state.messages;
    let consumer = stream.consumer_info(durable).await.expect("consumer info");
    (
        messages,
        consumer.num_pending + consumer.num_ack_pending as u64,
    )
}

/// Takes what `sub` has until `done` holds for the sizes seen so far (deadline 60 s).
async fn collect_until(
    sub: &Subscription<TradeTick>,
    seen: &mut Vec<u64>,
    what: &str,
    mut done: impl FnMut(&[u64]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(seen) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} messages so far",
            seen.len()
        );
        if let Ok(Some(t)) = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await {
            seen.push(u64::from(t.size));
        }
    }
}

fn duplicates(seen: &[u64]) -> Vec<u64> {
    let mut once = BTreeSet::new();
    seen.iter().copied().filter(|s| !once.insert(*s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buses_every_message_once_in_order() {
    let server = NatsServer::start_jetstream();
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    // Bus a publishes and also consumes the stream: its own messages must not come back.
    let sub_a = big_subscription(&a);
    let sub_b = big_subscription(&b);
    let ja = js_join(
        &a,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM).with_durable("a"),
        "connect a",
    )
    .await;
    let jb = js_join(
        &b,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM).with_durable("b"),
        "connect b",
    )
    .await;
    eventually("b consumes", || jb.stats().subscribed.get() == 1).await;
    const N: u64 = 2000;
    let started = Instant::now();
    for i in 0..N {
        a.publish(&tick(i)).expect("publish");
    }
    eventually("b receives all", || jb.stats().received.get() == N).await;
    let elapsed = started.elapsed();
    ja.flush().await.expect("every publish acked");
    println!(
        "{N} messages through JetStream in {:.1} ms ({:.0} msg/s)",
        elapsed.as_secs_f64() * 1e3,
        N as f64 / elapsed.as_secs_f64()
    );
    for i in 0..N {
        assert_eq!(u64::from(sub_b.recv().await.expect("message").size), i);
        // a's subscriber got its own publishes locally, once.
        assert_eq!(u64::from(sub_a.recv().await.expect("local").size), i);
    }
    // Everything stored was delivered and acked: nothing else can still come.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (stored, pending) = stream_state(&server.url(), "b").await;
        assert_eq!(stored, N, "the stream holds each message once");
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} never acked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sub_b.try_recv().is_err(), "nothing delivered twice");
    assert!(sub_a.try_recv().is_err(), "no echo");
    let (sa, sb) = (ja.stats().snapshot(), jb.stats().snapshot());
    assert_eq!((sa.sent, sa.js_acked, sa.js_ack_duplicates), (N, N, 0));
    assert_eq!(sa.js_publish_failed, 0);
    assert_eq!(sa.received, 0, "a skipped its own messages in the stream");
    assert_eq!((sb.sent, sb.received, sb.js_skipped_duplicates), (0, N, 0));
    ja.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_loses_and_repeats_nothing() {
    let mut server = NatsServer::start_jetstream();
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let sub = big_subscription(&b);
    let ja = js_join(
        &a,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM).with_ack_timeout(Duration::from_secs(1)),
        "connect a",
    )
    .await;
    let jb = js_join(
        &b,
        &schema,
        server.url(), // Messages handed out just before the kill and never acked come back after this.
        JetStreamOptions::new(STREAM)
            .with_durable("b")
            .with_ack_wait(Duration::from_secs(2)),
        "connect b",
    )
    .await;
    eventually("b consumes", || jb.stats().subscribed.get() == 1).await;
    const N: u64 = 2000;
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (a, published) = (a.clone(), Arc::clone(&published));
        tokio::spawn(async move {
            for i in 0..N {
                a.publish_async(&tick(i)).await.expect("publish");
                published.fetch_add(1, Ordering::Relaxed);
                if i % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    eventually("a third published", || {
        published.load(Ordering::Relaxed) >= N / 3
    })
    .await;
    server.restart();
    let restarted = Instant::now();
    publisher.await.expect("publisher");
    let mut seen = Vec::new();
    collect_until(&sub, &mut seen, "every message", |s| {
        s.iter().copied().collect::<BTreeSet<_>>().len() as u64 == N
    })
    .await;
    println!(
        "all {N} delivered {:.2} s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    ja.flush().await.expect("every publish acked");
    // The consumer has nothing left to deliver or to have acked: no duplicate can come later.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (stored, pending) = stream_state(&server.url(), "b").await;
        assert_eq!(stored, N, "a retried publish was stored once");
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} never acked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while let Ok(t) = sub.try_recv() {
        seen.push(u64::from(t.size));
    }
    assert_eq!(duplicates(&seen), Vec::<u64>::new(), "delivered twice");
    assert_eq!(seen.len() as u64, N);
    let (sa, sb) = (ja.stats().snapshot(), jb.stats().snapshot());
    println!("publisher {sa:?}\nsubscriber {sb:?}");
    assert!(sa.reconnects >= 1 && sb.reconnects >= 1);
    assert_eq!(sa.js_acked, N);
    assert_eq!(sb.received, N);
    ja.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_closed_and_made_again_resumes_where_it_stopped() {
    let server = NatsServer::start_jetstream();
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let sub = big_subscription(&b);
    let ja = js_join(
        &a,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM),
        "connect a",
    )
    .await;
    let options = JetStreamOptions::new(STREAM).with_durable("resume");
    let jb1 = js_join(&b, &schema, server.url(), options.clone(), "connect b").await;
    eventually("b consumes", || jb1.stats().subscribed.get() == 1).await;
    const N: u64 = 1000;
    let publisher = {
        let a = a.clone();
        tokio::spawn(async move {
            for i in 0..N {
                a.publish_async(&tick(i)).await.expect("publish");
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let mut seen = Vec::new();
    collect_until(&sub, &mut seen, "some before the close", |s| {
        s.len() as u64 >= N / 4
    })
    .await;
    jb1.close().await;
    let first = seen.len();
    publisher.await.expect("publisher");
    ja.flush().await.expect("acked");
    // Nothing arrives while no join consumes.
    while let Ok(t) = sub.try_recv() {
        seen.push(u64::from(t.size));
    }
    let during_close = seen.len();
    assert!(
        (during_close as u64) < N,
        "the close did not stop consumption"
    );
    let jb2 = js_join(&b, &schema, server.url(), options, "connect b again").await;
    collect_until(&sub, &mut seen, "the rest", |s| s.len() as u64 >= N).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (stored, pending) = stream_state(&server.url(), "resume").await;
        assert_eq!(stored, N);
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} never acked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Ok(t) = sub.try_recv() {
        seen.push(u64::from(t.size));
    }
    println!(
        "first join delivered {first} (+{} while closing), the second {}",
        during_close - first,
        jb2.stats().received.get()
    );
    assert_eq!(seen, (0..N).collect::<Vec<_>>(), "in order, each once");
    ja.close().await;
    jb2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiners_replay_from_a_sequence_or_a_time() {
    let server = NatsServer::start_jetstream();
    let schema = schema();
    let a = MessageBus::new();
    let ja = js_join(
        &a,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM),
        "connect a",
    )
    .await;
    // Published before anyone consumes.
    for i in 0..100 {
        a.publish(&tick(i)).expect("publish");
    }
    eventually("first half acked", || ja.stats().js_acked.get() == 100).await;
    // The first half was stored (acked) before this, the second is published after it.
    let middle = SystemTime::now();
    for i in 100..200 {
        a.publish(&tick(i)).expect("publish");
    }
    eventually("second half acked", || ja.stats().js_acked.get() == 200).await;

    for (k, (durable, from, first)) in [
        ("from-seq-1", DeliverFrom::Sequence(1), 0),
        ("from-seq-151", DeliverFrom::Sequence(151), 150),
        ("from-time", DeliverFrom::Time(middle), 100),
        ("from-new", DeliverFrom::New, 200),
    ]
    .into_iter()
    .enumerate()
    {
        let b = MessageBus::new();
        let sub = big_subscription(&b);
        let jb = js_join(
            &b,
            &schema,
            server.url(),
            JetStreamOptions::new(STREAM)
                .with_durable(durable)
                .with_deliver(from),
            "connect late joiner",
        )
        .await;
        // A marker after the join: when it arrives, everything before it was replayed. The
        // earlier joiners' markers are in the stream too (1000, 1001, ...).
        let marker = 1000 + k as u64;
        a.publish(&tick(marker)).expect("marker");
        let mut seen = Vec::new();
        collect_until(&sub, &mut seen, durable, |s| s.last() == Some(&marker)).await;
        let replayed: Vec<u64> = seen.iter().copied().filter(|&s| s < 1000).collect();
        assert_eq!(replayed, (first..200).collect::<Vec<_>>(), "{durable}");
        let markers: Vec<u64> = seen.iter().copied().filter(|&s| s >= 1000).collect();
        let expected_markers = if from == DeliverFrom::New {
            vec![marker]
        } else {
            (1000..=marker).collect()
        };
        assert_eq!(markers, expected_markers, "{durable}");
        assert_eq!(jb.stats().received.get(), seen.len() as u64);
        jb.close().await;
    }
    ja.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_message_id_is_stored_once_and_counted() {
    let server = NatsServer::start_jetstream();
    let schema = schema();
    let b = MessageBus::new();
    let sub = big_subscription(&b);
    let jb = js_join(
        &b,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM)
            .with_durable("b")
            .with_deliver(DeliverFrom::All),
        "connect b",
    )
    .await;
    const N: u64 = 10;
    // A publisher that restarts and sends its messages again, with a stable publisher id:
    // the same ids, so the server drops the second copies and says so in the acks.
    let mut acks = Vec::new();
    for _ in 0..2 {
        let a = MessageBus::new();
        let ja = js_join(
            &a,
            &schema,
            server.url(),
            JetStreamOptions::new(STREAM).with_publisher_id("replayer"),
            "connect a",
        )
        .await;
        for i in 0..N {
            a.publish(&tick(i)).expect("publish");
        }
        eventually("acked", || ja.stats().js_acked.get() == N).await;
        acks.push(ja.stats().snapshot());
        ja.close().await;
    }
    assert_eq!(acks[0].js_ack_duplicates, 0);
    assert_eq!(
        acks[1].js_ack_duplicates, N,
        "every resend reported duplicate"
    );
    // Another publisher's message after them: when it arrives, everything before it did.
    let c = MessageBus::new();
    let jc = js_join(
        &c,
        &schema,
        server.url(),
        JetStreamOptions::new(STREAM),
        "connect c",
    )
    .await;
    c.publish(&tick(99)).expect("marker");
    let mut seen = Vec::new();
    collect_until(&sub, &mut seen, "the marker", |s| s.last() == Some(&99)).await;
    let mut expected: Vec<u64> = (0..N).collect();
    expected.push(99);
    assert_eq!(seen, expected, "each message once");
    let (stored, _) = stream_state(&server.url(), "b").await;
    assert_eq!(stored, N + 1);
    jc.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_mode_without_jetstream_is_a_typed_error() {
    let server = NatsServer::start("");
    let bus = MessageBus::new();
    let err = NatsBridge::connect(
        &bus,
        &schema(),
        js_config(
            server.url(),
            JetStreamOptions::new(STREAM).with_durable("b"),
        ),
    )
    .await
    .err()
    .expect("no JetStream on this server");
    assert!(
        matches!(err, NatsError::JetStreamNotEnabled { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("JetStream"), "{err}");
    // A bad stream name is a configuration error before anything is asked of the server.
    let err = NatsBridge::connect(
        &bus,
        &schema(),
        js_config(server.url(), JetStreamOptions::new("a.b")),
    )
    .await
    .err()
    .expect("bad stream name");
    assert!(matches!(err, NatsError::Config(_)), "{err:?}");
}

/// Stream limits from the configuration: a new stream gets them (the oldest messages go), and
/// an existing stream whose limits differ is updated to the configured ones; a join that gives
/// none leaves a stream's limits alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_limits_are_applied_and_updated_from_the_configuration() {
    let server = NatsServer::start_jetstream();
    let schema = schema();
    let stored = |url: String| async move {
        let client = async_nats::connect(url).await.expect("plain client");
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(STREAM).await.expect("stream");
        let info = stream.info().await.expect("stream info");
        (info.state.messages, info.config.max_messages)
    };
    let publish = |n: u64, limit: Option<u64>| {
        let url = server.url();
        let schema = schema.clone();
        async move {
            let a = MessageBus::new();
            let mut options = JetStreamOptions::new(STREAM);
            if let Some(max) = limit {
                options = options.with_limits(mycelium_nats::StreamLimits {
                    max_messages: Some(max),
                    ..Default::default()
                });
            }
            let ja = js_join(&a, &schema, url, options, "connect a").await;
            for i in 0..n {
                a.publish(&tick(i)).expect("publish");
            }
            eventually("acked", || ja.stats().js_acked.get() == n).await;
            ja.close().await;
        }
    };
    publish(10, Some(5)).await;
    assert_eq!(
        stored(server.url()).await,
        (5, 5),
        "created with max 5: the oldest went"
    );
    publish(10, Some(3)).await;
    assert_eq!(stored(server.url()).await, (3, 3), "updated to max 3");
    publish(10, None).await;
    assert_eq!(
        stored(server.url()).await,
        (3, 3),
        "no limits given: left alone"
    );
    let refused = NatsBridge::connect(
        &MessageBus::new(),
        &schema,
        js_config(
            server.url(),
            JetStreamOptions::new(STREAM).with_limits(mycelium_nats::StreamLimits {
                max_age: Some(Duration::ZERO),
                ..Default::default()
            }),
        ),
    )
    .await;
    assert!(
        matches!(refused, Err(NatsError::Config(_))),
        "a zero limit is refused"
    );
}
