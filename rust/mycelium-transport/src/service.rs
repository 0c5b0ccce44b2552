//! The responder side of request/reply: [`MessageBus::serve`] and its raw, pull-based form
//! [`MessageBus::serve_raw`].
//!
//! A responder owns a bounded queue of [`IncomingRequest`]s. Every request of its service is
//! offered to it; it answers each with [`IncomingRequest::reply`] or
//! [`IncomingRequest::fail`]. A request dropped without an answer (the responder stopped, its
//! queue was full, its handler panicked, the bridge connection it was forwarded over broke)
//! answers itself as a failure, so a requester never waits on a responder that is gone: it
//! gets `ResponderFailed` (or the reply of another responder) at once, not a timeout.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mycelium_protocol::Message;

use crate::bus::MessageBus;
use crate::doorbell::{Doorbell, Woken};
use crate::envelope::Envelope;
use crate::services::{ResponderEntry, Service, ServiceKey, Services};

/// Queue capacity of a responder unless [`ServeOptions::capacity`] says otherwise.
pub const DEFAULT_SERVE_CAPACITY: usize = 256;

/// Settings of one responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Requests that may wait in its queue. A request arriving while it is full is answered
    /// at once as a failure of this responder ("queue full"), not queued: a requester learns
    /// that the service is overloaded instead of waiting for its timeout. The queue allocates
    /// as requests arrive, not up front; requesters racing for the last slot may overshoot
    /// the capacity by one request each.
    pub capacity: usize,
    /// Name used for the responder's thread (`serve`), for diagnostics.
    pub label: Option<String>,
    /// Who registers it: [`Envelope::LOCAL_ORIGIN`] for ordinary responders. A socket bridge
    /// serving on behalf of a peer passes its connection id, and requests it forwards from that
    /// same peer ([`MessageBus::request_raw_from_async`]) skip it, so a request never loops back.
    pub origin: u64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            capacity: DEFAULT_SERVE_CAPACITY,
            label: None,
            origin: Envelope::LOCAL_ORIGIN,
        }
    }
}

impl ServeOptions {
    /// Options with this queue capacity (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Options with a label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Options with an origin (see [`ServeOptions::origin`]).
    pub fn with_origin(mut self, origin: u64) -> Self {
        self.origin = origin;
        self
    }
}

/// One request waiting for its answer, as a responder receives it.
///
/// Answer it exactly once with [`reply`](Self::reply) or [`fail`](Self::fail); dropping it
/// unanswered answers "the responder dropped the request without replying". Answers that
/// arrive after the requester stopped waiting (it took another responder's reply, timed out,
/// or was cancelled) are discarded and counted as late replies of the service.
pub struct IncomingRequest {
    pub(crate) payload: Bytes,
    pub(crate) correlation: u64,
    pub(crate) origin: u64,
    pub(crate) deadline: Instant,
    pub(crate) service: Arc<Service>,
    pub(crate) services: Weak<Services>,
    pub(crate) answered: bool,
}

impl std::fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("request_type", &self.service.key.0)
            .field("reply_type", &self.service.key.1)
            .field("correlation", &self.correlation)
            .field("len", &self.payload.len())
            .finish()
    }
}

impl IncomingRequest {
    /// The encoded request (TLV payload of the request type).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Type id of the request.
    pub fn request_type(&self) -> u16 {
        self.service.key.0
    }

    /// Type id the reply must have.
    pub fn reply_type(&self) -> u16 {
        self.service.key.1
    }

    /// The request's correlation id (unique within the bus, never 0).
    pub fn correlation_id(&self) -> u64 {
        self.correlation
    }

    /// The requester's origin ([`Envelope::LOCAL_ORIGIN`] unless a bridge forwarded it).
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// When the requester stops waiting.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before [`deadline`](Self::deadline) (zero once it passed). A bridge forwards
    /// it, so the far side does not wait longer than the requester.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Answers with an encoded reply of [`reply_type`](Self::reply_type).
    pub fn reply(mut self, payload: Bytes) {
        self.answer(Ok(payload));
    }

    /// Answers with a typed reply.
    ///
    /// # Errors
    /// The reply could not be encoded; the request is then answered as failed with that reason.
    pub fn reply_message<T: Message>(
        self,
        reply: &T,
    ) -> Result<(), mycelium_protocol::EncodeError> {
        let mut buf = Vec::new();
        match reply.encode_payload(&mut buf) {
            Ok(()) => {
                self.reply(Bytes::from(buf));
                Ok(())
            }
            Err(e) => {
                self.fail(format!("the reply could not be encoded: {e}"));
                Err(e)
            }
        }
    }

    /// Answers that this responder could not handle the request; the requester gets
    /// `ResponderFailed { reason }` unless another responder replies.
    pub fn fail(mut self, reason: impl Into<String>) {
        self.answer(Err(reason.into()));
    }

    /// Gives up without answering: the requester counts this responder as one that did not
    /// answer in time (it times out unless another responder answers). For a bridge whose far
    /// side timed out: failing instead would race the requester's own, equal timeout.
    pub fn leave_unanswered(mut self) {
        self.answered = true;
    }

    fn answer(&mut self, answer: crate::services::Answer) {
        if std::mem::replace(&mut self.answered, true) {
            return;
        }
        if let Some(services) = self.services.upgrade() {
            services.answer(&self.service, self.correlation, answer);
        }
    }
}

impl Drop for IncomingRequest {
    fn drop(&mut self) {
        self.answer(Err(
            "the responder dropped the request without replying (it stopped or disconnected)"
                .to_owned(),
        ));
    }
}

/// A pull-based responder: take [`IncomingRequest`]s and answer them. Dropping it (or
/// [`close`](Self::close)) stops serving: no new requests reach it, and those still queued
/// are answered as failed.
pub struct RawResponder {
    id: u64,
    key: ServiceKey,
    receiver: async_channel::Receiver<IncomingRequest>,
    doorbell: Arc<Doorbell>,
    service: Arc<Service>,
}

impl std::fmt::Debug for RawResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponder")
            .field("id", &self.id)
            .field("request_type", &self.key.0)
            .field("reply_type", &self.key.1)
            .field("queued", &self.receiver.len())
            .finish()
    }
}

impl RawResponder {
    /// Responder id (unique within the bus, shared with subscriber ids).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Type id of the requests it serves.
    pub fn request_type(&self) -> u16 {
        self.key.0
    }

    /// Type id of its replies.
    pub fn reply_type(&self) -> u16 {
        self.key.1
    }

    /// Waits on this thread for the next request; `None` once stopped (or the bus closed) and
    /// drained.
    pub fn recv_blocking(&self) -> Option<IncomingRequest> {
        self.recv_until(None)
    }

    /// Like [`recv_blocking`](Self::recv_blocking), giving up after `timeout` (`None` then
    /// too; [`is_closed`](Self::is_closed) tells the two apart).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<IncomingRequest> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Whether this responder stopped (closed, or the bus closed).
    pub fn is_closed(&self) -> bool {
        self.doorbell.is_closed()
    }

    /// Sleeps on the doorbell rather than async-channel's own wait (see `doorbell.rs`).
    fn recv_until(&self, deadline: Option<Instant>) -> Option<IncomingRequest> {
        let poll = || match self.receiver.try_recv() {
            Ok(request) => Some(Some(request)),
            Err(async_channel::TryRecvError::Closed) => Some(None),
            Err(async_channel::TryRecvError::Empty) => None,
        };
        match self.doorbell.wait(poll, deadline) {
            Woken::Ready(got) => got,
            // Closed: take what is still queued first (normally `stop` drained it already).
            Woken::Closed => self.receiver.try_recv().ok(),
            Woken::TimedOut => None,
        }
    }

    /// Awaits the next request; `None` once stopped and drained.
    pub async fn recv(&self) -> Option<IncomingRequest> {
        self.receiver.recv().await.ok()
    }

    /// Takes the next request if one is queued.
    pub fn try_recv(&self) -> Option<IncomingRequest> {
        self.receiver.try_recv().ok()
    }

    /// Requests waiting in its queue.
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// A handle that stops this responder from another thread (see [`Stopper::stop`]).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            id: self.id,
            receiver: self.receiver.clone(),
            doorbell: Arc::clone(&self.doorbell),
            service: Arc::clone(&self.service),
        }
    }

    /// Stops serving now: leaves the service and answers what is queued as failed. Blocked
    /// [`recv_blocking`](Self::recv_blocking) calls return `None`.
    pub fn close(&self) {
        self.stopper().stop();
    }
}

impl Drop for RawResponder {
    fn drop(&mut self) {
        self.close();
    }
}

/// Stops a [`RawResponder`] from any thread.
#[derive(Clone)]
pub struct Stopper {
    id: u64,
    receiver: async_channel::Receiver<IncomingRequest>,
    doorbell: Arc<Doorbell>,
    service: Arc<Service>,
}

impl Stopper {
    /// Removes the responder from its service (requests made from now on do not count it),
    /// closes its queue, and answers every queued request as failed. Idempotent.
    pub fn stop(&self) {
        {
            let mut list = self.service.responders.write();
            if list.iter().any(|r| r.id == self.id) {
                let next: Vec<_> = list.iter().filter(|r| r.id != self.id).cloned().collect();
                *list = next.into();
                crate::topic::bump(&self.service.changes);
            }
        }
        self.receiver.close();
        self.doorbell.close();
        // Dropping each request answers it as failed.
        while self.receiver.try_recv().is_ok() {}
    }
}

/// Serving with a handler on a thread of its own; dropping the guard stops serving (see
/// [`MessageBus::serve`]).
pub struct ServeGuard {
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ServeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeGuard")
            .field("responder", &self.stopper.id)
            .finish()
    }
}

impl ServeGuard {
    /// The responder's id.
    pub fn id(&self) -> u64 {
        self.stopper.id
    }

    /// Stops serving and waits until the handler thread ended (a request being handled is
    /// finished first). Same as dropping the guard.
    pub fn stop(self) {}
}

impl Drop for ServeGuard {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(thread) = self.thread.take() {
            // A handler that drops its own guard must not wait for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Text of a caught panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

impl MessageBus {
    /// Registers a pull-based responder for the service (`request_type`, `reply_type`).
    /// Serving on a closed bus yields a responder that is already stopped.
    pub fn serve_raw(
        &self,
        request_type: u16,
        reply_type: u16,
        opts: ServeOptions,
    ) -> RawResponder {
        let key = (request_type, reply_type);
        let service = self.inner.services.service(key);
        let id = self
            .inner
            .next_subscriber_id
            .fetch_add(1, Ordering::Relaxed);
        // Unbounded, with the capacity enforced by `request`: a bounded async-channel
        // allocates every slot up front.
        let (sender, receiver) = async_channel::unbounded();
        let doorbell = Arc::new(Doorbell::default());
        {
            let mut list = service.responders.write();
            let mut next: Vec<_> = list.iter().cloned().collect();
            next.push(Arc::new(ResponderEntry {
                id,
                origin: opts.origin,
                capacity: opts.capacity.max(1),
                sender,
                doorbell: Arc::clone(&doorbell),
            }));
            *list = next.into();
            // Under the list lock, as `Topic::add` does: a watcher woken by it sees the change.
            crate::topic::bump(&service.changes);
        }
        let responder = RawResponder {
            id,
            key,
            receiver,
            doorbell,
            service,
        };
        // Checked after joining the service, as in `subscribe_raw`: either `close` saw this
        // responder, or this load sees its flag.
        if self.inner.closed.load(Ordering::SeqCst) {
            responder.close();
        }
        responder
    }

    /// Serves (`request_type`, `reply_type`) with `handler` on a thread of its own, one request
    /// at a time, in arrival order. The handler's `Err(reason)`, and a panic in it (caught;
    /// the reason is the panic message), answer `ResponderFailed { reason }`; the responder
    /// keeps serving. Dropping the returned guard stops serving.
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn serve_raw_with<F>(
        &self,
        request_type: u16,
        reply_type: u16,
        opts: ServeOptions,
        mut handler: F,
    ) -> ServeGuard
    where
        F: FnMut(Bytes) -> Result<Bytes, String> + Send + 'static,
    {
        let name = format!(
            "mycelium-serve-{}",
            opts.label.as_deref().unwrap_or("responder")
        );
        let responder = self.serve_raw(request_type, reply_type, opts);
        let stopper = responder.stopper();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Some(request) = responder.recv_blocking() {
                    let payload = request.payload.clone();
                    match catch_unwind(AssertUnwindSafe(|| handler(payload))) {
                        Ok(Ok(reply)) => request.reply(reply),
                        Ok(Err(reason)) => request.fail(reason),
                        Err(panic) => request.fail(format!(
                            "the handler panicked: {}",
                            panic_text(panic.as_ref())
                        )),
                    }
                }
            })
            .expect("the OS could not start a responder thread");
        ServeGuard {
            stopper,
            thread: Some(thread),
        }
    }

    /// Serves requests of type `Req` with replies of type `Rep` (see
    /// [`serve_raw_with`](Self::serve_raw_with)): `bus.serve::<Order, OrderDecision, _>(|order|
    /// Ok(decide(&order)))`. A request that does not decode as `Req` is answered as failed
    /// without calling the handler.
    pub fn serve<Req, Rep, F>(&self, handler: F) -> ServeGuard
    where
        Req: Message,
        Rep: Message,
        F: FnMut(Req) -> Result<Rep, String> + Send + 'static,
    {
        self.serve_with(ServeOptions::default(), handler)
    }

    /// [`serve`](Self::serve) with options.
    pub fn serve_with<Req, Rep, F>(&self, opts: ServeOptions, mut handler: F) -> ServeGuard
    where
        Req: Message,
        Rep: Message,
        F: FnMut(Req) -> Result<Rep, String> + Send + 'static,
    {
        self.learn_type_name(Req::TYPE_ID, Req::NAME);
        self.learn_type_name(Rep::TYPE_ID, Rep::NAME);
        self.serve_raw_with(Req::TYPE_ID, Rep::TYPE_ID, opts, move |payload| {
            let request = Req::decode_payload(&payload)
                .map_err(|e| format!("the request did not decode as {}: {e}", Req::NAME))?;
            let reply = handler(request)?;
            let mut buf = Vec::new();
            reply
                .encode_payload(&mut buf)
                .map_err(|e| format!("the reply could not be encoded: {e}"))?;
            Ok(Bytes::from(buf))
        })
    }
}
