//! Live counters kept by the bus and the plain snapshot they are read into.
//!
//! Counters are relaxed atomics bumped on the publish and dequeue paths; nothing here takes a
//! lock while messages flow. A snapshot reads each counter once, so counters that move while
//! it is taken may be a few messages apart from each other; with the bus quiescent they
//! reconcile exactly: for every type, each (publish, subscriber) pair ends up `delivered`,
//! `dropped`, or still queued.

mod histogram;
mod prometheus;
mod topics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::config::OverflowPolicy;
pub(crate) use histogram::LatencyHistogram;
pub use histogram::{HistogramBucket, LatencySummary};
pub use prometheus::escape_label as prometheus_escape_label;
pub use topics::TopicMetrics;
pub(crate) use topics::TopicStats;

/// Counters for one message type, shared by the topic and its subscriptions.
///
/// `delivered` is not bumped per message: each subscriber's queue counts its own takes and
/// hands them over in batches (`queue.rs`, [`FLUSH_EVERY`](crate::queue::FLUSH_EVERY)), so the
/// total is this counter plus what every live queue has not handed over yet
/// (`Topic::delivered`). `latency` records one take in
/// [`LATENCY_SAMPLE_EVERY`](crate::LATENCY_SAMPLE_EVERY) per subscriber.
pub(crate) struct TypeStats {
    pub(crate) published: AtomicU64,
    pub(crate) published_bytes: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) latency: LatencyHistogram,
}

impl TypeStats {
    pub(crate) fn new() -> Self {
        TypeStats {
            published: AtomicU64::new(0),
            published_bytes: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
        }
    }
}

/// Why a publish was refused, for [`MetricsSnapshot::refused`] and
/// [`MessageBus::record_refused`](crate::MessageBus::record_refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// The bus was closed.
    Closed,
    /// Over the maximum payload.
    TooLarge,
    /// A `fail` subscriber was full (the others still got the message).
    QueueFull,
    /// The publisher gave up waiting for room (e.g. Ctrl-C).
    Interrupted,
    /// The payload did not decode as its type (checked by an adapter before publishing), or a
    /// typed message could not be encoded.
    Invalid,
    /// The type id is not in the schema (checked by an adapter before publishing).
    UnknownType,
}

impl RefusedReason {
    const ALL: [RefusedReason; 6] = [
        RefusedReason::Closed,
        RefusedReason::TooLarge,
        RefusedReason::QueueFull,
        RefusedReason::Interrupted,
        RefusedReason::Invalid,
        RefusedReason::UnknownType,
    ];

    /// The reason's name in metrics (`reason="queue_full"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedReason::Closed => "closed",
            RefusedReason::TooLarge => "too_large",
            RefusedReason::QueueFull => "queue_full",
            RefusedReason::Interrupted => "interrupted",
            RefusedReason::Invalid => "invalid",
            RefusedReason::UnknownType => "unknown_type",
        }
    }

    /// The reason a publish error stands for.
    pub fn of(error: &crate::PublishError) -> RefusedReason {
        use crate::PublishError as E;
        match error {
            E::Closed => RefusedReason::Closed,
            E::TooLarge { .. } => RefusedReason::TooLarge,
            E::QueueFull { .. } => RefusedReason::QueueFull,
            E::Interrupted { .. } => RefusedReason::Interrupted,
            E::Encode(_) => RefusedReason::Invalid,
        }
    }
}

/// Refused publishes, by reason; only touched when a publish fails.
#[derive(Default)]
pub(crate) struct RefusedStats([AtomicU64; 6]);

impl RefusedStats {
    pub(crate) fn record(&self, reason: RefusedReason) {
        let i = RefusedReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is in ALL");
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> std::collections::BTreeMap<String, u64> {
        RefusedReason::ALL
            .iter()
            .zip(&self.0)
            .map(|(r, c)| (r.as_str().to_owned(), c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Counters for one subscriber that are not the queue's own (offers and takes are counted under
/// the queue's lock, see `queue.rs`).
///
/// Aligned to its own cache lines: drops are counted by publishers, handler errors by the
/// consumer, and neither should invalidate the line publishers read the queue handle and policy
/// from.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct SubscriberStats {
    pub(crate) dropped: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    /// Only written when a handler fails, so a mutex costs nothing on the delivery path.
    pub(crate) last_error: Mutex<Option<String>>,
}

impl SubscriberStats {
    pub(crate) fn set_last_error(&self, message: String) {
        // A poisoned lock only means another thread panicked while storing a string; the
        // value is still a valid Option<String>, so keep using it.
        let mut slot = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(message);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Everything the bus counts, at one point in time. Plain data: serialize it, diff it, or
/// render it with [`to_json`](Self::to_json) / [`to_prometheus`](Self::to_prometheus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Whether [`MessageBus::close`](crate::MessageBus::close) has been called.
    pub closed: bool,
    /// One entry per type id that was ever published or subscribed, by ascending type id.
    pub types: Vec<TypeMetrics>,
    /// One entry per live subscription, by ascending subscriber id. Counters of closed
    /// subscriptions remain in their type's totals.
    pub subscribers: Vec<SubscriberMetrics>,
    /// Publishes refused, by [`RefusedReason`] name (every reason present, zero or not).
    pub refused: std::collections::BTreeMap<String, u64>,
    /// One entry per request/reply service ever served or requested, by ascending
    /// (request type, reply type).
    pub services: Vec<ServiceMetrics>,
    /// Per-topic counters, by type id then topic: empty unless enabled with
    /// [`MessageBus::enable_topic_metrics`](crate::MessageBus::enable_topic_metrics).
    pub topics: Vec<TopicMetrics>,
    /// Publishes under a topic that was not counted one by one because the limit given to
    /// `enable_topic_metrics` was reached.
    pub topics_untracked: u64,
}

/// Counters of one request/reply service (a request type and a reply type).
///
/// With the bus quiet: `requests == no_responder + (requests answered by a reply) +
/// (requests that ended ResponderFailed) + timeouts` for first-wins requests; `replies` and
/// `responder_failures` count *answers* (one per responder that answered in time), so with
/// several responders they can exceed `requests`. `late_replies` counts answers that came
/// after the requester stopped waiting (a first-wins request already answered, a timeout, an
/// abandoned async request): discarded, never delivered anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceMetrics {
    /// The service's name, if given with
    /// [`MessageBus::set_service_name`](crate::MessageBus::set_service_name).
    pub name: Option<String>,
    /// Type id of its requests.
    pub request_type: u16,
    /// Type id of its replies.
    pub reply_type: u16,
    /// Name of the request type, if known.
    pub request_name: Option<String>,
    /// Name of the reply type, if known.
    pub reply_name: Option<String>,
    /// Live responders.
    pub responders: usize,
    /// Requests made (including those refused as `no_responder`).
    pub requests: u64,
    /// Successful replies delivered to a waiting requester.
    pub replies: u64,
    /// Requests that ended without the answers they waited for (first-wins: no reply;
    /// gather-all: some responder unanswered).
    pub timeouts: u64,
    /// Requests refused at once because nobody served the service.
    pub no_responder: u64,
    /// Failure answers delivered to a waiting requester (handler error or panic, full queue,
    /// responder gone).
    pub responder_failures: u64,
    /// Answers that arrived after their requester stopped waiting (discarded).
    pub late_replies: u64,
}

/// Totals for one message type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeMetrics {
    /// Schema type id.
    pub type_id: u16,
    /// Message name, if registered with
    /// [`MessageBus::set_type_names`](crate::MessageBus::set_type_names) or learnt from a
    /// typed publish/subscribe.
    pub name: Option<String>,
    /// Publishes accepted (not refused as closed or too large).
    pub published: u64,
    /// Payload bytes of the accepted publishes (each counted once, however many subscribers).
    pub published_bytes: u64,
    /// Messages taken from a queue by a subscriber.
    pub delivered: u64,
    /// Messages that a subscriber did not get: evicted, refused, or still queued when it closed.
    pub dropped: u64,
    /// Live subscriptions.
    pub subscribers: usize,
    /// Publish-to-dequeue latency of a sample of the deliveries: each subscriber's first and
    /// every [`LATENCY_SAMPLE_EVERY`](crate::LATENCY_SAMPLE_EVERY)th after it (its `count` is
    /// the sample's size, not `delivered`).
    pub latency: LatencySummary,
}

/// State of one live subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberMetrics {
    /// Subscriber id (unique within the bus).
    pub id: u64,
    /// Type id it subscribes to.
    pub type_id: u16,
    /// Label given in [`SubscribeOptions`](crate::SubscribeOptions).
    pub label: Option<String>,
    /// Its overflow policy.
    pub policy: OverflowPolicy,
    /// Its queue capacity.
    pub capacity: usize,
    /// Messages waiting in its queue.
    pub queue_depth: usize,
    /// Messages it has taken.
    pub delivered: u64,
    /// Messages it missed (see [`TypeMetrics::dropped`]).
    pub dropped: u64,
    /// Failed or panicking handler calls, including those reported by foreign adapters.
    pub handler_errors: u64,
    /// Payloads a typed subscription could not decode (skipped).
    pub decode_errors: u64,
    /// Message of the most recent handler or decode failure.
    pub last_error: Option<String>,
}

impl MetricsSnapshot {
    /// The snapshot as a JSON document (same field names as the Rust structs).
    pub fn to_json(&self) -> String {
        // Every field is a string, number, bool, enum or list, so serialization cannot fail;
        // the fallback only keeps this function total.
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("metrics serialization failed: {e}") }).to_string()
        })
    }

    /// The snapshot in the Prometheus text exposition format 0.0.4.
    pub fn to_prometheus(&self) -> String {
        prometheus::render(self)
    }

    /// Totals for `type_id`, if it was ever published or subscribed.
    pub fn type_metrics(&self, type_id: u16) -> Option<&TypeMetrics> {
        self.types.iter().find(|t| t.type_id == type_id)
    }

    /// Counters of the service (`request_type`, `reply_type`), if it was ever used.
    pub fn service(&self, request_type: u16, reply_type: u16) -> Option<&ServiceMetrics> {
        self.services
            .iter()
            .find(|s| s.request_type == request_type && s.reply_type == reply_type)
    }

    /// State of subscriber `id`, if it is still subscribed.
    pub fn subscriber(&self, id: u64) -> Option<&SubscriberMetrics> {
        self.subscribers.iter().find(|s| s.id == id)
    }
}
