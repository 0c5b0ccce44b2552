//! Bus close, subscription close, and the end of handler tasks.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use common::{tagged, untag, wait_for, Reading};
use mycelium_protocol::Message;
use mycelium_transport::{
    HandlerJoinError, MessageBus, OverflowPolicy, PublishError, RecvError, SubscribeOptions,
    TryRecvError,
};

const TYPE: u16 = 5;

#[test]
fn close_refuses_publishes_and_lets_subscribers_drain() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    for seq in 0..3 {
        bus.publish_raw(TYPE, tagged(0, seq)).unwrap();
    }
    assert!(!bus.is_closed());
    bus.close();
    assert!(bus.is_closed());
    assert_eq!(
        bus.publish_raw(TYPE, tagged(0, 9)),
        Err(PublishError::Closed)
    );
    assert_eq!(
        bus.publish(&Reading {
            sensor: 1,
            value: 1
        }),
        Err(PublishError::Closed)
    );

    assert!(sub.is_closed());
    let drained: Vec<u64> = std::iter::from_fn(|| sub.recv_blocking())
        .map(|e| untag(&e.payload).1)
        .collect();
    assert_eq!(drained, vec![0, 1, 2]);
    assert_eq!(sub.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        sub.recv_timeout(std::time::Duration::from_secs(30)),
        Err(RecvError::Closed)
    );

    let t = bus.metrics().type_metrics(TYPE).unwrap().clone();
    assert_eq!((t.published, t.delivered, t.dropped), (3, 3, 0));
    bus.close(); // idempotent
}

#[tokio::test]
async fn async_receivers_see_end_of_stream_after_draining() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    bus.publish_raw_async(TYPE, tagged(0, 0)).await.unwrap();
    bus.close();
    assert_eq!(
        bus.publish_raw_async(TYPE, tagged(0, 1)).await,
        Err(PublishError::Closed)
    );
    assert!(sub.recv().await.is_some());
    assert!(sub.recv().await.is_none());
}

#[test]
fn close_releases_a_publisher_blocked_on_a_full_queue() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    bus.publish_raw(TYPE, tagged(0, 0)).unwrap();
    let publisher = {
        let bus = bus.clone();
        thread::spawn(move || bus.publish_raw(TYPE, tagged(0, 1)))
    };
    wait_for(&bus, "second publish routed", |m| {
        m.type_metrics(TYPE).unwrap().published == 2
    });
    bus.close();
    assert_eq!(publisher.join().unwrap(), Err(PublishError::Closed));
    // The queued message is still delivered; the one that never got in is counted.
    assert_eq!(untag(&sub.recv_blocking().unwrap().payload).1, 0);
    assert!(sub.recv_blocking().is_none());
    let t = bus.metrics().type_metrics(TYPE).unwrap().clone();
    assert_eq!((t.published, t.delivered, t.dropped), (2, 1, 1));
}

#[test]
fn subscribing_after_close_yields_an_ended_subscription() {
    let bus = MessageBus::new();
    bus.close();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    assert!(sub.is_closed());
    assert!(sub.recv_blocking().is_none());
}

#[test]
fn dropping_a_subscription_counts_its_queue_as_dropped() {
    let bus = MessageBus::new();
    let keep = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    let leave = bus.subscribe_raw(TYPE, SubscribeOptions::default());
    for seq in 0..5 {
        bus.publish_raw(TYPE, tagged(0, seq)).unwrap();
    }
    assert_eq!(bus.subscriber_count(TYPE), 2);
    drop(leave);
    assert_eq!(bus.subscriber_count(TYPE), 1);
    bus.publish_raw(TYPE, tagged(0, 5)).unwrap();
    assert_eq!(keep.len(), 6);
    let t = bus.metrics().type_metrics(TYPE).unwrap().clone();
    assert_eq!((t.published, t.delivered, t.dropped), (6, 0, 5));
}

fn counting_handler(count: &Arc<AtomicU64>) -> impl FnMut(Reading) -> Result<(), String> {
    let count = Arc::clone(count);
    move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn handler_task_finishes_its_queue_and_ends_when_the_bus_closes() {
    let bus = MessageBus::new();
    let count = Arc::new(AtomicU64::new(0));
    let handle = bus.subscribe_handler(SubscribeOptions::default(), counting_handler(&count));
    for value in 0..10 {
        bus.publish_async(&Reading { sensor: 1, value })
            .await
            .unwrap();
    }
    bus.close();
    assert_eq!(handle.join().await, Ok(()));
    assert_eq!(count.load(Ordering::SeqCst), 10);
    assert_eq!(bus.subscriber_count(Reading::TYPE_ID), 0);
}

#[tokio::test]
async fn stop_lets_the_handler_finish_what_is_queued() {
    let bus = MessageBus::new();
    let count = Arc::new(AtomicU64::new(0));
    let handle = bus.subscribe_handler(SubscribeOptions::default(), counting_handler(&count));
    // Current-thread runtime: the handler cannot run before the first await below.
    for value in 0..5 {
        bus.publish(&Reading { sensor: 1, value }).unwrap();
    }
    handle.stop();
    assert_eq!(bus.subscriber_count(Reading::TYPE_ID), 0);
    bus.publish(&Reading {
        sensor: 1,
        value: 99,
    })
    .unwrap();
    assert_eq!(handle.join().await, Ok(()));
    assert_eq!(count.load(Ordering::SeqCst), 5);
    let t = bus
        .metrics()
        .type_metrics(Reading::TYPE_ID)
        .unwrap()
        .clone();
    assert_eq!((t.published, t.delivered, t.dropped), (6, 5, 0));
}

#[tokio::test]
async fn abort_cancels_the_handler_and_counts_its_queue_as_dropped() {
    let bus = MessageBus::new();
    let count = Arc::new(AtomicU64::new(0));
    let handle = bus.subscribe_handler(SubscribeOptions::default(), counting_handler(&count));
    for value in 0..4 {
        bus.publish(&Reading { sensor: 1, value }).unwrap();
    }
    handle.abort();
    assert_eq!(handle.join().await, Err(HandlerJoinError::Cancelled));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert_eq!(bus.subscriber_count(Reading::TYPE_ID), 0);
    let t = bus
        .metrics()
        .type_metrics(Reading::TYPE_ID)
        .unwrap()
        .clone();
    assert_eq!((t.published, t.delivered, t.dropped), (4, 0, 4));
}

#[test]
fn dropping_the_runtime_ends_handler_tasks_and_unsubscribes_them() {
    let bus = MessageBus::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let handle = bus.subscribe_handler_on(
        runtime.handle(),
        SubscribeOptions::default(),
        counting_handler(&count),
    );
    assert_eq!(bus.subscriber_count(Reading::TYPE_ID), 1);
    for value in 0..3 {
        bus.publish(&Reading { sensor: 1, value }).unwrap();
    }
    drop(runtime);
    assert!(handle.is_finished());
    assert_eq!(bus.subscriber_count(Reading::TYPE_ID), 0);
    // The runtime never ran the task, so its whole queue counts as dropped.
    let t = bus
        .metrics()
        .type_metrics(Reading::TYPE_ID)
        .unwrap()
        .clone();
    assert_eq!((t.published, t.delivered, t.dropped), (3, 0, 3));
    assert!(!bus.is_closed(), "the bus outlives the runtime");
    bus.publish_raw(TYPE, Bytes::from_static(b"still works"))
        .unwrap();
}

#[test]
fn handler_subscription_outside_a_runtime_is_an_error_not_a_panic() {
    let bus = MessageBus::new();
    let err = bus
        .try_subscribe_handler(SubscribeOptions::default(), |_: Reading| {
            Ok::<(), String>(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    assert_eq!(bus.subscriber_count(Reading::TYPE_ID), 0);
}
