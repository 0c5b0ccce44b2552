//! [`MessageBus`]: the topic table, subscribing, shutdown and metrics. Publishing lives in
//! `publish.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mycelium_protocol::Message;
use parking_lot::RwLock;

use crate::config::{BusConfig, SubscribeOptions, MAX_QUEUE_CAPACITY, MAX_SPIN};
use crate::error::SubscribeError;
use crate::metrics::{MetricsSnapshot, TypeMetrics};
use crate::raw_subscription::RawSubscription;
use crate::subscriber::SubscriberShared;
use crate::topic::{bump, SubscriptionChanges, Topic, TopicTable};
use crate::typed::Subscription;

pub(crate) struct BusInner {
    pub(crate) config: BusConfig,
    /// Grows only when a type id is seen for the first time; read without a lock.
    pub(crate) topics: TopicTable,
    pub(crate) closed: AtomicBool,
    pub(crate) next_subscriber_id: AtomicU64,
    /// Names given explicitly; they win over names learnt from typed calls.
    pub(crate) type_names: RwLock<HashMap<u16, String>>,
    /// Generation counter bumped by every subscribe, unsubscribe and `close`.
    pub(crate) subscription_changes: SubscriptionChanges,
    /// Publishes refused, by reason (metrics).
    pub(crate) refused: crate::metrics::RefusedStats,
    /// Request/reply: responders per service and the inbox of pending requests
    /// (`services.rs`). An `Arc` so a request in a responder's queue can hold it weakly.
    pub(crate) services: Arc<crate::services::Services>,
    /// Per-topic counters, off until `enable_topic_metrics`.
    pub(crate) topic_stats: crate::metrics::TopicStats,
}

/// The in-process publish/subscribe bus. Cheap to clone; clones share one bus.
///
/// See the [crate documentation](crate) for the delivery model.
#[derive(Clone)]
pub struct MessageBus {
    pub(crate) inner: Arc<BusInner>,
}

impl Default for MessageBus {
    fn default() -> Self {
        MessageBus::new()
    }
}

impl std::fmt::Debug for MessageBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBus")
            .field("config", &self.inner.config)
            .field("closed", &self.is_closed())
            .field("topics", &self.inner.topics.len())
            .finish()
    }
}

impl MessageBus {
    /// A bus with the default [`BusConfig`].
    pub fn new() -> Self {
        MessageBus::with_config(BusConfig::default())
    }

    /// A bus with the given limits.
    pub fn with_config(config: BusConfig) -> Self {
        crate::stamp::Stamp::calibrate();
        let subscription_changes = Arc::new(crate::topic::Changes::new());
        MessageBus {
            inner: Arc::new(BusInner {
                config,
                topics: TopicTable::default(),
                closed: AtomicBool::new(false),
                next_subscriber_id: AtomicU64::new(1),
                type_names: RwLock::new(HashMap::new()),
                services: Arc::new(crate::services::Services::new(Arc::clone(
                    &subscription_changes,
                ))),
                subscription_changes,
                refused: Default::default(),
                topic_stats: Default::default(),
            }),
        }
    }

    /// The limits this bus was created with.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    fn topic(&self, type_id: u16) -> Arc<Topic> {
        Arc::clone(self.topic_ref(type_id))
    }

    /// The topic of `type_id`, made on first use; borrowed from the table, which never drops
    /// one.
    fn topic_ref(&self, type_id: u16) -> &Arc<Topic> {
        if let Some(topic) = self.inner.topics.get(type_id) {
            return topic;
        }
        self.inner.topics.get_or_insert_with(type_id, || {
            Topic::new(type_id, Arc::clone(&self.inner.subscription_changes))
        })
    }

    /// Runs `f` on the topic of `type_id`, creating the topic on first use.
    pub(crate) fn with_topic<R>(&self, type_id: u16, f: impl FnOnce(&Topic) -> R) -> R {
        f(self.topic_ref(type_id))
    }

    /// Subscribes to `type_id`. A spin longer than [`MAX_SPIN`] is shortened to it.
    /// Subscribing to a closed bus yields a subscription that is already at end-of-stream.
    ///
    /// The queue allocates as messages arrive, not up front: a large capacity costs memory
    /// only while that many messages are actually waiting.
    ///
    /// # Panics
    ///
    /// If `opts.capacity` is outside `1..=`[`MAX_QUEUE_CAPACITY`], with the message of
    /// [`SubscribeError::InvalidCapacity`] (it names the limit). A capacity that comes from
    /// outside the program should go through [`try_subscribe_raw`](Self::try_subscribe_raw),
    /// which returns that error instead.
    pub fn subscribe_raw(&self, type_id: u16, opts: SubscribeOptions) -> RawSubscription {
        self.subscribe_with(type_id, opts, None)
    }

    /// Like [`subscribe_raw`](Self::subscribe_raw), but refuses an out-of-range capacity or
    /// spin with an error instead of panicking or shortening it.
    pub fn try_subscribe_raw(
        &self,
        type_id: u16,
        opts: SubscribeOptions,
    ) -> Result<RawSubscription, SubscribeError> {
        check_options(&opts)?;
        Ok(self.subscribe_with(type_id, opts, None))
    }

    /// Subscribes; panics on a capacity out of range (see [`subscribe_raw`](Self::subscribe_raw)).
    pub(crate) fn subscribe_with(
        &self,
        type_id: u16,
        opts: SubscribeOptions,
        name: Option<&'static str>,
    ) -> RawSubscription {
        if let Err(error) = check_capacity(opts.capacity) {
            panic!("{error}");
        }
        let capacity = opts.capacity;
        let spin = opts.spin.min(MAX_SPIN);
        let topic = self.topic(type_id);
        if let Some(name) = name {
            topic.learn_name(name);
        }
        let id = self
            .inner
            .next_subscriber_id
            .fetch_add(1, Ordering::Relaxed);
        let shared = SubscriberShared::new(
            id,
            type_id,
            opts.label,
            opts.policy,
            capacity,
            opts.pattern,
            Arc::clone(&topic.stats),
        );
        let shared = Arc::new(shared);
        topic.add(Arc::clone(&shared));
        // Checked after joining the topic: either `close` saw this subscriber in the list, or
        // this load sees the flag `close` set (both SeqCst), so it is closed exactly as the
        // others are.
        if self.inner.closed.load(Ordering::SeqCst) {
            shared.close_queue();
        }
        RawSubscription::new(shared, topic, spin)
    }

    /// Typed subscription: yields decoded `T`s (see [`Subscription`]).
    ///
    /// # Panics
    ///
    /// On a capacity out of range, as [`subscribe_raw`](Self::subscribe_raw);
    /// [`try_subscribe`](Self::try_subscribe) returns the error instead.
    pub fn subscribe<T: Message>(&self, opts: SubscribeOptions) -> Subscription<T> {
        Subscription::new(self.subscribe_with(T::TYPE_ID, opts, Some(T::NAME)))
    }

    /// Like [`subscribe`](Self::subscribe), but refuses an out-of-range capacity or spin
    /// with an error.
    pub fn try_subscribe<T: Message>(
        &self,
        opts: SubscribeOptions,
    ) -> Result<Subscription<T>, SubscribeError> {
        check_options(&opts)?;
        Ok(self.subscribe(opts))
    }

    /// Live subscriptions to `type_id`.
    pub fn subscriber_count(&self, type_id: u16) -> usize {
        self.inner
            .topics
            .get(type_id)
            .map_or(0, |topic| topic.subscriber_count())
    }

    /// The ids ([`RawSubscription::id`]) of the live subscriptions to `type_id`, in the order
    /// they subscribed. A socket bridge uses it to tell its own forwarding subscriptions apart
    /// from the local subscribers whose interest it propagates to peers.
    pub fn subscriber_ids(&self, type_id: u16) -> Vec<u64> {
        match self.inner.topics.get(type_id) {
            Some(topic) => topic.subscribers().iter().map(|s| s.id).collect(),
            None => Vec::new(),
        }
    }

    /// The live subscriptions to `type_id` as (id, topic pattern) pairs, in the order they
    /// subscribed; `None`: the subscription sees every message of its type. The NATS join
    /// turns the patterns into the subjects it subscribes to, so the server filters by topic.
    pub fn subscriber_patterns(&self, type_id: u16) -> Vec<(u64, Option<crate::TopicPattern>)> {
        match self.inner.topics.get(type_id) {
            Some(topic) => topic
                .subscribers()
                .iter()
                .map(|s| (s.id, s.pattern.clone()))
                .collect(),
            None => Vec::new(),
        }
    }

    /// A receiver that is notified whenever the set of subscriptions changes (any subscribe or
    /// unsubscribe, of any type, and any responder that starts or stops serving) and when the
    /// bus closes. The value is a generation counter
    /// with no meaning beyond "it moved"; after
    /// [`changed`](tokio::sync::watch::Receiver::changed) returns, read the current state with
    /// [`subscriber_ids`](Self::subscriber_ids) or [`subscriber_count`](Self::subscriber_count).
    /// Changes made while nobody awaited are coalesced into one notification, never lost.
    #[cfg(feature = "tokio")]
    pub fn watch_subscriptions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.subscription_changes.sender.subscribe()
    }

    /// Refuses every further publish with [`PublishError::Closed`](crate::PublishError::Closed)
    /// and ends every subscription: each still yields what is queued, then reports
    /// end-of-stream. Publishers waiting on a full queue are released. Idempotent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        for topic in self.inner.topics.all() {
            for subscriber in topic.subscribers().iter() {
                subscriber.close_queue();
            }
        }
        self.inner.services.close();
        bump(&self.inner.subscription_changes);
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Replaces the explicitly registered message names used in metrics (the `message`
    /// label). Types without an entry fall back to the name learnt from typed calls, if any.
    pub fn set_type_names(&self, names: HashMap<u16, String>) {
        *self.inner.type_names.write() = names;
    }

    /// Registers or replaces the name of one type id.
    pub fn set_type_name(&self, type_id: u16, name: impl Into<String>) {
        self.inner.type_names.write().insert(type_id, name.into());
    }

    /// The name metrics show for `type_id`.
    pub fn type_name(&self, type_id: u16) -> Option<String> {
        if let Some(name) = self.inner.type_names.read().get(&type_id) {
            return Some(name.clone());
        }
        let topic = self.inner.topics.get(type_id)?;
        topic.learnt_name().map(str::to_owned)
    }

    /// Reads every counter into a plain snapshot.
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut topics = self.inner.topics.all();
        topics.sort_by_key(|t| t.type_id);
        let names = self.inner.type_names.read().clone();
        let mut types = Vec::with_capacity(topics.len());
        let mut subscribers = Vec::new();
        for topic in &topics {
            let list = topic.subscribers();
            subscribers.extend(list.iter().map(|s| s.metrics()));
            let stats = &topic.stats;
            let latency = stats.latency.summary();
            types.push(TypeMetrics {
                type_id: topic.type_id,
                name: names
                    .get(&topic.type_id)
                    .cloned()
                    .or_else(|| topic.learnt_name().map(str::to_owned)),
                published: stats.published.load(Ordering::Relaxed),
                published_bytes: stats.published_bytes.load(Ordering::Relaxed),
                delivered: topic.delivered(),
                dropped: stats.dropped.load(Ordering::Relaxed),
                subscribers: list.len(),
                latency,
            });
        }
        subscribers.sort_by_key(|s| s.id);
        MetricsSnapshot {
            closed: self.is_closed(),
            types,
            subscribers,
            refused: self.inner.refused.snapshot(),
            services: self.inner.services.metrics(|id| {
                self.type_name(id)
                    .or_else(|| self.inner.services.learnt_name(id))
            }),
            topics: self.inner.topic_stats.snapshot(|id| self.type_name(id)),
            topics_untracked: self.inner.topic_stats.untracked(),
        }
    }

    /// Counts publishes per topic (published, bytes) in [`metrics`](Self::metrics)'
    /// `topics`, for the first `max_topics` distinct (type, topic) pairs seen from now on;
    /// publishes under further topics are counted together in `topics_untracked`. Off by
    /// default, because topics can be unbounded in number; `0` turns it off again and forgets
    /// the counts. Costs a publish with a topic one uncontended lock while on; publishes
    /// without a topic are never counted here.
    pub fn enable_topic_metrics(&self, max_topics: usize) {
        self.inner.topic_stats.set_limit(max_topics);
    }

    /// The limit given to [`enable_topic_metrics`](Self::enable_topic_metrics) (0: off).
    pub fn topic_metrics_limit(&self) -> usize {
        self.inner.topic_stats.limit()
    }

    /// Counts a publish refused before it reached the bus, e.g. by an adapter that validates
    /// payloads against the schema ([`RefusedReason::Invalid`], [`RefusedReason::UnknownType`]).
    /// The bus counts its own refusals itself.
    pub fn record_refused(&self, reason: crate::metrics::RefusedReason) {
        self.inner.refused.record(reason);
    }
}

/// What the `try_` subscribe functions refuse.
pub(crate) fn check_options(opts: &SubscribeOptions) -> Result<(), SubscribeError> {
    check_capacity(opts.capacity)?;
    if opts.spin > MAX_SPIN {
        return Err(SubscribeError::InvalidSpin {
            requested: opts.spin,
        });
    }
    Ok(())
}

pub(crate) fn check_capacity(capacity: usize) -> Result<(), SubscribeError> {
    if (1..=MAX_QUEUE_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(SubscribeError::InvalidCapacity {
            requested: capacity,
        })
    }
}
