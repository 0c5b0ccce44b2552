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

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mycelium_protocol::{DecodeError, Schema, Validator};
use mycelium_transport::{MessageBus, PublishError, RawSubscription, SubscribeOptions};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::config::Limits;
use crate::control::{is_control, Control};
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
    Message { type_id: u16, payload: Bytes },
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
            Control::Hello(_) | Control::Welcome { .. } | Control::Refuse { .. } => {
                Some(SessionEnd::Protocol(format!(
                    "handshake frame {type_id:#06x} after the handshake"
                )))
            }
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
            match session.on_control(type_id, &payload) {
                Some(end) => return end,
                None => continue,
            }
        }
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
            .publish_raw_from_async(session.origin, type_id, payload)
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
                    let message = Outbound::Message { type_id: envelope.type_id, payload: envelope.payload };
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
                let message = Outbound::Message { type_id: envelope.type_id, payload: envelope.payload };
                if tx.send(message).await.is_err() {
                    return;
                }
            }
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
) -> InterestEnd {
    let bus = &shared.bus;
    let mut watch = bus.watch_subscriptions();
    let mut current = BTreeSet::new();
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
        Outbound::Message { type_id, payload } => (type_id, payload, true),
        Outbound::Control(control) => {
            let (type_id, payload) = control
                .encode()
                .map_err(|e| SessionEnd::Protocol(format!("cannot encode a control frame: {e}")))?;
            (type_id, Bytes::from(payload), false)
        }
    };
    match timeout(write_timeout, writer.write_frame(type_id, &payload)).await {
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
