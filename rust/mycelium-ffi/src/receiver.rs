//! Pull receivers: a subscription without a callback, whose queue the caller drains itself with
//! `mycelium_receiver_recv` on its own thread. Nothing runs on a library thread, so a message
//! reaches the caller with one wake-up (the caller's) instead of two, and adapters need no
//! queue of their own (Python's `Runtime.subscription`, C event loops).

use std::ffi::c_void;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use mycelium_transport::{Envelope, RawSubscription, RecvError, Stamp, TryRecvError};
use parking_lot::{Condvar, Mutex};

use crate::runtime::{live, mycelium_runtime_t};
use crate::status::{catch, mycelium_status::*, FfiError, FfiResult};
use crate::subscription::{
    mycelium_call_batch_fn, mycelium_message, mycelium_subscribe_options, resolve_options,
    to_message,
};
use mycelium_wait_graph::Waiting;

/// `timeout_ms` value of `mycelium_receiver_recv` that waits without limit.
pub const MYCELIUM_WAIT_FOREVER: u32 = u32::MAX;

/// A pull receiver: its bus-side queue plus the threads now inside its `visit` function, so that
/// closing it can wait for them (the same promise `mycelium_unsubscribe` makes for callbacks).
pub(crate) struct Receiver {
    pub raw: RawSubscription,
    visits: Mutex<Visits>,
    visits_done: Condvar,
}

#[derive(Default)]
struct Visits {
    closed: bool,
    visitors: Vec<ThreadId>,
}

impl Receiver {
    fn new(raw: RawSubscription) -> Self {
        Receiver {
            raw,
            visits: Mutex::new(Visits::default()),
            visits_done: Condvar::new(),
        }
    }

    /// Closes the queue (waking waiting `recv`s with `MYCELIUM_ERR_CLOSED`), so that no visit
    /// starts any more, then waits until no thread is inside `visit` — except the calling thread
    /// itself and visitors that (transitively) wait for it (the `mycelium-wait-graph` crate), which would
    /// otherwise never finish.
    pub fn close_and_wait(&self) {
        self.raw.close();
        let mut visits = self.visits.lock();
        visits.closed = true;
        if visits.visitors.is_empty() {
            return;
        }
        let (_waiting, allowed) = Waiting::enter(&visits.visitors);
        while visits.visitors.iter().any(|t| allowed.contains(t)) {
            self.visits_done.wait(&mut visits);
        }
    }

    /// Registers the calling thread as inside `visit`; `None` once the receiver was closed.
    fn begin_visit(&self) -> Option<VisitGuard<'_>> {
        let mut visits = self.visits.lock();
        if visits.closed {
            return None;
        }
        visits.visitors.push(std::thread::current().id());
        Some(VisitGuard(self))
    }
}

/// Unregisters a visit when dropped, also when `visit` unwinds out of a panic.
struct VisitGuard<'a>(&'a Receiver);

impl Drop for VisitGuard<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut visits = self.0.visits.lock();
        if let Some(i) = visits.visitors.iter().position(|t| *t == me) {
            visits.visitors.swap_remove(i);
        }
        self.0.visits_done.notify_all();
    }
}

pub(crate) fn open(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    opts: Option<&mycelium_subscribe_options>,
) -> FfiResult<u64> {
    let h = live(rt)?;
    h.check_can_subscribe(type_id)?;
    let resolved = resolve_options(opts)?;
    let raw = h.core.bus.subscribe_raw(type_id, resolved.bus);
    let id = h.core.next_id();
    h.receivers.lock().insert(id, Arc::new(Receiver::new(raw)));
    Ok(id)
}

/// Waits up to `timeout_ms` for a message, then hands up to `max` queued messages to `visit`
/// on the calling thread, in order. Returns how many were handed over.
pub(crate) fn recv(
    rt: *const mycelium_runtime_t,
    id: u64,
    timeout_ms: u32,
    max: usize,
    visit: mycelium_call_batch_fn,
    context: *mut c_void,
) -> FfiResult<usize> {
    let visit = visit.ok_or_else(|| FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`visit` is NULL"))?;
    if max == 0 {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            "`max_messages` is 0",
        ));
    }
    let receiver = {
        let h = live(rt)?;
        let found = h.receivers.lock().get(&id).cloned();
        found.ok_or_else(|| {
            FfiError::new(
                MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
                format!("receiver {id} is not open on this handle (never opened, or closed)"),
            )
        })?
    };
    let raw = &receiver.raw;
    // The handle's lock is not held while waiting: another thread may close the receiver,
    // which ends this wait with MYCELIUM_ERR_CLOSED.
    let first = wait(raw, timeout_ms)?;
    // A lone message (the usual case when the receiver keeps up, e.g. request/reply) costs no
    // allocation: `rest` only allocates when more messages are queued, and one view lives on the
    // stack.
    let mut rest: Vec<Envelope> = Vec::new();
    if max > 1 {
        raw.drain_into(&mut rest, max - 1);
    }
    let now = Stamp::now();
    let lone;
    let many: Vec<mycelium_message>;
    let views: &[mycelium_message] = if rest.is_empty() {
        lone = [to_message(&first, now)];
        &lone
    } else {
        many = std::iter::once(&first)
            .chain(rest.iter())
            .map(|env| to_message(env, now))
            .collect();
        &many
    };
    let (ptr, count) = (views.as_ptr(), views.len());
    // Messages taken after a close began are dropped with the rest of the queue: once
    // `mycelium_unsubscribe` returns, no visit may start.
    let Some(_visit) = receiver.begin_visit() else {
        return Err(closed_error());
    };
    // SAFETY: `views` borrow `first` and `rest`, alive across the call; `visit` is valid for
    // `context` (C contract).
    match catch(|| {
        crate::message_topic::delivering(views, &first, &rest, || unsafe {
            visit(context, ptr, count)
        })
    }) {
        Ok(failed) => (0..failed.min(count)).for_each(|_| raw.record_handler_error()),
        Err(panic) => {
            raw.record_handler_failure(format!("receiver visit function panicked: {panic}"))
        }
    }
    Ok(count)
}

fn closed_error() -> FfiError {
    FfiError::new(
        MYCELIUM_ERR_CLOSED,
        "the receiver is closed (unsubscribed, handle destroyed, or bus closed) and drained",
    )
}

fn wait(raw: &RawSubscription, timeout_ms: u32) -> FfiResult<Envelope> {
    let closed = closed_error;
    match timeout_ms {
        0 => raw.try_recv().map_err(|e| match e {
            TryRecvError::Empty => FfiError::new(MYCELIUM_ERR_TIMEOUT, "no message is queued"),
            TryRecvError::Closed => closed(),
        }),
        MYCELIUM_WAIT_FOREVER => raw.recv_blocking().ok_or_else(closed),
        ms => raw
            .recv_timeout(Duration::from_millis(ms as u64))
            .map_err(|e| match e {
                RecvError::Timeout => {
                    FfiError::new(MYCELIUM_ERR_TIMEOUT, format!("no message within {ms} ms"))
                }
                RecvError::Closed => closed(),
            }),
    }
}
