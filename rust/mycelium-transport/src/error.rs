//! Errors returned by the bus and its subscriptions.

use mycelium_protocol::EncodeError;

use crate::config::{MAX_QUEUE_CAPACITY, MAX_SPIN};

/// Why a publish did not reach every subscriber.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// [`MessageBus::close`](crate::MessageBus::close) was called; nothing more is accepted.
    #[error("the message bus is closed and accepts no more messages")]
    Closed,
    /// The payload is larger than [`BusConfig::max_payload`](crate::BusConfig::max_payload).
    #[error(
        "payload of {len} bytes exceeds the bus limit of {max} bytes; \
         split the message or raise BusConfig::max_payload"
    )]
    TooLarge {
        /// Payload size in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A subscriber with [`OverflowPolicy::FailPublish`](crate::OverflowPolicy::FailPublish)
    /// had a full queue. The message was still delivered to every other subscriber; this one
    /// counted it as dropped. When several such subscribers were full, the first is named and
    /// the per-subscriber drop counters show the rest.
    #[error(
        "queue of subscriber {subscriber}{} is full; the message was delivered to the other \
         subscribers but not to this one (consume faster or raise its capacity)",
        label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
    )]
    QueueFull {
        /// Id of the full subscriber.
        subscriber: u64,
        /// Its label, if it has one.
        label: Option<String>,
    },
    /// The publisher's [`WaitHooks::keep_waiting`](crate::WaitHooks::keep_waiting) gave up
    /// waiting for room. The message went to every subscriber that had room (or made room in
    /// time); each of the `abandoned` full `Block` subscribers counted it as dropped.
    #[error(
        "the publish stopped waiting for room (its wait hook gave up, e.g. on Ctrl-C); \
         {abandoned} full subscriber(s) counted the message as dropped, the others got it"
    )]
    Interrupted {
        /// How many subscribers counted the message as dropped.
        abandoned: usize,
    },
    /// A typed message could not be encoded; nothing was published.
    #[error("message could not be encoded: {0}")]
    Encode(#[from] EncodeError),
}

/// Why [`RawSubscription::recv_timeout`](crate::RawSubscription::recv_timeout) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived before the timeout; the subscription is still open.
    #[error("no message arrived before the timeout")]
    Timeout,
    /// The subscription (or the bus) is closed and every queued message has been taken.
    #[error("the subscription is closed and its queue is drained")]
    Closed,
}

/// Why a non-blocking receive returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// The queue is empty right now; the subscription is still open.
    #[error("no message is queued")]
    Empty,
    /// The subscription (or the bus) is closed and every queued message has been taken.
    #[error("the subscription is closed and its queue is drained")]
    Closed,
}

/// Why a subscription could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The requested capacity is outside `1..=MAX_QUEUE_CAPACITY`.
    #[error("queue capacity {requested} is out of range; use 1 to {MAX_QUEUE_CAPACITY}")]
    InvalidCapacity {
        /// The capacity that was asked for.
        requested: usize,
    },
    /// The requested spin is longer than `MAX_SPIN`.
    #[error("spin of {requested:?} is too long; use at most {MAX_SPIN:?}")]
    InvalidSpin {
        /// The spin that was asked for.
        requested: std::time::Duration,
    },
    /// A handler subscription was requested outside a tokio runtime.
    #[error(
        "no tokio runtime is running on this thread; call subscribe_handler from inside a \
         runtime or use subscribe_handler_on with a runtime handle"
    )]
    NoRuntime,
}

/// Why [`HandlerHandle::join`](crate::HandlerHandle::join) could not wait for a normal end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerJoinError {
    /// The task was aborted, or its runtime shut down before the subscription ended.
    #[error("the handler task was cancelled (aborted or its runtime shut down)")]
    Cancelled,
    /// The task itself panicked outside the handler (handler panics are caught and counted).
    #[error("the handler task panicked: {0}")]
    Panicked(String),
}
