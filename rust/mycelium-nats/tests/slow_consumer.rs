//! A subscription that does not keep up: the NATS client drops messages for it; every report
//! is counted and each burst is logged once, not once per message. Its own test binary: it
//! installs a global tracing subscriber that counts this crate's log lines.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{eventually, schema, NatsServer};
use mycelium_contracts::TradeTick;
use mycelium_nats::{NatsBridge, NatsConfig};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Counts mycelium_nats's log lines whose message mentions a slow consumer.
struct SlowConsumerLines(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for SlowConsumerLines {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        // async-nats logs each drop itself at debug level; only our lines count.
        if !event.metadata().target().starts_with("mycelium_nats") {
            return;
        }
        let mut message = MessageText(String::new());
        event.record(&mut message);
        if message.0.contains("slow consumer") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_drops_are_counted_and_logged_once_per_burst() {
    let lines = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(SlowConsumerLines(Arc::clone(&lines))),
    )
    .expect("the only subscriber of this test binary");

    let server = NatsServer::start("");
    let schema = schema();
    let bus = MessageBus::new();
    let join = NatsBridge::connect(
        &bus,
        &schema,
        NatsConfig::new(server.url()).with_subscription_capacity(4),
    )
    .await
    .expect("connect");
    // A local subscriber that never reads, with a one-message Block queue: the join's receiver
    // waits on it after the first message, and the client's 4-message buffer fills behind it.
    let stuck = bus.subscribe::<TradeTick>(
        SubscribeOptions::default()
            .with_capacity(1)
            .with_policy(OverflowPolicy::Block),
    );
    eventually("subscribed", || join.is_ready()).await;

    let publisher = async_nats::connect(server.url())
        .await
        .expect("plain client");
    let tick = TradeTick {
        symbol: "BTC-USD".into(),
        price: 1.0,
        size: 1,
        ts_ns: 1,
        side: 0,
    };
    let mut payload = Vec::new();
    tick.encode_payload(&mut payload).expect("encode");
    let payload = Bytes::from(payload);
    let subject = format!("mycelium.{}.TradeTick", schema.name);
    const N: u64 = 2000;
    for _ in 0..N {
        publisher
            .publish(subject.clone(), payload.clone())
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush");

    // Nearly all N are dropped by the client; async-nats queues up to 128 reports before it
    // discards any, so at least that many are counted.
    eventually("drops counted", || join.stats().slow_consumer.get() >= 128).await;
    let reports = join.stats().slow_consumer.get();
    let logged = lines.load(Ordering::Relaxed);
    assert!(logged >= 1, "the burst is logged");
    // One burst; a stall of over a second between two reports on a loaded machine may split
    // it, hence a bound far below one line per report rather than exactly one.
    assert!(
        logged <= 3,
        "{logged} slow-consumer lines for {reports} reports: one per burst expected"
    );
    assert!(
        join.stats().received.get() <= 1 + 1 + 4,
        "the rest was dropped"
    );
    drop(stuck);
    join.close().await;
}
