//! The publisher-facing half of a subscription: its queue's sending end, its policy and its
//! counters. Topics hold these; a [`RawSubscription`](crate::RawSubscription) holds the other
//! half (the queue's receiving end).

use crate::stamp::Stamp;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::{Event, EventListener, Listener};

use crate::config::OverflowPolicy;
use crate::doorbell::Doorbell;
use crate::envelope::Envelope;
use crate::metrics::{SubscriberMetrics, SubscriberStats, TypeStats};
use crate::queue::{Offered, Popped, Queue, Taken};

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

/// One take in this many (per subscriber, the first included) records its publish-to-dequeue
/// latency: a clock read and three additions to a histogram every consumer of the type shares
/// cost more than the rest of a take (issue 16). The histogram is therefore a sample: its
/// count is the number of sampled deliveries, its quantiles those of the sample.
pub const LATENCY_SAMPLE_EVERY: u64 = 16;

/// Whether the take numbered `seq` (1 for a subscriber's first) records its latency.
pub(crate) fn sampled(seq: u64) -> bool {
    seq % LATENCY_SAMPLE_EVERY == 1
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

/// The queue is a [`Queue`] (a bounded FIFO behind one mutex, see `queue.rs` for why); the
/// doorbell and two events wake whoever waits on it:
/// - `doorbell`: threads blocked in `RawSubscription::recv_blocking` / `recv_timeout` (every C
///   ABI delivery thread and pull receiver);
/// - `ready`: async receivers (`RawSubscription::recv`, its `Stream`);
/// - `room`: Block publishers waiting for a slot, blocking or async.
///
/// The two events are notified only while someone listens (`async_receivers`,
/// `room_waiters`): an event-listener notification is a full fence, and almost every
/// subscription has neither. Those counts need no fence of their own because the queue's
/// mutex orders them: a waiter counts itself *before* its last look at the queue, a notifier
/// reads the count *after* its change to the queue, and the two looks are serialised by the
/// mutex, so either the waiter sees the change or the notifier sees the waiter.
pub(crate) struct SubscriberShared {
    pub(crate) id: u64,
    pub(crate) type_id: u16,
    pub(crate) label: Option<String>,
    pub(crate) policy: OverflowPolicy,
    pub(crate) capacity: usize,
    /// Its topic filter (`None`: every message of its type).
    pub(crate) pattern: Option<crate::TopicPattern>,
    pub(crate) queue: Queue<Envelope>,
    ready: Event,
    async_receivers: AtomicUsize,
    room: Event,
    room_waiters: AtomicUsize,
    pub(crate) stats: SubscriberStats,
    pub(crate) type_stats: Arc<TypeStats>,
    /// Wakes threads blocked in `RawSubscription::recv_blocking` / `recv_timeout`, and holds
    /// the subscription's own closed flag.
    pub(crate) doorbell: Doorbell,
}

/// Counts a waiter in `count` for as long as it lives (also when its future is dropped).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SubscriberShared {
    /// A subscriber with an empty queue.
    pub(crate) fn new(
        id: u64,
        type_id: u16,
        label: Option<String>,
        policy: OverflowPolicy,
        capacity: usize,
        pattern: Option<crate::TopicPattern>,
        type_stats: Arc<TypeStats>,
    ) -> Self {
        SubscriberShared {
            id,
            type_id,
            label,
            policy,
            capacity,
            pattern,
            queue: Queue::new(capacity),
            ready: Event::new(),
            async_receivers: AtomicUsize::new(0),
            room: Event::new(),
            room_waiters: AtomicUsize::new(0),
            stats: SubscriberStats::default(),
            type_stats,
            doorbell: Doorbell::default(),
        }
    }

    pub(crate) fn count_drop(&self) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        self.type_stats.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the publish-to-dequeue latency of an envelope the receiving side took at `now`
    /// (for the takes [`sampled`] picks).
    pub(crate) fn record_latency(&self, envelope: &Envelope, now: Stamp) {
        let nanos = now
            .saturating_duration_since(envelope.published_at)
            .as_nanos();
        self.type_stats
            .latency
            .record(u64::try_from(nanos).unwrap_or(u64::MAX));
    }

    /// Wakes one receiver of each kind that may be waiting for a message.
    fn queued(&self) {
        self.doorbell.ring();
        if self.async_receivers.load(Ordering::Relaxed) > 0 {
            self.ready.notify_additional(1);
        }
    }

    /// Takes the oldest envelope off the queue (counted as taken) and wakes a Block publisher
    /// waiting for its slot.
    pub(crate) fn pop(&self) -> Popped<Envelope> {
        let popped = self.queue.pop();
        if let Popped::Item(_, taken) = &popped {
            if taken.flush > 0 {
                self.type_stats
                    .delivered
                    .fetch_add(taken.flush, Ordering::Relaxed);
            }
            if self.room_waiters.load(Ordering::Relaxed) > 0 {
                self.room.notify_additional(1);
            }
        }
        popped
    }

    /// [`pop`](Self::pop) for an async receiver: waits for an envelope or the close.
    pub(crate) async fn pop_async(&self) -> Option<(Envelope, Taken)> {
        loop {
            match self.pop() {
                Popped::Item(envelope, taken) => return Some((envelope, taken)),
                Popped::Closed => return None,
                Popped::Empty => {}
            }
            let _counted = Counted::new(&self.async_receivers);
            let listener = self.ready.listen();
            // Counted and listening before this last look (see the type's comment).
            match self.pop() {
                Popped::Item(envelope, taken) => return Some((envelope, taken)),
                Popped::Closed => return None,
                Popped::Empty => listener.await,
            }
        }
    }

    /// Starts listening for the next message or the close, for a receiver that polls by hand
    /// (`RawSubscription`'s `Stream`): look at the queue once more after this, then poll it.
    pub(crate) fn listen_ready(self: &Arc<Self>) -> ReadyListener {
        self.async_receivers.fetch_add(1, Ordering::SeqCst);
        ReadyListener {
            listener: self.ready.listen(),
            shared: Arc::clone(self),
        }
    }

    pub(crate) fn offer(&self, envelope: Envelope) -> Offer {
        let evict = self.policy == OverflowPolicy::DropOldest;
        match self.queue.offer(envelope, evict) {
            Offered::Queued => {
                self.queued();
                Offer::Queued
            }
            Offered::Evicted(oldest) => {
                drop(oldest);
                self.count_drop();
                self.queued();
                Offer::Queued
            }
            Offered::Closed(_) => {
                self.count_drop();
                Offer::Dropped
            }
            Offered::Full(envelope) => match self.policy {
                OverflowPolicy::Block => Offer::MustWait(envelope),
                // DropOldest never comes back full.
                OverflowPolicy::FailPublish | OverflowPolicy::DropOldest => {
                    self.count_drop();
                    Offer::Rejected
                }
            },
        }
    }

    /// Queues an envelope whose offer found the queue full; `Err` gives it back if it is
    /// still full. Counts a drop if the queue closed.
    fn push_after_wait(&self, envelope: Envelope) -> Result<bool, Envelope> {
        // The doorbell's flag too: a publisher woken by `close_queue` stops even if it
        // raced the queue's own close.
        if self.doorbell.is_closed() {
            self.count_drop();
            return Ok(false);
        }
        match self.queue.push(envelope) {
            Offered::Queued | Offered::Evicted(_) => {
                self.queued();
                Ok(true)
            }
            Offered::Closed(_) => {
                self.count_drop();
                Ok(false)
            }
            Offered::Full(envelope) => Err(envelope),
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
        let mut waiting = None;
        loop {
            match self.push_after_wait(envelope) {
                Ok(true) => return Sent::Queued,
                Ok(false) => return Sent::Closed,
                Err(back) => envelope = back,
            }
            // Count, listen, then try again, then wait: a slot freed between the failed push
            // and the listen is caught by the retry.
            match (waiting.take(), keep_waiting.as_deref_mut()) {
                (None, _) => {
                    let counted = Counted::new(&self.room_waiters);
                    waiting = Some((counted, self.room.listen()));
                }
                (Some((_counted, listener)), None) => listener.wait(),
                (Some((_counted, listener)), Some(keep_waiting)) => {
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
        let mut waiting = None;
        loop {
            match self.push_after_wait(envelope) {
                Ok(queued) => return queued,
                Err(back) => envelope = back,
            }
            match waiting.take() {
                None => {
                    let counted = Counted::new(&self.room_waiters);
                    waiting = Some((counted, self.room.listen()));
                }
                Some((_counted, listener)) => listener.await,
            }
        }
    }

    /// Closes the queue: further sends fail, waiting publishers are released, and the
    /// receiving side can still take what is queued.
    pub(crate) fn close_queue(&self) {
        self.queue.close();
        self.doorbell.close();
        self.ready.notify(usize::MAX);
        self.room.notify(usize::MAX);
    }

    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn metrics(&self) -> SubscriberMetrics {
        SubscriberMetrics {
            id: self.id,
            type_id: self.type_id,
            label: self.label.clone(),
            policy: self.policy,
            capacity: self.capacity,
            queue_depth: self.queue_len(),
            delivered: self.queue.counts().1,
            dropped: SubscriberStats::load(&self.stats.dropped),
            handler_errors: SubscriberStats::load(&self.stats.handler_errors),
            decode_errors: SubscriberStats::load(&self.stats.decode_errors),
            last_error: self.stats.last_error(),
        }
    }
}

/// An async receiver's registration for the next message (see
/// [`SubscriberShared::listen_ready`]); counted while it lives.
pub(crate) struct ReadyListener {
    listener: EventListener,
    shared: Arc<SubscriberShared>,
}

impl ReadyListener {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        std::pin::Pin::new(&mut self.listener).poll(cx)
    }
}

impl Drop for ReadyListener {
    fn drop(&mut self) {
        self.shared.async_receivers.fetch_sub(1, Ordering::SeqCst);
    }
}
