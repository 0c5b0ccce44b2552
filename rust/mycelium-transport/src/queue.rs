//! A subscriber's queue: a bounded FIFO behind one mutex.
//!
//! It replaced an unbounded async-channel plus a separate slot counter (issue 16). That design
//! paid, per message, a compare-and-swap to reserve a slot, the channel's own index updates,
//! two event-listener notifications (each a full fence), and on the way out a slot release and
//! another notification: about a dozen locked instructions where an uncontended mutex costs
//! two. The mutex also makes every policy one atomic step: a DropOldest publisher evicts and
//! queues under the same lock (the old eviction loop, racing receivers for the oldest message,
//! is gone), and "full", "closed" and the offer/take counts can never disagree.
//!
//! The critical sections are a few instructions (no allocation except when the buffer grows,
//! no wake-up: callers ring the doorbell after unlocking), so a publisher and a receiver on
//! two cores rarely meet on the lock, and when they do parking_lot's spinning absorbs it.
//!
//! Memory follows the messages, not the capacity (issue 12 item 8): the buffer grows by
//! doubling as messages arrive and halves once it is three-quarters empty.
//!
//! Under `--cfg mycelium_loom` the mutex and the atomic are loom's (`crate::sync`), so
//! `tests/loom.rs` model-checks this very code together with the doorbell.

use std::collections::VecDeque;

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// How an [`offer`](Queue::offer) or [`push`](Queue::push) ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered<T> {
    /// Queued.
    Queued,
    /// Queued in the place of the oldest item, returned here (DropOldest on a full queue).
    Evicted(T),
    /// Not queued: the queue is full. The item comes back.
    Full(T),
    /// Not queued: the queue is closed. The item comes back.
    Closed(T),
}

/// What a [`pop`](Queue::pop) found.
#[derive(Debug, PartialEq, Eq)]
pub enum Popped<T> {
    Item(T, Taken),
    /// Nothing queued; more may come.
    Empty,
    /// Nothing queued and the queue is closed: nothing ever will.
    Closed,
}

/// The bookkeeping of one [`pop`](Queue::pop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// How many items this queue has handed out, this one included (1 for the first).
    pub seq: u64,
    /// Takes to add to a shared total now (see [`Queue::unflushed`]): every
    /// [`FLUSH_EVERY`]th take, and every take once the queue is retired, hands over the
    /// takes counted since the last hand-over; otherwise 0.
    pub flush: u64,
}

/// Takes a queue counts on its own before it hands them to a shared total, so that consumers
/// of one type do not all write one cache line per message.
pub const FLUSH_EVERY: u64 = 64;

/// A buffer this large (in items) or smaller is kept when the queue drains; larger ones shrink.
const KEEP_CAPACITY: usize = 1024;

struct Slots<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Offers counted by [`Queue::offer`], whatever became of them.
    offered: u64,
    /// Items handed out by [`Queue::pop`] (not those [`Queue::discard`] takes).
    taken: u64,
    /// How many of `taken` were handed over in a [`Taken::flush`] or by [`Queue::retire`].
    flushed: u64,
    /// Set by [`Queue::retire`]: from then on every take is handed over at once.
    retired: bool,
}

pub struct Queue<T> {
    slots: Mutex<Slots<T>>,
    /// `items.len()`, stored under the lock after every change. Read without the lock by
    /// receivers that spin, so that polling an empty queue does not take the lock the
    /// publisher needs; see [`maybe_nonempty`](Self::maybe_nonempty).
    len: AtomicUsize,
    capacity: usize,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        Queue {
            slots: Mutex::new(Slots {
                items: VecDeque::new(),
                closed: false,
                offered: 0,
                taken: 0,
                flushed: 0,
                retired: false,
            }),
            len: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Counts one offer and queues `item` if there is room. On a full queue, `evict_oldest`
    /// takes the oldest item out and queues `item` in its place.
    pub fn offer(&self, item: T, evict_oldest: bool) -> Offered<T> {
        let mut slots = self.slots.lock();
        slots.offered += 1;
        self.push_locked(&mut slots, item, evict_oldest)
    }

    /// Queues `item` if there is room, without counting an offer: for a publisher that was
    /// told [`Full`](Offered::Full) by [`offer`](Self::offer) and waited for room.
    pub fn push(&self, item: T) -> Offered<T> {
        let mut slots = self.slots.lock();
        self.push_locked(&mut slots, item, false)
    }

    fn push_locked(&self, slots: &mut Slots<T>, item: T, evict_oldest: bool) -> Offered<T> {
        if slots.closed {
            return Offered::Closed(item);
        }
        if slots.items.len() < self.capacity {
            slots.items.push_back(item);
            self.len.store(slots.items.len(), Ordering::Relaxed);
            return Offered::Queued;
        }
        if !evict_oldest {
            return Offered::Full(item);
        }
        match slots.items.pop_front() {
            Some(oldest) => {
                slots.items.push_back(item);
                Offered::Evicted(oldest)
            }
            // Unreachable with a capacity of at least one; refusing is the safe answer.
            None => Offered::Full(item),
        }
    }

    /// Takes the oldest item out, counting it as taken.
    pub fn pop(&self) -> Popped<T> {
        let mut slots = self.slots.lock();
        match Self::take_locked(&mut slots, &self.len) {
            Some(item) => {
                slots.taken += 1;
                let seq = slots.taken;
                let mut flush = 0;
                if slots.retired || seq - slots.flushed >= FLUSH_EVERY {
                    flush = seq - slots.flushed;
                    slots.flushed = seq;
                }
                Popped::Item(item, Taken { seq, flush })
            }
            None if slots.closed => Popped::Closed,
            None => Popped::Empty,
        }
    }

    /// Takes the oldest item out without counting it as taken: for emptying a closed queue,
    /// whose leftovers the caller counts as dropped.
    pub fn discard(&self) -> Option<T> {
        let mut slots = self.slots.lock();
        Self::take_locked(&mut slots, &self.len)
    }

    fn take_locked(slots: &mut Slots<T>, len: &AtomicUsize) -> Option<T> {
        let item = slots.items.pop_front()?;
        let left = slots.items.len();
        len.store(left, Ordering::Relaxed);
        let allocated = slots.items.capacity();
        if allocated > KEEP_CAPACITY && left < allocated / 4 {
            slots.items.shrink_to(allocated / 2);
        }
        Some(item)
    }

    /// Refuses every later offer and push; what is queued can still be popped.
    pub fn close(&self) {
        self.slots.lock().closed = true;
    }

    /// Takes counted here and not yet handed over (see [`Taken::flush`]): what a reader of
    /// the shared total adds for this queue.
    pub fn unflushed(&self) -> u64 {
        let slots = self.slots.lock();
        slots.taken - slots.flushed
    }

    /// Hands over every take not yet handed over (returned), and makes every later take hand
    /// itself over at once: for a queue leaving the set whose [`unflushed`](Self::unflushed)
    /// counts a reader adds up.
    pub fn retire(&self) -> u64 {
        let mut slots = self.slots.lock();
        slots.retired = true;
        let unflushed = slots.taken - slots.flushed;
        slots.flushed = slots.taken;
        unflushed
    }

    pub fn is_closed(&self) -> bool {
        self.slots.lock().closed
    }

    /// Items queued, read under the lock.
    pub fn len(&self) -> usize {
        self.slots.lock().items.len()
    }

    /// Whether a [`pop`](Self::pop) may find an item, read without the lock. Exact for the
    /// thread that queued last; another thread may see a stale answer, so use it only to
    /// decide whether to poll now, inside a protocol that re-checks before sleeping (a
    /// [`Doorbell`](crate::doorbell::Doorbell) sleeper re-polls after its fence, which pairs
    /// with the publisher's fence after this store).
    pub fn maybe_nonempty(&self) -> bool {
        self.len.load(Ordering::Relaxed) > 0
    }

    /// Offers counted so far and items taken so far, read together.
    pub fn counts(&self) -> (u64, u64) {
        let slots = self.slots.lock();
        (slots.offered, slots.taken)
    }
}
