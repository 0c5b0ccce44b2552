//! asyncio streams: the delivery thread copies payloads into a bounded Rust queue without ever
//! taking the GIL and wakes the event loop through a pipe (see `notify.rs`); the loop takes them
//! out with `take_many`. (Pull queues need no delivery thread: see `receiver.rs`. A stream does,
//! because the C ABI's pull receivers offer no descriptor an event loop could watch.)
//!
//! The queue holds at most `bound` messages (the subscription's capacity). When it is full:
//! - under DROP_OLDEST the oldest queued message is evicted and counted (`dropped`), so a slow
//!   consumer always reads the freshest messages;
//! - under BLOCK and FAIL the delivery thread waits for room, so the bus-side queue fills up
//!   behind it and the policy applies to publishers there (they wait, or get QueueFullError).
//!   Up to twice the capacity can thus be pending, half of it on each side.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mycelium_ffi::{mycelium_closure, mycelium_message, mycelium_runtime_t};
use parking_lot::{Condvar, Mutex};

use crate::notify::Notifier;

/// One queued message: its payload, and its topic when the stream keeps topics.
pub(crate) type Item = (Vec<u8>, Option<String>);

struct QueueState {
    items: VecDeque<Item>,
    /// Set by the Python side (close, runtime close): the producer stops waiting and drops.
    consumer_closed: bool,
    /// Set when the subscription ended and its closure was dropped: nothing more will arrive.
    producer_done: bool,
}

pub(crate) struct QueueShared {
    state: Mutex<QueueState>,
    writable: Condvar,
    bound: usize,
    drop_oldest: bool,
    dropped: AtomicU64,
    notifier: Notifier,
    /// `with_topic=True`: the handle (its address) to ask each message's topic with while it
    /// is handed over (a handle's header is never freed, so the address stays valid).
    topics_from: Option<usize>,
}

impl QueueShared {
    pub(crate) fn new(
        bound: usize,
        drop_oldest: bool,
        notifier: Notifier,
        topics_from: Option<*const mycelium_runtime_t>,
    ) -> Arc<QueueShared> {
        Arc::new(QueueShared {
            state: Mutex::new(QueueState {
                items: VecDeque::with_capacity(bound.min(1024)),
                consumer_closed: false,
                producer_done: false,
            }),
            writable: Condvar::new(),
            bound: bound.max(1),
            drop_oldest,
            dropped: AtomicU64::new(0),
            notifier,
            topics_from: topics_from.map(|rt| rt as usize),
        })
    }

    /// The C closure whose context owns one strong reference to `self`.
    pub(crate) fn closure(self: &Arc<Self>) -> mycelium_closure {
        mycelium_closure {
            context: Arc::into_raw(self.clone()) as *mut c_void,
            call: None,
            call_batch: Some(queue_call_batch),
            drop: Some(queue_drop),
        }
    }

    /// Gives back the reference a closure held when `mycelium_subscribe` failed (the library
    /// then never calls `drop`).
    ///
    /// # Safety
    /// `closure` must come from [`QueueShared::closure`] and must not have been passed to a
    /// successful `mycelium_subscribe`.
    pub(crate) unsafe fn reclaim(closure: &mycelium_closure) {
        // SAFETY: per the contract above the context is an unconsumed `Arc::into_raw`.
        drop(unsafe { Arc::from_raw(closure.context as *const QueueShared) });
    }

    fn push_batch(&self, messages: &[mycelium_message]) {
        let mut state = self.state.lock();
        for m in messages {
            if self.drop_oldest {
                while state.items.len() >= self.bound {
                    state.items.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            while state.items.len() >= self.bound && !state.consumer_closed {
                self.writable.wait(&mut state);
            }
            if state.consumer_closed {
                return;
            }
            let was_empty = state.items.is_empty();
            let topic = self.topics_from.and_then(|rt| {
                // An error (not expected) reads as no topic rather than losing the message.
                crate::receiver::topic_of(rt as *const mycelium_runtime_t, m)
                    .ok()
                    .flatten()
            });
            state.items.push_back((payload(m).to_vec(), topic));
            if was_empty {
                self.notifier.ping();
            }
        }
    }

    fn finish_producer(&self) {
        let mut state = self.state.lock();
        state.producer_done = true;
        self.notifier.ping();
        drop(state);
    }

    /// Stops the producer from waiting for room; later messages are discarded.
    pub(crate) fn close_consumer(&self) {
        let mut state = self.state.lock();
        state.consumer_closed = true;
        self.writable.notify_all();
        self.notifier.ping();
        drop(state);
    }

    /// Up to `max` queued messages without waiting.
    pub(crate) fn take_many(&self, max: usize) -> Vec<Item> {
        let mut state = self.state.lock();
        let n = max.min(state.items.len());
        let was_full = state.items.len() >= self.bound;
        let out: Vec<Item> = state.items.drain(..n).collect();
        if was_full && n > 0 {
            self.writable.notify_one();
        }
        out
    }

    /// Messages evicted under DROP_OLDEST because the consumer fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// True when nothing is queued and nothing more will arrive.
    pub(crate) fn is_finished(&self) -> bool {
        let state = self.state.lock();
        state.items.is_empty() && (state.producer_done || state.consumer_closed)
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

fn payload(m: &mycelium_message) -> &[u8] {
    if m.payload.is_null() || m.len == 0 {
        &[]
    } else {
        // SAFETY: the C ABI guarantees `payload` points to `len` bytes valid during the callback,
        // and this slice does not outlive it (it is copied in `push_batch`).
        unsafe { std::slice::from_raw_parts(m.payload, m.len) }
    }
}

unsafe extern "C" fn queue_call_batch(
    context: *mut c_void,
    messages: *const mycelium_message,
    count: usize,
) -> usize {
    // SAFETY: `context` is the `Arc::into_raw` of `QueueShared::closure`, alive until `drop`.
    let shared = unsafe { &*(context as *const QueueShared) };
    if messages.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: the C ABI passes `count` valid messages that live for the duration of this call.
    let batch = unsafe { std::slice::from_raw_parts(messages, count) };
    shared.push_batch(batch);
    0
}

unsafe extern "C" fn queue_drop(context: *mut c_void) {
    // SAFETY: called exactly once by the C ABI with the context from `QueueShared::closure`.
    let shared = unsafe { Arc::from_raw(context as *const QueueShared) };
    shared.finish_producer();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8]) -> mycelium_message {
        mycelium_message {
            type_id: 1,
            payload: bytes.as_ptr(),
            len: bytes.len(),
            queued_ns: 0,
        }
    }

    fn deliver(shared: &Arc<QueueShared>, payloads: &[&[u8]]) {
        let batch: Vec<mycelium_message> = payloads.iter().map(|p| message(p)).collect();
        let context = Arc::as_ptr(shared) as *mut c_void;
        // SAFETY: `context` points to a live QueueShared and the batch outlives the call.
        let failed = unsafe { queue_call_batch(context, batch.as_ptr(), batch.len()) };
        assert_eq!(failed, 0);
    }

    fn payloads(items: Vec<Item>) -> Vec<Vec<u8>> {
        items.into_iter().map(|(payload, _)| payload).collect()
    }

    fn queue(bound: usize, drop_oldest: bool) -> Arc<QueueShared> {
        QueueShared::new(bound, drop_oldest, Notifier::new().expect("a pipe"), None)
    }

    fn readable(shared: &QueueShared) -> bool {
        let mut pfd = libc::pollfd {
            fd: shared.notifier().read_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    /// Waits (on the pipe, as the event loop would) until a message is queued.
    fn take_one(shared: &QueueShared) -> Vec<u8> {
        loop {
            if let Some((m, _)) = shared.take_many(1).pop() {
                return m;
            }
            let mut pfd = libc::pollfd {
                fd: shared.notifier().read_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; -1 waits until the producer writes to the pipe.
            unsafe { libc::poll(&mut pfd, 1, -1) };
            shared.notifier().drain();
        }
    }

    #[test]
    fn messages_come_out_in_order_and_finish_after_the_producer_ends() {
        let shared = queue(8, false);
        let closure = shared.closure();
        deliver(&shared, &[b"a", b"", b"ccc"]);
        // SAFETY: the closure's context is an unconsumed Arc::into_raw, dropped exactly once here.
        unsafe { queue_drop(closure.context) };
        assert!(
            !shared.is_finished(),
            "queued messages are still readable after the end"
        );
        assert_eq!(
            payloads(shared.take_many(2)),
            vec![b"a".to_vec(), b"".to_vec()]
        );
        assert_eq!(payloads(shared.take_many(10)), vec![b"ccc".to_vec()]);
        assert!(shared.is_finished());
        assert!(shared.take_many(10).is_empty());
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts_evictions() {
        let shared = queue(2, true);
        deliver(&shared, &[b"1", b"2", b"3", b"4", b"5"]);
        assert_eq!(shared.dropped(), 3);
        assert_eq!(
            payloads(shared.take_many(10)),
            vec![b"4".to_vec(), b"5".to_vec()]
        );
    }

    #[test]
    fn a_full_queue_holds_the_producer_until_there_is_room_or_the_consumer_closes() {
        let shared = queue(1, false);
        let producer = {
            let shared = shared.clone();
            std::thread::spawn(move || deliver(&shared, &[b"1", b"2", b"3"]))
        };
        // The producer can only get the second message in once the first was taken.
        assert_eq!(take_one(&shared), b"1");
        assert_eq!(take_one(&shared), b"2");
        // Closing releases the producer, which drops what it still had.
        shared.close_consumer();
        producer
            .join()
            .expect("the producer returns once the consumer closed");
        assert!(shared.take_many(10).len() <= 1);
        assert!(shared.is_finished());
    }

    #[test]
    fn the_notifier_becomes_readable_when_the_queue_fills_and_quiet_after_draining() {
        let shared = queue(4, false);
        assert!(!readable(&shared));
        deliver(&shared, &[b"x"]);
        assert!(readable(&shared));
        shared.notifier().drain();
        assert!(!readable(&shared));
    }
}
