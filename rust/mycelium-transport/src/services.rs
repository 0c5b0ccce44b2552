//! The bus's request/reply registry: the responders of each service and the inbox of pending
//! requests, keyed by correlation id.
//!
//! A *service* is a pair (request type id, reply type id). Its responders each own a bounded
//! queue of [`IncomingRequest`](crate::IncomingRequest)s. A request is offered to every
//! responder of its service present at that moment (none: `NoResponder`, at once) and
//! registered in the inbox under a fresh correlation id; a reply finds its request there and
//! wakes the requester. Replies therefore never pass through the subscriber queues of the reply
//! type: they are addressed to one requester. A reply whose request is no longer pending
//! (answered already, timed out, abandoned) is counted as late and discarded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use event_listener::Event;
use parking_lot::{Mutex, RwLock};

use crate::doorbell::Doorbell;
use crate::metrics::ServiceMetrics;
use crate::topic::SubscriptionChanges;

/// A service: request type id, reply type id.
pub(crate) type ServiceKey = (u16, u16);

/// How a pending request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The first successful reply ends it; later ones are late.
    First,
    /// Every reply is kept until each responder offered the request answered, or the timeout.
    All,
}

/// One responder's answer to one request.
pub(crate) type Answer = Result<Bytes, String>;

/// What the requester waits on.
pub(crate) struct Pending {
    pub(crate) mode: Mode,
    pub(crate) state: Mutex<PendingState>,
    /// Notified when `state.done` becomes true: async requesters listen on `event`, blocking
    /// ones sleep on `doorbell` (which wakes a thread without the extra context switches of
    /// event-listener's wake-up; see `doorbell.rs`).
    pub(crate) event: Event,
    pub(crate) doorbell: Doorbell,
}

impl Pending {
    pub(crate) fn wake(&self) {
        self.event.notify(usize::MAX);
        self.doorbell.ring();
    }
}

#[derive(Default)]
pub(crate) struct PendingState {
    /// Responders that were offered the request and have not answered yet.
    pub(crate) outstanding: usize,
    pub(crate) replies: Vec<Bytes>,
    pub(crate) failures: Vec<String>,
    /// No more answers are accepted; the requester may return.
    pub(crate) done: bool,
    /// The bus closed while the request waited.
    pub(crate) closed: bool,
}

/// Counters of one service (all relaxed atomics).
#[derive(Default)]
pub(crate) struct ServiceStats {
    pub(crate) requests: AtomicU64,
    pub(crate) replies: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) no_responder: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) late_replies: AtomicU64,
}

pub(crate) struct ResponderEntry {
    pub(crate) id: u64,
    pub(crate) origin: u64,
    pub(crate) sender: async_channel::Sender<crate::service::IncomingRequest>,
    /// Requests that may wait in the (unbounded) channel.
    pub(crate) capacity: usize,
    /// Rung after each request queued, closed when the responder stops: a blocked
    /// `RawResponder::recv_blocking` sleeps on it.
    pub(crate) doorbell: Arc<Doorbell>,
}

pub(crate) struct Service {
    pub(crate) key: ServiceKey,
    /// The bus's subscription generation: bumped when a responder joins or leaves, so a
    /// bridge watching subscriptions also learns which services to announce.
    pub(crate) changes: SubscriptionChanges,
    /// Copy-on-write, as a topic's subscriber list: a request clones the `Arc` and offers
    /// without holding the lock.
    pub(crate) responders: RwLock<Arc<[Arc<ResponderEntry>]>>,
    pub(crate) stats: ServiceStats,
}

pub(crate) struct Services {
    changes: SubscriptionChanges,
    pub(crate) table: RwLock<HashMap<ServiceKey, Arc<Service>>>,
    /// The requesters' private inbox: pending requests by correlation id.
    pub(crate) inbox: Mutex<HashMap<u64, Arc<Pending>>>,
    pub(crate) next_correlation: AtomicU64,
    /// Names given with [`MessageBus::set_service_name`](crate::MessageBus::set_service_name).
    pub(crate) names: RwLock<HashMap<ServiceKey, String>>,
    /// Type names learnt from typed requests and serves (`Message::NAME`).
    pub(crate) learnt: RwLock<HashMap<u16, &'static str>>,
}

impl Services {
    pub(crate) fn new(changes: SubscriptionChanges) -> Services {
        Services {
            changes,
            table: Default::default(),
            inbox: Default::default(),
            next_correlation: Default::default(),
            names: Default::default(),
            learnt: Default::default(),
        }
    }

    pub(crate) fn service(&self, key: ServiceKey) -> Arc<Service> {
        if let Some(service) = self.table.read().get(&key) {
            return Arc::clone(service);
        }
        let mut table = self.table.write();
        Arc::clone(table.entry(key).or_insert_with(|| {
            Arc::new(Service {
                key,
                changes: Arc::clone(&self.changes),
                responders: RwLock::new(Arc::from(Vec::new())),
                stats: ServiceStats::default(),
            })
        }))
    }

    pub(crate) fn existing(&self, key: ServiceKey) -> Option<Arc<Service>> {
        self.table.read().get(&key).cloned()
    }

    pub(crate) fn learnt_name(&self, type_id: u16) -> Option<String> {
        self.learnt.read().get(&type_id).map(|n| (*n).to_owned())
    }

    pub(crate) fn correlation_id(&self) -> u64 {
        // Starts at 1: 0 is never a valid correlation id (the C ABI and the bridge frames use
        // it as "none").
        self.next_correlation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Delivers one responder's answer to request `correlation` of `service`.
    pub(crate) fn answer(&self, service: &Service, correlation: u64, answer: Answer) {
        let stats = &service.stats;
        let pending = self.inbox.lock().get(&correlation).cloned();
        let Some(pending) = pending else {
            stats.late_replies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut state = pending.state.lock();
        if state.done {
            drop(state);
            stats.late_replies.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.outstanding = state.outstanding.saturating_sub(1);
        match answer {
            Ok(reply) => {
                stats.replies.fetch_add(1, Ordering::Relaxed);
                state.replies.push(reply);
            }
            Err(reason) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                state.failures.push(reason);
            }
        }
        let finished =
            state.outstanding == 0 || (pending.mode == Mode::First && !state.replies.is_empty());
        if finished {
            state.done = true;
            drop(state);
            self.inbox.lock().remove(&correlation);
            pending.wake();
        }
    }

    /// Wakes every pending request with `Closed` (the bus is closing) and closes every
    /// responder queue, so responder loops end once they have drained it.
    pub(crate) fn close(&self) {
        let pending: Vec<Arc<Pending>> = self.inbox.lock().drain().map(|(_, p)| p).collect();
        for p in pending {
            let mut state = p.state.lock();
            if !state.done {
                state.done = true;
                state.closed = true;
            }
            drop(state);
            p.wake();
        }
        let services: Vec<Arc<Service>> = self.table.read().values().cloned().collect();
        for service in services {
            for responder in service.responders.read().iter() {
                responder.sender.close();
                responder.doorbell.close();
            }
        }
    }

    pub(crate) fn metrics(&self, type_name: impl Fn(u16) -> Option<String>) -> Vec<ServiceMetrics> {
        let mut services: Vec<Arc<Service>> = self.table.read().values().cloned().collect();
        services.sort_by_key(|s| s.key);
        let names = self.names.read();
        services
            .iter()
            .map(|s| {
                let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
                let stats = &s.stats;
                ServiceMetrics {
                    name: names.get(&s.key).cloned(),
                    request_type: s.key.0,
                    reply_type: s.key.1,
                    request_name: type_name(s.key.0),
                    reply_name: type_name(s.key.1),
                    responders: s.responders.read().len(),
                    requests: load(&stats.requests),
                    replies: load(&stats.replies),
                    timeouts: load(&stats.timeouts),
                    no_responder: load(&stats.no_responder),
                    responder_failures: load(&stats.failures),
                    late_replies: load(&stats.late_replies),
                }
            })
            .collect()
    }
}
