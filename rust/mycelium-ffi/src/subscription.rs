//! Subscriptions: `mycelium_closure` (the {context, call, drop} callback triple),
//! `mycelium_message`, `mycelium_subscribe_options`, and the delivery thread that runs callbacks.
//!
//! Each subscription owns one delivery thread. Callbacks therefore never run on the publisher's
//! thread, messages of one subscription are delivered in order, and a slow subscriber only slows
//! itself. `mycelium_unsubscribe` joins the thread, which is what makes "when unsubscribe returns,
//! the callback is not running and never runs again, and drop has run once" true — except where
//! the join would close a cycle of callbacks waiting for each other (the `mycelium-wait-graph` crate).

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};

use std::time::Duration;

use mycelium_transport::{
    Envelope, OverflowPolicy, RawSubscription, Stamp, SubscribeOptions, MAX_QUEUE_CAPACITY,
    MAX_SPIN,
};

use crate::runtime::Core;
use crate::sized::SizedOptions;
use crate::status::{catch, mycelium_status::*, FfiError, FfiResult};
use mycelium_wait_graph::Waiting;

/// One message handed to a callback. `payload` points to `len` bytes that stay valid only for
/// the duration of the callback; copy them to keep them. `payload` may be NULL when `len` is 0.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct mycelium_message {
    /// The schema type id of the message.
    pub type_id: u16,
    /// The TLV payload (no frame header), already validated against the schema.
    pub payload: *const u8,
    /// Payload length in bytes.
    pub len: usize,
    /// Nanoseconds the message spent between `mycelium_publish` and the start of this delivery.
    pub queued_ns: u64,
}

/// Per-message callback: returns 0 on success; any other value counts as a handler error in the
/// metrics (delivery goes on either way).
#[allow(non_camel_case_types)]
pub type mycelium_call_fn =
    Option<unsafe extern "C" fn(context: *mut c_void, message: *const mycelium_message) -> i32>;

/// Batch callback: receives `count >= 1` messages in order; returns how many of them failed
/// (counted as handler errors). Lets an adapter pay for a lock such as Python's GIL once per batch.
#[allow(non_camel_case_types)]
pub type mycelium_call_batch_fn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        messages: *const mycelium_message,
        count: usize,
    ) -> usize,
>;

/// Releases `context`. Called exactly once per successful subscription, after the last call.
#[allow(non_camel_case_types)]
pub type mycelium_drop_fn = Option<unsafe extern "C" fn(context: *mut c_void)>;

/// A callback as {context, call, drop}. Exactly one of `call` and `call_batch` must be non-NULL;
/// `drop` may be NULL. The struct is copied by `mycelium_subscribe`; `context` is passed back
/// untouched.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct mycelium_closure {
    /// Opaque user data passed to `call`, `call_batch` and `drop`.
    pub context: *mut c_void,
    /// Per-message callback, or NULL when `call_batch` is used.
    pub call: mycelium_call_fn,
    /// Batch callback, or NULL when `call` is used.
    pub call_batch: mycelium_call_batch_fn,
    /// Frees `context`; may be NULL.
    pub drop: mycelium_drop_fn,
}

/// What to do when a subscriber's queue is full.
#[repr(u32)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mycelium_overflow_policy {
    /// The publisher waits until there is room (no message is lost).
    MYCELIUM_OVERFLOW_BLOCK = 0,
    /// The oldest queued message is dropped and counted.
    MYCELIUM_OVERFLOW_DROP_OLDEST = 1,
    /// `mycelium_publish` fails with `MYCELIUM_ERR_QUEUE_FULL` (other subscribers still receive it).
    MYCELIUM_OVERFLOW_FAIL = 2,
}

/// Options for `mycelium_subscribe`. Initialise with `mycelium_subscribe_options_init` so that
/// fields added in later minor versions get their defaults.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct mycelium_subscribe_options {
    /// `sizeof(mycelium_subscribe_options)` as the caller was compiled with.
    pub struct_size: u32,
    /// Queue capacity in messages; 0 means the default (1024). At most 1048576 (1 Mi); a larger
    /// value is refused with `MYCELIUM_ERR_INVALID_ARGUMENT`, never clamped.
    pub capacity: u32,
    /// One of `mycelium_overflow_policy` (stored as u32 so that a bad value is an error, not UB).
    pub policy: u32,
    /// Most messages handed to one `call_batch` invocation; 0 means the default (256).
    pub max_batch: u32,
    /// Optional label shown in metrics; NUL-terminated UTF-8, copied; may be NULL.
    pub label: *const c_char,
    /// Since ABI 1.1. Longest a waiting receiver (the delivery thread, or
    /// `mycelium_receiver_recv`) polls its empty queue before it sleeps, in microseconds, at
    /// most 10000; 0 (the default) sleeps after a brief back-off (~14 µs of spinning). The spin
    /// adapts: it halves after a spin that ran out and doubles after one that caught a message.
    /// Trades a busy core for skipping the wake-up on the next message: for a few
    /// latency-critical subscriptions on a machine with a core to spare.
    pub spin_us: u32,
    /// Since ABI 1.4. A topic pattern (docs/topics.md): NUL-terminated UTF-8, copied; NULL (the
    /// default) receives every message of the type. With a pattern the subscription receives
    /// only messages published with a matching topic (`mycelium_publish_topic`): `*` matches
    /// one `/`-separated segment, a final `>` one or more. A malformed pattern is refused with
    /// `MYCELIUM_ERR_INVALID_ARGUMENT` naming the reason.
    pub pattern: *const c_char,
}

// SAFETY: `#[repr(C)]`, `struct_size: u32` first; every field is an integer or a raw pointer,
// for which any bit pattern is valid.
unsafe impl SizedOptions for mycelium_subscribe_options {
    /// ABI 1.0 ended after `label`.
    const MIN_SIZE: usize = std::mem::offset_of!(mycelium_subscribe_options, label)
        + std::mem::size_of::<*const c_char>();
    const NAME: &'static str = "mycelium_subscribe_options";
    const INIT: &'static str = "mycelium_subscribe_options_init";
}

pub(crate) const DEFAULT_CAPACITY: u32 = 1024;
pub(crate) const DEFAULT_MAX_BATCH: u32 = 256;

impl Default for mycelium_subscribe_options {
    fn default() -> Self {
        mycelium_subscribe_options {
            struct_size: std::mem::size_of::<mycelium_subscribe_options>() as u32,
            capacity: 0,
            policy: mycelium_overflow_policy::MYCELIUM_OVERFLOW_BLOCK as u32,
            max_batch: 0,
            label: std::ptr::null(),
            spin_us: 0,
            pattern: std::ptr::null(),
        }
    }
}

/// Options after validation, ready for the bus.
pub(crate) struct ResolvedOptions {
    pub bus: SubscribeOptions,
    pub max_batch: usize,
}

/// Validates options already read with `sized::read_options` (`None`: all defaults).
pub(crate) fn resolve_options(
    opts: Option<&mycelium_subscribe_options>,
) -> FfiResult<ResolvedOptions> {
    let o = opts.copied().unwrap_or_default();
    let policy = match o.policy {
        0 => OverflowPolicy::Block,
        1 => OverflowPolicy::DropOldest,
        2 => OverflowPolicy::FailPublish,
        other => {
            return Err(FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                format!("options.policy {other} is not a mycelium_overflow_policy (0, 1 or 2)"),
            ))
        }
    };
    let label = if o.label.is_null() {
        None
    } else {
        // SAFETY: the C contract says a non-NULL label is a NUL-terminated string valid for the call.
        let text = unsafe { CStr::from_ptr(o.label) };
        Some(
            text.to_str()
                .map_err(|_| {
                    FfiError::new(
                        MYCELIUM_ERR_INVALID_ARGUMENT,
                        "options.label is not valid UTF-8",
                    )
                })?
                .to_owned(),
        )
    };
    let capacity = if o.capacity == 0 {
        DEFAULT_CAPACITY
    } else {
        o.capacity
    };
    if capacity as usize > MAX_QUEUE_CAPACITY {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "options.capacity {capacity} is too large; use at most {MAX_QUEUE_CAPACITY} messages"
            ),
        ));
    }
    let max_batch = if o.max_batch == 0 {
        DEFAULT_MAX_BATCH
    } else {
        o.max_batch
    };
    let spin = Duration::from_micros(u64::from(o.spin_us));
    if spin > MAX_SPIN {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "options.spin_us {} is too long; use at most {}",
                o.spin_us,
                MAX_SPIN.as_micros()
            ),
        ));
    }
    let mut bus = SubscribeOptions::new(capacity as usize, policy).with_spin(spin);
    bus.label = label;
    if !o.pattern.is_null() {
        // SAFETY: the C contract says a non-NULL pattern is a NUL-terminated string valid for
        // the call.
        let text = unsafe { CStr::from_ptr(o.pattern) }.to_str().map_err(|_| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "options.pattern is not valid UTF-8",
            )
        })?;
        let pattern = mycelium_transport::TopicPattern::new(text).map_err(|e| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                format!("options.pattern: {e}"),
            )
        })?;
        bus = bus.with_pattern(pattern);
    }
    Ok(ResolvedOptions {
        bus,
        max_batch: max_batch as usize,
    })
}

/// The closure with its raw pointers, moved to the delivery thread.
struct OwnedClosure(mycelium_closure);

// SAFETY: the C contract for `mycelium_subscribe` requires `context` and the functions to be usable
// from the library's delivery thread; the closure is only ever used by one thread at a time (the
// delivery thread owns it until it drops it).
unsafe impl Send for OwnedClosure {}

impl Drop for OwnedClosure {
    fn drop(&mut self) {
        if let Some(drop_fn) = self.0.drop {
            let context = self.0.context;
            // SAFETY: `drop` is the caller's function for its own `context`; OwnedClosure's Drop
            // runs once, so it is called exactly once, after the last call.
            if let Err(panic) = catch(|| unsafe { drop_fn(context) }) {
                crate::log::callback_panicked(None, "a subscription's drop function", &panic);
            }
        }
    }
}

thread_local! {
    /// (core address, subscription id) while this thread runs a callback; lets unsubscribe and
    /// flush detect that they were called from inside that very callback.
    static CURRENT_DELIVERY: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

/// The subscription id whose callback this thread is running for `core`, if any.
pub(crate) fn current_delivery(core: &Core) -> Option<u64> {
    CURRENT_DELIVERY
        .with(|c| c.get())
        .and_then(|(addr, id)| (addr == core as *const Core as usize).then_some(id))
}

/// What a runtime handle keeps per live subscription.
pub(crate) struct SubEntry {
    pub shared: Arc<SubShared>,
    pub thread: Option<JoinHandle<()>>,
    pub thread_id: ThreadId,
}

/// State shared between a handle and its delivery thread.
pub(crate) struct SubShared {
    pub id: u64,
    pub raw: RawSubscription,
    pub cancelled: AtomicBool,
    /// Messages taken from the queue and fully handled (delivered or skipped) by the thread.
    pub handled: AtomicU64,
}

impl SubEntry {
    /// Stops delivery, then waits for the delivery thread to finish its current callback and run
    /// `drop` — unless that wait would never end: when called from that thread itself, or from a
    /// thread the delivery thread (transitively) waits for, because its callback is itself
    /// blocked in an unsubscribe or destroy that waits for the caller's callback
    /// (the `mycelium-wait-graph` crate). Then it returns at once; the subscription's callback is never started
    /// again, and its current call and `drop` finish once the caller's callback has returned.
    pub fn cancel_and_join(mut self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        self.shared.raw.close();
        let (waiting, allowed) = Waiting::enter(&[self.thread_id]);
        if allowed.is_empty() {
            return; // dropping the JoinHandle detaches; the thread exits after its callback
        }
        if let Some(t) = self.thread.take() {
            // A panic on the delivery thread was already caught around every callback; a join
            // error could only come from our own loop and is not worth propagating into C.
            let _ = t.join();
        }
        drop(waiting);
    }
}

pub(crate) fn spawn_delivery(
    core: Arc<Core>,
    raw: RawSubscription,
    id: u64,
    closure: mycelium_closure,
    max_batch: usize,
) -> FfiResult<SubEntry> {
    if closure.call.is_none() == closure.call_batch.is_none() {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            "exactly one of closure.call and closure.call_batch must be non-NULL",
        ));
    }
    let shared = Arc::new(SubShared {
        id,
        raw,
        cancelled: AtomicBool::new(false),
        handled: AtomicU64::new(0),
    });
    let thread_shared = shared.clone();
    // The closure is only wrapped (and so only ever dropped, i.e. its `drop` called) once the
    // thread exists: if spawning fails the caller keeps ownership of `context`, as documented.
    let (tx, rx) = std::sync::mpsc::channel::<OwnedClosure>();
    let thread = std::thread::Builder::new()
        .name(format!("mycelium-sub-{id}"))
        .spawn(move || {
            let Ok(owned) = rx.recv() else { return };
            delivery_loop(&core, &thread_shared, &owned.0, max_batch);
            drop(owned); // runs the user's drop exactly once, after the last call
            core.notify_progress();
        })
        .map_err(|e| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                format!("could not start the delivery thread: {e}"),
            )
        })?;
    let thread_id = thread.thread().id();
    // The receiver is alive until the thread got it, so this send cannot fail.
    let _ = tx.send(OwnedClosure(closure));
    Ok(SubEntry {
        shared,
        thread: Some(thread),
        thread_id,
    })
}

/// The C view of `env`, delivered at `now`: a batch is one delivery, so its messages share one
/// clock read.
pub(crate) fn to_message(env: &Envelope, now: Stamp) -> mycelium_message {
    mycelium_message {
        type_id: env.type_id,
        payload: if env.payload.is_empty() {
            std::ptr::null()
        } else {
            env.payload.as_ptr()
        },
        len: env.payload.len(),
        queued_ns: now
            .saturating_duration_since(env.published_at)
            .as_nanos()
            .min(u64::MAX as u128) as u64,
    }
}

fn delivery_loop(core: &Core, sub: &SubShared, closure: &mycelium_closure, max_batch: usize) {
    let mut batch: Vec<Envelope> = Vec::with_capacity(max_batch.min(1024));
    let mut views: Vec<mycelium_message> = Vec::with_capacity(max_batch.min(1024));
    let core_addr = core as *const Core as usize;
    while let Some(first) = sub.raw.recv_blocking() {
        batch.push(first);
        if max_batch > 1 {
            sub.raw.drain_into(&mut batch, max_batch - 1);
        }
        let taken = batch.len() as u64;
        if !sub.cancelled.load(Ordering::SeqCst) {
            CURRENT_DELIVERY.with(|c| c.set(Some((core_addr, sub.id))));
            deliver(sub, closure, &batch, &mut views);
            CURRENT_DELIVERY.with(|c| c.set(None));
        }
        batch.clear();
        sub.handled.fetch_add(taken, Ordering::SeqCst);
        core.notify_progress();
        if sub.cancelled.load(Ordering::SeqCst) {
            break;
        }
    }
}

fn deliver(
    sub: &SubShared,
    closure: &mycelium_closure,
    batch: &[Envelope],
    views: &mut Vec<mycelium_message>,
) {
    if let Some(call_batch) = closure.call_batch {
        views.clear();
        let now = Stamp::now();
        views.extend(batch.iter().map(|env| to_message(env, now)));
        let (ptr, count, context) = (views.as_ptr(), views.len(), closure.context);
        let (head, tail) = batch
            .split_first()
            .expect("a delivered batch is never empty");
        // SAFETY: `views` holds `count` messages whose payload pointers borrow `batch`, which
        // outlives the call; the C contract makes `call_batch` valid for `context`.
        match catch(|| {
            crate::message_topic::delivering(views, head, tail, || unsafe {
                call_batch(context, ptr, count)
            })
        }) {
            Ok(failed) => (0..failed.min(count)).for_each(|_| sub.raw.record_handler_error()),
            Err(panic) => {
                crate::log::callback_panicked(Some(sub.id), "the batch callback", &panic);
                sub.raw.record_handler_error();
            }
        }
    } else if let Some(call) = closure.call {
        for env in batch {
            // A callback may unsubscribe itself; nothing after that call may run.
            if sub.cancelled.load(Ordering::Relaxed) {
                break;
            }
            let msg = to_message(env, Stamp::now());
            let context = closure.context;
            // SAFETY: `msg` borrows `env.payload`, alive for the call; `call` is valid for
            // `context` by the C contract.
            match catch(|| {
                crate::message_topic::delivering(std::slice::from_ref(&msg), env, &[], || unsafe {
                    call(context, &msg)
                })
            }) {
                Ok(0) => {}
                Ok(_) => sub.raw.record_handler_error(),
                Err(panic) => {
                    crate::log::callback_panicked(Some(sub.id), "the callback", &panic);
                    sub.raw.record_handler_error();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_for_null_options_and_zero_fields() {
        let r = resolve_options(None).unwrap();
        assert_eq!(r.bus.capacity, DEFAULT_CAPACITY as usize);
        assert_eq!(r.bus.policy, OverflowPolicy::Block);
        assert_eq!(r.max_batch, DEFAULT_MAX_BATCH as usize);
    }

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        let o = mycelium_subscribe_options {
            policy: 3,
            ..Default::default()
        };
        let e = resolve_options(Some(&o)).err().unwrap();
        assert_eq!(e.status, MYCELIUM_ERR_INVALID_ARGUMENT);
        assert!(e.message.contains("policy 3"));
        let o = mycelium_subscribe_options {
            spin_us: 10_001,
            ..Default::default()
        };
        let e = resolve_options(Some(&o)).err().unwrap();
        assert!(e.message.contains("spin_us 10001"), "{}", e.message);
        let o = mycelium_subscribe_options {
            label: c"\xff".as_ptr(),
            ..Default::default()
        };
        assert!(resolve_options(Some(&o)).is_err());
    }

    #[test]
    fn options_reach_the_bus() {
        let o = mycelium_subscribe_options {
            capacity: 7,
            policy: mycelium_overflow_policy::MYCELIUM_OVERFLOW_DROP_OLDEST as u32,
            max_batch: 3,
            label: c"py-strategy".as_ptr(),
            ..Default::default()
        };
        let r = resolve_options(Some(&o)).unwrap();
        assert_eq!(r.bus.capacity, 7);
        assert_eq!(r.bus.policy, OverflowPolicy::DropOldest);
        assert_eq!(r.bus.label.as_deref(), Some("py-strategy"));
        assert_eq!(r.max_batch, 3);
    }
}
