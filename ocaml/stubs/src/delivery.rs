//! The `mycelium_closure` a subscription hands to the C ABI, and the C functions behind it.
//!
//! The closure's context is a GC root holding the OCaml handler (`string -> bool`, made by
//! `Mycelium_native.subscribe`: it decodes, calls the user's function, catches its exceptions and
//! answers whether it succeeded). Delivery threads are Rust threads the OCaml runtime has never
//! seen, so before running the handler one must register the thread with the runtime
//! ([`crate::registration`]), take the runtime lock, allocate the payload strings and call the
//! handler, then give the lock back. ocaml-rs has no binding for thread registration, and the
//! OCaml manual documents this sequence (and generational global roots, whose cell must not
//! move) in terms of its C macros, so those steps are in `ocaml/stubs/c/mycelium_native_threads.c`;
//! this module only adapts the C ABI's message array to them.

use std::cell::Cell;
use std::ffi::c_void;

use mycelium_ffi::{mycelium_closure, mycelium_message};
use ocaml::Raw;

use crate::registration::registered;

/// One payload as the C side reads it (mirrors `mycelium_ml_payload` in the C file).
#[repr(C)]
struct MlPayload {
    data: *const u8,
    len: usize,
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
    /// returns how many calls failed (raised or answered false). Registered thread, lock not
    /// held.
    fn mycelium_ml_deliver(root: *mut c_void, payloads: *const MlPayload, count: usize) -> usize;
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
    // SAFETY: the C ABI passes `count` valid messages, alive for this call.
    let messages = unsafe { std::slice::from_raw_parts(messages, count) };
    let mut payloads = PAYLOADS.with(|p| p.take());
    payloads.clear();
    payloads.extend(messages.iter().map(|m| MlPayload {
        data: m.payload,
        len: m.len,
    }));
    // SAFETY: `context` is the root made by `closure_for`, live until `drop_root`; the payload
    // pointers borrow the messages, which outlive this call; `registered` registers the thread,
    // and the C ABI calls this without the runtime lock.
    let failed =
        registered(|| unsafe { mycelium_ml_deliver(context, payloads.as_ptr(), payloads.len()) });
    payloads.clear();
    PAYLOADS.with(|p| p.set(payloads));
    failed
}

pub(crate) unsafe extern "C" fn drop_root(context: *mut c_void) {
    // SAFETY: the C ABI calls `drop` exactly once, after the last `call_batch`, on a thread that
    // does not hold the OCaml runtime lock (the stubs release it before unsubscribe/destroy);
    // `registered` registers the thread.
    registered(|| unsafe { mycelium_ml_root_release(context) });
}

/// A closure owning a new GC root for `handler`, or `None` when out of memory. Lock held.
///
/// # Safety
/// `handler` must be an OCaml closure of type `string -> bool`, and the caller must hold the
/// runtime lock.
pub unsafe fn closure_for(handler: Raw) -> Option<mycelium_closure> {
    // SAFETY: per the function contract.
    let root = unsafe { mycelium_ml_root_new(handler.0) };
    if root.is_null() {
        return None;
    }
    Some(mycelium_closure {
        context: root,
        call: None,
        call_batch: Some(call_batch),
        drop: Some(drop_root),
    })
}

/// Frees the root of a closure the C ABI refused (it then never calls `drop`). Lock held.
///
/// # Safety
/// `closure` must come from [`closure_for`] and must not have been accepted by
/// `mycelium_subscribe`.
pub unsafe fn discard(closure: &mycelium_closure) {
    // SAFETY: per the function contract the root is ours and still registered.
    unsafe { mycelium_ml_root_free_locked(closure.context) };
}
