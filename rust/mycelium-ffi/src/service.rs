//! Request/reply through the C ABI (ABI 1.3): `mycelium_serve` runs a foreign handler on a
//! responder thread of its own; `mycelium_request` / `mycelium_request_all` block the calling
//! thread until the reply (or replies) came, handing each to a callback on that same thread.
//!
//! No allocation changes hands: a handler writes its reply through a library-owned
//! [`mycelium_reply_writer`], which **copies** the bytes (and validates them against the
//! schema as the reply type) before returning, and a requester's `on_reply` callback gets a
//! pointer to library-owned bytes valid only for that call. The writer carries its own
//! function pointers, so a handler built against one copy of the library can answer a writer
//! made by another (as handles carry their function table).

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use bytes::Bytes;
use mycelium_transport::{
    Gathered, IncomingRequest, RequestError, ServeOptions, Stopper, WaitHooks,
};

use crate::runtime::{self, mycelium_runtime_t, Core};
use crate::status::{catch, mycelium_status, mycelium_status::*, FfiError, FfiResult};
use crate::subscription::{mycelium_call_fn, mycelium_drop_fn, mycelium_message};
use mycelium_wait_graph::Waiting;

/// Where a serve handler puts its answer. Library-owned and valid only during the handler
/// call that received it; answer through its functions (or `mycelium_reply_write` /
/// `mycelium_reply_fail`, which call them). Do not copy or keep it.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct mycelium_reply_writer {
    /// `sizeof(mycelium_reply_writer)` of the library that made it.
    pub struct_size: u32,
    /// The library's state for this request; opaque.
    pub state: *mut c_void,
    /// Copies `len` bytes at `payload` as the reply, after validating them as the service's
    /// reply type: `MYCELIUM_OK`, or `MYCELIUM_ERR_DECODE` / `MYCELIUM_ERR_TOO_LARGE` /
    /// `MYCELIUM_ERR_NULL_POINTER` (nothing stored; the handler may write again or fail).
    /// A second successful write replaces the first.
    pub write: Option<
        unsafe extern "C" fn(
            writer: *mut mycelium_reply_writer,
            payload: *const u8,
            len: usize,
        ) -> mycelium_status,
    >,
    /// Copies `len` bytes of UTF-8 text at `reason` (invalid UTF-8 is replaced) as the reason
    /// the request failed; the requester gets `MYCELIUM_ERR_RESPONDER_FAILED` with that text
    /// once the handler returns non-zero.
    pub fail: Option<
        unsafe extern "C" fn(
            writer: *mut mycelium_reply_writer,
            reason: *const c_char,
            len: usize,
        ) -> mycelium_status,
    >,
}

/// A serve handler: answers one request. Return 0 after writing a reply with
/// `mycelium_reply_write`; return any other value to fail the request (with the reason given
/// to `mycelium_reply_fail`, or "the handler failed with status N").
#[allow(non_camel_case_types)]
pub type mycelium_serve_fn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        request: *const mycelium_message,
        reply: *mut mycelium_reply_writer,
    ) -> i32,
>;

/// A serve handler as {context, call, drop}; copied by `mycelium_serve`. `call` must be
/// non-NULL; `drop` may be NULL.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct mycelium_service_closure {
    /// Opaque user data passed to `call` and `drop`.
    pub context: *mut c_void,
    /// Answers one request, on the responder's thread.
    pub call: mycelium_serve_fn,
    /// Frees `context` once, after the last call; may be NULL.
    pub drop: mycelium_drop_fn,
}

/// What a handler produced, behind `mycelium_reply_writer::state`.
struct ReplyState<'a> {
    core: &'a Core,
    reply_type: u16,
    reply: Option<Bytes>,
    failure: Option<String>,
    /// Why the last `write` was refused, for the failure reason if the handler returns 0
    /// anyway.
    refused: Option<String>,
}

unsafe extern "C" fn writer_write(
    writer: *mut mycelium_reply_writer,
    payload: *const u8,
    len: usize,
) -> mycelium_status {
    crate::status::guard("mycelium_reply_write", || {
        // SAFETY: the writer is the one this library handed to the running handler (C
        // contract: valid during the handler call); its state is our `ReplyState`.
        let state = unsafe { state_of(writer) }?;
        // SAFETY: the caller guarantees `payload` points to `len` readable bytes for the call.
        match unsafe { runtime::prepare_raw(state.core, state.reply_type, payload, len) } {
            Ok(bytes) => {
                state.reply = Some(bytes);
                state.refused = None;
                Ok(())
            }
            Err(e) => {
                state.refused = Some(e.message.clone());
                Err(e)
            }
        }
    })
}

unsafe extern "C" fn writer_fail(
    writer: *mut mycelium_reply_writer,
    reason: *const c_char,
    len: usize,
) -> mycelium_status {
    crate::status::guard("mycelium_reply_fail", || {
        // SAFETY: as in `writer_write`.
        let state = unsafe { state_of(writer) }?;
        let text = if len == 0 {
            String::new()
        } else if reason.is_null() {
            return Err(FfiError::new(
                MYCELIUM_ERR_NULL_POINTER,
                format!("`reason` is NULL but `len` is {len}"),
            ));
        } else {
            let len = len.min(crate::MYCELIUM_MAX_TEXT_LEN);
            // SAFETY: the caller guarantees `reason` points to `len` readable bytes.
            let bytes = unsafe { std::slice::from_raw_parts(reason.cast::<u8>(), len) };
            String::from_utf8_lossy(bytes).into_owned()
        };
        state.failure = Some(text);
        Ok(())
    })
}

/// # Safety
/// `writer` is NULL or a writer this library made for a handler call that is still running.
unsafe fn state_of<'a>(writer: *mut mycelium_reply_writer) -> FfiResult<&'a mut ReplyState<'a>> {
    // SAFETY: per this function's contract.
    let writer = unsafe { writer.as_mut() }
        .ok_or_else(|| FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`reply` is NULL"))?;
    // SAFETY: `state` was set by `answer` to a `ReplyState` that outlives the handler call.
    unsafe { writer.state.cast::<ReplyState<'a>>().as_mut() }.ok_or_else(|| {
        FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            "this reply writer is not live (it is only valid during its handler call)",
        )
    })
}

/// The closure moved to the responder thread.
struct OwnedServiceClosure(mycelium_service_closure);

// SAFETY: the C contract for `mycelium_serve` requires `context` and the functions to be usable
// from the responder thread, which alone uses the closure once it has it.
unsafe impl Send for OwnedServiceClosure {}

impl Drop for OwnedServiceClosure {
    fn drop(&mut self) {
        if let Some(drop_fn) = self.0.drop {
            let context = self.0.context;
            // SAFETY: the caller's function for its own context; this Drop runs once.
            if let Err(panic) = catch(|| unsafe { drop_fn(context) }) {
                crate::log::callback_panicked(None, "a responder's drop function", &panic);
            }
        }
    }
}

/// What a runtime handle keeps per responder.
pub(crate) struct ResponderEntry {
    stopper: Stopper,
    stopped: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

impl ResponderEntry {
    /// Stops serving (queued requests fail at once), then waits for the handler call in
    /// progress and `drop` — unless that wait would close a cycle of callbacks waiting for
    /// each other, or is made from the responder's own handler (the `mycelium-wait-graph` crate).
    pub(crate) fn stop_and_join(mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stopper.stop();
        let (waiting, allowed) = Waiting::enter(&[self.thread_id]);
        if allowed.is_empty() {
            return;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        drop(waiting);
    }
}

/// Answers one request with the foreign handler.
fn answer(core: &Core, closure: &mycelium_service_closure, request: IncomingRequest) {
    let Some(call) = closure.call else {
        request.fail("no handler");
        return;
    };
    let payload = request.payload().clone();
    let message = mycelium_message {
        type_id: request.request_type(),
        payload: if payload.is_empty() {
            std::ptr::null()
        } else {
            payload.as_ptr()
        },
        len: payload.len(),
        queued_ns: 0,
    };
    let mut state = ReplyState {
        core,
        reply_type: request.reply_type(),
        reply: None,
        failure: None,
        refused: None,
    };
    let mut writer = mycelium_reply_writer {
        struct_size: std::mem::size_of::<mycelium_reply_writer>() as u32,
        state: (&mut state as *mut ReplyState<'_>).cast(),
        write: Some(writer_write),
        fail: Some(writer_fail),
    };
    let context = closure.context;
    // SAFETY: `message` borrows `payload` and `writer` borrows `state`, both alive for the
    // call; `call` is valid for `context` by the C contract.
    let result = catch(|| unsafe { call(context, &message, &mut writer) });
    match result {
        Ok(0) => match state.reply {
            Some(reply) => request.reply(reply),
            None => request.fail(match state.refused {
                Some(why) => format!("the handler's reply was refused: {why}"),
                None => "the handler returned 0 without writing a reply".to_owned(),
            }),
        },
        Ok(code) => request.fail(
            state
                .failure
                .unwrap_or_else(|| format!("the handler failed with status {code}")),
        ),
        Err(panic) => {
            crate::log::callback_panicked(None, "a serve handler", &panic);
            request.fail("the handler panicked (caught by the library)")
        }
    }
}

/// Starts a responder thread for the service (`request_type`, `reply_type`).
pub(crate) fn serve(
    core: Arc<Core>,
    request_type: u16,
    reply_type: u16,
    capacity: u32,
    label: Option<String>,
    closure: mycelium_service_closure,
) -> FfiResult<ResponderEntry> {
    if closure.call.is_none() {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            "handler.call must be non-NULL",
        ));
    }
    for (what, id) in [("request_type", request_type), ("reply_type", reply_type)] {
        if !core.validator.knows(id) {
            return Err(FfiError::new(
                MYCELIUM_ERR_UNKNOWN_TYPE,
                format!("{what} {id} is not defined by the runtime's schema"),
            ));
        }
    }
    if core.bus.is_closed() {
        return Err(FfiError::new(MYCELIUM_ERR_CLOSED, "the runtime was closed"));
    }
    let mut opts = ServeOptions::default();
    if capacity != 0 {
        if capacity as usize > mycelium_transport::MAX_QUEUE_CAPACITY {
            return Err(FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                format!(
                    "capacity {capacity} is too large; use at most {}",
                    mycelium_transport::MAX_QUEUE_CAPACITY
                ),
            ));
        }
        opts = opts.with_capacity(capacity as usize);
    }
    if let Some(label) = label {
        opts = opts.with_label(label);
    }
    let responder = core.bus.serve_raw(request_type, reply_type, opts);
    let stopper = responder.stopper();
    let stopped = Arc::new(AtomicBool::new(false));
    let thread_stopped = Arc::clone(&stopped);
    // As for subscriptions: the closure is wrapped (so its `drop` may run) only once the
    // thread exists; if spawning fails the caller keeps `context`.
    let (tx, rx) = std::sync::mpsc::channel::<OwnedServiceClosure>();
    let thread = std::thread::Builder::new()
        .name(format!("mycelium-serve-{}", responder.id()))
        .spawn(move || {
            let Ok(owned) = rx.recv() else { return };
            while let Some(request) = responder.recv_blocking() {
                if thread_stopped.load(Ordering::SeqCst) {
                    break; // dropping the request fails it
                }
                answer(&core, &owned.0, request);
            }
            drop(responder);
            drop(owned); // the user's drop, once, after the last call
        })
        .map_err(|e| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                format!("could not start the responder thread: {e}"),
            )
        })?;
    let thread_id = thread.thread().id();
    let _ = tx.send(OwnedServiceClosure(closure));
    Ok(ResponderEntry {
        stopper,
        stopped,
        thread: Some(thread),
        thread_id,
    })
}

/// The status and last-error text of a failed request.
fn request_error(e: RequestError) -> FfiError {
    let status = match &e {
        RequestError::NoResponder { .. } => MYCELIUM_ERR_NO_RESPONDER,
        RequestError::ResponderFailed { .. } => MYCELIUM_ERR_RESPONDER_FAILED,
        RequestError::Timeout { .. } | RequestError::Interrupted => MYCELIUM_ERR_TIMEOUT,
        RequestError::Closed => MYCELIUM_ERR_CLOSED,
        RequestError::TooLarge { .. } => MYCELIUM_ERR_TOO_LARGE,
        _ => MYCELIUM_ERR_INVALID_ARGUMENT,
    };
    let message = match e {
        // The handler's own words, as `mycelium_last_error()` shows them.
        RequestError::ResponderFailed { reason } => reason,
        other => other.to_string(),
    };
    FfiError::new(status, message)
}

/// Where a request's replies go.
pub(crate) struct ReplySink {
    pub on_reply: mycelium_call_fn,
    pub context: *mut c_void,
}

impl ReplySink {
    /// Validates `reply` as `reply_type` (foreign code only ever sees schema-valid payloads)
    /// and hands it to `on_reply` on this thread.
    fn deliver(&self, core: &Core, reply_type: u16, reply: &Bytes) -> FfiResult {
        core.validator.validate(reply_type, reply).map_err(|e| {
            FfiError::new(
                MYCELIUM_ERR_DECODE,
                format!("the reply does not decode as type id {reply_type}: {e}"),
            )
        })?;
        let Some(on_reply) = self.on_reply else {
            return Ok(());
        };
        let message = mycelium_message {
            type_id: reply_type,
            payload: if reply.is_empty() {
                std::ptr::null()
            } else {
                reply.as_ptr()
            },
            len: reply.len(),
            queued_ns: 0,
        };
        let context = self.context;
        // SAFETY: `message` borrows `reply`, alive for the call; `on_reply` is valid for
        // `context` (C contract).
        if let Err(panic) = catch(|| unsafe { on_reply(context, &message) }) {
            crate::log::callback_panicked(None, "a request's on_reply callback", &panic);
        }
        Ok(())
    }
}

/// Counts of a gather-all request that did not reply.
#[derive(Default)]
pub(crate) struct AllOutcome {
    pub failed: usize,
    pub unanswered: usize,
}

/// `mycelium_request` (`all == false`) and `mycelium_request_all`.
///
/// # Safety
/// A non-NULL `payload` points to `len` readable bytes for the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn request(
    rt: *const mycelium_runtime_t,
    request_type: u16,
    payload: *const u8,
    len: usize,
    reply_type: u16,
    timeout_ms: u32,
    hooks: Option<&mut dyn WaitHooks>,
    sink: &ReplySink,
    all: bool,
) -> FfiResult<AllOutcome> {
    let h = runtime::live(rt)?;
    let core = &h.core;
    if !core.validator.knows(reply_type) {
        return Err(FfiError::new(
            MYCELIUM_ERR_UNKNOWN_TYPE,
            format!("reply_type {reply_type} is not defined by the runtime's schema"),
        ));
    }
    // SAFETY: per this function's contract; copied before any wait or hook.
    let bytes = unsafe { runtime::prepare_raw(core, request_type, payload, len) }?;
    let timeout = if timeout_ms == crate::MYCELIUM_WAIT_FOREVER {
        Duration::MAX
    } else {
        Duration::from_millis(u64::from(timeout_ms))
    };
    let bus = &core.bus;
    if all {
        let Gathered {
            replies,
            failures,
            unanswered,
        } = match hooks {
            Some(hooks) => {
                bus.request_all_raw_with_hooks(request_type, reply_type, bytes, timeout, hooks)
            }
            None => bus.request_all_raw(request_type, reply_type, bytes, timeout),
        }
        .map_err(request_error)?;
        let mut outcome = AllOutcome {
            failed: failures.len(),
            unanswered,
        };
        for reply in &replies {
            if sink.deliver(core, reply_type, reply).is_err() {
                outcome.failed += 1;
            }
        }
        Ok(outcome)
    } else {
        let reply = match hooks {
            Some(hooks) => {
                bus.request_raw_with_hooks(request_type, reply_type, bytes, timeout, hooks)
            }
            None => bus.request_raw(request_type, reply_type, bytes, timeout),
        }
        .map_err(request_error)?;
        sink.deliver(core, reply_type, &reply)?;
        Ok(AllOutcome::default())
    }
}

/// `mycelium_serve`: a responder owned by the handle `rt`; returns its id.
pub(crate) fn serve_on(
    rt: *const mycelium_runtime_t,
    request_type: u16,
    reply_type: u16,
    capacity: u32,
    label: Option<String>,
    closure: mycelium_service_closure,
) -> FfiResult<u64> {
    let h = runtime::live(rt)?;
    let entry = serve(
        h.core.clone(),
        request_type,
        reply_type,
        capacity,
        label,
        closure,
    )?;
    let id = h.core.next_id();
    h.responders.lock().insert(id, entry);
    Ok(id)
}

/// `mycelium_unserve`.
pub(crate) fn unserve(rt: *const mycelium_runtime_t, id: u64) -> FfiResult {
    let h = runtime::live(rt)?;
    let entry = h.responders.lock().remove(&id).ok_or_else(|| {
        FfiError::new(
            MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
            format!("responder {id} is not live on this handle (never issued, or already stopped)"),
        )
    })?;
    entry.stop_and_join();
    Ok(())
}
