//! Each overflow policy under a full queue, and release of blocked publishers.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::{pause, tagged, untag, wait_for};
use mycelium_transport::{
    MessageBus, OverflowPolicy, PublishError, SubscribeOptions, TryRecvError,
};

const TYPE: u16 = 9;

fn seqs(sub: &mycelium_transport::RawSubscription) -> Vec<u64> {
    let mut out = Vec::new();
    sub.drain_into(&mut out, usize::MAX);
    out.iter().map(|e| untag(&e.payload).1).collect()
}

fn published(bus: &MessageBus) -> u64 {
    bus.metrics().type_metrics(TYPE).map_or(0, |t| t.published)
}

#[test]
fn block_waits_until_the_subscriber_makes_room() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(3, OverflowPolicy::Block));
    for seq in 0..3 {
        bus.publish_raw(TYPE, tagged(0, seq)).unwrap();
    }
    assert_eq!(sub.len(), 3);

    let (done_tx, done_rx) = mpsc::channel();
    let publisher = {
        let bus = bus.clone();
        thread::spawn(move || {
            let result = bus.publish_raw(TYPE, tagged(0, 3));
            done_tx.send(()).unwrap();
            result
        })
    };
    wait_for(&bus, "fourth publish routed", |m| {
        m.type_metrics(TYPE).unwrap().published == 4
    });
    pause();
    assert!(
        done_rx.try_recv().is_err(),
        "publish into a full Block queue returned before there was room"
    );

    assert_eq!(untag(&sub.try_recv().unwrap().payload).1, 0);
    assert_eq!(publisher.join().unwrap(), Ok(()));
    assert_eq!(seqs(&sub), vec![1, 2, 3], "nothing lost, order kept");
    let m = bus.metrics();
    assert_eq!(m.type_metrics(TYPE).unwrap().dropped, 0);
    assert_eq!(m.subscriber(sub.id()).unwrap().delivered, 4);
}

#[tokio::test]
async fn async_publish_awaits_room_without_blocking_the_runtime() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    bus.publish_raw_async(TYPE, tagged(0, 0)).await.unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish_raw_async(TYPE, tagged(0, 1)).await })
    };
    // This test runs on a current-thread runtime: if the publisher blocked the thread, the
    // receive below could never run.
    while published(&bus) < 2 {
        tokio::task::yield_now().await;
    }
    assert!(!publisher.is_finished());
    assert_eq!(untag(&sub.recv().await.unwrap().payload).1, 0);
    assert_eq!(publisher.await.unwrap(), Ok(()));
    assert_eq!(untag(&sub.recv().await.unwrap().payload).1, 1);
}

#[test]
fn drop_oldest_keeps_the_newest_and_counts_evictions() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(4, OverflowPolicy::DropOldest));
    for seq in 0..10 {
        bus.publish_raw(TYPE, tagged(0, seq)).unwrap();
    }
    assert_eq!(seqs(&sub), vec![6, 7, 8, 9]);
    let m = bus.metrics();
    assert_eq!(m.subscriber(sub.id()).unwrap().dropped, 6);
    let t = m.type_metrics(TYPE).unwrap();
    assert_eq!((t.published, t.delivered, t.dropped), (10, 4, 6));
}

#[test]
fn fail_publish_reports_queue_full_and_still_delivers_to_the_others() {
    let bus = MessageBus::new();
    let strict = bus.subscribe_raw(
        TYPE,
        SubscribeOptions::new(2, OverflowPolicy::FailPublish).with_label("strict"),
    );
    let relaxed = bus.subscribe_raw(TYPE, SubscribeOptions::new(8, OverflowPolicy::Block));
    bus.publish_raw(TYPE, tagged(0, 0)).unwrap();
    bus.publish_raw(TYPE, tagged(0, 1)).unwrap();

    let err = bus.publish_raw(TYPE, tagged(0, 2)).unwrap_err();
    assert_eq!(
        err,
        PublishError::QueueFull {
            subscriber: strict.id(),
            label: Some("strict".into())
        }
    );
    assert!(err.to_string().contains("strict"), "{err}");

    assert_eq!(
        seqs(&relaxed),
        vec![0, 1, 2],
        "other subscriber got the message"
    );
    assert_eq!(seqs(&strict), vec![0, 1]);
    let m = bus.metrics();
    assert_eq!(m.subscriber(strict.id()).unwrap().dropped, 1);
    assert_eq!(m.subscriber(relaxed.id()).unwrap().dropped, 0);

    // Room again: publishes succeed.
    bus.publish_raw(TYPE, tagged(0, 3)).unwrap();
    assert_eq!(seqs(&strict), vec![3]);
}

#[test]
fn closing_a_subscription_releases_a_blocked_publisher() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(2, OverflowPolicy::Block));
    bus.publish_raw(TYPE, tagged(0, 0)).unwrap();
    bus.publish_raw(TYPE, tagged(0, 1)).unwrap();
    let publisher = {
        let bus = bus.clone();
        thread::spawn(move || bus.publish_raw(TYPE, tagged(0, 2)))
    };
    wait_for(&bus, "third publish routed", |m| {
        m.type_metrics(TYPE).unwrap().published == 3
    });
    let id = sub.id();
    sub.close();
    // The subscriber left; that is not the publisher's error.
    assert_eq!(publisher.join().unwrap(), Ok(()));
    assert_eq!(bus.subscriber_count(TYPE), 0);
    assert_eq!(sub.try_recv(), Err(TryRecvError::Closed));
    let t = bus.metrics().type_metrics(TYPE).unwrap().clone();
    // Two were queued and one was in flight: all three count as dropped.
    assert_eq!((t.published, t.delivered, t.dropped), (3, 0, 3));
    assert!(bus.metrics().subscriber(id).is_none());
}

#[test]
fn dropping_a_subscription_releases_a_blocked_publisher() {
    let bus = MessageBus::new();
    let sub = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    bus.publish_raw(TYPE, Bytes::from_static(b"a")).unwrap();
    let publisher = {
        let bus = bus.clone();
        thread::spawn(move || bus.publish_raw(TYPE, Bytes::from_static(b"b")))
    };
    wait_for(&bus, "second publish routed", |m| {
        m.type_metrics(TYPE).unwrap().published == 2
    });
    drop(sub);
    assert_eq!(publisher.join().unwrap(), Ok(()));
    assert_eq!(bus.metrics().type_metrics(TYPE).unwrap().dropped, 2);
}

#[test]
fn a_blocked_subscriber_does_not_delay_delivery_to_the_others() {
    let bus = MessageBus::new();
    let slow = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    let fast = bus.subscribe_raw(TYPE, SubscribeOptions::new(8, OverflowPolicy::Block));
    bus.publish_raw(TYPE, tagged(0, 0)).unwrap();
    let publisher = {
        let bus = bus.clone();
        thread::spawn(move || bus.publish_raw(TYPE, tagged(0, 1)))
    };
    // `fast` gets message 1 while the publisher still waits for `slow` (nothing has been
    // taken from `slow` yet). The timeout only turns a hang into a failure.
    let patience = Duration::from_secs(30);
    assert_eq!(untag(&fast.recv_timeout(patience).unwrap().payload).1, 0);
    assert_eq!(untag(&fast.recv_timeout(patience).unwrap().payload).1, 1);
    assert_eq!(slow.len(), 1);
    assert_eq!(untag(&slow.recv_blocking().unwrap().payload).1, 0);
    assert_eq!(publisher.join().unwrap(), Ok(()));
    assert_eq!(untag(&slow.recv_blocking().unwrap().payload).1, 1);
}

/// Issue 12 item 8: a capacity above the maximum used to be clamped to it silently (and the
/// whole queue allocated). Now the `try_` functions refuse it with an error naming the limit,
/// and the infallible ones panic with that message.
#[test]
fn out_of_range_capacity_is_refused_with_the_limit_named() {
    let bus = MessageBus::new();
    let max = mycelium_transport::MAX_QUEUE_CAPACITY;
    for capacity in [0, max + 1, u32::MAX as usize, usize::MAX] {
        let err = bus
            .try_subscribe_raw(TYPE, SubscribeOptions::new(capacity, OverflowPolicy::Block))
            .unwrap_err();
        assert_eq!(
            err,
            mycelium_transport::SubscribeError::InvalidCapacity {
                requested: capacity
            }
        );
        let text = err.to_string();
        assert!(text.contains(&format!("capacity {capacity} ")), "{text}");
        assert!(text.contains(&format!("1 to {max}")), "{text}");
        let err = bus
            .try_subscribe::<common::Reading>(SubscribeOptions::new(
                capacity,
                OverflowPolicy::Block,
            ))
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains(&format!("1 to {max}")), "{err}");
    }
    assert_eq!(bus.subscriber_count(TYPE), 0);
    let largest = bus
        .try_subscribe_raw(TYPE, SubscribeOptions::new(max, OverflowPolicy::Block))
        .unwrap();
    assert_eq!(largest.capacity(), max);
}

#[test]
#[should_panic(expected = "queue capacity 1048577 is out of range; use 1 to 1048576")]
fn subscribe_raw_panics_above_the_maximum_instead_of_clamping() {
    let bus = MessageBus::new();
    let max = mycelium_transport::MAX_QUEUE_CAPACITY;
    let _ = bus.subscribe_raw(TYPE, SubscribeOptions::new(max + 1, OverflowPolicy::Block));
}

#[test]
#[should_panic(expected = "queue capacity 0 is out of range")]
fn subscribe_raw_panics_on_a_zero_capacity() {
    let bus = MessageBus::new();
    let _ = bus.subscribe_raw(TYPE, SubscribeOptions::new(0, OverflowPolicy::DropOldest));
}

/// Counts hook calls and records, at each, how many messages the consumer had taken.
struct CountingHooks<'a> {
    calls: Vec<&'static str>,
    taken: &'a std::sync::atomic::AtomicUsize,
    taken_at_before: Option<usize>,
}

impl mycelium_transport::WaitHooks for CountingHooks<'_> {
    fn before_wait(&mut self) {
        self.calls.push("before");
        self.taken_at_before = Some(self.taken.load(std::sync::atomic::Ordering::SeqCst));
    }
    fn after_wait(&mut self) {
        self.calls.push("after");
    }
}

#[test]
fn wait_hooks_run_only_around_a_wait_for_room() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let bus = MessageBus::new();
    let sub = std::sync::Arc::new(
        bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block)),
    );
    let taken = AtomicUsize::new(0);
    let mut hooks = CountingHooks {
        calls: Vec::new(),
        taken: &taken,
        taken_at_before: None,
    };
    // Room in the queue: no wait, no hook.
    bus.publish_raw_with_hooks(TYPE, tagged(0, 0), &mut hooks)
        .unwrap();
    assert!(hooks.calls.is_empty());
    // Full queue: the publish waits until the consumer below takes a message.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            assert!(sub.recv_blocking().is_some());
            taken.fetch_add(1, Ordering::SeqCst);
        });
        bus.publish_raw_with_hooks(TYPE, tagged(0, 1), &mut hooks)
            .unwrap();
    });
    assert_eq!(hooks.calls, ["before", "after"]);
    assert_eq!(
        hooks.taken_at_before,
        Some(0),
        "before_wait ran before the wait, not after"
    );
    assert_eq!(untag(&sub.recv_blocking().unwrap().payload).1, 1);
}

/// Gives up at its `give_up_at`-th question (a pending Ctrl-C, in an adapter).
struct GivingUpHooks {
    asked: usize,
    give_up_at: usize,
    calls: Vec<&'static str>,
}

impl mycelium_transport::WaitHooks for GivingUpHooks {
    fn before_wait(&mut self) {
        self.calls.push("before");
    }
    fn after_wait(&mut self) {
        self.calls.push("after");
    }
    fn keep_waiting(&mut self) -> bool {
        self.asked += 1;
        self.asked < self.give_up_at
    }
    fn may_give_up(&self) -> bool {
        true
    }
}

#[test]
fn a_wait_hook_can_give_up_and_every_abandoned_subscriber_counts_a_drop() {
    let bus = MessageBus::new();
    let roomy = bus.subscribe_raw(TYPE, SubscribeOptions::new(8, OverflowPolicy::Block));
    let full_a = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    let full_b = bus.subscribe_raw(TYPE, SubscribeOptions::new(1, OverflowPolicy::Block));
    bus.publish_raw(TYPE, tagged(0, 0)).unwrap();
    let mut hooks = GivingUpHooks {
        asked: 0,
        give_up_at: 2,
        calls: Vec::new(),
    };
    // Nobody reads full_a or full_b: without the hook's answer this publish never returns.
    let result = bus.publish_raw_with_hooks(TYPE, tagged(0, 1), &mut hooks);
    assert_eq!(result, Err(PublishError::Interrupted { abandoned: 2 }));
    assert_eq!(hooks.asked, 2, "asked once per wait slice until it gave up");
    assert_eq!(hooks.calls, ["before", "after"]);
    // Counts reconcile: 2 published; roomy got both, each full queue has 1 and dropped 1.
    assert_eq!(published(&bus), 2);
    assert_eq!(seqs(&roomy), [0, 1]);
    assert_eq!(seqs(&full_a), [0]);
    assert_eq!(seqs(&full_b), [0]);
    let metrics = bus.metrics();
    let dropped: u64 = metrics.subscribers.iter().map(|s| s.dropped).sum();
    assert_eq!(dropped, 2);
}
