//! The publisher-facing half of a subscription: its queue's sending end, its policy and its
//! counters. Topics hold these; a [`RawSubscription`](crate::RawSubscription) holds the other
//! half (the queue's receiving end).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Sender, TrySendError};

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

pub(crate) struct SubscriberShared {
    pub(crate) id: u64,
    pub(crate) type_id: u16,
    pub(crate) label: Option<String>,
    pub(crate) policy: OverflowPolicy,
    pub(crate) capacity: usize,
    sender: Sender<Envelope>,
    pub(crate) stats: SubscriberStats,
    pub(crate) type_stats: Arc<TypeStats>,
    /// Wakes threads blocked in `RawSubscription::recv_blocking` / `recv_timeout`.
    pub(crate) doorbell: Doorbell,
}

impl SubscriberShared {
    pub(crate) fn new(
        id: u64,
        type_id: u16,
        label: Option<String>,
        policy: OverflowPolicy,
        capacity: usize,
        sender: Sender<Envelope>,
        type_stats: Arc<TypeStats>,
    ) -> Self {
        SubscriberShared {
            id,
            type_id,
            label,
            policy,
            capacity,
            sender,
            stats: SubscriberStats::default(),
            type_stats,
            doorbell: Doorbell::default(),
        }
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

    fn try_queue(&self, envelope: Envelope) -> Offer {
        self.stats.offered.fetch_add(1, Ordering::Release);
        match self.policy {
            OverflowPolicy::Block => match self.sender.try_send(envelope) {
                Ok(()) => Offer::Queued,
                Err(TrySendError::Full(envelope)) => Offer::MustWait(envelope),
                Err(TrySendError::Closed(_)) => {
                    self.count_drop();
                    Offer::Dropped
                }
            },
            OverflowPolicy::DropOldest => match self.sender.force_send(envelope) {
                Ok(None) => Offer::Queued,
                Ok(Some(_evicted)) => {
                    self.count_drop();
                    Offer::Queued
                }
                Err(_) => {
                    self.count_drop();
                    Offer::Dropped
                }
            },
            OverflowPolicy::FailPublish => match self.sender.try_send(envelope) {
                Ok(()) => Offer::Queued,
                Err(TrySendError::Full(_)) => {
                    self.count_drop();
                    Offer::Rejected
                }
                Err(TrySendError::Closed(_)) => {
                    self.count_drop();
                    Offer::Dropped
                }
            },
        }
    }

    /// Waits for room on this thread. Returns false (and counts a drop) if the queue was
    /// closed while waiting.
    pub(crate) fn send_blocking(&self, envelope: Envelope) -> bool {
        match self.sender.send_blocking(envelope) {
            Ok(()) => {
                self.doorbell.ring();
                true
            }
            Err(_) => {
                self.count_drop();
                false
            }
        }
    }

    /// Async form of [`send_blocking`](Self::send_blocking).
    pub(crate) async fn send(&self, envelope: Envelope) -> bool {
        match self.sender.send(envelope).await {
            Ok(()) => {
                self.doorbell.ring();
                true
            }
            Err(_) => {
                self.count_drop();
                false
            }
        }
    }

    /// Closes the queue: further sends fail, waiting publishers are released, and the
    /// receiving side can still take what is queued.
    pub(crate) fn close_queue(&self) {
        self.sender.close();
        self.doorbell.ring_all();
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
