//! JetStream mode (at least once, durable): acked publishes with a stable `Nats-Msg-Id`, and a
//! durable pull consumer per subscribing bus.
//!
//! Publish side: every local message gets an id `<publisher id>-<counter>` once, and keeps it
//! through every retry, so the server's de-duplication (within the stream's duplicate window)
//! turns a resend whose first attempt was stored after all into a duplicate ack. At most
//! `max_in_flight_acks` messages wait for their ack at a time; a forwarder waits for room, so a
//! stalled server back-pressures the local queue instead of growing memory.
//!
//! Subscribe side: one durable consumer (filter `<prefix>.<schema>.>`) pulled in bounded
//! batches while the bus has a local subscriber of a schema type; each message is checked
//! like a core one, published locally, then acked. A message whose stream sequence this
//! process already delivered for that durable (its ack was lost: a server restart, a closed
//! join) is acked and skipped, so local subscribers see it once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::StorageType;
use futures_util::{FutureExt, StreamExt};
use mycelium_transport::{Envelope, RawSubscription};
use parking_lot::Mutex;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::{NatsError, Shared};

/// The header JetStream de-duplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// How long one pull request stays open. `close` finishes the batch in progress rather than
/// abandon it (abandoned messages would come back only after `ack_wait`), so this bounds how
/// long `close` waits on an idle stream.
const PULL_EXPIRES: Duration = Duration::from_millis(500);
/// Retries of a failed publish or pull back off up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Sequences remembered above the contiguous floor before the consumer's ack floor is asked
/// for to prune them (a gap below them, e.g. messages deleted from the stream, stops the
/// floor from advancing by itself).
const PRUNE_ABOVE: usize = 4096;

/// Where a new durable consumer starts. An existing durable resumes where it stopped, whatever
/// this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliverFrom {
    /// Only messages stored after the consumer is created.
    #[default]
    New,
    /// Everything still in the stream.
    All,
    /// From this stream sequence (1 is the first message ever stored).
    Sequence(u64),
    /// From the first message stored at or after this time.
    Time(SystemTime),
}

/// The JetStream mode of a join ([`NatsConfig::with_jetstream`](crate::NatsConfig::with_jetstream)).
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// Stream name (created on connect if missing, subjects `<prefix>.<schema>.>`).
    pub stream: String,
    /// Durable consumer name; `None` for a join that only publishes.
    pub durable: Option<String>,
    /// Where a newly created durable starts.
    pub deliver: DeliverFrom,
    /// Publishes awaiting their ack at most (retries included); default 256.
    pub max_in_flight_acks: usize,
    /// How long a publish waits for its ack before it is retried; default 5 s.
    pub ack_timeout: Duration,
    /// How long the server waits for our ack before it redelivers (set when the durable is
    /// created); default 30 s.
    pub ack_wait: Duration,
    /// Messages asked for per pull request; default 256.
    pub batch: usize,
    /// The stream's de-duplication window (set when the stream is created); default 2 min. A
    /// resend after it is stored again.
    pub duplicate_window: Duration,
    /// Prefix of this join's message ids; default a fresh unique id. A publisher that resends
    /// its messages after its own restart sets a stable one, so the server drops the resends
    /// (within `duplicate_window`). Must differ from every other live join's: a join ignores
    /// stream messages carrying its own id (its own publishes).
    pub publisher_id: Option<String>,
    /// Copies of the stream a cluster keeps (set when the stream is created); default 1. With
    /// 3 on a 3-node cluster, losing one node loses no message.
    pub replicas: usize,
    /// The stream's limits: the oldest messages go once the stream holds more than this many
    /// messages, bytes, or messages older than this. `None` (the default) is no limit, and a
    /// stream without any keeps every message on disk forever. Given ones are applied when the
    /// stream is created, and to an existing stream whose limits differ (an update).
    pub limits: StreamLimits,
}

/// A stream's retention limits ([`JetStreamOptions::limits`]); `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_messages: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration>,
}

impl StreamLimits {
    fn any(&self) -> bool {
        *self != StreamLimits::default()
    }

    /// Writes the given limits into `config` (JetStream's "unlimited" is -1 / zero age).
    fn apply(&self, config: &mut async_nats::jetstream::stream::Config) {
        let count = |n: Option<u64>| n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        config.max_messages = count(self.max_messages);
        config.max_bytes = count(self.max_bytes);
        config.max_age = self.max_age.unwrap_or(Duration::ZERO);
    }

    /// Whether `config` already has exactly these limits (the server stores -1 or 0 for
    /// unlimited).
    fn hold_in(&self, config: &async_nats::jetstream::stream::Config) -> bool {
        let count = |n: i64| u64::try_from(n).ok().filter(|&n| n > 0);
        count(config.max_messages) == self.max_messages
            && count(config.max_bytes) == self.max_bytes
            && Some(config.max_age).filter(|a| !a.is_zero()) == self.max_age
    }
}

impl JetStreamOptions {
    pub fn new(stream: impl Into<String>) -> Self {
        JetStreamOptions {
            stream: stream.into(),
            durable: None,
            deliver: DeliverFrom::New,
            max_in_flight_acks: 256,
            ack_timeout: Duration::from_secs(5),
            ack_wait: Duration::from_secs(30),
            batch: 256,
            duplicate_window: Duration::from_secs(120),
            publisher_id: None,
            replicas: 1,
            limits: StreamLimits::default(),
        }
    }

    /// The stream's limits (see [`JetStreamOptions::limits`]).
    pub fn with_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn with_durable(mut self, durable: impl Into<String>) -> Self {
        self.durable = Some(durable.into());
        self
    }

    pub fn with_deliver(mut self, deliver: DeliverFrom) -> Self {
        self.deliver = deliver;
        self
    }

    pub fn with_max_in_flight_acks(mut self, max: usize) -> Self {
        self.max_in_flight_acks = max;
        self
    }

    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    pub fn with_ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    pub fn with_duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    pub fn with_publisher_id(mut self, id: impl Into<String>) -> Self {
        self.publisher_id = Some(id.into());
        self
    }

    fn validate(&self) -> Result<(), NatsError> {
        let bad_name = |n: &str| {
            n.is_empty()
                || n.chars()
                    .any(|c| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace())
        };
        if bad_name(&self.stream) {
            return Err(NatsError::Config(format!(
                "stream name {:?} is not a valid JetStream name",
                self.stream
            )));
        }
        if let Some(durable) = &self.durable {
            if bad_name(durable) {
                return Err(NatsError::Config(format!(
                    "durable name {durable:?} is not a valid JetStream name"
                )));
            }
        }
        if let Some(id) = &self.publisher_id {
            if id.is_empty() || id.contains(['\r', '\n']) {
                return Err(NatsError::Config(format!(
                    "publisher id {id:?} is not a valid message id prefix"
                )));
            }
        }
        let StreamLimits {
            max_messages,
            max_bytes,
            max_age,
        } = self.limits;
        if max_messages == Some(0) || max_bytes == Some(0) || max_age == Some(Duration::ZERO) {
            return Err(NatsError::Config(
                "stream limits must be positive (leave one out for no limit)".to_string(),
            ));
        }
        if self.max_in_flight_acks == 0 || self.batch == 0 {
            return Err(NatsError::Config(
                "max_in_flight_acks and batch must be at least 1".to_string(),
            ));
        }
        Ok(())
    }
}

/// The JetStream half of a join.
pub(crate) struct JetStream {
    context: async_nats::jetstream::Context,
    publisher_id: String,
    next_id: AtomicU64,
    max_in_flight: usize,
    in_flight: Arc<Semaphore>,
    consumer: Option<PullConsumer>,
    batch: usize,
    delivered: Arc<Mutex<Delivered>>,
    /// Moves on every reconnection: a pull request does not survive its connection.
    reconnections: watch::Receiver<u64>,
    /// Set by `close`: finish the batch in progress, then stop.
    stop: watch::Sender<bool>,
    /// A publish failure is logged once until a publish succeeds again.
    failing: AtomicBool,
}

impl JetStream {
    /// Checks that the server has JetStream, ensures the stream and the durable consumer.
    pub(crate) async fn setup(
        client: &async_nats::Client,
        options: &JetStreamOptions,
        subjects: String,
        shown_url: &str,
        reconnections: watch::Receiver<u64>,
    ) -> Result<JetStream, NatsError> {
        options.validate()?;
        let context = async_nats::jetstream::ContextBuilder::new()
            .timeout(options.ack_timeout)
            .max_ack_inflight(options.max_in_flight_acks)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let unavailable = |reason: String| NatsError::JetStreamNotEnabled {
            url: shown_url.to_string(),
            reason,
        };
        let other = |reason: String| NatsError::JetStream {
            url: shown_url.to_string(),
            reason,
        };
        // Without JetStream nobody answers the API subject; with it disabled for our account
        // the server says so (10039). Either way, say it plainly rather than "no responders".
        // The answer's body is not parsed: async-nats 0.52's `query_account` cannot read
        // nats-server 2.9's account info.
        use async_nats::jetstream::context::RequestErrorKind;
        use async_nats::jetstream::response::Response;
        use async_nats::jetstream::ErrorCode;
        match context
            .request::<_, _, Response<serde::de::IgnoredAny>>("INFO", b"")
            .await
        {
            Ok(Response::Ok(_)) => {}
            Ok(Response::Err { error })
                if error.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT
                    || error.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED =>
            {
                return Err(unavailable(error.to_string()));
            }
            Ok(Response::Err { error }) => return Err(other(format!("account info: {error}"))),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                return Err(unavailable(e.to_string()))
            }
            Err(e) => return Err(other(format!("account info: {e}"))),
        }
        let mut config = async_nats::jetstream::stream::Config {
            name: options.stream.clone(),
            subjects: vec![subjects.clone()],
            storage: StorageType::File,
            duplicate_window: options.duplicate_window,
            num_replicas: options.replicas,
            ..Default::default()
        };
        options.limits.apply(&mut config);
        let mut stream =
            context
                .get_or_create_stream(config)
                .await
                .map_err(|e| match e.kind() {
                    CreateStreamErrorKind::JetStreamUnavailable => unavailable(e.to_string()),
                    _ => other(format!("stream {:?}: {e}", options.stream)),
                })?;
        let existing = stream.cached_info().config.clone();
        if options.limits.any() && !options.limits.hold_in(&existing) {
            // Limits given in the configuration win over the ones a stream was made with: the
            // place to change retention is the config file, not a one-off server command.
            let mut updated = existing;
            options.limits.apply(&mut updated);
            context.update_stream(&updated).await.map_err(|e| {
                other(format!(
                    "stream {:?}: updating its limits: {e}",
                    options.stream
                ))
            })?;
            tracing::info!(stream = %options.stream, limits = ?options.limits, "JetStream stream limits updated");
            stream = context
                .get_stream(&options.stream)
                .await
                .map_err(|e| other(format!("stream {:?}: {e}", options.stream)))?;
        }
        let stream_subjects = &stream.cached_info().config.subjects;
        if !stream_subjects.contains(&subjects) {
            return Err(NatsError::Config(format!(
                "stream {:?} exists with subjects {stream_subjects:?}, not {subjects:?}",
                options.stream
            )));
        }
        let delivered;
        let consumer = match &options.durable {
            None => {
                delivered = Arc::new(Mutex::new(Delivered::default()));
                None
            }
            Some(durable) => {
                let consumer: PullConsumer = stream
                    .get_or_create_consumer(
                        durable,
                        pull::Config {
                            durable_name: Some(durable.clone()),
                            deliver_policy: deliver_policy(options.deliver)?,
                            ack_policy: AckPolicy::Explicit,
                            ack_wait: options.ack_wait,
                            filter_subject: subjects,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| other(format!("consumer {durable:?}: {e}")))?;
                delivered = delivered_for(&options.stream, durable, consumer.cached_info().created);
                let floor = consumer.cached_info().ack_floor.stream_sequence;
                delivered.lock().raise_floor(floor);
                Some(consumer)
            }
        };
        let publisher_id = options
            .publisher_id
            .clone()
            .unwrap_or_else(|| nuid::next().to_string());
        Ok(JetStream {
            context,
            publisher_id,
            next_id: AtomicU64::new(0),
            max_in_flight: options.max_in_flight_acks,
            in_flight: Arc::new(Semaphore::new(options.max_in_flight_acks)),
            consumer,
            batch: options.batch,
            delivered,
            reconnections,
            // `send_replace` stores the flag even before the loop subscribes.
            stop: watch::channel(false).0,
            failing: AtomicBool::new(false),
        })
    }

    /// Waits (up to `limit`) until every message handed to NATS so far is acked.
    pub(crate) async fn wait_for_acks(&self, limit: Duration) -> bool {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        tokio::time::timeout(limit, self.in_flight.acquire_many(all))
            .await
            .is_ok()
    }

    /// Asks the consumer loop to stop after the batch in progress.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn is_own(&self, message: &async_nats::Message) -> bool {
        let Some(id) = message.headers.as_ref().and_then(|h| h.get(MSG_ID_HEADER)) else {
            return false;
        };
        id.as_str()
            .rsplit_once('-')
            .is_some_and(|(prefix, _)| prefix == self.publisher_id)
    }
}

fn deliver_policy(from: DeliverFrom) -> Result<DeliverPolicy, NatsError> {
    Ok(match from {
        DeliverFrom::New => DeliverPolicy::New,
        DeliverFrom::All => DeliverPolicy::All,
        DeliverFrom::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        DeliverFrom::Time(at) => {
            let nanos = match at.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(after) => after.as_nanos() as i128,
                Err(before) => -(before.duration().as_nanos() as i128),
            };
            let start_time = async_nats::datetime::from_nanos(nanos)
                .map_err(|e| NatsError::Config(format!("deliver time {at:?}: {e}")))?;
            DeliverPolicy::ByStartTime { start_time }
        }
    })
}

/// Stream sequences already delivered to the local bus: everything up to `floor`, and the
/// ones in `above`.
#[derive(Debug, Default)]
struct Delivered {
    floor: u64,
    above: BTreeSet<u64>,
}

impl Delivered {
    fn contains(&self, sequence: u64) -> bool {
        sequence <= self.floor || self.above.contains(&sequence)
    }

    fn insert(&mut self, sequence: u64) {
        if sequence <= self.floor {
            return;
        }
        self.above.insert(sequence);
        self.advance();
    }

    /// Everything at or below the consumer's ack floor is acked: it will not come again.
    fn raise_floor(&mut self, floor: u64) {
        if floor > self.floor {
            self.floor = floor;
            self.above = self.above.split_off(&(floor + 1));
        }
        self.advance();
    }

    fn advance(&mut self) {
        while self.above.first() == Some(&(self.floor + 1)) {
            self.above.pop_first();
            self.floor += 1;
        }
    }
}

/// What this process delivered per consumer, shared by its joins with that durable: a join
/// closed and made again resumes without repeating what the first one delivered but whose ack
/// the server never got. A consumer is (stream, durable name, creation time): the same
/// names on another server, or a consumer deleted and made again, start over.
type ConsumerKey = (String, String, async_nats::datetime::DateTime);
static DELIVERED: LazyLock<Mutex<HashMap<ConsumerKey, Arc<Mutex<Delivered>>>>> =
    LazyLock::new(Default::default);

fn delivered_for(
    stream: &str,
    durable: &str,
    created: async_nats::datetime::DateTime,
) -> Arc<Mutex<Delivered>> {
    let key = (stream.to_string(), durable.to_string(), created);
    Arc::clone(DELIVERED.lock().entry(key).or_default())
}

/// A forwarder in JetStream mode: each local message is published with its id; its ack is
/// awaited (and the publish retried until acked) beside the loop, at most
/// `max_in_flight_acks` at a time over the join.
pub(crate) async fn forward(
    shared: Arc<Shared>,
    sub: RawSubscription,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut acks = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = acks.join_next(), if !acks.is_empty() => {}
            envelope = sub.recv() => match envelope {
                Some(envelope) => {
                    if !publish_one(&shared, envelope, &mut acks).await {
                        return;
                    }
                }
                None => break,
            },
            // Closing (only ever set to true, or the sender dropped): what local publishers
            // already handed over still goes, then its acks are awaited (bounded by `close`).
            _ = stopping.changed() => {
                while let Ok(envelope) = sub.try_recv() {
                    if !publish_one(&shared, envelope, &mut acks).await {
                        return;
                    }
                }
                break;
            }
        }
    }
    while acks.join_next().await.is_some() {}
}

/// Publishes one local message and queues the wait for its ack; false once the join is
/// shutting down (the in-flight semaphore closed).
async fn publish_one(shared: &Arc<Shared>, envelope: Envelope, acks: &mut JoinSet<()>) -> bool {
    let Some(outgoing) = Outgoing::new(shared, envelope) else {
        return true;
    };
    let js = shared.js.as_ref().expect("JetStream mode");
    let Ok(permit) = Arc::clone(&js.in_flight).acquire_owned().await else {
        return false;
    };
    let first = outgoing.publish(js).await;
    let shared = Arc::clone(shared);
    acks.spawn(async move {
        outgoing.confirm(&shared, first).await;
        drop(permit);
    });
    true
}

/// One local message on its way to the stream.
struct Outgoing {
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
}

type AckFuture = Result<async_nats::jetstream::context::PublishAckFuture, PublishError>;
type PublishError = async_nats::jetstream::context::PublishError;

impl Outgoing {
    /// `None` for what core mode would not send either (our own echo, an unknown type, too
    /// large; counted there).
    fn new(shared: &Shared, envelope: Envelope) -> Option<Outgoing> {
        let subject = shared.outgoing(&envelope)?;
        let js = shared.js.as_ref()?;
        let n = js.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut headers = shared.schema_headers(envelope.type_id);
        headers.insert(MSG_ID_HEADER, format!("{}-{n}", js.publisher_id).as_str());
        Some(Outgoing {
            subject: subject.to_string(),
            headers,
            payload: envelope.payload,
        })
    }

    async fn publish(&self, js: &JetStream) -> AckFuture {
        js.context
            .send_publish(
                self.subject.clone(),
                PublishMessage::build()
                    .payload(self.payload.clone())
                    .headers(self.headers.clone()),
            )
            .await
    }

    /// Awaits the ack, re-publishing with the same id until one comes. A message the server
    /// can never take (too large with its headers) is counted and dropped.
    async fn confirm(&self, shared: &Shared, mut attempt: AckFuture) {
        let js = shared.js.as_ref().expect("JetStream mode");
        let mut backoff = Duration::from_millis(10);
        let mut sent = false;
        loop {
            let result = match attempt {
                Ok(ack) => {
                    if !sent {
                        sent = true;
                        shared.stats.sent.inc();
                    }
                    ack.await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(ack) => {
                    shared.stats.js_acked.inc();
                    if ack.duplicate {
                        shared.stats.js_ack_duplicates.inc();
                    }
                    if js.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(subject = %self.subject, "JetStream publishes acked again");
                    }
                    return;
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    shared.stats.too_large.inc();
                    tracing::warn!(error = %e, subject = %self.subject, "message not sent to JetStream (counted in too_large)");
                    return;
                }
                Err(e) => {
                    shared.stats.js_publish_failed.inc();
                    if !js.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            error = %e,
                            subject = %self.subject,
                            "JetStream publish not acked; retrying with the same message id (logged once until one succeeds; counted in js_publish_failed)"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt = self.publish(js).await;
                }
            }
        }
    }
}

impl JetStream {
    /// Whether this join consumes (has a durable consumer) or only publishes.
    pub(crate) fn consumes(&self) -> bool {
        self.consumer.is_some()
    }
}

/// The durable consumer's loop: pulls while the bus has a local subscriber of a schema type
/// (other than our forwarders), until `close`.
pub(crate) async fn consume(shared: Arc<Shared>, forwarders: Arc<HashSet<u64>>) {
    let Some(js) = shared.js.as_ref() else {
        return;
    };
    let Some(consumer) = js.consumer.clone() else {
        return;
    };
    let mut stop = js.stop.subscribe();
    let mut changes = shared.bus.watch_subscriptions();
    let mut reconnections = js.reconnections.clone();
    let mut backoff = Duration::from_millis(10);
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        changes.borrow_and_update();
        let wanted = shared.types.keys().any(|&type_id| {
            shared
                .bus
                .subscriber_ids(type_id)
                .iter()
                .any(|id| !forwarders.contains(id))
        });
        shared.stats.subscribed.set(u64::from(wanted));
        if !wanted {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { break },
                _ = stop.changed() => {}
            }
            continue;
        }
        reconnections.borrow_and_update();
        let batch = consumer
            .batch()
            .max_messages(js.batch)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::debug!(error = %e, "JetStream pull request failed; retrying");
                pause(&mut stop, &mut backoff).await;
                continue;
            }
        };
        let mut failed = false;
        loop {
            tokio::select! {
                next = batch.next() => match next {
                    Some(Ok(message)) => handle(&shared, js, message).await,
                    Some(Err(e)) => {
                        // E.g. 503 while the server's JetStream is still starting.
                        tracing::debug!(error = %e, "JetStream pull ended with an error; retrying");
                        failed = true;
                        break;
                    }
                    None => break,
                },
                _ = reconnections.changed() => {
                    // The pull request died with the old connection: take what arrived on
                    // it and ask again rather than wait for the request to time out.
                    while let Some(Some(Ok(message))) = batch.next().now_or_never() {
                        handle(&shared, js, message).await;
                    }
                    break;
                }
            }
        }
        if failed {
            pause(&mut stop, &mut backoff).await;
        } else {
            backoff = Duration::from_millis(10);
        }
        if js.delivered.lock().above.len() > PRUNE_ABOVE {
            if let Ok(info) = consumer.get_info().await {
                js.delivered
                    .lock()
                    .raise_floor(info.ack_floor.stream_sequence);
            }
        }
    }
    shared.stats.subscribed.set(0);
}

/// Waits `backoff` (or until stopped) and doubles it.
async fn pause(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

async fn handle(shared: &Shared, js: &JetStream, message: async_nats::jetstream::Message) {
    let (sequence, redelivered) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered > 1),
        Err(e) => {
            tracing::warn!(error = %e, "JetStream message without delivery info; ignored");
            return;
        }
    };
    if redelivered {
        shared.stats.js_redelivered.inc();
    }
    if js.is_own(&message.message) {
        js.delivered.lock().insert(sequence);
    } else if js.delivered.lock().contains(sequence) {
        shared.stats.js_skipped_duplicates.inc();
    } else {
        // Routes by subject (type and topic); an unknown subject is refused and counted.
        shared.receive(&message.message).await;
        js.delivered.lock().insert(sequence);
    }
    // Lost acks are harmless: the redelivery is skipped above.
    let _ = message.ack().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_keeps_a_floor_and_the_sequences_above_a_gap() {
        let mut d = Delivered::default();
        for s in [1, 2, 4, 5] {
            d.insert(s);
        }
        assert_eq!(d.floor, 2, "3 is missing");
        assert!(d.contains(1) && d.contains(4) && !d.contains(3) && !d.contains(6));
        d.insert(3);
        assert_eq!((d.floor, d.above.len()), (5, 0));
        d.insert(9);
        // The server's ack floor covers the gap (6..8 deleted from the stream, say).
        d.raise_floor(8);
        assert_eq!((d.floor, d.above.len()), (9, 0));
        d.raise_floor(4);
        assert_eq!(d.floor, 9, "a stale ack floor does not lower ours");
        d.insert(7);
        assert_eq!((d.floor, d.above.len()), (9, 0));
    }

    #[test]
    fn options_refuse_names_jetstream_would_refuse() {
        assert!(JetStreamOptions::new("TICKS").validate().is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            assert!(JetStreamOptions::new(bad).validate().is_err(), "{bad:?}");
            assert!(JetStreamOptions::new("S")
                .with_durable(bad)
                .validate()
                .is_err());
        }
        assert!(JetStreamOptions::new("S")
            .with_max_in_flight_acks(0)
            .validate()
            .is_err());
    }
}
