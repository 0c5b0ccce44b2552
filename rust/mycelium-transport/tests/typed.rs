//! Typed publish/subscribe and callback handlers with a hand-written `Message` impl.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{Reading, Unencodable};
use futures_core::Stream;
use mycelium_protocol::Message;
use mycelium_transport::{
    MessageBus, OverflowPolicy, PublishError, SubscribeOptions, TryRecvError,
};

fn reading(value: i64) -> Reading {
    Reading { sensor: 7, value }
}

#[test]
fn typed_round_trip_and_raw_interop() {
    let bus = MessageBus::new();
    let typed = bus.subscribe::<Reading>(SubscribeOptions::default());
    let raw = bus.subscribe_raw(Reading::TYPE_ID, SubscribeOptions::default());
    bus.publish(&reading(-3)).unwrap();

    assert_eq!(typed.try_recv(), Ok(reading(-3)));
    let envelope = raw.try_recv().unwrap();
    assert_eq!(envelope.type_id, Reading::TYPE_ID);
    assert_eq!(Reading::decode_payload(&envelope.payload), Ok(reading(-3)));

    // A raw publisher (e.g. a foreign adapter) reaches typed subscribers.
    let mut payload = Vec::new();
    reading(11).encode_payload(&mut payload).unwrap();
    bus.publish_raw(Reading::TYPE_ID, Bytes::from(payload))
        .unwrap();
    assert_eq!(typed.recv_blocking(), Some(reading(11)));
    assert_eq!(typed.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(bus.type_name(Reading::TYPE_ID).as_deref(), Some("Reading"));
}

#[test]
fn undecodable_payloads_are_skipped_and_counted() {
    let bus = MessageBus::new();
    let typed = bus.subscribe::<Reading>(SubscribeOptions::default());
    bus.publish_raw(Reading::TYPE_ID, Bytes::from_static(b"short"))
        .unwrap();
    bus.publish(&reading(1)).unwrap();

    assert_eq!(typed.try_recv(), Ok(reading(1)));
    let m = bus.metrics();
    let s = m.subscriber(typed.id()).unwrap();
    assert_eq!((s.delivered, s.decode_errors), (2, 1));
    let last = s.last_error.as_deref().unwrap();
    assert!(last.contains("truncated"), "{last}");
}

#[test]
fn encode_errors_and_oversized_payloads_are_refused() {
    let bus = MessageBus::with_config(mycelium_transport::BusConfig { max_payload: 8 });
    let sub = bus.subscribe_raw(Reading::TYPE_ID, SubscribeOptions::default());
    assert!(matches!(
        bus.publish(&Unencodable),
        Err(PublishError::Encode(_))
    ));
    // A Reading is 12 bytes, over the 8-byte limit.
    let err = bus.publish(&reading(1)).unwrap_err();
    assert_eq!(err, PublishError::TooLarge { len: 12, max: 8 });
    assert!(err.to_string().contains("max_payload"), "{err}");
    assert!(sub.is_empty());
    assert_eq!(
        bus.metrics()
            .type_metrics(Reading::TYPE_ID)
            .unwrap()
            .published,
        0
    );
}

#[tokio::test]
async fn typed_subscription_is_a_stream() {
    let bus = MessageBus::new();
    let mut sub = bus.subscribe::<Reading>(SubscribeOptions::default());
    for value in 0..3 {
        bus.publish_async(&reading(value)).await.unwrap();
    }
    bus.close();
    let mut got = Vec::new();
    // Poll the Stream by hand so the test needs no stream-combinator crate.
    while let Some(msg) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut sub).poll_next(cx)).await
    {
        got.push(msg.value);
    }
    assert_eq!(got, vec![0, 1, 2]);
    assert_eq!(sub.recv().await, None);
}

#[tokio::test]
async fn handler_errors_and_panics_are_counted_and_delivery_goes_on() {
    let bus = MessageBus::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle = {
        let seen = Arc::clone(&seen);
        bus.subscribe_handler(
            SubscribeOptions::new(64, OverflowPolicy::Block).with_label("flaky"),
            move |msg: Reading| {
                if msg.value == 2 {
                    panic!("cannot handle two");
                }
                seen.lock().unwrap().push(msg.value);
                if msg.value % 3 == 0 {
                    Err(format!("value {} is a multiple of three", msg.value))
                } else {
                    Ok(())
                }
            },
        )
    };
    let id = handle.subscription_id();
    for value in 0..7 {
        bus.publish_async(&reading(value)).await.unwrap();
    }
    bus.publish_raw_async(Reading::TYPE_ID, Bytes::from_static(b"junk"))
        .await
        .unwrap();
    bus.publish_async(&reading(7)).await.unwrap();

    let snapshot_before_close = loop {
        let m = bus.metrics();
        if m.subscriber(id).unwrap().delivered == 9 {
            break m;
        }
        tokio::task::yield_now().await;
    };
    let s = snapshot_before_close.subscriber(id).unwrap();
    // Errors for 0, 3, 6 and the panic for 2.
    assert_eq!(s.handler_errors, 4);
    assert_eq!(s.decode_errors, 1);
    assert_eq!(s.label.as_deref(), Some("flaky"));
    assert_eq!(handle.handler_errors(), 4);

    bus.close();
    assert_eq!(handle.join().await, Ok(()));
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 3, 4, 5, 6, 7]);
}

#[tokio::test]
async fn last_handler_error_is_kept_for_the_user() {
    let bus = MessageBus::new();
    let handle = bus.subscribe_handler(SubscribeOptions::default(), |msg: Reading| {
        Err(format!("sensor {} is offline", msg.sensor))
    });
    let id = handle.subscription_id();
    bus.publish(&reading(1)).unwrap();
    let subscriber = loop {
        let m = bus.metrics();
        let s = m.subscriber(id).unwrap().clone();
        if s.handler_errors == 1 {
            break s;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(
        subscriber.last_error.as_deref(),
        Some("handler returned an error: sensor 7 is offline")
    );
    bus.close();
    handle.join().await.unwrap();
    // Once the task ends its subscription is gone; the type totals remain.
    assert!(bus.metrics().subscriber(id).is_none());
    let t = bus
        .metrics()
        .type_metrics(Reading::TYPE_ID)
        .unwrap()
        .clone();
    assert_eq!((t.delivered, t.dropped), (1, 0));
}

#[test]
fn foreign_adapters_report_handler_failures() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(Reading::TYPE_ID, SubscribeOptions::default());
    sub.record_handler_error();
    sub.record_handler_failure("ValueError: bad reading");
    let m = bus.metrics();
    let s = m.subscriber(sub.id()).unwrap();
    assert_eq!(s.handler_errors, 2);
    assert_eq!(s.last_error.as_deref(), Some("ValueError: bad reading"));
}
