//! The `mycelium_closure` a subscription hands to the C ABI, and the C functions behind it.
//!
//! The closure's context holds a GC root for the OCaml handler (`string -> bool`, made by
//! `Mycelium_native.subscribe`: it decodes, calls the user's function, catches its exceptions and
//! answers whether it succeeded; `string -> string option -> bool` for `subscribe_with_topic`,
//! whose topics are asked of the library here, during the delivery, as they live only that
//! long). Delivery threads are Rust threads the OCaml runtime has never seen, so before running
//! the handler one must register the thread with the runtime ([`crate::registration`]), take the
//! runtime lock, allocate the payload strings and call the handler, then give the lock back.
//! ocaml-rs has no binding for thread registration, and the OCaml manual documents this sequence
//! (and generational global roots, whose cell must not move) in terms of its C macros, so those
//! steps are in `ocaml/stubs/c/mycelium_native_threads.c`; this module only adapts the C ABI's
//! message array to them.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};

use mycelium_ffi::exports::mycelium_message_topic;
use mycelium_ffi::{mycelium_closure, mycelium_message, mycelium_runtime_t};
use ocaml::Raw;

use crate::registration::registered;
use crate::reply::{check, CallResult};

/// One payload as the C side reads it (mirrors `mycelium_ml_payload` in the C file). `topic` is
/// NULL for a message published without one, and for every message of a handler that does not
/// take topics.
#[repr(C)]
struct MlPayload {
    data: *const u8,
    len: usize,
    topic: *const u8,
    topic_len: usize,
}

impl MlPayload {
    /// Borrows the bytes of `m` and of its topic: valid until the delivery of `m` returns.
    fn new(m: &mycelium_message, (topic, topic_len): (*const u8, usize)) -> Self {
        MlPayload {
            data: m.payload,
            len: m.len,
            topic,
            topic_len,
        }
    }
}

/// A subscription's closure context: what `call_batch` needs besides the messages.
struct Subscriber {
    /// The GC root holding the OCaml handler (`mycelium_ml_root_new`).
    root: *mut c_void,
    /// Set for a handler that also takes each message's topic: the handle to ask
    /// `mycelium_message_topic` with. Holding the raw address is sound because the library
    /// never frees a handle's header (destroyed ones are kept), so it is still valid during a
    /// delivery that races with `Runtime.close`.
    topics_from: Option<*const mycelium_runtime_t>,
}

extern "C" {
    /// Allocates a stable cell holding `handler` and registers it as a generational global
    /// root. Runtime lock held. Returns NULL when out of memory.
    pub(crate) fn mycelium_ml_root_new(handler: ocaml::sys::Value) -> *mut c_void;
    /// Unregisters and frees a root. Runtime lock held (subscription refused by the C ABI).
    pub(crate) fn mycelium_ml_root_free_locked(root: *mut c_void);
    /// Unregisters and frees a root from a registered thread that does NOT hold the runtime
    /// lock: takes the lock around the removal.
    fn mycelium_ml_root_release(root: *mut c_void);
    /// Calls the handler in `root` once per payload under one acquisition of the runtime lock;
    /// returns how many calls failed (raised or answered false). With `with_topics` non-zero the
    /// handler takes the topic (`string option`) as a second argument. Registered thread, lock
    /// not held.
    fn mycelium_ml_deliver(
        root: *mut c_void,
        payloads: *const MlPayload,
        count: usize,
        with_topics: c_int,
    ) -> usize;
}

thread_local! {
    /// Reused per delivery thread so that a batch costs no allocation in the steady state.
    static PAYLOADS: Cell<Vec<MlPayload>> = const { Cell::new(Vec::new()) };
}

unsafe extern "C" fn call_batch(
    context: *mut c_void,
    messages: *const mycelium_message,
    count: usize,
) -> usize {
    if messages.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: `context` is the `Subscriber` boxed by `closure_for`, alive until
    // `drop_subscriber`, which the C ABI calls after the last `call_batch`.
    let subscriber = unsafe { &*context.cast::<Subscriber>() };
    // SAFETY: the C ABI passes `count` valid messages, alive for this call.
    let messages = unsafe { std::slice::from_raw_parts(messages, count) };
    let mut payloads = PAYLOADS.with(|p| p.take());
    payloads.clear();
    let unreadable = match subscriber.topics_from {
        None => {
            let no_topic = (std::ptr::null(), 0);
            payloads.extend(messages.iter().map(|m| MlPayload::new(m, no_topic)));
            0
        }
        Some(rt) => push_with_topics(rt, messages, &mut payloads),
    };
    let with_topics = c_int::from(subscriber.topics_from.is_some());
    // SAFETY: the root is live until `drop_subscriber`; the payload and topic pointers borrow
    // the messages' envelopes, which outlive this call; `registered` registers the thread, and
    // the C ABI calls this without the runtime lock.
    let failed = registered(|| unsafe {
        mycelium_ml_deliver(
            subscriber.root,
            payloads.as_ptr(),
            payloads.len(),
            with_topics,
        )
    });
    payloads.clear();
    PAYLOADS.with(|p| p.set(payloads));
    failed + unreadable
}

/// Appends `messages` with their topics to `payloads` and returns how many were left out. The
/// library answers for every message it handed us, so a refusal is a bug somewhere: such a
/// message counts as a failed handler call (it shows in `handler_errors`) rather than reaching
/// the handler with a wrong topic or taking the delivery thread down.
fn push_with_topics(
    rt: *const mycelium_runtime_t,
    messages: &[mycelium_message],
    payloads: &mut Vec<MlPayload>,
) -> usize {
    let mut unreadable = 0;
    for m in messages {
        match topic_of(rt, m) {
            Ok(topic) => payloads.push(MlPayload::new(m, topic)),
            Err(e) => {
                unreadable += 1;
                eprintln!(
                    "mycelium_native: the topic of a delivered message could not be read ({}); \
                     counted as a handler error",
                    e.message
                );
            }
        }
    }
    unreadable
}

/// The topic of `m` as (address, length) of its bytes, NULL for none. `m` must be one of the
/// messages the library is handing this thread now, at its original address.
fn topic_of(rt: *const mycelium_runtime_t, m: &mycelium_message) -> CallResult<(*const u8, usize)> {
    let mut topic: *const c_char = std::ptr::null();
    let mut len = 0usize;
    // SAFETY: `rt` is a handle's address (never freed, see `Subscriber`), `m` is compared, never
    // read, and both out pointers are writable locals.
    check(unsafe { mycelium_message_topic(rt, m, &mut topic, &mut len) })?;
    Ok((topic.cast(), len))
}

/// Releases a bare handler root (the context of a service's closure).
pub(crate) unsafe extern "C" fn drop_root(context: *mut c_void) {
    // SAFETY: the C ABI calls `drop` exactly once, after the last call, on a thread that does
    // not hold the OCaml runtime lock (the stubs release it before unsubscribe/destroy);
    // `registered` registers the thread.
    registered(|| unsafe { mycelium_ml_root_release(context) });
}

unsafe extern "C" fn drop_subscriber(context: *mut c_void) {
    // SAFETY: `context` came from `Box::into_raw` in `closure_for`, and the C ABI calls `drop`
    // exactly once, after the last `call_batch`.
    let subscriber = unsafe { Box::from_raw(context.cast::<Subscriber>()) };
    // SAFETY: the root is ours and still registered; same thread conditions as `drop_root`.
    unsafe { drop_root(subscriber.root) };
}

/// A closure owning a new GC root for `handler`, or `None` when out of memory. Lock held.
/// With `topics_from` (the subscribing handle) the handler is also given each message's topic.
///
/// # Safety
/// `handler` must be an OCaml closure of type `string -> bool`, or `string -> string option ->
/// bool` when `topics_from` is set (a handle of this library), and the caller must hold the
/// runtime lock.
pub unsafe fn closure_for(
    handler: Raw,
    topics_from: Option<*const mycelium_runtime_t>,
) -> Option<mycelium_closure> {
    // SAFETY: per the function contract.
    let root = unsafe { mycelium_ml_root_new(handler.0) };
    if root.is_null() {
        return None;
    }
    let subscriber = Box::new(Subscriber { root, topics_from });
    Some(mycelium_closure {
        context: Box::into_raw(subscriber).cast(),
        call: None,
        call_batch: Some(call_batch),
        drop: Some(drop_subscriber),
    })
}

/// Frees what a closure the C ABI refused owns (it then never calls `drop`). Lock held.
///
/// # Safety
/// `closure` must come from [`closure_for`] and must not have been accepted by
/// `mycelium_subscribe`.
pub unsafe fn discard(closure: &mycelium_closure) {
    // SAFETY: per the function contract the box and the root are ours and still live.
    unsafe {
        let subscriber = Box::from_raw(closure.context.cast::<Subscriber>());
        mycelium_ml_root_free_locked(subscriber.root);
    }
}
