//! Mycelium's in-process message bus: the layer every language adapter (C ABI, Python,
//! OCaml, socket bridges) publishes into and subscribes from.
//!
//! # Model
//!
//! **Topics.** Messages are routed by their schema type id (`u16`). Each type id seen by the
//! bus gets a topic holding its subscriber list and counters. The list is copy-on-write: a
//! publish clones an `Arc` of the current list under a momentary read lock and iterates it
//! lock-free, so publishing never takes a write lock, a publisher waiting on one subscriber
//! never blocks (un)subscribing, and the cost of a publish does not depend on how many
//! subscribers other types have. Publishing a type nobody subscribes to only bumps counters.
//! A topic and its counters live as long as the bus (at most one per type id).
//!
//! **Queues.** Each subscription owns a bounded FIFO queue of [`Envelope`]s (type id, payload,
//! publish time). Payloads are [`bytes::Bytes`], so fan-out to N subscribers shares one
//! buffer. Subscribers consume by blocking ([`RawSubscription::recv_blocking`],
//! [`recv_timeout`](RawSubscription::recv_timeout)), awaiting ([`RawSubscription::recv`],
//! `Stream`), polling ([`try_recv`](RawSubscription::try_recv),
//! [`drain_into`](RawSubscription::drain_into) for batched FFI delivery), through a typed
//! [`Subscription`] that decodes a [`Message`](mycelium_protocol::Message), or through a
//! callback task ([`MessageBus::subscribe_handler`]).
//!
//! **Overflow policies** are chosen per subscriber ([`OverflowPolicy`]):
//! - `Block`: the publisher waits for room (back-pressure). A publish first queues the message
//!   for every subscriber that has room, then waits for the full `Block` subscribers.
//! - `DropOldest`: the oldest queued message is evicted; the subscriber sees the newest ones.
//! - `FailPublish`: this subscriber does not get the message and the publish returns
//!   [`PublishError::QueueFull`]. **The other subscribers still get it**: one slow consumer
//!   cannot stop delivery to the rest, and the publisher learns that someone missed it.
//!
//! Nothing is lost silently: every message a subscriber does not get (evicted, refused,
//! queued when it unsubscribed, or in flight to it when it closed) counts as *dropped* for
//! that subscriber and its type.
//!
//! **Ordering.** Messages from one publisher (one thread, or one task awaiting each publish)
//! reach each subscriber in publish order. Messages from different publishers interleave in
//! an unspecified order. Under `DropOldest` the kept messages stay in order.
//!
//! **Unsubscribing.** Dropping or [`close`](RawSubscription::close)-ing a subscription
//! removes it at once, releases publishers waiting on its full queue, and counts what was
//! still queued as dropped.
//!
//! **Shutdown.** [`MessageBus::close`] makes every later publish fail with
//! [`PublishError::Closed`] and ends every subscription: each still yields the messages
//! already queued, then reports end-of-stream (`None` / [`RecvError::Closed`]). Publishers
//! blocked on a full queue are released with `Closed`. Handler tasks end once they have
//! processed their queue; aborting a handler or shutting down its runtime drops its
//! subscription, counting the rest as dropped. No task outlives its subscription.
//!
//! **Metrics.** [`MessageBus::metrics`] returns a [`MetricsSnapshot`]: per type id the
//! publishes, payload bytes, deliveries, drops, subscriber count and a publish-to-dequeue
//! latency histogram (p50/p90/p99/max); per live subscriber its label, policy, queue depth,
//! deliveries, drops, handler and decode errors. Counters are relaxed atomics and the
//! histogram is lock-free, so the hot path takes no lock for metrics. With the bus quiet, for
//! each type, `sum over publishes of the subscribers present == delivered + dropped + queued`.
//! Render a snapshot with [`MetricsSnapshot::to_json`] or
//! [`MetricsSnapshot::to_prometheus`]; names for the `message` label come from
//! [`MessageBus::set_type_names`] or from typed calls (`Message::NAME`).
//!
//! **Request/reply.** [`MessageBus::serve`] registers a responder for a *service* (a request
//! type and a reply type; handler on a thread of its own, or pull-based with
//! [`MessageBus::serve_raw`]); [`MessageBus::request`] sends one request to every responder
//! present and returns the **first successful reply** (later ones are discarded, counted as
//! late), [`MessageBus::request_all`] **gathers every answer** until each responder answered or
//! the timeout passed. Errors are typed ([`RequestError`]): `NoResponder` at once,
//! `ResponderFailed` (handler error or panic, full queue, responder gone) when every responder
//! failed, `Timeout`, `Closed`. Each request has a correlation id; replies go to the
//! requester's private inbox, never to subscribers, and requests do not reach ordinary
//! subscribers of the request type (request/reply is addressed, pub/sub is broadcast).
//! Per-service counters are in [`MetricsSnapshot::services`]. See `docs/request-reply.md`.
//!
//! **Hooks for socket bridges.** A bridge republishes what a peer sent with
//! [`MessageBus::publish_raw_from`], which tags each [`Envelope`] with an `origin` (ordinary
//! publishes carry [`Envelope::LOCAL_ORIGIN`]); its forwarding subscription for that peer skips
//! envelopes carrying the peer's own tag, so nothing is echoed back. To propagate interest,
//! it awaits [`MessageBus::watch_subscriptions`] (moves on every subscribe, unsubscribe and
//! close) and reads [`MessageBus::subscriber_ids`], leaving out its own subscriptions.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};
//!
//! let bus = MessageBus::new();
//! let sub = bus.subscribe_raw(7, SubscribeOptions::new(16, OverflowPolicy::DropOldest));
//! bus.publish_raw(7, Bytes::from_static(b"hello")).unwrap();
//! assert_eq!(sub.try_recv().unwrap().payload, Bytes::from_static(b"hello"));
//!
//! bus.close();
//! assert!(sub.recv_blocking().is_none());
//! assert_eq!(bus.metrics().type_metrics(7).unwrap().delivered, 1);
//! ```

mod bus;
mod config;
mod doorbell;
/// The doorbell, public only for the loom models (`tests/loom.rs`, `--cfg mycelium_loom`).
#[cfg(mycelium_loom)]
pub use doorbell::{Doorbell, Woken};
mod envelope;
mod error;
#[cfg(feature = "tokio")]
mod handler;
pub mod keys;
pub mod metrics;
mod publish;
/// The subscriber queue, public only for the loom models (`tests/loom.rs`, `--cfg mycelium_loom`).
#[cfg(mycelium_loom)]
pub mod queue;
#[cfg(not(mycelium_loom))]
mod queue;
mod raw_subscription;
mod request;
mod service;
mod services;
mod stamp;
mod subscriber;
mod sync;
mod topic;
mod typed;

pub use bus::MessageBus;
pub use config::{
    BusConfig, OverflowPolicy, SubscribeOptions, DEFAULT_MAX_PAYLOAD, DEFAULT_QUEUE_CAPACITY,
    MAX_QUEUE_CAPACITY, MAX_SPIN,
};
pub use envelope::Envelope;
pub use error::{HandlerJoinError, PublishError, RecvError, SubscribeError, TryRecvError};
#[cfg(feature = "tokio")]
pub use handler::HandlerHandle;
pub use keys::{TopicError, TopicName, TopicPattern, MAX_TOPIC_LEN};
pub use metrics::{
    prometheus_escape_label, MetricsSnapshot, RefusedReason, ServiceMetrics, SubscriberMetrics,
    TopicMetrics, TypeMetrics,
};
pub use publish::WaitHooks;
pub use raw_subscription::RawSubscription;
pub use request::{Gathered, RequestError};
pub use service::{
    IncomingRequest, RawResponder, ServeGuard, ServeOptions, Stopper, DEFAULT_SERVE_CAPACITY,
};
pub use stamp::Stamp;
pub use subscriber::LATENCY_SAMPLE_EVERY;
pub use typed::Subscription;

/// The in-process transport. Remote transports (socket bridges) forward into one of these, so
/// local code always talks to a [`MessageBus`].
pub type LocalTransport = MessageBus;
