//! The exported C functions. Each forwards through the handle's function table (`vtable.rs`) so
//! it works on handles made by any copy of the library. The doc comments here become
//! `include/mycelium.h`; each states ownership, threads, blocking and callbacks.

use std::ffi::{c_char, c_int};

use crate::bridge::mycelium_bridge_options;
use crate::metrics::mycelium_type_metrics;
use crate::runtime::{self, mycelium_runtime_t};
use crate::sized::{init_sized, SizedOptions};
use crate::status::{self, guard, mycelium_status, mycelium_status::*, FfiError};
use crate::subscription::{mycelium_call_batch_fn, mycelium_closure, mycelium_subscribe_options};
use crate::subscription_stats::mycelium_subscription_stats;
use crate::vtable::{dispatch, dispatch_probed, str_arg};
use crate::wait_hooks::mycelium_wait_hooks;
use std::ffi::c_void;

/// Creates a runtime with a bus of its own, bound to the schema given as YAML text
/// (the contents of a `contracts.yaml`).
///
/// - Ownership: `schema_yaml` is borrowed for the call (`len` bytes, need not be NUL-terminated).
///   On success `*out` receives a handle the caller owns and must release with
///   `mycelium_runtime_destroy`. On failure `*out` is untouched.
/// - Threads: any thread. Blocks: no. Calls back: no.
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_SCHEMA` (not UTF-8, or invalid),
///   `MYCELIUM_ERR_TOO_LARGE` (`len` above `MYCELIUM_MAX_TEXT_LEN`, refused before the text is
///   read), `MYCELIUM_ERR_SCHEMA` (the last error lists every validation problem).
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_runtime_create(
    schema_yaml: *const c_char,
    len: usize,
    out: *mut *mut mycelium_runtime_t,
) -> mycelium_status {
    guard("mycelium_runtime_create", || {
        // Text that is not UTF-8 is an invalid schema, reported as such (the adapters document
        // MYCELIUM_ERR_SCHEMA for every invalid schema).
        let text = str_arg(schema_yaml, len, "schema_yaml").map_err(|e| match e.status {
            MYCELIUM_ERR_INVALID_ARGUMENT => FfiError::new(
                MYCELIUM_ERR_SCHEMA,
                e.message.replace("`schema_yaml` is", "the schema text is"),
            ),
            _ => e,
        })?;
        if out.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out` is NULL"));
        }
        let rt = runtime::create(text)?;
        // SAFETY: `out` is non-NULL and points to writable storage for a pointer (C contract).
        unsafe { out.write(rt) };
        Ok(())
    })
}

/// Makes a second handle onto the same bus and schema, e.g. for an adapter that was handed a
/// host's handle and needs one whose lifetime it controls.
///
/// - Ownership: `rt` is borrowed. On success the caller owns `*out` and destroys it independently
///   of `rt`. Subscriptions belong to the handle that made them.
/// - `rt` may be any address (an integer handed over by foreign code, since ABI 1.2): before it
///   is dereferenced it is checked without faulting (aligned, readable, pointing to a readable
///   function table of plausible size), and the copy of the library that owns that table checks
///   that it made this very header. Anything else is `MYCELIUM_ERR_INVALID_ARGUMENT` with the
///   reason in `mycelium_last_error()` (NULL: `MYCELIUM_ERR_NULL_POINTER`; a destroyed handle:
///   `MYCELIUM_ERR_CLOSED`). Still the caller's responsibility: memory that mimics the header of
///   a copy older than ABI 1.2 (which keeps no list of its headers). Only this function checks;
///   every other function takes handles this library returned.
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer. `rt` may be any value (see above).
#[no_mangle]
pub unsafe extern "C" fn mycelium_runtime_clone(
    rt: *const mycelium_runtime_t,
    out: *mut *mut mycelium_runtime_t,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function, and `dispatch_probed`
    // checks `rt` before anything reads through it.
    dispatch_probed(rt, "mycelium_runtime_clone", |vt| unsafe {
        (vt.clone)(rt, out)
    })
}

/// Releases a handle: unsubscribes every subscription it owns (waiting for running callbacks to
/// return and calling each `drop` exactly once) and frees its resources. Other handles onto the
/// same bus are unaffected; the bus itself lives while any handle or Rust owner does.
///
/// - Ownership: consumes `rt`. NULL is accepted and does nothing. A second destroy of the same
///   handle, or any call on a destroyed handle, returns `MYCELIUM_ERR_CLOSED` (a destroyed
///   handle keeps a few bytes alive for this purpose).
/// - Threads: any thread, but not concurrently with other calls on the same handle.
/// - Blocks: yes, until callbacks of this handle running on other threads return. Release any
///   lock those callbacks need (Python's GIL, OCaml's runtime lock) before calling. Called from
///   inside a callback it waits for the others as `mycelium_unsubscribe` does (not for its own
///   callback, nor for a callback blocked waiting for it).
/// - Calls back: yes, the subscriptions' `drop` functions.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_runtime_destroy(rt: *mut mycelium_runtime_t) -> mycelium_status {
    if rt.is_null() {
        return MYCELIUM_OK;
    }
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_runtime_destroy", |vt| unsafe {
        (vt.destroy)(rt)
    })
}

/// Closes the bus behind `rt` for every handle: later publishes fail with `MYCELIUM_ERR_CLOSED`,
/// messages already queued are still delivered. Use `mycelium_flush` to wait for them.
///
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_runtime_close(rt: *const mycelium_runtime_t) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_runtime_close", |vt| unsafe { (vt.close)(rt) })
}

/// Checks that a foreign schema digest (64 hex chars, NUL-terminated) equals the runtime's.
///
/// - Returns `MYCELIUM_OK` or `MYCELIUM_ERR_SCHEMA_MISMATCH` (the last error shows both digests).
/// - Ownership: `digest` borrowed. Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_verify_schema_digest(
    rt: *const mycelium_runtime_t,
    digest: *const c_char,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_verify_schema_digest", |vt| unsafe {
        (vt.verify_digest)(rt, digest)
    })
}

/// Compares a foreign canonical schema description (see docs/schema.md) with the runtime's and,
/// when they differ, fails with `MYCELIUM_ERR_SCHEMA_MISMATCH` and a last error naming every
/// difference ("TradeTick: field price f64 -> f32", "Order missing on the other side").
///
/// - Ownership: `description` (`len` bytes of UTF-8) borrowed. `len` above
///   `MYCELIUM_MAX_TEXT_LEN` is refused with `MYCELIUM_ERR_TOO_LARGE` before the text is read.
///   Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_verify_schema_description(
    rt: *const mycelium_runtime_t,
    description: *const c_char,
    len: usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_verify_schema_description", |vt| unsafe {
        (vt.verify_description)(rt, description, len)
    })
}

/// Writes the runtime's schema digest (64 hex chars + NUL, so `len >= 65`) into `buf`.
///
/// - Errors: `MYCELIUM_ERR_BUFFER_TOO_SMALL`. Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_schema_digest(
    rt: *const mycelium_runtime_t,
    buf: *mut c_char,
    len: usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_schema_digest", |vt| unsafe {
        (vt.schema_digest)(rt, buf, len)
    })
}

/// Writes the runtime's canonical schema description (NUL-terminated) into `buf`.
///
/// - `*needed` (if not NULL) receives the size required including the NUL, also on
///   `MYCELIUM_ERR_BUFFER_TOO_SMALL`; call with `buf = NULL, len = 0` to ask for the size.
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_schema_description(
    rt: *const mycelium_runtime_t,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_schema_description", |vt| unsafe {
        (vt.schema_description)(rt, buf, len, needed)
    })
}

/// Publishes one message: `payload` is the TLV payload (no frame header) of type `type_id`.
///
/// The payload is validated against the schema first; an unknown type id
/// (`MYCELIUM_ERR_UNKNOWN_TYPE`), a payload that does not decode as that type
/// (`MYCELIUM_ERR_DECODE`) or one over the maximum size (`MYCELIUM_ERR_TOO_LARGE`) is refused
/// before any subscriber sees it. A zero-length payload is valid when the type has no fields;
/// `payload` may be NULL when `len` is 0.
///
/// - Ownership: `payload` is borrowed for the call and copied once, whatever the number of
///   subscribers.
/// - Threads: any, concurrently. Messages published by one thread arrive in order.
/// - Blocks: only when a subscriber with `MYCELIUM_OVERFLOW_BLOCK` has a full queue, until it has
///   room. Publishing from a callback into that same subscription's full queue would wait for
///   itself: give such loops `MYCELIUM_OVERFLOW_DROP_OLDEST` or `MYCELIUM_OVERFLOW_FAIL`.
/// - Calls back: never; callbacks run on delivery threads, not inside this call.
/// - `MYCELIUM_ERR_QUEUE_FULL`: a `MYCELIUM_OVERFLOW_FAIL` subscriber was full; the others got it.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_publish(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    payload: *const u8,
    len: usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_publish", |vt| unsafe {
        (vt.publish)(rt, type_id, payload, len)
    })
}

/// Like `mycelium_publish`, for callers that hold a lock of their own while they run (a
/// language runtime's global lock: CPython's GIL, OCaml's runtime lock). They keep it on the
/// fast path; the library calls `hooks->before_wait(context)` right before the publish first
/// waits for room in a full `MYCELIUM_OVERFLOW_BLOCK` queue (release the lock there: the
/// consumer making room may need it) and `hooks->after_wait(context)` after its last wait
/// (re-acquire it), before returning. Neither is called when the publish does not wait.
/// Releasing the lock around every `mycelium_publish` instead costs a hand-off per message.
///
/// - `hooks` may be NULL (exactly `mycelium_publish`); initialise it with
///   `mycelium_wait_hooks_init`. Both functions set, or both NULL; else
///   `MYCELIUM_ERR_INVALID_ARGUMENT` and nothing is published.
/// - `hooks->keep_waiting` (ABI 1.2, optional) lets the caller give up a wait (e.g. on Ctrl-C):
///   then `MYCELIUM_ERR_TIMEOUT`, the subscribers with room have the message and each full one
///   still waited for counts it as dropped (see `mycelium_wait_hooks`).
/// - Ownership, validation, errors: as `mycelium_publish`. `hooks` is read during the call only.
///   The payload is validated and copied before `before_wait` is called and never read after,
///   so a caller whose runtime may move or free it once the lock is released (OCaml's GC) need
///   not copy it first.
/// - Threads: any. Blocks: as `mycelium_publish`. Calls back: `before_wait`/`after_wait`, on the
///   calling thread, only around a wait.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_publish_with_hooks(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    payload: *const u8,
    len: usize,
    hooks: *const mycelium_wait_hooks,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_publish_with_hooks", |vt| unsafe {
        (vt.publish_with_hooks)(rt, type_id, payload, len, hooks)
    })
}

/// Fills `hooks` with no functions, a NULL context and `struct_size`. The header's
/// `mycelium_wait_hooks_init(hooks)` is a macro calling `mycelium_wait_hooks_init_sized(hooks,
/// sizeof *hooks)`; this function itself writes only the struct's first ABI version (1.1), for
/// programs built before the macro existed.
///
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `hooks` must be NULL or point to a writable `mycelium_wait_hooks` of ABI 1.1 or later.
#[no_mangle]
pub unsafe extern "C" fn mycelium_wait_hooks_init(
    hooks: *mut mycelium_wait_hooks,
) -> mycelium_status {
    // SAFETY: same contract, with the first version's size.
    unsafe {
        mycelium_wait_hooks_init_sized(hooks, <mycelium_wait_hooks as SizedOptions>::MIN_SIZE)
    }
}

/// Fills the first `size` bytes of `hooks` (its `sizeof` as the caller was compiled with) with
/// the defaults and sets `struct_size` to the bytes written; never writes past `size`, so a
/// program built against an older header is safe with a newer library. Since ABI 1.2.
///
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_INVALID_ARGUMENT` (`size` below the
///   struct's first ABI version). Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `hooks` must be NULL or point to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn mycelium_wait_hooks_init_sized(
    hooks: *mut mycelium_wait_hooks,
    size: usize,
) -> mycelium_status {
    guard("mycelium_wait_hooks_init", || {
        if hooks.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`hooks` is NULL"));
        }
        // SAFETY: non-NULL `hooks` points to `size` writable bytes (C contract).
        unsafe { init_sized(hooks, size) }
    })
}

/// Fills `opts` with the defaults (capacity 1024, `MYCELIUM_OVERFLOW_BLOCK`, batches of up to
/// 256, no label) and `struct_size`. Always use it before setting fields.
///
/// In C, `mycelium_subscribe_options_init(opts)` is a macro of the header that calls
/// `mycelium_subscribe_options_init_sized(opts, sizeof *opts)`, so the library knows how large
/// the caller's struct is. This function itself is for programs built against the ABI 1.0/1.1
/// headers, which call it directly: it writes only the ABI 1.0 fields (24 bytes) and sets
/// `struct_size` to 24, so such a program's smaller struct is never overrun by a newer library
/// (fields added later keep their defaults).
///
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `opts` must be NULL or point to a writable ABI 1.0 (or later) `mycelium_subscribe_options`.
#[no_mangle]
pub unsafe extern "C" fn mycelium_subscribe_options_init(
    opts: *mut mycelium_subscribe_options,
) -> mycelium_status {
    // SAFETY: same contract, with the first version's size.
    unsafe {
        mycelium_subscribe_options_init_sized(
            opts,
            <mycelium_subscribe_options as SizedOptions>::MIN_SIZE,
        )
    }
}

/// Fills the first `size` bytes of `opts` (its `sizeof` as the caller was compiled with) with
/// the defaults and sets `struct_size` to the bytes written; never writes past `size`. Since
/// ABI 1.2; reached through the header's `mycelium_subscribe_options_init` macro.
///
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_INVALID_ARGUMENT` (`size` below the
///   ABI 1.0 struct). Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `opts` must be NULL or point to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn mycelium_subscribe_options_init_sized(
    opts: *mut mycelium_subscribe_options,
    size: usize,
) -> mycelium_status {
    guard("mycelium_subscribe_options_init", || {
        if opts.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`opts` is NULL"));
        }
        // SAFETY: non-NULL `opts` points to `size` writable bytes (C contract).
        unsafe { init_sized(opts, size) }
    })
}

/// Subscribes `closure` to messages of `type_id`, delivered in order on a delivery thread
/// dedicated to this subscription (never on a publisher's thread).
///
/// - `opts` may be NULL for the defaults. `closure` is copied; exactly one of `call` and
///   `call_batch` must be set.
/// - Ownership: on `MYCELIUM_OK` the library owns `closure->context` until it calls
///   `closure->drop` (exactly once: after `mycelium_unsubscribe`, `mycelium_runtime_destroy`, or
///   never if neither is called before exit). On any error the caller keeps it and `drop` is
///   never called. `*out_id` receives the subscription id.
/// - Callbacks run on the delivery thread, one at a time per subscription, possibly at the same
///   time as callbacks of other subscriptions. The message's payload pointer is valid only during
///   the call. A callback may publish, subscribe, and unsubscribe (itself or others).
/// - Threads: any. Blocks: no (starts the delivery thread). Calls back: not from this call.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_subscribe(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    opts: *const mycelium_subscribe_options,
    closure: *const mycelium_closure,
    out_id: *mut u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_subscribe", |vt| unsafe {
        (vt.subscribe)(rt, type_id, opts, closure, out_id)
    })
}

/// Opens a pull receiver for `type_id`: a subscription without a callback whose queue the
/// caller drains with `mycelium_receiver_recv` on a thread of its own (no library thread is
/// involved, so a message costs one wake-up: the receiving thread's). Close it with
/// `mycelium_unsubscribe`; `mycelium_runtime_destroy` closes it too.
///
/// - `opts` may be NULL (defaults: capacity 1024, `MYCELIUM_OVERFLOW_BLOCK`); `max_batch` is
///   ignored. `*out_id` receives the receiver id (same id space as subscriptions).
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_receiver_open(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    opts: *const mycelium_subscribe_options,
    out_id: *mut u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_receiver_open", |vt| unsafe {
        (vt.receiver_open)(rt, type_id, opts, out_id)
    })
}

/// Takes messages from a pull receiver: waits up to `timeout_ms` for the first one (0: do not
/// wait; `MYCELIUM_WAIT_FOREVER`: no limit), then calls `visit(context, messages, count)` once,
/// on the calling thread, with that message and up to `max_messages - 1` more already queued, in
/// order. `*out_count` (if not NULL) receives `count`.
///
/// - Returns `MYCELIUM_ERR_TIMEOUT` when nothing arrived in time (nothing is lost),
///   `MYCELIUM_ERR_CLOSED` once the receiver was unsubscribed or its handle destroyed (at once:
///   messages still queued are dropped and counted, and no visit starts after the unsubscribe
///   began), or once the bus was closed and the queue is drained,
///   `MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION` for an id this handle does not own.
/// - Ownership: the messages and their payloads are valid only during `visit`; copy what you keep.
///   `visit`'s return value is the number of messages it failed on (counted as handler errors).
/// - Threads: any; several threads may receive from one receiver (each message goes to one).
///   Blocks: yes, up to `timeout_ms`; release the GIL / OCaml runtime lock first (and wait in
///   slices if you must react to signals). Calls back: yes, `visit`, on the calling thread,
///   before returning.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_receiver_recv(
    rt: *const mycelium_runtime_t,
    receiver: u64,
    timeout_ms: u32,
    max_messages: usize,
    visit: mycelium_call_batch_fn,
    context: *mut c_void,
    out_count: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_receiver_recv", |vt| unsafe {
        (vt.receiver_recv)(
            rt,
            receiver,
            timeout_ms,
            max_messages,
            visit,
            context,
            out_count,
        )
    })
}

/// Ends a subscription (or pull receiver) made through this handle. Messages still queued for it
/// are dropped and counted.
///
/// - When it returns, the callback is not running and will never run again, and `drop` has been
///   called exactly once. Pull receivers: no thread is inside its `visit` any more, no visit
///   starts again, and a `mycelium_receiver_recv` waiting on it ends with `MYCELIUM_ERR_CLOSED`.
/// - Called from inside a callback (or a `visit`), it waits for the same, with two exceptions
///   that would otherwise never end. (1) Its own subscription: it does not wait for itself; no
///   further call happens and `drop` runs as soon as the callback returns. (2) A cycle: when the
///   target's callback is itself blocked, directly or through a chain of other callbacks, in an
///   unsubscribe or destroy that waits for the caller's callback (two callbacks unsubscribing each
///   other, a ring of three, a callback destroying the runtime while others unsubscribe each
///   other), the call that would close the cycle returns without waiting; the target is never
///   called again and finishes its current call and `drop` once the caller's callback returns.
///   Every other call in the cycle waits as usual. A thread that is not running a callback is
///   never part of a cycle, so for it the first promise always holds. (Cycles are seen within one
///   copy of the library: two separately built copies in one process do not see each other's.)
/// - Errors: `MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION` for an id this handle does not own, including
///   one already unsubscribed.
/// - Threads: any. Blocks: yes, until the callback running on the delivery thread (or the
///   receiver's running visits) return; release the GIL / OCaml runtime lock first. Calls back:
///   yes, `drop`.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_unsubscribe(
    rt: *const mycelium_runtime_t,
    subscription: u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_unsubscribe", |vt| unsafe {
        (vt.unsubscribe)(rt, subscription)
    })
}

/// Waits until every message published before this call to a subscription of this handle has
/// been handled by its callback (or dropped), or until `timeout_ms` passes
/// (`MYCELIUM_ERR_TIMEOUT`).
///
/// - Threads: any, but from a callback of this handle it fails with `MYCELIUM_ERR_WRONG_THREAD`
///   (it would wait for itself). Blocks: yes, up to `timeout_ms`; release the GIL / OCaml runtime
///   lock first. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_flush(
    rt: *const mycelium_runtime_t,
    timeout_ms: u32,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_flush", |vt| unsafe {
        (vt.flush)(rt, timeout_ms)
    })
}

/// Writes a JSON snapshot of the bus metrics (per type: published, delivered, dropped, bytes,
/// latency percentiles; per subscriber: queue depth, drops, handler errors) into `buf`, with
/// `connections`: the handle's socket bridges and NATS joins by `id`, each as
/// `mycelium_bridge_stats_json` shows it (`endpoints`, `kind` "socket" or "nats", `stats`).
///
/// - Size protocol as for `mycelium_schema_description`. Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_metrics_json(
    rt: *const mycelium_runtime_t,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_metrics_json", |vt| unsafe {
        (vt.metrics_json)(rt, buf, len, needed)
    })
}

/// Writes the bus metrics in the Prometheus text exposition format into `buf`.
///
/// - Size protocol as for `mycelium_schema_description`. Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_metrics_prometheus(
    rt: *const mycelium_runtime_t,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_metrics_prometheus", |vt| unsafe {
        (vt.metrics_prometheus)(rt, buf, len, needed)
    })
}

/// Copies the counters of one callback subscription or pull receiver (`id` from
/// `mycelium_subscribe` / `mycelium_receiver_open`) into `*out`. Set `out->struct_size` to
/// `sizeof(mycelium_subscription_stats)` first.
///
/// - Returns `MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION` once it was closed (read the counters before
///   `mycelium_unsubscribe` if you need its final figures).
/// - Threads: any. Blocks: no. Calls back: no. Allocates: no (beyond a label clone).
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_subscription_stats_get(
    rt: *const mycelium_runtime_t,
    id: u64,
    out: *mut mycelium_subscription_stats,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_subscription_stats_get", |vt| unsafe {
        (vt.subscription_stats)(rt, id, out)
    })
}

/// Copies the counters of one type into `*out`. Set `out->struct_size` to
/// `sizeof(mycelium_type_metrics)` first. A type nobody used yet yields zeros.
///
/// - Threads: any. Blocks: no. Calls back: no. Allocates: a transient snapshot.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_type_metrics_get(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    out: *mut mycelium_type_metrics,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_type_metrics_get", |vt| unsafe {
        (vt.type_metrics)(rt, type_id, out)
    })
}

/// Fills `opts` with the defaults (socket mode 0600, loopback only, default maximum frame, no
/// token) and `struct_size`. In C the header's `mycelium_bridge_options_init(opts)` macro calls
/// `mycelium_bridge_options_init_sized(opts, sizeof *opts)`; this function itself writes only
/// the struct's ABI 1.0 fields, for programs built before the macro existed.
///
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `opts` must be NULL or point to a writable ABI 1.0 (or later) `mycelium_bridge_options`.
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_options_init(
    opts: *mut mycelium_bridge_options,
) -> mycelium_status {
    // SAFETY: same contract, with the first version's size.
    unsafe {
        mycelium_bridge_options_init_sized(
            opts,
            <mycelium_bridge_options as SizedOptions>::MIN_SIZE,
        )
    }
}

/// Fills the first `size` bytes of `opts` (its `sizeof` as the caller was compiled with) with
/// the defaults and sets `struct_size` to the bytes written; never writes past `size`. Since
/// ABI 1.2; reached through the header's `mycelium_bridge_options_init` macro.
///
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_INVALID_ARGUMENT` (`size` below the
///   ABI 1.0 struct). Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// `opts` must be NULL or point to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_options_init_sized(
    opts: *mut mycelium_bridge_options,
    size: usize,
) -> mycelium_status {
    guard("mycelium_bridge_options_init", || {
        if opts.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`opts` is NULL"));
        }
        // SAFETY: non-NULL `opts` points to `size` writable bytes (C contract).
        unsafe { init_sized(opts, size) }
    })
}

/// Makes the bus behind `rt` reachable from other processes: listens on `address`
/// (`"unix:/path/to.sock"` or `"tcp:127.0.0.1:7000"`; port 0 picks a free port, see
/// `mycelium_bridge_stats_json` / docs/bridges.md) and serves every peer that completes the
/// handshake (same protocol version, same token, same schema digest; a mismatch is refused with
/// the messages that differ, on both sides). Only types a peer subscribes to cross.
///
/// - `opts` may be NULL for the defaults. `*out_id` receives the bridge id.
/// - Errors: `MYCELIUM_ERR_INVALID_ARGUMENT` (bad address, non-loopback TCP without
///   `allow_remote`, a `nats://` address: NATS is joined with `mycelium_bridge_connect`),
///   `MYCELIUM_ERR_BRIDGE` (cannot bind, ...).
/// - Threads: any. Blocks: until the socket is bound. Calls back: no. Starts the handle's I/O
///   thread on first use.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_listen(
    rt: *const mycelium_runtime_t,
    address: *const c_char,
    opts: *const mycelium_bridge_options,
    out_id: *mut u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_bridge_listen", |vt| unsafe {
        (vt.bridge_listen)(rt, address, opts, out_id)
    })
}

/// Joins the bus of another process that listens on `address` (`"unix:/path"` or
/// `"tcp:host:port"`): connects in the background and reconnects with backoff after a cut
/// (at most once delivery: nothing is replayed). Publish and subscribe on `rt` as usual; use
/// `mycelium_bridge_wait` to wait for the connection.
///
/// A `"nats://host:port"` (or `tls://`, or a comma-separated list of one cluster's servers)
/// address joins the bus to a NATS deployment instead (core NATS, at most once; subjects
/// `mycelium.<schema>.<Message>`; docs/distributed.md). Differences: the first connection is
/// made before this returns (a server that is down is `MYCELIUM_ERR_BRIDGE` at once; later
/// cuts are retried with backoff); `token` is the server's auth token (or put
/// `user:password@` in the URL); `max_frame` does not apply (the server's `max_payload` does).
/// The id works with every other `mycelium_bridge_*` function.
///
/// - `opts` may be NULL (`token` is the only field a connector uses besides `max_frame`).
///   `*out_id` receives the bridge id.
/// - Errors: `MYCELIUM_ERR_INVALID_ARGUMENT` (bad address or token), `MYCELIUM_ERR_BRIDGE`
///   (NATS: cannot connect, credentials refused; never retried, the message has no secrets).
/// - Threads: any. Blocks: no for a socket bridge (returns before connecting); for NATS,
///   until connected or refused (release the GIL / OCaml runtime lock). Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_connect(
    rt: *const mycelium_runtime_t,
    address: *const c_char,
    opts: *const mycelium_bridge_options,
    out_id: *mut u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_bridge_connect", |vt| unsafe {
        (vt.bridge_connect)(rt, address, opts, out_id)
    })
}

/// Waits until the bridge has at least `sessions` open sessions (for a connector, 1 means
/// "connected and handshake done"), up to `timeout_ms`. For a NATS join, any `sessions` > 0
/// means: connected, and the server has every subscription the bus had when the wait began
/// (so a message published elsewhere after this returns reaches those subscribers).
///
/// - Errors: `MYCELIUM_ERR_TIMEOUT` (not yet; the last error says why: the peer's last refusal,
///   or the address and reason of the last failed connection attempt, e.g. "No such file or
///   directory"), `MYCELIUM_ERR_BRIDGE` (the bridge stopped, e.g. the peer refused the handshake
///   because the schemas differ: the last error names the messages).
/// - Threads: any; a concurrent `mycelium_bridge_close` ends the wait with
///   `MYCELIUM_ERR_BRIDGE`. Blocks: up to `timeout_ms`;
///   release the GIL / OCaml runtime lock first. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_wait(
    rt: *const mycelium_runtime_t,
    bridge: u64,
    sessions: u64,
    timeout_ms: u32,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_bridge_wait", |vt| unsafe {
        (vt.bridge_wait)(rt, bridge, sessions, timeout_ms)
    })
}

/// Closes a bridge: stops listening or reconnecting, sends what is queued for peers, closes its
/// connections. `mycelium_runtime_destroy` closes the handle's bridges too.
///
/// - Threads: any. Blocks: until the bridge's tasks ended (bounded by its write timeout).
///   Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_close(
    rt: *const mycelium_runtime_t,
    bridge: u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_bridge_close", |vt| unsafe {
        (vt.bridge_close)(rt, bridge)
    })
}

/// Writes the bridge's counters as JSON into `buf` (frames and bytes in/out, sessions,
/// reconnects, recent refusals and closed sessions with reasons). Size protocol as for
/// `mycelium_schema_description`. A NATS join writes `{"endpoints": [url], "kind": "nats",
/// "connected": bool, "stats": {...}}` with its own counters (sent, received, refused,
/// reconnects, slow_consumer...; docs/distributed.md), credentials removed from the URL.
///
/// - Threads: any. Blocks: no. Calls back: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_bridge_stats_json(
    rt: *const mycelium_runtime_t,
    bridge: u64,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_bridge_stats_json", |vt| unsafe {
        (vt.bridge_stats_json)(rt, bridge, buf, len, needed)
    })
}

/// The message describing the last failed call on the calling thread ("" if none).
///
/// - Ownership: the library owns the string; it stays valid until the next failing call on
///   this thread. Successful calls do not clear it. Threads: any (the value is per thread).
///   Blocks: no. Calls back: no.
#[no_mangle]
pub extern "C" fn mycelium_last_error() -> *const c_char {
    status::last_error_ptr()
}

/// Copies the calling thread's last error into `buf` (truncated to `len - 1` bytes, always
/// NUL-terminated when `len > 0`) and returns its full length without the NUL.
///
/// - `buf` may be NULL with `len` 0 to ask for the length. Threads: any. Blocks: no.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_last_error_copy(buf: *mut c_char, len: usize) -> usize {
    status::copy_last_error(buf, len)
}

/// The name of a status code (e.g. "MYCELIUM_ERR_DECODE") as a static string; never NULL.
/// A value that is not a `mycelium_status` of this library (a code added by a newer version, or
/// garbage) yields "MYCELIUM_STATUS_UNKNOWN".
///
/// - Takes an `int`, not the enum, so that any value a caller passes is well defined.
/// - Threads: any. Blocks: no. Calls back: no. Allocates: no.
#[no_mangle]
pub extern "C" fn mycelium_status_name(status: c_int) -> *const c_char {
    match mycelium_status::from_raw(status) {
        Some(s) => s.name_cstr().as_ptr(),
        None => c"MYCELIUM_STATUS_UNKNOWN".as_ptr(),
    }
}

// ---------------------------------------------------------------------------------------------
// Request/reply (ABI 1.3). See docs/request-reply.md.

/// Publishes one message under a topic (docs/topics.md): as `mycelium_publish_with_hooks`, and
/// subscriptions whose `pattern` matches `topic` get it too (subscriptions without a pattern
/// get every message, as always). Since ABI 1.4.
///
/// - `topic`: NUL-terminated UTF-8, `/`-separated non-empty segments, at most 256 bytes, no
///   wildcard, whitespace or `.`; anything else is refused with `MYCELIUM_ERR_INVALID_ARGUMENT`
///   naming the reason, before any subscriber sees the message. Copied; `hooks` may be NULL.
/// - Ownership, threads, blocking, callbacks and errors: as `mycelium_publish_with_hooks`.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_publish_topic(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    topic: *const c_char,
    payload: *const u8,
    len: usize,
    hooks: *const mycelium_wait_hooks,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_publish_topic", |vt| unsafe {
        (vt.publish_topic)(rt, type_id, topic, payload, len, hooks)
    })
}

/// The topic a message being delivered was published with (docs/topics.md). Since ABI 1.5.
///
/// `mycelium_message` has no topic field (callers built against an older header walk batch
/// arrays with its old size), so a callback asks for it by the address of a message it was
/// handed: one of the `messages` of a `call_batch` or a receiver's `visit` function, or the
/// `message` of a `call`. Asking costs no allocation and no lock.
///
/// - Ownership: on `MYCELIUM_OK`, `*out_topic` points to `*out_len` bytes of UTF-8 (**not**
///   NUL-terminated) owned by the library and valid only until the callback returns (copy them
///   to keep them); a message published without a topic gives `*out_topic = NULL`,
///   `*out_len = 0`. On failure both are untouched.
/// - Threads: only the thread running the callback, during it. Blocks: no. Calls back: no.
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`; `MYCELIUM_ERR_INVALID_ARGUMENT` when this thread is
///   not running a delivery callback or visit function of `rt`'s library, or `message` is not
///   the address of one of the messages it was handed (a copy of the struct, or a message of
///   an outer delivery while a nested `mycelium_receiver_recv` runs).
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
/// `message` is compared, never read.
#[no_mangle]
pub unsafe extern "C" fn mycelium_message_topic(
    rt: *const mycelium_runtime_t,
    message: *const crate::subscription::mycelium_message,
    out_topic: *mut *const c_char,
    out_len: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_message_topic", |vt| unsafe {
        (vt.message_topic)(rt, message, out_topic, out_len)
    })
}

/// Counts publishes per topic in the metrics (`mycelium_metrics_json`'s `"topics"` list and
/// `topics_untracked`, `mycelium_metrics_prometheus`'s `mycelium_topic_*` series), for the
/// first `max_topics` distinct (type, topic) pairs published from now on; publishes under
/// further topics are counted together in `topics_untracked`. Off by default (topics can be
/// unbounded in number); 0 turns it off again and forgets the counts. Bus-wide: every handle
/// onto the bus sees the same counts. Since ABI 1.5.
///
/// - Ownership: nothing is passed or returned but the status.
/// - Threads: any. Blocks: no (one short lock). Calls back: no.
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_CLOSED` (destroyed handle).
///
/// # Safety
/// A runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_enable_topic_metrics(
    rt: *const mycelium_runtime_t,
    max_topics: u32,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_enable_topic_metrics", |vt| unsafe {
        (vt.enable_topic_metrics)(rt, max_topics)
    })
}

/// Serves the service (`request_type`, `reply_type`): each request is handed to
/// `handler->call` on a responder thread dedicated to it, one at a time, in arrival order.
/// Since ABI 1.3.
///
/// - The handler gets the request (its payload valid only during the call) and a
///   library-owned `mycelium_reply_writer`, valid only during the call. It answers by
///   `mycelium_reply_write(reply, payload, len)` (copied and validated as `reply_type`) and
///   returning 0, or fails the request by returning non-zero (with an optional reason given to
///   `mycelium_reply_fail`). A crash-free failure of any kind (non-zero return, no reply
///   written, an invalid reply) reaches the requester as `MYCELIUM_ERR_RESPONDER_FAILED`; the
///   responder keeps serving. The handler may publish, request other services and unserve
///   itself (a request to its own service waits for itself, up to its timeout, unless another
///   responder answers).
/// - `capacity`: requests that may wait (0: the default, 256); a request arriving when full
///   fails at once for this responder ("queue full"). `label` (NUL-terminated UTF-8, may be
///   NULL) names the thread. Both types must be in the schema.
/// - Ownership: `handler` is copied; on `MYCELIUM_OK` the library owns `handler->context`
///   until it calls `handler->drop` (exactly once, after the last call: after
///   `mycelium_unserve` or `mycelium_runtime_destroy`). On any error the caller keeps it.
///   `*out_id` receives the responder id (for `mycelium_unserve`).
/// - Threads: any. Blocks: no (starts the responder thread). Calls back: not from this call.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_serve(
    rt: *const mycelium_runtime_t,
    request_type: u16,
    reply_type: u16,
    capacity: u32,
    label: *const c_char,
    handler: *const crate::service::mycelium_service_closure,
    out_id: *mut u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_serve", |vt| unsafe {
        (vt.serve)(
            rt,
            request_type,
            reply_type,
            capacity,
            label,
            handler,
            out_id,
        )
    })
}

/// Stops responder `id`: requests made from now on do not reach it, requests still queued fail
/// at once (`MYCELIUM_ERR_RESPONDER_FAILED` unless another responder answers), then it waits
/// for the handler call in progress and runs `handler->drop`. Since ABI 1.3.
///
/// - From inside that responder's own handler (or where the wait would close a cycle of
///   callbacks waiting for each other) it returns without waiting; the handler's current call
///   and `drop` finish once it returns.
/// - Errors: `MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION` (not a live responder of this handle).
/// - Threads: any. Blocks: until the handler call in progress returns. Calls back: `drop`, on
///   the responder thread.
///
/// # Safety
/// A runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
pub unsafe extern "C" fn mycelium_unserve(
    rt: *const mycelium_runtime_t,
    id: u64,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_unserve", |vt| unsafe { (vt.unserve)(rt, id) })
}

/// Sends a request of `request_type` (payload validated and copied first) to every responder
/// of (`request_type`, `reply_type`) and **blocks the calling thread** until the first
/// successful reply, which it hands to `on_reply(context, &reply)` on this same thread before
/// returning `MYCELIUM_OK`. Later replies of other responders are discarded (counted as late
/// in the metrics). Since ABI 1.3.
///
/// - Errors: `MYCELIUM_ERR_NO_RESPONDER` at once when nobody serves it;
///   `MYCELIUM_ERR_RESPONDER_FAILED` when every responder failed (the last error holds the first
///   reason); `MYCELIUM_ERR_TIMEOUT` after `timeout_ms` (`MYCELIUM_WAIT_FOREVER`: no limit), or
///   when `hooks->keep_waiting` gave up; `MYCELIUM_ERR_CLOSED`; `MYCELIUM_ERR_UNKNOWN_TYPE`,
///   `MYCELIUM_ERR_DECODE`, `MYCELIUM_ERR_TOO_LARGE` for the request (nothing sent) or
///   `MYCELIUM_ERR_DECODE` for a reply that does not validate as `reply_type` (not handed on).
/// - Blocking: a language runtime with a global lock (the GIL, the OCaml runtime lock) must
///   not hold it while this waits, or a responder that needs it never runs: pass `hooks`
///   (`mycelium_wait_hooks`, may be NULL) and release the lock in `before_wait`, re-take it in
///   `after_wait`; both run on this thread, at most once, only if the request has to wait.
///   `keep_waiting` (may be NULL) is asked about every 100 ms and may give up (Ctrl-C).
///   `on_reply` runs after `after_wait`, with the caller's lock held again.
/// - Ownership: `payload` is borrowed until it is copied (before any hook runs). The reply's
///   payload belongs to the library and is valid only during `on_reply`; copy it to keep it.
///   `on_reply` may be NULL (the reply is discarded); its return value is ignored.
/// - Threads: any, including a subscription callback or a serve handler. Blocks: yes, up to
///   `timeout_ms`. Calls back: `hooks` and `on_reply`, on the calling thread.
///
/// # Safety
/// Every pointer must be NULL or valid for the access described above for the duration of the
/// call; a runtime pointer must come from this library (live or destroyed, never freed memory).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mycelium_request(
    rt: *const mycelium_runtime_t,
    request_type: u16,
    payload: *const u8,
    len: usize,
    reply_type: u16,
    timeout_ms: u32,
    hooks: *const mycelium_wait_hooks,
    on_reply: crate::subscription::mycelium_call_fn,
    context: *mut c_void,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_request", |vt| unsafe {
        (vt.request)(
            rt,
            request_type,
            payload,
            len,
            reply_type,
            timeout_ms,
            hooks,
            on_reply,
            context,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    })
}

/// Like `mycelium_request`, but **gathers every answer**: blocks until each responder present
/// at the time of the request has answered or `timeout_ms` passed, then calls `on_reply` once
/// per successful reply (in arrival order) and returns `MYCELIUM_OK` — also when some
/// responders failed or did not answer in time: `*out_failed` receives how many failed and
/// `*out_unanswered` how many had not answered (each may be NULL). Since ABI 1.3.
///
/// - Errors: `MYCELIUM_ERR_NO_RESPONDER` (at once), `MYCELIUM_ERR_TIMEOUT` (only when
///   `hooks->keep_waiting` gave up), `MYCELIUM_ERR_CLOSED`, and the request errors of
///   `mycelium_request`. A reply that does not validate is not handed on and counts as failed.
/// - Blocking, hooks, ownership, threads, callbacks: as `mycelium_request`.
///
/// # Safety
/// As `mycelium_request`; `out_failed` and `out_unanswered` are NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mycelium_request_all(
    rt: *const mycelium_runtime_t,
    request_type: u16,
    payload: *const u8,
    len: usize,
    reply_type: u16,
    timeout_ms: u32,
    hooks: *const mycelium_wait_hooks,
    on_reply: crate::subscription::mycelium_call_fn,
    context: *mut c_void,
    out_failed: *mut usize,
    out_unanswered: *mut usize,
) -> mycelium_status {
    // SAFETY: the table function has the same contract as this function.
    dispatch(rt, "mycelium_request_all", |vt| unsafe {
        (vt.request)(
            rt,
            request_type,
            payload,
            len,
            reply_type,
            timeout_ms,
            hooks,
            on_reply,
            context,
            1,
            out_failed,
            out_unanswered,
        )
    })
}

/// Answers the request a serve handler is handling: copies `len` bytes at `payload` as the
/// reply after validating them as the service's reply type. Calls `reply->write`, so it works
/// on a writer made by any copy of the library. Since ABI 1.3.
///
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_DECODE` / `MYCELIUM_ERR_TOO_LARGE`
///   (nothing stored: write again, or return non-zero), `MYCELIUM_ERR_INVALID_ARGUMENT` (a
///   writer from an older library, without `write`).
/// - Threads: only the serve handler's, during the call that got `reply`. Blocks: no. Calls
///   back: no.
///
/// # Safety
/// `reply` must be NULL or the writer of the running handler call; `payload` must be NULL or
/// point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mycelium_reply_write(
    reply: *mut crate::service::mycelium_reply_writer,
    payload: *const u8,
    len: usize,
) -> mycelium_status {
    let write = guard("mycelium_reply_write", || {
        // SAFETY: per this function's contract.
        match unsafe { reply.as_ref() }.and_then(|w| w.write) {
            Some(_) => Ok(()),
            None if reply.is_null() => {
                Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`reply` is NULL"))
            }
            None => Err(FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "this reply writer has no write function",
            )),
        }
    });
    if write != MYCELIUM_OK {
        return write;
    }
    // SAFETY: checked above; the writer's own function, with the same contract.
    unsafe {
        let f = (*reply).write.expect("checked above");
        f(reply, payload, len)
    }
}

/// Gives the reason a serve handler fails the request it is handling (copied; `len` bytes of
/// UTF-8, invalid sequences replaced); the handler then returns non-zero. Calls
/// `reply->fail`. Since ABI 1.3.
///
/// - Errors: `MYCELIUM_ERR_NULL_POINTER`, `MYCELIUM_ERR_INVALID_ARGUMENT` (a writer without
///   `fail`). Threads: only the serve handler's, during its call. Blocks: no. Calls back: no.
///
/// # Safety
/// `reply` must be NULL or the writer of the running handler call; `reason` must be NULL or
/// point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mycelium_reply_fail(
    reply: *mut crate::service::mycelium_reply_writer,
    reason: *const c_char,
    len: usize,
) -> mycelium_status {
    let fail = guard("mycelium_reply_fail", || {
        // SAFETY: per this function's contract.
        match unsafe { reply.as_ref() }.and_then(|w| w.fail) {
            Some(_) => Ok(()),
            None if reply.is_null() => {
                Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`reply` is NULL"))
            }
            None => Err(FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "this reply writer has no fail function",
            )),
        }
    });
    if fail != MYCELIUM_OK {
        return fail;
    }
    // SAFETY: checked above; the writer's own function, with the same contract.
    unsafe {
        let f = (*reply).fail.expect("checked above");
        f(reply, reason, len)
    }
}
