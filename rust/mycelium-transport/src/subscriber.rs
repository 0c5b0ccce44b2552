//! The publisher-facing half of a subscription: its queue's sending end, its policy and its
//! counters. Topics hold these; a [`RawSubscription`](crate::RawSubscription) holds the other
//! half (the queue's receiving end).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Receiver, Sender};
use event_listener::{Event, Listener};

use crate::config::OverflowPolicy;
use crate::doorbell::Doorbell;
use crate::envelope::Envelope;
use crate::metrics::{SubscriberMetrics, SubscriberStats, TypeStats};

/// Result of offering one envelope to one subscriber without waiting.
pub(crate) enum Offer {
    /// Queued (possibly after evicting the oldest message, which was counted as dropped).
    Queued,
    /// Not queued because the subscriber is closing; counted as dropped.
    Dropped,
    /// Block policy and the queue is full: the caller must wait and send it.
    MustWait(Envelope),
    /// FailPublish policy and the queue is full; counted as dropped.
    Rejected,
}

/// How long a blocking send waits for room before it asks its caller whether to go on.
pub(crate) const WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// How [`SubscriberShared::send_blocking`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Queued,
    /// The queue closed while waiting; counted as dropped.
    Closed,
    /// The caller stopped the wait; counted as dropped.
    GaveUp,
}

/// Why [`SubscriberShared::push`] did not queue an envelope.
enum Refused {
    Full(Envelope),
    Closed,
}

/// The queue is an *unbounded* async-channel plus our own count of slots in use, for two
/// reasons (issue 12 items 7 and 8):
/// - a bounded channel allocates every slot up front (~72 bytes each: 72 MB for the largest
///   capacity), while an unbounded one allocates blocks of 31 slots as messages arrive and
///   frees them as they leave;
/// - DropOldest then evicts with an ordinary receive instead of async-channel's `force_send`,
///   whose concurrent-queue 2.5 implementation can reopen a queue closed concurrently.
///
/// Every envelope in the channel holds one unit of `used`; a publisher takes the unit before
/// pushing (so `used` never exceeds `capacity`), and whoever takes the envelope out releases
/// it, except a DropOldest publisher, which evicts one and reuses its unit.
pub(crate) struct SubscriberShared {
    pub(crate) id: u64,
    pub(crate) type_id: u16,
    pub(crate) label: Option<String>,
    pub(crate) policy: OverflowPolicy,
    pub(crate) capacity: usize,
    /// Its topic filter (`None`: every message of its type).
    pub(crate) pattern: Option<crate::TopicPattern>,
    sender: Sender<Envelope>,
    /// A receiving end of the same channel, for DropOldest evictions.
    evictor: Receiver<Envelope>,
    /// Slots in use: envelopes queued plus those about to be pushed.
    used: AtomicUsize,
    /// Notified when a slot of a Block queue frees up, and on close: Block publishers (both
    /// blocking and async) wait on it for room.
    room: Event,
    pub(crate) stats: SubscriberStats,
    pub(crate) type_stats: Arc<TypeStats>,
    /// Wakes threads blocked in `RawSubscription::recv_blocking` / `recv_timeout`, and holds
    /// the subscription's own closed flag.
    pub(crate) doorbell: Doorbell,
}

impl SubscriberShared {
    /// A subscriber with an empty queue; the receiving end goes to the `RawSubscription`.
    pub(crate) fn new(
        id: u64,
        type_id: u16,
        label: Option<String>,
        policy: OverflowPolicy,
        capacity: usize,
        pattern: Option<crate::TopicPattern>,
        type_stats: Arc<TypeStats>,
    ) -> (Self, Receiver<Envelope>) {
        let (sender, receiver) = async_channel::unbounded();
        let shared = SubscriberShared {
            id,
            type_id,
            label,
            policy,
            capacity,
            pattern,
            sender,
            evictor: receiver.clone(),
            used: AtomicUsize::new(0),
            room: Event::new(),
            stats: SubscriberStats::default(),
            type_stats,
            doorbell: Doorbell::default(),
        };
        (shared, receiver)
    }

    pub(crate) fn count_drop(&self) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        self.type_stats.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Called by the receiving side for every envelope it takes off the queue at `now`.
    pub(crate) fn count_delivery(&self, envelope: &Envelope, now: Instant) {
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        let nanos = now
            .saturating_duration_since(envelope.published_at)
            .as_nanos();
        self.type_stats
            .latency
            .record(u64::try_from(nanos).unwrap_or(u64::MAX));
    }

    pub(crate) fn offer(&self, envelope: Envelope) -> Offer {
        let offer = self.try_queue(envelope);
        if let Offer::Queued = offer {
            self.doorbell.ring();
        }
        offer
    }

    /// Takes a slot if one is free.
    fn reserve(&self) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used >= self.capacity {
                return false;
            }
            // SeqCst: a Block publisher's re-check after it starts listening for room must
            // see a release that happened before the receiver's notify (event-listener's
            // full fences pair with these).
            match self.used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Gives back `n` slots whose envelopes were taken off the queue. Every receive calls it
    /// right after taking.
    pub(crate) fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::SeqCst);
        // Only Block publishers ever wait for room; the others skip the notify's fence.
        if self.policy == OverflowPolicy::Block {
            self.room.notify_additional(n);
        }
    }

    /// Queues `envelope` if a slot is free. The doorbell's flag is checked too, so a
    /// publisher woken by `close_queue` stops even if the channel missed the close.
    fn push(&self, envelope: Envelope) -> Result<(), Refused> {
        if self.doorbell.is_closed() {
            return Err(Refused::Closed);
        }
        if !self.reserve() {
            return Err(Refused::Full(envelope));
        }
        self.push_reserved(envelope)
    }

    /// Queues `envelope` into a slot already taken.
    fn push_reserved(&self, envelope: Envelope) -> Result<(), Refused> {
        // An unbounded channel only refuses when closed.
        if self.sender.try_send(envelope).is_err() {
            self.used.fetch_sub(1, Ordering::SeqCst);
            return Err(Refused::Closed);
        }
        Ok(())
    }

    fn try_queue(&self, envelope: Envelope) -> Offer {
        self.stats.offered.fetch_add(1, Ordering::Release);
        let envelope = match self.push(envelope) {
            Ok(()) => return Offer::Queued,
            Err(Refused::Closed) => {
                self.count_drop();
                return Offer::Dropped;
            }
            Err(Refused::Full(envelope)) => envelope,
        };
        match self.policy {
            OverflowPolicy::Block => Offer::MustWait(envelope),
            OverflowPolicy::DropOldest => self.evict_and_queue(envelope),
            OverflowPolicy::FailPublish => {
                self.count_drop();
                Offer::Rejected
            }
        }
    }

    /// DropOldest on a full queue: takes the oldest envelope out, counts it as dropped and
    /// queues `envelope` in its slot.
    fn evict_and_queue(&self, mut envelope: Envelope) -> Offer {
        let mut attempts = 0u32;
        loop {
            // Err: a receiver took the oldest first and is about to release its slot (or
            // the queue closed, which `push` reports).
            if let Ok(_oldest) = self.evictor.try_recv() {
                self.count_drop();
                return match self.push_reserved(envelope) {
                    Ok(()) => Offer::Queued,
                    Err(_) => {
                        self.count_drop();
                        Offer::Dropped
                    }
                };
            }
            match self.push(envelope) {
                Ok(()) => return Offer::Queued,
                Err(Refused::Closed) => {
                    self.count_drop();
                    return Offer::Dropped;
                }
                Err(Refused::Full(back)) => envelope = back,
            }
            // The receiver was preempted between its take and its release: let it run.
            attempts += 1;
            if attempts % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Waits for room on this thread; counts a drop if the queue closes while it waits. Given
    /// `keep_waiting`, asks it every [`WAIT_SLICE`] and gives up (counting a drop) when it
    /// answers false.
    pub(crate) fn send_blocking(
        &self,
        mut envelope: Envelope,
        mut keep_waiting: Option<&mut dyn FnMut() -> bool>,
    ) -> Sent {
        let mut listener = None;
        loop {
            match self.push(envelope) {
                Ok(()) => {
                    self.doorbell.ring();
                    return Sent::Queued;
                }
                Err(Refused::Closed) => {
                    self.count_drop();
                    return Sent::Closed;
                }
                Err(Refused::Full(back)) => envelope = back,
            }
            // Listen, then try again, then wait: a slot freed between the failed push and
            // the listen is caught by the retry.
            match (listener.take(), keep_waiting.as_deref_mut()) {
                (None, _) => listener = Some(self.room.listen()),
                (Some(listener), None) => listener.wait(),
                (Some(listener), Some(keep_waiting)) => {
                    if listener.wait_timeout(WAIT_SLICE).is_none() && !keep_waiting() {
                        self.count_drop();
                        return Sent::GaveUp;
                    }
                }
            }
        }
    }

    /// Async form of [`send_blocking`](Self::send_blocking).
    pub(crate) async fn send(&self, mut envelope: Envelope) -> bool {
        let mut listener = None;
        loop {
            match self.push(envelope) {
                Ok(()) => {
                    self.doorbell.ring();
                    return true;
                }
                Err(Refused::Closed) => {
                    self.count_drop();
                    return false;
                }
                Err(Refused::Full(back)) => envelope = back,
            }
            match listener.take() {
                None => listener = Some(self.room.listen()),
                Some(listener) => listener.await,
            }
        }
    }

    /// Closes the queue: further sends fail, waiting publishers are released, and the
    /// receiving side can still take what is queued.
    pub(crate) fn close_queue(&self) {
        self.sender.close();
        self.doorbell.close();
        self.room.notify(usize::MAX);
    }

    pub(crate) fn queue_len(&self) -> usize {
        self.sender.len()
    }

    pub(crate) fn metrics(&self) -> SubscriberMetrics {
        SubscriberMetrics {
            id: self.id,
            type_id: self.type_id,
            label: self.label.clone(),
            policy: self.policy,
            capacity: self.capacity,
            queue_depth: self.queue_len(),
            delivered: SubscriberStats::load(&self.stats.delivered),
            dropped: SubscriberStats::load(&self.stats.dropped),
            handler_errors: SubscriberStats::load(&self.stats.handler_errors),
            decode_errors: SubscriberStats::load(&self.stats.decode_errors),
            last_error: self.stats.last_error(),
        }
    }
}
