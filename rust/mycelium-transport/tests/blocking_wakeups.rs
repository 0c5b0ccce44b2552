//! Threads blocked in `recv_blocking` / `recv_timeout` are woken by every way a message or an
//! end can reach them: a publish, a publisher released from a full queue, the subscription's
//! close from another thread, the bus's close. A lost wake-up shows as a hang (the ping-pong
//! has no timeouts) or as a timeout where a message was due.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{tagged, untag};
use mycelium_transport::{
    MessageBus, OverflowPolicy, RecvError, SubscribeError, SubscribeOptions, MAX_SPIN,
};

const PING: u16 = 1;
const PONG: u16 = 2;
const PATIENCE: Duration = Duration::from_secs(30);

fn block(capacity: usize) -> SubscribeOptions {
    SubscribeOptions::new(capacity, OverflowPolicy::Block)
}

#[test]
fn ping_pong_between_two_blocked_threads_loses_no_wake_up() {
    let bus = MessageBus::new();
    let pings = bus.subscribe_raw(PING, block(4));
    let pongs = bus.subscribe_raw(PONG, block(4));
    let echo_bus = bus.clone();
    let echo = thread::spawn(move || {
        let mut echoed = 0u64;
        while let Some(env) = pings.recv_blocking() {
            let (_, seq) = untag(&env.payload);
            echo_bus.publish_raw(PONG, tagged(1, seq)).unwrap();
            echoed += 1;
        }
        echoed
    });
    for seq in 0..20_000u64 {
        bus.publish_raw(PING, tagged(0, seq)).unwrap();
        let reply = if seq % 2 == 0 {
            pongs.recv_blocking().expect("bus open")
        } else {
            pongs
                .recv_timeout(PATIENCE)
                .expect("reply within the patience")
        };
        assert_eq!(untag(&reply.payload).1, seq);
    }
    bus.close();
    assert_eq!(echo.join().unwrap(), 20_000);
}

#[test]
fn a_timed_wait_is_woken_by_a_publish_long_before_its_deadline() {
    let bus = MessageBus::new();
    let sub = Arc::new(bus.subscribe_raw(PING, block(4)));
    let waiter = {
        let sub = Arc::clone(&sub);
        thread::spawn(move || {
            let start = Instant::now();
            let got = sub.recv_timeout(PATIENCE).map(|e| untag(&e.payload).1);
            (got, start.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(20));
    bus.publish_raw(PING, tagged(0, 9)).unwrap();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, Ok(9));
    // Not a speed check: a waiter nobody woke would only see the message at its deadline.
    assert!(waited < PATIENCE, "woken only by the deadline ({waited:?})");
}

#[test]
fn closing_the_subscription_from_another_thread_ends_every_blocked_receiver() {
    let bus = MessageBus::new();
    let sub = Arc::new(bus.subscribe_raw(PING, block(4)));
    let receivers: Vec<_> = (0..3)
        .map(|i| {
            let sub = Arc::clone(&sub);
            thread::spawn(move || {
                if i == 0 {
                    sub.recv_timeout(PATIENCE).map(|_| ())
                } else {
                    sub.recv_blocking().map(|_| ()).ok_or(RecvError::Closed)
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    sub.close();
    for r in receivers {
        assert_eq!(r.join().unwrap(), Err(RecvError::Closed));
    }
}

#[test]
fn closing_the_bus_ends_a_blocked_receiver_after_it_drains() {
    let bus = MessageBus::new();
    let sub = Arc::new(bus.subscribe_raw(PING, block(4)));
    let receiver = {
        let sub = Arc::clone(&sub);
        thread::spawn(move || {
            std::iter::from_fn(|| sub.recv_blocking())
                .map(|e| untag(&e.payload).1)
                .collect::<Vec<_>>()
        })
    };
    thread::sleep(Duration::from_millis(20));
    bus.publish_raw(PING, tagged(0, 1)).unwrap();
    bus.close();
    assert_eq!(receiver.join().unwrap(), vec![1]);
}

/// A publisher that waited for room (the slow path of `Block`) wakes the receiver too.
#[test]
fn messages_sent_after_waiting_for_room_wake_the_receiver() {
    let bus = MessageBus::new();
    let sub = Arc::new(bus.subscribe_raw(PING, block(1)));
    let publisher = {
        let bus = bus.clone();
        thread::spawn(move || {
            for seq in 0..2_000 {
                bus.publish_raw(PING, tagged(0, seq)).unwrap();
            }
        })
    };
    for seq in 0..2_000 {
        let env = sub.recv_timeout(PATIENCE).expect("every message arrives");
        assert_eq!(untag(&env.payload).1, seq);
    }
    publisher.join().unwrap();
}

#[test]
fn spinning_subscriptions_deliver_everything_in_order() {
    let bus = MessageBus::new();
    let spin = Duration::from_micros(50);
    let pings = bus.subscribe_raw(PING, block(4).with_spin(spin));
    let pongs = bus.subscribe_raw(PONG, block(4).with_spin(spin));
    assert_eq!(pongs.spin(), spin);
    let echo_bus = bus.clone();
    let echo = thread::spawn(move || {
        while let Some(env) = pings.recv_blocking() {
            echo_bus.publish_raw(PONG, env.payload).unwrap();
        }
    });
    for seq in 0..5_000u64 {
        bus.publish_raw(PING, tagged(0, seq)).unwrap();
        let reply = pongs.recv_timeout(PATIENCE).expect("reply");
        assert_eq!(untag(&reply.payload).1, seq);
    }
    bus.close();
    echo.join().unwrap();
}

#[test]
fn a_spin_beyond_the_limit_is_refused_or_clamped() {
    let bus = MessageBus::new();
    let too_long = MAX_SPIN + Duration::from_micros(1);
    let err = bus
        .try_subscribe_raw(PING, block(4).with_spin(too_long))
        .unwrap_err();
    assert_eq!(
        err,
        SubscribeError::InvalidSpin {
            requested: too_long
        }
    );
    assert!(err.to_string().contains("too long"), "{err}");
    assert_eq!(
        bus.subscribe_raw(PING, block(4).with_spin(too_long)).spin(),
        MAX_SPIN
    );
}
