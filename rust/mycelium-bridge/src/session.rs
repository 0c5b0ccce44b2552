//! One established connection: reading frames into the local bus, forwarding the types the
//! peer subscribed to, and telling the peer which types this side wants.
//!
//! Tasks of a session:
//! - the **reader** (the session's own future) reads frames with the idle timeout, validates
//!   every message with the schema's `Validator` and publishes it tagged with the session's
//!   origin, and applies the peer's subscribe/unsubscribe frames;
//! - one **forwarder** per type the peer subscribed to: a bus subscription with the
//!   configured capacity and overflow policy (the per-connection bounded buffer), skipping
//!   envelopes tagged with this session's origin so nothing is echoed back;
//! - the **interest** task: on every change of the bus's subscriptions it computes which
//!   schema types have a subscriber other than this session's own forwarders and sends the
//!   difference as subscribe/unsubscribe frames;
//! - the **writer**: the only task touching the socket's sending half; it batches frames,
//!   flushes when idle, sends pings, and applies the write timeout.
//!
//! Request/reply (protocol 2): the interest task also announces the services that have a
//! responder on this side other than this session's own proxies (serve/unserve frames). For
//! each service the peer announces, a **proxy** responder registered on the local bus (with
//! the session's origin) forwards the requests it gets as request frames, keeping each
//! [`IncomingRequest`] under a correlation id until the reply frame comes back. A request frame
//! from the peer becomes a local request made on the peer's behalf (skipping the proxies for
//! that same peer, so nothing loops), answered by a reply frame. When the session ends, the
//! proxies stop and every request still waiting for the peer fails at once
//! (`ResponderFailed`), so a requester never waits for a responder that disconnected.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mycelium_protocol::{DecodeError, Schema, Validator};
use mycelium_transport::{
    IncomingRequest, MessageBus, PublishError, RawResponder, RawSubscription, RequestError,
    ServeOptions, Stopper, SubscribeOptions, TopicName,
};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::config::Limits;
use crate::control::{is_control, Control, ReplyOutcome, NO_TIMEOUT, TOPIC};
use crate::framing::{FrameError, FrameReader, FrameWriter};
use crate::handle::raised;
use crate::stats::{bump, Stats};

/// Frames waiting for the writer. Small: the real buffering is the per-type subscription
/// queues, where the overflow policy applies.
const OUTBOUND_QUEUE: usize = 256;

/// Origins tag envelopes a session publishes; unique in the process, never 0 (local).
static NEXT_ORIGIN: AtomicU64 = AtomicU64::new(1);

/// What every session of one bridge shares.
pub(crate) struct Shared {
    pub bus: MessageBus,
    pub validator: Validator,
    pub schema_types: Vec<u16>,
    /// With `max_frame` already capped by the bus's `max_payload`.
    pub limits: Limits,
    pub stats: Arc<Stats>,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn new(
        bus: &MessageBus,
        schema: &Schema,
        mut limits: Limits,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Shared> {
        limits.max_frame = limits.max_frame.min(bus.config().max_payload);
        let validator = Validator::new(schema);
        for message in &schema.messages {
            if bus.type_name(message.type_id).is_none() {
                bus.set_type_name(message.type_id, message.name.clone());
            }
        }
        Arc::new(Shared {
            bus: bus.clone(),
            schema_types: validator.type_ids().collect(),
            validator,
            limits,
            stats: Arc::new(Stats::default()),
            shutdown,
        })
    }

    fn message_name(&self, type_id: u16) -> &str {
        self.validator.message_name(type_id).unwrap_or("?")
    }
}

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    Shutdown,
    BusClosed,
    PeerClosed,
    PeerBye(String),
    IdleTimeout(Duration),
    WriteTimeout(Duration),
    WriteFailed(io::Error),
    Frame(FrameError),
    Malformed { message: String, error: DecodeError },
    Protocol(String),
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Shutdown => write!(f, "closed by this side"),
            SessionEnd::BusClosed => write!(f, "the local bus was closed"),
            SessionEnd::PeerClosed => write!(f, "the peer closed the connection"),
            SessionEnd::PeerBye(reason) => write!(f, "the peer closed the connection: {reason}"),
            SessionEnd::IdleTimeout(t) => write!(
                f,
                "no complete frame from the peer for {t:?} (idle timeout): it is dead, stalled \
                 or sending too slowly"
            ),
            SessionEnd::WriteTimeout(t) => write!(
                f,
                "the peer took no data for {t:?} (write timeout): it is not reading"
            ),
            SessionEnd::WriteFailed(e) => write!(f, "sending to the peer failed: {e}"),
            SessionEnd::Frame(e) => write!(f, "{e}"),
            SessionEnd::Malformed { message, error } => {
                write!(f, "malformed {message} payload from the peer: {error}")
            }
            SessionEnd::Protocol(text) => write!(f, "protocol error: {text}"),
        }
    }
}

impl SessionEnd {
    /// Whether this side chose to end: queued messages are still sent.
    fn is_graceful(&self) -> bool {
        matches!(self, SessionEnd::Shutdown | SessionEnd::BusClosed)
    }

    /// Whether the end deserves a warning rather than an info line.
    pub(crate) fn is_fault(&self) -> bool {
        !matches!(
            self,
            SessionEnd::Shutdown | SessionEnd::BusClosed | SessionEnd::PeerBye(_)
        )
    }

    /// The reason to send the peer in a bye frame, when the connection can still carry one.
    fn bye(&self) -> Option<String> {
        match self {
            SessionEnd::Shutdown => Some("shutting down".into()),
            SessionEnd::BusClosed => Some("its bus was closed".into()),
            SessionEnd::IdleTimeout(_)
            | SessionEnd::Malformed { .. }
            | SessionEnd::Protocol(_)
            | SessionEnd::Frame(FrameError::TooLarge { .. }) => Some(self.to_string()),
            _ => None,
        }
    }
}

enum Outbound {
    Message {
        type_id: u16,
        payload: Bytes,
        /// Sent as a topic frame right before the message (protocol 3).
        topic: Option<TopicName>,
    },
    Control(Control),
}

/// The type ids this side asked the peer for: a bitmap, so the reader checks each inbound
/// message without a lock.
struct TypeSet(Box<[AtomicU64]>);

impl TypeSet {
    fn new() -> TypeSet {
        TypeSet((0..1024).map(|_| AtomicU64::new(0)).collect())
    }

    fn slot(&self, id: u16) -> (&AtomicU64, u64) {
        (&self.0[usize::from(id / 64)], 1 << (id % 64))
    }

    fn insert(&self, id: u16) {
        let (word, bit) = self.slot(id);
        word.fetch_or(bit, Ordering::Release);
    }

    fn remove(&self, id: u16) {
        let (word, bit) = self.slot(id);
        word.fetch_and(!bit, Ordering::Release);
    }

    fn contains(&self, id: u16) -> bool {
        let (word, bit) = self.slot(id);
        word.load(Ordering::Acquire) & bit != 0
    }
}

struct Forwarder {
    sub: Arc<RawSubscription>,
    task: JoinHandle<()>,
}

/// Forwarders by type id. The interest task reads it under the same lock the reader holds
/// while subscribing, so it never mistakes a forwarder being created for a local subscriber.
type Forwarders = Arc<Mutex<HashMap<u16, Forwarder>>>;

struct Session {
    shared: Arc<Shared>,
    origin: u64,
    peer: String,
    tx: mpsc::Sender<Outbound>,
    forwarders: Forwarders,
    requested: Arc<TypeSet>,
    draining: watch::Sender<bool>,
    /// Proxy responders for the services the peer announced.
    proxies: Mutex<HashMap<(u16, u16), Proxy>>,
    /// Requests forwarded to the peer, by this side's correlation id.
    forwarded: Forwarded,
    /// Raised at teardown: requests made on the peer's behalf stop waiting.
    ended: watch::Sender<bool>,
}

/// Requests waiting for the peer's reply frame, by correlation id, and the next id.
#[derive(Default)]
struct ForwardedRequests {
    next: u64,
    waiting: HashMap<u64, IncomingRequest>,
}

type Forwarded = Arc<Mutex<ForwardedRequests>>;

struct Proxy {
    stopper: Stopper,
    task: JoinHandle<()>,
}

/// Runs an established session until it ends, and records and logs why.
pub(crate) async fn run<R, W>(
    shared: Arc<Shared>,
    mut reader: FrameReader<R>,
    writer: FrameWriter<W>,
    peer: String,
) -> SessionEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    shared.stats.session_started();
    tracing::info!(peer = %peer, "bridge session established");
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let session = Session {
        origin: NEXT_ORIGIN.fetch_add(1, Ordering::Relaxed),
        peer,
        tx,
        forwarders: Arc::new(Mutex::new(HashMap::new())),
        requested: Arc::new(TypeSet::new()),
        draining: watch::Sender::new(false),
        proxies: Mutex::new(HashMap::new()),
        forwarded: Arc::new(Mutex::new(ForwardedRequests::default())),
        ended: watch::Sender::new(false),
        shared,
    };
    let shared = &session.shared;
    let mut writer_task = tokio::spawn(write_loop(
        writer,
        rx,
        shared.limits.clone(),
        Arc::clone(&shared.stats),
    ));
    let mut interest_task = tokio::spawn(interest_loop(
        Arc::clone(shared),
        Arc::clone(&session.forwarders),
        Arc::clone(&session.requested),
        session.tx.clone(),
        session.origin,
    ));
    let mut shutdown = shared.shutdown.clone();
    let mut writer_done = false;
    let end = tokio::select! {
        end = read_loop(&session, &mut reader) => end,
        result = &mut writer_task => {
            writer_done = true;
            writer_end(result)
        }
        result = &mut interest_task => match result {
            Ok(InterestEnd::BusClosed) => SessionEnd::BusClosed,
            // The writer is gone; its own result says why.
            _ => {
                writer_done = true;
                writer_end((&mut writer_task).await)
            }
        },
        _ = raised(&mut shutdown) => SessionEnd::Shutdown,
    };
    interest_task.abort();
    let stats = Arc::clone(&session.shared.stats);
    let peer = session.peer.clone();
    session.teardown(&end, writer_task, writer_done).await;
    if end.is_fault() {
        tracing::warn!(peer = %peer, reason = %end, "bridge session closed");
    } else {
        tracing::info!(peer = %peer, reason = %end, "bridge session closed");
    }
    stats.session_ended(peer, end.to_string());
    end
}

fn writer_end(result: Result<Result<(), SessionEnd>, tokio::task::JoinError>) -> SessionEnd {
    match result {
        Ok(Err(end)) => end,
        Ok(Ok(())) => SessionEnd::Protocol("the writer stopped unexpectedly".into()),
        Err(e) => SessionEnd::Protocol(format!("the writer task failed: {e}")),
    }
}

impl Session {
    async fn teardown(
        self,
        end: &SessionEnd,
        mut writer_task: JoinHandle<Result<(), SessionEnd>>,
        writer_done: bool,
    ) {
        let write_timeout = self.shared.limits.write_timeout;
        // Request/reply first: local requesters waiting on the peer learn at once that it is
        // gone (their requests fail), and requests made for the peer stop waiting.
        self.ended.send_replace(true);
        let proxies: Vec<Proxy> = self.proxies.lock().drain().map(|(_, p)| p).collect();
        for Proxy { stopper, task } in proxies {
            stopper.stop();
            task.abort();
        }
        let waiting: Vec<IncomingRequest> = {
            let mut forwarded = self.forwarded.lock();
            forwarded.waiting.drain().map(|(_, r)| r).collect()
        };
        for request in waiting {
            request.fail(format!(
                "the bridge connection to the responder's side ({}) closed before it replied: \
                 {end}",
                self.peer
            ));
        }
        let forwarders: Vec<Forwarder> = self.forwarders.lock().drain().map(|(_, f)| f).collect();
        if end.is_graceful() && !writer_done {
            // Forwarders pass on what is already queued, then stop.
            self.draining.send_replace(true);
            // One deadline for all of them: they drain concurrently into the same writer.
            let deadline = tokio::time::Instant::now() + write_timeout;
            for forwarder in forwarders {
                let Forwarder { sub, mut task } = forwarder;
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    task.abort();
                }
                sub.close();
            }
        } else {
            // At most once: whatever is still queued for this peer is dropped (and counted as
            // dropped by the bus), never replayed on a later connection.
            for Forwarder { sub, task } in forwarders {
                sub.close();
                task.abort();
            }
        }
        if writer_done {
            return;
        }
        if let Some(reason) = end.bye() {
            let bye = Outbound::Control(Control::Bye(reason));
            let _ = timeout(write_timeout, self.tx.send(bye)).await;
        }
        // The writer ends once every sender is gone: it flushes and closes its half.
        drop(self.tx);
        if timeout(write_timeout, &mut writer_task).await.is_err() {
            writer_task.abort();
        }
    }

    fn start_forwarder(&self, type_id: u16) {
        let mut forwarders = self.forwarders.lock();
        if forwarders.contains_key(&type_id) {
            return;
        }
        let limits = &self.shared.limits;
        let options = SubscribeOptions::new(limits.queue_capacity, limits.overflow)
            .with_label(format!("bridge:{}", self.peer));
        let sub = Arc::new(self.shared.bus.subscribe_raw(type_id, options));
        let task = tokio::spawn(forward(
            Arc::clone(&sub),
            self.origin,
            self.tx.clone(),
            self.draining.subscribe(),
        ));
        forwarders.insert(type_id, Forwarder { sub, task });
    }

    fn stop_forwarder(&self, type_id: u16) {
        if let Some(Forwarder { sub, task: _ }) = self.forwarders.lock().remove(&type_id) {
            // Closing ends the forwarder's `recv`, so its task finishes by itself.
            sub.close();
        }
    }

    fn start_proxy(&self, service: (u16, u16)) {
        let mut proxies = self.proxies.lock();
        if proxies.contains_key(&service) {
            return;
        }
        let options = ServeOptions::default()
            .with_origin(self.origin)
            .with_label(format!("bridge:{}", self.peer));
        let responder = self.shared.bus.serve_raw(service.0, service.1, options);
        let stopper = responder.stopper();
        let task = tokio::spawn(proxy(
            responder,
            Arc::clone(&self.forwarded),
            self.tx.clone(),
        ));
        proxies.insert(service, Proxy { stopper, task });
    }

    fn stop_proxy(&self, service: (u16, u16)) {
        if let Some(Proxy { stopper, task: _ }) = self.proxies.lock().remove(&service) {
            // Stopping ends the proxy's `recv`, so its task finishes by itself.
            stopper.stop();
        }
    }

    /// A request frame: a local request on the peer's behalf, answered with a reply frame.
    fn on_request(
        &self,
        correlation: u64,
        request_type: u16,
        reply_type: u16,
        timeout_ms: u32,
        payload: Vec<u8>,
    ) -> Option<SessionEnd> {
        let shared = &self.shared;
        for id in [request_type, reply_type] {
            if !shared.validator.knows(id) {
                return Some(SessionEnd::Protocol(format!(
                    "the peer requested with type id {id}, which the schema does not define"
                )));
            }
        }
        if let Err(error) = shared.validator.validate(request_type, &payload) {
            return Some(SessionEnd::Malformed {
                message: shared.message_name(request_type).to_owned(),
                error,
            });
        }
        let timeout = if timeout_ms == NO_TIMEOUT {
            Duration::MAX
        } else {
            Duration::from_millis(u64::from(timeout_ms))
        };
        let bus = shared.bus.clone();
        let origin = self.origin;
        let tx = self.tx.clone();
        let mut ended = self.ended.subscribe();
        tokio::spawn(async move {
            let asked = bus.request_raw_from_async(
                origin,
                request_type,
                reply_type,
                Bytes::from(payload),
                timeout,
            );
            let outcome = tokio::select! {
                _ = raised(&mut ended) => return,
                result = asked => match result {
                    Ok(reply) => ReplyOutcome::Ok(reply.to_vec()),
                    Err(RequestError::ResponderFailed { reason }) => ReplyOutcome::Failed(reason),
                    Err(RequestError::NoResponder { .. }) => ReplyOutcome::NoResponder,
                    Err(RequestError::Timeout { .. }) => ReplyOutcome::Timeout,
                    Err(RequestError::Closed) => ReplyOutcome::Closed,
                    Err(other) => ReplyOutcome::Failed(other.to_string()),
                },
            };
            let reply = Control::Reply {
                correlation,
                outcome,
            };
            let _ = tx.send(Outbound::Control(reply)).await;
        });
        None
    }

    /// A reply frame: answers the forwarded request it names (a reply for a request that is no
    /// longer waiting, e.g. after this side's session was replaced, is ignored).
    fn on_reply(&self, correlation: u64, outcome: ReplyOutcome) -> Option<SessionEnd> {
        let waiting = self.forwarded.lock().waiting.remove(&correlation);
        // None (nothing to do, the session goes on) when the request is no longer waiting.
        let request = waiting?;
        let peer = &self.peer;
        match outcome {
            ReplyOutcome::Ok(payload) => {
                let reply_type = request.reply_type();
                if let Err(error) = self.shared.validator.validate(reply_type, &payload) {
                    request.fail(format!("the reply from {peer} does not decode: {error}"));
                    return Some(SessionEnd::Malformed {
                        message: self.shared.message_name(reply_type).to_owned(),
                        error,
                    });
                }
                request.reply(Bytes::from(payload));
            }
            ReplyOutcome::Failed(reason) => request.fail(reason),
            ReplyOutcome::NoResponder => request.fail(format!(
                "no responder serves it on the other side of the bridge ({peer}) any more"
            )),
            // The far side's timer ran out at (about) the requester's deadline; the requester's
            // own timeout reports it as a timeout.
            ReplyOutcome::Timeout => request.leave_unanswered(),
            ReplyOutcome::Closed => request.fail(format!(
                "the bus on the other side of the bridge ({peer}) is closed"
            )),
        }
        None
    }

    /// Applies one control frame; `Some` ends the session.
    fn on_control(&self, type_id: u16, payload: &[u8]) -> Option<SessionEnd> {
        let control = match Control::decode(type_id, payload) {
            Ok(Some(control)) => control,
            Ok(None) => {
                return Some(SessionEnd::Protocol(format!(
                    "unknown control frame type {type_id:#06x}"
                )))
            }
            Err(e) => {
                return Some(SessionEnd::Protocol(format!(
                    "malformed control frame {type_id:#06x}: {e}"
                )))
            }
        };
        match control {
            Control::Subscribe(ids) => {
                if let Some(unknown) = ids.iter().find(|id| !self.shared.validator.knows(**id)) {
                    return Some(SessionEnd::Protocol(format!(
                        "the peer subscribed to type id {unknown}, which the schema does not define"
                    )));
                }
                ids.into_iter().for_each(|id| self.start_forwarder(id));
                None
            }
            Control::Unsubscribe(ids) => {
                ids.into_iter().for_each(|id| self.stop_forwarder(id));
                None
            }
            Control::Ping => None,
            Control::Bye(reason) => Some(SessionEnd::PeerBye(reason)),
            Control::Serve(services) => {
                let shared = &self.shared;
                if let Some((request, reply)) = services
                    .iter()
                    .find(|(a, b)| !shared.validator.knows(*a) || !shared.validator.knows(*b))
                {
                    return Some(SessionEnd::Protocol(format!(
                        "the peer serves request type {request} with reply type {reply}, which \
                         the schema does not define"
                    )));
                }
                services.into_iter().for_each(|s| self.start_proxy(s));
                None
            }
            Control::Unserve(services) => {
                services.into_iter().for_each(|s| self.stop_proxy(s));
                None
            }
            Control::Request {
                correlation,
                request_type,
                reply_type,
                timeout_ms,
                payload,
            } => self.on_request(correlation, request_type, reply_type, timeout_ms, payload),
            Control::Reply {
                correlation,
                outcome,
            } => self.on_reply(correlation, outcome),
            Control::Hello(_) | Control::Welcome { .. } | Control::Refuse { .. } => {
                Some(SessionEnd::Protocol(format!(
                    "handshake frame {type_id:#06x} after the handshake"
                )))
            }
            // The read loop takes topic frames itself (they belong to the next message).
            Control::Topic(_) => Some(SessionEnd::Protocol("a topic frame out of place".into())),
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    session: &Session,
    reader: &mut FrameReader<R>,
) -> SessionEnd {
    let shared = &session.shared;
    let limits = &shared.limits;
    let stats = &shared.stats;
    // The topic frame just read, for the message frame that must follow it.
    let mut pending_topic: Option<TopicName> = None;
    loop {
        let (type_id, payload) =
            match timeout(limits.idle_timeout, reader.read_frame(limits.max_frame)).await {
                Err(_) => return SessionEnd::IdleTimeout(limits.idle_timeout),
                Ok(Err(e)) => return SessionEnd::Frame(e),
                Ok(Ok(None)) => return SessionEnd::PeerClosed,
                Ok(Ok(Some(frame))) => frame,
            };
        bump(&stats.frames_in, 1);
        bump(
            &stats.bytes_in,
            (payload.len() + mycelium_protocol::FRAME_HEADER_LEN) as u64,
        );
        if is_control(type_id) {
            if pending_topic.is_some() {
                return SessionEnd::Protocol(format!(
                    "a topic frame was followed by control frame {type_id:#06x}, not by its message"
                ));
            }
            if type_id == TOPIC {
                match Control::decode(type_id, &payload) {
                    Ok(Some(Control::Topic(text))) => match TopicName::new(&text) {
                        Ok(topic) => {
                            pending_topic = Some(topic);
                            continue;
                        }
                        Err(e) => return SessionEnd::Protocol(format!("bad topic frame: {e}")),
                    },
                    _ => return SessionEnd::Protocol("malformed topic frame".into()),
                }
            }
            match session.on_control(type_id, &payload) {
                Some(end) => return end,
                None => continue,
            }
        }
        let topic = pending_topic.take();
        if !shared.validator.knows(type_id) {
            return SessionEnd::Protocol(format!(
                "the peer sent type id {type_id}, which the schema does not define"
            ));
        }
        if let Err(error) = shared.validator.validate(type_id, &payload) {
            return SessionEnd::Malformed {
                message: shared.message_name(type_id).to_owned(),
                error,
            };
        }
        if !session.requested.contains(type_id) {
            // Sent before our unsubscribe reached the peer.
            bump(&stats.unrequested, 1);
            continue;
        }
        match shared
            .bus
            .publish_raw_on_from_async(session.origin, type_id, topic, payload)
            .await
        {
            // A full FailPublish subscriber is the bus's business (it counts the drop).
            Ok(()) | Err(PublishError::QueueFull { .. }) => bump(&stats.messages_in, 1),
            Err(PublishError::Closed) => return SessionEnd::BusClosed,
            Err(e) => {
                return SessionEnd::Protocol(format!(
                    "the local bus refused a {}: {e}",
                    shared.message_name(type_id)
                ))
            }
        }
    }
}

async fn forward(
    sub: Arc<RawSubscription>,
    origin: u64,
    tx: mpsc::Sender<Outbound>,
    mut draining: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = raised(&mut draining) => {
                while let Ok(envelope) = sub.try_recv() {
                    if envelope.origin == origin {
                        continue;
                    }
                    let message = Outbound::Message { type_id: envelope.type_id, payload: envelope.payload, topic: envelope.topic };
                    if tx.send(message).await.is_err() {
                        return;
                    }
                }
                return;
            }
            envelope = sub.recv() => {
                let Some(envelope) = envelope else { return };
                if envelope.origin == origin {
                    continue;
                }
                let message = Outbound::Message { type_id: envelope.type_id, payload: envelope.payload, topic: envelope.topic };
                if tx.send(message).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards what a proxy responder receives to the peer as request frames.
async fn proxy(responder: RawResponder, forwarded: Forwarded, tx: mpsc::Sender<Outbound>) {
    while let Some(request) = responder.recv().await {
        let remaining = request.remaining();
        if remaining.is_zero() {
            continue; // its requester stopped waiting; dropping it answers "failed"
        }
        // Whole milliseconds, at least 1; anything beyond u32 milliseconds (49 days) is "no
        // limit".
        let timeout_ms = u32::try_from(remaining.as_millis().max(1)).unwrap_or(NO_TIMEOUT);
        let frame = {
            let mut forwarded = forwarded.lock();
            forwarded.next += 1;
            let correlation = forwarded.next;
            let frame = Control::Request {
                correlation,
                request_type: request.request_type(),
                reply_type: request.reply_type(),
                timeout_ms,
                payload: request.payload().to_vec(),
            };
            forwarded.waiting.insert(correlation, request);
            frame
        };
        if tx.send(Outbound::Control(frame)).await.is_err() {
            return; // the session is ending; its teardown fails what is waiting
        }
    }
}

enum InterestEnd {
    BusClosed,
    WriterGone,
}

/// Keeps the peer's view of what this side wants up to date, until the bus closes or the
/// writer is gone.
async fn interest_loop(
    shared: Arc<Shared>,
    forwarders: Forwarders,
    requested: Arc<TypeSet>,
    tx: mpsc::Sender<Outbound>,
    origin: u64,
) -> InterestEnd {
    let bus = &shared.bus;
    let mut watch = bus.watch_subscriptions();
    let mut current = BTreeSet::new();
    let mut current_services: BTreeSet<(u16, u16)> = BTreeSet::new();
    loop {
        watch.borrow_and_update();
        if bus.is_closed() {
            return InterestEnd::BusClosed;
        }
        let wanted: BTreeSet<u16> = {
            let own = forwarders.lock();
            shared
                .schema_types
                .iter()
                .copied()
                .filter(|type_id| {
                    let own_id = own.get(type_id).map(|f| f.sub.id());
                    bus.subscriber_ids(*type_id)
                        .into_iter()
                        .any(|id| Some(id) != own_id)
                })
                .collect()
        };
        let added: Vec<u16> = wanted.difference(&current).copied().collect();
        let removed: Vec<u16> = current.difference(&wanted).copied().collect();
        // Marked before asking, so the first answers are not mistaken for unrequested ones.
        added.iter().for_each(|id| requested.insert(*id));
        removed.iter().for_each(|id| requested.remove(*id));
        for control in [Control::Subscribe(added), Control::Unsubscribe(removed)] {
            let empty = matches!(&control, Control::Subscribe(ids) | Control::Unsubscribe(ids) if ids.is_empty());
            if !empty && tx.send(Outbound::Control(control)).await.is_err() {
                return InterestEnd::WriterGone;
            }
        }
        current = wanted;
        // Services served here by anyone but this session's own proxies.
        let served: BTreeSet<(u16, u16)> = bus
            .served(origin)
            .into_iter()
            .filter(|(a, b)| shared.validator.knows(*a) && shared.validator.knows(*b))
            .collect();
        let started: Vec<(u16, u16)> = served.difference(&current_services).copied().collect();
        let stopped: Vec<(u16, u16)> = current_services.difference(&served).copied().collect();
        for control in [Control::Serve(started), Control::Unserve(stopped)] {
            let empty = matches!(&control, Control::Serve(s) | Control::Unserve(s) if s.is_empty());
            if !empty && tx.send(Outbound::Control(control)).await.is_err() {
                return InterestEnd::WriterGone;
            }
        }
        current_services = served;
        if watch.changed().await.is_err() {
            // The bus itself is gone, which only happens once it is unused.
            return InterestEnd::BusClosed;
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: FrameWriter<W>,
    mut rx: mpsc::Receiver<Outbound>,
    limits: Limits,
    stats: Arc<Stats>,
) -> Result<(), SessionEnd> {
    let write_timeout = limits.write_timeout;
    loop {
        let first = match timeout(limits.ping_interval(), rx.recv()).await {
            Ok(Some(item)) => item,
            Ok(None) => {
                let _ = timeout(write_timeout, writer.shutdown()).await;
                return Ok(());
            }
            Err(_) => Outbound::Control(Control::Ping),
        };
        write_one(&mut writer, first, write_timeout, &stats).await?;
        // Everything already waiting goes into the same flush.
        while let Ok(item) = rx.try_recv() {
            write_one(&mut writer, item, write_timeout, &stats).await?;
        }
        match timeout(write_timeout, writer.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SessionEnd::WriteFailed(e)),
            Err(_) => return Err(SessionEnd::WriteTimeout(write_timeout)),
        }
    }
}

async fn write_one<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    item: Outbound,
    write_timeout: Duration,
    stats: &Stats,
) -> Result<(), SessionEnd> {
    let (type_id, payload, is_message) = match item {
        Outbound::Message {
            type_id,
            payload,
            topic,
        } => {
            if let Some(topic) = topic {
                // The topic frame goes right before its message, in the same write.
                let (topic_id, topic_payload) =
                    encode_control(&Control::Topic(topic.as_str().to_owned()))?;
                write_frame(
                    writer,
                    topic_id,
                    &topic_payload,
                    false,
                    write_timeout,
                    stats,
                )
                .await?;
            }
            (type_id, payload, true)
        }
        Outbound::Control(control) => {
            let (type_id, payload) = encode_control(&control)?;
            (type_id, Bytes::from(payload), false)
        }
    };
    write_frame(writer, type_id, &payload, is_message, write_timeout, stats).await
}

fn encode_control(control: &Control) -> Result<(u16, Vec<u8>), SessionEnd> {
    control
        .encode()
        .map_err(|e| SessionEnd::Protocol(format!("cannot encode a control frame: {e}")))
}

async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    type_id: u16,
    payload: &[u8],
    is_message: bool,
    write_timeout: Duration,
    stats: &Stats,
) -> Result<(), SessionEnd> {
    match timeout(write_timeout, writer.write_frame(type_id, payload)).await {
        Ok(Ok(written)) => {
            bump(&stats.frames_out, 1);
            bump(&stats.bytes_out, written as u64);
            if is_message {
                bump(&stats.messages_out, 1);
            }
            Ok(())
        }
        Ok(Err(e)) => Err(SessionEnd::WriteFailed(e)),
        Err(_) => Err(SessionEnd::WriteTimeout(write_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_set_tracks_every_id_independently() {
        let set = TypeSet::new();
        for id in [0u16, 1, 63, 64, 65535] {
            assert!(!set.contains(id));
            set.insert(id);
            assert!(set.contains(id));
        }
        set.remove(64);
        assert!(!set.contains(64));
        assert!(set.contains(63) && set.contains(65535));
    }

    #[test]
    fn only_recoverable_ends_are_graceful_and_broken_pipes_get_no_bye() {
        assert!(SessionEnd::Shutdown.is_graceful());
        assert!(!SessionEnd::PeerClosed.is_graceful());
        assert!(SessionEnd::PeerClosed.bye().is_none());
        assert!(SessionEnd::WriteTimeout(Duration::from_secs(1))
            .bye()
            .is_none());
        let idle = SessionEnd::IdleTimeout(Duration::from_secs(1));
        assert!(idle.bye().unwrap().contains("idle timeout"));
        assert!(idle.is_fault());
        assert!(!SessionEnd::PeerBye("x".into()).is_fault());
    }
}
