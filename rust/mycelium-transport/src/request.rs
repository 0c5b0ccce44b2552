//! The requester side of request/reply: [`MessageBus::request`] (first reply wins) and
//! [`MessageBus::request_all`] (gather every reply), blocking and async, typed and raw.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use mycelium_protocol::{EncodeError, Message, Service as SchemaService};
use parking_lot::Mutex;

use crate::bus::MessageBus;
use crate::doorbell::{Doorbell, Woken};
use crate::envelope::Envelope;
use crate::publish::WaitHooks;
use crate::service::IncomingRequest;
use crate::services::{Mode, Pending, PendingState, Service, ServiceKey, Services};
use crate::subscriber::WAIT_SLICE;

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No responder answered before the timeout (responders were there when it was sent).
    #[error("no reply within {timeout:?}")]
    Timeout {
        /// The timeout the request was made with.
        timeout: Duration,
    },
    /// Nobody serves this (request type, reply type) at the time of the request; returned at
    /// once, not after the timeout.
    #[error("no responder serves request type {request_type} with reply type {reply_type}")]
    NoResponder {
        /// Type id of the request.
        request_type: u16,
        /// Type id of the reply asked for.
        reply_type: u16,
    },
    /// Every responder that got the request failed: its handler returned an error or panicked,
    /// its queue was full, or it stopped (or its bridge connection broke) before answering.
    /// The responders stay alive.
    #[error("the responder failed: {reason}")]
    ResponderFailed {
        /// The first failing responder's reason (the others are in the service's metrics).
        reason: String,
    },
    /// The bus is closed (before the request, or while it waited).
    #[error("the message bus is closed")]
    Closed,
    /// The request is larger than [`BusConfig::max_payload`](crate::BusConfig::max_payload).
    #[error("request of {len} bytes exceeds the bus limit of {max} bytes")]
    TooLarge {
        /// Payload size.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The requester's [`WaitHooks::keep_waiting`] gave up (e.g. Ctrl-C); a reply arriving
    /// later is discarded as late.
    #[error("the request stopped waiting (its wait hook gave up, e.g. on Ctrl-C)")]
    Interrupted,
    /// A typed request could not be encoded; nothing was sent.
    #[error("the request could not be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// The reply did not decode as the reply type (a responder built against another schema).
    #[error("the reply did not decode as {reply}: {error}")]
    BadReply {
        /// The reply type's name.
        reply: &'static str,
        /// The decoder's message.
        error: String,
    },
}

/// What [`MessageBus::request_all`] gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered<T> {
    /// Replies in arrival order.
    pub replies: Vec<T>,
    /// Reasons of the responders that failed, in arrival order.
    pub failures: Vec<String>,
    /// Responders that had neither replied nor failed when the timeout passed (0 when every
    /// responder answered in time).
    pub unanswered: usize,
}

/// Removes a pending request from the inbox when the requester stops waiting for any reason
/// (returns, times out, is interrupted, or its future is dropped).
struct InboxEntry<'a> {
    services: &'a Services,
    correlation: u64,
    pending: Arc<Pending>,
    service: Arc<Service>,
    timeout: Duration,
}

impl Drop for InboxEntry<'_> {
    fn drop(&mut self) {
        self.services.inbox.lock().remove(&self.correlation);
        // Replies arriving from now on are late.
        self.pending.state.lock().done = true;
    }
}

/// How a wait ended.
enum Waited {
    Done,
    TimedOut,
    Interrupted,
}

impl InboxEntry<'_> {
    fn is_done(&self) -> bool {
        self.pending.state.lock().done
    }

    /// Blocks until the request is done, the deadline passes, or `hooks` gives up.
    fn wait_blocking(&self, deadline: Instant, mut hooks: Option<&mut dyn WaitHooks>) -> Waited {
        if self.is_done() {
            return Waited::Done;
        }
        let may_give_up = hooks.as_deref().is_some_and(|h| h.may_give_up());
        if let Some(h) = hooks.as_deref_mut() {
            h.before_wait();
        }
        let waited = loop {
            let now = Instant::now();
            if now >= deadline {
                break Waited::TimedOut;
            }
            let until = if may_give_up {
                deadline.min(now + WAIT_SLICE)
            } else {
                deadline
            };
            let poll = || self.is_done().then_some(());
            match self.pending.doorbell.wait(poll, Some(until)) {
                Woken::Ready(()) | Woken::Closed => break Waited::Done,
                Woken::TimedOut => {}
            }
            if may_give_up && !hooks.as_deref_mut().is_some_and(|h| h.keep_waiting()) {
                break Waited::Interrupted;
            }
        };
        if let Some(h) = hooks {
            h.after_wait();
        }
        waited
    }

    /// Awaits until the request is done or the deadline passes (tokio's timer).
    #[cfg(feature = "tokio")]
    async fn wait_async(&self, deadline: Instant) -> Waited {
        loop {
            let listener = self.pending.event.listen();
            if self.is_done() {
                return Waited::Done;
            }
            let timed_out =
                tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), listener)
                    .await
                    .is_err();
            if self.is_done() {
                return Waited::Done;
            }
            if timed_out {
                return Waited::TimedOut;
            }
        }
    }

    /// The outcome once the wait ended: closes the request and reads what it gathered.
    fn finish(self, waited: Waited) -> Result<PendingState, RequestError> {
        self.services.inbox.lock().remove(&self.correlation);
        let state = {
            let mut state = self.pending.state.lock();
            let taken = std::mem::take(&mut *state);
            // What stays behind is still closed: an answer that found this entry just before
            // it left the inbox counts as late, not as a reply.
            state.done = true;
            taken
        };
        let stats = &self.service.stats;
        if state.closed {
            return Err(RequestError::Closed);
        }
        let answered = match self.pending.mode {
            Mode::First => !state.replies.is_empty() || state.outstanding == 0,
            Mode::All => state.outstanding == 0,
        };
        if !answered {
            match waited {
                Waited::Interrupted => return Err(RequestError::Interrupted),
                Waited::TimedOut | Waited::Done => {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    if self.pending.mode == Mode::First {
                        return Err(RequestError::Timeout {
                            timeout: self.timeout,
                        });
                    }
                }
            }
        }
        Ok(state)
    }
}

/// `now + timeout`, or a century from now for a timeout too large to add (a caller's "wait
/// forever").
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

fn first_reply(state: PendingState) -> Result<Bytes, RequestError> {
    if let Some(reply) = state.replies.into_iter().next() {
        return Ok(reply);
    }
    let count = state.failures.len();
    let mut failures = state.failures.into_iter();
    let first = failures
        .next()
        .unwrap_or_else(|| "no responder answered".to_owned());
    let reason = if count > 1 {
        format!("{first} (and {} other responder(s) failed)", count - 1)
    } else {
        first
    };
    Err(RequestError::ResponderFailed { reason })
}

fn gathered(state: PendingState) -> Gathered<Bytes> {
    Gathered {
        replies: state.replies,
        failures: state.failures,
        unanswered: state.outstanding,
    }
}

fn decode<T: Message>(payload: &Bytes) -> Result<T, RequestError> {
    T::decode_payload(payload).map_err(|e| RequestError::BadReply {
        reply: T::NAME,
        error: e.to_string(),
    })
}

fn encode<T: Message>(msg: &T) -> Result<Bytes, RequestError> {
    let mut buf = Vec::new();
    msg.encode_payload(&mut buf)?;
    Ok(Bytes::from(buf))
}

impl MessageBus {
    /// Records a type name learnt from a typed request or serve, for service metrics.
    pub(crate) fn learn_type_name(&self, type_id: u16, name: &'static str) {
        let services = &self.inner.services;
        if !services.learnt.read().contains_key(&type_id) {
            services.learnt.write().insert(type_id, name);
        }
    }

    /// Names a service in metrics (e.g. the schema's `RiskCheck` for `Order -> OrderDecision`).
    pub fn set_service_name(&self, request_type: u16, reply_type: u16, name: impl Into<String>) {
        self.inner
            .services
            .names
            .write()
            .insert((request_type, reply_type), name.into());
    }

    /// Responders currently serving (`request_type`, `reply_type`).
    pub fn responder_count(&self, request_type: u16, reply_type: u16) -> usize {
        self.inner
            .services
            .existing((request_type, reply_type))
            .map_or(0, |s| s.responders.read().len())
    }

    /// The services that have at least one responder whose origin is not `exclude`, as
    /// (request, reply) pairs: a bridge announces these to the peer with connection id
    /// `exclude` (leaving out the responders it registered for that peer itself).
    pub fn served(&self, exclude: u64) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = self
            .inner
            .services
            .table
            .read()
            .values()
            .filter(|s| s.responders.read().iter().any(|r| r.origin != exclude))
            .map(|s| s.key)
            .collect();
        out.sort_unstable();
        out
    }

    /// Sends the request to every responder of the service and registers it in the inbox.
    fn start(
        &self,
        origin: u64,
        key: ServiceKey,
        payload: Bytes,
        mode: Mode,
        timeout: Duration,
    ) -> Result<(InboxEntry<'_>, Instant), RequestError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(RequestError::Closed);
        }
        let max = inner.config.max_payload;
        if payload.len() > max {
            return Err(RequestError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let services = &inner.services;
        let service = services.service(key);
        let responders: Vec<_> = service
            .responders
            .read()
            .iter()
            .filter(|r| origin == Envelope::LOCAL_ORIGIN || r.origin != origin)
            .cloned()
            .collect();
        service.stats.requests.fetch_add(1, Ordering::Relaxed);
        if responders.is_empty() {
            service.stats.no_responder.fetch_add(1, Ordering::Relaxed);
            return Err(RequestError::NoResponder {
                request_type: key.0,
                reply_type: key.1,
            });
        }
        let correlation = services.correlation_id();
        let pending = Arc::new(Pending {
            mode,
            state: Mutex::new(PendingState {
                outstanding: responders.len(),
                ..PendingState::default()
            }),
            event: Event::new(),
            doorbell: Doorbell::default(),
        });
        services
            .inbox
            .lock()
            .insert(correlation, Arc::clone(&pending));
        let entry = InboxEntry {
            services,
            correlation,
            pending,
            service: Arc::clone(&service),
            timeout,
        };
        // After joining the inbox, as `subscribe_raw` does: either `close` drains this entry
        // or this load sees its flag.
        if inner.closed.load(Ordering::SeqCst) {
            return Err(RequestError::Closed);
        }
        let deadline = deadline_after(timeout);
        for responder in responders {
            let request = IncomingRequest {
                payload: payload.clone(),
                correlation,
                origin,
                deadline,
                service: Arc::clone(&service),
                services: Arc::downgrade(services),
                answered: false,
            };
            // The channel is unbounded (it allocates as requests arrive, not `capacity` slots
            // up front); the capacity is checked here. Concurrent requesters may overshoot it
            // by at most one request each.
            if responder.sender.len() >= responder.capacity {
                request.fail(format!(
                    "the responder's queue is full ({} requests waiting)",
                    responder.capacity
                ));
                continue;
            }
            match responder.sender.try_send(request) {
                Ok(()) => responder.doorbell.ring(),
                Err(async_channel::TrySendError::Full(request)) => {
                    request.fail("the responder's queue is full")
                }
                Err(async_channel::TrySendError::Closed(request)) => {
                    request.fail("the responder stopped before it got the request")
                }
            }
        }
        Ok((entry, deadline))
    }

    fn request_blocking(
        &self,
        origin: u64,
        key: ServiceKey,
        payload: Bytes,
        mode: Mode,
        timeout: Duration,
        hooks: Option<&mut dyn WaitHooks>,
    ) -> Result<PendingState, RequestError> {
        let (entry, deadline) = self.start(origin, key, payload, mode, timeout)?;
        let waited = entry.wait_blocking(deadline, hooks);
        entry.finish(waited)
    }

    /// Sends a raw request of `request_type` to the responders of (`request_type`,
    /// `reply_type`) and blocks until the **first successful reply** (later replies are
    /// discarded and counted as late), until every responder failed (`ResponderFailed`), or
    /// until `timeout` (`Timeout`). `NoResponder` comes at once when nobody serves it.
    ///
    /// Requests do not reach ordinary subscribers of `request_type`, and replies do not reach
    /// subscribers of `reply_type`: request/reply is addressed, pub/sub is broadcast.
    pub fn request_raw(
        &self,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        let key = (request_type, reply_type);
        first_reply(self.request_blocking(
            Envelope::LOCAL_ORIGIN,
            key,
            payload,
            Mode::First,
            timeout,
            None,
        )?)
    }

    /// [`request_raw`](Self::request_raw) calling `hooks` around its wait, as
    /// [`publish_raw_with_hooks`](Self::publish_raw_with_hooks) does: an adapter releases its
    /// runtime lock in `before_wait`, and `keep_waiting` (asked every 100 ms) may give up with
    /// [`RequestError::Interrupted`].
    pub fn request_raw_with_hooks(
        &self,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
        hooks: &mut dyn WaitHooks,
    ) -> Result<Bytes, RequestError> {
        let key = (request_type, reply_type);
        first_reply(self.request_blocking(
            Envelope::LOCAL_ORIGIN,
            key,
            payload,
            Mode::First,
            timeout,
            Some(hooks),
        )?)
    }

    /// [`request_all_raw`](Self::request_all_raw) with wait hooks (see
    /// [`request_raw_with_hooks`](Self::request_raw_with_hooks)).
    pub fn request_all_raw_with_hooks(
        &self,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
        hooks: &mut dyn WaitHooks,
    ) -> Result<Gathered<Bytes>, RequestError> {
        let key = (request_type, reply_type);
        self.request_blocking(
            Envelope::LOCAL_ORIGIN,
            key,
            payload,
            Mode::All,
            timeout,
            Some(hooks),
        )
        .map(gathered)
    }

    /// Sends a raw request to **every** responder of (`request_type`, `reply_type`) present
    /// now and blocks until each of them answered or `timeout` passed, whichever is first; a
    /// timeout is not an error here (what arrived is returned, with
    /// [`Gathered::unanswered`] counting the rest, and the service counts a timeout).
    /// Errors: `NoResponder` (at once), `Closed`, `TooLarge`.
    pub fn request_all_raw(
        &self,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Gathered<Bytes>, RequestError> {
        let key = (request_type, reply_type);
        self.request_blocking(
            Envelope::LOCAL_ORIGIN,
            key,
            payload,
            Mode::All,
            timeout,
            None,
        )
        .map(gathered)
    }

    /// Typed request, first reply wins (see [`request_raw`](Self::request_raw)):
    /// `bus.request::<Order, OrderDecision>(&order, Duration::from_secs(1))`.
    pub fn request<Req: Message, Rep: Message>(
        &self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Rep, RequestError> {
        self.learn_type_name(Req::TYPE_ID, Req::NAME);
        self.learn_type_name(Rep::TYPE_ID, Rep::NAME);
        let reply = self.request_raw(Req::TYPE_ID, Rep::TYPE_ID, encode(request)?, timeout)?;
        decode(&reply)
    }

    /// Typed gather-all request (see [`request_all_raw`](Self::request_all_raw)). A reply that
    /// does not decode as `Rep` is moved to [`Gathered::failures`].
    pub fn request_all<Req: Message, Rep: Message>(
        &self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Gathered<Rep>, RequestError> {
        self.learn_type_name(Req::TYPE_ID, Req::NAME);
        self.learn_type_name(Rep::TYPE_ID, Rep::NAME);
        let raw = self.request_all_raw(Req::TYPE_ID, Rep::TYPE_ID, encode(request)?, timeout)?;
        Ok(decode_all(raw))
    }
}

/// Typed calls of a service declared in the schema (generated marker types implement
/// [`mycelium_protocol::Service`]); the service's name labels its metrics.
impl MessageBus {
    fn learn_service<S: SchemaService>(&self) {
        let key = (S::Request::TYPE_ID, S::Reply::TYPE_ID);
        let names = &self.inner.services.names;
        if !names.read().contains_key(&key) {
            names.write().insert(key, S::NAME.to_owned());
        }
    }

    /// The typed client of service `S`: [`request`](Self::request) of `S::Request` for an
    /// `S::Reply` (first reply wins), e.g. `bus.call::<RiskCheck>(&order, timeout)`.
    pub fn call<S: SchemaService>(
        &self,
        request: &S::Request,
        timeout: Duration,
    ) -> Result<S::Reply, RequestError> {
        self.learn_service::<S>();
        self.request::<S::Request, S::Reply>(request, timeout)
    }

    /// Gather-all form of [`call`](Self::call) (see [`request_all`](Self::request_all)).
    pub fn call_all<S: SchemaService>(
        &self,
        request: &S::Request,
        timeout: Duration,
    ) -> Result<Gathered<S::Reply>, RequestError> {
        self.learn_service::<S>();
        self.request_all::<S::Request, S::Reply>(request, timeout)
    }

    /// Async form of [`call`](Self::call).
    #[cfg(feature = "tokio")]
    pub async fn call_async<S: SchemaService>(
        &self,
        request: &S::Request,
        timeout: Duration,
    ) -> Result<S::Reply, RequestError> {
        self.learn_service::<S>();
        self.request_async::<S::Request, S::Reply>(request, timeout)
            .await
    }

    /// The typed server of service `S` (see [`serve`](Self::serve)):
    /// `bus.serve_service::<RiskCheck, _>(|order| Ok(decide(&order)))`.
    pub fn serve_service<S, F>(&self, handler: F) -> crate::ServeGuard
    where
        S: SchemaService,
        F: FnMut(S::Request) -> Result<S::Reply, String> + Send + 'static,
    {
        self.learn_service::<S>();
        self.serve_with::<S::Request, S::Reply, F>(
            crate::ServeOptions::default().with_label(S::NAME),
            handler,
        )
    }
}

fn decode_all<Rep: Message>(raw: Gathered<Bytes>) -> Gathered<Rep> {
    let mut out = Gathered {
        replies: Vec::with_capacity(raw.replies.len()),
        failures: raw.failures,
        unanswered: raw.unanswered,
    };
    for reply in &raw.replies {
        match decode::<Rep>(reply) {
            Ok(reply) => out.replies.push(reply),
            Err(e) => out.failures.push(e.to_string()),
        }
    }
    out
}

// The async forms: everything below needs tokio's timer (a runtime with `enable_time`).
#[cfg(feature = "tokio")]
impl MessageBus {
    async fn request_awaiting(
        &self,
        origin: u64,
        key: ServiceKey,
        payload: Bytes,
        mode: Mode,
        timeout: Duration,
    ) -> Result<PendingState, RequestError> {
        let (entry, deadline) = self.start(origin, key, payload, mode, timeout)?;
        let waited = entry.wait_async(deadline).await;
        entry.finish(waited)
    }

    /// Async form of [`request_raw`](Self::request_raw). Dropping the future abandons the
    /// request (a reply arriving later counts as late).
    pub async fn request_raw_async(
        &self,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        self.request_raw_from_async(
            Envelope::LOCAL_ORIGIN,
            request_type,
            reply_type,
            payload,
            timeout,
        )
        .await
    }

    /// [`request_raw_async`](Self::request_raw_async) on behalf of `origin`: responders
    /// registered with that same origin ([`ServeOptions::origin`](crate::ServeOptions)) are
    /// skipped. A socket bridge forwards a peer's request this way, so the request is never
    /// sent back to the peer it came from.
    pub async fn request_raw_from_async(
        &self,
        origin: u64,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        let key = (request_type, reply_type);
        first_reply(
            self.request_awaiting(origin, key, payload, Mode::First, timeout)
                .await?,
        )
    }

    /// Async form of [`request_all_raw`](Self::request_all_raw).
    pub async fn request_all_raw_async(
        &self,
        request_type: u16,
        reply_type: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Gathered<Bytes>, RequestError> {
        let key = (request_type, reply_type);
        self.request_awaiting(Envelope::LOCAL_ORIGIN, key, payload, Mode::All, timeout)
            .await
            .map(gathered)
    }

    /// Async form of [`request`](Self::request).
    pub async fn request_async<Req: Message, Rep: Message>(
        &self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Rep, RequestError> {
        self.learn_type_name(Req::TYPE_ID, Req::NAME);
        self.learn_type_name(Rep::TYPE_ID, Rep::NAME);
        let payload = encode(request)?;
        let reply = self
            .request_raw_async(Req::TYPE_ID, Rep::TYPE_ID, payload, timeout)
            .await?;
        decode(&reply)
    }

    /// Async form of [`request_all`](Self::request_all).
    pub async fn request_all_async<Req: Message, Rep: Message>(
        &self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Gathered<Rep>, RequestError> {
        self.learn_type_name(Req::TYPE_ID, Req::NAME);
        self.learn_type_name(Rep::TYPE_ID, Rep::NAME);
        let payload = encode(request)?;
        let raw = self
            .request_all_raw_async(Req::TYPE_ID, Rep::TYPE_ID, payload, timeout)
            .await?;
        Ok(decode_all(raw))
    }
}
