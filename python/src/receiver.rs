//! Pull queues on the C ABI's pull receivers (`mycelium_receiver_open`/`_recv`): the calling
//! Python thread waits on the bus-side queue itself, so no delivery thread sits between a
//! publisher and `recv` (one wake-up per message instead of two) and nothing is queued twice.
//!
//! Each C call hands over up to [`RECV_BATCH`] messages at once (one GIL release and one FFI
//! crossing for the lot). `visit` runs without the GIL, so it only copies the payloads into
//! Rust vectors; the ones not returned right away wait in a small buffer that later `recv`s
//! drain first, without releasing the GIL. While the consumer is behind (the last call found
//! a backlog), `recv` also tries the bus without waiting before it releases the GIL.
//!
//! Order: one thread at a time moves messages from the bus into the buffer (`receiving` lock),
//! and every receive looks at the buffer first, so several Python threads reading one queue
//! still take its messages in publish order.
//!
//! Closing: the C ABI's unsubscribe discards what is still queued on the bus, so `close` first
//! moves that into the buffer, which needs the `receiving` lock. When another thread holds it
//! (it may be blocked waiting for a message), `close` does not wait: with nothing queued it
//! unsubscribes (waking that thread), otherwise it leaves a flag and the holder finishes the
//! close when it lets go of the lock.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use mycelium_ffi::exports::{
    mycelium_receiver_recv, mycelium_subscription_stats_get, mycelium_unsubscribe,
};
use mycelium_ffi::{
    mycelium_message, mycelium_runtime_t, mycelium_status, mycelium_subscription_stats,
};
use parking_lot::{Mutex, MutexGuard};

use crate::failure::{check, CallResult};

/// Most messages taken from the bus per C call. Large enough to amortise the crossing when a
/// backlog builds up, small enough that a consumer never holds many messages the bus-side
/// capacity no longer accounts for.
pub(crate) const RECV_BATCH: usize = 64;

/// One message taken from the bus: its payload, and its topic when the receiver was opened
/// to keep topics (`None` otherwise, or when published without one).
pub(crate) struct Pulled {
    pub(crate) payload: Vec<u8>,
    pub(crate) topic: Option<String>,
}

/// What a receive got.
pub(crate) enum Received {
    Message(Pulled),
    /// Nothing arrived in time; more may come.
    Empty,
    /// Nothing is buffered and nothing more will come.
    Finished,
}

pub(crate) struct PullReceiver {
    id: u64,
    /// Taken from the bus but not yet returned; always older than anything still on the bus.
    buffered: Mutex<VecDeque<Pulled>>,
    /// Ask each message's topic of the library while it is handed over (`with_topic=True`).
    keep_topics: bool,
    /// Held while moving messages from the bus into `buffered` (see the module doc).
    receiving: Mutex<()>,
    /// Set by `close` (or the runtime's close): the subscription is to end once what is queued
    /// on the bus was moved into the buffer.
    closed: AtomicBool,
    /// The bus-side subscription ended: unsubscribed by us, or closed by the bus or the handle.
    bus_done: AtomicBool,
    /// Most messages moved into the buffer by `len` and `close` (the subscription's capacity).
    capacity: usize,
    /// The last receive from the bus found more than one message queued: the consumer is
    /// behind, so the next one is likely to find some too (see [`PullReceiver::is_behind`]).
    behind: AtomicBool,
    /// What the bus had dropped for this receiver when it was unsubscribed (its counters go
    /// with it), counting what was still queued then.
    dropped_at_end: AtomicU64,
}

/// Where `copy_payloads` puts what it copies, and the handle to ask topics with (when kept).
struct Copying<'a> {
    out: &'a mut Vec<Pulled>,
    topics_from: Option<*const mycelium_runtime_t>,
}

unsafe extern "C" fn copy_payloads(
    context: *mut c_void,
    messages: *const mycelium_message,
    count: usize,
) -> usize {
    if messages.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: `context` is the `&mut Copying` passed by `PullReceiver::receive_from_bus`,
    // borrowed for the duration of the C call that invokes us on the same thread.
    let copying = unsafe { &mut *context.cast::<Copying<'_>>() };
    // SAFETY: the C ABI passes `count` valid messages that live for the duration of this call.
    let batch = unsafe { std::slice::from_raw_parts(messages, count) };
    let topics_from = copying.topics_from;
    copying.out.extend(batch.iter().map(|m| Pulled {
        payload: payload(m).to_vec(),
        // An error (not expected: `m` is the library's own pointer, asked during the visit)
        // reads as no topic rather than losing the message.
        topic: topics_from.and_then(|rt| topic_of(rt, m).ok().flatten()),
    }));
    0
}

/// The topic of `m`, one of the messages being handed over on this thread now (a callback's
/// batch, a pull receiver's visit, a stream's delivery), copied out; `None` for a message
/// published without one. The one place the Python adapter asks `mycelium_message_topic`.
pub(crate) fn topic_of(
    rt: *const mycelium_runtime_t,
    m: &mycelium_message,
) -> CallResult<Option<String>> {
    let mut ptr: *const std::ffi::c_char = std::ptr::null();
    let mut len = 0usize;
    // SAFETY: `rt` is a handle's address (the library never frees a header), `m` a message the
    // library is handing this thread now, and both out pointers are writable locals.
    check(unsafe { mycelium_ffi::exports::mycelium_message_topic(rt, m, &mut ptr, &mut len) })?;
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: on success `ptr` points to `len` bytes of UTF-8 valid until the delivery returns;
    // copied here.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn payload(m: &mycelium_message) -> &[u8] {
    if m.payload.is_null() || m.len == 0 {
        &[]
    } else {
        // SAFETY: the C ABI guarantees `payload` points to `len` bytes valid during `visit`; the
        // slice is copied before `visit` returns.
        unsafe { std::slice::from_raw_parts(m.payload, m.len) }
    }
}

/// The C ABI's millisecond timeout for waiting until `until`: rounded up, so that a wait never
/// ends before its deadline and a sub-millisecond rest does not turn into a busy loop.
fn timeout_ms(until: Instant) -> u32 {
    let rest = until.saturating_duration_since(Instant::now());
    let ms = rest.as_micros().div_ceil(1000);
    // MYCELIUM_WAIT_FOREVER is u32::MAX; callers wait in slices far below it.
    ms.min(u128::from(u32::MAX - 1)) as u32
}

impl PullReceiver {
    pub(crate) fn new(id: u64, capacity: usize, keep_topics: bool) -> PullReceiver {
        PullReceiver {
            id,
            buffered: Mutex::new(VecDeque::with_capacity(RECV_BATCH)),
            keep_topics,
            receiving: Mutex::new(()),
            closed: AtomicBool::new(false),
            bus_done: AtomicBool::new(false),
            capacity: capacity.max(1),
            behind: AtomicBool::new(false),
            dropped_at_end: AtomicU64::new(0),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The oldest buffered message, if any; never blocks and needs no handle.
    pub(crate) fn pop_buffered(&self) -> Option<Pulled> {
        self.buffered.lock().pop_front()
    }

    pub(crate) fn buffered_len(&self) -> usize {
        self.buffered.lock().len()
    }

    /// True when nothing is buffered and the bus-side queue has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.buffered.lock().is_empty() && self.bus_done.load(Ordering::SeqCst)
    }

    /// True when messages are probably queued on the bus: the last receive found a backlog.
    /// Worth a receive that does not wait (and so may keep the GIL); when the consumer keeps
    /// up, such a receive would mostly come back empty and only add a crossing.
    pub(crate) fn is_behind(&self) -> bool {
        self.behind.load(Ordering::Relaxed)
    }

    /// True once the bus-side subscription has ended (no call needs the handle any more).
    pub(crate) fn is_bus_done(&self) -> bool {
        self.bus_done.load(Ordering::SeqCst)
    }

    /// Takes one message, waiting until `until` (`None`: do not wait at all, which is safe
    /// with the GIL held). Blocks when given a deadline: call without the GIL then.
    ///
    /// # Safety
    /// `rt` must be the live handle that opened this receiver, kept valid (not destroyed) for
    /// the duration of the call.
    pub(crate) unsafe fn receive(
        &self,
        rt: *const mycelium_runtime_t,
        until: Option<Instant>,
    ) -> CallResult<Received> {
        if let Some(m) = self.pop_buffered() {
            return Ok(Received::Message(m));
        }
        // Another thread is receiving: wait for it (it may be about to buffer older messages)
        // rather than receive past it.
        let locked = match until {
            Some(until) => self.receiving.try_lock_until(until),
            None => self.receiving.try_lock(),
        };
        let Some(receiving) = locked else {
            return Ok(Received::Empty);
        };
        // SAFETY: forwarded from this function's contract; the lock is held.
        let outcome = unsafe { self.receive_locked(rt, until) };
        // SAFETY: forwarded from this function's contract.
        unsafe { self.release(receiving, rt) };
        outcome
    }

    /// [`PullReceiver::receive`] with `receiving` held.
    unsafe fn receive_locked(
        &self,
        rt: *const mycelium_runtime_t,
        until: Option<Instant>,
    ) -> CallResult<Received> {
        if let Some(m) = self.pop_buffered() {
            return Ok(Received::Message(m));
        }
        if !self.closed.load(Ordering::SeqCst) && !self.bus_done.load(Ordering::SeqCst) {
            let mut got = Vec::new();
            // SAFETY: forwarded from this function's contract.
            let timeout = until.map_or(0, timeout_ms);
            match unsafe { self.receive_from_bus(rt, timeout, RECV_BATCH, &mut got) } {
                BusReceive::Got => {
                    self.behind.store(got.len() > 1, Ordering::Relaxed);
                    let mut rest = got.into_iter();
                    if let Some(first) = rest.next() {
                        self.buffered.lock().extend(rest);
                        return Ok(Received::Message(first));
                    }
                }
                BusReceive::TimedOut | BusReceive::Ended => {
                    self.behind.store(false, Ordering::Relaxed);
                }
                BusReceive::Failed(failure) => return Err(failure),
            }
        }
        if self.closed.load(Ordering::SeqCst) {
            // A close that found this thread receiving left the rest to it (see `close`).
            // SAFETY: forwarded from this function's contract; the lock is held.
            let _ = unsafe { self.finish_close(rt) };
        }
        Ok(match self.pop_buffered() {
            Some(m) => Received::Message(m),
            None if self.bus_done.load(Ordering::SeqCst) => Received::Finished,
            None => Received::Empty,
        })
    }

    /// Messages waiting: the buffer, after moving into it what the bus holds (up to the
    /// capacity), unless another thread is receiving right now. The C ABI has no per-receiver
    /// queue length, so this is how the bus-side ones are counted.
    ///
    /// # Safety
    /// As for [`PullReceiver::receive`].
    pub(crate) unsafe fn len(&self, rt: *const mycelium_runtime_t) -> usize {
        if let Some(receiving) = self.receiving.try_lock() {
            // SAFETY: forwarded from this function's contract; the lock is held.
            unsafe {
                self.fill_buffer(rt);
                self.release(receiving, rt);
            }
        }
        self.buffered_len()
    }

    /// Ends the subscription, keeping what is queued on the bus readable (up to the capacity).
    /// Never waits. When another thread is receiving at that moment: if nothing of this type
    /// is queued, the subscription ends at once (waking that thread); otherwise that thread
    /// finishes the job as soon as its current wait ends (at the latest after its 100 ms
    /// slice), and may still take messages published until then. Idempotent.
    ///
    /// # Safety
    /// `rt` must be the handle that opened this receiver, not destroyed before this returns.
    pub(crate) unsafe fn close(&self, rt: *const mycelium_runtime_t) -> CallResult {
        self.closed.store(true, Ordering::SeqCst);
        // Pairs with the fence in `release`: either we get the lock below, or its holder sees
        // `closed` after unlocking.
        fence(Ordering::SeqCst);
        if let Some(_receiving) = self.receiving.try_lock() {
            // SAFETY: forwarded from this function's contract; the lock is held.
            return unsafe { self.finish_close(rt) };
        }
        // The holder may be waiting for a message that never comes. With this queue empty,
        // unsubscribing discards nothing and wakes it.
        // SAFETY: forwarded from this function's contract.
        if unsafe { self.has_nothing_queued(rt) } {
            // SAFETY: forwarded from this function's contract.
            return unsafe { self.unsubscribe(rt) };
        }
        Ok(())
    }

    /// This receiver's own counters on the bus; `None` once it was unsubscribed.
    ///
    /// # Safety
    /// As for [`PullReceiver::close`].
    unsafe fn stats(&self, rt: *const mycelium_runtime_t) -> Option<mycelium_subscription_stats> {
        let mut stats = mycelium_subscription_stats {
            struct_size: std::mem::size_of::<mycelium_subscription_stats>() as u32,
            ..Default::default()
        };
        // SAFETY: `rt` is valid per the contract; `stats` is writable with its size set.
        let status = unsafe { mycelium_subscription_stats_get(rt, self.id, &mut stats) };
        (status == mycelium_status::MYCELIUM_OK).then_some(stats)
    }

    /// # Safety
    /// As for [`PullReceiver::close`].
    unsafe fn has_nothing_queued(&self, rt: *const mycelium_runtime_t) -> bool {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.stats(rt) }.is_some_and(|s| s.queued == 0)
    }

    /// Messages the bus did not deliver to this receiver: DROP_OLDEST evictions, FAIL
    /// refusals, and what was still queued on the bus when it ended.
    ///
    /// # Safety
    /// `rt` is NULL (the runtime is closed) or as for [`PullReceiver::close`].
    pub(crate) unsafe fn dropped(&self, rt: *const mycelium_runtime_t) -> u64 {
        if !rt.is_null() && !self.bus_done.load(Ordering::SeqCst) {
            // SAFETY: forwarded from this function's contract.
            if let Some(stats) = unsafe { self.stats(rt) } {
                return stats.dropped;
            }
        }
        self.dropped_at_end.load(Ordering::SeqCst)
    }

    /// Ends the subscription now, for a runtime that is closing: a thread waiting in the
    /// receiver is woken at once, and what is still queued on the bus then is counted as
    /// dropped. Without a concurrent receive it keeps the queued messages, like `close`.
    ///
    /// # Safety
    /// As for [`PullReceiver::close`].
    pub(crate) unsafe fn close_now(&self, rt: *const mycelium_runtime_t) -> CallResult {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(_receiving) = self.receiving.try_lock() {
            // SAFETY: forwarded from this function's contract; the lock is held.
            return unsafe { self.finish_close(rt) };
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { self.unsubscribe(rt) }
    }

    /// Marks the receiver ended without touching a handle (the handle is gone: forked child).
    pub(crate) fn abandon(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.bus_done.store(true, Ordering::SeqCst);
    }

    /// Unlocks `receiving`, then finishes a close that was requested while it was held.
    ///
    /// # Safety
    /// As for [`PullReceiver::receive`].
    unsafe fn release(&self, receiving: MutexGuard<'_, ()>, rt: *const mycelium_runtime_t) {
        drop(receiving);
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) && !self.bus_done.load(Ordering::SeqCst) {
            // Whoever holds the lock now runs this same check after unlocking.
            if let Some(_receiving) = self.receiving.try_lock() {
                // SAFETY: forwarded from this function's contract; the lock is held.
                let _ = unsafe { self.finish_close(rt) };
            }
        }
    }

    /// Moves what is queued on the bus into the buffer, then unsubscribes. Call with
    /// `receiving` held.
    ///
    /// # Safety
    /// As for [`PullReceiver::receive`].
    unsafe fn finish_close(&self, rt: *const mycelium_runtime_t) -> CallResult {
        // SAFETY: forwarded from this function's contract; the caller holds the lock.
        unsafe {
            self.fill_buffer(rt);
            self.unsubscribe(rt)
        }
    }

    /// # Safety
    /// As for [`PullReceiver::close`].
    unsafe fn unsubscribe(&self, rt: *const mycelium_runtime_t) -> CallResult {
        if self.bus_done.swap(true, Ordering::SeqCst) {
            // Ended already: unsubscribed before, or the bus reported it closed.
            return Ok(());
        }
        // The counters end with the subscription: keep the drop count, counting what is still
        // queued (unsubscribing discards it). A publish racing with this may add one more.
        // SAFETY: forwarded from this function's contract.
        if let Some(stats) = unsafe { self.stats(rt) } {
            self.dropped_at_end
                .store(stats.dropped + stats.queued, Ordering::SeqCst);
        }
        // SAFETY: forwarded from this function's contract.
        match unsafe { mycelium_unsubscribe(rt, self.id) } {
            // Ended already: the handle was destroyed, or the bus closed it.
            mycelium_status::MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION
            | mycelium_status::MYCELIUM_ERR_CLOSED => Ok(()),
            other => check(other),
        }
    }

    /// Moves queued bus-side messages into the buffer without waiting, up to the capacity.
    /// Call with `receiving` held.
    ///
    /// # Safety
    /// As for [`PullReceiver::receive`].
    unsafe fn fill_buffer(&self, rt: *const mycelium_runtime_t) {
        if self.bus_done.load(Ordering::SeqCst) {
            return;
        }
        loop {
            let room = self.capacity.saturating_sub(self.buffered_len());
            if room == 0 {
                return;
            }
            let mut got = Vec::new();
            // SAFETY: forwarded from this function's contract.
            match unsafe { self.receive_from_bus(rt, 0, room.min(RECV_BATCH), &mut got) } {
                BusReceive::Got => self.buffered.lock().extend(got),
                BusReceive::TimedOut | BusReceive::Ended | BusReceive::Failed(_) => return,
            }
        }
    }

    /// One `mycelium_receiver_recv` call copying up to `max` payloads into `out`. Call with
    /// `receiving` held.
    ///
    /// # Safety
    /// As for [`PullReceiver::receive`].
    unsafe fn receive_from_bus(
        &self,
        rt: *const mycelium_runtime_t,
        timeout_ms: u32,
        max: usize,
        out: &mut Vec<Pulled>,
    ) -> BusReceive {
        let mut count = 0usize;
        let mut copying = Copying {
            out,
            topics_from: self.keep_topics.then_some(rt),
        };
        // SAFETY: `rt` is valid per the contract; `out` outlives the call and `copy_payloads`
        // only uses it during the call, on this thread; `count` is writable.
        let status = unsafe {
            mycelium_receiver_recv(
                rt,
                self.id,
                timeout_ms,
                max,
                Some(copy_payloads),
                (&mut copying as *mut Copying<'_>).cast(),
                &mut count,
            )
        };
        match status {
            mycelium_status::MYCELIUM_OK => BusReceive::Got,
            mycelium_status::MYCELIUM_ERR_TIMEOUT => BusReceive::TimedOut,
            // Closed and drained, or already unsubscribed by a concurrent close.
            mycelium_status::MYCELIUM_ERR_CLOSED
            | mycelium_status::MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION => {
                self.bus_done.store(true, Ordering::SeqCst);
                BusReceive::Ended
            }
            other => match check(other) {
                Err(failure) => BusReceive::Failed(failure),
                Ok(()) => BusReceive::Got,
            },
        }
    }
}

enum BusReceive {
    Got,
    TimedOut,
    Ended,
    Failed(crate::failure::Failure),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mycelium_ffi::exports::{
        mycelium_publish, mycelium_receiver_open, mycelium_runtime_create, mycelium_runtime_destroy,
    };
    use mycelium_ffi::{mycelium_overflow_policy, mycelium_subscribe_options};

    use super::*;

    /// `TradeTick` in the repository's contracts.yaml.
    const TRADE_TICK: u16 = 1;

    /// A `TradeTick` payload whose `size` field is `size` (symbol "", every other field 0):
    /// u32 symbol length, f64 price, u32 size, u64 ts_ns, u8 side, little-endian.
    fn tick(size: u32) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&size.to_le_bytes());
        p.extend_from_slice(&[0u8; 9]);
        p
    }

    fn size_of(payload: &[u8]) -> u32 {
        u32::from_le_bytes(payload[12..16].try_into().expect("a TradeTick payload"))
    }

    /// A runtime with one pull receiver for `TradeTick`, destroyed on drop.
    struct Fixture {
        rt: *mut mycelium_runtime_t,
        receiver: PullReceiver,
    }

    // SAFETY: the C ABI allows using a handle from any thread; the tests destroy it only after
    // every thread using it was joined.
    unsafe impl Sync for Fixture {}

    impl Fixture {
        fn new(capacity: u32, policy: mycelium_overflow_policy) -> Fixture {
            let yaml =
                std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts.yaml"))
                    .expect("the repository's contracts.yaml");
            let mut rt = std::ptr::null_mut();
            let mut opts = mycelium_subscribe_options::default();
            let mut id = 0;
            // SAFETY: valid pointers for each call; the handle is destroyed in Drop.
            unsafe {
                check(mycelium_runtime_create(
                    yaml.as_ptr().cast(),
                    yaml.len(),
                    &mut rt,
                ))
                .expect("runtime");
                opts.capacity = capacity;
                opts.policy = policy as u32;
                check(mycelium_receiver_open(rt, TRADE_TICK, &opts, &mut id)).expect("receiver");
            }
            Fixture {
                rt,
                receiver: PullReceiver::new(id, capacity as usize, false),
            }
        }

        fn publish(&self, size: u32) {
            let payload = tick(size);
            // SAFETY: the handle is live; the payload outlives the call.
            check(unsafe {
                mycelium_publish(self.rt, TRADE_TICK, payload.as_ptr(), payload.len())
            })
            .expect("publish");
        }

        fn receive(&self, until: Option<Instant>) -> Received {
            // SAFETY: the handle is live until the fixture is dropped.
            unsafe { self.receiver.receive(self.rt, until) }.expect("receive")
        }

        /// Receives until finished, waiting in short slices as the Python adapter does.
        fn drain_until_finished(&self) -> Vec<u32> {
            let mut got = Vec::new();
            loop {
                match self.receive(Some(Instant::now() + Duration::from_millis(20))) {
                    Received::Message(m) => got.push(size_of(&m.payload)),
                    Received::Empty => {}
                    Received::Finished => return got,
                }
            }
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            // SAFETY: no other thread uses the handle any more.
            unsafe { mycelium_runtime_destroy(self.rt) };
        }
    }

    const BLOCK: mycelium_overflow_policy = mycelium_overflow_policy::MYCELIUM_OVERFLOW_BLOCK;

    #[test]
    fn messages_come_out_in_publish_order_across_batches() {
        let f = Fixture::new(1024, BLOCK);
        let total = (RECV_BATCH * 3 + 7) as u32;
        (0..total).for_each(|i| f.publish(i));
        let got: Vec<u32> = (0..total)
            .map(|_| match f.receive(None) {
                Received::Message(m) => size_of(&m.payload),
                Received::Empty | Received::Finished => u32::MAX,
            })
            .collect();
        assert_eq!(got, (0..total).collect::<Vec<_>>());
        assert!(matches!(f.receive(None), Received::Empty));
    }

    #[test]
    fn close_keeps_what_was_queued_and_ends_the_subscription() {
        let f = Fixture::new(1024, BLOCK);
        (0..5).for_each(|i| f.publish(i));
        // SAFETY: the handle is live.
        unsafe { f.receiver.close(f.rt) }.expect("close");
        f.publish(99); // no longer routed to the receiver
        assert_eq!(f.drain_until_finished(), vec![0, 1, 2, 3, 4]);
        assert!(f.receiver.is_finished());
    }

    #[test]
    fn a_close_during_another_threads_receive_loses_nothing_queued_before_it() {
        let f = Fixture::new(1024, BLOCK);
        let got = std::thread::scope(|s| {
            let consumer = s.spawn(|| f.drain_until_finished());
            (0..200).for_each(|i| f.publish(i));
            // SAFETY: the handle is live.
            unsafe { f.receiver.close(f.rt) }.expect("close");
            consumer
                .join()
                .expect("the consumer returns once the close finished")
        });
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn close_wakes_a_thread_waiting_on_an_empty_queue() {
        let f = Fixture::new(1024, BLOCK);
        let outcome = std::thread::scope(|s| {
            let waiter = s.spawn(|| loop {
                // Far longer than the test may take: only the close can end this wait.
                match f.receive(Some(Instant::now() + Duration::from_secs(3600))) {
                    Received::Empty => {}
                    other => return other,
                }
            });
            // SAFETY: the handle is live.
            unsafe { f.receiver.close(f.rt) }.expect("close");
            waiter.join().expect("the waiter returns")
        });
        assert!(matches!(outcome, Received::Finished));
    }

    #[test]
    fn close_now_wakes_a_thread_waiting_for_a_message() {
        let f = Fixture::new(1024, BLOCK);
        let outcome = std::thread::scope(|s| {
            let waiter = s.spawn(|| loop {
                // Far longer than the test may take: only the close can end this wait.
                match f.receive(Some(Instant::now() + Duration::from_secs(3600))) {
                    Received::Empty => {}
                    other => return other,
                }
            });
            // SAFETY: the handle is live.
            unsafe { f.receiver.close_now(f.rt) }.expect("close");
            waiter.join().expect("the waiter returns")
        });
        assert!(matches!(outcome, Received::Finished));
    }

    #[test]
    fn len_moves_bus_side_messages_into_the_buffer_up_to_the_capacity() {
        let f = Fixture::new(4, mycelium_overflow_policy::MYCELIUM_OVERFLOW_DROP_OLDEST);
        (0..10).for_each(|i| f.publish(i));
        // SAFETY: the handle is live.
        assert_eq!(unsafe { f.receiver.len(f.rt) }, 4);
        assert_eq!(f.receiver.buffered_len(), 4);
        // SAFETY: the handle is live.
        unsafe { f.receiver.close(f.rt) }.expect("close");
        assert_eq!(f.drain_until_finished(), vec![6, 7, 8, 9]);
    }
}
