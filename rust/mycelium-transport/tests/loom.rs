//! Loom models of the transport's concurrent core (issue 12): the real [`Doorbell`] (its
//! atomics, fences, mutex and condition variable swapped for loom's under
//! `--cfg mycelium_loom`), driven by small queues that follow the subscriber queue's protocol
//! (`src/subscriber.rs`: a slot count reserved before a push, DropOldest evicting with an
//! ordinary receive and reusing the slot, close = channel close then doorbell close).
//! async-channel itself is not loom-aware, so the queues here stand in for it; the doorbell
//! is the library's own code.
//!
//! A hang is a loom "deadlock" failure (every thread blocked), a lost message or a wrong count
//! a failed assertion, in any explored interleaving.
//!
//! Run (scripts/test-loom.sh; a separate target dir so the shared one keeps its flags):
//! `RUSTFLAGS="--cfg mycelium_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2
//! cargo test -p mycelium-transport --test loom --release`
#![cfg(mycelium_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicU32, Ordering::SeqCst};
use loom::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Release};
use loom::sync::{Arc, Mutex};
use loom::thread;
use mycelium_transport::{Doorbell, Woken};

/// A lock-free "queue" of indistinguishable messages: a count, pushed with Release and taken
/// with an AcqRel CAS. No mutex orders a push against a sleeper's poll, so only the doorbell's
/// fences can (a lock-based queue would hide a missing fence).
#[derive(Default)]
struct Counter {
    queued: AtomicUsize,
    bell: Doorbell,
}

impl Counter {
    fn push(&self) {
        self.queued.fetch_add(1, Release);
        self.bell.ring();
    }
    fn poll(&self) -> Option<()> {
        let mut n = self.queued.load(Acquire);
        while n > 0 {
            match self.queued.compare_exchange(n, n - 1, AcqRel, Acquire) {
                Ok(_) => return Some(()),
                Err(now) => n = now,
            }
        }
        None
    }
}

/// (a) A publish racing a sleeper never loses the wake-up: the sleeper takes the message
/// whichever way the push, the ring, the sleeper's count and its re-check interleave.
#[test]
fn publish_racing_a_sleeper_never_loses_the_wake_up() {
    loom::model(|| {
        let q = Arc::new(Counter::default());
        let publisher = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.push())
        };
        assert_eq!(q.bell.wait(|| q.poll(), None), Woken::Ready(()));
        publisher.join().unwrap();
    });
}

/// (a') Two sleepers, two publishes: both are woken (a ring meant for one may wake the other,
/// who must then take a message rather than go back to sleep over one left behind).
#[test]
fn two_publishes_wake_two_sleepers() {
    loom::model(|| {
        let q = Arc::new(Counter::default());
        let sleeper = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.bell.wait(|| q.poll(), None))
        };
        let publisher = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                q.push();
                q.push();
            })
        };
        assert_eq!(q.bell.wait(|| q.poll(), None), Woken::Ready(()));
        assert_eq!(sleeper.join().unwrap(), Woken::Ready(()));
        publisher.join().unwrap();
    });
}

/// (b) A close racing a sleeper always wakes it, even though the queue never reports the
/// close (as a queue reopened by concurrent-queue 2.5's `force_push` did, issue 12 item 7):
/// the doorbell's own flag ends the wait.
#[test]
fn close_racing_a_sleeper_always_wakes_it() {
    loom::model(|| {
        let bell = Arc::new(Doorbell::default());
        let closer = {
            let bell = Arc::clone(&bell);
            thread::spawn(move || bell.close())
        };
        assert_eq!(bell.wait(|| None::<()>, None), Woken::Closed);
        closer.join().unwrap();
    });
}

/// A queued message, or the end of the stream.
type Polled = Option<u32>;

/// The channel under a subscriber queue. `reopens` makes it behave like concurrent-queue
/// 2.5's bounded queue under `force_push`: the eviction reads the tail word, works, then
/// stores it back whole, erasing a `close` that landed in between.
struct Channel {
    /// Bit 0: closed. The rest counts pushes (it changes on each, as a tail index does).
    tail: AtomicUsize,
    items: Mutex<VecDeque<u32>>,
    reopens: bool,
}

const CLOSED: usize = 1;

impl Channel {
    fn new(reopens: bool) -> Self {
        Channel {
            tail: AtomicUsize::new(0),
            items: Mutex::new(VecDeque::new()),
            reopens,
        }
    }
    fn is_closed(&self) -> bool {
        self.tail.load(SeqCst) & CLOSED != 0
    }
    fn try_send(&self, v: u32) -> Result<(), u32> {
        let mut items = self.items.lock().unwrap();
        if self.is_closed() {
            return Err(v);
        }
        items.push_back(v);
        self.tail.fetch_add(2, SeqCst);
        Ok(())
    }
    /// concurrent-queue 2.5's `Bounded::force_push` as far as the close bit is concerned:
    /// the old DropOldest path (async-channel's `force_send`). Returns the evicted message.
    fn force_send(&self, v: u32, capacity: usize) -> Result<Option<u32>, u32> {
        let tail = self.tail.load(SeqCst);
        if tail & CLOSED != 0 {
            return Err(v);
        }
        let evicted = {
            let mut items = self.items.lock().unwrap();
            let evicted = if items.len() >= capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(v);
            evicted
        };
        if self.reopens {
            // bounded.rs:112: a plain store of the new tail, computed from the old one.
            self.tail.store(tail + 2, SeqCst);
        } else {
            self.tail.fetch_add(2, SeqCst);
        }
        Ok(evicted)
    }
    fn try_recv(&self) -> Option<u32> {
        self.items.lock().unwrap().pop_front()
    }
    /// Under the items lock, as a push: concurrent-queue's close and push both act on the
    /// tail word, so no push lands after a close that took effect.
    fn close(&self) {
        let _items = self.items.lock().unwrap();
        self.tail.fetch_or(CLOSED, SeqCst);
    }
    /// One receive: a message, or `Err(true)` if the channel is empty and closed (one look
    /// at the tail word, as concurrent-queue's `pop` does).
    fn recv(&self) -> Result<u32, bool> {
        let mut items = self.items.lock().unwrap();
        items.pop_front().ok_or_else(|| self.is_closed())
    }
}

/// A DropOldest subscriber queue following `SubscriberShared`'s protocol.
struct Subscriber {
    channel: Channel,
    capacity: usize,
    /// Slots in use: queued plus about to be pushed (`SubscriberShared::used`).
    used: AtomicUsize,
    dropped: AtomicU32,
    bell: Doorbell,
}

impl Subscriber {
    fn new(capacity: usize, reopens: bool) -> Self {
        Subscriber {
            channel: Channel::new(reopens),
            capacity,
            used: AtomicUsize::new(0),
            dropped: AtomicU32::new(0),
            bell: Doorbell::default(),
        }
    }

    fn reserve(&self) -> bool {
        let mut used = self.used.load(SeqCst);
        loop {
            if used >= self.capacity {
                return false;
            }
            match self.used.compare_exchange(used, used + 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// `push_reserved`: an unbounded channel refuses only when closed.
    fn push_reserved(&self, v: u32) -> bool {
        if self.channel.try_send(v).is_err() {
            self.used.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// `SubscriberShared::offer` for DropOldest (`try_queue` + `evict_and_queue`).
    fn offer(&self, v: u32) {
        let queued = loop {
            if self.bell.is_closed() {
                break false;
            }
            if self.reserve() {
                break self.push_reserved(v);
            }
            if self.channel.try_recv().is_some() {
                self.dropped.fetch_add(1, SeqCst);
                break self.push_reserved(v);
            }
            // A receiver took the oldest and has not released its slot yet: let it run.
            thread::yield_now();
        };
        if queued {
            self.bell.ring();
        } else {
            self.dropped.fetch_add(1, SeqCst);
        }
    }

    /// The DropOldest path before dc7fef7: async-channel's `force_send`.
    fn offer_with_force_send(&self, v: u32) {
        match self.channel.force_send(v, self.capacity) {
            Ok(evicted) => {
                if evicted.is_some() {
                    self.dropped.fetch_add(1, SeqCst);
                }
                self.bell.ring();
            }
            Err(_) => {
                self.dropped.fetch_add(1, SeqCst);
            }
        }
    }

    /// `SubscriberShared::close_queue`.
    fn close(&self) {
        self.channel.close();
        self.bell.close();
    }

    /// A receive's poll: take one and release its slot, or report the channel's close.
    fn poll(&self) -> Option<Polled> {
        match self.channel.recv() {
            Ok(v) => {
                self.used.fetch_sub(1, SeqCst);
                Some(Some(v))
            }
            Err(closed) => closed.then_some(None),
        }
    }

    /// A delivery thread: receives until the end of the stream; returns what it got.
    fn deliver_all(&self) -> Vec<u32> {
        let mut got = Vec::new();
        loop {
            match self.bell.wait(|| self.poll(), None) {
                Woken::Ready(Some(v)) => got.push(v),
                Woken::Ready(None) | Woken::Closed => return got,
                Woken::TimedOut => unreachable!("no deadline"),
            }
        }
    }
}

/// (c) DropOldest eviction racing close, with a receiver asleep on the queue: the receiver
/// always ends, the queue stays closed, every message offered is either received or counted
/// as dropped exactly once, and no slot is leaked.
#[test]
fn drop_oldest_eviction_racing_close() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new(1, false));
        sub.offer(0); // full: the next offer must evict
        let receiver = {
            let sub = Arc::clone(&sub);
            thread::spawn(move || sub.deliver_all())
        };
        let publisher = {
            let sub = Arc::clone(&sub);
            thread::spawn(move || sub.offer(1))
        };
        sub.close();
        publisher.join().unwrap();
        let got = receiver.join().unwrap();
        assert!(sub.channel.is_closed(), "the queue reopened");
        assert_eq!(
            got.len() as u32 + sub.dropped.load(SeqCst),
            2,
            "got {got:?}"
        );
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        assert_eq!(sub.used.load(SeqCst), 0, "a slot leaked");
    });
}

/// Unsubscribe racing two publishers on a one-slot DropOldest queue: the unsubscriber closes
/// the queue and joins the delivery thread, which must end; every message is accounted for.
fn unsubscribe_racing_two_publishers(reopens: bool, force_send: bool) {
    loom::model(move || {
        let sub = Arc::new(Subscriber::new(1, reopens));
        let publishers: Vec<_> = [1, 2]
            .into_iter()
            .map(|v| {
                let sub = Arc::clone(&sub);
                thread::spawn(move || {
                    if force_send {
                        sub.offer_with_force_send(v);
                    } else {
                        sub.offer(v);
                    }
                })
            })
            .collect();
        let delivery = {
            let sub = Arc::clone(&sub);
            thread::spawn(move || sub.deliver_all())
        };
        sub.close();
        // The join of `SubEntry::cancel_and_join`: hangs (a loom deadlock) if the delivery
        // thread sleeps through the close.
        let got = delivery.join().unwrap();
        for p in publishers {
            p.join().unwrap();
        }
        if !force_send {
            // The old path loses track of messages left in a reopened queue; the current one
            // accounts for each.
            let left = sub.channel.items.lock().unwrap().len() as u32;
            assert_eq!(got.len() as u32 + sub.dropped.load(SeqCst) + left, 2);
        }
    });
}

/// (d) The item 7 hang as it was: DropOldest through `force_send` on a channel whose
/// eviction can erase a concurrent close. The delivery thread still ends, because the
/// doorbell's own closed flag ends its wait.
#[test]
fn unsubscribe_racing_two_force_send_publishers_on_a_reopening_queue() {
    unsubscribe_racing_two_publishers(true, true);
}

/// (d') The same race with today's eviction (receive the oldest, reuse its slot) on a
/// channel whose close cannot be undone.
#[test]
fn unsubscribe_racing_two_evicting_publishers() {
    unsubscribe_racing_two_publishers(false, false);
}
