//! Publishing: routing one payload to the subscribers of its type under their overflow
//! policies.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use mycelium_protocol::Message;

use crate::bus::{BusInner, MessageBus};
use crate::envelope::Envelope;
use crate::error::PublishError;
use crate::keys::TopicName;
use crate::subscriber::{Offer, Sent, SubscriberShared};

/// Called by a blocking publish around its waits for room in full
/// [`Block`](crate::OverflowPolicy::Block) queues; see
/// [`MessageBus::publish_raw_with_hooks`].
pub trait WaitHooks {
    /// Right before this thread first waits.
    fn before_wait(&mut self);
    /// After its last wait, before the publish returns.
    fn after_wait(&mut self);
    /// Asked about every 100 ms while the publish waits (between `before_wait` and
    /// `after_wait`). Answering false gives up: every full `Block` subscriber the publish was
    /// still waiting for counts the message as dropped, and the publish returns
    /// [`PublishError::Interrupted`] (a pending Ctrl-C, for an adapter of a language runtime).
    /// The default never gives up.
    fn keep_waiting(&mut self) -> bool {
        true
    }
    /// False (the default) when [`keep_waiting`](Self::keep_waiting) need not be asked, so the
    /// wait needs no timer.
    fn may_give_up(&self) -> bool {
        false
    }
}

/// A full [`Block`](crate::OverflowPolicy::Block) subscriber a publish must wait for, with its
/// copy of the envelope.
type Waiting = Vec<(Arc<SubscriberShared>, Envelope)>;

/// Collects per-subscriber outcomes of one publish into its result.
#[derive(Default)]
struct Outcome {
    first_full: Option<PublishError>,
    lost_while_waiting: bool,
    /// Subscribers abandoned because the wait hook gave up.
    abandoned: usize,
}

impl Outcome {
    fn note_rejected(&mut self, subscriber: &SubscriberShared) {
        if self.first_full.is_none() {
            self.first_full = Some(PublishError::QueueFull {
                subscriber: subscriber.id,
                label: subscriber.label.clone(),
            });
        }
    }

    fn finish(self, bus: &BusInner) -> Result<(), PublishError> {
        // A publisher released because the bus closed under it learns that the bus is closed;
        // one released because that subscriber left has nothing to report.
        if self.lost_while_waiting && bus.closed.load(Ordering::Acquire) {
            return Err(PublishError::Closed);
        }
        if self.abandoned > 0 {
            return Err(PublishError::Interrupted {
                abandoned: self.abandoned,
            });
        }
        match self.first_full {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl MessageBus {
    /// Checks a publish against the bus's state and limits and stamps its envelope.
    fn prepare(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
        topic: Option<TopicName>,
    ) -> Result<Envelope, PublishError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PublishError::Closed);
        }
        let max = self.inner.config.max_payload;
        let len = payload.len();
        if len > max {
            return Err(PublishError::TooLarge { len, max });
        }
        let mut envelope = Envelope::from_origin(origin, type_id, payload);
        envelope.topic = topic;
        Ok(envelope)
    }

    /// Offers `envelope` to every subscriber it routes to, without waiting; returns the full
    /// `Block` subscribers the caller must wait for.
    fn offer_routed(
        &self,
        envelope: &Envelope,
        name: Option<&'static str>,
        outcome: &mut Outcome,
    ) -> Waiting {
        self.with_topic(envelope.type_id, |topic| {
            if let Some(name) = name {
                topic.learn_name(name);
            }
            topic.with_route(envelope.topic.as_ref(), |subscribers| {
                // Counted once the subscriber list is held, so an observer that sees the count
                // knows which subscribers this publish routes to (tests rely on this to avoid
                // sleeps): a subscribe waits for the list's write lock.
                topic.stats.published.fetch_add(1, Ordering::Relaxed);
                topic
                    .stats
                    .published_bytes
                    .fetch_add(envelope.payload.len() as u64, Ordering::Relaxed);
                if let Some(name) = &envelope.topic {
                    self.inner
                        .topic_stats
                        .record(envelope.type_id, name, envelope.payload.len());
                }
                offer_all(subscribers, envelope, outcome)
            })
        })
    }

    /// Publishes a raw payload under `type_id`.
    ///
    /// Every subscriber that has room gets the message first; then this thread waits for each
    /// full [`Block`](crate::OverflowPolicy::Block) subscriber in turn. Call it from plain
    /// threads (FFI callers); inside async code use
    /// [`publish_raw_async`](Self::publish_raw_async), or a full queue blocks the worker.
    ///
    /// A `QueueFull` error still means every other subscriber got the message.
    pub fn publish_raw(&self, type_id: u16, payload: Bytes) -> Result<(), PublishError> {
        self.publish_blocking(Envelope::LOCAL_ORIGIN, type_id, payload, None, None)
    }

    /// Like [`publish_raw`](Self::publish_raw), calling `hooks.before_wait()` right before the
    /// publish first waits for room in a full [`Block`](crate::OverflowPolicy::Block) queue and
    /// `hooks.after_wait()` after its last wait; neither when it does not wait.
    ///
    /// For adapters that hold a lock of their own while publishing (CPython's GIL, the OCaml
    /// runtime lock): they keep it on the fast path, which never waits, and give it up only
    /// when the publish must wait for a consumer that may need that lock to make room.
    /// Releasing it around every publish instead costs a lock hand-off per message.
    pub fn publish_raw_with_hooks(
        &self,
        type_id: u16,
        payload: Bytes,
        hooks: &mut dyn WaitHooks,
    ) -> Result<(), PublishError> {
        self.publish_blocking(Envelope::LOCAL_ORIGIN, type_id, payload, None, Some(hooks))
    }

    /// Like [`publish_raw`](Self::publish_raw), but every subscriber's [`Envelope::origin`] is
    /// `origin` instead of [`Envelope::LOCAL_ORIGIN`]. For transports that republish messages
    /// received from elsewhere: a socket bridge passes its connection's id so that the
    /// subscription forwarding to that same connection can skip the message (no echo).
    /// Delivery, policies and metrics are exactly those of `publish_raw`.
    pub fn publish_raw_from(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        self.publish_blocking(origin, type_id, payload, None, None)
    }

    /// Counts a refused publish by reason on its way out.
    fn counted(&self, result: Result<(), PublishError>) -> Result<(), PublishError> {
        if let Err(e) = &result {
            self.record_refused(crate::metrics::RefusedReason::of(e));
        }
        result
    }

    fn publish_blocking(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
        name: Option<&'static str>,
        hooks: Option<&mut dyn WaitHooks>,
    ) -> Result<(), PublishError> {
        let result = self.publish_blocking_uncounted(origin, type_id, payload, name, None, hooks);
        self.counted(result)
    }

    fn publish_blocking_uncounted(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
        name: Option<&'static str>,
        topic: Option<TopicName>,
        mut hooks: Option<&mut dyn WaitHooks>,
    ) -> Result<(), PublishError> {
        let envelope = self.prepare(origin, type_id, payload, topic)?;
        let mut outcome = Outcome::default();
        let waiting = self.offer_routed(&envelope, name, &mut outcome);
        if waiting.is_empty() {
            return outcome.finish(&self.inner);
        }
        if let Some(hooks) = hooks.as_deref_mut() {
            hooks.before_wait();
        }
        let may_give_up = hooks.as_deref().is_some_and(|h| h.may_give_up());
        for (subscriber, envelope) in waiting {
            if outcome.abandoned > 0 {
                // Given up: the rest are not waited for either, each counting its drop.
                subscriber.count_drop();
                outcome.abandoned += 1;
                continue;
            }
            let sent = match hooks.as_deref_mut() {
                Some(hooks) if may_give_up => {
                    let mut ask = || hooks.keep_waiting();
                    subscriber.send_blocking(envelope, Some(&mut ask))
                }
                _ => subscriber.send_blocking(envelope, None),
            };
            match sent {
                Sent::Queued => {}
                Sent::Closed => outcome.lost_while_waiting = true,
                Sent::GaveUp => outcome.abandoned += 1,
            }
        }
        if let Some(hooks) = hooks {
            hooks.after_wait();
        }
        outcome.finish(&self.inner)
    }

    /// Async form of [`publish_raw`](Self::publish_raw): awaits room in full
    /// [`Block`](crate::OverflowPolicy::Block) queues instead of blocking the thread.
    pub async fn publish_raw_async(
        &self,
        type_id: u16,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        self.publish_awaiting(Envelope::LOCAL_ORIGIN, type_id, payload, None)
            .await
    }

    /// Async form of [`publish_raw_from`](Self::publish_raw_from).
    pub async fn publish_raw_from_async(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        self.publish_awaiting(origin, type_id, payload, None).await
    }

    async fn publish_awaiting(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
        name: Option<&'static str>,
    ) -> Result<(), PublishError> {
        let result = self
            .publish_awaiting_uncounted(origin, type_id, payload, name, None)
            .await;
        self.counted(result)
    }

    async fn publish_awaiting_uncounted(
        &self,
        origin: u64,
        type_id: u16,
        payload: Bytes,
        name: Option<&'static str>,
        topic: Option<TopicName>,
    ) -> Result<(), PublishError> {
        let envelope = self.prepare(origin, type_id, payload, topic)?;
        let mut outcome = Outcome::default();
        let waiting = self.offer_routed(&envelope, name, &mut outcome);
        for (subscriber, envelope) in waiting {
            if !subscriber.send(envelope).await {
                outcome.lost_while_waiting = true;
            }
        }
        outcome.finish(&self.inner)
    }

    fn encode<T: Message>(msg: &T) -> Result<Bytes, PublishError> {
        let mut buf = Vec::new();
        msg.encode_payload(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Encodes and publishes a typed message (see [`publish_raw`](Self::publish_raw)).
    pub fn publish<T: Message>(&self, msg: &T) -> Result<(), PublishError> {
        if self.is_closed() {
            return self.counted(Err(PublishError::Closed));
        }
        let payload = match Self::encode(msg) {
            Ok(payload) => payload,
            Err(e) => return self.counted(Err(e)),
        };
        self.publish_blocking(
            Envelope::LOCAL_ORIGIN,
            T::TYPE_ID,
            payload,
            Some(T::NAME),
            None,
        )
    }

    /// Encodes and publishes a typed message (see [`publish_raw_async`](Self::publish_raw_async)).
    pub async fn publish_async<T: Message>(&self, msg: &T) -> Result<(), PublishError> {
        if self.is_closed() {
            return self.counted(Err(PublishError::Closed));
        }
        let payload = match Self::encode(msg) {
            Ok(payload) => payload,
            Err(e) => return self.counted(Err(e)),
        };
        self.publish_awaiting(Envelope::LOCAL_ORIGIN, T::TYPE_ID, payload, Some(T::NAME))
            .await
    }
}

// Publishing with a topic (docs/topics.md): subscribers without a pattern get the message as
// ever; those with a pattern get it when their pattern matches the topic.
impl MessageBus {
    /// Encodes and publishes a typed message under `topic` (see
    /// [`publish_raw_on`](Self::publish_raw_on)).
    pub fn publish_on<T: Message>(&self, topic: &TopicName, msg: &T) -> Result<(), PublishError> {
        if self.is_closed() {
            return self.counted(Err(PublishError::Closed));
        }
        let payload = match Self::encode(msg) {
            Ok(payload) => payload,
            Err(e) => return self.counted(Err(e)),
        };
        let result = self.publish_blocking_uncounted(
            Envelope::LOCAL_ORIGIN,
            T::TYPE_ID,
            payload,
            Some(T::NAME),
            Some(topic.clone()),
            None,
        );
        self.counted(result)
    }

    /// Publishes a raw payload of `type_id` under `topic`: every subscriber of the type without
    /// a pattern gets it, and every subscriber whose pattern matches `topic`. Otherwise as
    /// [`publish_raw`](Self::publish_raw); each receiver sees the topic in [`Envelope::topic`].
    pub fn publish_raw_on(
        &self,
        type_id: u16,
        topic: &TopicName,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        let result = self.publish_blocking_uncounted(
            Envelope::LOCAL_ORIGIN,
            type_id,
            payload,
            None,
            Some(topic.clone()),
            None,
        );
        self.counted(result)
    }

    /// [`publish_raw_on`](Self::publish_raw_on) with hooks around waits for room (see
    /// [`publish_raw_with_hooks`](Self::publish_raw_with_hooks)).
    pub fn publish_raw_on_with_hooks(
        &self,
        type_id: u16,
        topic: &TopicName,
        payload: Bytes,
        hooks: &mut dyn WaitHooks,
    ) -> Result<(), PublishError> {
        let result = self.publish_blocking_uncounted(
            Envelope::LOCAL_ORIGIN,
            type_id,
            payload,
            None,
            Some(topic.clone()),
            Some(hooks),
        );
        self.counted(result)
    }

    /// Async form of [`publish_raw_on`](Self::publish_raw_on), on behalf of `origin` (see
    /// [`publish_raw_from`](Self::publish_raw_from)); `topic` `None` is a plain publish. For
    /// transports that republish what they received, topic included.
    pub async fn publish_raw_on_from_async(
        &self,
        origin: u64,
        type_id: u16,
        topic: Option<TopicName>,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        let result = self
            .publish_awaiting_uncounted(origin, type_id, payload, None, topic)
            .await;
        self.counted(result)
    }
}

/// The first pass of every publish, shared by the blocking and the async paths: offers the
/// envelope to each subscriber without waiting and returns the full `Block` subscribers the
/// caller must wait on (allocates only when there are some).
fn offer_all(
    subscribers: &[Arc<SubscriberShared>],
    envelope: &Envelope,
    outcome: &mut Outcome,
) -> Waiting {
    let mut waiting = Vec::new();
    for subscriber in subscribers {
        match subscriber.offer(envelope.clone()) {
            Offer::Queued | Offer::Dropped => {}
            Offer::MustWait(envelope) => waiting.push((Arc::clone(subscriber), envelope)),
            Offer::Rejected => outcome.note_rejected(subscriber),
        }
    }
    waiting
}
