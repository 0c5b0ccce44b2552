//! How a thread blocked on an empty subscription queue is woken.
//!
//! async-channel woke a blocked receiver through `event-listener`, which unparks the waiter
//! while it still holds its own list mutex. On two cores the woken thread lands on the waker's
//! CPU, preempts it, and blocks on that mutex: two extra context switches per message, which
//! set the floor of every round trip through the bus. Threads that block (`recv_blocking`,
//! `recv_timeout`, and so every C ABI delivery thread and pull receiver) wait on a
//! [`Doorbell`] instead.
//!
//! The protocol is the classic "announce, re-check, sleep" against "push, check, wake":
//! - a sleeper counts itself in `sleepers`, then (after a SeqCst fence) polls the queue once
//!   more, and only then waits on the condition variable, all under `lock`;
//! - a publisher pushes, fences, and reads `sleepers`. Only when someone sleeps does it take
//!   `lock` (which orders it after the sleeper's re-check) and, **after releasing it**,
//!   notifies. The woken thread therefore never finds the mutex held.
//!
//! The fences pair up: either the publisher's read sees the sleeper's count, or the sleeper's
//! re-check sees the pushed message. A publish with nobody asleep costs a fence and a load.
//!
//! A publisher that notifies also counts the wake-up in `woken`, and later publishers skip the
//! lock and the notify while every sleeper already has one coming (`woken >= sleepers`). A
//! woken thread on a VM takes tens of microseconds to run again; before this count, every
//! publish in that window took the doorbell's lock (fighting the waking thread for it) and
//! notified again: the C ABI benchmark's "slow mode", 3× slower in one run in four (issue 16).
//! Every thread that returns from a wait takes one off `woken` (whether a notify, a timeout or
//! a spurious wake-up ended it), so `woken` never exceeds the notifies actually pending and a
//! skipped ring never leaves a sleeper without one; at worst a sleeper is notified twice.
//!
//! The doorbell also keeps its own `closed` flag, set by [`Doorbell::close`] with the same
//! "store, fence, read `sleepers`" order as a push, and read by every poll of a sleeper after
//! its fence. A sleeper therefore learns of a close from the doorbell itself, whatever the
//! queue says: concurrent-queue 2.5's `force_push` could reopen a closed queue (issue 12
//! item 7), and a sleeper that trusted the queue alone slept forever.
//!
//! `tests/loom.rs` model-checks this protocol (`scripts/test-loom.sh`); `crate::sync` swaps in
//! loom's types under `--cfg mycelium_loom`.

use std::time::{Duration, Instant};

use crate::sync::{fence, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};

#[derive(Default)]
pub struct Doorbell {
    /// Threads between their count-and-fence and their return from the wait; written under
    /// `lock` only.
    sleepers: AtomicUsize,
    /// Notifies sent that no waiting thread has accounted for yet (see the module comment);
    /// at most `sleepers`; written under `lock` only.
    woken: AtomicUsize,
    closed: AtomicBool,
    lock: Mutex<()>,
    bell: Condvar,
}

impl Doorbell {
    /// Wakes one sleeper, if any. Call after each message pushed onto the queue.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        // Acquire, paired with the Release of every write of `sleepers`: whoever wrote the
        // count read here had updated `woken` first, so the pair is never a new count with a
        // stale (too high) `woken`, which could skip a sleeper that needs this ring.
        let sleepers = self.sleepers.load(Ordering::Acquire);
        if sleepers == 0 || self.woken.load(Ordering::Relaxed) >= sleepers {
            return;
        }
        // Taking the lock waits until the sleeper has re-checked the queue and gone to sleep
        // (which releases the lock), so the notify below cannot be lost.
        let guard = self.lock.lock();
        let woken = self.woken.load(Ordering::Relaxed);
        if woken >= self.sleepers.load(Ordering::Relaxed) {
            return;
        }
        self.woken.store(woken + 1, Ordering::Relaxed);
        drop(guard);
        self.bell.notify_one();
    }

    /// Marks the doorbell closed and wakes every sleeper. Call after the queue was closed:
    /// from now on [`wait`](Self::wait) returns [`Woken::Closed`] as soon as its poll finds
    /// nothing, even if the queue itself failed to record the close.
    pub fn close(&self) {
        // SeqCst store, then `ring_all`'s SeqCst fence before it reads `sleepers`: pairs with
        // the sleeper's "count, fence, poll" exactly as a push does.
        self.closed.store(true, Ordering::SeqCst);
        self.ring_all();
    }

    /// Whether [`close`](Self::close) was called. Read it **before** polling the queue and
    /// report "closed" only if the poll then found nothing: everything pushed before the
    /// close is taken first.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Wakes every sleeper.
    fn ring_all(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Acquire) == 0 {
            return;
        }
        let guard = self.lock.lock();
        self.woken
            .store(self.sleepers.load(Ordering::Relaxed), Ordering::Relaxed);
        drop(guard);
        self.bell.notify_all();
    }

    /// Polls with the closed flag read first (see [`is_closed`](Self::is_closed)).
    fn poll_or_closed<T>(&self, poll: &mut impl FnMut() -> Option<T>) -> Option<Woken<T>> {
        let closed = self.is_closed();
        match poll() {
            Some(value) => Some(Woken::Ready(value)),
            None if closed => Some(Woken::Closed),
            None => None,
        }
    }

    /// Blocks this thread until `poll` yields a value, the doorbell is closed with nothing
    /// left to poll, or `deadline` passes (`None`: never).
    ///
    /// `poll` must not block; it is called without the lock first and, before each sleep,
    /// with it. A ring meant for this thread may wake another sleeper of the same queue
    /// instead; every woken thread polls again, so a message is never left behind while
    /// someone sleeps.
    pub fn wait<T>(
        &self,
        mut poll: impl FnMut() -> Option<T>,
        deadline: Option<Instant>,
    ) -> Woken<T> {
        if let Some(value) = back_off(&mut poll) {
            return Woken::Ready(value);
        }
        loop {
            if let Some(woken) = self.poll_or_closed(&mut poll) {
                return woken;
            }
            let mut guard = self.lock.lock();
            self.sleepers.fetch_add(1, Ordering::Release);
            // Pairs with the fence in `ring`/`ring_all`: either they see this sleeper, or the
            // poll below sees their message or close.
            fence(Ordering::SeqCst);
            let polled = self.poll_or_closed(&mut poll);
            let timed_out = match (&polled, deadline) {
                (Some(_), _) => false,
                (None, None) => {
                    self.bell.wait(&mut guard);
                    false
                }
                (None, Some(deadline)) => self.bell.wait_until(&mut guard, deadline).timed_out(),
            };
            // `woken` before `sleepers` (Release): see `ring`.
            let sleepers = self.sleepers.load(Ordering::Relaxed) - 1;
            let mut woken = self.woken.load(Ordering::Relaxed);
            if polled.is_none() {
                // Back from a wait: one notify fewer pending, whatever ended it.
                woken = woken.saturating_sub(1);
            }
            self.woken.store(woken.min(sleepers), Ordering::Relaxed);
            self.sleepers.store(sleepers, Ordering::Release);
            drop(guard);
            if let Some(woken) = polled {
                return woken;
            }
            if timed_out {
                // A message (or the close) may have arrived together with the deadline.
                return self.poll_or_closed(&mut poll).unwrap_or(Woken::TimedOut);
            }
        }
    }
}

/// How [`Doorbell::wait`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken<T> {
    /// The poll yielded this.
    Ready(T),
    /// The doorbell was closed and the poll found nothing.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// Before any sleep, a brief back-off: poll after 1, 2, 4 .. 256 spin-loop hints (511 in all,
/// ~14 µs on the 2-vCPU VM). A reply already on its way (a round trip's second half, the next
/// message of a burst) is caught without the two context switches of a sleep and a wake-up,
/// which on an idle VM cost tens of microseconds. Two Rust threads on the C ABI's pull
/// receivers, round trip p50 / p99: 64-77 / 95-137 µs with no back-off, 2.4 / 83-106 µs with
/// 127 hints, 2.3 / 2.6-7.1 µs with 511 (`python/bench/bench.py`'s floor row, A/B runs).
///
/// Unlike crossbeam-channel's back-off this one never calls `yield_now`: with other work
/// runnable on the core, CFS may run that work for a whole slice before the yielder gets the
/// CPU back; A/B runs with two niced CPU hogs gave 3 ms p99 round trips with the yields and
/// under 120 µs without.
fn back_off<T>(poll: &mut impl FnMut() -> Option<T>) -> Option<T> {
    // Under loom every poll multiplies the interleavings to explore; one stands for them all.
    const STEPS: u32 = if cfg!(mycelium_loom) { 1 } else { 9 };
    for step in 0..STEPS {
        if let Some(value) = poll() {
            return Some(value);
        }
        for _ in 0..(1u32 << step) {
            std::hint::spin_loop();
        }
    }
    None
}

/// Polls in a tight loop for up to `spin` (or until `deadline`), reading the clock only every
/// few dozen polls: a poll of an empty queue costs a few nanoseconds, a clock read ~20.
pub(crate) fn spin_poll<T>(
    poll: &mut impl FnMut() -> Option<T>,
    spin: Duration,
    deadline: Option<Instant>,
) -> Option<T> {
    let start = Instant::now();
    let until = start.checked_add(spin).unwrap_or(start);
    let until = deadline.map_or(until, |d| d.min(until));
    loop {
        for _ in 0..32 {
            if let Some(value) = poll() {
                return Some(value);
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= until {
            return None;
        }
    }
}

#[cfg(all(test, not(mycelium_loom)))]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::thread;

    /// A queue built from a mutex and a doorbell, just enough to exercise the protocol.
    #[derive(Default)]
    struct Queue {
        items: Mutex<VecDeque<u64>>,
        closed: std::sync::atomic::AtomicBool,
        bell: Doorbell,
        spin: Duration,
    }

    impl Queue {
        fn spinning(spin: Duration) -> Self {
            Queue {
                spin,
                ..Queue::default()
            }
        }
        fn push(&self, v: u64) {
            self.items.lock().push_back(v);
            self.bell.ring();
        }
        fn close(&self) {
            self.closed.store(true, Ordering::SeqCst);
            self.bell.close();
        }
        fn poll(&self) -> Option<Option<u64>> {
            if let Some(v) = self.items.lock().pop_front() {
                return Some(Some(v));
            }
            self.closed.load(Ordering::SeqCst).then_some(None)
        }
        fn recv(&self, deadline: Option<Instant>) -> Option<Option<u64>> {
            if let Some(v) = spin_poll(&mut || self.poll(), self.spin, deadline) {
                return Some(v);
            }
            match self.bell.wait(|| self.poll(), deadline) {
                Woken::Ready(v) => Some(v),
                Woken::Closed => Some(None),
                Woken::TimedOut => None,
            }
        }
    }

    /// Issue 12 item 7: concurrent-queue's `force_push` could reopen a closed queue, whose
    /// polls then said "empty, open" for ever; the sleeper woken by the close went back to
    /// sleep and was never woken again. A queue that never reports its close stands for it
    /// here: the doorbell's own flag must end the wait. (Before the flag existed this wait
    /// ran into its deadline and returned `TimedOut`.)
    #[test]
    fn close_ends_the_wait_even_if_the_queue_never_reports_it() {
        let q = Arc::new(Queue::default());
        let sleeper = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                q.bell.wait(|| q.items.lock().pop_front(), Some(deadline))
            })
        };
        while q.bell.sleepers.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        q.bell.close();
        assert_eq!(sleeper.join().ok(), Some(Woken::Closed));
    }

    #[test]
    fn what_was_queued_before_the_close_is_taken_first() {
        let q = Queue::default();
        q.items.lock().push_back(1);
        q.bell.close();
        let poll = || q.items.lock().pop_front();
        assert_eq!(q.bell.wait(poll, None), Woken::Ready(1));
        assert_eq!(q.bell.wait(poll, None), Woken::Closed);
    }

    #[test]
    fn ready_value_is_returned_even_with_a_past_deadline() {
        let q = Queue::default();
        q.push(7);
        assert_eq!(q.recv(Some(Instant::now())), Some(Some(7)));
    }

    #[test]
    fn gives_up_at_the_deadline() {
        let q = Queue::default();
        let start = Instant::now();
        assert_eq!(q.recv(Some(start + Duration::from_millis(20))), None);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(q.bell.sleepers.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn close_wakes_every_sleeper() {
        let q = Arc::new(Queue::default());
        let sleepers: Vec<_> = (0..4)
            .map(|_| {
                let q = Arc::clone(&q);
                thread::spawn(move || q.recv(None))
            })
            .collect();
        while q.bell.sleepers.load(Ordering::SeqCst) < 4 {
            thread::yield_now();
        }
        q.close();
        for s in sleepers {
            assert_eq!(s.join().ok(), Some(Some(None)));
        }
    }

    /// Ping-pong without timeouts: a lost wake-up hangs the test (and the harness's timeout
    /// reports it); 20 000 hand-offs give a race many chances to show. With a spin, most
    /// hand-offs are caught while spinning and the rest go through the sleep path.
    fn ping_pong(spin: Duration) {
        let ping = Arc::new(Queue::spinning(spin));
        let pong = Arc::new(Queue::spinning(spin));
        let (p, q) = (Arc::clone(&ping), Arc::clone(&pong));
        let echo = thread::spawn(move || {
            while let Some(Some(v)) = p.recv(None) {
                q.push(v + 1);
            }
        });
        for i in 0..20_000 {
            ping.push(i);
            assert_eq!(pong.recv(None), Some(Some(i + 1)));
        }
        ping.close();
        assert!(echo.join().is_ok());
    }

    #[test]
    fn no_wake_up_is_lost_in_a_ping_pong() {
        ping_pong(Duration::ZERO);
    }

    #[test]
    fn no_wake_up_is_lost_in_a_ping_pong_with_spinning_receivers() {
        ping_pong(Duration::from_micros(5));
    }

    #[test]
    fn a_spinning_receiver_still_sleeps_and_is_woken() {
        let q = Arc::new(Queue::spinning(Duration::from_millis(1)));
        let waiter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.recv(None))
        };
        // The waiter spins for 1 ms, then sleeps; only the ring can wake it.
        while q.bell.sleepers.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        q.push(5);
        assert_eq!(waiter.join().ok(), Some(Some(Some(5))));
    }

    #[test]
    fn the_deadline_bounds_the_spin() {
        let q = Queue::spinning(Duration::from_secs(3600));
        assert_eq!(
            q.recv(Some(Instant::now() + Duration::from_millis(5))),
            None
        );
    }

    /// Several sleepers on one queue with short deadlines racing the pushes: every message is
    /// taken exactly once.
    #[test]
    fn many_sleepers_take_every_message_once() {
        let q = Arc::new(Queue::default());
        let takers: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match q.recv(Some(Instant::now() + Duration::from_micros(50))) {
                            Some(Some(v)) => got.push(v),
                            Some(None) => return got,
                            None => {}
                        }
                    }
                })
            })
            .collect();
        for i in 0..30_000 {
            q.push(i);
        }
        q.close();
        let mut all: Vec<u64> = takers
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..30_000).collect::<Vec<_>>());
    }
}
