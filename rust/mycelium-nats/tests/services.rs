//! Request/reply across NATS: a service served on one bus answers requests made on another,
//! with the failures typed (nobody serves, the responder fails, the requester's timeout) and a
//! local responder keeping requests local.

mod common;

use std::time::Duration;

use common::{schema, NatsServer};
use mycelium_contracts::{Order, OrderDecision};
use mycelium_nats::{NatsBridge, NatsConfig};
use mycelium_transport::{MessageBus, RequestError};

fn order(id: u64) -> Order {
    Order {
        order_id: id,
        symbol: "BTC-USD".into(),
        side: 0,
        qty: 5,
        limit_price: 100.0,
        ts_ns: id,
    }
}

fn approve(o: Order) -> Result<OrderDecision, String> {
    if o.qty > 1000 {
        return Err(format!("order {} is too large", o.order_id));
    }
    Ok(OrderDecision {
        order_id: o.order_id,
        approved: true,
        reason: String::new(),
        ts_ns: o.ts_ns,
    })
}

async fn join(bus: &MessageBus, server: &NatsServer) -> NatsBridge {
    let join = NatsBridge::connect(bus, &schema(), NatsConfig::new(server.url()))
        .await
        .expect("connect");
    assert!(join.wait_ready(Duration::from_secs(30)).await, "ready");
    join
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_on_one_bus_answers_requests_from_another() {
    let server = NatsServer::start("");
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = join(&a, &server).await;
    let _risk = b.serve::<Order, OrderDecision, _>(approve);
    let jb = join(&b, &server).await;
    for i in 0..50 {
        let decision = a
            .request_async::<Order, OrderDecision>(&order(i), LONG)
            .await
            .expect("answered over NATS");
        assert_eq!((decision.order_id, decision.approved), (i, true));
    }
    // The responder's own error travels back as the reason.
    let mut big = order(77);
    big.qty = 5000;
    match a.request_async::<Order, OrderDecision>(&big, LONG).await {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("order 77 is too large"), "{reason}")
        }
        other => panic!("expected the responder's failure, got {other:?}"),
    }
    assert_eq!(ja.stats().requests_sent.get(), 51);
    assert_eq!(jb.stats().requests_served.get(), 50);
    assert_eq!(jb.stats().request_failures.get(), 1);
    assert_eq!(ja.stats().request_failures.get(), 1);
    ja.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_serving_anywhere_fails_at_once_not_at_the_timeout() {
    let server = NatsServer::start("");
    let a = MessageBus::new();
    let ja = join(&a, &server).await;
    // Without a failure at once this would wait the whole minute and report a timeout.
    match a
        .request_async::<Order, OrderDecision>(&order(1), LONG)
        .await
    {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("no responder serves RiskCheck"), "{reason}")
        }
        other => panic!("expected no responder, got {other:?}"),
    }
    assert_eq!(ja.stats().request_failures.get(), 1);
    ja.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requesters_timeout_holds_across_nats() {
    let server = NatsServer::start("");
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = join(&a, &server).await;
    let _slow = b.serve::<Order, OrderDecision, _>(|o| {
        std::thread::sleep(Duration::from_millis(1500));
        approve(o)
    });
    let jb = join(&b, &server).await;
    match a
        .request_async::<Order, OrderDecision>(&order(1), Duration::from_millis(300))
        .await
    {
        Err(RequestError::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    ja.close().await;
    jb.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_responder_keeps_requests_local() {
    let server = NatsServer::start("");
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = join(&a, &server).await;
    let _remote = b.serve::<Order, OrderDecision, _>(approve);
    let jb = join(&b, &server).await;
    a.request_async::<Order, OrderDecision>(&order(1), LONG)
        .await
        .expect("over NATS");
    assert_eq!(ja.stats().requests_sent.get(), 1);
    let _local = a.serve::<Order, OrderDecision, _>(|o| {
        let mut d = approve(o)?;
        d.reason = "local".into();
        Ok(d)
    });
    assert!(ja.wait_ready(Duration::from_secs(30)).await);
    for i in 0..20 {
        let d = a
            .request_async::<Order, OrderDecision>(&order(i), LONG)
            .await
            .expect("local");
        assert_eq!(d.reason, "local");
    }
    assert_eq!(
        ja.stats().requests_sent.get(),
        1,
        "nothing more went to NATS"
    );
    // And b now reaches a's local responder too (a serves it on NATS): first answer wins,
    // b's own local responder keeps b's requests local.
    assert!(jb.wait_ready(Duration::from_secs(30)).await);
    b.request_async::<Order, OrderDecision>(&order(5), LONG)
        .await
        .expect("b's own");
    assert_eq!(jb.stats().requests_sent.get(), 0);
    ja.close().await;
    jb.close().await;
}
