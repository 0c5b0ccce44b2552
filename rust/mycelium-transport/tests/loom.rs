//! Loom models of the transport's concurrent core (issues 12 and 16): the real [`Doorbell`]
//! and the real subscriber [`Queue`] (their atomics, fences, mutexes and condition variable
//! swapped for loom's under `--cfg mycelium_loom`, `src/sync.rs`), driven in the order
//! `src/subscriber.rs` drives them (offer then ring, DropOldest evicting under the queue's
//! lock, close = queue close then doorbell close, takes handed over to a shared total).
//!
//! A hang is a loom "deadlock" failure (every thread blocked), a lost message or a wrong count
//! a failed assertion, in any explored interleaving.
//!
//! Run (scripts/test-loom.sh; a separate target dir so the shared one keeps its flags):
//! `RUSTFLAGS="--cfg mycelium_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2
//! cargo test -p mycelium-transport --test loom --release`
#![cfg(mycelium_loom)]

use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use loom::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Release};
use loom::sync::Arc;
use loom::thread;
use mycelium_transport::queue::{Offered, Popped, Queue};
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

/// A subscriber as `src/subscriber.rs` builds one, minus the async and Block-publisher
/// wake-ups (event-listener is not loom-aware): the library's own [`Queue`] and [`Doorbell`],
/// driven in the order `SubscriberShared` drives them.
struct Subscriber {
    queue: Queue<u32>,
    dropped: AtomicU32,
    bell: Doorbell,
}

impl Subscriber {
    fn new(capacity: usize) -> Self {
        Subscriber {
            queue: Queue::new(capacity),
            dropped: AtomicU32::new(0),
            bell: Doorbell::default(),
        }
    }

    /// `SubscriberShared::offer` for DropOldest: evict under the queue's lock, then ring.
    fn offer(&self, v: u32) {
        match self.queue.offer(v, true) {
            Offered::Queued => self.bell.ring(),
            Offered::Evicted(_) => {
                self.dropped.fetch_add(1, SeqCst);
                self.bell.ring();
            }
            Offered::Closed(_) | Offered::Full(_) => {
                self.dropped.fetch_add(1, SeqCst);
            }
        }
    }

    /// `SubscriberShared::close_queue`: the queue, then the doorbell.
    fn close(&self) {
        self.queue.close();
        self.bell.close();
    }

    /// `RawSubscription::close` after the close: what is left is discarded and counted.
    fn discard_rest(&self) {
        while self.queue.discard().is_some() {
            self.dropped.fetch_add(1, SeqCst);
        }
    }

    /// A receive's poll (`RawSubscription::wait`).
    fn poll(&self) -> Option<Polled> {
        match self.queue.pop() {
            Popped::Item(v, _) => Some(Some(v)),
            Popped::Closed => Some(None),
            Popped::Empty => None,
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
/// as dropped exactly once, and the queue's counts agree.
#[test]
fn drop_oldest_eviction_racing_close() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new(1));
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
        assert!(sub.queue.is_closed(), "the queue reopened");
        assert_eq!(
            got.len() as u32 + sub.dropped.load(SeqCst),
            2,
            "got {got:?}"
        );
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        let (offered, taken) = sub.queue.counts();
        assert_eq!((offered, taken), (2, got.len() as u64));
    });
}

/// (d) Unsubscribe racing two publishers on a one-slot DropOldest queue (the issue 12 item 7
/// hang): the unsubscriber closes the queue and joins the delivery thread, which must end;
/// every message is received, evicted, refused or discarded, exactly once.
#[test]
fn unsubscribe_racing_two_evicting_publishers() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new(1));
        let publishers: Vec<_> = [1, 2]
            .into_iter()
            .map(|v| {
                let sub = Arc::clone(&sub);
                thread::spawn(move || sub.offer(v))
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
        sub.discard_rest();
        assert_eq!(
            got.len() as u32 + sub.dropped.load(SeqCst),
            2,
            "got {got:?}"
        );
    });
}

/// (e) Takes handed over to a shared total while the queue is retired (an unsubscribe while
/// a receiver drains): the total plus what the queue still holds back always equals the
/// takes, and after the retirement nothing is held back.
#[test]
fn retiring_a_queue_racing_a_receiver_counts_every_take_once() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new(4));
        sub.offer(1);
        sub.offer(2);
        let total = Arc::new(AtomicU64::new(0));
        let receiver = {
            let (sub, total) = (Arc::clone(&sub), Arc::clone(&total));
            thread::spawn(move || {
                let mut got = 0;
                while let Popped::Item(_, taken) = sub.queue.pop() {
                    total.fetch_add(taken.flush, SeqCst);
                    got += 1;
                }
                got
            })
        };
        total.fetch_add(sub.queue.retire(), SeqCst);
        let got = receiver.join().unwrap();
        assert_eq!(sub.queue.unflushed(), 0);
        assert_eq!(total.load(SeqCst), got);
        assert_eq!(sub.queue.counts().1, got);
    });
}
